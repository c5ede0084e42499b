//! Why the credit service refused a request. The gRPC layer maps every variant (and the account
//! and ledger errors inside) to a status with a stable reason.

use rust_decimal::Decimal;

use crate::{account::AccountError, ledger::LedgerError, money::Money, text::TextRefusal};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CreditError {
    /// A field is missing or malformed (INVALID_ARGUMENT): nothing was written.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// A free-text field breaks the shared text rules (see [`crate::text`]).
    #[error("{field}: {refusal}")]
    Text {
        field: &'static str,
        refusal: TextRefusal,
    },
    /// The annual rate is above the configured legal cap (`credit.annual_rate_cap`).
    #[error("annual rate {requested} is above the cap {cap}")]
    RateAboveCap { requested: Decimal, cap: Decimal },
    #[error("credit line {line} does not exist")]
    LineNotFound { line: String },
    /// The account already has a line (one line per account).
    #[error("account {account} already has credit line {line}")]
    LineExists { account: String, line: String },
    #[error("credit line {line} is frozen")]
    LineFrozen { line: String },
    /// Instalments past their due date are unpaid: no new drawdown until they are repaid.
    #[error("credit line {line} has {overdue_principal} of overdue principal")]
    LineOverdue {
        line: String,
        overdue_principal: Money,
    },
    /// The account named is not the line's own.
    #[error("credit line {line} does not belong to account {account}")]
    NotLineOwner { line: String, account: String },
    /// A drawdown beyond what the line has left (checked again in the batch by its counter).
    #[error("credit limit exceeded on {line}: available {available}, requested {requested}")]
    LimitExceeded {
        line: String,
        available: Money,
        requested: Money,
    },
    /// A repayment beyond the principal outstanding.
    #[error("repayment {requested} exceeds the outstanding {outstanding} of {line}")]
    RepaymentExceedsOutstanding {
        line: String,
        outstanding: Money,
        requested: Money,
    },
    /// No repayment from the bound card of the line under that request id or reference.
    #[error("no card repayment {lookup} on credit line {line}")]
    RepaymentNotFound { line: String, lookup: String },
    #[error("drawdown {drawdown} of credit line {line} does not exist")]
    DrawdownNotFound { line: String, drawdown: String },
    /// A drawdown is split into instalments once.
    #[error("drawdown {drawdown} of credit line {line} is already split into instalments")]
    DrawdownAlreadySplit { line: String, drawdown: String },
    /// The line's principal not in a plan no longer covers the drawdown (repaid).
    #[error("drawdown {drawdown} of credit line {line} is repaid")]
    DrawdownRepaid { line: String, drawdown: String },
    /// Interest accrues only for dates that have ended, within the lookback.
    #[error("cannot accrue {date} now: {reason}")]
    AccrualOutOfOrder { date: time::Date, reason: String },
    /// Boxed: the account service's refusals are large and rare here.
    #[error(transparent)]
    Account(Box<AccountError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl CreditError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> CreditError {
        CreditError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// Stored data that does not decode: a bug or a damaged database.
    pub fn corrupt(what: &str) -> CreditError {
        tracing::error!(what, "stored credit data does not decode");
        CreditError::Ledger(LedgerError::Storage)
    }
}

impl From<crate::ledger::store::StorageError> for CreditError {
    fn from(e: crate::ledger::store::StorageError) -> Self {
        CreditError::Ledger(LedgerError::from(e))
    }
}

impl From<AccountError> for CreditError {
    fn from(e: AccountError) -> Self {
        match e {
            // A refusal stored before a batch, by this service or another.
            AccountError::Ledger(e @ LedgerError::Refused { .. }) => CreditError::from_ledger(e),
            AccountError::Ledger(e) => CreditError::Ledger(e),
            e => CreditError::Account(Box::new(e)),
        }
    }
}
