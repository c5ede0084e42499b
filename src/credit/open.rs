//! OpenCreditLine: a core-banking caller opens the line its credit decision granted. One line
//! per account; the annual rate within the configured legal cap. The line's receivable account
//! is created first (idempotently, under the line's id), then the line document and its usage
//! counter commit in one batch.

use super::{
    CreditError, CreditLine, CreditService, LineStatus, LineView, OpenLine, RECEIVABLE_KIND,
    REPAYMENT_DAY_MAX, SYSTEM_SCOPE, UNCAPPED, guarded, ids, keys, observe_line,
};
use crate::{
    account::{AccountKind, Caller},
    ledger::{
        AccountId, BalanceConstraint, Command, CounterCheck, DocumentWrite, Freshness,
        IdempotencyKey, Metadata, NewAccount, Side,
    },
};

impl CreditService {
    /// Opens a line for a caller's request (idempotent on its request id).
    pub async fn open_line(&self, caller: &Caller, r: OpenLine) -> Result<LineView, CreditError> {
        self.check_terms(&r)?;
        let key = r.request_id.key(&caller.name);
        // "|auto" only when set, so a request stored before auto-repay existed replays.
        let fingerprint = format!(
            "open|{}|{}|{}|{}|{}{}",
            r.account,
            r.limit.minor,
            r.annual_rate,
            r.grace_days,
            r.repayment_day,
            if r.auto_repay { "|auto" } else { "" }
        );
        let line_id = ids::line(r.account);
        match self
            .open_once(caller, &r, &line_id, key.clone(), &fingerprint)
            .await
        {
            Err(e) => {
                let answer = self.claim(key, &fingerprint, e).await?;
                let (line, _) = self.line_doc(&line_id, Freshness::Current).await?;
                self.view_observed(line, answer.observed.as_ref())
            }
            ok => ok,
        }
    }

    /// What the request alone decides (nothing claimed): currency, the bounds, the rate cap.
    fn check_terms(&self, r: &OpenLine) -> Result<(), CreditError> {
        self.check_limit(r.limit)?;
        if r.annual_rate > self.inner.rate_cap {
            return Err(CreditError::RateAboveCap {
                requested: r.annual_rate,
                cap: self.inner.rate_cap,
            });
        }
        if r.grace_days > self.inner.grace_days_max {
            return Err(CreditError::invalid(
                "grace_days",
                format!("at most {}", self.inner.grace_days_max),
            ));
        }
        if !(1..=REPAYMENT_DAY_MAX).contains(&r.repayment_day) {
            return Err(CreditError::invalid(
                "repayment_day",
                format!("a day of the month within 1..={REPAYMENT_DAY_MAX}"),
            ));
        }
        Ok(())
    }

    /// A limit in the service's currency, positive and at most `credit.limit_max`.
    pub(super) fn check_limit(&self, limit: crate::money::Money) -> Result<(), CreditError> {
        if limit.currency != self.currency() {
            return Err(CreditError::invalid(
                "limit",
                format!("must be in {}", self.currency()),
            ));
        }
        if limit.minor <= 0 || limit.minor > self.inner.limit_max.minor {
            return Err(CreditError::invalid(
                "limit",
                format!("positive and at most {}", self.inner.limit_max),
            ));
        }
        Ok(())
    }

    async fn open_once(
        &self,
        caller: &Caller,
        r: &OpenLine,
        line_id: &str,
        key: IdempotencyKey,
        fingerprint: &str,
    ) -> Result<LineView, CreditError> {
        let facts = self
            .inner
            .accounts
            .facts_in_scope(caller, r.account)
            .await?;
        match facts.kind {
            AccountKind::ClassIi | AccountKind::ClassIii => {}
            _ => {
                return Err(CreditError::invalid(
                    "account_id",
                    "a credit line is granted to a Class II or III electronic account",
                ));
            }
        }
        match self.line_doc(line_id, Freshness::Checked).await {
            Ok((line, _)) => {
                return Err(CreditError::LineExists {
                    account: line.account.to_string(),
                    line: line.line_id,
                });
            }
            Err(CreditError::LineNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let receivable = self.receivable_account(line_id).await?;
        let base_minor = self.inner.limit_max.minor;
        let line = CreditLine {
            line_id: line_id.to_owned(),
            account: r.account,
            receivable,
            status: LineStatus::Active,
            limit: r.limit,
            annual_rate: r.annual_rate,
            grace_days: r.grace_days,
            repayment_day: r.repayment_day,
            base_minor,
            opened_at_ms: self.ledger().now_ms(),
            opened_on: self.today(),
            freeze_reason: String::new(),
            interest_due_minor: 0,
            interest_carry_minor: rust_decimal::Decimal::ZERO,
            accrued_through: None,
            penalty_due_minor: 0,
            penalty_carry_minor: rust_decimal::Decimal::ZERO,
            overdue_principal_minor: 0,
            auto_repay: r.auto_repay,
        };
        let command = guarded(
            Command::NoOp,
            vec![CounterCheck {
                key: keys::usage(line_id),
                amount_minor: base_minor - r.limit.minor,
                cap_minor: UNCAPPED,
            }],
            Vec::new(),
            vec![DocumentWrite::json(super::KIND_LINE, line_id, 0, &line)?],
        );
        let answer = self
            .ledger()
            .submit_observing(key, fingerprint, command, observe_line(&line))
            .await?;
        match answer.result {
            Ok(_) => self.view_observed(line, answer.observed.as_ref()),
            // Opened by another request meanwhile.
            Err(crate::ledger::LedgerError::DocumentConflict { .. }) => {
                Err(CreditError::LineExists {
                    account: line.account.to_string(),
                    line: line.line_id,
                })
            }
            Err(e) => Err(CreditError::from_ledger(e)),
        }
    }

    /// The line's loan receivable (debit-normal; never credited past zero), created once under
    /// the line's id: a retry after a crash finds the same account.
    async fn receivable_account(&self, line_id: &str) -> Result<AccountId, CreditError> {
        let spec = NewAccount {
            currency: self.currency(),
            normal_side: Side::Debit,
            kind: RECEIVABLE_KIND.to_owned(),
            constraint: BalanceConstraint::CreditsMustNotExceedDebits { limit_minor: 0 },
            metadata: Metadata::from([
                ("purpose".to_owned(), "credit/receivable".to_owned()),
                ("credit_line".to_owned(), line_id.to_owned()),
            ]),
            profile: None,
        };
        let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("receivable/{line_id}"));
        Ok(self.ledger().create_account(key, spec).await?.id)
    }
}
