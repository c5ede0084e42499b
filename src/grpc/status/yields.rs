//! YieldError → status.

use tonic::{Code, Status};

use super::{error_status, text_status};
use crate::yields::{YieldError, format_date};

impl From<YieldError> for Status {
    fn from(error: YieldError) -> Status {
        let message = error.to_string();
        let fp = Code::FailedPrecondition;
        match error {
            YieldError::InvalidArgument { field, .. } => error_status(
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                message,
                [("field", field.to_owned())],
            ),
            YieldError::Text { field, refusal } => text_status(field, refusal, message),
            YieldError::ProductNotFound { product } => error_status(
                Code::NotFound,
                "PRODUCT_NOT_FOUND",
                message,
                [("product_id", product)],
            ),
            YieldError::ProductExists { product } => error_status(
                Code::AlreadyExists,
                "PRODUCT_ALREADY_EXISTS",
                message,
                [("product_id", product)],
            ),
            YieldError::ProductNotOpen { product, status } => error_status(
                fp,
                "PRODUCT_NOT_OPEN",
                message,
                [("product_id", product), ("status", status.to_owned())],
            ),
            YieldError::BelowMinimum { minimum } => error_status(
                fp,
                "BELOW_MINIMUM_SUBSCRIPTION",
                message,
                [
                    ("minimum", minimum.to_decimal_string()),
                    ("currency", minimum.currency.code().to_owned()),
                ],
            ),
            YieldError::InsufficientShares { held, requested } => error_status(
                fp,
                "INSUFFICIENT_SHARES",
                message,
                [
                    ("held", held.to_decimal_string()),
                    ("requested", requested.to_decimal_string()),
                ],
            ),
            YieldError::FastCapExceeded {
                date,
                limit,
                used,
                requested,
                remaining,
            } => error_status(
                fp,
                "LIMIT_EXCEEDED",
                message,
                [
                    ("limit_rule", "YIELD_FAST_REDEMPTION".to_owned()),
                    ("window", "DAY".to_owned()),
                    ("period", format_date(date)),
                    ("limit", limit.to_decimal_string()),
                    ("used", used.to_decimal_string()),
                    ("requested", requested.to_decimal_string()),
                    ("remaining", remaining.to_decimal_string()),
                    ("currency", limit.currency.code().to_owned()),
                ],
            ),
            YieldError::RateAlreadyPublished {
                product,
                date,
                published,
            } => error_status(
                fp,
                "RATE_ALREADY_PUBLISHED",
                message,
                [
                    ("product_id", product),
                    ("business_date", format_date(date)),
                    ("published", published),
                ],
            ),
            YieldError::RateNotPublished { product, date } => error_status(
                fp,
                "RATE_NOT_PUBLISHED",
                message,
                [
                    ("product_id", product),
                    ("business_date", format_date(date)),
                ],
            ),
            YieldError::NotABusinessDate { date } => error_status(
                fp,
                "NOT_A_BUSINESS_DATE",
                message,
                [("business_date", format_date(date))],
            ),
            YieldError::AccrualOutOfOrder { date, .. } => error_status(
                fp,
                "BUSINESS_DATE_OUT_OF_ORDER",
                message,
                [("business_date", format_date(date))],
            ),
            YieldError::HoldingNotFound { account, product } => error_status(
                Code::NotFound,
                "HOLDING_NOT_FOUND",
                message,
                [("account_id", account), ("product_id", product)],
            ),
            YieldError::SweepNotFound { account } => error_status(
                Code::NotFound,
                "AUTO_SWEEP_NOT_FOUND",
                message,
                [("account_id", account)],
            ),
            YieldError::InvalidPageToken => {
                error_status(Code::InvalidArgument, "INVALID_PAGE_TOKEN", message, [])
            }
            YieldError::Account(e) => Status::from(*e),
            YieldError::Ledger(e) => Status::from(e),
        }
    }
}
