//! `source_ip`, `destination_ip`, `source_ip_xlated`: an exact address or a
//! CIDR, IPv4 or IPv6. Invalid values are rejected at compile time.

use std::net::IpAddr;

use ipnet::IpNet;
use proto::flow::{Flow, FlowFilter, Ip};

use crate::{Cost, FilterError, Predicate, Predicates};

/// Which address of the IP header a filter reads.
#[derive(Debug, Clone, Copy)]
enum Field {
    Source,
    Destination,
    SourceXlated,
}

impl Field {
    fn get(self, ip: &Ip) -> &str {
        match self {
            Field::Source => &ip.source,
            Field::Destination => &ip.destination,
            Field::SourceXlated => &ip.source_xlated,
        }
    }
}

#[derive(Debug)]
struct IpFilter {
    field: Field,
    /// Exact addresses, as sent and parsed: the string is compared first
    /// (upstream compares strings), the address catches other spellings.
    addresses: Vec<(String, IpAddr)>,
    networks: Vec<IpNet>,
}

impl Predicate for IpFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(ip) = flow.ip.as_ref() else {
            return false;
        };
        let text = self.field.get(ip);
        if text.is_empty() {
            return false;
        }
        if self.addresses.iter().any(|(s, _)| s == text) {
            return true;
        }
        let Ok(addr) = text.parse::<IpAddr>() else {
            return false;
        };
        self.addresses.iter().any(|(_, a)| *a == addr)
            || self.networks.iter().any(|n| n.contains(&addr))
    }

    fn cost(&self) -> Cost {
        Cost::Address
    }
}

fn compile(name: &'static str, field: Field, values: &[String]) -> Result<IpFilter, FilterError> {
    let mut f = IpFilter {
        field,
        addresses: Vec::new(),
        networks: Vec::new(),
    };
    for v in values {
        if v.contains('/') {
            let net = v
                .parse::<IpNet>()
                .map_err(|_| FilterError::invalid(name, v, "invalid CIDR"))?;
            f.networks.push(net);
        } else {
            let addr = v
                .parse::<IpAddr>()
                .map_err(|_| FilterError::invalid(name, v, "invalid IP address or CIDR"))?;
            f.addresses.push((v.clone(), addr));
        }
    }
    Ok(f)
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (name, field, values) in [
        ("source_ip", Field::Source, &f.source_ip),
        ("destination_ip", Field::Destination, &f.destination_ip),
        ("source_ip_xlated", Field::SourceXlated, &f.source_ip_xlated),
    ] {
        if !values.is_empty() {
            out.push(compile(name, field, values)?);
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
            source_ip: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_ip: strings(v),
            ..ff()
        }
    }

    #[rstest]
    #[case::exact_v4(&["10.0.0.1"], "10.0.0.1", true)]
    #[case::other_v4(&["10.0.0.2"], "10.0.0.1", false)]
    #[case::one_of(&["10.0.0.2", "10.0.0.1"], "10.0.0.1", true)]
    #[case::cidr_v4(&["10.0.0.0/24"], "10.0.0.1", true)]
    #[case::cidr_v4_outside(&["10.0.1.0/24"], "10.0.0.1", false)]
    #[case::cidr_unmasked(&["10.0.0.77/24"], "10.0.0.1", true)]
    #[case::cidr_all(&["0.0.0.0/0"], "192.168.1.1", true)]
    #[case::exact_v6(&["2001:db8::1"], "2001:db8::1", true)]
    #[case::v6_other_spelling(&["2001:DB8:0::1"], "2001:db8::1", true)]
    #[case::cidr_v6(&["2001:db8::/32"], "2001:db8::1", true)]
    #[case::cidr_v6_vs_v4(&["::/0"], "10.0.0.1", false)]
    #[case::cidr_v4_vs_v6(&["0.0.0.0/0"], "2001:db8::1", false)]
    #[case::no_address(&["0.0.0.0/0"], "", false)]
    fn source_ip(#[case] values: &[&str], #[case] ip: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().src_ip(ip).dst_ip("192.0.2.1").build();
        check(&[src(values)], &flow, want);
    }

    #[rstest]
    #[case::destination(vec![dst(&["192.0.2.1"])], true)]
    #[case::destination_not_source(vec![dst(&["10.0.0.1"])], false)]
    #[case::both(vec![FlowFilter { source_ip: strings(&["10.0.0.1"]), destination_ip: strings(&["192.0.2.0/24"]), ..ff() }], true)]
    #[case::both_one_fails(vec![FlowFilter { source_ip: strings(&["10.0.0.1"]), destination_ip: strings(&["10.0.0.1"]), ..ff() }], false)]
    #[case::either_side_left(vec![src(&["10.0.0.1"]), dst(&["10.0.0.1"])], true)]
    #[case::either_side_right(vec![src(&["192.0.2.1"]), dst(&["192.0.2.1"])], true)]
    #[case::either_side_none(vec![src(&["172.16.0.1"]), dst(&["172.16.0.1"])], false)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_ip("10.0.0.1")
            .dst_ip("192.0.2.1")
            .build();
        check(&filters, &flow, want);
    }

    #[rstest]
    #[case::exact(&["198.51.100.7"], true)]
    #[case::cidr(&["198.51.100.0/24"], true)]
    #[case::original_source_is_not_xlated(&["10.0.0.1"], false)]
    fn source_ip_xlated(#[case] values: &[&str], #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_ip("10.0.0.1")
            .src_ip_xlated("198.51.100.7")
            .build();
        let f = FlowFilter {
            source_ip_xlated: strings(values),
            ..ff()
        };
        assert_eq!(allows(&[f], &flow), want);
        let unset = FlowBuilder::new().src_ip("198.51.100.7").build();
        assert!(!allows(
            &[FlowFilter {
                source_ip_xlated: strings(values),
                ..ff()
            }],
            &unset
        ));
    }

    #[test]
    fn flow_without_ip_never_matches() {
        assert!(!allows(&[src(&["0.0.0.0/0"])], &FlowBuilder::new().build()));
    }

    #[rstest]
    #[case::bad_octet("source_ip", "10.0.0.300", "invalid IP address or CIDR")]
    #[case::hostname("source_ip", "localhost", "invalid IP address or CIDR")]
    #[case::empty("destination_ip", "", "invalid IP address or CIDR")]
    #[case::bad_prefix_len("destination_ip", "10.0.0.0/33", "invalid CIDR")]
    #[case::bad_cidr("source_ip_xlated", "10.0.0/8", "invalid CIDR")]
    #[case::v6_bad_prefix("source_ip", "2001:db8::/129", "invalid CIDR")]
    fn invalid(#[case] field: &str, #[case] value: &str, #[case] reason: &str) {
        let mut f = ff();
        match field {
            "source_ip" => f.source_ip = strings(&["10.0.0.1", value]),
            "destination_ip" => f.destination_ip = strings(&[value]),
            _ => f.source_ip_xlated = strings(&[value]),
        }
        let err = compile_error(f);
        assert_eq!(err.field(), field);
        assert_eq!(err.value(), Some(value));
        assert_eq!(
            err.to_string(),
            format!("invalid {field} filter {value:?}: {reason}")
        );
    }
}
