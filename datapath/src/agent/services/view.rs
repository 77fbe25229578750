//! What `GET /v1/services` answers and `datapath service list` prints: the
//! frontends of the node with their backends, in the layout of `cilium
//! service list`.

use serde::{Deserialize, Serialize};

use super::resolve::LbState;

/// `GET /v1/services`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// Every frontend, by id.
    pub frontends: Vec<FrontendView>,
    /// Objects not in force (each names origin, object and reason).
    #[serde(default)]
    pub errors: Vec<String>,
    /// Bumped whenever the desired state changes.
    pub revision: u64,
}

/// One frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendView {
    /// Reverse-NAT id.
    pub id: u16,
    /// `addr:port/proto`.
    pub frontend: String,
    /// `ClusterIP` or `NodePort`.
    pub kind: String,
    /// `namespace/name` of the service.
    pub service: String,
    /// Backends in slot order.
    pub backends: Vec<BackendView>,
}

/// One backend of a frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendView {
    /// Backend id.
    pub id: u32,
    /// `addr:port/proto`.
    pub address: String,
    /// `active` or `terminating`.
    pub state: String,
}

/// The view of a state.
pub fn list(lb: &LbState, errors: Vec<String>, revision: u64) -> ServiceList {
    let mut frontends: Vec<FrontendView> = lb
        .frontends
        .iter()
        .map(|(f, e)| FrontendView {
            id: e.rev_nat_id,
            frontend: f.to_string(),
            kind: e.kind.as_str().to_string(),
            service: e.service.to_string(),
            backends: e
                .backends
                .iter()
                .filter_map(|b| {
                    lb.backends.get(&b.id).map(|a| BackendView {
                        id: b.id,
                        address: a.to_string(),
                        state: b.state.as_str().to_string(),
                    })
                })
                .collect(),
        })
        .collect();
    frontends.sort_by_key(|f| f.id);
    ServiceList {
        frontends,
        errors,
        revision,
    }
}

/// The table of `datapath service list` (`cilium service list`'s columns;
/// one backend per line, numbered from 1; a frontend without backends
/// shows an empty Backend column).
pub fn format_table(l: &ServiceList) -> String {
    let fw = l
        .frontends
        .iter()
        .map(|f| f.frontend.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    let mut out = format!(
        "{:<4} {:<fw$}   {:<12}   Backend\n",
        "ID", "Frontend", "Service Type"
    );
    for f in &l.frontends {
        let head = format!("{:<4} {:<fw$}   {:<12}   ", f.id, f.frontend, f.kind);
        if f.backends.is_empty() {
            out.push_str(head.trim_end());
            out.push('\n');
        }
        for (i, b) in f.backends.iter().enumerate() {
            if i == 0 {
                out.push_str(&head);
            } else {
                out.push_str(&" ".repeat(head.len()));
            }
            out.push_str(&format!("{} => {} ({})\n", i + 1, b.address, b.state));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: u32, a: &str, s: &str) -> BackendView {
        BackendView {
            id,
            address: a.into(),
            state: s.into(),
        }
    }

    #[test]
    fn table_lists_one_backend_per_line_like_cilium() {
        let l = ServiceList {
            frontends: vec![
                FrontendView {
                    id: 1,
                    frontend: "10.96.0.10:80/TCP".into(),
                    kind: "ClusterIP".into(),
                    service: "default/web".into(),
                    backends: vec![
                        b(1, "10.0.1.5:8080/TCP", "active"),
                        b(2, "10.0.2.7:8080/TCP", "terminating"),
                    ],
                },
                FrontendView {
                    id: 2,
                    frontend: "192.168.50.1:30080/TCP".into(),
                    kind: "NodePort".into(),
                    service: "default/web".into(),
                    backends: vec![b(1, "10.0.1.5:8080/TCP", "active")],
                },
                FrontendView {
                    id: 3,
                    frontend: "10.96.0.11:53/UDP".into(),
                    kind: "ClusterIP".into(),
                    service: "default/dns".into(),
                    backends: vec![],
                },
            ],
            errors: vec![],
            revision: 1,
        };
        let want = "\
ID   Frontend                 Service Type   Backend
1    10.96.0.10:80/TCP        ClusterIP      1 => 10.0.1.5:8080/TCP (active)
                                             2 => 10.0.2.7:8080/TCP (terminating)
2    192.168.50.1:30080/TCP   NodePort       1 => 10.0.1.5:8080/TCP (active)
3    10.96.0.11:53/UDP        ClusterIP
";
        assert_eq!(format_table(&l), want);
    }

    #[test]
    fn empty_table_has_only_the_header() {
        assert_eq!(
            format_table(&ServiceList::default()),
            "ID   Frontend   Service Type   Backend\n"
        );
    }
}
