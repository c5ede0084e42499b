//! Reads of the documents and the outbox that ledger commands write (see
//! [`crate::ledger::DocumentWrite`] and [`crate::ledger::OutboxEvent`]): what services built on
//! the ledger keep beside the money, committed in the same database transaction as it.

use async_trait::async_trait;

use super::StorageError;
use crate::ledger::{StoredDocument, StoredEvent};

/// Most documents one page returns.
pub const DOCUMENTS_PAGE_MAX: u32 = 1_000;

/// Most streams one outbox read may follow.
pub const OUTBOX_STREAMS_MAX: usize = 1_000;

#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// One document at its current version.
    async fn document(&self, kind: &str, id: &str) -> Result<Option<StoredDocument>, StorageError>;

    /// Documents of one kind with an id above `after_id`, in id order, at most `limit`
    /// (clamped to [`DOCUMENTS_PAGE_MAX`]). Ids that sort by time make this a queue.
    async fn documents_after(
        &self,
        kind: &str,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StorageError>;

    /// Events of the given streams with a sequence above `after_seq`, in sequence order, at
    /// most `limit` (clamped to [`crate::ledger::OUTBOX_PAGE_MAX`]).
    async fn outbox_after(
        &self,
        streams: &[String],
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StorageError>;
}
