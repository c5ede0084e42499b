//! Repay: principal of a line repaid from the line's own account, never more than what is
//! outstanding (checked before the batch, and by the receivable account's floor in it).
//!
//! ```text
//! Dr account   Cr line receivable     (the usage counter released by the same amount)
//! ```

use super::{
    CreditError, CreditLine, CreditService, Repay, Repayment, guarded, keys, observe_line,
};
use crate::{
    account::Caller,
    ledger::{
        Answer, Command, CounterRelease, Freshness, IdempotencyKey, LedgerError, Metadata,
        NewTransaction, Outcome, Side,
    },
    money::Money,
};

impl CreditService {
    /// Repays for a caller's request (idempotent on its request id).
    pub async fn repay(&self, caller: &Caller, r: Repay) -> Result<Repayment, CreditError> {
        if r.amount.currency != self.currency() || r.amount.minor <= 0 {
            return Err(CreditError::invalid(
                "amount",
                format!("positive, in {}", self.currency()),
            ));
        }
        let fingerprint = format!("repay|{}|{}|{}", r.line_id, r.amount.minor, r.from);
        let key = r.request_id.key(&caller.name);
        let answer = match self.repay_once(caller, &r, key.clone(), &fingerprint).await {
            Ok(answer) => answer,
            Err(e) => self.claim(key, &fingerprint, e).await?,
        };
        let (line, _) = self.line_doc(&r.line_id, Freshness::Current).await?;
        self.repayment_of(line, &answer)
    }

    async fn repay_once(
        &self,
        caller: &Caller,
        r: &Repay,
        key: IdempotencyKey,
        fingerprint: &str,
    ) -> Result<Answer, CreditError> {
        let (line, _) = self.line_in_scope(caller, &r.line_id).await?;
        if r.from != line.account {
            return Err(CreditError::NotLineOwner {
                line: line.line_id,
                account: r.from.to_string(),
            });
        }
        let outstanding = self.outstanding(&line).await?;
        if r.amount.minor > outstanding.minor {
            return Err(CreditError::RepaymentExceedsOutstanding {
                line: line.line_id,
                outstanding,
                requested: r.amount,
            });
        }
        let metadata = Metadata::from([
            ("type".to_owned(), "credit_repayment".to_owned()),
            ("credit_line".to_owned(), line.line_id.clone()),
            ("from".to_owned(), r.from.to_string()),
        ]);
        let tx = NewTransaction::transfer(r.from, line.receivable, r.amount, metadata);
        let release = CounterRelease {
            key: keys::usage(&line.line_id),
            amount_minor: r.amount.minor,
        };
        let command = guarded(Command::Post(tx), Vec::new(), vec![release], Vec::new());
        let answer = self
            .ledger()
            .submit_observing(key, fingerprint, command, observe_line(&line))
            .await?;
        match answer.result {
            Ok(_) => Ok(answer),
            // The receivable's floor: another repayment or a refund got there first.
            Err(LedgerError::InsufficientFunds {
                account, available, ..
            }) if account == line.receivable => Err(CreditError::RepaymentExceedsOutstanding {
                line: line.line_id,
                outstanding: available,
                requested: r.amount,
            }),
            Err(e) => Err(CreditError::from_ledger(e)),
        }
    }

    /// Principal outstanding: the receivable's balance.
    async fn outstanding(&self, line: &CreditLine) -> Result<Money, CreditError> {
        let state = self
            .ledger()
            .account_state(line.receivable, Freshness::Checked)
            .await?;
        let minor = super::clamp(state.balance.posted_minor(Side::Debit)).max(0);
        Ok(Money::new(line.limit.currency, minor))
    }

    fn repayment_of(&self, line: CreditLine, answer: &Answer) -> Result<Repayment, CreditError> {
        let Ok(Outcome::Posted(p)) = &answer.result else {
            return Err(CreditError::corrupt("repayment outcome"));
        };
        let principal = p
            .entries
            .iter()
            .find(|e| e.side == Side::Credit)
            .map(|e| e.amount)
            .ok_or_else(|| CreditError::corrupt("repayment entries"))?;
        Ok(Repayment {
            view: self.view_observed(line, answer.observed.as_ref())?,
            principal,
            transaction: p.id.0,
        })
    }
}
