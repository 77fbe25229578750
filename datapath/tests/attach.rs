//! Privileged: loading, pin re-adoption, TCX attach through pinned links in a
//! node network namespace, restart swaps, detach and defunct-link pruning.
//! Every test uses a private bpffs and uniquely named namespaces, removed
//! by guards even on failure.

mod common;

use std::net::Ipv4Addr;

use aya::programs::{SchedClassifier, TcAttachType};
use datapath::netns::in_netns;
use datapath::{AttachTarget, Datapath, Endpoint, LinkOutcome, LoadOptions, loader};

use common::{NetNs, Scratch};

fn opts(scratch: &Scratch) -> LoadOptions {
    let mut o = LoadOptions::new(scratch.pin_dir());
    o.sizes.ct4 = 1024;
    o.sizes.events_ring_bytes = 1 << 20;
    o
}

/// Program ids attached at TCX `dir` of `iface` inside `ns`.
fn tcx_progs(ns: &NetNs, iface: &str, dir: TcAttachType) -> Vec<u32> {
    let path = ns.path();
    in_netns(Some(&path), || {
        let (_, progs) = SchedClassifier::query_tcx(iface, dir).expect("query_tcx");
        Ok(progs.iter().map(|p| p.id()).collect())
    })
    .unwrap()
}

fn endpoint() -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 0, 9, 2),
        ifindex: 42,
        pod_mac: [2, 0, 0, 0, 9, 2],
        node_mac: [2, 0, 0, 0, 9, 1],
        identity: 5000,
        ep_id: 9,
        enforce_ingress: true,
        enforce_egress: false,
        audit: false,
    }
}

#[test]
fn attach_pins_links_and_a_restart_swaps_programs_in_place() {
    require_privileges!();
    let scratch = Scratch::new();
    let node = NetNs::new("dpn");
    node.ip(&[
        "link", "add", "lxc0", "type", "veth", "peer", "name", "pod0",
    ]);
    node.ip(&["link", "set", "lxc0", "up"]);
    node.ip(&["link", "set", "pod0", "up"]);
    let target = AttachTarget {
        netns: Some(node.path()),
        iface: "lxc0".into(),
    };

    // First start: new links, pinned.
    let mut dp1 = Datapath::load(&opts(&scratch)).expect("load");
    let r = dp1.attach(&target).expect("attach");
    assert_eq!(
        (r.ingress, r.egress),
        (LinkOutcome::Created, LinkOutcome::Created)
    );
    let (in1, eg1) = dp1.program_ids().unwrap();
    let links1 = loader::links(&scratch.pin_dir()).unwrap();
    assert_eq!(links1.len(), 2);
    for l in &links1 {
        assert_eq!(l.ifindex, r.ifindex);
        assert_eq!(l.prog_id, if l.ingress { in1 } else { eg1 });
    }
    assert_eq!(tcx_progs(&node, "lxc0", TcAttachType::Ingress), vec![in1]);
    assert_eq!(tcx_progs(&node, "lxc0", TcAttachType::Egress), vec![eg1]);
    dp1.maps().unwrap().upsert_endpoint(&endpoint()).unwrap();

    // The loader goes away: the pinned links keep the programs attached.
    drop(dp1);
    assert_eq!(tcx_progs(&node, "lxc0", TcAttachType::Ingress), vec![in1]);

    // Restart: maps re-adopted with their state, programs swapped into the
    // same links (no second program in the chain, no gap).
    let mut dp2 = Datapath::load(&opts(&scratch)).expect("reload");
    assert_eq!(
        dp2.load_report().reused.len(),
        16,
        "{:?}",
        dp2.load_report()
    );
    assert_eq!(
        dp2.maps().unwrap().endpoint(endpoint().ip).unwrap(),
        Some(endpoint())
    );
    let r2 = dp2.attach(&target).expect("re-attach");
    assert_eq!(
        (r2.ingress, r2.egress),
        (LinkOutcome::Replaced, LinkOutcome::Replaced)
    );
    let (in2, eg2) = dp2.program_ids().unwrap();
    assert_ne!((in1, eg1), (in2, eg2));
    let links2 = loader::links(&scratch.pin_dir()).unwrap();
    assert_eq!(
        links1.iter().map(|l| l.link_id).collect::<Vec<_>>(),
        links2.iter().map(|l| l.link_id).collect::<Vec<_>>(),
        "same kernel links"
    );
    assert_eq!(tcx_progs(&node, "lxc0", TcAttachType::Ingress), vec![in2]);
    assert_eq!(tcx_progs(&node, "lxc0", TcAttachType::Egress), vec![eg2]);

    // Detach: pins removed, programs gone from the device.
    assert_eq!(loader::detach(&scratch.pin_dir(), "lxc0").unwrap(), 2);
    // The kernel releases a TCX link from a workqueue once its last
    // reference is gone, so the detach becomes visible shortly after.
    eventually("ingress detached", || {
        tcx_progs(&node, "lxc0", TcAttachType::Ingress).is_empty()
    });
    eventually("egress detached", || {
        tcx_progs(&node, "lxc0", TcAttachType::Egress).is_empty()
    });
    assert_eq!(loader::detach(&scratch.pin_dir(), "lxc0").unwrap(), 0);

    // Attached again, then the namespace disappears: the links go defunct
    // and are pruned.
    assert_eq!(dp2.attach(&target).unwrap().ingress, LinkOutcome::Created);
    drop(node);
    // The kernel tears a deleted namespace's devices down asynchronously.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let links3 = loop {
        let l = loader::links(&scratch.pin_dir()).unwrap();
        if l.iter().all(|l| l.ifindex == 0) || std::time::Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(links3.iter().all(|l| l.ifindex == 0), "{links3:?}");
    assert_eq!(loader::prune_defunct_links(&scratch.pin_dir()).unwrap(), 2);
    assert!(loader::links(&scratch.pin_dir()).unwrap().is_empty());
}

#[test]
fn defunct_link_is_recreated_on_attach() {
    require_privileges!();
    let scratch = Scratch::new();
    let node = NetNs::new("dpn");
    node.ip(&[
        "link", "add", "lxc1", "type", "veth", "peer", "name", "pod1",
    ]);
    let target = AttachTarget {
        netns: Some(node.path()),
        iface: "lxc1".into(),
    };
    let mut dp = Datapath::load(&opts(&scratch)).unwrap();
    dp.attach(&target).unwrap();
    // The veth is re-created (a pod restarted with the same interface name).
    node.ip(&["link", "del", "lxc1"]);
    node.ip(&[
        "link", "add", "lxc1", "type", "veth", "peer", "name", "pod1",
    ]);
    let r = dp.attach(&target).unwrap();
    assert_eq!(
        (r.ingress, r.egress),
        (LinkOutcome::Recreated, LinkOutcome::Recreated)
    );
    let (ing, _) = dp.program_ids().unwrap();
    assert_eq!(tcx_progs(&node, "lxc1", TcAttachType::Ingress), vec![ing]);
}

#[test]
fn mismatched_pins_are_replaced_and_matching_ones_reused() {
    require_privileges!();
    let scratch = Scratch::new();
    let mut small = opts(&scratch);
    small.sizes.ct4 = 512;
    let dp = Datapath::load(&small).unwrap();
    dp.maps().unwrap().upsert_endpoint(&endpoint()).unwrap();
    drop(dp);

    let dp = Datapath::load(&opts(&scratch)).unwrap();
    let report = dp.load_report();
    assert_eq!(
        report.replaced,
        vec![("ct4".to_string(), "max_entries 512, want 1024".to_string())]
    );
    assert_eq!(
        report.reused,
        datapath::maps::pinned_map_names()
            .filter(|&m| m != "ct4")
            .map(String::from)
            .collect::<Vec<_>>(),
        "every other map reused"
    );
    assert_eq!(
        dp.maps().unwrap().endpoint(endpoint().ip).unwrap(),
        Some(endpoint()),
        "state of the reused maps survives"
    );
}

#[test]
fn unpin_all_leaves_nothing_behind() {
    require_privileges!();
    let scratch = Scratch::new();
    let dp = Datapath::load(&opts(&scratch)).unwrap();
    drop(dp);
    loader::unpin_all(&scratch.pin_dir()).unwrap();
    assert!(!scratch.pin_dir().exists());
}

/// Waits up to 5 s for `cond` (kernel work that completes asynchronously).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still not true after 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
