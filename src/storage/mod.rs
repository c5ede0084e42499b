//! Storage of the ledger: SQLite (embedded default, WAL) and PostgreSQL behind one [`Storage`]
//! trait of batch-level methods, chosen by the database URL. Both run the same embedded
//! migrations at start (`schema_migrations`).
//!
//! A [`StorageError`] never shows SQL or driver text in its `Display`: the detail is kept for
//! the log (`Debug`), callers see a generic internal error.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    sync::Arc,
};

use async_trait::async_trait;

use crate::{
    config::DatabaseConfig,
    ledger::model::{
        Account, AccountId, Balance, Entry, Hold, HoldId, HoldState, IdempotencyKey, Pending,
        PendingId, PendingState, Posted, StatementLine, StoredDocument, TransactionId,
    },
};

pub mod documents;
mod migrate;
pub mod postgres;
pub mod profiles;
pub mod sqlite;

/// Most bind parameters in one statement (SQLite's default ceiling is 32,766, PostgreSQL's 65,535).
pub const BIND_PARAMS_MAX: usize = 16_000;
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
}

impl StorageError {
    pub fn new(detail: impl Into<String>) -> StorageError {
        StorageError {
            detail: detail.into(),
        }
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
        write!(f, "StorageError({})", self.detail)
    }
}

impl std::error::Error for StorageError {}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::new(format!("database: {e}"))
    }
}

/// Which database is behind a [`Storage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The chain head (链头): last sequence number and hash, and the id allocators. One row; every
/// batch locks it first, which serialises batches across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub last_seq: u64,
    pub last_hash: [u8; 32],
    pub next_account_id: u64,
    pub next_pending_id: u64,
    pub next_hold_id: u64,
    /// Batches committed so far (every writing batch adds one). Between two of its own batches
    /// a process knows nobody else wrote while this has not moved.
    pub batches_committed: u64,
}

/// The accounts a process saw at the end of its last committed batch, keyed by the head's
/// `batches_committed` after that batch. A batch that finds the head unmoved takes its accounts
/// from here and loads only the rest; any other head empties it. Bounded by `entries_max`: when
/// full it is emptied and refills from the batches that follow.
#[derive(Debug, Default)]
pub struct AccountCache {
    valid_at_batches_committed: Option<u64>,
    accounts: HashMap<AccountId, LoadedAccount>,
    entries_max: usize,
}

impl AccountCache {
    pub fn new(entries_max: usize) -> AccountCache {
        AccountCache {
            valid_at_batches_committed: None,
            accounts: HashMap::new(),
            entries_max,
        }
    }

    /// Called under the head lock: keeps the cache only if nobody wrote since it was filled.
    /// Either way it is valid as of this head from here on.
    pub fn validate(&mut self, head: &ChainHead) {
        if self.valid_at_batches_committed != Some(head.batches_committed) {
            self.clear();
            self.valid_at_batches_committed = Some(head.batches_committed);
        }
    }

    pub fn get(&self, id: AccountId) -> Option<&LoadedAccount> {
        self.accounts.get(&id)
    }

    /// Adds accounts read under the head [`AccountCache::validate`] was given (valid whatever
    /// the batch does next).
    pub fn insert_loaded(&mut self, loaded: &[LoadedAccount]) {
        self.insert_all(loaded);
    }

    /// After a commit that moved the head from `before` by one batch: the batch's accounts
    /// as it left them.
    pub fn committed(&mut self, before: &ChainHead, changed: &[LoadedAccount]) {
        if self.valid_at_batches_committed != Some(before.batches_committed) {
            self.clear();
            return;
        }
        self.valid_at_batches_committed = Some(before.batches_committed + 1);
        self.insert_all(changed);
    }

    pub fn clear(&mut self) {
        self.valid_at_batches_committed = None;
        self.accounts.clear();
    }

    fn insert_all(&mut self, accounts: &[LoadedAccount]) {
        if self.accounts.len().saturating_add(accounts.len()) > self.entries_max {
            self.accounts.clear();
        }
        if accounts.len() > self.entries_max {
            return;
        }
        for a in accounts {
            self.accounts.insert(a.account.id, a.clone());
        }
        debug_assert!(self.accounts.len() <= self.entries_max);
    }
}

/// Takes the process's cache out for one batch (an empty one if another batch has it).
fn take_cache(slot: &std::sync::Mutex<AccountCache>) -> AccountCache {
    match slot.lock() {
        Ok(mut guard) => {
            let entries_max = guard.entries_max;
            std::mem::replace(&mut *guard, AccountCache::new(entries_max))
        }
        Err(_) => AccountCache::default(),
    }
}

/// Puts a batch's cache back.
fn put_cache(slot: &std::sync::Mutex<AccountCache>, cache: AccountCache) {
    if let Ok(mut guard) = slot.lock() {
        *guard = cache;
    }
}

/// What a batch needs loaded (after the head lock).
#[derive(Debug, Clone, Default)]
pub struct BatchNeeds {
    pub accounts: BTreeSet<AccountId>,
    pub idempotency: BTreeSet<IdempotencyKey>,
    pub pendings: BTreeSet<PendingId>,
    pub holds: BTreeSet<HoldId>,
    /// Transactions to be reversed.
    pub transactions: BTreeSet<TransactionId>,
    pub counters: BTreeSet<String>,
    /// Documents (kind, id) whose version a command checks.
    pub documents: BTreeSet<(String, String)>,
}

/// An outbox event to append; its sequence is assigned by the database in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEventRow {
    pub stream: String,
    pub key: String,
    pub body: String,
    pub created_at_ms: i64,
}

/// An idempotency record as stored.
#[derive(Debug, Clone)]
pub struct StoredIdempotency {
    pub key: IdempotencyKey,
    /// Hex SHA-256 of the request's canonical encoding.
    pub request_hash: String,
    /// JSON of `Result<Outcome, LedgerError>`.
    pub outcome: String,
    pub created_at_ms: i64,
}

/// A transaction a batch may reverse: its entries, and its reversal if it already has one.
#[derive(Debug, Clone)]
pub struct ReversalTarget {
    pub id: TransactionId,
    pub entries: Vec<Entry>,
    pub reversed_by: Option<TransactionId>,
}

/// An account as a batch loads it: its balances (the row plus the journal tail the row does not
/// include yet) and how long that tail is.
#[derive(Debug, Clone)]
pub struct LoadedAccount {
    pub account: Account,
    pub balance: Balance,
    /// Journal entries of the account after the row's `posted_through_seq`.
    pub tail_entries: u32,
}

/// Everything a batch loaded, under its locks. Accounts come sorted by id.
#[derive(Debug, Clone)]
pub struct LoadedBatch {
    pub head: ChainHead,
    pub accounts: Vec<LoadedAccount>,
    pub idempotency: Vec<StoredIdempotency>,
    pub pendings: Vec<Pending>,
    pub holds: Vec<Hold>,
    pub transactions: Vec<ReversalTarget>,
    pub counters: Vec<(String, i64)>,
    /// (kind, id, version) of the documents that exist.
    pub documents: Vec<(String, String, u64)>,
}

/// One stored journal entry with the account's book balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub seq: u64,
    pub index: u32,
    pub entry: Entry,
    pub balance_after_minor: i64,
}

/// One stored journal transaction (entries separate) with the hash it chains from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    pub posted: Posted,
    pub prev_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingResolution {
    pub pending: PendingId,
    pub state: PendingState,
    pub posted_minor: i64,
    pub transaction: Option<TransactionId>,
    pub resolved_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldResolution {
    pub hold: HoldId,
    pub state: HoldState,
    pub captured_minor: i64,
    pub transaction: Option<TransactionId>,
    pub resolved_at_ms: i64,
}

/// An open item with a deadline, for the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExpiryItem {
    Pending(PendingId),
    Hold(HoldId),
}

impl ExpiryItem {
    pub fn db_parts(self) -> (&'static str, i64) {
        match self {
            ExpiryItem::Pending(id) => ("PENDING", id.0 as i64),
            ExpiryItem::Hold(id) => ("HOLD", id.0 as i64),
        }
    }
}

/// Everything a batch writes, in one database transaction.
#[derive(Debug, Clone, Default)]
pub struct BatchWrites {
    /// The new head; `None` when the batch changed nothing (then nothing at all is written).
    pub head: Option<ChainHead>,
    /// Account rows to write, with their full balances as of the new head: one upsert row each.
    /// An account whose only change is posted entries is not among them (its row's journal
    /// tail carries the change; see [`ROW_TAIL_ENTRIES_MAX`]).
    pub accounts: Vec<(Account, Balance)>,
    pub transactions: Vec<TransactionRow>,
    pub entries: Vec<EntryRow>,
    pub new_pendings: Vec<Pending>,
    pub pending_resolutions: Vec<PendingResolution>,
    pub new_holds: Vec<Hold>,
    pub hold_resolutions: Vec<HoldResolution>,
    pub expiries_added: Vec<(ExpiryItem, i64)>,
    pub expiries_removed: Vec<ExpiryItem>,
    pub counters: Vec<(String, i64)>,
    pub idempotency: Vec<StoredIdempotency>,
    /// Every account the batch changed, as the batch leaves it (balances and journal tail),
    /// for the process's [`AccountCache`]. Not written.
    pub account_states: Vec<LoadedAccount>,
    /// Documents at their new versions: one upsert row each.
    pub documents: Vec<StoredDocument>,
    /// Outbox events, in order.
    pub events: Vec<StoredEventRow>,
}

impl BatchWrites {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.transactions.is_empty()
            && self.new_pendings.is_empty()
            && self.pending_resolutions.is_empty()
            && self.new_holds.is_empty()
            && self.hold_resolutions.is_empty()
            && self.counters.is_empty()
            && self.idempotency.is_empty()
            && self.documents.is_empty()
            && self.events.is_empty()
    }
}

/// The pure step of a batch, run inside the database transaction between load and write.
pub type ApplyFn<'a> = dyn FnMut(LoadedBatch) -> BatchWrites + Send + 'a;

/// The ledger's reads outside a batch; the same SQL on both back ends (`impl_ledger_reads!`).
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
}

/// The ledger's storage. One batch is one database transaction.
#[async_trait]
pub trait Storage:
    LedgerReads + profiles::AccountStore + documents::DocumentStore + Send + Sync + 'static
{
    fn backend(&self) -> Backend;

    /// Opens a transaction, locks the chain head, loads `needs` (accounts locked in id order),
    /// calls `apply`, writes what it returns and commits. On any error nothing is written.
    async fn execute_batch(
        &self,
        needs: &BatchNeeds,
        apply: &mut ApplyFn<'_>,
    ) -> Result<(), StorageError>;

    /// Closes the pool.
    async fn close(&self);
}

/// Connects by URL (`sqlite://path/file.db`, creating file and parent directory, or
/// `postgres://…`) and applies the migrations.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn Storage>, StorageError> {
    let url = config.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStorage::connect(config).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStorage::connect(config).await?))
    } else {
        Err(StorageError::new(
            "database url must start with sqlite: or postgres:",
        ))
    }
}

/// Hex of a 32-byte hash.
pub fn hash_to_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

/// A 32-byte hash from its hex form.
pub fn hash_from_hex(text: &str) -> Result<[u8; 32], StorageError> {
    let bytes = hex::decode(text).map_err(|_| StorageError::new("stored hash is not hex"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StorageError::new("stored hash is not 32 bytes"))
}
