//! Two-phase transfers: reserve, post (fully or partly), void, expire.

use super::{
    command::Outcome,
    scratch::{Scratch, add, check_metadata, next_id, sub},
};
use crate::ledger::{
    error::LedgerError,
    model::{
        Entry, NewPending, Pending, PendingId, PendingState, Posted, Side, TransactionId,
        TransactionKind,
    },
    store::{ExpiryItem, PendingResolution},
};
use crate::money::Money;

impl Scratch<'_> {
    pub(super) fn create_pending(&mut self, spec: &NewPending) -> Result<Pending, LedgerError> {
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
    pub(super) fn open_pending(&self, id: PendingId) -> Result<Pending, LedgerError> {
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
    pub(super) fn unreserve_pending(&mut self, p: &Pending) -> Result<(), LedgerError> {
        let d = self.slot(p.debit_account)?;
        d.balance.pending_debits_minor = sub(d.balance.pending_debits_minor, p.amount.minor)?;
        let c = self.slot(p.credit_account)?;
        c.balance.pending_credits_minor = sub(c.balance.pending_credits_minor, p.amount.minor)?;
        Ok(())
    }

    pub(super) fn resolve_pending(
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

    pub(super) fn post_pending(
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

    pub(super) fn release_pending(
        &mut self,
        id: PendingId,
        state: PendingState,
    ) -> Result<Pending, LedgerError> {
        let p = self.open_pending(id)?;
        self.unreserve_pending(&p)?;
        Ok(self.resolve_pending(p, state, 0, None))
    }

    pub(super) fn expire_pending(&mut self, id: PendingId) -> Result<Outcome, LedgerError> {
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
}
