//! `protocol`: L4 (tcp, udp, sctp, icmp = icmpv4 or icmpv6, icmpv4, icmpv6,
//! vrrp, igmp) or L7 (dns, http, kafka) protocol names, case-insensitive.
//! Unknown names are rejected.

use proto::flow::{Flow, FlowFilter, layer4, layer7};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    IcmpV4,
    IcmpV6,
    Vrrp,
    Igmp,
    Dns,
    Http,
    Kafka,
}

impl Protocol {
    fn parse(name: &str) -> Option<Protocol> {
        Some(match name.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            "icmp" => Protocol::Icmp,
            "icmpv4" => Protocol::IcmpV4,
            "icmpv6" => Protocol::IcmpV6,
            "vrrp" => Protocol::Vrrp,
            "igmp" => Protocol::Igmp,
            "dns" => Protocol::Dns,
            "http" => Protocol::Http,
            // Dropped from upstream's list with the deprecated Kafka parser,
            // but still documented by the CLI; it matches Kafka records.
            "kafka" => Protocol::Kafka,
            _ => return None,
        })
    }

    fn matches(self, flow: &Flow) -> bool {
        use layer4::Protocol as L4;
        let l4 = flow.l4.as_ref().and_then(|l| l.protocol.as_ref());
        let l7 = flow.l7.as_ref().and_then(|l| l.record.as_ref());
        match self {
            Protocol::Tcp => matches!(l4, Some(L4::Tcp(_))),
            Protocol::Udp => matches!(l4, Some(L4::Udp(_))),
            Protocol::Sctp => matches!(l4, Some(L4::Sctp(_))),
            Protocol::Icmp => matches!(l4, Some(L4::IcmPv4(_) | L4::IcmPv6(_))),
            Protocol::IcmpV4 => matches!(l4, Some(L4::IcmPv4(_))),
            Protocol::IcmpV6 => matches!(l4, Some(L4::IcmPv6(_))),
            Protocol::Vrrp => matches!(l4, Some(L4::Vrrp(_))),
            Protocol::Igmp => matches!(l4, Some(L4::Igmp(_))),
            Protocol::Dns => matches!(l7, Some(layer7::Record::Dns(_))),
            Protocol::Http => matches!(l7, Some(layer7::Record::Http(_))),
            #[expect(
                deprecated,
                reason = "Kafka records are deprecated upstream but still filterable"
            )]
            Protocol::Kafka => matches!(l7, Some(layer7::Record::Kafka(_))),
        }
    }
}

#[derive(Debug)]
struct ProtocolFilter(Vec<Protocol>);

impl Predicate for ProtocolFilter {
    fn matches(&self, flow: &Flow) -> bool {
        self.0.iter().any(|p| p.matches(flow))
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.protocol.is_empty() {
        let protocols = f
            .protocol
            .iter()
            .map(|p| {
                Protocol::parse(p)
                    .ok_or_else(|| FilterError::invalid("protocol", p, "unknown protocol"))
            })
            .collect::<Result<_, _>>()?;
        out.push(ProtocolFilter(protocols));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{Flow, FlowFilter};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, compile_error, ff, strings};

    #[rstest]
    #[case::tcp(FlowBuilder::new().tcp(1, 2).build(), &["tcp"], true)]
    #[case::tcp_uppercase(FlowBuilder::new().tcp(1, 2).build(), &["TCP"], true)]
    #[case::tcp_vs_udp(FlowBuilder::new().udp(1, 2).build(), &["tcp"], false)]
    #[case::udp(FlowBuilder::new().udp(1, 2).build(), &["udp"], true)]
    #[case::sctp(FlowBuilder::new().sctp(1, 2).build(), &["sctp"], true)]
    #[case::icmp_v4(FlowBuilder::new().icmpv4().build(), &["icmp"], true)]
    #[case::icmp_v6(FlowBuilder::new().icmpv6().build(), &["icmp"], true)]
    #[case::icmpv4(FlowBuilder::new().icmpv4().build(), &["icmpv4"], true)]
    #[case::icmpv4_vs_v6(FlowBuilder::new().icmpv6().build(), &["icmpv4"], false)]
    #[case::icmpv6(FlowBuilder::new().icmpv6().build(), &["ICMPv6"], true)]
    #[case::vrrp(FlowBuilder::new().vrrp().build(), &["vrrp"], true)]
    #[case::igmp(FlowBuilder::new().igmp().build(), &["igmp"], true)]
    #[case::dns(FlowBuilder::new().udp(1, 53).dns("cilium.io.").build(), &["dns"], true)]
    #[case::dns_is_also_udp(FlowBuilder::new().udp(1, 53).dns("cilium.io.").build(), &["udp"], true)]
    #[case::http(FlowBuilder::new().http(200, "GET", "/", &[]).build(), &["http"], true)]
    #[case::http_vs_dns(FlowBuilder::new().http(200, "GET", "/", &[]).build(), &["dns"], false)]
    #[case::kafka(FlowBuilder::new().kafka().build(), &["kafka"], true)]
    #[case::one_of(FlowBuilder::new().udp(1, 2).build(), &["tcp", "udp"], true)]
    #[case::no_l4(FlowBuilder::new().build(), &["tcp", "udp", "icmp", "dns", "http"], false)]
    fn protocol(#[case] flow: Flow, #[case] values: &[&str], #[case] want: bool) {
        let f = FlowFilter {
            protocol: strings(values),
            ..ff()
        };
        check(&[f], &flow, want);
    }

    #[rstest]
    #[case::unknown("quic")]
    #[case::empty("")]
    #[case::number("6")]
    fn invalid(#[case] value: &str) {
        let err = compile_error(FlowFilter {
            protocol: strings(&["tcp", value]),
            ..ff()
        });
        assert_eq!(
            err.to_string(),
            format!("invalid protocol filter {value:?}: unknown protocol")
        );
    }
}
