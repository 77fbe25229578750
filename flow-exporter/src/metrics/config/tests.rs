use proto::flow::{Endpoint, Flow, Ip, Workload};

use super::*;

/// The `--metrics` string the dashboards are written for
/// (dashboards/README.md).
pub const DASHBOARD_METRICS: &str = "flow:sourceContext=namespace;destinationContext=namespace drop:sourceContext=pod;destinationContext=pod;labelsContext=source_namespace,destination_namespace tcp port-distribution icmp policy:sourceContext=app|workload-name|pod|reserved-identity;destinationContext=app|workload-name|pod|reserved-identity;labelsContext=source_namespace,destination_namespace flows-to-world";

fn err(s: &str) -> String {
    MetricsConfig::parse(&[s]).unwrap_err().to_string()
}

#[test]
fn the_configmap_and_the_agent_flag_forms_parse_alike() {
    let space = MetricsConfig::parse(&[
        "drop:sourceContext=pod;destinationContext=pod;labelsContext=source_namespace,destination_namespace flow tcp",
    ])
    .unwrap();
    let comma = MetricsConfig::parse(&[
        "drop:sourceContext=pod;destinationContext=pod;labelsContext=source_namespace,destination_namespace,flow,tcp",
    ])
    .unwrap();
    let repeated = MetricsConfig::parse(&[
        "drop:sourceContext=pod;destinationContext=pod;labelsContext=source_namespace,destination_namespace",
        "flow",
        "tcp",
    ])
    .unwrap();
    assert_eq!(space, comma);
    assert_eq!(space, repeated);
    let kinds: Vec<_> = space.metrics.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MetricKind::Drop, MetricKind::Flow, MetricKind::Tcp]);
    assert_eq!(
        space.metrics[0].context.label_names(),
        [
            "source_namespace",
            "destination_namespace",
            "source",
            "destination"
        ]
    );
}

#[test]
fn the_dashboard_string_parses() {
    let c = MetricsConfig::parse(&[DASHBOARD_METRICS]).unwrap();
    assert_eq!(c.metrics.len(), 7);
    let p = c.get(MetricKind::Policy).unwrap();
    assert_eq!(
        p.context.source,
        [
            ContextId::App,
            ContextId::WorkloadName,
            ContextId::Pod,
            ContextId::ReservedIdentity
        ]
    );
}

#[test]
fn options_are_case_insensitive_and_flows_to_world_takes_its_own() {
    let c =
        MetricsConfig::parse(&["flows-to-world:any-drop;PORT;syn-only;SOURCECONTEXT=IP"]).unwrap();
    let w = &c.metrics[0];
    assert!(w.any_drop && w.port && w.syn_only);
    assert_eq!(w.context.source, [ContextId::Ip]);
}

#[test]
fn the_default_is_the_set_served_before() {
    let kinds: Vec<_> = MetricsConfig::default_set()
        .metrics
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(kinds, &MetricKind::ALL[..6]);
}

#[test]
fn bad_input_names_the_part_and_lists_the_valid_ones() {
    assert_eq!(
        err("flow foo"),
        r#"unknown metric "foo" in --metrics; valid metrics: flow, drop, tcp, port-distribution, icmp, policy, flows-to-world"#
    );
    assert_eq!(
        err("dns:query"),
        r#"metric "dns" needs L7 visibility (DNS/HTTP/Kafka records from Cilium's L7 proxy), which this datapath does not produce; valid metrics: flow, drop, tcp, port-distribution, icmp, policy, flows-to-world"#
    );
    assert_eq!(
        err("flow:sourceContext=pods"),
        r#"unknown context "pods" in flow:sourceContext; valid contexts: identity, namespace, pod, pod-short, pod-name, dns, ip, reserved-identity, workload, workload-name, app"#
    );
    assert_eq!(
        err("drop:labelsContext=source_pod,dest_pod"),
        r#"invalid labelsContext value "dest_pod" for metric "drop"; valid labels: source_ip, source_pod, source_namespace, source_workload, source_workload_kind, source_app, destination_ip, destination_pod, destination_namespace, destination_workload, destination_workload_kind, destination_app, traffic_direction"#
    );
    assert_eq!(
        err("tcp:port"),
        r#"unknown option "port" for metric "tcp"; valid options: sourceContext, sourceEgressContext, sourceIngressContext, destinationContext, destinationEgressContext, destinationIngressContext, labelsContext"#
    );
    assert!(
        err("flows-to-world:ports").ends_with("labelsContext, any-drop, port, syn-only"),
        "{}",
        err("flows-to-world:ports")
    );
    assert_eq!(
        err("flow:sourceContext"),
        r#"option "sourceContext" of metric "flow" needs a value (e.g. sourceContext=namespace)"#
    );
    assert_eq!(
        err("flow tcp flow"),
        r#"metric "flow" is given twice in --metrics"#
    );
    // A metric name after a labelsContext list is a new metric, and an
    // unknown one after it is a bad label.
    assert!(err("drop:labelsContext=source_pod,foo").contains(r#"value "foo""#));
}

fn ep(ns: &str, pod: &str, labels: &[&str], workload: Option<(&str, &str)>) -> Endpoint {
    Endpoint {
        namespace: ns.into(),
        pod_name: pod.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        workloads: workload
            .map(|(name, kind)| Workload {
                name: name.into(),
                kind: kind.into(),
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn values(opts: &str, f: &Flow) -> Vec<String> {
    let c = MetricsConfig::parse(&[format!("flow:{opts}")]).unwrap();
    c.metrics[0].context.label_values(f)
}

#[test]
fn context_values_are_hubbles() {
    let f = Flow {
        source: Some(ep(
            "default",
            "xwing-5d78c9869d-x7k2p",
            &["k8s:class=xwing", "k8s:app.kubernetes.io/name=xwing"],
            Some(("xwing", "Deployment")),
        )),
        destination: Some(ep("", "", &["reserved:world"], None)),
        ip: Some(Ip {
            source: "10.0.0.1".into(),
            destination: "1.1.1.1".into(),
            ..Default::default()
        }),
        destination_names: vec!["one.one.one.one".into()],
        traffic_direction: 2,
        ..Default::default()
    };
    let src = |ctx: &str| values(&format!("sourceContext={ctx}"), &f)[0].clone();
    let dst = |ctx: &str| values(&format!("destinationContext={ctx}"), &f)[0].clone();
    assert_eq!(src("namespace"), "default");
    assert_eq!(src("pod"), "default/xwing-5d78c9869d-x7k2p");
    assert_eq!(src("pod-name"), "xwing-5d78c9869d-x7k2p");
    assert_eq!(src("pod-short"), "default/xwing");
    assert_eq!(src("workload"), "default/xwing");
    assert_eq!(src("workload-name"), "xwing");
    assert_eq!(src("app"), "xwing");
    assert_eq!(src("ip"), "10.0.0.1");
    assert_eq!(
        src("identity"),
        "k8s:class=xwing,k8s:app.kubernetes.io/name=xwing"
    );
    assert_eq!(dst("reserved-identity"), "reserved:world");
    assert_eq!(dst("dns"), "one.one.one.one");
    // First non-empty wins.
    assert_eq!(
        dst("app|workload-name|pod|reserved-identity"),
        "reserved:world"
    );
    assert_eq!(dst("pod|ip"), "1.1.1.1");
    // The direction-specific option overrides for its direction only.
    assert_eq!(
        values("sourceContext=namespace;sourceEgressContext=app", &f),
        ["xwing"]
    );
    assert_eq!(
        values("sourceContext=namespace;sourceIngressContext=app", &f),
        ["default"]
    );
    // labelsContext: Hubble's order whatever the order given; then source.
    assert_eq!(
        values(
            "sourceContext=ip;labelsContext=traffic_direction,source_workload_kind,destination_ip,source_app",
            &f
        ),
        ["Deployment", "xwing", "1.1.1.1", "egress", "10.0.0.1"]
    );
}

#[test]
fn short_pod_names_follow_hubbles_pattern() {
    assert_eq!(short_pod_name("coredns-5d78c9869d-x7k2p"), "coredns");
    assert_eq!(short_pod_name("a-b-c-d"), "a-b");
    assert_eq!(short_pod_name("web-0"), "web");
    assert_eq!(short_pod_name("single"), "single");
    assert_eq!(short_pod_name("Upper-X"), "Upper-X");
}
