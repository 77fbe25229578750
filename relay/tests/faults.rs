//! Fault tests with real processes: three `flow-exporter --synthetic`
//! behind the `relay` binary. A stopped (`SIGSTOP`) node under a follow is
//! reported `NODE_UNAVAILABLE` while the others keep flowing, and
//! `NODE_CONNECTED` after `SIGCONT`, with the documented order for its late
//! flows; a killed and restarted node never gets a stale `NODE_ERROR`
//! after its `NODE_CONNECTED`; a non-follow `--last 5` with a hung node
//! ends at the per-node deadline and names it; 300 follow streams on one
//! connection are limited and leave both servers' RSS under a ceiling
//! derived from the configured limits. Every child is continued and killed
//! when the test ends, also when it fails.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use proto::observer::get_flows_response::ResponseTypes;
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetFlowsRequest, GetFlowsResponse, GetNodesRequest, ServerStatusRequest};
use proto::relay::NodeState;
use proto::wkt::Timestamp;
use tonic::transport::Channel;

const CONNECTED: i32 = NodeState::NodeConnected as i32;
const UNAVAILABLE: i32 = NodeState::NodeUnavailable as i32;

/// A guard against hangs only, far above every configured bound here.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A child process, continued (it may be stopped) and killed when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we own and have not reaped.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// VmRSS from /proc, in bytes.
    fn rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: u64 = s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kb * 1024
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: as in `signal`; a stopped child must run to die cleanly.
        unsafe { libc::kill(self.pid(), libc::SIGCONT) };
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    assert!(
        bin.exists(),
        "flow-exporter binary missing at {} (build: {status:?})",
        bin.display()
    );
    bin
}

fn synthetic(bin: &Path, node: &str, port: u16, rate: u32) -> Proc {
    Proc(
        Command::new(bin)
            .args(["--synthetic", "--rate", &rate.to_string()])
            .args(["--metrics-address", "off", "--node-name", node])
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Three synthetic exporters `node-0..2` at `rate` flows/s each.
fn three(bin: &Path, rate: u32) -> (Vec<Proc>, Vec<u16>) {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let procs = (0..3)
        .map(|i| synthetic(bin, &format!("node-{i}"), ports[i], rate))
        .collect();
    (procs, ports)
}

/// The relay binary over `ports` (`node-<i>`), with `args`.
fn relay(ports: &[u16], args: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("node-{i}=127.0.0.1:{p}"))
        .collect();
    let p = Proc(
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(["--peers", &peers.join(",")])
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .args(["--metrics-address", "off", "--node-name", "relay-test"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (p, port)
}

async fn connect(port: u16) -> ObserverClient<Channel> {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(c) => return ObserverClient::new(c).max_decoding_message_size(64 << 20),
            Err(e) => {
                assert!(Instant::now() < deadline, "connect to {port}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + HANG_GUARD;
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {HANG_GUARD:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connected(c: &ObserverClient<Channel>, n: u32) -> bool {
    c.clone()
        .server_status(ServerStatusRequest {})
        .await
        .is_ok_and(|s| s.into_inner().num_connected_nodes.map(|v| v.value) == Some(n))
}

/// A client of the relay at `port` once it has three nodes, and a follow
/// through it past their NODE_CONNECTED.
async fn follow_three(port: u16) -> (ObserverClient<Channel>, Follow) {
    let c = connect(port).await;
    until("three nodes connected", || connected(&c, 3)).await;
    let mut f = Follow::start(&c).await;
    f.wait(
        "NODE_CONNECTED for three",
        |e| matches!(e, Ev::Status(CONNECTED, n, _) if n.len() == 3),
    )
    .await;
    (c, f)
}

async fn node_state(c: &ObserverClient<Channel>, node: &str) -> i32 {
    let nodes = c
        .clone()
        .get_nodes(GetNodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .nodes;
    nodes.iter().find(|n| n.name == node).unwrap().state
}

/// What a client saw.
#[derive(Debug, Clone)]
enum Ev {
    Flow {
        node: String,
        uuid: String,
        time: Timestamp,
    },
    Status(i32, Vec<String>, String),
    Lost,
}

fn ev(r: GetFlowsResponse) -> Ev {
    match r.response_types {
        Some(ResponseTypes::Flow(f)) => Ev::Flow {
            node: f.node_name,
            uuid: f.uuid,
            time: r.time.or(f.time).unwrap_or_default(),
        },
        Some(ResponseTypes::NodeStatus(s)) => Ev::Status(s.state_change, s.node_names, s.message),
        _ => Ev::Lost,
    }
}

/// A follow through the relay, read into a log by a task.
struct Follow {
    rx: tokio::sync::mpsc::UnboundedReceiver<Ev>,
    log: Vec<Ev>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Follow {
    async fn start(c: &ObserverClient<Channel>) -> Follow {
        let mut s = c
            .clone()
            .get_flows(GetFlowsRequest {
                follow: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(Some(r)) = s.message().await {
                if tx.send(ev(r)).is_err() {
                    break;
                }
            }
        });
        Follow {
            rx,
            log: Vec::new(),
            task,
        }
    }

    /// Reads until `f` holds for an event; returns its index in the log.
    async fn wait(&mut self, what: &str, f: impl Fn(&Ev) -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    let hit = f(&e);
                    self.log.push(e);
                    if hit {
                        return self.log.len() - 1;
                    }
                }
                Ok(None) => panic!("follow ended while waiting for {what}: {:?}", self.tail()),
                Err(_) => panic!("never saw {what}: {:?}", self.tail()),
            }
        }
    }

    /// Reads `n` more flows of `node`.
    async fn flows_of(&mut self, node: &str, n: usize) {
        for _ in 0..n {
            self.wait(
                &format!("a flow of {node}"),
                |e| matches!(e, Ev::Flow { node: x, .. } if x == node),
            )
            .await;
        }
    }

    fn tail(&self) -> Vec<&Ev> {
        let statuses: Vec<&Ev> = self
            .log
            .iter()
            .filter(|e| matches!(e, Ev::Status(..)))
            .collect();
        statuses
    }
}

fn status_is(e: &Ev, state: i32, node: &str) -> bool {
    matches!(e, Ev::Status(s, n, _) if *s == state && n.iter().any(|x| x == node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_is_unavailable_under_a_follow_and_connected_after_sigcont() {
    let bin = tokio::task::spawn_blocking(exporter_bin).await.unwrap();
    let (nodes, ports) = three(&bin, 100);
    // Fast detection; a sort window and buffer large enough that only the
    // returning node's late flows may come out of order (the other
    // documented exceptions need a node lagging 5 s or 100 000 flows).
    let (_relay, port) = relay(
        &ports,
        &[
            "--probe-interval",
            "200ms",
            "--peer-timeout",
            "1s",
            "--peer-keepalive-interval",
            "1s",
            "--sort-buffer-drain-timeout",
            "5s",
            "--sort-buffer-len-max",
            "100000",
            "--error-aggregation-window",
            "2s",
        ],
    );
    let (c, mut f) = follow_three(port).await;
    for n in ["node-0", "node-1", "node-2"] {
        f.flows_of(n, 20).await;
    }

    nodes[1].signal(libc::SIGSTOP);
    let down = f
        .wait("NODE_UNAVAILABLE for node-1", |e| {
            status_is(e, UNAVAILABLE, "node-1")
        })
        .await;
    // The others keep flowing while it is stopped.
    f.flows_of("node-0", 50).await;
    f.flows_of("node-2", 50).await;
    assert_eq!(node_state(&c, "node-1").await, UNAVAILABLE);
    assert!(connected(&c, 2).await);

    nodes[1].signal(libc::SIGCONT);
    let back = f
        .wait("NODE_CONNECTED for node-1", |e| {
            status_is(e, CONNECTED, "node-1")
        })
        .await;
    f.flows_of("node-1", 100).await;
    f.flows_of("node-0", 20).await;
    until("node-1 connected in GetNodes", || async {
        node_state(&c, "node-1").await == CONNECTED
    })
    .await;

    let log = &f.log;
    // Between the two events node-1 is silent; after NODE_CONNECTED no
    // status of node-1 says otherwise.
    assert!(
        log[down..back]
            .iter()
            .all(|e| !matches!(e, Ev::Flow { node, .. } if node == "node-1")),
        "no flow of node-1 while it is unavailable"
    );
    let after: Vec<&Ev> = log[back + 1..]
        .iter()
        .filter(|e| matches!(e, Ev::Status(_, n, _) if n.iter().any(|x| x == "node-1")))
        .collect();
    assert!(
        after.is_empty(),
        "stale status after NODE_CONNECTED: {after:?}"
    );
    // The documented order: a flow older than one sent before it is a late
    // flow of the returning node, after its NODE_CONNECTED.
    let mut newest: Option<Timestamp> = None;
    let mut late = 0;
    let mut uuids = BTreeSet::new();
    for (i, e) in log.iter().enumerate() {
        if let Ev::Flow { node, uuid, time } = e {
            assert!(uuids.insert(uuid.clone()), "flow {uuid} delivered twice");
            if newest.is_some_and(|n| *time < n) {
                assert!(
                    node == "node-1" && i > back,
                    "flow #{i} of {node} out of order, not a late flow of the returning node"
                );
                late += 1;
            }
            newest = newest.max(Some(*time));
        }
    }
    eprintln!(
        "events {}, late flows of node-1 delivered after its return: {late}",
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_node_never_gets_a_stale_error() {
    let bin = tokio::task::spawn_blocking(exporter_bin).await.unwrap();
    let (mut nodes, ports) = three(&bin, 50);
    let window = Duration::from_secs(2);
    let (_relay, port) = relay(
        &ports,
        &[
            "--probe-interval",
            "200ms",
            "--peer-timeout",
            "1s",
            "--error-aggregation-window",
            "2s",
        ],
    );
    let (c, mut f) = follow_three(port).await;
    f.flows_of("node-1", 5).await;

    nodes[1].signal(libc::SIGKILL);
    let _ = nodes[1].0.wait();
    f.wait("NODE_UNAVAILABLE while node-1 is down", |e| {
        status_is(e, UNAVAILABLE, "node-1")
    })
    .await;
    assert_eq!(node_state(&c, "node-1").await, UNAVAILABLE);
    f.flows_of("node-0", 10).await;

    nodes[1] = synthetic(&bin, "node-1", ports[1], 50);
    let back = f
        .wait("NODE_CONNECTED for node-1", |e| {
            status_is(e, CONNECTED, "node-1")
        })
        .await;
    // Read past the aggregation window: an error held back from the
    // outage would come now.
    let until_t = tokio::time::Instant::now() + window * 2;
    while tokio::time::Instant::now() < until_t {
        f.flows_of("node-1", 1).await;
    }
    let statuses: Vec<&Ev> = f
        .log
        .iter()
        .filter(|e| matches!(e, Ev::Status(..)))
        .collect();
    let after: Vec<&Ev> = f.log[back + 1..]
        .iter()
        .filter(|e| matches!(e, Ev::Status(_, n, _) if n.iter().any(|x| x == "node-1")))
        .collect();
    assert!(
        after.is_empty(),
        "stale status after NODE_CONNECTED: {statuses:?}"
    );
    // The outage's own error, if reported, came before its return.
    assert!(
        f.log[..back]
            .iter()
            .any(|e| status_is(e, UNAVAILABLE, "node-1")),
        "{statuses:?}"
    );
    assert_eq!(node_state(&c, "node-1").await, CONNECTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_follow_last_5_with_a_hung_node_ends_at_the_deadline_naming_it() {
    let bin = tokio::task::spawn_blocking(exporter_bin).await.unwrap();
    let (nodes, ports) = three(&bin, 100);
    // Probes and keepalive far away: only the per-node deadline can end
    // the query.
    let (_relay, port) = relay(
        &ports,
        &[
            "--probe-interval",
            "1h",
            "--peer-keepalive-interval",
            "1h",
            "--peer-timeout",
            "30s",
            "--peer-deadline",
            "1s",
        ],
    );
    let c = connect(port).await;
    until("three nodes connected", || connected(&c, 3)).await;
    nodes[1].signal(libc::SIGSTOP);

    let started = Instant::now();
    let mut s = tokio::time::timeout(
        HANG_GUARD,
        c.clone().get_flows(GetFlowsRequest {
            number: 5,
            ..Default::default()
        }),
    )
    .await
    .expect("GetFlows answered")
    .unwrap()
    .into_inner();
    let mut got = Vec::new();
    while let Some(r) = tokio::time::timeout(HANG_GUARD, s.message())
        .await
        .expect("the query ends at the per-node deadline, not at the hang guard")
        .unwrap()
    {
        got.push(ev(r));
    }
    eprintln!("--last 5 with a hung node took {:?}", started.elapsed());
    let flows: Vec<&String> = got
        .iter()
        .filter_map(|e| match e {
            Ev::Flow { node, .. } => Some(node),
            _ => None,
        })
        .collect();
    assert_eq!(flows.len(), 5, "{got:?}");
    assert!(flows.iter().all(|n| *n != "node-1"), "{got:?}");
    assert!(
        got.iter()
            .any(|e| matches!(e, Ev::Status(UNAVAILABLE, n, why)
            if n == &["node-1"] && why.contains("--peer-deadline"))),
        "the hung node is named: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_follows_on_one_connection_keep_rss_bounded() {
    const MAX_STREAMS: u64 = 100;
    const QUEUE: u64 = 256;
    // Per relay stream: its client queue, its sort buffer (100) and its
    // peer buffer (64 responses), at a generous 4 KiB per synthetic flow
    // (about 1 KiB decoded), plus 1 MiB for HTTP/2 buffers and tasks.
    const FLOW_BYTES: u64 = 4 << 10;
    const STREAM_BYTES: u64 = 1 << 20;
    let bin = tokio::task::spawn_blocking(exporter_bin).await.unwrap();
    let eport = free_port();
    let exporter = synthetic(&bin, "node-0", eport, 2000);
    let (relay, port) = relay(
        &[eport],
        &[
            "--max-concurrent-streams",
            &MAX_STREAMS.to_string(),
            "--client-queue-len",
            &QUEUE.to_string(),
        ],
    );
    let c = connect(port).await;
    until("the node connected", || connected(&c, 1)).await;
    let (relay_base, exporter_base) = (relay.rss(), exporter.rss());

    // 300 follows on the one connection of `c`, never read.
    let calls = (0..300).map(|_| {
        let mut c = c.clone();
        async move {
            c.get_flows(GetFlowsRequest {
                follow: true,
                ..Default::default()
            })
            .await
        }
    });
    let results = tokio::time::timeout(HANG_GUARD, futures::future::join_all(calls))
        .await
        .expect("every call answered");
    let mut open = Vec::new();
    let mut refused = 0;
    for r in results {
        match r {
            Ok(s) => open.push(s),
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
                assert!(e.message().contains("--max-concurrent-streams"), "{e:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(open.len() as u64, MAX_STREAMS);
    assert_eq!(refused, 300 - MAX_STREAMS as usize);

    // Fill every queue several times over, then sample.
    let mut e = connect(eport).await;
    let seen = |s: proto::observer::ServerStatusResponse| s.seen_flows;
    let start = seen(
        e.server_status(ServerStatusRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    until("the queues filled several times", || {
        let mut e = e.clone();
        async move {
            seen(
                e.server_status(ServerStatusRequest {})
                    .await
                    .unwrap()
                    .into_inner(),
            ) > start + 4 * (QUEUE + 164)
        }
    })
    .await;
    let (mut relay_max, mut exporter_max) = (0, 0);
    for _ in 0..20 {
        relay_max = relay_max.max(relay.rss());
        exporter_max = exporter_max.max(exporter.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let relay_ceiling = relay_base + MAX_STREAMS * ((QUEUE + 100 + 64) * FLOW_BYTES + STREAM_BYTES);
    // The exporter serves one stream per relay stream: its 64-response
    // stream buffer each.
    let exporter_ceiling = exporter_base + MAX_STREAMS * (64 * FLOW_BYTES + STREAM_BYTES);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "RSS relay {:.1} -> {:.1} MiB (ceiling {:.1}); exporter {:.1} -> {:.1} MiB (ceiling {:.1})",
        mib(relay_base),
        mib(relay_max),
        mib(relay_ceiling),
        mib(exporter_base),
        mib(exporter_max),
        mib(exporter_ceiling)
    );
    assert!(
        relay_max <= relay_ceiling,
        "relay RSS {relay_max} over {relay_ceiling}"
    );
    assert!(
        exporter_max <= exporter_ceiling,
        "exporter RSS {exporter_max} over {exporter_ceiling}"
    );
    drop(open);
}
