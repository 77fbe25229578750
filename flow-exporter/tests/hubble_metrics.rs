//! `flow-exporter --metrics` as the dashboards use it: the exporter started
//! on the synthetic source with the string in dashboards/README.md serves
//! every family with the context labels the dashboard queries group by;
//! and a bad list stops the start naming what is wrong.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `--metrics` argument of dashboards/README.md (the Prometheus test
/// starts the cluster's exporters with it).
const DASHBOARD_METRICS: &str = "flow:sourceContext=namespace;destinationContext=namespace drop:sourceContext=pod;destinationContext=pod;labelsContext=source_namespace,destination_namespace tcp port-distribution icmp policy:sourceContext=app|workload-name|pod|reserved-identity;destinationContext=app|workload-name|pod|reserved-identity;labelsContext=source_namespace,destination_namespace flows-to-world";

/// Kills the process when dropped, also when the test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn the_dashboard_metrics_are_served_with_their_labels() {
    let (grpc, metrics) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_flow-exporter"))
        .args(["--synthetic", "--rate", "2000", "--node-name", "hm-test"])
        .arg("--listen-address")
        .arg(format!("127.0.0.1:{grpc}"))
        .arg("--metrics-address")
        .arg(format!("127.0.0.1:{metrics}"))
        .args(["--metrics", DASHBOARD_METRICS])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Killed(child);
    // Each family and the labels a dashboard query groups by.
    let want: [(&str, &[&str]); 7] = [
        (
            "hubble_flows_processed_total{",
            &[
                "protocol=",
                "type=",
                "subtype=",
                "verdict=",
                "source=",
                "destination=",
            ],
        ),
        (
            "hubble_drop_total{",
            &[
                "source_namespace=",
                "destination_namespace=",
                "source=",
                "destination=",
                "reason=",
                "protocol=",
            ],
        ),
        ("hubble_tcp_flags_total{", &["flag=", "family="]),
        ("hubble_port_distribution_total{", &["protocol=", "port="]),
        ("hubble_icmp_total{", &["family=", "type="]),
        (
            "hubble_policy_verdicts_total{",
            &[
                "direction=",
                "match=",
                "action=",
                "source_namespace=",
                "destination_namespace=",
                "source=",
                "destination=",
            ],
        ),
        ("hubble_flows_to_world_total{", &["protocol=", "verdict="]),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    loop {
        if let Some(text) = scrape(metrics) {
            let missing: Vec<&str> = want
                .iter()
                .filter(|(name, labels)| {
                    !text
                        .lines()
                        .any(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
                })
                .map(|(name, _)| *name)
                .collect();
            if missing.is_empty() {
                // Namespaces as sources and destinations, pods as drop
                // context, reserved identities as policy fallbacks.
                assert!(text.contains(r#"source="default""#), "{text}");
                assert!(
                    text.lines().any(|l| l.starts_with("hubble_drop_total{")
                        && l.contains(r#"destination="default/deathstar-"#)),
                    "{text}"
                );
                assert!(
                    text.lines()
                        .any(|l| l.starts_with("hubble_policy_verdicts_total{")
                            && l.contains(r#"source_namespace="default""#)),
                    "{text}"
                );
                return;
            }
            last = format!("missing {missing:?} in\n{text}");
        }
        assert!(Instant::now() < deadline, "{last}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_unknown_metric_or_context_stops_the_start() {
    for (list, want) in [
        (
            "flow dropped",
            r#"unknown metric "dropped" in --metrics; valid metrics: flow, drop, tcp, port-distribution, icmp, policy, flows-to-world"#,
        ),
        (
            "drop:sourceContext=podname",
            r#"unknown context "podname" in drop:sourceContext; valid contexts: identity, namespace, pod, pod-short, pod-name, dns, ip, reserved-identity, workload, workload-name, app"#,
        ),
        (
            "httpV2:exemplars=true",
            r#"metric "httpV2" needs L7 visibility"#,
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_flow-exporter"))
            .args([
                "--synthetic",
                "--metrics-address",
                "off",
                "--node-name",
                "hm-bad",
            ])
            .args(["--listen-address", "127.0.0.1:0", "--metrics", list])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{list}: started");
        assert!(stderr.contains("--metrics"), "{list}: {stderr}");
        assert!(stderr.contains(want), "{list}: {stderr}");
    }
}
