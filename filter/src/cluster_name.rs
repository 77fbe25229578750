//! `source_cluster_name`, `destination_cluster_name`: the endpoint's cluster.
//!
//! Upstream compares names exactly and rejects an empty name. The CLI
//! documents patterns such as `prod-*`, so a value containing `*` is also
//! accepted here as a glob (`*` matches any run of characters); cluster
//! names cannot contain `*`, so this never changes the result of a value
//! upstream would accept.

use proto::flow::{Flow, FlowFilter};

use crate::pattern::Glob;
use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct ClusterNameFilter {
    side: Side,
    names: Vec<Glob>,
}

impl Predicate for ClusterNameFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let name = self
            .side
            .endpoint(flow)
            .map_or("", |ep| ep.cluster_name.as_str());
        self.names.iter().any(|g| g.matches(name))
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (field, side, values) in [
        ("source_cluster_name", Side::Source, &f.source_cluster_name),
        (
            "destination_cluster_name",
            Side::Destination,
            &f.destination_cluster_name,
        ),
    ] {
        if values.is_empty() {
            continue;
        }
        let names = values
            .iter()
            .map(|v| {
                if v.is_empty() {
                    Err(FilterError::invalid(field, v, "name must not be empty"))
                } else {
                    Ok(Glob::new(v))
                }
            })
            .collect::<Result<_, _>>()?;
        out.push(ClusterNameFilter { side, names });
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
            source_cluster_name: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_cluster_name: strings(v),
            ..ff()
        }
    }

    #[rstest]
    #[case::exact(&["aws-south-1", "gke-europe-west1-c"], "aws-south-1", true)]
    #[case::second(&["aws-south-1", "gke-europe-west1-c"], "gke-europe-west1-c", true)]
    #[case::other(&["aws-south-1"], "aks-eastus2-1", false)]
    #[case::no_prefix_match(&["aws"], "aws-south-1", false)]
    #[case::glob_suffix(&["aws-*"], "aws-south-1", true)]
    #[case::glob_middle(&["aws-*-1"], "aws-south-1", true)]
    #[case::glob_miss(&["gke-*"], "aws-south-1", false)]
    #[case::glob_all(&["*"], "aws-south-1", true)]
    #[case::unset(&["aws-south-1"], "", false)]
    fn source_cluster(#[case] values: &[&str], #[case] cluster: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().src_cluster(cluster).build();
        check(&[src(values)], &flow, want);
    }

    #[rstest]
    #[case::destination(vec![dst(&["aks-eastus2-1"])], true)]
    #[case::destination_not_source(vec![dst(&["aws-south-1"])], false)]
    #[case::both(vec![FlowFilter { source_cluster_name: strings(&["aws-south-1"]), destination_cluster_name: strings(&["aks-eastus2-1"]), ..ff() }], true)]
    #[case::either_side(vec![src(&["aks-eastus2-1"]), dst(&["aks-eastus2-1"])], true)]
    #[case::either_side_none(vec![src(&["default"]), dst(&["default"])], false)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_cluster("aws-south-1")
            .dst_cluster("aks-eastus2-1")
            .build();
        check(&filters, &flow, want);
    }

    #[test]
    fn glob_star_matches_unset_cluster() {
        // `*` matches the empty string, like any glob.
        assert!(allows(&[src(&["*"])], &FlowBuilder::new().build()));
    }

    #[rstest]
    #[case::source(src(&[""]), "source_cluster_name")]
    #[case::destination(dst(&["ok", ""]), "destination_cluster_name")]
    fn invalid(#[case] f: FlowFilter, #[case] field: &str) {
        let err = compile_error(f);
        assert_eq!(err.field(), field);
        assert_eq!(
            err.to_string(),
            format!("invalid {field} filter \"\": name must not be empty")
        );
    }
}
