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
use ratatui::text::Line;
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

/// The cells of one flow's row (only called for the rows on screen), and
/// its verdict's colour.
fn flow_cells(app: &App, f: &Flow, show_node: bool) -> (Vec<String>, Color) {
    let (src, dst) = app.printer.host_names(f);
    let clean = |s: &str| escape_terminal(s, false).into_owned();
    let mut cells = vec![fmt_timestamp(TimeFormat::StampMilli, f.time.as_ref())];
    if show_node {
        cells.push(clean(&f.node_name));
    }
    cells.extend([
        clean(&src),
        clean(&dst),
        clean(&service_cell(f)),
        clean(&flow_type(f)),
        app.printer.verdict(f),
        clean(&app.printer.summary(f)),
    ]);
    (cells, verdict_color(f.verdict))
}

/// A column of the flow table: its header and its share when rows do not
/// fit (0: never cut, as time, type and verdict; SOURCE and DESTINATION
/// get three times the share of the others).
struct Column {
    header: &'static str,
    weight: u16,
}

const fn col(header: &'static str, weight: u16) -> Column {
    Column { header, weight }
}

/// The columns, NODE only when flows come from more than one node.
fn columns(show_node: bool) -> Vec<Column> {
    let mut c = vec![col("TIME", 0)];
    if show_node {
        c.push(col("NODE", 1));
    }
    c.extend([
        col("SOURCE", 3),
        col("DESTINATION", 3),
        col("SERVICE", 1),
        col("TYPE", 0),
        col("VERDICT", 0),
        col("SUMMARY", 1),
    ]);
    c
}

/// The narrowest a cut column gets (when the others leave it room).
const MIN_CUT_WIDTH: u16 = 8;

/// Column widths for content of `natural` widths in `avail` cells (the
/// spacing between columns already taken off). Everything fits: each
/// column is as wide as its widest cell and the last takes what is left.
/// Otherwise the columns of non-zero `weight` share what the others leave,
/// water-filling by weight: a column narrower than its share keeps its
/// width and leaves the rest to the others, the wider ones are cut in
/// proportion to their weights, so a short pod name is never cut to make
/// room for a long summary.
pub fn column_widths(natural: &[u16], weight: &[u16], avail: u16) -> Vec<u16> {
    let total: u32 = natural.iter().map(|w| u32::from(*w)).sum();
    let mut widths = natural.to_vec();
    if total <= u32::from(avail) {
        if let Some(last) = widths.last_mut() {
            *last += avail - total as u16;
        }
        return widths;
    }
    let fixed: u32 = natural
        .iter()
        .zip(weight)
        .filter(|(_, w)| **w == 0)
        .map(|(n, _)| u32::from(*n))
        .sum();
    let mut left = u32::from(avail).saturating_sub(fixed);
    let mut flex: Vec<usize> = (0..natural.len()).filter(|i| weight[*i] > 0).collect();
    // Narrowest for its weight first.
    flex.sort_by(|a, b| {
        (u32::from(natural[*a]) * u32::from(weight[*b]))
            .cmp(&(u32::from(natural[*b]) * u32::from(weight[*a])))
    });
    let mut wsum: u32 = flex.iter().map(|i| u32::from(weight[*i])).sum();
    for (n, &i) in flex.iter().enumerate() {
        let (nat, w) = (u32::from(natural[i]), u32::from(weight[i]));
        if nat * wsum <= left * w {
            left -= nat;
            wsum -= w;
            continue;
        }
        // Every column from here on is wider than its share: each gets its
        // share, the remainder going one cell each to the first.
        let rest = &flex[n..];
        let shares: Vec<u32> = rest
            .iter()
            .map(|j| u32::from(weight[*j]) * left / wsum)
            .collect();
        let mut extra = left - shares.iter().sum::<u32>();
        for (&j, share) in rest.iter().zip(shares) {
            let mut cells = share;
            if extra > 0 {
                cells += 1;
                extra -= 1;
            }
            let cells = u16::try_from(cells).unwrap_or(u16::MAX);
            widths[j] = cells.max(MIN_CUT_WIDTH.min(natural[j]));
        }
        break;
    }
    // The minimums may have pushed the row past the room: take it back a
    // cell at a time from the cut column widest for its weight, so columns
    // never cut (TYPE) keep their width.
    let mut over = widths
        .iter()
        .map(|w| u32::from(*w))
        .sum::<u32>()
        .saturating_sub(u32::from(avail));
    while over > 0 {
        let widest = flex
            .iter()
            .copied()
            .filter(|&j| widths[j] > MIN_CUT_WIDTH.min(natural[j]))
            .max_by(|&a, &b| {
                (u32::from(widths[a]) * u32::from(weight[b]))
                    .cmp(&(u32::from(widths[b]) * u32::from(weight[a])))
            });
        let Some(j) = widest else { break };
        widths[j] -= 1;
        over -= 1;
    }
    widths
}

/// Display width of a cell's text.
fn width(s: &str) -> u16 {
    u16::try_from(Line::from(s).width()).unwrap_or(u16::MAX)
}

/// Draws the flow table; `show_node` adds the NODE column.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &mut App, show_node: bool) {
    let title = format!(
        " flows {}/{} ",
        group_thousands(app.history.len() as u64),
        group_thousands(app.cfg.history as u64)
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner_height = area.height.saturating_sub(3) as usize;
    let (start, end, sel) = app.window(inner_height);
    let cols = columns(show_node);
    let cells: Vec<(Vec<String>, Color)> = app
        .history
        .range(start..end)
        .map(|r| flow_cells(app, &r.flow, show_node))
        .collect();
    let mut natural: Vec<u16> = cols.iter().map(|c| width(c.header)).collect();
    for (row, _) in &cells {
        for (w, cell) in natural.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let weight: Vec<u16> = cols.iter().map(|c| c.weight).collect();
    let spacing = cols.len() as u16 - 1;
    let avail = area.width.saturating_sub(2).saturating_sub(spacing);
    let widths: Vec<Constraint> = column_widths(&natural, &weight, avail)
        .into_iter()
        .map(Constraint::Length)
        .collect();
    let verdict_col = cols.len() - 2;
    let rows: Vec<Row<'_>> = cells
        .into_iter()
        .map(|(row, color)| {
            let cells = row.into_iter().enumerate().map(|(i, c)| {
                if i == verdict_col {
                    Cell::from(c).style(Style::new().fg(color).add_modifier(Modifier::BOLD))
                } else {
                    Cell::from(c)
                }
            });
            let row = Row::new(cells);
            if color == Color::Red {
                row.style(Style::new().fg(Color::Red))
            } else {
                row
            }
        })
        .collect();
    let header =
        Row::new(cols.iter().map(|c| c.header)).style(Style::new().add_modifier(Modifier::BOLD));
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

    #[test]
    fn columns_fit_their_content_and_share_what_is_short() {
        let w = [0, 1, 1, 0, 1];
        // Everything fits: natural widths, the last takes the rest.
        assert_eq!(
            column_widths(&[5, 10, 10, 20, 7], &w, 60),
            [5, 10, 10, 20, 15]
        );
        // 10 short of room: only the widest cut column shrinks.
        assert_eq!(
            column_widths(&[5, 10, 30, 20, 7], &w, 62),
            [5, 10, 20, 20, 7]
        );
        // Fixed columns (here the fourth, a TYPE) are never cut.
        assert_eq!(
            column_widths(&[5, 30, 30, 21, 30], &w, 62),
            [5, 12, 12, 21, 12]
        );
        // Remainders go one cell each to the first cut columns.
        assert_eq!(
            column_widths(&[5, 30, 30, 21, 30], &w, 63),
            [5, 13, 12, 21, 12]
        );
        // No room at all: cut columns keep a minimum.
        assert_eq!(column_widths(&[5, 30, 3, 21, 30], &w, 20), [5, 8, 3, 21, 8]);
        // Weights: a weight-2 column gets twice the share.
        assert_eq!(
            column_widths(&[5, 40, 40, 21, 40], &[0, 2, 1, 0, 1], 66),
            [5, 20, 10, 21, 10]
        );
        // Minimums are taken back from the widest for its weight: the
        // row still fits.
        assert_eq!(
            column_widths(
                &[19, 22, 34, 39, 22, 27, 9, 20],
                &[0, 1, 3, 3, 1, 0, 0, 1],
                111
            ),
            [19, 8, 16, 16, 8, 27, 9, 8]
        );
        // Huge content does not overflow the arithmetic.
        assert_eq!(
            column_widths(&[5, u16::MAX, 9, 21, 7], &w, 62),
            [5, 20, 9, 21, 7]
        );
    }
}
