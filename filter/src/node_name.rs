//! `node_name`: node name patterns `[cluster/]node` (see `pattern.rs`)
//! against `Flow.node_name`. A node name without a cluster part belongs to
//! the cluster `default`.

use proto::flow::{Flow, FlowFilter};

use crate::defaults::DEFAULT_CLUSTER_NAME;
use crate::pattern::NodeNamePattern;
use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct NodeNameFilter(Vec<NodeNamePattern>);

impl Predicate for NodeNameFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let name = flow.node_name.as_str();
        if name.is_empty() {
            return false;
        }
        // Patterns never match a `/` inside either part, so a name with two
        // slashes matches nothing, as the upstream regular expression.
        let (cluster, node) = name.split_once('/').unwrap_or((DEFAULT_CLUSTER_NAME, name));
        self.0.iter().any(|p| p.matches(cluster, node))
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.node_name.is_empty() {
        let patterns = f
            .node_name
            .iter()
            .map(|v| {
                NodeNamePattern::new(v)
                    .map_err(|reason| FilterError::invalid("node_name", v, reason))
            })
            .collect::<Result<_, _>>()?;
        out.push(NodeNameFilter(patterns));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, compile_error, ff, strings};

    #[rstest]
    #[case::bare_name(&["k8s1"], "k8s1", true)]
    #[case::bare_name_in_cluster(&["k8s1"], "prod/k8s1", true)]
    #[case::glob(&["k8s*"], "prod/k8s2", true)]
    #[case::glob_miss(&["k8s*"], "prod/node1", false)]
    #[case::cluster(&["prod/k8s1"], "prod/k8s1", true)]
    #[case::other_cluster(&["prod/k8s1"], "test/k8s1", false)]
    #[case::default_cluster(&["default/k8s1"], "k8s1", true)]
    #[case::whole_cluster(&["prod/"], "prod/node01.company.com", true)]
    #[case::any_cluster(&["/k8s1"], "test/k8s1", true)]
    #[case::fqdn_nodes(&["test-cluster/*.company.com"], "test-cluster/node01.company.com", true)]
    #[case::one_of(&["x", "kind-*"], "kind-kind/kind-worker", true)]
    #[case::anchored(&["worker"], "kind-kind/kind-worker", false)]
    #[case::case_of_pattern(&["K8S1"], "k8s1", true)]
    #[case::two_slashes_in_flow(&["*"], "a/b/c", false)]
    #[case::unset(&["*"], "", false)]
    fn node_name(#[case] values: &[&str], #[case] node: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().node_name(node).build();
        let f = FlowFilter {
            node_name: strings(values),
            ..ff()
        };
        check(&[f], &flow, want);
    }

    #[rstest]
    #[case::empty("", "empty pattern")]
    #[case::slashes("a/b/c", "too many slashes in pattern")]
    #[case::bad_char("node_1?", "invalid character '?' in pattern")]
    #[case::dots("node..", "multiple trailing dots in pattern")]
    fn invalid(#[case] value: &str, #[case] reason: &str) {
        let err = compile_error(FlowFilter {
            node_name: strings(&["ok", value]),
            ..ff()
        });
        assert_eq!(
            err.to_string(),
            format!("invalid node_name filter {value:?}: {reason}")
        );
    }
}
