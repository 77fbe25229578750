//! The compact stored form and slot reuse change nothing a client sees:
//! - the bytes a stored flow is served as ([`StoredFlow::write`]: head,
//!   shared endpoints, tail) are exactly what prost writes for the
//!   `GetFlowsResponse` the exporter built before (a clone of the flow, its
//!   node name and time), for every flow of `testdata/flows.jsonl`, 20,000
//!   synthetic flows of every kind, and the same flows under field masks;
//!   the flow rebuilt from it (what in-process readers get) and a reader's
//!   view of it (what filters and masks see, endpoints cached across flows)
//!   equal the original;
//! - a flow stored over a recycled ring slot (the previous flow's buffers
//!   reused) equals the flow decoded into a fresh one.
//!
//! Over gRPC (the codec writing those bytes) the tests of `grpc.rs`,
//! `interop.rs` and `replay_filters.rs` check what clients receive.

use std::sync::Arc;

use flow_exporter::mask::FlowMask;
use flow_exporter::observer::{Event, Observer};
use flow_exporter::ring::{Read, Slot};
use flow_exporter::served::{encode_flow_response, flow_response};
use flow_exporter::sources::replay::{ReplayEvent, parse_line};
use flow_exporter::stored::{Compactor, FlowView, StoredFlow};
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

/// The slot at position `i` of `observer`'s ring; panics when it holds
/// nothing there.
fn stored(observer: &Observer, i: usize) -> Arc<Slot<Event>> {
    let Read::Event(slot) = observer.ring().read(i as u64) else {
        panic!("flow {i} not stored");
    };
    slot
}

/// The stored flow in `slot` (position `i`, for the message).
fn flow_of(slot: &Slot<Event>, i: usize) -> &StoredFlow {
    let Event::Flow(got) = &slot.value else {
        panic!("flow {i} is not a flow");
    };
    got
}

/// What the exporter sent for a flow before: tonic's prost encoding of
/// the response built from a clone.
fn before(f: &Flow) -> Vec<u8> {
    flow_response(f.clone()).encode_to_vec()
}

/// Every fixture flow, 20,000 synthetic ones and edge cases.
fn all_flows() -> Vec<Flow> {
    let clock = ClockOffset::new(1_700_000_000_000_000_000);
    let mut p = parser();
    let mut flows = fixture_flows();
    flows.extend(
        synthetic_events(20_000)
            .iter()
            .map(|e| p.decode(e, &clock).unwrap()),
    );
    // Edge cases: no time, no node name, an empty flow, empty endpoints.
    flows.push(Flow::default());
    flows.push(Flow {
        node_name: "n".into(),
        ..Flow::default()
    });
    flows.push(Flow {
        source: Some(Default::default()),
        destination: Some(Default::default()),
        ..Flow::default()
    });
    // The same endpoint on both sides, then only a destination.
    let mut same = flows[fixture_flows().len()].clone();
    same.destination = same.source.clone();
    flows.push(same.clone());
    same.source = None;
    flows.push(same);
    flows
}

#[test]
fn encoded_bytes_equal_the_previous_encoding_for_every_fixture() {
    let mut buf = Vec::new();
    for f in &all_flows() {
        encode_flow_response(f, &mut buf);
        assert_eq!(buf, before(f), "flow {f:?}");
    }
}

#[test]
fn stored_flows_are_served_as_prost_writes_them_and_rebuild_equal() {
    let masks: Vec<FlowMask> = [
        vec!["time", "verdict", "source.pod_name", "destination"],
        vec!["source", "node_name", "Summary", "source_service"],
        vec!["l4", "IP", "destination.labels", "uuid"],
    ]
    .iter()
    .map(|p| {
        let paths: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        FlowMask::compile(&paths).unwrap().unwrap()
    })
    .collect();
    let mut compactor = Compactor::new();
    // One stored flow reused for all: its buffer is overwritten each time.
    let mut stored = StoredFlow::default();
    let mut rebuilt = Flow::default();
    // One reader's view for all: its endpoints are cached across flows.
    let mut view = FlowView::new();
    let mut check = |f: &Flow| {
        let mut scratch = f.clone();
        compactor.store(&mut scratch, &mut stored);
        assert_eq!(&scratch, f, "storing leaves the flow as it was");
        let want = before(f);
        assert_eq!(stored.encode_to_vec(), want, "flow {f:?}");
        assert_eq!(stored.encoded_len(), want.len());
        stored.flow_into(&mut rebuilt);
        assert_eq!(&rebuilt, f, "rebuilt flow");
        view.with(&stored, |v| {
            assert_eq!(v, f, "the flow filters and masks see")
        });
        assert_eq!(stored.time(), f.time);
    };
    let mut n = 0;
    for f in &all_flows() {
        check(f);
        for m in &masks {
            check(&m.apply(f));
        }
        n += 1;
    }
    assert!(n > 20_000);
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
        let slot = stored(&observer, i);
        let got = flow_of(&slot, i);
        assert_eq!(got.to_flow(), want, "event {i}");
        assert_eq!(got.encode_to_vec(), before(&want), "event {i}");
    }
}

/// The pipeline's path: the flow decoded around the parser's shared
/// endpoints, interned by address, stored over recycled slots: served
/// byte for byte as prost writes the flow the copying decoder gives.
#[test]
fn a_flow_decoded_around_shared_endpoints_is_served_as_the_copied_one() {
    let clock = ClockOffset::new(0);
    let events = synthetic_events(20_000);
    let (mut copied, mut shared) = (parser(), parser());
    let observer = Observer::new("n", 7).unwrap();
    let mut sides = std::collections::HashSet::new();
    for (i, raw) in events.iter().enumerate() {
        let want = copied.decode(raw, &clock).unwrap();
        observer.push_decoded_shared(
            [raw.as_slice()],
            |raw, f, eps| shared.decode_shared_into(raw, &clock, f, eps),
            |_, e| panic!("rejected: {e}"),
        );
        let slot = stored(&observer, i);
        let got = flow_of(&slot, i);
        assert_eq!(got.encode_to_vec(), before(&want), "event {i}");
        assert_eq!(got.to_flow(), want, "event {i}");
        for e in [got.source(), got.destination()].into_iter().flatten() {
            sides.insert(Arc::as_ptr(e) as usize);
        }
    }
    // The namespaces seen are those of the flows' endpoints (noted once
    // per batch per shared endpoint).
    let plain = Observer::new("n", 7).unwrap();
    let mut p = parser();
    plain.push_flows(events.iter().map(|e| p.decode(e, &clock).unwrap()));
    assert!(!plain.namespaces().is_empty());
    assert_eq!(observer.namespaces(), plain.namespaces());
    let batched = Observer::new("n", 7).unwrap();
    let mut p = parser();
    batched.push_decoded_shared(
        events.iter().map(Vec::as_slice),
        |raw, f, eps| p.decode_shared_into(raw, &clock, f, eps),
        |_, e| panic!("rejected: {e}"),
    );
    assert_eq!(batched.namespaces(), plain.namespaces());
    // Stored endpoints are interned, not one per flow (the ring keeps at
    // most 16 flows' worth alive, so this counts addresses over time).
    assert!(sides.len() < 1000, "{} shared endpoints", sides.len());
}

/// The pipeline's path since the text is kept apart: MACs, addresses,
/// summary and UUID written by the encoder straight from the event's
/// values ([`flow_parser::FlowText`]), never through the flow's strings:
/// served byte for byte as prost writes the flow the copying decoder
/// gives, over 20,000 synthetic flows of every kind, into recycled slots;
/// under field masks (the rebuilt flow masked) too.
#[test]
fn a_flow_decoded_with_its_text_apart_is_served_as_the_copied_one() {
    let clock = ClockOffset::new(1_700_000_000_000_000_000);
    let events = synthetic_events(20_000);
    let (mut copied, mut apart) = (parser(), parser());
    let observer = Observer::new("n", 7).unwrap();
    let masks: Vec<FlowMask> = [
        vec!["ethernet", "IP.source", "Summary"],
        vec!["uuid", "l4", "IP"],
    ]
    .iter()
    .map(|p| {
        let paths: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        FlowMask::compile(&paths).unwrap().unwrap()
    })
    .collect();
    let mut view = FlowView::new();
    for (i, raw) in events.iter().enumerate() {
        let want = copied.decode(raw, &clock).unwrap();
        observer.push_decoded_text(
            [raw.as_slice()],
            |raw, f, eps, text| apart.decode_text_into(raw, &clock, f, eps, text),
            |_, e| panic!("rejected: {e}"),
        );
        let slot = stored(&observer, i);
        let got = flow_of(&slot, i);
        assert_eq!(got.encode_to_vec(), before(&want), "event {i}");
        assert_eq!(got.encoded_len(), before(&want).len());
        assert_eq!(got.to_flow(), want, "event {i}");
        view.with(got, |v| {
            for m in &masks {
                assert_eq!(m.apply(v), m.apply(&want), "event {i}");
            }
        });
    }
    // In one batch (decoded and stored a chunk at a time), malformed
    // records among them: the same bytes, in order, every one rejected.
    let (mut copied, mut apart) = (parser(), parser());
    let batched = Observer::new("n", 32767).unwrap();
    let junk: &[u8] = &[1, 2, 3];
    let raws: Vec<&[u8]> = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| {
            let bad = (i % 7 == 3).then_some(junk);
            bad.into_iter().chain([e.as_slice()])
        })
        .collect();
    let mut rejected = 0;
    batched.push_decoded_text(
        raws,
        |raw, f, eps, text| apart.decode_text_into(raw, &clock, f, eps, text),
        |raw, _| {
            assert_eq!(raw, junk);
            rejected += 1;
        },
    );
    assert_eq!(rejected, (0..events.len()).filter(|i| i % 7 == 3).count());
    assert_eq!(batched.ring().written(), events.len() as u64);
    let oldest = batched.ring().oldest();
    for (i, raw) in events.iter().enumerate() {
        let want = copied.decode(raw, &clock).unwrap();
        if (i as u64) < oldest {
            continue;
        }
        let slot = stored(&batched, i);
        let got = flow_of(&slot, i);
        assert_eq!(got.encode_to_vec(), before(&want), "batched event {i}");
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

/// Filters on the endpoints, verdict, IP and L4 are evaluated on a view
/// holding only those fields (the exporter does so when a request's
/// filters set nothing else), and those on the endpoints and verdict on
/// one holding only these (nothing decoded): they select exactly the flows
/// they select on the whole flow.
#[test]
fn head_only_filters_select_as_on_the_whole_flow() {
    use proto::flow::{FlowFilter, TcpFlags, Verdict, Workload};
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let filters = [
        FlowFilter {
            source_pod: s(&["default/xwing"]),
            verdict: vec![Verdict::Dropped as i32],
            ..Default::default()
        },
        FlowFilter {
            destination_pod: s(&["default/"]),
            ..Default::default()
        },
        FlowFilter {
            source_label: s(&["k8s:class=xwing"]),
            destination_label: s(&["reserved:world"]),
            ..Default::default()
        },
        FlowFilter {
            source_ip: s(&["10.0.0.0/8"]),
            destination_port: s(&["80", "53"]),
            ..Default::default()
        },
        FlowFilter {
            source_identity: vec![2, 21097],
            ip_version: vec![1],
            ..Default::default()
        },
        FlowFilter {
            destination_identity: vec![2, 21097],
            ..Default::default()
        },
        FlowFilter {
            source_workload: vec![Workload {
                name: "xwing".into(),
                kind: String::new(),
            }],
            tcp_flags: vec![TcpFlags {
                syn: true,
                ..Default::default()
            }],
            ..Default::default()
        },
    ];
    // The filters that read only endpoints and the verdict.
    let index_only = |f: &FlowFilter| {
        f.source_ip.is_empty()
            && f.destination_port.is_empty()
            && f.ip_version.is_empty()
            && f.tcp_flags.is_empty()
    };
    assert_eq!(filters.iter().filter(|f| index_only(f)).count(), 4);
    let mut compactor = Compactor::new();
    let mut stored = StoredFlow::default();
    let mut view = FlowView::new();
    let flows = all_flows();
    for filter in &filters {
        for (allow, deny) in [
            (vec![filter.clone()], vec![]),
            (vec![], vec![filter.clone()]),
        ] {
            let set = flow_filter::FilterSet::compile(&allow, &deny).unwrap();
            let mut selected = 0;
            for f in &flows {
                let mut scratch = f.clone();
                compactor.store(&mut scratch, &mut stored);
                let want = set.matches(f);
                let got = view.with_fields(&stored, false, |v| set.matches(v));
                assert_eq!(got, want, "filter {filter:?} on {f:?}");
                if index_only(filter) {
                    // Verdict and endpoints only, nothing decoded.
                    let got = view.with_index(&stored, |v| set.matches(v));
                    assert_eq!(got, want, "index: filter {filter:?} on {f:?}");
                }
                // The same view for a whole flow next (a masked reader's
                // filters may be head-only): nothing of the last is left.
                view.with(&stored, |v| assert_eq!(v, f));
                selected += usize::from(want);
            }
            assert!(
                selected > 0 && selected < flows.len(),
                "filter {filter:?} selects {selected} of {}",
                flows.len()
            );
        }
    }
}

/// A slot's flow before anything was stored in it reads as an empty flow.
#[test]
fn a_never_stored_flow_reads_as_an_empty_one() {
    let stored = StoredFlow::default();
    assert_eq!(stored.to_flow(), Flow::default());
    let mut view = FlowView::new();
    view.with(&stored, |f| assert_eq!(f, &Flow::default()));
    view.with_fields(&stored, false, |f| assert_eq!(f, &Flow::default()));
    view.with_index(&stored, |f| assert_eq!(f, &Flow::default()));
}
