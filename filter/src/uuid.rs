//! `uuid`: the flow's UUID, exact match.

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct UuidFilter(Vec<String>);

impl Predicate for UuidFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.0.contains(&flow.uuid)
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.uuid.is_empty() {
        out.push(UuidFilter(f.uuid.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, ff, strings};
    use proto::flow::FlowFilter;

    const A: &str = "e5f1b8d2-0f0a-4f5e-9a43-3c1c0d6b8a01";
    const B: &str = "0b7c9e4a-2d6f-4c1b-8e3a-7f5d2c1b0a99";

    #[rstest]
    #[case::exact(&[A], A, true)]
    #[case::one_of(&[B, A], A, true)]
    #[case::other(&[B], A, false)]
    #[case::no_prefix_match(&["e5f1b8d2"], A, false)]
    #[case::flow_without_uuid(&[A], "", false)]
    fn uuid(#[case] values: &[&str], #[case] flow_uuid: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().uuid(flow_uuid).build();
        let f = FlowFilter {
            uuid: strings(values),
            ..ff()
        };
        check(&[f], &flow, want);
    }

    #[test]
    fn empty_matches_all() {
        assert!(allows(&[ff()], &FlowBuilder::new().uuid(A).build()));
    }
}
