//! Every flag conflict and invalid value: the binary prints upstream's kind
//! of message on stderr and exits non-zero, before contacting any server
//! (the server address is unroutable on purpose).

mod common;

use common::run;
use rstest::rstest;

#[rstest]
#[case(&["--from-ip", "1.1.1.1", "--from-namespace", "foo"], "invalid argument \"foo\" for \"--from-namespace\" flag: filters --from-ip and --from-namespace cannot be combined")]
#[case(&["--ip", "1.1.1.1", "--to-fqdn", "a.b"], "invalid argument \"a.b\" for \"--to-fqdn\" flag: filters --to-fqdn and --ip cannot be combined")]
#[case(&["--pod", "a", "--fqdn", "b"], "invalid argument \"b\" for \"--fqdn\" flag: filters --fqdn and --pod cannot be combined")]
#[case(&["-n", "a", "-A"], "invalid argument \"true\" for \"-A, --all-namespaces\" flag: filters --namespace and --all-namespaces cannot be combined")]
#[case(&["--to-pod", "a", "-n", "b"], "invalid argument \"b\" for \"-n, --namespace\" flag: filters --to-pod and --namespace cannot be combined")]
#[case(&["--to-service", "a", "--all-namespaces"], "invalid argument \"true\" for \"-A, --all-namespaces\" flag: filters --to-service and --all-namespaces cannot be combined")]
#[case(&["-l", "a=b", "--from-label", "c=d"], "invalid argument \"c=d\" for \"--from-label\" flag: filters --label and --from-label cannot be combined")]
#[case(&["--service", "a", "--to-service", "b"], "invalid argument \"b\" for \"--to-service\" flag: filters --service and --to-service cannot be combined")]
#[case(&["--port", "80", "--to-port", "81"], "invalid argument \"81\" for \"--to-port\" flag: filters --port and --to-port cannot be combined")]
#[case(&["--identity", "1", "--from-identity", "2"], "invalid argument \"2\" for \"--from-identity\" flag: filters --identity and --from-identity cannot be combined")]
#[case(&["--workload", "a", "--to-workload", "b"], "invalid argument \"b\" for \"--to-workload\" flag: filters --workload and --to-workload cannot be combined")]
#[case(&["--encrypted", "--unencrypted"], "invalid argument \"true\" for \"--unencrypted\" flag: filters --encrypted and --unencrypted cannot be combined")]
#[case(&["--not", "--not", "--ip", "1.1.1.1"], "invalid argument \"true\" for \"--not\" flag: consecutive --not statements")]
#[case(&["--verdict", "DROPPED", "--not"], "trailing --not found in the arguments")]
#[case(&["--verdict", "dropped"], "invalid argument \"dropped\" for \"--verdict\" flag: invalid --verdict value: dropped")]
#[case(&["--drop-reason-desc", "NOPE"], "invalid argument \"NOPE\" for \"--drop-reason-desc\" flag: invalid --drop-reason-desc value: NOPE")]
#[case(&["-t", "bogus"], "invalid argument \"bogus\" for \"-t, --type\" flag: unable to parse type 'bogus', not a known type name and unable to parse as numeric value: strconv.ParseUint: parsing \"bogus\": invalid syntax")]
#[case(&["--identity", "nobody"], "invalid argument \"nobody\" for \"--identity\" flag: invalid security identity, expected one of [host world unmanaged health init remote-node kube-apiserver ingress world-ipv4 world-ipv6] or a numeric value")]
#[case(&["--tcp-flags", "syn,nope"], "invalid argument \"syn,nope\" for \"--tcp-flags\" flag: unknown tcp flag: nope")]
#[case(&["--traffic-direction", "up"], "invalid argument \"up\" for \"--traffic-direction\" flag: up: invalid traffic direction, expected ingress or egress")]
#[case(&["--http-header", "x"], "invalid argument \"x\" for \"--http-header\" flag: invalid http-header value \"x\", expected name:value")]
#[case(&["--ip-trace-id", "0"], "invalid argument \"0\" for \"--ip-trace-id\" flag: invalid --ip-trace-id value; must be greater than 0")]
#[case(&["--pod", "bar/x", "-n", "foo"], "invalid argument \"foo\" for \"-n, --namespace\" flag: namespace conflict: \"foo\" does not contain \"bar/x\"")]
#[case(&["-o", "table", "-f"], "table output format is not compatible with follow mode")]
#[case(&["-o", "yaml"], "invalid output format: yaml")]
#[case(&["--field-mask", "time"], "compact output format is not compatible with custom field mask")]
#[case(&["--aggregate-by", "bogus"], "invalid --aggregate-by: proto: invalid path \"bogus\" for message \"flow.Flow\"")]
#[case(&["--aggregate-by", "source.bogus"], "invalid --aggregate-by: proto: invalid path \"source.bogus\" for message \"flow.Flow\"")]
#[case(&["--aggregate-by", "verdict", "--follow", "-o", "json"], "--aggregate-by with --follow prints a table redrawn every second")]
#[case(&["--aggregate-by", "verdict", "-o", "dict"], "--aggregate-by prints a table or JSON")]
#[case(&["--top", "3"], "--top needs --aggregate-by")]
#[case(&["-o", "json", "--field-mask", "time,invalid-field"], "failed to construct field mask: proto: invalid path \"invalid-field\" for message \"flow.Flow\"")]
#[case(&["--first", "2", "--last", "3"], "cannot set both --first and --last")]
#[case(&["--first", "2", "--all"], "cannot set both --first and --all")]
#[case(&["--first", "2", "-f"], "cannot set both --first and --follow")]
#[case(&["--last", "2", "--all"], "cannot set both --last and --all")]
#[case(&["--since", "yesterday"], "failed to parse the since time: failed to convert yesterday to time")]
#[case(&["--until", "1h43"], "failed to parse the until time: failed to convert 1h43 to time")]
#[case(&["--allowlist", "{\"invalid\":[\"filters\"]}"], "invalid --allowlist flag: failed to decode '{\"invalid\":[\"filters\"]}': unknown field \"invalid\"")]
#[case(&["--denylist", "{nope"], "invalid --denylist flag: failed to decode '{nope': ")]
#[case(&["--tls-client-cert-file", "c.pem"], "certificate and private key are both required, but only one was provided")]
#[case(&["--tls-client-cert-file", "c.pem", "--tls-client-key-file", "k.pem"], "transport layer security required")]
#[case(&["--timeout", "soon"], "invalid argument \"soon\" for \"--timeout\" flag: time: invalid duration \"soon\"")]
#[case(&["--last", "many"], "invalid value 'many' for '--last <uint>'")]
#[case(&["--bogus"], "unexpected argument '--bogus'")]
fn observe_rejects(#[case] args: &[&str], #[case] want: &str) {
    let mut all = vec!["observe", "--server", "192.0.2.1:9", "--timeout", "1s"];
    all.extend_from_slice(args);
    let r = run(&all);
    assert_eq!(
        r.code, 1,
        "{args:?}: stdout {:?} stderr {:?}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains(want),
        "{args:?}: stderr {:?} does not contain {want:?}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}

#[rstest]
#[case(&["status", "-o", "yaml"], "invalid output format: yaml")]
#[case(&["list", "nodes", "-o", "yaml"], "unknown output format: yaml")]
#[case(&["list", "namespaces", "-o", "csv"], "unknown output format: csv")]
#[case(&["config", "set", "nope", "1"], "unknown config key \"nope\"")]
#[case(&["config", "set", "timeout", "soon"], "timeout: time: invalid duration \"soon\"")]
#[case(&["status", "--server", "127.0.0.1:1"], "failed to connect to '127.0.0.1:1'")]
#[case(&["observe", "--server", "127.0.0.1:1"], "Connection refused")]
#[case(&["observe", "--input-file", "/nonexistent/flows.json"], "open /nonexistent/flows.json")]
#[case(&["observe", "--input-file", "/dev/null", "--cel-expression", "true"], "CEL expressions are not supported")]
#[case(&["observe", "-P"], "--port-forward is not supported")]
fn other_commands_reject(#[case] args: &[&str], #[case] want: &str) {
    let r = run(args);
    assert_eq!(r.code, 1, "{args:?}: {:?}", r.stderr);
    assert!(r.stderr.contains(want), "{args:?}: {:?}", r.stderr);
}

#[test]
fn help_and_version_exit_zero() {
    let r = run(&["observe", "--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--from-namespace"));
    assert!(r.stdout.contains("Filters Flags"));
    let r = run(&["--version"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "hubble v0.1.0"));
    let r = run(&["version"]);
    assert!(
        r.stdout
            .starts_with("hubble v0.1.0 compiled with rustc on ")
    );
}

#[test]
fn print_raw_filters_needs_no_server() {
    let r = run(&[
        "observe",
        "--not",
        "--namespace",
        "kube-system",
        "--print-raw-filters",
    ]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "denylist:\n    - '{\"source_pod\":[\"kube-system/\"]}'\n    - '{\"destination_pod\":[\"kube-system/\"]}'\n"
    );
    let r = run(&[
        "observe",
        "--verdict",
        "DROPPED",
        "--verdict",
        "ERROR",
        "--print-raw-filters",
    ]);
    assert_eq!(
        r.stdout,
        "allowlist:\n    - '{\"verdict\":[\"DROPPED\",\"ERROR\"]}'\n"
    );
}
