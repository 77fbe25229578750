//! `verdict`: the flow's forwarding verdict (FORWARDED, DROPPED, …).

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct VerdictFilter(Vec<i32>);

impl Predicate for VerdictFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.0.contains(&flow.verdict)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.verdict.is_empty() {
        out.push(VerdictFilter(f.verdict.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{FlowFilter, Verdict};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, ff};

    fn verdicts(v: &[Verdict]) -> FlowFilter {
        FlowFilter {
            verdict: v.iter().map(|v| *v as i32).collect(),
            ..ff()
        }
    }

    #[rstest]
    #[case::dropped(&[Verdict::Dropped], Verdict::Dropped, true)]
    #[case::either(&[Verdict::Dropped, Verdict::Error], Verdict::Error, true)]
    #[case::forwarded_vs_dropped(&[Verdict::Forwarded], Verdict::Dropped, false)]
    #[case::unknown(&[Verdict::Unknown], Verdict::Unknown, true)]
    #[case::translated(&[Verdict::Translated], Verdict::Traced, false)]
    fn verdict(#[case] values: &[Verdict], #[case] flow_verdict: Verdict, #[case] want: bool) {
        let flow = FlowBuilder::new().verdict(flow_verdict).build();
        check(&[verdicts(values)], &flow, want);
    }

    #[test]
    fn unknown_enum_values_compare_numerically() {
        let f = FlowFilter {
            verdict: vec![42],
            ..ff()
        };
        let mut flow = FlowBuilder::new().build();
        assert!(!allows(std::slice::from_ref(&f), &flow));
        flow.verdict = 42;
        assert!(allows(&[f], &flow));
    }
}
