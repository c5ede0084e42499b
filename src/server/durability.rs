//! The start's refusal of database settings under which an acknowledged payment can be lost.

use super::{Metrics, ServeError, storage};

/// Refuses to serve on database settings under which an acknowledged payment can be lost,
/// unless `database.allow_durability_risk` says otherwise: then each such setting is logged as
/// an error at this start and shown in `/metrics`.
pub(super) async fn check_durability(
    config: &crate::config::DatabaseConfig,
    store: &dyn storage::LedgerStore,
    metrics: &Metrics,
) -> Result<(), ServeError> {
    let risks = store.durability_risks().await?;
    if risks.is_empty() {
        return Ok(());
    }
    if !config.allow_durability_risk {
        let named: Vec<String> = risks
            .iter()
            .map(|r| format!("{} = {} ({})", r.setting, r.value, r.why))
            .collect();
        return Err(ServeError::DurabilityRisk(named.join("; ")));
    }
    for risk in &risks {
        tracing::error!(
            setting = risk.setting,
            value = %risk.value,
            why = risk.why,
            "DURABILITY OVERRIDE: serving although an acknowledged payment can be lost \
             (database.allow_durability_risk = true; never in production)"
        );
        metrics
            .durability_overrides
            .get_or_create(&crate::telemetry::SettingLabels {
                setting: risk.setting.to_owned(),
            })
            .set(1);
    }
    Ok(())
}
