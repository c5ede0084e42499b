//! The yield service's domain types: products, rates, holdings, redemptions, income records,
//! the accrual run's progress and auto-sweeps. No gRPC or storage types here.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::{
    ledger::{AccountId, RequestId, TransactionId},
    money::Money,
};

/// Document kinds (≤ 32 bytes) and the longest product id.
pub const KIND_PRODUCT: &str = "yield_product";
pub const KIND_RATE: &str = "yield_rate";
pub const KIND_HOLDING: &str = "yield_holding";
pub const KIND_INCOME: &str = "yield_income";
pub const KIND_ACCRUAL: &str = "yield_accrual";
pub const KIND_ACCRUAL_SHARD: &str = "yield_accrual_shard";
pub const KIND_ACCRUED: &str = "yield_accrued";
pub const KIND_REDEMPTION: &str = "yield_redemption";
pub const KIND_DUE: &str = "yield_due";
pub const KIND_SWEEP: &str = "yield_sweep";
pub const PRODUCT_ID_LEN_MAX: usize = 32;
/// The number of published dates the 7-day annualised yield is computed from.
pub const SEVEN_DAY_WINDOW: usize = 7;
/// Largest 万份收益 accepted (yuan per 10,000 shares per day): far above any money-market fund.
pub const RATE_MAX_YUAN: i64 = 100;
/// Decimal places of a published 万份收益.
pub const RATE_SCALE_MAX: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    Open,
    SubscriptionSuspended,
    Closed,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Open => "OPEN",
            ProductStatus::SubscriptionSuspended => "SUBSCRIPTION_SUSPENDED",
            ProductStatus::Closed => "CLOSED",
        }
    }
}

/// The accounts a product posts through (bank internal ledger accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAccounts {
    /// Fund settlement: redemptions owed by the fund and not yet paid out.
    pub settlement: AccountId,
    /// Fund income: debited with every income posting (holders' and rounding).
    pub income: AccountId,
    /// The day's rounding remainder of income (fund total − Σ truncated holder incomes).
    pub rounding: AccountId,
}

/// A yield product: a money-market fund at 1.00 per share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub fund_code: String,
    pub fund_manager: String,
    pub status: ProductStatus,
    pub min_subscription: Money,
    pub fast_redeem_daily_cap: Money,
    pub accounts: ProductAccounts,
    pub created_at_ms: i64,
}

/// What an operator (or configuration) registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterProduct {
    pub request_id: RequestId,
    pub product_id: String,
    pub name: String,
    pub fund_code: String,
    pub fund_manager: String,
    pub status: ProductStatus,
    pub min_subscription: Money,
    /// `None`: the configured cap.
    pub fast_redeem_daily_cap: Option<Money>,
}

/// A published daily rate (stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRate {
    pub date: Date,
    /// 万份收益, yuan per 10,000 shares.
    #[serde(with = "crate::money::decimal_text")]
    pub income_per_10k: Decimal,
    pub published_at_ms: i64,
}

/// A rate with the 7-day annualised yields as of its date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateView {
    pub rate: StoredRate,
    /// `None` while fewer than 7 dates are published.
    pub seven_day_simple: Option<Decimal>,
    pub seven_day_compound: Option<Decimal>,
}

/// A product with its latest rate and the last 7 published, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductView {
    pub product: Product,
    pub latest: Option<RateView>,
    pub recent: Vec<StoredRate>,
}

/// Which ledger account holds an account's shares of a product (shares are minor units of
/// the product's currency at 1.00 per share).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldingDoc {
    pub account: AccountId,
    pub product_id: String,
    pub holding_account: AccountId,
    pub opened_on: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedeemMode {
    Normal,
    Fast,
}

impl RedeemMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RedeemMode::Normal => "NORMAL",
            RedeemMode::Fast => "FAST",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedemptionStatus {
    Pending,
    Succeeded,
}

/// A redemption as stored (and shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub redemption_id: String,
    pub account: AccountId,
    pub product_id: String,
    pub shares: Money,
    pub mode: RedeemMode,
    pub status: RedemptionStatus,
    /// NORMAL: when the cash is credited; FAST: today (the fund repays the bank's advance on
    /// the next business date).
    pub credit_date: Date,
    pub requested_at_ms: i64,
    /// The posting that credited the account (FAST: the redemption itself).
    pub credit_transaction: Option<TransactionId>,
    pub credited_at_ms: Option<i64>,
}

/// A settlement due on a date: NORMAL pays the account, FAST repays the advance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueDoc {
    pub redemption_doc_id: String,
    pub product_id: String,
    pub payee: AccountId,
    pub amount: Money,
    pub mode: RedeemMode,
    pub settled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub request_id: RequestId,
    pub account: AccountId,
    pub product_id: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub subscription_id: String,
    pub account: AccountId,
    pub product_id: String,
    pub amount: Money,
    pub income_start_date: Date,
    pub transaction: TransactionId,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeem {
    pub request_id: RequestId,
    pub account: AccountId,
    pub product_id: String,
    pub shares: Money,
    pub mode: RedeemMode,
}

/// An account's holding as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldingView {
    pub account: AccountId,
    pub product_id: String,
    pub shares: Money,
    pub earning_shares: Money,
    pub pending_shares: Money,
    pub last_income: Money,
    pub accumulated_income: Money,
    pub pending_redemptions: Money,
    pub fast_redeem_remaining: Money,
    pub business_date: Date,
    pub as_of_ms: i64,
}

/// One holder's income of one date (stored; its id makes it once per holder per date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomeRecord {
    pub date: Date,
    pub shares: Money,
    #[serde(with = "crate::money::decimal_text")]
    pub income_per_10k: Decimal,
    pub income: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionId>,
    #[serde(default)]
    pub posted_at_ms: i64,
}

/// One product's accrual of one date: its shard plan while it runs, the totals over every shard
/// once complete (a partial run's totals are the sums of its shards so far).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccrualProgress {
    pub product_id: String,
    pub date: Date,
    #[serde(with = "crate::money::decimal_text")]
    pub income_per_10k: Decimal,
    /// The last holding document id done, in a run written before runs were sharded (such a
    /// run resumes as one shard from here); empty otherwise.
    pub cursor: String,
    pub holders_paid: i64,
    pub eligible_shares_minor: i64,
    pub holders_income_minor: i64,
    pub rounding_minor: i64,
    pub fund_total_minor: i64,
    pub complete: bool,
    /// Shards of the run, fixed when it starts (0: not planned yet).
    #[serde(default)]
    pub shards: u32,
    /// The accounts whose holding ids end shards 0 … K−2 (shard k walks the holding ids after
    /// bound k−1 up to bound k; the first from the product's first, the last to its end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_bounds: Vec<u64>,
}

/// One shard's walk of an accrual run, advanced in the same batch as each step's postings (so a
/// crashed run resumes where it stopped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccrualShard {
    /// The last holding document id done (holdings are walked in id order).
    pub cursor: String,
    pub holders_paid: i64,
    pub eligible_shares_minor: i64,
    pub holders_income_minor: i64,
    pub complete: bool,
}

/// The last accrued date of a product (accrual runs date after date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccruedDoc {
    pub last_date: Date,
}

/// An account's auto-sweep setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoSweep {
    pub account: AccountId,
    pub product_id: String,
    pub keep_balance: Money,
    pub enabled: bool,
    /// Whether a balance payment the balance cannot cover redeems the difference FAST from
    /// this product, in the payment's own posting (settings stored before it existed: off).
    #[serde(default)]
    pub top_up_payments: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAutoSweep {
    pub request_id: RequestId,
    pub sweep: AutoSweep,
}

/// What one end-of-day run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndOfDay {
    pub sweeps: i64,
    pub redemptions_settled: i64,
}

/// A page of results with the token of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}
