//! `ip_trace_id`: the IP-options trace id of the flow.

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct IpTraceIdFilter(Vec<u64>);

impl Predicate for IpTraceIdFilter {
    fn matches(&self, flow: &Flow) -> bool {
        flow.ip_trace_id
            .as_ref()
            .is_some_and(|t| self.0.contains(&t.trace_id))
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.ip_trace_id.is_empty() {
        out.push(IpTraceIdFilter(f.ip_trace_id.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    #[rstest]
    #[case::exact(&[42], Some(42), true)]
    #[case::one_of(&[7, 42], Some(42), true)]
    #[case::other(&[7], Some(42), false)]
    #[case::absent(&[42], None, false)]
    #[case::max(&[u64::MAX], Some(u64::MAX), true)]
    fn ip_trace_id(#[case] values: &[u64], #[case] id: Option<u64>, #[case] want: bool) {
        let b = FlowBuilder::new();
        let flow = match id {
            Some(id) => b.ip_trace_id(id),
            None => b,
        }
        .build();
        let f = FlowFilter {
            ip_trace_id: values.to_vec(),
            ..ff()
        };
        check(&[f], &flow, want);
    }
}
