//! The binaries as an operator runs them: three `flow-exporter --replay`
//! processes behind the `relay` binary. A client sees the whole cluster
//! (status 3/3, three nodes, every flow once and in time order); killing an
//! exporter during a follow yields a node error and the stream goes on;
//! restarting it reconnects without client action. Every child process is
//! killed when the test ends, also when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Seen, eventually, flows_of, free_port, replay_file, seen, uuids};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, GetNodesRequest, ServerStatusRequest};
use proto::relay::NodeState;
use tonic::transport::Channel;

/// Kills the process when dropped.
struct Proc(Option<Child>);

impl Proc {
    fn pid(&self) -> i32 {
        self.0.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we own; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let c = self.0.as_mut().expect("child");
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `flow-exporter` binary of this workspace, built if needed.
fn exporter_bin() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_relay")).parent().unwrap();
    let bin = dir.join("flow-exporter");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--workspace", "--bin", "flow-exporter"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    if !bin.exists() {
        panic!(
            "flow-exporter binary missing at {} (build: {status:?})",
            bin.display()
        );
    }
    bin
}

fn start_exporter(bin: &Path, file: &Path, node: &str, port: u16) -> Proc {
    Proc(Some(
        Command::new(bin)
            .arg("--replay")
            .arg(file)
            .args(["--metrics-address", "off", "--node-name", node])
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ))
}

/// An exporter with any source arguments, its metrics off.
fn start_exporter_with(bin: &Path, source: &[&str], node: &str, port: u16) -> Proc {
    Proc(Some(
        Command::new(bin)
            .args(source)
            .args(["--metrics-address", "off", "--node-name", node])
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ))
}

async fn connect(port: u16) -> ObserverClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(c) => return ObserverClient::new(c),
            Err(e) => {
                assert!(Instant::now() < deadline, "connect to {port}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A client of the relay on `port`, once the relay has connected its three
/// peers.
async fn connect_with_three_nodes(port: u16) -> ObserverClient<Channel> {
    let c = connect(port).await;
    eventually(Duration::from_secs(20), || {
        let mut c = c.clone();
        async move { connected_nodes(&mut c).await == Some(3) }
    })
    .await;
    c
}

async fn connected_nodes(c: &mut ObserverClient<Channel>) -> Option<u32> {
    c.server_status(ServerStatusRequest {})
        .await
        .ok()?
        .into_inner()
        .num_connected_nodes
        .map(|v| v.value)
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_exporters_behind_the_relay_binary() {
    let bin = tokio::task::spawn_blocking(exporter_bin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let per_node = 50;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| replay_file(dir.path(), i, per_node))
        .collect();
    let mut exporters: Vec<Proc> = (0..3)
        .map(|i| start_exporter(&bin, &files[i], &format!("node-{i}"), ports[i]))
        .collect();
    for &p in &ports {
        let mut c = connect(p).await;
        eventually(Duration::from_secs(20), || {
            let mut c = c.clone();
            async move {
                c.server_status(ServerStatusRequest {})
                    .await
                    .is_ok_and(|s| s.into_inner().seen_flows == per_node as u64)
            }
        })
        .await;
        let _ = &mut c;
    }

    let relay_port = free_port();
    let metrics_port = free_port();
    let peers: Vec<String> = (0..3)
        .map(|i| format!("node-{i}=127.0.0.1:{}", ports[i]))
        .collect();
    let mut relay = Proc(Some(
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["--peers", &peers.join(",")])
            .args(["--listen-address", &format!("127.0.0.1:{relay_port}")])
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
            .args([
                "--node-name",
                "relay-test",
                "--error-aggregation-window",
                "1s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let mut c = connect_with_three_nodes(relay_port).await;
    let nodes = c.get_nodes(GetNodesRequest {}).await.unwrap().into_inner();
    assert_eq!(nodes.nodes.len(), 3);
    assert!(
        nodes
            .nodes
            .iter()
            .all(|n| n.state == NodeState::NodeConnected as i32 && n.num_flows == 50)
    );

    // Every flow once, in time order.
    let got = common::collect(
        &mut c,
        GetFlowsRequest {
            number: 10_000,
            ..Default::default()
        },
    )
    .await;
    let flows = flows_of(&got);
    assert_eq!(flows.len(), 3 * per_node);
    let mut sorted = flows.clone();
    sorted.sort_by_key(|(_, t)| *t);
    assert_eq!(flows, sorted);
    let mut u = uuids(&got);
    u.sort();
    u.dedup();
    assert_eq!(u.len(), 3 * per_node);
    // --last 4: the cluster's four newest.
    let got = uuids(
        &common::collect(
            &mut c,
            GetFlowsRequest {
                number: 4,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(got, ["node-2-48", "node-0-49", "node-1-49", "node-2-49"]);

    // Follow, then kill node-1.
    let mut follow = c
        .get_flows(GetFlowsRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Ok(Some(r)) = follow.message().await {
            if tx.send(seen(r)).is_err() {
                break;
            }
        }
    });
    let mut wait_for = async |what: &str, f: &dyn Fn(&Seen) -> bool| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) if f(&s) => return s,
                Ok(Some(_)) => {}
                Ok(None) => panic!("follow stream ended while waiting for {what}"),
                Err(_) => panic!("never saw {what}"),
            }
        }
    };
    wait_for("NODE_CONNECTED", &|s| {
        matches!(s, Seen::Status(st, n, _) if *st == NodeState::NodeConnected as i32 && n.len() == 3)
    })
    .await;
    exporters[1].signal(libc::SIGKILL);
    exporters[1].wait_exit(Duration::from_secs(10));
    wait_for("NODE_ERROR for node-1", &|s| {
        matches!(s, Seen::Status(st, n, _) if *st == NodeState::NodeError as i32 && n == &["node-1"])
    })
    .await;
    eventually(Duration::from_secs(30), || {
        let mut c = c.clone();
        async move { connected_nodes(&mut c).await == Some(2) }
    })
    .await;

    // Restart it: the relay reconnects and the follow stream picks it up.
    exporters[1] = start_exporter(&bin, &files[1], "node-1", ports[1]);
    wait_for("node-1 connected again", &|s| {
        matches!(s, Seen::Status(st, n, _) if *st == NodeState::NodeConnected as i32 && n == &["node-1"])
    })
    .await;
    eventually(Duration::from_secs(30), || {
        let mut c = c.clone();
        async move { connected_nodes(&mut c).await == Some(3) }
    })
    .await;

    let m = tokio::task::spawn_blocking(move || http_get(metrics_port, "/metrics"))
        .await
        .unwrap();
    assert!(
        m.contains(r#"hubble_relay_pool_peer_connection_status{status="READY"} 3"#),
        "{m}"
    );
    assert!(m.contains("hubble_relay_flows_forwarded_total"), "{m}");

    // SIGTERM with a follow client connected: a clean, prompt exit.
    relay.signal(libc::SIGTERM);
    let st = tokio::task::spawn_blocking(move || {
        let s = relay.wait_exit(Duration::from_secs(15));
        let mut err = String::new();
        use std::io::Read as _;
        if let Some(mut e) = relay.0.as_mut().and_then(|c| c.stderr.take()) {
            let _ = e.read_to_string(&mut err);
        }
        (s, err)
    })
    .await
    .unwrap();
    assert!(st.0.success(), "{}", st.1);
    assert!(st.1.contains("SIGTERM"), "{}", st.1);
    assert!(!st.1.contains("did not close"), "graceful: {}", st.1);
    reader.abort();
}

#[test]
fn help_and_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in [
        "--peers",
        "--peer-service",
        "--listen-address",
        "--sort-buffer-drain-timeout",
        "--tls-hubble-server-ca-files",
        "--cluster-name",
        "--probe-interval",
        "--peer-timeout",
        "--peer-keepalive-interval",
        "--peer-deadline",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_relay")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["--peers", "a:99999", "--metrics-address", "off"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("invalid port"), "{err}");

    // A zero timeout would spin or never detect anything: refused, named.
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["--peers", "a", "--metrics-address", "off"])
        .args(["--peer-timeout", "0s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--peer-timeout must be above 0"), "{err}");

    // A metrics port that is taken stops the start, naming the address.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(["--peers", "a", "--metrics-address", &taken])
        .args(["--listen-address", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("listen on {taken} for metrics")),
        "{err}"
    );
}

/// One busy and two idle exporter processes behind the relay binary, whose
/// sort window is an hour: only the idle nodes' progress markers, which
/// their real ingest advances (the synthetic source's boot-time watermark
/// through the decoder; a replay once fed), can release the busy node's
/// flows while the nodes stay idle. They come, in time order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_exporters_progress_releases_a_busy_ones_flows() {
    let bin = tokio::task::spawn_blocking(exporter_bin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let empty_arg = empty.to_str().unwrap();
    let sources: [&[&str]; 3] = [
        &["--synthetic", "--rate", "2000"],
        &["--synthetic", "--rate", "0"],
        &["--replay", empty_arg],
    ];
    let _exporters: Vec<Proc> = (0..3)
        .map(|i| start_exporter_with(&bin, sources[i], &format!("prg-{i}"), ports[i]))
        .collect();
    for &p in &ports {
        connect(p).await;
    }
    let relay_port = free_port();
    let peers: Vec<String> = (0..3)
        .map(|i| format!("prg-{i}=127.0.0.1:{}", ports[i]))
        .collect();
    let _relay = Proc(Some(
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["--peers", &peers.join(",")])
            .args(["--listen-address", &format!("127.0.0.1:{relay_port}")])
            .args(["--metrics-address", "off", "--node-name", "relay-prg"])
            .args(["--sort-buffer-drain-timeout", "1h"])
            .args(["--sort-buffer-len-max", "1000000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let mut c = connect_with_three_nodes(relay_port).await;
    let mut follow = c
        .get_flows(GetFlowsRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut times = Vec::new();
    while times.len() < 500 {
        let r = tokio::time::timeout(Duration::from_secs(30), follow.message())
            .await
            .expect("flows released within 30 s of an hour's window: markers")
            .unwrap()
            .expect("stream open");
        if let Some(proto::observer::get_flows_response::ResponseTypes::Flow(f)) = r.response_types
        {
            assert_eq!(f.node_name, "prg-0", "only the busy node has flows");
            times.push(f.time.unwrap());
        }
    }
    assert!(
        times.is_sorted(),
        "the busy node's flows come in time order"
    );
}
