//! The flow `Summary` string as Hubble prints it for L3/L4 flows: the name of
//! the deepest decoded layer, except for TCP (`TCP Flags: SYN, ACK`, flags in
//! Hubble's order SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS) and ICMP
//! (`ICMPv4 EchoRequest`, `ICMPv6 DestinationUnreachable(PortUnreachable)`,
//! with gopacket's type/code names and `Type(Code: n)` / `t(c)` fallbacks).

use crate::l34::{Headers, Transport};
use crate::packet::tcp_flags as f;

/// Writes the summary of `h` into `out` (cleared first).
pub fn write_summary(h: &Headers, out: &mut String) {
    out.clear();
    summary_parts(h, &mut |p| out.push_str(p));
}

/// Appends the summary of `h` to `out` as bytes (for an encoder writing
/// it straight into its output). A TCP summary (most flows) is copied
/// from a table of every flag combination, built once.
pub fn write_summary_bytes(h: &Headers, out: &mut Vec<u8>) {
    match h.l4 {
        Some(Transport::Tcp {
            flags: Some(bits), ..
        }) => out.extend_from_slice(tcp_summary(bits).as_bytes()),
        _ => summary_parts(h, &mut |p| out.extend_from_slice(p.as_bytes())),
    }
}

/// `TCP Flags: ...` of the flag bits `bits` (NS in bit 8), from the table.
fn tcp_summary(bits: u16) -> &'static str {
    static TABLE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=TCP_FLAG_BITS)
            .map(|b| {
                let mut s = String::from("TCP Flags: ");
                write_tcp_flags(b, &mut s);
                s
            })
            .collect()
    });
    &table[usize::from(bits & TCP_FLAG_BITS)]
}

/// Every TCP flag bit (FIN … CWR, NS in bit 8).
const TCP_FLAG_BITS: u16 = 0x1ff;

/// The summary of `h`, piece by piece, to `put`.
fn summary_parts(h: &Headers, put: &mut impl FnMut(&str)) {
    match h.l4 {
        Some(Transport::Tcp {
            flags: Some(bits), ..
        }) => {
            put("TCP Flags: ");
            tcp_flags_parts(bits, put);
        }
        Some(Transport::Tcp { flags: None, .. }) => put("TCP"),
        Some(Transport::Udp { .. }) => put("UDP"),
        Some(Transport::Sctp { .. }) => put("SCTP"),
        Some(Transport::Icmp4 { ty, code }) => {
            put("ICMPv4 ");
            write_type_code(icmpv4_names(ty, code), ty, code, put);
        }
        Some(Transport::Icmp6 { ty, code }) => {
            put("ICMPv6 ");
            write_type_code(icmpv6_names(ty, code), ty, code, put);
        }
        None => match (h.ip, h.eth) {
            (Some((std::net::IpAddr::V4(_), _)), _) => put("IPv4"),
            (Some((std::net::IpAddr::V6(_), _)), _) => put("IPv6"),
            (None, Some(_)) => put("Ethernet"),
            (None, None) => {}
        },
    }
}

/// The summary of `h` as a new string.
pub fn summary(h: &Headers) -> String {
    let mut s = String::new();
    write_summary(h, &mut s);
    s
}

/// Appends the set TCP flags, comma-separated, in Hubble's order.
pub fn write_tcp_flags(bits: u16, out: &mut String) {
    tcp_flags_parts(bits, &mut |p| out.push_str(p));
}

fn tcp_flags_parts(bits: u16, put: &mut impl FnMut(&str)) {
    const ORDER: [(u16, &str); 9] = [
        (f::SYN, "SYN"),
        (f::ACK, "ACK"),
        (f::RST, "RST"),
        (f::FIN, "FIN"),
        (f::PSH, "PSH"),
        (f::URG, "URG"),
        (f::ECE, "ECE"),
        (f::CWR, "CWR"),
        (f::NS, "NS"),
    ];
    let mut first = true;
    for (bit, name) in ORDER {
        if bits & bit != 0 {
            if !first {
                put(", ");
            }
            put(name);
            first = false;
        }
    }
}

/// A byte in decimal, to `put`.
fn decimal(v: u8, put: &mut impl FnMut(&str)) {
    let mut buf = [0u8; 3];
    let mut at = 3;
    let mut v = v;
    loop {
        at -= 1;
        buf[at] = b'0' + v % 10;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits.
    put(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// What is known about an ICMP type: its name and, if the type uses the code
/// field, the name of this code (`Err(())` when the code is not known).
type Names = Option<(&'static str, Option<Result<&'static str, ()>>)>;

fn write_type_code(names: Names, ty: u8, code: u8, put: &mut impl FnMut(&str)) {
    match names {
        None => {
            decimal(ty, put);
            put("(");
            decimal(code, put);
            put(")");
        }
        Some((t, None)) if code == 0 => put(t),
        Some((t, None | Some(Err(())))) => {
            put(t);
            put("(Code: ");
            decimal(code, put);
            put(")");
        }
        Some((t, Some(Ok(c)))) => {
            put(t);
            put("(");
            put(c);
            put(")");
        }
    }
}

fn icmpv4_names(ty: u8, code: u8) -> Names {
    let coded = |t: &'static str, c: Option<&'static str>| Some((t, Some(c.ok_or(()))));
    match ty {
        0 => Some(("EchoReply", None)),
        3 => coded(
            "DestinationUnreachable",
            [
                "Net",
                "Host",
                "Protocol",
                "Port",
                "FragmentationNeeded",
                "SourceRoutingFailed",
                "NetUnknown",
                "HostUnknown",
                "SourceIsolated",
                "NetAdminProhibited",
                "HostAdminProhibited",
                "NetTOS",
                "HostTOS",
                "CommAdminProhibited",
                "HostPrecedence",
                "PrecedenceCutoff",
            ]
            .get(usize::from(code))
            .copied(),
        ),
        4 => Some(("SourceQuench", None)),
        5 => coded(
            "Redirect",
            ["Net", "Host", "TOS+Net", "TOS+Host"]
                .get(usize::from(code))
                .copied(),
        ),
        8 => Some(("EchoRequest", None)),
        9 => Some(("RouterAdvertisement", None)),
        10 => Some(("RouterSolicitation", None)),
        11 => coded(
            "TimeExceeded",
            ["TTLExceeded", "FragmentReassemblyTimeExceeded"]
                .get(usize::from(code))
                .copied(),
        ),
        12 => coded(
            "ParameterProblem",
            ["PointerIndicatesError", "MissingOption", "BadLength"]
                .get(usize::from(code))
                .copied(),
        ),
        13 => Some(("TimestampRequest", None)),
        14 => Some(("TimestampReply", None)),
        15 => Some(("InfoRequest", None)),
        16 => Some(("InfoReply", None)),
        17 => Some(("AddressMaskRequest", None)),
        18 => Some(("AddressMaskReply", None)),
        _ => None,
    }
}

fn icmpv6_names(ty: u8, code: u8) -> Names {
    let coded = |t: &'static str, c: Option<&'static str>| Some((t, Some(c.ok_or(()))));
    match ty {
        1 => coded(
            "DestinationUnreachable",
            [
                "NoRouteToDst",
                "AdminProhibited",
                "BeyondScopeOfSrc",
                "AddressUnreachable",
                "PortUnreachable",
                "SrcAddressFailedPolicy",
                "RejectRouteToDst",
            ]
            .get(usize::from(code))
            .copied(),
        ),
        2 => Some(("PacketTooBig", None)),
        3 => coded(
            "TimeExceeded",
            ["HopLimitExceeded", "FragmentReassemblyTimeExceeded"]
                .get(usize::from(code))
                .copied(),
        ),
        4 => coded(
            "ParameterProblem",
            [
                "ErroneousHeaderField",
                "UnrecognizedNextHeader",
                "UnrecognizedNextHeader",
            ]
            .get(usize::from(code))
            .copied(),
        ),
        128 => Some(("EchoRequest", None)),
        129 => Some(("EchoReply", None)),
        133 => Some(("RouterSolicitation", None)),
        134 => Some(("RouterAdvertisement", None)),
        135 => Some(("NeighborSolicitation", None)),
        136 => Some(("NeighborAdvertisement", None)),
        137 => Some(("Redirect", None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::net::IpAddr;

    fn with_l4(l4: Transport) -> Headers {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        Headers {
            eth: Some(([0; 6], [0; 6])),
            ip: Some((a, a)),
            l4: Some(l4),
        }
    }

    #[rstest]
    #[case::syn(f::SYN, "TCP Flags: SYN")]
    #[case::syn_ack(f::SYN | f::ACK, "TCP Flags: SYN, ACK")]
    #[case::fin_ack(f::FIN | f::ACK, "TCP Flags: ACK, FIN")]
    #[case::psh_ack(f::PSH | f::ACK, "TCP Flags: ACK, PSH")]
    #[case::rst(f::RST, "TCP Flags: RST")]
    #[case::all(0x1ff, "TCP Flags: SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS")]
    #[case::none(0, "TCP Flags: ")]
    fn tcp(#[case] bits: u16, #[case] want: &str) {
        let h = with_l4(Transport::Tcp {
            sport: 1,
            dport: 2,
            flags: Some(bits),
        });
        assert_eq!(summary(&h), want);
    }

    #[rstest]
    #[case::echo_request(8, 0, "ICMPv4 EchoRequest")]
    #[case::echo_reply(0, 0, "ICMPv4 EchoReply")]
    #[case::port_unreachable(3, 3, "ICMPv4 DestinationUnreachable(Port)")]
    #[case::unknown_code(3, 99, "ICMPv4 DestinationUnreachable(Code: 99)")]
    #[case::stray_code(8, 5, "ICMPv4 EchoRequest(Code: 5)")]
    #[case::ttl(11, 0, "ICMPv4 TimeExceeded(TTLExceeded)")]
    #[case::unknown_type(42, 1, "ICMPv4 42(1)")]
    fn icmpv4(#[case] ty: u8, #[case] code: u8, #[case] want: &str) {
        assert_eq!(summary(&with_l4(Transport::Icmp4 { ty, code })), want);
    }

    #[rstest]
    #[case::echo_request(128, 0, "ICMPv6 EchoRequest")]
    #[case::port_unreachable(1, 4, "ICMPv6 DestinationUnreachable(PortUnreachable)")]
    #[case::neighbor(135, 0, "ICMPv6 NeighborSolicitation")]
    #[case::unknown(200, 0, "ICMPv6 200(0)")]
    fn icmpv6(#[case] ty: u8, #[case] code: u8, #[case] want: &str) {
        assert_eq!(summary(&with_l4(Transport::Icmp6 { ty, code })), want);
    }

    #[test]
    fn bytes_equal_the_string_for_every_shape() {
        let mut shapes = vec![Headers::default()];
        for bits in (0..0x200u16).chain([0xfe12, 0xffff]) {
            shapes.push(with_l4(Transport::Tcp {
                sport: 1,
                dport: 2,
                flags: Some(bits),
            }));
        }
        for ty in 0..=255u8 {
            for code in [0, 1, 3, 4, 9, 15, 99, 100, 255] {
                shapes.push(with_l4(Transport::Icmp4 { ty, code }));
                shapes.push(with_l4(Transport::Icmp6 { ty, code }));
            }
        }
        for h in shapes {
            let mut b = vec![b'x'];
            write_summary_bytes(&h, &mut b);
            assert_eq!(&b[1..], summary(&h).as_bytes());
        }
        assert_eq!(
            summary(&with_l4(Transport::Icmp4 { ty: 200, code: 7 })),
            "ICMPv4 200(7)"
        );
    }

    #[test]
    fn layer_names() {
        assert_eq!(
            summary(&with_l4(Transport::Udp {
                sport: 1,
                dport: 53
            })),
            "UDP"
        );
        assert_eq!(
            summary(&with_l4(Transport::Sctp { sport: 1, dport: 2 })),
            "SCTP"
        );
        let mut h = with_l4(Transport::Udp { sport: 1, dport: 2 });
        h.l4 = None;
        assert_eq!(summary(&h), "IPv4");
        h.ip = Some(("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap()));
        assert_eq!(summary(&h), "IPv6");
        h.ip = None;
        assert_eq!(summary(&h), "Ethernet");
        assert_eq!(summary(&Headers::default()), "");
    }
}
