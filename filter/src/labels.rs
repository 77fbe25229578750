//! `source_label`, `destination_label`: label selectors (see `selector.rs`)
//! against the endpoint's labels. An endpoint without labels, or a flow
//! without that endpoint, has an empty label set: `!key` matches it.

use proto::flow::{Flow, FlowFilter};

use crate::selector::Selector;
use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct LabelFilter {
    side: Side,
    selectors: Vec<Selector>,
}

impl Predicate for LabelFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let labels = self
            .side
            .endpoint(flow)
            .map_or(&[][..], |ep| &ep.labels[..]);
        self.selectors.iter().any(|s| s.matches(labels))
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

/// Parses each selector of a field.
pub(crate) fn parse_selectors(
    field: &'static str,
    values: &[String],
) -> Result<Vec<Selector>, FilterError> {
    values
        .iter()
        .map(|v| Selector::parse(v).map_err(|reason| FilterError::invalid(field, v, reason)))
        .collect()
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (field, side, values) in [
        ("source_label", Side::Source, &f.source_label),
        ("destination_label", Side::Destination, &f.destination_label),
    ] {
        if !values.is_empty() {
            out.push(LabelFilter {
                side,
                selectors: parse_selectors(field, values)?,
            });
        }
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
            source_label: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_label: strings(v),
            ..ff()
        }
    }

    fn flow() -> proto::flow::Flow {
        FlowBuilder::new()
            .src_labels(&[
                "k8s:app=xwing",
                "k8s:class=fighter",
                "k8s:io.kubernetes.pod.namespace=default",
            ])
            .dst_labels(&["reserved:world"])
            .build()
    }

    #[rstest]
    #[case::with_source(&["k8s:app=xwing"], true)]
    #[case::without_source(&["app=xwing"], true)]
    #[case::wrong_source(&["reserved:app=xwing"], false)]
    #[case::other_value(&["k8s:app=tiefighter"], false)]
    #[case::one_of(&["k8s:app=tiefighter", "class=fighter"], true)]
    #[case::set(&["app in (tiefighter, xwing)"], true)]
    #[case::notin(&["app notin (xwing)"], false)]
    #[case::exists(&["k8s:class"], true)]
    #[case::not_exists(&["!k8s:tier"], true)]
    #[case::not_equals(&["class!=cruiser"], true)]
    #[case::conjunction(&["k8s:app=xwing,k8s:io.kubernetes.pod.namespace=default"], true)]
    #[case::conjunction_fails(&["k8s:app=xwing,k8s:io.kubernetes.pod.namespace=empire"], false)]
    #[case::reserved_not_here(&["reserved:world"], false)]
    fn source_label(#[case] values: &[&str], #[case] want: bool) {
        check(&[src(values)], &flow(), want);
    }

    #[rstest]
    #[case::destination(vec![dst(&["reserved:world"])], true)]
    #[case::destination_bare(vec![dst(&["world"])], true)]
    #[case::destination_not_source(vec![dst(&["app=xwing"])], false)]
    #[case::either_side_left(vec![src(&["app=xwing"]), dst(&["app=xwing"])], true)]
    #[case::either_side_right(vec![src(&["reserved:world"]), dst(&["reserved:world"])], true)]
    #[case::either_side_none(vec![src(&["app=falcon"]), dst(&["app=falcon"])], false)]
    #[case::both(vec![FlowFilter { source_label: strings(&["app=xwing"]), destination_label: strings(&["reserved:world"]), ..ff() }], true)]
    #[case::both_one_fails(vec![FlowFilter { source_label: strings(&["app=xwing"]), destination_label: strings(&["reserved:host"]), ..ff() }], false)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        check(&filters, &flow(), want);
    }

    #[test]
    fn missing_endpoint_has_no_labels() {
        let flow = FlowBuilder::new().build();
        assert!(!allows(&[src(&["app"])], &flow));
        assert!(allows(&[src(&["!app"])], &flow));
    }

    #[rstest]
    #[case::bad_value("source_label", "app=x y")]
    #[case::unclosed("source_label", "app in (a")]
    #[case::bad_key("destination_label", "k8s:app-=x")]
    #[case::whitespace("destination_label", " ")]
    fn invalid(#[case] field: &str, #[case] value: &str) {
        let f = if field == "source_label" {
            src(&["app", value])
        } else {
            dst(&[value])
        };
        let err = compile_error(f);
        assert_eq!(err.field(), field);
        assert_eq!(err.value(), Some(value));
        assert!(
            err.to_string()
                .starts_with(&format!("invalid {field} filter {value:?}: ")),
            "{err}"
        );
    }
}
