//! `tcp_flags`: a TCP flow matches when it has every flag set in at least
//! one of the values (`syn,ack` in one value means both; several values are
//! alternatives). Other flows, and TCP flows without flags, never match.

use proto::flow::{Flow, FlowFilter, TcpFlags, layer4};

use crate::{Cost, FilterError, Predicate, Predicates};

/// The nine flags as a bit set.
fn bits(f: &TcpFlags) -> u16 {
    [f.fin, f.syn, f.rst, f.psh, f.ack, f.urg, f.ece, f.cwr, f.ns]
        .iter()
        .enumerate()
        .fold(0, |acc, (i, set)| acc | (u16::from(*set) << i))
}

#[derive(Debug)]
struct TcpFlagsFilter(Vec<u16>);

impl Predicate for TcpFlagsFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(layer4::Protocol::Tcp(tcp)) = flow.l4.as_ref().and_then(|l| l.protocol.as_ref())
        else {
            return false;
        };
        let Some(flags) = tcp.flags.as_ref() else {
            return false;
        };
        let have = bits(flags);
        self.0.iter().any(|want| have & want == *want)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.tcp_flags.is_empty() {
        out.push(TcpFlagsFilter(f.tcp_flags.iter().map(bits).collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{Flow, FlowFilter, TcpFlags};
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, allows, check, ff};

    fn flags(names: &str) -> TcpFlags {
        let mut f = TcpFlags::default();
        for n in names.split(',').filter(|s| !s.is_empty()) {
            match n {
                "fin" => f.fin = true,
                "syn" => f.syn = true,
                "rst" => f.rst = true,
                "psh" => f.psh = true,
                "ack" => f.ack = true,
                "urg" => f.urg = true,
                "ece" => f.ece = true,
                "cwr" => f.cwr = true,
                "ns" => f.ns = true,
                other => panic!("{other}"),
            }
        }
        f
    }

    #[rstest]
    #[case::syn(&["syn"], "syn", true)]
    #[case::syn_in_synack(&["syn"], "syn,ack", true)]
    #[case::synack_needs_both(&["syn,ack"], "syn", false)]
    #[case::synack(&["syn,ack"], "syn,ack", true)]
    #[case::alternatives(&["fin", "rst"], "rst,ack", true)]
    #[case::alternatives_none(&["fin", "rst"], "syn,ack", false)]
    #[case::every_flag(&["fin,syn,rst,psh,ack,urg,ece,cwr,ns"], "fin,syn,rst,psh,ack,urg,ece,cwr,ns", true)]
    #[case::ns(&["ns"], "cwr,ece", false)]
    #[case::empty_value_matches_any_flags(&[""], "", true)]
    fn tcp_flags(#[case] values: &[&str], #[case] flow_flags: &str, #[case] want: bool) {
        let flow = FlowBuilder::new().tcp_flags(flow_flags).build();
        let f = FlowFilter {
            tcp_flags: values.iter().map(|v| flags(v)).collect(),
            ..ff()
        };
        check(&[f], &flow, want);
    }

    #[rstest]
    #[case::udp(FlowBuilder::new().udp(1, 2).build())]
    #[case::tcp_without_flags(FlowBuilder::new().tcp(1, 2).build())]
    #[case::no_l4(FlowBuilder::new().build())]
    fn only_tcp_flows_with_flags(#[case] flow: Flow) {
        assert!(!allows(
            &[FlowFilter {
                tcp_flags: vec![flags("")],
                ..ff()
            }],
            &flow
        ));
    }
}
