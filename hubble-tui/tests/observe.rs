//! `hubble observe` end to end: the binary against a real exporter gRPC
//! server serving `flow-exporter/testdata/flows.jsonl`.
//!
//! * compact output is pinned line by line (expected strings derived from
//!   upstream's printer rules: `TIME: SRC (ID) ARROW DST (ID) TYPE VERDICT
//!   (SUMMARY)`, pod/service/DNS names with ports, `<-` swaps replies, `<>`
//!   for an unknown direction, reserved identities by name, the TYPE column
//!   from the trace point, drop reason text or `policy-verdict:MATCH DIR`,
//!   `IP Trace ID: N; ` before the summary);
//! * `-o json` prints each response exactly as `proto::json` encodes it
//!   (Hubble's jsonpb form), i.e. what upstream prints for those flows;
//! * `--input-file` selects the same flows as the server for the same flags;
//! * lost events, node names, time formats and the default `--last 20`;
//! * the field mask the request carries (upstream's default for compact,
//!   dict and table, none for `-o json`), read from the `-D` debug line.
//!
//! Tests of the printers pass `--use-default-field-masks=false` so they see
//! whole flows; the default mask's effect on compact output is pinned in
//! `compact_output_with_upstreams_default_mask`.

mod common;

use common::{fixture, run, start};
use proto::observer::{GetFlowsRequest, GetFlowsResponse};

/// Expected compact output for the whole fixture (StampMilli, UTC).
const COMPACT: &str = "\
May  1 10:00:01.007: default/xwing:44916 (ID:1001) -> default/deathstar-6fb5694d48-5hmds:80 (ID:1002) Policy denied DROPPED (TCP Flags: SYN)
May  1 10:00:02.014: default/tiefighter:51000 (ID:1003) -> default/deathstar-6fb5694d48-5hmds:80 (ID:1002) to-endpoint FORWARDED (TCP Flags: SYN)
May  1 10:00:03.021: default/tiefighter:51000 (ID:1003) <- default/deathstar-6fb5694d48-5hmds:80 (ID:1002) from-endpoint FORWARDED (TCP Flags: SYN, ACK)
May  1 10:00:04.028: default/xwing:40000 (ID:1001) -> www.google.com:443 (world) to-stack FORWARDED (TCP Flags: SYN)
May  1 10:00:05.035: default/xwing:5353 (ID:1001) -> kube-system/coredns-5d78c9869d-abcde:53 (ID:1020) to-endpoint FORWARDED (UDP)
May  1 10:00:06.042: fd00::1 (host) <> fd00::2 (remote-node) to-host FORWARDED (ICMPv6 EchoRequest)
May  1 10:00:07.049: default/xwing:44917 (ID:1001) <> default/deathstar-6fb5694d48-5hmds:80 (ID:1002) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)
May  1 10:00:08.056: default/tiefighter (ID:1003) <> default/deathstar-6fb5694d48-5hmds (ID:1002) to-endpoint FORWARDED (ICMPv4 EchoRequest)
May  1 10:00:09.063: telecom/diameter-0:3868 (ID:4242) <> telecom/diameter-1:3868 (ID:4243) to-endpoint FORWARDED (SCTP)
May  1 10:00:10.070: default/xwing:44916 (ID:1001) <- default/deathstar-6fb5694d48-5hmds:80 (ID:1002) from-endpoint FORWARDED (TCP Flags: ACK, FIN)
May  1 10:00:11.077: scanner.example.org:6000 (world) <> default/deathstar-6fb5694d48-5hmds:22 (ID:1002) Policy denied by denylist DROPPED (TCP Flags: SYN)
May  1 10:00:12.084: default/tiefighter:52000 (ID:1003) -> example.com:443 (world) to-network FORWARDED (IP Trace ID: 77; )
";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// The fixture responses as the server returns them (node names kept).
fn fixture_responses() -> Vec<GetFlowsResponse> {
    std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// No default field mask: the printers see whole flows.
const NO_MASK: &str = "--use-default-field-masks=false";

#[test]
fn compact_output_matches_upstream_for_the_fixture() {
    let s = start();
    let r = run(&["observe", "--server", &s.addr, NO_MASK]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, COMPACT);
    assert_eq!(r.stderr, "");
    // `observe flows` is the same command.
    let r = run(&["observe", "flows", "--server", &s.addr, "--all", NO_MASK]);
    assert_eq!(r.stdout, COMPACT);
}

/// Upstream's default mask (Hubble 1.19, `hubble/pkg/defaults.FieldMask`),
/// copied here by hand from upstream's source so that the test checks the
/// CLI against upstream rather than against itself.
const UPSTREAM_DEFAULT_MASK: &[&str] = &[
    "time",
    "verdict",
    "ethernet",
    "IP",
    "l4",
    "source.identity",
    "source.namespace",
    "source.pod_name",
    "destination.identity",
    "destination.namespace",
    "destination.pod_name",
    "Type",
    "node_name",
    "l7",
    "event_type",
    "source_service",
    "destination_service",
    "is_reply",
    "Summary",
    "ip_trace_id",
];

#[test]
fn compact_output_with_upstreams_default_mask() {
    // Upstream's mask has no `source_names`/`destination_names` (so DNS
    // names fall back to addresses) and no `traffic_direction` (so a policy
    // verdict's direction is unknown): upstream prints exactly this against
    // the same server.
    let masked = COMPACT
        .replace("www.google.com:443", "142.250.1.1:443")
        .replace(
            "policy-verdict:none INGRESS DENIED",
            "policy-verdict:none TRAFFIC_DIRECTION_UNKNOWN DENIED",
        )
        .replace("scanner.example.org:6000", "203.0.113.9:6000")
        .replace("example.com:443", "93.184.216.34:443");
    assert_eq!(
        COMPACT
            .lines()
            .zip(masked.lines())
            .filter(|(a, b)| a != b)
            .count(),
        4
    );
    let s = start();
    let r = run(&["observe", "--server", &s.addr]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, masked);
    // The flag without a value, and its old name, mean true.
    for flag in [
        "--use-default-field-masks",
        "--experimental-use-default-field-masks=true",
    ] {
        let r = run(&["observe", "--server", &s.addr, flag]);
        assert_eq!(r.stdout, masked, "{flag}");
    }
}

/// The request `hubble observe ARGS -D` logs as sent.
fn sent_request(args: &[&str]) -> GetFlowsRequest {
    let r = run(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    let prefix = "level=DEBUG msg=\"Sending GetFlows request\" request=";
    let line = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("{args:?}: no request logged in {:?}", r.stderr));
    serde_json::from_str(line).unwrap()
}

fn mask_of(req: &GetFlowsRequest) -> Option<Vec<&str>> {
    req.field_mask
        .as_ref()
        .map(|m| m.paths.iter().map(String::as_str).collect())
}

#[test]
fn request_carries_upstreams_default_field_mask() {
    let s = start();
    let a = s.addr.as_str();
    let want = Some(UPSTREAM_DEFAULT_MASK.to_vec());
    // The default mask is the one place the CLI keeps it.
    assert_eq!(hubble_tui::defaults::FIELD_MASK, UPSTREAM_DEFAULT_MASK);
    for output in ["compact", "dict", "table", "tab"] {
        let req = sent_request(&["observe", "--server", a, "-D", "-o", output]);
        assert_eq!(mask_of(&req), want, "-o {output}");
        let req = sent_request(&["observe", "--server", a, "-D", "-o", output, NO_MASK]);
        assert_eq!(mask_of(&req), None, "-o {output} {NO_MASK}");
    }
    // Our one difference: --print-policy-names also asks for the policy
    // fields it prints (upstream's default mask drops them, so its flag
    // prints nothing unless the mask is off).
    let req = sent_request(&["observe", "--server", a, "-D", "--print-policy-names"]);
    let mut with_names = UPSTREAM_DEFAULT_MASK.to_vec();
    with_names.extend([
        "traffic_direction",
        "policy_match_type",
        "ingress_allowed_by",
        "egress_allowed_by",
        "ingress_denied_by",
        "egress_denied_by",
    ]);
    assert_eq!(mask_of(&req), Some(with_names), "--print-policy-names");
    // JSON sends no default mask, and takes a custom one as given.
    for output in ["json", "jsonpb"] {
        let req = sent_request(&["observe", "--server", a, "-D", "-o", output]);
        assert_eq!(mask_of(&req), None, "-o {output}");
        let req = sent_request(&[
            "observe",
            "--server",
            a,
            "-D",
            "-o",
            output,
            "--field-mask",
            "time,source.pod_name",
            "--field-mask",
            "verdict",
        ]);
        assert_eq!(
            mask_of(&req),
            Some(vec!["time", "source.pod_name", "verdict"]),
            "-o {output}"
        );
    }
    // Legacy JSON is not JSON to upstream's mask logic: it gets the default.
    let r = common::run_cmd(
        common::hubble()
            .env("HUBBLE_COMPAT", "legacy-json-output")
            .args(["observe", "--server", a, "-D", "-o", "json", "--last", "1"]),
    );
    assert!(
        r.stderr.contains(&format!(
            "\"field_mask\":\"{}\"",
            UPSTREAM_DEFAULT_MASK.join(",")
        )),
        "{}",
        r.stderr
    );
    // No `-D`, no request line.
    let r = run(&["observe", "--server", a]);
    assert_eq!(r.stderr, "");
}

#[test]
fn json_output_is_the_jsonpb_of_each_response() {
    let s = start();
    let r = run(&["observe", "--server", &s.addr, "-o", "json", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want: Vec<String> = fixture_responses()
        .iter()
        .map(|res| proto::json::to_hubble_json(res).unwrap())
        .collect();
    assert_eq!(lines(&r.stdout), want);
    let jsonpb = run(&["observe", "--server", &s.addr, "-o", "jsonpb", "--all"]);
    assert_eq!(jsonpb.stdout, r.stdout);
    // Every line parses back to the served response.
    for (line, res) in r.stdout.lines().zip(fixture_responses()) {
        let back: GetFlowsResponse = serde_json::from_str(line).unwrap();
        assert_eq!(back, res);
    }
}

#[test]
fn legacy_json_prints_bare_flows() {
    let s = start();
    let r = common::run_cmd(
        common::hubble()
            .env("HUBBLE_COMPAT", "legacy-json-output")
            .args([
                "observe", "--server", &s.addr, "-o", "json", "--last", "1", NO_MASK,
            ]),
    );
    let last = fixture_responses().pop().unwrap();
    let Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)) = last.response_types
    else {
        panic!("not a flow")
    };
    assert_eq!(
        r.stdout,
        format!("{}\n", proto::json::to_hubble_json(&f).unwrap())
    );
}

#[test]
fn selectors_node_names_and_time_formats() {
    let s = start();
    let r = run(&[
        "observe",
        "--server",
        &s.addr,
        "--last",
        "2",
        "--print-node-name",
        NO_MASK,
    ]);
    assert_eq!(
        lines(&r.stdout),
        [
            "May  1 10:00:11.077 [kind-kind/kind-worker2]: scanner.example.org:6000 (world) <> default/deathstar-6fb5694d48-5hmds:22 (ID:1002) Policy denied by denylist DROPPED (TCP Flags: SYN)",
            "May  1 10:00:12.084 [kind-kind/kind-worker]: default/tiefighter:52000 (ID:1003) -> example.com:443 (world) to-network FORWARDED (IP Trace ID: 77; )",
        ]
    );
    let r = run(&[
        "observe",
        "--server",
        &s.addr,
        "--first",
        "1",
        "--time-format",
        "RFC3339Milli",
        "--numeric",
    ]);
    assert_eq!(
        r.stdout,
        "2024-05-01T10:00:01.007Z: 10.244.1.60:44916 (ID:1001) -> 10.244.1.5:80 (ID:1002) Policy denied DROPPED (TCP Flags: SYN)\n"
    );
    let r = run(&[
        "observe",
        "--server",
        &s.addr,
        "--since",
        "2024-05-01T10:00:05Z",
        "--until",
        "2024-05-01T10:00:06.500Z",
        "--time-format",
        "RFC3339",
    ]);
    assert_eq!(lines(&r.stdout).len(), 2, "{}", r.stdout);
    assert!(r.stdout.starts_with("2024-05-01T10:00:05Z: "));
}

#[test]
fn default_last_is_twenty() {
    // 30 copies of the fixture's first flow: a bare `observe` prints 20.
    let dir = tempfile::tempdir().unwrap();
    let line = std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let path = dir.path().join("many.jsonl");
    std::fs::write(&path, format!("{line}\n").repeat(30)).unwrap();
    let s = common::start_with(&path, 4095);
    let r = run(&["observe", "--server", &s.addr]);
    assert_eq!(lines(&r.stdout).len(), 20);
    let r = run(&["observe", "--server", &s.addr, "--all"]);
    assert_eq!(lines(&r.stdout).len(), 30);
    let r = run(&["observe", "--input-file", path.to_str().unwrap()]);
    assert_eq!(
        lines(&r.stdout).len(),
        30,
        "--input-file has no default --last"
    );
}

#[test]
fn lost_events_print_in_compact_and_json() {
    let s = start();
    s.observer.push_lost(
        proto::flow::LostEventSource::PerfEventRingBuffer,
        5,
        Some(0),
    );
    let r = run(&["observe", "--server", &s.addr, "--all"]);
    let last = r.stdout.lines().last().unwrap();
    assert!(
        last.ends_with(" EVENTS LOST: PERF_EVENT_RING_BUFFER CPU(0) 5"),
        "{}",
        r.stdout
    );
    let r = run(&["observe", "--server", &s.addr, "--all", "-o", "json"]);
    assert!(
        r.stdout.contains(
            r#"{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"5","cpu":0},"#
        ),
        "{}",
        r.stdout
    );
}

/// Filter flag sets for the server/--input-file comparison.
const FLAG_SETS: &[&[&str]] = &[
    &[],
    &["--verdict", "DROPPED"],
    &["--not", "--namespace", "kube-system"],
    &["--ip", "10.244.1.5", "--port", "80"],
    &["--pod", "default/xwing"],
    &["--from-pod", "default/tiefighter", "--to-fqdn", "*.com"],
    &["--type", "trace:to-endpoint"],
    &["-t", "drop", "-t", "policy-verdict"],
    &["--protocol", "udp", "--protocol", "icmpv6"],
    &["--fqdn", "*.google.com"],
    &["--node-name", "kind-kind/kind-worker2"],
    &["--from-cluster", "prod-east"],
    &["--tcp-flags", "syn,ack"],
    &["--tcp-flags", "fin", "--tcp-flags", "psh"],
    &["--snat-ip", "192.168.1.0/24"],
    &["--encrypted"],
    &["--interface", "eth0"],
    &["-6"],
    &["--identity", "world"],
    &["--workload", "Deployment/deathstar"],
    &["--label", "k8s:org=empire"],
    &["--drop-reason-desc", "POLICY_DENY"],
    &["--traffic-direction", "egress"],
    &["--ip-trace-id", "77"],
    &["--uuid", "f03"],
    &["--service", "kube-system/kube-dns"],
    &["--node-label", "kubernetes.io/os=linux"],
    &[
        "--to-namespace",
        "default",
        "--not",
        "--verdict",
        "FORWARDED",
    ],
    &[
        "--allowlist",
        r#"{"source_pod":["default/xwing"]}"#,
        "--denylist",
        r#"{"verdict":["DROPPED"]}"#,
    ],
    &["--last", "3"],
    &["--first", "2", "--verdict", "FORWARDED"],
    &[
        "--since",
        "2024-05-01T10:00:05Z",
        "--until",
        "2024-05-01T10:00:09Z",
    ],
];

#[test]
fn input_file_selects_what_the_server_selects() {
    let s = start();
    let file = fixture();
    let file = file.to_str().unwrap();
    for flags in FLAG_SETS {
        let mut server_args = vec!["observe", "-o", "json", "--server", &s.addr];
        server_args.extend_from_slice(flags);
        let mut file_args = vec!["observe", "-o", "json", "--input-file", file];
        file_args.extend_from_slice(flags);
        let from_server = run(&server_args);
        let from_file = run(&file_args);
        assert_eq!(from_server.code, 0, "{flags:?}: {}", from_server.stderr);
        assert_eq!(from_file.code, 0, "{flags:?}: {}", from_file.stderr);
        assert_eq!(from_server.stdout, from_file.stdout, "flags {flags:?}");
    }
    // The set is not vacuous: most flag sets select a strict subset.
    let some = run(&["observe", "--input-file", file, "--verdict", "DROPPED"]);
    assert_eq!(lines(&some.stdout).len(), 3);
}

#[test]
fn input_file_from_stdin_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let good = std::fs::read_to_string(fixture()).unwrap();
    std::fs::write(&path, format!("not json\n{good}")).unwrap();
    let r = run(&[
        "observe",
        "--input-file",
        path.to_str().unwrap(),
        "--last",
        "1",
    ]);
    assert_eq!(r.code, 0);
    assert_eq!(lines(&r.stdout), [COMPACT.lines().last().unwrap()]);
    assert!(
        r.stderr.contains("Failed to unmarshal json to flow"),
        "{}",
        r.stderr
    );
    let child = common::hubble()
        .args(["observe", "--input-file", "-", "--verdict", "DROPPED"])
        .stdin(std::fs::File::open(fixture()).unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(child.stdout).unwrap().lines().count(), 3);
}

#[test]
fn dict_and_table_outputs() {
    let s = start();
    let r = run(&[
        "observe", "--server", &s.addr, "--last", "2", "-o", "table", NO_MASK,
    ]);
    assert_eq!(
        r.stdout,
        "TIMESTAMP             SOURCE                     DESTINATION                             TYPE                        VERDICT     SUMMARY\n\
         May  1 10:00:11.077   scanner.example.org:6000   default/deathstar-6fb5694d48-5hmds:22   Policy denied by denylist   DROPPED     TCP Flags: SYN\n\
         May  1 10:00:12.084   default/tiefighter:52000   example.com:443                         to-network                  FORWARDED   IP Trace ID: 77; \n"
    );
    let r = run(&[
        "observe", "--server", &s.addr, "--last", "2", "-o", "dict", NO_MASK,
    ]);
    assert_eq!(
        r.stdout,
        "  TIMESTAMP: May  1 10:00:11.077\n     SOURCE: scanner.example.org:6000\nDESTINATION: default/deathstar-6fb5694d48-5hmds:22\n       TYPE: Policy denied by denylist\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n\
         ------------\n  TIMESTAMP: May  1 10:00:12.084\n     SOURCE: default/tiefighter:52000\nDESTINATION: example.com:443\n       TYPE: to-network\n    VERDICT: FORWARDED\n    SUMMARY: IP Trace ID: 77; \n"
    );
}

#[test]
fn color_always_colours_compact_output() {
    let s = start();
    let r = run(&[
        "observe", "--server", &s.addr, "--last", "1", "--color", "always",
    ]);
    assert!(
        r.stdout.contains("\x1b[32mFORWARDED\x1b[0m"),
        "{:?}",
        r.stdout
    );
    assert!(r.stdout.contains("\x1b[35m(world)\x1b[0m"));
}

#[test]
fn follow_streams_new_flows() {
    let s = start();
    let mut child = common::Killed(Some(
        common::hubble()
            .args(["observe", "--server", &s.addr, "-f", "-o", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The follower starts at the newest entry; push a flow once it is in.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut res = fixture_responses().remove(0);
    if let Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)) =
        res.response_types.take()
    {
        let mut f = f;
        f.uuid = "followed".into();
        s.observer.push_flows([f]);
    }
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a followed flow within 10 s");
    assert!(line.contains(r#""uuid":"followed""#), "{line}");
}

/// A connection to a service as the exporter serves it: the datapath's two
/// trace-sock flows (before and after translation) and the reply from the
/// VIP, in Hubble's JSON form.
const SERVICE_FLOWS: &str = r#"{"flow":{"time":"2024-05-01T10:00:20Z","uuid":"s1","verdict":"TRACED","IP":{"source":"10.244.1.60","destination":"10.96.0.10","ipVersion":"IPv4"},"l4":{"TCP":{"destination_port":80}},"source":{"ID":11,"identity":1001,"namespace":"default","pod_name":"xwing"},"destination":{},"Type":"SOCK","event_type":{"type":7,"sub_type":1},"destination_service":{"name":"deathstar","namespace":"empire"},"sock_xlate_point":"SOCK_XLATE_POINT_PRE_DIRECTION_FWD","socket_cookie":"77","Summary":"TCP"}}
{"flow":{"time":"2024-05-01T10:00:20Z","uuid":"s2","verdict":"TRANSLATED","IP":{"source":"10.244.1.60","destination":"10.244.1.5","ipVersion":"IPv4"},"l4":{"TCP":{"destination_port":8080}},"source":{"ID":11,"identity":1001,"namespace":"default","pod_name":"xwing"},"destination":{"ID":12,"identity":1002,"namespace":"empire","pod_name":"deathstar-1"},"Type":"SOCK","event_type":{"type":7,"sub_type":2},"sock_xlate_point":"SOCK_XLATE_POINT_POST_DIRECTION_FWD","socket_cookie":"77","Summary":"TCP"}}
{"flow":{"time":"2024-05-01T10:00:20.100Z","uuid":"s3","verdict":"FORWARDED","IP":{"source":"10.96.0.10","destination":"10.244.1.60","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":80,"destination_port":40000,"flags":{"SYN":true,"ACK":true}}},"source":{"ID":12,"identity":1002,"namespace":"empire","pod_name":"deathstar-1"},"destination":{"ID":11,"identity":1001,"namespace":"default","pod_name":"xwing"},"Type":"L3_L4","event_type":{"type":4},"trace_observation_point":"TO_ENDPOINT","is_reply":true,"source_service":{"name":"deathstar","namespace":"empire"},"Summary":"TCP Flags: SYN, ACK"}}
"#;

#[test]
fn service_translations_print_and_filter_like_hubble() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("services.jsonl");
    std::fs::write(&path, SERVICE_FLOWS).unwrap();
    let file = path.to_str().unwrap();
    let pre = "May  1 10:00:20.000: default/xwing (ID:1001) <> empire/deathstar:80 (unknown) pre-xlate-fwd TRACED (TCP)";
    let post = "May  1 10:00:20.000: default/xwing (ID:1001) <> empire/deathstar-1:8080 (ID:1002) post-xlate-fwd TRANSLATED (TCP)";
    let reply = "May  1 10:00:20.100: default/xwing:40000 (ID:1001) <- empire/deathstar-1:80 (ID:1002) to-endpoint FORWARDED (TCP Flags: SYN, ACK)";
    for (flags, want) in [
        (&[][..], vec![pre, post, reply]),
        (&["--type", "trace-sock"][..], vec![pre, post]),
        (&["--verdict", "TRANSLATED"][..], vec![post]),
        (&["--to-service", "empire/deathstar"][..], vec![pre]),
        (&["--from-service", "empire/deathstar"][..], vec![reply]),
        (&["--service", "empire/deathstar"][..], vec![pre, reply]),
        (&["--service", "deathstar"][..], vec![]),
    ] {
        let mut args = vec!["observe", "--input-file", file];
        args.extend_from_slice(flags);
        let r = run(&args);
        assert_eq!(r.code, 0, "{flags:?}: {}", r.stderr);
        assert_eq!(lines(&r.stdout), want, "flags {flags:?}");
    }
}

/// `--aggregate-by` over the fixture: counts known by hand from `COMPACT`
/// (default/FORWARDED: flows 2, 3, 4, 5, 8, 10, 12; default/DROPPED: 1
/// and 7; telecom: 9; no namespace: 6 (host) and 11 (world)), the same
/// from the server as from `--input-file`.
#[test]
fn aggregate_by_counts_groups_from_server_and_file() {
    let s = start();
    let file = fixture();
    let file = file.to_str().unwrap();
    let table = "\
SOURCE.NAMESPACE   VERDICT     COUNT   FIRST                  LAST
default            FORWARDED   7       2024-05-01T10:00:02Z   2024-05-01T10:00:12Z
default            DROPPED     2       2024-05-01T10:00:01Z   2024-05-01T10:00:07Z
telecom            FORWARDED   1       2024-05-01T10:00:09Z   2024-05-01T10:00:09Z
                   DROPPED     1       2024-05-01T10:00:11Z   2024-05-01T10:00:11Z
                   FORWARDED   1       2024-05-01T10:00:06Z   2024-05-01T10:00:06Z
";
    let flags = [
        "--aggregate-by",
        "source.namespace,verdict",
        "--time-format",
        "RFC3339",
    ];
    let mut live = vec!["observe", "--server", &s.addr, "--all"];
    live.extend(flags);
    let r = run(&live);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, table);
    let mut from_file = vec!["observe", "--input-file", file];
    from_file.extend(flags);
    assert_eq!(run(&from_file).stdout, table);
    // Filters apply before grouping; `--top` keeps the largest groups.
    let r = run(&[
        "observe",
        "--input-file",
        file,
        "--aggregate-by",
        "source.pod_name",
        "--aggregate-by",
        "destination.pod_name",
        "--verdict",
        "DROPPED",
        "--top",
        "1",
        "-o",
        "table",
    ]);
    assert_eq!(
        r.stdout,
        "SOURCE.POD_NAME   DESTINATION.POD_NAME         COUNT   FIRST                 LAST\n\
         xwing             deathstar-6fb5694d48-5hmds   2       May  1 10:00:01.007   May  1 10:00:07.049\n"
    );
    // JSON: one object per group, the paths in order, then count and times.
    let r = run(&[
        "observe",
        "--server",
        &s.addr,
        "--all",
        "--aggregate-by",
        "source.namespace,destination.pod_name,l4.TCP.destination_port,verdict",
        "--top",
        "2",
        "-o",
        "json",
        "-D",
    ]);
    assert_eq!(
        lines(&r.stdout),
        [
            r#"{"source.namespace":"default","destination.pod_name":"deathstar-6fb5694d48-5hmds","l4.TCP.destination_port":80,"verdict":"DROPPED","count":2,"first":"2024-05-01T10:00:01.007Z","last":"2024-05-01T10:00:07.049Z"}"#,
            r#"{"source.namespace":"default","destination.pod_name":null,"l4.TCP.destination_port":443,"verdict":"FORWARDED","count":2,"first":"2024-05-01T10:00:04.028Z","last":"2024-05-01T10:00:12.084Z"}"#,
        ]
    );
    // Grouping needs whole flows: no default mask is sent for the table.
    let req = sent_request(&[
        "observe",
        "--server",
        &s.addr,
        "-D",
        "--aggregate-by",
        "verdict",
    ]);
    assert_eq!(mask_of(&req), None);
}

/// `--aggregate-by --follow`: a table of the flows so far, redrawn every
/// second (one table after another when stdout is not a terminal).
#[test]
fn aggregate_by_follows_with_a_refreshed_table() {
    let s = start();
    let mut child = common::Killed(Some(
        common::hubble()
            .args([
                "observe",
                "--server",
                &s.addr,
                "-f",
                "--aggregate-by",
                "verdict,source.pod_name",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The follower starts at the newest entry; push flows once it is in.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let flows: Vec<proto::flow::Flow> = fixture_responses()
        .into_iter()
        .take(3)
        .filter_map(|r| match r.response_types {
            Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)) => Some(f),
            _ => None,
        })
        .collect();
    s.observer.push_flows(flows);
    // Tables follow one another; wait for one that has all three flows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut table = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).expect("a table within 10 s");
        if line.is_empty() {
            let rows: Vec<String> = table
                .iter()
                .map(|l: &String| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .collect();
            if rows.len() == 4 {
                assert_eq!(
                    rows,
                    [
                        "VERDICT SOURCE.POD_NAME COUNT",
                        // Equal counts: by the values.
                        "DROPPED xwing 1",
                        "FORWARDED deathstar-6fb5694d48-5hmds 1",
                        "FORWARDED tiefighter 1",
                    ]
                );
                break;
            }
            table.clear();
        } else {
            table.push(line);
        }
    }
}
