//! Keys → state changes. Everything that needs the network (a new filter,
//! reconnecting, clearing the server-side aggregates) comes back as an
//! [`Action`] for the loop in [`mod@super::run`]; the rest changes the [`App`]
//! here. Also the filter line's word splitting and quoting.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Mode};

/// What the event loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave the TUI.
    Quit,
    /// Apply this filter line (flags as for `hubble observe`).
    ApplyFilter(String),
    /// Forget flows and counters, keep the filter.
    Clear,
    /// Drop the stream and connect again now.
    Reconnect,
}

/// Handles one key.
pub fn on_key(app: &mut App, key: KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        app.quit = true;
        return Action::Quit;
    }
    if let Mode::Filter { text, cursor } = &mut app.mode {
        return edit_filter(text, cursor, key, ctrl).map_or(Action::None, |done| {
            app.mode = Mode::Normal;
            match done {
                Some(line) => Action::ApplyFilter(line),
                None => Action::None,
            }
        });
    }
    if app.help {
        // Any key closes the help; `q` still quits.
        app.help = false;
        if key.code != KeyCode::Char('q') {
            return Action::None;
        }
    }
    if app.map
        && let Some(action) = map_key(app, key.code)
    {
        return action;
    }
    let page = app.page.max(1) as i64;
    match key.code {
        KeyCode::Char('q') => {
            app.quit = true;
            return Action::Quit;
        }
        KeyCode::Char('?') | KeyCode::F(1) => app.help = true,
        KeyCode::Char('/') => {
            let text = app.rejected.take().unwrap_or_else(|| app.filter.clone());
            let cursor = text.chars().count();
            app.mode = Mode::Filter { text, cursor };
            app.message = None;
        }
        KeyCode::Esc => {
            if app.detail {
                app.detail = false;
            } else {
                app.message = None;
            }
        }
        KeyCode::Char(' ') | KeyCode::Char('p') => {
            app.paused = !app.paused;
            if !app.paused {
                app.paused_skipped = 0;
            }
        }
        KeyCode::Char('f') => {
            app.paused = false;
            app.paused_skipped = 0;
            app.follow_newest();
        }
        KeyCode::Up | KeyCode::Char('k') => app.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => app.move_selection(1),
        KeyCode::PageUp => app.move_selection(-page),
        KeyCode::PageDown => app.move_selection(page),
        KeyCode::Home => app.select_oldest(),
        KeyCode::End | KeyCode::Char('G') => app.follow_newest(),
        KeyCode::Enter | KeyCode::Char('d') => {
            app.detail = !app.detail;
            app.detail_scroll = 0;
        }
        KeyCode::Char('J') => app.detail_scroll = app.detail_scroll.saturating_add(1),
        KeyCode::Char('K') => app.detail_scroll = app.detail_scroll.saturating_sub(1),
        KeyCode::Char('g') => app.group = app.group.next(),
        KeyCode::Char('n') => app.nodes_panel = !app.nodes_panel,
        KeyCode::Char('s') => app.side_hidden = !app.side_hidden,
        KeyCode::Char('a') => {
            app.aggregated = !app.aggregated;
            app.map = false;
        }
        KeyCode::Char('m') => {
            app.map = !app.map;
            app.aggregated = false;
        }
        KeyCode::Char('N') => {
            let current = node_filter(&app.filter);
            let next = match &current {
                None => app.node_names.first(),
                Some(c) => app
                    .node_names
                    .iter()
                    .position(|n| n == c)
                    .and_then(|i| app.node_names.get(i + 1)),
            };
            if next.is_none() && current.is_none() {
                app.message = Some(("no node known yet".to_owned(), false));
                return Action::None;
            }
            return Action::ApplyFilter(with_node_filter(&app.filter, next.map(String::as_str)));
        }
        KeyCode::Char('c') => return Action::Clear,
        KeyCode::Char('r') => return Action::Reconnect,
        _ => {}
    }
    Action::None
}

/// A key of the map view (`m`); `None` passes it on to the main keys
/// (quit, help, filter, pause, …).
fn map_key(app: &mut App, code: KeyCode) -> Option<Action> {
    let page = app.page.max(1);
    match code {
        KeyCode::Up | KeyCode::Char('k') => app.map_selected = app.map_selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => app.map_selected = app.map_selected.saturating_add(1),
        KeyCode::PageUp => app.map_selected = app.map_selected.saturating_sub(page),
        KeyCode::PageDown => app.map_selected = app.map_selected.saturating_add(page),
        KeyCode::Home => app.map_selected = 0,
        KeyCode::End => app.map_selected = usize::MAX,
        KeyCode::Enter => {
            let Some(e) = app.map_edge.clone() else {
                app.message = Some(("no edge selected".to_owned(), false));
                return Some(Action::None);
            };
            app.map = false;
            return Some(Action::ApplyFilter(with_flags(&app.filter, &e.filter)));
        }
        KeyCode::Char(c @ ('f' | 't')) => {
            let Some(e) = &app.map_edge else {
                return Some(Action::None);
            };
            let id = if c == 'f' { &e.source } else { &e.target };
            app.map_focus = if app.map_focus.as_ref() == Some(id) {
                None
            } else {
                Some(id.clone())
            };
            app.map_selected = 0;
            app.map_top = 0;
        }
        KeyCode::Esc => {
            if app.map_focus.take().is_none() {
                app.map = false;
            }
            app.map_selected = 0;
            app.map_top = 0;
        }
        KeyCode::Char('m') => app.map = false,
        KeyCode::Char('g') => {
            app.group = app.group.next();
            app.map_focus = None;
            app.map_selected = 0;
            app.map_top = 0;
        }
        _ => return None,
    }
    Some(Action::None)
}

/// The filter line with `words` (flag, value pairs) added; flags of the
/// same names already in the line are taken out first (another
/// `--from-pod` would widen the filter, not narrow it).
pub fn with_flags(line: &str, words: &[String]) -> String {
    let names: Vec<&str> = words
        .iter()
        .filter(|w| w.starts_with("--"))
        .map(String::as_str)
        .collect();
    let old = split_words(line).unwrap_or_default();
    let mut out = Vec::new();
    let mut it = old.iter();
    while let Some(w) = it.next() {
        if names.contains(&w.as_str()) {
            it.next();
        } else if !names
            .iter()
            .any(|n| w.strip_prefix(n).is_some_and(|r| r.starts_with('=')))
        {
            out.push(quote_word(w));
        }
    }
    out.extend(words.iter().map(|w| quote_word(w)));
    out.join(" ")
}

/// One key of the filter line: `Some(Some(line))` applies, `Some(None)`
/// cancels, `None` keeps editing.
fn edit_filter(
    text: &mut String,
    cursor: &mut usize,
    key: KeyEvent,
    ctrl: bool,
) -> Option<Option<String>> {
    let byte = |t: &str, c: usize| t.char_indices().nth(c).map_or(t.len(), |(i, _)| i);
    let len = text.chars().count();
    match key.code {
        KeyCode::Enter => return Some(Some(text.trim().to_owned())),
        KeyCode::Esc => return Some(None),
        KeyCode::Char('u') if ctrl => {
            text.replace_range(..byte(text, *cursor), "");
            *cursor = 0;
        }
        KeyCode::Char('a') if ctrl => *cursor = 0,
        KeyCode::Char('e') if ctrl => *cursor = len,
        KeyCode::Char('w') if ctrl => {
            let end = byte(text, *cursor);
            let head = text[..end].trim_end();
            let start = head.rfind(' ').map_or(0, |i| i + 1);
            let removed = text[start..end].chars().count();
            text.replace_range(start..end, "");
            *cursor -= removed;
        }
        KeyCode::Char(c) if !ctrl => {
            let at = byte(text, *cursor);
            text.insert(at, c);
            *cursor += 1;
        }
        KeyCode::Backspace if *cursor > 0 => {
            let at = byte(text, *cursor - 1);
            text.remove(at);
            *cursor -= 1;
        }
        KeyCode::Delete if *cursor < len => {
            let at = byte(text, *cursor);
            text.remove(at);
        }
        KeyCode::Left => *cursor = cursor.saturating_sub(1),
        KeyCode::Right => *cursor = (*cursor + 1).min(len),
        KeyCode::Home => *cursor = 0,
        KeyCode::End => *cursor = len,
        _ => {}
    }
    None
}

/// Splits a filter line into words as a shell would: whitespace separates,
/// single and double quotes group, a backslash escapes the next character.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err("unterminated escape".to_owned()),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => match chars.next() {
                Some(n) => {
                    cur.push(n);
                    in_word = true;
                }
                None => return Err("unterminated escape".to_owned()),
            },
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The node the filter line narrows to: the value of its one
/// `--node-name` (`--node-name X` or `--node-name=X`); `None` when it has
/// none, several, or does not split.
pub fn node_filter(line: &str) -> Option<String> {
    let words = split_words(line).ok()?;
    let mut found = None;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let v = if w == "--node-name" {
            it.next().cloned()
        } else {
            w.strip_prefix("--node-name=").map(str::to_owned)
        };
        if let Some(v) = v {
            if found.is_some() {
                return None;
            }
            found = Some(v);
        }
    }
    found
}

/// The filter line with its `--node-name` flags replaced by one for
/// `node` (or removed for `None`); the other words are kept, re-quoted.
pub fn with_node_filter(line: &str, node: Option<&str>) -> String {
    let words = split_words(line).unwrap_or_default();
    let mut out = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "--node-name" {
            it.next();
        } else if !w.starts_with("--node-name=") {
            out.push(quote_word(w));
        }
    }
    if let Some(n) = node {
        out.push("--node-name".to_owned());
        out.push(quote_word(n));
    }
    out.join(" ")
}

/// Quotes a word for the filter line when it needs it.
pub fn quote_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,*+@%^".contains(c))
    {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"--pod default/xwing  --http-path '/a b' -l "k=v\"x" a\ b"#).unwrap(),
            vec![
                "--pod",
                "default/xwing",
                "--http-path",
                "/a b",
                "-l",
                "k=v\"x",
                "a b"
            ]
        );
        assert!(split_words("'open").is_err());
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), vec![""]);
    }

    #[test]
    fn quoting_round_trips() {
        for w in ["default/xwing", "a b", "it's", "", "--verdict"] {
            assert_eq!(split_words(&quote_word(w)).unwrap(), vec![w]);
        }
    }

    #[test]
    fn edge_flags_replace_their_namesakes() {
        let words: Vec<String> = ["--from-pod", "default/a b", "--to-identity", "2"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            with_flags("--verdict DROPPED --from-pod=x --to-identity 7", &words),
            "--verdict DROPPED --from-pod 'default/a b' --to-identity 2"
        );
        assert_eq!(with_flags("", &words[..2]), "--from-pod 'default/a b'");
    }

    #[test]
    fn node_filter_is_found_and_replaced() {
        assert_eq!(node_filter(""), None);
        assert_eq!(
            node_filter("--verdict DROPPED --node-name kind/w1").as_deref(),
            Some("kind/w1")
        );
        assert_eq!(node_filter("--node-name=a").as_deref(), Some("a"));
        assert_eq!(node_filter("--node-name a --node-name b"), None);
        assert_eq!(
            with_node_filter("--verdict DROPPED --node-name=a", Some("b c")),
            "--verdict DROPPED --node-name 'b c'"
        );
        assert_eq!(with_node_filter("--node-name a --pod x", None), "--pod x");
    }
}
