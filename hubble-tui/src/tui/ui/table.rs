//! The flow table: one row per flow of the window that shows the
//! selection, coloured by verdict; only the rows on screen are formatted.
//! The SERVICE column names the service a flow is for (`→ ns/name`, its
//! `destination_service`) or comes from (`← ns/name`, its
//! `source_service`, e.g. a reply from the VIP), which SOURCE and
//! DESTINATION hide when the side is a pod.

use proto::flow::{Flow, Service};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::common::verdict_color;
use crate::gotime::{TimeFormat, fmt_timestamp};
use crate::printer::{escape_terminal, flow_type, group_thousands};
use crate::tui::app::App;

/// The SERVICE cell: the destination's service, else the source's.
pub fn service_cell(f: &Flow) -> String {
    let named = |s: &Option<Service>| {
        s.as_ref()
            .filter(|s| !s.name.is_empty())
            .map(|s| format!("{}/{}", s.namespace, s.name))
    };
    match (named(&f.source_service), named(&f.destination_service)) {
        (_, Some(d)) => format!("→ {d}"),
        (Some(s), None) => format!("← {s}"),
        (None, None) => String::new(),
    }
}

/// One table row: only called for the rows on screen.
fn flow_row<'a>(app: &App, f: &Flow) -> Row<'a> {
    let (src, dst) = app.printer.host_names(f);
    let verdict = app.printer.verdict(f);
    let summary = app.printer.summary(f);
    let clean = |s: &str| escape_terminal(s, false).into_owned();
    let color = verdict_color(f.verdict);
    let row = Row::new(vec![
        Cell::from(fmt_timestamp(TimeFormat::StampMilli, f.time.as_ref())),
        Cell::from(clean(&src)),
        Cell::from(clean(&dst)),
        Cell::from(clean(&service_cell(f))),
        Cell::from(clean(&flow_type(f))),
        Cell::from(verdict).style(Style::new().fg(color).add_modifier(Modifier::BOLD)),
        Cell::from(clean(&summary)),
    ]);
    if color == Color::Red {
        row.style(Style::new().fg(Color::Red))
    } else {
        row
    }
}

/// Draws the flow table.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &mut App) {
    let title = format!(
        " flows {}/{} ",
        group_thousands(app.history.len() as u64),
        group_thousands(app.cfg.history as u64)
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner_height = area.height.saturating_sub(3) as usize;
    let (start, end, sel) = app.window(inner_height);
    let rows: Vec<Row<'_>> = app
        .history
        .range(start..end)
        .map(|r| flow_row(app, &r.flow))
        .collect();
    let header = Row::new([
        "TIME",
        "SOURCE",
        "DESTINATION",
        "SERVICE",
        "TYPE",
        "VERDICT",
        "SUMMARY",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(19),
        Constraint::Fill(3),
        Constraint::Fill(3),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(9),
        Constraint::Fill(3),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    state.select(sel);
    frame.render_stateful_widget(table, area, &mut state);
    if app.history.is_empty() {
        let msg = if app.paused {
            "paused"
        } else {
            "waiting for flows…"
        };
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1.min(area.height.saturating_sub(3)),
        };
        frame.render_widget(
            Paragraph::new(msg).style(Style::new().fg(Color::DarkGray)),
            inner,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str) -> Option<Service> {
        Some(Service {
            name: name.into(),
            namespace: ns.into(),
        })
    }

    #[test]
    fn service_cell_prefers_the_destination() {
        let mut f = Flow::default();
        assert_eq!(service_cell(&f), "");
        f.source_service = svc("empire", "deathstar");
        assert_eq!(service_cell(&f), "← empire/deathstar");
        f.destination_service = svc("kube-system", "kube-dns");
        assert_eq!(service_cell(&f), "→ kube-system/kube-dns");
        f.destination_service = svc("x", "");
        assert_eq!(service_cell(&f), "← empire/deathstar");
    }
}
