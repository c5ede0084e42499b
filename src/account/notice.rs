//! Result notices (交易结果通知) of the clearing networks: a network that did not answer a
//! movement in time pushes its outcome when it completes. A notice the receiver has
//! authenticated settles the recorded call through the recovery worker's own path
//! ([`AccountService::settle_recorded`]): the posting, the order, refund or repayment and the
//! call's record in one batch, under the record's version — so a notice, the worker, the
//! request's retry and a duplicate notice settle a call once between them.

use super::{
    outbound::{CallState, OutboundCall},
    *,
};
use crate::clearing::notice::Notice;

/// How many times a notice settles and reads its call again when the record moved under it
/// (the worker rescheduling its next query at the same moment).
const NOTICE_SETTLE_ATTEMPTS: usize = 3;

/// What a notice did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeVerdict {
    /// It settled the call.
    Settled,
    /// The call was final already (by its answer, a retry, the worker or an earlier notice):
    /// nothing changed.
    AlreadyFinal,
    /// The network says it has not decided yet: nothing to do.
    NotFinal,
    /// No call went to this network under this reference.
    UnknownReference,
    /// The notice's amount is not the one we sent: refused, nothing settled.
    AmountDiffers { ours_minor: i64 },
    /// The record kept moving under the notice: nothing settled yet, the network should resend.
    Busy,
}

impl AccountService {
    /// Now, by the ledger's clock (what a network's acknowledgement is stamped with).
    pub fn now_ms(&self) -> i64 {
        self.inner.ledger.now_ms()
    }

    /// Settles the call `notice` is about, as `network` reports it. A notice about another
    /// network's call, or for another amount, changes nothing.
    pub async fn settle_notice(
        &self,
        network: Network,
        notice: &Notice,
        others: &dyn CallSettler,
    ) -> Result<NoticeVerdict, AccountError> {
        let told = CallState::of(&notice.outcome.clone().folded());
        for attempt in 0..=NOTICE_SETTLE_ATTEMPTS {
            let Some(Recorded { call, version, .. }) =
                self.outbound_call_opt(&notice.reference).await?
            else {
                return Ok(NoticeVerdict::UnknownReference);
            };
            if call.network != network {
                return Ok(NoticeVerdict::UnknownReference);
            }
            if call.amount_minor != notice.amount.minor {
                return Ok(NoticeVerdict::AmountDiffers {
                    ours_minor: call.amount_minor,
                });
            }
            if call.state.is_final() {
                if attempt > 0 {
                    return Ok(NoticeVerdict::Settled);
                }
                if let Some(told) = &told {
                    warn_if_contradicted(&call, told);
                }
                return Ok(NoticeVerdict::AlreadyFinal);
            }
            let Some(state) = told.clone() else {
                return Ok(NoticeVerdict::NotFinal);
            };
            if attempt < NOTICE_SETTLE_ATTEMPTS {
                self.settle_recorded(&call, version, state, false, others)
                    .await?;
            }
        }
        Ok(NoticeVerdict::Busy)
    }
}

/// A notice that says the opposite of how the call was settled (say, presumed failed past the
/// bound, then booked after all) changes nothing here: reconciliation reports the break.
fn warn_if_contradicted(call: &OutboundCall, told: &CallState) {
    let succeeded = |s: &CallState| matches!(s, CallState::Succeeded { .. });
    if succeeded(told) != succeeded(&call.state) {
        tracing::warn!(
            reference = %call.reference,
            network = call.network.as_str(),
            settled = ?call.state,
            notice = ?told,
            presumed = call.presumed,
            "a result notice contradicts how the call was settled; left to reconciliation"
        );
    }
}
