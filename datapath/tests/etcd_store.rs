//! The etcd-backed cluster store against a real etcd (Debian's, started per
//! test by `test_support::etcd::Etcd`): shared identities, concurrent
//! allocation, lease expiry of a crashed node, watch, outage and resync,
//! policy validation, cluster services, pod CIDR conflicts, degraded start from the cache,
//! identity GC. No root needed; skipped (panics under CI) without etcd.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use datapath::agent::kvstore::{EtcdStore, KvstoreConfig};
use datapath::agent::store::{ClusterStore, EndpointRecord, IpcacheEntry, NodeRecord, StoreError};
use datapath::cidr::Cidr;
use datapath::identity::{LabelSet, pod_labels};
use test_support::etcd::Etcd;
use test_support::{TempDir, require_etcd, wait_for};

const STARWARS: &str = include_str!("../testdata/policies/starwars.yaml");

/// Short TTL and timeouts, so expiry and outages show within seconds.
fn cfg(etcd: &Etcd) -> KvstoreConfig {
    let mut c =
        KvstoreConfig::new(vec![etcd.endpoint()], "t").with_lease_ttl(Duration::from_secs(3));
    c.op_timeout = Duration::from_secs(1);
    c.dial_timeout = Duration::from_secs(2);
    c.backoff = (Duration::from_millis(100), Duration::from_millis(500));
    c
}

fn open(etcd: &Etcd, node: &str) -> (EtcdStore, TempDir) {
    let dir = TempDir::new("kvs-");
    let s = EtcdStore::connect(cfg(etcd), node, &dir.path).expect("connect");
    (s, dir)
}

fn labels(app: &str) -> LabelSet {
    pod_labels(
        "default",
        &BTreeMap::from([("app".into(), app.into())]),
        "t",
    )
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn entry(identity: u32) -> IpcacheEntry {
    IpcacheEntry {
        identity,
        node_ip: Some(Ipv4Addr::new(192, 168, 0, 1)),
    }
}

fn ep(node: &str, ep_id: u16, identity: u32) -> EndpointRecord {
    EndpointRecord {
        node: node.into(),
        ep_id,
        container_id: format!("c{ep_id}"),
        ifname: "eth0".into(),
        netns: "/run/netns/x".into(),
        host_iface: format!("lxc{ep_id}"),
        ifindex: 7,
        ip: Ipv4Addr::new(10, 1, 0, 5),
        pod_mac: [2, 0, 0, 0, 0, 1],
        node_mac: [2, 0, 0, 0, 0, 2],
        namespace: "default".into(),
        pod_name: format!("pod{ep_id}"),
        labels: BTreeMap::from([("app".into(), "x".into())]),
        identity,
        ports: Vec::new(),
    }
}

fn etcdctl_put(etcd: &Etcd, key: &str, value: &str) {
    let st = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &etcd.endpoint(), "put", key, value])
        .output()
        .expect("run etcdctl");
    assert!(st.status.success(), "etcdctl put: {st:?}");
}

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn the_same_labels_get_the_same_identity_on_two_nodes() {
    require_etcd!();
    let etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (mut b, _db) = open(&etcd, "b");
    let web = a.allocate_identity(&labels("web")).unwrap();
    assert!(web >= 256);
    assert_eq!(b.allocate_identity(&labels("web")).unwrap(), web);
    let db = b.allocate_identity(&labels("db")).unwrap();
    assert_ne!(db, web);
    wait_for("a sees b's identity", WAIT, || {
        a.identities().unwrap().lookup(&labels("db")) == Some(db)
    });
    // Reserved and CIDR identities never go to etcd.
    let world = LabelSet::from(["reserved:world".to_string()]);
    assert_eq!(a.allocate_identity(&world).unwrap(), 2);
    let c = a
        .allocate_identity(&datapath::identity::cidr_labels("10.0.0.0/8"))
        .unwrap();
    assert_eq!(c, datapath::identity::CIDR_BASE);
    assert!(b.identities().unwrap().labels(c).is_none());
}

#[test]
fn concurrent_allocation_on_three_nodes_agrees() {
    require_etcd!();
    let etcd = Etcd::start();
    let stores: Vec<_> = (0..3).map(|k| open(&etcd, &format!("n{k}"))).collect();
    let results: Vec<BTreeMap<String, u32>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(k, (mut st, dir))| {
                s.spawn(move || {
                    // Overlapping windows: n0 0..50, n1 25..75, n2 50..100.
                    let got: BTreeMap<String, u32> = (k * 25..k * 25 + 50)
                        .map(|i| {
                            let app = format!("app{i}");
                            (app.clone(), st.allocate_identity(&labels(&app)).unwrap())
                        })
                        .collect();
                    wait_for("every identity in every mirror", WAIT, || {
                        st.identities().unwrap().allocated().len() == 100
                    });
                    let all = st.identities().unwrap().allocated().clone();
                    drop((st, dir));
                    (got, all)
                })
            })
            .collect();
        let out: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let first_all = &out[0].1;
        for (_, all) in &out {
            assert_eq!(all, first_all, "every store has the same identities");
        }
        out.into_iter().map(|(g, _)| g).collect()
    });
    let mut by_app: BTreeMap<String, u32> = BTreeMap::new();
    for r in &results {
        for (app, id) in r {
            if let Some(prev) = by_app.insert(app.clone(), *id) {
                assert_eq!(prev, *id, "{app} got two numbers");
            }
        }
    }
    assert_eq!(by_app.len(), 100);
    let mut ids: Vec<u32> = by_app.values().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "no two label sets share a number");
}

#[test]
fn a_crashed_node_disappears_with_its_lease() {
    require_etcd!();
    let etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (mut b, _db) = open(&etcd, "b");
    a.register_node(NodeRecord::new("a", cidr("10.1.0.0/24")))
        .unwrap();
    let id = a.allocate_identity(&labels("web")).unwrap();
    a.upsert_endpoint(ep("a", 1, id)).unwrap();
    a.upsert_ipcache(cidr("10.1.0.5/32"), entry(id)).unwrap();
    b.register_node(NodeRecord::new("b", cidr("10.2.0.0/24")))
        .unwrap();
    wait_for("b sees a", WAIT, || {
        b.nodes().unwrap().len() == 2 && b.endpoints().unwrap().len() == 1
    });
    // A crash: no deregistration, no revoke; keep-alives stop.
    let t = Instant::now();
    drop(a);
    wait_for("a's lease expires", WAIT, || {
        b.nodes().unwrap().iter().all(|n| n.name != "a")
    });
    eprintln!("a gone after {:?} (TTL 3 s)", t.elapsed());
    assert!(t.elapsed() >= Duration::from_secs(1), "not before the TTL");
    wait_for("a's pods vanish", WAIT, || {
        b.endpoints().unwrap().is_empty() && b.ipcache().unwrap().is_empty()
    });
    assert_eq!(b.nodes().unwrap()[0].name, "b");
}

#[test]
fn a_write_on_one_node_reaches_another_through_the_watch() {
    require_etcd!();
    let etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (b, _db) = open(&etcd, "b");
    let mut rx = b.subscribe();
    let before = *rx.borrow_and_update();
    a.upsert_ipcache(cidr("10.1.0.7/32"), entry(300)).unwrap();
    wait_for("b's mirror has a's entry", WAIT, || {
        b.ipcache().unwrap().get(&cidr("10.1.0.7/32")) == Some(&entry(300))
    });
    assert!(*rx.borrow() > before, "subscribe counter bumped");
    assert!(rx.has_changed().unwrap());
    assert!(a.remove_ipcache(cidr("10.1.0.7/32")).unwrap());
    wait_for("b sees the removal", WAIT, || {
        b.ipcache().unwrap().is_empty()
    });
    let st = b.status();
    assert_eq!(st.backend, "etcd");
    assert!(st.connected && st.resyncs >= 1, "{st:?}");
}

#[test]
fn an_outage_keeps_reads_and_resyncs_after() {
    require_etcd!();
    let mut etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (b, _db) = open(&etcd, "b");
    a.register_node(NodeRecord::new("a", cidr("10.1.0.0/24")))
        .unwrap();
    a.upsert_ipcache(cidr("10.1.0.5/32"), entry(300)).unwrap();
    a.put_cluster_policy("sw", STARWARS).unwrap();
    let resyncs = a.status().resyncs;
    let n = a.policies().unwrap().len();

    etcd.pause();
    a.upsert_ipcache(cidr("10.1.0.6/32"), entry(301)).unwrap();
    wait_for("a notices the outage", WAIT, || !a.status().connected);
    a.upsert_ipcache(cidr("10.1.0.7/32"), entry(302)).unwrap();
    let st = a.status();
    assert!(st.failed_ops >= 2, "{st:?}");
    assert!(st.pending_writes >= 2, "{st:?}");
    assert!(st.outages >= 1 && st.last_error.is_some(), "{st:?}");
    // Reads come from the mirror; a new identity needs etcd.
    assert_eq!(a.ipcache().unwrap().len(), 3);
    assert_eq!(a.nodes().unwrap().len(), 1);
    assert!(!a.policies().unwrap().is_empty());
    let e = a.allocate_identity(&labels("new")).unwrap_err();
    assert!(e.to_string().contains(&etcd.endpoint()), "{e}");

    etcd.resume();
    // Changed while a was away (a is still backing off or resyncing).
    etcdctl_put(&etcd, "/datapath/t/policies/sw2", STARWARS);
    wait_for("a reconnects", WAIT, || {
        let s = a.status();
        s.connected && s.resyncs > resyncs && s.pending_writes == 0
    });
    wait_for("a sees the policy change", WAIT, || {
        a.policies().unwrap().len() == 2 * n
    });
    wait_for("b sees a's writes from the outage", WAIT, || {
        let ipc = b.ipcache().unwrap();
        ipc.contains_key(&cidr("10.1.0.6/32")) && ipc.contains_key(&cidr("10.1.0.7/32"))
    });
    assert!(a.allocate_identity(&labels("new")).is_ok());
}

#[test]
fn a_malformed_policy_is_rejected_and_the_previous_one_stays() {
    require_etcd!();
    let etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (b, _db) = open(&etcd, "b");
    a.put_cluster_policy("x", STARWARS).unwrap();
    let good = a.policies().unwrap();
    assert!(!good.is_empty());
    let e = a.put_cluster_policy("y", "spec: [unclosed").unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidPolicy { name, .. } if name == "y"),
        "{e}"
    );
    wait_for("b has x", WAIT, || b.policies().unwrap() == good);

    etcdctl_put(&etcd, "/datapath/t/policies/x", "spec: [unclosed");
    for s in [&a, &b] {
        wait_for("x rejected", WAIT, || {
            s.policy_rejections().iter().any(|(n, _)| n == "x")
        });
        let (_, reason) = s.policy_rejections().into_iter().next().unwrap();
        assert!(!reason.is_empty());
        assert_eq!(s.policies().unwrap(), good, "previous version in force");
    }
    assert!(a.delete_cluster_policy("x").unwrap());
    wait_for("x gone on b", WAIT, || {
        b.policies().unwrap().is_empty() && b.policy_rejections().is_empty()
    });
    assert!(!a.delete_cluster_policy("x").unwrap());
}

#[test]
fn an_overlapping_pod_cidr_is_a_conflict_naming_both() {
    require_etcd!();
    let etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (mut b, _db) = open(&etcd, "b");
    a.register_node(NodeRecord::new("n1", cidr("10.1.0.0/16")))
        .unwrap();
    wait_for("b sees n1", WAIT, || b.nodes().unwrap().len() == 1);
    let e = b
        .register_node(NodeRecord::new("n2", cidr("10.1.2.0/24")))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    for want in ["n1", "n2", "10.1.0.0/16", "10.1.2.0/24"] {
        assert!(e.to_string().contains(want), "{e}");
    }
    // Re-registering the same name is an update.
    let mut n1 = NodeRecord::new("n1", cidr("10.1.0.0/16"));
    n1.hubble_address = Some("10.0.0.1:4244".into());
    a.register_node(n1).unwrap();
    wait_for("b sees the update", WAIT, || {
        b.nodes().unwrap()[0].hubble_address.as_deref() == Some("10.0.0.1:4244")
    });
    a.deregister_node("n1").unwrap();
    wait_for("n1 deregistered", WAIT, || b.nodes().unwrap().is_empty());
}

#[test]
fn unreachable_at_start_without_cache_names_the_endpoint() {
    require_etcd!();
    let etcd = Etcd::unstarted();
    let dir = TempDir::new("kvs-");
    let e = EtcdStore::connect(cfg(&etcd), "a", &dir.path).unwrap_err();
    assert!(e.to_string().contains(&etcd.endpoint()), "{e}");
}

#[test]
fn with_a_cache_the_start_is_degraded_then_connects() {
    require_etcd!();
    let mut etcd = Etcd::start();
    let dir = TempDir::new("kvs-");
    {
        let mut a = EtcdStore::connect(cfg(&etcd), "a", &dir.path).unwrap();
        a.upsert_ipcache(cidr("10.1.0.5/32"), entry(300)).unwrap();
        a.put_cluster_policy("sw", STARWARS).unwrap();
    }
    assert!(dir.join("cluster-cache.json").exists());
    etcd.stop();
    let a = EtcdStore::connect(cfg(&etcd), "a", &dir.path).expect("degraded start");
    let st = a.status();
    assert!(!st.connected, "{st:?}");
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("degraded"),
        "{st:?}"
    );
    assert!(a.ipcache().unwrap().contains_key(&cidr("10.1.0.5/32")));
    assert!(!a.policies().unwrap().is_empty());
    etcd.restart();
    wait_for("connected once etcd is up", WAIT, || a.status().connected);
    assert!(!a.policies().unwrap().is_empty(), "the policy is in etcd");
}

#[test]
fn unreferenced_identities_are_collected_after_the_grace() {
    require_etcd!();
    let etcd = Etcd::start();
    let dir = TempDir::new("kvs-");
    let mut c = cfg(&etcd);
    c.gc_grace = Duration::from_millis(500);
    c.gc_interval = Duration::from_millis(200);
    let mut a = EtcdStore::connect(c, "a", &dir.path).unwrap();
    let (b, _db) = open(&etcd, "b");
    let keep = a.allocate_identity(&labels("keep")).unwrap();
    let id = a.allocate_identity(&labels("tmp")).unwrap();
    a.upsert_endpoint(ep("a", 1, id)).unwrap();
    wait_for("b sees both", WAIT, || {
        b.identities().unwrap().allocated().len() == 2
    });
    // The node's last endpoint of `id` goes: its reference goes with it.
    a.remove_endpoint("a", 1).unwrap().unwrap();
    wait_for("tmp collected", WAIT, || {
        b.identities().unwrap().labels(id).is_none()
    });
    assert_eq!(b.identities().unwrap().lookup(&labels("keep")), Some(keep));
    assert!(a.identities().unwrap().labels(id).is_none());
}

#[test]
fn a_cluster_service_written_on_one_node_reaches_every_node() {
    require_etcd!();
    let etcd = Etcd::start();
    let (mut a, _da) = open(&etcd, "a");
    let (mut b, _db) = open(&etcd, "b");
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n";
    a.put_cluster_service("default/web", yaml).unwrap();
    wait_for("b sees the service", WAIT, || {
        b.cluster_services()
            .unwrap()
            .get("default/web")
            .map(String::as_str)
            == Some(yaml)
    });
    let e = a.put_cluster_service("web", yaml).unwrap_err();
    assert!(matches!(e, StoreError::InvalidService { .. }), "{e}");
    assert!(e.to_string().contains("<namespace>/<name>"), "{e}");
    assert!(b.delete_cluster_service("default/web").unwrap());
    wait_for("a sees the deletion", WAIT, || {
        a.cluster_services().unwrap().is_empty()
    });
    assert!(!a.delete_cluster_service("default/web").unwrap());
}
