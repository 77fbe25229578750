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
            // `world` is also Cilium's world-ipv4 and world-ipv6.
            (3, I, 9, 6, 8080, A),
            (3, I, 9, 17, 8080, A),
            (3, I, 9, 132, 8080, A),
            (3, I, 10, 6, 8080, A),
            (3, I, 10, 17, 8080, A),
            (3, I, 10, 132, 8080, A),
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
        (4, E, 9, 6, 80, A),
        (4, E, 10, 6, 80, A),
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
            (4, I, 0, 6, 8002, A),
            (4, I, 0, 17, 0, A),
        ]
    );
    // 8000-8001 is one prefix (15 bits), 8002 one port, UDP every port.
    let bits: Vec<u8> = c.entries.iter().map(|e| e.port_prefix).collect();
    assert_eq!(bits, vec![15, 16, 0]);
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
                "spec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: Http_1}]}]}]\n",
            ),
            "spec.ingress[0].toPorts[0].ports[0].port",
            "port name",
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

/// A CiliumNetworkPolicy selecting the xwing (ep 4) with `sections`
/// (YAML lines at the rule's indentation).
fn xwing_policy(sections: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: r}}\nspec:\n  endpointSelector: {{matchLabels: {{class: xwing}}}}\n{sections}"
    )
}

/// An empty list is no section (Cilium: default-deny for a direction only
/// when `len(Ingress) > 0 || len(IngressDeny) > 0`, likewise egress), while
/// `[{}]` is a section that allows nothing.
#[test]
fn empty_sections_do_not_enforce() {
    type Row = (u16, Direction, u32, u8, u16, PolicyAction);
    let all_out: Vec<Row> = vec![(4, E, 0, 0, 0, A)];
    let all_in: Vec<Row> = vec![(4, I, 0, 0, 0, A)];
    let cases: [(&str, (bool, bool), Vec<Row>); 8] = [
        (
            "  ingress: []\n  egress: [{toEntities: [all]}]\n",
            (false, true),
            all_out.clone(),
        ),
        (
            "  ingressDeny: []\n  egress: [{toEntities: [all]}]\n",
            (false, true),
            all_out.clone(),
        ),
        (
            "  ingress: []\n  ingressDeny: []\n  egress: [{toEntities: [all]}]\n",
            (false, true),
            all_out.clone(),
        ),
        (
            "  egress: []\n  ingress: [{fromEntities: [all]}]\n",
            (true, false),
            all_in.clone(),
        ),
        (
            "  egressDeny: []\n  ingress: [{fromEntities: [all]}]\n",
            (true, false),
            all_in,
        ),
        // Absent is the same as empty.
        (
            "  egress: [{toEntities: [all]}]\n",
            (false, true),
            all_out.clone(),
        ),
        // `[{}]` is a section: default-deny, nothing allowed.
        (
            "  ingress: [{}]\n  egress: [{toEntities: [all]}]\n",
            (true, true),
            all_out,
        ),
        ("  ingressDeny: [{}]\n  egress: []\n", (true, false), vec![]),
    ];
    for (sections, enforcement, want) in cases {
        let mut w = starwars();
        let yaml = xwing_policy(sections);
        let (c, _) = run(&mut w, &yaml);
        assert_eq!(enforced(&c, 4), enforcement, "{sections}");
        assert_eq!(rows(&c), want, "{sections}");
        let rule = &parse_str("x", &yaml).unwrap()[0].rules[0];
        for (name, section) in [
            ("ingress", &rule.ingress),
            ("ingressDeny", &rule.ingress_deny),
            ("egress", &rule.egress),
            ("egressDeny", &rule.egress_deny),
        ] {
            assert!(
                section.as_ref().is_none_or(|v| !v.is_empty()),
                "{sections}: {name} [] is kept as None"
            );
        }
    }
}

/// What Cilium's rule validation rejects, with the reason in the error:
/// a rule without a non-empty section, and two kinds of L3 peers in one
/// rule (any pair of endpoints, CIDR, CIDR set and entities, in allow and
/// deny rules of both directions).
#[test]
fn rejected_like_cilium() {
    let no_section = "at least one of ingress, ingressDeny, egress, egressDeny";
    let cases = [
        ("  ingress: []\n", "spec", no_section),
        ("  egress: []\n", "spec", no_section),
        ("  ingress: []\n  egress: []\n", "spec", no_section),
        ("  ingressDeny: []\n  egressDeny: []\n", "spec", no_section),
        ("", "spec", no_section),
        (
            "  egress: [{toCIDR: [10.0.0.0/8], toEndpoints: [{}]}]\n",
            "spec.egress[0]",
            "combining toEndpoints and toCIDR",
        ),
        (
            "  egress: [{toEntities: [all]}, {toCIDRSet: [{cidr: 10.0.0.0/8}], toEndpoints: [{}]}]\n",
            "spec.egress[1]",
            "combining toEndpoints and toCIDRSet",
        ),
        (
            "  egress: [{toCIDR: [10.0.0.0/8], toCIDRSet: [{cidr: 10.1.0.0/16}]}]\n",
            "spec.egress[0]",
            "combining toCIDR and toCIDRSet",
        ),
        (
            "  egressDeny: [{toEntities: [world], toCIDR: [10.0.0.0/8]}]\n",
            "spec.egressDeny[0]",
            "combining toCIDR and toEntities",
        ),
        (
            "  ingress: [{fromCIDR: [10.0.0.0/8], fromEndpoints: [{}]}]\n",
            "spec.ingress[0]",
            "combining fromEndpoints and fromCIDR",
        ),
        (
            "  ingress: [{fromEndpoints: [{}], fromEntities: [host]}]\n",
            "spec.ingress[0]",
            "combining fromEndpoints and fromEntities",
        ),
        (
            "  ingressDeny: [{fromCIDRSet: [{cidr: 10.0.0.0/8}], fromEntities: [world]}]\n",
            "spec.ingressDeny[0]",
            "combining fromCIDRSet and fromEntities",
        ),
    ];
    for (sections, field, msg) in cases {
        let e = parse_str("pol/bad.yaml", &xwing_policy(sections)).expect_err(sections);
        assert_eq!(e.field, field, "{sections}: {e}");
        assert!(e.message.contains(msg), "{sections}: {e}");
    }
    // An empty list is not a peer kind (Go's `len(x) > 0`).
    let ok = "  egress: [{toCIDR: [], toEndpoints: [{}]}]\n  ingress: [{fromCIDRSet: [], fromEntities: [host]}]\n";
    parse_str("ok.yaml", &xwing_policy(ok)).unwrap_or_else(|e| panic!("{e}"));
}

/// Entities and reserved selectors resolve to the reserved identities
/// Cilium's would: kube-apiserver (7) is also a remote node, `world`
/// covers world-ipv4 (9) and world-ipv6 (10), and on this IPv4-only
/// datapath `world-ipv4` covers WORLD (2) and the CIDR identities too.
#[test]
fn entities_select_ciliums_reserved_identities() {
    let cases: [(&str, &[u32]); 12] = [
        ("  egress: [{toEntities: [remote-node]}]\n", &[6, 7]),
        ("  ingress: [{fromEntities: [remote-node]}]\n", &[6, 7]),
        (
            "  ingress: [{fromEndpoints: [{matchLabels: {\"reserved:remote-node\": \"\"}}]}]\n",
            &[6, 7],
        ),
        ("  ingress: [{fromEntities: [kube-apiserver]}]\n", &[7]),
        ("  ingress: [{fromEntities: [host]}]\n", &[1]),
        ("  egress: [{toEntities: [world]}]\n", &[2, 9, 10]),
        ("  egress: [{toEntities: [world-ipv4]}]\n", &[2, 9]),
        ("  ingress: [{fromEntities: [world-ipv4]}]\n", &[2, 9]),
        ("  egress: [{toEntities: [world-ipv6]}]\n", &[10]),
        (
            "  egress: [{toEntities: [world-ipv4, world-ipv6]}]\n",
            &[2, 9, 10],
        ),
        (
            "  egress: [{toEndpoints: [{matchLabels: {\"reserved:world\": \"\"}}]}]\n",
            &[2],
        ),
        (
            "  egressDeny: [{toEntities: [world-ipv6]}]\n  egress: [{toEntities: [all]}]\n",
            &[0, 10],
        ),
    ];
    for (sections, want) in cases {
        let mut w = starwars();
        let (c, _) = run(&mut w, &xwing_policy(sections));
        let got: Vec<u32> = c.entries.iter().map(|e| e.identity).collect();
        assert_eq!(got, want, "{sections}");
    }

    // `cluster`: every reserved identity but the three worlds, and pods.
    let mut w = starwars();
    let (c, _) = run(
        &mut w,
        &xwing_policy("  egress: [{toEntities: [cluster]}]\n"),
    );
    let got: BTreeSet<u32> = c.entries.iter().map(|e| e.identity).collect();
    let mut want: BTreeSet<u32> = BTreeSet::from([1, 3, 4, 5, 6, 7, 8]);
    want.extend(w.eps.iter().map(|e| e.identity));
    assert_eq!(got, want);

    // `world` and `world-ipv4` also select every CIDR identity (IPv4
    // peers inside a policy's prefix get its CIDR identity, not 2).
    for entity in ["world", "world-ipv4"] {
        let mut w = starwars();
        let (c, cidr_ids) = run(
            &mut w,
            &xwing_policy(&format!(
                "  egress:\n  - toCIDR: [10.0.0.0/8]\n    toPorts: [{{ports: [{{port: 443, protocol: TCP}}]}}]\n  - toEntities: [{entity}]\n"
            )),
        );
        let ten = cidr_ids[&"10.0.0.0/8".parse::<Cidr>().unwrap()];
        let l3: Vec<u32> = c
            .entries
            .iter()
            .filter(|e| e.proto == 0)
            .map(|e| e.identity)
            .collect();
        let want: Vec<u32> = match entity {
            "world" => vec![2, 9, 10, ten],
            _ => vec![2, 9, ten],
        };
        assert_eq!(l3, want, "{entity}");
    }
}

/// A CiliumNetworkPolicy without `metadata.namespace` is taken as
/// `default` and marked, so the CLI and the agent can warn (Cilium would
/// make it clusterwide; Kubernetes always fills the namespace in).
#[test]
fn missing_namespace_is_default_and_marked() {
    let cases = [
        ("CiliumNetworkPolicy", "{name: x}", Some("default"), true),
        (
            "CiliumNetworkPolicy",
            "{name: x, namespace: \"\"}",
            Some("default"),
            true,
        ),
        (
            "CiliumNetworkPolicy",
            "{name: x, namespace: default}",
            Some("default"),
            false,
        ),
        (
            "CiliumNetworkPolicy",
            "{name: x, namespace: prod}",
            Some("prod"),
            false,
        ),
        ("CiliumClusterwideNetworkPolicy", "{name: x}", None, false),
    ];
    for (kind, metadata, ns, defaulted) in cases {
        let yaml = format!(
            "apiVersion: cilium.io/v2\nkind: {kind}\nmetadata: {metadata}\nspec:\n  endpointSelector: {{}}\n  ingress: [{{}}]\n"
        );
        let p = &parse_str("x.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"))[0];
        assert_eq!(p.namespace.as_deref(), ns, "{kind} {metadata}");
        assert_eq!(p.namespace_defaulted, defaulted, "{kind} {metadata}");
        // The mark survives the agent's JSON API, and an older agent's
        // JSON without it reads as not defaulted.
        let json = serde_json::to_value(p).unwrap();
        assert_eq!(serde_json::from_value::<Policy>(json.clone()).unwrap(), *p);
        let mut old = json;
        old.as_object_mut().unwrap().remove("namespace_defaulted");
        assert!(
            !serde_json::from_value::<Policy>(old)
                .unwrap()
                .namespace_defaulted
        );
    }
    // Defaulted policies behave as `default` ones (starwars.yaml names no
    // namespace): the same entries, cookies included.
    assert!(parse_str("x", STARWARS).unwrap()[0].namespace_defaulted);
    let named = STARWARS.replace("  name: rule1\n", "  name: rule1\n  namespace: default\n");
    assert!(!parse_str("x", &named).unwrap()[0].namespace_defaulted);
    let (mut w1, mut w2) = (starwars(), starwars());
    assert_eq!(run(&mut w1, STARWARS), run(&mut w2, &named));
}

/// `icmps` as in Cilium: numbers and Cilium's type names per family, IPv4
/// fields become `(ICMP, type)` entries, IPv6 fields nothing (this
/// datapath is IPv4-only); allow and deny, ingress and egress, with peers
/// and alone (L4-only).
#[test]
fn icmps_become_icmp_type_entries() {
    type Row = (u16, Direction, u32, u8, u16, PolicyAction);
    type Case = (&'static str, (bool, bool), fn(&World) -> Vec<Row>);
    let cases: [Case; 9] = [
        (
            "  ingress: [{icmps: [{fields: [{type: 8, family: IPv4}]}]}]\n",
            (true, false),
            |_| vec![(4, I, 0, 1, 8, A)],
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: EchoRequest}]}]}]\n",
            (true, false),
            |_| vec![(4, I, 0, 1, 8, A)],
        ),
        // `Echo` is Cilium's other name for 8; a quoted number is a number.
        (
            "  egress: [{toEndpoints: [{matchLabels: {class: tiefighter}}], icmps: [{fields: [{type: Echo}, {type: \"13\"}, {type: TimeExceeded}]}]}]\n",
            (false, true),
            |w| {
                vec![
                    (4, E, id_of(w, 3), 1, 8, A),
                    (4, E, id_of(w, 3), 1, 11, A),
                    (4, E, id_of(w, 3), 1, 13, A),
                ]
            },
        ),
        // IPv6 fields compile to nothing: the rule enforces and allows no ICMPv4.
        (
            "  ingress: [{icmps: [{fields: [{type: EchoRequest, family: IPv6}, {type: 128, family: IPv6}]}]}]\n",
            (true, false),
            |_| vec![],
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: 8}, {type: EchoRequest, family: IPv6}]}, {fields: [{type: 3}]}]}]\n",
            (true, false),
            |_| vec![(4, I, 0, 1, 3, A), (4, I, 0, 1, 8, A)],
        ),
        (
            "  ingressDeny: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], icmps: [{fields: [{type: 8}]}]}]\n  ingress: [{fromEntities: [all]}]\n",
            (true, false),
            |w| vec![(4, I, 0, 0, 0, A), (4, I, id_of(w, 3), 1, 8, D)],
        ),
        // Type 0 (EchoReply) is its own full-length prefix (see
        // `icmp_type_0_alone` for the decisions).
        (
            "  ingress: [{icmps: [{fields: [{type: EchoReply}, {type: 8}]}]}]\n",
            (true, false),
            |_| vec![(4, I, 0, 1, 0, A), (4, I, 0, 1, 8, A)],
        ),
        (
            "  egressDeny: [{icmps: [{fields: [{type: 0}]}]}]\n",
            (false, true),
            |_| vec![(4, E, 0, 1, 0, D)],
        ),
        // `toPorts: []` is no toPorts, so it may sit beside icmps.
        (
            "  ingress: [{toPorts: [], icmps: [{fields: [{type: 8}]}]}, {toPorts: [{ports: [{port: 80, protocol: TCP}]}]}]\n",
            (true, false),
            |_| vec![(4, I, 0, 1, 8, A), (4, I, 0, 6, 80, A)],
        ),
    ];
    for (sections, enforcement, want) in cases {
        let mut w = starwars();
        let (c, _) = run(&mut w, &xwing_policy(sections));
        assert_eq!(enforced(&c, 4), enforcement, "{sections}");
        assert_eq!(rows(&c), want(&w), "{sections}");
    }
}

/// What Cilium rejects in `icmps`: `icmps` with `toPorts` in one rule, a
/// name not in the family's table, a type outside 0-255, another family,
/// more than 40 fields; the error names the field.
#[test]
fn icmps_rejected_like_cilium() {
    let many: Vec<String> = (0..41).map(|t| format!("{{type: {t}}}")).collect();
    let many = format!(
        "  ingress: [{{icmps: [{{fields: [{}]}}]}}]\n",
        many.join(", ")
    );
    let cases = [
        (
            "  ingress: [{icmps: [{fields: [{type: 8}]}], toPorts: [{ports: [{port: 80}]}]}]\n"
                .to_string(),
            "spec.ingress[0]",
            "icmps may only be present without toPorts",
        ),
        (
            "  egressDeny: [{icmps: [{fields: [{type: 8}]}], toPorts: [{ports: [{port: 80}]}]}]\n"
                .to_string(),
            "spec.egressDeny[0]",
            "icmps may only be present without toPorts",
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: Ping}]}]}]\n".to_string(),
            "spec.ingress[0].icmps[0].fields[0].type",
            "unknown IPv4 ICMP type \"Ping\"",
        ),
        // A name of the other family's table.
        (
            "  ingress: [{icmps: [{fields: [{type: 8}, {type: PacketTooBig}]}]}]\n".to_string(),
            "spec.ingress[0].icmps[0].fields[1].type",
            "unknown IPv4 ICMP type",
        ),
        (
            "  egress: [{icmps: [{}, {fields: [{type: Photuris, family: IPv6}]}]}]\n".to_string(),
            "spec.egress[0].icmps[1].fields[0].type",
            "unknown IPv6 ICMP type",
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: 256}]}]}]\n".to_string(),
            "spec.ingress[0].icmps[0].fields[0].type",
            "256 is not an ICMP type (0-255)",
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: -1}]}]}]\n".to_string(),
            "spec.ingress[0].icmps[0].fields[0].type",
            "not an ICMP type",
        ),
        (
            "  ingress: [{icmps: [{fields: [{type: 8, family: ipv4}]}]}]\n".to_string(),
            "spec.ingress[0].icmps[0].fields[0].family",
            "expected IPv4 or IPv6",
        ),
        (many, "spec.ingress[0].icmps[0].fields", "the max is 40"),
    ];
    for (sections, field, msg) in cases {
        let e = parse_str("pol/bad.yaml", &xwing_policy(&sections)).expect_err(&sections);
        assert_eq!(e.field, field, "{sections}: {e}");
        assert!(e.message.contains(msg), "{sections}: {e}");
    }
}

/// `enableDefaultDeny` as in Cilium (`Rule.Sanitize`,
/// `computePolicyEnforcementAndRules`): `false` for a direction keeps the
/// rule's allows and denies and adds a wildcard allow, so the endpoint is
/// not default-deny there, unless another selecting rule asks for it; an
/// explicit `true` without a section for the direction turns nothing on.
#[test]
fn enable_default_deny_false_adds_allows_without_default_deny() {
    type Row = (u16, Direction, u32, u8, u16, PolicyAction);
    type Case = (String, (bool, bool), fn(u32) -> Vec<Row>);
    let tie_in = "  ingress: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 80, protocol: TCP}]}]}]\n";
    let cases: [Case; 8] = [
        (
            format!("  enableDefaultDeny: {{ingress: false}}\n{tie_in}"),
            (true, false),
            |tie| vec![(4, I, 0, 0, 0, A), (4, I, tie, 6, 80, A)],
        ),
        // Egress keeps its default (true): enforced without a wildcard.
        (
            format!(
                "  enableDefaultDeny: {{ingress: false}}\n{tie_in}  egress: [{{toEntities: [world]}}]\n"
            ),
            (true, true),
            |tie| {
                vec![
                    (4, I, 0, 0, 0, A),
                    (4, I, tie, 6, 80, A),
                    (4, E, 2, 0, 0, A),
                    (4, E, 9, 0, 0, A),
                    (4, E, 10, 0, 0, A),
                ]
            },
        ),
        // Deny rules still apply: everything but the denied peer passes.
        (
            "  enableDefaultDeny: {egress: false}\n  egressDeny: [{toEndpoints: [{matchLabels: {class: tiefighter}}]}]\n".to_string(),
            (false, true),
            |tie| vec![(4, E, 0, 0, 0, A), (4, E, tie, 0, 0, D)],
        ),
        // A deny of everything wins over the wildcard allow.
        (
            "  enableDefaultDeny: {ingress: false}\n  ingressDeny: [{fromEntities: [all]}]\n"
                .to_string(),
            (true, false),
            |_| vec![(4, I, 0, 0, 0, D)],
        ),
        // `ingress: [{}]` with default-deny off: allow-all.
        (
            "  enableDefaultDeny: {ingress: false, egress: false}\n  ingress: [{}]\n".to_string(),
            (true, false),
            |_| vec![(4, I, 0, 0, 0, A)],
        ),
        // `true` is the default.
        (
            format!("  enableDefaultDeny: {{ingress: true}}\n{tie_in}"),
            (true, false),
            |tie| vec![(4, I, tie, 6, 80, A)],
        ),
        // `true` for a direction without a section turns nothing on.
        (
            "  enableDefaultDeny: {ingress: true, egress: true}\n  egress: [{toEntities: [host]}]\n"
                .to_string(),
            (false, true),
            |_| vec![(4, E, 1, 0, 0, A)],
        ),
        (
            "  enableDefaultDeny: {}\n  egress: [{toEntities: [host]}]\n".to_string(),
            (false, true),
            |_| vec![(4, E, 1, 0, 0, A)],
        ),
    ];
    for (sections, enforcement, want) in cases {
        let mut w = starwars();
        let (c, _) = run(&mut w, &xwing_policy(&sections));
        assert_eq!(enforced(&c, 4), enforcement, "{sections}");
        assert_eq!(rows(&c), want(id_of(&w, 3)), "{sections}");
    }

    // Another policy that is default-deny for the direction wins: no
    // wildcard, only the allows of both.
    let mut w = starwars();
    let two = format!(
        "{}\n---\n{}",
        xwing_policy(&format!(
            "  enableDefaultDeny: {{ingress: false}}\n{tie_in}"
        )),
        xwing_policy("  ingress: [{fromEntities: [host]}]\n").replace("name: r}", "name: r2}"),
    );
    let (c, _) = run(&mut w, &two);
    let tie = id_of(&w, 3);
    assert_eq!(enforced(&c, 4), (true, false));
    assert_eq!(rows(&c), vec![(4, I, 1, 0, 0, A), (4, I, tie, 6, 80, A)]);
    // The wildcard carries the cookie of the policy that asked for it.
    let mut w = starwars();
    let yaml = xwing_policy(&format!(
        "  enableDefaultDeny: {{ingress: false}}\n{tie_in}"
    ));
    let (c, _) = run(&mut w, &yaml);
    let cookie = parse_str("x", &yaml).unwrap()[0].cookie();
    assert!(c.entries.iter().all(|e| e.rule == cookie));

    let e = parse_str(
        "pol/bad.yaml",
        &xwing_policy("  enableDefaultDeny: {ingres: false}\n  ingress: [{}]\n"),
    )
    .expect_err("unknown field");
    assert_eq!(e.field, "spec.enableDefaultDeny", "{e}");
    assert!(e.message.contains("unknown field `ingres`"), "{e}");
}

/// Port ranges as Cilium handles them: port 0 (or none) with `endPort` is
/// every port, an `endPort` below `port` is ignored (the rule is for
/// `port` alone), `endPort == port` is that port, and a range is its
/// aligned prefixes (an `endPort` above 65535 is rejected).
#[test]
fn port_ranges_like_cilium() {
    type Row = (u16, Direction, u32, u8, u16, PolicyAction);
    let cases: [(&str, Vec<Row>); 6] = [
        (
            "{port: 0, endPort: 8080, protocol: TCP}",
            vec![(4, I, 0, 6, 0, A)],
        ),
        ("{endPort: 8080, protocol: UDP}", vec![(4, I, 0, 17, 0, A)]),
        (
            "{port: 0, endPort: 10}",
            vec![
                (4, I, 0, 6, 0, A),
                (4, I, 0, 17, 0, A),
                (4, I, 0, 132, 0, A),
            ],
        ),
        (
            "{port: 8080, endPort: 80, protocol: TCP}",
            vec![(4, I, 0, 6, 8080, A)],
        ),
        (
            "{port: \"443\", endPort: 443, protocol: TCP}",
            vec![(4, I, 0, 6, 443, A)],
        ),
        (
            "{port: 53, endPort: 54, protocol: UDP}",
            vec![(4, I, 0, 17, 53, A), (4, I, 0, 17, 54, A)],
        ),
    ];
    for (port, want) in cases {
        let mut w = starwars();
        let sections = format!("  ingress: [{{toPorts: [{{ports: [{port}]}}]}}]\n");
        let (c, _) = run(&mut w, &xwing_policy(&sections));
        assert_eq!(rows(&c), want, "{port}");
        assert_eq!(enforced(&c, 4), (true, false), "{port}");
    }
    for (port, msg) in [
        ("{port: 80, endPort: 70000}", "70000 is not a port"),
        ("{port: 0, endPort: 70000}", "70000 is not a port"),
    ] {
        let sections = format!("  ingress: [{{toPorts: [{{ports: [{port}]}}]}}]\n");
        let e = parse_str("pol/bad.yaml", &xwing_policy(&sections)).expect_err(port);
        assert_eq!(
            e.field, "spec.ingress[0].toPorts[0].ports[0].endPort",
            "{e}"
        );
        assert!(e.message.contains(msg), "{port}: {e}");
    }
}

/// What the datapath decides (dp_policy.h, simulated on the compiled
/// entries): the longest entry matching for the peer and for identity 0,
/// a deny of either wins, else the better-ranked allow. `None`: no entry
/// (the default deny of an enforcing endpoint).
fn decide(
    c: &Compiled,
    ep: u16,
    dir: Direction,
    peer: u32,
    proto: u8,
    port: u16,
) -> Option<(PolicyAction, &'static str)> {
    let longest = |id: u32| {
        c.entries
            .iter()
            .filter(|e| (e.ep_id, e.direction, e.identity) == (ep, dir, id))
            .filter(|e| e.matches(proto, port))
            .max_by_key(|e| (e.proto != 0, e.port_prefix))
    };
    let answers = [(longest(peer), true), (longest(0), false)];
    let ranked = |deny: bool| {
        answers
            .iter()
            .filter_map(|(e, is_peer)| e.map(|e| (e, *is_peer)))
            .filter(|(e, _)| (e.action == PolicyAction::Deny) == deny)
            .map(|(e, is_peer)| match (e.proto != 0, is_peer) {
                (true, true) => (0, e.action, "L3_L4"),
                (true, false) => (1, e.action, "L4_ONLY"),
                (false, true) => (2, e.action, "L3_ONLY"),
                (false, false) => (3, e.action, "ALL"),
            })
            .min_by_key(|r| r.0)
            .map(|(_, a, m)| (a, m))
    };
    ranked(true).or_else(|| ranked(false))
}

#[test]
fn port_prefixes_are_maximal_and_aligned() {
    type Case = (u16, u16, Vec<(u16, u8)>);
    let cases: [Case; 6] = [
        (0, 65_535, vec![(0, 0)]),
        (80, 80, vec![(80, 16)]),
        (0, 0, vec![(0, 16)]),
        (8000, 8002, vec![(8000, 15), (8002, 16)]),
        (
            1024,
            65_535,
            vec![
                (1024, 6),
                (2048, 5),
                (4096, 4),
                (8192, 3),
                (16384, 2),
                (32768, 1),
            ],
        ),
        (65_534, 65_535, vec![(65_534, 15)]),
    ];
    for (first, last, want) in cases {
        let got = port_prefixes(first, last);
        assert_eq!(got, want, "{first}-{last}");
    }
    // Every range is covered exactly: no gap, no overlap.
    for (first, last) in [(1, 5000), (3, 3), (999, 3001), (1, 65_535), (0, 65_534)] {
        let mut next = u32::from(first);
        for (port, bits) in port_prefixes(first, last) {
            assert_eq!(u32::from(port), next, "{first}-{last}");
            next += 1 << (16 - bits);
        }
        assert_eq!(next, u32::from(last) + 1, "{first}-{last}");
    }
}

/// Ranges of any width (Cilium masks ports by prefix length), deny
/// precedence over overlapping ranges, ICMP type 0 alone: the decision for
/// a port inside, at the edges and outside.
#[test]
fn wide_port_ranges_and_overlapping_denies() {
    type Probe = (u32, u8, u16, Option<(PolicyAction, &'static str)>);
    type Case = (&'static str, fn(&World) -> Vec<Probe>);
    fn tie(w: &World) -> u32 {
        id_of(w, 3)
    }
    let cases: [Case; 6] = [
        // 2,000+ ports: a handful of entries, not one per port.
        (
            "  ingress: [{toPorts: [{ports: [{port: 1000, endPort: 4999, protocol: TCP}]}]}]\n",
            |_| {
                vec![
                    (7, 6, 999, None),
                    (7, 6, 1000, Some((A, "L4_ONLY"))),
                    (7, 6, 2500, Some((A, "L4_ONLY"))),
                    (7, 6, 4999, Some((A, "L4_ONLY"))),
                    (7, 6, 5000, None),
                    (7, 17, 2500, None),
                ]
            },
        ),
        // A deny of a sub-range inside an allowed range, same peer.
        (
            "  ingress: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 1000, endPort: 3999, protocol: TCP}]}]}]\n  ingressDeny: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 2000, endPort: 2100, protocol: TCP}]}]}]\n",
            |w| {
                vec![
                    (tie(w), 6, 1999, Some((A, "L3_L4"))),
                    (tie(w), 6, 2000, Some((D, "L3_L4"))),
                    (tie(w), 6, 2100, Some((D, "L3_L4"))),
                    (tie(w), 6, 2101, Some((A, "L3_L4"))),
                    (tie(w), 6, 4000, None),
                ]
            },
        ),
        // A deny wider than the allow it overlaps: the allow's ports inside
        // it are denied, the rest stay allowed.
        (
            "  ingress: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 8000, endPort: 8100, protocol: TCP}]}]}]\n  ingressDeny: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 8050, endPort: 9000, protocol: TCP}]}]}]\n",
            |w| {
                vec![
                    (tie(w), 6, 8049, Some((A, "L3_L4"))),
                    (tie(w), 6, 8064, Some((D, "L3_L4"))),
                    (tie(w), 6, 8100, Some((D, "L3_L4"))),
                    (tie(w), 6, 9001, None),
                ]
            },
        ),
        // An L3-only deny of the peer beats its port-range allow; a deny
        // of any peer on one port beats the allow of one peer.
        (
            "  ingress: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 1, endPort: 65535, protocol: TCP}]}]}, {fromEndpoints: [{matchLabels: {class: deathstar}}], toPorts: [{ports: [{port: 1000, endPort: 2000, protocol: TCP}]}]}]\n  ingressDeny: [{fromEndpoints: [{matchLabels: {class: tiefighter}}]}, {toPorts: [{ports: [{port: 1500, protocol: TCP}]}]}]\n",
            |w| {
                vec![
                    (tie(w), 6, 80, Some((D, "L3_L4"))),
                    (tie(w), 17, 80, Some((D, "L3_ONLY"))),
                    (id_of(w, 1), 6, 1499, Some((A, "L3_L4"))),
                    (id_of(w, 1), 6, 1500, Some((D, "L4_ONLY"))),
                ]
            },
        ),
        // ICMP type 0 alone is its own key: type 8 is not allowed by it.
        (
            "  ingress: [{icmps: [{fields: [{type: EchoReply}]}]}]\n",
            |_| vec![(7, 1, 0, Some((A, "L4_ONLY"))), (7, 1, 8, None)],
        ),
        (
            "  ingress: [{fromEntities: [all]}]\n  ingressDeny: [{icmps: [{fields: [{type: 0}]}]}]\n",
            |_| {
                vec![
                    (7, 1, 0, Some((D, "L4_ONLY"))),
                    (7, 1, 8, Some((A, "ALL"))),
                    (7, 6, 0, Some((A, "ALL"))),
                ]
            },
        ),
    ];
    for (sections, probes) in cases {
        let mut w = starwars();
        let (c, _) = run(&mut w, &xwing_policy(sections));
        assert!(
            c.entries.len() < 40,
            "{sections}: {} entries",
            c.entries.len()
        );
        for (peer, proto, port, want) in probes(&w) {
            assert_eq!(
                decide(&c, 4, I, peer, proto, port),
                want,
                "{sections}: peer {peer} proto {proto} port {port}\n{:#?}",
                c.entries
            );
        }
    }
}

/// `--allow-localhost`: `auto` and `always` add an L3 allow of the host
/// (identity 1, no cookie) to every endpoint enforcing ingress, and only
/// there; `policy` adds nothing; a deny of the host still wins.
#[test]
fn allow_localhost_modes() {
    let host = crate::kernel::maps::identity::HOST;
    type Case = (
        &'static str,
        AllowLocalhost,
        Option<(PolicyAction, &'static str)>,
    );
    let tie_80 = "  ingress: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: 80, protocol: TCP}]}]}]\n";
    let cases: [Case; 6] = [
        (tie_80, AllowLocalhost::Auto, Some((A, "L3_ONLY"))),
        (tie_80, AllowLocalhost::Always, Some((A, "L3_ONLY"))),
        (tie_80, AllowLocalhost::Policy, None),
        (
            "  ingress: [{fromEntities: [host], toPorts: [{ports: [{port: 80, protocol: TCP}]}]}]\n",
            AllowLocalhost::Policy,
            Some((A, "L3_L4")),
        ),
        (
            "  ingress: [{fromEntities: [all]}]\n  ingressDeny: [{fromEntities: [host]}]\n",
            AllowLocalhost::Always,
            Some((D, "L3_ONLY")),
        ),
        (
            "  ingress: [{fromEntities: [all]}]\n  ingressDeny: [{toPorts: [{ports: [{port: 1, endPort: 1000, protocol: TCP}]}]}]\n",
            AllowLocalhost::Always,
            Some((D, "L4_ONLY")),
        ),
    ];
    for (sections, mode, want) in cases {
        let mut w = starwars();
        let pols = parse_str("t.yaml", &xwing_policy(sections)).unwrap();
        let cidr_ids = allocate_cidr_identities(&pols, &mut w.ids);
        let opts = CompileOptions {
            allow_localhost: mode,
            ..CompileOptions::default()
        };
        let c = compile_with(&pols, &w.eps, &w.ids, &cidr_ids, &opts);
        assert_eq!(
            decide(&c, 4, I, host, 6, 80),
            want,
            "{mode:?} {sections}{:#?}",
            c.entries
        );
        // Endpoints that do not enforce ingress get no entry.
        assert!(c.entries.iter().all(|e| e.ep_id == 4), "{mode:?}");
        if mode != AllowLocalhost::Policy {
            let e = c.entries.iter().find(|e| e.identity == host).unwrap();
            assert_eq!((e.proto, e.port_prefix, e.direction), (0, 0, I));
        }
    }
    // Only ingress: an egress-only policy adds nothing.
    let mut w = starwars();
    let pols = parse_str(
        "t.yaml",
        &xwing_policy("  egress: [{toEntities: [world]}]\n"),
    )
    .unwrap();
    let cidr_ids = allocate_cidr_identities(&pols, &mut w.ids);
    let c = compile_with(&pols, &w.eps, &w.ids, &cidr_ids, &CompileOptions::default());
    assert!(
        c.entries.iter().all(|e| e.identity != host),
        "{:?}",
        c.entries
    );
    // The flag's spellings.
    for (s, m) in [
        ("auto", AllowLocalhost::Auto),
        ("always", AllowLocalhost::Always),
        ("policy", AllowLocalhost::Policy),
    ] {
        assert_eq!(s.parse::<AllowLocalhost>(), Ok(m));
        assert_eq!(m.as_str(), s);
    }
    let e = "never".parse::<AllowLocalhost>().unwrap_err();
    assert!(
        e.contains("\"never\"") && e.contains("auto, always or policy"),
        "{e}"
    );
}

/// Cilium's `none` entity selects nothing: the rule still enforces.
#[test]
fn none_entity_selects_nothing() {
    for sections in [
        "  ingress: [{fromEntities: [none]}]\n",
        "  egress: [{toEntities: [none], toPorts: [{ports: [{port: 53, protocol: UDP}]}]}]\n",
        "  ingressDeny: [{fromEntities: [none]}]\n",
    ] {
        let mut w = starwars();
        let (c, _) = run(&mut w, &xwing_policy(sections));
        assert_eq!(rows(&c), vec![], "{sections}");
        let want = (sections.contains("ingress"), sections.contains("egress"));
        assert_eq!(enforced(&c, 4), want, "{sections}");
    }
}

/// Named ports (`port: http`): an ingress rule resolves the name against
/// the ports the selected endpoint declares, an egress rule against every
/// endpoint's in the cluster; a name nobody declares (or of another
/// protocol) allows nothing, and the rule still enforces.
#[test]
fn named_ports_resolve_per_endpoint() {
    let np = |s: &str| s.parse::<NamedPort>().unwrap();
    let declared = BTreeMap::from([
        (4u16, vec![np("http:8080"), np("dns:53/UDP")]),
        (3u16, vec![np("http:9090")]),
    ]);
    let cluster = vec![np("http:8080"), np("http:9090"), np("dns:53/UDP")];
    type Case = (&'static str, u16, Vec<(u8, u16, PolicyAction)>);
    let cases: [Case; 7] = [
        // xwing (4) declares http as 8080.
        (
            "  ingress: [{toPorts: [{ports: [{port: http, protocol: TCP}]}]}]\n",
            4,
            vec![(6, 8080, A)],
        ),
        // ANY (or no protocol) takes the declared protocol.
        (
            "  ingress: [{toPorts: [{ports: [{port: dns}]}]}]\n",
            4,
            vec![(17, 53, A)],
        ),
        // Declared as UDP: a TCP rule for it resolves to nothing.
        (
            "  ingress: [{toPorts: [{ports: [{port: dns, protocol: TCP}]}]}]\n",
            4,
            vec![],
        ),
        (
            "  ingress: [{toPorts: [{ports: [{port: grpc}, {port: 80, protocol: TCP}]}]}]\n",
            4,
            vec![(6, 80, A)],
        ),
        (
            "  ingressDeny: [{toPorts: [{ports: [{port: http}]}]}]\n",
            4,
            vec![(6, 8080, D)],
        ),
        // Egress: against the cluster's ports; `http` has two numbers
        // there, so it resolves to nothing (Cilium: duplicate named
        // ports), while `dns` has one.
        (
            "  egress: [{toPorts: [{ports: [{port: http}, {port: dns}]}]}]\n",
            4,
            vec![(17, 53, A)],
        ),
        // The same ingress policy selecting the tiefighter (3): its own 9090.
        (
            "  ingress: [{toPorts: [{ports: [{port: http}]}]}]\n",
            3,
            vec![(6, 9090, A)],
        ),
    ];
    for (sections, ep, want) in cases {
        let mut w = starwars();
        let class = if ep == 3 { "tiefighter" } else { "xwing" };
        let yaml = xwing_policy(sections).replace("class: xwing", &format!("class: {class}"));
        let pols = parse_str("t.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
        let cidr_ids = allocate_cidr_identities(&pols, &mut w.ids);
        let opts = CompileOptions {
            allow_localhost: AllowLocalhost::Policy,
            named_ports: declared.clone(),
            cluster_named_ports: cluster.clone(),
        };
        let c = compile_with(&pols, &w.eps, &w.ids, &cidr_ids, &opts);
        let got: Vec<(u8, u16, PolicyAction)> = c
            .entries
            .iter()
            .map(|e| {
                assert_eq!(
                    (e.ep_id, e.identity, e.port_prefix),
                    (ep, 0, 16),
                    "{sections}"
                );
                (e.proto, e.port, e.action)
            })
            .collect();
        assert_eq!(got, want, "{sections}");
        let e = c.enforce[&ep];
        assert!(e.ingress || e.egress, "{sections}: the rule enforces");
    }
    // Invalid names are rejected with the field's path.
    for (port, msg) in [
        ("HTTP", "lowercase"),
        ("http-", "lowercase"),
        ("a-very-long-port-name", "1 to 15"),
    ] {
        let sections = format!("  ingress: [{{toPorts: [{{ports: [{{port: {port}}}]}}]}}]\n");
        let e = parse_str("pol/bad.yaml", &xwing_policy(&sections)).expect_err(port);
        assert_eq!(e.field, "spec.ingress[0].toPorts[0].ports[0].port", "{e}");
        assert!(e.message.contains(msg), "{port}: {e}");
    }
}

/// Cilium fields that need what this datapath does not have are rejected
/// with the field's path and the reason.
#[test]
fn unsupported_fields_are_rejected_with_the_reason() {
    for (sections, field, why) in [
        (
            "  egress: [{toFQDNs: [{matchName: example.com}]}]\n",
            "spec.egress[0].toFQDNs",
            "DNS proxy",
        ),
        (
            "  egress: [{toServices: [{k8sService: {serviceName: x}}]}]\n",
            "spec.egress[0].toServices",
            "service",
        ),
        (
            "  ingress: [{fromRequires: [{matchLabels: {a: b}}]}]\n",
            "spec.ingress[0].fromRequires",
            "deprecated",
        ),
        (
            "  ingress: [{fromNodes: [{matchLabels: {a: b}}]}]\n",
            "spec.ingress[0].fromNodes",
            "remote-node",
        ),
        (
            "  egressDeny: [{toGroups: [{aws: {}}]}]\n",
            "spec.egressDeny[0].toGroups",
            "cloud provider",
        ),
        (
            "  ingress: [{fromEndpoints: [{}], authentication: {mode: required}}]\n",
            "spec.ingress[0].authentication",
            "auth",
        ),
        (
            "  ingress: [{toPorts: [{ports: [{port: 80}], rules: {http: [{}]}}]}]\n",
            "spec.ingress[0].toPorts[0].rules",
            "L7",
        ),
    ] {
        let e = parse_str("pol/bad.yaml", &xwing_policy(sections)).expect_err(sections);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(why), "{sections}: {e}");
    }
}

/// A second policy allowing the same traffic as `rule1`: the shared
/// entries carry one origin that resolves to both policies; the entries
/// only one policy produces carry that policy's cookie.
#[test]
fn several_policies_on_one_entry_share_an_origin_naming_all() {
    let mut w = starwars();
    let also = STARWARS
        .replace("name: \"rule1\"", "name: \"rule2\"")
        .replace("name: rule1", "name: rule2");
    let extra = r#"
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ds-8080
  namespace: default
spec:
  endpointSelector:
    matchLabels: {class: deathstar}
  ingress:
    - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"#;
    let yaml = format!("{STARWARS}\n---\n{also}{extra}");
    let pols = parse_str("test.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pols.len(), 3, "rule1, rule2, ds-8080");
    let (c, _) = run(&mut w, &yaml);
    let (r1, r2, p8080) = (pols[0].cookie(), pols[1].cookie(), pols[2].cookie());
    assert_ne!(r1, r2);
    let shared = origin_of(&BTreeSet::from([r1, r2]));
    assert!(shared != 0 && shared != r1 && shared != r2);
    let tie = id_of(&w, 3);
    let e80 = c
        .entries
        .iter()
        .find(|e| e.ep_id == 1 && e.identity == tie && e.port == 80)
        .expect("tiefighter:80 entry");
    assert_eq!(e80.rule, shared);
    assert_eq!(c.origins[&shared], {
        let mut v = vec![r1, r2];
        v.sort_unstable();
        v
    });
    let e8080 = c
        .entries
        .iter()
        .find(|e| e.ep_id == 1 && e.identity == 0 && e.port == 8080)
        .expect("any-peer 8080 entry");
    assert_eq!(e8080.rule, p8080);
    assert_eq!(c.origins[&p8080], vec![p8080]);

    // The table the exporter gets names both policies under the shared origin.
    let mut o = PolicyOrigins::default();
    o.update(&pols, 5);
    let t = o.table(&c.origins);
    let names: Vec<&str> = t[&shared].iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"rule1") && names.contains(&"rule2"));
    let p = &t[&r1][0];
    assert_eq!(
        (p.namespace.as_str(), p.kind.as_str(), p.revision),
        ("default", "CiliumNetworkPolicy", 5)
    );
    assert!(
        p.labels
            .contains(&"k8s:io.cilium.k8s.policy.name=rule1".to_string())
    );
}

/// Origin bookkeeping under add, replace and delete: a policy keeps the
/// revision that last changed it, a replaced one moves to the new revision,
/// a deleted one leaves no name behind (also not in shared origins).
#[test]
fn origin_bookkeeping_follows_add_replace_delete() {
    let pols = parse_str("test.yaml", STARWARS).unwrap();
    let rule1 = pols[0].clone();
    let cookie = rule1.cookie();
    let ccnp = parse_str(
        "ccnp.yaml",
        r#"
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: global
spec:
  endpointSelector: {}
  ingressDeny:
    - fromEntities: [world]
"#,
    )
    .unwrap()[0]
        .clone();
    let mut o = PolicyOrigins::default();

    // Add.
    o.update(std::slice::from_ref(&rule1), 1);
    assert_eq!(o.info(cookie).unwrap().revision, 1);
    assert!(o.info(ccnp.cookie()).is_none());

    // Add another: the first keeps its revision.
    o.update(&[rule1.clone(), ccnp.clone()], 2);
    assert_eq!(o.info(cookie).unwrap().revision, 1);
    let g = o.info(ccnp.cookie()).unwrap();
    assert_eq!(
        (
            g.name.as_str(),
            g.namespace.as_str(),
            g.kind.as_str(),
            g.revision
        ),
        ("global", "", "CiliumClusterwideNetworkPolicy", 2)
    );

    // Replace rule1 (same name, new content): same origin, revision moves.
    let mut edited = rule1.clone();
    edited.rules.truncate(0);
    o.update(&[edited, ccnp.clone()], 3);
    assert_eq!(o.info(cookie).unwrap().revision, 3);
    assert_eq!(o.info(ccnp.cookie()).unwrap().revision, 2);

    // Delete rule1: no stale name, not even in a shared origin.
    o.update(std::slice::from_ref(&ccnp), 4);
    assert!(o.info(cookie).is_none());
    let shared = origin_of(&BTreeSet::from([cookie, ccnp.cookie()]));
    let t = o.table(&BTreeMap::from([(shared, vec![cookie, ccnp.cookie()])]));
    assert!(!t.contains_key(&cookie));
    let names: Vec<&str> = t[&shared].iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["global"]);

    // Delete everything.
    o.update(&[], 5);
    assert!(o.table(&BTreeMap::new()).is_empty());
}
