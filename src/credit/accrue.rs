//! Daily interest (利息): `accrue_interest(date)` posts one business date's interest on every
//! line, and the end-of-day run calls it once the date has ended. Idempotent per line per date:
//! each line's document records the last date accrued (`accrued_through`), advanced in the same
//! batch as that date's posting, so a crashed or repeated run resumes where it stopped and never
//! posts a day twice; a line behind by several days catches up date by date.
//!
//! The interest of date D on a line:
//!
//! ```text
//! bearing  = principal outstanding − principal drawn on the grace_days dates up to D
//!            − principal put in instalment plans            (floored at zero)
//! exact    = bearing × annual rate / 365 + carry           (in fen, exact decimal)
//! posted   = ⌊exact⌋ fen + interest of the instalments due on D,
//! carry    = exact − ⌊exact⌋                                (the remainder carried)
//! Dr line receivable   Cr credit interest income           (posted, when not zero)
//! ```
//!
//! Penalty (罚息): an instalment not repaid by the end of its due date is overdue; each later
//! date charges the overdue principal penalty interest at `credit.penalty_annual_rate`, the same
//! way (actual/365, truncated to the fen, its own carry), posted to the bank's penalty income
//! and kept apart on the line (`penalty_due`), repaid before anything else:
//!
//! ```text
//! overdue  = principal of instalments due before D not repaid
//! exact    = overdue × penalty rate / 365 + penalty carry;  posted ⌊exact⌋, carry the rest
//! Dr line receivable   Cr credit interest income, credit penalty income   (one transaction)
//! ```
//!
//! Auto-repay (自动还款): on a line that has it, once a repayment day is accrued, what has
//! fallen due is repaid from the line's account as far as its available balance covers (see
//! [`super::autorepay`]), before the next date is accrued.
//!
//! Instalments (分期): a plan's interest is fixed by its schedule (see [`super::schedule`]) and
//! falls due, becoming interest due on the line, with the accrual of each instalment's due
//! date, in the same batch that advances `accrued_through`, so never twice. The plan's
//! principal bears no daily interest (split, it also leaves the grace of its date).
//!
//! A drawdown on date d is free of interest on dates d … d + grace_days − 1 (with no grace, it
//! bears interest from its own date: end-of-day balances). Repayments pay interest first, so
//! the principal still in grace is the newest and is repaid last. The principal is the one
//! outstanding when the date is accrued: run right after the date ends, it is that date's.

use rust_decimal::{Decimal, prelude::ToPrimitive};
use time::{Date, Duration};

use super::{
    CreditError, CreditLine, CreditService, InterestAccrual, KIND_LINE, SYSTEM_SCOPE,
    allocate::overdue_principal, guarded, keys, read::principal_of,
};
use crate::{
    ledger::{
        AccountId, BalanceConstraint, Command, DocumentWrite, Freshness, IdempotencyKey,
        LedgerError, Metadata, NewAccount, NewEntry, NewTransaction, Side,
    },
    money::Money,
};

/// The bank's income accounts a line's accrual credits.
#[derive(Debug, Clone, Copy)]
struct Income {
    interest: AccountId,
    penalty: AccountId,
}

/// What one line's accrual did.
#[derive(Debug, Clone, Copy, Default)]
struct LineAccrual {
    days: i64,
    interest_minor: i64,
    penalty_minor: i64,
    auto_repayments: i64,
}

/// What one date posts on a line.
#[derive(Debug, Clone, Copy)]
struct DayPosting {
    interest_minor: i64,
    penalty_minor: i64,
}

/// Lines read per page of a run.
const LINES_PAGE_MAX: u32 = 100;
/// How often a day whose line changed under it (a repayment) is rebuilt.
const CONFLICT_RETRIES_MAX: u32 = 8;
/// Days in the year of an annual rate (actual/365).
const DAYS_PER_YEAR: i64 = 365;

impl CreditService {
    /// Accrues `date`'s interest on every line (and any earlier date a line has not accrued
    /// yet, from its opening). Only a date that has ended, within the lookback.
    pub async fn accrue_interest(&self, date: Date) -> Result<InterestAccrual, CreditError> {
        let today = self.today();
        if date >= today {
            return Err(CreditError::AccrualOutOfOrder {
                date,
                reason: "only a business date that has ended accrues".to_owned(),
            });
        }
        let lookback = i64::from(self.inner.accrual_lookback_days_max);
        if date < today.saturating_sub(Duration::days(lookback)) {
            return Err(CreditError::AccrualOutOfOrder {
                date,
                reason: format!("more than {lookback} days ago"),
            });
        }
        let mut run = InterestAccrual {
            date,
            lines: 0,
            line_days: 0,
            interest_minor: 0,
            penalty_minor: 0,
            auto_repayments: 0,
        };
        let mut cursor = String::new();
        loop {
            let page = self
                .ledger()
                .documents_after(KIND_LINE, &cursor, LINES_PAGE_MAX)
                .await?;
            let Some(last) = page.last() else {
                return Ok(run);
            };
            cursor = last.id.clone();
            // Created with the first line it serves (a gateway without lines opens no account).
            let income = Income {
                interest: self.income_account("interest_income").await?,
                penalty: self.income_account("penalty_income").await?,
            };
            for doc in &page {
                run.lines += 1;
                let done = self.accrue_line(&doc.id, date, income).await?;
                run.line_days += done.days;
                run.interest_minor += done.interest_minor;
                run.penalty_minor += done.penalty_minor;
                run.auto_repayments += done.auto_repayments;
            }
        }
    }

    /// Accrues one line date by date up to `date` (each accrued repayment day auto-repaid
    /// before the next date, when the line has it).
    async fn accrue_line(
        &self,
        line_id: &str,
        date: Date,
        income: Income,
    ) -> Result<LineAccrual, CreditError> {
        let mut done = LineAccrual::default();
        let mut conflicts = 0;
        let (mut repaid_on, mut accrued_now) = (None, None);
        loop {
            let (line, version) = self.line_doc(line_id, Freshness::Current).await?;
            if let Some(through) = line.accrued_through
                && line.auto_repay
                && through.day() == line.repayment_day
                && repaid_on != Some(through)
            {
                // Idempotent per line and date: a resumed run replays it (not counted again).
                let repaid = self.auto_repay(&line, through).await?;
                if repaid > 0 && accrued_now == Some(through) {
                    done.auto_repayments += 1;
                }
                repaid_on = Some(through);
                continue;
            }
            let next = match line.accrued_through {
                Some(d) => d.saturating_add(Duration::days(1)),
                None => line.opened_on,
            };
            if next > date {
                return Ok(done);
            }
            let (command, posted) = self.day_command(line, version, next, income).await?;
            let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("accrue/{line_id}/{next}"));
            let fingerprint = format!("accrue|{line_id}|{next}");
            match self
                .ledger()
                .submit_request(key, &fingerprint, command)
                .await
            {
                Ok(_) => {
                    accrued_now = Some(next);
                    done.days += 1;
                    done.interest_minor += posted.interest_minor;
                    done.penalty_minor += posted.penalty_minor;
                }
                Err(LedgerError::DocumentConflict { .. }) if conflicts < CONFLICT_RETRIES_MAX => {
                    conflicts += 1;
                    self.ledger().forget_document(KIND_LINE, line_id);
                }
                Err(e) => return Err(CreditError::from_ledger(e)),
            }
        }
    }

    /// One date's interest and penalty on a line: the posting (when a whole fen or more) with
    /// the line's new document, and what it posts.
    async fn day_command(
        &self,
        mut line: CreditLine,
        version: u64,
        date: Date,
        income: Income,
    ) -> Result<(Command, DayPosting), CreditError> {
        let state = self
            .ledger()
            .account_state(line.receivable, Freshness::Current)
            .await?;
        let principal = principal_of(&line, &state.balance);
        let in_grace = self.drawn_in_grace(&line, date).await?;
        let planned = self
            .counter(keys::planned(&line.line_id), Freshness::Current)
            .await?;
        // Principal in a plan bears the plan's interest instead, due with its instalments.
        let bearing = principal
            .saturating_sub(in_grace)
            .saturating_sub(planned)
            .max(0);
        let plans = self.plans_of(&line.line_id).await?;
        let instalment_interest = plans
            .iter()
            .flat_map(|p| &p.instalments)
            .filter(|i| i.due == date)
            .map(|i| (i.interest_minor - i.interest_waived_minor).max(0))
            .fold(0, i64::saturating_add);
        let (daily, carry) = accrue_at(bearing, line.annual_rate, line.interest_carry_minor)?;
        line.interest_carry_minor = carry;
        let interest = daily.saturating_add(instalment_interest);
        // Overdue during `date`: instalments due before it, not repaid.
        let overdue = overdue_principal(&plans, date.previous_day());
        let (penalty, penalty_carry) =
            accrue_at(overdue, self.penalty_rate(), line.penalty_carry_minor)?;
        line.penalty_carry_minor = penalty_carry;
        line.interest_due_minor = line.interest_due_minor.saturating_add(interest);
        line.penalty_due_minor = line.penalty_due_minor.saturating_add(penalty);
        line.overdue_principal_minor = overdue_principal(&plans, Some(date));
        line.accrued_through = Some(date);
        let document = DocumentWrite::json(KIND_LINE, &line.line_id, version, &line)?;
        let currency = line.limit.currency;
        let credits: Vec<NewEntry> = [(income.interest, interest), (income.penalty, penalty)]
            .into_iter()
            .filter(|(_, minor)| *minor > 0)
            .map(|(account, minor)| NewEntry {
                account,
                side: Side::Credit,
                amount: Money::new(currency, minor),
            })
            .collect();
        let inner = if credits.is_empty() {
            Command::NoOp
        } else {
            let metadata = Metadata::from([
                ("type".to_owned(), "credit_interest".to_owned()),
                ("credit_line".to_owned(), line.line_id.clone()),
                ("date".to_owned(), date.to_string()),
                (
                    "instalment_interest_minor".to_owned(),
                    instalment_interest.to_string(),
                ),
                ("penalty_minor".to_owned(), penalty.to_string()),
            ]);
            let mut entries = vec![NewEntry {
                account: line.receivable,
                side: Side::Debit,
                amount: Money::new(currency, interest.saturating_add(penalty)),
            }];
            entries.extend(credits);
            Command::Post(NewTransaction {
                entries,
                metadata,
                counters: Vec::new(),
            })
        };
        Ok((
            guarded(inner, Vec::new(), Vec::new(), vec![document]),
            DayPosting {
                interest_minor: interest,
                penalty_minor: penalty,
            },
        ))
    }

    /// Principal drawn on the line's grace dates up to `date` (`date` − grace_days + 1 … `date`).
    async fn drawn_in_grace(&self, line: &CreditLine, date: Date) -> Result<i64, CreditError> {
        let keys: Vec<String> = (0..i64::from(line.grace_days))
            .map(|back| keys::drawn_on(&line.line_id, date.saturating_sub(Duration::days(back))))
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let values = self
            .ledger()
            .counter_values_as(&keys, Freshness::Current)
            .await?;
        Ok(values.iter().map(|(_, v)| *v).sum())
    }

    /// The bank's income account of credit lines named `what` ("interest_income" or
    /// "penalty_income"), created idempotently the first time.
    async fn income_account(&self, what: &'static str) -> Result<AccountId, CreditError> {
        let cell = if what == "penalty_income" {
            &self.inner.penalty_income
        } else {
            &self.inner.interest_income
        };
        cell.get_or_try_init(|| async {
            let currency = self.currency();
            let purpose = format!("credit/{what}/{currency}");
            let spec = NewAccount {
                currency,
                normal_side: Side::Credit,
                kind: "bank_internal".to_owned(),
                constraint: BalanceConstraint::None,
                metadata: Metadata::from([("purpose".to_owned(), purpose.clone())]),
                profile: None,
            };
            let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("internal/{purpose}"));
            Ok::<_, CreditError>(self.ledger().create_account(key, spec).await?.id)
        })
        .await
        .copied()
    }
}

/// One day at `annual_rate` on `minor` with the carried fraction: (fen posted, new carry).
fn accrue_at(
    minor: i64,
    annual_rate: Decimal,
    carry: Decimal,
) -> Result<(i64, Decimal), CreditError> {
    let exact = Decimal::from(minor) * annual_rate / Decimal::from(DAYS_PER_YEAR) + carry;
    let posted = exact.floor();
    let fen = posted
        .to_i64()
        .ok_or(CreditError::Ledger(LedgerError::Overflow))?;
    Ok((fen, (exact - posted).normalize()))
}
