//! The recovery worker of outbound clearing calls: every call the network did not answer is
//! queried with backoff and settled ([`super::outbound::recover`]). It works from the durable
//! records alone, so a restarted gateway (or any of several gateways on one database) resumes
//! every unfinished call; each settlement checks the record's version, so two workers, or a
//! worker and the client's retry, never settle one call twice.

use async_trait::async_trait;
use futures::{StreamExt, stream::FuturesUnordered};

use super::{
    outbound::{
        CallState, KIND_OUTBOUND, KIND_OUTBOUND_QUEUE, NewCall, OutboundCall, OutboundPurpose,
        Recovery, recover,
    },
    *,
};
use crate::ledger::{DocumentWrite, StoredDocument, TransactionId};

/// The worker's progress: the queue entry before which every call is settled.
const KIND_RECOVERY_CURSOR: &str = "recovery_cursor";
const CURSOR_OUTBOUND: &str = "outbound";
/// Most queue entries one round looks at.
pub const RECOVERY_SCAN_MAX: usize = 5_000;
/// Queue entries read per page.
const RECOVERY_PAGE: u32 = 500;
/// The cursor never passes a call sent less than this long ago, so a call recorded by a
/// process whose clock lags (up to this much) is still scanned.
const CURSOR_LAG_MS: i64 = 60_000;

/// Settles the calls of a purpose the account service does not own (the cashier's quick pays
/// and card refunds, the credit service's card repayments).
#[async_trait]
pub trait CallSettler: Send + Sync {
    /// Whether it settles calls of `purpose`.
    fn settles(&self, purpose: OutboundPurpose) -> bool;

    /// Settles `call` (at `version`) in `state`, with its record in the same batch. A call
    /// someone settled first is fine (`Ok`).
    async fn settle_call(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), AccountError>;
}

/// The settlers of the services above the account service, each for its own purposes: a call
/// goes to the first that settles its purpose.
pub struct Settlers(pub Vec<Arc<dyn CallSettler>>);

#[async_trait]
impl CallSettler for Settlers {
    fn settles(&self, purpose: OutboundPurpose) -> bool {
        self.0.iter().any(|s| s.settles(purpose))
    }

    async fn settle_call(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), AccountError> {
        match self.0.iter().find(|s| s.settles(call.purpose)) {
            Some(settler) => settler.settle_call(call, version, state, presumed).await,
            None => Err(AccountError::corrupt(format!(
                "no settler for {:?} call {}",
                call.purpose, call.reference
            ))),
        }
    }
}

/// A call as recorded: its record, the record's version, and the journal transaction its
/// settlement posted (a success only).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub call: OutboundCall,
    pub version: u64,
    pub transaction: Option<TransactionId>,
}

/// What one round of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryRound {
    /// Queue entries looked at.
    pub scanned: usize,
    /// Calls settled (by the network's answer or by presumption).
    pub settled: usize,
    /// Calls still unanswered, queried again later.
    pub waiting: usize,
}

impl AccountService {
    /// Runs the recovery worker until the ledger shuts down.
    pub fn spawn_recovery(&self, others: Arc<dyn CallSettler>) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let interval = Duration::from_millis(self.inner.clearing.recovery().interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let now_ms = service.inner.ledger.now_ms();
                match service.recover_due(now_ms, others.as_ref()).await {
                    Ok(_) => {}
                    Err(AccountError::Ledger(LedgerError::ShuttingDown)) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "clearing recovery round failed; retrying")
                    }
                }
            }
        })
    }

    /// One round at `now_ms`: every unsettled call whose query is due is queried and settled
    /// or rescheduled, oldest first; the cursor moves past the calls settled before it.
    pub async fn recover_due(
        &self,
        now_ms: i64,
        others: &dyn CallSettler,
    ) -> Result<RecoveryRound, AccountError> {
        let ledger = &self.inner.ledger;
        let cursor_doc = ledger
            .document(KIND_RECOVERY_CURSOR, CURSOR_OUTBOUND)
            .await?;
        let (cursor, cursor_version) = match &cursor_doc {
            Some(doc) => (decode::<String>(doc)?, doc.version),
            None => (String::new(), 0),
        };
        let mut round = RecoveryRound::default();
        let mut after = cursor.clone();
        let mut passed = None;
        let mut contiguous = true;
        let mut due = Vec::new();
        'scan: while round.scanned < RECOVERY_SCAN_MAX {
            let page = ledger
                .documents_after(KIND_OUTBOUND_QUEUE, &after, RECOVERY_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            for entry in page {
                round.scanned += 1;
                after.clone_from(&entry.id);
                let reference: String = decode(&entry)?;
                let Some(Recorded { call, version, .. }) =
                    self.outbound_call_opt(&reference).await?
                else {
                    tracing::error!(%reference, "a recovery queue entry without its call record; skipped");
                    continue;
                };
                if call.state.is_final() {
                    if contiguous && call.sent_at_ms < now_ms.saturating_sub(CURSOR_LAG_MS) {
                        passed = Some(entry.id.clone());
                    }
                } else {
                    contiguous = false;
                    if call.next_query_at_ms <= now_ms {
                        due.push((call, version));
                    }
                }
                if round.scanned >= RECOVERY_SCAN_MAX {
                    break 'scan;
                }
            }
        }
        // The due calls, several at once: each settles under its record's version, so the
        // order they finish in does not matter.
        let concurrent = self.inner.clearing.recovery().queries_concurrent_max.max(1);
        let mut waiting = due.iter();
        let mut settling = FuturesUnordered::new();
        loop {
            while settling.len() < concurrent {
                let Some((call, version)) = waiting.next() else {
                    break;
                };
                settling.push(self.recover_one(call, *version, now_ms, others));
            }
            let Some(settled) = settling.next().await else {
                break;
            };
            match settled? {
                true => round.settled += 1,
                false => round.waiting += 1,
            }
        }
        drop(settling);
        if let Some(passed) = passed {
            let write = DocumentWrite::json(
                KIND_RECOVERY_CURSOR,
                CURSOR_OUTBOUND,
                cursor_version,
                &passed,
            )?;
            let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("recovery-cursor/{passed}"));
            match ledger.submit(key, documents_only(vec![write])).await {
                // Another worker moved it meanwhile: the next round starts from there.
                Ok(_) | Err(LedgerError::DocumentConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(round)
    }

    /// Queries and settles or reschedules one call; `true` when it settled.
    async fn recover_one(
        &self,
        call: &OutboundCall,
        version: u64,
        now_ms: i64,
        others: &dyn CallSettler,
    ) -> Result<bool, AccountError> {
        let client = self.client_of(call.network)?;
        let policy = self.inner.clearing.recovery();
        match recover(client.as_ref(), call, now_ms, policy).await {
            Recovery::Settle { state, presumed } => {
                self.settle_recorded(call, version, state, presumed, others)
                    .await?;
                Ok(true)
            }
            Recovery::Wait { next_query_at_ms } => {
                let mut later = call.clone();
                later.queries = later.queries.saturating_add(1);
                later.next_query_at_ms = next_query_at_ms;
                let key = IdempotencyKey::new(
                    SYSTEM_SCOPE,
                    format!("recover/{}/{version}", call.reference),
                );
                match self
                    .inner
                    .ledger
                    .submit(key, documents_only(later.write(version)?))
                    .await
                {
                    Ok(_) | Err(LedgerError::DocumentConflict { .. }) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Settles `call` (at `version`) in `state`, by the service of its purpose: the account
    /// service its own card movements, `others` the rest — the posting, the service's state
    /// and the record in one batch, under the record's version, so at most once. The recovery
    /// worker's path, and a result notice's.
    pub(super) async fn settle_recorded(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
        others: &dyn CallSettler,
    ) -> Result<(), AccountError> {
        match call.purpose {
            OutboundPurpose::TopUp | OutboundPurpose::Withdrawal => {
                self.recover_movement(call, version, state, presumed).await
            }
            OutboundPurpose::QuickPay
            | OutboundPurpose::CardRefund
            | OutboundPurpose::CreditRepayment => {
                others.settle_call(call, version, state, presumed).await
            }
        }
    }

    /// Settles a top-up's or withdrawal's reservation as the worker found the call: post it
    /// (the network booked it) or void it, with the record in the same batch.
    async fn recover_movement(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), AccountError> {
        let ledger = &self.inner.ledger;
        let pending = match ledger.answered_request(&call.key(), &call.print).await? {
            Some(Ok(Outcome::Pending(pending))) => pending.id,
            other => {
                tracing::error!(reference = %call.reference, answer = ?other.map(|a| a.map(|_| ())), "a recorded card movement without its reservation");
                return Err(AccountError::corrupt(format!(
                    "outbound call {} without its reservation",
                    call.reference
                )));
            }
        };
        let inner = match state {
            CallState::Succeeded { .. } => Command::PostPending {
                pending,
                amount: None,
            },
            _ => Command::VoidPending { pending },
        };
        let record = call.settled(state, presumed);
        let command = Command::with_documents(inner, record.write(version)?);
        let key = IdempotencyKey::new(
            SYSTEM_SCOPE,
            format!("recover/{}/{version}", call.reference),
        );
        match ledger.submit(key, command).await {
            Ok(_) | Err(LedgerError::DocumentConflict { .. }) => Ok(()),
            // The reservation expired (its timeout is above the recovery bound, so only when
            // the worker was stopped that long): the funds are back; the record says so, for
            // reconciliation.
            Err(LedgerError::PendingExpired { .. }) => {
                let expired = call.settled(
                    CallState::Failed {
                        reason: "RESERVATION_EXPIRED".to_owned(),
                    },
                    true,
                );
                let key = IdempotencyKey::new(
                    SYSTEM_SCOPE,
                    format!("recover/{}/{version}/expired", call.reference),
                );
                match ledger
                    .submit(key, documents_only(expired.write(version)?))
                    .await
                {
                    Ok(_) | Err(LedgerError::DocumentConflict { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The record of a call about to be sent now, first queried after the configured delay.
    pub fn new_call(&self, call: NewCall<'_>) -> OutboundCall {
        OutboundCall::new(
            call,
            self.inner.ledger.now_ms(),
            self.inner.clearing.recovery().first_query_after_ms,
        )
    }

    /// The call `fresh` describes as recorded, at its version; an on-us call, never recorded,
    /// is `fresh` itself at version 0. (A recorded call is read even when the route is on-us
    /// now: a retry after a routing change continues the call its first attempt sent.)
    pub async fn outbound_call_for(&self, fresh: OutboundCall) -> Result<Recorded, AccountError> {
        match self.outbound_call_opt(&fresh.reference).await? {
            Some(recorded) => Ok(recorded),
            None if !fresh.is_recorded() => Ok(Recorded {
                call: fresh,
                version: 0,
                transaction: None,
            }),
            None => Err(AccountError::corrupt(format!(
                "outbound call {} is not recorded",
                fresh.reference
            ))),
        }
    }

    /// The record of the outbound call under our `reference`, at its version.
    pub async fn outbound_call(&self, reference: &str) -> Result<Recorded, AccountError> {
        self.outbound_call_opt(reference).await?.ok_or_else(|| {
            AccountError::corrupt(format!("outbound call {reference} is not recorded"))
        })
    }

    pub(super) async fn outbound_call_opt(
        &self,
        reference: &str,
    ) -> Result<Option<Recorded>, AccountError> {
        let doc = self.inner.ledger.document(KIND_OUTBOUND, reference).await?;
        doc.map(|doc| {
            let call: OutboundCall = decode(&doc)?;
            // Only a settlement that posted (a success) names a transaction.
            let transaction = match call.state {
                CallState::Succeeded { .. } => doc.transaction,
                CallState::Sent | CallState::Failed { .. } => None,
            };
            Ok(Recorded {
                call,
                version: doc.version,
                transaction,
            })
        })
        .transpose()
    }

    /// The client of `network` (every routed network has one).
    pub fn client_of(
        &self,
        network: Network,
    ) -> Result<Arc<dyn crate::clearing::ClearingClient>, AccountError> {
        self.inner.clearing.client(network).cloned().ok_or_else(|| {
            AccountError::corrupt(format!("no client for the {} network", network.as_str()))
        })
    }

    /// The clearing suspense account of `network`.
    pub fn suspense_of(&self, network: Network) -> Result<AccountId, AccountError> {
        self.internal_account(InternalPurpose::ClearingSuspense(network))
            .ok_or_else(|| {
                AccountError::corrupt(format!("no suspense account for {}", network.as_str()))
            })
    }
}

/// A command that writes documents only.
fn documents_only(documents: Vec<DocumentWrite>) -> Command {
    Command::with_documents(Command::NoOp, documents)
}

fn decode<T: serde::de::DeserializeOwned>(doc: &StoredDocument) -> Result<T, AccountError> {
    serde_json::from_str(&doc.body)
        .map_err(|e| AccountError::corrupt(format!("{} {} does not decode: {e}", doc.kind, doc.id)))
}
