//! The path of an HTTP request URL, as Go's `url.ParseRequestURI` finds it.
//!
//! `http_path` filters match the decoded path of `l7.http.url`, and URLs Go
//! refuses to parse match nothing. Only what decides the path and its
//! validity is implemented: control characters, the scheme, the query, the
//! authority (brackets, port, percent escapes and characters of the host)
//! and the percent-decoding of the path. Decoding allocates only when the
//! path contains an escape.

use std::borrow::Cow;
use std::net::Ipv6Addr;

/// The decoded path of a request URI, or `None` if Go would reject it.
/// Invalid UTF-8 produced by escapes becomes U+FFFD, which is how Go's
/// regular expressions read such bytes.
pub(crate) fn request_path(raw: &str) -> Option<Cow<'_, str>> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    if raw.is_empty() {
        return None;
    }
    if raw == "*" {
        return Some(Cow::Borrowed("*"));
    }
    let (scheme, rest) = split_scheme(raw)?;
    let rest = if rest.ends_with('?') && rest.bytes().filter(|b| *b == b'?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        rest.split_once('?').map_or(rest, |(path, _query)| path)
    };
    if !rest.starts_with('/') {
        // With a scheme this is an opaque URL, which has no path; without
        // one it is not a request URI.
        return if scheme {
            Some(Cow::Borrowed(""))
        } else {
            None
        };
    }
    let path = if scheme && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if !valid_authority(authority) {
            return None;
        }
        path
    } else {
        rest
    };
    unescape(path)
}

/// Splits off `scheme:`. `Some((true, rest))` with a scheme,
/// `Some((false, raw))` without, `None` for a leading colon.
fn split_scheme(raw: &str) -> Option<(bool, &str)> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((true, &raw[i + 1..])),
            _ => return Some((false, raw)),
        }
    }
    Some((false, raw))
}

fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(u) = userinfo {
        let ok = u.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'_' | b':' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')'
                )
                || matches!(b, b'*' | b'+' | b',' | b';' | b'=' | b'%' | b'@')
                || b >= 0x80
        });
        if !ok || unescape(u).is_none() {
            return false;
        }
    }
    valid_host(host)
}

fn valid_port(colon_port: &str) -> bool {
    match colon_port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => colon_port.is_empty(),
    }
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(end) = inner.rfind(']') else {
            return false;
        };
        if !valid_port(&inner[end + 1..]) {
            return false;
        }
        let literal = &inner[..end];
        let addr = literal.split_once("%25").map_or(literal, |(a, _zone)| a);
        if addr.parse::<Ipv6Addr>().is_err() {
            return false;
        }
    } else if let Some(i) = host.rfind(':')
        && !valid_port(&host[i..])
    {
        return false;
    }
    // The whole host, brackets and port included, must unescape as a host.
    let b = host.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len()
                    || !b[i + 1].is_ascii_hexdigit()
                    || !b[i + 2].is_ascii_hexdigit()
                {
                    return false;
                }
                // Hosts may only escape non-ASCII bytes, or `%25` in a zone.
                if hex(b[i + 1]) < 8 && &host[i..i + 3] != "%25" {
                    return false;
                }
                i += 3;
            }
            c if c < 0x80 && !host_char(c) => return false,
            _ => i += 1,
        }
    }
    true
}

/// ASCII characters Go allows unescaped in a host.
fn host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
                | b'-'
                | b'_'
                | b'.'
                | b'~'
        )
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Percent-decodes a path; `None` for a malformed escape.
fn unescape(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                return None;
            }
            out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::request_path;

    #[rstest]
    #[case::absolute_path("/v1/ships?x=1", Some("/v1/ships"))]
    #[case::full_url(
        "http://deathstar.default.svc.cluster.local/v1/request-landing",
        Some("/v1/request-landing")
    )]
    #[case::with_port("http://10.0.0.1:8080/healthz", Some("/healthz"))]
    #[case::ipv6_host("http://[2001:db8::1]:80/x", Some("/x"))]
    #[case::userinfo("https://user:pw@host/x", Some("/x"))]
    #[case::no_path("http://host", Some(""))]
    #[case::no_path_query("http://host?x", Some(""))]
    #[case::trailing_question("/a?", Some("/a"))]
    #[case::fragment_kept("/a#frag", Some("/a#frag"))]
    #[case::escapes("/a%20b/%2F", Some("/a b//"))]
    #[case::invalid_utf8_escape("/%ff", Some("/\u{fffd}"))]
    #[case::double_slash_without_scheme("//host/x", Some("//host/x"))]
    #[case::star("*", Some("*"))]
    #[case::opaque("mailto:x@y", Some(""))]
    #[case::relative("v1/ships", None)]
    #[case::empty("", None)]
    #[case::leading_colon(":x", None)]
    #[case::bad_escape("/a%zz", None)]
    #[case::truncated_escape("/a%2", None)]
    #[case::control_char("/a\u{7f}", None)]
    #[case::bad_port("http://host:http/x", None)]
    #[case::bad_host_char("http://ho st/x", None)]
    #[case::unclosed_bracket("http://[::1/x", None)]
    #[case::bracketed_v4("http://[10.0.0.1]/x", None)]
    #[case::ascii_escape_in_host("http://h%41/x", None)]
    fn paths(#[case] raw: &str, #[case] want: Option<&str>) {
        assert_eq!(request_path(raw).as_deref(), want);
    }
}
