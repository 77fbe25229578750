//! `ip_version`: IPv4, IPv6, or IP_NOT_USED (which also matches flows
//! without an IP header, as upstream reads a missing IP as version 0).

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct IpVersionFilter(Vec<i32>);

impl Predicate for IpVersionFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let version = flow.ip.as_ref().map_or(0, |ip| ip.ip_version);
        self.0.contains(&version)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.ip_version.is_empty() {
        out.push(IpVersionFilter(f.ip_version.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{FlowFilter, IpVersion};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    fn versions(v: &[IpVersion]) -> FlowFilter {
        FlowFilter {
            ip_version: v.iter().map(|v| *v as i32).collect(),
            ..ff()
        }
    }

    #[rstest]
    #[case::v4(&[IpVersion::IPv4], Some(IpVersion::IPv4), true)]
    #[case::v6_vs_v4(&[IpVersion::IPv6], Some(IpVersion::IPv4), false)]
    #[case::both(&[IpVersion::IPv4, IpVersion::IPv6], Some(IpVersion::IPv6), true)]
    #[case::no_ip_header(&[IpVersion::IPv4], None, false)]
    #[case::not_used_matches_missing_ip(&[IpVersion::IpNotUsed], None, true)]
    fn ip_version(
        #[case] values: &[IpVersion],
        #[case] version: Option<IpVersion>,
        #[case] want: bool,
    ) {
        let b = FlowBuilder::new();
        let flow = match version {
            Some(v) => b.ip_version(v),
            None => b,
        }
        .build();
        check(&[versions(values)], &flow, want);
    }
}
