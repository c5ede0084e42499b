//! `[eod]`: the end-of-day run (日切): how often its worker looks for due steps, when a
//! network's reconciliation file is due after that network's business date ends, and how far
//! back the worker looks for unfinished dates.

use serde::{Deserialize, Serialize};

/// Longest a reconciliation file may be due after its network's date ends (two days).
pub const FILE_DUE_AFTER_MS_MAX: u64 = 172_800_000;
/// Most ended dates the worker keeps open (unfinished) at once.
pub const DATES_OPEN_MAX: u32 = 31;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EodConfig {
    /// Whether this gateway runs the end-of-day worker. Several gateways on one database may
    /// all run it: every step is idempotent and its record is versioned.
    pub enabled: bool,
    /// How often the worker looks for due steps.
    pub interval_ms: u64,
    /// How long after a network's business date ends its reconciliation file is due (NetsUnion
    /// writes each hourly batch's file within two hours: 7,200,000 covers its last batch).
    pub file_due_after_ms: u64,
    /// Dates the worker looks back over for steps still unfinished (a gateway stopped longer
    /// than this leaves older dates to `paygate eod status` and the operator).
    pub dates_open_max: u32,
}

impl Default for EodConfig {
    fn default() -> Self {
        EodConfig {
            enabled: true,
            interval_ms: 60_000,
            file_due_after_ms: 7_200_000,
            dates_open_max: 7,
        }
    }
}

impl EodConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=3_600_000).contains(&self.interval_ms) {
            return Err("eod.interval_ms must be within 10..=3600000".to_owned());
        }
        if self.file_due_after_ms > FILE_DUE_AFTER_MS_MAX {
            return Err(format!(
                "eod.file_due_after_ms must be at most {FILE_DUE_AFTER_MS_MAX}"
            ));
        }
        if !(1..=DATES_OPEN_MAX).contains(&self.dates_open_max) {
            return Err(format!(
                "eod.dates_open_max must be within 1..={DATES_OPEN_MAX}"
            ));
        }
        Ok(())
    }
}
