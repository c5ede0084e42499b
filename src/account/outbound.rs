//! Outbound calls (出站指令) to a clearing network. Each is **recorded before it is sent**, in
//! the batch that reserves its funds, under our reference derived from the request; the
//! network's answer settles it in the batch that posts or voids the funds; a call the network
//! did not answer is settled by the recovery worker ([`recover`]): it queries with backoff,
//! then posts, voids or reverses (冲正), and past the configured bound reverses and finalises
//! it as failed by the presumption rule, flagged for reconciliation. The record is the durable
//! to-do list: a restarted gateway resumes every unfinished call from it.

use serde::{Deserialize, Serialize};

use crate::{
    clearing::{
        CardDirection, ClearingClient, ClearingOutcome, Network, QueryOutcome, ReversalOutcome,
        routing::RecoveryConfig,
    },
    ledger::{DocumentWrite, IdempotencyKey, Ledger, LedgerError},
};

/// The record of one outbound call, by our reference.
pub const KIND_OUTBOUND: &str = "outbound";
/// The recovery worker's queue: `<sent at ms, 20 digits>/<reference>`, so it scans in the
/// order calls were sent.
pub const KIND_OUTBOUND_QUEUE: &str = "outbound_queue";

/// What an outbound call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundPurpose {
    /// A top-up from the bound card (the card is debited).
    TopUp,
    /// A withdrawal to the bound card (the card is credited).
    Withdrawal,
    /// A quick-pay (快捷支付) order payment (the card is debited).
    QuickPay,
    /// A refund of a card payment (the card is credited).
    CardRefund,
    /// A credit line repaid from the bound card (the card is debited).
    CreditRepayment,
}

/// Where a call stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallState {
    /// Sent (or about to be); no definite answer yet.
    Sent,
    Succeeded {
        network_reference: String,
    },
    Failed {
        reason: String,
    },
}

impl CallState {
    pub fn is_final(&self) -> bool {
        !matches!(self, CallState::Sent)
    }

    /// The state a definite answer leaves the call in; `None` for no answer.
    pub fn of(outcome: &ClearingOutcome) -> Option<CallState> {
        match outcome {
            ClearingOutcome::Succeeded { network_reference } => Some(CallState::Succeeded {
                network_reference: network_reference.clone(),
            }),
            ClearingOutcome::Failed { reason } => Some(CallState::Failed {
                reason: reason.clone(),
            }),
            ClearingOutcome::Unknown => None,
        }
    }
}

/// One outbound call as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundCall {
    /// Our reference (the network de-duplicates on it).
    pub reference: String,
    pub network: Network,
    pub purpose: OutboundPurpose,
    pub direction: CardDirection,
    pub amount_minor: i64,
    /// The request that made the call: its caller, request id and fingerprint, so the worker
    /// finds what the request reserved.
    pub caller: String,
    pub request_id: String,
    pub print: String,
    /// The account (a card movement) or the order (quick pay) the call is for.
    pub subject: String,
    /// Its entry in the recovery queue.
    pub queued_as: String,
    pub sent_at_ms: i64,
    #[serde(flatten)]
    pub state: CallState,
    /// Queries the worker has made.
    pub queries: u32,
    /// When the worker queries next.
    pub next_query_at_ms: i64,
    /// Finalised past the bound by the presumption rule, not by the network: a reconciliation
    /// item.
    pub presumed: bool,
}

/// What the record of a call needs besides its reference and time.
pub struct NewCall<'a> {
    pub network: Network,
    pub purpose: OutboundPurpose,
    pub direction: CardDirection,
    pub amount_minor: i64,
    pub key: &'a IdempotencyKey,
    pub print: &'a str,
    pub subject: String,
}

impl OutboundCall {
    /// The record of a call about to be sent at `now_ms`, first queried `first_query_after_ms`
    /// later.
    pub fn new(call: NewCall<'_>, now_ms: i64, first_query_after_ms: u64) -> OutboundCall {
        let reference = reference_of(call.key);
        OutboundCall {
            queued_as: format!("{:020}/{reference}", now_ms.max(0)),
            reference,
            network: call.network,
            purpose: call.purpose,
            direction: call.direction,
            amount_minor: call.amount_minor,
            caller: call.key.scope.clone(),
            request_id: call.key.key.clone(),
            print: call.print.to_owned(),
            subject: call.subject,
            sent_at_ms: now_ms,
            state: CallState::Sent,
            queries: 0,
            next_query_at_ms: now_ms.saturating_add(ms(first_query_after_ms)),
            presumed: false,
        }
    }

    /// The request's idempotency key.
    pub fn key(&self) -> IdempotencyKey {
        IdempotencyKey::new(&self.caller, self.request_id.clone())
    }

    /// Whether the call is recorded at all. On-us is the bank's own book, answered in process
    /// and at once: nothing to recover, so nothing is written for it.
    pub fn is_recorded(&self) -> bool {
        self.network != Network::ON_US
    }

    /// The writes that record it first: the record and its queue entry (none on-us).
    pub fn recorded(&self) -> Result<Vec<DocumentWrite>, LedgerError> {
        if !self.is_recorded() {
            return Ok(Vec::new());
        }
        Ok(vec![
            DocumentWrite::json(KIND_OUTBOUND, &self.reference, 0, self)?,
            DocumentWrite::json(KIND_OUTBOUND_QUEUE, &self.queued_as, 0, &self.reference)?,
        ])
    }

    /// The write of this record over `version` (none on-us).
    pub fn write(&self, version: u64) -> Result<Vec<DocumentWrite>, LedgerError> {
        if !self.is_recorded() {
            return Ok(Vec::new());
        }
        Ok(vec![DocumentWrite::json(
            KIND_OUTBOUND,
            &self.reference,
            version,
            self,
        )?])
    }

    /// The record settled in `state`.
    pub fn settled(&self, state: CallState, presumed: bool) -> OutboundCall {
        debug_assert!(state.is_final());
        OutboundCall {
            state,
            presumed,
            ..self.clone()
        }
    }
}

/// Our reference for the call of request `key`: derived from the caller and the request id,
/// so a retry (in any process, after any restart) sends the same reference.
pub fn reference_of(key: &IdempotencyKey) -> String {
    crate::clearing::reference_for(&format!("{}\u{1f}{}", key.scope, key.key))
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Most calls one reconciliation reads.
pub const RECON_CALLS_MAX: usize = 200_000;

/// The calls to `network` sent within `[from_ms, to_ms)`, in the order they were sent.
pub async fn calls_sent_between(
    ledger: &Ledger,
    network: Network,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<OutboundCall>, LedgerError> {
    let mut after = format!("{:020}", from_ms.max(0));
    let end = format!("{:020}", to_ms.max(0));
    let mut calls = Vec::new();
    'pages: loop {
        let page = ledger
            .documents_after(KIND_OUTBOUND_QUEUE, &after, 500)
            .await?;
        if page.is_empty() {
            break;
        }
        for entry in page {
            if entry.id >= end || calls.len() >= RECON_CALLS_MAX {
                break 'pages;
            }
            after.clone_from(&entry.id);
            let reference: String = serde_json::from_str(&entry.body).map_err(|e| {
                tracing::error!(id = %entry.id, error = %e, "an outbound queue entry does not decode");
                LedgerError::Storage
            })?;
            let Some(doc) = ledger.document(KIND_OUTBOUND, &reference).await? else {
                continue;
            };
            let call: OutboundCall = serde_json::from_str(&doc.body).map_err(|e| {
                tracing::error!(%reference, error = %e, "an outbound call record does not decode");
                LedgerError::Storage
            })?;
            if call.network == network {
                calls.push(call);
            }
        }
    }
    Ok(calls)
}

/// What the recovery worker does with an unanswered call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Settle it: the network's answer, or the presumption past the bound (`presumed`).
    Settle { state: CallState, presumed: bool },
    /// Still no answer: query again at `next_query_at_ms`.
    Wait { next_query_at_ms: i64 },
}

/// Decides an unanswered call at `now_ms` by asking `client`:
/// - booked and not reversed: its outcome; booked and reversed: failed;
/// - never received: reversed (so a late arrival is void), then failed;
/// - no answer: wait, with the wait doubling up to `query_backoff_max_ms`; past `bound_ms`
///   reversed and failed by presumption (the payer side unknown is presumed failed).
pub async fn recover(
    client: &dyn ClearingClient,
    call: &OutboundCall,
    now_ms: i64,
    policy: &RecoveryConfig,
) -> Recovery {
    debug_assert!(!call.state.is_final());
    let answered = match crate::clearing::query(client, &call.reference).await {
        QueryOutcome::Found { reversed: true, .. } => Some(CallState::Failed {
            reason: "REVERSED".to_owned(),
        }),
        QueryOutcome::Found { outcome, .. } => CallState::of(&outcome.folded()),
        QueryOutcome::NotFound => match crate::clearing::reverse(client, &call.reference).await {
            ReversalOutcome::Reversed | ReversalOutcome::NothingToReverse => {
                Some(CallState::Failed {
                    reason: "NOT_RECEIVED".to_owned(),
                })
            }
            ReversalOutcome::Refused { .. } | ReversalOutcome::Unknown => None,
        },
        QueryOutcome::Unknown => None,
    };
    if let Some(state) = answered {
        return Recovery::Settle {
            state,
            presumed: false,
        };
    }
    if now_ms.saturating_sub(call.sent_at_ms) >= ms(policy.bound_ms) {
        let reversal = crate::clearing::reverse(client, &call.reference).await;
        tracing::warn!(
            reference = %call.reference,
            network = call.network.as_str(),
            ?reversal,
            "a clearing call unanswered past its bound is presumed failed; flagged for reconciliation"
        );
        return Recovery::Settle {
            state: CallState::Failed {
                reason: "PRESUMED_FAILED".to_owned(),
            },
            presumed: true,
        };
    }
    let doubled = ms(policy.first_query_after_ms)
        .saturating_mul(1_i64 << call.queries.min(20))
        .min(ms(policy.query_backoff_max_ms));
    Recovery::Wait {
        next_query_at_ms: now_ms.saturating_add(doubled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::nets_union;

    #[test]
    fn the_reference_is_the_same_for_a_retry_and_differs_between_callers() {
        let a = IdempotencyKey::new("bank-app", "r-1".to_owned());
        let b = IdempotencyKey::new("core-banking", "r-1".to_owned());
        assert_eq!(reference_of(&a), reference_of(&a.clone()));
        assert_ne!(reference_of(&a), reference_of(&b));
        assert!(crate::clearing::reference_is_valid(&reference_of(&a)));
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let key = IdempotencyKey::new("bank-app", "r-1".to_owned());
        let call = OutboundCall::new(
            NewCall {
                network: nets_union::NETWORK,
                purpose: OutboundPurpose::TopUp,
                direction: CardDirection::DebitCard,
                amount_minor: 100,
                key: &key,
                print: "top_up|1",
                subject: "1".to_owned(),
            },
            1_000,
            5_000,
        );
        assert_eq!(call.next_query_at_ms, 6_000);
        assert!(call.queued_as.ends_with(&call.reference));
        let text = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<OutboundCall>(&text).unwrap(), call);
        let settled = call.settled(
            CallState::Succeeded {
                network_reference: "N1".to_owned(),
            },
            false,
        );
        let text = serde_json::to_string(&settled).unwrap();
        assert!(text.contains("\"state\":\"SUCCEEDED\""), "{text}");
        assert_eq!(
            serde_json::from_str::<OutboundCall>(&text).unwrap(),
            settled
        );
    }
}
