//! `reply`: whether the flow is a reply (`is_reply`). Flows whose reply
//! status is unknown match no value, except DROPPED flows, which upstream
//! treats as `is_reply=false` for older clients that read the deprecated
//! `reply` field.

use proto::flow::{Flow, FlowFilter, Verdict};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct ReplyFilter(Vec<bool>);

impl Predicate for ReplyFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let reply = match flow.is_reply {
            Some(r) => r.value,
            None if flow.verdict == Verdict::Dropped as i32 => false,
            None => return false,
        };
        self.0.contains(&reply)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.reply.is_empty() {
        out.push(ReplyFilter(f.reply.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{FlowFilter, Verdict};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    #[rstest]
    #[case::reply(&[true], Some(true), Verdict::Forwarded, true)]
    #[case::not_reply(&[false], Some(false), Verdict::Forwarded, true)]
    #[case::mismatch(&[false], Some(true), Verdict::Forwarded, false)]
    #[case::either(&[false, true], Some(true), Verdict::Forwarded, true)]
    #[case::unknown_forwarded_false(&[false], None, Verdict::Forwarded, false)]
    #[case::unknown_forwarded_true(&[true], None, Verdict::Forwarded, false)]
    #[case::unknown_dropped_is_false(&[false], None, Verdict::Dropped, true)]
    #[case::unknown_dropped_not_true(&[true], None, Verdict::Dropped, false)]
    fn reply(
        #[case] values: &[bool],
        #[case] is_reply: Option<bool>,
        #[case] verdict: Verdict,
        #[case] want: bool,
    ) {
        let flow = FlowBuilder::new().reply(is_reply).verdict(verdict).build();
        let f = FlowFilter {
            reply: values.to_vec(),
            ..ff()
        };
        check(&[f], &flow, want);
    }
}
