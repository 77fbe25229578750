//! Test harness: a real exporter gRPC server (the `flow-exporter` library,
//! in a background runtime) serving a replay file on a free loopback port,
//! and the `hubble` binary run against it with a deadline and kill-on-drop.

#![allow(dead_code, reason = "each test binary uses a subset")]

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_exporter::observer::Observer;
use flow_exporter::replay::{self, ReplayEvent};

/// The 12-flow fixture of the exporter.
pub fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../flow-exporter/testdata/flows.jsonl"
    ))
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: String,
    pub observer: Arc<Observer>,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.observer.close();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Starts a server holding the fixture's flows (node name `replay`).
pub fn start() -> Server {
    start_with(&fixture(), 4095)
}

/// Starts a server holding the events of `file`.
pub fn start_with(file: &std::path::Path, capacity: u64) -> Server {
    start_at(file, capacity, "127.0.0.1:0")
}

/// Starts a server holding the events of `file`, listening on `bind` (a
/// fixed address lets a test restart "the same" server).
pub fn start_at(file: &std::path::Path, capacity: u64, bind: &str) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let observer = Arc::new(Observer::new("replay", capacity).unwrap());
    let events = replay::load(file).unwrap().events;
    let mut flows = Vec::new();
    for ev in events {
        match ev {
            ReplayEvent::Flow(f) => flows.push(f),
            ReplayEvent::Lost(_) => {}
        }
    }
    observer.push_flows(flows);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let obs = observer.clone();
    let bind = bind.to_owned();
    let addr = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = flow_exporter::server::router(obs, addr.to_string())
            .await
            .unwrap();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        addr.to_string()
    });
    Server {
        addr,
        observer,
        rt: Some(rt),
        stop: Some(tx),
    }
}

/// Kills the child when dropped, also when a test fails.
pub struct Killed(pub Option<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a `hubble` run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `hubble` binary with a clean environment (no user config).
pub fn hubble() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubble"));
    c.env_remove("HUBBLE_SERVER")
        .env_remove("HUBBLE_COMPAT")
        .env_remove("HUBBLE_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent-hubble-test")
        .env("NO_COLOR", "1");
    c
}

/// Runs `hubble ARGS` to completion within 20 s.
pub fn run(args: &[&str]) -> Run {
    run_cmd(hubble().args(args))
}

/// Runs a prepared command to completion within 20 s.
pub fn run_cmd(cmd: &mut Command) -> Run {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hubble");
    let mut guard = Killed(Some(child));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = guard.0.as_mut().unwrap();
        if let Some(status) = c.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            guard.0 = None;
            return Run {
                code: status.code().unwrap_or(-1),
                stdout: out,
                stderr: err,
            };
        }
        if Instant::now() > deadline {
            panic!("hubble did not exit within 20 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
