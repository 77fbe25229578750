use std::time::Duration;

use futures::StreamExt as _;
use proto::peer::ChangeNotificationType::{PeerAdded, PeerDeleted, PeerUpdated};

use super::*;

fn node(name: &str, address: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        address: address.into(),
        tls_server_name: None,
    }
}

fn cluster(name: &str, nodes: &[NodeInfo]) -> Arc<ClusterNodes> {
    Arc::new(ClusterNodes {
        cluster: name.into(),
        nodes: nodes.to_vec(),
    })
}

fn me(tls: bool) -> SelfNode {
    SelfNode {
        name: "a".into(),
        address: "127.0.0.1:4244".into(),
        tls_server_name: tls.then(|| "a.default.hubble-grpc.cilium.io".into()),
    }
}

/// `(type, name, address)` of each notification.
fn summary(v: &[ChangeNotification]) -> Vec<(ChangeNotificationType, &str, &str)> {
    v.iter()
        .map(|n| {
            (
                ChangeNotificationType::try_from(n.r#type).unwrap(),
                n.name.as_str(),
                n.address.as_str(),
            )
        })
        .collect()
}

#[test]
fn names_carry_the_cluster_unless_it_is_default() {
    assert_eq!(peer_name("default", "kind-worker"), "kind-worker");
    assert_eq!(peer_name("", "kind-worker"), "kind-worker");
    assert_eq!(peer_name("prod", "kind-worker"), "prod/kind-worker");
}

#[test]
fn tls_names_are_announced_only_when_this_exporter_serves_tls() {
    let mut b = node("b.x", "10.0.0.2:4244");
    let c = node("c", "10.0.0.3:4244");
    b.tls_server_name = None;
    let list = cluster("prod.eu", &[b, c.clone()]);
    let v = me(true).view(&list);
    assert_eq!(
        v["prod.eu/b.x"].tls_server_name.as_deref(),
        Some("b-x.prod-eu.hubble-grpc.cilium.io")
    );
    let mut c2 = c;
    c2.tls_server_name = Some("custom.example".into());
    let v = me(true).view(&cluster("default", &[c2.clone()]));
    assert_eq!(v["c"].tls_server_name.as_deref(), Some("custom.example"));
    let v = me(false).view(&cluster("default", &[c2]));
    assert_eq!(v["c"].tls_server_name, None, "plain text: no TLS announced");
}

#[test]
fn changes_are_deleted_then_updated_then_added() {
    let old = me(false).view(&cluster(
        "default",
        &[node("a", "1:1"), node("b", "2:2"), node("c", "3:3")],
    ));
    let new = me(false).view(&cluster(
        "default",
        &[node("a", "1:1"), node("c", "3:4"), node("d", "4:4")],
    ));
    let got = changes(&old, &new);
    assert_eq!(
        summary(&got),
        [
            (PeerDeleted, "b", "2:2"),
            (PeerUpdated, "c", "3:4"),
            (PeerAdded, "d", "4:4"),
        ]
    );
    assert!(changes(&new, &new).is_empty());
}

#[test]
fn an_empty_list_announces_this_node() {
    let v = me(true).view(&ClusterNodes::default());
    assert_eq!(v.len(), 1);
    assert_eq!(v["a"].address, "127.0.0.1:4244");
    assert_eq!(
        v["a"].tls_server_name.as_deref(),
        Some("a.default.hubble-grpc.cilium.io")
    );
}

async fn next(s: &mut (impl Stream<Item = ChangeNotification> + Unpin)) -> ChangeNotification {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("a notification within 5 s")
        .expect("stream still open")
}

#[tokio::test]
async fn a_stream_follows_the_list_and_ends_with_its_publisher() {
    let (tx, rx) =
        tokio::sync::watch::channel(cluster("prod", &[node("a", "1:1"), node("b", "2:2")]));
    let mut s = Box::pin(notify_stream(me(false), Some(rx)));
    let first = [next(&mut s).await, next(&mut s).await];
    assert_eq!(
        summary(&first),
        [(PeerAdded, "prod/a", "1:1"), (PeerAdded, "prod/b", "2:2")]
    );
    // Two lists before the stream looks: it reports the difference to the
    // latest only.
    tx.send_replace(cluster("prod", &[node("a", "1:1")]));
    tx.send_replace(cluster("prod", &[node("a", "1:9"), node("c", "3:3")]));
    let got = [next(&mut s).await, next(&mut s).await, next(&mut s).await];
    assert_eq!(
        summary(&got),
        [
            (PeerDeleted, "prod/b", "2:2"),
            (PeerUpdated, "prod/a", "1:9"),
            (PeerAdded, "prod/c", "3:3"),
        ]
    );
    // Back to no list: this node alone.
    tx.send_replace(Arc::new(ClusterNodes::default()));
    let got = [next(&mut s).await, next(&mut s).await, next(&mut s).await];
    assert_eq!(
        summary(&got),
        [
            (PeerDeleted, "prod/a", "1:9"),
            (PeerDeleted, "prod/c", "3:3"),
            (PeerAdded, "a", "127.0.0.1:4244"),
        ]
    );
    drop(tx);
    let end = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
    assert!(matches!(end, Ok(None)), "ends with its publisher");
}

#[tokio::test]
async fn without_a_list_it_is_this_node_then_nothing() {
    let mut s = Box::pin(notify_stream(me(true), None));
    let n = next(&mut s).await;
    assert_eq!(
        summary(std::slice::from_ref(&n)),
        [(PeerAdded, "a", "127.0.0.1:4244")]
    );
    assert!(n.tls.is_some());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), s.next())
            .await
            .is_err(),
        "then nothing"
    );
}
