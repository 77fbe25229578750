//! Flows per second that `hubble observe --all` prints to /dev/null from a
//! local exporter, in json and compact form: a real gRPC server (the
//! `flow-exporter` library) holding 65,535 fixture flows on loopback, and
//! the CLI's own entry point (`hubble_tui::cli::run`, the same code path as
//! the binary: connect, stream, print through a 64 KiB buffer).

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flow_exporter::observer::Observer;
use flow_exporter::replay::{self, ReplayEvent};

const FLOWS: u64 = 65_535;

struct Server {
    addr: String,
    _rt: tokio::runtime::Runtime,
}

fn start() -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../flow-exporter/testdata/flows.jsonl"
    );
    let base: Vec<_> = replay::load(std::path::Path::new(file))
        .unwrap()
        .events
        .into_iter()
        .filter_map(|e| match e {
            ReplayEvent::Flow(f) => Some(f),
            ReplayEvent::Lost(_) => None,
        })
        .collect();
    let observer = Arc::new(Observer::new("bench", FLOWS).unwrap());
    observer.push_flows((0..FLOWS).map(|i| {
        let mut f = base[(i as usize) % base.len()].clone();
        if let Some(t) = f.time.as_mut() {
            t.seconds += i as i64;
        }
        f
    }));
    let addr = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = flow_exporter::server::router(observer, addr.to_string())
            .await
            .unwrap();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = router.serve_with_incoming(incoming).await;
        });
        addr.to_string()
    });
    Server { addr, _rt: rt }
}

fn observe(addr: &str, output: &str) {
    let io = hubble_tui::cli::Io {
        out: Box::new(std::fs::File::create("/dev/null").unwrap()),
        err: Box::new(std::io::sink()),
        out_is_terminal: false,
    };
    let code = hubble_tui::cli::run(
        ["hubble", "observe", "--server", addr, "--all", "-o", output],
        io,
    );
    assert_eq!(code, 0);
}

fn bench(c: &mut Criterion) {
    let s = start();
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(FLOWS));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for output in ["json", "compact"] {
        g.bench_function(format!("{output}_to_dev_null"), |b| {
            b.iter(|| observe(&s.addr, output))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
