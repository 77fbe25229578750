//! HTTP fields, matched against L7 HTTP records only:
//!
//! * `http_status_code`: exactly three digits (`404`) or a prefix of one or
//!   two digits followed by `+` (`5+`, `40+`), first digit 1-5; records
//!   without a status (requests) never match;
//! * `http_method`: case-insensitive;
//! * `http_path`: regular expressions (unanchored) against the decoded path
//!   of the URL, see `uri.rs`;
//! * `http_url`: regular expressions against the whole URL;
//! * `http_header`: exact `{key, value}` pairs, any header may match.
//!
//! A FlowFilter with any of them and an `event_type` list that does not
//! include L7 (129) is rejected: it could never match.

use proto::flow::{Flow, FlowFilter, Http, HttpHeader, layer7};
use regex::Regex;

use crate::defaults::EVENT_TYPE_L7;
use crate::uri::request_path;
use crate::{Cost, FilterError, Predicate, Predicates};

fn http(flow: &Flow) -> Option<&Http> {
    match flow.l7.as_ref()?.record.as_ref()? {
        layer7::Record::Http(h) => Some(h),
        _ => None,
    }
}

#[derive(Debug)]
struct StatusCodeFilter {
    /// Three-digit codes.
    full: Vec<String>,
    /// One- or two-digit prefixes.
    prefixes: Vec<String>,
}

impl Predicate for StatusCodeFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(h) = http(flow).filter(|h| h.code != 0) else {
            return false;
        };
        // `%03d` of the code, in a stack buffer.
        let mut buf = [b'0'; 10];
        let mut n = h.code;
        let mut start = buf.len();
        while n > 0 {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let start = start.min(buf.len() - 3);
        let code = std::str::from_utf8(&buf[start..]).unwrap_or_default();
        self.full.iter().any(|f| f == code)
            || self.prefixes.iter().any(|p| code.starts_with(p.as_str()))
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

fn parse_status(v: &str) -> Option<(bool, String)> {
    let b = v.as_bytes();
    let first_ok = |c: u8| (b'1'..=b'5').contains(&c);
    match b {
        [a, x, y] if first_ok(*a) && x.is_ascii_digit() && y.is_ascii_digit() => {
            Some((true, v.to_owned()))
        }
        [a, b'+'] if first_ok(*a) => Some((false, v[..1].to_owned())),
        [a, x, b'+'] if first_ok(*a) && x.is_ascii_digit() => Some((false, v[..2].to_owned())),
        _ => None,
    }
}

#[derive(Debug)]
struct MethodFilter(Vec<String>);

impl Predicate for MethodFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(h) = http(flow).filter(|h| !h.method.is_empty()) else {
            return false;
        };
        self.0.iter().any(|m| equal_fold(m, &h.method))
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

/// Case-insensitive comparison without allocating (Go's `EqualFold`).
fn equal_fold(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
}

#[derive(Debug)]
struct PathFilter(Vec<Regex>);

impl Predicate for PathFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let Some(h) = http(flow).filter(|h| !h.url.is_empty()) else {
            return false;
        };
        let Some(path) = request_path(&h.url) else {
            return false;
        };
        self.0.iter().any(|r| r.is_match(&path))
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

#[derive(Debug)]
struct UrlFilter(Vec<Regex>);

impl Predicate for UrlFilter {
    fn matches(&self, flow: &Flow) -> bool {
        http(flow)
            .filter(|h| !h.url.is_empty())
            .is_some_and(|h| self.0.iter().any(|r| r.is_match(&h.url)))
    }

    fn cost(&self) -> Cost {
        Cost::Pattern
    }
}

#[derive(Debug)]
struct HeaderFilter(Vec<HttpHeader>);

impl Predicate for HeaderFilter {
    fn matches(&self, flow: &Flow) -> bool {
        http(flow).is_some_and(|h| {
            h.headers.iter().any(|have| {
                self.0
                    .iter()
                    .any(|want| want.key == have.key && want.value == have.value)
            })
        })
    }

    fn cost(&self) -> Cost {
        Cost::String
    }
}

fn regexes(field: &'static str, values: &[String]) -> Result<Vec<Regex>, FilterError> {
    values
        .iter()
        .map(|v| Regex::new(v).map_err(|e| FilterError::regex(field, v, &e)))
        .collect()
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    let l7_possible =
        f.event_type.is_empty() || f.event_type.iter().any(|t| t.r#type == EVENT_TYPE_L7);
    let fields: [(&'static str, &'static str, bool); 5] = [
        (
            "http_status_code",
            "http status code",
            !f.http_status_code.is_empty(),
        ),
        ("http_method", "http method", !f.http_method.is_empty()),
        ("http_path", "http path", !f.http_path.is_empty()),
        ("http_url", "http url", !f.http_url.is_empty()),
        ("http_header", "http headers", !f.http_header.is_empty()),
    ];
    if !l7_possible && let Some((field, what, _)) = fields.iter().find(|(_, _, set)| *set) {
        return Err(FilterError::Conflict {
            field,
            reason: format!(
                "filtering by {what} requires the event type filter to only match 'l7' events"
            ),
        });
    }

    if !f.http_status_code.is_empty() {
        let mut filter = StatusCodeFilter {
            full: Vec::new(),
            prefixes: Vec::new(),
        };
        for v in &f.http_status_code {
            match parse_status(v) {
                Some((true, s)) => filter.full.push(s),
                Some((false, s)) => filter.prefixes.push(s),
                None => {
                    return Err(FilterError::invalid(
                        "http_status_code",
                        v,
                        "invalid status code, must be three digits (404) or a prefix of one or two digits and + (5+, 40+)",
                    ));
                }
            }
        }
        out.push(filter);
    }
    if !f.http_method.is_empty() {
        out.push(MethodFilter(f.http_method.clone()));
    }
    if !f.http_path.is_empty() {
        out.push(PathFilter(regexes("http_path", &f.http_path)?));
    }
    if !f.http_url.is_empty() {
        out.push(UrlFilter(regexes("http_url", &f.http_url)?));
    }
    if !f.http_header.is_empty() {
        out.push(HeaderFilter(f.http_header.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::{EventTypeFilter, Flow, FlowFilter, HttpHeader};
    use rstest::rstest;

    use crate::FilterError;
    use crate::testutil::{FlowBuilder, allows, check, compile_error, ff, strings};

    fn get(code: u32, url: &str) -> Flow {
        FlowBuilder::new()
            .tcp(34567, 80)
            .http(
                code,
                "GET",
                url,
                &[("User-Agent", "curl/8.0"), ("X-Request-Id", "42")],
            )
            .build()
    }

    #[rstest]
    #[case::exact(&["200"], 200, true)]
    #[case::exact_other(&["404"], 200, false)]
    #[case::one_digit_prefix(&["5+"], 503, true)]
    #[case::one_digit_prefix_miss(&["5+"], 404, false)]
    #[case::two_digit_prefix(&["40+"], 404, true)]
    #[case::two_digit_prefix_miss(&["40+"], 410, false)]
    #[case::one_of(&["404", "5+"], 500, true)]
    #[case::request_without_code(&["1+", "2+", "3+", "4+", "5+"], 0, false)]
    #[case::odd_code(&["1+"], 1234, true)]
    #[case::small_code_padded(&["1+", "2+", "3+", "4+", "5+"], 99, false)]
    fn status_code(#[case] values: &[&str], #[case] code: u32, #[case] want: bool) {
        let f = FlowFilter {
            http_status_code: strings(values),
            ..ff()
        };
        check(&[f], &get(code, "/"), want);
    }

    #[rstest]
    #[case::exact(&["GET"], true)]
    #[case::case_insensitive(&["get"], true)]
    #[case::other(&["POST"], false)]
    #[case::one_of(&["put", "get"], true)]
    #[case::no_prefix(&["GE"], false)]
    fn method(#[case] values: &[&str], #[case] want: bool) {
        let f = FlowFilter {
            http_method: strings(values),
            ..ff()
        };
        check(&[f], &get(200, "/"), want);
    }

    #[rstest]
    #[case::substring(&["request"], "http://deathstar/v1/request-landing", true)]
    #[case::anchored(&["^/v1/request-landing$"], "http://deathstar/v1/request-landing?x=1", true)]
    #[case::host_not_in_path(&["deathstar"], "http://deathstar/v1/request-landing", false)]
    #[case::query_not_in_path(&["x=1"], "/v1/ships?x=1", false)]
    #[case::decoded(&["^/a b$"], "/a%20b", true)]
    #[case::one_of(&["^/nope", "^/v1/"], "/v1/ships", true)]
    #[case::unparsable_url(&[""], "v1/relative", false)]
    #[case::empty_url(&[""], "", false)]
    fn path(#[case] values: &[&str], #[case] url: &str, #[case] want: bool) {
        let f = FlowFilter {
            http_path: strings(values),
            ..ff()
        };
        check(&[f], &get(200, url), want);
    }

    #[rstest]
    #[case::host(&["deathstar"], "http://deathstar/v1/", true)]
    #[case::query(&[r"\?x=1$"], "http://deathstar/v1/?x=1", true)]
    #[case::anchored_miss(&["^/v1"], "http://deathstar/v1/", false)]
    #[case::relative_url(&["^v1"], "v1/relative", true)]
    #[case::empty_url(&[""], "", false)]
    fn full_url(#[case] values: &[&str], #[case] url: &str, #[case] want: bool) {
        let f = FlowFilter {
            http_url: strings(values),
            ..ff()
        };
        check(&[f], &get(200, url), want);
    }

    fn h(key: &str, value: &str) -> HttpHeader {
        HttpHeader {
            key: key.into(),
            value: value.into(),
        }
    }

    #[rstest]
    #[case::exact(vec![h("X-Request-Id", "42")], true)]
    #[case::other_value(vec![h("X-Request-Id", "43")], false)]
    #[case::key_is_case_sensitive(vec![h("x-request-id", "42")], false)]
    #[case::empty_value_is_not_wildcard(vec![h("X-Request-Id", "")], false)]
    #[case::one_of(vec![h("A", "b"), h("User-Agent", "curl/8.0")], true)]
    fn header(#[case] values: Vec<HttpHeader>, #[case] want: bool) {
        let f = FlowFilter {
            http_header: values,
            ..ff()
        };
        check(&[f], &get(200, "/"), want);
    }

    #[rstest]
    #[case::status(FlowFilter { http_status_code: strings(&["2+"]), ..ff() })]
    #[case::method(FlowFilter { http_method: strings(&["get"]), ..ff() })]
    #[case::path(FlowFilter { http_path: strings(&[""]), ..ff() })]
    #[case::url(FlowFilter { http_url: strings(&[""]), ..ff() })]
    #[case::header(FlowFilter { http_header: vec![h("X-Request-Id", "42")], ..ff() })]
    fn only_http_records_match(#[case] f: FlowFilter) {
        assert!(allows(std::slice::from_ref(&f), &get(200, "/")));
        let dns = FlowBuilder::new().udp(1, 53).dns("cilium.io.").build();
        assert!(!allows(std::slice::from_ref(&f), &dns));
        assert!(!allows(&[f], &FlowBuilder::new().tcp(1, 80).build()));
    }

    #[test]
    fn combined_with_verdict_and_l7_event_type() {
        let f = FlowFilter {
            event_type: vec![EventTypeFilter {
                r#type: 129,
                match_sub_type: false,
                sub_type: 0,
            }],
            http_method: strings(&["GET"]),
            http_status_code: strings(&["200"]),
            ..ff()
        };
        assert!(allows(&[f], &get(200, "/")));
    }

    #[rstest]
    #[case::status(FlowFilter { http_status_code: strings(&["200"]), ..ff() }, "http_status_code", "http status code")]
    #[case::method(FlowFilter { http_method: strings(&["GET"]), ..ff() }, "http_method", "http method")]
    #[case::path(FlowFilter { http_path: strings(&["/"]), ..ff() }, "http_path", "http path")]
    #[case::url(FlowFilter { http_url: strings(&["/"]), ..ff() }, "http_url", "http url")]
    #[case::header(FlowFilter { http_header: vec![h("a", "b")], ..ff() }, "http_header", "http headers")]
    fn event_type_must_include_l7(#[case] f: FlowFilter, #[case] field: &str, #[case] what: &str) {
        let trace_only = vec![
            EventTypeFilter {
                r#type: 4,
                match_sub_type: false,
                sub_type: 0,
            },
            EventTypeFilter {
                r#type: 1,
                match_sub_type: false,
                sub_type: 0,
            },
        ];
        let err = compile_error(FlowFilter {
            event_type: trace_only,
            ..f.clone()
        });
        assert!(matches!(err, FilterError::Conflict { .. }), "{err:?}");
        assert_eq!(err.field(), field);
        assert_eq!(err.value(), None);
        assert_eq!(
            err.to_string(),
            format!(
                "invalid {field} filter: filtering by {what} requires the event type filter to only match 'l7' events"
            )
        );
        let with_l7 = vec![
            EventTypeFilter {
                r#type: 4,
                match_sub_type: false,
                sub_type: 0,
            },
            EventTypeFilter {
                r#type: 129,
                match_sub_type: false,
                sub_type: 0,
            },
        ];
        assert!(
            crate::FilterSet::compile(
                &[FlowFilter {
                    event_type: with_l7,
                    ..f
                }],
                &[]
            )
            .is_ok()
        );
    }

    #[rstest]
    #[case::two_digits("20")]
    #[case::four_digits("2000")]
    #[case::first_digit_zero("099")]
    #[case::first_digit_six("600")]
    #[case::three_digit_prefix("404+")]
    #[case::bare_plus("+")]
    #[case::letters("2xx")]
    #[case::empty("")]
    fn invalid_status_code(#[case] value: &str) {
        let err = compile_error(FlowFilter {
            http_status_code: strings(&["200", value]),
            ..ff()
        });
        assert_eq!(err.field(), "http_status_code");
        assert_eq!(err.value(), Some(value));
        assert!(err.to_string().starts_with(&format!(
            "invalid http_status_code filter {value:?}: invalid status code"
        )));
    }

    #[rstest]
    #[case::path(FlowFilter { http_path: strings(&["/v1/(", "ok"]), ..ff() }, "http_path", "/v1/(")]
    #[case::url(FlowFilter { http_url: strings(&["[z-a]"]), ..ff() }, "http_url", "[z-a]")]
    fn invalid_regex(#[case] f: FlowFilter, #[case] field: &str, #[case] value: &str) {
        let err = compile_error(f);
        assert_eq!(err.field(), field);
        assert_eq!(err.value(), Some(value));
        assert!(
            err.to_string().contains("invalid regular expression"),
            "{err}"
        );
    }
}
