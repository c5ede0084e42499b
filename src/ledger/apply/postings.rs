//! Balanced journal transactions: new postings, the shared posting step, and reversals.

use std::collections::BTreeMap;

use super::scratch::{Scratch, add, check_metadata, clamp_i64};
use crate::ledger::{
    error::LedgerError,
    hash::{self, hash_to_hex},
    model::{
        AccountId, BalanceConstraint, ENTRIES_PER_TRANSACTION_MAX, Entry, ID_MAX, Metadata,
        NewTransaction, Posted, REASON_LEN_MAX, Side, TransactionId, TransactionKind,
    },
    store::{EntryRow, TransactionRow},
};
use crate::money::Currency;

impl Scratch<'_> {
    pub(super) fn post_new(
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
    // About 85 lines, on purpose: the order of a posting (check the entries, apply each leg with
    // its balance after, check every floor, chain the hash, advance the head) reads in one place.
    pub(super) fn post_entries(
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
        let mut touched = self.check_entries(&entries)?;
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

    pub(super) fn reverse(
        &mut self,
        id: TransactionId,
        reason: &str,
    ) -> Result<Posted, LedgerError> {
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

    /// Checks each entry (positive, usable account, its currency) and that the entries balance
    /// per currency; returns, per account, its headroom before and zero asked of it so far.
    #[allow(clippy::type_complexity)]
    fn check_entries(
        &mut self,
        entries: &[Entry],
    ) -> Result<BTreeMap<AccountId, (Option<i128>, i64)>, LedgerError> {
        let mut net: BTreeMap<Currency, i128> = BTreeMap::new();
        // Per account: headroom before, and what this transaction asks of its constrained side.
        let mut touched: BTreeMap<AccountId, (Option<i128>, i64)> = BTreeMap::new();
        for e in entries {
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
        Ok(touched)
    }
}
