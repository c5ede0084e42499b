//! Which cashier refusals claim a request's key (the rule of [`crate::account`]'s `claim`
//! module, applied to the checks the cashier makes before its batch): a merchant, order or
//! payment code not found, an order closed, expired, already paid or not paid, a refund beyond
//! what is left, a product the merchant has not signed, a used or expired code — and the
//! account and yield services' own pre-batch refusals met while paying.

use serde::{Deserialize, Serialize};

use super::*;
use crate::{
    credit::CreditError,
    ledger::{Observed, Refusal},
    yields::YieldError,
};

/// The service whose refusals [`CashierError::refusal`] encodes.
const REFUSAL_SERVICE: &str = "cashier";

/// A cashier refusal decided before the batch, as stored under the request's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "SCREAMING_SNAKE_CASE")]
enum Stored {
    MerchantNotFound {
        merchant: String,
    },
    OrderNotFound {
        order: String,
    },
    OrderClosed {
        order: String,
    },
    OrderExpired {
        order: String,
    },
    OrderAlreadyPaid {
        order: String,
    },
    OrderNotPaid {
        order: String,
    },
    RefundExceedsPaid {
        order: String,
        paid: String,
        refunded: String,
        refundable: String,
        requested: String,
    },
    ProductNotSigned {
        merchant: String,
        method: Method,
        scenario: Scenario,
    },
    PaymentCodeInvalid,
    PaymentCodeExpired,
    PaymentCodeUsed,
}

/// An enum of the model from the text its `as_str` gives (the same as its serde name).
fn named<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

impl CashierError {
    /// The stored form of this refusal when it claims the request's key; `None` when it does
    /// not (malformed, outside the caller's grant, a lost race, transient — or a ledger
    /// refusal, which the batch stored itself).
    pub fn refusal(&self) -> Option<Refusal> {
        let order = |order: &String| order.clone();
        let stored = match self {
            CashierError::MerchantNotFound { merchant } => Stored::MerchantNotFound {
                merchant: merchant.clone(),
            },
            CashierError::OrderNotFound { order: o } => Stored::OrderNotFound { order: order(o) },
            CashierError::OrderClosed { order: o } => Stored::OrderClosed { order: order(o) },
            CashierError::OrderExpired { order: o } => Stored::OrderExpired { order: order(o) },
            CashierError::OrderAlreadyPaid { order: o } => {
                Stored::OrderAlreadyPaid { order: order(o) }
            }
            CashierError::OrderNotPaid { order: o } => Stored::OrderNotPaid { order: order(o) },
            CashierError::RefundExceedsPaid {
                order: o,
                paid,
                refunded,
                refundable,
                requested,
            } => Stored::RefundExceedsPaid {
                order: order(o),
                paid: paid.clone(),
                refunded: refunded.clone(),
                refundable: refundable.clone(),
                requested: requested.clone(),
            },
            CashierError::ProductNotSigned {
                merchant,
                method,
                scenario,
            } => Stored::ProductNotSigned {
                merchant: merchant.clone(),
                method: named(method)?,
                scenario: named(scenario)?,
            },
            CashierError::PaymentCodeInvalid => Stored::PaymentCodeInvalid,
            CashierError::PaymentCodeExpired => Stored::PaymentCodeExpired,
            CashierError::PaymentCodeUsed => Stored::PaymentCodeUsed,
            CashierError::Account(e) => return e.refusal(),
            CashierError::Yield(e) => return e.refusal(),
            CashierError::Credit(e) => return e.refusal(),
            CashierError::InvalidArgument { .. }
            | CashierError::Text { .. }
            | CashierError::RefundNotFound { .. }
            | CashierError::MerchantNotPermitted { .. }
            | CashierError::DuplicateMerchantOrderNo { .. }
            | CashierError::DuplicateMerchantRefundNo { .. }
            | CashierError::Conflict { .. }
            | CashierError::Ledger(_)
            | CashierError::Corrupt { .. } => return None,
        };
        let body = serde_json::to_string(&stored).ok()?;
        Some(Refusal {
            reason: REFUSAL_SERVICE.to_owned(),
            body,
        })
    }

    /// A ledger answer's refusal as the cashier names it: a stored refusal of this service,
    /// the account service or the yield service read back; any other as it is.
    pub fn from_ledger(e: LedgerError) -> CashierError {
        let LedgerError::Refused { refusal } = e else {
            return CashierError::Ledger(e);
        };
        if let Some(account) = AccountError::from_refusal(&refusal) {
            return account.into();
        }
        if let Some(credit) = CreditError::from_refusal(&refusal) {
            return credit.into();
        }
        if refusal.reason != REFUSAL_SERVICE {
            return YieldError::from_ledger(LedgerError::Refused { refusal }).into();
        }
        let Ok(stored) = serde_json::from_str::<Stored>(&refusal.body) else {
            tracing::error!("a stored cashier refusal does not decode");
            return CashierError::Ledger(LedgerError::Corrupt);
        };
        match stored {
            Stored::MerchantNotFound { merchant } => CashierError::MerchantNotFound { merchant },
            Stored::OrderNotFound { order } => CashierError::OrderNotFound { order },
            Stored::OrderClosed { order } => CashierError::OrderClosed { order },
            Stored::OrderExpired { order } => CashierError::OrderExpired { order },
            Stored::OrderAlreadyPaid { order } => CashierError::OrderAlreadyPaid { order },
            Stored::OrderNotPaid { order } => CashierError::OrderNotPaid { order },
            Stored::RefundExceedsPaid {
                order,
                paid,
                refunded,
                refundable,
                requested,
            } => CashierError::RefundExceedsPaid {
                order,
                paid,
                refunded,
                refundable,
                requested,
            },
            Stored::ProductNotSigned {
                merchant,
                method,
                scenario,
            } => CashierError::ProductNotSigned {
                merchant,
                method: method.as_str(),
                scenario: scenario.as_str(),
            },
            Stored::PaymentCodeInvalid => CashierError::PaymentCodeInvalid,
            Stored::PaymentCodeExpired => CashierError::PaymentCodeExpired,
            Stored::PaymentCodeUsed => CashierError::PaymentCodeUsed,
        }
    }
}

impl CashierService {
    /// Claims `key` for `error` when it is a refusal that claims (see
    /// [`CashierError::refusal`]): the answer is the request's first one — an earlier
    /// success's outcome with what it observed (a concurrent copy of the request may have
    /// succeeded first), or the refusal stored, this one or an earlier. Any other error comes
    /// back as it is.
    pub(in crate::cashier) async fn claim(
        &self,
        key: IdempotencyKey,
        fingerprint: &str,
        error: CashierError,
    ) -> Result<(Outcome, Option<Observed>), CashierError> {
        let Some(refusal) = error.refusal() else {
            return Err(error);
        };
        let answer = self
            .inner
            .ledger
            .refuse_request(key, fingerprint, refusal)
            .await?;
        match answer.result {
            Ok(outcome) => Ok((outcome, answer.observed)),
            Err(e @ LedgerError::Refused { .. }) => Err(CashierError::from_ledger(e)),
            Err(e @ LedgerError::IdempotencyKeyReused { .. }) => Err(CashierError::Ledger(e)),
            // The batch already refused this very request (its refusal, named by the rule it
            // broke, is the error in hand).
            Err(_) => Err(error),
        }
    }
}
