//! Holds on an account: place, release, expire, capture (at most once).

use super::{
    command::Outcome,
    scratch::{Scratch, add, check_metadata, next_id, sub},
};
use crate::ledger::{
    error::LedgerError,
    model::{
        AccountId, Entry, Hold, HoldId, HoldState, Metadata, NewHold, Posted, Side, TransactionId,
        TransactionKind,
    },
    store::{ExpiryItem, HoldResolution},
};
use crate::money::Money;

impl Scratch<'_> {
    pub(super) fn place_hold(&mut self, spec: &NewHold) -> Result<Hold, LedgerError> {
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

    pub(super) fn open_hold(&self, id: HoldId) -> Result<Hold, LedgerError> {
        let h = self.hold(id)?;
        if h.state != HoldState::Open {
            return Err(LedgerError::HoldAlreadyResolved {
                hold: id,
                state: h.state,
            });
        }
        Ok(h)
    }

    pub(super) fn resolve_hold(
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

    pub(super) fn release_hold(
        &mut self,
        id: HoldId,
        state: HoldState,
    ) -> Result<Hold, LedgerError> {
        let h = self.open_hold(id)?;
        self.resolve_hold(h, state, 0, None)
    }

    pub(super) fn expire_hold(&mut self, id: HoldId) -> Result<Outcome, LedgerError> {
        let h = self.hold(id)?;
        match h.expires_at_ms {
            Some(at) if h.state == HoldState::Open && self.now() >= at => Ok(Outcome::Hold(
                self.resolve_hold(h, HoldState::Expired, 0, None)?,
            )),
            _ => Ok(Outcome::Nothing),
        }
    }

    pub(super) fn capture_hold(
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
}
