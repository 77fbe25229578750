//! Privileged, on the local cluster: CNI conformance of the `datapath-cni`
//! binary, driven exactly as a runtime drives it. VERSION; the ADD result's
//! shape (cniVersion 1.0.0, host and container interfaces, IPs, routes) and
//! that it matches the namespaces; CHECK (passing, and failing with an
//! error result when the pod's address is gone); DEL idempotent (twice,
//! unknown container, namespace already gone); failed ADDs (missing
//! namespace, interface name taken, agent unreachable, bad configuration,
//! missing environment, unsupported version) return CNI error JSON with the
//! spec's codes and leave no veth, endpoint or IPAM lease behind.

use it::sys::NetNs;
use it::{Cluster, Node, NodeOptions, require_privileges};
use serde_json::Value;

fn ipam_allocated(node: &Node) -> Value {
    let v: Value =
        serde_json::from_slice(&std::fs::read(node.state.join("ipam.json")).expect("ipam.json"))
            .expect("ipam json");
    v["allocated"].clone()
}

/// The node's observable state: links, endpoints (agent and map), leases.
fn snapshot(node: &Node) -> (Vec<String>, usize, usize, Value) {
    (
        node.netns.links(),
        node.endpoints().len(),
        node.maps().endpoints().expect("endpoints map").len(),
        ipam_allocated(node),
    )
}

fn assert_error(out: &it::CniOutput, code: u64, what: &str) {
    assert!(!out.ok, "{what}: expected a failure, got {}", out.json);
    assert_eq!(out.json["code"], code, "{what}: {}", out.json);
    assert!(
        out.json["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: msg: {}",
        out.json
    );
    assert!(out.json["cniVersion"].is_string(), "{what}: {}", out.json);
}

#[test]
fn cni_add_check_del_version_and_failed_adds() {
    require_privileges!();
    let mut opts = NodeOptions::new("10.210.5.0/24");
    opts.exporter = false;
    let cluster = Cluster::new(vec![opts]);
    {
        let node = cluster.node();
        let conf = node.conf();

        // VERSION, as podman sends it (dummy netns, no container).
        let v = node.cni_env(
            &[
                ("CNI_COMMAND", "VERSION"),
                ("CNI_NETNS", "dummy"),
                ("CNI_IFNAME", "dummy"),
                ("CNI_PATH", "/opt/cni/bin"),
            ],
            conf.to_string().as_bytes(),
        );
        assert!(v.ok, "VERSION: {}", v.json);
        assert_eq!(v.json["cniVersion"], "1.0.0");
        let versions = v.json["supportedVersions"].as_array().expect("list");
        for want in ["0.3.1", "0.4.0", "1.0.0"] {
            assert!(versions.contains(&want.into()), "{want} in {versions:?}");
        }

        // ADD: the result's shape, checked against the namespaces.
        let pod = node.add_pod("shape", "app=shape");
        let r = &pod.result;
        assert_eq!(r["cniVersion"], "1.0.0", "{r}");
        let ifs = r["interfaces"].as_array().expect("interfaces");
        assert_eq!(ifs.len(), 2, "{r}");
        let host = ifs[0]["name"].as_str().expect("host name");
        assert!(host.starts_with("lxc") && host.len() <= 15, "{host}");
        assert!(ifs[0]["sandbox"].is_null(), "host side has no sandbox: {r}");
        assert_eq!(ifs[1]["name"], "eth0");
        assert_eq!(ifs[1]["sandbox"], pod.netns().to_string_lossy().as_ref());
        for i in ifs {
            let mac = i["mac"].as_str().expect("mac");
            assert_eq!(mac.len(), 17, "{mac}");
        }
        let ips = r["ips"].as_array().expect("ips");
        assert_eq!(ips.len(), 1, "{r}");
        assert_eq!(ips[0]["interface"], 1, "{r}");
        assert_eq!(
            ips[0]["address"].as_str(),
            Some(format!("{}/32", pod.ip).as_str())
        );
        assert!(
            ips[0].get("version").is_none(),
            "1.0.0 has no ips[].version: {r}"
        );
        let routes = r["routes"].as_array().expect("routes");
        assert!(
            routes.iter().any(|rt| rt["dst"] == "0.0.0.0/0"),
            "default route: {r}"
        );
        assert!(node.netns.links().contains(&host.to_string()), "host veth");
        let addr = pod.ns.run(&["ip", "-4", "-br", "addr", "show", "eth0"]);
        assert!(
            String::from_utf8_lossy(&addr.stdout).contains(&format!("{}/32", pod.ip)),
            "{addr:?}"
        );
        let eps = node.endpoints();
        assert!(
            eps.iter()
                .any(|e| e.record.ip == pod.ip && e.record.pod_name == "shape"),
            "endpoint registered: {eps:?}"
        );
        // An older result version when the configuration asks for it.
        let old_ns = NetNs::new("itp");
        let mut old_conf = conf.clone();
        old_conf["cniVersion"] = "0.4.0".into();
        let old_cid = it::cluster::container_id("old");
        let old = node.cni(
            "ADD",
            &old_cid,
            &old_ns.path().to_string_lossy(),
            "K8S_POD_NAME=old",
            &old_conf,
        );
        assert!(old.ok, "ADD 0.4.0: {}", old.json);
        assert_eq!(old.json["cniVersion"], "0.4.0");
        assert_eq!(old.json["ips"][0]["version"], "4", "{}", old.json);

        // CHECK passes; with the pod's address gone it fails with an error result.
        let c = pod.check();
        assert!(c.ok, "CHECK: {} {}", c.json, c.stderr);
        assert!(c.json.is_null(), "CHECK prints nothing on success");

        let before = snapshot(node);

        // Failed ADDs: error JSON with codes, nothing left behind.
        let gone = node.cni(
            "ADD",
            &it::cluster::container_id("gone"),
            "/run/netns/it-does-not-exist",
            "K8S_POD_NAME=gone",
            &conf,
        );
        assert_error(&gone, 3, "ADD into a missing namespace");
        assert_eq!(snapshot(node), before);

        let taken = NetNs::new("itp");
        taken.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
        ]);
        let t = node.cni(
            "ADD",
            &it::cluster::container_id("taken"),
            &taken.path().to_string_lossy(),
            "K8S_POD_NAME=taken",
            &conf,
        );
        assert!(!t.ok, "eth0 taken: {}", t.json);
        assert!(t.json["code"].as_u64().is_some(), "{}", t.json);
        assert!(
            t.json["msg"]
                .as_str()
                .unwrap_or("")
                .contains("already exists")
                || t.json["details"]
                    .as_str()
                    .unwrap_or("")
                    .contains("already exists"),
            "{}",
            t.json
        );
        assert_eq!(snapshot(node), before, "failed ADD after the veth existed");
        assert_eq!(
            taken.links().len(),
            2,
            "only the pair made before: {:?}",
            taken.links()
        );

        let mut no_agent = conf.clone();
        no_agent["agentSocket"] = "/run/it-no-such-agent.sock".into();
        let fresh = NetNs::new("itp");
        let na = node.cni(
            "ADD",
            &it::cluster::container_id("noagent"),
            &fresh.path().to_string_lossy(),
            "K8S_POD_NAME=noagent",
            &no_agent,
        );
        assert_error(&na, 11, "agent unreachable");
        assert!(fresh.links().is_empty());
        assert_eq!(snapshot(node), before);

        let bad = node.cni_env(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "abc"),
                ("CNI_NETNS", &fresh.path().to_string_lossy()),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/opt/cni/bin"),
            ],
            b"{not json",
        );
        assert_error(&bad, 6, "undecodable configuration");
        let mut future = conf.clone();
        future["cniVersion"] = "9.9.9".into();
        let fv = node.cni("ADD", "abc", &fresh.path().to_string_lossy(), "", &future);
        assert_error(&fv, 1, "unsupported version");
        let noid = node.cni_env(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_NETNS", &fresh.path().to_string_lossy()),
                ("CNI_IFNAME", "eth0"),
            ],
            conf.to_string().as_bytes(),
        );
        assert_error(&noid, 4, "missing CNI_CONTAINERID");
        let mut bad_mtu = conf.clone();
        bad_mtu["mtu"] = 100.into();
        let m = node.cni("ADD", "abc", &fresh.path().to_string_lossy(), "", &bad_mtu);
        assert_error(&m, 7, "invalid mtu");
        assert!(fresh.links().is_empty());
        assert_eq!(snapshot(node), before);

        // CHECK fails once the pod's address is gone.
        pod.ns
            .ip(&["addr", "del", &format!("{}/32", pod.ip), "dev", "eth0"]);
        let c = pod.check();
        assert!(!c.ok, "CHECK with the address gone: {}", c.json);
        assert!(c.json["code"].as_u64().is_some(), "{}", c.json);

        // DEL: twice, of an unknown container, and after the namespace is gone.
        let d = pod.del();
        assert!(d.ok, "DEL: {} {}", d.json, d.stderr);
        assert!(d.json.is_null(), "DEL prints nothing");
        let d = pod.del();
        assert!(d.ok, "second DEL: {}", d.json);
        let u = node.cni(
            "DEL",
            &it::cluster::container_id("unknown"),
            "/run/netns/it-does-not-exist",
            "",
            &conf,
        );
        assert!(u.ok, "DEL of an unknown container: {}", u.json);
        // The 0.4.0 pod's runtime removed its namespace before DEL: DEL still
        // releases the endpoint, the host veth (gone with the pair) and the lease.
        drop(old_ns);
        let od = node.cni("DEL", &old_cid, "", "", &old_conf);
        assert!(od.ok, "DEL without a namespace: {}", od.json);

        // Nothing of any pod remains.
        it::wait_for("every endpoint released", || node.endpoints().is_empty());
        assert!(node.netns.links().is_empty(), "{:?}", node.netns.links());
        assert!(node.maps().endpoints().unwrap().is_empty());
        assert_eq!(
            ipam_allocated(node).as_object().map(|o| o.len()),
            Some(0),
            "no IPAM lease left"
        );
        assert!(datapath::loader::links(&node.pins).unwrap().is_empty());
    }
    cluster.shutdown();
}
