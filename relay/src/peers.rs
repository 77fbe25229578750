//! What the relay knows about a peer before connecting to it: its name, its
//! gRPC address (with the default port added) and its TLS server name; and
//! the parsing of `--peers` and of `peer.Peer/Notify` notifications.

use proto::peer::{ChangeNotification, ChangeNotificationType};

use crate::defaults;

/// A peer (one node's exporter) as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerSpec {
    /// Node name (`node` or `cluster/node`); for a static peer without a
    /// name, its address.
    pub name: String,
    /// gRPC address: `host:port` or `unix:///path`.
    pub address: String,
    /// TLS server name announced by the peer service, if any.
    pub tls_server_name: Option<String>,
}

/// A peer description could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// An empty entry or address.
    #[error("empty peer address in {entry:?}")]
    Empty {
        /// The offending entry.
        entry: String,
    },
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port in peer address {address:?}")]
    Port {
        /// The offending address.
        address: String,
    },
}

/// Adds the default port (4244) to an address that has none, as Hubble's
/// relay does with the node IPs the peer service announces: `10.0.0.1` →
/// `10.0.0.1:4244`, `fd00::1` → `[fd00::1]:4244`, `node1` → `node1:4244`.
/// `host:port`, `[v6]:port` and `unix://` addresses are kept.
pub fn normalize_address(address: &str) -> Result<String, PeerError> {
    let a = address.trim();
    if a.is_empty() {
        return Err(PeerError::Empty {
            entry: address.to_owned(),
        });
    }
    if a.starts_with("unix://") {
        return Ok(a.to_owned());
    }
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p != 0);
    if let Some(rest) = a.strip_prefix('[') {
        // [v6] or [v6]:port
        return match rest.split_once(']') {
            Some((_, "")) => Ok(format!("{a}:{}", defaults::PEER_PORT)),
            Some((_, p)) if p.strip_prefix(':').is_some_and(port_ok) => Ok(a.to_owned()),
            _ => Err(PeerError::Port {
                address: a.to_owned(),
            }),
        };
    }
    if a.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{a}]:{}", defaults::PEER_PORT));
    }
    match a.rsplit_once(':') {
        None => Ok(format!("{a}:{}", defaults::PEER_PORT)),
        Some((host, p)) if !host.is_empty() && port_ok(p) => Ok(a.to_owned()),
        Some(_) => Err(PeerError::Port {
            address: a.to_owned(),
        }),
    }
}

/// Parses `--peers`: comma-separated `host[:port]` or `name=host[:port]`
/// entries. A peer without a name is named by its address.
pub fn parse_static(list: &str) -> Result<Vec<PeerSpec>, PeerError> {
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, addr) = match entry.split_once('=') {
            Some((n, a)) => (Some(n.trim()), a),
            None => (None, entry),
        };
        let address = normalize_address(addr).map_err(|e| match e {
            PeerError::Empty { .. } => PeerError::Empty {
                entry: entry.to_owned(),
            },
            e => e,
        })?;
        let name = match name {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => address.clone(),
        };
        out.push(PeerSpec {
            name,
            address,
            tls_server_name: None,
        });
    }
    Ok(out)
}

/// The TLS server name of a node's certificate as Cilium issues it:
/// `<node>.<cluster>.hubble-grpc.cilium.io`, dots in node and cluster
/// replaced by `-`, cluster `default` when the name has no `cluster/`.
pub fn derived_server_name(node_name: &str) -> String {
    svc::tls::hubble_server_name(node_name)
}

/// What a `peer.Peer/Notify` notification asks of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Add the peer, or update it if the name is known.
    Upsert(PeerSpec),
    /// Forget the peer of this name.
    Delete(String),
}

/// Interprets a notification. `None` for an UNKNOWN type or a nameless
/// peer (logged by the caller).
pub fn change_from_notification(n: &ChangeNotification) -> Option<Result<PeerChange, PeerError>> {
    if n.name.is_empty() {
        return None;
    }
    match ChangeNotificationType::try_from(n.r#type).ok()? {
        ChangeNotificationType::PeerAdded | ChangeNotificationType::PeerUpdated => {
            Some(normalize_address(&n.address).map(|address| {
                PeerChange::Upsert(PeerSpec {
                    name: n.name.clone(),
                    address,
                    tls_server_name: n
                        .tls
                        .as_ref()
                        .map(|t| t.server_name.clone())
                        .filter(|s| !s.is_empty()),
                })
            }))
        }
        ChangeNotificationType::PeerDeleted => Some(Ok(PeerChange::Delete(n.name.clone()))),
        ChangeNotificationType::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_is_added() {
        for (input, want) in [
            ("10.0.0.1", "10.0.0.1:4244"),
            ("10.0.0.1:4245", "10.0.0.1:4245"),
            ("fd00::1", "[fd00::1]:4244"),
            ("[fd00::1]", "[fd00::1]:4244"),
            ("[fd00::1]:80", "[fd00::1]:80"),
            ("node1", "node1:4244"),
            ("node1.example:1", "node1.example:1"),
            (" 127.0.0.1:9 ", "127.0.0.1:9"),
            (
                "unix:///var/run/cilium/hubble.sock",
                "unix:///var/run/cilium/hubble.sock",
            ),
        ] {
            assert_eq!(normalize_address(input).unwrap(), want, "{input}");
        }
        for bad in ["", "host:", "host:0", "host:70000", "[fd00::1]x", ":80"] {
            assert!(normalize_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn static_list_with_and_without_names() {
        let p = parse_static("10.0.0.1, n2=10.0.0.2:5000,,").unwrap();
        assert_eq!(
            p,
            vec![
                PeerSpec {
                    name: "10.0.0.1:4244".into(),
                    address: "10.0.0.1:4244".into(),
                    tls_server_name: None
                },
                PeerSpec {
                    name: "n2".into(),
                    address: "10.0.0.2:5000".into(),
                    tls_server_name: None
                },
            ]
        );
        assert!(parse_static("a=").is_err());
    }

    #[test]
    fn server_names_follow_cilium() {
        assert_eq!(
            derived_server_name("kind-worker"),
            "kind-worker.default.hubble-grpc.cilium.io"
        );
        assert_eq!(
            derived_server_name("c1.x/node.a"),
            "node-a.c1-x.hubble-grpc.cilium.io"
        );
    }

    #[test]
    fn notifications_become_changes() {
        let mut n = ChangeNotification {
            name: "n1".into(),
            address: "10.0.0.1".into(),
            r#type: ChangeNotificationType::PeerAdded as i32,
            tls: Some(proto::peer::Tls {
                server_name: "n1.default.hubble-grpc.cilium.io".into(),
            }),
        };
        assert_eq!(
            change_from_notification(&n).unwrap().unwrap(),
            PeerChange::Upsert(PeerSpec {
                name: "n1".into(),
                address: "10.0.0.1:4244".into(),
                tls_server_name: Some("n1.default.hubble-grpc.cilium.io".into()),
            })
        );
        n.r#type = ChangeNotificationType::PeerDeleted as i32;
        assert_eq!(
            change_from_notification(&n).unwrap().unwrap(),
            PeerChange::Delete("n1".into())
        );
        n.r#type = ChangeNotificationType::Unknown as i32;
        assert!(change_from_notification(&n).is_none());
        n.r#type = 77;
        assert!(change_from_notification(&n).is_none());
    }
}
