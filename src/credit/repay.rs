//! Repay: a line repaid from its own account — interest due first, then principal — never more
//! than what is owed (checked before the batch, and by the receivable account's floor in it).
//! Repaying everything owed is the early full repayment.
//!
//! ```text
//! Dr account   Cr line receivable     (interest + principal; the usage counter released by
//!                                      the principal, the line's interest due lowered, one batch)
//! ```

use super::{
    CreditError, CreditLine, CreditService, KIND_LINE, Repay, Repayment, guarded, keys,
    observe_line, read::principal_of,
};
use crate::{
    account::Caller,
    ledger::{
        Answer, Command, CounterRelease, DocumentWrite, Freshness, IdempotencyKey, LedgerError,
        Metadata, NewTransaction, Outcome,
    },
    money::Money,
};

/// How often a repayment whose line changed under it (an accrual) is rebuilt.
const CONFLICT_RETRIES_MAX: u32 = 8;

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
        for _ in 0..CONFLICT_RETRIES_MAX {
            let (line, version) = self.line_in_scope(caller, &r.line_id).await?;
            if r.from != line.account {
                return Err(CreditError::NotLineOwner {
                    line: line.line_id,
                    account: r.from.to_string(),
                });
            }
            let principal = self.principal(&line).await?;
            let owed = principal.saturating_add(line.interest_due_minor);
            if r.amount.minor > owed {
                return Err(CreditError::RepaymentExceedsOutstanding {
                    line: line.line_id,
                    outstanding: Money::new(r.amount.currency, owed),
                    requested: r.amount,
                });
            }
            let command = repay_command(line.clone(), version, r)?;
            let answer = self
                .ledger()
                .submit_observing(key.clone(), fingerprint, command, observe_line(&line))
                .await?;
            match answer.result {
                Ok(_) => return Ok(answer),
                Err(LedgerError::DocumentConflict { .. }) => {
                    self.ledger().forget_document(KIND_LINE, &line.line_id);
                }
                // The receivable's floor: another repayment or a refund got there first.
                Err(LedgerError::InsufficientFunds {
                    account, available, ..
                }) if account == line.receivable => {
                    return Err(CreditError::RepaymentExceedsOutstanding {
                        line: line.line_id,
                        outstanding: available,
                        requested: r.amount,
                    });
                }
                Err(e) => return Err(CreditError::from_ledger(e)),
            }
        }
        Err(CreditError::Ledger(LedgerError::DocumentConflict {
            kind: KIND_LINE.to_owned(),
            id: r.line_id.clone(),
        }))
    }

    /// Principal outstanding (the receivable's balance less the interest due).
    pub(super) async fn principal(&self, line: &CreditLine) -> Result<i64, CreditError> {
        let state = self
            .ledger()
            .account_state(line.receivable, Freshness::Checked)
            .await?;
        Ok(principal_of(line, &state.balance))
    }

    fn repayment_of(&self, line: CreditLine, answer: &Answer) -> Result<Repayment, CreditError> {
        let Ok(Outcome::Posted(p)) = &answer.result else {
            return Err(CreditError::corrupt("repayment outcome"));
        };
        let part = |name: &str| {
            p.metadata
                .get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|minor| Money::new(line.limit.currency, minor))
                .ok_or_else(|| CreditError::corrupt("repayment metadata"))
        };
        Ok(Repayment {
            interest: part("interest_minor")?,
            principal: part("principal_minor")?,
            transaction: p.id.0,
            view: self.view_observed(line, answer.observed.as_ref())?,
        })
    }
}

/// The repayment's posting, interest first: the line's new interest due and the principal's
/// release of the usage counter commit with it.
fn repay_command(mut line: CreditLine, version: u64, r: &Repay) -> Result<Command, CreditError> {
    let interest = r.amount.minor.min(line.interest_due_minor);
    let principal = r.amount.minor - interest;
    line.interest_due_minor -= interest;
    let metadata = Metadata::from([
        ("type".to_owned(), "credit_repayment".to_owned()),
        ("credit_line".to_owned(), line.line_id.clone()),
        ("from".to_owned(), r.from.to_string()),
        ("interest_minor".to_owned(), interest.to_string()),
        ("principal_minor".to_owned(), principal.to_string()),
    ]);
    let tx = NewTransaction::transfer(r.from, line.receivable, r.amount, metadata);
    let releases = (principal > 0)
        .then(|| CounterRelease {
            key: keys::usage(&line.line_id),
            amount_minor: principal,
        })
        .into_iter()
        .collect();
    let document = DocumentWrite::json(KIND_LINE, &line.line_id, version, &line)?;
    Ok(guarded(
        Command::Post(tx),
        Vec::new(),
        releases,
        vec![document],
    ))
}
