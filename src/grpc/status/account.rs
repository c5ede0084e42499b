//! AccountError → status.

use tonic::{Code, Status};

use super::{error_status, text_status};
use crate::account::AccountError;

// Over 70 lines: an exhaustive match, one arm per AccountError variant (a new one must be mapped).
impl From<AccountError> for Status {
    fn from(error: AccountError) -> Status {
        let message = error.to_string();
        match error {
            AccountError::InvalidArgument { field, .. } => error_status(
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                message,
                [("field", field.to_owned())],
            ),
            AccountError::Text { field, refusal } => text_status(field, refusal, message),
            AccountError::KindNotOpenable { kind } => error_status(
                Code::InvalidArgument,
                "KIND_NOT_OPENABLE",
                message,
                [("kind", kind.to_owned())],
            ),
            AccountError::AccountNotFound { account } => error_status(
                Code::NotFound,
                "ACCOUNT_NOT_FOUND",
                message,
                [("account_id", account)],
            ),
            AccountError::HoldNotFound { hold } => error_status(
                Code::NotFound,
                "HOLD_NOT_FOUND",
                message,
                [("hold_id", hold)],
            ),
            AccountError::OutOfScope { caller, account } => error_status(
                Code::PermissionDenied,
                "ACCOUNT_NOT_IN_SCOPE",
                message,
                [("caller", caller), ("account_id", account.to_string())],
            ),
            AccountError::TransferToSelf => {
                error_status(Code::InvalidArgument, "TRANSFER_TO_SELF", message, [])
            }
            AccountError::MasterNotPostable { account } => error_status(
                Code::FailedPrecondition,
                "MASTER_ACCOUNT_NOT_POSTABLE",
                message,
                [("account_id", account.to_string())],
            ),
            AccountError::NoBoundCard { account } => error_status(
                Code::FailedPrecondition,
                "NO_BOUND_CARD",
                message,
                [("account_id", account.to_string())],
            ),
            AccountError::InvalidParent { parent, currency } => error_status(
                Code::FailedPrecondition,
                "INVALID_PARENT",
                message,
                [
                    ("parent_account_id", parent.to_string()),
                    ("currency", currency),
                ],
            ),
            AccountError::LimitExceeded {
                rule,
                window,
                period,
                limit,
                used,
                requested,
                remaining,
            } => {
                let mut metadata = vec![
                    ("limit_rule", rule.name().to_owned()),
                    ("window", window.name().to_owned()),
                    ("period", period),
                    ("limit", limit.to_string()),
                    ("used", used.to_string()),
                    ("requested", requested.to_string()),
                    ("remaining", remaining.to_string()),
                ];
                if let Some(currency) = limit.currency() {
                    metadata.push(("currency", currency.to_owned()));
                }
                error_status(
                    Code::FailedPrecondition,
                    "LIMIT_EXCEEDED",
                    message,
                    metadata,
                )
            }
            AccountError::InvalidPageToken => {
                error_status(Code::InvalidArgument, "INVALID_PAGE_TOKEN", message, [])
            }
            AccountError::ClearingDeclined { network, .. } => error_status(
                Code::FailedPrecondition,
                "CLEARING_DECLINED",
                message,
                [("network", network.to_owned())],
            ),
            // The detail is logged where the error is made; the caller learns only that stored
            // data is damaged.
            AccountError::Corrupt { .. } => error_status(
                Code::Internal,
                "CORRUPT_DATA",
                "stored account data is corrupt",
                [],
            ),
            AccountError::Ledger(e) => Status::from(e),
        }
    }
}
