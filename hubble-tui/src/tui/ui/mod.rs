//! Drawing: a pure function of the [`App`] and the [`Inbox`], so the same
//! state always draws the same screen (snapshot tests rely on it). Only the
//! rows on screen are formatted, whatever the history holds.
//!
//! One module per widget: `title` (with `node_status`), `table` (or
//! `aggregated`, its grouped counterpart, or `map`, the service map),
//! `detail`, `nodes` (the nodes panel), and the side panel's `counters`, `top_n` and
//! `sparkline`; `bottom` is the filter line, `help` the overlay;
//! `common` what they share. This module lays them out:
//!
//! ```text
//!  title: source, connection, nodes, flows and rate, lost, mode, grouping
//!  ┌ flows ──────────────────────────────┐┌ verdicts ─────┐
//!  │ TIME SOURCE DESTINATION TYPE …      ││ drop reasons  │
//!  │                                     │├ top talkers ──┤
//!  │                                     │├ top drops ────┤
//!  │                                     │├ flows/s ──────┤
//!  └─────────────────────────────────────┘└───────────────┘
//!  (nodes panel: state, flows/s, flows, lost per node, when open)
//!  (detail pane: fields | JSON, when open)
//!  filter line / editor / message                     keys
//! ```

mod aggregated;
mod bottom;
mod common;
mod counters;
mod detail;
mod help;
mod map;
mod node_status;
mod nodes;
mod sparkline;
mod table;
mod title;
mod top_n;

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};

use crate::tui::app::{App, Inbox};

pub use common::verdict_color;
pub use detail::flow_fields;
pub use help::HELP;

/// Width of the side panel; it is left out on screens narrower than
/// [`SIDE_MIN_SCREEN`].
const SIDE_WIDTH: u16 = 40;
/// Screens narrower than this show the flow table alone.
const SIDE_MIN_SCREEN: u16 = 110;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &mut App, inbox: &Inbox) {
    let area = frame.area();
    let rows = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .split(area);
    title::draw(frame, rows[0], app, inbox);
    let body = rows[1];
    let (main, side) = if body.width >= SIDE_MIN_SCREEN && !app.side_hidden {
        let c =
            Layout::horizontal([Constraint::Min(40), Constraint::Length(SIDE_WIDTH)]).split(body);
        (c[0], Some(c[1]))
    } else {
        (body, None)
    };
    // NODE column whenever flows come from more than one node (as
    // `--print-node-name` would show them).
    let show_node = inbox.seen_nodes.len() > 1;
    let main = if app.nodes_panel {
        let h = nodes::height(inbox.node_rows().len());
        let c = Layout::vertical([Constraint::Min(3), Constraint::Length(h)]).split(main);
        nodes::draw(frame, c[1], app, inbox);
        c[0]
    } else {
        main
    };
    if app.map {
        map::draw(frame, main, app, inbox);
    } else if app.aggregated {
        aggregated::draw(frame, main, app, inbox);
    } else if app.detail {
        let c =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).split(main);
        table::draw(frame, c[0], app, show_node);
        detail::draw(frame, c[1], app);
    } else {
        table::draw(frame, main, app, show_node);
    }
    if let Some(side) = side {
        draw_side(frame, side, app, inbox);
    }
    bottom::draw(frame, rows[2], app);
    if app.help {
        help::draw(frame, area);
    }
}

/// The side panel: counters, top talkers, top drops, the rate.
fn draw_side(frame: &mut Frame<'_>, area: Rect, app: &App, inbox: &Inbox) {
    let s = &inbox.stats;
    let counters = counters::Counters::new(s);
    let top = Layout::vertical([
        Constraint::Length(counters.height()),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(5),
    ])
    .direction(Direction::Vertical)
    .split(area);
    let inner_w = area.width.saturating_sub(2);
    counters.draw(frame, top[0], inner_w);
    top_n::draw_talkers(frame, top[1], s, app.group, inner_w);
    top_n::draw_drops(frame, top[2], s, app.group, inner_w);
    sparkline::draw(frame, top[3], s, inner_w);
}
