//! [`ServiceError`]: a service object that is not in force.

use serde::{Deserialize, Serialize};

/// A service object that is not in force: where, which, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{origin}: {object}: {reason}")]
pub struct ServiceError {
    /// The file or store key.
    pub origin: String,
    /// `Service ns/name`, `EndpointSlice ns/name`, or `document N`.
    pub object: String,
    /// Why, naming the field.
    pub reason: String,
}

impl ServiceError {
    /// An error of `object` in `origin`.
    pub fn new(
        origin: impl Into<String>,
        object: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            origin: origin.into(),
            object: object.into(),
            reason: reason.into(),
        }
    }
}
