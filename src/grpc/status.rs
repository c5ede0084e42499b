//! The one mapping from refusals and domain errors to gRPC status. Every status carries a
//! `google.rpc.ErrorInfo` with a stable machine-readable `reason` and the domain `paygate.bank`.
//! Matches are exhaustive: a new error variant does not compile until it is mapped here.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    account::AccountError,
    cashier::CashierError,
    grpc::gate::Refusal,
    ledger::LedgerError,
    yields::{YieldError, format_date},
};

/// `ErrorInfo.domain` of every paygate error.
pub const ERROR_DOMAIN: &str = "paygate.bank";

/// A status with its `ErrorInfo` detail.
pub fn error_status<'a>(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (&'a str, String)>,
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::NoClientCertificate => error_status(
                Code::Unauthenticated,
                "CLIENT_CERTIFICATE_REQUIRED",
                "a client certificate is required",
                [],
            ),
            Refusal::UnknownCaller => error_status(
                Code::PermissionDenied,
                "CALLER_UNKNOWN",
                "the client certificate does not map to a configured caller",
                [],
            ),
            Refusal::NotGranted { caller, method } => error_status(
                Code::PermissionDenied,
                "METHOD_NOT_GRANTED",
                format!("caller {caller} may not call {method}"),
                [("caller", caller.to_string()), ("method", method)],
            ),
            Refusal::RateLimited { caller, rate_per_s } => error_status(
                Code::ResourceExhausted,
                "RATE_LIMITED",
                format!("caller {caller} exceeded its rate limit of {rate_per_s} calls/s"),
                [
                    ("caller", caller.to_string()),
                    ("rate_per_s", rate_per_s.to_string()),
                ],
            ),
            Refusal::Overloaded { inflight_calls_max } => error_status(
                Code::ResourceExhausted,
                "OVERLOADED",
                format!(
                    "the gateway is at its limit of {inflight_calls_max} calls in flight; retry with backoff"
                ),
                [("inflight_calls_max", inflight_calls_max.to_string())],
            ),
        }
    }
}

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
            CashierError::MethodNotAvailable { method, .. } => error_status(
                Code::FailedPrecondition,
                "METHOD_NOT_AVAILABLE",
                message,
                [("method", method.to_owned())],
            ),
            CashierError::Conflict { .. } => {
                error_status(Code::Aborted, "CONCURRENT_MODIFICATION", message, [])
            }
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
                    "internal error; the request was not applied and may be retried",
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
