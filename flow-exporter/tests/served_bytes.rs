//! The encode-once and slot-reuse paths change nothing a client sees:
//! - the bytes cached for a stored flow are exactly what prost writes for
//!   the `GetFlowsResponse` the exporter built before (a clone of the flow,
//!   its node name and time), for every flow of `testdata/flows.jsonl` and
//!   every kind of synthetic event;
//! - a flow decoded in place over a recycled ring slot (the previous flow's
//!   buffers reused) equals the flow decoded into a fresh one.
//!
//! Over gRPC (the codec writing those bytes) the tests of `grpc.rs`,
//! `interop.rs` and `replay_filters.rs` check what clients receive.

use std::sync::Arc;

use flow_exporter::observer::{Event, Observer};
use flow_exporter::ring::Read;
use flow_exporter::served::{encode_flow_response, flow_response};
use flow_exporter::sources::replay::{ReplayEvent, parse_line};
use flow_parser::{ClockOffset, Enricher, Parser, Synthetic};
use prost::Message as _;
use proto::flow::Flow;

fn fixture_flows() -> Vec<Flow> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/flows.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let flows: Vec<Flow> = text
        .lines()
        .filter_map(|l| match parse_line(l).unwrap() {
            Some(ReplayEvent::Flow(f)) => Some(f),
            _ => None,
        })
        .collect();
    assert!(flows.len() > 5, "fixture flows read");
    flows
}

fn synthetic_events(n: usize) -> Vec<Vec<u8>> {
    let mut g = Synthetic::new(21);
    (0..n)
        .map(|_| {
            let mut v = Vec::new();
            g.next_event(&mut v);
            v
        })
        .collect()
}

fn parser() -> Parser {
    let g = Synthetic::new(21);
    Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    )
    .with_uuid_seed(4)
}

/// What the exporter sent for a flow before: tonic's prost encoding of
/// the response built from a clone.
fn before(f: &Flow) -> Vec<u8> {
    flow_response(f.clone()).encode_to_vec()
}

#[test]
fn cached_bytes_equal_the_previous_encoding_for_every_fixture() {
    let clock = ClockOffset::new(1_700_000_000_000_000_000);
    let mut p = parser();
    let mut flows = fixture_flows();
    flows.extend(
        synthetic_events(3000)
            .iter()
            .map(|e| p.decode(e, &clock).unwrap()),
    );
    // Edge cases: no time, no node name, an empty flow.
    flows.push(Flow::default());
    flows.push(Flow {
        node_name: "n".into(),
        ..Flow::default()
    });
    let mut buf = Vec::new();
    for f in &flows {
        encode_flow_response(f, &mut buf);
        assert_eq!(buf, before(f), "flow {f:?}");
    }
}

#[test]
fn a_flow_decoded_over_a_recycled_one_equals_a_fresh_decode() {
    let clock = ClockOffset::new(0);
    let events = synthetic_events(3000);
    let (mut fresh, mut reused) = (parser(), parser());
    // A small ring: every slot is recycled hundreds of times, over flows
    // of every kind.
    let observer = Observer::new("n", 7).unwrap();
    for (i, raw) in events.iter().enumerate() {
        let want = fresh.decode(raw, &clock).unwrap();
        observer.push_decoded(
            [raw.as_slice()],
            |raw, f| reused.decode_into(raw, &clock, f),
            |_, e| panic!("rejected: {e}"),
        );
        let Read::Event(slot) = observer.ring().read(i as u64) else {
            panic!("flow {i} not stored");
        };
        let Event::Flow(got) = &slot.value else {
            panic!("flow {i} is not a flow");
        };
        assert_eq!(got, &want, "event {i}");
        assert_eq!(slot.encoded(), before(&want), "event {i}");
    }
}

#[test]
fn a_rejected_record_stores_nothing_and_keeps_positions_exact() {
    let clock = ClockOffset::new(0);
    let events = synthetic_events(20);
    let mut p = parser();
    let observer = Observer::new("n", 3).unwrap();
    let mut rejected = 0;
    for raw in &events {
        observer.push_decoded(
            [raw.as_slice(), &[1, 2, 3][..]],
            |raw, f| p.decode_into(raw, &clock, f),
            |_, _| rejected += 1,
        );
    }
    assert_eq!(rejected, 20);
    assert_eq!(observer.ring().written(), 20);
    assert_eq!(observer.status().seen_flows, 20);
}
