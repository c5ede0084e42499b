//! The credit service (消费金融): credit lines granted by the bank's credit decision (made
//! elsewhere, enforced here), drawn down by the cashier's CREDIT payment method and repaid from
//! the line's account or its bound card.
//!
//! Money is ledger postings: each line has its own loan receivable account (debit-normal, kind
//! `loan_receivable`), whose balance is the principal outstanding plus the interest and penalty
//! due. The limit is enforced in the batch by one counter per line (`keys::usage`), never by a
//! read-then-write:
//!
//! ```text
//! usage = (base − limit) + principal drawn and not repaid (+ base while frozen)
//! a drawdown increments usage within the cap `base`; a repayment or refund releases it.
//! ```
//!
//! so `principal ≤ limit` holds under any concurrency, a limit change or a freeze is one
//! increment or release in the same batch as the line document, and the receivable account may
//! never be credited past zero (`CreditsMustNotExceedDebits`), so no repayment or refund
//! restores more than is outstanding.

mod accrue;
mod adjust;
mod allocate;
mod autorepay;
pub mod card_repay;
pub mod claim;
mod drawdown;
pub mod error;
pub mod model;
mod open;
mod read;
mod repay;
pub mod schedule;
mod split;

use std::{str::FromStr, sync::Arc};

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

pub use card_repay::{CardRepayment, CardRepaymentState, RepaymentLookup};
pub use error::CreditError;
pub use model::*;
pub use schedule::InstalmentMethod;

use crate::{
    account::AccountService,
    config::CreditConfig,
    ledger::{
        Command, CounterCheck, CounterRelease, DOCUMENT_ID_LEN_MAX, DocumentWrite, Freshness,
        Ledger, Observe, Observed,
    },
    money::{Currency, Money, Sign},
};

/// The idempotency scope of what the credit service does on its own (receivable accounts).
const SYSTEM_SCOPE: &str = "paygate-credit";
/// The counter cap of counters that only count (no limit).
const UNCAPPED: i64 = i64::MAX;

/// The credit service. Cheap to clone.
#[derive(Clone)]
pub struct CreditService {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    accounts: AccountService,
    currency: Currency,
    rate_cap: Decimal,
    penalty_rate: Decimal,
    limit_max: Money,
    grace_days_max: u32,
    accrual_lookback_days_max: u32,
    /// The bank's interest income on credit lines: created on first use.
    interest_income: tokio::sync::OnceCell<crate::ledger::AccountId>,
    /// The bank's penalty interest (罚息) income on credit lines: created on first use.
    penalty_income: tokio::sync::OnceCell<crate::ledger::AccountId>,
}

impl CreditService {
    pub fn start(
        ledger: Ledger,
        accounts: AccountService,
        config: &CreditConfig,
    ) -> Result<CreditService, CreditError> {
        config
            .validate()
            .map_err(|e| CreditError::invalid("credit", e))?;
        let currency = accounts.rules().currency;
        let rate_cap = parse_rate("credit.annual_rate_cap", &config.annual_rate_cap)?;
        let penalty_rate = parse_rate("credit.penalty_annual_rate", &config.penalty_annual_rate)?;
        if penalty_rate > rate_cap {
            return Err(CreditError::invalid(
                "credit.penalty_annual_rate",
                "at most credit.annual_rate_cap",
            ));
        }
        let limit_max = Money::parse(currency, &config.limit_max, Sign::Positive)
            .map_err(|e| CreditError::invalid("credit.limit_max", e.to_string()))?;
        Ok(CreditService {
            inner: Arc::new(Inner {
                ledger,
                accounts,
                currency,
                rate_cap,
                penalty_rate,
                limit_max,
                grace_days_max: config.grace_days_max,
                accrual_lookback_days_max: config.accrual_lookback_days_max,
                interest_income: tokio::sync::OnceCell::new(),
                penalty_income: tokio::sync::OnceCell::new(),
            }),
        })
    }

    pub fn currency(&self) -> Currency {
        self.inner.currency
    }

    /// The configured annual penalty rate (罚息) on overdue amounts.
    pub fn penalty_rate(&self) -> Decimal {
        self.inner.penalty_rate
    }

    fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// A line with its version, or `LineNotFound`.
    async fn line_doc(
        &self,
        line_id: &str,
        freshness: Freshness,
    ) -> Result<(CreditLine, u64), CreditError> {
        let not_found = || CreditError::LineNotFound {
            line: line_id.to_owned(),
        };
        if line_id.is_empty() || line_id.len() > DOCUMENT_ID_LEN_MAX {
            return Err(not_found());
        }
        let Some(doc) = self
            .ledger()
            .document_as(KIND_LINE, line_id, freshness)
            .await?
        else {
            return Err(not_found());
        };
        Ok((decode(KIND_LINE, &doc.body)?, doc.version))
    }

    /// What `observe_line` recorded of the line a command wrote.
    fn observed_line(observed: Option<&Observed>) -> Option<CreditLine> {
        observed?
            .documents
            .iter()
            .find(|d| d.kind == KIND_LINE)
            .and_then(|d| serde_json::from_str(&d.body).ok())
    }
}

impl CreditService {
    /// The line's usage counter (absent: 0).
    async fn usage(&self, line_id: &str, freshness: Freshness) -> Result<i64, CreditError> {
        self.counter(keys::usage(line_id), freshness).await
    }

    /// A counter's value (absent: 0).
    async fn counter(&self, key: String, freshness: Freshness) -> Result<i64, CreditError> {
        Ok(self
            .ledger()
            .counter_values_as(std::slice::from_ref(&key), freshness)
            .await?
            .into_iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, v)| v))
    }
}

/// A command with the line's usage moves and documents written in the same step.
fn guarded(
    inner: Command,
    counters: Vec<CounterCheck>,
    releases: Vec<CounterRelease>,
    documents: Vec<DocumentWrite>,
) -> Command {
    Command::Guarded {
        inner: Box::new(inner),
        counters,
        releases,
        caps: Vec::new(),
        documents,
        events: Vec::new(),
    }
}

/// What a line request observes: the line it writes, its receivable and usage.
fn observe_line(line: &CreditLine) -> Observe {
    Observe {
        accounts: vec![line.receivable],
        counters: vec![keys::usage(&line.line_id)],
        document_kinds: vec![KIND_LINE.to_owned()],
    }
}

fn decode<T: DeserializeOwned>(kind: &str, body: &str) -> Result<T, CreditError> {
    serde_json::from_str(body).map_err(|_| CreditError::corrupt(kind))
}

/// An annual rate: a fraction of at most [`RATE_SCALE_MAX`] decimals, not negative.
pub fn parse_rate(field: &'static str, text: &str) -> Result<Decimal, CreditError> {
    let rate = Decimal::from_str(text)
        .map_err(|_| CreditError::invalid(field, "a decimal fraction, e.g. \"0.18\""))?;
    if rate.is_sign_negative() || rate.scale() > RATE_SCALE_MAX || rate >= Decimal::ONE {
        return Err(CreditError::invalid(
            field,
            format!("a fraction within 0..1 of at most {RATE_SCALE_MAX} decimals"),
        ));
    }
    Ok(rate.normalize())
}

/// Longest credit line id a request may name.
pub const LINE_ID_LEN_MAX: usize = 64;

/// A credit line id as a request names it: 1..=64 ASCII letters and digits.
pub fn check_line_id(text: &str) -> Result<(), CreditError> {
    if text.is_empty()
        || text.len() > LINE_ID_LEN_MAX
        || !text.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(CreditError::invalid("credit_line_id", "a credit line id"));
    }
    Ok(())
}

/// Counter keys of one line.
pub(crate) mod keys {
    /// `(base − limit) + principal drawn + (base while frozen)`, capped at `base` by drawdowns.
    pub fn usage(line_id: &str) -> String {
        format!("credit/{line_id}/usage")
    }

    /// Principal drawn on a business date (interest-free for the line's grace days).
    pub fn drawn_on(line_id: &str, date: time::Date) -> String {
        format!("credit/{line_id}/drawn/{date}")
    }

    /// Principal put in instalment plans (added by each split).
    pub fn planned(line_id: &str) -> String {
        format!("credit/{line_id}/planned")
    }
}

/// Document ids.
pub(crate) mod ids {
    use crate::ledger::AccountId;

    /// One line per account: the line's id names it.
    pub fn line(account: AccountId) -> String {
        format!("CL{account:020}")
    }

    pub fn drawdown(line_id: &str, drawdown_id: &str) -> String {
        format!("{line_id}/{drawdown_id}")
    }
}

pub(crate) fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}
