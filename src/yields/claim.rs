//! Which yield refusals claim a request's key (the rule of [`crate::account`]'s `claim`
//! module, applied to the checks the yield service makes before its batch: a product not
//! found or not open, a subscription below the minimum, no shares to redeem, an account not
//! found).

use serde::{Deserialize, Serialize};

use super::{ProductStatus, YieldError, YieldService};
use crate::{
    account::AccountError,
    ledger::{IdempotencyKey, LedgerError, Outcome, Refusal},
    money::Money,
};

/// The service whose refusals [`YieldError::refusal`] encodes.
const REFUSAL_SERVICE: &str = "yield";

/// A yield refusal decided before the batch, as stored under the request's key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "SCREAMING_SNAKE_CASE")]
enum Stored {
    ProductNotFound { product: String },
    ProductNotOpen { product: String, status: String },
    BelowMinimum { minimum: Money },
    InsufficientShares { held: Money, requested: Money },
    ProductExists { product: String },
    NotABusinessDate { date: String },
}

impl YieldError {
    /// The stored form of this refusal when it claims the request's key (a refusal met before
    /// the batch from state); `None` otherwise.
    pub fn refusal(&self) -> Option<Refusal> {
        let stored = match self {
            YieldError::ProductNotFound { product } => Stored::ProductNotFound {
                product: product.clone(),
            },
            YieldError::ProductNotOpen { product, status } => Stored::ProductNotOpen {
                product: product.clone(),
                status: (*status).to_owned(),
            },
            YieldError::BelowMinimum { minimum } => Stored::BelowMinimum { minimum: *minimum },
            YieldError::InsufficientShares { held, requested } => Stored::InsufficientShares {
                held: *held,
                requested: *requested,
            },
            YieldError::ProductExists { product } => Stored::ProductExists {
                product: product.clone(),
            },
            YieldError::NotABusinessDate { date } => Stored::NotABusinessDate {
                date: super::format_date(*date),
            },
            // The account service's own pre-batch refusals (an account not found …).
            YieldError::Account(e) if !matches!(**e, AccountError::Ledger(_)) => {
                return e.refusal();
            }
            _ => return None,
        };
        let body = serde_json::to_string(&stored).ok()?;
        Some(Refusal {
            reason: REFUSAL_SERVICE.to_owned(),
            body,
        })
    }

    /// A ledger answer's refusal as the yield service names it: a stored refusal of this
    /// service or the account service read back, any other as it is.
    pub fn from_ledger(e: LedgerError) -> YieldError {
        let LedgerError::Refused { refusal } = e else {
            return YieldError::Ledger(e);
        };
        if let Some(account) = AccountError::from_refusal(&refusal) {
            return account.into();
        }
        let stored = (refusal.reason == REFUSAL_SERVICE)
            .then(|| serde_json::from_str::<Stored>(&refusal.body).ok())
            .flatten();
        match stored {
            Some(Stored::ProductNotFound { product }) => YieldError::ProductNotFound { product },
            Some(Stored::ProductNotOpen { product, status }) => YieldError::ProductNotOpen {
                product,
                status: [
                    ProductStatus::Open,
                    ProductStatus::SubscriptionSuspended,
                    ProductStatus::Closed,
                ]
                .into_iter()
                .map(ProductStatus::as_str)
                .find(|s| *s == status)
                .unwrap_or("CLOSED"),
            },
            Some(Stored::BelowMinimum { minimum }) => YieldError::BelowMinimum { minimum },
            Some(Stored::InsufficientShares { held, requested }) => {
                YieldError::InsufficientShares { held, requested }
            }
            Some(Stored::ProductExists { product }) => YieldError::ProductExists { product },
            Some(Stored::NotABusinessDate { date }) => match super::parse_date("date", &date) {
                Ok(date) => YieldError::NotABusinessDate { date },
                Err(_) => YieldError::corrupt("stored refusal"),
            },
            None => YieldError::corrupt("stored refusal"),
        }
    }
}

impl YieldService {
    /// Claims `key` for `error` when it is a refusal that claims (see [`YieldError::refusal`]):
    /// the answer is the request's first one (an earlier success's outcome, or the refusal
    /// stored, this one or an earlier). Any other error comes back as it is.
    pub(super) async fn claim(
        &self,
        key: IdempotencyKey,
        fingerprint: &str,
        error: YieldError,
    ) -> Result<Outcome, YieldError> {
        let Some(refusal) = error.refusal() else {
            return Err(error);
        };
        self.ledger()
            .refuse_request(key, fingerprint, refusal)
            .await?
            .result
            .map_err(YieldError::from_ledger)
    }
}
