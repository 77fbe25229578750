//! Node status events in GetFlows streams (`NODE_CONNECTED`,
//! `NODE_UNAVAILABLE`, `NODE_GONE`, `NODE_ERROR`) and the aggregation of
//! identical node errors, as Hubble's relay does: an error is held for the
//! aggregation window, errors with the same message arriving meanwhile add
//! their node to it, and an error with another message sends the pending
//! one at once. The pending error is also sent when the stream ends, and
//! before any later status event of a node it names (see
//! [`ErrorAggregator::names_any`]): the last event a client saw about a
//! node is always its current state, never an error held back from before
//! it came back.

use std::time::Duration;

use proto::observer::GetFlowsResponse;
use proto::observer::get_flows_response::ResponseTypes;
use proto::relay::{NodeState, NodeStatusEvent};
use proto::wkt::Timestamp;
use tokio::time::Instant;

/// A node status response from the relay `relay_name`, timed now.
pub fn node_status(
    relay_name: &str,
    state: NodeState,
    nodes: Vec<String>,
    message: String,
) -> GetFlowsResponse {
    GetFlowsResponse {
        response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
            state_change: state as i32,
            node_names: nodes,
            message,
        })),
        node_name: relay_name.to_owned(),
        time: Some(Timestamp::now()),
    }
}

/// Merges identical `NODE_ERROR`s over a window.
#[derive(Debug)]
pub struct ErrorAggregator {
    window: Duration,
    relay_name: String,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    message: String,
    nodes: Vec<String>,
    deadline: Instant,
}

impl ErrorAggregator {
    /// Aggregates over `window`.
    pub fn new(window: Duration, relay_name: impl Into<String>) -> Self {
        ErrorAggregator {
            window,
            relay_name: relay_name.into(),
            pending: None,
        }
    }

    /// Records that `node` failed with `message` at `now`. Returns a
    /// previously pending error to send now if the message differs.
    pub fn add(&mut self, node: &str, message: &str, now: Instant) -> Option<GetFlowsResponse> {
        if let Some(p) = &mut self.pending
            && p.message == message
        {
            if !p.nodes.iter().any(|n| n == node) {
                p.nodes.push(node.to_owned());
            }
            return None;
        }
        let previous = self.take_all();
        self.pending = Some(Pending {
            message: message.to_owned(),
            nodes: vec![node.to_owned()],
            deadline: now + self.window,
        });
        previous
    }

    /// Whether the pending error names one of `nodes`: the caller sends it
    /// ([`ErrorAggregator::take_all`]) before a newer status of those nodes,
    /// so that it is not delivered after it is out of date.
    pub fn names_any(&self, nodes: &[String]) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.nodes.iter().any(|n| nodes.contains(n)))
    }

    /// When the pending error is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// The pending error if its window has passed at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<GetFlowsResponse> {
        if self.deadline().is_some_and(|d| d <= now) {
            self.take_all()
        } else {
            None
        }
    }

    /// The pending error, due or not.
    pub fn take_all(&mut self) -> Option<GetFlowsResponse> {
        let p = self.pending.take()?;
        Some(node_status(
            &self.relay_name,
            NodeState::NodeError,
            p.nodes,
            p.message,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(r: &GetFlowsResponse) -> (i32, Vec<String>, String) {
        match &r.response_types {
            Some(ResponseTypes::NodeStatus(s)) => {
                (s.state_change, s.node_names.clone(), s.message.clone())
            }
            _ => panic!("not a node status"),
        }
    }

    #[test]
    fn identical_errors_within_the_window_become_one_event() {
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let mut a = ErrorAggregator::new(w, "relay");
        assert!(a.add("n1", "connection refused", t0).is_none());
        assert!(
            a.add("n2", "connection refused", t0 + Duration::from_secs(3))
                .is_none()
        );
        assert!(
            a.add("n2", "connection refused", t0 + Duration::from_secs(4))
                .is_none()
        );
        assert!(a.take_due(t0 + Duration::from_secs(9)).is_none());
        let e = a.take_due(t0 + w).unwrap();
        assert_eq!(
            nodes(&e),
            (
                NodeState::NodeError as i32,
                vec!["n1".into(), "n2".into()],
                "connection refused".into()
            )
        );
        assert_eq!(e.node_name, "relay");
        assert!(a.deadline().is_none());
    }

    #[test]
    fn another_message_flushes_the_pending_one() {
        let t0 = Instant::now();
        let mut a = ErrorAggregator::new(Duration::from_secs(10), "relay");
        a.add("n1", "x", t0);
        let flushed = a.add("n2", "y", t0).unwrap();
        assert_eq!(nodes(&flushed).1, ["n1"]);
        assert_eq!(nodes(&a.take_all().unwrap()).2, "y");
    }

    #[test]
    fn names_any_tells_whether_a_node_has_a_pending_error() {
        let mut a = ErrorAggregator::new(Duration::from_secs(10), "relay");
        assert!(!a.names_any(&["n1".into()]));
        a.add("n1", "x", Instant::now());
        assert!(a.names_any(&["n2".into(), "n1".into()]));
        assert!(!a.names_any(&["n2".into()]));
    }
}
