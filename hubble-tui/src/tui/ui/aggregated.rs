//! The aggregated view (`a`): in place of the flow table, the flows of the
//! current filter counted by source, destination, destination port and
//! verdict, largest first. Sources and destinations are grouped as the top
//! talkers are (`g`: pod, namespace or identity), and every flow counts,
//! not only the ones the history keeps.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::common::verdict_color;
use super::table::column_widths;
use crate::printer::{escape_terminal, group_thousands};
use crate::tui::app::{App, Inbox};

/// Draws the aggregated view.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, inbox: &Inbox) {
    let g = app.group.name();
    let title = format!(" flows by {g} → {g}, port, verdict (a: flows, g: group) ");
    let height = area.height.saturating_sub(3) as usize;
    let groups = inbox.stats.top_pairs(app.group, height);
    let header = ["SOURCE", "DESTINATION", "PORT", "VERDICT", "FLOWS"];
    let cells: Vec<([String; 5], Color)> = groups
        .into_iter()
        .map(|([s, d, p, v], n)| {
            let color = proto::flow::Verdict::from_str_name(&v)
                .map_or(Color::Reset, |v| verdict_color(v as i32));
            let clean = |s: &str| escape_terminal(s, false).into_owned();
            ([clean(&s), clean(&d), p, v, group_thousands(n)], color)
        })
        .collect();
    let mut natural: Vec<u16> = header.iter().map(|h| h.len() as u16).collect();
    for (row, _) in &cells {
        for (w, c) in natural.iter_mut().zip(row) {
            *w = (*w).max(u16::try_from(c.chars().count()).unwrap_or(u16::MAX));
        }
    }
    let avail = area.width.saturating_sub(2).saturating_sub(4);
    let widths: Vec<Constraint> = column_widths(&natural, &[1, 1, 0, 0, 0], avail)
        .into_iter()
        .map(Constraint::Length)
        .collect();
    let rows = cells.into_iter().map(|(row, color)| {
        let [s, d, p, v, n] = row;
        Row::new(vec![
            Cell::from(s),
            Cell::from(d),
            Cell::from(p),
            Cell::from(v).style(Style::new().fg(color).add_modifier(Modifier::BOLD)),
            Cell::from(n),
        ])
    });
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}
