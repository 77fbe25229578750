//! The one error type of the crate: a FlowFilter that cannot be compiled.

/// Why a [`FlowFilter`](proto::flow::FlowFilter) could not be compiled.
///
/// Every variant names the FlowFilter field (its proto name, e.g.
/// `source_ip`) and, where there is one, the offending value, so that a
/// server can answer `InvalidArgument` with a message the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A value of the field cannot be parsed or compiled (a long value is
    /// quoted by its first [`ERROR_VALUE_PREFIX`](crate::defaults::ERROR_VALUE_PREFIX)
    /// characters).
    #[error("invalid {field} filter {}: {reason}", quote(value))]
    InvalidValue {
        /// The FlowFilter field, by its proto name.
        field: &'static str,
        /// The value as it was sent.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The field is valid on its own but conflicts with another field of the
    /// same FlowFilter (HTTP fields with an `event_type` that excludes L7).
    #[error("invalid {field} filter: {reason}")]
    Conflict {
        /// The FlowFilter field, by its proto name.
        field: &'static str,
        /// What it conflicts with.
        reason: String,
    },
    /// The request's filters are larger than
    /// [`MAX_FILTER_BYTES`](crate::defaults::MAX_FILTER_BYTES) (a server
    /// answers `RESOURCE_EXHAUSTED`).
    #[error(
        "filters too large: {size} bytes encoded, the limit is {limit} bytes (allow and deny lists together)"
    )]
    TooLarge {
        /// The encoded size of the request's filters.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `experimental.cel_expression`: this implementation has no CEL engine.
    #[error(
        "CEL expressions are not supported (experimental.cel_expression {})",
        quote(value)
    )]
    CelNotSupported {
        /// The first expression of the filter.
        value: String,
    },
}

/// `value` in quotes as `{:?}` prints it, cut to its first
/// [`ERROR_VALUE_PREFIX`](crate::defaults::ERROR_VALUE_PREFIX) characters
/// with the full length said.
fn quote(value: &str) -> String {
    let limit = crate::defaults::ERROR_VALUE_PREFIX;
    match value.char_indices().nth(limit) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

impl FilterError {
    /// Whether the request is over a resource limit (`RESOURCE_EXHAUSTED`)
    /// rather than invalid (`INVALID_ARGUMENT`).
    pub fn is_resource_limit(&self) -> bool {
        matches!(self, FilterError::TooLarge { .. })
    }

    /// The FlowFilter field at fault, by its proto name.
    pub fn field(&self) -> &'static str {
        match self {
            FilterError::InvalidValue { field, .. } | FilterError::Conflict { field, .. } => field,
            FilterError::CelNotSupported { .. } => "experimental.cel_expression",
            FilterError::TooLarge { .. } => "whitelist/blacklist",
        }
    }

    /// The offending value, when a single value is at fault.
    pub fn value(&self) -> Option<&str> {
        match self {
            FilterError::InvalidValue { value, .. } | FilterError::CelNotSupported { value } => {
                Some(value)
            }
            FilterError::Conflict { .. } | FilterError::TooLarge { .. } => None,
        }
    }

    pub(crate) fn invalid(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        FilterError::InvalidValue {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// An invalid regular expression; `regex` renders syntax errors over
    /// several lines with a caret diagram, which a gRPC status cannot show,
    /// so only the `error: …` line is kept.
    pub(crate) fn regex(field: &'static str, value: &str, err: &regex::Error) -> Self {
        let text = err.to_string();
        let reason = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .map(|r| format!("invalid regular expression: {r}"))
            .unwrap_or_else(|| {
                format!(
                    "invalid regular expression: {}",
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                )
            });
        FilterError::invalid(field, value, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_field_and_value() {
        let e = FilterError::invalid("source_ip", "10.0.0.300", "invalid IP address or CIDR");
        assert_eq!(
            e.to_string(),
            r#"invalid source_ip filter "10.0.0.300": invalid IP address or CIDR"#
        );
        assert_eq!(e.field(), "source_ip");
        assert_eq!(e.value(), Some("10.0.0.300"));
    }

    #[test]
    fn regex_errors_fit_on_one_line() {
        let pattern = String::from("a(b");
        let err = regex::Regex::new(&pattern).unwrap_err();
        let e = FilterError::regex("http_path", "a(b", &err);
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with(r#"invalid http_path filter "a(b": invalid regular expression: "#),
            "{text}"
        );
    }

    #[test]
    fn cel_names_its_field() {
        let e = FilterError::CelNotSupported {
            value: "true".into(),
        };
        assert_eq!(e.field(), "experimental.cel_expression");
        assert!(
            e.to_string()
                .starts_with("CEL expressions are not supported")
        );
    }

    #[test]
    fn long_values_are_quoted_by_a_prefix() {
        let long = "x".repeat(10_000);
        let e = FilterError::invalid("http_path", long.clone(), "bad");
        let text = e.to_string();
        let prefix = "x".repeat(crate::defaults::ERROR_VALUE_PREFIX);
        assert_eq!(
            text,
            format!("invalid http_path filter \"{prefix}\"… (10000 bytes): bad")
        );
        assert_eq!(e.value(), Some(long.as_str()), "the value itself is kept");
    }

    #[test]
    fn oversized_filter_sets_are_a_resource_limit() {
        let f = proto::flow::FlowFilter {
            source_pod: vec!["p".repeat(crate::defaults::MAX_FILTER_BYTES)],
            ..Default::default()
        };
        let e = crate::FilterSet::compile(&[], &[f]).unwrap_err();
        assert!(e.is_resource_limit(), "{e}");
        assert!(e.to_string().contains("the limit is 65536 bytes"), "{e}");
        let small = proto::flow::FlowFilter {
            source_pod: vec!["default/xwing".into()],
            ..Default::default()
        };
        assert!(
            crate::FilterSet::compile(std::slice::from_ref(&small), std::slice::from_ref(&small))
                .is_ok()
        );
    }
}
