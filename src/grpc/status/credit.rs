//! CreditError → status.

use tonic::{Code, Status};

use super::{error_status, text_status};
use crate::credit::CreditError;

impl From<CreditError> for Status {
    fn from(error: CreditError) -> Status {
        let message = error.to_string();
        let fp = Code::FailedPrecondition;
        match error {
            CreditError::InvalidArgument { field, .. } => error_status(
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                message,
                [("field", field.to_owned())],
            ),
            CreditError::Text { field, refusal } => text_status(field, refusal, message),
            CreditError::RateAboveCap { requested, cap } => error_status(
                Code::InvalidArgument,
                "RATE_ABOVE_CAP",
                message,
                [
                    ("field", "annual_rate".to_owned()),
                    ("requested", requested.to_string()),
                    ("cap", cap.to_string()),
                ],
            ),
            CreditError::LineNotFound { line } => error_status(
                Code::NotFound,
                "CREDIT_LINE_NOT_FOUND",
                message,
                [("credit_line_id", line)],
            ),
            CreditError::LineExists { account, line } => error_status(
                Code::AlreadyExists,
                "CREDIT_LINE_ALREADY_EXISTS",
                message,
                [("account_id", account), ("credit_line_id", line)],
            ),
            CreditError::LineFrozen { line } => error_status(
                fp,
                "CREDIT_LINE_FROZEN",
                message,
                [("credit_line_id", line)],
            ),
            CreditError::LineOverdue {
                line,
                overdue_principal,
            } => error_status(
                fp,
                "CREDIT_LINE_OVERDUE",
                message,
                [
                    ("credit_line_id", line),
                    ("overdue_principal", overdue_principal.to_decimal_string()),
                    ("currency", overdue_principal.currency.code().to_owned()),
                ],
            ),
            CreditError::RepaymentNotFound { line, lookup } => error_status(
                Code::NotFound,
                "REPAYMENT_NOT_FOUND",
                message,
                [("credit_line_id", line), ("lookup", lookup)],
            ),
            CreditError::NotLineOwner { line, account } => error_status(
                Code::PermissionDenied,
                "CREDIT_LINE_NOT_OWNED",
                message,
                [("credit_line_id", line), ("account_id", account)],
            ),
            CreditError::LimitExceeded {
                line,
                available,
                requested,
            } => error_status(
                fp,
                "LIMIT_EXCEEDED",
                message,
                [
                    ("limit_rule", "CREDIT_LINE".to_owned()),
                    ("credit_line_id", line),
                    ("remaining", available.to_decimal_string()),
                    ("requested", requested.to_decimal_string()),
                    ("currency", available.currency.code().to_owned()),
                ],
            ),
            CreditError::RepaymentExceedsOutstanding {
                line,
                outstanding,
                requested,
            } => error_status(
                fp,
                "REPAYMENT_EXCEEDS_OUTSTANDING",
                message,
                [
                    ("credit_line_id", line),
                    ("outstanding", outstanding.to_decimal_string()),
                    ("requested", requested.to_decimal_string()),
                ],
            ),
            CreditError::DrawdownNotFound { line, drawdown } => error_status(
                Code::NotFound,
                "CREDIT_DRAWDOWN_NOT_FOUND",
                message,
                [("credit_line_id", line), ("drawdown_id", drawdown)],
            ),
            CreditError::DrawdownAlreadySplit { line, drawdown } => error_status(
                fp,
                "DRAWDOWN_ALREADY_SPLIT",
                message,
                [("credit_line_id", line), ("drawdown_id", drawdown)],
            ),
            CreditError::DrawdownRepaid { line, drawdown } => error_status(
                fp,
                "DRAWDOWN_REPAID",
                message,
                [("credit_line_id", line), ("drawdown_id", drawdown)],
            ),
            CreditError::AccrualOutOfOrder { date, .. } => error_status(
                fp,
                "BUSINESS_DATE_OUT_OF_ORDER",
                message,
                [("business_date", crate::yields::format_date(date))],
            ),
            CreditError::Account(e) => Status::from(*e),
            CreditError::Ledger(e) => Status::from(e),
        }
    }
}
