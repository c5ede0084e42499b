//! Top-up and withdrawal with the bound card, through the clearing client.

use super::*;
use crate::ledger::{Observe, PendingId, TransactionId};

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
    /// after the movement's last step, the same on every replay.
    pub(super) async fn card_movement(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        amount: Money,
        memo: &str,
        direction: CardDirection,
    ) -> Result<CardMovement, AccountError> {
        let i = &self.inner;
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
        let profile = self.acting_profile(caller, account).await?;
        let checked = match &profile {
            Ok(profile) => self.reserve_command(profile, amount, memo, direction),
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
        // The reservation succeeded with the card bound (now or, for a replay, the first time).
        let card_token = profile
            .card_token
            .clone()
            .ok_or(AccountError::NoBoundCard { account })?;
        let instruction = CardInstruction {
            reference: format!("P{}", pending.id),
            direction,
            card_token,
            amount: pending.amount,
        };
        let outcome = crate::clearing::submit(i.clearing.as_ref(), &instruction).await;
        let observe = self.observe_balance(&profile);
        let settled = self
            .settle(caller, request_id, account, pending.id, outcome, observe)
            .await?;
        let observed = settled.observed.or(reserved);
        Ok(CardMovement {
            status: settled.status,
            network: i.clearing.network(),
            transaction: settled.transaction,
            network_reference: settled.network_reference,
            balance: self.balance_observed(&profile, observed.as_ref()).await?,
        })
    }

    /// The reservation of a movement with `profile`'s bound card, and what its answer shows.
    fn reserve_command(
        &self,
        profile: &Profile,
        amount: Money,
        memo: &str,
        direction: CardDirection,
    ) -> Result<(Command, Vec<LimitCheck>, Observe), AccountError> {
        let account = profile.id;
        if profile.card_token.is_none() {
            return Err(AccountError::NoBoundCard { account });
        }
        let amount = self.amount_in(profile, amount)?;
        let suspense = self
            .internal_account(InternalPurpose::ClearingSuspenseOnUs)
            .ok_or(AccountError::Ledger(LedgerError::Storage))?;
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
            documents: Vec::new(),
            events: Vec::new(),
        };
        Ok((reserve, Vec::new(), self.observe_balance(profile)))
    }

    /// Settles the reservation on the network's answer: post it (success), void it (declined)
    /// or leave it reserved for the recovery worker (no answer: PROCESSING). Each step is keyed
    /// under the request, so a retry meets its first answer and what it observed.
    async fn settle(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        pending: PendingId,
        outcome: ClearingOutcome,
        observe: Observe,
    ) -> Result<Settled, AccountError> {
        let i = &self.inner;
        let step = |name: &str, command: Command| {
            let key = request_id.step_key(&caller.name, name);
            let print = format!("{name}|{pending}");
            let observe = observe.clone();
            async move {
                let answer = i
                    .ledger
                    .submit_observing(key, &print, command, observe)
                    .await?;
                Ok::<_, AccountError>((answer.result?, answer.observed))
            }
        };
        Ok(match outcome {
            ClearingOutcome::Succeeded { network_reference } => {
                let command = Command::PostPending {
                    pending,
                    amount: None,
                };
                let (posted, observed) = step("settle", command).await?;
                let Outcome::Posted(posted) = posted else {
                    return Err(unexpected(&posted));
                };
                Settled {
                    status: ProcessingStatus::Succeeded,
                    transaction: Some(posted.id),
                    network_reference,
                    observed,
                }
            }
            ClearingOutcome::Failed { reason } => {
                let (_, observed) = step("void", Command::VoidPending { pending }).await?;
                tracing::info!(%account, %reason, network = i.clearing.network().as_str(), "card movement declined");
                Settled {
                    status: ProcessingStatus::Failed,
                    transaction: None,
                    network_reference: String::new(),
                    observed,
                }
            }
            ClearingOutcome::Unknown => Settled {
                status: ProcessingStatus::Processing,
                transaction: None,
                network_reference: String::new(),
                observed: None,
            },
        })
    }
}

/// Where a card movement's settlement left it.
struct Settled {
    status: ProcessingStatus,
    transaction: Option<TransactionId>,
    network_reference: String,
    observed: Option<crate::ledger::Observed>,
}
