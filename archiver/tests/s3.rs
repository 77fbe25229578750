//! The object-store backend against moto's S3-compatible server: the
//! `Storage` contract on both backends, a live source archived into
//! `s3://bucket/prefix` and read back (same flows, filters, pruning),
//! compaction on S3, resume without duplicates, the binary following into S3
//! and stopping on SIGTERM, and the error cases (missing bucket, unreachable
//! endpoint) naming the location with a non-zero exit.
//!
//! moto is installed by `./bootstrap.sh`; without it these tests are
//! skipped, except under CI, where they fail.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use archiver::location;
use archiver::read::{Archive, Query};
use archiver::storage::{LocalDir, S3Options, Storage};
use archiver::writer::{self, ArchiveWriter, WriterOptions};
use common::{Killed, T0, all, archive_until, flow, live, source};
use proto::flow::{FlowFilter, Verdict};
use proto::wkt::Timestamp;

/// A moto S3 server on a free port, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tells the servers of concurrent tests apart when choosing ports.
static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// How to start moto's server, if it is installed.
fn moto_command() -> Option<Command> {
    let works = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(Command::new("moto_server").arg("--help")) {
        return Some(Command::new("moto_server"));
    }
    if works(Command::new("python3").args(["-c", "import moto.server, flask_cors"])) {
        let mut c = Command::new("python3");
        c.args(["-m", "moto.server"]);
        return Some(c);
    }
    None
}

impl Moto {
    /// Starts a server, or `None` (skip) when moto is not installed; under
    /// CI a missing moto fails the test.
    fn start() -> Option<Moto> {
        let Some(mut cmd) = moto_command() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "moto_server is missing under CI (./bootstrap.sh installs moto[server])"
            );
            eprintln!("skipped: moto_server not installed (./bootstrap.sh installs it)");
            return None;
        };
        // A port outside the kernel's ephemeral range, which `bind(:0)`
        // (the in-process sources) never hands out, so nothing else takes it
        // while moto starts; another free one if moto cannot bind it.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            ^ std::process::id()
            ^ NEXT
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .wrapping_mul(2_654_435_761);
        for attempt in 0..20u32 {
            let port = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server");
            let mut m = Moto { child, port };
            // Wait until it accepts connections (a generous bound on a start
            // that takes a second or two; not a performance figure).
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if let Ok(Some(_)) = m.child.try_wait() {
                    break; // the port was taken: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(m);
                }
                assert!(Instant::now() < deadline, "moto_server did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
            cmd = moto_command().expect("moto_server was found a moment ago");
        }
        panic!("moto_server could not listen on any port tried");
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with a plain (unsigned) HTTP PUT, which moto accepts.
    /// A connection moto resets (seen once in CI on a loaded machine, its
    /// server freshly started) is tried again; a retry may then find the
    /// bucket made by the request whose answer was lost.
    fn create_bucket(&self, name: &str) {
        let put = |port: u16| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            write!(
                s,
                "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            let mut resp = String::new();
            s.read_to_string(&mut resp)?;
            Ok(resp)
        };
        let mut errors = Vec::new();
        for attempt in 0..10 {
            match put(self.port) {
                Ok(resp) => {
                    let exists = attempt > 0 && resp.contains("BucketAlready");
                    assert!(
                        resp.starts_with("HTTP/1.1 200") || exists,
                        "create bucket {name}: {resp}"
                    );
                    return;
                }
                Err(e) => {
                    errors.push(e.to_string());
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!("create bucket {name}: every attempt failed: {errors:?}");
    }

    fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            allow_http: false, // implied by the http:// endpoint
            credentials: Some(("testing".into(), "testing".into())),
        }
    }

    fn open(&self, location: &str) -> Arc<dyn Storage> {
        location::open_with(location, &self.options()).unwrap()
    }

    /// The binary with `args`, configured for this server through
    /// `--s3-endpoint` (after the subcommand's arguments, where a global
    /// flag goes) and the usual environment variables.
    fn archiver(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flow-archiver"));
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .args(args)
            .args(["--s3-endpoint", &self.endpoint()]);
        c
    }
}

/// The contract of `Storage`, the same for every backend.
fn contract(s: &dyn Storage) {
    assert!(s.get("dt=2024-05-01/hour=10/a.parquet").unwrap().is_none());
    assert!(s.get_tail("nope", 8).unwrap().is_none());
    assert!(s.list("").unwrap().is_empty());

    s.put("dt=2024-05-01/hour=10/a.parquet", b"first").unwrap();
    s.put("dt=2024-05-01/hour=10/a.parquet", b"0123456789")
        .unwrap();
    assert_eq!(
        s.get("dt=2024-05-01/hour=10/a.parquet").unwrap().unwrap(),
        b"0123456789",
        "put replaces"
    );
    assert_eq!(
        s.get_tail("dt=2024-05-01/hour=10/a.parquet", 4)
            .unwrap()
            .unwrap(),
        b"6789"
    );
    assert_eq!(
        s.get_tail("dt=2024-05-01/hour=10/a.parquet", 100)
            .unwrap()
            .unwrap(),
        b"0123456789"
    );
    s.put("dt=2024-05-01/hour=09/b.parquet", b"b").unwrap();
    s.put("dt=2024-05-02/hour=00/c.parquet", b"c").unwrap();
    // Hidden and temporary objects, and hidden "directories", are not listed.
    s.put("_archive/state.json", b"{}").unwrap();
    s.put("_archive/gaps.jsonl", b"").unwrap();
    s.put("dt=2024-05-01/hour=10/.d.parquet.1.tmp", b"partial")
        .unwrap();
    s.put("dt=2024-05-01/_tmp/e.parquet", b"e").unwrap();
    assert_eq!(
        s.list("").unwrap(),
        [
            "dt=2024-05-01/hour=09/b.parquet",
            "dt=2024-05-01/hour=10/a.parquet",
            "dt=2024-05-02/hour=00/c.parquet",
        ],
        "sorted, visible objects only"
    );
    assert_eq!(
        s.list("dt=2024-05-01").unwrap(),
        [
            "dt=2024-05-01/hour=09/b.parquet",
            "dt=2024-05-01/hour=10/a.parquet",
        ],
        "a prefix is a directory"
    );
    assert_eq!(
        s.list("dt=2024-05-01/hour=10/").unwrap(),
        ["dt=2024-05-01/hour=10/a.parquet"]
    );
    assert!(s.list("dt=2024-05").unwrap().is_empty(), "whole parts only");
    assert!(s.list("dt=2030-01-01").unwrap().is_empty());
    assert_eq!(s.get("_archive/state.json").unwrap().unwrap(), b"{}");
    assert_eq!(s.get("_archive/gaps.jsonl").unwrap().unwrap(), b"");

    // One level at a time, for pruning by prefix.
    s.put("top.parquet", b"t").unwrap();
    let (dirs, files) = s.list_children("").unwrap();
    assert_eq!(dirs, ["dt=2024-05-01", "dt=2024-05-02"]);
    assert_eq!(files, ["top.parquet"]);
    let (dirs, files) = s.list_children("dt=2024-05-01").unwrap();
    assert_eq!(dirs, ["hour=09", "hour=10"]);
    assert!(files.is_empty());
    let (dirs, files) = s.list_children("dt=2024-05-01/hour=10").unwrap();
    assert!(dirs.is_empty());
    assert_eq!(files, ["dt=2024-05-01/hour=10/a.parquet"]);
    assert_eq!(s.list_children("nope").unwrap(), (vec![], vec![]));
    s.delete("top.parquet").unwrap();

    s.delete("dt=2024-05-01/hour=09/b.parquet").unwrap();
    s.delete("dt=2024-05-01/hour=09/b.parquet").unwrap();
    s.delete("never/existed.parquet").unwrap();
    assert!(s.get("dt=2024-05-01/hour=09/b.parquet").unwrap().is_none());
    assert_eq!(s.list("").unwrap().len(), 2);
}

#[test]
fn storage_contract_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    contract(&LocalDir::new(dir.path()).unwrap());
    let local = location::open(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(local.describe(), dir.path().display().to_string());

    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("contract");
    let s = moto.open("s3://contract/archives/node-1");
    assert_eq!(s.describe(), "s3://contract/archives/node-1");
    contract(s.as_ref());
    // A bucket root works too, and sees the prefixed archive's objects
    // under their full keys.
    let root = moto.open("s3://contract");
    root.put("archives/node-1x/f.parquet", b"sibling").unwrap();
    root.put("archives/node-1/other/_x", b"hidden").unwrap();
    assert_eq!(
        root.list("archives/node-1").unwrap(),
        [
            "archives/node-1/dt=2024-05-01/hour=10/a.parquet",
            "archives/node-1/dt=2024-05-02/hour=00/c.parquet",
        ]
    );
    assert_eq!(
        s.list("").unwrap(),
        [
            "dt=2024-05-01/hour=10/a.parquet",
            "dt=2024-05-02/hour=00/c.parquet",
        ],
        "a prefix's sibling (node-1x) is not inside it"
    );
    // `open` with a trailing slash is the same archive.
    let again = moto.open("s3://contract/archives/node-1/");
    assert_eq!(again.list("").unwrap(), s.list("").unwrap());
}

/// Writes flows over three days, then checks that a query with `since`
/// lists only the days it needs and answers as a full scan would.
fn day_pruning(s: Arc<dyn Storage>) {
    let mut w = ArchiveWriter::new(s.clone(), WriterOptions::default()).unwrap();
    let day = 86_400;
    let flows: Vec<_> = (0..3)
        .flat_map(|d| (0..50).map(move |i| flow(i * 60_000, T0 + d * day)))
        .collect();
    for f in &flows {
        w.append(f).unwrap();
    }
    w.finish().unwrap();
    let since = Timestamp {
        seconds: T0 + day + 1200,
        nanos: 0,
    };
    let q = Query {
        since: Some(since),
        whitelist: vec![FlowFilter {
            verdict: vec![Verdict::Dropped as i32],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (got, stats) = Archive::new(s.clone()).query(&q).unwrap();
    let want: Vec<_> = flows
        .iter()
        .filter(|f| f.time >= Some(since) && f.verdict == Verdict::Dropped as i32)
        .cloned()
        .collect();
    assert_eq!(got, want);
    assert_eq!(stats.days_skipped, 1, "{stats:?}");
    let (_, full) = Archive::new(s.clone()).query(&Query::default()).unwrap();
    assert_eq!(full.days_skipped, 0);
    assert!(stats.files_total < full.files_total, "{stats:?}");
}

#[test]
fn reader_lists_only_the_days_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    day_pruning(location::open(dir.path().to_str().unwrap()).unwrap());
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("days");
    day_pruning(moto.open("s3://days/a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_into_s3_reads_back_compacts_and_resumes() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("flows");
    const N: u64 = 2000;
    let src = source(4095).await;
    src.observer.push_flows((0..N).map(|i| flow(i * 600, T0)));
    let storage = moto.open("s3://flows/cluster-a");
    let st = archive_until(storage.clone(), &src.addr, N).await;
    assert_eq!(st.rows, N);

    // Read back: the same flows, in order, each once, rebuilt in full.
    let flows = all(&storage);
    let uuids: Vec<_> = flows.iter().map(|f| f.uuid.clone()).collect();
    assert_eq!(uuids, live(&src, vec![], None).await);
    assert_eq!(flows[5], flow(5 * 600, T0));
    let files = Archive::new(storage.clone()).files().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("dt=2024-05-01/hour=09/"))
            && files
                .iter()
                .any(|f| f.starts_with("dt=2024-05-01/hour=10/")),
        "{files:?}"
    );
    // Filters and pruning work as on a directory.
    let since = Timestamp {
        seconds: T0 + 600,
        nanos: 0,
    };
    for (wl, since) in [
        (
            vec![FlowFilter {
                verdict: vec![Verdict::Dropped as i32],
                ..Default::default()
            }],
            None,
        ),
        (
            vec![FlowFilter {
                destination_port: vec!["443".into()],
                ..Default::default()
            }],
            Some(since),
        ),
    ] {
        let q = Query {
            whitelist: wl.clone(),
            since,
            ..Default::default()
        };
        let (got, stats) = Archive::new(storage.clone()).query(&q).unwrap();
        let got: Vec<_> = got.into_iter().map(|f| f.uuid).collect();
        assert_eq!(got, live(&src, wl, since).await);
        if since.is_some() {
            assert!(stats.files_read < stats.files_total, "{stats:?}");
        } else {
            assert!(stats.rows_prefiltered > 0, "{stats:?}");
        }
    }
    // The resume state comes from the footers (ranged reads).
    let state = writer::ArchiveState::load(storage.as_ref()).unwrap();
    assert_eq!(state.rows, N);
    assert_eq!(state.last_time, flow((N - 1) * 600, T0).time);

    // Compaction on S3: fewer files, the same flows.
    let before = files.len();
    let cs = archiver::compact::compact(&storage, u64::MAX).unwrap();
    assert!(cs.files_merged >= 2, "{cs:?}");
    let after = Archive::new(storage.clone()).files().unwrap();
    assert!(after.len() < before, "{before} -> {after:?}");
    assert!(after.iter().all(|f| f.contains("/compact-")), "{after:?}");
    let again: Vec<_> = all(&storage).into_iter().map(|f| f.uuid).collect();
    assert_eq!(again, uuids, "compaction kept every flow once");

    // Restart: the source holds old and new flows; only the new ones are
    // appended, from a fresh store object (a new process).
    src.observer
        .push_flows((N..N + 300).map(|i| flow(i * 600, T0)));
    let reopened = moto.open("s3://flows/cluster-a");
    let st = archive_until(reopened.clone(), &src.addr, 300).await;
    assert_eq!(st.rows, 300, "only the new flows");
    let got: Vec<_> = all(&reopened).into_iter().map(|f| f.uuid).collect();
    assert_eq!(
        got,
        (0..N + 300)
            .map(|i| format!("uuid-{:06}", i * 600))
            .collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert!(writer::gaps(reopened.as_ref()).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_follows_into_s3_compacts_and_queries() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("bin");
    let src = source(8191).await;
    src.observer.push_flows((0..1500).map(|i| flow(i, T0)));
    let location = "s3://bin/archive";
    let mut child = Killed(Some(
        moto.archiver(&[
            "--server",
            &src.addr,
            "--file-rows",
            "300",
            "--dir",
            location,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    ));
    let storage = moto.open(location);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Archive::new(storage.clone()).files().unwrap().len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the archiver committed no files to S3"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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
        (0..1500)
            .map(|i| format!("uuid-{i:06}"))
            .collect::<Vec<_>>()
    );

    let out = moto
        .archiver(&["compact", "--dir", location])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(all(&storage).len(), 1500);
    assert_eq!(Archive::new(storage.clone()).files().unwrap().len(), 1);

    let out = moto
        .archiver(&["query", "--dir", location, "--verdict", "DROPPED"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        lines.lines().count(),
        (0..1500u64).filter(|i| i.is_multiple_of(7)).count()
    );
    assert!(lines.lines().all(|l| l.contains("\"verdict\":\"DROPPED\"")));

    let out = moto
        .archiver(&["status", "--dir", location])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("archive:   s3://bin/archive"), "{text}");
    assert!(text.contains("rows:      1500"), "{text}");
}

#[test]
fn errors_name_the_location_and_fail_the_binary() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("exists");

    // A missing bucket: every entry point fails, naming the location.
    let e = location::open_with("s3://missing-bucket/p", &moto.options()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("s3://missing-bucket/p") && msg.contains("bucket does not exist"),
        "{msg}"
    );
    for args in [
        vec!["--server", "127.0.0.1:1", "--dir", "s3://missing-bucket/p"],
        vec!["status", "--dir", "s3://missing-bucket/p"],
        vec!["compact", "--dir", "s3://missing-bucket/p"],
        vec!["query", "--dir", "s3://missing-bucket/p"],
    ] {
        let out = moto.archiver(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            err.contains("archive s3://missing-bucket/p") && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }

    // An endpoint nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{dead}"))
        .args(["status", "--dir", "s3://exists/p"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("archive s3://exists/p") && err.contains("reachable"),
        "{err}"
    );

    // A location that is neither a path nor s3://.
    let out = Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
        .args(["status", "--dir", "gs://bucket/p"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("archive gs://bucket/p: unsupported scheme")
    );
    // A missing local archive is not created by a reader.
    let e = location::open_existing("/nonexistent/archive", &S3Options::default()).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}
