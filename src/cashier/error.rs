//! Why the cashier refused a request. The gRPC layer maps every variant to a status with a
//! stable reason.
//!
//! Flat: a lower layer's refusal is wrapped at most once, and converted in one place
//! ([`From<AccountError>`]): the account service's ledger errors become
//! [`CashierError::Ledger`], its invalid arguments the cashier's own, and the rest
//! [`CashierError::Account`] — so `Account` never holds an `AccountError::Ledger`.

use crate::{
    account::AccountError, credit::CreditError, ledger::LedgerError, text::TextRefusal,
    yields::YieldError,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CashierError {
    /// A field is missing or malformed (INVALID_ARGUMENT).
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// A free-text field breaks the shared text rules (see [`crate::text`]).
    #[error("{field}: {refusal}")]
    Text {
        field: &'static str,
        refusal: TextRefusal,
    },
    #[error("merchant {merchant} does not exist")]
    MerchantNotFound { merchant: String },
    #[error("order {order} does not exist")]
    OrderNotFound { order: String },
    #[error("refund {refund} does not exist")]
    RefundNotFound { refund: String },
    /// The caller does not act for this merchant.
    #[error("caller {caller} does not act for merchant {merchant}")]
    MerchantNotPermitted { caller: String, merchant: String },
    #[error("merchant {merchant} already has an order numbered {merchant_order_no}")]
    DuplicateMerchantOrderNo {
        merchant: String,
        merchant_order_no: String,
    },
    #[error("merchant {merchant} already has a refund numbered {merchant_refund_no}")]
    DuplicateMerchantRefundNo {
        merchant: String,
        merchant_refund_no: String,
    },
    #[error("order {order} is closed")]
    OrderClosed { order: String },
    #[error("order {order} expired unpaid")]
    OrderExpired { order: String },
    #[error("order {order} is already paid or being paid")]
    OrderAlreadyPaid { order: String },
    #[error("order {order} is not paid")]
    OrderNotPaid { order: String },
    #[error("refund of {requested} exceeds what is left to refund of order {order} ({refundable})")]
    RefundExceedsPaid {
        order: String,
        paid: String,
        refunded: String,
        refundable: String,
        requested: String,
    },
    #[error("merchant {merchant} is not signed for {method} in scenario {scenario}")]
    ProductNotSigned {
        merchant: String,
        method: &'static str,
        scenario: &'static str,
    },
    #[error("payment code is not one this bank issued")]
    PaymentCodeInvalid,
    #[error("payment code has expired")]
    PaymentCodeExpired,
    #[error("payment code was already used")]
    PaymentCodeUsed,
    /// Another request changed the same order at the same moment; retry with a new request id.
    #[error("{what} was changed by a concurrent request; read it again")]
    Conflict { what: String },
    /// Refused by the account service (never its `Ledger` variant; see `From<AccountError>`).
    #[error(transparent)]
    Account(AccountError),
    /// Refused by a yield rule while paying with yield: no such product, a closed one, too
    /// few shares, the FAST cap (never its `Ledger`, `Account` or `InvalidArgument` variants;
    /// see `From<YieldError>`).
    #[error(transparent)]
    Yield(YieldError),
    /// Refused by a credit rule while paying with credit: no such line, a frozen one, not the
    /// payer's, its limit (never its `Ledger`, `Account` or `InvalidArgument` variants; see
    /// `From<CreditError>`).
    #[error(transparent)]
    Credit(CreditError),
    /// Refused by the ledger (funds, limits, a document changed meanwhile, shutting down …).
    #[error(transparent)]
    Ledger(LedgerError),
    /// A stored document or event does not decode: a bug or a damaged database, never the
    /// caller's fault. The detail goes to the log only.
    #[error("stored {kind} {id} does not decode")]
    Corrupt { kind: String, id: String },
}

impl From<AccountError> for CashierError {
    fn from(e: AccountError) -> Self {
        match e {
            // A refusal one of the services claimed before a batch, read back.
            AccountError::Ledger(e @ LedgerError::Refused { .. }) => CashierError::from_ledger(e),
            AccountError::Ledger(e) => CashierError::Ledger(e),
            AccountError::InvalidArgument { field, reason } => {
                CashierError::InvalidArgument { field, reason }
            }
            AccountError::Text { field, refusal } => CashierError::Text { field, refusal },
            e @ (AccountError::KindNotOpenable { .. }
            | AccountError::AccountNotFound { .. }
            | AccountError::HoldNotFound { .. }
            | AccountError::OutOfScope { .. }
            | AccountError::TransferToSelf
            | AccountError::MasterNotPostable { .. }
            | AccountError::NoBoundCard { .. }
            | AccountError::InvalidParent { .. }
            | AccountError::LimitExceeded { .. }
            | AccountError::InvalidPageToken
            | AccountError::ClearingDeclined { .. }
            | AccountError::Corrupt { .. }) => CashierError::Account(e),
        }
    }
}

impl From<YieldError> for CashierError {
    fn from(e: YieldError) -> Self {
        match e {
            YieldError::Ledger(e) => CashierError::Ledger(e),
            YieldError::Account(e) => CashierError::from(*e),
            YieldError::InvalidArgument { field, reason } => {
                CashierError::InvalidArgument { field, reason }
            }
            YieldError::Text { field, refusal } => CashierError::Text { field, refusal },
            e @ (YieldError::ProductNotFound { .. }
            | YieldError::ProductExists { .. }
            | YieldError::ProductNotOpen { .. }
            | YieldError::BelowMinimum { .. }
            | YieldError::InsufficientShares { .. }
            | YieldError::FastCapExceeded { .. }
            | YieldError::RateAlreadyPublished { .. }
            | YieldError::RateNotPublished { .. }
            | YieldError::NotABusinessDate { .. }
            | YieldError::AccrualOutOfOrder { .. }
            | YieldError::HoldingNotFound { .. }
            | YieldError::SweepNotFound { .. }
            | YieldError::InvalidPageToken) => CashierError::Yield(e),
        }
    }
}

impl From<CreditError> for CashierError {
    fn from(e: CreditError) -> Self {
        match e {
            CreditError::Ledger(e) => CashierError::Ledger(e),
            CreditError::Account(e) => CashierError::from(*e),
            CreditError::InvalidArgument { field, reason } => {
                CashierError::InvalidArgument { field, reason }
            }
            CreditError::Text { field, refusal } => CashierError::Text { field, refusal },
            e @ (CreditError::RateAboveCap { .. }
            | CreditError::AccrualOutOfOrder { .. }
            | CreditError::LineNotFound { .. }
            | CreditError::LineExists { .. }
            | CreditError::LineFrozen { .. }
            | CreditError::LineOverdue { .. }
            | CreditError::RepaymentNotFound { .. }
            | CreditError::NotLineOwner { .. }
            | CreditError::LimitExceeded { .. }
            | CreditError::RepaymentExceedsOutstanding { .. }
            | CreditError::DrawdownNotFound { .. }
            | CreditError::DrawdownAlreadySplit { .. }
            | CreditError::DrawdownRepaid { .. }) => CashierError::Credit(e),
        }
    }
}

impl CashierError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> CashierError {
        CashierError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<crate::ledger::store::StorageError> for CashierError {
    fn from(e: crate::ledger::store::StorageError) -> Self {
        CashierError::Ledger(LedgerError::from(e))
    }
}

impl From<LedgerError> for CashierError {
    fn from(e: LedgerError) -> Self {
        CashierError::Ledger(e)
    }
}

impl CashierError {
    /// A stored record of `kind` and `id` that does not decode.
    pub fn corrupt(kind: &str, id: impl Into<String>) -> CashierError {
        CashierError::Corrupt {
            kind: kind.to_owned(),
            id: id.into(),
        }
    }
}
