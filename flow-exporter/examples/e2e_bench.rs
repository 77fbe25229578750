//! Whole-process figures that criterion cannot give, printed for `just bench`:
//!
//! 1. bytes of heap per stored flow: a ring of 65,535 synthetic flows, each
//!    then read once as a following client reads it (whatever that leaves
//!    in the ring counts), heap measured by a counting allocator before and
//!    after;
//! 2. end-to-end events/s: synthetic raw events through the real pipeline
//!    (queue → decode → enrich → metrics → ring) to a following gRPC client
//!    on loopback that decodes every message, for 5 s, with what the client
//!    received and lost: once with the producer unthrottled (it waits for
//!    room in the queue), once throttled to 1 M events/s as a live source
//!    (a full queue drops the batch, counted), issue 14's condition;
//! 3. ingest on one core (decode + enrich + metrics + ring store, the path
//!    of criterion's `exporter/ingest`) per second of the thread's CPU time
//!    as well as of wall time: on a shared machine the CPU-time figure is
//!    the one that does not move with other processes' load;
//! 4. a following client's own cost (prost-decoding the responses) and the
//!    synthetic producer's, per CPU-second of one thread: with 3., the
//!    fewest cores issue 14's 1 M events/s to one decoding client takes.
//!
//! `e2e_bench ingest [ROUNDS]` prints row 3 alone (ROUNDS of 4,096 events,
//! 500 by default), for profiling it with `perf` or `valgrind`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flow_exporter::metrics::Metrics;
use flow_exporter::observer::{Event, Observer};
use flow_exporter::pipeline::{Batch, RawBatch, pipeline};
use flow_exporter::ring::{Read, Slot};
use flow_parser::{ClockOffset, Enricher, Parser, Synthetic};
use prost::Message;
use proto::observer::GetFlowsResponse;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, get_flows_response::ResponseTypes};

struct Counting;
static HEAP: AtomicI64 = AtomicI64::new(0);

// SAFETY: delegates to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HEAP.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HEAP.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        HEAP.fetch_add(n as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Serves a stored flow the way a follower without a field mask reads it.
fn served_bytes(slot: &Slot<Event>, sink: &mut Vec<u8>) {
    sink.clear();
    if let Event::Flow(f) = &slot.value {
        f.write(sink);
    }
}

fn memory_per_flow() {
    const N: u64 = 65535;
    let g = Synthetic::new(3);
    let mut parser = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let mut gen_ = Synthetic::new(3);
    let clock = ClockOffset::new(0);
    let mut raw = Vec::with_capacity(512);
    let ring = Observer::new("bench", N).unwrap();
    let before = HEAP.load(Ordering::Relaxed);
    // The pipeline's path: decoded around shared endpoints, the text kept
    // apart, stored.
    for _ in 0..N {
        gen_.next_event(&mut raw);
        ring.push_decoded_text(
            [raw.as_slice()],
            |raw, f, eps, text| parser.decode_text_into(raw, &clock, f, eps, text),
            |_, e| panic!("synthetic event rejected: {e}"),
        );
    }
    // What a following client leaves behind: every flow read and encoded
    // as it is served.
    let mut sink = Vec::new();
    for seq in ring.ring().oldest()..ring.ring().written() {
        if let Read::Event(slot) = ring.ring().read(seq) {
            served_bytes(&slot, &mut sink);
        }
    }
    drop(sink);
    let after = HEAP.load(Ordering::Relaxed);
    let ring_bytes_before = before;
    let per_flow = (after - ring_bytes_before) as f64 / N as f64;
    println!(
        "memory: {per_flow:.0} bytes of heap per stored flow (ring of {N} synthetic flows, each read once by a follower)"
    );
}

/// Events per second of the throttled run (issue 14's condition).
const THROTTLED_RATE: u64 = 1_000_000;

/// One end-to-end run; `rate` throttles the producer to that many events/s
/// and makes it a live source (a batch finding the queue full is dropped).
fn end_to_end(rate: Option<u64>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let observer = Arc::new(Observer::new("bench", 65535).unwrap().with_metrics(metrics.clone()));
        let g = Synthetic::new(5);
        let parser = Parser::new(g.node_name(), Enricher::from_static(Arc::new(g.enrichment())));
        let clock = ClockOffset::new(0);
        let decode = flow_exporter::sources::ParserDecoder::new(parser, clock);
        let (ingest, task) = pipeline(observer.clone(), metrics.clone(), Box::new(decode));
        tokio::spawn(task);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = flow_exporter::server::router(observer.clone(), addr.to_string()).await.unwrap();
        tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));

        let received = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let mut client = ObserverClient::connect(format!("http://{addr}")).await.unwrap();
        let mut stream = client
            .get_flows(GetFlowsRequest { follow: true, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let (r2, l2) = (received.clone(), lost.clone());
        tokio::spawn(async move {
            while let Ok(Some(m)) = stream.message().await {
                match m.response_types {
                    Some(ResponseTypes::Flow(_)) => {
                        r2.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(ResponseTypes::LostEvents(l)) => {
                        l2.fetch_add(l.num_events_lost, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;

        let dur = Duration::from_secs(5);
        let start = Instant::now();
        let mut gen_ = Synthetic::new(11);
        let mut scratch = Vec::new();
        let mut produced = 0u64;
        let mut dropped = 0u64;
        while start.elapsed() < dur {
            let mut b = RawBatch::with_capacity(256);
            for _ in 0..256 {
                gen_.next_event(&mut scratch);
                b.push(&scratch);
            }
            produced += 256;
            let batch = Batch::Raw { source: "synthetic", batch: b };
            match rate {
                None => {
                    if ingest.send(batch).await.is_err() {
                        break;
                    }
                }
                Some(rate) => {
                    if !ingest.offer(batch) {
                        dropped += 256;
                    }
                    let due = start + Duration::from_secs_f64(produced as f64 / rate as f64);
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = received.load(Ordering::Relaxed);
        let l = lost.load(Ordering::Relaxed);
        let producer = match rate {
            None => "producer unthrottled".to_owned(),
            Some(r) => format!("producer throttled to {r} events/s, {dropped} dropped at the full queue"),
        };
        println!(
            "end-to-end ({producer}): {:.0} events/s decoded+stored, {:.0} flows/s delivered to a following \
             gRPC client ({produced} produced in {secs:.1}s, {got} delivered, {l} reported lost to the client)",
            observer.status().seen_flows as f64 / secs,
            got as f64 / secs,
        );
    });
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn ingest_one_core(rounds: usize) -> f64 {
    let mut g = Synthetic::new(7);
    let evs: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let mut v = Vec::new();
            g.next_event(&mut v);
            v
        })
        .collect();
    let mut parser = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let clock = ClockOffset::new(0);
    let metrics = Arc::new(Metrics::new());
    let mut counters = metrics.flow_counters();
    let observer = Observer::new("bench", 65535).unwrap();
    let mut round = || {
        observer.push_decoded_text(
            evs.iter().map(Vec::as_slice),
            |raw, f, eps, text| {
                parser.decode_text_into(raw, &clock, f, eps, text)?;
                counters.observe_text(f, text, eps.source.as_deref(), eps.destination.as_deref());
                Ok::<(), flow_parser::DecodeError>(())
            },
            |_, e| panic!("synthetic event rejected: {e}"),
        );
    };
    // Fill the ring twice over first: the steady state reuses its slots.
    for _ in 0..32 {
        round();
    }
    let (wall, cpu) = (Instant::now(), thread_cpu());
    for _ in 0..rounds {
        round();
    }
    let (wall, cpu) = (
        wall.elapsed().as_secs_f64(),
        (thread_cpu() - cpu).as_secs_f64(),
    );
    let n = (rounds * evs.len()) as f64;
    println!(
        "ingest, one core (decode+enrich+metrics+ring): {:.0} events per CPU-second, {:.0} events/s of wall time ({n} events)",
        n / cpu,
        n / wall,
    );
    n / cpu
}

/// One following client's share: prost-decoding the GetFlows responses of
/// the synthetic mix (as a client receives them) on one thread, per
/// CPU-second; and the synthetic producer's cost per event. With the
/// ingest row they say how many cores 1 M events/s to one decoding client
/// needs at the least (the server's writes and the kernel's loopback come
/// on top).
fn client_decode_one_core() -> (f64, f64) {
    const ROUNDS: usize = 100;
    let mut g = Synthetic::new(7);
    let mut parser = Parser::new(
        g.node_name(),
        Enricher::from_static(Arc::new(g.enrichment())),
    );
    let clock = ClockOffset::new(0);
    let mut raw = Vec::new();
    let mut msgs = Vec::with_capacity(4096);
    while msgs.len() < 4096 {
        g.next_event(&mut raw);
        if let Ok(f) = parser.decode(&raw, &clock) {
            msgs.push(flow_exporter::served::flow_response(f).encode_to_vec());
        }
    }
    let mut g2 = Synthetic::new(8);
    let start = thread_cpu();
    for _ in 0..ROUNDS * 4096 {
        g2.next_event(&mut raw);
        std::hint::black_box(&raw);
    }
    let producer = (ROUNDS * 4096) as f64 / (thread_cpu() - start).as_secs_f64();
    let start = thread_cpu();
    let mut n = 0u64;
    for _ in 0..ROUNDS {
        for m in &msgs {
            let r = GetFlowsResponse::decode(m.as_slice()).expect("decodes");
            std::hint::black_box(&r);
            n += 1;
        }
    }
    let decode = n as f64 / (thread_cpu() - start).as_secs_f64();
    (decode, producer)
}

fn main() {
    // `e2e_bench ingest [ROUNDS]`: the ingest row alone, for `perf stat`
    // (instructions per event do not move with the machine's load).
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("ingest") {
        let rounds = args
            .next()
            .map_or(500, |r| r.parse().expect("ROUNDS is a number"));
        ingest_one_core(rounds);
        return;
    }
    let ingest = ingest_one_core(500);
    let (decode, producer) = client_decode_one_core();
    let r = THROTTLED_RATE as f64;
    println!(
        "one core: a following client prost-decodes {decode:.0} flows per CPU-second, the synthetic producer makes \
         {producer:.0} events per CPU-second; {THROTTLED_RATE} events/s to one decoding client needs at least \
         {:.2} cores (producer {:.2} + ingest {:.2} + client {:.2}; server writes and loopback on top) of this machine's {}",
        r / producer + r / ingest + r / decode,
        r / producer,
        r / ingest,
        r / decode,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    memory_per_flow();
    end_to_end(None);
    end_to_end(Some(THROTTLED_RATE));
}
