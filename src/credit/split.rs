//! Instalments (分期): `split_drawdown` spreads a drawdown's principal over 3, 6 or 12 monthly
//! instalments (see [`super::schedule`]) and `instalments` lists plans of a line or one
//! drawdown. A plan is one document (`KIND_PLAN`, the drawdown's id) written at version 0, so a
//! drawdown is split at most once however many requests race; the line's `planned` counter
//! adds the plan's principal in the same batch.
//!
//! A drawdown may be split while the line's principal not yet in a plan still covers it
//! (repayments go to instalments first, then to principal not in a plan, which is not tracked
//! per drawdown: a line repaid below that has nothing left of it to split).

use super::{
    CreditError, CreditLine, CreditService, Drawdown, InstalmentPlan, InstalmentTerms,
    KIND_DRAWDOWN, KIND_PLAN, PlanInstalment, SplitDrawdown, guarded, ids, keys,
    schedule::{INSTALMENT_COUNTS, first_due, schedule},
};
use crate::{
    account::Caller,
    ledger::{Command, CounterCheck, CounterRelease, DocumentWrite, Freshness, LedgerError},
    money::Money,
};

/// Plans read per page of a listing.
const PLANS_PAGE_MAX: u32 = 100;
/// Plans a listing returns at most (a line has at most one per drawdown).
pub const PLANS_LISTED_MAX: usize = 500;

impl CreditService {
    /// Splits a drawdown for a caller's request (idempotent on its request id).
    pub async fn split_drawdown(
        &self,
        caller: &Caller,
        s: SplitDrawdown,
    ) -> Result<InstalmentPlan, CreditError> {
        if !INSTALMENT_COUNTS.contains(&s.count) {
            return Err(CreditError::invalid("count", "3, 6 or 12"));
        }
        let fingerprint = format!(
            "split|{}|{}|{}|{}",
            s.line_id,
            s.drawdown_id,
            s.count,
            s.method.as_str()
        );
        let key = s.request_id.key(&caller.name);
        if let Err(e) = self.split_once(caller, &s, key.clone(), &fingerprint).await {
            self.claim(key, &fingerprint, e).await?;
        }
        self.plan(&s.line_id, &s.drawdown_id)
            .await?
            .ok_or_else(|| CreditError::DrawdownNotFound {
                line: s.line_id.clone(),
                drawdown: s.drawdown_id.clone(),
            })
    }

    async fn split_once(
        &self,
        caller: &Caller,
        s: &SplitDrawdown,
        key: crate::ledger::IdempotencyKey,
        fingerprint: &str,
    ) -> Result<(), CreditError> {
        let (line, _) = self.line_in_scope(caller, &s.line_id).await?;
        let id = ids::drawdown(&line.line_id, &s.drawdown_id);
        let not_found = || CreditError::DrawdownNotFound {
            line: line.line_id.clone(),
            drawdown: s.drawdown_id.clone(),
        };
        if s.drawdown_id.is_empty() || id.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Err(not_found());
        }
        let Some(doc) = self
            .ledger()
            .document_as(KIND_DRAWDOWN, &id, Freshness::Checked)
            .await?
        else {
            return Err(not_found());
        };
        let drawdown: Drawdown = super::decode(KIND_DRAWDOWN, &doc.body)?;
        let already = || CreditError::DrawdownAlreadySplit {
            line: line.line_id.clone(),
            drawdown: s.drawdown_id.clone(),
        };
        if self.plan(&line.line_id, &s.drawdown_id).await?.is_some() {
            return Err(already());
        }
        let planned = self
            .counter(keys::planned(&line.line_id), Freshness::Checked)
            .await?;
        let unplanned = self.principal(&line).await?.saturating_sub(planned);
        if unplanned < drawdown.amount.minor {
            return Err(CreditError::DrawdownRepaid {
                line: line.line_id.clone(),
                drawdown: s.drawdown_id.clone(),
            });
        }
        let terms = InstalmentTerms {
            count: s.count,
            method: s.method,
        };
        let plan = self.plan_for(&line, &s.drawdown_id, drawdown.amount, terms, "count")?;
        // The plan's principal leaves the daily accrual (and the grace of its date) for the
        // plan's own interest.
        let command = guarded(
            Command::NoOp,
            vec![CounterCheck {
                key: keys::planned(&line.line_id),
                amount_minor: drawdown.amount.minor,
                cap_minor: super::UNCAPPED,
            }],
            vec![CounterRelease {
                key: keys::drawn_on(&line.line_id, drawdown.date),
                amount_minor: drawdown.amount.minor,
            }],
            vec![DocumentWrite::json(KIND_PLAN, &id, 0, &plan)?],
        );
        match self
            .ledger()
            .submit_request(key, fingerprint, command)
            .await
        {
            Ok(_) => Ok(()),
            // Another request split it first.
            Err(LedgerError::DocumentConflict { .. }) => Err(already()),
            Err(e) => Err(CreditError::from_ledger(e)),
        }
    }

    /// The plan of `amount` drawn as `drawdown_id` on `line`, made today: `terms.count`
    /// monthly instalments from the line's first repayment day at least a month away. `field`
    /// names the count in a refusal.
    pub(super) fn plan_for(
        &self,
        line: &CreditLine,
        drawdown_id: &str,
        amount: Money,
        terms: InstalmentTerms,
        field: &'static str,
    ) -> Result<InstalmentPlan, CreditError> {
        if !INSTALMENT_COUNTS.contains(&terms.count) {
            return Err(CreditError::invalid(field, "3, 6 or 12"));
        }
        let rows = first_due(self.today(), line.repayment_day)
            .and_then(|due| {
                schedule(
                    amount.minor,
                    terms.count,
                    terms.method,
                    line.annual_rate,
                    due,
                )
            })
            .ok_or_else(|| CreditError::invalid(field, "a schedule that fits"))?;
        Ok(InstalmentPlan {
            line_id: line.line_id.clone(),
            drawdown_id: drawdown_id.to_owned(),
            method: terms.method,
            principal: amount,
            made_on: self.today(),
            instalments: rows
                .into_iter()
                .map(|r| PlanInstalment {
                    number: r.number,
                    due: r.due,
                    principal_minor: r.principal_minor,
                    interest_minor: r.interest_minor,
                    paid_minor: 0,
                    principal_paid_minor: 0,
                    interest_waived_minor: 0,
                })
                .collect(),
        })
    }

    /// A drawdown's plan, if it was split.
    async fn plan(
        &self,
        line_id: &str,
        drawdown_id: &str,
    ) -> Result<Option<InstalmentPlan>, CreditError> {
        let id = ids::drawdown(line_id, drawdown_id);
        if id.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        match self
            .ledger()
            .document_as(KIND_PLAN, &id, Freshness::Current)
            .await?
        {
            Some(doc) => Ok(Some(super::decode(KIND_PLAN, &doc.body)?)),
            None => Ok(None),
        }
    }

    /// The plans of a line (oldest drawdown id first), or of one of its drawdowns.
    pub async fn instalments(
        &self,
        caller: &Caller,
        line_id: &str,
        drawdown_id: Option<&str>,
    ) -> Result<Vec<InstalmentPlan>, CreditError> {
        let (line, _) = self.line_in_scope(caller, line_id).await?;
        if let Some(d) = drawdown_id {
            let plan = self.plan(&line.line_id, d).await?;
            return Ok(plan.into_iter().collect());
        }
        self.plans_of(&line.line_id).await
    }

    /// Every plan of a line, by drawdown id (at most [`PLANS_LISTED_MAX`]).
    pub(super) async fn plans_of(&self, line_id: &str) -> Result<Vec<InstalmentPlan>, CreditError> {
        Ok(self
            .versioned_plans_of(line_id)
            .await?
            .into_iter()
            .map(|(plan, _)| plan)
            .collect())
    }

    /// Every plan of a line with the version it was read at, by drawdown id.
    pub(super) async fn versioned_plans_of(
        &self,
        line_id: &str,
    ) -> Result<Vec<(InstalmentPlan, u64)>, CreditError> {
        let prefix = format!("{line_id}/");
        let mut cursor = prefix.clone();
        let mut plans = Vec::new();
        loop {
            let page = self
                .ledger()
                .documents_after(KIND_PLAN, &cursor, PLANS_PAGE_MAX)
                .await?;
            let Some(last) = page.last() else {
                return Ok(plans);
            };
            cursor = last.id.clone();
            for doc in &page {
                if !doc.id.starts_with(&prefix) || plans.len() >= PLANS_LISTED_MAX {
                    return Ok(plans);
                }
                plans.push((super::decode(KIND_PLAN, &doc.body)?, doc.version));
            }
        }
    }
}
