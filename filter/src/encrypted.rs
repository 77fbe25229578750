//! `encrypted`: whether the flow was encrypted (WireGuard/IPsec). A flow
//! without an IP header counts as unencrypted, as upstream.

use proto::flow::{Flow, FlowFilter};

use crate::{Cost, FilterError, Predicate, Predicates};

#[derive(Debug)]
struct EncryptedFilter(Vec<bool>);

impl Predicate for EncryptedFilter {
    fn matches(&self, flow: &Flow) -> bool {
        let encrypted = flow.ip.as_ref().is_some_and(|ip| ip.encrypted);
        self.0.contains(&encrypted)
    }

    fn cost(&self) -> Cost {
        Cost::Scalar
    }
}

pub(crate) fn build(f: &FlowFilter, out: &mut Predicates<'_>) -> Result<(), FilterError> {
    if !f.encrypted.is_empty() {
        out.push(EncryptedFilter(f.encrypted.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::flow::FlowFilter;
    use rstest::rstest;

    use crate::testutil::{FlowBuilder, check, ff};

    #[rstest]
    #[case::encrypted(&[true], Some(true), true)]
    #[case::unencrypted_vs_encrypted(&[false], Some(true), false)]
    #[case::unencrypted(&[false], Some(false), true)]
    #[case::either(&[true, false], Some(false), true)]
    #[case::no_ip_is_unencrypted(&[false], None, true)]
    #[case::no_ip_not_encrypted(&[true], None, false)]
    fn encrypted(#[case] values: &[bool], #[case] enc: Option<bool>, #[case] want: bool) {
        let b = FlowBuilder::new();
        let flow = match enc {
            Some(e) => b.src_ip("10.0.0.1").encrypted(e),
            None => b,
        }
        .build();
        let f = FlowFilter {
            encrypted: values.to_vec(),
            ..ff()
        };
        check(&[f], &flow, want);
    }
}
