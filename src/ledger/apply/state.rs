//! The batch's view of the ledger: the loaded state plus every accepted command's effects, and
//! the writes it leaves.

use std::collections::{BTreeSet, HashMap};

use super::{
    command::{ApplyLimits, BatchItem, Outcome},
    scratch::{Parts, Scratch, Slot},
};
use crate::ledger::{
    error::LedgerError,
    model::{AccountId, Hold, HoldId, IdempotencyKey, Pending, PendingId, TransactionId},
    store::{
        BatchWrites, ChainHead, LoadedAccount, LoadedBatch, ROW_TAIL_ENTRIES_MAX, ReversalTarget,
        StoredIdempotency,
    },
};

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
            LedgerError::Corrupt
        })
    }
}

/// The batch's view of the ledger, updated by each command that succeeds.
pub struct BatchState {
    pub(super) now_ms: i64,
    pub(super) limits: ApplyLimits,
    pub(super) head: ChainHead,
    pub(super) accounts: HashMap<AccountId, Slot>,
    pub(super) dirty_accounts: BTreeSet<AccountId>,
    /// Each loaded account as stored, with its journal tail length: decides whether its row
    /// must be rewritten ([`BatchState::row_must_be_written`]).
    pub(super) stored: HashMap<AccountId, (Slot, u32)>,
    pub(super) idempotency: HashMap<IdempotencyKey, StoredOutcome>,
    pub(super) pendings: HashMap<PendingId, Pending>,
    pub(super) holds: HashMap<HoldId, Hold>,
    pub(super) targets: HashMap<TransactionId, ReversalTarget>,
    pub(super) counters: HashMap<String, i64>,
    pub(super) dirty_counters: BTreeSet<String>,
    /// Current version of each document the batch loaded or wrote (absent: none stored).
    pub(super) documents: HashMap<(String, String), u64>,
    pub(super) writes: BatchWrites,
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
