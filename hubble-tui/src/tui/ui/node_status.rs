//! The node status of the title bar: a relay's connected and unavailable
//! nodes, or the node names a single exporter's flows carry.

use proto::relay::NodeState;
use ratatui::style::{Color, Style};
use ratatui::text::Span;

use crate::printer::escape_terminal;
use crate::tui::app::{Inbox, SEEN_NODES_MAX};

/// `nodes 3 connected, 1 unavailable` from a relay's `ServerStatus`, or
/// node-status events and `GetNodes`; else the node names seen in flows (`node NAME`);
/// `None` before anything says.
pub fn node_summary(inbox: &Inbox) -> Option<Span<'static>> {
    let mut connected = inbox.server.as_ref().and_then(|s| s.connected_nodes);
    let mut unavailable = inbox.server.as_ref().and_then(|s| s.unavailable_nodes);
    if connected.is_none() && (!inbox.nodes.is_empty() || !inbox.known_nodes.is_empty()) {
        // Node-status events and `GetNodes`, the events first.
        let states: Vec<NodeState> = inbox.node_rows().iter().filter_map(|r| r.state).collect();
        let up = states
            .iter()
            .filter(|s| **s == NodeState::NodeConnected)
            .count() as u32;
        connected = Some(up);
        unavailable = Some(states.len() as u32 - up);
    }
    let Some(connected) = connected else {
        // A single exporter: the node names its flows carry.
        return match inbox.seen_nodes.len() {
            0 => None,
            1 => Some(Span::styled(
                format!("node {}", escape_terminal(inbox.seen_nodes.first()?, false)),
                Style::new().fg(Color::Green),
            )),
            n if n >= SEEN_NODES_MAX => Some(Span::raw(format!("{n}+ nodes"))),
            n => Some(Span::raw(format!("{n} nodes"))),
        };
    };
    let unavailable = unavailable.unwrap_or(0);
    let text = format!("nodes {connected} connected, {unavailable} unavailable");
    let style = if unavailable > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::Green)
    };
    Some(Span::styled(text, style))
}
