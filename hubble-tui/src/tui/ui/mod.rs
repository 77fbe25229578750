//! Drawing: a pure function of the [`App`] and the [`Inbox`], so the same
//! state always draws the same screen (snapshot tests rely on it). Only the
//! rows on screen are formatted, whatever the history holds.
//!
//! ```text
//!  title: source, connection, nodes, flows and rate, lost, mode, grouping
//!  ┌ flows ──────────────────────────────┐┌ verdicts ─────┐
//!  │ TIME SOURCE DESTINATION TYPE …      ││ drop reasons  │
//!  │                                     │├ top talkers ──┤
//!  │                                     │├ top drops ────┤
//!  │                                     │├ flows/s ──────┤
//!  └─────────────────────────────────────┘└───────────────┘
//!  (detail pane: fields | JSON, when open)
//!  filter line / editor / message                     keys
//! ```

use proto::flow::{Flow, Verdict};
use proto::relay::NodeState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap,
};

use super::app::{App, ConnState, Inbox, Mode, SEEN_NODES_MAX};
use crate::gotime::{TimeFormat, fmt_timestamp};
use crate::printer::{escape_terminal, flow_type, group_thousands};

/// Width of the side panel; it is left out on screens narrower than
/// [`SIDE_MIN_SCREEN`].
const SIDE_WIDTH: u16 = 40;
/// Screens narrower than this show the flow table alone.
const SIDE_MIN_SCREEN: u16 = 110;

/// The colour of a verdict (as `hubble observe` colours it).
pub fn verdict_color(verdict: i32) -> Color {
    match Verdict::try_from(verdict) {
        Ok(Verdict::Forwarded | Verdict::Redirected) => Color::Green,
        Ok(Verdict::Dropped | Verdict::Error) => Color::Red,
        Ok(Verdict::Audit | Verdict::Traced | Verdict::Translated) => Color::Yellow,
        _ => Color::Gray,
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &mut App, inbox: &Inbox) {
    let area = frame.area();
    let rows = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .split(area);
    draw_title(frame, rows[0], app, inbox);
    let body = rows[1];
    let (main, side) = if body.width >= SIDE_MIN_SCREEN {
        let c =
            Layout::horizontal([Constraint::Min(40), Constraint::Length(SIDE_WIDTH)]).split(body);
        (c[0], Some(c[1]))
    } else {
        (body, None)
    };
    if app.detail {
        let c =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).split(main);
        draw_flows(frame, c[0], app);
        draw_detail(frame, c[1], app);
    } else {
        draw_flows(frame, main, app);
    }
    if let Some(side) = side {
        draw_side(frame, side, app, inbox);
    }
    draw_bottom(frame, rows[2], app);
    if app.help {
        draw_help(frame, area);
    }
}

/// `12.3k` style for rates and counts in tight places.
fn short_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

fn draw_title(frame: &mut Frame<'_>, area: Rect, app: &App, inbox: &Inbox) {
    let (state, color) = match &inbox.conn {
        ConnState::Connecting { attempt: 1 } => ("connecting".to_owned(), Color::Yellow),
        ConnState::Connecting { attempt } => {
            (format!("connecting (attempt {attempt})"), Color::Yellow)
        }
        ConnState::Connected => ("connected".to_owned(), Color::Green),
        ConnState::Retrying { attempt, wait, .. } => (
            format!(
                "disconnected (retry {} in {:.1}s)",
                attempt + 1,
                wait.as_secs_f64()
            ),
            Color::Red,
        ),
        ConnState::Archive { done: false } => ("replaying archive".to_owned(), Color::Yellow),
        ConnState::Archive { done: true } => ("archive replayed".to_owned(), Color::Green),
        ConnState::ArchiveError(e) => (format!("archive error: {e}"), Color::Red),
    };
    let sep = || Span::raw("  │ ");
    let mut spans = vec![
        Span::styled(
            " hubble tui ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(" "),
        Span::raw(escape_terminal(&app.cfg.source, false).into_owned()),
        Span::raw(" "),
        Span::styled(format!("● {state}"), Style::new().fg(color)),
    ];
    if let Some(nodes) = node_summary(inbox) {
        spans.push(sep());
        spans.push(nodes);
    }
    spans.push(sep());
    spans.push(Span::raw(format!(
        "flows {} · {} flows/s",
        group_thousands(inbox.stats.flows),
        group_thousands(inbox.stats.last_rate())
    )));
    spans.push(sep());
    let lost = inbox.stats.lost;
    spans.push(Span::styled(
        format!("lost {}", group_thousands(lost)),
        if lost > 0 {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        },
    ));
    spans.push(sep());
    let mode = if app.paused {
        Span::styled(
            format!("PAUSED (+{})", group_thousands(app.paused_skipped)),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )
    } else if app.follow {
        Span::styled("FOLLOW", Style::new().fg(Color::Green))
    } else {
        Span::styled("SCROLL", Style::new().fg(Color::Cyan))
    };
    spans.push(mode);
    // Why the connection is down, last: the counters stay readable.
    if let ConnState::Retrying { error, .. } = &inbox.conn {
        spans.push(sep());
        spans.push(Span::styled(
            escape_terminal(error, false).into_owned(),
            Style::new().fg(Color::Red),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `nodes 3 connected, 1 unavailable` from a relay's `ServerStatus` or
/// node-status events; else the node names seen in flows (`node NAME`);
/// `None` before anything says.
fn node_summary(inbox: &Inbox) -> Option<Span<'static>> {
    let mut connected = inbox.server.as_ref().and_then(|s| s.connected_nodes);
    let mut unavailable = inbox.server.as_ref().and_then(|s| s.unavailable_nodes);
    if connected.is_none() && !inbox.nodes.is_empty() {
        let count = |s: NodeState| inbox.nodes.values().filter(|n| **n == s).count() as u32;
        connected = Some(count(NodeState::NodeConnected));
        unavailable = Some(inbox.nodes.len() as u32 - connected.unwrap_or(0));
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

fn draw_flows(frame: &mut Frame<'_>, area: Rect, app: &mut App) {
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
        "TYPE",
        "VERDICT",
        "SUMMARY",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(19),
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

/// Every field of a flow as `path: value` lines (its JSON flattened).
pub fn flow_fields(value: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

fn draw_detail(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let Some(row) = app.selected_flow() else {
        frame.render_widget(
            Paragraph::new("no flow selected")
                .block(Block::default().borders(Borders::ALL).title(" detail ")),
            area,
        );
        return;
    };
    let f = &row.flow;
    let cols =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(area);
    let value = serde_json::to_value(f).unwrap_or(serde_json::Value::Null);
    let fields: Vec<Line<'_>> = flow_fields(&value)
        .into_iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k}: "), Style::new().fg(Color::Cyan)),
                Span::raw(escape_terminal(&v, false).into_owned()),
            ])
        })
        .collect();
    let title = format!(
        " flow {} · {} ",
        escape_terminal(&f.uuid, false),
        escape_terminal(&f.node_name, false)
    );
    frame.render_widget(
        Paragraph::new(fields)
            .block(Block::default().borders(Borders::ALL).title(title))
            .scroll((app.detail_scroll, 0)),
        cols[0],
    );
    let json = serde_json::to_string_pretty(f).unwrap_or_default();
    let json: Vec<Line<'_>> = json
        .lines()
        .map(|l| Line::raw(escape_terminal(l, false).into_owned()))
        .collect();
    frame.render_widget(
        Paragraph::new(json)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" JSON (J/K scroll) "),
            )
            .scroll((app.detail_scroll, 0)),
        cols[1],
    );
}

/// A list of `name count` lines, counts right-aligned.
fn counts(
    items: &[(String, u64)],
    width: u16,
    color: impl Fn(&str) -> Style,
) -> Vec<Line<'static>> {
    let width = width as usize;
    items
        .iter()
        .map(|(name, n)| {
            let n = group_thousands(*n);
            let room = width.saturating_sub(n.len() + 1);
            let mut name = escape_terminal(name, false).into_owned();
            if name.chars().count() > room {
                name = name
                    .chars()
                    .take(room.saturating_sub(1))
                    .collect::<String>()
                    + "…";
            }
            let pad = width.saturating_sub(name.chars().count() + n.len());
            Line::from(vec![
                Span::styled(name.clone(), color(&name)),
                Span::raw(" ".repeat(pad)),
                Span::raw(n),
            ])
        })
        .collect()
}

fn draw_side(frame: &mut Frame<'_>, area: Rect, app: &App, inbox: &Inbox) {
    let s = &inbox.stats;
    let verdicts = s.verdict_counts();
    let reasons = s.top_drop_reasons(5);
    let top = Layout::vertical([
        Constraint::Length(
            (verdicts.len().max(1) + reasons.len() + 2 + u16::from(!reasons.is_empty()) as usize)
                as u16,
        ),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(5),
    ])
    .direction(Direction::Vertical)
    .split(area);
    let inner_w = area.width.saturating_sub(2);
    let mut lines = counts(&verdicts, inner_w, |name| {
        let v = Verdict::from_str_name(name).map_or(0, |v| v as i32);
        Style::new().fg(verdict_color(v))
    });
    if lines.is_empty() {
        lines.push(Line::styled("no flows", Style::new().fg(Color::DarkGray)));
    }
    if !reasons.is_empty() {
        lines.push(Line::styled(
            "drop reasons",
            Style::new().add_modifier(Modifier::BOLD),
        ));
        lines.extend(counts(&reasons, inner_w, |_| Style::new().fg(Color::Red)));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" verdicts ")),
        top[0],
    );
    let n = |r: Rect| r.height.saturating_sub(2) as usize;
    let by = app.group.name();
    frame.render_widget(
        Paragraph::new(counts(
            &s.top_talkers(app.group, n(top[1])),
            inner_w,
            |_| Style::new(),
        ))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" top talkers by {by} (g) ")),
        ),
        top[1],
    );
    frame.render_widget(
        Paragraph::new(counts(&s.top_drops(app.group, n(top[2])), inner_w, |_| {
            Style::new().fg(Color::Red)
        }))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" top drops by {by} ")),
        ),
        top[2],
    );
    let data = s.rate_history(inner_w as usize);
    let peak = data.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .style(Style::new().fg(Color::Cyan))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" flows/s (peak {}) ", short_count(peak))),
            ),
        top[3],
    );
}

fn draw_bottom(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let keys = " ?:help /:filter space:pause f:follow enter:detail g:group q:quit ";
    let cols = Layout::horizontal([Constraint::Min(10), Constraint::Length(keys.len() as u16)])
        .split(area);
    let line = match &app.mode {
        Mode::Filter { text, cursor } => {
            let (a, b) = text.split_at(
                text.char_indices()
                    .nth(*cursor)
                    .map_or(text.len(), |(i, _)| i),
            );
            let mut chars = b.chars();
            let under = chars.next().map_or(" ".to_owned(), |c| c.to_string());
            Line::from(vec![
                Span::styled(
                    " filter> ",
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(a.to_owned()),
                Span::styled(under, Style::new().add_modifier(Modifier::REVERSED)),
                Span::raw(chars.as_str().to_owned()),
            ])
        }
        Mode::Normal => match &app.message {
            Some((m, true)) => Line::from(vec![
                Span::styled(
                    " error: ",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    escape_terminal(m, false).into_owned(),
                    Style::new().fg(Color::Red),
                ),
            ]),
            Some((m, false)) => Line::raw(format!(" {}", escape_terminal(m, false))),
            None => Line::from(vec![
                Span::styled(" filter: ", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(if app.filter.is_empty() {
                    "(none)".to_owned()
                } else {
                    escape_terminal(&app.filter, false).into_owned()
                }),
            ]),
        },
    };
    frame.render_widget(Paragraph::new(line), cols[0]);
    frame.render_widget(
        Paragraph::new(keys).style(Style::new().fg(Color::DarkGray)),
        cols[1],
    );
}

/// The help overlay's text.
pub const HELP: &str = "\
q, Ctrl-C      quit
?              this help (any key closes it)
/              edit the filter: the flags of `hubble observe`,
               e.g. --verdict DROPPED --pod default/xwing;
               Enter applies, Esc cancels, an empty line clears
Up/Down, j/k   select a flow (stops following)
PgUp/PgDn      a page up / down
Home / End     oldest flow kept / newest (End follows)
f              follow the newest flow
Space, p       pause: keep the table still (counters go on)
Enter, d       detail pane: every field and the JSON
J / K          scroll the detail pane
Esc            close the detail pane
g              group top talkers/drops by pod, namespace, identity
c              clear history and counters
r              reconnect now";

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let w = 70.min(area.width);
    let h = (HELP.lines().count() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(HELP)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" help ")),
        r,
    );
}
