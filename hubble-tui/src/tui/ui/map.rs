//! The service map view (`m`): in place of the flow table, the edges of
//! the map of every flow of the current filter ([`crate::map`]), grouped
//! as the top talkers are (`g`: workload, namespace, identity), largest
//! first: source → destination, flows, forwarded, dropped, other, ports
//! (and services when wide), the arrow coloured by verdict (green all
//! forwarded, red all dropped, yellow both, gray other). A selected edge;
//! focused (`f`/`t`), only one node's edges. On a wide screen a nodes
//! panel lists each node with its kind and flows in and out.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::table::column_widths;
use crate::map::{Graph, Tone};
use crate::printer::{escape_terminal, group_thousands};
use crate::tui::app::{App, Inbox, MapEdge};

/// Main areas at least this wide get the nodes panel.
const NODES_MIN_WIDTH: u16 = 120;
/// The nodes panel's width.
const NODES_WIDTH: u16 = 44;

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
    if g.edges.is_empty() {
        app.map_edge = None;
        frame.render_widget(
            Paragraph::new(" no flows mapped yet").block(block),
            edges_area,
        );
    } else {
        draw_edges(frame, edges_area, block, app, &g);
    }
    if let Some(r) = nodes_area {
        draw_nodes(frame, r, &g);
    }
}

fn draw_edges(frame: &mut Frame<'_>, area: Rect, block: Block<'_>, app: &mut App, g: &Graph) {
    let height = usize::from(area.height.saturating_sub(3)).max(1);
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

    let wide = area.width >= NODES_MIN_WIDTH - NODES_WIDTH + 40;
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
    let avail = area.width.saturating_sub(2).saturating_sub(spacing);
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
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(bold))
        .block(block);
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
