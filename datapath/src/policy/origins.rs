//! Rule origins: which policies a `rule` cookie of the policy map (and of
//! the drop and policy-verdict events) stands for, kept in step with the
//! policies in force so that flows name the policy that decided them.
//!
//! A policy's own origin is its cookie ([`Policy::cookie`], a hash of its
//! full name, so the same on every node); an entry several policies produce
//! carries the origin [`origin_of`](super::compile::origin_of) their cookies give.

use std::collections::BTreeMap;

use flow_parser::PolicyInfo;

use super::model::Policy;

/// Policy cookie → the policy in force and the policy revision that last
/// changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOrigins {
    by_cookie: BTreeMap<u32, (Policy, u64)>,
}

impl PolicyOrigins {
    /// Takes the policies in force at `revision`: a new or changed policy
    /// gets `revision`, an unchanged one keeps its own, a deleted one
    /// leaves (no stale names).
    pub fn update(&mut self, policies: &[Policy], revision: u64) {
        let mut next = BTreeMap::new();
        for p in policies {
            let rev = match self.by_cookie.get(&p.cookie()) {
                Some((old, r)) if old == p => *r,
                _ => revision,
            };
            next.insert(p.cookie(), (p.clone(), rev));
        }
        self.by_cookie = next;
    }

    /// What flows say about the policy with `cookie`, if it is in force.
    pub fn info(&self, cookie: u32) -> Option<PolicyInfo> {
        self.by_cookie.get(&cookie).map(|(p, revision)| PolicyInfo {
            name: p.name.clone(),
            namespace: p.namespace.clone().unwrap_or_default(),
            kind: p.kind().to_string(),
            labels: p.labels(),
            revision: *revision,
        })
    }

    /// Origin → policies, for the exporter: every policy in force under its
    /// own cookie, and every shared origin of `compiled` (origin → cookies,
    /// [`Compiled::origins`](super::compile::Compiled::origins)).
    pub fn table(&self, compiled: &BTreeMap<u32, Vec<u32>>) -> BTreeMap<u32, Vec<PolicyInfo>> {
        let mut out: BTreeMap<u32, Vec<PolicyInfo>> = self
            .by_cookie
            .keys()
            .filter_map(|c| self.info(*c).map(|i| (*c, vec![i])))
            .collect();
        for (origin, cookies) in compiled {
            let list: Vec<PolicyInfo> = cookies.iter().filter_map(|c| self.info(*c)).collect();
            if !list.is_empty() {
                out.insert(*origin, list);
            }
        }
        out
    }
}
