//! Paying with credit: the drawdown that funds a CREDIT payment, committed in the payment's
//! own journal transaction, and the restore of a line when a credit payment is refunded.
//!
//! ```text
//! drawdown:   Dr line receivable   Cr payer                (the line lends the amount)
//! the payment:Dr payer             Cr merchant, fee income
//! refund:     Dr merchant          Cr line receivable      (the line restored first)
//!                                  Cr payer                (any surplus)
//! ```
//!
//! The drawdown increments the line's usage counter within its cap in the same batch, so the
//! principal drawn never exceeds the limit however many payments race; the refund releases it.

use super::{
    CreditError, CreditFunding, CreditRestore, CreditService, Drawdown, InstalmentTerms,
    KIND_DRAWDOWN, KIND_PLAN, LineStatus, allocate::allocate_principal, ids, keys,
};
use crate::{
    account::AccountFacts,
    ledger::{
        AccountId, CounterCheck, CounterRelease, DocumentWrite, Freshness, LedgerError, NewEntry,
        Side,
    },
    money::Money,
};

impl CreditService {
    /// A drawdown of `amount` from the payer's line `line_id`, to fund a payment, split into
    /// instalments at once when `instalments` asks (分期 at payment: the plan commits with the
    /// drawdown or not at all). Refuses a line not found, not the payer's, frozen, with
    /// overdue principal (`CREDIT_LINE_OVERDUE`, as the line was last accrued), or without
    /// `amount` available; the limit is checked again by the batch.
    pub async fn fund_payment(
        &self,
        payer: &AccountFacts,
        line_id: &str,
        amount: Money,
        (drawdown_id, purpose): (&str, &str),
        instalments: Option<InstalmentTerms>,
    ) -> Result<CreditFunding, CreditError> {
        let (line, _) = self.line_doc(line_id, Freshness::Checked).await?;
        if line.account != payer.id {
            return Err(CreditError::NotLineOwner {
                line: line.line_id,
                account: payer.id.to_string(),
            });
        }
        if line.status == LineStatus::Frozen {
            return Err(CreditError::LineFrozen { line: line.line_id });
        }
        if line.overdue_principal_minor > 0 {
            return Err(CreditError::LineOverdue {
                overdue_principal: Money::new(line.limit.currency, line.overdue_principal_minor),
                line: line.line_id,
            });
        }
        if amount.currency != self.currency() || amount.minor <= 0 {
            return Err(CreditError::invalid(
                "amount",
                "positive, in the line's currency",
            ));
        }
        let usage = self.usage(line_id, Freshness::Checked).await?;
        let available = line
            .base_minor
            .saturating_sub(usage)
            .clamp(0, line.limit.minor);
        if amount.minor > available {
            return Err(CreditError::LimitExceeded {
                line: line.line_id,
                available: Money::new(amount.currency, available),
                requested: amount,
            });
        }
        let plan = instalments
            .map(|terms| {
                self.plan_for(&line, drawdown_id, amount, terms, "credit.instalment_count")
            })
            .transpose()?;
        let drawdown = Drawdown {
            drawdown_id: drawdown_id.to_owned(),
            line_id: line_id.to_owned(),
            amount,
            date: self.today(),
            purpose: purpose.to_owned(),
        };
        let mut documents = vec![DocumentWrite::json(
            KIND_DRAWDOWN,
            &ids::drawdown(line_id, drawdown_id),
            0,
            &drawdown,
        )?];
        // Split at payment, the plan's principal bears the plan's interest, not the daily one
        // (nor is it in its date's grace): the `planned` counter, as a later split adds it.
        let second = match &plan {
            Some(plan) => {
                documents.push(DocumentWrite::json(
                    KIND_PLAN,
                    &ids::drawdown(line_id, drawdown_id),
                    0,
                    plan,
                )?);
                keys::planned(line_id)
            }
            // What the grace period of each date covers (see `accrue`).
            None => keys::drawn_on(line_id, self.today()),
        };
        Ok(CreditFunding {
            line_id: line_id.to_owned(),
            drawdown_id: drawdown_id.to_owned(),
            amount,
            entries: vec![
                NewEntry {
                    account: line.receivable,
                    side: Side::Debit,
                    amount,
                },
                NewEntry {
                    account: payer.id,
                    side: Side::Credit,
                    amount,
                },
            ],
            counters: vec![
                CounterCheck {
                    key: keys::usage(line_id),
                    amount_minor: amount.minor,
                    cap_minor: line.base_minor,
                },
                CounterCheck {
                    key: second,
                    amount_minor: amount.minor,
                    cap_minor: super::UNCAPPED,
                },
            ],
            documents,
        })
    }

    /// A refund of `amount` of a payment drawn on `line_id`: the line's principal outstanding
    /// is restored first (up to `amount`), the rest is credited to the payer. What is restored
    /// goes to the line's instalments oldest first, then to principal not in a plan, as a
    /// repayment's principal does (see [`super::allocate`]): the plans and the line's document
    /// commit with the refund.
    pub async fn restore(
        &self,
        line_id: &str,
        payer: AccountId,
        amount: Money,
    ) -> Result<CreditRestore, CreditError> {
        let super::repay::Owing {
            mut line,
            version,
            principal_minor: outstanding,
            plans,
        } = self.owing(line_id).await?;
        let restored = amount.minor.min(outstanding);
        let surplus = amount.minor - restored;
        let leg = |account, minor| NewEntry {
            account,
            side: Side::Credit,
            amount: Money::new(amount.currency, minor),
        };
        let mut entries = vec![leg(line.receivable, restored), leg(payer, surplus)];
        entries.retain(|e| e.amount.minor > 0);
        let a = allocate_principal(&line, outstanding, plans, restored);
        line.overdue_principal_minor = a.overdue_principal_minor;
        let releases = [
            (keys::usage(line_id), restored),
            (keys::planned(line_id), a.planned_principal_minor),
        ]
        .into_iter()
        .filter(|(_, minor)| *minor > 0)
        .map(|(key, amount_minor)| CounterRelease { key, amount_minor })
        .collect();
        let mut documents = vec![DocumentWrite::json(
            super::KIND_LINE,
            line_id,
            version,
            &line,
        )?];
        for (plan, plan_version) in &a.plans {
            let id = ids::drawdown(&plan.line_id, &plan.drawdown_id);
            documents.push(DocumentWrite::json(
                super::KIND_PLAN,
                &id,
                *plan_version,
                plan,
            )?);
        }
        Ok(CreditRestore {
            entries,
            releases,
            documents,
            restored: Money::new(amount.currency, restored),
        })
    }

    /// Names a refusal of a credit payment's batch by the credit rule it broke (the line's
    /// limit), or gives the ledger's refusal back.
    pub fn funding_refused(&self, e: LedgerError) -> Result<CreditError, LedgerError> {
        match e {
            LedgerError::LimitExceeded {
                key,
                cap_minor,
                used_minor,
                requested_minor,
            } if key.starts_with("credit/") && key.ends_with("/usage") => {
                let line = key
                    .trim_start_matches("credit/")
                    .trim_end_matches("/usage")
                    .to_owned();
                let currency = self.currency();
                Ok(CreditError::LimitExceeded {
                    line,
                    available: Money::new(currency, cap_minor.saturating_sub(used_minor).max(0)),
                    requested: Money::new(currency, requested_minor),
                })
            }
            other => Err(other),
        }
    }
}
