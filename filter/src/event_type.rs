//! `event_type`: the monitor event type (and optionally sub-type) of the
//! flow. Type 0 matches any type; the sub-type is compared only when
//! `match_sub_type` is set.

use proto::flow::{EventTypeFilter, Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct EventTypeMatcher(Vec<EventTypeFilter>);

impl Predicate for EventTypeMatcher {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(event) = flow.event_type.as_ref() else {
            return false;
        };
        self.0.iter().any(|f| {
            (f.r#type == 0 || f.r#type == event.r#type)
                && (!f.match_sub_type || f.sub_type == event.sub_type)
        })
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.event_type.is_empty() {
        out.push(EventTypeMatcher(f.event_type.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{EventTypeFilter, FlowFilter};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    const DROP: i32 = 1;
    const TRACE: i32 = 4;
    const L7: i32 = 129;

    fn t(r#type: i32) -> EventTypeFilter {
        EventTypeFilter {
            r#type,
            match_sub_type: false,
            sub_type: 0,
        }
    }

    fn ts(r#type: i32, sub_type: i32) -> EventTypeFilter {
        EventTypeFilter {
            r#type,
            match_sub_type: true,
            sub_type,
        }
    }

    #[rstest]
    #[case::type_only(vec![t(TRACE)], Some((TRACE, 5)), true)]
    #[case::other_type(vec![t(DROP)], Some((TRACE, 5)), false)]
    #[case::sub_type(vec![ts(TRACE, 5)], Some((TRACE, 5)), true)]
    #[case::other_sub_type(vec![ts(TRACE, 0)], Some((TRACE, 5)), false)]
    #[case::sub_type_zero(vec![ts(TRACE, 0)], Some((TRACE, 0)), true)]
    #[case::unset_sub_type_ignored(vec![EventTypeFilter { r#type: TRACE, match_sub_type: false, sub_type: 9 }], Some((TRACE, 5)), true)]
    #[case::any_type(vec![t(0)], Some((L7, 0)), true)]
    #[case::any_type_with_sub(vec![ts(0, 133)], Some((DROP, 133)), true)]
    #[case::one_of(vec![t(DROP), t(L7)], Some((L7, 0)), true)]
    #[case::no_event_type(vec![t(0)], None, false)]
    fn event_type(
        #[case] values: Vec<EventTypeFilter>,
        #[case] event: Option<(i32, i32)>,
        #[case] want: bool,
    ) {
        let b = FlowBuilder::new();
        let flow = match event {
            Some((t, s)) => b.event_type(t, s),
            None => b,
        }
        .build();
        let f = FlowFilter {
            event_type: values,
            ..ff()
        };
        check(&[f], &flow, want);
    }
}
