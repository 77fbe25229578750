//! `trace_id`: the W3C trace id of the flow's trace context, exact match.
//! As upstream, an empty value matches flows without a trace id.

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct TraceIdFilter(Vec<String>);

impl Predicate for TraceIdFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let id = flow
            .trace_context
            .as_ref()
            .and_then(|c| c.parent.as_ref())
            .map_or("", |p| p.trace_id.as_str());
        self.0.iter().any(|t| t == id)
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.trace_id.is_empty() {
        out.push(TraceIdFilter(f.trace_id.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff, strings};

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[rstest]
    #[case::exact(&[ID], Some(ID), true)]
    #[case::one_of(&["00f067aa0ba902b7", ID], Some(ID), true)]
    #[case::other(&["00f067aa0ba902b7"], Some(ID), false)]
    #[case::no_prefix(&["4bf92f35"], Some(ID), false)]
    #[case::absent(&[ID], None, false)]
    #[case::empty_matches_absent(&[""], None, true)]
    fn trace_id(#[case] values: &[&str], #[case] id: Option<&str>, #[case] want: bool) {
        let b = FlowBuilder::new();
        let flow = match id {
            Some(id) => b.trace_id(id),
            None => b,
        }
        .build();
        let f = FlowFilter {
            trace_id: strings(values),
            ..ff()
        };
        check(&[f], &flow, want);
    }
}
