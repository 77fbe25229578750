//! `source_port`, `destination_port`: decimal port numbers against the
//! ports of TCP, UDP and SCTP flows.

use proto::flow::{Flow, FlowFilter, layer4};

use crate::{Cost, FilterError, Predicate, Predicates, Side};

#[derive(Debug)]
struct PortFilter {
    side: Side,
    ports: Vec<u16>,
}

/// The port of one side of a TCP, UDP or SCTP flow. Ports above 65535
/// cannot occur on the wire; they are truncated as upstream does.
fn port(flow: &Flow, side: Side) -> Option<u16> {
    let (src, dst) = match flow.l4.as_ref()?.protocol.as_ref()? {
        layer4::Protocol::Tcp(t) => (t.source_port, t.destination_port),
        layer4::Protocol::Udp(u) => (u.source_port, u.destination_port),
        layer4::Protocol::Sctp(s) => (s.source_port, s.destination_port),
        _ => return None,
    };
    let p = match side {
        Side::Source => src,
        Side::Destination => dst,
    };
    Some(p as u16)
}

impl Predicate for PortFilter {
    fn matches(&self, flow: &Flow) -> bool {
        port(flow, self.side).is_some_and(|p| self.ports.contains(&p))
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

/// Go's `strconv.ParseUint(s, 10, 16)`: ASCII digits only, no sign.
fn parse_port(s: &str) -> Result<u16, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    s.parse::<u16>().map_err(|_| "out of range (0-65535)")
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    for (field, side, values) in [
        ("source_port", Side::Source, &f.source_port),
        ("destination_port", Side::Destination, &f.destination_port),
    ] {
        if values.is_empty() {
            continue;
        }
        let ports = values
            .iter()
            .map(|v| {
                parse_port(v)
                    .map_err(|why| FilterError::invalid(field, v, format!("invalid port: {why}")))
            })
            .collect::<Result<_, _>>()?;
        out.push(PortFilter { side, ports });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{Flow, FlowFilter};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, compile_error, ff, strings};

    fn src(v: &[&str]) -> FlowFilter {
        FlowFilter {
            source_port: strings(v),
            ..ff()
        }
    }

    fn dst(v: &[&str]) -> FlowFilter {
        FlowFilter {
            destination_port: strings(v),
            ..ff()
        }
    }

    #[rstest]
    #[case::tcp(FlowBuilder::new().tcp(34567, 80).build(), &["80"], true)]
    #[case::udp(FlowBuilder::new().udp(34567, 53).build(), &["53"], true)]
    #[case::sctp(FlowBuilder::new().sctp(34567, 9999).build(), &["9999"], true)]
    #[case::one_of(FlowBuilder::new().tcp(34567, 443).build(), &["80", "443"], true)]
    #[case::other(FlowBuilder::new().tcp(34567, 8080).build(), &["80"], false)]
    #[case::leading_zeros(FlowBuilder::new().tcp(34567, 80).build(), &["0080"], true)]
    #[case::zero(FlowBuilder::new().tcp(34567, 0).build(), &["0"], true)]
    #[case::icmp_has_no_port(FlowBuilder::new().icmpv4().build(), &["0"], false)]
    #[case::no_l4(FlowBuilder::new().build(), &["0"], false)]
    fn destination_port(#[case] flow: Flow, #[case] values: &[&str], #[case] want: bool) {
        check(&[dst(values)], &flow, want);
    }

    #[rstest]
    // `--port 80 --ip X` style pairing: (sport ∧ …) ∨ (dport ∧ …).
    #[case::source(vec![src(&["34567"])], true)]
    #[case::source_not_destination(vec![src(&["80"])], false)]
    #[case::either_side_left(vec![src(&["34567"]), dst(&["34567"])], true)]
    #[case::either_side_right(vec![src(&["80"]), dst(&["80"])], true)]
    #[case::either_side_none(vec![src(&["22"]), dst(&["22"])], false)]
    #[case::both(vec![FlowFilter { source_port: strings(&["34567"]), destination_port: strings(&["80"]), ..ff() }], true)]
    #[case::paired_with_ip(vec![
        FlowFilter { source_port: strings(&["80"]), source_ip: strings(&["10.0.0.1"]), ..ff() },
        FlowFilter { destination_port: strings(&["80"]), destination_ip: strings(&["10.0.0.1"]), ..ff() },
    ], false)]
    fn directions(#[case] filters: Vec<FlowFilter>, #[case] want: bool) {
        let flow = FlowBuilder::new()
            .src_ip("10.0.0.1")
            .dst_ip("10.0.0.2")
            .tcp(34567, 80)
            .build();
        check(&filters, &flow, want);
    }

    #[rstest]
    #[case::too_big("65536", "invalid port: out of range (0-65535)")]
    #[case::negative("-1", "invalid port: not a decimal number")]
    #[case::plus("+80", "invalid port: not a decimal number")]
    #[case::name("http", "invalid port: not a decimal number")]
    #[case::empty("", "invalid port: not a decimal number")]
    #[case::space(" 80", "invalid port: not a decimal number")]
    #[case::range("80-90", "invalid port: not a decimal number")]
    fn invalid(#[case] value: &str, #[case] reason: &str) {
        let err = compile_error(src(&["80", value]));
        assert_eq!(
            err.to_string(),
            format!("invalid source_port filter {value:?}: {reason}")
        );
        let err = compile_error(dst(&[value]));
        assert_eq!(err.field(), "destination_port");
    }
}
