//! The real `flow-exporter` binary serving `testdata/flows.jsonl` with
//! `--replay FILE --ring-capacity 8191 --listen-address 127.0.0.1:PORT`, queried
//! over gRPC with the FlowFilters that `hubble observe` builds from its flags
//! (either-side flags become a [left, right] pair; `--not` goes to the
//! blacklist). One table per filter dimension; each row is the flags it
//! stands for and the flows Hubble's semantics select.
//!
//! Fixture flows (uuid: what it is):
//! f01 xwing→deathstar TCP/80 SYN DROPPED POLICY_DENIED (drop event)
//! f02 tiefighter→deathstar TCP/80 SYN FORWARDED to-endpoint, dst svc default/deathstar
//! f03 deathstar→tiefighter SYN-ACK reply from-endpoint, src svc default/deathstar
//! f04 xwing→world 142.250.1.1:443 SYN to-stack, dst name www.google.com (worker2)
//! f05 xwing→kube-system/coredns UDP/53, dst svc kube-system/kube-dns
//! f06 host fd00::1 → remote-node fd00::2 ICMPv6 echo (control-plane)
//! f07 xwing→deathstar policy-verdict DROPPED
//! f08 tiefighter→deathstar ICMPv4 echo
//! f09 prod-east telecom/diameter-0 → prod-west telecom/diameter-1 SCTP, node prod-east/node-1
//! f10 deathstar→xwing FIN-ACK reply
//! f11 world 203.0.113.9 → deathstar TCP/22 DROPPED POLICY_DENY, src name scanner.example.org (worker2)
//! f12 tiefighter→world 93.184.216.34:443 PSH-ACK to-network, SNAT 192.168.1.10, encrypted, eth0

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proto::flow::{EventTypeFilter, FlowFilter, NetworkInterface, TcpFlags, Workload};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, ServerStatusRequest, get_flows_response::ResponseTypes};
use tonic::transport::Channel;

/// Kills the exporter process when dropped, also when a test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Exporter {
    _child: Killed,
    client: ObserverClient<Channel>,
}

async fn start() -> Exporter {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/flows.jsonl");
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_flow-exporter"))
            .args([
                "--replay",
                file,
                "--ring-capacity",
                "8191",
                "--metrics-address",
                "off",
                "--node-name",
                "replay",
            ])
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flow-exporter"),
    );
    let mut last_err = String::new();
    for _ in 0..100 {
        match ObserverClient::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(mut client) => {
                let s = client
                    .server_status(ServerStatusRequest {})
                    .await
                    .unwrap()
                    .into_inner();
                if s.seen_flows == 12 {
                    return Exporter {
                        _child: child,
                        client,
                    };
                }
            }
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("flow-exporter did not serve the replay file: {last_err}");
}

type Case<'a> = (&'a str, Vec<FlowFilter>, Vec<FlowFilter>, &'a [&'a str]);

async fn check(cases: Vec<Case<'_>>) {
    let mut e = start().await;
    for (flags, whitelist, blacklist, want) in cases {
        let req = GetFlowsRequest {
            number: u64::MAX,
            whitelist,
            blacklist,
            ..Default::default()
        };
        let mut s = match e.client.get_flows(req).await {
            Ok(r) => r.into_inner(),
            Err(err) => panic!("{flags}: {err}"),
        };
        let mut got = Vec::new();
        while let Some(r) = s.message().await.unwrap() {
            if let Some(ResponseTypes::Flow(f)) = r.response_types {
                got.push(f.uuid);
            }
        }
        assert_eq!(got, want, "flags: {flags}");
    }
}

fn f() -> FlowFilter {
    FlowFilter::default()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// The CLI's either-side pair: `left` sets the source field, `right` the
/// destination field, both with the shared fields `common`.
fn either(
    common: FlowFilter,
    left: impl Fn(&mut FlowFilter),
    right: impl Fn(&mut FlowFilter),
) -> Vec<FlowFilter> {
    let mut l = common.clone();
    left(&mut l);
    let mut r = common;
    right(&mut r);
    vec![l, r]
}

#[tokio::test]
async fn selectors_all_first_last() {
    let mut e = start().await;
    let run = |req: GetFlowsRequest| {
        let mut c = e.client.clone();
        async move {
            let mut s = c.get_flows(req).await.unwrap().into_inner();
            let mut got = Vec::new();
            while let Some(r) = s.message().await.unwrap() {
                if let Some(ResponseTypes::Flow(f)) = r.response_types {
                    got.push(f.uuid);
                }
            }
            got
        }
    };
    assert_eq!(
        run(GetFlowsRequest {
            number: 20,
            ..Default::default()
        })
        .await
        .len(),
        12,
        "--last 20"
    );
    assert_eq!(
        run(GetFlowsRequest {
            number: 2,
            ..Default::default()
        })
        .await,
        ["f11", "f12"],
        "--last 2"
    );
    assert_eq!(
        run(GetFlowsRequest {
            number: 2,
            first: true,
            ..Default::default()
        })
        .await,
        ["f01", "f02"],
        "--first 2"
    );
    let since = proto::wkt::Timestamp::parse_rfc3339("2024-05-01T10:00:10Z").unwrap();
    let until = proto::wkt::Timestamp::parse_rfc3339("2024-05-01T10:00:11.5Z").unwrap();
    let req = GetFlowsRequest {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    };
    assert_eq!(run(req).await, ["f10", "f11"], "--since --until");
    // Flows are served exactly as recorded.
    let mut s = e
        .client
        .get_flows(GetFlowsRequest {
            number: 1,
            first: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let r = s.message().await.unwrap().unwrap();
    let line = proto::json::to_hubble_json(&r).unwrap();
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/flows.jsonl"))
            .unwrap();
    let first: serde_json::Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    let served: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(served, first, "every recorded field kept");
}

#[tokio::test]
async fn ip_and_cidr() {
    check(vec![
        (
            "--ip 10.244.1.60",
            either(
                f(),
                |l| l.source_ip = s(&["10.244.1.60"]),
                |r| r.destination_ip = s(&["10.244.1.60"]),
            ),
            vec![],
            &["f01", "f04", "f05", "f07", "f10"],
        ),
        (
            "--from-ip 10.244.1.60",
            vec![FlowFilter {
                source_ip: s(&["10.244.1.60"]),
                ..f()
            }],
            vec![],
            &["f01", "f04", "f05", "f07"],
        ),
        (
            "--to-ip 10.244.0.0/16",
            vec![FlowFilter {
                destination_ip: s(&["10.244.0.0/16"]),
                ..f()
            }],
            vec![],
            &["f01", "f02", "f03", "f05", "f07", "f08", "f10", "f11"],
        ),
        (
            "--ip fd00::/64",
            either(
                f(),
                |l| l.source_ip = s(&["fd00::/64"]),
                |r| r.destination_ip = s(&["fd00::/64"]),
            ),
            vec![],
            &["f06"],
        ),
        (
            "--snat-ip 192.168.1.0/24",
            vec![FlowFilter {
                source_ip_xlated: s(&["192.168.1.0/24"]),
                ..f()
            }],
            vec![],
            &["f12"],
        ),
        (
            "--ipv6",
            vec![FlowFilter {
                ip_version: vec![2],
                ..f()
            }],
            vec![],
            &["f06"],
        ),
        (
            "--ip 10.244.1.60 --port 80",
            either(
                f(),
                |l| {
                    l.source_ip = s(&["10.244.1.60"]);
                    l.source_port = s(&["80"]);
                },
                |r| {
                    r.destination_ip = s(&["10.244.1.60"]);
                    r.destination_port = s(&["80"]);
                },
            ),
            vec![],
            &[],
        ),
    ])
    .await;
}

#[tokio::test]
async fn pods_namespaces_and_not() {
    check(vec![
        (
            "--pod xwing",
            either(
                f(),
                |l| l.source_pod = s(&["xwing"]),
                |r| r.destination_pod = s(&["xwing"]),
            ),
            vec![],
            &["f01", "f04", "f05", "f07", "f10"],
        ),
        (
            "--from-pod default/death",
            vec![FlowFilter {
                source_pod: s(&["default/death"]),
                ..f()
            }],
            vec![],
            &["f03", "f10"],
        ),
        (
            "--namespace kube-system",
            either(
                f(),
                |l| l.source_pod = s(&["kube-system/"]),
                |r| r.destination_pod = s(&["kube-system/"]),
            ),
            vec![],
            &["f05"],
        ),
        (
            "--from-namespace default --to-namespace kube-system",
            vec![FlowFilter {
                source_pod: s(&["default/"]),
                destination_pod: s(&["kube-system/"]),
                ..f()
            }],
            vec![],
            &["f05"],
        ),
        (
            "--not --namespace default",
            vec![],
            either(
                f(),
                |l| l.source_pod = s(&["default/"]),
                |r| r.destination_pod = s(&["default/"]),
            ),
            &["f06", "f09"],
        ),
        (
            "--pod telecom/diameter -A? (any ns) --to-pod /diameter-1",
            vec![FlowFilter {
                destination_pod: s(&["/diameter-1"]),
                ..f()
            }],
            vec![],
            &["f09"],
        ),
        (
            "--from-service default/deathstar",
            vec![FlowFilter {
                source_service: s(&["default/deathstar"]),
                ..f()
            }],
            vec![],
            &["f03"],
        ),
        (
            "--service kube-system/kube-dns",
            either(
                f(),
                |l| l.source_service = s(&["kube-system/kube-dns"]),
                |r| r.destination_service = s(&["kube-system/kube-dns"]),
            ),
            vec![],
            &["f05"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn labels_identities_workloads() {
    check(vec![
        (
            "--from-label org=empire",
            vec![FlowFilter {
                source_label: s(&["org=empire"]),
                ..f()
            }],
            vec![],
            &["f02", "f03", "f08", "f10", "f12"],
        ),
        (
            "--to-label k8s:class in (deathstar,tiefighter)",
            vec![FlowFilter {
                destination_label: s(&["k8s:class in (deathstar,tiefighter)"]),
                ..f()
            }],
            vec![],
            &["f01", "f02", "f03", "f07", "f08", "f11"],
        ),
        (
            "--label reserved:world",
            either(
                f(),
                |l| l.source_label = s(&["reserved:world"]),
                |r| r.destination_label = s(&["reserved:world"]),
            ),
            vec![],
            &["f04", "f11", "f12"],
        ),
        (
            "--from-label !class",
            vec![FlowFilter {
                source_label: s(&["!class"]),
                ..f()
            }],
            vec![],
            &["f06", "f09", "f11"],
        ),
        (
            "--identity world",
            either(
                f(),
                |l| l.source_identity = vec![2],
                |r| r.destination_identity = vec![2],
            ),
            vec![],
            &["f04", "f11", "f12"],
        ),
        (
            "--from-identity 1",
            vec![FlowFilter {
                source_identity: vec![1],
                ..f()
            }],
            vec![],
            &["f06"],
        ),
        (
            "--to-workload Deployment/deathstar",
            vec![FlowFilter {
                destination_workload: vec![Workload {
                    kind: "Deployment".into(),
                    name: "deathstar".into(),
                }],
                ..f()
            }],
            vec![],
            &["f01", "f02", "f07", "f08", "f11"],
        ),
        (
            "--workload coredns",
            either(
                f(),
                |l| {
                    l.source_workload = vec![Workload {
                        name: "coredns".into(),
                        kind: String::new(),
                    }]
                },
                |r| {
                    r.destination_workload = vec![Workload {
                        name: "coredns".into(),
                        kind: String::new(),
                    }]
                },
            ),
            vec![],
            &["f05"],
        ),
        (
            "--from-cluster prod-*",
            vec![FlowFilter {
                source_cluster_name: s(&["prod-*"]),
                ..f()
            }],
            vec![],
            &["f09"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn verdicts_types_reasons_directions() {
    check(vec![
        (
            "--verdict DROPPED",
            vec![FlowFilter {
                verdict: vec![2],
                ..f()
            }],
            vec![],
            &["f01", "f07", "f11"],
        ),
        (
            "--verdict DROPPED --verdict FORWARDED --not --type drop",
            vec![FlowFilter {
                verdict: vec![2, 1],
                ..f()
            }],
            vec![FlowFilter {
                event_type: vec![EventTypeFilter {
                    r#type: 1,
                    ..Default::default()
                }],
                ..f()
            }],
            &[
                "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10", "f12",
            ],
        ),
        (
            "--drop-reason-desc POLICY_DENY",
            vec![FlowFilter {
                drop_reason_desc: vec![181],
                ..f()
            }],
            vec![],
            &["f11"],
        ),
        (
            "--type policy-verdict",
            vec![FlowFilter {
                event_type: vec![EventTypeFilter {
                    r#type: 5,
                    ..Default::default()
                }],
                ..f()
            }],
            vec![],
            &["f07"],
        ),
        (
            "--type trace:from-endpoint",
            vec![FlowFilter {
                event_type: vec![EventTypeFilter {
                    r#type: 4,
                    match_sub_type: true,
                    sub_type: 5,
                }],
                ..f()
            }],
            vec![],
            &["f03", "f10"],
        ),
        (
            "--type drop:133",
            vec![FlowFilter {
                event_type: vec![EventTypeFilter {
                    r#type: 1,
                    match_sub_type: true,
                    sub_type: 133,
                }],
                ..f()
            }],
            vec![],
            &["f01"],
        ),
        (
            "--traffic-direction egress",
            vec![FlowFilter {
                traffic_direction: vec![2],
                ..f()
            }],
            vec![],
            &["f04", "f05"],
        ),
        (
            "--uuid f03",
            vec![FlowFilter {
                uuid: s(&["f03"]),
                ..f()
            }],
            vec![],
            &["f03"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn l4_ports_protocols_flags() {
    check(vec![
        (
            "--protocol udp",
            vec![FlowFilter {
                protocol: s(&["udp"]),
                ..f()
            }],
            vec![],
            &["f05"],
        ),
        (
            "--protocol icmp",
            vec![FlowFilter {
                protocol: s(&["icmp"]),
                ..f()
            }],
            vec![],
            &["f06", "f08"],
        ),
        (
            "--protocol sctp",
            vec![FlowFilter {
                protocol: s(&["sctp"]),
                ..f()
            }],
            vec![],
            &["f09"],
        ),
        (
            "--to-port 443",
            vec![FlowFilter {
                destination_port: s(&["443"]),
                ..f()
            }],
            vec![],
            &["f04", "f12"],
        ),
        (
            "--port 53",
            either(
                f(),
                |l| l.source_port = s(&["53"]),
                |r| r.destination_port = s(&["53"]),
            ),
            vec![],
            &["f05"],
        ),
        (
            "--tcp-flags syn,ack",
            vec![FlowFilter {
                tcp_flags: vec![TcpFlags {
                    syn: true,
                    ack: true,
                    ..Default::default()
                }],
                ..f()
            }],
            vec![],
            &["f03"],
        ),
        (
            "--tcp-flags fin --tcp-flags psh",
            vec![FlowFilter {
                tcp_flags: vec![
                    TcpFlags {
                        fin: true,
                        ..Default::default()
                    },
                    TcpFlags {
                        psh: true,
                        ..Default::default()
                    },
                ],
                ..f()
            }],
            vec![],
            &["f10", "f12"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn names_nodes_interfaces_misc() {
    check(vec![
        (
            "--to-fqdn *.google.com",
            vec![FlowFilter {
                destination_fqdn: s(&["*.google.com"]),
                ..f()
            }],
            vec![],
            &["f04"],
        ),
        (
            "--fqdn example.com",
            either(
                f(),
                |l| l.source_fqdn = s(&["example.com"]),
                |r| r.destination_fqdn = s(&["example.com"]),
            ),
            vec![],
            &["f12"],
        ),
        (
            "--from-fqdn *.example.org.",
            vec![FlowFilter {
                source_fqdn: s(&["*.example.org."]),
                ..f()
            }],
            vec![],
            &["f11"],
        ),
        (
            "--node-name kind-kind/kind-worker2",
            vec![FlowFilter {
                node_name: s(&["kind-kind/kind-worker2"]),
                ..f()
            }],
            vec![],
            &["f04", "f11"],
        ),
        (
            "--node-name prod-east/*",
            vec![FlowFilter {
                node_name: s(&["prod-east/*"]),
                ..f()
            }],
            vec![],
            &["f09"],
        ),
        (
            "--node-label topology.kubernetes.io/zone=east-1a",
            vec![FlowFilter {
                node_labels: s(&["topology.kubernetes.io/zone=east-1a"]),
                ..f()
            }],
            vec![],
            &["f09"],
        ),
        (
            "--interface eth0",
            vec![FlowFilter {
                interface: vec![NetworkInterface {
                    name: "eth0".into(),
                    index: 0,
                }],
                ..f()
            }],
            vec![],
            &["f12"],
        ),
        (
            "--encrypted",
            vec![FlowFilter {
                encrypted: vec![true],
                ..f()
            }],
            vec![],
            &["f12"],
        ),
        (
            "--ip-trace-id 77",
            vec![FlowFilter {
                ip_trace_id: vec![77],
                ..f()
            }],
            vec![],
            &["f12"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn invalid_filters_are_invalid_argument() {
    let mut e = start().await;
    for (flags, filter) in [
        (
            "--ip 10.0.0.300",
            FlowFilter {
                source_ip: s(&["10.0.0.300"]),
                ..f()
            },
        ),
        (
            "--port 70000",
            FlowFilter {
                source_port: s(&["70000"]),
                ..f()
            },
        ),
        (
            "--protocol foo",
            FlowFilter {
                protocol: s(&["foo"]),
                ..f()
            },
        ),
        (
            "--http-status 5",
            FlowFilter {
                http_status_code: s(&["5"]),
                ..f()
            },
        ),
        (
            "--label 'a in (b'",
            FlowFilter {
                source_label: s(&["a in (b"]),
                ..f()
            },
        ),
    ] {
        let req = GetFlowsRequest {
            whitelist: vec![filter],
            ..Default::default()
        };
        let err = e
            .client
            .get_flows(req)
            .await
            .err()
            .unwrap_or_else(|| panic!("{flags} accepted"));
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{flags}: {err}");
    }
}
