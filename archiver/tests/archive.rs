//! The archiver against a live in-process exporter: N flows archived and read
//! back (here, and by DuckDB, pyarrow and polars), history queries equal to
//! the live server's answers for the same filters, resume without duplicates,
//! gaps recorded, `kill -9` leaving only complete files, and SIGTERM losing
//! nothing.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use archiver::read::{Archive, Query};
use archiver::storage::{LocalDir, Storage};
use archiver::writer;
use common::{Killed, T0, all, archive_until, flow, live, source};
use proto::flow::{FlowFilter, Verdict};
use proto::wkt::Timestamp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_every_flow_and_answers_like_the_live_server() {
    const N: u64 = 2000;
    let src = source(4095).await;
    src.observer.push_flows((0..N).map(|i| flow(i * 600, T0)));
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.path()).unwrap());
    let st = archive_until(storage.clone(), &src.addr, N).await;
    assert_eq!(st.rows, N, "SIGTERM-style stop commits everything");

    let flows = all(&storage);
    assert_eq!(flows.len() as u64, N);
    let uuids: Vec<_> = flows.iter().map(|f| f.uuid.clone()).collect();
    assert_eq!(
        uuids,
        live(&src, vec![], None).await,
        "same flows, same order, each once"
    );
    assert_eq!(
        flows[5],
        (0..N).map(|i| flow(i * 600, T0)).nth(5).unwrap(),
        "full flow rebuilt"
    );
    let files = Archive::new(storage.clone()).files().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("dt=2024-05-01/hour=09/")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("dt=2024-05-01/hour=10/")),
        "{files:?}"
    );

    // History queries equal the live server's answers for the same filters.
    let since = Timestamp {
        seconds: T0 + 600,
        nanos: 0,
    };
    for (name, wl, since) in [
        (
            "--verdict DROPPED",
            vec![FlowFilter {
                verdict: vec![2],
                ..Default::default()
            }],
            None,
        ),
        (
            "--from-namespace kube-system",
            vec![FlowFilter {
                source_pod: vec!["kube-system/".into()],
                ..Default::default()
            }],
            None,
        ),
        (
            "--to-port 443 --since",
            vec![FlowFilter {
                destination_port: vec!["443".into()],
                ..Default::default()
            }],
            Some(since),
        ),
        (
            "--from-label app=app1",
            vec![FlowFilter {
                source_label: vec!["app=app1".into()],
                ..Default::default()
            }],
            None,
        ),
    ] {
        let q = Query {
            whitelist: wl.clone(),
            since,
            ..Default::default()
        };
        let (got, stats) = Archive::new(storage.clone()).query(&q).unwrap();
        let got: Vec<_> = got.into_iter().map(|f| f.uuid).collect();
        assert_eq!(got, live(&src, wl, since).await, "{name}");
        if name.contains("--since") {
            assert!(
                stats.files_read < stats.files_total,
                "partitions before --since are pruned: {stats:?}"
            );
        }
        if name.contains("DROPPED") {
            assert!(
                stats.rows_prefiltered > 0,
                "verdict prefilter skips decoding: {stats:?}"
            );
        }
    }
    let (last, _) = Archive::new(storage.clone())
        .query(&Query {
            number: Some(3),
            ..Default::default()
        })
        .unwrap();
    let last: Vec<_> = last.into_iter().map(|f| f.uuid).collect();
    assert_eq!(last, uuids[uuids.len() - 3..], "--last 3");

    // Independent readers: DuckDB, pyarrow and polars.
    let dropped = flows
        .iter()
        .filter(|f| f.verdict == Verdict::Dropped as i32)
        .count();
    python_readers(dir.path(), N, dropped);
}

fn python_readers(dir: &std::path::Path, n: u64, dropped: usize) {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb, pyarrow, polars, pandas"])
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "duckdb/pyarrow/polars missing under CI (./bootstrap.sh installs them)"
        );
        eprintln!("skipped python readers: duckdb/pyarrow/polars/pandas not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_archive.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg(n.to_string())
        .arg(dropped.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python readers failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_without_duplicates_and_records_gaps() {
    let src = source(1023).await;
    src.observer.push_flows((0..500).map(|i| flow(i, T0)));
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.path()).unwrap());
    archive_until(storage.clone(), &src.addr, 500).await;
    // 300 more while the archiver is down; the source still holds them all.
    src.observer.push_flows((500..800).map(|i| flow(i, T0)));
    archive_until(storage.clone(), &src.addr, 300).await;
    let uuids: Vec<_> = all(&storage).into_iter().map(|f| f.uuid).collect();
    assert_eq!(
        uuids,
        (0..800).map(|i| format!("uuid-{i:06}")).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert!(writer::gaps(storage.as_ref()).unwrap().is_empty());

    // 2000 more while down: the ring (1023) lost some: a gap is recorded.
    src.observer.push_flows((800..2800).map(|i| flow(i, T0)));
    archive_until(storage.clone(), &src.addr, 1023).await;
    let got = all(&storage);
    assert_eq!(got.len(), 800 + 1023);
    let gaps = writer::gaps(storage.as_ref()).unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].from, flow(799, T0).time);
    assert_eq!(gaps[0].to, flow(2800 - 1023, T0).time);
}

fn archiver_process(addr: &str, dir: &std::path::Path) -> Killed {
    Killed(Some(
        Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
            .args([
                "--server",
                addr,
                "--file-rows",
                "300",
                "--file-age-secs",
                "1",
                "--dir",
            ])
            .arg(dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_leaves_complete_files_and_restart_loses_nothing() {
    let src = source(65535).await;
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.path()).unwrap());
    let mut child = archiver_process(&src.addr, dir.path());
    // Flows arrive while the archiver writes; kill -9 once files exist.
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Archive::new(storage.clone()).files().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "archiver committed no files");
        src.observer
            .push_flows((next..next + 100).map(|i| flow(i, T0)));
        next += 100;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    src.observer
        .push_flows((next..next + 250).map(|i| flow(i, T0)));
    next += 250;
    let mut c = child.0.take().unwrap();
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    // Every visible file is a complete Parquet file.
    let before = all(&storage).len() as u64;
    assert!(before > 0 && before <= next);

    // Restart, add more, stop with SIGTERM: everything is there exactly once.
    let mut child = archiver_process(&src.addr, dir.path());
    src.observer
        .push_flows((next..next + 500).map(|i| flow(i, T0)));
    next += 500;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let st = writer::ArchiveState::load(storage.as_ref()).unwrap();
        if st.last_time == flow(next - 1, T0).time || Instant::now() > deadline {
            break;
        }
    }
    let c = child.0.take().unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uuids: Vec<_> = all(&storage).into_iter().map(|f| f.uuid).collect();
    assert_eq!(
        uuids,
        (0..next)
            .map(|i| format!("uuid-{i:06}"))
            .collect::<Vec<_>>()
    );
}
