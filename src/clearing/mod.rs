//! Clearing-network clients behind one trait. Each network is one implementation; wire types
//! stay inside its module. A call may time out: an unknown outcome keeps the funds reserved and
//! the movement PROCESSING until a query or reversal settles it.
//!
//! - [`ClearingClient`]: the seam — submit, query by our reference, reverse, refund, fetch the
//!   reconciliation file of a batch or a date.
//! - [`registry`]: every network's [`NetworkSpec`], one line per network; [`Network`] is a
//!   handle on one.
//! - [`on_us`]: the bank's own ledger, in process.
//! - [`nets_union`], [`union_pay_qr`], [`cnaps`], [`wallets`], …: one wire format each, spoken by
//!   [`wire::WireClient`] over HTTP/1.1 ([`http`]) with the caller's W3C `traceparent`.
//! - [`routing`]: payment method × scenario × bank → network, and each network's address and
//!   timeout; [`recon`]: the reconciliation file format; [`netsim`]: the network simulator.

pub mod cnaps;
pub mod e_cny;
pub mod http;
pub mod matching;
pub mod nets_union;
pub mod netsim;
pub mod notice;
pub mod on_us;
pub mod recon;
pub mod registry;
pub mod routing;
pub mod union_pay_qr;
pub mod wallets;
pub mod wire;
mod xml;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::money::Money;

pub use recon::{ReconFile, ReconLine, ReconPeriod, ReconStatus};
pub use registry::{Network, NetworkSpec};

/// Which way money moves between the bank and the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardDirection {
    /// Pull from the card into the bank (top-up).
    DebitCard,
    /// Push from the bank to the card (withdrawal).
    CreditCard,
}

/// Most characters of our reference (NetsUnion's and UnionPay's order numbers allow 32).
pub const REFERENCE_LEN_MAX: usize = 32;

/// Our reference for the outbound call of request `request_id`: `PG` and the first 30 hex
/// digits of its SHA-256, so the same request is always the same reference (networks
/// de-duplicate on it) and a query or reversal after a restart needs only the request id.
pub fn reference_for(request_id: &str) -> String {
    let digest = Sha256::digest(request_id.as_bytes());
    let mut reference = String::with_capacity(REFERENCE_LEN_MAX);
    reference.push_str("PG");
    reference.push_str(&hex::encode(digest)[..REFERENCE_LEN_MAX - 2]);
    debug_assert_eq!(reference.len(), REFERENCE_LEN_MAX);
    reference
}

/// Whether `reference` fits every network's order-number field: 1 to 32 ASCII letters or digits.
pub fn reference_is_valid(reference: &str) -> bool {
    (1..=REFERENCE_LEN_MAX).contains(&reference.len())
        && reference.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One instruction to a network: move `amount` to or from the card named by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInstruction {
    /// Our reference: the same reference is the same instruction (networks de-duplicate on it).
    pub reference: String,
    pub direction: CardDirection,
    pub card_token: String,
    pub amount: Money,
}

/// A refund of an earlier debit, in whole or in part, under a reference of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInstruction {
    pub reference: String,
    /// Our reference of the debit being refunded.
    pub original_reference: String,
    pub amount: Money,
}

/// A network's answer to a submit or a refund, as the network gives it. NetsUnion answers in
/// four ways (success, fail, presumed success 异常成功, presumed failure 异常失败); the others
/// in two; no answer in time is `Unknown` — never a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        network_reference: String,
    },
    Failed {
        code: String,
        reason: String,
    },
    /// Presumed success (异常成功): the payer bank succeeded, the payee bank's answer is unknown.
    PresumedSucceeded {
        network_reference: String,
    },
    /// Presumed failure (异常失败): the payer bank's answer is unknown.
    PresumedFailed {
        code: String,
        reason: String,
    },
    Unknown,
}

impl Outcome {
    /// The three outcomes a payment can act on: presumed success counts as success, presumed
    /// failure as failure; a failure's reason ends with the network's code in brackets.
    pub fn folded(self) -> ClearingOutcome {
        match self {
            Outcome::Succeeded { network_reference }
            | Outcome::PresumedSucceeded { network_reference } => {
                ClearingOutcome::Succeeded { network_reference }
            }
            Outcome::Failed { code, reason } | Outcome::PresumedFailed { code, reason } => {
                let reason = if code.is_empty() {
                    reason
                } else {
                    format!("{reason} ({code})")
                };
                ClearingOutcome::Failed { reason }
            }
            Outcome::Unknown => ClearingOutcome::Unknown,
        }
    }
}

/// A network's answer, folded: what a payment acts on. NetsUnion's presumed success counts as
/// success, presumed failure as failure, and no answer at all is `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearingOutcome {
    Succeeded { network_reference: String },
    Failed { reason: String },
    Unknown,
}

/// What a network says about one of our references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutcome {
    /// It booked the instruction: its outcome, and whether it has since been reversed.
    Found { outcome: Outcome, reversed: bool },
    /// It never received it (safe to submit again under the same reference).
    NotFound,
    /// No answer in time.
    Unknown,
}

/// A network's answer to a reversal (冲正) of one of our references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversalOutcome {
    /// The instruction is void (now, or already by an earlier reversal: reversing is idempotent).
    Reversed,
    /// Nothing to reverse: never received, or it had failed.
    NothingToReverse,
    /// The network refuses (e.g. past its cutover): refund instead.
    Refused {
        code: String,
        reason: String,
    },
    Unknown,
}

/// Why a reconciliation file could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClearingError {
    #[error("the network did not answer in time")]
    Unavailable,
    #[error("the network answered with something unreadable: {0}")]
    Malformed(String),
    #[error("the network refused: {0}")]
    Refused(String),
}

/// A clearing-network client. Every call is bounded by the network's timeout; no answer in
/// time is `Unknown`.
#[async_trait]
pub trait ClearingClient: Send + Sync {
    fn network(&self) -> Network;

    /// Submits an instruction; resubmitting the same reference returns the first outcome.
    async fn submit(&self, instruction: &CardInstruction) -> Outcome;

    /// What the network booked under our `reference`.
    async fn query(&self, reference: &str) -> QueryOutcome;

    /// Reversal (冲正): voids the instruction under our `reference`; idempotent.
    async fn reverse(&self, reference: &str) -> ReversalOutcome;

    /// Refunds (part of) an earlier debit.
    async fn refund(&self, refund: &RefundInstruction) -> Outcome;

    /// The network's reconciliation file for a batch (NetsUnion) or a business date.
    async fn reconciliation_file(&self, period: &ReconPeriod) -> Result<ReconFile, ClearingError>;
}

/// Submits through `client` inside a `clearing.submit` span: a child of the call's span, so the
/// call's trace (and its W3C `traceparent`, with OpenTelemetry on) follows the money to the
/// network. A network client on the wire injects that context into its own request.
pub async fn submit(client: &dyn ClearingClient, instruction: &CardInstruction) -> ClearingOutcome {
    let span = tracing::info_span!(
        "clearing.submit",
        network = client.network().as_str(),
        reference = %instruction.reference
    );
    client.submit(instruction).instrument(span).await.folded()
}

/// Queries through `client` inside a `clearing.query` span.
pub async fn query(client: &dyn ClearingClient, reference: &str) -> QueryOutcome {
    let span = tracing::info_span!(
        "clearing.query",
        network = client.network().as_str(),
        reference
    );
    client.query(reference).instrument(span).await
}

/// Reverses through `client` inside a `clearing.reverse` span.
pub async fn reverse(client: &dyn ClearingClient, reference: &str) -> ReversalOutcome {
    let span = tracing::info_span!(
        "clearing.reverse",
        network = client.network().as_str(),
        reference
    );
    client.reverse(reference).instrument(span).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_derived_from_the_request_id_and_fits_every_network() {
        let first = reference_for("topup-1");
        assert_eq!(first, reference_for("topup-1"));
        assert_ne!(first, reference_for("topup-2"));
        assert!(reference_is_valid(&first), "{first}");
        assert!(!reference_is_valid("has space"));
        assert!(!reference_is_valid(&"A".repeat(33)));
    }

    #[test]
    fn presumed_outcomes_fold_into_success_and_failure() {
        let presumed = Outcome::PresumedSucceeded {
            network_reference: "N1".into(),
        };
        assert_eq!(
            presumed.folded(),
            ClearingOutcome::Succeeded {
                network_reference: "N1".into()
            }
        );
        let failed = Outcome::PresumedFailed {
            code: "03".into(),
            reason: "payer bank unknown".into(),
        };
        assert!(matches!(failed.folded(), ClearingOutcome::Failed { .. }));
        assert_eq!(Outcome::Unknown.folded(), ClearingOutcome::Unknown);
    }
}
