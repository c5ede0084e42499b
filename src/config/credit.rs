//! `[credit]`: consumer credit (消费金融): the legal cap on a line's annual rate, the penalty
//! rate of overdue amounts, and the bounds a line is opened within.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreditConfig {
    /// The highest annual percentage rate (APR) a line may carry, as a fraction (the judicial
    /// protection ceiling for private lending, 24 %: "0.24"). A line above it is refused.
    pub annual_rate_cap: String,
    /// Annual penalty rate (罚息) on overdue amounts, as a fraction; at most the cap.
    pub penalty_annual_rate: String,
    /// The largest limit one line may be granted, in the accounts' currency.
    pub limit_max: String,
    /// The longest interest-free period after a drawdown, in days.
    pub grace_days_max: u32,
    /// How far back (calendar days) an interest accrual date may be from today.
    pub accrual_lookback_days_max: u32,
}

impl Default for CreditConfig {
    fn default() -> Self {
        CreditConfig {
            annual_rate_cap: "0.24".to_owned(),
            penalty_annual_rate: "0.24".to_owned(),
            limit_max: "1000000.00".to_owned(),
            grace_days_max: 60,
            accrual_lookback_days_max: 31,
        }
    }
}

impl CreditConfig {
    /// Structural checks (the rates and amounts are parsed when the service starts).
    pub fn validate(&self) -> Result<(), String> {
        if self.grace_days_max > 366 {
            return Err("credit.grace_days_max must be within 0..=366".into());
        }
        if !(1..=366).contains(&self.accrual_lookback_days_max) {
            return Err("credit.accrual_lookback_days_max must be within 1..=366".into());
        }
        Ok(())
    }
}
