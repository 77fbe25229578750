//! Label selectors over Cilium labels, as Hubble's label filters use them.
//!
//! A selector is Kubernetes label-selector syntax (`app=x`, `app in (a,b)`,
//! `!key`, `key`, `key!=v`, `key notin (a)`, `n>3`, commas meaning AND)
//! whose keys may carry a Cilium source prefix: `k8s:app=x`,
//! `reserved:world`. A key without a source matches a label of any source.
//!
//! The steps follow upstream:
//! 1. [`translate`] rewrites each key from `src:key` to `src.key`, and a key
//!    without a source to `any.key` (Hubble's `translateSelector`);
//! 2. [`parse`] parses the result with Kubernetes' selector grammar and
//!    validation (`k8s.io/apimachinery/pkg/labels`);
//! 3. [`Selector::matches`] evaluates each requirement against the labels of
//!    the flow (`k8s:app=x` strings), looking keys up as Cilium's
//!    `LabelArray` does: the first label whose source and key match.
//!
//! Evaluation borrows from the flow's label strings and never allocates.

use ipnet::IpNet;

use crate::defaults::{
    LABEL_SOURCE_ANY, LABEL_SOURCE_CIDR, LABEL_SOURCE_RESERVED, LABEL_SOURCE_UNSPEC,
};

/// A parsed selector: the AND of its requirements; none matches everything.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: SelectKey,
    op: Op,
    /// Sorted and deduplicated, as Kubernetes' string set.
    values: Vec<String>,
    /// The integer of `>`/`<`.
    bound: i64,
}

/// `=`, `==` and `in` behave the same, as do `!=` and `notin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    In,
    NotIn,
    GreaterThan,
    LessThan,
}

/// A selector key split into its Cilium source and key.
#[derive(Debug, Clone)]
struct SelectKey {
    source: String,
    key: String,
    /// The key as a prefix, for `cidr` keys.
    cidr: Option<IpNet>,
}

impl Selector {
    /// Parses a Hubble label selector; the error is a one-line reason.
    pub(crate) fn parse(selector: &str) -> Result<Selector, String> {
        parse(&translate(selector))
    }

    /// Whether the labels (`source:key=value` strings) satisfy every
    /// requirement.
    pub(crate) fn matches(&self, labels: &[String]) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    fn matches(&self, labels: &[String]) -> bool {
        let found = lookup(labels, &self.key);
        match self.op {
            Op::Exists => found.is_some(),
            Op::DoesNotExist => found.is_none(),
            Op::In => found.is_some_and(|v| self.has_value(v)),
            Op::NotIn => found.is_none_or(|v| !self.has_value(v)),
            Op::GreaterThan => found
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > self.bound),
            Op::LessThan => found
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < self.bound),
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
    }
}

/// A flow label, borrowed from its `source:key=value` string.
#[derive(Debug, PartialEq, Eq)]
struct Label<'a> {
    source: &'a str,
    key: &'a str,
    value: &'a str,
}

/// Parses a flow label as Cilium's `ParseLabel`: `$host` is
/// `reserved:host`, `reserved.x` (without a colon) is `reserved:x`, a label
/// without a source has source `unspec`.
fn parse_label(s: &str) -> Label<'_> {
    let (source, rest) = if let Some(rest) = s.strip_prefix('$') {
        (LABEL_SOURCE_RESERVED, rest)
    } else if let Some(i) = s.find(':') {
        (&s[..i], &s[i + 1..])
    } else if let Some(rest) = s.strip_prefix("reserved.") {
        (LABEL_SOURCE_RESERVED, rest)
    } else {
        ("", s)
    };
    let source = if source.is_empty() {
        LABEL_SOURCE_UNSPEC
    } else {
        source
    };
    let (key, value) = match rest.find('=') {
        Some(0) if source == LABEL_SOURCE_RESERVED => (&rest[1..], ""),
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    Label { source, key, value }
}

/// The value of the first label with the key, as `LabelArray.Lookup`.
fn lookup<'a>(labels: &'a [String], target: &SelectKey) -> Option<&'a str> {
    labels
        .iter()
        .map(|l| parse_label(l))
        .find(|l| has_key(l, target))
        .map(|l| l.value)
}

/// Cilium's `Label.HasKey`: source `any` matches every source; two CIDR
/// labels also match when the selector's prefix contains the label's.
fn has_key(label: &Label<'_>, target: &SelectKey) -> bool {
    if target.source != LABEL_SOURCE_ANY && label.source != target.source {
        return false;
    }
    if let Some(t) = target.cidr.as_ref()
        && label.source == LABEL_SOURCE_CIDR
        && let Some(l) = cidr_of(label.key)
        && t.prefix_len() <= l.prefix_len()
        && t.contains(&l.addr())
    {
        return true;
    }
    label.key == target.key
}

/// The prefix of a CIDR label key; IPv6 keys spell `:` as `-` because
/// label keys cannot contain colons. No allocation: IPv6 keys are rebuilt
/// in a stack buffer.
fn cidr_of(key: &str) -> Option<IpNet> {
    if !key.contains('-') {
        return key.parse().ok();
    }
    let mut buf = [0u8; 64];
    let bytes = key.as_bytes();
    if bytes.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(bytes) {
        *d = if *s == b'-' { b':' } else { *s };
    }
    std::str::from_utf8(&buf[..bytes.len()]).ok()?.parse().ok()
}

/// Hubble's `translateSelector`: rewrites every key of a selector from
/// `source:key` to `source.key`, and gives keys without a source the source
/// `any`. Everything else is copied unchanged.
pub(crate) fn translate(selector: &str) -> String {
    let mut out = String::with_capacity(selector.len() + 8);
    let mut chars = selector.chars().peekable();
    while chars.peek().is_some() {
        // Up to the next key: whitespace and `!`.
        while let Some(&c) = chars.peek() {
            if !c.is_whitespace() && c != '!' {
                break;
            }
            out.push(c);
            chars.next();
        }
        // The key, up to whitespace, `=`, `!` or `,`.
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || matches!(c, '=' | '!' | ',') {
                break;
            }
            key.push(c);
            chars.next();
        }
        match key.split_once(':') {
            Some((source, rest)) => {
                out.push_str(source);
                out.push('.');
                out.push_str(rest);
            }
            None => {
                out.push_str(LABEL_SOURCE_ANY);
                out.push('.');
                out.push_str(&key);
            }
        }
        // Up to and including the `,` that ends this requirement, skipping
        // commas inside parentheses.
        let mut nesting = 0i32;
        for c in chars.by_ref() {
            match c {
                '(' => nesting += 1,
                ')' => nesting -= 1,
                _ => {}
            }
            out.push(c);
            if c == ',' && nesting == 0 {
                break;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Kubernetes selector grammar.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn symbol_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits a selector into tokens. A NUL byte reads as the end of the string
/// where a token starts, and ends an identifier, as in the Go lexer.
fn lex(s: &str) -> Vec<(Token, &str)> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut tokens = Vec::new();
    loop {
        while pos < b.len() && is_whitespace(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() || b[pos] == 0 {
            tokens.push((Token::EndOfString, ""));
            return tokens;
        }
        let start = pos;
        if is_special(b[pos]) {
            // Longest run of special bytes that still forms a symbol; every
            // single special byte is one.
            let mut end = pos + 1;
            while end < b.len() && is_special(b[end]) && symbol_token(&b[start..=end]).is_some() {
                end += 1;
            }
            let tok = symbol_token(&b[start..end]).unwrap_or(Token::Identifier);
            tokens.push((tok, &s[start..end]));
            pos = end;
        } else {
            while pos < b.len() && b[pos] != 0 && !is_special(b[pos]) && !is_whitespace(b[pos]) {
                pos += 1;
            }
            let word = &s[start..pos];
            let tok = match word {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            };
            tokens.push((tok, word));
            if pos < b.len() && b[pos] == 0 {
                pos += 1;
            }
        }
    }
}

/// Whether `in`/`notin` read as keywords (after a key) or as identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    tokens: Vec<(Token, &'a str)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn item(&self, i: usize, ctx: Context) -> (Token, &'a str) {
        // The last token is always EndOfString; reading past it repeats it.
        let (tok, lit) = self.tokens[i.min(self.tokens.len() - 1)];
        match tok {
            Token::In | Token::NotIn if ctx == Context::Values => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, &'a str) {
        self.item(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, &'a str) {
        let item = self.item(self.pos, ctx);
        self.pos += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.requirement()?);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.key_and_inferred_operator()?;
        if let Some(op) = op {
            return new_requirement(key, op, Vec::new());
        }
        let (op, exact) = self.operator()?;
        let values = if exact {
            self.exact_value()?
        } else {
            self.values()?
        };
        new_requirement(key, op, values)
    }

    /// The key, and `Exists`/`DoesNotExist` when no operator follows.
    fn key_and_inferred_operator(&mut self) -> Result<(&'a str, Option<Op>), String> {
        let (mut tok, mut lit) = self.consume(Context::Values);
        let mut op = None;
        if tok == Token::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        validate_key(lit)?;
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        Ok((lit, op))
    }

    /// The binary operator, and whether it takes one exact value.
    fn operator(&mut self) -> Result<(Op, bool), String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => (Op::In, false),
            Token::NotIn => (Op::NotIn, false),
            Token::Equals | Token::DoubleEquals => (Op::In, true),
            Token::NotEquals => (Op::NotIn, true),
            Token::GreaterThan => (Op::GreaterThan, true),
            Token::LessThan => (Op::LessThan, true),
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `( v1, v2, … )`; empty members are the empty string.
    fn values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.identifiers()?;
                let (tok, lit) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    values.push(lit.to_owned());
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // `(,`, `,)` and `,,` stand for empty values.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if tok2 == Token::Comma {
                        self.consume(Context::Values);
                        values.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; none is "".
    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit.to_owned()])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

/// Parses a translated selector with Kubernetes' grammar.
fn parse(selector: &str) -> Result<Selector, String> {
    let mut p = Parser {
        tokens: lex(selector),
        pos: 0,
    };
    let requirements = p
        .parse()
        .map_err(|e| format!("unable to parse requirement: {e}"))?;
    Ok(Selector { requirements })
}

/// Kubernetes' `NewRequirement`: validates the values for the operator.
fn new_requirement(key: &str, op: Op, mut values: Vec<String>) -> Result<Requirement, String> {
    let mut bound = 0;
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            return Err("for 'in', 'notin' operators, values set can't be empty".into());
        }
        Op::GreaterThan | Op::LessThan => {
            if values.len() != 1 {
                return Err("for 'Gt', 'Lt' operators, exactly one value is required".into());
            }
            bound = values[0].parse::<i64>().map_err(|_| {
                format!(
                    "for 'Gt', 'Lt' operators, the value must be an integer, got {:?}",
                    values[0]
                )
            })?;
        }
        _ => {}
    }
    for v in &values {
        validate_value(v)?;
    }
    values.sort();
    values.dedup();
    Ok(Requirement {
        key: select_key(key),
        op,
        values,
        bound,
    })
}

/// Cilium's `ParseSelectDotLabel` for a (translated) selector key: the
/// source is the part before the first dot.
fn select_key(key: &str) -> SelectKey {
    let (source, rest) = match key.split_once('.') {
        Some((s, r)) if !s.is_empty() => (s, r),
        Some((_, r)) => (LABEL_SOURCE_ANY, r),
        None => (LABEL_SOURCE_ANY, key),
    };
    let cidr = if source == LABEL_SOURCE_CIDR {
        cidr_of(rest)
    } else {
        None
    };
    SelectKey {
        source: source.to_owned(),
        key: rest.to_owned(),
        cidr,
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 bytes.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// RFC 1123 subdomain: dot-separated lowercase labels, at most 253 bytes.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// Kubernetes' `IsQualifiedName` for label keys: `[prefix/]name`.
fn validate_key(key: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("invalid label key {key:?}: {why}"));
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                return invalid("prefix part must be non-empty");
            }
            if !is_dns1123_subdomain(prefix) {
                return invalid("prefix part must be a lowercase RFC 1123 subdomain");
            }
            name
        }
        _ => return invalid("a qualified name must have at most one '/'"),
    };
    if name.is_empty() {
        return invalid("name part must be non-empty");
    }
    if name.len() > 63 {
        return invalid("name part must be no more than 63 characters");
    }
    if !is_qualified_name_part(name) {
        return invalid(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

/// Kubernetes' `IsValidLabelValue`: empty, or a qualified name part.
fn validate_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_qualified_name_part(v) {
        Ok(())
    } else if v.len() > 63 {
        Err(format!(
            "invalid label value {v:?}: must be no more than 63 characters"
        ))
    } else {
        Err(format!(
            "invalid label value {v:?}: must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::testutil::strings;

    #[rstest]
    #[case::bare_key("app", "any.app")]
    #[case::source_key("k8s:app=x", "k8s.app=x")]
    #[case::reserved("reserved:world", "reserved.world")]
    #[case::negation("!k8s:app", "!k8s.app")]
    #[case::set("app in (a, b)", "any.app in (a, b)")]
    #[case::conjunction(
        "k8s:app=x,!foo, tier notin (a,b),k8s:io.kubernetes.pod.namespace",
        "k8s.app=x,!any.foo, any.tier notin (a,b),k8s.io.kubernetes.pod.namespace"
    )]
    #[case::not_equals("app!=x", "any.app!=x")]
    #[case::only_first_colon("a:b:c=d", "a.b:c=d")]
    #[case::empty("", "")]
    #[case::whitespace(" ", " any.")]
    fn translate_keys(#[case] input: &str, #[case] want: &str) {
        assert_eq!(translate(input), want);
    }

    #[rstest]
    #[case::full("k8s:app=x", ("k8s", "app", "x"))]
    #[case::no_value("reserved:world", ("reserved", "world", ""))]
    #[case::no_source("app=x", ("unspec", "app", "x"))]
    #[case::dollar("$host", ("reserved", "host", ""))]
    #[case::reserved_dot("reserved.host", ("reserved", "host", ""))]
    #[case::reserved_eq("reserved:=x", ("reserved", "x", ""))]
    #[case::dotted_key("k8s:io.kubernetes.pod.namespace=default", ("k8s", "io.kubernetes.pod.namespace", "default"))]
    #[case::colon_in_value("k8s:a=b:c", ("k8s", "a", "b:c"))]
    #[case::empty("", ("unspec", "", ""))]
    fn parse_labels(#[case] s: &str, #[case] want: (&str, &str, &str)) {
        assert_eq!(
            parse_label(s),
            Label {
                source: want.0,
                key: want.1,
                value: want.2
            }
        );
    }

    const LABELS: &[&str] = &[
        "k8s:app=xwing",
        "k8s:class=fighter",
        "k8s:io.kubernetes.pod.namespace=default",
        "k8s:replicas=3",
        "container:app=other",
        "reserved:world",
        "cidr:10.1.0.0/16",
        "cidr:2001-db8--/48",
    ];

    #[rstest]
    #[case::equals("k8s:app=xwing", true)]
    #[case::double_equals("k8s:app==xwing", true)]
    #[case::equals_other("k8s:app=tiefighter", false)]
    #[case::any_source("app=xwing", true)]
    #[case::any_source_first_label_wins("app=other", false)]
    #[case::explicit_any("any:app=xwing", true)]
    #[case::other_source("container:app=other", true)]
    #[case::wrong_source("container:app=xwing", false)]
    #[case::exists("k8s:app", true)]
    #[case::exists_missing("k8s:tier", false)]
    #[case::not_exists("!k8s:tier", true)]
    #[case::not_exists_present("!app", false)]
    #[case::not_equals("app!=tiefighter", true)]
    #[case::not_equals_same("app!=xwing", false)]
    #[case::not_equals_missing("tier!=x", true)]
    #[case::in_set("app in (tiefighter, xwing)", true)]
    #[case::in_set_miss("app in (tiefighter, deathstar)", false)]
    #[case::in_missing("tier in (a)", false)]
    #[case::notin_set("app notin (tiefighter)", true)]
    #[case::notin_set_hit("app notin (xwing)", false)]
    #[case::notin_missing("tier notin (a)", true)]
    #[case::empty_value_in_set("app in (,xwing)", true)]
    #[case::and_all("k8s:app=xwing,class=fighter", true)]
    #[case::and_one_fails("k8s:app=xwing,class=cruiser", false)]
    #[case::and_with_negation("app=xwing,!k8s:tier", true)]
    #[case::reserved("reserved:world", true)]
    #[case::reserved_bare_key("world", true)]
    #[case::dotted_key("k8s:io.kubernetes.pod.namespace=default", true)]
    #[case::gt("replicas>2", true)]
    #[case::gt_equal("replicas>3", false)]
    #[case::lt("replicas<4", true)]
    #[case::gt_not_integer("app>1", false)]
    #[case::gt_missing("tier>1", false)]
    #[case::cidr_exact("cidr:10.1.0.0/16", true)]
    #[case::cidr_broader("cidr:10.0.0.0/8", true)]
    #[case::cidr_narrower("cidr:10.1.2.0/24", false)]
    #[case::whitespace_everywhere("  app  in  ( xwing )  ,  class = fighter ", true)]
    #[case::empty_selector_matches_all("", true)]
    fn selector_matches(#[case] selector: &str, #[case] want: bool) {
        let s = Selector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
        assert_eq!(s.matches(&strings(LABELS)), want, "{selector}");
    }

    #[rstest]
    #[case::exists("app", false)]
    #[case::not_exists("!app", true)]
    #[case::notin("app notin (x)", true)]
    fn empty_label_set(#[case] selector: &str, #[case] want: bool) {
        assert_eq!(Selector::parse(selector).unwrap().matches(&[]), want);
    }

    #[rstest]
    #[case::whitespace_only(" ", "invalid label key")]
    #[case::no_key("=x", "invalid label key")]
    #[case::bad_value("app=x y", "expected: ',' or 'end of string'")]
    #[case::value_chars("app=-x", "invalid label value")]
    #[case::unclosed("app in (a, b", "expected: ',' or ')'")]
    #[case::no_paren("app in a", "expected: '('")]
    #[case::dangling_comma("app=x,", "identifier after ','")]
    #[case::double_comma("app=x,,b=c", "invalid label key")]
    #[case::operator_after_not("!app=x", "expected: ',' or 'end of string'")]
    #[case::bad_operator("app x", "expected: in, notin")]
    #[case::gt_not_int("replicas>x", "must be an integer")]
    #[case::gt_empty("replicas>", "must be an integer")]
    #[case::key_too_long(
        "k8s:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "no more than 63"
    )]
    #[case::uppercase_prefix("K8S:app.Example.com/x=y", "RFC 1123")]
    #[case::two_slashes("a/b/c", "at most one '/'")]
    #[case::leading_paren("(app)", "invalid label key")]
    fn selector_invalid(#[case] selector: &str, #[case] reason: &str) {
        let err = Selector::parse(selector).unwrap_err();
        assert!(err.contains(reason), "{selector}: {err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn nul_where_a_token_starts_ends_the_selector() {
        let s = Selector::parse("app=xwing \0garbage (((").unwrap();
        assert!(s.matches(&strings(LABELS)));
        // Inside a word it only ends the word, as in the Go lexer.
        assert!(Selector::parse("app=xwing\0garbage").is_err());
    }

    #[test]
    fn keywords_are_identifiers_as_values() {
        let s = Selector::parse("k8s:mode in (in, notin)").unwrap();
        assert!(s.matches(&strings(&["k8s:mode=notin"])));
        let s = Selector::parse("in=notin").unwrap();
        assert!(s.matches(&strings(&["k8s:in=notin"])));
    }
}
