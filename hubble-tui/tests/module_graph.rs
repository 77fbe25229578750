//! No two modules of this crate import each other, directly or through
//! others: the module graph built from `src/` (`use` declarations and
//! inline paths: `crate::…`, `super::…`, `self::…`, child modules, names a
//! `use` brought in) has no strongly connected component of more than one
//! module.
//!
//! A parent's `pub use child::Item` is a facade, not a dependency of the
//! parent's code, and is not an edge (`printer/mod.rs` re-exports items of
//! its children, which use `printer`'s types). Inline `mod x { … }` blocks
//! (tests) are modules of their own.
//!
//! `MODULE_GRAPH_SRC=DIR` checks another source tree; `MODULE_GRAPH_PRINT=1`
//! prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The source without comments, strings and char literals.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let n = b.len();
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, c)| b.get(i + k) == Some(&c));
    let mut out = String::with_capacity(n);
    let mut i = 0;
    while i < n {
        let c = b[i];
        if at(i, "//") {
            while i < n && b[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 1;
            i += 2;
            while i < n && depth > 0 {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (i == 0 || !is_ident(b[i - 1])) && {
            let mut j = i + 1;
            while j < n && b[j] == '#' {
                j += 1;
            }
            j < n && b[j] == '"'
        } {
            let mut j = i + 1;
            let mut hashes = 0;
            while b[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            let end: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while j < n && !at(j, &end) {
                j += 1;
            }
            i = (j + end.len()).min(n);
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < n && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            let len = if b.get(i + 1) == Some(&'\\') {
                (i + 2..n).find(|&j| b[j] == '\'').map(|j| j + 1 - i)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match len {
                Some(l) => {
                    out.push_str("' '");
                    i += l;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn module_of(src: &Path, path: &Path) -> Module {
    let rel = path.strip_prefix(src).unwrap().with_extension("");
    let mut m: Module = vec!["crate".into()];
    m.extend(rel.iter().map(|s| s.to_string_lossy().into_owned()));
    if m.last().is_some_and(|s| s == "mod" || s == "lib") {
        m.pop();
    }
    m
}

/// The end of the block whose `{` is just before `from`.
fn block_end(t: &[char], from: usize) -> usize {
    let mut depth = 1;
    let mut j = from;
    while j < t.len() && depth > 0 {
        match t[j] {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        j += 1;
    }
    j
}

/// The file's own text and each inline `mod x { … }`, as modules.
fn split_inline(m: &Module, text: &str, out: &mut Vec<(Module, String)>) {
    let t: Vec<char> = text.chars().collect();
    let mut own = String::new();
    let mut i = 0;
    while i < t.len() {
        let word_start = (i == 0 || !is_ident(t[i - 1])) && t[i..].starts_with(&['m', 'o', 'd']);
        if word_start && t.get(i + 3).is_some_and(|c| c.is_whitespace()) {
            let mut j = i + 3;
            while j < t.len() && t[j].is_whitespace() {
                j += 1;
            }
            let s = j;
            while j < t.len() && is_ident(t[j]) {
                j += 1;
            }
            let name: String = t[s..j].iter().collect();
            while j < t.len() && t[j].is_whitespace() {
                j += 1;
            }
            if !name.is_empty() && t.get(j) == Some(&'{') {
                let end = block_end(&t, j + 1);
                let mut child = m.clone();
                child.push(name);
                let body: String = t[j + 1..end.saturating_sub(1)].iter().collect();
                split_inline(&child, &body, out);
                i = end;
                continue;
            }
        }
        own.push(t[i]);
        i += 1;
    }
    out.push((m.clone(), own));
}

/// One name a `use` brings in: its path, local name (none for `*`/`_`),
/// and whether the `use` is `pub`.
struct UseItem {
    path: Vec<String>,
    name: Option<String>,
    public: bool,
}

fn split_top_commas(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0;
    for c in s.chars() {
        match c {
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        parts.last_mut().unwrap().push(c);
    }
    parts
}

fn parse_use_tree(s: &str, prefix: &[String], public: bool, out: &mut Vec<UseItem>) {
    let s = s.trim();
    if let (Some(open), true) = (s.find('{'), s.ends_with('}')) {
        let mut base = prefix.to_vec();
        base.extend(
            s[..open]
                .split("::")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from),
        );
        for part in split_top_commas(&s[open + 1..s.len() - 1]) {
            if !part.trim().is_empty() {
                parse_use_tree(&part, &base, public, out);
            }
        }
        return;
    }
    let (s, alias) = match s.rsplit_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_owned())),
        None => (s, None),
    };
    let mut path = prefix.to_vec();
    path.extend(
        s.split("::")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from),
    );
    if path.last().is_some_and(|p| p == "self") {
        path.pop();
    }
    let Some(last) = path.last().cloned() else {
        return;
    };
    let name = alias.unwrap_or(last);
    let name = (name != "*" && name != "_").then_some(name);
    out.push(UseItem { path, name, public });
}

struct Graph {
    modules: BTreeSet<Module>,
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

impl Graph {
    fn is_child(&self, m: &Module, name: &str) -> bool {
        let mut c = m.clone();
        c.push(name.to_owned());
        self.modules.contains(&c)
    }

    /// The module a path names (its longest known prefix), if it is ours.
    fn resolve(
        &self,
        m: &Module,
        segs: &[String],
        aliases: &BTreeMap<String, Module>,
    ) -> Option<Module> {
        let (head, mut rest) = (segs[0].as_str(), &segs[1..]);
        let mut base = match head {
            "crate" => vec!["crate".to_owned()],
            "self" => m.clone(),
            "super" => {
                let mut b = m[..m.len().saturating_sub(1)].to_vec();
                while rest.first().is_some_and(|s| s == "super") {
                    b.pop();
                    rest = &rest[1..];
                }
                b
            }
            h if self.is_child(m, h) => {
                let mut b = m.clone();
                b.push(h.to_owned());
                b
            }
            h => aliases.get(h)?.clone(),
        };
        for s in rest {
            if self.is_child(&base, s) {
                base.push(s.clone());
            } else {
                break;
            }
        }
        Some(base)
    }
}

/// `a::b::c` paths in `code` not preceded by `::` or an identifier.
fn paths(code: &str) -> Vec<Vec<String>> {
    let t: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if !is_ident_start(t[i]) || (i > 0 && (is_ident(t[i - 1]) || t[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < t.len() && is_ident(t[j]) {
                j += 1;
            }
            segs.push(t[s..j].iter().collect::<String>());
            let mut k = j;
            while k < t.len() && t[k].is_whitespace() {
                k += 1;
            }
            if t.get(k) == Some(&':') && t.get(k + 1) == Some(&':') {
                k += 2;
                while k < t.len() && t[k].is_whitespace() {
                    k += 1;
                }
                if k < t.len() && is_ident_start(t[k]) {
                    j = k;
                    continue;
                }
            }
            break;
        }
        if segs.len() > 1 {
            out.push(segs);
        }
        i = j.max(i + 1);
    }
    out
}

/// The `use` declarations of `code` (their trees) and the code without them.
fn uses(code: &str) -> (Vec<(bool, String)>, String) {
    let mut found = Vec::new();
    let mut rest = String::new();
    let mut i = 0;
    let b = code.as_bytes();
    while i < code.len() {
        let boundary = i == 0 || !is_ident(b[i - 1] as char);
        if boundary
            && code[i..].starts_with("use")
            && code[i + 3..].starts_with(char::is_whitespace)
        {
            let end = code[i..].find(';').map_or(code.len(), |e| i + e);
            let before = rest.trim_end();
            let public =
                before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
            found.push((public, code[i + 3..end].to_owned()));
            rest.push(' ');
            i = end + 1;
            continue;
        }
        let c = code[i..].chars().next().unwrap();
        rest.push(c);
        i += c.len_utf8();
    }
    (found, rest)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bodies = Vec::new();
    for f in files {
        if f == src.join("main.rs") {
            continue; // the binary: it uses the library by its name
        }
        let text = std::fs::read_to_string(&f).unwrap();
        split_inline(&module_of(src, &f), &strip(&text), &mut bodies);
    }
    let mut modules = BTreeSet::new();
    for (m, _) in &bodies {
        for k in 1..=m.len() {
            modules.insert(m[..k].to_vec());
        }
    }
    let mut g = Graph {
        edges: modules
            .iter()
            .map(|m| (m.clone(), BTreeSet::new()))
            .collect(),
        modules,
    };
    for (m, body) in &bodies {
        let (decls, code) = uses(body);
        let mut items = Vec::new();
        for (public, tree) in &decls {
            parse_use_tree(tree, &[], *public, &mut items);
        }
        let mut aliases = BTreeMap::new();
        let mut targets = BTreeSet::new();
        for it in &items {
            let Some(t) = g.resolve(m, &it.path, &BTreeMap::new()) else {
                continue;
            };
            if let Some(n) = &it.name {
                aliases.insert(n.clone(), t.clone());
            }
            let facade = it.public && t.len() == m.len() + 1 && t[..m.len()] == m[..];
            if !facade {
                targets.insert(t);
            }
        }
        for p in paths(&code) {
            if let Some(t) = g.resolve(m, &p, &aliases) {
                targets.insert(t);
            }
        }
        targets.remove(m);
        g.edges.get_mut(m).unwrap().extend(targets);
    }
    g
}

/// Tarjan's strongly connected components.
fn sccs(g: &Graph) -> Vec<Vec<Module>> {
    struct St<'a> {
        g: &'a Graph,
        next: usize,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a Module) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in &s.g.edges[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let mut s = St {
        g,
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in &g.modules {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_cycle_between_modules() {
    let src = std::env::var_os("MODULE_GRAPH_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        PathBuf::from,
    );
    let g = graph(&src);
    let name = |m: &Module| m.join("::");
    if std::env::var_os("MODULE_GRAPH_PRINT").is_some() {
        for (m, e) in &g.edges {
            if !e.is_empty() {
                let to: Vec<String> = e.iter().map(name).collect();
                println!("{} -> {}", name(m), to.join(", "));
            }
        }
    }
    // The graph is the crate's: the top imports the rest, and a request
    // module sits between the commands and what they build on.
    assert!(
        g.edges[&vec!["crate".into(), "cli".into()]].len() > 3,
        "parsed nothing?"
    );
    let cycles: Vec<String> = sccs(&g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|mut c| {
            c.sort();
            c.iter().map(name).collect::<Vec<_>>().join(" <-> ")
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}
