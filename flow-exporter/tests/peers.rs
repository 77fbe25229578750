//! In-process gRPC tests of `peer.Peer/Notify` announcing the cluster from
//! the enrichment file: the real server and the file reload on a temporary
//! file the tests rewrite as the agent does (a new file renamed over it).
//! Waits are bounds against hangs, never timings.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flow_exporter::observer::Observer;
use flow_exporter::server::{ServerOptions, router_with_options};
use flow_exporter::sources::enrichment::EnrichmentFile;
use proto::peer::ChangeNotificationType::{self, PeerAdded, PeerDeleted, PeerUpdated};
use proto::peer::peer_client::PeerClient;
use proto::peer::{ChangeNotification, NotifyRequest};
use tonic::Streaming;
use tonic::transport::Channel;

/// How often the test server looks at the file (the exporter: 1 s).
const RELOAD: Duration = Duration::from_millis(50);

/// Replaces `path` with `contents` as the agent does, dated `secs` ahead so
/// its modification time surely differs.
fn replace(path: &Path, contents: &str, secs: u64) {
    let tmp = path.with_file_name(".enrichment.json.new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(secs))
        .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn enrichment(cluster: &str, nodes: &[(&str, &str)]) -> String {
    let nodes: Vec<_> = nodes
        .iter()
        .map(|(n, a)| serde_json::json!({"name": n, "address": a}))
        .collect();
    serde_json::json!({"node_name": "node-a", "cluster": cluster, "nodes": nodes}).to_string()
}

struct Server {
    observer: Arc<Observer>,
    channel: Channel,
    /// The address it advertises for itself.
    address: String,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// An exporter named `node-a` whose Peer.Notify follows an enrichment file
/// holding `contents`; `tls`: it says it serves TLS.
async fn start(contents: &str, tls: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrichment.json");
    std::fs::write(&path, contents).unwrap();
    let file = EnrichmentFile::open(&path).unwrap();
    let observer = Arc::new(Observer::new("node-a", 15).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServerOptions {
        cluster_nodes: Some(file.nodes()),
        ..ServerOptions::default()
    };
    let tls_name = tls.then(|| svc::tls::hubble_server_name("node-a"));
    let router = router_with_options(observer.clone(), addr.to_string(), tls_name, &opts)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (reload_stop_tx, reload_stop) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(file.run(RELOAD, async {
        let _ = reload_stop.await;
    }));
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
                let _ = reload_stop_tx.send(());
            })
            .await
            .unwrap();
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Server {
        channel,
        observer,
        address: addr.to_string(),
        _dir: dir,
        path,
        _stop: tx,
    }
}

impl Server {
    async fn notify(&self) -> Streaming<ChangeNotification> {
        PeerClient::new(self.channel.clone())
            .notify(NotifyRequest {})
            .await
            .unwrap()
            .into_inner()
    }
}

/// `(type, name, address)`.
type Change = (ChangeNotificationType, String, String);

/// The next `n` notifications of `s`, as a set (the order within one
/// reload is DELETED, UPDATED, ADDED, but the tests only need the set).
async fn next_n(s: &mut Streaming<ChangeNotification>, n: usize) -> BTreeSet<Change> {
    let mut out = BTreeSet::new();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(10), s.message())
            .await
            .expect("a notification within 10 s")
            .unwrap()
            .expect("stream open");
        out.insert((
            ChangeNotificationType::try_from(m.r#type).unwrap(),
            m.name,
            m.address,
        ));
    }
    out
}

fn set(v: &[(ChangeNotificationType, &str, &str)]) -> BTreeSet<Change> {
    v.iter()
        .map(|(t, n, a)| (*t, (*n).to_owned(), (*a).to_owned()))
        .collect()
}

/// Nothing more arrives for a short while (a bound, not a timing check:
/// nothing is expected at all).
async fn quiet(s: &mut Streaming<ChangeNotification>) {
    let r = tokio::time::timeout(RELOAD * 4, s.message()).await;
    assert!(r.is_err(), "unexpected notification {r:?}");
}

#[tokio::test]
async fn notify_announces_the_cluster_and_follows_the_file() {
    let two = enrichment(
        "default",
        &[("node-a", "10.0.0.1:4244"), ("node-b", "10.0.0.2:4244")],
    );
    let srv = start(&two, false).await;
    let mut first = srv.notify().await;
    let mut second = srv.notify().await;
    let mut leaving = srv.notify().await;
    let want = set(&[
        (PeerAdded, "node-a", "10.0.0.1:4244"),
        (PeerAdded, "node-b", "10.0.0.2:4244"),
    ]);
    assert_eq!(next_n(&mut first, 2).await, want);
    assert_eq!(next_n(&mut second, 2).await, want);
    assert_eq!(next_n(&mut leaving, 2).await, want);
    quiet(&mut first).await;
    // One client goes away; the others are not disturbed.
    drop(leaving);

    // node-c joins, node-b leaves, node-a moves.
    replace(
        &srv.path,
        &enrichment(
            "default",
            &[("node-a", "10.0.0.9:4244"), ("node-c", "10.0.0.3:4244")],
        ),
        5,
    );
    let want = set(&[
        (PeerAdded, "node-c", "10.0.0.3:4244"),
        (PeerDeleted, "node-b", "10.0.0.2:4244"),
        (PeerUpdated, "node-a", "10.0.0.9:4244"),
    ]);
    assert_eq!(next_n(&mut first, 3).await, want);
    assert_eq!(next_n(&mut second, 3).await, want);

    // A client arriving now is told the cluster as it is.
    let mut late = srv.notify().await;
    assert_eq!(
        next_n(&mut late, 2).await,
        set(&[
            (PeerAdded, "node-a", "10.0.0.9:4244"),
            (PeerAdded, "node-c", "10.0.0.3:4244"),
        ])
    );

    // A rewrite that changes endpoints only, and a broken file: no news.
    let mut same: serde_json::Value = serde_json::from_str(&enrichment(
        "default",
        &[("node-a", "10.0.0.9:4244"), ("node-c", "10.0.0.3:4244")],
    ))
    .unwrap();
    same["endpoints"] = serde_json::json!([{"id": 7, "ips": ["10.1.0.7"]}]);
    replace(&srv.path, &same.to_string(), 10);
    replace(&srv.path, "{\"nodes\": [", 15);
    quiet(&mut first).await;
    quiet(&mut late).await;

    // The list emptied: the exporter announces itself alone.
    replace(&srv.path, "{}", 20);
    let want = set(&[
        (PeerDeleted, "node-c", "10.0.0.3:4244"),
        (PeerUpdated, "node-a", &srv.address),
    ]);
    assert_eq!(next_n(&mut first, 2).await, want);
    assert_eq!(next_n(&mut second, 2).await, want);
}

#[tokio::test]
async fn names_carry_a_non_default_cluster_and_tls_names_follow_it() {
    let srv = start(
        &enrichment(
            "prod.eu",
            &[("node-a", "10.0.0.1:4244"), ("node.b", "10.0.0.2:4244")],
        ),
        true,
    )
    .await;
    let mut s = srv.notify().await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), s.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got[0].name, "prod.eu/node-a");
    assert_eq!(
        got[0].tls.as_ref().unwrap().server_name,
        "node-a.prod-eu.hubble-grpc.cilium.io"
    );
    assert_eq!(got[1].name, "prod.eu/node.b");
    assert_eq!(
        got[1].tls.as_ref().unwrap().server_name,
        "node-b.prod-eu.hubble-grpc.cilium.io"
    );
}

#[tokio::test]
async fn an_empty_node_list_announces_this_node_only() {
    let srv = start("{}", false).await;
    let mut s = srv.notify().await;
    assert_eq!(
        next_n(&mut s, 1).await,
        set(&[(PeerAdded, "node-a", &srv.address)])
    );
    quiet(&mut s).await;
}

#[tokio::test]
async fn notify_streams_end_when_the_exporter_closes() {
    let srv = start("{}", false).await;
    let mut s = srv.notify().await;
    next_n(&mut s, 1).await;
    // Shutdown closes the observer: the open stream ends at once instead of
    // holding the graceful shutdown until its client goes away.
    srv.observer.close();
    let end = tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .expect("the stream ends within 5 s");
    assert!(matches!(end, Ok(None)), "{end:?}");
}
