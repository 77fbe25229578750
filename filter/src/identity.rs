//! `source_identity`, `destination_identity`: the numeric security identity
//! of the endpoint (reserved identities are numbers too: world = 2, …).

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct IdentityFilter {
    side: Side,
    identities: Vec<u32>,
}

impl Predicate for IdentityFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.side
            .endpoint(flow)
            .is_some_and(|ep| self.identities.contains(&ep.identity))
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (side, identities) in [
        (Side::Source, &f.source_identity),
        (Side::Destination, &f.destination_identity),
    ] {
        if !identities.is_empty() {
            out.push(IdentityFilter {
                side,
                identities: identities.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, ff};

    fn src(ids: &[u32]) -> FlowFilter {
        FlowFilter {
            source_identity: ids.to_vec(),
            ..ff()
        }
    }

    fn dst(ids: &[u32]) -> FlowFilter {
        FlowFilter {
            destination_identity: ids.to_vec(),
            ..ff()
        }
    }

    #[rstest]
    #[case::source(vec![src(&[12345])], true)]
    #[case::source_one_of(vec![src(&[1, 12345])], true)]
    #[case::source_other(vec![src(&[2])], false)]
    #[case::destination_world(vec![dst(&[2])], true)]
    #[case::destination_other(vec![dst(&[12345])], false)]
    #[case::both_in_one_filter(vec![FlowFilter { source_identity: vec![12345], destination_identity: vec![2], ..ff() }], true)]
    #[case::both_one_fails(vec![FlowFilter { source_identity: vec![12345], destination_identity: vec![1], ..ff() }], false)]
    #[case::either_side_left(vec![src(&[12345]), dst(&[12345])], true)]
    #[case::either_side_right(vec![src(&[2]), dst(&[2])], true)]
    #[case::either_side_none(vec![src(&[1]), dst(&[1])], false)]
    fn identity(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_identity(12345)
            .dst_identity(2)
            .build();
        check(&filters, &flow, want);
    }

    #[test]
    fn missing_endpoint_never_matches() {
        let flow = FlowBuilder::new().build();
        assert!(!allows(&[src(&[0])], &flow));
        assert!(!allows(&[dst(&[0])], &flow));
        // An endpoint without an identity has identity 0.
        assert!(allows(
            &[src(&[0])],
            &FlowBuilder::new().src_pod("default", "x").build()
        ));
    }
}
