//! The nodes panel (`n`): per node, its state as the relay reports it
//! (connected, unavailable), flows per second, flows and lost events; the
//! node the filter is narrowed to (`N`) is marked.

use proto::relay::NodeState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use crate::printer::{escape_terminal, group_thousands};
use crate::tui::app::{App, Inbox, NodeRow};

/// Rows the panel shows at most (a larger cluster scrolls off its end;
/// the title says how many there are).
pub const MAX_ROWS: usize = 10;

/// The panel's height for `n` nodes: borders, header, one line each.
pub fn height(n: usize) -> u16 {
    n.clamp(1, MAX_ROWS) as u16 + 3
}

/// The state cell: the relay's word for it, or `-` for a node known only
/// from its flows (a single exporter sends no node status).
fn state_cell(r: &NodeRow) -> (&'static str, Color) {
    match r.state {
        Some(NodeState::NodeConnected) => ("connected", Color::Green),
        Some(NodeState::NodeUnavailable) => ("unavailable", Color::Red),
        Some(NodeState::NodeError) => ("error", Color::Red),
        Some(NodeState::NodeGone) => ("gone", Color::DarkGray),
        Some(NodeState::UnknownNodeState) | None => ("-", Color::Reset),
    }
}

/// Draws the nodes panel.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, inbox: &Inbox) {
    let rows = inbox.node_rows();
    let filtered = super::super::keys::node_filter(&app.filter);
    let title = format!(" nodes {} (n: close, N: filter to the next) ", rows.len());
    let name_w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 40) as u16
        + 2;
    let lines = rows.iter().take(MAX_ROWS).map(|r| {
        let (state, color) = state_cell(r);
        let mark = if filtered.as_deref() == Some(r.name.as_str()) {
            "▶ "
        } else {
            "  "
        };
        let lost = Cell::from(group_thousands(r.lost)).style(if r.lost > 0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        });
        Row::new(vec![
            Cell::from(format!("{mark}{}", escape_terminal(&r.name, false))),
            Cell::from(state).style(Style::new().fg(color)),
            Cell::from(group_thousands(r.rate)),
            Cell::from(group_thousands(r.flows)),
            lost,
        ])
    });
    let header = Row::new(["  NODE", "STATE", "FLOWS/S", "FLOWS", "LOST"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let table = Table::new(
        lines,
        [
            Constraint::Length(name_w),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(12),
            Constraint::Length(10),
        ],
    )
    .header(header)
    .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}
