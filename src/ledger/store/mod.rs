//! The ledger's storage port (ports and adapters): what the ledger needs of a database, owned
//! here and implemented by the SQLite and PostgreSQL adapters of the `storage` module, which import
//! the ledger and never the other way round. `server.rs` picks the adapter.
//!
//! - [`LedgerStore`]: one batch is one database transaction (lock the chain head, load, apply,
//!   write, commit); the only way anything is written.
//! - [`LedgerReads`], [`AccountReads`], [`DocumentReads`]: reads outside a batch, which services
//!   reach only through [`crate::ledger::Ledger`]'s read API.
//!
//! A [`StorageError`] never shows SQL or driver text in its `Display`: the detail is kept for
//! the log (`Debug`), callers see a generic internal error.

use std::fmt;

use async_trait::async_trait;

use super::model::{
    Account, AccountId, Balance, Hold, HoldId, IdempotencyKey, Pending, PendingId, StatementLine,
    StoredDocument, StoredEvent,
};

mod batch;
mod records;

pub use batch::*;
pub use records::*;

/// Most journal entries an account row may leave to its tail. An account row holds its posted
/// totals through `posted_through_seq`; later entries of the account are added on every read
/// (row + tail, in the same SQL on both back ends). A batch therefore rewrites a row only when
/// something besides posted totals changed, or when the tail would grow past this bound: a
/// transfer between two quiet accounts appends to the journal and writes no account row, and a
/// hot account's row is written about once per this many entries.
pub const ROW_TAIL_ENTRIES_MAX: u32 = 64;
/// Most rows read by one page of a scan (verify, sweeper).
pub const SCAN_PAGE_ROWS_MAX: u32 = 10_000;

/// A failure of the database or of its contents. `Display` is deliberately generic.
pub struct StorageError {
    detail: String,
    /// The database answered, but what it holds does not decode (a bug or a damaged database).
    corrupt: bool,
    /// The database could not be reached or would not take writes (connection lost, a node
    /// failing over, read-only): a retry may well succeed in a moment.
    unavailable: bool,
}

impl StorageError {
    pub fn new(detail: impl Into<String>) -> StorageError {
        StorageError {
            detail: detail.into(),
            corrupt: false,
            unavailable: false,
        }
    }

    /// The database is unreachable or will not take writes now (see [`StorageError::is_unavailable`]).
    pub fn unavailable(detail: impl Into<String>) -> StorageError {
        StorageError {
            detail: detail.into(),
            corrupt: false,
            unavailable: true,
        }
    }

    /// Whether the failure is the database's absence rather than the request or the data: a
    /// lost connection, a pool that timed out or closed, a server shutting down or recovering,
    /// a node that is read-only (a demoted primary). Retryable.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    /// Stored data that does not decode: an unreadable column, a value out of its domain.
    pub fn corrupt(detail: impl Into<String>) -> StorageError {
        StorageError {
            detail: detail.into(),
            corrupt: true,
            unavailable: false,
        }
    }

    /// Whether the stored data itself is at fault (rather than the database or the connection).
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    /// The full detail, for logs only.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("internal storage error")
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.corrupt {
            "corrupt"
        } else if self.unavailable {
            "unavailable"
        } else {
            "database"
        };
        write!(f, "StorageError({kind}: {})", self.detail)
    }
}

impl std::error::Error for StorageError {}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // The row was read but a column does not decode into its type.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StorageError::corrupt(format!("database: {e}"))
            }
            // A broken conversation (the server went away mid-message) is the connection's
            // loss too: a new connection is the cure.
            sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StorageError::unavailable(format!("database: {e}")),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| unavailable_state(&c)) => {
                StorageError::unavailable(format!("database: {e}"))
            }
            e => StorageError::new(format!("database: {e}")),
        }
    }
}

/// SQLSTATEs of a server that is going away, starting, or will not take writes: connection
/// exceptions (class 08), admin or crash shutdown and "cannot connect now" (57P01–57P03), and
/// a read-only transaction (25006, a demoted primary).
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}

/// Which database is behind a [`Storage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The ledger's reads outside a batch, of its own tables (no lock).
#[async_trait]
pub trait LedgerReads: Send + Sync {
    /// One account with its balances (no lock).
    async fn account(&self, id: AccountId) -> Result<Option<(Account, Balance)>, StorageError>;

    /// The answer stored under an idempotency key, if any (no lock).
    async fn idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, StorageError>;

    /// Statement lines of an account after `after_seq`, in (seq, index) order; a transaction's
    /// lines are never split across pages.
    async fn statement(
        &self,
        id: AccountId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StatementLine>, StorageError>;

    /// A pending transfer with its state.
    async fn pending(&self, id: PendingId) -> Result<Option<Pending>, StorageError>;

    /// A hold with its state.
    async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StorageError>;

    /// Open items whose deadline is at or before `now_ms`, oldest first.
    async fn due_expiries(&self, now_ms: i64, limit: u32) -> Result<Vec<ExpiryItem>, StorageError>;

    /// Idempotency records kept now (a metric; a full count, so sample it sparingly).
    async fn idempotency_keys_count(&self) -> Result<u64, StorageError>;

    /// Deletes up to `limit` idempotency records created before `cutoff_ms`; returns how many.
    async fn purge_idempotency(&self, cutoff_ms: i64, limit: u32) -> Result<u64, StorageError>;

    /// The chain head as committed.
    async fn chain_head(&self) -> Result<ChainHead, StorageError>;

    /// Journal transactions with seq > `after_seq`, in order, with their entries (verify).
    async fn transactions_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<(TransactionRow, Vec<EntryRow>)>, StorageError>;

    /// Accounts with id > `after_id`, in order (verify).
    async fn accounts_page(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<(Account, Balance)>, StorageError>;

    /// Open pendings with id > `after_id` (verify).
    async fn open_pendings_page(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<Pending>, StorageError>;

    /// Open holds with id > `after_id` (verify).
    async fn open_holds_page(&self, after_id: u64, limit: u32) -> Result<Vec<Hold>, StorageError>;

    /// Audit records after `after_seq`, in sequence order ([`crate::ledger::audit`]).
    async fn audit_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<crate::ledger::audit::AuditRow>, StorageError>;
}

/// Reads of the account profiles and statements the account service keeps beside the ledger
/// (written only by batches: see [`BatchWrites::profiles`]).
#[async_trait]
pub trait AccountReads: Send + Sync {
    async fn profile(&self, account_id: u64) -> Result<Option<ProfileRow>, StorageError>;

    /// Profiles in account-id order.
    async fn profiles(&self, query: &ProfileQuery) -> Result<Vec<ProfileRow>, StorageError>;

    /// Statement lines in (seq, idx) order.
    async fn statement_page(
        &self,
        query: &StatementQuery,
    ) -> Result<Vec<StatementRow>, StorageError>;

    /// Current values of ledger counters (absent counters are not returned).
    async fn counter_values(&self, keys: &[String]) -> Result<Vec<(String, i64)>, StorageError>;

    /// The first journal transaction committed at or after `from_ms` (by the time index), so
    /// a read of one date starts there instead of at an account's first line; `None` when
    /// there is none (or the store keeps no such index: readers then start at the beginning).
    async fn first_seq_from(&self, from_ms: i64) -> Result<Option<u64>, StorageError> {
        let _ = from_ms;
        Ok(None)
    }
}

/// Reads of the documents and the outbox that ledger commands write (see
/// [`crate::ledger::DocumentWrite`] and [`crate::ledger::OutboxEvent`]): what services built on
/// the ledger keep beside the money, committed in the same database transaction as it.
#[async_trait]
pub trait DocumentReads: Send + Sync {
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

/// The ledger's storage port. One batch is one database transaction, and the only way anything
/// is written: a service's state (profiles, documents, events, counters) commits in the same
/// batch as its posting, or not at all.
#[async_trait]
pub trait LedgerStore: LedgerReads + AccountReads + DocumentReads + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Opens a transaction, locks the chain head, loads `needs` (accounts locked in id order),
    /// calls `apply`, writes what it returns and commits. On any error nothing is written.
    async fn execute_batch(
        &self,
        needs: &BatchNeeds,
        apply: &mut ApplyFn<'_>,
    ) -> Result<(), StorageError>;

    /// Pooled connections open now and, of them, idle (metrics; the batches' own connection
    /// is not pooled).
    fn pool_connections(&self) -> PoolConnections;

    /// The database's settings, as it reports them, under which a commit already acknowledged
    /// can be lost (empty when none).
    async fn durability_risks(&self) -> Result<Vec<DurabilityRisk>, StorageError>;

    /// Closes the pool.
    async fn close(&self);
}

/// A database setting under which an acknowledged commit can be lost by a crash, a power loss
/// or a failover after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityRisk {
    /// `sqlite.synchronous`, `postgresql.fsync` …
    pub setting: &'static str,
    /// The value the database reported.
    pub value: String,
    /// What it can lose.
    pub why: &'static str,
}

/// A connection pool's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConnections {
    pub open: u32,
    pub idle: usize,
}
