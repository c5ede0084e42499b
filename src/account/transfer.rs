//! Transfer between two accounts.

use super::*;
use crate::ledger::Observe;

impl AccountService {
    /// An on-us transfer between two accounts, with the class rules of both sides. A refusal
    /// met before the batch from state (an account not found, a master account …) claims the
    /// request id like the batch's own; the answer's balance is the source's right after the
    /// transfer, the same on every replay.
    pub async fn transfer(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        from: AccountId,
        to: AccountId,
        amount: Money,
        memo: &str,
    ) -> Result<Movement, AccountError> {
        check_text("memo", memo, false)?;
        if from == to {
            return Err(AccountError::TransferToSelf);
        }
        let print = format!(
            "transfer|{from}|{to}|{}|{}|{memo:?}",
            amount.currency.code(),
            amount.minor
        );
        let source = self.acting_profile(caller, from).await?;
        let checked = match &source {
            Ok(source) => {
                self.transfer_command(caller, source, to, amount, memo)
                    .await
            }
            Err(e) => Err(e.clone()),
        };
        let (outcome, observed) = self
            .submit_checked(caller, request_id, &print, checked)
            .await?;
        let posted = match outcome {
            Outcome::Posted(p) => p,
            other => return Err(unexpected(&other)),
        };
        Ok(Movement {
            transaction: posted.id,
            posted_at_ms: posted.created_at_ms,
            balance: self.balance_observed(&source?, observed.as_ref()).await?,
        })
    }

    /// The checks of a transfer from `source` that read state, and its command.
    async fn transfer_command(
        &self,
        caller: &Caller,
        source: &Profile,
        to: AccountId,
        amount: Money,
        memo: &str,
    ) -> Result<(Command, Vec<LimitCheck>, Observe), AccountError> {
        let from = source.id;
        let target = self.profile_checked(to).await?;
        for p in [source, &target] {
            check_postable(caller, p)?;
        }
        let amount = self.amount_in(source, amount)?;
        if target.currency != amount.currency {
            return Err(AccountError::Ledger(LedgerError::CurrencyMismatch {
                account: target.id,
                expected: target.currency,
                actual: amount.currency,
            }));
        }
        let date = self.today();
        let mut checks = self
            .inner
            .rules
            .outflow_checks(source.kind, from, amount.minor, date);
        checks.extend(
            self.inner
                .rules
                .inflow_checks(target.kind, to, amount.minor, date),
        );
        let tx = transfer_transaction(from, to, amount, memo);
        let command = Command::Guarded {
            inner: Box::new(Command::Post(tx)),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: self.caps_for(&[&target]),
            documents: Vec::new(),
            events: Vec::new(),
        };
        Ok((command, checks, self.observe_balance(source)))
    }
}

/// The two legs of a transfer of `amount` from `from` to `to`.
fn transfer_transaction(
    from: AccountId,
    to: AccountId,
    amount: Money,
    memo: &str,
) -> NewTransaction {
    NewTransaction::transfer(
        from,
        to,
        amount,
        movement_metadata(EntryType::Transfer, memo, Some(from), Some(to)),
    )
}
