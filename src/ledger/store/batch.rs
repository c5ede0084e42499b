//! The batch's types: what a batch loads under its locks, and everything it writes in one
//! database transaction.

use std::collections::BTreeSet;

use super::{ProfileChange, ProfileRow};
use crate::ledger::model::{
    Account, AccountId, Balance, Entry, Hold, HoldId, HoldState, IdempotencyKey, Pending,
    PendingId, PendingState, Posted, StoredDocument, TransactionId,
};

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
    /// The audit log's last record: its sequence and hash (zeros before the first).
    pub audit_seq: u64,
    pub audit_hash: [u8; 32],
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
    /// The journal transaction the command that appended it posted, if any.
    pub transaction: Option<TransactionId>,
}

/// An idempotency record as stored.
#[derive(Debug, Clone)]
pub struct StoredIdempotency {
    pub key: IdempotencyKey,
    /// Hex SHA-256 of the request's canonical encoding.
    pub request_hash: String,
    /// JSON of `Result<Outcome, LedgerError>`.
    pub outcome: String,
    /// JSON of the [`Observed`](crate::ledger::apply::Observed) state right after the command,
    /// when the request asked for one.
    pub observed: Option<String>,
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
    /// tail carries the change; see [`super::ROW_TAIL_ENTRIES_MAX`]).
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
    /// Profiles of accounts the batch created.
    pub profiles: Vec<ProfileRow>,
    /// Changes of existing profiles, in order.
    pub profile_changes: Vec<ProfileChange>,
    /// Audit records, one per stored answer, in order ([`crate::ledger::audit`]).
    pub audit: Vec<crate::ledger::audit::AuditRow>,
}

impl BatchWrites {
    /// Whether committing these writes changes the database at all: a batch that wrote nothing
    /// and left the head as it locked it (`locked`) commits nothing, and `batches_committed`
    /// does not move.
    pub fn changes_anything(&self, locked: &ChainHead) -> bool {
        !(self.is_empty() && self.head.is_none_or(|h| h == *locked))
    }

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
            && self.profiles.is_empty()
            && self.profile_changes.is_empty()
            && self.audit.is_empty()
    }
}

/// The pure step of a batch, run inside the database transaction between load and write.
pub type ApplyFn<'a> = dyn FnMut(LoadedBatch) -> BatchWrites + Send + 'a;
