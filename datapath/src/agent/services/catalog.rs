//! The set of objects in force, and the rules across objects: one
//! definition per name, one service per `ClusterIP:port/proto`, one per
//! node port; node ports given by none are allocated here.
//!
//! [`merge`] takes every parsed document of every source and the previous
//! catalog, and keeps the previous version of any object whose new
//! version is invalid or conflicts (an invalid file whose objects cannot
//! even be named keeps every previous object of that file): a bad object
//! changes nothing, the others apply.
//!
//! Conflicts are settled in favour of what was already in force: objects
//! unchanged since the previous catalog claim their addresses and node
//! ports first; then the new and changed ones, in name order, each
//! rejected if it collides.
//!
//! Node ports not given are allocated deterministically: the port a
//! service port had before if still free, else a hash of
//! `ns/name/port-name/proto` into the range, probing upwards. Agents with
//! the same objects agree without coordination; give `nodePort`
//! explicitly where a port must never move.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::error::ServiceError;
use super::load::{DocResult, NODE_PORT_RANGE};
use super::model::{EndpointSlice, Object, ObjectKey, ObjectName, Protocol, Service, ServiceType};

/// A service in force, with where it came from and its effective node ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// The file or store key it was read from.
    pub origin: String,
    /// The service.
    pub service: Service,
    /// The node port of each of `service.ports` (same index): given or
    /// allocated; `None` for a ClusterIP service.
    pub node_ports: Vec<Option<u16>>,
}

/// An EndpointSlice in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceEntry {
    /// The file or store key it was read from.
    pub origin: String,
    /// The slice.
    pub slice: EndpointSlice,
}

/// Every object in force and what was rejected at the last merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Services by name.
    pub services: BTreeMap<ObjectName, ServiceEntry>,
    /// EndpointSlices by name.
    pub slices: BTreeMap<ObjectName, SliceEntry>,
    /// Rejections of the last merge (each names origin, object, reason).
    pub errors: Vec<ServiceError>,
}

/// One candidate version of a service during a merge.
struct Candidate {
    origin: String,
    service: Service,
}

/// Claims of addresses and node ports, with their holder.
#[derive(Default)]
struct Claims {
    vips: BTreeMap<(Ipv4Addr, u16, Protocol), ObjectName>,
    node_ports: BTreeMap<u16, ObjectName>,
}

impl Claims {
    /// Why `s` (with node ports `nps`) cannot have its addresses, if so.
    fn conflict(&self, s: &Service, nps: &[Option<u16>]) -> Option<String> {
        for p in &s.ports {
            if let Some(o) = self.vips.get(&(s.cluster_ip, p.port, p.protocol))
                && *o != s.name
            {
                return Some(format!(
                    "frontend {}:{}/{} is already used by Service {o}",
                    s.cluster_ip, p.port, p.protocol
                ));
            }
        }
        for np in nps.iter().flatten() {
            if let Some(o) = self.node_ports.get(np)
                && *o != s.name
            {
                return Some(format!("node port {np} is already used by Service {o}"));
            }
        }
        None
    }

    fn claim(&mut self, s: &Service, nps: &[Option<u16>]) {
        for p in &s.ports {
            self.vips
                .insert((s.cluster_ip, p.port, p.protocol), s.name.clone());
        }
        for np in nps.iter().flatten() {
            self.node_ports.insert(*np, s.name.clone());
        }
    }
}

/// FNV-1a, for deterministic node-port allocation (stable across builds
/// and platforms, unlike std's hasher).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Builds the catalog in force from the parsed documents of every source
/// (`(origin, result)`, in source order) and the previous catalog.
pub fn merge(prev: &Catalog, docs: Vec<(String, DocResult)>) -> Catalog {
    let mut errors = Vec::new();
    let mut found: BTreeMap<ObjectKey, (String, Object)> = BTreeMap::new();
    let mut failed_keys = BTreeSet::new();
    let mut failed_origins = BTreeSet::new();
    for (origin, r) in docs {
        match r {
            Ok(o) => {
                let key = o.key();
                if let Some((other, _)) = found.get(&key) {
                    errors.push(ServiceError::new(
                        &origin,
                        key.to_string(),
                        format!("also defined in {other}; that definition stays"),
                    ));
                    continue;
                }
                found.insert(key, (origin, o));
            }
            Err((Some(key), e)) => {
                errors.push(e);
                failed_keys.insert(key);
            }
            Err((None, e)) => {
                errors.push(e);
                failed_origins.insert(origin);
            }
        }
    }
    // The previous version of what failed stays.
    let prev_objects = prev
        .services
        .values()
        .map(|e| (e.origin.clone(), Object::Service(e.service.clone())))
        .chain(
            prev.slices
                .values()
                .map(|e| (e.origin.clone(), Object::Slice(e.slice.clone()))),
        );
    for (origin, o) in prev_objects {
        let key = o.key();
        if !found.contains_key(&key)
            && (failed_keys.contains(&key) || failed_origins.contains(&origin))
        {
            found.insert(key, (origin, o));
        }
    }

    let mut slices = BTreeMap::new();
    let mut candidates = Vec::new();
    for (_, (origin, o)) in found {
        match o {
            Object::Slice(s) => {
                slices.insert(s.name.clone(), SliceEntry { origin, slice: s });
            }
            Object::Service(s) => candidates.push(Candidate { origin, service: s }),
        }
    }

    // Unchanged services claim first, with the node ports they had.
    let mut claims = Claims::default();
    let mut services = BTreeMap::new();
    let mut changed = Vec::new();
    for c in candidates {
        match prev.services.get(&c.service.name) {
            Some(p) if p.service == c.service => {
                claims.claim(&p.service, &p.node_ports);
                services.insert(
                    c.service.name.clone(),
                    ServiceEntry {
                        origin: c.origin,
                        service: c.service,
                        node_ports: p.node_ports.clone(),
                    },
                );
            }
            _ => changed.push(c),
        }
    }
    // Then new and changed ones (name order); a conflict keeps the
    // previous version when it still fits.
    let mut to_allocate = Vec::new();
    for c in changed {
        let given: Vec<Option<u16>> = c.service.ports.iter().map(|p| p.node_port).collect();
        match claims.conflict(&c.service, &given) {
            None => {
                claims.claim(&c.service, &given);
                to_allocate.push(c.service.name.clone());
                services.insert(
                    c.service.name.clone(),
                    ServiceEntry {
                        origin: c.origin,
                        service: c.service,
                        node_ports: given,
                    },
                );
            }
            Some(why) => {
                let mut reason = why;
                if let Some(p) = prev.services.get(&c.service.name) {
                    if claims.conflict(&p.service, &p.node_ports).is_none() {
                        claims.claim(&p.service, &p.node_ports);
                        services.insert(p.service.name.clone(), p.clone());
                        reason.push_str("; the previous version stays in force");
                    } else {
                        reason.push_str("; its previous version conflicts too and is removed");
                    }
                }
                errors.push(ServiceError::new(
                    &c.origin,
                    format!("Service {}", c.service.name),
                    reason,
                ));
            }
        }
    }
    // Node ports nobody gave.
    let span = u32::from(NODE_PORT_RANGE.end() - NODE_PORT_RANGE.start()) + 1;
    for name in to_allocate {
        let Some(e) = services.get_mut(&name) else {
            continue;
        };
        if e.service.kind != ServiceType::NodePort {
            e.node_ports = vec![None; e.service.ports.len()];
            continue;
        }
        let old = prev.services.get(&name);
        for (i, p) in e.service.ports.iter().enumerate() {
            if e.node_ports[i].is_some() {
                continue;
            }
            let before = old.and_then(|o| {
                o.service
                    .ports
                    .iter()
                    .position(|q| q.name == p.name && q.protocol == p.protocol)
                    .and_then(|j| o.node_ports.get(j).copied().flatten())
            });
            let free = |np: u16, claims: &Claims| {
                claims.node_ports.get(&np).is_none_or(|o| *o == name)
                    && !e.node_ports.contains(&Some(np))
            };
            let chosen = match before {
                Some(np) if free(np, &claims) => Some(np),
                _ => {
                    let start = fnv1a(&format!("{name}/{}/{}", p.name, p.protocol)) % span;
                    (0..span)
                        .map(|k| *NODE_PORT_RANGE.start() + ((start + k) % span) as u16)
                        .find(|np| free(*np, &claims))
                }
            };
            match chosen {
                Some(np) => {
                    claims.node_ports.insert(np, name.clone());
                    e.node_ports[i] = Some(np);
                }
                None => errors.push(ServiceError::new(
                    &e.origin,
                    format!("Service {name}"),
                    format!("no free node port for port {}", p.port),
                )),
            }
        }
    }
    Catalog {
        services,
        slices,
        errors,
    }
}
