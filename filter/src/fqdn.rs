//! `source_fqdn`, `destination_fqdn`: FQDN patterns (`*.cilium.io`) against
//! the DNS names of the flow's source or destination IP (`source_names`,
//! `destination_names`); see `pattern.rs` for the pattern syntax.

use proto::flow::{Flow, FlowFilter};
use regex::Regex;

use crate::pattern::fqdn_regex;
use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct FqdnFilter {
    side: Side,
    regex: Regex,
}

impl Predicate for FqdnFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.side.names(flow).iter().any(|n| self.regex.is_match(n))
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (field, side, values) in [
        ("source_fqdn", Side::Source, &f.source_fqdn),
        ("destination_fqdn", Side::Destination, &f.destination_fqdn),
    ] {
        if !values.is_empty() {
            let regex = fqdn_regex(values)
                .map_err(|(value, reason)| FilterError::invalid(field, value, reason))?;
            out.push(FqdnFilter { side, regex });
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
            source_fqdn: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_fqdn: strings(v),
            ..ff()
        }
    }

    #[rstest]
    #[case::exact(&["cilium.io"], true)]
    #[case::second_name(&["ebpf.io"], true)]
    #[case::wildcard(&["*.io"], true)]
    #[case::wildcard_subdomain(&["*.cilium.io"], false)]
    #[case::case_insensitive_pattern(&["Cilium.IO."], true)]
    #[case::one_of(&["example.com", "cilium.io"], true)]
    #[case::other(&["example.com"], false)]
    #[case::anchored(&["cilium"], false)]
    fn destination_fqdn(#[case] values: &[&str], #[case] want: bool) {
        let flow = FlowBuilder::new()
            .dst_names(&["cilium.io", "ebpf.io"])
            .build();
        check(&[dst(values)], &flow, want);
    }

    #[rstest]
    #[case::source(vec![src(&["client.local"])], true)]
    #[case::source_not_destination(vec![src(&["cilium.io"])], false)]
    #[case::either_side(vec![src(&["cilium.io"]), dst(&["cilium.io"])], true)]
    #[case::either_side_none(vec![src(&["x.org"]), dst(&["x.org"])], false)]
    #[case::both(vec![FlowFilter { source_fqdn: strings(&["*.local"]), destination_fqdn: strings(&["*.io"]), ..ff() }], true)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_names(&["client.local"])
            .dst_names(&["cilium.io"])
            .build();
        check(&filters, &flow, want);
    }

    #[test]
    fn flow_without_names_never_matches() {
        assert!(!allows(&[dst(&["*"])], &FlowBuilder::new().build()));
    }

    #[rstest]
    #[case::empty("", "empty pattern")]
    #[case::dots("cilium.io..", "multiple trailing dots in pattern")]
    #[case::regex("cilium.(io)", "invalid character '(' in pattern")]
    #[case::space_inside("cilium io", "invalid character ' ' in pattern")]
    fn invalid(#[case] value: &str, #[case] reason: &str) {
        let err = compile_error(src(&["ok.io", value]));
        assert_eq!(err.field(), "source_fqdn");
        assert_eq!(
            err.to_string(),
            format!("invalid source_fqdn filter {value:?}: {reason}")
        );
    }
}
