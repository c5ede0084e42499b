//! Adjustment (调账) of one reconciliation break, only by an operator's explicit command that
//! names it: `paygate recon --network N --period P --adjust REFERENCE --reason … --operator …`.
//!
//! The break is read from the stored reconciliation of the period (the end-of-day run stores
//! one per network and date). Its difference — what the network's file booked for the
//! reference less what we booked, both as "the network owes the bank" — is what that break
//! leaves in the network's clearing suspense account once the period is settled; the
//! adjustment moves it to the reconciliation-adjustment account (挂账, pending investigation),
//! so the suspense account nets to zero while the case is worked. It is posted once per break
//! (the stored reconciliation records it, in the same batch, with who and why), and audited:
//! the audit log carries the operator as the caller and the command as the method.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    KIND_RECON_REPORT,
    reconcile::{StoredRecon, report_id},
};
use crate::{
    account::{AccountService, InternalPurpose, outbound::OutboundCall},
    clearing::{
        CardDirection, Network, ReconPeriod,
        matching::{Break, OurStatus},
        recon::{ReconKind, ReconStatus},
    },
    ledger::{
        Command, DocumentWrite, IdempotencyKey, Ledger, LedgerError, Metadata, NewTransaction,
        Outcome, audit,
    },
    money::Money,
    text::check_free_text,
};

/// Longest reason, in characters.
pub const REASON_CHARS_MAX: usize = 200;
/// Longest operator name, in characters.
pub const OPERATOR_CHARS_MAX: usize = 64;
/// The method adjustments are audited under.
pub const AUDIT_METHOD: &str = "paygate recon --adjust";

/// What the operator asks.
#[derive(Debug, Clone)]
pub struct BreakAdjustment {
    pub network: Network,
    pub period: ReconPeriod,
    pub reference: String,
    pub operator: String,
    pub reason: String,
}

/// An adjustment as the stored reconciliation records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustedBreak {
    pub reference: String,
    /// Minor units moved out of the suspense account (negative: into it).
    pub amount_minor: i64,
    pub operator: String,
    pub reason: String,
    pub at_ms: i64,
}

/// Adjusts the break `a` names; `Err` says why not, and nothing is written.
pub async fn adjust_break(
    ledger: &Ledger,
    accounts: &AccountService,
    a: &BreakAdjustment,
) -> Result<AdjustedBreak, String> {
    check_free_text(&a.operator, true, OPERATOR_CHARS_MAX)
        .map_err(|e| format!("--operator: {e}"))?;
    check_free_text(&a.reason, true, REASON_CHARS_MAX).map_err(|e| format!("--reason: {e}"))?;
    let id = report_id(a.network, &a.period);
    let doc = ledger
        .document(KIND_RECON_REPORT, &id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no stored reconciliation of {id}: the end-of-day run reconciles a date before \
                 its breaks can be adjusted"
            )
        })?;
    let mut stored: StoredRecon =
        serde_json::from_str(&doc.body).map_err(|e| format!("{id} does not decode: {e}"))?;
    if let Some(done) = stored.adjusted.iter().find(|d| d.reference == a.reference) {
        return Err(format!(
            "the break {} of {id} was adjusted already, by {} ({})",
            a.reference, done.operator, done.reason
        ));
    }
    let breaks: Vec<Break> = serde_json::from_value(stored.report["breaks"].clone())
        .map_err(|e| format!("{id}'s breaks do not decode: {e}"))?;
    let found = breaks
        .iter()
        .find(|b| b.reference == a.reference)
        .ok_or_else(|| format!("{id} has no break under {}", a.reference))?;
    let ours = match found.ours_status {
        Some(OurStatus::Succeeded) => {
            let call: OutboundCall = accounts
                .outbound_call(&a.reference)
                .await
                .map_err(|e| e.to_string())?
                .call;
            let sign = match call.direction {
                CardDirection::DebitCard => 1,
                CardDirection::CreditCard => -1,
            };
            sign * found.ours_amount_minor.unwrap_or(0)
        }
        _ => 0,
    };
    let theirs = match (found.theirs_status, found.theirs_movement) {
        (Some(ReconStatus::Succeeded), Some(ReconKind::Debit)) => {
            found.theirs_amount_minor.unwrap_or(0)
        }
        (Some(ReconStatus::Succeeded), Some(ReconKind::Credit | ReconKind::Refund)) => {
            -found.theirs_amount_minor.unwrap_or(0)
        }
        _ => 0,
    };
    let residual = theirs - ours;
    if residual == 0 {
        return Err(format!(
            "the break {} of {id} leaves nothing in the suspense account",
            a.reference
        ));
    }
    let suspense = accounts.suspense_of(a.network).map_err(|e| e.to_string())?;
    let adjustment = accounts
        .internal_account_opened(InternalPurpose::ReconAdjustment)
        .await
        .map_err(|e| e.to_string())?;
    let amount = Money::new(accounts.rules().currency, residual.saturating_abs());
    let (from, to) = if residual > 0 {
        (suspense, adjustment)
    } else {
        (adjustment, suspense)
    };
    let done = AdjustedBreak {
        reference: a.reference.clone(),
        amount_minor: residual,
        operator: a.operator.clone(),
        reason: a.reason.clone(),
        at_ms: ledger.now_ms(),
    };
    stored.adjusted.push(done.clone());
    let write = DocumentWrite::json(KIND_RECON_REPORT, &id, doc.version, &stored)
        .map_err(|e| e.to_string())?;
    let metadata = Metadata::from([
        ("purpose".to_owned(), "RECON_ADJUSTMENT".to_owned()),
        ("network".to_owned(), a.network.as_str().to_owned()),
        ("period".to_owned(), a.period.as_text()),
        ("reference".to_owned(), a.reference.clone()),
        ("break".to_owned(), found.kind.as_str().to_owned()),
        ("operator".to_owned(), a.operator.clone()),
        ("reason".to_owned(), a.reason.clone()),
    ]);
    let command = Command::with_documents(
        Command::Post(NewTransaction::transfer(from, to, amount, metadata)),
        vec![write],
    );
    let key = IdempotencyKey::new(
        format!("operator:{}", a.operator),
        format!("recon-adjust/{id}/{}", a.reference),
    );
    let submitted = audit::in_call(Arc::from(AUDIT_METHOD), ledger.submit(key, command)).await;
    match submitted {
        Ok(Outcome::Posted(_)) => Ok(done),
        Ok(other) => Err(format!("unexpected outcome {other:?}")),
        Err(LedgerError::DocumentConflict { .. }) => Err(format!(
            "{id} changed meanwhile (another adjustment or a new reconciliation): try again"
        )),
        Err(e) => Err(e.to_string()),
    }
}
