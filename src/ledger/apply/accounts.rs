//! Opening accounts, changing their status, freezing and unfreezing them.

use super::scratch::{Scratch, Slot, check_metadata, next_id};
use crate::ledger::{
    error::LedgerError,
    model::{
        ACCOUNT_KIND_LEN_MAX, Account, AccountId, AccountStatus, Balance, BalanceConstraint,
        NewAccount, REASON_LEN_MAX,
    },
    store::{ProfileChange, ProfileRow},
};

impl Scratch<'_> {
    pub(super) fn create_account(&mut self, spec: &NewAccount) -> Result<Account, LedgerError> {
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

    pub(super) fn change_freeze(
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

    pub(super) fn set_status(
        &mut self,
        id: AccountId,
        status: AccountStatus,
    ) -> Result<Account, LedgerError> {
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
