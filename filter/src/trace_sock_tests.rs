//! The flags users apply to service translations (trace-sock flows, what
//! Cilium's socket LB reports and our datapath emits per new connection to a
//! service) and to the flows around them, as `hubble observe` builds them:
//! `--type trace-sock`, `--verdict TRANSLATED`, `--to-service`,
//! `--from-service`, `--service` (either side: a [source, destination]
//! pair).

use proto::flow::{EventTypeFilter, Flow, FlowFilter, FlowType, Verdict};
use rstest::rstest;

use crate::testutil::{FlowBuilder, allows, ff, strings};

const TRACE_SOCK: i32 = 7;

/// pre-xlate-fwd: xwing → the deathstar VIP (destination_service set).
fn pre() -> Flow {
    let mut f = FlowBuilder::new()
        .uuid("pre")
        .src_pod("default", "xwing")
        .src_ip("10.244.1.8")
        .dst_ip("10.96.0.10")
        .dst_service("empire", "deathstar")
        .verdict(Verdict::Traced)
        .event_type(TRACE_SOCK, 1)
        .tcp(0, 80)
        .build();
    f.r#type = FlowType::Sock as i32;
    f.sock_xlate_point = 1;
    f
}

/// post-xlate-fwd: xwing → the chosen backend (no service).
fn post() -> Flow {
    let mut f = FlowBuilder::new()
        .uuid("post")
        .src_pod("default", "xwing")
        .dst_pod("empire", "deathstar-1")
        .src_ip("10.244.1.8")
        .dst_ip("10.244.1.5")
        .verdict(Verdict::Translated)
        .event_type(TRACE_SOCK, 2)
        .tcp(0, 8080)
        .build();
    f.r#type = FlowType::Sock as i32;
    f.sock_xlate_point = 2;
    f
}

/// The backend's reply to xwing after reverse NAT: its source is the VIP.
fn reply() -> Flow {
    FlowBuilder::new()
        .uuid("reply")
        .src_ip("10.96.0.10")
        .dst_pod("default", "xwing")
        .src_service("empire", "deathstar")
        .verdict(Verdict::Forwarded)
        .event_type(4, 0)
        .reply(Some(true))
        .tcp(80, 44916)
        .build()
}

fn selected(allow: &[FlowFilter]) -> Vec<String> {
    [pre(), post(), reply()]
        .into_iter()
        .filter(|f| allows(allow, f))
        .map(|f| f.uuid)
        .collect()
}

fn t(r#type: i32) -> FlowFilter {
    FlowFilter {
        event_type: vec![EventTypeFilter {
            r#type,
            match_sub_type: false,
            sub_type: 0,
        }],
        ..ff()
    }
}

fn verdict(v: Verdict) -> FlowFilter {
    FlowFilter {
        verdict: vec![v as i32],
        ..ff()
    }
}

fn src_svc(v: &[&str]) -> FlowFilter {
    FlowFilter {
        source_service: strings(v),
        ..ff()
    }
}

fn dst_svc(v: &[&str]) -> FlowFilter {
    FlowFilter {
        destination_service: strings(v),
        ..ff()
    }
}

#[rstest]
#[case::type_trace_sock(vec![t(TRACE_SOCK)], &["pre", "post"])]
#[case::type_trace(vec![t(4)], &["reply"])]
#[case::verdict_translated(vec![verdict(Verdict::Translated)], &["post"])]
#[case::verdict_traced(vec![verdict(Verdict::Traced)], &["pre"])]
#[case::to_service(vec![dst_svc(&["empire/deathstar"])], &["pre"])]
#[case::from_service(vec![src_svc(&["empire/deathstar"])], &["reply"])]
#[case::service_either_side(vec![src_svc(&["empire/deathstar"]), dst_svc(&["empire/deathstar"])], &["pre", "reply"])]
#[case::service_in_default_ns_is_another(vec![src_svc(&["deathstar"]), dst_svc(&["deathstar"])], &[])]
#[case::to_service_and_type(vec![FlowFilter { destination_service: strings(&["empire/"]), ..t(TRACE_SOCK) }], &["pre"])]
fn trace_sock_flags(#[case] allow: Vec<FlowFilter>, #[case] want: &[&str]) {
    assert_eq!(selected(&allow), want);
}
