//! Golden cases from upstream's printer tests (`hubble/pkg/printer/
//! printer_test.go`): the same flows and options, the same expected text.

use super::*;
use proto::flow::{CiliumEventType, Endpoint, Ip, IpTraceId, Layer4, LostEvent, Tcp};
use proto::observer::ServerStatusResponse;
use proto::wkt::{BoolValue, Int32Value, Timestamp, UInt32Value};
use rstest::rstest;

/// Upstream's test flow `f`.
fn upstream_flow() -> Flow {
    Flow {
        time: Some(Timestamp {
            seconds: 1234,
            nanos: 567_800_000,
        }),
        r#type: proto::flow::FlowType::L3L4 as i32,
        node_name: "k8s1".into(),
        verdict: Verdict::Dropped as i32,
        ip: Some(Ip {
            source: "1.1.1.1".into(),
            destination: "2.2.2.2".into(),
            ..Default::default()
        }),
        source: Some(Endpoint {
            identity: 4,
            ..Default::default()
        }),
        destination: Some(Endpoint {
            identity: 12345,
            ..Default::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(Protocol::Tcp(Tcp {
                source_port: 31793,
                destination_port: 8080,
                flags: None,
            })),
        }),
        event_type: Some(CiliumEventType {
            r#type: 1,
            sub_type: 133,
        }),
        summary: "TCP Flags: SYN".into(),
        is_reply: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

fn response(f: Flow) -> GetFlowsResponse {
    GetFlowsResponse {
        node_name: f.node_name.clone(),
        time: f.time,
        response_types: Some(ResponseTypes::Flow(f)),
    }
}

fn print(opts: Options, responses: &[GetFlowsResponse]) -> (String, String) {
    let mut p = Printer::new(opts, Vec::new(), Vec::new());
    for r in responses {
        p.write_response(r).unwrap();
    }
    p.close().unwrap();
    let (out, err) = p.into_writers();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn opts(output: Output, node_name: bool) -> Options {
    Options {
        output,
        node_name,
        ip_translation: false,
        ..Options::default()
    }
}

fn policy_flow(verdict: Verdict, dir: TrafficDirection) -> Flow {
    let mut f = upstream_flow();
    f.event_type = Some(CiliumEventType {
        r#type: 5,
        sub_type: 0,
    });
    f.verdict = verdict as i32;
    f.is_reply = None;
    f.traffic_direction = dir as i32;
    f
}

#[rstest]
#[case::compact(
    false,
    upstream_flow(),
    "Jan  1 00:20:34.567: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n"
)]
#[case::compact_with_node(
    true,
    upstream_flow(),
    "Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n"
)]
#[case::compact_reply(true, Flow { is_reply: Some(BoolValue { value: true }), ..upstream_flow() }, "Jan  1 00:20:34.567 [k8s1]: 2.2.2.2:8080 (ID:12345) <- 1.1.1.1:31793 (health) Policy denied DROPPED (TCP Flags: SYN)\n")]
#[case::compact_direction_unknown(true, Flow { is_reply: None, ..upstream_flow() }, "Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (TCP Flags: SYN)\n")]
#[case::compact_with_trace_id(true, Flow { ip_trace_id: Some(IpTraceId { trace_id: 1234, ip_option_type: 0 }), ..upstream_flow() }, "Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) -> 2.2.2.2:8080 (ID:12345) Policy denied DROPPED (IP Trace ID: 1234; TCP Flags: SYN)\n")]
#[case::compact_policy_verdict_denied(
    true,
    policy_flow(Verdict::Dropped, TrafficDirection::Egress),
    "Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:none EGRESS DENIED (TCP Flags: SYN)\n"
)]
fn compact_golden(#[case] node: bool, #[case] f: Flow, #[case] want: &str) {
    let (out, err) = print(opts(Output::Compact, node), &[response(f)]);
    assert_eq!(out, want);
    assert_eq!(err, "");
}

#[test]
fn compact_policy_names() {
    let mut denied = policy_flow(Verdict::Dropped, TrafficDirection::Egress);
    denied.egress_denied_by = vec![Policy {
        name: "my-policy".into(),
        namespace: "my-policy-namespace".into(),
        kind: "CiliumNetworkPolicy".into(),
        ..Default::default()
    }];
    let mut allowed = policy_flow(Verdict::Forwarded, TrafficDirection::Ingress);
    allowed.policy_match_type = 1;
    allowed.ingress_allowed_by = vec![
        Policy {
            name: "my-policy".into(),
            namespace: "my-policy-namespace".into(),
            kind: "CiliumNetworkPolicy".into(),
            ..Default::default()
        },
        Policy {
            name: "my-policy-2".into(),
            kind: "CiliumClusterwideNetworkPolicy".into(),
            ..Default::default()
        },
    ];
    let o = Options {
        policy_names: true,
        ..opts(Output::Compact, true)
    };
    let (out, _) = print(o, &[response(denied), response(allowed)]);
    assert_eq!(
        out,
        "Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:none EGRESS DENIED BY my-policy (CiliumNetworkPolicy) (TCP Flags: SYN)\n\
         Jan  1 00:20:34.567 [k8s1]: 1.1.1.1:31793 (health) <> 2.2.2.2:8080 (ID:12345) policy-verdict:L3-Only INGRESS ALLOWED BY my-policy (CiliumNetworkPolicy), my-policy-2 (CiliumClusterwideNetworkPolicy) (TCP Flags: SYN)\n"
    );
}

#[test]
fn table_golden() {
    let (out, _) = print(opts(Output::Table, false), &[response(upstream_flow())]);
    assert_eq!(
        out,
        "TIMESTAMP             SOURCE          DESTINATION    TYPE            VERDICT   SUMMARY\n\
         Jan  1 00:20:34.567   1.1.1.1:31793   2.2.2.2:8080   Policy denied   DROPPED   TCP Flags: SYN\n"
    );
    let (out, _) = print(opts(Output::Table, true), &[response(upstream_flow())]);
    assert_eq!(
        out,
        "TIMESTAMP             NODE   SOURCE          DESTINATION    TYPE            VERDICT   SUMMARY\n\
         Jan  1 00:20:34.567   k8s1   1.1.1.1:31793   2.2.2.2:8080   Policy denied   DROPPED   TCP Flags: SYN\n"
    );
}

#[test]
fn dict_golden() {
    let (out, _) = print(opts(Output::Dict, true), &[response(upstream_flow())]);
    assert_eq!(
        out,
        "  TIMESTAMP: Jan  1 00:20:34.567\n       NODE: k8s1\n     SOURCE: 1.1.1.1:31793\nDESTINATION: 2.2.2.2:8080\n       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN\n"
    );
    let (out, _) = print(
        opts(Output::Dict, false),
        &[response(upstream_flow()), response(upstream_flow())],
    );
    assert!(out.contains("TCP Flags: SYN\n------------\n  TIMESTAMP"));
}

#[test]
fn json_golden() {
    let want = r#"{"flow":{"time":"1970-01-01T00:20:34.567800Z","verdict":"DROPPED","IP":{"source":"1.1.1.1","destination":"2.2.2.2"},"l4":{"TCP":{"source_port":31793,"destination_port":8080}},"source":{"identity":4},"destination":{"identity":12345},"Type":"L3_L4","node_name":"k8s1","event_type":{"type":1,"sub_type":133},"is_reply":false,"Summary":"TCP Flags: SYN"}}"#;
    let mut r = response(upstream_flow());
    r.node_name.clear();
    r.time = None;
    let (out, _) = print(opts(Output::JsonPb, false), &[r]);
    assert_eq!(out, format!("{want}\n"));
    let legacy = &want[8..want.len() - 1];
    let (out, _) = print(
        opts(Output::JsonLegacy, false),
        &[response(upstream_flow())],
    );
    assert_eq!(out, format!("{legacy}\n"));
}

fn lost(first_last: bool, node: &str) -> GetFlowsResponse {
    let ts = |s| Timestamp {
        seconds: s,
        nanos: 567_800_000,
    };
    GetFlowsResponse {
        node_name: node.into(),
        time: Some(ts(1234)),
        response_types: Some(ResponseTypes::LostEvents(LostEvent {
            source: LostEventSource::HubbleRingBuffer as i32,
            num_events_lost: 1,
            cpu: Some(Int32Value { value: 5 }),
            first: first_last.then(|| ts(1230)),
            last: first_last.then(|| ts(1238)),
        })),
    }
}

#[rstest]
#[case::compact(
    Output::Compact,
    false,
    false,
    "Jan  1 00:20:34.567 EVENTS LOST: HUBBLE_RING_BUFFER CPU(5) 1\n"
)]
#[case::compact_node(
    Output::Compact,
    true,
    false,
    "Jan  1 00:20:34.567 EVENTS LOST: HUBBLE_RING_BUFFER CPU(5) 1\n"
)]
#[case::compact_span(
    Output::Compact,
    false,
    true,
    "Jan  1 00:20:34.567 EVENTS LOST: HUBBLE_RING_BUFFER CPU(5) 1 (first: Jan  1 00:20:30.567, last: Jan  1 00:20:38.567)\n"
)]
#[case::table(
    Output::Table,
    false,
    false,
    "TIMESTAMP             SOURCE               DESTINATION   TYPE          VERDICT   SUMMARY\nJan  1 00:20:34.567   HUBBLE_RING_BUFFER   -             EVENTS LOST   -         CPU(5) - 1\n"
)]
#[case::table_node(
    Output::Table,
    true,
    false,
    "TIMESTAMP             NODE        SOURCE               DESTINATION   TYPE          VERDICT   SUMMARY\nJan  1 00:20:34.567   node-name   HUBBLE_RING_BUFFER   -             EVENTS LOST   -         CPU(5) - 1\n"
)]
#[case::dict(
    Output::Dict,
    false,
    false,
    "  TIMESTAMP: Jan  1 00:20:34.567\n     SOURCE: HUBBLE_RING_BUFFER\n       TYPE: EVENTS LOST\n    VERDICT: -\n    SUMMARY: CPU(5) - 1\n"
)]
#[case::dict_node_span(
    Output::Dict,
    true,
    true,
    "  TIMESTAMP: Jan  1 00:20:34.567\n       NODE: node-name\n     SOURCE: HUBBLE_RING_BUFFER\n       TYPE: EVENTS LOST\n    VERDICT: -\n    SUMMARY: CPU(5) - 1 (first: Jan  1 00:20:30.567, last: Jan  1 00:20:38.567)\n"
)]
#[case::json(
    Output::JsonPb,
    true,
    false,
    "{\"lost_events\":{\"source\":\"HUBBLE_RING_BUFFER\",\"num_events_lost\":\"1\",\"cpu\":5},\"node_name\":\"node-name\",\"time\":\"1970-01-01T00:20:34.567800Z\"}\n"
)]
#[case::json_span(
    Output::JsonPb,
    false,
    true,
    "{\"lost_events\":{\"source\":\"HUBBLE_RING_BUFFER\",\"num_events_lost\":\"1\",\"cpu\":5,\"first\":\"1970-01-01T00:20:30.567800Z\",\"last\":\"1970-01-01T00:20:38.567800Z\"},\"node_name\":\"node-name\",\"time\":\"1970-01-01T00:20:34.567800Z\"}\n"
)]
fn lost_events_golden(
    #[case] output: Output,
    #[case] node: bool,
    #[case] span: bool,
    #[case] want: &str,
) {
    let (out, err) = print(opts(output, node), &[lost(span, "node-name")]);
    assert_eq!(out, want);
    assert_eq!(err, "");
}

fn node_status(state: NodeState, names: &[&str], msg: &str) -> GetFlowsResponse {
    GetFlowsResponse {
        node_name: "relay".into(),
        time: Some(Timestamp {
            seconds: 1234,
            nanos: 567_800_000,
        }),
        response_types: Some(ResponseTypes::NodeStatus(proto::relay::NodeStatusEvent {
            state_change: state as i32,
            node_names: names.iter().map(|s| (*s).to_owned()).collect(),
            message: msg.into(),
        })),
    }
}

#[test]
fn node_status_goes_to_stderr_and_only_errors_without_debug() {
    let events = [
        node_status(NodeState::NodeConnected, &["a", "b"], ""),
        node_status(NodeState::NodeUnavailable, &["c"], ""),
        node_status(NodeState::NodeError, &["d"], "boom"),
    ];
    let (out, err) = print(opts(Output::Compact, false), &events);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Jan  1 00:20:34.567 [relay]: 1 nodes are unavailable: c\n\
         Jan  1 00:20:34.567 [relay]: Error \"boom\" on 1 nodes: d\n"
    );
    let debug = Options {
        debug: true,
        ..opts(Output::Compact, false)
    };
    let (_, err) = print(debug, &events[..1]);
    assert_eq!(
        err,
        "Jan  1 00:20:34.567 [relay]: Receiving flows from 2 nodes: a, b\n"
    );
    let silent = Options {
        silent_errors: true,
        ..opts(Output::Compact, false)
    };
    let (_, err) = print(silent, &events);
    assert_eq!(err, "");
}

#[test]
fn hostnames_translate_ips_to_names() {
    let p = Printer::new(Options::default(), Vec::new(), Vec::new());
    let mut f = Flow {
        ip: Some(Ip {
            source: "1.1.1.1".into(),
            destination: "2.2.2.2".into(),
            ..Default::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(Protocol::Tcp(Tcp {
                source_port: 55555,
                destination_port: 80,
                flags: None,
            })),
        }),
        source_service: Some(proto::flow::Service {
            name: "xwing".into(),
            namespace: "default".into(),
        }),
        destination_service: Some(proto::flow::Service {
            name: "tiefighter".into(),
            namespace: "deathstar".into(),
        }),
        ..Default::default()
    };
    assert_eq!(
        p.host_names(&f),
        (
            "default/xwing:55555".into(),
            "deathstar/tiefighter:80".into()
        )
    );
    f.source_service = None;
    f.destination_service = None;
    f.source_names = vec!["a".into()];
    f.destination_names = vec!["b".into(), "c".into()];
    assert_eq!(p.host_names(&f), ("a:55555".into(), "b,c:80".into()));
    f.ip = None;
    f.ethernet = Some(proto::flow::Ethernet {
        source: "00:01:02:03:04:05".into(),
        destination: "06:07:08:09:0a:0b".into(),
    });
    assert_eq!(
        p.host_names(&f),
        ("00:01:02:03:04:05".into(), "06:07:08:09:0a:0b".into())
    );
    assert_eq!(
        p.hostname("fd00::1", Some(80), "", "", "", &[]),
        "[fd00::1]:80"
    );
    assert_eq!(
        p.hostname("1.1.1.1", Some(0), "default", "pod", "", &[]),
        "default/pod"
    );
}

#[rstest]
#[case::l7_request(Flow { l7: Some(proto::flow::Layer7 { r#type: 1, ..Default::default() }), ..Default::default() }, "l7-request")]
#[case::http_response(Flow { l7: Some(proto::flow::Layer7 { r#type: 2, record: Some(Record::Http(Default::default())), ..Default::default() }), ..Default::default() }, "http-response")]
#[case::dns_proxy(Flow { l7: Some(proto::flow::Layer7 { r#type: 1, record: Some(Record::Dns(proto::flow::Dns { observation_source: "proxy".into(), ..Default::default() })), ..Default::default() }), ..Default::default() }, "dns-request proxy")]
#[case::trace(Flow { event_type: Some(CiliumEventType { r#type: 4, sub_type: 2 }), ..Default::default() }, "to-host")]
#[case::trace_to_endpoint(Flow { event_type: Some(CiliumEventType { r#type: 4, sub_type: 0 }), ..Default::default() }, "to-endpoint")]
#[case::trace_invalid(Flow { event_type: Some(CiliumEventType { r#type: 4, sub_type: 123 }), ..Default::default() }, "123")]
#[case::policy_l3_l4(Flow { verdict: 1, event_type: Some(CiliumEventType { r#type: 5, sub_type: 0 }), policy_match_type: 2, traffic_direction: 1, ..Default::default() }, "policy-verdict:L3-L4 INGRESS")]
#[case::policy_none(Flow { verdict: 2, drop_reason: 153, event_type: Some(CiliumEventType { r#type: 5, sub_type: 0 }), traffic_direction: 1, ..Default::default() }, "policy-verdict:none INGRESS")]
#[case::sock_pre(Flow { event_type: Some(CiliumEventType { r#type: 7, sub_type: 3 }), sock_xlate_point: 3, ..Default::default() }, "pre-xlate-rev")]
#[case::sock_post(Flow { event_type: Some(CiliumEventType { r#type: 7, sub_type: 2 }), sock_xlate_point: 2, ..Default::default() }, "post-xlate-fwd")]
#[case::capture(Flow { event_type: Some(CiliumEventType { r#type: 3, sub_type: 0 }), debug_capture_point: 5, ..Default::default() }, "DBG_CAPTURE_FROM_LB")]
#[case::nothing(Flow::default(), "UNKNOWN")]
fn flow_types(#[case] f: Flow, #[case] want: &str) {
    assert_eq!(flow_type(&f), want);
}

#[test]
fn colors_wrap_fields_like_fatih_color() {
    let o = Options {
        color: true,
        ..opts(Output::Compact, false)
    };
    let mut f = upstream_flow();
    f.source = Some(Endpoint {
        identity: 2,
        ..Default::default()
    });
    let (out, _) = print(o, &[response(f)]);
    assert_eq!(
        out,
        "Jan  1 00:20:34.567: \x1b[36m1.1.1.1:\x1b[33m31793\x1b[0m\x1b[0m \x1b[35m(world)\x1b[0m -> \x1b[36m2.2.2.2:\x1b[33m8080\x1b[0m\x1b[0m \x1b[35m(ID:12345)\x1b[0m Policy denied \x1b[31mDROPPED\x1b[0m (TCP Flags: SYN)\n"
    );
}

#[test]
fn terminal_escapes_in_fields_are_neutralised() {
    let mut f = upstream_flow();
    f.summary = "evil \x1b[2J\r done".into();
    let (out, _) = print(opts(Output::Compact, false), &[response(f)]);
    assert!(out.ends_with("(evil ^[[2J\\r done)\n"), "{out:?}");
}

fn status(rate: f64, nodes: bool) -> ServerStatusResponse {
    ServerStatusResponse {
        num_flows: if nodes { 2771 } else { 2031 },
        max_flows: if nodes { 8190 } else { 4095 },
        seen_flows: if nodes { 2771 } else { 2_348_885 },
        flows_rate: rate,
        uptime_ns: 301_515_181_665,
        version: if nodes {
            "hubble-relay v1.15.0+g4145278".into()
        } else {
            "cilium v1.15.0+g4145278".into()
        },
        num_connected_nodes: nodes.then_some(UInt32Value { value: 2 }),
        num_unavailable_nodes: nodes.then_some(UInt32Value { value: 0 }),
        unavailable_nodes: Vec::new(),
    }
}

fn status_text(res: &ServerStatusResponse, output: Output) -> String {
    let mut v = Vec::new();
    write_server_status(res, output, &mut v).unwrap();
    String::from_utf8(v).unwrap()
}

#[test]
fn server_status_golden() {
    assert_eq!(
        status_text(&status(23.456, false), Output::Compact),
        "Current/Max Flows: 2,031/4,095 (49.60%)\nFlows/s: 23.46\n"
    );
    assert_eq!(
        status_text(&status(23.456, true), Output::Compact),
        "Current/Max Flows: 2,771/8,190 (33.83%)\nFlows/s: 23.46\nConnected Nodes: 2/2\n"
    );
    assert_eq!(
        status_text(&status(0.0, false), Output::Compact),
        "Current/Max Flows: 2,031/4,095 (49.60%)\nFlows/s: 7790.27\n"
    );
    assert_eq!(
        status_text(&status(23.456, false), Output::Table),
        "NUM FLOWS   MAX FLOWS   SEEN FLOWS   FLOWS PER SECOND   UPTIME           NUM CONNECTED NODES   NUM UNAVAILABLE NODES   VERSION\n\
         2,031       4,095       2,348,885    23.46              5m1.515181665s   N/A                   N/A                     cilium v1.15.0+g4145278\n"
    );
    assert_eq!(
        status_text(&status(23.456, true), Output::Dict),
        "          NUM FLOWS: 2,771\n          MAX FLOWS: 8,190\n         SEEN FLOWS: 2,771\n   FLOWS PER SECOND: 23.46\n             UPTIME: 5m1.515181665s\nNUM CONNECTED NODES: 2\n NUM UNAVAIL. NODES: 0\n            VERSION: hubble-relay v1.15.0+g4145278\n"
    );
    assert_eq!(
        status_text(&status(23.456, false), Output::JsonPb),
        "{\"num_flows\":\"2031\",\"max_flows\":\"4095\",\"seen_flows\":\"2348885\",\"uptime_ns\":\"301515181665\",\"version\":\"cilium v1.15.0+g4145278\",\"flows_rate\":23.456}\n"
    );
    assert_eq!(
        status_text(&status(23.456, true), Output::JsonPb),
        "{\"num_flows\":\"2771\",\"max_flows\":\"8190\",\"seen_flows\":\"2771\",\"uptime_ns\":\"301515181665\",\"num_connected_nodes\":2,\"num_unavailable_nodes\":0,\"version\":\"hubble-relay v1.15.0+g4145278\",\"flows_rate\":23.456}\n"
    );
}

#[test]
fn unavailable_nodes_are_listed_sorted_with_a_remainder() {
    let mut s = status(1.0, true);
    s.num_unavailable_nodes = Some(UInt32Value { value: 3 });
    s.unavailable_nodes = vec!["b".into(), "a".into()];
    assert_eq!(
        status_text(&s, Output::Compact),
        "Current/Max Flows: 2,771/8,190 (33.83%)\nFlows/s: 1.00\nConnected Nodes: 2/5\nUnavailable Nodes: 3\n  - a\n  - b\n  - and 1 more...\n"
    );
}

#[test]
fn join_with_cutoff_like_upstream() {
    let names: Vec<String> = (0..10).map(|i| format!("node-{i:02}")).collect();
    assert_eq!(
        join_with_cutoff(&names, ", ", 50),
        "node-00, node-01, node-02, node-03, node-04 (and 5 more)"
    );
    assert_eq!(group_thousands(0), "0");
    assert_eq!(group_thousands(1_000), "1,000");
}

/// A service translation as the exporter's parser decodes the datapath's
/// trace-sock record: Cilium's socket-LB flows (type SOCK, event type 7).
fn sock_flow(point: u8) -> Flow {
    use flow_parser::{Enricher, Parser, StaticEnrichment};
    const ENRICH: &str = r#"
endpoints:
  - {id: 200, ips: [10.244.1.8], namespace: default, pod_name: xwing, identity: 54021}
  - {id: 100, ips: [10.244.1.5], namespace: empire, pod_name: deathstar-1, identity: 15153}
services:
  - {name: deathstar, namespace: empire, ips: [10.96.0.10], ports: [80]}
"#;
    let e = StaticEnrichment::from_yaml_str(ENRICH).unwrap();
    let mut parser =
        Parser::new("k8s1", Enricher::from_static(std::sync::Arc::new(e))).without_uuids();
    let post = point == ebpf::xlate_point::POST_DIRECTION_FWD;
    let mut raw = Vec::new();
    ebpf::TraceSockEvent {
        hdr: ebpf::EventHdr {
            source: 200,
            ktime_ns: 1_234_567_800_000,
            ..ebpf::EventHdr::new(ebpf::msg_type::TRACE_SOCK, point)
        },
        src_label: 54021,
        dst_label: if post { 15153 } else { 0 },
        src_ip: [10, 244, 1, 8],
        dst_ip: if post {
            [10, 244, 1, 5]
        } else {
            [10, 96, 0, 10]
        },
        dst_port: if post { 8080 } else { 80 },
        l4_proto: ebpf::sock_l4::TCP,
        sock_cookie: 77,
        ..Default::default()
    }
    .encode(&mut raw);
    parser
        .decode(&raw, &flow_parser::ClockOffset::new(0))
        .unwrap()
}

#[test]
fn trace_sock_flows_print_like_hubble() {
    use ebpf::xlate_point::{POST_DIRECTION_FWD, PRE_DIRECTION_FWD};
    let flows = [
        response(sock_flow(PRE_DIRECTION_FWD)),
        response(sock_flow(POST_DIRECTION_FWD)),
    ];
    // Hubble's default: addresses shown as pod or service names.
    let named = |output| Options {
        ip_translation: true,
        ..opts(output, false)
    };
    // No is_reply on SOCK flows: Hubble's "<>"; the client's port is
    // unknown (0) and not printed; the frontend shows as its service.
    let (out, _) = print(named(Output::Compact), &flows);
    assert_eq!(
        out,
        "Jan  1 00:20:34.567: default/xwing (ID:54021) <> empire/deathstar:80 (unknown) pre-xlate-fwd TRACED (TCP)\n\
         Jan  1 00:20:34.567: default/xwing (ID:54021) <> empire/deathstar-1:8080 (ID:15153) post-xlate-fwd TRANSLATED (TCP)\n"
    );
    let (out, _) = print(named(Output::Table), &flows[..1]);
    assert_eq!(
        out,
        "TIMESTAMP             SOURCE          DESTINATION           TYPE            VERDICT   SUMMARY\n\
         Jan  1 00:20:34.567   default/xwing   empire/deathstar:80   pre-xlate-fwd   TRACED    TCP\n"
    );
    let (out, _) = print(named(Output::Dict), &flows[1..]);
    assert_eq!(
        out,
        "  TIMESTAMP: Jan  1 00:20:34.567\n     SOURCE: default/xwing\nDESTINATION: empire/deathstar-1:8080\n       TYPE: post-xlate-fwd\n    VERDICT: TRANSLATED\n    SUMMARY: TCP\n"
    );
    let mut r = flows[0].clone();
    r.node_name.clear();
    r.time = None;
    let (out, _) = print(opts(Output::JsonPb, false), &[r]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = &v["flow"];
    assert_eq!(f["Type"], "SOCK");
    assert_eq!(f["verdict"], "TRACED");
    assert_eq!(f["sock_xlate_point"], "SOCK_XLATE_POINT_PRE_DIRECTION_FWD");
    assert_eq!(f["socket_cookie"], "77");
    assert_eq!(f["event_type"]["type"], 7);
    assert_eq!(f["destination_service"]["name"], "deathstar");
    assert_eq!(f["destination_service"]["namespace"], "empire");
}
