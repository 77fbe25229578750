//! Compiles arbitrary FlowFilters and matches them against flows; neither
//! may panic, whatever the input.
//!
//! The first byte picks how the rest is read:
//! * `0`: a JSON (jsonpb) FlowFilter, matched against fixed flows;
//! * `1`: a JSON FlowFilter, a `0xff` byte, then a JSON Flow to match;
//! * otherwise: lines of text, each stored into a string field chosen by
//!   the line's first byte, so that the field parsers (selectors, patterns,
//!   regexes, IPs, ports, status codes, …) see raw strings.

#![no_main]

use flow_filter::FilterSet;
use libfuzzer_sys::fuzz_target;
use proto::flow::{
    CiliumEventType, Dns, Endpoint, EventTypeFilter, Flow, FlowFilter, Http, HttpHeader, Ip,
    Layer4, Layer7, NetworkInterface, Service, Tcp, TcpFlags, Workload, layer4, layer7,
};

fn fixed_flows() -> Vec<Flow> {
    let ep = |ns: &str, pod: &str, labels: &[&str]| Endpoint {
        identity: 12345,
        namespace: ns.into(),
        pod_name: pod.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        workloads: vec![Workload {
            name: pod.into(),
            kind: "Deployment".into(),
        }],
        cluster_name: "default".into(),
        ..Endpoint::default()
    };
    let http = Flow {
        verdict: 1,
        ip: Some(Ip {
            source: "10.0.0.1".into(),
            destination: "2001:db8::1".into(),
            ip_version: 1,
            ..Ip::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(layer4::Protocol::Tcp(Tcp {
                source_port: 34567,
                destination_port: 80,
                flags: Some(TcpFlags {
                    syn: true,
                    ack: true,
                    ..TcpFlags::default()
                }),
            })),
        }),
        l7: Some(Layer7 {
            r#type: 2,
            latency_ns: 1,
            record: Some(layer7::Record::Http(Http {
                code: 503,
                method: "GET".into(),
                url: "http://user@[2001:db8::1]:80/v1/a%20b%ff?x=1#f".into(),
                protocol: "HTTP/1.1".into(),
                headers: vec![HttpHeader {
                    key: "X".into(),
                    value: "y".into(),
                }],
            })),
        }),
        event_type: Some(CiliumEventType {
            r#type: 129,
            sub_type: 0,
        }),
        source: Some(ep(
            "default",
            "xwing",
            &[
                "k8s:app=xwing",
                "reserved:world",
                "$host",
                "cidr:10.0.0.0/8",
                "x=a:b",
            ],
        )),
        destination: Some(ep(
            "kube-system",
            "coredns",
            &["k8s:k8s-app=kube-dns", "cidr:2001-db8--/48"],
        )),
        source_service: Some(Service {
            name: "xwing".into(),
            namespace: "default".into(),
        }),
        source_names: vec!["cilium.io".into()],
        node_name: "kind-kind/kind-worker".into(),
        node_labels: vec!["kubernetes.io/os=linux".into()],
        interface: Some(NetworkInterface {
            index: 2,
            name: "eth0".into(),
        }),
        ..Flow::default()
    };
    let dns = Flow {
        verdict: 2,
        drop_reason_desc: 133,
        l7: Some(Layer7 {
            record: Some(layer7::Record::Dns(Dns {
                query: "docs.cilium.io.".into(),
                ..Dns::default()
            })),
            ..Layer7::default()
        }),
        node_name: "a/b/c".into(),
        ..Flow::default()
    };
    vec![http, dns, Flow::default()]
}

fn check(filter: &FlowFilter, flows: &[Flow]) {
    for set in [
        FilterSet::compile(std::slice::from_ref(filter), &[]),
        FilterSet::compile(&[], std::slice::from_ref(filter)),
    ] {
        match set {
            Ok(set) => {
                let _ = set.is_match_all();
                for flow in flows {
                    let _ = set.matches(flow);
                }
            }
            Err(e) => {
                // Errors must render and name their field.
                let _ = e.to_string();
                assert!(!e.field().is_empty());
            }
        }
    }
}

fn from_lines(text: &str) -> FlowFilter {
    let mut f = FlowFilter::default();
    for line in text.split('\n') {
        let mut chars = line.chars();
        let Some(sel) = chars.next() else { continue };
        let v = chars.as_str().to_string();
        match u32::from(sel) % 24 {
            0 => f.source_ip.push(v),
            1 => f.destination_ip.push(v),
            2 => f.source_ip_xlated.push(v),
            3 => f.source_pod.push(v),
            4 => f.destination_service.push(v),
            5 => f.source_fqdn.push(v),
            6 => f.source_label.push(v),
            7 => f.destination_label.push(v),
            8 => f.node_labels.push(v),
            9 => f.source_cluster_name.push(v),
            10 => f.http_status_code.push(v),
            11 => f.http_method.push(v),
            12 => f.http_path.push(v),
            13 => f.http_url.push(v),
            14 => f.protocol.push(v),
            15 => f.source_port.push(v),
            16 => f.destination_port.push(v),
            17 => f.dns_query.push(v),
            18 => f.node_name.push(v),
            19 => f.trace_id.push(v),
            20 => f.uuid.push(v),
            21 => f.http_header.push(HttpHeader {
                key: v.clone(),
                value: v,
            }),
            22 => f.event_type.push(EventTypeFilter {
                r#type: v.len() as i32,
                match_sub_type: true,
                sub_type: 0,
            }),
            _ => f.destination_fqdn.push(v),
        }
    }
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            if let Ok(f) = serde_json::from_slice::<FlowFilter>(rest) {
                check(&f, &fixed_flows());
            }
        }
        1 => {
            let Some(split) = rest.iter().position(|b| *b == 0xff) else {
                return;
            };
            let (Ok(f), Ok(flow)) = (
                serde_json::from_slice::<FlowFilter>(&rest[..split]),
                serde_json::from_slice::<Flow>(&rest[split + 1..]),
            ) else {
                return;
            };
            check(&f, &[flow]);
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            check(&from_lines(&text), &fixed_flows());
        }
    }
});
