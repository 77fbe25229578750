//! Table-driven tests of the policy parser and compiler.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::kernel::maps::{Direction, PolicyAction};
use crate::policy::cidr::Cidr;
use crate::policy::identity::{self, IdentityAllocator, pod_labels};

const STARWARS: &str = include_str!("../../testdata/policies/starwars.yaml");

/// A pod of a test node: `(ep_id, namespace, labels)`.
type PodSpec<'a> = (u16, &'a str, &'a [(&'a str, &'a str)]);

/// A node's endpoints and identities.
struct World {
    ids: IdentityAllocator,
    eps: Vec<LocalEndpoint>,
}

fn world(pods: &[PodSpec<'_>]) -> World {
    let mut ids = IdentityAllocator::new();
    let eps = pods
        .iter()
        .map(|(ep_id, ns, labels)| {
            let l: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            LocalEndpoint {
                ep_id: *ep_id,
                identity: ids.allocate(&pod_labels(ns, &l, "default")),
            }
        })
        .collect();
    World { ids, eps }
}

fn starwars() -> World {
    world(&[
        (1, "default", &[("org", "empire"), ("class", "deathstar")]),
        (2, "default", &[("org", "empire"), ("class", "deathstar")]),
        (3, "default", &[("org", "empire"), ("class", "tiefighter")]),
        (4, "default", &[("org", "alliance"), ("class", "xwing")]),
        (5, "other", &[("org", "empire"), ("class", "deathstar")]),
    ])
}

fn id_of(w: &World, ep: u16) -> u32 {
    w.eps.iter().find(|e| e.ep_id == ep).unwrap().identity
}

fn run(w: &mut World, yaml: &str) -> (Compiled, BTreeMap<Cidr, u32>) {
    let pols = parse_str("test.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    let cidr_ids = allocate_cidr_identities(&pols, &mut w.ids);
    (compile(&pols, &w.eps, &w.ids, &cidr_ids), cidr_ids)
}

/// `(ep, direction, identity, proto, port, action)` of every entry.
fn rows(c: &Compiled) -> Vec<(u16, Direction, u32, u8, u16, PolicyAction)> {
    c.entries
        .iter()
        .map(|e| (e.ep_id, e.direction, e.identity, e.proto, e.port, e.action))
        .collect()
}

fn enforced(c: &Compiled, ep: u16) -> (bool, bool) {
    let e = c.enforce[&ep];
    (e.ingress, e.egress)
}

use Direction::{Egress as E, Ingress as I};
use PolicyAction::{Allow as A, Deny as D};

#[test]
fn starwars_allows_only_the_empire_on_tcp_80() {
    let mut w = starwars();
    let (c, _) = run(&mut w, STARWARS);
    let (deathstar, tie) = (id_of(&w, 1), id_of(&w, 3));
    assert_eq!(id_of(&w, 2), deathstar, "replicas share an identity");
    // Empire identities: deathstar and tiefighter of namespace default only.
    assert_eq!(
        rows(&c),
        vec![
            (1, I, deathstar, 6, 80, A),
            (1, I, tie, 6, 80, A),
            (2, I, deathstar, 6, 80, A),
            (2, I, tie, 6, 80, A),
        ]
    );
    assert_eq!(enforced(&c, 1), (true, false));
    assert_eq!(enforced(&c, 2), (true, false));
    for ep in [3, 4] {
        assert_eq!(enforced(&c, ep), (false, false), "ep {ep} not selected");
    }
    // The deathstar of another namespace is not selected by a namespaced policy.
    assert_eq!(enforced(&c, 5), (false, false));
    let p = &parse_str("x", STARWARS).unwrap()[0];
    assert_eq!(p.full_name(), "default/rule1");
    assert!(c.entries.iter().all(|e| e.rule == p.cookie()));
}

#[test]
fn clusterwide_policies_cross_namespaces() {
    let mut w = starwars();
    let yaml = STARWARS.replace(
        "kind: CiliumNetworkPolicy",
        "kind: CiliumClusterwideNetworkPolicy",
    );
    let (c, _) = run(&mut w, &yaml);
    assert_eq!(enforced(&c, 5), (true, false));
    // Empire ships of every namespace may land: deathstar (default and
    // other, the same labels but different namespaces) and tiefighter.
    let peers: BTreeSet<u32> = c
        .entries
        .iter()
        .filter(|e| e.ep_id == 5)
        .map(|e| e.identity)
        .collect();
    assert_eq!(
        peers,
        BTreeSet::from([id_of(&w, 1), id_of(&w, 3), id_of(&w, 5)])
    );
}

#[test]
fn match_expressions() {
    let cases: [(&str, &[u16]); 5] = [
        ("{key: org, operator: In, values: [empire]}", &[1, 2, 3]),
        ("{key: org, operator: NotIn, values: [empire]}", &[4, 6]),
        ("{key: class, operator: Exists}", &[1, 2, 3, 4]),
        ("{key: class, operator: DoesNotExist}", &[6]),
        (
            "{key: k8s:class, operator: In, values: [xwing, tiefighter]}",
            &[3, 4],
        ),
    ];
    for (expr, selected) in cases {
        let mut w = starwars();
        w.eps.push(LocalEndpoint {
            ep_id: 6,
            identity: w
                .ids
                .allocate(&pod_labels("default", &BTreeMap::new(), "default")),
        });
        let yaml = format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: x}}\nspec:\n  endpointSelector:\n    matchExpressions: [{expr}]\n  egress: [{{}}]\n"
        );
        let (c, _) = run(&mut w, &yaml);
        let got: Vec<u16> = c
            .enforce
            .iter()
            .filter(|(_, e)| e.egress)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(got, selected, "{expr}");
        assert!(c.entries.is_empty(), "`{{}}` allows nothing");
        assert!(c.enforce.values().all(|e| !e.ingress), "egress only");
    }
}

#[test]
fn deny_wins_and_l4_only_and_entities() {
    let mut w = starwars();
    let yaml = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mixed}
specs:
- endpointSelector: {matchLabels: {class: tiefighter}}
  ingress:
  - fromEntities: [all]
  - toPorts: [{ports: [{port: 53, protocol: UDP}]}]
  - fromEntities: [host, world]
    toPorts: [{ports: [{port: "8080"}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {org: alliance}}]
  - fromEntities: [all]
    toPorts: [{ports: [{port: "53", protocol: UDP}]}]
"#;
    let (c, _) = run(&mut w, yaml);
    let x = id_of(&w, 4);
    assert_eq!(
        rows(&c),
        vec![
            (3, I, 0, 0, 0, A),
            (3, I, 0, 17, 53, D),
            (3, I, 1, 6, 8080, A),
            (3, I, 1, 17, 8080, A),
            (3, I, 1, 132, 8080, A),
            (3, I, 2, 6, 8080, A),
            (3, I, 2, 17, 8080, A),
            (3, I, 2, 132, 8080, A),
            (3, I, x, 0, 0, D),
        ]
    );
}

#[test]
fn cidr_rules_become_prefixes_with_identities() {
    let mut w = starwars();
    let yaml = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out}
spec:
  endpointSelector: {matchLabels: {class: xwing}}
  egress:
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
    toPorts: [{ports: [{port: 443, protocol: TCP}]}]
  - toCIDR: [10.2.0.0/16]
  - toEntities: [world]
    toPorts: [{ports: [{port: 80, protocol: TCP}]}]
"#;
    let (c, cidr_ids) = run(&mut w, yaml);
    let id = |s: &str| cidr_ids[&s.parse::<Cidr>().unwrap()];
    let (ten, ex, two) = (id("10.0.0.0/8"), id("10.1.0.0/16"), id("10.2.0.0/16"));
    assert!(ten >= identity::CIDR_BASE && ex >= identity::CIDR_BASE);
    let mut want = vec![
        (4, E, 2, 6, 80, A),
        (4, E, ten, 6, 80, A),
        (4, E, ten, 6, 443, A),
        (4, E, ex, 6, 80, A),
        (4, E, two, 0, 0, A),
        (4, E, two, 6, 80, A),
        (4, E, two, 6, 443, A),
    ];
    want.sort_by_key(|r| (r.2, r.3, r.4));
    assert_eq!(rows(&c), want);
    assert_eq!(enforced(&c, 4), (false, true));
    // Stable across recompilation.
    let (c2, ids2) = run(&mut w, yaml);
    assert_eq!((c2, ids2), (c, cidr_ids));
}

#[test]
fn port_ranges_and_any_protocol() {
    let mut w = starwars();
    let yaml = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: r}
spec:
  endpointSelector: {matchLabels: {class: xwing}}
  ingress:
  - toPorts: [{ports: [{port: 8000, endPort: 8002, protocol: TCP}, {port: 0, protocol: UDP}]}]
"#;
    let (c, _) = run(&mut w, yaml);
    assert_eq!(
        rows(&c),
        vec![
            (4, I, 0, 6, 8000, A),
            (4, I, 0, 6, 8001, A),
            (4, I, 0, 6, 8002, A),
            (4, I, 0, 17, 0, A),
        ]
    );
}

#[test]
fn errors_name_the_file_and_field() {
    let doc = |body: &str| {
        format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: x}}\n{body}"
        )
    };
    let cases = [
        (
            doc("spec:\n  endpointSelector: {}\n  ingress: [{fromEndpoint: []}]\n"),
            "spec.ingress[0]",
            "unknown field `fromEndpoint`",
        ),
        (
            doc(
                "spec:\n  endpointSelector: {matchExpressions: [{key: a, operator: Is, values: [b]}]}\n",
            ),
            "spec.endpointSelector.matchExpressions[0].operator",
            "\"Is\"",
        ),
        (
            doc(
                "spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: http}]}]}]\n",
            ),
            "spec.ingress[0].toPorts[0].ports[0].port",
            "named ports",
        ),
        (
            doc("spec:\n  endpointSelector: {}\n  egress: [{toCIDR: [10.0.0.1/8]}]\n"),
            "spec.egress[0].toCIDR[0]",
            "host bits",
        ),
        (
            doc("spec:\n  endpointSelector: {}\n  egress: [{toEntities: [moon]}]\n"),
            "spec.egress[0].toEntities[0]",
            "unknown entity",
        ),
        (
            doc("spec:\n  egress: []\n"),
            "spec.endpointSelector",
            "required",
        ),
        (
            doc(
                "spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80, protocol: ICMPX}]}]}]\n",
            ),
            "spec.ingress[0].toPorts[0].ports[0].protocol",
            "ICMPX",
        ),
        (
            "apiVersion: cilium.io/v2\nkind: NetworkPolicy\nmetadata: {name: x}\nspec: {}\n"
                .to_string(),
            "kind",
            "expected CiliumNetworkPolicy",
        ),
        (doc(""), "spec", "needs `spec`"),
    ];
    for (yaml, field, msg) in cases {
        let e = parse_str("pol/bad.yaml", &yaml).expect_err(&yaml);
        assert_eq!(e.origin, "pol/bad.yaml");
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(msg), "{e}");
        assert!(e.to_string().starts_with("pol/bad.yaml: "), "{e}");
    }
}

#[test]
fn multi_document_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let two = format!(
        "{STARWARS}\n---\n{}\n---\n",
        STARWARS.replace("rule1", "rule2")
    );
    std::fs::write(dir.path().join("a.yaml"), two).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
    let p = load_dir(dir.path()).unwrap();
    assert_eq!(
        p.iter().map(Policy::full_name).collect::<Vec<_>>(),
        ["default/rule1", "default/rule2"]
    );
    std::fs::write(dir.path().join("b.yml"), STARWARS).unwrap();
    let e = load_dir(dir.path()).unwrap_err();
    assert!(e.message.contains("also defined in"), "{e}");
    assert!(load_dir(&dir.path().join("missing")).unwrap().is_empty());
}

#[test]
fn diffs_are_minimal() {
    let mut w = starwars();
    let (before, _) = run(&mut w, STARWARS);
    let (after, _) = run(&mut w, &STARWARS.replace("\"80\"", "\"443\""));
    let d = diff_entries(&before.entries, &after.entries);
    assert_eq!(d.upsert.len(), 4);
    assert!(d.upsert.iter().all(|e| e.port == 443));
    assert_eq!(d.remove.len(), 4);
    assert!(d.remove.iter().all(|e| e.port == 80));
    assert!(diff_entries(&after.entries, &after.entries).is_empty());
    // A changed action on the same key is one upsert, no removal.
    let mut denied = after.entries.clone();
    denied[0].action = PolicyAction::Deny;
    let d = diff_entries(&after.entries, &denied);
    assert_eq!((d.upsert.len(), d.remove.len()), (1, 0));
}

/// `toPorts: [{}]` and `toPorts: [{ports: []}]` name no port: Cilium allows
/// nothing through such a rule (with or without peers) while the endpoint
/// still enforces; `toPorts: []` is no `toPorts` (L3-only).
#[test]
fn port_rule_without_ports_allows_nothing() {
    type Row = (u16, Direction, u32, u8, u16, PolicyAction);
    let cases: [(&str, Vec<Row>); 5] = [
        (
            "[{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{}]}]",
            vec![],
        ),
        (
            "[{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: []}]}]",
            vec![],
        ),
        ("[{toPorts: [{}]}]", vec![]),
        ("[{toPorts: [{ports: []}]}]", vec![]),
        (
            "[{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: []}]",
            vec![(4, I, 0, 0, 0, A)],
        ),
    ];
    for (ingress, want) in cases {
        let mut w = starwars();
        let yaml = format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: r}}\nspec:\n  endpointSelector: {{matchLabels: {{class: xwing}}}}\n  ingress: {ingress}\n"
        );
        let (c, _) = run(&mut w, &yaml);
        let want: Vec<_> = want
            .into_iter()
            .map(|(ep, d, _, proto, port, a)| (ep, d, id_of(&w, 3), proto, port, a))
            .collect();
        assert_eq!(rows(&c), want, "ingress: {ingress}");
        assert_eq!(enforced(&c, 4), (true, false), "ingress: {ingress}");
    }
}
