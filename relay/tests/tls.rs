//! TLS end to end, with the binaries as an operator runs them: a CA made in
//! the test, three `flow-exporter --replay` with mutual TLS (certificates
//! for `node-N.default.hubble-grpc.cilium.io`), the `relay` binary dialling
//! them with its client certificate and serving TLS with mTLS as
//! `instance.hubble-relay.cilium.io`, and the `hubble` CLI binary running
//! `status` and `observe` through it. Refused: a client without a
//! certificate, a wrong server name, plain text to a TLS server. A second
//! test discovers the exporters through a peer service over mTLS (as a
//! Cilium agent's, named `hubble-peer.<cluster>.hubble-grpc.cilium.io`)
//! instead of a static list. Every child process is killed and every file
//! removed when the test ends.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, free_port, replay_file};
use futures::{Stream, StreamExt as _};
use proto::observer::observer_client::ObserverClient;
use proto::observer::{GetNodesRequest, ServerStatusRequest};
use proto::peer::peer_client::PeerClient;
use proto::peer::peer_server::{Peer, PeerServer};
use proto::peer::{ChangeNotification, NotifyRequest};
use svc::tls::{ClientOptions, ClientTls};
use test_support::pki::{Issued, TestPki};
use tonic::transport::{Channel, Endpoint};

const RELAY_NAME: &str = "instance.hubble-relay.cilium.io";
const PER_NODE: usize = 40;

/// Kills the process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of this workspace next to the relay's, built if needed.
fn workspace_bin(_package: &str, bin: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_relay")).parent().unwrap();
    let path = dir.join(bin);
    let status = Command::new(env!("CARGO"))
        // `--workspace`, not `-p {package}`: the same features as the test
        // build, so nothing is compiled twice.
        .args(["build", "--quiet", "--workspace", "--bin", bin])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    assert!(
        path.exists(),
        "{bin} binary missing at {} (build: {status:?})",
        path.display()
    );
    path
}

fn client_tls(ca: &Path, id: Option<&Issued>) -> ClientTls {
    ClientTls::load(&ClientOptions {
        ca_files: vec![ca.to_owned()],
        cert_file: id.map(|i| i.cert.clone()),
        key_file: id.map(|i| i.key.clone()),
        allow_insecure: false,
    })
    .unwrap()
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A channel over TLS to 127.0.0.1:`port` checking `name`.
async fn tls_channel(port: u16, tls: &ClientTls, name: &str) -> Result<Channel, String> {
    let addr = format!("127.0.0.1:{port}");
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tls.connector(&addr, name).unwrap())
        .await
        .map_err(|e| chain(&e))
}

/// ServerStatus over TLS: the error text when the connection or the call
/// fails (TLS 1.3 reports a refused client certificate on the first read).
async fn status_over(
    port: u16,
    tls: &ClientTls,
    name: &str,
) -> Result<proto::observer::ServerStatusResponse, String> {
    let ch = tls_channel(port, tls, name).await?;
    ObserverClient::new(ch)
        .server_status(ServerStatusRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|s| chain(&s))
}

fn hubble(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("HOME", std::env::temp_dir())
        .env_remove("HUBBLE_SERVER")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `flow-exporter --replay` of `node-<i>`'s flows as `node_name`, serving
/// mutual TLS with a certificate for `sans`, on a free port.
fn spawn_exporter(
    bin: &Path,
    dir: &Path,
    pki: &TestPki,
    i: usize,
    node_name: &str,
    sans: &[&str],
) -> (Proc, u16) {
    let port = free_port();
    let cert = pki.issue(&format!("node-{i}"), sans);
    let file = replay_file(dir, i, PER_NODE);
    let child = Command::new(bin)
        .arg("--replay")
        .arg(&file)
        .args(["--metrics-address", "off", "--node-name", node_name])
        .args(["--listen-address", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert-file")
        .arg(&cert.cert)
        .arg("--tls-key-file")
        .arg(&cert.key)
        .arg("--tls-client-ca-files")
        .arg(pki.ca_file())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Proc(child), port)
}

/// The relay binary on `port`: mTLS to the peers (and the peer service)
/// with `client`, TLS with mTLS for its clients as `server`; `discovery`
/// names the peers (`--peers ...` or `--peer-service ...`).
fn spawn_relay(
    ca: &Path,
    client: &Issued,
    server: &Issued,
    port: u16,
    discovery: &[&str],
    stderr: Stdio,
) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_relay"))
            .args(discovery)
            .args(["--listen-address", &format!("127.0.0.1:{port}")])
            .args(["--metrics-address", "off", "--node-name", "tls-relay"])
            .arg("--tls-hubble-server-ca-files")
            .arg(ca)
            .arg("--tls-client-cert-file")
            .arg(&client.cert)
            .arg("--tls-client-key-file")
            .arg(&client.key)
            .arg("--tls-relay-server-cert-file")
            .arg(&server.cert)
            .arg("--tls-relay-server-key-file")
            .arg(&server.key)
            .arg("--tls-relay-client-ca-files")
            .arg(ca)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

/// Waits until the relay on `port` reports `n` connected nodes.
async fn wait_connected(port: u16, tls: &ClientTls, n: u32) {
    let tls = tls.clone();
    eventually(Duration::from_secs(30), move || {
        let tls = tls.clone();
        async move {
            status_over(port, &tls, RELAY_NAME)
                .await
                .is_ok_and(|s| s.num_connected_nodes.map(|v| v.value) == Some(n))
        }
    })
    .await;
}

/// GetNodes over TLS.
async fn get_nodes(port: u16, tls: &ClientTls, name: &str) -> Vec<proto::observer::Node> {
    let ch = tls_channel(port, tls, name).await.unwrap();
    ObserverClient::new(ch)
        .get_nodes(GetNodesRequest {})
        .await
        .unwrap()
        .into_inner()
        .nodes
}

/// The first notification of a node's own peer service: itself.
async fn announced(port: u16, tls: &ClientTls, name: &str) -> ChangeNotification {
    let ch = tls_channel(port, tls, name).await.unwrap();
    PeerClient::new(ch)
        .notify(NotifyRequest {})
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap()
}

/// The hubble CLI's TLS flags for the relay on `port`.
fn cli_tls_args(port: u16, ca: &Path, cert: &Issued) -> Vec<String> {
    [
        "--server",
        &format!("tls://127.0.0.1:{port}"),
        "--tls-ca-cert-files",
        ca.to_str().unwrap(),
        "--tls-client-cert-file",
        cert.cert.to_str().unwrap(),
        "--tls-client-key-file",
        cert.key.to_str().unwrap(),
        "--tls-server-name",
        RELAY_NAME,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `hubble status` and `hubble observe --all` through the relay: `n`/`n`
/// nodes connected, and every flow of `node-0` .. `node-<n-1>`.
fn cli_sees_every_node(cli: &Path, tls_args: &[String], n: usize) {
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = extra.to_vec();
        a.extend(tls_args.iter().map(String::as_str));
        hubble(cli, &a)
    };
    let out = run(&["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hubble status: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Healthcheck (via"), "{stdout}");
    assert!(
        stdout.contains(&format!("Connected Nodes: {n}/{n}")),
        "{stdout}"
    );

    let out = run(&["observe", "--all", "-o", "json"]);
    assert!(
        out.status.success(),
        "hubble observe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(f) = v.get("flow") {
            *per_node
                .entry(f["node_name"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let want: BTreeMap<String, usize> = (0..n).map(|i| (format!("node-{i}"), PER_NODE)).collect();
    assert_eq!(per_node, want);
}

/// What every test here starts from: the binaries, a CA in a temporary
/// directory, and the relay's and the CLI's certificates.
struct Setup {
    exporter: PathBuf,
    cli: PathBuf,
    dir: tempfile::TempDir,
    pki: TestPki,
    ca: PathBuf,
    relay_client: Issued,
    relay_server: Issued,
    cli_cert: Issued,
}

impl Setup {
    async fn new() -> Setup {
        let (exporter, cli) = tokio::task::spawn_blocking(|| {
            (
                workspace_bin("flow-exporter", "flow-exporter"),
                workspace_bin("hubble-tui", "hubble"),
            )
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), "hubble-ca");
        Setup {
            exporter,
            cli,
            ca: pki.ca_file(),
            relay_client: pki.issue("relay-client", &["relay-client.hubble-relay.cilium.io"]),
            relay_server: pki.issue("relay-server", &[RELAY_NAME]),
            cli_cert: pki.issue("cli", &["cli.hubble-relay.cilium.io"]),
            dir,
            pki,
        }
    }

    /// Three exporters of `cluster` (nodes `node-<i>`, named
    /// `<cluster>/node-<i>` outside the default cluster) with mutual TLS,
    /// each certificate naming only its node; returns once every one has
    /// loaded its flows, with their ports and TLS server names.
    async fn exporters(&self, cluster: &str) -> (Vec<Proc>, Vec<u16>, Vec<String>) {
        let names: Vec<String> = (0..3)
            .map(|i| format!("node-{i}.{cluster}.hubble-grpc.cilium.io"))
            .collect();
        let (procs, ports): (Vec<Proc>, Vec<u16>) = (0..3)
            .map(|i| {
                let node = match cluster {
                    svc::tls::DEFAULT_CLUSTER => format!("node-{i}"),
                    c => format!("{c}/node-{i}"),
                };
                let (bin, dir) = (&self.exporter, self.dir.path());
                spawn_exporter(bin, dir, &self.pki, i, &node, &[&names[i]])
            })
            .unzip();
        let tls = client_tls(&self.ca, Some(&self.relay_client));
        for (&port, name) in ports.iter().zip(&names) {
            let (tls, name) = (tls.clone(), name.clone());
            eventually(Duration::from_secs(30), move || {
                let (tls, name) = (tls.clone(), name.clone());
                async move {
                    status_over(port, &tls, &name)
                        .await
                        .is_ok_and(|s| s.seen_flows == PER_NODE as u64)
                }
            })
            .await;
        }
        (procs, ports, names)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_from_cli_through_relay_to_exporters() {
    let setup = Setup::new().await;
    let (procs, ports, names) = setup.exporters("default").await;
    let Setup {
        cli,
        ca,
        relay_client,
        relay_server,
        cli_cert,
        ..
    } = &setup;
    // A client certificate from a CA nobody trusts.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = TestPki::new(rogue_dir.path(), "rogue-ca").issue("rogue", &["rogue.example"]);

    let relay_tls = client_tls(ca, Some(relay_client));
    for (i, (&port, name)) in ports.iter().zip(&names).enumerate() {
        // Peer.Notify and GetNodes announce TLS with the node's name.
        let first = announced(port, &relay_tls, name).await;
        assert_eq!(first.name, format!("node-{i}"));
        assert_eq!(first.tls.unwrap().server_name, *name);
        let nodes = get_nodes(port, &relay_tls, name).await;
        let t = nodes[0].tls.clone().unwrap();
        assert!(t.enabled);
        assert_eq!(t.server_name, *name);
    }

    // The exporters refuse clients without a certificate of their CA (the
    // client learns it as a closed connection: TLS 1.3 sends the alert
    // after the client's side of the handshake is done).
    let e = status_over(
        ports[0],
        &client_tls(ca, None),
        "node-0.default.hubble-grpc.cilium.io",
    )
    .await
    .unwrap_err();
    assert!(!e.is_empty());
    let e = status_over(
        ports[0],
        &client_tls(ca, Some(&rogue)),
        "node-0.default.hubble-grpc.cilium.io",
    )
    .await
    .unwrap_err();
    assert!(!e.is_empty());

    // The relay: mTLS to the exporters, TLS with mTLS for its clients.
    let relay_port = free_port();
    let peers: Vec<String> = (0..3)
        .map(|i| format!("node-{i}=127.0.0.1:{}", ports[i]))
        .collect();
    let _relay = spawn_relay(
        ca,
        relay_client,
        relay_server,
        relay_port,
        &["--peers", &peers.join(",")],
        Stdio::null(),
    );
    let cli_tls = client_tls(ca, Some(cli_cert));
    wait_connected(relay_port, &cli_tls, 3).await;
    // GetNodes through the relay: every node over TLS under its name.
    let nodes = get_nodes(relay_port, &cli_tls, RELAY_NAME).await;
    assert_eq!(nodes.len(), 3);
    for n in &nodes {
        let t = n.tls.clone().unwrap();
        assert!(t.enabled, "{n:?}");
        assert_eq!(
            t.server_name,
            format!("{}.default.hubble-grpc.cilium.io", n.name)
        );
        assert_eq!(n.state, proto::relay::NodeState::NodeConnected as i32);
    }

    // The hubble CLI through the relay.
    cli_sees_every_node(cli, &cli_tls_args(relay_port, ca, cli_cert), 3);
    let tls_args = cli_tls_args(relay_port, ca, cli_cert);
    let status = |args: &[String]| {
        let mut a = vec!["status"];
        a.extend(args.iter().map(String::as_str));
        hubble(cli, &a)
    };

    // Refused: no client certificate (the relay requires one).
    let no_cert: Vec<String> = tls_args
        .chunks(2)
        .filter(|flag| !flag[0].starts_with("--tls-client-"))
        .flatten()
        .cloned()
        .collect();
    let out = status(&no_cert);
    assert!(
        !out.status.success(),
        "status without a client certificate succeeded"
    );

    // Refused: a name the relay's certificate does not carry.
    let wrong_name: Vec<String> = tls_args
        .iter()
        .map(|a| match a.as_str() {
            RELAY_NAME => "wrong.hubble-relay.cilium.io".to_owned(),
            _ => a.clone(),
        })
        .collect();
    let out = status(&wrong_name);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "status with a wrong server name succeeded"
    );
    assert!(err.contains("not valid for name"), "{err}");
    let e = status_over(relay_port, &cli_tls, "wrong.hubble-relay.cilium.io")
        .await
        .unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");

    // Accepted: the same wrong name and no CA with --tls-allow-insecure
    // (the CLI skips verifying the relay's certificate, still presents its own).
    let mut insecure: Vec<String> = Vec::new();
    let mut args = wrong_name.iter();
    while let Some(a) = args.next() {
        if a == "--tls-ca-cert-files" {
            args.next();
        } else {
            insecure.push(a.clone());
        }
    }
    insecure.push("--tls-allow-insecure".to_owned());
    let out = status(&insecure);
    assert!(
        out.status.success(),
        "status with --tls-allow-insecure: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Refused: plain text to the TLS relay and to a TLS exporter.
    let plain = format!("127.0.0.1:{relay_port}");
    let out = hubble(cli, &["status", "--server", &plain]);
    assert!(!out.status.success(), "plain-text status succeeded");
    for port in [relay_port, ports[1]] {
        let r = match Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(ch) => ObserverClient::new(ch)
                .server_status(ServerStatusRequest {})
                .await
                .map(|_| ())
                .map_err(|s| s.to_string()),
            Err(e) => Err(chain(&e)),
        };
        assert!(r.is_err(), "plain text to TLS port {port} answered");
    }

    drop(procs);
}

/// A cluster's peer service as a Cilium agent runs it: announces every
/// node it knows, then waits.
struct ClusterPeers {
    nodes: Vec<ChangeNotification>,
}

#[tonic::async_trait]
impl Peer for ClusterPeers {
    type NotifyStream =
        Pin<Box<dyn Stream<Item = Result<ChangeNotification, tonic::Status>> + Send>>;

    async fn notify(
        &self,
        _request: tonic::Request<NotifyRequest>,
    ) -> Result<tonic::Response<Self::NotifyStream>, tonic::Status> {
        let nodes = futures::stream::iter(self.nodes.clone().into_iter().map(Ok));
        Ok(tonic::Response::new(Box::pin(
            nodes.chain(futures::stream::pending()),
        )))
    }
}

/// The first line of `child`'s stderr that contains `needle`.
async fn stderr_line(child: &mut Child, needle: &'static str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Ends when the child is killed (its stderr closes).
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(line);
            }
        }
    });
    tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .unwrap_or_else(|_| panic!("no stderr line with {needle:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_discovers_tls_peers_through_a_tls_peer_service() {
    const CLUSTER: &str = "lab";
    let setup = Setup::new().await;
    let (procs, ports, node_names) = setup.exporters(CLUSTER).await;
    let Setup {
        cli,
        pki,
        ca,
        relay_client,
        relay_server,
        cli_cert,
        ..
    } = &setup;

    // What each node announces about itself (name, address, TLS name): the
    // peer service announces exactly that for every node.
    let relay_tls = client_tls(ca, Some(relay_client));
    let mut nodes = Vec::new();
    for (&port, name) in ports.iter().zip(&node_names) {
        let note = announced(port, &relay_tls, name).await;
        assert_eq!(note.tls.as_ref().unwrap().server_name, *name);
        assert_eq!(note.address, format!("127.0.0.1:{port}"));
        nodes.push(note);
    }

    // The peer service: mutual TLS under the cluster's peer-service name.
    let ps_cert = pki.issue(
        "hubble-peer",
        &[&format!("hubble-peer.{CLUSTER}.hubble-grpc.cilium.io")],
    );
    let ps_tls =
        svc::tls::server_config(&ps_cert.cert, &ps_cert.key, std::slice::from_ref(ca)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ps_addr = listener.local_addr().unwrap().to_string();
    // The client certificate of every connection it accepts.
    let callers: Arc<Mutex<Vec<Option<Vec<u8>>>>> = Arc::default();
    let record = callers.clone();
    let incoming = svc::tls::incoming(listener, ps_tls).inspect(move |conn| {
        if let Ok(tls) = conn {
            let cert = tls.get_ref().1.peer_certificates().map(|c| c[0].to_vec());
            record.lock().unwrap().push(cert);
        }
    });
    let (stop_ps, ps_stopped) = tokio::sync::oneshot::channel::<()>();
    let peer_service = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PeerServer::new(ClusterPeers { nodes }))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = ps_stopped.await;
            }),
    );

    // The relay knows only the peer service.
    let relay_port = free_port();
    let relay = spawn_relay(
        ca,
        relay_client,
        relay_server,
        relay_port,
        &["--peer-service", &ps_addr, "--cluster-name", CLUSTER],
        Stdio::null(),
    );
    let cli_tls = client_tls(ca, Some(cli_cert));
    wait_connected(relay_port, &cli_tls, 3).await;

    // It dialled the peer service with its client certificate.
    let relay_cert = svc::tls::load_certs(&relay_client.cert).unwrap()[0].to_vec();
    let seen = callers.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|c| c.as_ref() == Some(&relay_cert)));

    // Every node connected over TLS under the name it announced.
    let got = get_nodes(relay_port, &cli_tls, RELAY_NAME).await;
    let mut got: Vec<(String, String, bool, i32)> = got
        .into_iter()
        .map(|n| {
            let t = n.tls.unwrap_or_default();
            (n.name, t.server_name, t.enabled, n.state)
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, bool, i32)> = (0..3)
        .map(|i| {
            (
                format!("{CLUSTER}/node-{i}"),
                node_names[i].clone(),
                true,
                proto::relay::NodeState::NodeConnected as i32,
            )
        })
        .collect();
    assert_eq!(got, want);

    // The hubble CLI sees 3/3 nodes and every node's flows.
    cli_sees_every_node(cli, &cli_tls_args(relay_port, ca, cli_cert), 3);

    // A relay of another cluster expects another name and refuses the
    // peer service's certificate.
    let mut other = spawn_relay(
        ca,
        relay_client,
        relay_server,
        free_port(),
        &["--peer-service", &ps_addr, "--cluster-name", "other"],
        Stdio::piped(),
    );
    let line = stderr_line(&mut other.0, "peer service unreachable").await;
    assert!(line.contains("not valid for name"), "{line}");
    assert!(
        line.contains("hubble-peer.other.hubble-grpc.cilium.io"),
        "{line}"
    );

    // The peer service stops once its clients (the relays) are gone.
    drop((other, relay));
    let _ = stop_ps.send(());
    peer_service.await.unwrap().unwrap();
    drop(procs);
}
