//! Every way a ledger request can fail, each its own variant with a stable reason string.
//! Refusals that depend on state are stored as the idempotent outcome of a request; `Storage`,
//! `Corrupt`, `Overloaded`, `ShuttingDown` and `DocumentConflict` never are (nothing of the
//! request was written, and a retry may succeed), nor are malformed requests (nothing was
//! decided: a corrected request may reuse the key).

use serde::{Deserialize, Serialize};

use super::model::{AccountId, HoldId, HoldState, PendingId, PendingState, TransactionId};
use crate::money::{Currency, Money, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerError {
    #[error("account {account} does not exist")]
    UnknownAccount { account: AccountId },
    #[error("unknown currency {code:?}")]
    UnknownCurrency { code: String },
    #[error("amount is not a decimal number")]
    InvalidAmount,
    #[error("account {account} holds {expected}, not {actual}")]
    CurrencyMismatch {
        account: AccountId,
        expected: Currency,
        actual: Currency,
    },
    #[error("{currency} amounts have at most {scale} decimal places")]
    AmountScale { currency: Currency, scale: u32 },
    #[error("amount must be greater than zero")]
    AmountNotPositive,
    #[error("amount overflows")]
    Overflow,
    #[error(
        "insufficient funds on account {account}: available {available}, requested {requested}"
    )]
    InsufficientFunds {
        account: AccountId,
        available: Money,
        requested: Money,
    },
    #[error("account {account} is frozen")]
    AccountFrozen { account: AccountId },
    #[error("account {account} is closed")]
    AccountClosed { account: AccountId },
    #[error("account {account} still has a balance, a pending transfer or a hold")]
    AccountNotEmpty { account: AccountId },
    #[error("pending transfer {pending} does not exist")]
    PendingNotFound { pending: PendingId },
    #[error("pending transfer {pending} is already {state:?}")]
    PendingAlreadyResolved {
        pending: PendingId,
        state: PendingState,
    },
    #[error("pending transfer {pending} has expired")]
    PendingExpired { pending: PendingId },
    #[error("hold {hold} does not exist")]
    HoldNotFound { hold: HoldId },
    #[error("hold {hold} is already {state:?}")]
    HoldAlreadyResolved { hold: HoldId, state: HoldState },
    #[error("capture of {requested} exceeds hold {hold} of {held}")]
    CaptureExceedsHold {
        hold: HoldId,
        held: Money,
        requested: Money,
    },
    #[error("transaction {transaction} does not exist")]
    TransactionNotFound { transaction: TransactionId },
    #[error("transaction {transaction} is already reversed")]
    AlreadyReversed { transaction: TransactionId },
    #[error("entries do not balance in {currency}")]
    Unbalanced { currency: Currency },
    #[error("a transaction needs at least two entries, got {count}")]
    TooFewEntries { count: usize },
    #[error(
        "limit {key} exceeded: cap {cap_minor}, used {used_minor}, requested {requested_minor}"
    )]
    LimitExceeded {
        key: String,
        cap_minor: i64,
        used_minor: i64,
        requested_minor: i64,
    },
    #[error(
        "account {account} would exceed its balance cap {cap}: balance {balance}, requested {requested}"
    )]
    BalanceCapExceeded {
        account: AccountId,
        cap: Money,
        balance: Money,
        requested: Money,
    },
    #[error("{kind} {id} was changed by another request")]
    DocumentConflict { kind: String, id: String },
    /// A refusal a service decided before the batch, stored under the request's key
    /// ([`Command::Refuse`](crate::ledger::Command::Refuse)); the service that made it reads
    /// it back as its own error.
    #[error("refused: {}", refusal.reason)]
    Refused {
        refusal: crate::ledger::apply::Refusal,
    },
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused { key: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("ledger queue is full")]
    Overloaded,
    #[error("ledger is shutting down")]
    ShuttingDown,
    #[error("internal storage error")]
    Storage,
    /// The database is unreachable or will not take writes now (failing over, restarting):
    /// retry with the same request id, which answers this request's outcome either way.
    #[error("the database is unavailable")]
    Unavailable,
    /// Stored data that does not decode: a bug or a damaged database, never the caller's fault.
    /// Like `Storage`, its text names no table, column or SQL (the detail is in the log).
    #[error("stored data is unreadable")]
    Corrupt,
}

impl LedgerError {
    /// Stable UPPER_SNAKE reason for callers and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LedgerError::UnknownAccount { .. } => "UNKNOWN_ACCOUNT",
            LedgerError::UnknownCurrency { .. } => "UNKNOWN_CURRENCY",
            LedgerError::InvalidAmount => "INVALID_AMOUNT",
            LedgerError::CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            LedgerError::AmountScale { .. } => "AMOUNT_SCALE",
            LedgerError::AmountNotPositive => "AMOUNT_NOT_POSITIVE",
            LedgerError::Overflow => "OVERFLOW",
            LedgerError::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            LedgerError::AccountFrozen { .. } => "ACCOUNT_FROZEN",
            LedgerError::AccountClosed { .. } => "ACCOUNT_CLOSED",
            LedgerError::AccountNotEmpty { .. } => "ACCOUNT_NOT_EMPTY",
            LedgerError::PendingNotFound { .. } => "PENDING_NOT_FOUND",
            LedgerError::PendingAlreadyResolved { .. } => "PENDING_ALREADY_RESOLVED",
            LedgerError::PendingExpired { .. } => "PENDING_EXPIRED",
            LedgerError::HoldNotFound { .. } => "HOLD_NOT_FOUND",
            LedgerError::HoldAlreadyResolved { .. } => "HOLD_ALREADY_RESOLVED",
            LedgerError::CaptureExceedsHold { .. } => "CAPTURE_EXCEEDS_HOLD",
            LedgerError::TransactionNotFound { .. } => "TRANSACTION_NOT_FOUND",
            LedgerError::AlreadyReversed { .. } => "ALREADY_REVERSED",
            LedgerError::Unbalanced { .. } => "UNBALANCED",
            LedgerError::TooFewEntries { .. } => "TOO_FEW_ENTRIES",
            LedgerError::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            LedgerError::BalanceCapExceeded { .. } => "BALANCE_CAP_EXCEEDED",
            LedgerError::DocumentConflict { .. } => "DOCUMENT_CONFLICT",
            LedgerError::Refused { .. } => "SERVICE_REFUSAL",
            LedgerError::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            LedgerError::InvalidRequest { .. } => "INVALID_REQUEST",
            LedgerError::Overloaded => "OVERLOADED",
            LedgerError::ShuttingDown => "SHUTTING_DOWN",
            LedgerError::Storage => "STORAGE",
            LedgerError::Unavailable => "DATABASE_UNAVAILABLE",
            LedgerError::Corrupt => "CORRUPT_DATA",
        }
    }

    /// Whether this refusal judges the request alone (malformed, `INVALID_ARGUMENT`), not the
    /// state it met: nothing was decided, so a corrected request may reuse the key.
    /// `InvalidRequest` is not among them yet: some of its checks read state (a posted amount
    /// beyond its pending), so its answer is stored and a replay answers the same.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            LedgerError::UnknownCurrency { .. }
                | LedgerError::InvalidAmount
                | LedgerError::AmountScale { .. }
                | LedgerError::AmountNotPositive
                | LedgerError::Unbalanced { .. }
                | LedgerError::TooFewEntries { .. }
        )
    }

    /// Whether this failure is a final answer to the request, stored under its idempotency key.
    /// Transient failures (queue full, shutdown, storage) are not: a retry may succeed; nor are
    /// malformed requests ([`LedgerError::is_invalid_argument`]).
    pub fn is_stored_outcome(&self) -> bool {
        !self.is_invalid_argument()
            && !matches!(
                self,
                LedgerError::Overloaded
                | LedgerError::ShuttingDown
                | LedgerError::Storage
                | LedgerError::Unavailable
                | LedgerError::Corrupt
                // Lost a race on a document: the same request may succeed against the new state.
                | LedgerError::DocumentConflict { .. }
            )
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> LedgerError {
        LedgerError::InvalidRequest {
            reason: reason.into(),
        }
    }
}

impl From<MoneyError> for LedgerError {
    fn from(e: MoneyError) -> Self {
        match e {
            MoneyError::UnknownCurrency(code) => LedgerError::UnknownCurrency { code },
            MoneyError::AmountScale { currency, scale } => {
                LedgerError::AmountScale { currency, scale }
            }
            MoneyError::AmountNotPositive => LedgerError::AmountNotPositive,
            MoneyError::Overflow => LedgerError::Overflow,
            MoneyError::Malformed => LedgerError::InvalidAmount,
        }
    }
}

impl From<super::store::StorageError> for LedgerError {
    fn from(e: super::store::StorageError) -> Self {
        // The detail (which may name tables or SQL) stays in the log.
        tracing::error!(error = ?e, "ledger storage failure");
        if e.is_corrupt() {
            LedgerError::Corrupt
        } else if e.is_unavailable() {
            LedgerError::Unavailable
        } else {
            LedgerError::Storage
        }
    }
}
