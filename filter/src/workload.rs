//! `source_workload`, `destination_workload`: `{name, kind}` against the
//! endpoint's workloads; an empty name or kind matches any.

use proto::flow::{Flow, FlowFilter, Workload};

use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct WorkloadFilter {
    side: Side,
    workloads: Vec<Workload>,
}

impl Predicate for WorkloadFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(ep) = self.side.endpoint(flow) else {
            return false;
        };
        ep.workloads.iter().any(|w| {
            self.workloads.iter().any(|f| {
                (f.name.is_empty() || f.name == w.name) && (f.kind.is_empty() || f.kind == w.kind)
            })
        })
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (side, workloads) in [
        (Side::Source, &f.source_workload),
        (Side::Destination, &f.destination_workload),
    ] {
        if !workloads.is_empty() {
            out.push(WorkloadFilter {
                side,
                workloads: workloads.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{FlowFilter, Workload};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, ff};

    fn w(kind: &str, name: &str) -> Workload {
        Workload {
            name: name.into(),
            kind: kind.into(),
        }
    }

    fn src(v: Vec<Workload>) -> FlowFilter {
        FlowFilter {
            source_workload: v,
            ..ff()
        }
    }

    fn dst(v: Vec<Workload>) -> FlowFilter {
        FlowFilter {
            destination_workload: v,
            ..ff()
        }
    }

    #[rstest]
    #[case::kind_and_name(vec![w("Deployment", "xwing")], true)]
    #[case::name_only(vec![w("", "xwing")], true)]
    #[case::kind_only(vec![w("Deployment", "")], true)]
    #[case::wildcard(vec![w("", "")], true)]
    #[case::other_kind(vec![w("StatefulSet", "xwing")], false)]
    #[case::other_name(vec![w("Deployment", "tiefighter")], false)]
    #[case::name_is_exact(vec![w("", "xw")], false)]
    #[case::one_of(vec![w("", "tiefighter"), w("", "xwing")], true)]
    #[case::second_workload(vec![w("ReplicaSet", "xwing-5b8")], true)]
    fn source_workload(#[case] values: Vec<Workload>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_workload("Deployment", "xwing")
            .src_workload("ReplicaSet", "xwing-5b8")
            .build();
        check(&[src(values)], &flow, want);
    }

    #[rstest]
    #[case::destination(vec![dst(vec![w("", "deathstar")])], true)]
    #[case::destination_not_source(vec![dst(vec![w("", "xwing")])], false)]
    #[case::either_side(vec![src(vec![w("", "deathstar")]), dst(vec![w("", "deathstar")])], true)]
    #[case::either_side_none(vec![src(vec![w("", "falcon")]), dst(vec![w("", "falcon")])], false)]
    #[case::both(vec![FlowFilter { source_workload: vec![w("", "xwing")], destination_workload: vec![w("", "deathstar")], ..ff() }], true)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_workload("Deployment", "xwing")
            .dst_workload("Deployment", "deathstar")
            .build();
        check(&filters, &flow, want);
    }

    #[test]
    fn endpoint_without_workloads_never_matches() {
        let flow = FlowBuilder::new().src_pod("default", "xwing").build();
        assert!(!allows(&[src(vec![w("", "")])], &flow));
        assert!(!allows(
            &[src(vec![w("", "")])],
            &FlowBuilder::new().build()
        ));
    }
}
