//! Why the yield service refused a request. The gRPC layer maps every variant (and the account
//! and ledger errors inside) to a status with a stable reason.

use time::Date;

use crate::{account::AccountError, ledger::LedgerError, money::Money, text::TextRefusal};

#[derive(Debug, Clone, thiserror::Error)]
pub enum YieldError {
    /// A field is missing or malformed (INVALID_ARGUMENT): nothing was written.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// A free-text field breaks the shared text rules (see [`crate::text`]).
    #[error("{field}: {refusal}")]
    Text {
        field: &'static str,
        refusal: TextRefusal,
    },
    #[error("product {product} does not exist")]
    ProductNotFound { product: String },
    #[error("product {product} is already registered with another definition")]
    ProductExists { product: String },
    #[error("product {product} is {status}")]
    ProductNotOpen {
        product: String,
        status: &'static str,
    },
    #[error("the minimum subscription is {minimum}")]
    BelowMinimum { minimum: Money },
    #[error("insufficient shares: held {held}, requested {requested}")]
    InsufficientShares { held: Money, requested: Money },
    /// The FAST (T+0) redemption cap of the investor, fund and business date.
    #[error(
        "FAST redemption cap {limit} for {date}: used {used}, requested {requested}, remaining {remaining}"
    )]
    FastCapExceeded {
        date: Date,
        limit: Money,
        used: Money,
        requested: Money,
        remaining: Money,
    },
    #[error("the rate of {product} for {date} is already published as {published}")]
    RateAlreadyPublished {
        product: String,
        date: Date,
        published: String,
    },
    #[error("no rate of {product} is published for {date}")]
    RateNotPublished { product: String, date: Date },
    #[error("{date} is not a business date")]
    NotABusinessDate { date: Date },
    /// Accrual runs date after date, and only for dates that have ended.
    #[error("cannot accrue {date} now: {reason}")]
    AccrualOutOfOrder { date: Date, reason: String },
    #[error("account {account} holds no shares of {product}")]
    HoldingNotFound { account: String, product: String },
    #[error("account {account} has no auto-sweep")]
    SweepNotFound { account: String },
    #[error("the page token is not one this gateway issued for this query")]
    InvalidPageToken,
    /// Boxed: the account service's refusals are large and rare here.
    #[error(transparent)]
    Account(Box<AccountError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl YieldError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> YieldError {
        YieldError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// Stored data that does not decode: a bug or a damaged database.
    pub fn corrupt(what: &str) -> YieldError {
        tracing::error!(what, "stored yield data does not decode");
        YieldError::Ledger(LedgerError::Storage)
    }
}

impl From<crate::ledger::store::StorageError> for YieldError {
    fn from(e: crate::ledger::store::StorageError) -> Self {
        YieldError::Ledger(LedgerError::from(e))
    }
}

impl From<AccountError> for YieldError {
    fn from(e: AccountError) -> Self {
        match e {
            // A refusal stored before a batch, by this service or another.
            AccountError::Ledger(e @ LedgerError::Refused { .. }) => YieldError::from_ledger(e),
            e => YieldError::Account(Box::new(e)),
        }
    }
}
