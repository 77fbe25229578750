//! Tests of the services pipeline: parsing and validation (table-driven),
//! the catalog's cross-object rules, backend resolution, ids and diffs.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::load::{self, ParseOptions};
use super::model::{Affinity, LbAlgorithm, Object, ObjectName, Protocol, ServiceType, TargetPort};
use super::resolve::{BackendState, LbState, desired, diff};
use super::{Catalog, ServiceState, catalog, parse_store_entry, split_for_store};
use crate::agent::store::EndpointRecord;

fn opts() -> ParseOptions {
    ParseOptions {
        service_cidr: "10.96.0.0/12".parse().unwrap(),
    }
}

fn svc(name: &str, ip: &str, ports: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  clusterIP: {ip}\n  selector:\n    app: {name}\n  ports:\n{ports}{extra}"
    )
}

const P80: &str = "  - port: 80\n    targetPort: 8080\n";

fn ok(text: &str) -> Object {
    let mut v = load::parse_str("f.yaml", text, &opts());
    assert_eq!(v.len(), 1, "{v:?}");
    match v.remove(0) {
        Ok(o) => o,
        Err((_, e)) => panic!("{e}"),
    }
}

fn service(text: &str) -> super::model::Service {
    match ok(text) {
        Object::Service(s) => s,
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_full_service_parses() {
    let s = service(
        "apiVersion: v1
kind: Service
metadata:
  name: deathstar
  namespace: empire
  annotations:
    service.cilium.io/lb-algorithm: maglev
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  selector:
    org: empire
    class: deathstar
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 600
  ports:
  - name: http
    port: 80
    targetPort: 8080
    nodePort: 30080
  - name: dns
    protocol: UDP
    port: 53
",
    );
    assert_eq!(s.name, ObjectName::new("empire", "deathstar"));
    assert_eq!(s.kind, ServiceType::NodePort);
    assert_eq!(s.cluster_ip, Ipv4Addr::new(10, 96, 0, 20));
    assert_eq!(s.algorithm, LbAlgorithm::Maglev);
    assert_eq!(s.affinity, Affinity::ClientIp { timeout_s: 600 });
    assert_eq!(s.ports[0].target_port, TargetPort::Number(8080));
    assert_eq!(s.ports[0].node_port, Some(30080));
    assert_eq!(s.ports[1].protocol, Protocol::Udp);
    assert_eq!(s.ports[1].target_port, TargetPort::Number(53));
    assert_eq!(s.selector.as_ref().unwrap()["org"], "empire");
}

#[test]
fn defaults_are_kubernetes_ones() {
    let s = service(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n\
         spec: {clusterIP: 10.96.0.5, sessionAffinity: ClientIP, ports: [{port: 443}]}\n",
    );
    assert_eq!(s.name.namespace, "default");
    assert!(s.namespace_defaulted);
    assert_eq!(s.kind, ServiceType::ClusterIP);
    assert_eq!(s.algorithm, LbAlgorithm::Random);
    assert_eq!(s.affinity, Affinity::ClientIp { timeout_s: 10_800 });
    assert_eq!(s.ports[0].protocol, Protocol::Tcp);
    assert_eq!(s.selector, None);
}

#[test]
fn invalid_services_are_rejected_naming_file_object_and_reason() {
    // (what, document, words the error must hold)
    let cases: &[(&str, String, &[&str])] = &[
        (
            "unknown protocol",
            svc("a", "10.96.0.1", "  - port: 80\n    protocol: ICMP\n", ""),
            &["spec.ports[0].protocol", "unknown protocol \"ICMP\""],
        ),
        (
            "SCTP",
            svc("a", "10.96.0.1", "  - port: 80\n    protocol: SCTP\n", ""),
            &["SCTP is not supported"],
        ),
        (
            "port out of range",
            svc("a", "10.96.0.1", "  - port: 70000\n", ""),
            &["spec.ports[0].port", "70000 out of range"],
        ),
        (
            "port zero",
            svc("a", "10.96.0.1", "  - port: 0\n", ""),
            &["port 0 out of range"],
        ),
        (
            "targetPort out of range",
            svc("a", "10.96.0.1", "  - port: 80\n    targetPort: 65536\n", ""),
            &["spec.ports[0].targetPort", "65536"],
        ),
        (
            "bad selector key",
            svc("a", "10.96.0.1", P80, "").replace("app: a", "\"bad key!\": x"),
            &["spec.selector", "label key \"bad key!\""],
        ),
        (
            "bad selector value",
            svc("a", "10.96.0.1", P80, "").replace("app: a", "app: \"-x-\""),
            &["label value \"-x-\""],
        ),
        (
            "selector not a map",
            svc("a", "10.96.0.1", P80, "").replace("selector:\n    app: a", "selector: [a]"),
            &["spec.selector", "expected a map"],
        ),
        (
            "LoadBalancer",
            svc("a", "10.96.0.1", P80, "  type: LoadBalancer\n"),
            &["spec.type", "LoadBalancer is not supported"],
        ),
        (
            "ExternalName",
            svc("a", "10.96.0.1", P80, "  type: ExternalName\n"),
            &["ExternalName"],
        ),
        (
            "headless",
            svc("a", "None", P80, ""),
            &["spec.clusterIP", "headless"],
        ),
        (
            "outside the service CIDR",
            svc("a", "10.200.0.1", P80, ""),
            &["10.200.0.1 is outside the service CIDR 10.96.0.0/12"],
        ),
        (
            "no clusterIP",
            svc("a", "10.96.0.1", P80, "").replace("  clusterIP: 10.96.0.1\n", ""),
            &["spec.clusterIP", "missing"],
        ),
        (
            "nodePort on a ClusterIP",
            svc("a", "10.96.0.1", "  - port: 80\n    nodePort: 30001\n", ""),
            &["only a NodePort service"],
        ),
        (
            "nodePort out of range",
            svc(
                "a",
                "10.96.0.1",
                "  - port: 80\n    nodePort: 8080\n",
                "  type: NodePort\n",
            ),
            &["8080 outside the node port range 30000-32767"],
        ),
        (
            "duplicate port",
            svc("a", "10.96.0.1", "  - name: x\n    port: 80\n  - name: y\n    port: 80\n", ""),
            &["duplicate port 80/TCP"],
        ),
        (
            "unnamed ports",
            svc("a", "10.96.0.1", "  - port: 80\n  - port: 81\n", ""),
            &["required when a service has several ports"],
        ),
        (
            "unknown affinity",
            svc("a", "10.96.0.1", P80, "  sessionAffinity: Sticky\n"),
            &["spec.sessionAffinity"],
        ),
        (
            "unknown algorithm",
            svc("a", "10.96.0.1", P80, "").replace(
                "namespace: default\n",
                "namespace: default\n  annotations:\n    service.cilium.io/lb-algorithm: least-conn\n",
            ),
            &["lb-algorithm", "least-conn"],
        ),
        (
            "no ports",
            svc("a", "10.96.0.1", "", "").replace("  ports:\n", "  ports: []\n"),
            &["at least one port"],
        ),
        (
            "bad name",
            svc("A_b", "10.96.0.1", P80, ""),
            &["metadata.name"],
        ),
    ];
    for (what, doc, words) in cases {
        let v = load::parse_str("dir/bad.yaml", doc, &opts());
        let Err((key, e)) = &v[0] else {
            panic!("{what}: accepted");
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("dir/bad.yaml: Service default/"),
            "{what}: {msg}"
        );
        assert!(key.is_some(), "{what}: the object is named");
        for w in *words {
            assert!(msg.contains(w), "{what}: {msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn unreadable_documents_name_the_document() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("not YAML", "kind: [", &["document 1", "not valid YAML"]),
        (
            "other kind",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            &["document 1", "apps/v1", "Deployment"],
        ),
        (
            "no name",
            "apiVersion: v1\nkind: Service\nmetadata: {}\n",
            &["document 1 (Service)", "metadata.name: missing"],
        ),
    ];
    for (what, doc, words) in cases {
        let v = load::parse_str("x.yaml", doc, &opts());
        let Err((key, e)) = &v[0] else {
            panic!("{what}: accepted");
        };
        assert!(key.is_none(), "{what}");
        let msg = e.to_string();
        for w in *words {
            assert!(msg.contains(w), "{what}: {msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn one_bad_document_leaves_the_others() {
    let text = format!(
        "{}---\n{}",
        svc("a", "10.96.0.1", P80, ""),
        svc("b", "10.96.0.2", "  - port: 99999\n", "")
    );
    let v = load::parse_str("f.yaml", &text, &opts());
    assert!(v[0].is_ok());
    assert!(v[1].is_err());
}

const SLICE: &str = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ext-1
  namespace: default
  labels:
    kubernetes.io/service-name: ext
addressType: IPv4
ports:
- name: web
  port: 8443
endpoints:
- addresses: [10.0.9.1]
- addresses: [10.0.9.2]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.9.3]
  conditions: {ready: false}
- addresses: [10.0.9.4]
  conditions: {ready: false, serving: false, terminating: true}
";

#[test]
fn endpoint_slices_parse_and_reject_what_they_must() {
    let Object::Slice(s) = ok(SLICE) else {
        panic!()
    };
    assert_eq!(s.service, "ext");
    assert_eq!(s.ports[0].port, 8443);
    assert!(s.endpoints[0].conditions.ready && s.endpoints[0].conditions.serving);
    assert!(s.endpoints[1].conditions.terminating);
    let cases: &[(&str, String, &str)] = &[
        (
            "no service label",
            SLICE.replace("kubernetes.io/service-name: ext", "x: y"),
            "kubernetes.io/service-name: missing",
        ),
        (
            "IPv6",
            SLICE.replace("addressType: IPv4", "addressType: IPv6"),
            "IPv-only",
        ),
        (
            "bad address",
            SLICE.replace("10.0.9.1", "fe80::1"),
            "is not IPv4",
        ),
        (
            "bad protocol",
            SLICE.replace("  port: 8443", "  port: 8443\n  protocol: GRE"),
            "unknown protocol",
        ),
    ];
    for (what, doc, word) in cases {
        let v = load::parse_str("s.yaml", doc, &opts());
        let Err((_, e)) = &v[0] else {
            panic!("{what}: accepted")
        };
        let word = word.replace("IPv-only", "IPv4-only");
        assert!(e.to_string().contains(&word), "{what}: {e}");
        assert!(e.to_string().contains("EndpointSlice default/ext-1"), "{e}");
    }
}

fn docs(files: &[(&str, &str)]) -> Vec<(String, super::DocResult)> {
    files
        .iter()
        .flat_map(|(o, t)| {
            load::parse_str(o, t, &opts())
                .into_iter()
                .map(|d| (o.to_string(), d))
        })
        .collect()
}

#[test]
fn conflicts_across_services_are_rejected_and_the_holder_keeps_its_frontend() {
    let a = svc("a", "10.96.0.1", P80, "");
    let c0 = catalog::merge(&Catalog::default(), docs(&[("a.yaml", &a)]));
    assert!(c0.errors.is_empty(), "{:?}", c0.errors);
    // b takes a's VIP:port: b is rejected, naming a.
    let b = svc("b", "10.96.0.1", P80, "");
    let c1 = catalog::merge(&c0, docs(&[("a.yaml", &a), ("b.yaml", &b)]));
    assert_eq!(c1.services.len(), 1);
    let e = c1.errors[0].to_string();
    assert!(
        e.contains("b.yaml: Service default/b: frontend 10.96.0.1:80/TCP is already used by Service default/a"),
        "{e}"
    );
    // Same VIP and port on UDP is another frontend.
    let b_udp = svc("b", "10.96.0.1", "  - port: 80\n    protocol: UDP\n", "");
    let c2 = catalog::merge(&c0, docs(&[("a.yaml", &a), ("b.yaml", &b_udp)]));
    assert!(c2.errors.is_empty(), "{:?}", c2.errors);
    // Duplicate node ports.
    let np = |n: &str, ip: &str| {
        svc(
            n,
            ip,
            "  - port: 80\n    nodePort: 30500\n",
            "  type: NodePort\n",
        )
    };
    let c3 = catalog::merge(
        &Catalog::default(),
        docs(&[
            ("x.yaml", &np("x", "10.96.0.7")),
            ("y.yaml", &np("y", "10.96.0.8")),
        ]),
    );
    assert_eq!(c3.services.len(), 1);
    assert!(
        c3.errors[0]
            .to_string()
            .contains("node port 30500 is already used by Service default/x"),
        "{:?}",
        c3.errors
    );
    // The same name twice.
    let c4 = catalog::merge(
        &Catalog::default(),
        docs(&[("1.yaml", &a), ("2.yaml", &svc("a", "10.96.0.9", P80, ""))]),
    );
    assert!(c4.errors[0].to_string().contains("also defined in 1.yaml"));
    assert_eq!(
        c4.services[&ObjectName::new("default", "a")].origin,
        "1.yaml"
    );
}

#[test]
fn a_bad_new_version_keeps_the_previous_one_and_others_still_apply() {
    let a = svc("a", "10.96.0.1", P80, "");
    let b = svc("b", "10.96.0.2", P80, "");
    let c0 = catalog::merge(&Catalog::default(), docs(&[("a.yaml", &a), ("b.yaml", &b)]));
    // a gets an invalid port; b changes validly; c is new.
    let a_bad = svc("a", "10.96.0.1", "  - port: 0\n", "");
    let b2 = svc("b", "10.96.0.2", "  - port: 81\n", "");
    let c = svc("c", "10.96.0.3", P80, "");
    let c1 = catalog::merge(
        &c0,
        docs(&[("a.yaml", &a_bad), ("b.yaml", &b2), ("c.yaml", &c)]),
    );
    assert_eq!(c1.services.len(), 3);
    assert_eq!(
        c1.services[&ObjectName::new("default", "a")],
        c0.services[&ObjectName::new("default", "a")]
    );
    assert_eq!(
        c1.services[&ObjectName::new("default", "b")].service.ports[0].port,
        81
    );
    assert_eq!(c1.errors.len(), 1);
    // A file that is not YAML at all keeps every object it had.
    let c2 = catalog::merge(&c1, docs(&[("a.yaml", "kind: ["), ("b.yaml", &b2)]));
    assert!(c2.services.contains_key(&ObjectName::new("default", "a")));
    assert!(
        !c2.services.contains_key(&ObjectName::new("default", "c")),
        "c.yaml is gone"
    );
    // A changed service that now conflicts keeps its previous version.
    let b_steal = svc("b", "10.96.0.1", P80, "");
    let c3 = catalog::merge(&c1, docs(&[("a.yaml", &a), ("b.yaml", &b_steal)]));
    assert_eq!(
        c3.services[&ObjectName::new("default", "b")].service.ports[0].port,
        81
    );
    assert!(
        c3.errors[0].to_string().contains("previous version stays"),
        "{:?}",
        c3.errors
    );
}

#[test]
fn node_ports_are_allocated_deterministically_and_kept() {
    let np = |n: &str, ip: &str| svc(n, ip, P80, "  type: NodePort\n");
    let files = [
        ("x.yaml", np("x", "10.96.0.7")),
        ("y.yaml", np("y", "10.96.0.8")),
    ];
    let d = || {
        docs(
            &files
                .iter()
                .map(|(a, b)| (*a, b.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    let c1 = catalog::merge(&Catalog::default(), d());
    let c2 = catalog::merge(&Catalog::default(), d());
    assert_eq!(c1, c2, "same input, same ports on every agent");
    let px = c1.services[&ObjectName::new("default", "x")].node_ports[0].unwrap();
    let py = c1.services[&ObjectName::new("default", "y")].node_ports[0].unwrap();
    assert!((30000..=32767).contains(&px) && px != py);
    // A later explicit claim of x's port is refused; x keeps it.
    let z = svc(
        "z",
        "10.96.0.9",
        &format!("  - port: 80\n    nodePort: {px}\n"),
        "  type: NodePort\n",
    );
    let mut more = d();
    more.extend(docs(&[("z.yaml", &z)]));
    let c3 = catalog::merge(&c1, more);
    assert_eq!(
        c3.services[&ObjectName::new("default", "x")].node_ports[0],
        Some(px)
    );
    assert!(!c3.services.contains_key(&ObjectName::new("default", "z")));
}

fn ep(node: &str, ns: &str, ip: [u8; 4], labels: &[(&str, &str)]) -> EndpointRecord {
    EndpointRecord {
        node: node.into(),
        ep_id: ip[3].into(),
        container_id: format!("c{}", ip[3]),
        ifname: "eth0".into(),
        netns: "/run/netns/x".into(),
        host_iface: format!("lxc{}", ip[3]),
        ifindex: 7,
        ip: Ipv4Addr::from(ip),
        pod_mac: [2, 0, 0, 0, 0, 1],
        node_mac: [2, 0, 0, 0, 0, 2],
        namespace: ns.into(),
        pod_name: format!("pod{}", ip[3]),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        identity: 256,
        ports: Vec::new(),
    }
}

fn cat(files: &[(&str, &str)]) -> Catalog {
    let c = catalog::merge(&Catalog::default(), docs(files));
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    c
}

#[test]
fn selector_backends_are_the_matching_endpoints_of_every_node_in_the_namespace() {
    let c = cat(&[("a.yaml", &svc("web", "10.96.0.1", P80, ""))]);
    let eps = [
        ep("n1", "default", [10, 0, 1, 5], &[("app", "web")]),
        ep(
            "n2",
            "default",
            [10, 0, 2, 5],
            &[("app", "web"), ("v", "2")],
        ),
        ep("n1", "other", [10, 0, 1, 6], &[("app", "web")]),
        ep("n1", "default", [10, 0, 1, 7], &[("app", "db")]),
    ];
    let lb = desired(&c, &eps, &[], &LbState::default());
    assert_eq!(lb.frontends.len(), 1);
    let (f, e) = lb.frontends.iter().next().unwrap();
    assert_eq!(f.to_string(), "10.96.0.1:80/TCP");
    assert_eq!(e.rev_nat_id, 1);
    let addrs: Vec<String> = e
        .backends
        .iter()
        .map(|b| lb.backends[&b.id].to_string())
        .collect();
    assert_eq!(addrs, ["10.0.1.5:8080/TCP", "10.0.2.5:8080/TCP"]);
}

#[test]
fn a_named_target_port_is_each_pods_declared_port() {
    let c = cat(&[(
        "a.yaml",
        &svc(
            "web",
            "10.96.0.1",
            "  - port: 80\n    targetPort: http\n",
            "",
        ),
    )]);
    let port = |name: &str, port: u16, protocol: u8| crate::policy::NamedPort {
        name: name.into(),
        port,
        protocol,
    };
    let mut a = ep("n1", "default", [10, 0, 1, 5], &[("app", "web")]);
    a.ports = vec![port("http", 8080, 6)];
    let mut b = ep("n2", "default", [10, 0, 2, 5], &[("app", "web")]);
    b.ports = vec![port("http", 9090, 6), port("dns", 53, 17)];
    // Declares `http` for UDP only, and nothing: no backend of this port.
    let mut udp = ep("n2", "default", [10, 0, 2, 6], &[("app", "web")]);
    udp.ports = vec![port("http", 8080, 17)];
    let none = ep("n1", "default", [10, 0, 1, 7], &[("app", "web")]);
    let lb = desired(&c, &[a, b, udp, none], &[], &LbState::default());
    let e = lb.frontends.values().next().unwrap();
    let addrs: Vec<String> = e
        .backends
        .iter()
        .map(|b| lb.backends[&b.id].to_string())
        .collect();
    assert_eq!(addrs, ["10.0.1.5:8080/TCP", "10.0.2.5:9090/TCP"]);
}

#[test]
fn slice_backends_follow_conditions_and_port_names() {
    let ext = "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\n\
               spec:\n  clusterIP: 10.96.0.30\n  ports:\n  - name: web\n    port: 443\n";
    let c = cat(&[("e.yaml", &format!("{ext}---\n{SLICE}"))]);
    let lb = desired(&c, &[], &[], &LbState::default());
    let e = lb.frontends.values().next().unwrap();
    let got: Vec<(String, BackendState)> = e
        .backends
        .iter()
        .map(|b| (lb.backends[&b.id].to_string(), b.state))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.9.1:8443/TCP".to_string(), BackendState::Active),
            ("10.0.9.2:8443/TCP".to_string(), BackendState::Terminating),
        ]
    );
    assert_eq!(e.active().count(), 1);
}

#[test]
fn node_port_frontends_use_this_nodes_addresses() {
    let c = cat(&[(
        "n.yaml",
        &svc(
            "web",
            "10.96.0.1",
            "  - port: 80\n    nodePort: 30080\n",
            "  type: NodePort\n",
        ),
    )]);
    let ips = [Ipv4Addr::new(192, 168, 50, 1)];
    let lb = desired(
        &c,
        &[ep("n1", "default", [10, 0, 1, 5], &[("app", "web")])],
        &ips,
        &LbState::default(),
    );
    let fronts: Vec<(String, ServiceType)> = lb
        .frontends
        .iter()
        .map(|(f, e)| (f.to_string(), e.kind))
        .collect();
    assert_eq!(
        fronts,
        [
            ("10.96.0.1:80/TCP".into(), ServiceType::ClusterIP),
            ("192.168.50.1:30080/TCP".into(), ServiceType::NodePort),
        ]
    );
    let ids: Vec<u16> = lb.frontends.values().map(|e| e.rev_nat_id).collect();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn ids_survive_recomputation_and_unrelated_changes() {
    let a = svc("a", "10.96.0.1", P80, "");
    let b = svc("b", "10.96.0.2", P80, "");
    let eps = vec![
        ep("n1", "default", [10, 0, 1, 5], &[("app", "a")]),
        ep("n1", "default", [10, 0, 1, 6], &[("app", "b")]),
    ];
    let c1 = cat(&[("a.yaml", &a), ("b.yaml", &b)]);
    let s1 = desired(&c1, &eps, &[], &LbState::default());
    let again = desired(&c1, &eps, &[], &s1);
    assert_eq!(s1, again);
    assert!(diff(&s1, &again).is_empty());
    // a goes away, a new c arrives, b gets one more backend: b keeps its ids.
    let c = svc("c", "10.96.0.3", P80, "");
    let mut eps2 = eps.clone();
    eps2.push(ep("n2", "default", [10, 0, 2, 6], &[("app", "b")]));
    eps2.push(ep("n2", "default", [10, 0, 2, 9], &[("app", "c")]));
    let c2 = cat(&[("b.yaml", &b), ("c.yaml", &c)]);
    let s2 = desired(&c2, &eps2, &[], &s1);
    let fb = |s: &LbState| {
        s.frontends
            .iter()
            .find(|(f, _)| f.addr == Ipv4Addr::new(10, 96, 0, 2))
            .map(|(_, e)| e.clone())
            .unwrap()
    };
    assert_eq!(fb(&s2).rev_nat_id, fb(&s1).rev_nat_id);
    assert_eq!(
        fb(&s2).backends[0],
        fb(&s1).backends[0],
        "10.0.1.6 keeps its id"
    );
    let fc = s2
        .frontends
        .iter()
        .find(|(f, _)| f.addr == Ipv4Addr::new(10, 96, 0, 3))
        .unwrap()
        .1;
    assert_eq!(fc.rev_nat_id, 3, "a's id 1 is not handed out again at once");
    // The diff is minimal.
    let d = diff(&s1, &s2);
    assert_eq!(d.delete_frontends.len(), 1);
    assert_eq!(d.delete_frontends[0].addr, Ipv4Addr::new(10, 96, 0, 1));
    assert_eq!(d.upsert_frontends.len(), 2, "b (one more backend) and c");
    assert_eq!(d.upsert_backends.len(), 2, "10.0.2.6 and 10.0.2.9");
    assert_eq!(d.delete_backends.len(), 1, "10.0.1.5");
    assert!(d.upsert_backends.iter().all(|(id, _)| *id > 2));
}

#[test]
fn store_entries_hold_only_their_service_and_apply_texts_split_by_service() {
    let a = svc("a", "10.96.0.1", P80, "");
    let v = parse_store_entry("default/a", &a, &opts());
    assert!(v[0].is_ok());
    let v = parse_store_entry("default/b", &a, &opts());
    let Err((_, e)) = &v[0] else { panic!() };
    assert!(
        e.to_string().contains("stored under the key of default/b"),
        "{e}"
    );

    let ext = "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default}\n\
               spec:\n  clusterIP: 10.96.0.30\n  ports:\n  - name: web\n    port: 443\n";
    let groups = split_for_store(&format!("{a}---\n{SLICE}---\n{ext}"), &opts()).unwrap();
    let keys: Vec<String> = groups.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(keys, ["default/a", "default/ext"]);
    assert_eq!(
        parse_store_entry("default/ext", &groups[1].1, &opts()).len(),
        2
    );
    let e = split_for_store(SLICE, &opts()).unwrap_err();
    assert!(e.contains("apply a slice together with its service"), "{e}");
    let e = split_for_store(&svc("a", "10.96.0.1", "  - port: 99999\n", ""), &opts()).unwrap_err();
    assert!(
        e.contains("request: Service default/a: spec.ports[0].port"),
        "{e}"
    );
}

#[test]
fn the_state_recomputes_from_dir_and_store_and_checks_entries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), svc("a", "10.96.0.1", P80, "")).unwrap();
    let mut st = ServiceState::new(dir.path().to_path_buf(), opts());
    assert!(st.poll_dir());
    assert!(!st.poll_dir(), "unchanged");
    let eps = [ep("n1", "default", [10, 0, 1, 5], &[("app", "a")])];
    let mut store = BTreeMap::new();
    store.insert("default/b".to_string(), svc("b", "10.96.0.2", P80, ""));
    st.recompute(&store, &eps, &[]);
    assert_eq!(st.lb().frontends.len(), 2);
    assert_eq!(st.changes().upsert_frontends.len(), 2);
    let rev = st.revision();
    st.recompute(&store, &eps, &[]);
    assert!(st.changes().is_empty());
    assert_eq!(st.revision(), rev);
    // A store entry taking a's frontend is refused before it is stored.
    let e = st
        .check_entry(
            &ObjectName::new("default", "c"),
            &svc("c", "10.96.0.1", P80, ""),
            &store,
        )
        .unwrap_err();
    assert!(e.contains("already used by Service default/a"), "{e}");
    assert!(
        st.check_entry(
            &ObjectName::new("default", "c"),
            &svc("c", "10.96.0.3", P80, ""),
            &store
        )
        .is_ok()
    );
    let l = st.list();
    assert_eq!(l.frontends[0].backends[0].address, "10.0.1.5:8080/TCP");
    // Enrichment: ClusterIPs, and node ports on every node's address.
    std::fs::write(
        dir.path().join("n.yaml"),
        svc(
            "n",
            "10.96.0.9",
            "  - port: 80\n    nodePort: 30080\n",
            "  type: NodePort\n",
        ),
    )
    .unwrap();
    assert!(st.poll_dir());
    st.recompute(&store, &eps, &[Ipv4Addr::new(192, 168, 0, 1)]);
    let info = st.enrichment(&[Ipv4Addr::new(192, 168, 0, 1), Ipv4Addr::new(192, 168, 0, 2)]);
    let n: Vec<_> = info.iter().filter(|i| i.name == "n").collect();
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].ports, [80]);
    assert_eq!(n[1].ports, [30080]);
    assert_eq!(n[1].ips.len(), 2);
}

#[test]
fn the_star_wars_service_parses_and_a_seeded_state_keeps_its_ids() {
    let text = include_str!("../../../testdata/services/starwars.yaml");
    let c = cat(&[("starwars.yaml", text)]);
    let eps = [
        ep(
            "n1",
            "default",
            [10, 0, 1, 5],
            &[("org", "empire"), ("class", "deathstar")],
        ),
        ep(
            "n2",
            "default",
            [10, 0, 2, 5],
            &[("org", "empire"), ("class", "deathstar")],
        ),
        ep(
            "n1",
            "default",
            [10, 0, 1, 6],
            &[("org", "alliance"), ("class", "xwing")],
        ),
    ];
    let first = desired(&c, &eps, &[], &LbState::default());
    let e = &first.frontends.values().next().unwrap();
    assert_eq!(e.backends.len(), 2);
    // An agent restarted with ids read back from the maps: ids 7 and 9.
    let mut from_maps = first.clone();
    let renumber = |id: u32| if id == 1 { 7 } else { 9 };
    from_maps.backends = first
        .backends
        .iter()
        .map(|(id, b)| (renumber(*id), *b))
        .collect();
    for fe in from_maps.frontends.values_mut() {
        fe.rev_nat_id = 42;
        for b in &mut fe.backends {
            b.id = renumber(b.id);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("starwars.yaml"), text).unwrap();
    let mut st = ServiceState::new(dir.path().to_path_buf(), opts());
    st.poll_dir();
    st.seed(from_maps.clone());
    st.recompute(&BTreeMap::new(), &eps, &[]);
    assert_eq!(st.lb(), &from_maps);
    assert!(st.changes().is_empty(), "{:?}", st.changes());
}
