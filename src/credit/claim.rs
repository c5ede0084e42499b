//! Which credit refusals claim a request's key (the rule of [`crate::account`]'s `claim`
//! module, applied to the checks the credit service makes before its batch: a line not found,
//! already opened, frozen, a drawdown beyond the line, a repayment beyond the
//! outstanding, an account not found).

use serde::{Deserialize, Serialize};

use super::{CreditError, CreditService};
use crate::{
    account::AccountError,
    ledger::{Answer, IdempotencyKey, LedgerError, Refusal},
    money::Money,
};

/// The service whose refusals [`CreditError::refusal`] encodes.
pub const REFUSAL_SERVICE: &str = "credit";

/// A credit refusal decided before the batch, as stored under the request's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "SCREAMING_SNAKE_CASE")]
enum Stored {
    LineNotFound {
        line: String,
    },
    LineExists {
        account: String,
        line: String,
    },
    LineFrozen {
        line: String,
    },
    LineOverdue {
        line: String,
        overdue_principal: Money,
    },
    LimitExceeded {
        line: String,
        available: Money,
        requested: Money,
    },
    RepaymentExceedsOutstanding {
        line: String,
        outstanding: Money,
        requested: Money,
    },
    DrawdownNotFound {
        line: String,
        drawdown: String,
    },
    DrawdownAlreadySplit {
        line: String,
        drawdown: String,
    },
    DrawdownRepaid {
        line: String,
        drawdown: String,
    },
}

impl CreditError {
    /// The stored form of this refusal when it claims the request's key (a refusal met before
    /// the batch from state); `None` otherwise (malformed, above the configured cap, transient).
    pub fn refusal(&self) -> Option<Refusal> {
        let stored = match self.clone() {
            CreditError::LineNotFound { line } => Stored::LineNotFound { line },
            CreditError::LineExists { account, line } => Stored::LineExists { account, line },
            CreditError::LineFrozen { line } => Stored::LineFrozen { line },
            CreditError::LineOverdue {
                line,
                overdue_principal,
            } => Stored::LineOverdue {
                line,
                overdue_principal,
            },
            CreditError::LimitExceeded {
                line,
                available,
                requested,
            } => Stored::LimitExceeded {
                line,
                available,
                requested,
            },
            CreditError::RepaymentExceedsOutstanding {
                line,
                outstanding,
                requested,
            } => Stored::RepaymentExceedsOutstanding {
                line,
                outstanding,
                requested,
            },
            CreditError::DrawdownNotFound { line, drawdown } => {
                Stored::DrawdownNotFound { line, drawdown }
            }
            CreditError::DrawdownAlreadySplit { line, drawdown } => {
                Stored::DrawdownAlreadySplit { line, drawdown }
            }
            CreditError::DrawdownRepaid { line, drawdown } => {
                Stored::DrawdownRepaid { line, drawdown }
            }
            // The account service's own pre-batch refusals (an account not found …).
            CreditError::Account(e) if !matches!(*e, AccountError::Ledger(_)) => {
                return e.refusal();
            }
            // Outside what the caller may do with the line (PERMISSION_DENIED): not stored.
            CreditError::InvalidArgument { .. }
            | CreditError::NotLineOwner { .. }
            | CreditError::Text { .. }
            | CreditError::RateAboveCap { .. }
            | CreditError::AccrualOutOfOrder { .. }
            | CreditError::RepaymentNotFound { .. }
            | CreditError::Account(_)
            | CreditError::Ledger(_) => return None,
        };
        let body = serde_json::to_string(&stored).ok()?;
        Some(Refusal {
            reason: REFUSAL_SERVICE.to_owned(),
            body,
        })
    }

    /// A stored credit refusal read back; `None` when it is not one.
    pub fn from_refusal(refusal: &Refusal) -> Option<CreditError> {
        if refusal.reason != REFUSAL_SERVICE {
            return None;
        }
        let stored: Stored = serde_json::from_str(&refusal.body).ok()?;
        Some(match stored {
            Stored::LineNotFound { line } => CreditError::LineNotFound { line },
            Stored::LineExists { account, line } => CreditError::LineExists { account, line },
            Stored::LineFrozen { line } => CreditError::LineFrozen { line },
            Stored::LineOverdue {
                line,
                overdue_principal,
            } => CreditError::LineOverdue {
                line,
                overdue_principal,
            },
            Stored::LimitExceeded {
                line,
                available,
                requested,
            } => CreditError::LimitExceeded {
                line,
                available,
                requested,
            },
            Stored::RepaymentExceedsOutstanding {
                line,
                outstanding,
                requested,
            } => CreditError::RepaymentExceedsOutstanding {
                line,
                outstanding,
                requested,
            },
            Stored::DrawdownNotFound { line, drawdown } => {
                CreditError::DrawdownNotFound { line, drawdown }
            }
            Stored::DrawdownAlreadySplit { line, drawdown } => {
                CreditError::DrawdownAlreadySplit { line, drawdown }
            }
            Stored::DrawdownRepaid { line, drawdown } => {
                CreditError::DrawdownRepaid { line, drawdown }
            }
        })
    }

    /// A ledger answer's refusal as the credit service names it: a stored refusal of this
    /// service or the account service read back, any other as it is.
    pub fn from_ledger(e: LedgerError) -> CreditError {
        let LedgerError::Refused { refusal } = e else {
            return CreditError::Ledger(e);
        };
        if let Some(account) = AccountError::from_refusal(&refusal) {
            return CreditError::Account(Box::new(account));
        }
        match CreditError::from_refusal(&refusal) {
            Some(credit) => credit,
            None => CreditError::corrupt("stored refusal"),
        }
    }
}

impl CreditService {
    /// Claims `key` for `error` when it is a refusal that claims (see [`CreditError::refusal`]):
    /// the answer is the request's first one (an earlier success, or the refusal stored, this
    /// one or an earlier). Any other error comes back as it is.
    pub(super) async fn claim(
        &self,
        key: IdempotencyKey,
        fingerprint: &str,
        error: CreditError,
    ) -> Result<Answer, CreditError> {
        let Some(refusal) = error.refusal() else {
            return Err(error);
        };
        let answer = self
            .ledger()
            .refuse_request(key, fingerprint, refusal)
            .await?;
        match answer.result {
            Ok(_) => Ok(answer),
            Err(e @ (LedgerError::Refused { .. } | LedgerError::IdempotencyKeyReused { .. })) => {
                Err(CreditError::from_ledger(e))
            }
            // The batch already refused this very request: the error in hand names the rule it
            // broke (the receivable's floor is `REPAYMENT_EXCEEDS_OUTSTANDING`).
            Err(_) => Err(error),
        }
    }
}
