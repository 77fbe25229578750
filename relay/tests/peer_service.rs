//! Discovery through a real exporter's Peer.Notify: the relay is given one
//! exporter as its `--peer-service`, and that exporter announces the
//! cluster from its enrichment file (as the datapath agent writes it). The
//! relay connects to every node listed, serves their flows, and drops a
//! node the file stops listing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use flow_exporter::sources::enrichment::EnrichmentFile;
use proto::observer::{GetFlowsRequest, GetNodesRequest};
use proto::relay::NodeState;

/// The agent's file listing `nodes` (name, exporter address).
fn enrichment(nodes: &[(&str, SocketAddr)]) -> String {
    let nodes: Vec<_> = nodes
        .iter()
        .map(|(n, a)| serde_json::json!({"name": n, "address": a.to_string()}))
        .collect();
    serde_json::json!({"node_name": "node-0", "nodes": nodes}).to_string()
}

/// Replaces `path` as the agent does (a new file renamed over it), dated
/// `secs` ahead so its modification time surely differs.
fn replace(path: &std::path::Path, contents: &str, secs: u64) {
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

async fn node_names(r: &RelayHarness) -> Vec<(String, i32)> {
    let mut c = r.client().await;
    let n = c.get_nodes(GetNodesRequest {}).await.unwrap().into_inner();
    n.nodes.into_iter().map(|n| (n.name, n.state)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_follows_the_cluster_one_exporter_announces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrichment.json");
    // node-0 is the peer service; its port is known before it starts so
    // that its own file can list it.
    let addr0: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut nodes = vec![Exporter::start("node-1"), Exporter::start("node-2")];
    let listed = [
        ("node-0", addr0),
        ("node-1", nodes[0].addr),
        ("node-2", nodes[1].addr),
    ];
    std::fs::write(&path, enrichment(&listed)).unwrap();
    let file = EnrichmentFile::open(&path).unwrap();
    nodes.insert(0, Exporter::start_following("node-0", addr0, Some(file)));
    for (i, e) in nodes.iter().enumerate() {
        let node = format!("node-{i}");
        e.observer
            .push_flows((0..50).map(|k| flow(&node, 3 * k + i as i64, "default")));
    }

    let mut cfg = test_config(Vec::new());
    cfg.peer_service = Some(relay::discovery::DiscoveryOptions {
        retry_timeout: Duration::from_millis(100),
        ..relay::discovery::DiscoveryOptions::new(addr0.to_string())
    });
    let r = RelayHarness::start(cfg).await;
    r.wait_connected(3).await;
    let connected = NodeState::NodeConnected as i32;
    assert_eq!(
        node_names(&r).await,
        [
            ("node-0".to_owned(), connected),
            ("node-1".to_owned(), connected),
            ("node-2".to_owned(), connected),
        ]
    );
    let mut c = r.client().await;
    let got = collect(
        &mut c,
        GetFlowsRequest {
            number: 1000,
            ..Default::default()
        },
    )
    .await;
    let u = uuids(&got);
    assert_eq!(u.len(), 150, "{u:?}");
    for i in 0..3 {
        let prefix = format!("node-{i}-");
        assert_eq!(
            u.iter().filter(|x| x.starts_with(&prefix)).count(),
            50,
            "{prefix}"
        );
    }

    // The agent drops node-2 from the cluster: the relay forgets it.
    replace(&path, &enrichment(&listed[..2]), 5);
    eventually(Duration::from_secs(20), || {
        let n = r.relay.pool().peers().len();
        async move { n == 2 }
    })
    .await;
    assert_eq!(
        node_names(&r).await,
        [
            ("node-0".to_owned(), connected),
            ("node-1".to_owned(), connected),
        ]
    );
    let got = collect(
        &mut c,
        GetFlowsRequest {
            number: 1000,
            ..Default::default()
        },
    )
    .await;
    let u = uuids(&got);
    assert_eq!(u.len(), 100);
    assert!(!u.iter().any(|x| x.starts_with("node-2-")));
}
