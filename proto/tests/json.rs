//! Pins Hubble's `-o json` form: protojson with proto field names, enum names,
//! RFC 3339 timestamps and wrappers as plain values, keys in declaration order.

use proto::flow::{self, Flow, Verdict};
use proto::observer::{GetFlowsResponse, get_flows_response::ResponseTypes};
use proto::wkt::{BoolValue, Timestamp};

fn sample() -> GetFlowsResponse {
    let time = Timestamp {
        seconds: 1_700_000_000,
        nanos: 123_456_789,
    };
    let f = Flow {
        time: Some(time),
        uuid: "b3b2c8d2-4b7e-4d3a-9f0e-3b1f5c2a8e11".into(),
        verdict: Verdict::Dropped as i32,
        drop_reason: 133,
        ethernet: Some(flow::Ethernet {
            source: "0a:58:0a:f4:01:3c".into(),
            destination: "0a:58:0a:f4:01:05".into(),
        }),
        ip: Some(flow::Ip {
            source: "10.244.1.60".into(),
            destination: "10.244.1.5".into(),
            ip_version: flow::IpVersion::IPv4 as i32,
            ..Default::default()
        }),
        l4: Some(flow::Layer4 {
            protocol: Some(flow::layer4::Protocol::Tcp(flow::Tcp {
                source_port: 44916,
                destination_port: 80,
                flags: Some(flow::TcpFlags {
                    syn: true,
                    ..Default::default()
                }),
            })),
        }),
        source: Some(flow::Endpoint {
            id: 1234,
            identity: 5678,
            namespace: "default".into(),
            labels: vec!["k8s:class=xwing".into(), "k8s:org=alliance".into()],
            pod_name: "xwing".into(),
            ..Default::default()
        }),
        destination: Some(flow::Endpoint {
            identity: 2,
            labels: vec!["reserved:world".into()],
            ..Default::default()
        }),
        r#type: flow::FlowType::L3L4 as i32,
        node_name: "kind-kind/kind-worker".into(),
        event_type: Some(flow::CiliumEventType {
            r#type: 1,
            sub_type: 133,
        }),
        traffic_direction: flow::TrafficDirection::Ingress as i32,
        drop_reason_desc: flow::DropReason::PolicyDenied as i32,
        is_reply: Some(BoolValue { value: false }),
        socket_cookie: 42,
        summary: "TCP Flags: SYN".into(),
        ..Default::default()
    };
    GetFlowsResponse {
        node_name: f.node_name.clone(),
        time: f.time,
        response_types: Some(ResponseTypes::Flow(f)),
    }
}

#[test]
fn flow_response_json_matches_hubble_jsonpb() {
    let got = serde_json::to_string(&sample()).unwrap();
    let want = concat!(
        r#"{"flow":{"time":"2023-11-14T22:13:20.123456789Z","uuid":"b3b2c8d2-4b7e-4d3a-9f0e-3b1f5c2a8e11","#,
        r#""verdict":"DROPPED","drop_reason":133,"#,
        r#""ethernet":{"source":"0a:58:0a:f4:01:3c","destination":"0a:58:0a:f4:01:05"},"#,
        r#""IP":{"source":"10.244.1.60","destination":"10.244.1.5","ipVersion":"IPv4"},"#,
        r#""l4":{"TCP":{"source_port":44916,"destination_port":80,"flags":{"SYN":true}}},"#,
        r#""source":{"ID":1234,"identity":5678,"namespace":"default","labels":["k8s:class=xwing","k8s:org=alliance"],"pod_name":"xwing"},"#,
        r#""destination":{"identity":2,"labels":["reserved:world"]},"#,
        r#""Type":"L3_L4","node_name":"kind-kind/kind-worker","#,
        r#""event_type":{"type":1,"sub_type":133},"traffic_direction":"INGRESS","#,
        r#""drop_reason_desc":"POLICY_DENIED","is_reply":false,"socket_cookie":"42","Summary":"TCP Flags: SYN"},"#,
        r#""node_name":"kind-kind/kind-worker","time":"2023-11-14T22:13:20.123456789Z"}"#
    );
    assert_eq!(got, want);
}

#[test]
fn json_round_trips() {
    let s = serde_json::to_string(&sample()).unwrap();
    let back: GetFlowsResponse = serde_json::from_str(&s).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn lost_events_and_node_status_json() {
    use proto::flow::{LostEvent, LostEventSource};
    use proto::relay::{NodeState, NodeStatusEvent};
    use proto::wkt::Int32Value;
    let lost = GetFlowsResponse {
        response_types: Some(ResponseTypes::LostEvents(LostEvent {
            source: LostEventSource::HubbleRingBuffer as i32,
            num_events_lost: 1,
            cpu: Some(Int32Value { value: 0 }),
            first: None,
            last: None,
        })),
        node_name: "n".into(),
        time: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
    };
    assert_eq!(
        serde_json::to_string(&lost).unwrap(),
        r#"{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"1","cpu":0},"node_name":"n","time":"2023-11-14T22:13:20Z"}"#
    );
    let status = GetFlowsResponse {
        response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
            state_change: NodeState::NodeConnected as i32,
            node_names: vec!["a".into()],
            message: String::new(),
        })),
        node_name: String::new(),
        time: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 120_000_000,
        }),
    };
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        r#"{"node_status":{"state_change":"NODE_CONNECTED","node_names":["a"]},"time":"2023-11-14T22:13:20.120Z"}"#
    );
}

#[test]
fn timestamps_print_like_go_protojson() {
    for (nanos, want) in [
        (0, "2023-11-14T22:13:20Z"),
        (100_000_000, "2023-11-14T22:13:20.100Z"),
        (123_456_000, "2023-11-14T22:13:20.123456Z"),
        (1, "2023-11-14T22:13:20.000000001Z"),
    ] {
        assert_eq!(
            Timestamp {
                seconds: 1_700_000_000,
                nanos
            }
            .to_rfc3339(),
            want
        );
    }
    let t = Timestamp::parse_rfc3339("2023-11-14T23:13:20.5+01:00").unwrap();
    assert_eq!(
        t,
        Timestamp {
            seconds: 1_700_000_000,
            nanos: 500_000_000
        }
    );
}

#[test]
fn hubble_json_escapes_html_like_go() {
    let mut r = sample();
    if let Some(ResponseTypes::Flow(f)) = r.response_types.as_mut() {
        f.summary = "a <b> & c".into();
    }
    let s = proto::json::to_hubble_json(&r).unwrap();
    assert!(s.contains(r#""Summary":"a \u003cb\u003e \u0026 c""#), "{s}");
    let back: GetFlowsResponse = serde_json::from_str(&s).unwrap();
    assert_eq!(back, r);
}

#[test]
fn unknown_fields_from_newer_hubble_are_ignored() {
    let line = r#"{"flow":{"time":"2023-11-14T22:13:20Z","verdict":"FORWARDED","some_future_field":{"x":1}},"node_name":"n","time":"2023-11-14T22:13:20Z"}"#;
    let r: GetFlowsResponse = serde_json::from_str(line).unwrap();
    assert!(matches!(r.response_types, Some(ResponseTypes::Flow(_))));
}

/// The writers (`append_hubble_json`, behind `to_hubble_json`, and the
/// one-pass `write_hubble_json`) print what the two-pass definition printed: serde_json's text, then
/// Go's HTML escaping over it (`go_html_escape`). Strings mixing every
/// character either pass treats specially (`<`, `>`, `&`, U+2028, U+2029,
/// quotes, backslashes, control characters, multi-byte characters, and
/// look-alikes of the escaped sequences) in keys' neighbours, values,
/// lists and maps; and a value that cannot be printed fails the same way.
#[test]
fn one_pass_writer_prints_the_two_pass_bytes() {
    const PIECES: &[&str] = &[
        "<", ">", "&", "\u{2028}", "\u{2029}", "\u{2027}", "\u{202a}", "\u{e280}", "\"", "\\",
        "\n", "\t", "\u{1}", "\u{1f}", "\u{7f}", "é", "日本", "🚀", "a", "xwing", " ", "/",
        "\u{80}", "\u{2000}", "&amp;", "\\u003c",
    ];
    let two_pass =
        |r: &GetFlowsResponse| proto::json::go_html_escape(&serde_json::to_string(r).unwrap());
    // A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn word(&mut self, n: u64) -> String {
            let len = self.next() % n;
            (0..len)
                .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
                .collect()
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let mut r = sample();
        if let Some(ResponseTypes::Flow(f)) = r.response_types.as_mut() {
            f.summary = rng.word(12);
            f.uuid = rng.word(4);
            f.node_labels = (0..rng.next() % 3).map(|_| rng.word(6)).collect();
            if let Some(s) = f.source.as_mut() {
                s.labels = (0..rng.next() % 4).map(|_| rng.word(8)).collect();
                s.pod_name = rng.word(5);
            }
            f.source_names = vec![rng.word(6)];
            f.l7 = Some(flow::Layer7 {
                record: Some(flow::layer7::Record::Http(flow::Http {
                    url: rng.word(20),
                    headers: vec![flow::HttpHeader {
                        key: rng.word(4),
                        value: rng.word(10),
                    }],
                    ..Default::default()
                })),
                ..Default::default()
            });
        }
        r.node_name = rng.word(6);
        let one = proto::json::to_hubble_json(&r).unwrap();
        assert_eq!(one, two_pass(&r));
        let mut buf = Vec::new();
        proto::json::write_hubble_json(&mut buf, &r).unwrap();
        assert_eq!(buf, one.as_bytes());
        let mut buf = b"before".to_vec();
        proto::json::append_hubble_json(&mut buf, &r).unwrap();
        assert_eq!(&buf[6..], one.as_bytes());
        let back: GetFlowsResponse = serde_json::from_str(&one).unwrap();
        assert_eq!(back, r);
    }
    // An enum number pbjson cannot name: both fail, with the same message.
    let mut r = sample();
    if let Some(ResponseTypes::Flow(f)) = r.response_types.as_mut() {
        f.verdict = 99;
    }
    let want = serde_json::to_string(&r).unwrap_err().to_string();
    assert_eq!(
        proto::json::to_hubble_json(&r).unwrap_err().to_string(),
        want
    );
    let mut buf = b"before".to_vec();
    let e = proto::json::append_hubble_json(&mut buf, &r).unwrap_err();
    assert_eq!((e.to_string(), buf.as_slice()), (want, &b"before"[..]));
}
