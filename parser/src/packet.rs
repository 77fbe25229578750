//! A small packet builder: Ethernet + IPv4/IPv6 (+ optional IPv6 extension
//! headers) + TCP/UDP/SCTP/ICMPv4/ICMPv6, for test fixtures, the synthetic
//! generator and benchmarks. It writes well-formed headers (with a correct
//! IPv4 header checksum); L4 checksums are left zero because nothing in the
//! observability path checks them.

use std::net::IpAddr;

/// TCP flag bits as used by [`L4::Tcp`]. `NS` is bit 8 (it lives in the data
/// offset byte on the wire).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (ECN nonce).
    pub const NS: u16 = 0x100;
}

/// IPv6 extension header next-header values the builder can insert.
pub mod ipv6_ext {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing.
    pub const ROUTING: u8 = 43;
    /// Fragment (written with offset 0, so the L4 header follows).
    pub const FRAGMENT: u8 = 44;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
}

/// The transport layer of a [`Packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP with [`tcp_flags`] bits.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// [`tcp_flags`] bits.
        flags: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// SCTP (common header only).
    Sctp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMPv4 (8-byte header, id/seq zero).
    Icmp4 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// ICMPv6 (8-byte header).
    Icmp6 {
        /// Type.
        ty: u8,
        /// Code.
        code: u8,
    },
    /// Any other IP protocol number, with no header of its own.
    Other(u8),
}

impl L4 {
    fn proto(&self) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Sctp { .. } => 132,
            L4::Icmp4 { .. } => 1,
            L4::Icmp6 { .. } => 58,
            L4::Other(p) => *p,
        }
    }
}

/// A packet to build. Construct with [`Packet::new`] and adjust the public
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// `(source, destination)` MACs; `None` writes no Ethernet header.
    pub macs: Option<([u8; 6], [u8; 6])>,
    /// Source address; its family picks IPv4 or IPv6 (`dst` must match).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport layer.
    pub l4: L4,
    /// IPv6 extension headers to insert, in order (see [`ipv6_ext`]).
    pub ipv6_ext: Vec<u8>,
    /// Application payload bytes after the L4 header (filled with a pattern).
    pub payload_len: usize,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
}

impl Packet {
    /// A packet with default MACs, TTL 64 and no payload.
    pub fn new(src: IpAddr, dst: IpAddr, l4: L4) -> Self {
        Self {
            macs: Some((
                [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x01],
                [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02],
            )),
            src,
            dst,
            l4,
            ipv6_ext: Vec::new(),
            payload_len: 0,
            ttl: 64,
        }
    }

    /// Sets the MACs.
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Self {
        self.macs = Some((src, dst));
        self
    }

    /// Drops the Ethernet header (an L3 packet).
    pub fn l3_only(mut self) -> Self {
        self.macs = None;
        self
    }

    /// Sets the payload length.
    pub fn payload(mut self, len: usize) -> Self {
        self.payload_len = len;
        self
    }

    /// Inserts IPv6 extension headers.
    pub fn ext(mut self, headers: &[u8]) -> Self {
        self.ipv6_ext = headers.to_vec();
        self
    }

    /// Builds the packet into a new vector.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.payload_len);
        self.write(&mut out);
        out
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let v6 = self.src.is_ipv6();
        if let Some((s, d)) = self.macs {
            out.extend_from_slice(&d);
            out.extend_from_slice(&s);
            out.extend_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
        }
        let mut l4 = Vec::with_capacity(20 + self.payload_len);
        match self.l4 {
            L4::Tcp {
                sport,
                dport,
                flags,
            } => {
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&dport.to_be_bytes());
                l4.extend_from_slice(&1000u32.to_be_bytes()); // seq
                let ack = if flags & tcp_flags::ACK != 0 {
                    2000u32
                } else {
                    0
                };
                l4.extend_from_slice(&ack.to_be_bytes());
                l4.push(0x50 | u8::from(flags & tcp_flags::NS != 0)); // data offset 5
                l4.push((flags & 0xff) as u8);
                l4.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]); // window, csum, urg
            }
            L4::Udp { sport, dport } => {
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&dport.to_be_bytes());
                l4.extend_from_slice(&((8 + self.payload_len) as u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
            L4::Sctp { sport, dport } => {
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&dport.to_be_bytes());
                l4.extend_from_slice(&[0; 8]); // verification tag, checksum
            }
            L4::Icmp4 { ty, code } | L4::Icmp6 { ty, code } => {
                l4.extend_from_slice(&[ty, code, 0, 0, 0x12, 0x34, 0, 1]);
            }
            L4::Other(_) => {}
        }
        l4.extend((0..self.payload_len).map(|i| (i % 251) as u8));

        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = (20 + l4.len()).min(usize::from(u16::MAX)) as u16;
                let mut h = [0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[4..6].copy_from_slice(&0x1c46u16.to_be_bytes());
                h[6] = 0x40; // DF
                h[8] = self.ttl;
                h[9] = self.l4.proto();
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let csum = ipv4_checksum(&h);
                h[10..12].copy_from_slice(&csum.to_be_bytes());
                out.extend_from_slice(&h);
            }
            (s, d) => {
                let (s, d) = (to_v6(s), to_v6(d));
                let ext_len = self.ipv6_ext.len() * 8;
                let plen = (ext_len + l4.len()).min(usize::from(u16::MAX)) as u16;
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&plen.to_be_bytes());
                out.push(self.ipv6_ext.first().copied().unwrap_or(self.l4.proto()));
                out.push(self.ttl);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                for (i, _) in self.ipv6_ext.iter().enumerate() {
                    let next = self.ipv6_ext.get(i + 1).copied().unwrap_or(self.l4.proto());
                    // Every extension header here is 8 bytes: next header,
                    // length (in 8-byte units beyond the first, or reserved
                    // for the fragment header), then zeros (fragment offset 0).
                    out.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
                }
            }
        }
        out.extend_from_slice(&l4);
    }
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

fn ipv4_checksum(h: &[u8; 20]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_tcp_layout() {
        let p = Packet::new(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            L4::Tcp {
                sport: 1,
                dport: 2,
                flags: tcp_flags::SYN,
            },
        )
        .build();
        assert_eq!(p.len(), 14 + 20 + 20);
        assert_eq!(&p[12..14], &[0x08, 0x00]);
        assert_eq!(p[14 + 9], 6);
        assert_eq!(
            ipv4_checksum(p[14..34].try_into().unwrap()),
            0,
            "valid checksum"
        );
    }

    #[test]
    fn ipv6_ext_chain() {
        let p = Packet::new(
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            L4::Udp {
                sport: 1,
                dport: 53,
            },
        )
        .ext(&[ipv6_ext::HOP_BY_HOP, ipv6_ext::DEST_OPTS])
        .build();
        assert_eq!(p.len(), 14 + 40 + 16 + 8);
        assert_eq!(p[14 + 6], 0, "first next header is hop-by-hop");
        assert_eq!(p[54], 60);
        assert_eq!(p[62], 17);
    }
}
