//! `dns_query`: RE2-style regular expressions (unanchored, as Go's
//! `MatchString`) against the query of L7 DNS records.

use proto::flow::{Flow, FlowFilter, layer7};
use regex::Regex;

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct DnsQueryFilter(Vec<Regex>);

impl Predicate for DnsQueryFilter {
    fn matches(&self, flow: &Flow) -> bool {
        match flow.l7.as_ref().and_then(|l7| l7.record.as_ref()) {
            Some(layer7::Record::Dns(dns)) => self.0.iter().any(|r| r.is_match(&dns.query)),
            _ => false,
        }
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.dns_query.is_empty() {
        let regexes = f
            .dns_query
            .iter()
            .map(|q| Regex::new(q).map_err(|e| FilterError::regex("dns_query", q, &e)))
            .collect::<Result<_, _>>()?;
        out.push(DnsQueryFilter(regexes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, compile_error, ff, strings};

    #[rstest]
    #[case::substring(&["cilium"], "docs.cilium.io.", true)]
    #[case::anchored(&[r"^docs\.cilium\.io\.$"], "docs.cilium.io.", true)]
    #[case::anchored_miss(&[r"^cilium\.io\.$"], "docs.cilium.io.", false)]
    #[case::one_of(&["ebpf", r"\.io\.$"], "docs.cilium.io.", true)]
    #[case::case_sensitive(&["CILIUM"], "docs.cilium.io.", false)]
    #[case::case_flag(&["(?i)CILIUM"], "docs.cilium.io.", true)]
    #[case::empty_regex_matches_any(&[""], "docs.cilium.io.", true)]
    fn dns_query(#[case] values: &[&str], #[case] query: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().dns(query).build();
        let f = FlowFilter {
            dns_query: strings(values),
            ..ff()
        };
        check(&[f], &flow, want);
    }

    #[test]
    fn non_dns_flows_never_match() {
        let f = FlowFilter {
            dns_query: strings(&[""]),
            ..ff()
        };
        assert!(!allows(
            std::slice::from_ref(&f),
            &FlowBuilder::new().udp(1234, 53).build()
        ));
        assert!(!allows(
            &[f],
            &FlowBuilder::new().http(200, "GET", "/", &[]).build()
        ));
    }

    #[test]
    fn invalid() {
        let err = compile_error(FlowFilter {
            dns_query: strings(&["cilium(", "ok"]),
            ..ff()
        });
        assert_eq!(err.field(), "dns_query");
        assert_eq!(err.value(), Some("cilium("));
        assert!(
            err.to_string()
                .starts_with(r#"invalid dns_query filter "cilium(": invalid regular expression"#),
            "{err}"
        );
    }
}
