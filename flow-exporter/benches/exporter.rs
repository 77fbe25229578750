//! Exporter benchmarks (criterion):
//! - `ingest`: raw synthetic events decoded + enriched + counted in metrics
//!   + stored in the ring, per second on one core;
//! - `scan`: GetFlows over a full ring of 65,535 flows with a selective
//!   filter (`--pod default/xwing --verdict DROPPED`), flows scanned per second.
//!
//! The end-to-end figure and memory per flow are printed by
//! `cargo run --release -p flow-exporter --example e2e_bench`.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_exporter::metrics::Metrics;
use flow_exporter::observer::Observer;
use flow_parser::{ClockOffset, Enricher, Parser, Synthetic};
use proto::flow::{FlowFilter, Verdict};
use proto::observer::GetFlowsRequest;

fn events(n: usize) -> Vec<Vec<u8>> {
    let mut g = Synthetic::new(7);
    (0..n)
        .map(|_| {
            let mut v = Vec::new();
            g.next_event(&mut v);
            v
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let evs = events(4096);
    let g = Synthetic::new(7);
    let mut parser = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let clock = ClockOffset::new(0);
    let metrics = Arc::new(Metrics::new());
    let mut counters = metrics.flow_counters();
    let observer = Observer::new("bench", 65535).unwrap();
    let mut grp = c.benchmark_group("exporter");
    grp.throughput(Throughput::Elements(evs.len() as u64));
    grp.bench_function("ingest: decode+enrich+metrics+ring (events)", |b| {
        // The pipeline's path: decoded in place into the ring's recycled
        // slots, counted, stored.
        b.iter(|| {
            observer.push_decoded_text(
                evs.iter().map(Vec::as_slice),
                |raw, f, eps, text| {
                    parser.decode_text_into(raw, &clock, f, eps, text)?;
                    counters.observe_text(
                        f,
                        text,
                        eps.source.as_deref(),
                        eps.destination.as_deref(),
                    );
                    Ok::<(), flow_parser::DecodeError>(())
                },
                |_, e| panic!("synthetic event rejected: {e}"),
            );
        })
    });
    grp.finish();
}

fn scan(c: &mut Criterion) {
    let evs = events(65535);
    let g = Synthetic::new(7);
    let mut parser = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let clock = ClockOffset::new(0);
    let observer = Arc::new(Observer::new("bench", 65535).unwrap());
    observer.push_flows(evs.iter().filter_map(|e| parser.decode(e, &clock).ok()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let req = GetFlowsRequest {
        number: 0,
        whitelist: vec![
            FlowFilter {
                source_pod: vec!["default/xwing".into()],
                verdict: vec![Verdict::Dropped as i32],
                ..Default::default()
            },
            FlowFilter {
                destination_pod: vec!["default/xwing".into()],
                verdict: vec![Verdict::Dropped as i32],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut grp = c.benchmark_group("exporter");
    grp.throughput(Throughput::Elements(65535));
    grp.bench_function(
        "scan: GetFlows over a full 65535 ring, selective filter (flows)",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut rx = observer.get_flows(req.clone()).unwrap();
                    let mut n = 0;
                    while let Some(r) = rx.recv().await {
                        r.unwrap();
                        n += 1;
                    }
                    n
                })
            })
        },
    );
    grp.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = ingest, scan
}
criterion_main!(benches);
