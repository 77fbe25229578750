//! Node-local IP address management: hands out addresses of the node's pod
//! CIDR to owners (`container_id/ifname`), idempotently. The network
//! address, the first host address (kept for the node) and the broadcast
//! address are never handed out. Serializable so the agent persists it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::policy::cidr::Cidr;

/// Allocations of one pod CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    cidr: Cidr,
    /// Address → owner.
    allocated: BTreeMap<Ipv4Addr, String>,
}

impl Ipam {
    /// An empty pool over `cidr` (at least a /30).
    pub fn new(cidr: Cidr) -> Self {
        Self {
            cidr,
            allocated: BTreeMap::new(),
        }
    }

    /// The pool's prefix.
    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// The address of `owner`, allocating the lowest free one if it has
    /// none; `None` when the pool is exhausted.
    pub fn allocate(&mut self, owner: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.owned_by(owner) {
            return Some(ip);
        }
        let size = self.cidr.size();
        if size < 4 {
            return None;
        }
        let ip = (2..size - 1)
            .filter_map(|i| self.cidr.nth(i as u32))
            .find(|ip| !self.allocated.contains_key(ip))?;
        self.allocated.insert(ip, owner.to_string());
        Some(ip)
    }

    /// The address `owner` holds.
    pub fn owned_by(&self, owner: &str) -> Option<Ipv4Addr> {
        self.allocated
            .iter()
            .find(|(_, o)| *o == owner)
            .map(|(ip, _)| *ip)
    }

    /// Releases `owner`'s address; `None` if it had none.
    pub fn release(&mut self, owner: &str) -> Option<Ipv4Addr> {
        let ip = self.owned_by(owner)?;
        self.allocated.remove(&ip);
        Some(ip)
    }

    /// Every allocation.
    pub fn allocations(&self) -> &BTreeMap<Ipv4Addr, String> {
        &self.allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_idempotently_and_reuses_released() {
        let mut p = Ipam::new("10.200.1.0/29".parse().unwrap());
        let a = p.allocate("a/eth0").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 200, 1, 2));
        assert_eq!(p.allocate("a/eth0"), Some(a), "idempotent");
        let got: Vec<_> = ["b", "c", "d", "e"].iter().map(|o| p.allocate(o)).collect();
        assert_eq!(got[3], Some(Ipv4Addr::new(10, 200, 1, 6)));
        assert_eq!(p.allocate("f"), None, ".7 is the broadcast address");
        assert_eq!(p.release("c"), Some(Ipv4Addr::new(10, 200, 1, 4)));
        assert_eq!(p.release("c"), None);
        assert_eq!(p.allocate("f"), Some(Ipv4Addr::new(10, 200, 1, 4)));
        assert_eq!(
            Ipam::new("10.0.0.0/31".parse().unwrap()).allocate("x"),
            None
        );
    }
}
