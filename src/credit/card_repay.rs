//! Repayment from the bound card: the card of the line's account is debited through its
//! clearing network exactly as a top-up is (routed as a top-up, the call recorded before it is
//! sent, our reference derived from the request, the network's timeout, the recovery worker for
//! an unknown outcome), and the money is allocated to the line by the rule of any repayment
//! ([`super::allocate`]) **in the batch that settles the call**:
//!
//! ```text
//! record:   the outbound call (none on-us) and the repayment PROCESSING     (one batch)
//! success:  Dr card suspense   Cr line receivable (allocated)
//!                              Cr line's account  (surplus, if any)
//!           + the allocation's line, plans and counters, the call and the repayment settled
//! declined: the call and the repayment FAILED with the network's reason; nothing posted
//! ```
//!
//! An unknown outcome answers PROCESSING; a retry of the request sends again under the same
//! reference (networks de-duplicate on it) and the recovery worker queries with backoff, then
//! settles through [`CallSettler`]. Whoever settles allocates **against the line as it stands
//! then**: if by then less is owed than the amount (the customer repaid meanwhile), the
//! surplus is credited to the line's account in the same transaction. Each settlement checks
//! the repayment's version, so it is allocated exactly once. Where a repayment stands is its
//! record ([`CardRepayment`], `GetRepayment`), by the request id or by our reference.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    CreditError, CreditService, KIND_LINE, Repay, Repayment, RepaymentStatus, SYSTEM_SCOPE,
    guarded, observe_line,
    repay::{Allocated, CONFLICT_RETRIES_MAX, allocated},
};
use crate::{
    account::{
        AccountError, CallSettler, Caller,
        outbound::{CallState, NewCall, OutboundCall, OutboundPurpose, reference_of},
    },
    clearing::{
        CardDirection, CardInstruction, Network,
        routing::{PaymentMethod, Scenario},
    },
    ledger::{
        AccountId, Command, DocumentWrite, Freshness, IdempotencyKey, LedgerError, NewEntry,
        NewTransaction, Observed, Side,
    },
    money::Money,
};

/// A repayment from the bound card, by our reference.
pub const KIND_CARD_REPAYMENT: &str = "credit_card_repayment";

/// Where a card repayment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardRepaymentState {
    /// Recorded and sent (or about to be); the network's outcome unknown.
    Processing,
    /// The card was debited and the money allocated.
    Succeeded {
        network_reference: String,
        penalty_minor: i64,
        interest_minor: i64,
        principal_minor: i64,
        /// Beyond what the line owed when it settled: credited to the line's account.
        surplus_minor: i64,
    },
    /// The network declined (or never booked) the debit: nothing allocated.
    Failed { reason: String },
}

/// A repayment from the bound card as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRepayment {
    /// Our reference of the card debit (the outbound call's).
    pub reference: String,
    pub line_id: String,
    pub account: AccountId,
    pub amount: Money,
    pub network: Network,
    /// The request that made it: its caller's request id.
    pub request_id: String,
    pub requested_at_ms: i64,
    #[serde(flatten)]
    pub state: CardRepaymentState,
    #[serde(default)]
    pub settled_at_ms: Option<i64>,
    /// The journal transaction that settled it (a success), as read.
    #[serde(skip)]
    pub transaction: Option<u64>,
}

/// A settlement of a card repayment's call in a definite state, under `key`.
struct Settling<'a> {
    call: &'a OutboundCall,
    call_version: u64,
    state: CallState,
    presumed: bool,
    key: IdempotencyKey,
    print: String,
}

fn settle_print(reference: &str) -> String {
    format!("settle|{reference}")
}

impl CreditService {
    /// Repays `r` from the bound card of the line's account (see the module doc).
    pub(super) async fn repay_from_card(
        &self,
        caller: &Caller,
        r: &Repay,
    ) -> Result<Repayment, CreditError> {
        let key = r.request_id.key(&caller.name);
        let print = format!("repay_card|{}|{}", r.line_id, r.amount.minor);
        if let Err(e) = self.record_card_repayment(caller, r, &key, &print).await {
            // A refusal from state claims the key, unless the key holds this request's record.
            self.claim(key.clone(), &print, e).await?;
        }
        let reference = reference_of(&key);
        let (repayment, _) = self.recorded_repayment(&reference).await?;
        let settle_key = r.request_id.step_key(&caller.name, "settle");
        let observed = match repayment.state {
            CardRepaymentState::Processing => {
                self.send_card_repayment(&repayment, &key, &print, settle_key)
                    .await?
            }
            // Settled by an earlier attempt (its answer shows the line it left) or by the
            // recovery worker (the line is read now).
            _ => self
                .ledger()
                .answered_observed(&settle_key, &settle_print(&reference))
                .await?
                .and_then(|a| a.observed),
        };
        self.card_answer(&reference, observed.as_ref()).await
    }

    /// The checks (the line in scope, a bound card, at most what is owed) and the record of the
    /// call and of the repayment, PROCESSING, in one batch.
    async fn record_card_repayment(
        &self,
        caller: &Caller,
        r: &Repay,
        key: &IdempotencyKey,
        print: &str,
    ) -> Result<(), CreditError> {
        let (line, _) = self.line_in_scope(caller, &r.line_id).await?;
        let facts = self.inner.accounts.facts(line.account).await?;
        let (Some(card), Some(_)) = (&facts.card, &facts.card_token) else {
            return Err(AccountError::NoBoundCard {
                account: line.account,
            }
            .into());
        };
        let owing = self.owing(&line.line_id).await?;
        if r.amount.minor > owing.owed_minor() {
            return Err(CreditError::RepaymentExceedsOutstanding {
                line: line.line_id,
                outstanding: Money::new(r.amount.currency, owing.owed_minor()),
                requested: r.amount,
            });
        }
        let clearing = self.inner.accounts.clearing();
        // The card is debited as for a top-up: the same route.
        let bank = clearing.bank_of(&card.first_six);
        let network = clearing.route(PaymentMethod::QuickPay, Scenario::TopUp, bank);
        let call = self.repayment_call(&line.line_id, network, r.amount, key, print);
        let repayment = CardRepayment {
            reference: call.reference.clone(),
            line_id: line.line_id.clone(),
            account: line.account,
            amount: r.amount,
            network,
            request_id: key.key.clone(),
            requested_at_ms: self.ledger().now_ms(),
            state: CardRepaymentState::Processing,
            settled_at_ms: None,
            transaction: None,
        };
        let mut documents = call.recorded()?;
        documents.push(DocumentWrite::json(
            KIND_CARD_REPAYMENT,
            &repayment.reference,
            0,
            &repayment,
        )?);
        let command = Command::with_documents(Command::NoOp, documents);
        match self
            .ledger()
            .submit_request(key.clone(), print, command)
            .await
        {
            Ok(_) => Ok(()),
            // A copy of this request recorded it first: continue from its record.
            Err(e @ LedgerError::DocumentConflict { .. }) => {
                match self.ledger().answered_request(key, print).await? {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(CreditError::from_ledger(e)),
                    None => Err(CreditError::Ledger(e)),
                }
            }
            Err(e) => Err(CreditError::from_ledger(e)),
        }
    }

    /// The call a repayment of `line_id` sends, as it would be recorded now.
    fn repayment_call(
        &self,
        line_id: &str,
        network: Network,
        amount: Money,
        key: &IdempotencyKey,
        print: &str,
    ) -> OutboundCall {
        self.inner.accounts.new_call(NewCall {
            network,
            purpose: OutboundPurpose::CreditRepayment,
            direction: CardDirection::DebitCard,
            amount_minor: amount.minor,
            key,
            print,
            subject: line_id.to_owned(),
        })
    }

    /// Sends (again) the debit of a repayment still PROCESSING and settles it on a definite
    /// answer: what the settlement observed, or `None` (no answer yet, or settled by someone
    /// else meanwhile).
    async fn send_card_repayment(
        &self,
        repayment: &CardRepayment,
        key: &IdempotencyKey,
        print: &str,
        settle_key: IdempotencyKey,
    ) -> Result<Option<Observed>, CreditError> {
        let fresh = self.repayment_call(
            &repayment.line_id,
            repayment.network,
            repayment.amount,
            key,
            print,
        );
        let recorded = self.inner.accounts.outbound_call_for(fresh).await?;
        if recorded.call.state.is_final() {
            return Ok(None);
        }
        // A card unbound since the record: the recovery worker settles the call as the
        // network has it.
        let Some(card_token) = self
            .inner
            .accounts
            .facts(repayment.account)
            .await?
            .card_token
        else {
            return Ok(None);
        };
        let instruction = CardInstruction {
            reference: recorded.call.reference.clone(),
            direction: CardDirection::DebitCard,
            card_token,
            amount: repayment.amount,
        };
        let client = self.inner.accounts.client_of(recorded.call.network)?;
        let outcome = crate::clearing::submit(client.as_ref(), &instruction).await;
        let Some(state) = CallState::of(&outcome) else {
            return Ok(None);
        };
        self.settle_card_repayment(Settling {
            call: &recorded.call,
            call_version: recorded.version,
            state,
            presumed: false,
            key: settle_key,
            print: settle_print(&recorded.call.reference),
        })
        .await
    }

    /// Settles a card repayment as its call ended, with the call's record, in one batch:
    /// allocated against the line as it stands now (a success) or FAILED. Rebuilt when the line
    /// changes under it; `None` when someone settled it first.
    async fn settle_card_repayment(
        &self,
        s: Settling<'_>,
    ) -> Result<Option<Observed>, CreditError> {
        for _ in 0..CONFLICT_RETRIES_MAX {
            let (repayment, version) = self.recorded_repayment(&s.call.reference).await?;
            if repayment.state != CardRepaymentState::Processing {
                return Ok(None);
            }
            let record = s
                .call
                .settled(s.state.clone(), s.presumed)
                .write(s.call_version)?;
            let (command, line) = self
                .card_settlement(repayment, version, &s.state, record)
                .await?;
            let answer = self
                .ledger()
                .submit_observing(s.key.clone(), &s.print, command, observe_line(&line))
                .await?;
            match answer.result {
                Ok(_) => return Ok(answer.observed),
                // The line moved (an accrual, a repayment), or the call was settled by another.
                Err(LedgerError::DocumentConflict { .. }) => {
                    self.ledger().forget_document(KIND_LINE, &line.line_id);
                }
                Err(e) => return Err(CreditError::from_ledger(e)),
            }
        }
        Err(CreditError::Ledger(LedgerError::DocumentConflict {
            kind: KIND_CARD_REPAYMENT.to_owned(),
            id: s.call.reference.clone(),
        }))
    }

    /// The settlement's command in `state` (with the call's `record`), and the line it observes.
    async fn card_settlement(
        &self,
        repayment: CardRepayment,
        version: u64,
        state: &CallState,
        record: Vec<DocumentWrite>,
    ) -> Result<(Command, super::CreditLine), CreditError> {
        let now = self.ledger().now_ms();
        let reference = repayment.reference.clone();
        let (network_reference, reason) = match state {
            CallState::Succeeded { network_reference } => (network_reference.clone(), None),
            CallState::Failed { reason } => (String::new(), Some(reason.clone())),
            CallState::Sent => return Err(CreditError::corrupt("an unsettled card repayment")),
        };
        if let Some(reason) = reason {
            tracing::info!(%reference, %reason, "card repayment declined");
            let (line, _) = self
                .line_doc(&repayment.line_id, Freshness::Checked)
                .await?;
            let failed = CardRepayment {
                state: CardRepaymentState::Failed { reason },
                settled_at_ms: Some(now),
                ..repayment
            };
            let mut documents = record;
            documents.push(DocumentWrite::json(
                KIND_CARD_REPAYMENT,
                &reference,
                version,
                &failed,
            )?);
            return Ok((Command::with_documents(Command::NoOp, documents), line));
        }
        let owing = self.owing(&repayment.line_id).await?;
        let allocated_minor = repayment.amount.minor.min(owing.owed_minor()).max(0);
        let surplus_minor = repayment.amount.minor - allocated_minor;
        let Allocated {
            line,
            mut metadata,
            releases,
            mut documents,
            penalty_minor,
            interest_minor,
            principal_minor,
        } = allocated(owing, allocated_minor)?;
        let suspense = self.inner.accounts.suspense_of(repayment.network)?;
        let leg = |account, side, minor| NewEntry {
            account,
            side,
            amount: Money::new(repayment.amount.currency, minor),
        };
        let mut entries = vec![
            leg(suspense, Side::Debit, repayment.amount.minor),
            leg(line.receivable, Side::Credit, allocated_minor),
            leg(repayment.account, Side::Credit, surplus_minor),
        ];
        entries.retain(|e| e.amount.minor > 0);
        metadata.insert("from".to_owned(), "bound_card".to_owned());
        metadata.insert("reference".to_owned(), reference.clone());
        metadata.insert("surplus_minor".to_owned(), surplus_minor.to_string());
        let settled = CardRepayment {
            state: CardRepaymentState::Succeeded {
                network_reference,
                penalty_minor,
                interest_minor,
                principal_minor,
                surplus_minor,
            },
            settled_at_ms: Some(now),
            ..repayment
        };
        documents.extend(record);
        documents.push(DocumentWrite::json(
            KIND_CARD_REPAYMENT,
            &reference,
            version,
            &settled,
        )?);
        let tx = NewTransaction {
            entries,
            metadata,
            counters: Vec::new(),
        };
        Ok((
            guarded(Command::Post(tx), Vec::new(), releases, documents),
            line,
        ))
    }

    /// A card repayment's record by our reference, at its version (a current read).
    async fn card_repayment(
        &self,
        reference: &str,
    ) -> Result<Option<(CardRepayment, u64)>, CreditError> {
        if reference.is_empty() || reference.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        let Some(doc) = self
            .ledger()
            .document_as(KIND_CARD_REPAYMENT, reference, Freshness::Current)
            .await?
        else {
            return Ok(None);
        };
        let mut repayment: CardRepayment = super::decode(KIND_CARD_REPAYMENT, &doc.body)?;
        if let CardRepaymentState::Succeeded { .. } = repayment.state {
            repayment.transaction = doc.transaction.map(|t| t.0);
        }
        Ok(Some((repayment, doc.version)))
    }

    async fn recorded_repayment(
        &self,
        reference: &str,
    ) -> Result<(CardRepayment, u64), CreditError> {
        self.card_repayment(reference)
            .await?
            .ok_or_else(|| CreditError::corrupt("a card repayment without its record"))
    }

    /// The answer of a card repayment: its record, and the line as its settlement left it
    /// (`observed`) or as it stands.
    async fn card_answer(
        &self,
        reference: &str,
        observed: Option<&Observed>,
    ) -> Result<Repayment, CreditError> {
        let (repayment, _) = self.recorded_repayment(reference).await?;
        let (line, _) = self
            .line_doc(&repayment.line_id, Freshness::Current)
            .await?;
        let view = match observed {
            Some(observed) => self.view_observed(line, Some(observed))?,
            None => self.view_now(line).await?,
        };
        let fen = |minor| Money::new(repayment.amount.currency, minor);
        let (status, penalty, interest, principal) = match &repayment.state {
            CardRepaymentState::Processing => (RepaymentStatus::Processing, 0, 0, 0),
            CardRepaymentState::Failed { .. } => (RepaymentStatus::Failed, 0, 0, 0),
            CardRepaymentState::Succeeded {
                penalty_minor,
                interest_minor,
                principal_minor,
                ..
            } => (
                RepaymentStatus::Succeeded,
                *penalty_minor,
                *interest_minor,
                *principal_minor,
            ),
        };
        Ok(Repayment {
            view,
            status,
            penalty: fen(penalty),
            interest: fen(interest),
            principal: fen(principal),
            transaction: repayment.transaction,
            card: Some(repayment),
        })
    }

    /// A card repayment of a line, by the caller's request id or by our reference, for a
    /// caller whose scope covers the line's account.
    pub async fn card_repayment_of(
        &self,
        caller: &Caller,
        line_id: &str,
        lookup: RepaymentLookup,
    ) -> Result<CardRepayment, CreditError> {
        let (line, _) = self.line_in_scope(caller, line_id).await?;
        let (reference, shown) = match lookup {
            RepaymentLookup::RequestId(id) => (reference_of(&id.key(&caller.name)), id.to_string()),
            RepaymentLookup::Reference(reference) => (reference.clone(), reference),
        };
        match self.card_repayment(&reference).await? {
            Some((repayment, _)) if repayment.line_id == line.line_id => Ok(repayment),
            _ => Err(CreditError::RepaymentNotFound {
                line: line.line_id,
                lookup: shown,
            }),
        }
    }
}

/// How `GetRepayment` names a card repayment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepaymentLookup {
    /// The request id the calling caller repaid with.
    RequestId(crate::ledger::RequestId),
    /// Our reference.
    Reference(String),
}

/// The recovery worker's settlement of a card repayment whose network did not answer.
#[async_trait]
impl CallSettler for CreditService {
    fn settles(&self, purpose: OutboundPurpose) -> bool {
        purpose == OutboundPurpose::CreditRepayment
    }

    async fn settle_call(
        &self,
        call: &OutboundCall,
        version: u64,
        state: CallState,
        presumed: bool,
    ) -> Result<(), AccountError> {
        let settling = Settling {
            call,
            call_version: version,
            state,
            presumed,
            key: IdempotencyKey::new(
                SYSTEM_SCOPE,
                format!("recover/{}/{version}", call.reference),
            ),
            print: format!("recover|{}", call.reference),
        };
        match self.settle_card_repayment(settling).await {
            Ok(_) => Ok(()),
            Err(CreditError::Account(e)) => Err(*e),
            Err(CreditError::Ledger(e)) => Err(AccountError::Ledger(e)),
            Err(e) => Err(AccountError::corrupt(format!(
                "card repayment {} could not be settled: {e}",
                call.reference
            ))),
        }
    }
}
