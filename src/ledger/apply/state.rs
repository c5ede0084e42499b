//! The batch's view of the ledger: the loaded state plus every accepted command's effects, and
//! the writes it leaves.

use std::collections::{BTreeSet, HashMap};

use super::{
    command::{Answer, ApplyLimits, BatchItem, Observe, Observed, Outcome},
    scratch::{Parts, Scratch, Slot},
};
use crate::ledger::{
    audit,
    error::LedgerError,
    model::{
        AccountId, Hold, HoldId, IdempotencyKey, Pending, PendingId, StoredDocument, TransactionId,
    },
    store::{
        BatchWrites, ChainHead, LoadedAccount, LoadedBatch, ROW_TAIL_ENTRIES_MAX, ReversalTarget,
        StoredIdempotency,
    },
};

pub(crate) struct StoredOutcome {
    request_hash: String,
    /// `None`: the stored text could not be read back.
    outcome: Option<Result<Outcome, LedgerError>>,
    /// What the request observed; `None` when it asked for nothing or was stored before
    /// observations were (an unreadable text reads as `None` too, and is logged).
    observed: Option<Observed>,
}

impl StoredOutcome {
    pub(crate) fn decode(stored: &StoredIdempotency) -> StoredOutcome {
        let observed = stored.observed.as_deref().and_then(|text| {
            serde_json::from_str(text)
                .map_err(|e| tracing::error!(error = %e, "stored observation is unreadable"))
                .ok()
        });
        StoredOutcome {
            request_hash: stored.request_hash.clone(),
            outcome: serde_json::from_str(&stored.outcome).ok(),
            observed,
        }
    }

    /// [`StoredOutcome::answer`] with what the first request observed.
    pub(crate) fn answer_observed(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> Result<Answer, LedgerError> {
        let result = self.answer(key, request_hash)?;
        Ok(Answer {
            result,
            observed: self.observed.clone(),
        })
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
        self.apply_observed(item).result
    }

    /// [`BatchState::apply`], with what the request observed of the state its command left (or,
    /// for a replay, what the first request observed).
    pub fn apply_observed(&mut self, item: &BatchItem) -> Answer {
        if let Some(key) = &item.key
            && let Some(stored) = self.idempotency.get(key)
        {
            return stored
                .answer_observed(key, &item.fingerprint)
                .unwrap_or_else(|e| Answer {
                    result: Err(e),
                    observed: None,
                });
        }
        let failed = |e: LedgerError| Answer {
            result: Err(e),
            observed: None,
        };
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
                    return failed(LedgerError::Storage);
                }
            },
            None => None,
        };
        let written = if result.is_ok() {
            self.observed_documents(&item.observe, &parts.documents)
        } else {
            Vec::new()
        };
        if result.is_ok() {
            self.merge(parts);
        }
        let observed = (result.is_ok() && !item.observe.is_empty())
            .then(|| self.observe(&item.observe, written));
        let observed_text = match &observed {
            Some(o) => match serde_json::to_string(o) {
                Ok(text) => Some(text),
                Err(e) => {
                    tracing::error!(error = %e, "observation could not be encoded");
                    return failed(LedgerError::Storage);
                }
            },
            None => None,
        };
        if let (Some(key), Some(text)) = (&item.key, outcome_text) {
            self.idempotency.insert(
                key.clone(),
                StoredOutcome {
                    request_hash: item.fingerprint.clone(),
                    outcome: Some(result.clone()),
                    observed: observed.clone(),
                },
            );
            self.writes.idempotency.push(StoredIdempotency {
                key: key.clone(),
                request_hash: item.fingerprint.clone(),
                outcome: text,
                observed: observed_text,
                created_at_ms: self.now_ms,
            });
            // Its audit record, chained in the same batch (so in the same transaction).
            let last = (self.head.audit_seq, self.head.audit_hash);
            let (row, hash) = audit::next_record(last, key, &item.method, &result, self.now_ms);
            self.head.audit_seq = row.seq;
            self.head.audit_hash = hash;
            self.writes.audit.push(row);
        }
        Answer { result, observed }
    }

    /// The documents of the observed kinds among those a command wrote.
    fn observed_documents(
        &self,
        observe: &Observe,
        written: &[StoredDocument],
    ) -> Vec<StoredDocument> {
        written
            .iter()
            .filter(|d| observe.document_kinds.contains(&d.kind))
            .cloned()
            .collect()
    }

    /// The observed accounts and counters as the batch stands now (right after a command).
    fn observe(&self, observe: &Observe, documents: Vec<StoredDocument>) -> Observed {
        Observed {
            at_ms: self.now_ms,
            balances: observe
                .accounts
                .iter()
                .filter_map(|id| self.accounts.get(id).map(|s| (*id, s.balance)))
                .collect(),
            counters: observe
                .counters
                .iter()
                .map(|k| (k.clone(), self.counters.get(k).copied().unwrap_or(0)))
                .collect(),
            documents,
        }
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
        // Taken out of the state, not copied: only a written row needs a second copy.
        let dirty = std::mem::take(&mut self.dirty_accounts);
        w.account_states.reserve(dirty.len());
        for id in dirty {
            let Some(s) = self.accounts.remove(&id) else {
                continue;
            };
            let added = new_entries.get(&id).copied().unwrap_or(0);
            let tail_entries = if self.row_must_be_written(&s, added) {
                w.accounts.push((s.account.clone(), s.balance));
                0
            } else {
                let before = self.stored.get(&id).map_or(0, |(_, t)| *t);
                before.saturating_add(added)
            };
            w.account_states.push(LoadedAccount {
                account: s.account,
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
