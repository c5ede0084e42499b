//! CashierError → status.

use tonic::{Code, Status};

use super::{error_status, text_status};
use crate::cashier::CashierError;

// Over 70 lines: an exhaustive match, one arm per CashierError variant (a new one must be mapped).
impl From<CashierError> for Status {
    fn from(error: CashierError) -> Status {
        let message = error.to_string();
        match error {
            CashierError::InvalidArgument { field, .. } => error_status(
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                message,
                [("field", field.to_owned())],
            ),
            CashierError::Text { field, refusal } => text_status(field, refusal, message),
            CashierError::MerchantNotFound { merchant } => error_status(
                Code::NotFound,
                "MERCHANT_NOT_FOUND",
                message,
                [("merchant_id", merchant)],
            ),
            CashierError::OrderNotFound { order } => error_status(
                Code::NotFound,
                "ORDER_NOT_FOUND",
                message,
                [("order_id", order)],
            ),
            CashierError::RefundNotFound { refund } => error_status(
                Code::NotFound,
                "REFUND_NOT_FOUND",
                message,
                [("refund_id", refund)],
            ),
            CashierError::MerchantNotPermitted { caller, merchant } => error_status(
                Code::PermissionDenied,
                "MERCHANT_NOT_PERMITTED",
                message,
                [("caller", caller), ("merchant_id", merchant)],
            ),
            CashierError::DuplicateMerchantOrderNo {
                merchant,
                merchant_order_no,
            } => error_status(
                Code::AlreadyExists,
                "DUPLICATE_MERCHANT_ORDER_NO",
                message,
                [
                    ("merchant_id", merchant),
                    ("merchant_order_no", merchant_order_no),
                ],
            ),
            CashierError::DuplicateMerchantRefundNo {
                merchant,
                merchant_refund_no,
            } => error_status(
                Code::AlreadyExists,
                "DUPLICATE_MERCHANT_REFUND_NO",
                message,
                [
                    ("merchant_id", merchant),
                    ("merchant_refund_no", merchant_refund_no),
                ],
            ),
            CashierError::OrderClosed { order } => error_status(
                Code::FailedPrecondition,
                "ORDER_CLOSED",
                message,
                [("order_id", order)],
            ),
            CashierError::OrderExpired { order } => error_status(
                Code::FailedPrecondition,
                "ORDER_EXPIRED",
                message,
                [("order_id", order)],
            ),
            CashierError::OrderAlreadyPaid { order } => error_status(
                Code::FailedPrecondition,
                "ORDER_ALREADY_PAID",
                message,
                [("order_id", order)],
            ),
            CashierError::OrderNotPaid { order } => error_status(
                Code::FailedPrecondition,
                "ORDER_NOT_PAID",
                message,
                [("order_id", order)],
            ),
            CashierError::RefundExceedsPaid {
                order,
                paid,
                refunded,
                refundable,
                requested,
            } => error_status(
                Code::FailedPrecondition,
                "REFUND_EXCEEDS_PAID",
                message,
                [
                    ("order_id", order),
                    ("paid", paid),
                    ("refunded", refunded),
                    ("refundable", refundable),
                    ("requested", requested),
                ],
            ),
            CashierError::ProductNotSigned {
                merchant,
                method,
                scenario,
            } => error_status(
                Code::FailedPrecondition,
                "PRODUCT_NOT_SIGNED",
                message,
                [
                    ("merchant_id", merchant),
                    ("method", method.to_owned()),
                    ("scenario", scenario.to_owned()),
                ],
            ),
            CashierError::PaymentCodeInvalid => error_status(
                Code::FailedPrecondition,
                "PAYMENT_CODE_INVALID",
                message,
                [],
            ),
            CashierError::PaymentCodeExpired => error_status(
                Code::FailedPrecondition,
                "PAYMENT_CODE_EXPIRED",
                message,
                [],
            ),
            CashierError::PaymentCodeUsed => {
                error_status(Code::FailedPrecondition, "PAYMENT_CODE_USED", message, [])
            }
            CashierError::Conflict { .. } => {
                error_status(Code::Aborted, "CONCURRENT_MODIFICATION", message, [])
            }
            CashierError::Yield(e) => Status::from(e),
            CashierError::Credit(e) => Status::from(e),
            CashierError::Account(e) => Status::from(e),
            CashierError::Ledger(e) => Status::from(e),
            CashierError::Corrupt { .. } => {
                // The detail is in the log; callers learn only that it was ours, not theirs.
                error_status(
                    Code::Internal,
                    "CORRUPT_DATA",
                    "internal error: stored data could not be read",
                    [],
                )
            }
        }
    }
}
