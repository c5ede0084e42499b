//! Reconciliation (对账) of one network's period: its file against our records of the calls we
//! sent it ([`crate::clearing::matching`] does the matching; this brings both sides). Used by
//! the end-of-day run and by `paygate recon`.

use serde::{Deserialize, Serialize};

use super::KIND_RECON_REPORT;
use crate::{
    account::outbound::{CallState, calls_sent_between},
    clearing::{
        ClearingClient, Network, ReconFile, ReconPeriod,
        matching::{OurLine, OurStatus, ReconReport, reconcile},
        recon::{ReconKind, ReconStatus, in_period},
    },
    ledger::{DocumentWrite, Ledger, LedgerError},
};

/// Calls sent this close outside the period are read too, so a call the network booked just
/// across the boundary still matches.
pub const BOUNDARY_MARGIN_MS: i64 = 300_000;
/// A call sent this close before its period ended that the file lacks is carried to the next
/// period (the network may have received it after its cutover), not reported as ours only.
pub const CARRY_WINDOW_MS: i64 = 60_000;

/// A stored reconciliation: the report, and the net the network's file books (what the
/// settlement of the period posts).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRecon {
    /// Minor units the network owes the bank for the period (negative: the bank owes it): its
    /// succeeded debits less its succeeded credits and refunds.
    pub net_minor: i64,
    pub matched: usize,
    pub unsettled: usize,
    pub breaks: usize,
    /// Our references carried to the next period.
    #[serde(default)]
    pub carried: Vec<String>,
    /// Our references sent outside the period that its file held (the next period leaves
    /// them out).
    #[serde(default)]
    pub across: Vec<String>,
    /// The whole report, for the operator.
    #[serde(default)]
    pub report: serde_json::Value,
    /// The breaks an operator adjusted since, with who and why.
    #[serde(default)]
    pub adjusted: Vec<super::adjust::AdjustedBreak>,
}

/// Why a network or period named by an operator is not one to reconcile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodRefusal {
    #[error("{0:?}: not a network this gateway knows")]
    UnknownNetwork(String),
    #[error("{0:?}: a batch B + yyyymmdd + 0001..0024, or a date yyyymmdd")]
    NotAPeriod(String),
    #[error("{0} reconciles by date, not by batch")]
    NotByBatch(&'static str),
}

/// The network named `network` (as the configuration names it).
pub fn parse_network(network: &str) -> Result<Network, PeriodRefusal> {
    Network::parse(network).ok_or_else(|| PeriodRefusal::UnknownNetwork(network.to_owned()))
}

/// The period `text` names for `network`: a business date, or a batch of a network that
/// reconciles hourly batches.
pub fn parse_period(network: Network, text: &str) -> Result<ReconPeriod, PeriodRefusal> {
    let period =
        ReconPeriod::parse(text).ok_or_else(|| PeriodRefusal::NotAPeriod(text.to_owned()))?;
    if matches!(period, ReconPeriod::Batch(_)) && !network.hourly_batches() {
        return Err(PeriodRefusal::NotByBatch(network.as_str()));
    }
    Ok(period)
}

/// The id of a stored reconciliation: `NETWORK/period`.
pub fn report_id(network: Network, period: &ReconPeriod) -> String {
    format!("{}/{}", network.as_str(), period.as_text())
}

/// Fetches `network`'s file of `period` and matches it against our calls.
pub async fn reconcile_period(
    ledger: &Ledger,
    client: &dyn ClearingClient,
    network: Network,
    period: &ReconPeriod,
) -> Result<(ReconReport, ReconFile), String> {
    let file = client
        .reconciliation_file(period)
        .await
        .map_err(|e| format!("{}'s file for {}: {e}", network.as_str(), period.as_text()))?;
    let ours = our_lines(ledger, network, period)
        .await
        .map_err(|e| format!("our calls of {}: {e}", period.as_text()))?;
    Ok((reconcile(&file, &ours), file))
}

/// Our calls to `network` that may belong to `period`: those sent within it, those sent just
/// outside it (never ours only), and those the previous period's stored reconciliation carried
/// into this one; not those its file already held though we sent them in this one.
pub async fn our_lines(
    ledger: &Ledger,
    network: Network,
    period: &ReconPeriod,
) -> Result<Vec<OurLine>, LedgerError> {
    let (carried_in, matched_before) = match period.previous() {
        Some(previous) => stored(ledger, network, &previous)
            .await?
            .map(|s| (s.carried, s.across))
            .unwrap_or_default(),
        None => (Vec::new(), Vec::new()),
    };
    let end_ms = period.ends_at_ms(network);
    let (from_ms, to_ms) = period.window_ms(BOUNDARY_MARGIN_MS);
    let calls = calls_sent_between(ledger, network, from_ms, to_ms).await?;
    Ok(calls
        .into_iter()
        .map(|call| {
            let within = in_period(network, period, call.sent_at_ms)
                && !matched_before.contains(&call.reference);
            OurLine {
                in_period: within || carried_in.contains(&call.reference),
                near_end: within && call.sent_at_ms >= end_ms.saturating_sub(CARRY_WINDOW_MS),
                status: match call.state {
                    CallState::Sent => OurStatus::Unsettled,
                    CallState::Succeeded { .. } => OurStatus::Succeeded,
                    CallState::Failed { .. } => OurStatus::Failed,
                },
                reference: call.reference,
                amount_minor: call.amount_minor,
            }
        })
        .collect())
}

/// The stored reconciliation of `network`'s `period`, if the end-of-day run made one.
pub async fn stored(
    ledger: &Ledger,
    network: Network,
    period: &ReconPeriod,
) -> Result<Option<StoredRecon>, LedgerError> {
    let Some(doc) = ledger
        .document(KIND_RECON_REPORT, &report_id(network, period))
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_str(&doc.body).map(Some).map_err(|e| {
        tracing::error!(id = %doc.id, error = %e, "a stored reconciliation does not decode");
        LedgerError::Storage
    })
}

/// What a report and its file store: the file's net and the report's counts.
pub fn to_store(report: &ReconReport, file: &ReconFile) -> StoredRecon {
    StoredRecon {
        net_minor: net_minor(file),
        matched: report.matched,
        unsettled: report.unsettled,
        breaks: report.breaks.len(),
        carried: report.carried.clone(),
        across: report.across.clone(),
        report: serde_json::to_value(report).unwrap_or(serde_json::Value::Null),
        adjusted: Vec::new(),
    }
}

/// The write of a stored reconciliation (replacing any earlier one of the period).
pub fn store_write(
    network: Network,
    period: &ReconPeriod,
    version: u64,
    stored: &StoredRecon,
) -> Result<DocumentWrite, LedgerError> {
    DocumentWrite::json(
        KIND_RECON_REPORT,
        &report_id(network, period),
        version,
        stored,
    )
}

/// What the network owes the bank by its file: succeeded debits less succeeded credits and
/// refunds, in minor units.
pub fn net_minor(file: &ReconFile) -> i64 {
    file.lines
        .iter()
        .filter(|l| l.status == ReconStatus::Succeeded)
        .map(|l| match l.kind {
            ReconKind::Debit => i128::from(l.amount.minor),
            ReconKind::Credit | ReconKind::Refund => -i128::from(l.amount.minor),
        })
        .sum::<i128>()
        .try_into()
        .unwrap_or(i64::MAX)
}
