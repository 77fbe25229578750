//! The detail pane: which policies decided the selected flow (when it
//! names any), then every field as `path: value` lines beside its JSON,
//! both scrolled with J/K.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::printer::{escape_terminal, format_policy_names};
use crate::tui::app::App;

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

/// `ingress allowed BY rule1 (CiliumNetworkPolicy)`, one line per filled
/// policy field of `f` (upstream's printer wording after the direction).
pub fn policy_lines(f: &proto::flow::Flow) -> Vec<String> {
    [
        ("ingress allowed", &f.ingress_allowed_by),
        ("egress allowed", &f.egress_allowed_by),
        ("ingress denied", &f.ingress_denied_by),
        ("egress denied", &f.egress_denied_by),
    ]
    .into_iter()
    .filter(|(_, l)| !l.is_empty())
    .map(|(what, l)| format!("{what}{}", format_policy_names(l)))
    .collect()
}

/// Draws the detail pane.
pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
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
    let policy = policy_lines(f).into_iter().map(|l| {
        Line::from(vec![
            Span::styled("policy: ", Style::new().fg(Color::Yellow)),
            Span::raw(escape_terminal(&l, false).into_owned()),
        ])
    });
    let fields: Vec<Line<'_>> = policy
        .chain(flow_fields(&value).into_iter().map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k}: "), Style::new().fg(Color::Cyan)),
                Span::raw(escape_terminal(&v, false).into_owned()),
            ])
        }))
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

#[cfg(test)]
mod tests {
    use proto::flow::{Flow, Policy};

    use super::policy_lines;

    #[test]
    fn policy_lines_name_each_filled_field() {
        let p = |name: &str, kind: &str| Policy {
            name: name.into(),
            kind: kind.into(),
            ..Default::default()
        };
        let f = Flow {
            ingress_allowed_by: vec![
                p("rule1", "CiliumNetworkPolicy"),
                p("global", "CiliumClusterwideNetworkPolicy"),
            ],
            egress_denied_by: vec![p("deny-xwing-80", "CiliumNetworkPolicy")],
            ..Flow::default()
        };
        assert_eq!(
            policy_lines(&f),
            [
                "ingress allowed BY rule1 (CiliumNetworkPolicy), global (CiliumClusterwideNetworkPolicy)",
                "egress denied BY deny-xwing-80 (CiliumNetworkPolicy)",
            ]
        );
        assert!(policy_lines(&Flow::default()).is_empty());
    }
}
