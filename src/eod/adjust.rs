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
    account::AccountError,
    account::{AccountService, InternalPurpose, outbound::OutboundCall},
    clearing::{
        CardDirection, Network, ReconPeriod,
        matching::{Break, OurStatus},
        recon::{ReconKind, ReconStatus},
    },
    ledger::{
        Command, DocumentWrite, IdempotencyKey, Ledger, LedgerError, Metadata, NewTransaction,
        Outcome, RequestId, audit,
    },
    money::Money,
    text::{TextRefusal, check_free_text},
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
    /// The caller's request id (the RPC); `None` from the command line.
    pub request_id: Option<RequestId>,
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
    /// The request id it was made under (the RPC): the same request again answers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Why a break was not adjusted (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    #[error("{field}: {refusal}")]
    Text {
        field: &'static str,
        refusal: TextRefusal,
    },
    #[error(
        "no stored reconciliation of {id}: the end-of-day run reconciles a date before its \
         breaks can be adjusted"
    )]
    NotStored { id: String },
    #[error("{id} has no break under {reference}")]
    NoSuchBreak { id: String, reference: String },
    #[error("the break {reference} of {id} was adjusted already, by {operator} ({reason})")]
    AlreadyAdjusted {
        id: String,
        reference: String,
        operator: String,
        reason: String,
    },
    #[error("the break {reference} of {id} leaves nothing in the suspense account")]
    NothingToAdjust { id: String, reference: String },
    #[error("{id} changed meanwhile (another adjustment or a new reconciliation): try again")]
    Conflict { id: String },
    /// A stored reconciliation or answer that does not read back.
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Account(Box<AccountError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<AccountError> for AdjustError {
    fn from(e: AccountError) -> AdjustError {
        match e {
            AccountError::Ledger(e) => AdjustError::Ledger(e),
            e => AdjustError::Account(Box::new(e)),
        }
    }
}

/// Adjusts the break `a` names; `Err` says why not, and nothing is written. The same request id
/// again (by the same operator) answers the adjustment it made.
pub async fn adjust_break(
    ledger: &Ledger,
    accounts: &AccountService,
    a: &BreakAdjustment,
) -> Result<AdjustedBreak, AdjustError> {
    let text = |field, refusal| AdjustError::Text { field, refusal };
    check_free_text(&a.operator, true, OPERATOR_CHARS_MAX).map_err(|e| text("operator", e))?;
    check_free_text(&a.reason, true, REASON_CHARS_MAX).map_err(|e| text("reason", e))?;
    let id = report_id(a.network, &a.period);
    let doc = ledger
        .document(KIND_RECON_REPORT, &id)
        .await?
        .ok_or_else(|| AdjustError::NotStored { id: id.clone() })?;
    let mut stored: StoredRecon = serde_json::from_str(&doc.body)
        .map_err(|e| AdjustError::Corrupt(format!("{id} does not decode: {e}")))?;
    let request_id = a.request_id.as_ref().map(|r| r.as_str().to_owned());
    if let Some(done) = stored.adjusted.iter().find(|d| d.reference == a.reference) {
        if request_id.is_some() && done.request_id == request_id && done.operator == a.operator {
            // The same request again answers what it did; the same id for another is reuse.
            if done.reason != a.reason {
                return Err(LedgerError::IdempotencyKeyReused {
                    key: request_id.unwrap_or_default(),
                }
                .into());
            }
            return Ok(done.clone());
        }
        return Err(AdjustError::AlreadyAdjusted {
            id,
            reference: a.reference.clone(),
            operator: done.operator.clone(),
            reason: done.reason.clone(),
        });
    }
    let breaks: Vec<Break> = serde_json::from_value(stored.report["breaks"].clone())
        .map_err(|e| AdjustError::Corrupt(format!("{id}'s breaks do not decode: {e}")))?;
    let found = breaks
        .iter()
        .find(|b| b.reference == a.reference)
        .ok_or_else(|| AdjustError::NoSuchBreak {
            id: id.clone(),
            reference: a.reference.clone(),
        })?;
    let ours = match found.ours_status {
        Some(OurStatus::Succeeded) => {
            let call: OutboundCall = accounts.outbound_call(&a.reference).await?.call;
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
        return Err(AdjustError::NothingToAdjust {
            id,
            reference: a.reference.clone(),
        });
    }
    let suspense = accounts.suspense_of(a.network)?;
    let adjustment = accounts
        .internal_account_opened(InternalPurpose::ReconAdjustment)
        .await?;
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
        request_id,
    };
    stored.adjusted.push(done.clone());
    let write = DocumentWrite::json(KIND_RECON_REPORT, &id, doc.version, &stored)?;
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
    let key = match &a.request_id {
        Some(request_id) => request_id.key(&a.operator),
        None => IdempotencyKey::new(
            format!("operator:{}", a.operator),
            format!("recon-adjust/{id}/{}", a.reference),
        ),
    };
    let submit = ledger.submit(key, command);
    // From the command line the adjustment is audited under the command; an RPC's is under
    // its method already.
    let submitted = if a.request_id.is_some() {
        submit.await
    } else {
        audit::in_call(Arc::from(AUDIT_METHOD), submit).await
    };
    match submitted {
        Ok(Outcome::Posted(_)) => Ok(done),
        Ok(other) => Err(AdjustError::Corrupt(format!(
            "unexpected outcome {other:?}"
        ))),
        Err(LedgerError::DocumentConflict { .. }) => Err(AdjustError::Conflict { id }),
        Err(e) => Err(e.into()),
    }
}
