//! `source_service`, `destination_service`: `[namespace/][name-prefix]`
//! against the flow's `source_service`/`destination_service`, with the same
//! syntax and defaults as pods (see `pod.rs`).

use proto::flow::{Flow, FlowFilter};

use crate::pod::{NamespacedName, any_matches, parse_all};
use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct ServiceFilter {
    side: Side,
    names: Vec<NamespacedName>,
}

impl Predicate for ServiceFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let (ns, name) = self
            .side
            .service(flow)
            .map_or(("", ""), |s| (&s.namespace, &s.name));
        any_matches(&self.names, ns, name)
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (name, side, values) in [
        ("source_service", Side::Source, &f.source_service),
        (
            "destination_service",
            Side::Destination,
            &f.destination_service,
        ),
    ] {
        if !values.is_empty() {
            out.push(ServiceFilter {
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

    use crate::testutil::{FlowBuilder, allows, check, compile_error, ff, strings};

    fn src(v: &[&str]) -> FlowFilter {
        FlowFilter {
            source_service: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_service: strings(v),
            ..ff()
        }
    }

    #[rstest]
    #[case::name_in_default(&["deathstar", "kube-system/kube-dns"], "default", "deathstar", true)]
    #[case::qualified(&["deathstar", "kube-system/kube-dns"], "kube-system", "kube-dns", true)]
    #[case::other_name(&["deathstar", "kube-system/kube-dns"], "default", "xwing", false)]
    #[case::default_ns_only(&["deathstar"], "kube-system", "deathstar", false)]
    #[case::namespace(&["default/"], "default", "xwing", true)]
    #[case::prefix(&["kube-system/kube-"], "kube-system", "kube-dns", true)]
    #[case::any_namespace(&["/kube-"], "monitoring", "kube-state-metrics", true)]
    fn source_service(
        #[case] values: &[&str],
        #[case] ns: &str,
        #[case] name: &str,
        #[case] want: bool,
    ) {
        let flow = FlowBuilder::new().src_service(ns, name).build();
        check(&[src(values)], &flow, want);
    }

    #[rstest]
    #[case::destination(vec![dst(&["kube-system/kube-dns"])], true)]
    #[case::destination_not_source(vec![dst(&["frontend"])], false)]
    #[case::either_side(vec![src(&["kube-system/"]), dst(&["kube-system/"])], true)]
    #[case::either_side_none(vec![src(&["monitoring/"]), dst(&["monitoring/"])], false)]
    #[case::both(vec![FlowFilter { source_service: strings(&["frontend"]), destination_service: strings(&["kube-system/"]), ..ff() }], true)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_service("default", "frontend")
            .dst_service("kube-system", "kube-dns")
            .build();
        check(&filters, &flow, want);
    }

    #[test]
    fn flow_without_service_never_matches() {
        // The pod fields are not consulted.
        let flow = FlowBuilder::new().src_pod("default", "frontend").build();
        assert!(!allows(&[src(&["default/"])], &flow));
    }

    #[test]
    fn invalid() {
        let err = compile_error(src(&[""]));
        assert_eq!(err.field(), "source_service");
        assert_eq!(
            err.to_string(),
            r#"invalid source_service filter "": must be [namespace/][<name>]"#
        );
    }
}
