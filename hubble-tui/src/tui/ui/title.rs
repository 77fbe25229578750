//! The title bar: source, connection state, nodes, flows and rate, lost
//! events, follow/scroll/pause, and why the connection is down.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::node_status::node_summary;
use crate::printer::{escape_terminal, group_thousands};
use crate::tui::app::{App, ConnState, Inbox};

/// Draws the title bar.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, inbox: &Inbox) {
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
