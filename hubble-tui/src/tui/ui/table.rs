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

/// A column of the flow table: its header and when it gives way if rows do
/// not fit: tier 0 never (time, type, verdict), tier 1 last (SOURCE and
/// DESTINATION), tier 2 first (NODE, SERVICE, SUMMARY).
struct Column {
    header: &'static str,
    tier: u8,
}

const fn col(header: &'static str, tier: u8) -> Column {
    Column { header, tier }
}

/// The columns, NODE only when flows come from more than one node.
fn columns(show_node: bool) -> Vec<Column> {
    let mut c = vec![col("TIME", 0)];
    if show_node {
        c.push(col("NODE", 2));
    }
    c.extend([
        col("SOURCE", 1),
        col("DESTINATION", 1),
        col("SERVICE", 2),
        col("TYPE", 0),
        col("VERDICT", 0),
        col("SUMMARY", 2),
    ]);
    c
}

/// The narrowest a cut column gets (when the others leave it room).
const MIN_CUT_WIDTH: u16 = 8;

/// Shares `budget` cells among the columns `idx` of `natural` widths,
/// water-filling: a column narrower than the fair share keeps its width
/// and leaves the rest to the others; the wider ones get equal widths (the
/// remainder one cell each to the first). Returns the widths, in `idx`
/// order.
fn water_fill(natural: &[u16], idx: &[usize], budget: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..idx.len()).collect();
    order.sort_by_key(|k| natural[idx[*k]]);
    let mut out = vec![0u32; idx.len()];
    let mut left = budget;
    let mut k = idx.len() as u32;
    for (n, &o) in order.iter().enumerate() {
        let nat = u32::from(natural[idx[o]]);
        if nat * k <= left {
            out[o] = nat;
            left -= nat;
            k -= 1;
            continue;
        }
        let share = left / k;
        let mut extra = left % k;
        let mut rest: Vec<usize> = order[n..].to_vec();
        rest.sort_unstable();
        for o in rest {
            out[o] = share + u32::from(extra > 0);
            extra = extra.saturating_sub(1);
        }
        break;
    }
    out
}

/// Column widths for content of `natural` widths in `avail` cells (the
/// spacing between columns already taken off). Everything fits: each
/// column is as wide as its widest cell and the last takes what is left.
/// Otherwise tier-0 columns keep their width; tier-1 columns share what is
/// left after the tier-2 columns' minimums, and tier-2 columns share the
/// rest (each tier water-filled, so a short pod name is never cut to make
/// room for a long one); a cut column keeps [`MIN_CUT_WIDTH`] cells where
/// the room allows.
pub fn column_widths(natural: &[u16], tier: &[u8], avail: u16) -> Vec<u16> {
    let total: u32 = natural.iter().map(|w| u32::from(*w)).sum();
    let mut widths = natural.to_vec();
    if total <= u32::from(avail) {
        if let Some(last) = widths.last_mut() {
            *last += avail - total as u16;
        }
        return widths;
    }
    let min = |i: usize| MIN_CUT_WIDTH.min(natural[i]);
    let of_tier = |t: u8| -> Vec<usize> { (0..natural.len()).filter(|i| tier[*i] == t).collect() };
    let (fixed, first, second) = (of_tier(0), of_tier(1), of_tier(2));
    let fixed_w: u32 = fixed.iter().map(|i| u32::from(natural[*i])).sum();
    let left = u32::from(avail).saturating_sub(fixed_w);
    let second_min: u32 = second.iter().map(|i| u32::from(min(*i))).sum();
    let a = water_fill(natural, &first, left.saturating_sub(second_min));
    let used: u32 = a.iter().sum();
    let b = water_fill(natural, &second, left.saturating_sub(used));
    for (i, w) in first.iter().zip(a).chain(second.iter().zip(b)) {
        widths[*i] = u16::try_from(w).unwrap_or(u16::MAX).max(min(*i));
    }
    // The minimums may have pushed the row past the room: take it back a
    // cell at a time from the widest cut column, so tier-0 columns (TYPE)
    // keep their width.
    let mut over = widths
        .iter()
        .map(|w| u32::from(*w))
        .sum::<u32>()
        .saturating_sub(u32::from(avail));
    while over > 0 {
        let widest = first
            .iter()
            .chain(&second)
            .copied()
            .filter(|&j| widths[j] > min(j))
            .max_by_key(|&j| widths[j]);
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
    let tier: Vec<u8> = cols.iter().map(|c| c.tier).collect();
    let spacing = cols.len() as u16 - 1;
    let avail = area.width.saturating_sub(2).saturating_sub(spacing);
    let widths: Vec<Constraint> = column_widths(&natural, &tier, avail)
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
    fn columns_fit_their_content_and_names_give_way_last() {
        // TIME, SOURCE, DESTINATION, TYPE, SUMMARY.
        let t = [0, 1, 1, 0, 2];
        // Everything fits: natural widths, the last takes the rest.
        assert_eq!(
            column_widths(&[5, 10, 10, 20, 7], &t, 60),
            [5, 10, 10, 20, 15]
        );
        // Short of room: SUMMARY gives way first, down to its minimum.
        assert_eq!(
            column_widths(&[5, 10, 30, 20, 20], &t, 75),
            [5, 10, 30, 20, 10]
        );
        assert_eq!(
            column_widths(&[5, 10, 30, 20, 20], &t, 73),
            [5, 10, 30, 20, 8]
        );
        // Then the names, the longer one first; TYPE never.
        assert_eq!(
            column_widths(&[5, 10, 30, 20, 20], &t, 63),
            [5, 10, 20, 20, 8]
        );
        assert_eq!(
            column_widths(&[5, 30, 30, 21, 30], &t, 62),
            [5, 14, 14, 21, 8]
        );
        // Remainders go one cell each to the first.
        assert_eq!(
            column_widths(&[5, 30, 30, 21, 30], &t, 63),
            [5, 15, 14, 21, 8]
        );
        // No room at all: cut columns keep a minimum.
        assert_eq!(column_widths(&[5, 30, 3, 21, 30], &t, 20), [5, 8, 3, 21, 8]);
        // The fixture at 160 columns with the side panel: TYPE whole.
        assert_eq!(
            column_widths(
                &[19, 22, 34, 39, 22, 27, 9, 20],
                &[0, 2, 1, 1, 2, 0, 0, 2],
                111
            ),
            [19, 8, 16, 16, 8, 27, 9, 8]
        );
        // Huge content does not overflow the arithmetic.
        assert_eq!(
            column_widths(&[5, u16::MAX, 9, 21, 7], &t, 62),
            [5, 20, 9, 21, 7]
        );
    }
}
