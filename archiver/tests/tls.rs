//! `flow-archiver` archiving from an exporter that serves mutual TLS: the
//! CLI's TLS flags (`tls://`, CA, client certificate, server name) get
//! every flow into the archive; a wrong server name is refused with a
//! clear error. The exporter runs in-process on its real TLS listener; the
//! archiver is the binary. Children are killed and files removed at the
//! end.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flow_exporter::observer::Observer;
use proto::flow::{Endpoint, Flow, Verdict};
use proto::wkt::Timestamp;
use test_support::pki::TestPki;

const NODE: &str = "node-a";
const SERVER_NAME: &str = "node-a.default.hubble-grpc.cilium.io";
const FLOWS: u64 = 300;

/// Kills the process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `observer` with mutual TLS on a loopback port; returns the port.
async fn tls_exporter(observer: Arc<Observer>, pki: &TestPki) -> u16 {
    let server = pki.issue("node-a", &[SERVER_NAME]);
    let cfg = svc::tls::server_config(&server.cert, &server.key, &[pki.ca_file()]).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let router = flow_exporter::server::router_with_tls(
        observer,
        format!("127.0.0.1:{port}"),
        Some(SERVER_NAME.to_owned()),
    )
    .await
    .unwrap();
    tokio::spawn(router.serve_with_incoming(svc::tls::incoming(l, cfg)));
    port
}

/// Starts the archiver with `args`, collecting its stderr.
fn archiver(dir: &Path, args: &[&str]) -> (Proc, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
        .arg("--dir")
        .arg(dir)
        .args(["--file-age-secs", "1"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (err, l) = (child.stderr.take().unwrap(), log.clone());
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let mut l = l.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    (Proc(child), log)
}

/// Polls `f` until it holds, panicking after `within`.
async fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "not reached within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn archived_rows(dir: &Path) -> Option<u64> {
    let out = Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
        .arg("status")
        .arg("--dir")
        .arg(dir)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("rows:"))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_from_a_mutual_tls_exporter() {
    let certs = tempfile::tempdir().unwrap();
    let pki = TestPki::new(certs.path(), "hubble-ca");
    let client = pki.issue("archiver", &["flow-archiver.hubble-relay.cilium.io"]);
    let observer = Arc::new(Observer::new(NODE, 4095).unwrap());
    let now = Timestamp::now().as_unix_nanos();
    observer.push_flows((0..FLOWS).map(|i| Flow {
        time: Some(Timestamp::from_unix_nanos(
            now - i128::from(FLOWS - i) * 1_000_000,
        )),
        uuid: format!("{NODE}-{i}"),
        node_name: NODE.into(),
        verdict: Verdict::Forwarded as i32,
        source: Some(Endpoint {
            namespace: "default".into(),
            pod_name: format!("pod-{i}"),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let port = tls_exporter(observer, &pki).await;
    let server = format!("tls://127.0.0.1:{port}");
    let (ca, cert, key) = (
        pki.ca_file().display().to_string(),
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );

    // A name the exporter's certificate does not carry: refused, and said.
    let wrong = tempfile::tempdir().unwrap();
    let (p, log) = archiver(
        wrong.path(),
        &[
            "--server",
            &server,
            "--tls-ca-cert-files",
            &ca,
            "--tls-client-cert-file",
            &cert,
            "--tls-client-key-file",
            &key,
            "--tls-server-name",
            "node-b.default.hubble-grpc.cilium.io",
        ],
    );
    eventually(Duration::from_secs(30), "wrong name reported", || {
        log.lock().unwrap().contains("not valid for name")
    })
    .await;
    drop(p);

    // Missing files fail the start, naming the file.
    let out = Command::new(env!("CARGO_BIN_EXE_flow-archiver"))
        .arg("--dir")
        .arg(wrong.path())
        .args([
            "--server",
            &server,
            "--tls-ca-cert-files",
            "/nonexistent/ca.pem",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");

    // The right settings: every flow is archived.
    let dir = tempfile::tempdir().unwrap();
    let (mut p, log) = archiver(
        dir.path(),
        &[
            "--server",
            &server,
            "--tls-ca-cert-files",
            &ca,
            "--tls-client-cert-file",
            &cert,
            "--tls-client-key-file",
            &key,
            "--tls-server-name",
            SERVER_NAME,
        ],
    );
    let d = dir.path().to_owned();
    let rows = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = archived_rows(&d);
            if r == Some(FLOWS) || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    assert_eq!(rows, Some(FLOWS), "{}", log.lock().unwrap());
    // SAFETY: kill(2) on a child we own.
    assert_eq!(unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) }, 0);
    let status = p.0.wait().unwrap();
    assert!(status.success(), "{}", log.lock().unwrap());
}
