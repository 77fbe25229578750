//! Flags → FlowFilters (as JSON, the `--print-raw-filters` form) and every
//! conflict group, from upstream's `flows_filter.go` rules and the examples
//! in HUBBLE_API §1.5.

use super::*;
use rstest::rstest;

fn build(flags: &[(&str, &str)]) -> Result<(Vec<String>, Vec<String>), String> {
    let mut p = FlagParser::new();
    for (n, v) in flags {
        p.set(n, v)?;
    }
    let (w, b) = p.finish()?;
    let js = |l: Vec<FlowFilter>| {
        l.iter()
            .map(|f| proto::json::to_hubble_json(f).unwrap())
            .collect()
    };
    Ok((js(w), js(b)))
}

#[rstest]
#[case::verdicts(&[("verdict", "DROPPED"), ("verdict", "ERROR")], &[r#"{"verdict":["DROPPED","ERROR"]}"#], &[])]
#[case::ip_and_port_pair(&[("ip", "1.1.1.1"), ("port", "80")], &[r#"{"source_ip":["1.1.1.1"],"source_port":["80"]}"#, r#"{"destination_ip":["1.1.1.1"],"destination_port":["80"]}"#], &[])]
#[case::from_to_namespace(&[("from-namespace", "a"), ("to-namespace", "b")], &[r#"{"source_pod":["a/"],"destination_pod":["b/"]}"#], &[])]
#[case::not_namespace(&[("not", "true"), ("namespace", "kube-system")], &[], &[r#"{"source_pod":["kube-system/"]}"#, r#"{"destination_pod":["kube-system/"]}"#])]
#[case::negations_share_one_filter(&[("not", "true"), ("http-method", "put"), ("not", "true"), ("to-namespace", "foo")], &[], &[r#"{"destination_pod":["foo/"],"http_method":["put"]}"#])]
#[case::namespace_with_pod(&[("namespace", "ns"), ("pod", "web")], &[r#"{"source_pod":["ns/web"]}"#, r#"{"destination_pod":["ns/web"]}"#], &[])]
#[case::all_namespaces_with_pod(&[("all-namespaces", "true"), ("pod", "web")], &[r#"{"source_pod":["/web"]}"#, r#"{"destination_pod":["/web"]}"#], &[])]
#[case::namespace_with_service(&[("to-namespace", "ns"), ("to-service", "svc")], &[r#"{"destination_service":["ns/svc"]}"#], &[])]
#[case::type_trace_subtype(&[("type", "trace:to-endpoint")], &[r#"{"event_type":[{"type":4,"match_sub_type":true}]}"#], &[])]
#[case::type_numeric(&[("type", "1:133"), ("type", "l7")], &[r#"{"event_type":[{"type":1,"match_sub_type":true,"sub_type":133},{"type":129}]}"#], &[])]
#[case::type_agent(&[("type", "agent:policy-updated")], &[r#"{"event_type":[{"type":130,"match_sub_type":true,"sub_type":3}]}"#], &[])]
#[case::tcp_flags(&[("tcp-flags", "syn,ack"), ("tcp-flags", "fin")], &[r#"{"tcp_flags":[{"SYN":true,"ACK":true},{"FIN":true}]}"#], &[])]
#[case::identity_names(&[("identity", "world"), ("identity", "0x10")], &[r#"{"source_identity":[2,16]}"#, r#"{"destination_identity":[2,16]}"#], &[])]
#[case::ipv4_ipv6(&[("ipv4", "v4"), ("ip-version", "v6")], &[r#"{"ip_version":["IPv4","IPv6"]}"#], &[])]
#[case::workload(&[("to-workload", "Deployment/web"), ("from-workload", "db")], &[r#"{"source_workload":[{"name":"db"}],"destination_workload":[{"name":"web","kind":"Deployment"}]}"#], &[])]
#[case::http_header(&[("http-header", "x-a:b:c")], &[r#"{"http_header":[{"key":"x-a","value":"b:c"}]}"#], &[])]
#[case::encrypted(&[("unencrypted", "true")], &[r#"{"encrypted":[false]}"#], &[])]
#[case::interface_snat(&[("interface", "eth0"), ("snat-ip", "10.0.0.0/8")], &[r#"{"source_ip_xlated":["10.0.0.0/8"],"interface":[{"name":"eth0"}]}"#], &[])]
#[case::cluster_pair(&[("cluster", "prod-*")], &[r#"{"source_cluster_name":["prod-*"]}"#, r#"{"destination_cluster_name":["prod-*"]}"#], &[])]
#[case::drop_reason(&[("drop-reason-desc", "POLICY_DENIED"), ("traffic-direction", "Ingress")], &[r#"{"traffic_direction":["INGRESS"],"drop_reason_desc":["POLICY_DENIED"]}"#], &[])]
#[case::cel(&[("cel-expression", "_flow.verdict == 2")], &[r#"{"experimental":{"cel_expression":["_flow.verdict == 2"]}}"#], &[])]
#[case::ip_trace_id(&[("ip-trace-id", "77")], &[r#"{"ip_trace_id":["77"]}"#], &[])]
#[case::html_escaped(&[("http-path", "/a<b>&c")], &[r#"{"http_path":["/a\u003cb\u003e\u0026c"]}"#], &[])]
fn flags_to_filters(#[case] flags: &[(&str, &str)], #[case] allow: &[&str], #[case] deny: &[&str]) {
    let (w, b) = build(flags).unwrap();
    assert_eq!(w, allow, "allowlist for {flags:?}");
    assert_eq!(b, deny, "denylist for {flags:?}");
}

#[rstest]
#[case(&[("from-ip", "1.1.1.1"), ("from-namespace", "foo")], "filters --from-ip and --from-namespace cannot be combined")]
#[case(&[("from-namespace", "foo"), ("from-ip", "1.1.1.1")], "filters --from-ip and --from-namespace cannot be combined")]
#[case(&[("ip", "1.1.1.1"), ("fqdn", "a")], "filters --ip and --fqdn cannot be combined")]
#[case(&[("from-fqdn", "a"), ("from-pod", "b")], "filters --from-fqdn and --from-pod cannot be combined")]
#[case(&[("to-ip", "1.1.1.1"), ("to-all-namespaces", "true")], "filters --to-ip and --to-all-namespaces cannot be combined")]
#[case(&[("namespace", "a"), ("all-namespaces", "true")], "filters --namespace and --all-namespaces cannot be combined")]
#[case(&[("to-pod", "a"), ("namespace", "b")], "filters --to-pod and --namespace cannot be combined")]
#[case(&[("from-service", "a"), ("all-namespaces", "true")], "filters --from-service and --all-namespaces cannot be combined")]
#[case(&[("label", "a"), ("from-label", "b")], "filters --label and --from-label cannot be combined")]
#[case(&[("to-label", "a"), ("label", "b")], "filters --label and --to-label cannot be combined")]
#[case(&[("service", "a"), ("to-service", "b")], "filters --service and --to-service cannot be combined")]
#[case(&[("port", "1"), ("from-port", "2")], "filters --port and --from-port cannot be combined")]
#[case(&[("identity", "1"), ("to-identity", "2")], "filters --identity and --to-identity cannot be combined")]
#[case(&[("workload", "a"), ("from-workload", "b")], "filters --workload and --from-workload cannot be combined")]
#[case(&[("encrypted", "true"), ("unencrypted", "true")], "filters --encrypted and --unencrypted cannot be combined")]
#[case(&[("not", "true"), ("not", "true")], "consecutive --not statements")]
#[case(&[("ip", "1.1.1.1"), ("not", "true")], "trailing --not found in the arguments")]
#[case(&[("verdict", "dropped")], "invalid --verdict value: dropped")]
#[case(&[("drop-reason-desc", "")], "empty --drop-reason-desc value")]
#[case(&[("drop-reason-desc", "NOPE")], "invalid --drop-reason-desc value: NOPE")]
#[case(&[("type", "nope")], "unable to parse type 'nope', not a known type name and unable to parse as numeric value: strconv.ParseUint: parsing \"nope\": invalid syntax")]
#[case(&[("type", "4:to-endpoint")], "unable to parse event sub-type 'to-endpoint', not a known sub-type name and unable to parse as numeric value: strconv.ParseUint: parsing \"to-endpoint\": invalid syntax")]
#[case(&[("tcp-flags", "syn,bogus")], "unknown tcp flag: bogus")]
#[case(&[("identity", "nobody")], "invalid security identity, expected one of [host world unmanaged health init remote-node kube-apiserver ingress world-ipv4 world-ipv6] or a numeric value")]
#[case(&[("traffic-direction", "UP")], "up: invalid traffic direction, expected ingress or egress")]
#[case(&[("http-header", "nocolon")], "invalid http-header value \"nocolon\", expected name:value")]
#[case(&[("ip-trace-id", "0")], "invalid --ip-trace-id value; must be greater than 0")]
#[case(&[("ip-trace-id", "x")], "invalid --ip-trace-id value: strconv.ParseUint: parsing \"x\": invalid syntax")]
#[case(&[("namespace", "foo"), ("pod", "bar/x")], "namespace conflict: \"foo\" does not contain \"bar/x\"")]
#[case(&[("from-pod", "a/x"), ("from-service", "b/y")], "namespace of service \"b/y\" conflict with pod \"a\"")]
fn invalid_flags(#[case] flags: &[(&str, &str)], #[case] want: &str) {
    assert_eq!(build(flags).unwrap_err(), want);
}

#[test]
fn a_negated_flag_conflicts_only_within_the_deny_list() {
    assert!(
        build(&[
            ("from-ip", "1.1.1.1"),
            ("not", "true"),
            ("from-namespace", "a")
        ])
        .is_ok()
    );
}

#[test]
fn raw_filters_accept_proto_and_camel_names_and_reject_unknown_keys() {
    let f = parse_raw_filters(&[
        r#"{"source_label":["k8s:a=b"]}{"destinationLabel":["reserved:host"]}"#.into(),
    ])
    .unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].destination_label, ["reserved:host"]);
    let e = parse_raw_filters(&[r#"{"invalid":["filters"]}"#.into()]).unwrap_err();
    assert_eq!(
        e,
        r#"failed to decode '{"invalid":["filters"]}': unknown field "invalid""#
    );
    assert!(parse_raw_filters(&["{nope".into()]).is_err());
}

#[test]
fn yaml_like_yaml_v3() {
    let allow = vec![FlowFilter {
        source_ip: vec!["1.2.3.4/16".into()],
        ..Default::default()
    }];
    let deny = vec![FlowFilter {
        source_port: vec!["80".into()],
        ..Default::default()
    }];
    assert_eq!(
        filters_yaml(&allow, &deny).unwrap(),
        "allowlist:\n    - '{\"source_ip\":[\"1.2.3.4/16\"]}'\ndenylist:\n    - '{\"source_port\":[\"80\"]}'\n"
    );
    assert_eq!(filters_yaml(&[], &[]).unwrap(), "{}\n");
}
