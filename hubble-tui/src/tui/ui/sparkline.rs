//! The rate box: flows per second over the last seconds, one column per
//! second, with the peak in the title.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Borders, Sparkline};

use super::common::short_count;
use crate::tui::stats::Stats;

/// Draws the sparkline; `inner_w` is the width inside the borders (one
/// second per column).
pub fn draw(frame: &mut Frame<'_>, area: Rect, stats: &Stats, inner_w: u16) {
    let data = stats.rate_history(inner_w as usize);
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
        area,
    );
}
