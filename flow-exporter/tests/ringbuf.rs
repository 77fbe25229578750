//! Privileged: the exporter's kernel source end to end. `ebpf/bpf/
//! test_emit.bpf.c` is built with clang and loaded with aya; its ring buffer
//! and lost-event counter are pinned into a private bpffs mounted in a
//! scratch directory (the host's /sys/fs/bpf is never touched, and the mount
//! goes away even when the test fails). The exporter's ring-buffer source
//! opens the pins like a separate process would, and `BPF_PROG_TEST_RUN`
//! makes the program emit events, which must come out as flows.
//!
//! A second test follows the same source's progress markers: they come on
//! an idle ring to a follower that asked for them with the request header,
//! no flow older than a marker follows it, and a follower without the
//! header never sees one.
//!
//! Without root or clang the test skips with a reason, except under CI
//! (`CI` set), where skipping would hide a broken machine: it fails.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aya::maps::{MapData, PerCpuArray, PerCpuValues};
use aya::programs::SchedClassifier;
use aya::{TestRun as _, TestRunOptions};
use flow_exporter::metrics::Metrics;
use flow_exporter::observer::{Event, Observer};
use flow_exporter::pipeline::pipeline;
use flow_exporter::progress::{Markers, PROGRESS_HEADER, marker_time};
use flow_exporter::sources::decoder::ParserDecoder;
use flow_parser::packet::{L4, Packet, tcp_flags};
use flow_parser::{Enricher, Parser};
use proto::flow::{LostEventSource, Verdict};
use proto::observer::GetFlowsRequest;
use proto::observer::GetFlowsResponse;
use proto::observer::get_flows_response::ResponseTypes;
use proto::wkt::Timestamp;
use tonic::metadata::MetadataMap;

/// A private bpffs in a scratch directory (gone even when the test fails).
type Scratch = test_support::BpffsScratch;

fn skip_reason() -> Option<String> {
    test_support::skip_reason(&["clang"])
}

fn build(obj: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ebpf");
    let out = Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
        ])
        .arg(format!("-I{}", root.join("include").display()))
        .arg("-c")
        .arg(root.join("bpf/test_emit.bpf.c"))
        .arg("-o")
        .arg(obj)
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "clang: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pinned_ring_buffer_events_become_flows() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    // Dropped last: the program, then the bpffs, after the runtime.
    let mut kernel = Loaded::new("flow-exporter-ringbuf-");
    let lost_pin = kernel.scratch.bpffs.join("lost_events");
    kernel
        .prog_bpf
        .map_mut("lost_events")
        .expect("lost_events map")
        .pin(&lost_pin)
        .expect("pin lost_events");

    let Ingesting {
        rt,
        metrics,
        observer,
        stop_tx,
        source,
    } = Ingesting::start(&kernel, Some(lost_pin.clone()));

    const RUNS: u64 = 10;
    for _ in 0..RUNS {
        kernel.emit();
    }
    // Simulate 5 failed reserves on CPU 0, as the datapath would count them.
    let mut lost: PerCpuArray<MapData, u64> = PerCpuArray::try_from(
        aya::maps::Map::from_map_data(MapData::from_pin(&lost_pin).unwrap()).unwrap(),
    )
    .unwrap();
    let ncpu = aya::util::nr_cpus().unwrap();
    let mut vals = vec![0u64; ncpu];
    vals[0] = 5;
    lost.set(0, PerCpuValues::try_from(vals).unwrap(), 0)
        .unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut kernel_lost = 0;
    while std::time::Instant::now() < deadline {
        kernel_lost = (observer.ring().oldest()..observer.ring().written())
            .filter_map(|s| match observer.ring().read(s) {
                flow_exporter::ring::Read::Event(e) => match &e.value {
                    Event::Lost { lost, .. }
                        if lost.source == LostEventSource::PerfEventRingBuffer as i32 =>
                    {
                        Some(lost.num_events_lost)
                    }
                    _ => None,
                },
                _ => None,
            })
            .sum::<u64>();
        if observer.status().seen_flows >= 3 * RUNS && kernel_lost >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = stop_tx.send(true);
    rt.block_on(source).unwrap().unwrap();

    assert_eq!(
        observer.status().seen_flows,
        3 * RUNS,
        "three events per run, each a flow"
    );
    assert_eq!(
        kernel_lost, 5,
        "kernel reserve failures surface as PERF_EVENT_RING_BUFFER lost events"
    );
    let flows: Vec<_> = (0..observer.ring().written())
        .filter_map(|s| match observer.ring().read(s) {
            flow_exporter::ring::Read::Event(e) => match &e.value {
                Event::Flow(f) => Some(f.to_flow()),
                Event::Lost { .. } => None,
            },
            _ => None,
        })
        .collect();
    let dropped = flows
        .iter()
        .filter(|f| f.verdict == Verdict::Dropped as i32)
        .count();
    assert!(dropped >= RUNS as usize, "each run emits a drop: {dropped}");
    for f in &flows {
        let ip = f.ip.as_ref().expect("IP decoded from the captured bytes");
        assert_eq!(
            (ip.source.as_str(), ip.destination.as_str()),
            ("10.244.1.60", "10.244.1.5")
        );
        assert_eq!(f.node_name, "kernel-node");
        let age = proto::wkt::Timestamp::now().as_unix_nanos() - f.time.unwrap().as_unix_nanos();
        assert!(
            (0..60_000_000_000).contains(&age),
            "event time converted from boot time: {age} ns"
        );
    }
    let text = metrics.encode();
    assert!(
        text.contains(r#"hubble_lost_events_total{source="perf_event_ring_buffer"} 5"#),
        "{text}"
    );
}

/// The test program loaded into a private bpffs, its ring pinned there.
struct Loaded {
    prog_bpf: aya::Ebpf,
    // Dropped after the program (field order): unmounts the bpffs.
    scratch: Scratch,
}

impl Loaded {
    fn new(prefix: &str) -> Self {
        let scratch = Scratch::new(prefix);
        let obj = scratch.dir.join("test_emit.bpf.o");
        build(&obj);
        let mut bpf = aya::EbpfLoader::new()
            .default_map_pin_directory(&scratch.bpffs)
            .load_file(&obj)
            .expect("load object");
        let prog: &mut SchedClassifier = bpf
            .program_mut("emit_events")
            .expect("program")
            .try_into()
            .expect("classifier");
        prog.load().expect("verifier accepts emit_events");
        Loaded {
            prog_bpf: bpf,
            scratch,
        }
    }

    /// One run of the program: three events (trace, drop, verdict).
    fn emit(&mut self) {
        let frame = Packet::new(
            "10.244.1.60".parse().unwrap(),
            "10.244.1.5".parse().unwrap(),
            L4::Tcp {
                sport: 44916,
                dport: 80,
                flags: tcp_flags::SYN,
            },
        )
        .build();
        let prog: &mut SchedClassifier = self
            .prog_bpf
            .program_mut("emit_events")
            .unwrap()
            .try_into()
            .unwrap();
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(&frame);
        assert_eq!(prog.test_run(opts).expect("test run").return_value, 0);
    }
}

/// The exporter's ingest over the test program's ring, as the binary runs
/// it: an observer with metrics, the pipeline with the exporter's own
/// decoder (`ParserDecoder`, which also turns the source's boot-time
/// watermarks into wall time with the flows' clock offset) and the
/// ring-buffer source, on their own runtime. Sending `true` on `stop_tx`
/// ends the source.
struct Ingesting {
    rt: tokio::runtime::Runtime,
    metrics: Arc<Metrics>,
    observer: Arc<Observer>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    source: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Ingesting {
    fn start(kernel: &Loaded, lost_counter: Option<std::path::PathBuf>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let observer = Arc::new(
            Observer::new("kernel-node", 4095)
                .unwrap()
                .with_metrics(metrics.clone()),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let source = {
            let _guard = rt.enter();
            let parser = Parser::new("kernel-node", Enricher::none());
            let clock = flow_exporter::sources::clock::measure_offset().unwrap();
            let decode = ParserDecoder::new(parser, clock);
            let (ingest, task) = pipeline(observer.clone(), metrics.clone(), Box::new(decode));
            rt.spawn(task);
            rt.spawn(flow_exporter::sources::ringbuf::run(
                kernel.scratch.bpffs.join("events"),
                lost_counter,
                ingest,
                stop_rx,
            ))
        };
        Ingesting {
            rt,
            metrics,
            observer,
            stop_tx,
            source,
        }
    }
}

/// The next response on a follow stream, failing after 20 s.
async fn next_response(
    rx: &mut tokio::sync::mpsc::Receiver<Result<GetFlowsResponse, tonic::Status>>,
) -> GetFlowsResponse {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a response within 20 s")
        .expect("stream open")
        .expect("no error")
}

#[test]
fn an_idle_ring_advances_progress_markers_only_for_those_who_ask() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut kernel = Loaded::new("flow-exporter-progress-");
    let Ingesting {
        rt,
        observer,
        stop_tx,
        source,
        ..
    } = Ingesting::start(&kernel, None);

    // Markers are asked for as the relay does: the request header.
    let mut md = MetadataMap::new();
    md.insert(PROGRESS_HEADER, "2".parse().unwrap());
    let follow = || GetFlowsRequest {
        follow: true,
        ..Default::default()
    };
    let (mut asked, mut plain) = {
        let _guard = rt.enter();
        let markers = Markers::from_metadata(&md).unwrap();
        assert!(markers.is_some());
        let asked = observer.get_flows_with_markers(follow(), markers).unwrap();
        let no_header = Markers::from_metadata(&MetadataMap::new()).unwrap();
        let plain = observer
            .get_flows_with_markers(follow(), no_header)
            .unwrap();
        (asked, plain)
    };

    const RUNS: usize = 5;
    rt.block_on(async {
        // Idle: no event was emitted, yet markers come, and they move.
        let first =
            marker_time(&next_response(&mut asked).await).expect("a marker on an idle node");
        let second = marker_time(&next_response(&mut asked).await).expect("markers keep coming");
        assert!(second > first, "{second:?} after {first:?}");
        let age = Timestamp::now().as_unix_nanos() - second.as_unix_nanos();
        assert!(
            (0..60_000_000_000).contains(&age),
            "a marker's time is the boot time turned into wall time: {age} ns old"
        );

        // Busy: every flow is newer than every marker before it, and the
        // progress passes each run's flows.
        let mut last_marker = second;
        for run in 0..RUNS {
            kernel.emit();
            let mut flows = Vec::new();
            let mut passed = false;
            while !(flows.len() == 3 && passed) {
                let r = next_response(&mut asked).await;
                match (marker_time(&r), r.response_types) {
                    (Some(t), _) => {
                        assert!(t > last_marker, "markers only move forward");
                        last_marker = t;
                        passed = flows.len() == 3 && flows.iter().all(|f| *f < t);
                    }
                    (None, Some(ResponseTypes::Flow(f))) => {
                        let t = f.time.unwrap();
                        assert!(
                            t >= last_marker,
                            "run {run}: a flow at {t:?} follows the marker {last_marker:?}"
                        );
                        flows.push(t);
                    }
                    (None, other) => panic!("unexpected response {other:?}"),
                }
            }
        }

        // Without the header: the same flows and never a marker.
        for _ in 0..3 * RUNS {
            let r = next_response(&mut plain).await;
            assert!(
                matches!(r.response_types, Some(ResponseTypes::Flow(_))),
                "a stream that did not ask got {r:?}"
            );
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), plain.recv())
                .await
                .is_err(),
            "nothing more (no marker) on the stream without the header"
        );
    });
    let _ = stop_tx.send(true);
    rt.block_on(source).unwrap().unwrap();
    observer.close();
    drop(kernel);
}
