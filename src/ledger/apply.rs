//! Pure, in-memory application of a batch of commands to the state a batch loaded: no I/O, so
//! every rule is unit-testable without a database.
//!
//! Each command runs against a scratch overlay of the batch state and sees every earlier
//! command's effects; if it fails, its overlay is dropped (nothing of it is written) and the
//! next command goes on. Its outcome, success or domain failure, is recorded under its
//! idempotency key in the same database transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    error::LedgerError,
    hash::{self, hash_to_hex},
    model::{
        ACCOUNT_KIND_LEN_MAX, Account, AccountId, AccountStatus, Balance, BalanceCap,
        BalanceConstraint, COUNTER_CHECKS_MAX, COUNTER_KEY_LEN_MAX, CounterCheck, CounterRelease,
        DOCUMENT_BODY_LEN_MAX, DOCUMENT_ID_LEN_MAX, DOCUMENT_KIND_LEN_MAX,
        DOCUMENTS_PER_COMMAND_MAX, DocumentWrite, ENTRIES_PER_TRANSACTION_MAX,
        EVENTS_PER_COMMAND_MAX, Entry, Hold, HoldId, HoldState, ID_MAX, IdempotencyKey,
        LINKED_TRANSACTIONS_MAX, METADATA_KEY_LEN_MAX, METADATA_PAIRS_MAX, METADATA_VALUE_LEN_MAX,
        Metadata, NewAccount, NewHold, NewPending, NewTransaction, OutboxEvent, Pending, PendingId,
        PendingState, Posted, REASON_LEN_MAX, Side, StoredDocument, TransactionId, TransactionKind,
    },
    store::{
        BatchNeeds, BatchWrites, ChainHead, EntryRow, ExpiryItem, HoldResolution, LoadedAccount,
        LoadedBatch, PendingResolution, ProfileChange, ProfileRow, ROW_TAIL_ENTRIES_MAX,
        ReversalTarget, StoredEventRow, StoredIdempotency, TransactionRow,
    },
};
use crate::money::{Currency, Money};

/// A mutating request, as the batcher receives it. Its JSON encoding is its canonical form for
/// the idempotency fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "command")]
pub enum Command {
    CreateAccount(NewAccount),
    Post(NewTransaction),
    PostLinked {
        transactions: Vec<NewTransaction>,
    },
    CreatePending(NewPending),
    PostPending {
        pending: PendingId,
        amount: Option<Money>,
    },
    VoidPending {
        pending: PendingId,
    },
    PlaceHold(NewHold),
    ReleaseHold {
        hold: HoldId,
    },
    CaptureHold {
        hold: HoldId,
        amount: Money,
        to: AccountId,
        metadata: Metadata,
    },
    Reverse {
        transaction: TransactionId,
        reason: String,
    },
    SetAccountStatus {
        account: AccountId,
        status: AccountStatus,
    },
    /// Adds (`freeze`) or lifts (`!freeze`) the blocked directions of an account's freeze,
    /// against its status as the batch sees it, so concurrent changes combine and a retry of
    /// the same change is the same command.
    ChangeFreeze {
        account: AccountId,
        no_debit: bool,
        no_credit: bool,
        freeze: bool,
        /// Why: kept on the account's profile while it stays frozen (empty once it is not).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// Internal (the sweeper): void a pending transfer whose deadline passed.
    ExpirePending {
        pending: PendingId,
    },
    /// Internal (the sweeper): release a hold whose deadline passed.
    ExpireHold {
        hold: HoldId,
    },
    /// Any other command with conditions checked in the same step: counters incremented within
    /// their caps, counters released, and balance caps on accounts the command credits; and
    /// versioned documents and outbox events written with it. If one condition fails (a
    /// document's version differs: `DocumentConflict`), the whole command fails and nothing of
    /// it is written. Not nestable.
    Guarded {
        inner: Box<Command>,
        counters: Vec<CounterCheck>,
        releases: Vec<CounterRelease>,
        caps: Vec<BalanceCap>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        documents: Vec<DocumentWrite>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<OutboxEvent>,
    },
    /// Moves no money: the inner command of a `Guarded` that only writes documents and events.
    NoOp,
}

/// What a command answered; stored (as JSON) under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "SCREAMING_SNAKE_CASE",
    tag = "outcome",
    content = "value"
)]
pub enum Outcome {
    Account(Account),
    Posted(Posted),
    Linked(Vec<Posted>),
    Pending(Pending),
    Hold(Hold),
    /// An internal expiry that found nothing (left) to do.
    Nothing,
}

/// SHA-256 (hex) of the command's canonical encoding.
pub fn fingerprint(command: &Command) -> String {
    let mut h = Sha256::new();
    h.update(b"paygate.ledger.command.v1\0");
    // A command is plain data with string-keyed maps: encoding cannot fail.
    h.update(serde_json::to_vec(command).unwrap_or_default());
    hex::encode(h.finalize())
}

/// One command of a batch with its idempotency key (none for internal commands).
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub key: Option<IdempotencyKey>,
    pub fingerprint: String,
    pub command: Command,
}

/// Limits the engine applies that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ApplyLimits {
    pub pending_timeout_max_ms: u64,
    pub hold_timeout_max_ms: u64,
}

/// What a batch must load for these commands.
pub fn needs_of<'a>(items: impl IntoIterator<Item = &'a BatchItem>) -> BatchNeeds {
    let mut n = BatchNeeds::default();
    for item in items {
        if let Some(k) = &item.key {
            n.idempotency.insert(k.clone());
        }
        command_needs(&mut n, &item.command);
    }
    n
}

fn command_needs(n: &mut BatchNeeds, command: &Command) {
    let counters = |n: &mut BatchNeeds, cs: &[CounterCheck]| {
        for c in cs {
            n.counters.insert(c.key.clone());
        }
    };
    {
        match command {
            Command::CreateAccount(_) => {}
            Command::Post(t) => {
                n.accounts.extend(t.entries.iter().map(|e| e.account));
                counters(n, &t.counters);
            }
            Command::PostLinked { transactions } => {
                for t in transactions {
                    n.accounts.extend(t.entries.iter().map(|e| e.account));
                    counters(n, &t.counters);
                }
            }
            Command::CreatePending(p) => {
                n.accounts.insert(p.debit_account);
                n.accounts.insert(p.credit_account);
                counters(n, &p.counters);
            }
            Command::PostPending { pending, .. }
            | Command::VoidPending { pending }
            | Command::ExpirePending { pending } => {
                n.pendings.insert(*pending);
            }
            Command::PlaceHold(h) => {
                n.accounts.insert(h.account);
            }
            Command::ReleaseHold { hold } | Command::ExpireHold { hold } => {
                n.holds.insert(*hold);
            }
            Command::CaptureHold { hold, to, .. } => {
                n.holds.insert(*hold);
                n.accounts.insert(*to);
            }
            Command::Reverse { transaction, .. } => {
                n.transactions.insert(*transaction);
            }
            Command::SetAccountStatus { account, .. } | Command::ChangeFreeze { account, .. } => {
                n.accounts.insert(*account);
            }
            Command::Guarded {
                inner,
                counters: checks,
                releases,
                caps,
                documents,
                events: _,
            } => {
                command_needs(n, inner);
                counters(n, checks);
                n.counters.extend(releases.iter().map(|r| r.key.clone()));
                n.accounts.extend(caps.iter().map(|c| c.account));
                n.documents
                    .extend(documents.iter().map(|d| (d.kind.clone(), d.id.clone())));
            }
            Command::NoOp => {}
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    account: Account,
    balance: Balance,
}

pub(crate) struct StoredOutcome {
    request_hash: String,
    /// `None`: the stored text could not be read back.
    outcome: Option<Result<Outcome, LedgerError>>,
}

impl StoredOutcome {
    pub(crate) fn decode(stored: &StoredIdempotency) -> StoredOutcome {
        StoredOutcome {
            request_hash: stored.request_hash.clone(),
            outcome: serde_json::from_str(&stored.outcome).ok(),
        }
    }

    /// The first answer for a request with `request_hash` under `key` (the inner result, a
    /// success or a stored refusal); the outer error refuses the request itself: another
    /// request under the key, or an answer that cannot be read back.
    pub(crate) fn answer(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> Result<Result<Outcome, LedgerError>, LedgerError> {
        if self.request_hash != request_hash {
            return Err(LedgerError::IdempotencyKeyReused {
                key: key.key.clone(),
            });
        }
        self.outcome.clone().ok_or_else(|| {
            tracing::error!(scope = %key.scope, "stored idempotent outcome is unreadable");
            LedgerError::Storage
        })
    }
}

/// The batch's view of the ledger, updated by each command that succeeds.
pub struct BatchState {
    now_ms: i64,
    limits: ApplyLimits,
    head: ChainHead,
    accounts: HashMap<AccountId, Slot>,
    dirty_accounts: BTreeSet<AccountId>,
    /// Each loaded account as stored, with its journal tail length: decides whether its row
    /// must be rewritten ([`BatchState::row_must_be_written`]).
    stored: HashMap<AccountId, (Slot, u32)>,
    idempotency: HashMap<IdempotencyKey, StoredOutcome>,
    pendings: HashMap<PendingId, Pending>,
    holds: HashMap<HoldId, Hold>,
    targets: HashMap<TransactionId, ReversalTarget>,
    counters: HashMap<String, i64>,
    dirty_counters: BTreeSet<String>,
    /// Current version of each document the batch loaded or wrote (absent: none stored).
    documents: HashMap<(String, String), u64>,
    writes: BatchWrites,
}

impl BatchState {
    pub fn new(loaded: LoadedBatch, now_ms: i64, limits: ApplyLimits) -> BatchState {
        let idempotency = loaded
            .idempotency
            .into_iter()
            .map(|s| {
                let outcome = StoredOutcome::decode(&s);
                (s.key, outcome)
            })
            .collect();
        let stored: HashMap<AccountId, (Slot, u32)> = loaded
            .accounts
            .into_iter()
            .map(|l| {
                let slot = Slot {
                    account: l.account,
                    balance: l.balance,
                };
                (slot.account.id, (slot, l.tail_entries))
            })
            .collect();
        BatchState {
            now_ms,
            limits,
            head: loaded.head,
            accounts: stored
                .iter()
                .map(|(id, (slot, _))| (*id, slot.clone()))
                .collect(),
            dirty_accounts: BTreeSet::new(),
            stored,
            idempotency,
            pendings: loaded.pendings.into_iter().map(|p| (p.id, p)).collect(),
            holds: loaded.holds.into_iter().map(|h| (h.id, h)).collect(),
            targets: loaded.transactions.into_iter().map(|t| (t.id, t)).collect(),
            counters: loaded.counters.into_iter().collect(),
            dirty_counters: BTreeSet::new(),
            documents: loaded
                .documents
                .into_iter()
                .map(|(kind, id, version)| ((kind, id), version))
                .collect(),
            writes: BatchWrites::default(),
        }
    }

    /// Applies one command (with its idempotency handling) and returns its answer.
    pub fn apply(&mut self, item: &BatchItem) -> Result<Outcome, LedgerError> {
        if let Some(key) = &item.key
            && let Some(stored) = self.idempotency.get(key)
        {
            return stored
                .answer(key, &item.fingerprint)
                .and_then(|first| first);
        }
        let (result, parts) = {
            let mut scratch = Scratch::new(self);
            let result = scratch.run(&item.command);
            (result, scratch.into_parts())
        };
        let outcome_text = match &item.key {
            Some(_) if result.as_ref().is_err_and(|e| !e.is_stored_outcome()) => None,
            Some(_) => match serde_json::to_string(&result) {
                Ok(text) => Some(text),
                Err(e) => {
                    tracing::error!(error = %e, "outcome could not be encoded");
                    return Err(LedgerError::Storage);
                }
            },
            None => None,
        };
        if result.is_ok() {
            self.merge(parts);
        }
        if let (Some(key), Some(text)) = (&item.key, outcome_text) {
            self.idempotency.insert(
                key.clone(),
                StoredOutcome {
                    request_hash: item.fingerprint.clone(),
                    outcome: Some(result.clone()),
                },
            );
            self.writes.idempotency.push(StoredIdempotency {
                key: key.clone(),
                request_hash: item.fingerprint.clone(),
                outcome: text,
                created_at_ms: self.now_ms,
            });
        }
        result
    }

    fn merge(&mut self, p: Parts) {
        debug_assert!(p.head.last_seq >= self.head.last_seq);
        self.head = p.head;
        for (id, slot) in p.accounts {
            self.dirty_accounts.insert(id);
            self.accounts.insert(id, slot);
        }
        for (id, pending) in p.pendings {
            self.pendings.insert(id, pending);
        }
        for (id, hold) in p.holds {
            self.holds.insert(id, hold);
        }
        for (target, by) in p.reversed {
            if let Some(t) = self.targets.get_mut(&target) {
                t.reversed_by = Some(by);
            }
        }
        for (key, used) in p.counters {
            self.dirty_counters.insert(key.clone());
            self.counters.insert(key, used);
        }
        for doc in &p.documents {
            self.documents
                .insert((doc.kind.clone(), doc.id.clone()), doc.version);
        }
        let w = &mut self.writes;
        w.documents.extend(p.documents);
        w.events.extend(p.events);
        w.profiles.extend(p.profiles);
        w.profile_changes.extend(p.profile_changes);
        w.transactions.extend(p.transactions);
        w.entries.extend(p.entries);
        w.new_pendings.extend(p.new_pendings);
        w.new_holds.extend(p.new_holds);
        w.pending_resolutions.extend(p.pending_resolutions);
        w.hold_resolutions.extend(p.hold_resolutions);
        w.expiries_added.extend(p.expiries_added);
        w.expiries_removed.extend(p.expiries_removed);
    }

    /// Whether a changed account's row must be rewritten: it is new, something besides its
    /// posted totals changed, or its journal tail would grow past [`ROW_TAIL_ENTRIES_MAX`].
    /// Otherwise the batch's journal entries carry the change and the row stays as it is.
    fn row_must_be_written(&self, slot: &Slot, new_entries: u32) -> bool {
        let Some((stored, tail_entries)) = self.stored.get(&slot.account.id) else {
            return true;
        };
        let (now, then) = (&slot.balance, &stored.balance);
        slot.account != stored.account
            || now.pending_debits_minor != then.pending_debits_minor
            || now.pending_credits_minor != then.pending_credits_minor
            || now.held_minor != then.held_minor
            || tail_entries.saturating_add(new_entries) > ROW_TAIL_ENTRIES_MAX
    }

    /// Everything to write; consumes the state.
    pub fn into_writes(mut self) -> BatchWrites {
        let mut w = std::mem::take(&mut self.writes);
        let mut new_entries: HashMap<AccountId, u32> = HashMap::new();
        for e in &w.entries {
            *new_entries.entry(e.entry.account).or_default() += 1;
        }
        // One pass: the rows to write, and every changed account as the batch leaves it (a
        // written row has no tail left; otherwise the tail grows by the batch's entries).
        for s in self
            .dirty_accounts
            .iter()
            .filter_map(|id| self.accounts.get(id))
        {
            let id = s.account.id;
            let added = new_entries.get(&id).copied().unwrap_or(0);
            let tail_entries = if self.row_must_be_written(s, added) {
                w.accounts.push((s.account.clone(), s.balance));
                0
            } else {
                let before = self.stored.get(&id).map_or(0, |(_, t)| *t);
                before.saturating_add(added)
            };
            w.account_states.push(LoadedAccount {
                account: s.account.clone(),
                balance: s.balance,
                tail_entries,
            });
        }
        w.counters = self
            .dirty_counters
            .iter()
            .filter_map(|k| self.counters.get(k).map(|v| (k.clone(), *v)))
            .collect();
        w.head = Some(self.head);
        w
    }
}

/// Applies a whole batch: answers in command order, and the writes.
pub fn apply_batch(
    loaded: LoadedBatch,
    items: &[&BatchItem],
    now_ms: i64,
    limits: ApplyLimits,
) -> (Vec<Result<Outcome, LedgerError>>, BatchWrites) {
    let mut state = BatchState::new(loaded, now_ms, limits);
    let results = items.iter().map(|item| state.apply(item)).collect();
    (results, state.into_writes())
}

/// What one successful command changes.
struct Parts {
    head: ChainHead,
    accounts: BTreeMap<AccountId, Slot>,
    pendings: BTreeMap<PendingId, Pending>,
    holds: BTreeMap<HoldId, Hold>,
    reversed: Vec<(TransactionId, TransactionId)>,
    counters: BTreeMap<String, i64>,
    transactions: Vec<TransactionRow>,
    entries: Vec<EntryRow>,
    new_pendings: Vec<Pending>,
    new_holds: Vec<Hold>,
    pending_resolutions: Vec<PendingResolution>,
    hold_resolutions: Vec<HoldResolution>,
    expiries_added: Vec<(ExpiryItem, i64)>,
    expiries_removed: Vec<ExpiryItem>,
    documents: Vec<StoredDocument>,
    events: Vec<StoredEventRow>,
    profiles: Vec<ProfileRow>,
    profile_changes: Vec<ProfileChange>,
}

/// One command's overlay over the batch state.
struct Scratch<'s> {
    base: &'s BatchState,
    p: Parts,
}

fn check_metadata(m: &Metadata) -> Result<(), LedgerError> {
    if m.len() > METADATA_PAIRS_MAX {
        return Err(LedgerError::invalid(format!(
            "at most {METADATA_PAIRS_MAX} metadata pairs"
        )));
    }
    for (k, v) in m {
        if k.is_empty() || k.len() > METADATA_KEY_LEN_MAX || v.len() > METADATA_VALUE_LEN_MAX {
            return Err(LedgerError::invalid(format!(
                "metadata keys are 1..={METADATA_KEY_LEN_MAX} bytes, values at most \
                 {METADATA_VALUE_LEN_MAX}"
            )));
        }
    }
    Ok(())
}

fn check_counters(cs: &[CounterCheck]) -> Result<(), LedgerError> {
    if cs.len() > COUNTER_CHECKS_MAX {
        return Err(LedgerError::invalid(format!(
            "at most {COUNTER_CHECKS_MAX} counter checks"
        )));
    }
    for c in cs {
        if c.key.is_empty() || c.key.len() > COUNTER_KEY_LEN_MAX {
            return Err(LedgerError::invalid(format!(
                "counter keys are 1..={COUNTER_KEY_LEN_MAX} bytes"
            )));
        }
        if c.amount_minor < 0 {
            return Err(LedgerError::AmountNotPositive);
        }
        if c.cap_minor < 0 {
            return Err(LedgerError::invalid("counter cap must not be negative"));
        }
    }
    Ok(())
}

fn check_documents(documents: &[DocumentWrite], events: &[OutboxEvent]) -> Result<(), LedgerError> {
    if documents.len() > DOCUMENTS_PER_COMMAND_MAX || events.len() > EVENTS_PER_COMMAND_MAX {
        return Err(LedgerError::invalid(format!(
            "at most {DOCUMENTS_PER_COMMAND_MAX} documents and {EVENTS_PER_COMMAND_MAX} events"
        )));
    }
    let mut seen = BTreeSet::new();
    for d in documents {
        if d.kind.is_empty()
            || d.kind.len() > DOCUMENT_KIND_LEN_MAX
            || d.id.is_empty()
            || d.id.len() > DOCUMENT_ID_LEN_MAX
            || d.body.len() > DOCUMENT_BODY_LEN_MAX
        {
            return Err(LedgerError::invalid(format!(
                "document kinds are 1..={DOCUMENT_KIND_LEN_MAX} bytes, ids 1..={DOCUMENT_ID_LEN_MAX}, \
                 bodies at most {DOCUMENT_BODY_LEN_MAX}"
            )));
        }
        if !seen.insert((d.kind.as_str(), d.id.as_str())) {
            return Err(LedgerError::invalid(
                "a command writes a document at most once",
            ));
        }
        if d.expected_version >= ID_MAX {
            return Err(LedgerError::Overflow);
        }
    }
    for e in events {
        if e.stream.is_empty()
            || e.stream.len() > DOCUMENT_ID_LEN_MAX
            || e.key.is_empty()
            || e.key.len() > DOCUMENT_ID_LEN_MAX
            || e.body.len() > DOCUMENT_BODY_LEN_MAX
        {
            return Err(LedgerError::invalid(format!(
                "event streams and keys are 1..={DOCUMENT_ID_LEN_MAX} bytes, bodies at most \
                 {DOCUMENT_BODY_LEN_MAX}"
            )));
        }
    }
    Ok(())
}

fn add(a: i64, b: i64) -> Result<i64, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}

fn sub(a: i64, b: i64) -> Result<i64, LedgerError> {
    let r = a.checked_sub(b).ok_or(LedgerError::Overflow)?;
    // Pending and held totals are sums of open items: releasing more than reserved is a bug.
    debug_assert!(r >= 0, "released more than was reserved");
    if r < 0 {
        tracing::error!("released more than was reserved");
        return Err(LedgerError::Storage);
    }
    Ok(r)
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

fn next_id(counter: &mut u64) -> Result<u64, LedgerError> {
    let id = *counter;
    if id == 0 || id > ID_MAX {
        return Err(LedgerError::Overflow);
    }
    *counter = id + 1;
    Ok(id)
}

impl<'s> Scratch<'s> {
    fn new(base: &'s BatchState) -> Scratch<'s> {
        Scratch {
            base,
            p: Parts {
                head: base.head,
                accounts: BTreeMap::new(),
                pendings: BTreeMap::new(),
                holds: BTreeMap::new(),
                reversed: Vec::new(),
                counters: BTreeMap::new(),
                transactions: Vec::new(),
                entries: Vec::new(),
                new_pendings: Vec::new(),
                new_holds: Vec::new(),
                pending_resolutions: Vec::new(),
                hold_resolutions: Vec::new(),
                expiries_added: Vec::new(),
                expiries_removed: Vec::new(),
                documents: Vec::new(),
                events: Vec::new(),
                profiles: Vec::new(),
                profile_changes: Vec::new(),
            },
        }
    }

    fn into_parts(self) -> Parts {
        self.p
    }

    fn now(&self) -> i64 {
        self.base.now_ms
    }

    fn slot(&mut self, id: AccountId) -> Result<&mut Slot, LedgerError> {
        if !self.p.accounts.contains_key(&id) {
            let slot = self
                .base
                .accounts
                .get(&id)
                .cloned()
                .ok_or(LedgerError::UnknownAccount { account: id })?;
            self.p.accounts.insert(id, slot);
        }
        self.p
            .accounts
            .get_mut(&id)
            .ok_or(LedgerError::UnknownAccount { account: id })
    }

    fn pending(&self, id: PendingId) -> Result<Pending, LedgerError> {
        self.p
            .pendings
            .get(&id)
            .or_else(|| self.base.pendings.get(&id))
            .cloned()
            .ok_or(LedgerError::PendingNotFound { pending: id })
    }

    fn hold(&self, id: HoldId) -> Result<Hold, LedgerError> {
        self.p
            .holds
            .get(&id)
            .or_else(|| self.base.holds.get(&id))
            .cloned()
            .ok_or(LedgerError::HoldNotFound { hold: id })
    }

    /// Checks that `side` may touch the account now, and that the amount is in its currency.
    fn check_usable(
        &mut self,
        id: AccountId,
        side: Side,
        amount: Money,
    ) -> Result<(), LedgerError> {
        let slot = self.slot(id)?;
        if slot.account.currency != amount.currency {
            return Err(LedgerError::CurrencyMismatch {
                account: id,
                expected: slot.account.currency,
                actual: amount.currency,
            });
        }
        match slot.account.status.normalized() {
            AccountStatus::Active => Ok(()),
            AccountStatus::Closed => Err(LedgerError::AccountClosed { account: id }),
            AccountStatus::Frozen {
                no_debit,
                no_credit,
            } => {
                let blocked = match side {
                    Side::Debit => no_debit,
                    Side::Credit => no_credit,
                };
                if blocked {
                    Err(LedgerError::AccountFrozen { account: id })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Fails with `InsufficientFunds` when the account's constraint is broken now; `before` is
    /// its headroom before this command, `requested` what this command asked of it.
    fn check_floor(
        &mut self,
        id: AccountId,
        before: Option<i128>,
        requested_minor: i64,
    ) -> Result<(), LedgerError> {
        let slot = self.slot(id)?;
        if let Some(headroom) = slot.balance.headroom_minor(slot.account.constraint)
            && headroom < 0
        {
            let currency = slot.account.currency;
            return Err(LedgerError::InsufficientFunds {
                account: id,
                available: Money::new(currency, clamp_i64(before.unwrap_or(0).max(0))),
                requested: Money::new(currency, requested_minor),
            });
        }
        Ok(())
    }

    fn headroom(&mut self, id: AccountId) -> Result<Option<i128>, LedgerError> {
        let slot = self.slot(id)?;
        Ok(slot.balance.headroom_minor(slot.account.constraint))
    }

    /// Lowers counters (never below zero), e.g. an open-account count when one closes.
    fn release_counters(&mut self, releases: &[CounterRelease]) -> Result<(), LedgerError> {
        for r in releases {
            if r.key.is_empty() || r.key.len() > COUNTER_KEY_LEN_MAX {
                return Err(LedgerError::invalid(format!(
                    "counter keys are 1..={COUNTER_KEY_LEN_MAX} bytes"
                )));
            }
            if r.amount_minor <= 0 {
                return Err(LedgerError::AmountNotPositive);
            }
            let used = match self.p.counters.get(&r.key) {
                Some(v) => *v,
                None => self.base.counters.get(&r.key).copied().unwrap_or(0),
            };
            self.p
                .counters
                .insert(r.key.clone(), used.saturating_sub(r.amount_minor).max(0));
        }
        Ok(())
    }

    /// Fails when an account's balance on its normal side, counting reserved inflows, is above
    /// its cap (e.g. a Class III account's balance ceiling).
    fn check_caps(&mut self, caps: &[BalanceCap]) -> Result<(), LedgerError> {
        for cap in caps {
            let slot = self.slot(cap.account)?;
            let normal = slot.account.normal_side;
            let pending_in = match normal {
                Side::Debit => i128::from(slot.balance.pending_debits_minor),
                Side::Credit => i128::from(slot.balance.pending_credits_minor),
            };
            let balance = slot.balance.posted_minor(normal) + pending_in;
            if balance > i128::from(cap.max_minor) {
                let currency = slot.account.currency;
                let before = self.base.accounts.get(&cap.account).map_or(0, |s| {
                    s.balance.posted_minor(normal)
                        + match normal {
                            Side::Debit => i128::from(s.balance.pending_debits_minor),
                            Side::Credit => i128::from(s.balance.pending_credits_minor),
                        }
                });
                return Err(LedgerError::BalanceCapExceeded {
                    account: cap.account,
                    cap: Money::new(currency, cap.max_minor),
                    balance: Money::new(currency, clamp_i64(before)),
                    requested: Money::new(currency, clamp_i64(balance - before)),
                });
            }
        }
        Ok(())
    }

    fn apply_counters(&mut self, checks: &[CounterCheck]) -> Result<(), LedgerError> {
        check_counters(checks)?;
        for c in checks {
            let used = match self.p.counters.get(&c.key) {
                Some(v) => *v,
                None => self.base.counters.get(&c.key).copied().unwrap_or(0),
            };
            let new = add(used, c.amount_minor)?;
            if new > c.cap_minor {
                return Err(LedgerError::LimitExceeded {
                    key: c.key.clone(),
                    cap_minor: c.cap_minor,
                    used_minor: used,
                    requested_minor: c.amount_minor,
                });
            }
            self.p.counters.insert(c.key.clone(), new);
        }
        Ok(())
    }

    fn run(&mut self, command: &Command) -> Result<Outcome, LedgerError> {
        match command {
            Command::CreateAccount(spec) => self.create_account(spec).map(Outcome::Account),
            Command::Post(tx) => self
                .post_new(tx, TransactionKind::Posting)
                .map(Outcome::Posted),
            Command::PostLinked { transactions } => {
                if transactions.is_empty() || transactions.len() > LINKED_TRANSACTIONS_MAX {
                    return Err(LedgerError::invalid(format!(
                        "linked postings take 1..={LINKED_TRANSACTIONS_MAX} transactions"
                    )));
                }
                let mut posted = Vec::with_capacity(transactions.len());
                for tx in transactions {
                    posted.push(self.post_new(tx, TransactionKind::Posting)?);
                }
                Ok(Outcome::Linked(posted))
            }
            Command::CreatePending(p) => self.create_pending(p).map(Outcome::Pending),
            Command::PostPending { pending, amount } => {
                self.post_pending(*pending, *amount).map(Outcome::Posted)
            }
            Command::VoidPending { pending } => self
                .release_pending(*pending, PendingState::Voided)
                .map(Outcome::Pending),
            Command::ExpirePending { pending } => self.expire_pending(*pending),
            Command::PlaceHold(h) => self.place_hold(h).map(Outcome::Hold),
            Command::ReleaseHold { hold } => self
                .release_hold(*hold, HoldState::Released)
                .map(Outcome::Hold),
            Command::ExpireHold { hold } => self.expire_hold(*hold),
            Command::CaptureHold {
                hold,
                amount,
                to,
                metadata,
            } => self
                .capture_hold(*hold, *amount, *to, metadata)
                .map(Outcome::Posted),
            Command::Reverse {
                transaction,
                reason,
            } => self.reverse(*transaction, reason).map(Outcome::Posted),
            Command::SetAccountStatus { account, status } => {
                self.set_status(*account, *status).map(Outcome::Account)
            }
            Command::ChangeFreeze {
                account,
                no_debit,
                no_credit,
                freeze,
                reason,
            } => self
                .change_freeze(*account, *no_debit, *no_credit, *freeze, reason)
                .map(Outcome::Account),
            Command::Guarded {
                inner,
                counters,
                releases,
                caps,
                documents,
                events,
            } => {
                if matches!(**inner, Command::Guarded { .. }) {
                    return Err(LedgerError::invalid("guarded commands do not nest"));
                }
                if releases.len() > COUNTER_CHECKS_MAX || caps.len() > COUNTER_CHECKS_MAX {
                    return Err(LedgerError::invalid(format!(
                        "at most {COUNTER_CHECKS_MAX} releases and caps"
                    )));
                }
                check_documents(documents, events)?;
                let outcome = self.run(inner)?;
                self.apply_counters(counters)?;
                self.release_counters(releases)?;
                self.check_caps(caps)?;
                let posted = match &outcome {
                    Outcome::Posted(p) => Some(p.id),
                    _ => None,
                };
                self.write_documents(documents, posted)?;
                for e in events {
                    self.p.events.push(StoredEventRow {
                        stream: e.stream.clone(),
                        key: e.key.clone(),
                        body: e.body.clone(),
                        created_at_ms: self.now(),
                        transaction: posted,
                    });
                }
                Ok(outcome)
            }
            Command::NoOp => Ok(Outcome::Nothing),
        }
    }

    /// Writes each document at its expected version + 1, or fails with `DocumentConflict` when
    /// the version as this batch sees it differs (another command got there first).
    fn write_documents(
        &mut self,
        documents: &[DocumentWrite],
        posted: Option<TransactionId>,
    ) -> Result<(), LedgerError> {
        for d in documents {
            let key = (d.kind.clone(), d.id.clone());
            let current = self.base.documents.get(&key).copied().unwrap_or(0);
            if current != d.expected_version {
                return Err(LedgerError::DocumentConflict {
                    kind: d.kind.clone(),
                    id: d.id.clone(),
                });
            }
            self.p.documents.push(StoredDocument {
                kind: d.kind.clone(),
                id: d.id.clone(),
                version: d.expected_version + 1,
                body: d.body.clone(),
                updated_at_ms: self.now(),
                transaction: posted,
            });
        }
        Ok(())
    }

    fn create_account(&mut self, spec: &NewAccount) -> Result<Account, LedgerError> {
        if spec.kind.is_empty() || spec.kind.len() > ACCOUNT_KIND_LEN_MAX {
            return Err(LedgerError::invalid(format!(
                "account kind is 1..={ACCOUNT_KIND_LEN_MAX} bytes"
            )));
        }
        check_metadata(&spec.metadata)?;
        match spec.constraint {
            BalanceConstraint::DebitsMustNotExceedCredits {
                overdraft_minor: limit,
            }
            | BalanceConstraint::CreditsMustNotExceedDebits { limit_minor: limit }
                if limit < 0 =>
            {
                return Err(LedgerError::invalid(
                    "constraint limit must not be negative",
                ));
            }
            _ => {}
        }
        let id = AccountId(next_id(&mut self.p.head.next_account_id)?);
        let account = Account {
            id,
            currency: spec.currency,
            normal_side: spec.normal_side,
            kind: spec.kind.clone(),
            status: AccountStatus::Active,
            constraint: spec.constraint,
            metadata: spec.metadata.clone(),
            created_at_ms: self.now(),
        };
        self.p.accounts.insert(
            id,
            Slot {
                account: account.clone(),
                balance: Balance::default(),
            },
        );
        if let Some(profile) = &spec.profile {
            self.p
                .profiles
                .push(ProfileRow::opened(id.0, account.created_at_ms, profile));
        }
        Ok(account)
    }

    fn post_new(
        &mut self,
        tx: &NewTransaction,
        kind: TransactionKind,
    ) -> Result<Posted, LedgerError> {
        check_metadata(&tx.metadata)?;
        let entries: Vec<Entry> = tx
            .entries
            .iter()
            .map(|e| Entry {
                account: e.account,
                side: e.side,
                amount: e.amount,
            })
            .collect();
        let posted = self.post_entries(kind, entries, None, tx.metadata.clone())?;
        self.apply_counters(&tx.counters)?;
        Ok(posted)
    }

    /// Validates and applies a balanced set of entries as one journal transaction.
    fn post_entries(
        &mut self,
        kind: TransactionKind,
        entries: Vec<Entry>,
        reverses: Option<TransactionId>,
        metadata: Metadata,
    ) -> Result<Posted, LedgerError> {
        if entries.len() < 2 {
            return Err(LedgerError::TooFewEntries {
                count: entries.len(),
            });
        }
        if entries.len() > ENTRIES_PER_TRANSACTION_MAX {
            return Err(LedgerError::invalid(format!(
                "at most {ENTRIES_PER_TRANSACTION_MAX} entries per transaction"
            )));
        }
        let mut net: BTreeMap<Currency, i128> = BTreeMap::new();
        // Per account: headroom before, and what this transaction asks of its constrained side.
        let mut touched: BTreeMap<AccountId, (Option<i128>, i64)> = BTreeMap::new();
        for e in &entries {
            if e.amount.minor <= 0 {
                return Err(LedgerError::AmountNotPositive);
            }
            self.check_usable(e.account, e.side, e.amount)?;
            let signed = match e.side {
                Side::Debit => i128::from(e.amount.minor),
                Side::Credit => -i128::from(e.amount.minor),
            };
            *net.entry(e.amount.currency).or_default() += signed;
            if let std::collections::btree_map::Entry::Vacant(slot) = touched.entry(e.account) {
                let before = self.headroom(e.account)?;
                slot.insert((before, 0));
            }
        }
        if let Some((currency, _)) = net.iter().find(|(_, n)| **n != 0) {
            return Err(LedgerError::Unbalanced {
                currency: *currency,
            });
        }
        let seq = self
            .p
            .head
            .last_seq
            .checked_add(1)
            .filter(|s| *s <= ID_MAX)
            .ok_or(LedgerError::Overflow)?;
        let mut rows = Vec::with_capacity(entries.len());
        for (index, e) in entries.iter().enumerate() {
            let slot = self.slot(e.account)?;
            let b = &mut slot.balance;
            match e.side {
                Side::Debit => b.posted_debits_minor = add(b.posted_debits_minor, e.amount.minor)?,
                Side::Credit => {
                    b.posted_credits_minor = add(b.posted_credits_minor, e.amount.minor)?
                }
            }
            let after = clamp_i64(b.posted_minor(slot.account.normal_side));
            let asks = match (slot.account.constraint, e.side) {
                (BalanceConstraint::DebitsMustNotExceedCredits { .. }, Side::Debit)
                | (BalanceConstraint::CreditsMustNotExceedDebits { .. }, Side::Credit) => {
                    e.amount.minor
                }
                _ => 0,
            };
            if let Some(t) = touched.get_mut(&e.account) {
                t.1 = t.1.saturating_add(asks);
            }
            rows.push(EntryRow {
                seq,
                index: index as u32,
                entry: e.clone(),
                balance_after_minor: after,
            });
        }
        for (id, (before, requested)) in touched {
            self.check_floor(id, before, requested)?;
        }
        let id = TransactionId(seq);
        let created_at_ms = self.now();
        let prev = self.p.head.last_hash;
        let hash = hash::transaction_hash(
            &prev,
            id,
            kind,
            reverses,
            created_at_ms,
            &metadata,
            &entries,
        );
        let posted = Posted {
            id,
            kind,
            entries,
            reverses,
            metadata,
            created_at_ms,
            hash: hash_to_hex(&hash),
        };
        self.p.head.last_seq = seq;
        self.p.head.last_hash = hash;
        self.p.entries.extend(rows);
        self.p.transactions.push(TransactionRow {
            posted: posted.clone(),
            prev_hash: hash_to_hex(&prev),
        });
        Ok(posted)
    }

    fn create_pending(&mut self, spec: &NewPending) -> Result<Pending, LedgerError> {
        check_metadata(&spec.metadata)?;
        if spec.amount.minor <= 0 {
            return Err(LedgerError::AmountNotPositive);
        }
        if spec.debit_account == spec.credit_account {
            return Err(LedgerError::invalid("debit and credit account must differ"));
        }
        if spec.timeout_ms == 0 || spec.timeout_ms > self.base.limits.pending_timeout_max_ms {
            return Err(LedgerError::invalid(format!(
                "pending timeout is 1..={} ms",
                self.base.limits.pending_timeout_max_ms
            )));
        }
        self.check_usable(spec.debit_account, Side::Debit, spec.amount)?;
        self.check_usable(spec.credit_account, Side::Credit, spec.amount)?;
        let debit_before = self.headroom(spec.debit_account)?;
        let credit_before = self.headroom(spec.credit_account)?;
        let d = self.slot(spec.debit_account)?;
        d.balance.pending_debits_minor = add(d.balance.pending_debits_minor, spec.amount.minor)?;
        let c = self.slot(spec.credit_account)?;
        c.balance.pending_credits_minor = add(c.balance.pending_credits_minor, spec.amount.minor)?;
        self.check_floor(spec.debit_account, debit_before, spec.amount.minor)?;
        self.check_floor(spec.credit_account, credit_before, spec.amount.minor)?;
        self.apply_counters(&spec.counters)?;
        let timeout_ms = i64::try_from(spec.timeout_ms).map_err(|_| LedgerError::Overflow)?;
        let id = PendingId(next_id(&mut self.p.head.next_pending_id)?);
        let pending = Pending {
            id,
            debit_account: spec.debit_account,
            credit_account: spec.credit_account,
            amount: spec.amount,
            expires_at_ms: add(self.now(), timeout_ms)?,
            metadata: spec.metadata.clone(),
            created_at_ms: self.now(),
            state: PendingState::Open,
            posted_minor: 0,
            transaction: None,
        };
        self.p.pendings.insert(id, pending.clone());
        self.p.new_pendings.push(pending.clone());
        self.p
            .expiries_added
            .push((ExpiryItem::Pending(id), pending.expires_at_ms));
        Ok(pending)
    }

    /// An open, unexpired pending, or the error that says why not.
    fn open_pending(&self, id: PendingId) -> Result<Pending, LedgerError> {
        let p = self.pending(id)?;
        match p.state {
            PendingState::Open if self.now() >= p.expires_at_ms => {
                Err(LedgerError::PendingExpired { pending: id })
            }
            PendingState::Open => Ok(p),
            PendingState::Expired => Err(LedgerError::PendingExpired { pending: id }),
            state => Err(LedgerError::PendingAlreadyResolved { pending: id, state }),
        }
    }

    /// Gives back the reserved amounts of an open pending on both accounts.
    fn unreserve_pending(&mut self, p: &Pending) -> Result<(), LedgerError> {
        let d = self.slot(p.debit_account)?;
        d.balance.pending_debits_minor = sub(d.balance.pending_debits_minor, p.amount.minor)?;
        let c = self.slot(p.credit_account)?;
        c.balance.pending_credits_minor = sub(c.balance.pending_credits_minor, p.amount.minor)?;
        Ok(())
    }

    fn resolve_pending(
        &mut self,
        mut p: Pending,
        state: PendingState,
        posted_minor: i64,
        transaction: Option<TransactionId>,
    ) -> Pending {
        debug_assert_eq!(p.state, PendingState::Open);
        p.state = state;
        p.posted_minor = posted_minor;
        p.transaction = transaction;
        self.p.pending_resolutions.push(PendingResolution {
            pending: p.id,
            state,
            posted_minor,
            transaction,
            resolved_at_ms: self.now(),
        });
        self.p.expiries_removed.push(ExpiryItem::Pending(p.id));
        self.p.pendings.insert(p.id, p.clone());
        p
    }

    fn post_pending(
        &mut self,
        id: PendingId,
        amount: Option<Money>,
    ) -> Result<Posted, LedgerError> {
        let p = self.open_pending(id)?;
        let amount = amount.unwrap_or(p.amount);
        if amount.currency != p.amount.currency {
            return Err(LedgerError::CurrencyMismatch {
                account: p.debit_account,
                expected: p.amount.currency,
                actual: amount.currency,
            });
        }
        if amount.minor <= 0 {
            return Err(LedgerError::AmountNotPositive);
        }
        if amount.minor > p.amount.minor {
            return Err(LedgerError::invalid(
                "posted amount exceeds the pending amount",
            ));
        }
        self.unreserve_pending(&p)?;
        let mut metadata = p.metadata.clone();
        metadata.insert("pending_id".to_owned(), id.0.to_string());
        let posted = self.post_entries(
            TransactionKind::PendingPost,
            vec![
                Entry {
                    account: p.debit_account,
                    side: Side::Debit,
                    amount,
                },
                Entry {
                    account: p.credit_account,
                    side: Side::Credit,
                    amount,
                },
            ],
            None,
            metadata,
        )?;
        self.resolve_pending(p, PendingState::Posted, amount.minor, Some(posted.id));
        Ok(posted)
    }

    fn release_pending(
        &mut self,
        id: PendingId,
        state: PendingState,
    ) -> Result<Pending, LedgerError> {
        let p = self.open_pending(id)?;
        self.unreserve_pending(&p)?;
        Ok(self.resolve_pending(p, state, 0, None))
    }

    fn expire_pending(&mut self, id: PendingId) -> Result<Outcome, LedgerError> {
        let p = self.pending(id)?;
        if p.state != PendingState::Open || self.now() < p.expires_at_ms {
            return Ok(Outcome::Nothing);
        }
        self.unreserve_pending(&p)?;
        Ok(Outcome::Pending(self.resolve_pending(
            p,
            PendingState::Expired,
            0,
            None,
        )))
    }

    fn place_hold(&mut self, spec: &NewHold) -> Result<Hold, LedgerError> {
        check_metadata(&spec.metadata)?;
        if spec.amount.minor <= 0 {
            return Err(LedgerError::AmountNotPositive);
        }
        let expires_at_ms = match spec.timeout_ms {
            None => None,
            Some(t) if t == 0 || t > self.base.limits.hold_timeout_max_ms => {
                return Err(LedgerError::invalid(format!(
                    "hold timeout is 1..={} ms",
                    self.base.limits.hold_timeout_max_ms
                )));
            }
            Some(t) => Some(add(
                self.now(),
                i64::try_from(t).map_err(|_| LedgerError::Overflow)?,
            )?),
        };
        self.check_usable(spec.account, Side::Debit, spec.amount)?;
        let before = self.headroom(spec.account)?;
        let slot = self.slot(spec.account)?;
        slot.balance.held_minor = add(slot.balance.held_minor, spec.amount.minor)?;
        self.check_floor(spec.account, before, spec.amount.minor)?;
        let id = HoldId(next_id(&mut self.p.head.next_hold_id)?);
        let hold = Hold {
            id,
            account: spec.account,
            amount: spec.amount,
            expires_at_ms,
            metadata: spec.metadata.clone(),
            created_at_ms: self.now(),
            state: HoldState::Open,
            captured_minor: 0,
            transaction: None,
        };
        self.p.holds.insert(id, hold.clone());
        self.p.new_holds.push(hold.clone());
        if let Some(at) = expires_at_ms {
            self.p.expiries_added.push((ExpiryItem::Hold(id), at));
        }
        Ok(hold)
    }

    fn open_hold(&self, id: HoldId) -> Result<Hold, LedgerError> {
        let h = self.hold(id)?;
        if h.state != HoldState::Open {
            return Err(LedgerError::HoldAlreadyResolved {
                hold: id,
                state: h.state,
            });
        }
        Ok(h)
    }

    fn resolve_hold(
        &mut self,
        mut h: Hold,
        state: HoldState,
        captured_minor: i64,
        transaction: Option<TransactionId>,
    ) -> Result<Hold, LedgerError> {
        debug_assert_eq!(h.state, HoldState::Open);
        let slot = self.slot(h.account)?;
        slot.balance.held_minor = sub(slot.balance.held_minor, h.amount.minor)?;
        h.state = state;
        h.captured_minor = captured_minor;
        h.transaction = transaction;
        self.p.hold_resolutions.push(HoldResolution {
            hold: h.id,
            state,
            captured_minor,
            transaction,
            resolved_at_ms: self.now(),
        });
        if h.expires_at_ms.is_some() {
            self.p.expiries_removed.push(ExpiryItem::Hold(h.id));
        }
        self.p.holds.insert(h.id, h.clone());
        Ok(h)
    }

    fn release_hold(&mut self, id: HoldId, state: HoldState) -> Result<Hold, LedgerError> {
        let h = self.open_hold(id)?;
        self.resolve_hold(h, state, 0, None)
    }

    fn expire_hold(&mut self, id: HoldId) -> Result<Outcome, LedgerError> {
        let h = self.hold(id)?;
        match h.expires_at_ms {
            Some(at) if h.state == HoldState::Open && self.now() >= at => Ok(Outcome::Hold(
                self.resolve_hold(h, HoldState::Expired, 0, None)?,
            )),
            _ => Ok(Outcome::Nothing),
        }
    }

    fn capture_hold(
        &mut self,
        id: HoldId,
        amount: Money,
        to: AccountId,
        metadata: &Metadata,
    ) -> Result<Posted, LedgerError> {
        check_metadata(metadata)?;
        let h = self.open_hold(id)?;
        if h.expires_at_ms.is_some_and(|at| self.now() >= at) {
            return Err(LedgerError::HoldAlreadyResolved {
                hold: id,
                state: HoldState::Expired,
            });
        }
        if amount.currency != h.amount.currency {
            return Err(LedgerError::CurrencyMismatch {
                account: h.account,
                expected: h.amount.currency,
                actual: amount.currency,
            });
        }
        if amount.minor <= 0 {
            return Err(LedgerError::AmountNotPositive);
        }
        if amount.minor > h.amount.minor {
            return Err(LedgerError::CaptureExceedsHold {
                hold: id,
                held: h.amount,
                requested: amount,
            });
        }
        let account = h.account;
        // Release the whole hold first; the captured part is then posted against it.
        let seq_next = self.p.head.last_seq + 1;
        let resolved = self.resolve_hold(
            h,
            HoldState::Captured,
            amount.minor,
            Some(TransactionId(seq_next)),
        )?;
        let mut metadata = metadata.clone();
        metadata.insert("hold_id".to_owned(), resolved.id.0.to_string());
        let posted = self.post_entries(
            TransactionKind::HoldCapture,
            vec![
                Entry {
                    account,
                    side: Side::Debit,
                    amount,
                },
                Entry {
                    account: to,
                    side: Side::Credit,
                    amount,
                },
            ],
            None,
            metadata,
        )?;
        debug_assert_eq!(posted.id.0, seq_next);
        Ok(posted)
    }

    fn reverse(&mut self, id: TransactionId, reason: &str) -> Result<Posted, LedgerError> {
        if reason.len() > REASON_LEN_MAX {
            return Err(LedgerError::invalid(format!(
                "reason is at most {REASON_LEN_MAX} bytes"
            )));
        }
        let target = self
            .base
            .targets
            .get(&id)
            .ok_or(LedgerError::TransactionNotFound { transaction: id })?;
        if target.reversed_by.is_some() || self.p.reversed.iter().any(|(t, _)| *t == id) {
            return Err(LedgerError::AlreadyReversed { transaction: id });
        }
        let entries: Vec<Entry> = target
            .entries
            .iter()
            .map(|e| Entry {
                account: e.account,
                side: e.side.opposite(),
                amount: e.amount,
            })
            .collect();
        let mut metadata = Metadata::new();
        if !reason.is_empty() {
            metadata.insert("reason".to_owned(), reason.to_owned());
        }
        let posted = self.post_entries(TransactionKind::Reversal, entries, Some(id), metadata)?;
        self.p.reversed.push((id, posted.id));
        Ok(posted)
    }

    fn change_freeze(
        &mut self,
        id: AccountId,
        no_debit: bool,
        no_credit: bool,
        freeze: bool,
        reason: &str,
    ) -> Result<Account, LedgerError> {
        if !no_debit && !no_credit {
            return Err(LedgerError::invalid("a freeze change names a direction"));
        }
        if reason.len() > REASON_LEN_MAX {
            return Err(LedgerError::invalid(format!(
                "a freeze reason is at most {REASON_LEN_MAX} bytes"
            )));
        }
        let (debit_now, credit_now) = match self.slot(id)?.account.status {
            AccountStatus::Active => (false, false),
            AccountStatus::Frozen {
                no_debit,
                no_credit,
            } => (no_debit, no_credit),
            AccountStatus::Closed => return Err(LedgerError::AccountClosed { account: id }),
        };
        let status = if freeze {
            AccountStatus::Frozen {
                no_debit: debit_now || no_debit,
                no_credit: credit_now || no_credit,
            }
        } else {
            AccountStatus::Frozen {
                no_debit: debit_now && !no_debit,
                no_credit: credit_now && !no_credit,
            }
        };
        let account = self.set_status(id, status)?;
        let frozen = matches!(account.status, AccountStatus::Frozen { .. });
        self.p.profile_changes.push(ProfileChange::FreezeReason {
            account_id: id.0,
            reason: if frozen {
                reason.to_owned()
            } else {
                String::new()
            },
        });
        Ok(account)
    }

    fn set_status(&mut self, id: AccountId, status: AccountStatus) -> Result<Account, LedgerError> {
        let slot = self.slot(id)?;
        if slot.account.status == AccountStatus::Closed {
            return Err(LedgerError::AccountClosed { account: id });
        }
        let status = status.normalized();
        if status == AccountStatus::Closed && !slot.balance.is_zero() {
            return Err(LedgerError::AccountNotEmpty { account: id });
        }
        slot.account.status = status;
        let account = slot.account.clone();
        if status == AccountStatus::Closed {
            let at_ms = self.now();
            self.p.profile_changes.push(ProfileChange::Closed {
                account_id: id.0,
                at_ms,
            });
        }
        Ok(account)
    }
}
