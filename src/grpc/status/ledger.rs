//! LedgerError → status.

use tonic::{Code, Status};

use super::error_status;
use crate::ledger::LedgerError;

// Over 70 lines: an exhaustive match, one arm per LedgerError variant (a new one must be mapped).
impl From<LedgerError> for Status {
    fn from(error: LedgerError) -> Status {
        let reason = error.reason();
        let message = error.to_string();
        let (code, metadata): (Code, Vec<(&str, String)>) = match &error {
            LedgerError::UnknownAccount { account } => {
                return error_status(
                    Code::NotFound,
                    "ACCOUNT_NOT_FOUND",
                    message,
                    [("account_id", account.to_string())],
                );
            }
            LedgerError::UnknownCurrency { code } => {
                (Code::InvalidArgument, vec![("currency", code.clone())])
            }
            LedgerError::InvalidAmount
            | LedgerError::AmountNotPositive
            | LedgerError::Unbalanced { .. }
            | LedgerError::TooFewEntries { .. }
            | LedgerError::InvalidRequest { .. } => (Code::InvalidArgument, vec![]),
            LedgerError::AmountScale { currency, scale } => (
                Code::InvalidArgument,
                vec![
                    ("currency", currency.code().to_owned()),
                    ("scale", scale.to_string()),
                ],
            ),
            LedgerError::CurrencyMismatch {
                account,
                expected,
                actual,
            } => (
                Code::FailedPrecondition,
                vec![
                    ("account_id", account.to_string()),
                    ("expected", expected.code().to_owned()),
                    ("actual", actual.code().to_owned()),
                ],
            ),
            LedgerError::Overflow => (Code::OutOfRange, vec![]),
            LedgerError::InsufficientFunds {
                account,
                available,
                requested,
            } => (
                Code::FailedPrecondition,
                vec![
                    ("account_id", account.to_string()),
                    ("currency", available.currency.code().to_owned()),
                    ("available", available.to_decimal_string()),
                    ("requested", requested.to_decimal_string()),
                ],
            ),
            LedgerError::AccountFrozen { account }
            | LedgerError::AccountClosed { account }
            | LedgerError::AccountNotEmpty { account } => (
                Code::FailedPrecondition,
                vec![("account_id", account.to_string())],
            ),
            LedgerError::PendingNotFound { pending } => {
                (Code::NotFound, vec![("pending_id", pending.to_string())])
            }
            LedgerError::PendingAlreadyResolved { pending, .. }
            | LedgerError::PendingExpired { pending } => (
                Code::FailedPrecondition,
                vec![("pending_id", pending.to_string())],
            ),
            LedgerError::HoldNotFound { hold } => {
                (Code::NotFound, vec![("hold_id", hold.to_string())])
            }
            LedgerError::HoldAlreadyResolved { hold, .. } => (
                Code::FailedPrecondition,
                vec![("hold_id", hold.to_string())],
            ),
            LedgerError::CaptureExceedsHold {
                hold,
                held,
                requested,
            } => (
                Code::FailedPrecondition,
                vec![
                    ("hold_id", hold.to_string()),
                    ("held", held.to_decimal_string()),
                    ("requested", requested.to_decimal_string()),
                ],
            ),
            LedgerError::TransactionNotFound { transaction } => (
                Code::NotFound,
                vec![("transaction_id", transaction.to_string())],
            ),
            LedgerError::AlreadyReversed { transaction } => (
                Code::FailedPrecondition,
                vec![("transaction_id", transaction.to_string())],
            ),
            LedgerError::LimitExceeded { key, .. } => {
                (Code::FailedPrecondition, vec![("limit_key", key.clone())])
            }
            LedgerError::BalanceCapExceeded { account, cap, .. } => (
                Code::FailedPrecondition,
                vec![
                    ("account_id", account.to_string()),
                    ("cap", cap.to_decimal_string()),
                ],
            ),
            LedgerError::DocumentConflict { kind, id } => (
                Code::Aborted,
                vec![("document_kind", kind.clone()), ("document_id", id.clone())],
            ),
            LedgerError::IdempotencyKeyReused { key } => {
                (Code::AlreadyExists, vec![("request_id", key.clone())])
            }
            LedgerError::Overloaded => (Code::ResourceExhausted, vec![]),
            LedgerError::ShuttingDown => (Code::Unavailable, vec![]),
            LedgerError::Storage => {
                // The detail is in the log; callers learn only that it was ours, not theirs.
                return error_status(
                    Code::Internal,
                    "INTERNAL",
                    "internal error; retry with the same request id (it answers this request's \
                     outcome, whether or not it was applied)",
                    [],
                );
            }
            LedgerError::Unavailable => {
                return error_status(
                    Code::Unavailable,
                    "DATABASE_UNAVAILABLE",
                    "the database is unavailable (restarting or failing over); retry with the \
                     same request id (it answers this request's outcome, whether or not it was \
                     applied)",
                    [],
                );
            }
            LedgerError::Refused { .. } => {
                // A service reads its stored refusals back as its own errors; one that reaches
                // the edge undecoded is ours (the body may not be for this caller's eyes as is).
                tracing::error!("a stored service refusal reached the edge undecoded");
                return error_status(
                    Code::Internal,
                    "CORRUPT_DATA",
                    "internal error: stored data is unreadable",
                    [],
                );
            }
            LedgerError::Corrupt => {
                // Stored data does not decode: ours to repair, not the caller's; no detail leaves.
                return error_status(
                    Code::Internal,
                    "CORRUPT_DATA",
                    "internal error: stored data is unreadable",
                    [],
                );
            }
        };
        error_status(code, reason, message, metadata)
    }
}
