//! The counters box: flows by verdict, and the top drop reasons and the
//! top denying policies under them.

use proto::flow::Verdict;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use super::common::{counts, verdict_color};
use crate::tui::stats::Stats;

/// Drop reasons listed under the verdicts.
const DROP_REASONS: usize = 5;
/// Denying policies listed under the drop reasons.
const DENYING_POLICIES: usize = 3;

/// The verdict and drop-reason counts of one frame.
#[derive(Debug)]
pub struct Counters {
    verdicts: Vec<(String, u64)>,
    reasons: Vec<(String, u64)>,
    policies: Vec<(String, u64)>,
}

impl Counters {
    /// The counts of `stats` now.
    pub fn new(stats: &Stats) -> Self {
        Counters {
            verdicts: stats.verdict_counts(),
            reasons: stats.top_drop_reasons(DROP_REASONS),
            policies: stats.top_denying_policies(DENYING_POLICIES),
        }
    }

    /// The rows the box needs, borders included.
    pub fn height(&self) -> u16 {
        (self.verdicts.len().max(1)
            + self.reasons.len()
            + self.policies.len()
            + 2
            + usize::from(!self.reasons.is_empty())
            + usize::from(!self.policies.is_empty())) as u16
    }

    /// Draws the box; `inner_w` is the width inside its borders.
    pub fn draw(&self, frame: &mut Frame<'_>, area: Rect, inner_w: u16) {
        let mut lines = counts(&self.verdicts, inner_w, |name| {
            let v = Verdict::from_str_name(name).map_or(0, |v| v as i32);
            Style::new().fg(verdict_color(v))
        });
        if lines.is_empty() {
            lines.push(Line::styled("no flows", Style::new().fg(Color::DarkGray)));
        }
        if !self.reasons.is_empty() {
            lines.push(Line::styled(
                "drop reasons",
                Style::new().add_modifier(Modifier::BOLD),
            ));
            lines.extend(counts(&self.reasons, inner_w, |_| {
                Style::new().fg(Color::Red)
            }));
        }
        if !self.policies.is_empty() {
            lines.push(Line::styled(
                "denied by",
                Style::new().add_modifier(Modifier::BOLD),
            ));
            lines.extend(counts(&self.policies, inner_w, |_| {
                Style::new().fg(Color::Red)
            }));
        }
        frame.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" verdicts ")),
            area,
        );
    }
}
