//! `[yields]`: the balance-yield service (余额增值): the FAST redemption cap, the business
//! calendar's holidays, the accrual run's step size and shards, and the products registered at start.

use serde::{Deserialize, Serialize};

/// Most holders one accrual step posts (each step is one ledger command carrying one income
/// document per holder plus the run's progress document: at most 8 documents per command).
pub const ACCRUAL_CHUNK_HOLDERS_MAX: u32 = 7;
/// Most shards of one accrual run (each shard's steps run one after another; the shards' steps
/// run side by side, so the ledger commits many of them in one batch).
pub const ACCRUAL_SHARDS_MAX: u32 = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct YieldsConfig {
    /// FAST (T+0) redemption cap per investor (account) per fund per calendar day (自然日), in
    /// the accounts' currency (rule: CSRC + PBOC 2018, 10,000.00). A product may set its own.
    pub fast_redeem_daily_cap: String,
    /// Bank holidays ("YYYY-MM-DD") besides Saturdays and Sundays: no business date, no rate,
    /// no accrual; NORMAL redemptions due on one are credited on the next business date.
    pub holidays: Vec<String>,
    /// Holders per accrual step (1..=7).
    pub accrual_chunk_holders: u32,
    /// Disjoint ranges of holders an accrual run walks side by side (1..=256), fixed when a
    /// date's run starts.
    pub accrual_shards: u32,
    /// How far back (calendar days) an accrual date may be from today.
    pub accrual_lookback_days_max: u32,
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// Products registered at start (idempotently; an existing product is left as it is).
    pub products: Vec<ProductConfig>,
}

/// A product as configuration registers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    pub product_id: String,
    pub name: String,
    #[serde(default)]
    pub fund_code: String,
    #[serde(default)]
    pub fund_manager: String,
    /// Decimal amount in the accounts' currency.
    pub min_subscription: String,
    /// Overrides `yields.fast_redeem_daily_cap` for this product.
    #[serde(default)]
    pub fast_redeem_daily_cap: Option<String>,
}

impl Default for YieldsConfig {
    fn default() -> Self {
        YieldsConfig {
            fast_redeem_daily_cap: "10000.00".to_owned(),
            holidays: Vec::new(),
            accrual_chunk_holders: ACCRUAL_CHUNK_HOLDERS_MAX,
            accrual_shards: 16,
            accrual_lookback_days_max: 31,
            page_size_default: 50,
            page_size_max: 500,
            products: Vec::new(),
        }
    }
}

impl YieldsConfig {
    /// Structural checks (amounts and dates are parsed when the service starts).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=ACCRUAL_CHUNK_HOLDERS_MAX).contains(&self.accrual_chunk_holders) {
            return Err(format!(
                "yields.accrual_chunk_holders must be within 1..={ACCRUAL_CHUNK_HOLDERS_MAX}"
            ));
        }
        if !(1..=ACCRUAL_SHARDS_MAX).contains(&self.accrual_shards) {
            return Err(format!(
                "yields.accrual_shards must be within 1..={ACCRUAL_SHARDS_MAX}"
            ));
        }
        if !(1..=366).contains(&self.accrual_lookback_days_max) {
            return Err("yields.accrual_lookback_days_max must be within 1..=366".into());
        }
        if self.page_size_default == 0 || self.page_size_max < self.page_size_default {
            return Err("yields page sizes: 0 < page_size_default <= page_size_max".into());
        }
        Ok(())
    }
}
