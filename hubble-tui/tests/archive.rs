//! `hubble observe --archive DIR`: the fixture's flows written by the
//! archiver's writer, then queried with the same flags from the archive and
//! from a live server holding the same flows. Outputs must be identical.

mod common;

use std::sync::Arc;

use archiver::storage::LocalDir;
use archiver::writer::{ArchiveWriter, WriterOptions};
use flow_exporter::replay::{self, ReplayEvent};

fn archive_fixture(dir: &std::path::Path) {
    let storage = Arc::new(LocalDir::new(dir).unwrap());
    let mut w = ArchiveWriter::new(
        storage,
        WriterOptions {
            file_rows: 5,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for ev in replay::load(&common::fixture()).unwrap().events {
        if let ReplayEvent::Flow(f) = ev {
            w.append(&f).unwrap();
        }
    }
    w.finish().unwrap();
}

#[test]
fn archive_answers_like_the_live_server() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let archive = dir.path().to_str().unwrap().to_owned();
    let cases: &[&[&str]] = &[
        &["--all", "-o", "json"],
        &["--all", "-o", "json", "--verdict", "DROPPED"],
        &[
            "--all", "-o", "json", "--pod", "xwing", "--not", "--type", "drop",
        ],
        &[
            "--all",
            "-o",
            "json",
            "--since",
            "2024-05-01T10:00:03Z",
            "--until",
            "2024-05-01T10:00:09Z",
        ],
        &["--last", "3", "-o", "json", "--namespace", "default"],
        &["--first", "2", "-o", "json", "--protocol", "tcp"],
        &[
            "--all",
            "-o",
            "compact",
            "--time-format",
            "RFC3339Nano",
            "--to-port",
            "443",
        ],
        &[
            "--all",
            "-o",
            "json",
            "--from-label",
            "org=empire",
            "--to-fqdn",
            "*.com",
        ],
        // Grouped from the archive's flows as from the server's.
        &[
            "--all",
            "--aggregate-by",
            "source.namespace,destination.pod_name,verdict",
        ],
    ];
    for flags in cases {
        // The archive, like `--input-file` (and upstream's file input),
        // prints whole flows; the live server applies the default field
        // mask, so it is switched off for the comparison.
        let mut live = vec![
            "observe",
            "--server",
            server.addr.as_str(),
            "--use-default-field-masks=false",
        ];
        live.extend_from_slice(flags);
        let mut hist = vec!["observe", "--archive", archive.as_str()];
        hist.extend_from_slice(flags);
        let (a, b) = (common::run(&live), common::run(&hist));
        assert_eq!(a.code, 0, "{flags:?}: {}", a.stderr);
        assert_eq!(b.code, 0, "{flags:?}: {}", b.stderr);
        assert!(
            !a.stdout.is_empty() || flags.contains(&"--to-fqdn"),
            "{flags:?} selected nothing live"
        );
        assert_eq!(b.stdout, a.stdout, "{flags:?}");
    }
    let r = common::run(&["observe", "--archive", &archive, "--follow"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("--follow cannot be used with --archive"),
        "{}",
        r.stderr
    );
    let r = common::run(&["observe", "--archive", "/nonexistent/archive"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
}

/// Policy names survive the archive: `--print-policy-names` on archived
/// policy verdicts prints them as on live ones.
#[test]
fn archived_verdicts_keep_their_policy_names() {
    use proto::flow::{CiliumEventType, Flow, Policy, TrafficDirection, Verdict};
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalDir::new(dir.path()).unwrap());
    let mut w = ArchiveWriter::new(storage, WriterOptions::default()).unwrap();
    let policy = |name: &str| Policy {
        name: name.into(),
        namespace: "default".into(),
        kind: "CiliumNetworkPolicy".into(),
        revision: 3,
        ..Default::default()
    };
    let verdict = |v: Verdict, secs: i64| Flow {
        time: Some(proto::wkt::Timestamp::from_unix_nanos(
            (1_714_557_600 + secs) as i128 * 1_000_000_000,
        )),
        verdict: v as i32,
        event_type: Some(CiliumEventType {
            r#type: 5,
            sub_type: 0,
        }),
        traffic_direction: TrafficDirection::Ingress as i32,
        node_name: "k8s1".into(),
        ..Default::default()
    };
    let mut allowed = verdict(Verdict::Forwarded, 1);
    allowed.ingress_allowed_by = vec![policy("rule1")];
    let mut denied = verdict(Verdict::Dropped, 2);
    denied.ingress_denied_by = vec![policy("deny-xwing-80")];
    let default_deny = verdict(Verdict::Dropped, 3);
    for f in [&allowed, &denied, &default_deny] {
        w.append(f).unwrap();
    }
    w.finish().unwrap();
    let archive = dir.path().to_str().unwrap();
    let r = common::run(&[
        "observe",
        "--archive",
        archive,
        "--all",
        "--print-policy-names",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[0].contains("INGRESS ALLOWED BY rule1 (CiliumNetworkPolicy)"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].contains("INGRESS DENIED BY deny-xwing-80 (CiliumNetworkPolicy)"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].contains("INGRESS DENIED") && !lines[2].contains(" BY "),
        "{}",
        r.stdout
    );
    let r = common::run(&["observe", "--archive", archive, "--all", "-o", "json"]);
    assert!(
        r.stdout.contains(r#""ingress_denied_by":[{"#),
        "{}",
        r.stdout
    );
}

/// `--aggregate-by` over an archive is grouped from the Parquet columns
/// (no "decoding" line under `-D`) and prints exactly what the live server's
/// decoded flows give: several field sets, filters, `--top`, table and JSON.
/// A path without a column falls back to decoding, with the same result.
#[test]
fn archive_aggregation_from_columns_matches_decoded_flows() {
    let server = common::start();
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let archive = dir.path().to_str().unwrap().to_owned();
    let by = |p: &'static str| ["--aggregate-by", p];
    let mut cases: Vec<(Vec<&str>, bool)> = Vec::new();
    for fields in [
        "source.namespace,source.pod_name,destination.pod_name,l4.TCP.destination_port,verdict",
        "verdict,drop_reason_desc",
        "Type,node_name,traffic_direction,is_reply",
        "source.identity,destination.identity,l4.UDP.destination_port",
        "IP.source,IP.destination,IP.ipVersion,event_type.type,event_type.sub_type",
    ] {
        for filter in [
            &[][..],
            &["--verdict", "DROPPED"][..],
            &["--namespace", "default", "--not", "--to-port", "53"][..],
            &["--pod", "xwing"][..],
            &["--protocol", "tcp", "--type", "trace"][..],
            &["--from-identity", "5", "--node-name", "replay"][..],
            &[
                "--since",
                "2024-05-01T10:00:03Z",
                "--until",
                "2024-05-01T10:00:09Z",
            ][..],
        ] {
            let mut f = vec!["--all"];
            f.extend(by(fields));
            f.extend_from_slice(filter);
            cases.push((f, true));
        }
    }
    cases.push((
        vec![
            "--last",
            "4",
            "--aggregate-by",
            "verdict,source.pod_name",
            "-o",
            "json",
        ],
        true,
    ));
    cases.push((
        vec![
            "--all",
            "--aggregate-by",
            "source.pod_name",
            "--top",
            "2",
            "-o",
            "json",
        ],
        true,
    ));
    cases.push((
        vec![
            "--first",
            "5",
            "--aggregate-by",
            "destination.pod_name",
            "--top",
            "1",
        ],
        true,
    ));
    // No column: decoded.
    cases.push((vec!["--all", "--aggregate-by", "l7.type,verdict"], false));
    cases.push((
        vec!["--all", "--aggregate-by", "verdict", "--to-fqdn", "*.com"],
        false,
    ));
    let mut nonempty = 0;
    for (flags, columnar) in &cases {
        let mut live = vec![
            "observe",
            "--server",
            server.addr.as_str(),
            "--use-default-field-masks=false",
        ];
        live.extend_from_slice(flags);
        let mut hist = vec!["observe", "-D", "--archive", archive.as_str()];
        hist.extend_from_slice(flags);
        let (a, b) = (common::run(&live), common::run(&hist));
        assert_eq!(a.code, 0, "{flags:?}: {}", a.stderr);
        assert_eq!(b.code, 0, "{flags:?}: {}", b.stderr);
        assert_eq!(b.stdout, a.stdout, "{flags:?}");
        nonempty += usize::from(a.stdout.lines().count() > 1);
        assert_eq!(
            !b.stderr.contains("aggregating by decoding each flow"),
            *columnar,
            "{flags:?}: {}",
            b.stderr
        );
    }
    assert!(
        nonempty > 30,
        "{nonempty} of {} cases grouped something",
        cases.len()
    );
}

/// A truncated and an empty file are skipped with a warning naming each
/// and a count; the newest flows in intact files are still printed. Links
/// looping back into the archive or `/proc/self` do not hang.
#[test]
fn archive_survives_corrupt_files_and_link_loops() {
    let dir = tempfile::tempdir().unwrap();
    archive_fixture(dir.path());
    let archive = dir.path().to_str().unwrap().to_owned();
    let all = common::run(&["observe", "--archive", &archive, "--all", "-o", "json"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let files = archiver::read::Archive::open(&archive)
        .unwrap()
        .files()
        .unwrap();
    assert!(files.len() >= 3, "{files:?}");
    // The newest file truncated, the oldest emptied.
    let (newest, oldest) = (files[files.len() - 1].clone(), files[0].clone());
    let p = dir.path().join(&newest);
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::write(dir.path().join(&oldest), b"").unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();

    let rest = common::run(&["observe", "--archive", &archive, "--all", "-o", "json"]);
    assert_eq!(rest.code, 0, "{}", rest.stderr);
    assert!(rest.stdout.lines().count() < all.stdout.lines().count());
    for f in [&newest, &oldest] {
        let warning = format!("skipped unreadable archive file {f}");
        assert!(rest.stderr.contains(&warning), "{}", rest.stderr);
    }
    let count = "2 archive file(s) unreadable and skipped";
    assert!(rest.stderr.contains(count), "{}", rest.stderr);
    assert!(
        rest.stderr.contains("skipped symbolic link loop"),
        "{}",
        rest.stderr
    );
    // `--last 2`: the newest flows of the intact files.
    let r = common::run(&[
        "observe",
        "--archive",
        &archive,
        "--last",
        "2",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want: Vec<&str> = rest.stdout.lines().rev().take(2).collect();
    let got: Vec<&str> = r.stdout.lines().rev().collect();
    assert_eq!(got, want);
    let warning = format!("skipped unreadable archive file {newest}");
    assert!(r.stderr.contains(&warning), "{}", r.stderr);
    let r = common::run(&[
        "observe",
        "--archive",
        &archive,
        "--all",
        "--aggregate-by",
        "verdict",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(count), "{}", r.stderr);

    let r = common::run(&["observe", "--archive", "/proc/self", "--all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

/// `observe --archive` formats compact and JSON lines on the reading
/// threads and writes them while later row groups are read: its output is
/// byte for byte the printer's over the decoding path's flows, for every
/// output form and printer option, over the fixture and a synthetic mix
/// (fields stripped, HTML and terminal escapes, ties, row groups
/// overlapping in time so the lines are merged, not only concatenated).
#[test]
fn archive_output_is_the_printers_over_the_decoded_flows() {
    use archiver::read::{Archive, Query};
    use flow_parser::{Enricher, Parser, Synthetic};
    use hubble_tui::gotime::TimeFormat;
    use hubble_tui::printer::{Options, Output, Printer};
    use proto::observer::{GetFlowsResponse, get_flows_response::ResponseTypes};
    use proto::wkt::Timestamp;

    let mut flows: Vec<proto::flow::Flow> = replay::load(&common::fixture())
        .unwrap()
        .events
        .into_iter()
        .filter_map(|e| match e {
            ReplayEvent::Flow(f) => Some(f),
            _ => None,
        })
        .collect();
    let mut g = Synthetic::new(3);
    let mut p = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let mut raw = Vec::new();
    let base = 1_714_557_600; // 2024-05-01T10:00:00Z
    let mut i = 0i64;
    while i < 3000 {
        g.next_event(&mut raw);
        let Ok(mut f) = p.decode(&raw, &std::time::UNIX_EPOCH) else {
            continue;
        };
        // Back and forth within two hours, several flows per instant.
        f.time = Some(Timestamp {
            seconds: base + (i * 7919) % 7200,
            nanos: ((i % 3) * 1000) as i32,
        });
        match i % 13 {
            0 => f.source = None,
            1 => f.l4 = None,
            2 => f.is_reply = None,
            3 => f.summary = "a <b> & \u{2028} \x1b[31mred\r".into(),
            4 => f.node_name = format!("node-{}", i % 3),
            5 => f.destination_names = vec!["<evil>.example.com".into()],
            _ => {}
        }
        flows.push(f);
        i += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalDir::new(dir.path()).unwrap());
    let mut w = ArchiveWriter::new(
        storage.clone(),
        WriterOptions {
            file_rows: 700,
            row_group_rows: 90,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    for f in &flows {
        w.append(f).unwrap();
    }
    w.finish().unwrap();
    let archive = Archive::new(storage);
    let path = dir.path().to_str().unwrap().to_owned();

    let opts = |output, time_format, node_name, color| Options {
        output,
        time_format,
        color,
        node_name,
        ..Options::default()
    };
    let milli = TimeFormat::from_name("StampMilli");
    let nano = TimeFormat::from_name("RFC3339Nano");
    let cases: Vec<(Vec<&str>, Options, bool)> = vec![
        (
            vec!["-o", "json"],
            opts(Output::JsonPb, milli, false, false),
            false,
        ),
        (
            vec!["-o", "jsonpb"],
            opts(Output::JsonPb, milli, false, false),
            false,
        ),
        (
            vec!["-o", "json"],
            opts(Output::JsonLegacy, milli, false, false),
            true,
        ),
        (
            vec!["-o", "compact"],
            opts(Output::Compact, milli, false, false),
            false,
        ),
        (
            vec![
                "-o",
                "compact",
                "--time-format",
                "RFC3339Nano",
                "--print-node-name",
            ],
            opts(Output::Compact, nano, true, false),
            false,
        ),
        (
            vec!["-o", "compact", "--color", "always"],
            opts(Output::Compact, milli, false, true),
            false,
        ),
        (
            vec!["-o", "dict"],
            opts(Output::Dict, milli, false, false),
            false,
        ),
        (
            vec!["-o", "table"],
            opts(Output::Table, milli, false, false),
            false,
        ),
    ];
    let windows: &[&[&str]] = &[
        &["--all"],
        &["--all", "--verdict", "DROPPED"],
        &[
            "--since",
            "2024-05-01T10:30:00Z",
            "--until",
            "2024-05-01T11:15:00Z",
            "--all",
        ],
        &["--last", "25"],
    ];
    for (flags, o, legacy) in &cases {
        for window in windows {
            let mut args = vec!["observe", "--archive", path.as_str()];
            args.extend_from_slice(window);
            args.extend_from_slice(flags);
            let mut cmd = common::hubble();
            if *legacy {
                cmd.env("HUBBLE_COMPAT", "legacy-json-output");
            }
            // (`output` reads stdout while the command runs: megabytes.)
            let got = cmd
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert!(
                got.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&got.stderr)
            );

            // The reference: the same request's query, decoded row by row,
            // printed one response at a time.
            let req = request_of(window);
            let (want_flows, _) = archive.query_decoded(&Query::from(&req)).unwrap();
            assert!(!want_flows.is_empty(), "{window:?}");
            let mut out = Vec::new();
            let mut printer = Printer::new(o.clone(), &mut out, std::io::sink());
            for f in want_flows {
                let r = GetFlowsResponse {
                    node_name: f.node_name.clone(),
                    time: f.time,
                    response_types: Some(ResponseTypes::Flow(f)),
                };
                printer.write_response(&r).unwrap();
            }
            printer.close().unwrap();
            drop(printer);
            assert!(
                got.stdout == out,
                "{args:?} (legacy {legacy}): output differs"
            );
        }
    }

    // `| head -1`: the reader goes away after one line; the command ends
    // quietly, as when printing flow by flow.
    for output in ["json", "compact"] {
        use std::io::BufRead as _;
        let mut child = common::hubble()
            .args(["observe", "--archive", path.as_str(), "--all", "-o", output])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        // (The reader is dropped: the pipe is closed.)
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "-o {output}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The `GetFlowsRequest` the window flags of the test above send.
fn request_of(window: &[&str]) -> proto::observer::GetFlowsRequest {
    use proto::flow::{FlowFilter, Verdict};
    use proto::wkt::Timestamp;
    let at = |s: &str| {
        let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
        Timestamp {
            seconds: t.timestamp(),
            nanos: 0,
        }
    };
    let mut req = proto::observer::GetFlowsRequest {
        number: u64::MAX,
        ..Default::default()
    };
    let mut it = window.iter();
    while let Some(flag) = it.next() {
        match *flag {
            "--all" => req.number = u64::MAX,
            "--verdict" => {
                it.next();
                req.whitelist = vec![FlowFilter {
                    verdict: vec![Verdict::Dropped as i32],
                    ..Default::default()
                }];
            }
            "--since" => req.since = Some(at(it.next().unwrap())),
            "--until" => req.until = Some(at(it.next().unwrap())),
            "--last" => req.number = it.next().unwrap().parse().unwrap(),
            other => panic!("unexpected flag {other}"),
        }
    }
    req
}
