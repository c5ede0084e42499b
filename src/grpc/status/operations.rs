//! OperationsError and AdjustError → status.

use tonic::{Code, Status};

use super::{error_status, text_status};
use crate::eod::{
    EodError, adjust::AdjustError, operations::OperationsError, reconcile::PeriodRefusal,
};

/// Stored data that does not read back: the detail goes to the log, the caller learns only
/// that it was ours.
fn corrupt(detail: &str) -> Status {
    tracing::error!(detail, "stored end-of-day data could not be read");
    error_status(
        Code::Internal,
        "CORRUPT_DATA",
        "internal error: stored data could not be read",
        [],
    )
}

impl From<OperationsError> for Status {
    fn from(error: OperationsError) -> Status {
        let message = error.to_string();
        match error {
            OperationsError::InvalidArgument { field, .. } => error_status(
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                message,
                [("field", field.to_owned())],
            ),
            OperationsError::Period { field, refusal } => {
                let reason = match refusal {
                    PeriodRefusal::UnknownNetwork(_) | PeriodRefusal::NotAPeriod(_) => {
                        "INVALID_ARGUMENT"
                    }
                    PeriodRefusal::NotByBatch(_) => "NETWORK_RECONCILES_BY_DATE",
                };
                error_status(
                    Code::InvalidArgument,
                    reason,
                    message,
                    [("field", field.to_owned())],
                )
            }
            OperationsError::ReconciliationNotFound { id } => error_status(
                Code::NotFound,
                "RECONCILIATION_NOT_FOUND",
                message,
                [("reconciliation", id)],
            ),
            OperationsError::StatementNotFound { merchant_id, date } => error_status(
                Code::NotFound,
                "SETTLEMENT_STATEMENT_NOT_FOUND",
                message,
                [("merchant_id", merchant_id), ("business_date", date)],
            ),
            OperationsError::Adjust(e) => Status::from(e),
            OperationsError::Eod(e) => Status::from(e),
            OperationsError::Cashier(e) => Status::from(*e),
            OperationsError::Ledger(e) => Status::from(e),
        }
    }
}

impl From<AdjustError> for Status {
    fn from(error: AdjustError) -> Status {
        let message = error.to_string();
        let fp = Code::FailedPrecondition;
        match error {
            AdjustError::Text { field, refusal } => text_status(field, refusal, message),
            AdjustError::NotStored { id } => error_status(
                Code::NotFound,
                "RECONCILIATION_NOT_FOUND",
                message,
                [("reconciliation", id)],
            ),
            AdjustError::NoSuchBreak { id, reference } => error_status(
                Code::NotFound,
                "BREAK_NOT_FOUND",
                message,
                [("reconciliation", id), ("reference", reference)],
            ),
            AdjustError::AlreadyAdjusted {
                id,
                reference,
                operator,
                ..
            } => error_status(
                fp,
                "BREAK_ALREADY_ADJUSTED",
                message,
                [
                    ("reconciliation", id),
                    ("reference", reference),
                    ("operator", operator),
                ],
            ),
            AdjustError::NothingToAdjust { id, reference } => error_status(
                fp,
                "BREAK_LEAVES_NOTHING",
                message,
                [("reconciliation", id), ("reference", reference)],
            ),
            AdjustError::Conflict { id } => error_status(
                Code::Aborted,
                "CONCURRENT_MODIFICATION",
                message,
                [("reconciliation", id)],
            ),
            AdjustError::Corrupt(detail) => corrupt(&detail),
            AdjustError::Account(e) => Status::from(*e),
            AdjustError::Ledger(e) => Status::from(e),
        }
    }
}

impl From<EodError> for Status {
    fn from(error: EodError) -> Status {
        match error {
            EodError::Ledger(e) => Status::from(e),
            EodError::Corrupt(detail) => corrupt(&detail),
        }
    }
}
