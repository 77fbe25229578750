//! Matches per second of compiled filter sets over a vector of varied flows,
//! the per-flow cost `GetFlows` pays while walking the ring. `cargo bench -p
//! flow-filter` runs it; criterion reports flows/s (elements/s).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_filter::FilterSet;
use proto::flow::{
    CiliumEventType, Endpoint, Flow, FlowFilter, Http, Ip, IpVersion, Layer4, Layer7, Tcp, Udp,
    Verdict, layer4, layer7,
};

const PODS: &[(&str, &str)] = &[
    ("default", "xwing"),
    ("default", "tiefighter"),
    ("default", "deathstar-6fb5694d48-5hmds"),
    ("kube-system", "coredns-5d78c9869d-7lk2x"),
    ("empire", "xwing-b"),
    ("rebels", "falcon"),
];

fn endpoint(i: usize) -> Endpoint {
    let (ns, pod) = PODS[i % PODS.len()];
    Endpoint {
        id: i as u32,
        identity: 10_000 + (i % 7) as u32,
        namespace: ns.into(),
        pod_name: pod.into(),
        labels: vec![
            format!("k8s:app={}", pod.split('-').next().unwrap_or(pod)),
            format!("k8s:io.kubernetes.pod.namespace={ns}"),
            "k8s:io.cilium.k8s.policy.cluster=default".into(),
        ],
        ..Endpoint::default()
    }
}

/// 1024 flows: TCP, UDP and HTTP; four verdicts; pods from several
/// namespaces on both sides.
fn flows() -> Vec<Flow> {
    (0..1024)
        .map(|i| {
            let verdict = [
                Verdict::Forwarded,
                Verdict::Dropped,
                Verdict::Forwarded,
                Verdict::Traced,
            ][i % 4];
            let l4 = if i % 3 == 0 {
                layer4::Protocol::Udp(Udp {
                    source_port: 40000 + i as u32,
                    destination_port: 53,
                })
            } else {
                layer4::Protocol::Tcp(Tcp {
                    source_port: 40000 + i as u32,
                    destination_port: 80,
                    flags: None,
                })
            };
            let l7 = (i % 5 == 0).then(|| Layer7 {
                r#type: 1,
                latency_ns: 0,
                record: Some(layer7::Record::Http(Http {
                    code: [200, 404, 503][i % 3],
                    method: "GET".into(),
                    url: format!("http://deathstar.default.svc/v1/request-landing?i={i}"),
                    ..Http::default()
                })),
            });
            Flow {
                verdict: verdict as i32,
                ip: Some(Ip {
                    source: format!("10.0.{}.{}", i / 256, i % 256),
                    destination: format!("10.1.0.{}", i % 200),
                    ip_version: IpVersion::IPv4 as i32,
                    ..Ip::default()
                }),
                l4: Some(Layer4 { protocol: Some(l4) }),
                event_type: Some(CiliumEventType {
                    r#type: if l7.is_some() { 129 } else { 4 },
                    sub_type: 0,
                }),
                l7,
                source: Some(endpoint(i)),
                destination: Some(endpoint(i / 3 + 1)),
                node_name: format!("kind-kind/kind-worker{}", i % 3),
                ..Flow::default()
            }
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn bench(c: &mut Criterion) {
    let flows = flows();
    let dropped = vec![Verdict::Dropped as i32];
    let sets: Vec<(&str, FilterSet)> = vec![
        // `hubble observe --pod default/xwing --verdict DROPPED`
        (
            "pod_and_verdict",
            FilterSet::compile(
                &[
                    FlowFilter {
                        source_pod: strings(&["default/xwing"]),
                        verdict: dropped.clone(),
                        ..Default::default()
                    },
                    FlowFilter {
                        destination_pod: strings(&["default/xwing"]),
                        verdict: dropped.clone(),
                        ..Default::default()
                    },
                ],
                &[],
            )
            .unwrap(),
        ),
        // `--label k8s:app=deathstar --ip 10.1.0.0/24 --not --namespace kube-system`
        (
            "label_cidr_not_namespace",
            FilterSet::compile(
                &[
                    FlowFilter {
                        source_label: strings(&["k8s:app=deathstar"]),
                        source_ip: strings(&["10.1.0.0/24"]),
                        ..Default::default()
                    },
                    FlowFilter {
                        destination_label: strings(&["k8s:app=deathstar"]),
                        destination_ip: strings(&["10.1.0.0/24"]),
                        ..Default::default()
                    },
                ],
                &[
                    FlowFilter {
                        source_pod: strings(&["kube-system/"]),
                        ..Default::default()
                    },
                    FlowFilter {
                        destination_pod: strings(&["kube-system/"]),
                        ..Default::default()
                    },
                ],
            )
            .unwrap(),
        ),
        // `--http-status 5+ --http-path ^/v1/ --node-name kind-worker*`
        (
            "http_and_node",
            FilterSet::compile(
                &[FlowFilter {
                    http_status_code: strings(&["5+"]),
                    http_path: strings(&["^/v1/"]),
                    node_name: strings(&["kind-worker*"]),
                    ..Default::default()
                }],
                &[],
            )
            .unwrap(),
        ),
        ("match_all", FilterSet::match_all()),
    ];

    let mut group = c.benchmark_group("matches");
    group.throughput(Throughput::Elements(flows.len() as u64));
    for (name, set) in &sets {
        group.bench_function(*name, |b| {
            b.iter(|| flows.iter().filter(|f| set.matches(black_box(f))).count());
        });
    }
    group.finish();

    c.bench_function("compile/pod_and_verdict", |b| {
        let allow = [
            FlowFilter {
                source_pod: strings(&["default/xwing"]),
                verdict: dropped.clone(),
                ..Default::default()
            },
            FlowFilter {
                destination_pod: strings(&["default/xwing"]),
                verdict: dropped.clone(),
                ..Default::default()
            },
        ];
        b.iter(|| FilterSet::compile(black_box(&allow), &[]).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
