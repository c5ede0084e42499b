//! Transfer between two accounts.

use super::*;

impl AccountService {
    /// An on-us transfer between two accounts, with the class rules of both sides.
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
        let source = self.profile(from).await?;
        self.check_scope(caller, &source)?;
        let target = self.profile(to).await?;
        for p in [&source, &target] {
            check_postable(caller, p)?;
        }
        let amount = self.amount_in(&source, amount)?;
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
        let posted = match self.submit(caller, request_id, command, &checks).await? {
            Outcome::Posted(p) => p,
            other => return Err(unexpected(&other)),
        };
        Ok(Movement {
            transaction: posted.id,
            posted_at_ms: posted.created_at_ms,
            balance: self.balance_of(&source).await?,
        })
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
