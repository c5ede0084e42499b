//! Repay: a line repaid from its own account, allocated penalty → interest → principal of the
//! oldest instalment → principal not in a plan (see [`super::allocate`]), never more than what
//! is owed (checked before the batch, and by the receivable account's floor in it). Repaying
//! everything owed is the early full repayment: it closes every plan.
//!
//! ```text
//! Dr account   Cr line receivable     (penalty + interest + principal; in the same batch: the
//!                                      usage counter released by the principal, the planned
//!                                      counter by the instalments' principal, the line's
//!                                      penalty and interest due lowered, each changed plan)
//! ```

use super::{
    CreditError, CreditLine, CreditService, InstalmentPlan, KIND_LINE, KIND_PLAN, Repay,
    RepaySource, Repayment, RepaymentStatus, allocate::allocate, guarded, ids, keys, observe_line,
    read::principal_of,
};
use crate::{
    account::Caller,
    ledger::{
        AccountId, Answer, Command, CounterRelease, DocumentWrite, Freshness, IdempotencyKey,
        LedgerError, Metadata, NewTransaction, Outcome,
    },
    money::Money,
};

/// How often a repayment whose line changed under it (an accrual) is rebuilt.
pub(super) const CONFLICT_RETRIES_MAX: u32 = 8;

/// What a repayment is decided from: the line at a version, its principal and its plans.
pub(super) struct Owing {
    pub line: CreditLine,
    pub version: u64,
    pub principal_minor: i64,
    pub plans: Vec<(InstalmentPlan, u64)>,
}

impl Owing {
    /// Everything owed now: penalty, interest due and all principal.
    pub fn owed_minor(&self) -> i64 {
        self.principal_minor
            .saturating_add(self.line.charges_minor())
    }

    /// What has fallen due: penalty, interest due and the overdue (or due today) instalments'
    /// principal.
    pub fn due_minor(&self) -> i64 {
        self.line
            .charges_minor()
            .saturating_add(self.line.overdue_principal_minor)
            .min(self.owed_minor())
    }
}

impl CreditService {
    /// Repays for a caller's request (idempotent on its request id): from the line's account
    /// at once, or from the bound card through its network (see [`super::card_repay`]).
    pub async fn repay(&self, caller: &Caller, r: Repay) -> Result<Repayment, CreditError> {
        if r.amount.currency != self.currency() || r.amount.minor <= 0 {
            return Err(CreditError::invalid(
                "amount",
                format!("positive, in {}", self.currency()),
            ));
        }
        let from = match r.from {
            RepaySource::Account(account) => account,
            RepaySource::BoundCard => return self.repay_from_card(caller, &r).await,
        };
        let fingerprint = format!("repay|{}|{}|{from}", r.line_id, r.amount.minor);
        let key = r.request_id.key(&caller.name);
        let answer = match self
            .repay_once(caller, &r, from, key.clone(), &fingerprint)
            .await
        {
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
        from: AccountId,
        key: IdempotencyKey,
        fingerprint: &str,
    ) -> Result<Answer, CreditError> {
        let (line, _) = self.line_in_scope(caller, &r.line_id).await?;
        if from != line.account {
            return Err(CreditError::NotLineOwner {
                line: line.line_id,
                account: from.to_string(),
            });
        }
        self.submit_repayment(&r.line_id, from, key, fingerprint, |o| {
            if r.amount.minor > o.owed_minor() {
                return Err(CreditError::RepaymentExceedsOutstanding {
                    line: o.line.line_id.clone(),
                    outstanding: Money::new(r.amount.currency, o.owed_minor()),
                    requested: r.amount,
                });
            }
            Ok(r.amount.minor)
        })
        .await
    }

    /// Posts a repayment of the amount `decide` picks from what the line owes (0: nothing is
    /// posted), rebuilt when the line changes under it.
    pub(super) async fn submit_repayment(
        &self,
        line_id: &str,
        from: AccountId,
        key: IdempotencyKey,
        fingerprint: &str,
        decide: impl Fn(&Owing) -> Result<i64, CreditError>,
    ) -> Result<Answer, CreditError> {
        for _ in 0..CONFLICT_RETRIES_MAX {
            let owing = self.owing(line_id).await?;
            let amount = decide(&owing)?;
            let line = owing.line.clone();
            let command = repay_command(owing, amount, from)?;
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
                        requested: Money::new(line.limit.currency, amount),
                    });
                }
                Err(e) => return Err(CreditError::from_ledger(e)),
            }
        }
        Err(CreditError::Ledger(LedgerError::DocumentConflict {
            kind: KIND_LINE.to_owned(),
            id: line_id.to_owned(),
        }))
    }

    /// The line, its principal and its plans, as a repayment is decided from.
    pub(super) async fn owing(&self, line_id: &str) -> Result<Owing, CreditError> {
        let (line, version) = self.line_doc(line_id, Freshness::Checked).await?;
        let principal_minor = self.principal(&line).await?;
        let plans = self.versioned_plans_of(line_id).await?;
        Ok(Owing {
            line,
            version,
            principal_minor,
            plans,
        })
    }

    /// Principal outstanding (the receivable's balance less the penalty and interest due).
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
            status: RepaymentStatus::Succeeded,
            // Repayments posted before penalties were charged carry none.
            penalty: part("penalty_minor").unwrap_or(Money::new(line.limit.currency, 0)),
            interest: part("interest_minor")?,
            principal: part("principal_minor")?,
            transaction: Some(p.id.0),
            card: None,
            view: self.view_observed(line, answer.observed.as_ref())?,
        })
    }
}

/// The repayment's posting, allocated (see [`allocate`]): the line's new penalty and interest
/// due, the changed plans and the counters' releases commit with it. Nothing for 0.
fn repay_command(owing: Owing, amount: i64, from: AccountId) -> Result<Command, CreditError> {
    if amount <= 0 {
        return Ok(Command::NoOp);
    }
    let Allocated {
        line,
        mut metadata,
        releases,
        documents,
        ..
    } = allocated(owing, amount)?;
    metadata.insert("from".to_owned(), from.to_string());
    let amount = Money::new(line.limit.currency, amount);
    let tx = NewTransaction::transfer(from, line.receivable, amount, metadata);
    Ok(guarded(Command::Post(tx), Vec::new(), releases, documents))
}

/// A repayment of `amount` allocated on the line as it is owed: the line after it, the
/// posting's metadata (its parts), the counters' releases and the documents (the line, each
/// changed plan) that commit with the posting.
pub(super) struct Allocated {
    pub line: CreditLine,
    pub metadata: Metadata,
    pub releases: Vec<CounterRelease>,
    pub documents: Vec<DocumentWrite>,
    pub penalty_minor: i64,
    pub interest_minor: i64,
    pub principal_minor: i64,
}

/// Allocates `amount` (at most what is owed) on `owing` (see [`allocate`]).
pub(super) fn allocated(owing: Owing, amount: i64) -> Result<Allocated, CreditError> {
    let Owing {
        mut line,
        version,
        principal_minor,
        plans,
    } = owing;
    let a = allocate(&line, principal_minor, plans, amount);
    line.penalty_due_minor -= a.penalty_minor;
    line.interest_due_minor -= a.interest_minor;
    line.overdue_principal_minor = a.overdue_principal_minor;
    let metadata = Metadata::from([
        ("type".to_owned(), "credit_repayment".to_owned()),
        ("credit_line".to_owned(), line.line_id.clone()),
        ("penalty_minor".to_owned(), a.penalty_minor.to_string()),
        ("interest_minor".to_owned(), a.interest_minor.to_string()),
        ("principal_minor".to_owned(), a.principal_minor.to_string()),
        (
            "instalment_principal_minor".to_owned(),
            a.planned_principal_minor.to_string(),
        ),
    ]);
    let releases = [
        (keys::usage(&line.line_id), a.principal_minor),
        (keys::planned(&line.line_id), a.planned_principal_minor),
    ]
    .into_iter()
    .filter(|(_, amount)| *amount > 0)
    .map(|(key, amount_minor)| CounterRelease { key, amount_minor })
    .collect();
    let mut documents = vec![DocumentWrite::json(
        KIND_LINE,
        &line.line_id,
        version,
        &line,
    )?];
    for (plan, plan_version) in &a.plans {
        let id = ids::drawdown(&plan.line_id, &plan.drawdown_id);
        documents.push(DocumentWrite::json(KIND_PLAN, &id, *plan_version, plan)?);
    }
    Ok(Allocated {
        line,
        metadata,
        releases,
        documents,
        penalty_minor: a.penalty_minor,
        interest_minor: a.interest_minor,
        principal_minor: a.principal_minor,
    })
}
