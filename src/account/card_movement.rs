//! Top-up and withdrawal with the bound card, through the clearing client.

use super::{
    Recorded,
    outbound::{CallState, NewCall, OutboundCall, OutboundPurpose},
    *,
};
use crate::{
    clearing::{
        Network,
        routing::{PaymentMethod, Scenario},
    },
    ledger::{DocumentWrite, Observe, PendingId, TransactionId},
};

impl AccountService {
    /// Top-up from the account's bound card through the clearing network: reserve, ask the
    /// network, then post (success), void (failure) or leave reserved (no answer: PROCESSING).
    pub async fn top_up(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        amount: Money,
        memo: &str,
    ) -> Result<CardMovement, AccountError> {
        self.card_movement(
            caller,
            request_id,
            account,
            amount,
            memo,
            CardDirection::DebitCard,
        )
        .await
    }

    /// Withdrawal to the account's bound card; the mirror of [`AccountService::top_up`].
    pub async fn withdraw(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        amount: Money,
        memo: &str,
    ) -> Result<CardMovement, AccountError> {
        self.card_movement(
            caller,
            request_id,
            account,
            amount,
            memo,
            CardDirection::CreditCard,
        )
        .await
    }

    /// A refusal met before the reservation from state (no bound card, an account not found)
    /// claims the request id like the batch's own; the answer's balance is the account's right
    /// after the movement's last step, the same on every replay. The call is recorded in the
    /// reservation's batch ([`OutboundCall`]); a retry continues from the record (a settled
    /// call answers as settled; a sent one is sent again under the same reference, which the
    /// network de-duplicates).
    pub(super) async fn card_movement(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        amount: Money,
        memo: &str,
        direction: CardDirection,
    ) -> Result<CardMovement, AccountError> {
        check_text("memo", memo, false)?;
        let print = format!(
            "{}|{account}|{}|{}|{memo:?}",
            match direction {
                CardDirection::DebitCard => "top_up",
                CardDirection::CreditCard => "withdraw",
            },
            amount.currency.code(),
            amount.minor
        );
        let key = request_id.key(&caller.name);
        let profile = self.acting_profile(caller, account).await?;
        let checked = match &profile {
            Ok(profile) => self.reserve_command(profile, amount, memo, direction, &key, &print),
            Err(e) => Err(e.clone()),
        };
        let (outcome, reserved) = self
            .submit_checked(caller, request_id, &print, checked)
            .await?;
        let pending = match outcome {
            Outcome::Pending(p) => p,
            other => return Err(unexpected(&other)),
        };
        let profile = profile?;
        let fresh = self.movement_call(&profile, amount, direction, &key, &print);
        let Recorded {
            call,
            version,
            transaction,
        } = self.outbound_call_for(fresh).await?;
        let observe = self.observe_balance(&profile);
        let settled = match call.state.clone() {
            CallState::Sent => {
                // The reservation succeeded with the card bound (now or, for a replay, the
                // first time).
                let card_token = profile
                    .card_token
                    .clone()
                    .ok_or(AccountError::NoBoundCard { account })?;
                let instruction = CardInstruction {
                    reference: call.reference.clone(),
                    direction,
                    card_token,
                    amount: pending.amount,
                };
                let client = self.client_of(call.network)?;
                let outcome = crate::clearing::submit(client.as_ref(), &instruction).await;
                match CallState::of(&outcome) {
                    Some(state) => {
                        let settle = Settle {
                            pending: pending.id,
                            call: &call,
                            version,
                            state,
                            presumed: false,
                        };
                        self.settle(caller, request_id, settle, observe).await?
                    }
                    None => Settled::recorded(CallState::Sent, None),
                }
            }
            // Settled by an earlier attempt (its answer shows what that step observed) or by
            // the recovery worker (the balance is read now).
            state => {
                let name = match state {
                    CallState::Succeeded { .. } => "settle",
                    _ => "void",
                };
                let step = self
                    .inner
                    .ledger
                    .answered_observed(
                        &request_id.step_key(&caller.name, name),
                        &format!("{name}|{}", pending.id),
                    )
                    .await?;
                Settled {
                    observed: step.and_then(|a| a.observed),
                    ..Settled::recorded(state, transaction)
                }
            }
        };
        // A movement still PROCESSING answers the balance its reservation left.
        let observed = match settled.status {
            ProcessingStatus::Processing => settled.observed.or(reserved),
            _ => settled.observed,
        };
        Ok(CardMovement {
            status: settled.status,
            network: call.network,
            transaction: settled.transaction,
            network_reference: settled.network_reference,
            balance: self.balance_observed(&profile, observed.as_ref()).await?,
        })
    }

    /// The call a movement with `profile`'s bound card sends, as it would be recorded now.
    fn movement_call(
        &self,
        profile: &Profile,
        amount: Money,
        direction: CardDirection,
        key: &IdempotencyKey,
        print: &str,
    ) -> OutboundCall {
        self.new_call(NewCall {
            network: self.card_network(profile, direction),
            purpose: movement_purpose(direction),
            direction,
            amount_minor: amount.minor,
            key,
            print,
            subject: profile.id.to_string(),
        })
    }

    /// The network a movement with `profile`'s bound card goes through, by the routing table.
    fn card_network(&self, profile: &Profile, direction: CardDirection) -> Network {
        let bank = profile
            .card
            .as_ref()
            .map_or("", |card| self.inner.clearing.bank_of(&card.first_six));
        let scenario = match direction {
            CardDirection::DebitCard => Scenario::TopUp,
            CardDirection::CreditCard => Scenario::Withdrawal,
        };
        self.inner
            .clearing
            .route(PaymentMethod::QuickPay, scenario, bank)
    }

    /// The reservation of a movement with `profile`'s bound card, with the record of its
    /// outbound call, and what its answer shows.
    fn reserve_command(
        &self,
        profile: &Profile,
        amount: Money,
        memo: &str,
        direction: CardDirection,
        key: &IdempotencyKey,
        print: &str,
    ) -> Result<(Command, Vec<LimitCheck>, Observe), AccountError> {
        let account = profile.id;
        if profile.card_token.is_none() {
            return Err(AccountError::NoBoundCard { account });
        }
        let amount = self.amount_in(profile, amount)?;
        let call = self.movement_call(profile, amount, direction, key, print);
        let suspense = self.suspense_of(call.network)?;
        let (debit, credit, entry_type) = match direction {
            CardDirection::DebitCard => (suspense, account, EntryType::TopUp),
            CardDirection::CreditCard => (account, suspense, EntryType::Withdrawal),
        };
        // Movements with the bound card are bound-account flows: no non-bound limits apply;
        // a Class III balance cap still does (pending inflows count against it).
        let caps = match direction {
            CardDirection::DebitCard => self.caps_for(&[profile]),
            CardDirection::CreditCard => Vec::new(),
        };
        let reserve = Command::Guarded {
            inner: Box::new(Command::CreatePending(NewPending {
                debit_account: debit,
                credit_account: credit,
                amount,
                timeout_ms: self.inner.config.clearing_reservation_timeout_ms,
                metadata: movement_metadata(entry_type, memo, Some(debit), Some(credit)),
                counters: Vec::new(),
            })),
            counters: Vec::new(),
            releases: Vec::new(),
            caps,
            documents: call.recorded()?,
            events: Vec::new(),
        };
        Ok((reserve, Vec::new(), self.observe_balance(profile)))
    }

    /// Settles the reservation on the network's answer: post it (success) or void it
    /// (declined), with the call's record settled in the same batch. Each step is keyed under
    /// the request, so a retry meets its first answer and what it observed; a call the
    /// recovery worker settled meanwhile answers as the worker settled it.
    async fn settle(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        settle: Settle<'_>,
        observe: Observe,
    ) -> Result<Settled, AccountError> {
        let (name, inner) = match &settle.state {
            CallState::Succeeded { .. } => (
                "settle",
                Command::PostPending {
                    pending: settle.pending,
                    amount: None,
                },
            ),
            _ => (
                "void",
                Command::VoidPending {
                    pending: settle.pending,
                },
            ),
        };
        let record = settle.call.settled(settle.state.clone(), settle.presumed);
        let command = guarded_with(inner, record.write(settle.version)?);
        let key = request_id.step_key(&caller.name, name);
        let print = format!("{name}|{}", settle.pending);
        let answer = self
            .inner
            .ledger
            .submit_observing(key, &print, command, observe)
            .await?;
        match answer.result {
            Ok(outcome) => {
                if let CallState::Failed { reason } = &settle.state {
                    tracing::info!(reference = %record.reference, %reason, network = record.network.as_str(), "card movement declined");
                }
                let transaction = match outcome {
                    Outcome::Posted(posted) => Some(posted.id),
                    _ => None,
                };
                Ok(Settled {
                    observed: answer.observed,
                    ..Settled::recorded(settle.state, transaction)
                })
            }
            // The recovery worker settled the call first: answer as it did.
            Err(LedgerError::DocumentConflict { .. }) => {
                let settled = self.outbound_call(&record.reference).await?;
                Ok(Settled::recorded(settled.call.state, settled.transaction))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A settlement of a reservation.
struct Settle<'a> {
    pending: PendingId,
    call: &'a OutboundCall,
    version: u64,
    state: CallState,
    presumed: bool,
}

/// `inner` with the write of a call's record (none on-us).
fn guarded_with(inner: Command, record: Vec<DocumentWrite>) -> Command {
    Command::with_documents(inner, record)
}

fn movement_purpose(direction: CardDirection) -> OutboundPurpose {
    match direction {
        CardDirection::DebitCard => OutboundPurpose::TopUp,
        CardDirection::CreditCard => OutboundPurpose::Withdrawal,
    }
}

/// Where a card movement's settlement left it.
struct Settled {
    status: ProcessingStatus,
    transaction: Option<TransactionId>,
    network_reference: String,
    observed: Option<crate::ledger::Observed>,
}

impl Settled {
    /// As the call's record says.
    fn recorded(state: CallState, transaction: Option<TransactionId>) -> Settled {
        let (status, network_reference) = match state {
            CallState::Sent => (ProcessingStatus::Processing, String::new()),
            CallState::Succeeded { network_reference } => {
                (ProcessingStatus::Succeeded, network_reference)
            }
            CallState::Failed { .. } => (ProcessingStatus::Failed, String::new()),
        };
        Settled {
            status,
            transaction,
            network_reference,
            observed: None,
        }
    }
}
