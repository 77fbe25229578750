//! `experimental.cel_expression`: CEL over `_flow`. There is no CEL engine
//! here, so any expression is rejected rather than silently ignored (which
//! would select flows the user meant to exclude).

use proto::flow::FlowFilter;

use crate::{FilterError, Predicates};

pub(crate) fn build(f: &FlowFilter, _out: &mut Predicates<'_>) -> Result<(), FilterError> {
    match f
        .experimental
        .as_ref()
        .and_then(|e| e.cel_expression.first())
    {
        Some(expr) => Err(FilterError::CelNotSupported {
            value: expr.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use proto::flow::flow_filter::Experimental;

    use crate::FilterSet;
    use crate::testutil::{FlowBuilder, allows, compile_error, ff, strings};

    fn cel(exprs: &[&str]) -> FlowFilter {
        FlowFilter {
            experimental: Some(Experimental {
                cel_expression: strings(exprs),
            }),
            ..ff()
        }
    }

    #[test]
    fn expressions_are_rejected() {
        let err = compile_error(cel(&["_flow.verdict == Verdict.DROPPED"]));
        assert_eq!(err.field(), "experimental.cel_expression");
        assert_eq!(err.value(), Some("_flow.verdict == Verdict.DROPPED"));
        assert_eq!(
            err.to_string(),
            r#"CEL expressions are not supported (experimental.cel_expression "_flow.verdict == Verdict.DROPPED")"#
        );
        assert!(FilterSet::compile(&[], &[cel(&[""])]).is_err());
    }

    #[test]
    fn empty_experimental_matches_all() {
        assert!(allows(&[cel(&[])], &FlowBuilder::new().build()));
        assert!(FilterSet::compile(&[cel(&[])], &[]).unwrap().is_match_all());
    }
}
