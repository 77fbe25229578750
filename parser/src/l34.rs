//! Layers 2–4 from captured packet bytes: Ethernet (with up to
//! [`MAX_VLAN_TAGS`] VLAN tags), IPv4, IPv6 (walking extension headers),
//! TCP, UDP, SCTP, ICMPv4 and ICMPv6.
//!
//! Decoding is total: a truncated or malformed packet yields every layer that
//! could be read in full enough to be meaningful (addresses, then ports, then
//! flags) and stops there. Nothing here allocates or panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::flow::{
    Ethernet, IcmPv4, IcmPv6, Ip, IpVersion, Layer4, Sctp, Tcp, TcpFlags, Udp, layer4,
};

use crate::defaults::{MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_SCTP: u8 = 132;

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;

/// The transport header, as far as it was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP; `flags` (bits as in [`crate::packet::tcp_flags`]) is `None` when
    /// the capture ends before the flags byte.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flag bits, NS in bit 8.
        flags: Option<u16>,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// SCTP.
    Sctp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMPv4.
    Icmp4 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// ICMPv6.
    Icmp6 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
}

impl Transport {
    /// `(source, destination)` ports, `(0, 0)` for ICMP.
    pub fn ports(&self) -> (u16, u16) {
        match *self {
            Transport::Tcp { sport, dport, .. }
            | Transport::Udp { sport, dport }
            | Transport::Sctp { sport, dport } => (sport, dport),
            Transport::Icmp4 { .. } | Transport::Icmp6 { .. } => (0, 0),
        }
    }
}

/// Decoded headers of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers {
    /// `(source, destination)` MACs.
    pub eth: Option<([u8; 6], [u8; 6])>,
    /// `(source, destination)` addresses.
    pub ip: Option<(IpAddr, IpAddr)>,
    /// The transport header.
    pub l4: Option<Transport>,
}

impl Headers {
    /// Decodes `pkt`, which starts with an Ethernet header, or with the IP
    /// header when `l3` is true.
    pub fn decode(pkt: &[u8], l3: bool) -> Self {
        let mut h = Headers::default();
        if l3 {
            decode_ip(pkt, &mut h);
            return h;
        }
        if pkt.len() < ETH_HLEN {
            return h;
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&pkt[0..6]);
        src.copy_from_slice(&pkt[6..12]);
        h.eth = Some((src, dst));
        let mut proto = be16(pkt, 12);
        let mut off = ETH_HLEN;
        for _ in 0..MAX_VLAN_TAGS {
            if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
                break;
            }
            if pkt.len() < off + 4 {
                return h;
            }
            proto = be16(pkt, off + 2);
            off += 4;
        }
        let rest = &pkt[off..];
        match proto {
            ETH_P_IP => decode_ipv4(rest, &mut h),
            ETH_P_IPV6 => decode_ipv6(rest, &mut h),
            _ => {}
        }
        h
    }

    /// The IP version of the packet, or `IP_NOT_USED`.
    pub fn ip_version(&self) -> IpVersion {
        match self.ip {
            Some((IpAddr::V4(_), _)) => IpVersion::IPv4,
            Some((IpAddr::V6(_), _)) => IpVersion::IPv6,
            None => IpVersion::IpNotUsed,
        }
    }

    /// The `flow.Ethernet` message.
    pub fn ethernet_proto(&self) -> Option<Ethernet> {
        self.eth.map(|(s, d)| Ethernet {
            source: fmt_mac(&s),
            destination: fmt_mac(&d),
        })
    }

    /// The `flow.IP` message.
    pub fn ip_proto(&self) -> Option<Ip> {
        self.ip.map(|(s, d)| Ip {
            source: fmt_ip(s),
            destination: fmt_ip(d),
            ip_version: self.ip_version() as i32,
            ..Ip::default()
        })
    }

    /// [`Headers::ethernet_proto`] written over `to`, reusing its strings.
    pub fn ethernet_into(&self, to: &mut Option<Ethernet>) {
        let Some((s, d)) = self.eth else {
            *to = None;
            return;
        };
        let Ethernet {
            source,
            destination,
        } = to.get_or_insert_with(Ethernet::default);
        write_mac(source, &s);
        write_mac(destination, &d);
    }

    /// [`Headers::ip_proto`] written over `to`, reusing its strings.
    pub fn ip_into(&self, to: &mut Option<Ip>) {
        self.ip_version_into(to);
        if let (Some((s, d)), Some(ip)) = (self.ip, to.as_mut()) {
            write_ip(&mut ip.source, s);
            write_ip(&mut ip.destination, d);
        }
    }

    /// [`Headers::ip_into`] with the addresses left empty: the version
    /// only, for a flow whose addresses are written elsewhere
    /// ([`crate::FlowText`]).
    pub fn ip_version_into(&self, to: &mut Option<Ip>) {
        if self.ip.is_none() {
            *to = None;
            return;
        }
        let version = self.ip_version() as i32;
        // Every field, by name: one added to `Ip` fails to compile here.
        let Ip {
            source,
            source_xlated,
            destination,
            ip_version,
            encrypted,
        } = to.get_or_insert_with(Ip::default);
        source.clear();
        source_xlated.clear();
        destination.clear();
        *ip_version = version;
        *encrypted = false;
    }

    /// The `flow.Layer4` message.
    pub fn l4_proto(&self) -> Option<Layer4> {
        let protocol = match self.l4? {
            Transport::Tcp {
                sport,
                dport,
                flags,
            } => layer4::Protocol::Tcp(Tcp {
                source_port: sport.into(),
                destination_port: dport.into(),
                flags: flags.map(tcp_flags_proto),
            }),
            Transport::Udp { sport, dport } => layer4::Protocol::Udp(Udp {
                source_port: sport.into(),
                destination_port: dport.into(),
            }),
            Transport::Sctp { sport, dport } => layer4::Protocol::Sctp(Sctp {
                source_port: sport.into(),
                destination_port: dport.into(),
            }),
            Transport::Icmp4 { ty, code } => layer4::Protocol::IcmPv4(IcmPv4 {
                r#type: ty.into(),
                code: code.into(),
            }),
            Transport::Icmp6 { ty, code } => layer4::Protocol::IcmPv6(IcmPv6 {
                r#type: ty.into(),
                code: code.into(),
            }),
        };
        Some(Layer4 {
            protocol: Some(protocol),
        })
    }
}

/// `flow.TCPFlags` from flag bits (NS in bit 8).
pub fn tcp_flags_proto(bits: u16) -> TcpFlags {
    use crate::packet::tcp_flags as f;
    TcpFlags {
        fin: bits & f::FIN != 0,
        syn: bits & f::SYN != 0,
        rst: bits & f::RST != 0,
        psh: bits & f::PSH != 0,
        ack: bits & f::ACK != 0,
        urg: bits & f::URG != 0,
        ece: bits & f::ECE != 0,
        cwr: bits & f::CWR != 0,
        ns: bits & f::NS != 0,
    }
}

/// Lowercase colon-separated MAC, as Go's `net.HardwareAddr.String()`.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    let mut s = String::with_capacity(17);
    write_mac(&mut s, m);
    s
}

/// Lowercase hex digit pairs of every byte value.
pub(crate) const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Decimal text of every byte value, left-aligned, and its length.
const DECIMAL: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let v = i as u8;
        t[i] = if v >= 100 {
            ([b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10], 3)
        } else if v >= 10 {
            ([b'0' + v / 10, b'0' + v % 10, 0], 2)
        } else {
            ([b'0' + v, 0, 0], 1)
        };
        i += 1;
    }
    t
};

/// Appends [`fmt_mac`]'s text (17 bytes) to `out`, written in place (no
/// stack buffer copied: reading back a buffer just written byte by byte
/// stalls the copy).
#[inline]
pub fn write_mac_bytes(m: &[u8; 6], out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + 17, b':');
    let dst = &mut out[at..at + 17];
    for (i, b) in m.iter().enumerate() {
        dst[i * 3..i * 3 + 2].copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

/// [`fmt_mac`] into `s`, replacing its contents.
fn write_mac(s: &mut String, m: &[u8; 6]) {
    let mut b = std::mem::take(s).into_bytes();
    b.clear();
    write_mac_bytes(m, &mut b);
    // Hex digits and colons: ASCII.
    *s = String::from_utf8(b).unwrap_or_default();
}

/// Lowercase hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends [`fmt_ip`]'s text to `out`, written in place digit by digit
/// rather than through `core::fmt` (which cost ~7 % of ingest); the text
/// is the same as `Display`'s (a test compares them over random IPv4,
/// IPv4-mapped and IPv6 addresses and every pattern of zero groups).
#[inline]
pub fn write_ip_bytes(a: IpAddr, out: &mut Vec<u8>) {
    match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => write_ipv4_bytes(v4, out),
            None => write_ipv6_bytes(v6, out),
        },
        IpAddr::V4(v4) => write_ipv4_bytes(v4, out),
    }
}

/// Dotted quad, as `Ipv4Addr`'s `Display`.
#[inline]
fn write_ipv4_bytes(a: Ipv4Addr, out: &mut Vec<u8>) {
    let at = out.len();
    // At most 15 bytes; each octet copies 3 (the unused ones are
    // overwritten by the next or cut off).
    out.resize(at + 16, 0);
    let dst = &mut out[at..at + 16];
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            dst[n] = b'.';
            n += 1;
        }
        let (digits, len) = &DECIMAL[usize::from(o)];
        dst[n..n + 3].copy_from_slice(digits);
        n += usize::from(*len);
    }
    out.truncate(at + n);
}

/// RFC 5952 text, as `Ipv6Addr`'s `Display` for an address that is not
/// IPv4-mapped: lowercase hex groups without leading zeros, the first
/// longest run of two or more zero groups written as `::`.
fn write_ipv6_bytes(a: Ipv6Addr, out: &mut Vec<u8>) {
    let g = a.segments();
    // The first longest run of zero groups.
    let (mut best_at, mut best_len) = (0, 0);
    let mut i = 0;
    while i < 8 {
        if g[i] == 0 {
            let start = i;
            while i < 8 && g[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best_at, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    let at = out.len();
    out.resize(at + 39, 0);
    let dst = &mut out[at..at + 39];
    let mut n = 0;
    if best_len > 1 {
        hex_groups(dst, &mut n, &g[..best_at]);
        dst[n..n + 2].copy_from_slice(b"::");
        n += 2;
        hex_groups(dst, &mut n, &g[best_at + best_len..]);
    } else {
        hex_groups(dst, &mut n, &g);
    }
    out.truncate(at + n);
}

/// IPv6 groups in hex without leading zeros, colon-separated, into
/// `dst` at `n`.
fn hex_groups(dst: &mut [u8], n: &mut usize, gs: &[u16]) {
    for (k, &v) in gs.iter().enumerate() {
        if k > 0 {
            dst[*n] = b':';
            *n += 1;
        }
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let d = (v >> shift) & 0xf;
            if started || d != 0 || shift == 0 {
                started = true;
                dst[*n] = HEX[usize::from(d)];
                *n += 1;
            }
        }
    }
}

/// [`fmt_ip`] into `s`, replacing its contents.
fn write_ip(s: &mut String, a: IpAddr) {
    let mut b = std::mem::take(s).into_bytes();
    b.clear();
    write_ip_bytes(a, &mut b);
    // Digits, hex digits, dots and colons: ASCII.
    *s = String::from_utf8(b).unwrap_or_default();
}

/// An address as Go's `net.IP.String()` prints it: IPv4-mapped IPv6
/// addresses print as dotted quads.
pub fn fmt_ip(a: IpAddr) -> String {
    let mut s = String::new();
    write_ip(&mut s, a);
    s
}

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

fn decode_ip(pkt: &[u8], h: &mut Headers) {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(pkt, h),
        Some(6) => decode_ipv6(pkt, h),
        _ => {}
    }
}

fn decode_ipv4(b: &[u8], h: &mut Headers) {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if ihl < 20 {
        return;
    }
    let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    let dst = Ipv4Addr::new(b[16], b[17], b[18], b[19]);
    h.ip = Some((src.into(), dst.into()));
    let frag_off = be16(b, 6) & 0x1fff;
    if frag_off != 0 || b.len() < ihl {
        // A non-first fragment carries no L4 header.
        return;
    }
    decode_l4(b[9], &b[ihl..], false, h);
}

fn decode_ipv6(b: &[u8], h: &mut Headers) {
    if b.len() < 40 || b[0] >> 4 != 6 {
        return;
    }
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&b[8..24]);
    d.copy_from_slice(&b[24..40]);
    h.ip = Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()));
    let mut next = b[6];
    let mut off = 40;
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        let rest = &b[off..];
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                if rest.len() < 2 {
                    return;
                }
                (usize::from(rest[1]) + 1) * 8
            }
            NEXTHDR_FRAGMENT => {
                if rest.len() < 8 {
                    return;
                }
                if be16(rest, 2) >> 3 != 0 {
                    return; // non-first fragment
                }
                8
            }
            NEXTHDR_AUTH => {
                if rest.len() < 2 {
                    return;
                }
                (usize::from(rest[1]) + 2) * 4
            }
            l4 => {
                decode_l4(l4, rest, true, h);
                return;
            }
        };
        if rest.len() < len {
            return;
        }
        next = rest[0];
        off += len;
    }
}

fn decode_l4(proto: u8, b: &[u8], v6: bool, h: &mut Headers) {
    h.l4 = match proto {
        IPPROTO_TCP if b.len() >= 4 => Some(Transport::Tcp {
            sport: be16(b, 0),
            dport: be16(b, 2),
            flags: (b.len() >= 14).then(|| u16::from(b[13]) | (u16::from(b[12] & 1) << 8)),
        }),
        IPPROTO_UDP if b.len() >= 4 => Some(Transport::Udp {
            sport: be16(b, 0),
            dport: be16(b, 2),
        }),
        IPPROTO_SCTP if b.len() >= 4 => Some(Transport::Sctp {
            sport: be16(b, 0),
            dport: be16(b, 2),
        }),
        IPPROTO_ICMP if !v6 && b.len() >= 2 => Some(Transport::Icmp4 {
            ty: b[0],
            code: b[1],
        }),
        IPPROTO_ICMPV6 if v6 && b.len() >= 2 => Some(Transport::Icmp6 {
            ty: b[0],
            code: b[1],
        }),
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_print_as_display_does() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let mut v6s: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "fe80::1",
            "2001:db8::ff00:42:8329",
            "1:0:0:2:0:0:0:3",
            "1:0:0:2:0:0:3:4",
            "0:1:0:1:0:1:0:1",
            "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
            "::a.b.c.d",
            "::1.2.3.4",
            "64:ff9b::10.0.0.1",
        ]
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
        // Every pattern of zero and non-zero groups, with varied values.
        for m in 0u32..256 {
            let g: Vec<u16> = (0..8)
                .map(|i| {
                    if m >> i & 1 == 1 {
                        [1, 0x10, 0xabc, 0xffff][i % 4]
                    } else {
                        0
                    }
                })
                .collect();
            v6s.push(Ipv6Addr::new(
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7],
            ));
        }
        for a in v6s {
            let want = match a.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => a.to_string(),
            };
            assert_eq!(super::fmt_ip(a.into()), want, "{a:?}");
        }
        // Random addresses, and random ones with runs of zero groups.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let (a, b) = (next(), next());
            let zeros = next();
            let mut g = [0u16; 8];
            for (i, v) in g.iter_mut().enumerate() {
                let r = ((if i < 4 { a } else { b }) >> (16 * (i % 4))) as u16;
                *v = if zeros >> i & 1 == 1 {
                    0
                } else {
                    r >> ((zeros >> (8 + 2 * i) & 3) * 4)
                };
            }
            let v6 = Ipv6Addr::from(g);
            let want = match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            };
            assert_eq!(super::fmt_ip(v6.into()), want, "{v6:?}");
            let v4 = Ipv4Addr::from((a >> 32) as u32);
            assert_eq!(super::fmt_ip(v4.into()), v4.to_string());
            assert_eq!(super::fmt_ip(v4.to_ipv6_mapped().into()), v4.to_string());
        }
        for o in [0u8, 1, 9, 10, 99, 100, 199, 255] {
            let a = Ipv4Addr::new(o, 255 - o, o / 2, 7);
            assert_eq!(super::fmt_ip(a.into()), a.to_string());
            let mapped = a.to_ipv6_mapped();
            assert_eq!(super::fmt_ip(mapped.into()), a.to_string());
        }
    }

    use super::*;
    use crate::packet::{L4, Packet, ipv6_ext, tcp_flags as f};
    use rstest::rstest;

    fn v4(a: &str) -> IpAddr {
        a.parse().unwrap()
    }

    #[rstest]
    #[case::tcp(L4::Tcp { sport: 40000, dport: 80, flags: f::SYN | f::ACK },
        Some(Transport::Tcp { sport: 40000, dport: 80, flags: Some(f::SYN | f::ACK) }))]
    #[case::tcp_all_flags(L4::Tcp { sport: 1, dport: 2, flags: 0x1ff },
        Some(Transport::Tcp { sport: 1, dport: 2, flags: Some(0x1ff) }))]
    #[case::udp(L4::Udp { sport: 5353, dport: 53 }, Some(Transport::Udp { sport: 5353, dport: 53 }))]
    #[case::sctp(L4::Sctp { sport: 9, dport: 10 }, Some(Transport::Sctp { sport: 9, dport: 10 }))]
    #[case::icmp(L4::Icmp4 { ty: 8, code: 0 }, Some(Transport::Icmp4 { ty: 8, code: 0 }))]
    #[case::gre(L4::Other(47), None)]
    fn ipv4_transports(#[case] l4: L4, #[case] want: Option<Transport>) {
        let pkt = Packet::new(v4("10.0.0.1"), v4("10.0.0.2"), l4).build();
        let h = Headers::decode(&pkt, false);
        assert_eq!(h.ip, Some((v4("10.0.0.1"), v4("10.0.0.2"))));
        assert_eq!(h.l4, want);
        assert!(h.eth.is_some());
    }

    #[rstest]
    #[case::none(&[])]
    #[case::hbh(&[ipv6_ext::HOP_BY_HOP])]
    #[case::chain(&[ipv6_ext::HOP_BY_HOP, ipv6_ext::DEST_OPTS, ipv6_ext::ROUTING, ipv6_ext::FRAGMENT, ipv6_ext::DEST_OPTS])]
    fn ipv6_extension_headers(#[case] ext: &[u8]) {
        let pkt = Packet::new(
            v4("fd00::1"),
            v4("fd00::2"),
            L4::Tcp {
                sport: 1,
                dport: 8443,
                flags: f::SYN,
            },
        )
        .ext(ext)
        .build();
        let h = Headers::decode(&pkt, false);
        assert_eq!(h.ip_version(), IpVersion::IPv6);
        assert_eq!(h.l4.map(|t| t.ports()), Some((1, 8443)));
    }

    #[test]
    fn too_many_extension_headers_stop_without_l4() {
        let ext = [ipv6_ext::DEST_OPTS; MAX_IPV6_EXT_HEADERS + 1];
        let pkt = Packet::new(v4("fd00::1"), v4("fd00::2"), L4::Udp { sport: 1, dport: 2 })
            .ext(&ext)
            .build();
        let h = Headers::decode(&pkt, false);
        assert!(h.ip.is_some());
        assert_eq!(h.l4, None);
    }

    #[test]
    fn icmpv6_and_l3_only() {
        let pkt = Packet::new(v4("fd00::1"), v4("fd00::2"), L4::Icmp6 { ty: 128, code: 0 })
            .l3_only()
            .build();
        let h = Headers::decode(&pkt, true);
        assert_eq!(h.eth, None);
        assert_eq!(h.l4, Some(Transport::Icmp6 { ty: 128, code: 0 }));
    }

    #[test]
    fn truncation_fills_what_is_there() {
        let pkt = Packet::new(
            v4("10.0.0.1"),
            v4("10.0.0.2"),
            L4::Tcp {
                sport: 7,
                dport: 8,
                flags: f::FIN,
            },
        )
        .build();
        // Full: flags. 14+20+13 bytes: ports only. 14+20+3: IP only. 13: nothing.
        let h = Headers::decode(&pkt[..14 + 20 + 13], false);
        assert_eq!(
            h.l4,
            Some(Transport::Tcp {
                sport: 7,
                dport: 8,
                flags: None
            })
        );
        let h = Headers::decode(&pkt[..14 + 20 + 3], false);
        assert!(h.ip.is_some() && h.l4.is_none());
        let h = Headers::decode(&pkt[..14 + 19], false);
        assert!(h.eth.is_some() && h.ip.is_none());
        assert_eq!(Headers::decode(&pkt[..13], false), Headers::default());
        for n in 0..pkt.len() {
            let _ = Headers::decode(&pkt[..n], false);
            let _ = Headers::decode(&pkt[..n], true);
        }
    }

    #[test]
    fn ipv4_non_first_fragment_has_no_l4() {
        let mut pkt = Packet::new(
            v4("10.0.0.1"),
            v4("10.0.0.2"),
            L4::Udp { sport: 1, dport: 2 },
        )
        .build();
        pkt[14 + 6] = 0x00;
        pkt[14 + 7] = 0x10;
        let h = Headers::decode(&pkt, false);
        assert!(h.ip.is_some());
        assert_eq!(h.l4, None);
    }

    #[test]
    fn vlan_tag_is_skipped() {
        let mut pkt = Packet::new(
            v4("10.0.0.1"),
            v4("10.0.0.2"),
            L4::Udp { sport: 1, dport: 2 },
        )
        .build();
        pkt.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        let h = Headers::decode(&pkt, false);
        assert_eq!(h.l4, Some(Transport::Udp { sport: 1, dport: 2 }));
    }

    #[test]
    fn formatting() {
        assert_eq!(
            fmt_mac(&[0x0a, 0xff, 0, 1, 0xab, 0xcd]),
            "0a:ff:00:01:ab:cd"
        );
        let mut b = vec![b'x'];
        write_mac_bytes(&[0; 6], &mut b);
        write_mac_bytes(&[0xff, 0x0a, 1, 2, 3, 0xfe], &mut b);
        assert_eq!(&b, b"x00:00:00:00:00:00ff:0a:01:02:03:fe");
        assert_eq!(fmt_ip(v4("::ffff:10.1.2.3")), "10.1.2.3");
        assert_eq!(fmt_ip(v4("fd00:10:244::5")), "fd00:10:244::5");
    }
}
