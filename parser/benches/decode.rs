//! Decode + enrich cost per event, on the synthetic generator's realistic mix
//! and on single event kinds. `just bench` runs it; criterion prints the
//! figures (time per event and events/s).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_parser::{ClockOffset, Enricher, Parser, Synthetic};
use proto::flow::Flow;

const BATCH: usize = 4096;

fn events(seed: u64) -> (Vec<Vec<u8>>, Enricher) {
    let mut g = Synthetic::new(seed);
    let enricher = Enricher::from_static(Arc::new(g.enrichment()));
    let mut out = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        let mut buf = Vec::new();
        g.next_event(&mut buf);
        out.push(buf);
    }
    (out, enricher)
}

fn bench(c: &mut Criterion) {
    let (evs, enricher) = events(1);
    let clock = ClockOffset::new(1_700_000_000_000_000_000);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(BATCH as u64));

    let mut p = Parser::new("kind-worker", enricher.clone()).with_uuid_seed(1);
    g.bench_function("synthetic_mix_enriched", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(p.decode(black_box(e), &clock).ok());
            }
        })
    });

    let mut p = Parser::new("kind-worker", enricher.clone()).with_uuid_seed(1);
    let mut flow = Flow::default();
    g.bench_function("synthetic_mix_enriched_decode_into", |b| {
        b.iter(|| {
            for e in &evs {
                let _ = p.decode_into(black_box(e), &clock, &mut flow);
                black_box(&flow);
            }
        })
    });

    let mut p = Parser::new("kind-worker", Enricher::none()).with_uuid_seed(1);
    g.bench_function("synthetic_mix_no_enrichment", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(p.decode(black_box(e), &clock).ok());
            }
        })
    });

    let mut p = Parser::new("kind-worker", enricher).without_uuids();
    g.bench_function("synthetic_mix_enriched_no_uuid", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(p.decode(black_box(e), &clock).ok());
            }
        })
    });

    g.bench_function("abi_parse_only", |b| {
        b.iter(|| {
            for e in &evs {
                black_box(ebpf::parse(black_box(e)).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
