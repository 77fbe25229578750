//! The `flow-exporter` binary as an operator runs it: a unix socket
//! listener, clean shutdown on SIGTERM and SIGINT, and clear errors for bad
//! input (a malformed replay line with its number, a bad ring capacity).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use proto::observer::ServerStatusRequest;
use proto::observer::observer_client::ObserverClient;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/flows.jsonl");

fn exporter() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flow-exporter"));
    c.args(["--metrics-address", "off", "--node-name", "proc-test"]);
    c
}

/// Kills the process when dropped, also when the test fails.
struct Killed(Option<Child>);

impl Killed {
    fn take(&mut self) -> Child {
        self.0.take().expect("child")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_exit(mut c: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    loop {
        if c.try_wait().unwrap().is_some() {
            return c.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("flow-exporter did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn unix_client(path: &Path) -> ObserverClient<tonic::transport::Channel> {
    let path = path.to_owned();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let p = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(p).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .unwrap();
    ObserverClient::new(channel)
}

fn signal(c: &Child, sig: i32) {
    // SAFETY: kill(2) with a pid we own; no memory is involved.
    assert_eq!(unsafe { libc::kill(c.id() as i32, sig) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_unix_socket_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hubble.sock");
    let mut child = Killed(Some(
        exporter()
            .args(["--replay", FIXTURE, "--listen-address"])
            .arg(format!("unix://{}", sock.display()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "socket never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = unix_client(&sock).await;
    let mut seen = 0;
    while seen != 12 && Instant::now() < deadline {
        seen = client
            .server_status(ServerStatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .seen_flows;
    }
    assert_eq!(seen, 12);
    drop(client);
    let c = child.take();
    signal(&c, libc::SIGTERM);
    // Wait on a blocking thread so this runtime keeps serving the client's
    // connection (it must see the server's GOAWAY for a graceful close).
    let out = tokio::task::spawn_blocking(move || wait_exit(c, Duration::from_secs(10)))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit status {:?}: {err}", out.status);
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(!err.contains("did not close"), "graceful: {err}");
    assert!(!sock.exists(), "socket removed on exit");
}

#[test]
fn sigint_stops_cleanly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Killed(Some(
        exporter()
            .args([
                "--synthetic",
                "--rate",
                "1000",
                "--listen-address",
                &format!("127.0.0.1:{port}"),
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(500));
    let c = child.take();
    signal(&c, libc::SIGINT);
    let out = wait_exit(c, Duration::from_secs(10));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_replay_line_is_an_error_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let good = std::fs::read_to_string(FIXTURE).unwrap();
    let first_two: String = good.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(
        &bad,
        format!("{first_two}{{\"flow\": {{\"verdict\": 17.5}}}}\n"),
    )
    .unwrap();
    let out = exporter().arg("--replay").arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");
}

#[test]
fn invalid_ring_capacity_is_explained() {
    let out = exporter()
        .args(["--synthetic", "--ring-capacity", "4096"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("2^n-1"), "{err}");
}

#[test]
fn a_source_is_required() {
    let out = exporter().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--ringbuf") && err.contains("--replay") && err.contains("--synthetic"),
        "{err}"
    );
}
