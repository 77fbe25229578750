//! Prometheus metrics of the relay, served as OpenMetrics text on
//! `/metrics` by `svc::metrics`:
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `hubble_relay_pool_peer_connection_status` | `status` | peers per connection state (Hubble's name and states) |
//! | `hubble_relay_flows_forwarded_total` | | flows sent to clients |
//! | `hubble_relay_flows_dropped_total` | `reason` | flows not sent: `slow_client` (a client's queue was full) |
//! | `hubble_relay_peer_errors_total` | `peer`, `kind` | per-peer failures: `dial`, `probe`, `stream` |
//! | `hubble_relay_get_flows_streams` | | GetFlows streams open |
//! | `hubble_relay_grpc_requests_total` | `method`, `code` | client calls answered, by gRPC code (rejections by the limits included) |
//! | `hubble_relay_grpc_streams` | `method` | client streaming calls open (what `--max-concurrent-streams` bounds) |
//!
//! Flows are counted per batch of a client's output, not per flow.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::conn_state::ConnState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerErrorLabels {
    peer: String,
    kind: &'static str,
}

/// What failed on a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerErrorKind {
    /// A dial (connect, handshake) failed or timed out.
    Dial,
    /// A probe of a connected peer failed: the connection was lost.
    Probe,
    /// A GetFlows stream from the peer ended with an error.
    Stream,
}

impl PeerErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            PeerErrorKind::Dial => "dial",
            PeerErrorKind::Probe => "probe",
            PeerErrorKind::Stream => "stream",
        }
    }
}

/// All metrics of one relay.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    peer_status: Family<StatusLabels, Gauge>,
    forwarded: Counter,
    dropped: Family<ReasonLabels, Counter>,
    peer_errors: Family<PeerErrorLabels, Counter>,
    streams: Gauge,
    grpc: svc::grpc_layers::GrpcMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            peer_status: Family::default(),
            forwarded: Counter::default(),
            dropped: Family::default(),
            peer_errors: Family::default(),
            streams: Gauge::default(),
            grpc: Default::default(),
        };
        let r = &mut m.registry;
        r.register(
            "hubble_relay_pool_peer_connection_status",
            "Number of peers in each connection state",
            m.peer_status.clone(),
        );
        r.register(
            "hubble_relay_flows_forwarded",
            "Flows sent to clients",
            m.forwarded.clone(),
        );
        r.register(
            "hubble_relay_flows_dropped",
            "Flows not sent to a client, by reason",
            m.dropped.clone(),
        );
        r.register(
            "hubble_relay_peer_errors",
            "Failures talking to a peer, by peer and kind",
            m.peer_errors.clone(),
        );
        r.register(
            "hubble_relay_get_flows_streams",
            "GetFlows streams currently open",
            m.streams.clone(),
        );
        m.grpc
            .register(r.sub_registry_with_prefix("hubble_relay_grpc"));
        for s in ConnState::ALL {
            drop(
                m.peer_status
                    .get_or_create(&StatusLabels { status: s.as_str() }),
            );
        }
        drop(m.dropped.get_or_create(&ReasonLabels {
            reason: "slow_client",
        }));
        m
    }

    /// Sets the per-state peer counts (every state, zeros included).
    pub fn set_peer_states(&self, counts: &[(ConnState, i64)]) {
        for s in ConnState::ALL {
            let n = counts
                .iter()
                .filter(|(c, _)| *c == s)
                .map(|(_, n)| *n)
                .sum();
            self.peer_status
                .get_or_create(&StatusLabels { status: s.as_str() })
                .set(n);
        }
    }

    /// Counts flows sent to a client.
    pub fn forwarded(&self, n: u64) {
        self.forwarded.inc_by(n);
    }

    /// Counts flows dropped because a client read too slowly.
    pub fn dropped_slow_client(&self, n: u64) {
        self.dropped
            .get_or_create(&ReasonLabels {
                reason: "slow_client",
            })
            .inc_by(n);
    }

    /// Counts a failure talking to `peer`.
    pub fn peer_error(&self, peer: &str, kind: PeerErrorKind) {
        self.peer_errors
            .get_or_create(&PeerErrorLabels {
                peer: peer.to_owned(),
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Forgets the error series of a removed peer.
    pub fn forget_peer(&self, peer: &str) {
        for kind in [
            PeerErrorKind::Dial,
            PeerErrorKind::Probe,
            PeerErrorKind::Stream,
        ] {
            self.peer_errors.remove(&PeerErrorLabels {
                peer: peer.to_owned(),
                kind: kind.as_str(),
            });
        }
    }

    /// A GetFlows stream opened (+1) or closed (-1).
    pub fn streams_add(&self, n: i64) {
        self.streams.inc_by(n);
    }

    /// The request metrics of the relay's gRPC server (its tower stack).
    pub fn grpc(&self) -> &svc::grpc_layers::GrpcMetrics {
        &self.grpc
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        let m = Metrics::new();
        m.set_peer_states(&[(ConnState::Ready, 2), (ConnState::TransientFailure, 1)]);
        m.forwarded(5);
        m.dropped_slow_client(3);
        m.peer_error("node-1", PeerErrorKind::Stream);
        let t = m.encode();
        for want in [
            r#"hubble_relay_pool_peer_connection_status{status="READY"} 2"#,
            r#"hubble_relay_pool_peer_connection_status{status="TRANSIENT_FAILURE"} 1"#,
            r#"hubble_relay_pool_peer_connection_status{status="NIL_CONNECTION"} 0"#,
            "hubble_relay_flows_forwarded_total 5",
            r#"hubble_relay_flows_dropped_total{reason="slow_client"} 3"#,
            r#"hubble_relay_peer_errors_total{peer="node-1",kind="stream"} 1"#,
        ] {
            assert!(t.contains(want), "missing {want} in\n{t}");
        }
        m.forget_peer("node-1");
        assert!(!m.encode().contains("node-1"));
    }
}
