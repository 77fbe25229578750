//! `drop_reason_desc`: the drop reason of DROPPED flows.

use proto::flow::{Flow, FlowFilter, Verdict};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct DropReasonFilter(Vec<i32>);

impl Predicate for DropReasonFilter {
    fn matches(&self, flow: &Flow) -> bool {
        // Upstream only looks at the reason of dropped flows.
        flow.verdict == Verdict::Dropped as i32 && self.0.contains(&flow.drop_reason_desc)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.drop_reason_desc.is_empty() {
        out.push(DropReasonFilter(f.drop_reason_desc.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{DropReason, FlowFilter, Verdict};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    fn reasons(v: &[DropReason]) -> FlowFilter {
        FlowFilter {
            drop_reason_desc: v.iter().map(|v| *v as i32).collect(),
            ..ff()
        }
    }

    #[rstest]
    #[case::policy_denied(&[DropReason::PolicyDenied], Verdict::Dropped, DropReason::PolicyDenied, true)]
    #[case::one_of(&[DropReason::PolicyDeny, DropReason::PolicyDenied], Verdict::Dropped, DropReason::PolicyDenied, true)]
    #[case::other_reason(&[DropReason::PolicyDeny], Verdict::Dropped, DropReason::PolicyDenied, false)]
    #[case::not_dropped(&[DropReason::PolicyDenied], Verdict::Forwarded, DropReason::PolicyDenied, false)]
    #[case::unknown_reason_of_drop(&[DropReason::Unknown], Verdict::Dropped, DropReason::Unknown, true)]
    #[case::unknown_reason_of_forward(&[DropReason::Unknown], Verdict::Forwarded, DropReason::Unknown, false)]
    fn drop_reason(
        #[case] values: &[DropReason],
        #[case] verdict: Verdict,
        #[case] reason: DropReason,
        #[case] want: bool,
    ) {
        let flow = FlowBuilder::new()
            .verdict(verdict)
            .drop_reason(reason)
            .build();
        check(&[reasons(values)], &flow, want);
    }
}
