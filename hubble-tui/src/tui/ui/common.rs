//! What several widgets share: the verdict colours, short counts, and
//! `name count` lists.

use proto::flow::Verdict;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use crate::printer::{escape_terminal, group_thousands};

/// The colour of a verdict (as `hubble observe` colours it).
pub fn verdict_color(verdict: i32) -> Color {
    match Verdict::try_from(verdict) {
        Ok(Verdict::Forwarded | Verdict::Redirected) => Color::Green,
        Ok(Verdict::Dropped | Verdict::Error) => Color::Red,
        Ok(Verdict::Audit | Verdict::Traced | Verdict::Translated) => Color::Yellow,
        _ => Color::Gray,
    }
}

/// `12.3k` style for rates and counts in tight places.
pub fn short_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// A list of `name count` lines, counts right-aligned.
pub fn counts(
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
