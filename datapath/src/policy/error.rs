//! [`PolicyError`]: what is wrong with a policy document, and where.

/// A policy file or field that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct PolicyError {
    /// The file (or other origin) of the document.
    pub origin: String,
    /// The field path (`spec.ingress[0].toPorts[0].ports[0].port`), or
    /// `document N` when the problem is the document as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}
