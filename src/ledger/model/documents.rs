//! Versioned documents and outbox events written in the same transaction as a command.

use serde::{Deserialize, Serialize};

use super::TransactionId;

/// Most document writes and outbox events carried by one command.
pub const DOCUMENTS_PER_COMMAND_MAX: usize = 8;
pub const EVENTS_PER_COMMAND_MAX: usize = 8;
/// Longest document kind and document id, outbox stream and outbox key (bytes).
pub const DOCUMENT_KIND_LEN_MAX: usize = 32;
pub const DOCUMENT_ID_LEN_MAX: usize = 160;
/// Longest document body and outbox event body (bytes of JSON).
pub const DOCUMENT_BODY_LEN_MAX: usize = 65_536;
/// Most outbox events returned by one read.
pub const OUTBOX_PAGE_MAX: u32 = 1_000;

/// A versioned document written in the same database transaction as a command (an order's
/// state, a refund, a consumed payment code). The ledger gives the body no meaning; it only
/// guarantees optimistic concurrency: the write applies when the stored version is
/// `expected_version` (0 = the document must not exist yet) and stores version + 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentWrite {
    pub kind: String,
    pub id: String,
    pub expected_version: u64,
    /// JSON text.
    pub body: String,
}

impl DocumentWrite {
    /// A write of `value` as its JSON text. A value that does not encode is a bug in the
    /// service's types, answered as an internal error (and logged).
    pub fn json<T: Serialize>(
        kind: &str,
        id: &str,
        expected_version: u64,
        value: &T,
    ) -> Result<DocumentWrite, crate::ledger::LedgerError> {
        let body = serde_json::to_string(value).map_err(|e| {
            tracing::error!(kind, error = %e, "document could not be encoded");
            crate::ledger::LedgerError::Storage
        })?;
        Ok(DocumentWrite {
            kind: kind.to_owned(),
            id: id.to_owned(),
            expected_version,
            body,
        })
    }
}

/// An event appended to the transactional outbox in the same database transaction as the
/// change it describes. Readers follow one stream by its global sequence (the cursor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Who reads it (e.g. a merchant id).
    pub stream: String,
    /// What it is about (e.g. an order id); events of one key keep their order.
    pub key: String,
    /// JSON text.
    pub body: String,
}

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    pub kind: String,
    pub id: String,
    pub version: u64,
    pub body: String,
    pub updated_at_ms: i64,
    /// The journal transaction the command that wrote this version posted, if it posted one.
    pub transaction: Option<TransactionId>,
}

/// An outbox event as stored, with its global sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub stream: String,
    pub key: String,
    pub body: String,
    pub created_at_ms: i64,
    /// The journal transaction the command that appended this event posted, if it posted one.
    pub transaction: Option<TransactionId>,
}
