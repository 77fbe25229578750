//! `source_pod`, `destination_pod`: `[namespace/][pod-name-prefix]`.
//!
//! * `xwing` means namespace `default`, pod name starting with `xwing`;
//! * `kube-system/` means any pod in `kube-system`;
//! * `/coredns-` means a pod name starting with `coredns-` in any namespace
//!   (what the CLI's `--all-namespaces` sends);
//! * `` and `/` are invalid.
//!
//! A flow endpoint without namespace and pod name never matches. The same
//! syntax applies to services (see `service.rs`).

use proto::flow::{Flow, FlowFilter};

use crate::defaults::DEFAULT_NAMESPACE;
use crate::{Cost, FilterError, Predicate, Predicates, Side};

/// One parsed `[namespace/][prefix]` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamespacedName {
    /// Empty means any namespace.
    namespace: String,
    /// Empty means any name.
    prefix: String,
}

impl NamespacedName {
    /// Parses a value as upstream's `ParseNamespaceName`: the part after a
    /// second `/` is ignored.
    pub(crate) fn parse(field: &'static str, value: &str) -> Result<Self, FilterError> {
        let mut parts = value.split('/');
        let first = parts.next().unwrap_or_default();
        let (namespace, prefix) = match parts.next() {
            Some(name) => (first, name),
            None if first.is_empty() => ("", ""),
            None => (DEFAULT_NAMESPACE, first),
        };
        if namespace.is_empty() && prefix.is_empty() {
            return Err(FilterError::invalid(
                field,
                value,
                "must be [namespace/][<name>]",
            ));
        }
        Ok(NamespacedName {
            namespace: namespace.into(),
            prefix: prefix.into(),
        })
    }

    pub(crate) fn matches(&self, namespace: &str, name: &str) -> bool {
        (self.namespace.is_empty() || self.namespace == namespace)
            && name.starts_with(self.prefix.as_str())
    }
}

/// Any of several names, against a `(namespace, name)` pair of the flow.
pub(crate) fn any_matches(names: &[NamespacedName], namespace: &str, name: &str) -> bool {
    if namespace.is_empty() && name.is_empty() {
        return false;
    }
    names.iter().any(|n| n.matches(namespace, name))
}

pub(crate) fn parse_all(
    field: &'static str,
    values: &[String],
) -> Result<Vec<NamespacedName>, FilterError> {
    values
        .iter()
        .map(|v| NamespacedName::parse(field, v))
        .collect()
}

#[derive(Debug)]
struct PodFilter {
    side: Side,
    names: Vec<NamespacedName>,
}

impl Predicate for PodFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let (ns, pod) = self
            .side
            .endpoint(flow)
            .map_or(("", ""), |ep| (&ep.namespace, &ep.pod_name));
        any_matches(&self.names, ns, pod)
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (name, side, values) in [
        ("source_pod", Side::Source, &f.source_pod),
        ("destination_pod", Side::Destination, &f.destination_pod),
    ] {
        if !values.is_empty() {
            out.push(PodFilter {
                side,
                names: parse_all(name, values)?,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use super::NamespacedName;
    use crate::testutil::{FlowBuilder, allows, check, compile_error, ff, strings};

    fn src(v: &[&str]) -> FlowFilter {
        FlowFilter {
            source_pod: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_pod: strings(v),
            ..ff()
        }
    }

    #[rstest]
    #[case::name_in_default("xwing", "default", "xwing", true)]
    #[case::name_prefix("xwing", "default", "xwing-t-65b", true)]
    #[case::not_in_default("xwing", "kube-system", "xwing", false)]
    #[case::qualified("kube-system/coredns-", "kube-system", "coredns-12345", true)]
    #[case::qualified_not_prefix("kube-system/coredns-", "kube-system", "-coredns-12345", false)]
    #[case::namespace_only("kube-system/", "kube-system", "anything", true)]
    #[case::namespace_only_other("kube-system/", "default", "anything", false)]
    #[case::namespace_exact_not_prefix("kube/", "kube-system", "x", false)]
    #[case::any_namespace("/coredns-", "kube-system", "coredns-1", true)]
    #[case::any_namespace_other_name("/coredns-", "kube-system", "kube-proxy", false)]
    #[case::extra_slash_ignored("default/xwing/ignored", "default", "xwing", true)]
    #[case::endpoint_without_namespace("xwing", "", "xwing", false)]
    #[case::namespace_without_pod("default/", "default", "", true)]
    fn source_pod(#[case] value: &str, #[case] ns: &str, #[case] pod: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().src_pod(ns, pod).build();
        check(&[src(&[value])], &flow, want);
    }

    #[rstest]
    #[case::destination(vec![dst(&["deathstar"])], true)]
    #[case::destination_not_source(vec![dst(&["xwing"])], false)]
    #[case::one_of(vec![src(&["tiefighter", "xwing"])], true)]
    #[case::both(vec![FlowFilter { source_pod: strings(&["xwing"]), destination_pod: strings(&["deathstar"]), ..ff() }], true)]
    #[case::both_one_fails(vec![FlowFilter { source_pod: strings(&["deathstar"]), destination_pod: strings(&["deathstar"]), ..ff() }], false)]
    #[case::namespace_either_side(vec![src(&["kube-system/"]), dst(&["kube-system/"])], false)]
    #[case::pod_either_side(vec![src(&["deathstar"]), dst(&["deathstar"])], true)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_pod("default", "xwing")
            .dst_pod("default", "deathstar")
            .build();
        check(&filters, &flow, want);
    }

    #[test]
    fn missing_endpoint_never_matches() {
        let flow = FlowBuilder::new().build();
        assert!(!allows(&[src(&["default/"])], &flow));
        assert!(!allows(&[src(&["/x"])], &flow));
    }

    #[rstest]
    #[case::empty("")]
    #[case::slash("/")]
    #[case::slashes("//")]
    fn invalid(#[case] value: &str) {
        let err = compile_error(dst(&["ok", value]));
        assert_eq!(err.field(), "destination_pod");
        assert_eq!(err.value(), Some(value));
        assert!(
            err.to_string().contains("must be [namespace/][<name>]"),
            "{err}"
        );
    }

    #[test]
    fn parse_defaults_namespace() {
        let n = NamespacedName::parse("source_pod", "xwing").unwrap();
        assert!(n.matches("default", "xwing"));
        assert!(!n.matches("", "xwing"));
    }
}
