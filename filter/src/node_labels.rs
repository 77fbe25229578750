//! `node_labels`: label selectors (see `selector.rs`) against the labels of
//! the node that observed the flow (`Flow.node_labels`, `key=value`).

use proto::flow::{Flow, FlowFilter};

use crate::labels::parse_selectors;
use crate::selector::Selector;
use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct NodeLabelFilter(Vec<Selector>);

impl Predicate for NodeLabelFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.0.iter().any(|s| s.matches(&flow.node_labels))
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.node_labels.is_empty() {
        out.push(NodeLabelFilter(parse_selectors(
            "node_labels",
            &f.node_labels,
        )?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, compile_error, ff, strings};

    #[rstest]
    #[case::equals(&["kubernetes.io/hostname=kind-worker"], true)]
    #[case::other_value(&["kubernetes.io/hostname=kind-worker2"], false)]
    #[case::zone_set(&["topology.kubernetes.io/zone in (eu-1a, eu-1b)"], true)]
    #[case::exists(&["node-role.kubernetes.io/worker"], true)]
    #[case::not_exists(&["!node-role.kubernetes.io/control-plane"], true)]
    #[case::one_of(&["zone=x", "kubernetes.io/os=linux"], true)]
    #[case::conjunction(&["kubernetes.io/os=linux,kubernetes.io/arch=arm64"], false)]
    fn node_labels(#[case] values: &[&str], #[case] want: bool) {
        let flow = FlowBuilder::new()
            .node_labels(&[
                "kubernetes.io/hostname=kind-worker",
                "kubernetes.io/os=linux",
                "kubernetes.io/arch=amd64",
                "topology.kubernetes.io/zone=eu-1a",
                "node-role.kubernetes.io/worker=",
            ])
            .build();
        let f = FlowFilter {
            node_labels: strings(values),
            ..ff()
        };
        check(&[f], &flow, want);
    }

    #[test]
    fn flow_without_node_labels() {
        let flow = FlowBuilder::new().build();
        assert!(!allows(
            &[FlowFilter {
                node_labels: strings(&["kubernetes.io/os"]),
                ..ff()
            }],
            &flow
        ));
        assert!(allows(
            &[FlowFilter {
                node_labels: strings(&["!kubernetes.io/os"]),
                ..ff()
            }],
            &flow
        ));
    }

    #[test]
    fn invalid() {
        let err = compile_error(FlowFilter {
            node_labels: strings(&["os in linux"]),
            ..ff()
        });
        assert_eq!(err.field(), "node_labels");
        assert_eq!(err.value(), Some("os in linux"));
    }
}
