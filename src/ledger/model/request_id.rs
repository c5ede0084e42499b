//! The caller-chosen request id, parsed once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::IdempotencyKey;

/// Longest caller-chosen request id.
pub const REQUEST_ID_LEN_MAX: usize = 64;

/// A caller-chosen request id: the idempotency key of a mutating call, 1..=64 printable ASCII
/// characters without `#` (which separates the steps of one request). Parsed once, at the edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

/// Why a text is not a [`RequestId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request_id is 1..={REQUEST_ID_LEN_MAX} printable ASCII characters, no '#'")]
pub struct InvalidRequestId;

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The idempotency key of this request for `caller`.
    pub fn key(&self, caller: &str) -> IdempotencyKey {
        IdempotencyKey::new(caller, self.0.clone())
    }

    /// The idempotency key of a later step of this request (settle or void after a
    /// reservation, a refund's network answer …).
    pub fn step_key(&self, caller: &str, step: &str) -> IdempotencyKey {
        IdempotencyKey::new(caller, format!("{}#{step}", self.0))
    }
}

impl TryFrom<String> for RequestId {
    type Error = InvalidRequestId;

    fn try_from(text: String) -> Result<RequestId, InvalidRequestId> {
        if text.is_empty()
            || text.len() > REQUEST_ID_LEN_MAX
            || text.contains('#')
            || !text.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(InvalidRequestId);
        }
        Ok(RequestId(text))
    }
}

impl TryFrom<&str> for RequestId {
    type Error = InvalidRequestId;

    fn try_from(text: &str) -> Result<RequestId, InvalidRequestId> {
        RequestId::try_from(text.to_owned())
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
