//! The bottom line: the filter in force, the filter editor with its
//! cursor, or a message; the main keys on the right.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::printer::escape_terminal;
use crate::tui::app::{App, Mode};

/// Draws the bottom line.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let keys = if app.map {
        " ?:help ↑↓:edge enter:filter f/t:focus g:group m:back "
    } else {
        " ?:help /:filter space:pause f:follow enter:detail g:group q:quit "
    };
    let cols = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(keys.chars().count() as u16),
    ])
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
