//! Hubble's FlowFilter engine: which flows a `GetFlows` request selects.
//!
//! A request carries an allow list (`whitelist`) and a deny list
//! (`blacklist`) of [`FlowFilter`]s. [`FilterSet::compile`] turns both into
//! predicates once per request, and [`FilterSet::matches`] then decides each
//! flow: it is selected when it matches *any* allow filter (an empty allow
//! list matches everything) and *none* of the deny filters. Within one
//! FlowFilter every non-empty field must match (AND); within a field any value
//! may match (OR). Each field follows upstream Hubble's semantics
//! (`cilium/pkg/hubble/filters`), one module per dimension, so the same
//! request selects the same flows here as on a Cilium agent.
//!
//! Compiling validates every value (IP addresses and CIDRs, ports, regular
//! expressions, label selectors, name patterns, …) and reports the first bad
//! one as a [`FilterError`] naming the field and the value; servers turn it
//! into gRPC `InvalidArgument`. Matching never allocates for the common case
//! and never panics.
//!
//! Users: the exporter's and relay's `GetFlows`, the CLI's `--input-file`,
//! the archive reader. This crate depends only on `proto` (its messages,
//! without the `grpc` feature) and small pure crates (`regex`, `ipnet`,
//! `thiserror`): no async runtime (no tokio, hyper, axum or tonic transport,
//! checked by `tests/runtime_free.rs`), no I/O.

pub mod defaults;
mod error;
mod pattern;
mod selector;
mod uri;

mod cel;
mod cluster_name;
mod dns;
mod drop_reason;
mod encrypted;
mod event_type;
mod fqdn;
mod http;
mod identity;
mod interface;
mod ip;
mod ip_trace_id;
mod ip_version;
mod labels;
mod node_labels;
mod node_name;
mod pod;
mod port;
mod protocol;
mod reply;
mod service;
mod tcp_flags;
mod trace_id;
mod traffic_direction;
mod uuid;
mod verdict;
mod workload;

#[cfg(test)]
mod testutil;
#[cfg(test)]
mod trace_sock_tests;

use std::fmt;

use proto::flow::{Endpoint, Flow, FlowFilter, Service};

pub use error::FilterError;

/// A compiled allow list and deny list: the whole filter of one request.
#[derive(Debug, Default)]
pub struct FilterSet {
    whitelist: Vec<CompiledFilter>,
    blacklist: Vec<CompiledFilter>,
}

impl FilterSet {
    /// Compiles an allow list and a deny list. An empty allow list matches
    /// every flow; an empty deny list excludes none.
    pub fn compile(
        whitelist: &[FlowFilter],
        blacklist: &[FlowFilter],
    ) -> Result<Self, FilterError> {
        let size: usize = whitelist
            .iter()
            .chain(blacklist)
            .map(prost::Message::encoded_len)
            .sum();
        if size > defaults::MAX_FILTER_BYTES {
            return Err(FilterError::TooLarge {
                size,
                limit: defaults::MAX_FILTER_BYTES,
            });
        }
        Ok(FilterSet {
            whitelist: whitelist
                .iter()
                .map(CompiledFilter::compile)
                .collect::<Result<_, _>>()?,
            blacklist: blacklist
                .iter()
                .map(CompiledFilter::compile)
                .collect::<Result<_, _>>()?,
        })
    }

    /// A set that selects every flow.
    pub fn match_all() -> Self {
        FilterSet::default()
    }

    /// Whether the flow is selected: it matches any allow filter (or the
    /// allow list is empty) and no deny filter.
    pub fn matches(&self, flow: &Flow) -> bool {
        (self.whitelist.is_empty() || self.whitelist.iter().any(|f| f.matches(flow)))
            && !self.blacklist.iter().any(|f| f.matches(flow))
    }

    /// Whether every flow is selected, so callers can skip evaluation: no
    /// deny filter, and no allow filter or one that is empty.
    pub fn is_match_all(&self) -> bool {
        self.blacklist.is_empty()
            && (self.whitelist.is_empty() || self.whitelist.iter().any(CompiledFilter::is_empty))
    }
}

/// One compiled [`FlowFilter`]: the AND of one predicate per non-empty field.
pub struct CompiledFilter {
    predicates: Vec<Box<dyn Predicate>>,
}

impl CompiledFilter {
    /// Compiles one FlowFilter, validating every value of every field.
    pub fn compile(f: &FlowFilter) -> Result<Self, FilterError> {
        let mut predicates: Vec<Box<dyn Predicate>> = Vec::new();
        let mut out = Predicates(&mut predicates);
        // Validation order follows upstream's DefaultFilters, so the first
        // error reported for a filter with several bad fields is the same.
        uuid::build(f, &mut out)?;
        event_type::build(f, &mut out)?;
        verdict::build(f, &mut out)?;
        drop_reason::build(f, &mut out)?;
        reply::build(f, &mut out)?;
        encrypted::build(f, &mut out)?;
        identity::build(f, &mut out)?;
        protocol::build(f, &mut out)?;
        ip::build(f, &mut out)?;
        pod::build(f, &mut out)?;
        workload::build(f, &mut out)?;
        service::build(f, &mut out)?;
        fqdn::build(f, &mut out)?;
        dns::build(f, &mut out)?;
        labels::build(f, &mut out)?;
        node_labels::build(f, &mut out)?;
        port::build(f, &mut out)?;
        http::build(f, &mut out)?;
        tcp_flags::build(f, &mut out)?;
        node_name::build(f, &mut out)?;
        cluster_name::build(f, &mut out)?;
        ip_version::build(f, &mut out)?;
        trace_id::build(f, &mut out)?;
        traffic_direction::build(f, &mut out)?;
        cel::build(f, &mut out)?;
        interface::build(f, &mut out)?;
        ip_trace_id::build(f, &mut out)?;
        // Cheap integer comparisons first: AND stops at the first miss.
        predicates.sort_by_key(|p| p.cost());
        Ok(CompiledFilter { predicates })
    }

    /// Whether the flow matches every field of the filter.
    pub fn matches(&self, flow: &Flow) -> bool {
        self.predicates.iter().all(|p| p.matches(flow))
    }

    /// Whether the filter has no non-empty field, and so matches every flow.
    pub fn is_empty(&self) -> bool {
        self.predicates.is_empty()
    }
}

impl fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.predicates.iter()).finish()
    }
}

/// The compiled form of one FlowFilter field.
trait Predicate: fmt::Debug + Send + Sync {
    /// Whether the flow satisfies the field (any of its values).
    fn matches(&self, flow: &Flow) -> bool;

    /// Relative evaluation cost, to order the AND of a filter.
    fn cost(&self) -> Cost;
}

/// Relative evaluation costs, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cost {
    /// Integer or boolean comparisons of flow fields.
    Scalar,
    /// Short string comparisons.
    String,
    /// Address parsing and prefix tests.
    Address,
    /// Regular expressions, label selectors, URL parsing.
    Pattern,
}

/// The sink each dimension's `build` pushes its predicates into.
struct Predicates<'a>(&'a mut Vec<Box<dyn Predicate>>);

impl Predicates<'_> {
    fn push(&mut self, p: impl Predicate + 'static) {
        self.0.push(Box::new(p));
    }
}

/// Which end of a flow a directional field looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn endpoint(self, flow: &Flow) -> Option<&Endpoint> {
        match self {
            Side::Source => flow.source.as_ref(),
            Side::Destination => flow.destination.as_ref(),
        }
    }

    fn service(self, flow: &Flow) -> Option<&Service> {
        match self {
            Side::Source => flow.source_service.as_ref(),
            Side::Destination => flow.destination_service.as_ref(),
        }
    }

    fn names(self, flow: &Flow) -> &[String] {
        match self {
            Side::Source => &flow.source_names,
            Side::Destination => &flow.destination_names,
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::flow::Verdict;
    use rstest::rstest;

    use super::*;
    use crate::testutil::{FlowBuilder, ff};

    fn pod_filter(src: &[&str], dst: &[&str]) -> FlowFilter {
        FlowFilter {
            source_pod: src.iter().map(|s| s.to_string()).collect(),
            destination_pod: dst.iter().map(|s| s.to_string()).collect(),
            ..ff()
        }
    }

    fn xwing_to_deathstar(verdict: Verdict) -> Flow {
        FlowBuilder::new()
            .src_pod("default", "xwing")
            .dst_pod("empire", "deathstar")
            .verdict(verdict)
            .build()
    }

    #[test]
    fn empty_set_matches_everything() {
        let set = FilterSet::compile(&[], &[]).unwrap();
        assert!(set.is_match_all());
        assert!(set.matches(&Flow::default()));
        assert!(FilterSet::match_all().matches(&xwing_to_deathstar(Verdict::Dropped)));
    }

    #[test]
    fn empty_flow_filter_matches_everything() {
        let set = FilterSet::compile(&[ff()], &[]).unwrap();
        assert!(set.is_match_all());
        assert!(set.matches(&Flow::default()));
        assert!(CompiledFilter::compile(&ff()).unwrap().is_empty());
    }

    #[test]
    fn empty_deny_filter_excludes_everything() {
        let set = FilterSet::compile(&[], &[ff()]).unwrap();
        assert!(!set.is_match_all());
        assert!(!set.matches(&Flow::default()));
    }

    #[rstest]
    // Fields of one filter are ANDed.
    #[case::and_both(vec![FlowFilter { verdict: vec![Verdict::Dropped as i32], ..pod_filter(&["xwing"], &[]) }], Verdict::Dropped, true)]
    #[case::and_one_fails(vec![FlowFilter { verdict: vec![Verdict::Forwarded as i32], ..pod_filter(&["xwing"], &[]) }], Verdict::Dropped, false)]
    // Filters of the allow list are ORed (the CLI's left/right pairing).
    #[case::or_left(vec![pod_filter(&["xwing"], &[]), pod_filter(&[], &["xwing"])], Verdict::Dropped, true)]
    #[case::or_right(vec![pod_filter(&["empire/"], &[]), pod_filter(&[], &["empire/"])], Verdict::Dropped, true)]
    #[case::or_none(vec![pod_filter(&["kube-system/"], &[]), pod_filter(&[], &["kube-system/"])], Verdict::Dropped, false)]
    fn whitelist_semantics(
        #[case] allow: Vec<FlowFilter>,
        #[case] verdict: Verdict,
        #[case] want: bool,
    ) {
        let set = FilterSet::compile(&allow, &[]).unwrap();
        assert!(!set.is_match_all());
        assert_eq!(set.matches(&xwing_to_deathstar(verdict)), want);
    }

    #[rstest]
    // `--not --namespace empire` excludes flows touching empire on either side.
    #[case::either_side(vec![pod_filter(&["empire/"], &[]), pod_filter(&[], &["empire/"])], false)]
    // Negated flags share one deny filter: excluded only when all of it matches.
    #[case::all_fields_match(vec![FlowFilter { verdict: vec![Verdict::Dropped as i32], ..pod_filter(&[], &["empire/"]) }], false)]
    #[case::one_field_differs(vec![FlowFilter { verdict: vec![Verdict::Forwarded as i32], ..pod_filter(&[], &["empire/"]) }], true)]
    #[case::unrelated(vec![pod_filter(&["kube-system/"], &[])], true)]
    fn blacklist_semantics(#[case] deny: Vec<FlowFilter>, #[case] want: bool) {
        let set = FilterSet::compile(&[], &deny).unwrap();
        assert_eq!(set.matches(&xwing_to_deathstar(Verdict::Dropped)), want);
    }

    #[test]
    fn allow_and_deny_combine() {
        let allow = [FlowFilter {
            verdict: vec![Verdict::Dropped as i32],
            ..ff()
        }];
        let deny = [pod_filter(&["default/"], &[])];
        let set = FilterSet::compile(&allow, &deny).unwrap();
        assert!(
            !set.matches(&xwing_to_deathstar(Verdict::Dropped)),
            "denied"
        );
        assert!(
            !set.matches(&xwing_to_deathstar(Verdict::Forwarded)),
            "not allowed"
        );
        let other = FlowBuilder::new()
            .src_pod("rebels", "xwing")
            .verdict(Verdict::Dropped)
            .build();
        assert!(set.matches(&other));
    }

    #[test]
    fn errors_in_either_list_fail_compilation() {
        let bad = FlowFilter {
            source_ip: vec!["10.0.0.300".into()],
            ..ff()
        };
        let err = FilterSet::compile(&[], std::slice::from_ref(&bad)).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid source_ip filter "10.0.0.300": invalid IP address or CIDR"#
        );
        assert!(FilterSet::compile(&[ff(), bad], &[]).is_err());
    }

    #[test]
    fn cheap_predicates_are_evaluated_first() {
        let f = FlowFilter {
            http_path: vec!["/x".into()],
            verdict: vec![Verdict::Dropped as i32],
            source_pod: vec!["xwing".into()],
            ..ff()
        };
        let c = CompiledFilter::compile(&f).unwrap();
        let costs: Vec<Cost> = c.predicates.iter().map(|p| p.cost()).collect();
        assert_eq!(costs, vec![Cost::Scalar, Cost::String, Cost::Pattern]);
        assert!(format!("{c:?}").contains("Verdict"));
    }
}
