//! Why the account service refused a request. The gRPC layer maps every variant (and every
//! ledger error inside [`AccountError::Ledger`]) to a status with a stable reason.

use crate::{
    account::rules::{LimitRule, LimitWindow},
    ledger::{AccountId, LedgerError},
    money::Money,
    text::TextRefusal,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    /// A field is missing or malformed (INVALID_ARGUMENT).
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// A free-text field breaks the shared text rules (INVALID_ARGUMENT; a card number in it
    /// is the reason `CARD_NUMBER_IN_TEXT`). The text itself is never part of the error.
    #[error("{field}: {refusal}")]
    Text {
        field: &'static str,
        refusal: TextRefusal,
    },
    /// Bank internal accounts are created by configuration only.
    #[error("accounts of kind {kind} are not opened by callers")]
    KindNotOpenable { kind: &'static str },
    #[error("account {account} does not exist")]
    AccountNotFound { account: String },
    #[error("hold {hold} does not exist")]
    HoldNotFound { hold: String },
    /// The caller's grant does not cover this account.
    #[error("account {account} is outside caller {caller}'s scope")]
    OutOfScope { caller: String, account: AccountId },
    #[error("an account cannot transfer to itself")]
    TransferToSelf,
    /// A platform master's balance is its sub-accounts' sum; it takes no postings of its own.
    #[error("account {account} is a platform master account and takes no postings of its own")]
    MasterNotPostable { account: AccountId },
    #[error("account {account} has no bound card")]
    NoBoundCard { account: AccountId },
    #[error("parent {parent} is not an open platform master account in {currency}")]
    InvalidParent { parent: AccountId, currency: String },
    /// A class rule refused the request: which rule, over which window, and what remains.
    #[error(
        "{} limit exceeded ({} {period}): limit {}, used {}, requested {}, remaining {}",
        rule.name(), window.name(), limit, used, requested, remaining
    )]
    LimitExceeded {
        rule: LimitRule,
        window: LimitWindow,
        period: String,
        limit: LimitAmount,
        used: LimitAmount,
        requested: LimitAmount,
        remaining: LimitAmount,
    },
    #[error("the page token is not one this gateway issued for this query")]
    InvalidPageToken,
    /// The clearing network declined the movement.
    #[error("the {network} network declined: {reason}")]
    ClearingDeclined {
        network: &'static str,
        reason: String,
    },
    /// Stored account data that does not decode (a profile whose kind or currency is not one
    /// this gateway writes): a bug or a damaged database, never the caller's fault. The detail
    /// is for the log; callers see only that the data is corrupt.
    #[error("stored account data does not decode: {detail}")]
    Corrupt { detail: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What a limit counts: money, or a number of things (open accounts per person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAmount {
    Money(Money),
    Count(i64),
}

impl LimitAmount {
    /// The currency, for money limits.
    pub fn currency(&self) -> Option<&str> {
        match self {
            LimitAmount::Money(m) => Some(m.currency.code()),
            LimitAmount::Count(_) => None,
        }
    }
}

impl std::fmt::Display for LimitAmount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitAmount::Money(m) => f.write_str(&m.to_decimal_string()),
            LimitAmount::Count(n) => write!(f, "{n}"),
        }
    }
}

impl AccountError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> AccountError {
        AccountError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl AccountError {
    /// A [`AccountError::Corrupt`], logged once here with its detail.
    pub fn corrupt(detail: impl Into<String>) -> AccountError {
        let detail = detail.into();
        tracing::error!(%detail, "stored account data does not decode");
        AccountError::Corrupt { detail }
    }
}

impl From<crate::ledger::store::StorageError> for AccountError {
    fn from(e: crate::ledger::store::StorageError) -> Self {
        AccountError::Ledger(LedgerError::from(e))
    }
}
