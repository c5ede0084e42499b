//! The yield service (余额增值): money-market-fund products over the account balance. Products
//! and their daily rates, subscriptions and redemptions (NORMAL and FAST), the daily income
//! run and the end-of-day sweep. Shares are ledger balances (one ledger account per account
//! and product), so every movement is a balanced journal transaction; the service's state
//! (products, rates, holdings, redemptions, income records, run progress) is documents and
//! counters written in the same batch as the postings.

mod claim;
pub mod error;
pub mod fund_payment;
pub mod holding;
pub mod income;
mod income_shard;
pub mod model;
pub mod products;
pub mod rates;
pub mod redeem;
pub mod subscribe;
pub mod sweep;

use std::{collections::BTreeSet, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use time::{
    Date, Duration, Weekday, format_description::BorrowedFormatItem, macros::format_description,
};

pub use error::YieldError;
pub use fund_payment::PaymentFunding;
pub use model::*;

use crate::{
    account::AccountService,
    config::YieldsConfig,
    ledger::{
        AccountId, BalanceConstraint, DOCUMENT_ID_LEN_MAX, DocumentWrite, IdempotencyKey, Ledger,
        LedgerError, Metadata, NewAccount, Side,
    },
    money::{Currency, Money, Sign},
};

/// The idempotency scope of what the yield service does on its own (internal accounts,
/// holding accounts, accrual steps, sweeps and settlements).
const SYSTEM_SCOPE: &str = "paygate-yields";
/// How often a command whose document changed under it is rebuilt and resubmitted.
const CONFLICT_RETRIES_MAX: u32 = 8;
/// `YYYY-MM-DD`.
pub const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// The yield service. Cheap to clone.
#[derive(Clone)]
pub struct YieldService {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    accounts: AccountService,
    config: YieldsConfig,
    currency: Currency,
    fast_cap: Money,
    holidays: BTreeSet<Date>,
    /// The bank's own account that advances FAST redemptions (垫支), repaid by the funds:
    /// created on first use (a gateway that sells no yield product opens no yield accounts).
    advance: tokio::sync::OnceCell<AccountId>,
}

impl YieldService {
    /// Builds the service and registers the configured products (idempotently: the same
    /// accounts on every start).
    pub async fn start(
        ledger: Ledger,
        accounts: AccountService,
        config: &YieldsConfig,
    ) -> Result<YieldService, YieldError> {
        config
            .validate()
            .map_err(|e| YieldError::invalid("yields", e))?;
        let currency = accounts.rules().currency;
        let fast_cap = Money::parse(currency, &config.fast_redeem_daily_cap, Sign::Positive)
            .map_err(|e| YieldError::invalid("yields.fast_redeem_daily_cap", e.to_string()))?;
        let holidays = config
            .holidays
            .iter()
            .map(|d| parse_date("yields.holidays", d))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let service = YieldService {
            inner: Arc::new(Inner {
                ledger,
                accounts,
                config: config.clone(),
                currency,
                fast_cap,
                holidays,
                advance: tokio::sync::OnceCell::new(),
            }),
        };
        for p in &config.products {
            service.register_configured(p).await?;
        }
        Ok(service)
    }

    /// The bank's advance account (垫支) in the products' currency, created idempotently the
    /// first time it is needed.
    async fn advance_account(&self) -> Result<AccountId, YieldError> {
        let currency = self.inner.currency;
        let purpose = format!("yield/advance/{currency}");
        self.inner
            .advance
            .get_or_try_init(|| internal_account(self.ledger(), currency, &purpose))
            .await
            .copied()
    }

    /// The currency of every product (the electronic accounts' currency).
    pub fn currency(&self) -> Currency {
        self.inner.currency
    }

    /// Today's calendar date in the bank's time zone (日切-aware).
    pub fn today(&self) -> Date {
        self.inner.accounts.today()
    }

    pub fn is_business_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.inner.holidays.contains(&date)
    }

    /// The first business date after `date`.
    pub fn next_business_day(&self, date: Date) -> Date {
        let mut d = date;
        // A year of holidays in a row is a configuration error; stop there anyway.
        for _ in 0..366 {
            d = d.saturating_add(Duration::days(1));
            if self.is_business_day(d) {
                return d;
            }
        }
        d
    }

    /// The last business date before `date`.
    pub fn previous_business_day(&self, date: Date) -> Date {
        let mut d = date;
        for _ in 0..366 {
            d = d.saturating_sub(Duration::days(1));
            if self.is_business_day(d) {
                return d;
            }
        }
        d
    }

    fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    fn page_size(&self, requested: i32) -> Result<u32, YieldError> {
        let c = &self.inner.config;
        match requested {
            0 => Ok(c.page_size_default),
            n if n < 0 => Err(YieldError::invalid("page_size", "must not be negative")),
            n => Ok(u32::try_from(n)
                .unwrap_or(c.page_size_max)
                .min(c.page_size_max)),
        }
    }

    /// A document decoded, with its version.
    async fn load<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<(T, u64)>, YieldError> {
        if id.is_empty() || id.len() > DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        let Some(doc) = self.ledger().document(kind, id).await? else {
            return Ok(None);
        };
        let value = serde_json::from_str(&doc.body).map_err(|_| YieldError::corrupt(kind))?;
        Ok(Some((value, doc.version)))
    }

    /// Current values of counters, absent ones as zero, in the order asked.
    async fn counters(&self, keys: &[String]) -> Result<Vec<i64>, YieldError> {
        let values = self.ledger().counter_values(keys).await?;
        Ok(keys
            .iter()
            .map(|k| {
                values
                    .iter()
                    .find(|(key, _)| key == k)
                    .map_or(0, |(_, v)| *v)
            })
            .collect())
    }

    /// Posted balance of a credit-normal account, in minor units.
    async fn posted_minor(&self, account: AccountId) -> Result<i64, YieldError> {
        let (_, balance) = self.ledger().account(account).await?;
        Ok(clamp(balance.posted_minor(Side::Credit)))
    }
}

/// Creates (or finds) a bank internal ledger account under a stable key.
async fn internal_account(
    ledger: &Ledger,
    currency: Currency,
    purpose: &str,
) -> Result<AccountId, YieldError> {
    let spec = NewAccount {
        currency,
        normal_side: Side::Credit,
        kind: "bank_internal".to_owned(),
        constraint: BalanceConstraint::None,
        metadata: Metadata::from([("purpose".to_owned(), purpose.to_owned())]),
        profile: None,
    };
    let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("internal/{purpose}"));
    Ok(ledger.create_account(key, spec).await?.id)
}

pub(crate) fn write_doc<T: Serialize>(
    kind: &str,
    id: &str,
    expected_version: u64,
    value: &T,
) -> Result<DocumentWrite, YieldError> {
    Ok(DocumentWrite::json(kind, id, expected_version, value)?)
}

pub fn parse_date(field: &'static str, text: &str) -> Result<Date, YieldError> {
    Date::parse(text, DATE_FORMAT).map_err(|_| YieldError::invalid(field, "a date YYYY-MM-DD"))
}

pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

/// A date as a key part that sorts newest first (`99999999 − YYYYMMDD`).
pub(crate) fn newest_first(date: Date) -> String {
    let n = date.year() * 10_000 + i32::from(u8::from(date.month())) * 100 + i32::from(date.day());
    format!("{:08}", 99_999_999 - n)
}

pub(crate) fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

pub(crate) fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Counter keys of one holding (account, product).
pub(crate) mod keys {
    use time::Date;

    use crate::ledger::AccountId;

    /// Shares that joined the holding with this effective date (subscriptions, income).
    pub fn shares_in(product: &str, account: AccountId, date: Date) -> String {
        format!("yield/{product}/{account}/in/{date}")
    }

    /// Shares that left the holding on this date (redemptions).
    pub fn shares_out(product: &str, account: AccountId, date: Date) -> String {
        format!("yield/{product}/{account}/out/{date}")
    }

    /// FAST redemptions of this date by one investor (capped): every account of one person
    /// counts against one cap, as the rule is per investor (`AccountFacts::investor`).
    pub fn fast(product: &str, investor: &str, date: Date) -> String {
        format!("yield/{product}/{investor}/fast/{date}")
    }

    /// NORMAL redemptions not yet credited.
    pub fn pending_out(product: &str, account: AccountId) -> String {
        format!("yield/{product}/{account}/pending_out")
    }

    /// Income posted since the holding started.
    pub fn income_total(product: &str, account: AccountId) -> String {
        format!("yield/{product}/{account}/income_total")
    }
}

/// Document ids.
pub(crate) mod ids {
    use time::Date;

    use super::newest_first;
    use crate::ledger::AccountId;

    pub fn rate(product: &str, date: Date) -> String {
        format!("{product}/{}", newest_first(date))
    }

    pub fn holding(product: &str, account: AccountId) -> String {
        format!("{product}/{account:020}")
    }

    pub fn income(product: &str, account: AccountId, date: Date) -> String {
        format!("{product}/{account:020}/{}", newest_first(date))
    }

    pub fn accrual(product: &str, date: Date) -> String {
        format!("{product}/{date}")
    }

    pub fn accrual_shard(product: &str, date: Date, shard: u32) -> String {
        format!("{product}/{date}/{shard:03}")
    }

    pub fn redemption(product: &str, account: AccountId, at_ms: i64, id: &str) -> String {
        let inverted = i64::MAX.saturating_sub(at_ms.max(0));
        format!("{product}/{account:020}/{inverted:019}/{id}")
    }

    /// An account's yield settings (`AutoSweep`).
    pub fn sweep(account: AccountId) -> String {
        format!("{account:020}")
    }

    pub fn due(date: Date, product: &str, id: &str) -> String {
        format!("{date}/{product}/{id}")
    }
}

/// The counter cap of counters that only count (no limit).
pub(crate) const UNCAPPED: i64 = i64::MAX;

/// Whether a ledger refusal is a document written by someone else first (rebuild and retry).
pub(crate) fn is_conflict(e: &YieldError) -> bool {
    match e {
        YieldError::Ledger(LedgerError::DocumentConflict { .. }) => true,
        YieldError::Account(a) => matches!(
            **a,
            crate::account::AccountError::Ledger(LedgerError::DocumentConflict { .. })
        ),
        _ => false,
    }
}
