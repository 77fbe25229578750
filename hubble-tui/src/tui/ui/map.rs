//! The service map view (`m`): in place of the flow table, the edges of
//! the map of every flow of the current filter ([`crate::map`]), grouped
//! as the top talkers are (`g`: workload, namespace, identity), largest
//! first: source → destination, flows, forwarded, dropped, other, ports
//! (and services when wide), the arrow coloured by verdict (green all
//! forwarded, red all dropped, yellow both, gray other). A selected edge;
//! focused (`f`/`t`), only one node's edges, under a boxes-and-arrows
//! drawing of the node, its sources (left) and its targets (right). On a
//! wide screen a nodes panel lists each node with its kind and flows in
//! and out.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::common::short_count;
use super::table::column_widths;
use crate::map::{Edge, Graph, Tone};
use crate::printer::{escape_terminal, group_thousands};
use crate::tui::app::{App, Inbox, MapEdge};

/// Main areas at least this wide get the nodes panel.
const NODES_MIN_WIDTH: u16 = 120;
/// The nodes panel's width.
const NODES_WIDTH: u16 = 44;
/// Focused, inner areas at least this tall get the boxes-and-arrows
/// diagram above the edge table.
const DIAGRAM_MIN_HEIGHT: u16 = 12;
/// Edge tables at least this wide get a SERVICES column.
const WIDE_TABLE: u16 = 100;
/// Columns of an arrow between two boxes (with its count).
const ARROW_WIDTH: u16 = 10;

fn tone_color(t: Tone) -> Color {
    match t {
        Tone::Forwarded => Color::Green,
        Tone::Dropped => Color::Red,
        Tone::Mixed => Color::Yellow,
        Tone::Other => Color::Gray,
    }
}

fn clean(s: &str) -> String {
    escape_terminal(s, false).into_owned()
}

/// Draws the map view.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &mut App, inbox: &Inbox) {
    let full = inbox.stats.service_map(app.group).graph();
    let focus = app
        .map_focus
        .as_deref()
        .filter(|id| full.node(id).is_some())
        .map(str::to_owned);
    let g = match &focus {
        Some(id) => full.focus(id),
        None => full,
    };
    let mut title = format!(
        " map by {}: {} nodes, {} edges",
        g.grouping.name(),
        g.nodes.len(),
        g.edges.len()
    );
    if let Some(id) = &focus {
        title.push_str(&format!(" around {}", clean(g.label(id))));
    }
    if g.overflow > 0 {
        title.push_str(&format!(", {} flows unmapped", group_thousands(g.overflow)));
    }
    title.push(' ');
    let (edges_area, nodes_area) = if area.width >= NODES_MIN_WIDTH {
        let c =
            Layout::horizontal([Constraint::Min(60), Constraint::Length(NODES_WIDTH)]).split(area);
        (c[0], Some(c[1]))
    } else {
        (area, None)
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(edges_area);
    frame.render_widget(block, edges_area);
    if g.edges.is_empty() {
        app.map_edge = None;
        frame.render_widget(Paragraph::new(" no flows mapped yet"), inner);
    } else {
        let table_area = match &focus {
            Some(id) if inner.height >= DIAGRAM_MIN_HEIGHT => {
                let h = draw_focus(frame, inner, &g, id);
                let c =
                    Layout::vertical([Constraint::Length(h + 1), Constraint::Min(2)]).split(inner);
                c[1]
            }
            _ => inner,
        };
        draw_edges(frame, table_area, app, &g);
    }
    if let Some(r) = nodes_area {
        draw_nodes(frame, r, &g);
    }
}

/// Draws the focused node's neighbourhood as boxes and arrows at the top
/// of `area`: its sources on the left, itself in the middle, its targets on
/// the right, busiest first, as many as a third of the height holds (the
/// table below lists every edge). Returns the rows used.
fn draw_focus(frame: &mut Frame<'_>, area: Rect, g: &Graph, id: &str) -> u16 {
    let inbound: Vec<&Edge> = g
        .edges
        .iter()
        .filter(|e| e.target == id && e.source != id)
        .collect();
    let outbound: Vec<&Edge> = g
        .edges
        .iter()
        .filter(|e| e.source == id && e.target != id)
        .collect();
    let max_rows = usize::from(area.height / 3 / 3).max(1);
    let rows = inbound.len().max(outbound.len()).clamp(1, max_rows);
    let height = u16::try_from(rows * 3).unwrap_or(u16::MAX);
    let gap = ARROW_WIDTH;
    let col = area.width.saturating_sub(2 * gap) / 3;
    let boxed = |frame: &mut Frame<'_>, r: Rect, label: &str, style: Style| {
        let room = usize::from(r.width.saturating_sub(2));
        let mut text = clean(label);
        if text.chars().count() > room {
            text = text
                .chars()
                .take(room.saturating_sub(1))
                .collect::<String>()
                + "…";
        }
        let above = usize::from(r.height.saturating_sub(3) / 2);
        frame.render_widget(
            Paragraph::new("\n".repeat(above) + &text)
                .style(style)
                .block(Block::default().borders(Borders::ALL)),
            r,
        );
    };
    let arrow = |frame: &mut Frame<'_>, x: u16, y: u16, e: &Edge| {
        let n = short_count(e.total);
        let dashes = usize::from(gap).saturating_sub(n.chars().count() + 3);
        let left = dashes / 2;
        let text = format!(" {}{n}{}▶ ", "─".repeat(left), "─".repeat(dashes - left));
        frame.render_widget(
            Paragraph::new(text).style(Style::new().fg(tone_color(e.tone()))),
            Rect::new(x, y, gap, 1),
        );
    };
    let (x0, y0) = (area.x, area.y);
    let mid_x = x0 + col + gap;
    let center = Rect::new(mid_x, y0, col, height);
    boxed(
        frame,
        center,
        g.label(id),
        Style::new().add_modifier(Modifier::BOLD),
    );
    for (i, e) in inbound.iter().take(rows).enumerate() {
        let y = y0 + u16::try_from(i * 3).unwrap_or(0);
        boxed(
            frame,
            Rect::new(x0, y, col, 3),
            g.label(&e.source),
            Style::new(),
        );
        arrow(frame, x0 + col, y + 1, e);
    }
    for (i, e) in outbound.iter().take(rows).enumerate() {
        let y = y0 + u16::try_from(i * 3).unwrap_or(0);
        arrow(frame, mid_x + col, y + 1, e);
        boxed(
            frame,
            Rect::new(mid_x + col + gap, y, col, 3),
            g.label(&e.target),
            Style::new(),
        );
    }
    height
}

fn draw_edges(frame: &mut Frame<'_>, area: Rect, app: &mut App, g: &Graph) {
    let height = usize::from(area.height.saturating_sub(1)).max(1);
    app.page = height;
    let last = g.edges.len() - 1;
    let sel = app.map_selected.min(last);
    app.map_selected = sel;
    let mut top = app.map_top.min(last);
    if sel < top {
        top = sel;
    } else if sel >= top + height {
        top = sel + 1 - height;
    }
    app.map_top = top;
    let e = &g.edges[sel];
    app.map_edge = Some(MapEdge {
        source: e.source.clone(),
        target: e.target.clone(),
        filter: g.edge_filter(e),
    });

    let wide = area.width >= WIDE_TABLE;
    let mut header = vec![
        "SOURCE",
        "",
        "DESTINATION",
        "FLOWS",
        "FWD",
        "DROP",
        "OTHER",
        "PORTS",
    ];
    let mut tiers = vec![1, 0, 1, 0, 0, 0, 0, 2];
    if wide {
        header.push("SERVICES");
        tiers.push(2);
    }
    let rows: Vec<(Vec<String>, Tone)> = g
        .edges
        .iter()
        .skip(top)
        .take(height)
        .map(|e| {
            let mut r = vec![
                clean(g.label(&e.source)),
                "→".to_owned(),
                clean(g.label(&e.target)),
                group_thousands(e.total),
                group_thousands(e.forwarded),
                group_thousands(e.dropped),
                group_thousands(e.other),
                clean(&e.ports.join(",")),
            ];
            if wide {
                r.push(clean(&e.services.join(",")));
            }
            (r, e.tone())
        })
        .collect();
    let mut natural: Vec<u16> = header.iter().map(|h| h.len() as u16).collect();
    for (r, _) in &rows {
        for (w, c) in natural.iter_mut().zip(r) {
            *w = (*w).max(u16::try_from(c.chars().count()).unwrap_or(u16::MAX));
        }
    }
    let spacing = u16::try_from(header.len() - 1).unwrap_or(0);
    let avail = area.width.saturating_sub(spacing);
    let widths: Vec<Constraint> = column_widths(&natural, &tiers, avail)
        .into_iter()
        .map(Constraint::Length)
        .collect();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let table_rows = rows.into_iter().enumerate().map(|(i, (r, tone))| {
        let count = |s: String, n: bool, c: Color| {
            if n {
                Cell::from(s).style(Style::new().fg(c))
            } else {
                Cell::from(s)
            }
        };
        let mut cells = Vec::with_capacity(r.len());
        for (j, c) in r.into_iter().enumerate() {
            cells.push(match j {
                1 => Cell::from(c).style(bold.fg(tone_color(tone))),
                4 => {
                    let nz = c != "0";
                    count(c, nz, Color::Green)
                }
                5 => {
                    let nz = c != "0";
                    count(c, nz, Color::Red)
                }
                _ => Cell::from(c),
            });
        }
        let row = Row::new(cells);
        if top + i == sel {
            row.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let table = Table::new(table_rows, widths).header(Row::new(header).style(bold));
    frame.render_widget(table, area);
}

/// The nodes panel: each node with its kind and flows in and out, busiest
/// first.
fn draw_nodes(frame: &mut Frame<'_>, area: Rect, g: &Graph) {
    let mut nodes: Vec<(&str, &str, u64, u64)> = g
        .nodes
        .iter()
        .map(|n| {
            let out = g
                .edges
                .iter()
                .filter(|e| e.source == n.id)
                .map(|e| e.total)
                .sum();
            let inn = g
                .edges
                .iter()
                .filter(|e| e.target == n.id)
                .map(|e| e.total)
                .sum();
            (n.label.as_str(), n.kind.name(), inn, out)
        })
        .collect();
    nodes.sort_by(|a, b| (b.2 + b.3).cmp(&(a.2 + a.3)).then_with(|| a.0.cmp(b.0)));
    let header = ["NODE", "KIND", "IN", "OUT"];
    let cells: Vec<[String; 4]> = nodes
        .iter()
        .map(|(l, k, i, o)| {
            [
                clean(l),
                (*k).to_owned(),
                group_thousands(*i),
                group_thousands(*o),
            ]
        })
        .collect();
    let mut natural: Vec<u16> = header.iter().map(|h| h.len() as u16).collect();
    for r in &cells {
        for (w, c) in natural.iter_mut().zip(r) {
            *w = (*w).max(u16::try_from(c.chars().count()).unwrap_or(u16::MAX));
        }
    }
    let avail = area.width.saturating_sub(2).saturating_sub(3);
    let widths: Vec<Constraint> = column_widths(&natural, &[1, 0, 0, 0], avail)
        .into_iter()
        .map(Constraint::Length)
        .collect();
    let table = Table::new(cells.into_iter().map(Row::new), widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(" nodes "));
    frame.render_widget(table, area);
}
