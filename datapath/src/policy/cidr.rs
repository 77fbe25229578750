//! IPv4 prefixes (`10.0.0.0/8`), normalized to their network address,
//! serialized as strings.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 prefix with host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
}

impl Cidr {
    /// `addr/len` with host bits cleared; `None` if `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        (len <= 32).then(|| Self {
            addr: Ipv4Addr::from(u32::from(addr) & Self::mask(len)),
            len,
        })
    }

    /// A single address (`/32`).
    pub fn host(addr: Ipv4Addr) -> Self {
        Self { addr, len: 32 }
    }

    fn mask(len: u8) -> u32 {
        if len == 0 { 0 } else { u32::MAX << (32 - len) }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.len) == u32::from(self.addr)
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.len)
    }

    /// The `i`-th address of the prefix.
    pub fn nth(&self, i: u32) -> Option<Ipv4Addr> {
        (u64::from(i) < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr) + i))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `a.b.c.d/len`, or a bare address as `/32`. Host bits must be clear.
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("invalid IPv4 prefix {s:?} (IPv6 is not supported)"))?;
        let len: u8 = l
            .trim()
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("invalid prefix length in {s:?}"))?;
        let c = Cidr::new(addr, len).expect("len checked");
        if c.addr != addr {
            return Err(format!("{s:?} has host bits set (did you mean {c}?)"));
        }
        Ok(c)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contain_cover() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(!c.contains(Ipv4Addr::new(11, 0, 0, 0)));
        assert!(c.covers(&"10.1.0.0/16".parse().unwrap()));
        assert!(!c.covers(&"0.0.0.0/0".parse().unwrap()));
        assert_eq!("1.2.3.4".parse::<Cidr>().unwrap().len, 32);
        assert!(
            "10.0.0.1/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("host bits")
        );
        assert!("fd00::/8".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert_eq!(
            "10.200.1.0/24".parse::<Cidr>().unwrap().nth(5),
            Some(Ipv4Addr::new(10, 200, 1, 5))
        );
    }
}
