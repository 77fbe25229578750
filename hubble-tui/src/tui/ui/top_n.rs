//! The top-N boxes: top talkers and top drops, grouped by pod, namespace
//! or identity (`g`), as many as fit.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::common::counts;
use crate::tui::stats::{GroupBy, Stats};

/// Rows inside a box's borders.
fn rows(r: Rect) -> usize {
    r.height.saturating_sub(2) as usize
}

/// Draws the top talkers by `by`; `inner_w` is the width inside the borders.
pub fn draw_talkers(frame: &mut Frame<'_>, area: Rect, stats: &Stats, by: GroupBy, inner_w: u16) {
    let name = by.name();
    frame.render_widget(
        Paragraph::new(counts(&stats.top_talkers(by, rows(area)), inner_w, |_| {
            Style::new()
        }))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" top talkers by {name} (g) ")),
        ),
        area,
    );
}

/// Draws the top drops by `by`; `inner_w` is the width inside the borders.
pub fn draw_drops(frame: &mut Frame<'_>, area: Rect, stats: &Stats, by: GroupBy, inner_w: u16) {
    let name = by.name();
    frame.render_widget(
        Paragraph::new(counts(&stats.top_drops(by, rows(area)), inner_w, |_| {
            Style::new().fg(Color::Red)
        }))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" top drops by {name} ")),
        ),
        area,
    );
}
