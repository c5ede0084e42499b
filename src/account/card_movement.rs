//! Top-up and withdrawal with the bound card, through the clearing client.

use super::*;
use crate::ledger::{PendingId, TransactionId};

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
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        let card_token = profile
            .card_token
            .clone()
            .ok_or(AccountError::NoBoundCard { account })?;
        let amount = self.amount_in(&profile, amount)?;
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
            CardDirection::DebitCard => self.caps_for(&[&profile]),
            CardDirection::CreditCard => Vec::new(),
        };
        let reserve = Command::Guarded {
            inner: Box::new(Command::CreatePending(NewPending {
                debit_account: debit,
                credit_account: credit,
                amount,
                timeout_ms: i.config.clearing_reservation_timeout_ms,
                metadata: movement_metadata(entry_type, memo, Some(debit), Some(credit)),
                counters: Vec::new(),
            })),
            counters: Vec::new(),
            releases: Vec::new(),
            caps,
            documents: Vec::new(),
            events: Vec::new(),
        };
        let pending = match self.submit(caller, request_id, reserve, &[]).await? {
            Outcome::Pending(p) => p,
            other => return Err(unexpected(&other)),
        };
        let instruction = CardInstruction {
            reference: format!("P{}", pending.id),
            direction,
            card_token,
            amount,
        };
        let outcome = i.clearing.submit(&instruction).await;
        let (status, transaction, network_reference) = self
            .settle(caller, request_id, account, pending.id, outcome)
            .await?;
        Ok(CardMovement {
            status,
            network: i.clearing.network(),
            transaction,
            network_reference,
            balance: self.balance_of(&profile).await?,
        })
    }

    // ----- freezes, holds, closing ---------------------------------------------------------

    /// Settles the reservation on the network's answer: post it (success), void it (declined)
    /// or leave it reserved for the recovery worker (no answer: PROCESSING).
    async fn settle(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        account: AccountId,
        pending: PendingId,
        outcome: ClearingOutcome,
    ) -> Result<(ProcessingStatus, Option<TransactionId>, String), AccountError> {
        let i = &self.inner;
        Ok(match outcome {
            ClearingOutcome::Succeeded { network_reference } => {
                let posted = i
                    .ledger
                    .post_pending(request_id.step_key(&caller.name, "settle"), pending, None)
                    .await?;
                (
                    ProcessingStatus::Succeeded,
                    Some(posted.id),
                    network_reference,
                )
            }
            ClearingOutcome::Failed { reason } => {
                i.ledger
                    .void_pending(request_id.step_key(&caller.name, "void"), pending)
                    .await?;
                tracing::info!(%account, %reason, network = i.clearing.network().as_str(), "card movement declined");
                (ProcessingStatus::Failed, None, String::new())
            }
            ClearingOutcome::Unknown => (ProcessingStatus::Processing, None, String::new()),
        })
    }
}
