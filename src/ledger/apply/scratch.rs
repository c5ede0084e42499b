//! One command's overlay over the batch state, its dispatch, and the checks every operation
//! shares (usable accounts, balance floors, metadata, checked arithmetic).

use std::collections::BTreeMap;

use super::{
    command::{Command, Outcome, REFUSAL_BODY_LEN_MAX},
    state::BatchState,
};
use crate::ledger::{
    error::LedgerError,
    model::{
        Account, AccountId, AccountStatus, Balance, Hold, HoldId, HoldState, ID_MAX,
        LINKED_TRANSACTIONS_MAX, METADATA_KEY_LEN_MAX, METADATA_PAIRS_MAX, METADATA_VALUE_LEN_MAX,
        Metadata, Pending, PendingId, PendingState, REASON_LEN_MAX, Side, StoredDocument,
        TransactionId, TransactionKind,
    },
    store::{
        ChainHead, EntryRow, ExpiryItem, HoldResolution, PendingResolution, ProfileChange,
        ProfileRow, StoredEventRow, TransactionRow,
    },
};
use crate::money::Money;

#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) account: Account,
    pub(super) balance: Balance,
}

/// What one successful command changes.
pub(super) struct Parts {
    pub(super) head: ChainHead,
    pub(super) accounts: BTreeMap<AccountId, Slot>,
    pub(super) pendings: BTreeMap<PendingId, Pending>,
    pub(super) holds: BTreeMap<HoldId, Hold>,
    pub(super) reversed: Vec<(TransactionId, TransactionId)>,
    pub(super) counters: BTreeMap<String, i64>,
    pub(super) transactions: Vec<TransactionRow>,
    pub(super) entries: Vec<EntryRow>,
    pub(super) new_pendings: Vec<Pending>,
    pub(super) new_holds: Vec<Hold>,
    pub(super) pending_resolutions: Vec<PendingResolution>,
    pub(super) hold_resolutions: Vec<HoldResolution>,
    pub(super) expiries_added: Vec<(ExpiryItem, i64)>,
    pub(super) expiries_removed: Vec<ExpiryItem>,
    pub(super) documents: Vec<StoredDocument>,
    pub(super) events: Vec<StoredEventRow>,
    pub(super) profiles: Vec<ProfileRow>,
    pub(super) profile_changes: Vec<ProfileChange>,
}

/// One command's overlay over the batch state.
pub(super) struct Scratch<'s> {
    pub(super) base: &'s BatchState,
    pub(super) p: Parts,
}

pub(super) fn check_metadata(m: &Metadata) -> Result<(), LedgerError> {
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

pub(super) fn add(a: i64, b: i64) -> Result<i64, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}

pub(super) fn sub(a: i64, b: i64) -> Result<i64, LedgerError> {
    let r = a.checked_sub(b).ok_or(LedgerError::Overflow)?;
    // Pending and held totals are sums of open items: releasing more than reserved is a bug.
    debug_assert!(r >= 0, "released more than was reserved");
    if r < 0 {
        tracing::error!("released more than was reserved");
        return Err(LedgerError::Corrupt);
    }
    Ok(r)
}

pub(super) fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

pub(super) fn next_id(counter: &mut u64) -> Result<u64, LedgerError> {
    let id = *counter;
    if id == 0 || id > ID_MAX {
        return Err(LedgerError::Overflow);
    }
    *counter = id + 1;
    Ok(id)
}

impl<'s> Scratch<'s> {
    pub(super) fn new(base: &'s BatchState) -> Scratch<'s> {
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

    pub(super) fn into_parts(self) -> Parts {
        self.p
    }

    pub(super) fn now(&self) -> i64 {
        self.base.now_ms
    }

    pub(super) fn slot(&mut self, id: AccountId) -> Result<&mut Slot, LedgerError> {
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

    pub(super) fn pending(&self, id: PendingId) -> Result<Pending, LedgerError> {
        self.p
            .pendings
            .get(&id)
            .or_else(|| self.base.pendings.get(&id))
            .cloned()
            .ok_or(LedgerError::PendingNotFound { pending: id })
    }

    pub(super) fn hold(&self, id: HoldId) -> Result<Hold, LedgerError> {
        self.p
            .holds
            .get(&id)
            .or_else(|| self.base.holds.get(&id))
            .cloned()
            .ok_or(LedgerError::HoldNotFound { hold: id })
    }

    /// Checks that `side` may touch the account now, and that the amount is in its currency.
    pub(super) fn check_usable(
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
    pub(super) fn check_floor(
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

    pub(super) fn headroom(&mut self, id: AccountId) -> Result<Option<i128>, LedgerError> {
        let slot = self.slot(id)?;
        Ok(slot.balance.headroom_minor(slot.account.constraint))
    }

    pub(super) fn run(&mut self, command: &Command) -> Result<Outcome, LedgerError> {
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
            } => self.guarded(inner, counters, releases, caps, documents, events),
            Command::NoOp => Ok(Outcome::Nothing),
            Command::Refuse(refusal) => {
                if refusal.reason.is_empty()
                    || refusal.reason.len() > REASON_LEN_MAX
                    || refusal.body.len() > REFUSAL_BODY_LEN_MAX
                {
                    return Err(LedgerError::invalid(format!(
                        "a refusal has a reason of 1..={REASON_LEN_MAX} bytes and a body of at \
                         most {REFUSAL_BODY_LEN_MAX}"
                    )));
                }
                Err(LedgerError::Refused {
                    refusal: refusal.clone(),
                })
            }
        }
    }
}
