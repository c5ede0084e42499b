//! `Guarded` commands: counters within their caps, counter releases, balance caps, versioned
//! documents and outbox events, all or nothing with the command they guard.

use std::collections::BTreeSet;

use super::{
    command::{Command, Outcome},
    scratch::{Scratch, add, clamp_i64},
};
use crate::ledger::{
    error::LedgerError,
    model::{
        BalanceCap, COUNTER_CHECKS_MAX, COUNTER_KEY_LEN_MAX, CounterCheck, CounterRelease,
        DOCUMENT_BODY_LEN_MAX, DOCUMENT_ID_LEN_MAX, DOCUMENT_KIND_LEN_MAX,
        DOCUMENTS_PER_COMMAND_MAX, DocumentWrite, EVENTS_PER_COMMAND_MAX, ID_MAX, OutboxEvent,
        Side, StoredDocument, TransactionId,
    },
    store::StoredEventRow,
};
use crate::money::Money;

pub(super) fn check_counters(cs: &[CounterCheck]) -> Result<(), LedgerError> {
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

pub(super) fn check_documents(
    documents: &[DocumentWrite],
    events: &[OutboxEvent],
) -> Result<(), LedgerError> {
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

impl Scratch<'_> {
    /// Lowers counters (never below zero), e.g. an open-account count when one closes.
    pub(super) fn release_counters(
        &mut self,
        releases: &[CounterRelease],
    ) -> Result<(), LedgerError> {
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
    pub(super) fn check_caps(&mut self, caps: &[BalanceCap]) -> Result<(), LedgerError> {
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

    pub(super) fn apply_counters(&mut self, checks: &[CounterCheck]) -> Result<(), LedgerError> {
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

    /// Writes each document at its expected version + 1, or fails with `DocumentConflict` when
    /// the version as this batch sees it differs (another command got there first).
    pub(super) fn write_documents(
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

    /// Runs `inner`, then its conditions and its documents and events; any failure fails the
    /// whole command (the caller drops the overlay).
    pub(super) fn guarded(
        &mut self,
        inner: &Command,
        counters: &[CounterCheck],
        releases: &[CounterRelease],
        caps: &[BalanceCap],
        documents: &[DocumentWrite],
        events: &[OutboxEvent],
    ) -> Result<Outcome, LedgerError> {
        if matches!(inner, Command::Guarded { .. }) {
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
}
