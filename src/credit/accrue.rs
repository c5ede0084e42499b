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
    CreditError, CreditLine, CreditService, InterestAccrual, KIND_LINE, SYSTEM_SCOPE, guarded,
    keys, read::principal_of,
};
use crate::{
    ledger::{
        AccountId, BalanceConstraint, Command, DocumentWrite, Freshness, IdempotencyKey,
        LedgerError, Metadata, NewAccount, NewTransaction, Side,
    },
    money::Money,
};

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
            let income = self.interest_income().await?;
            for doc in &page {
                run.lines += 1;
                let (days, interest) = self.accrue_line(&doc.id, date, income).await?;
                run.line_days += days;
                run.interest_minor += interest;
            }
        }
    }

    /// Accrues one line date by date up to `date`: (days posted, interest posted).
    async fn accrue_line(
        &self,
        line_id: &str,
        date: Date,
        income: AccountId,
    ) -> Result<(i64, i64), CreditError> {
        let (mut days, mut interest) = (0, 0);
        let mut conflicts = 0;
        loop {
            let (line, version) = self.line_doc(line_id, Freshness::Current).await?;
            let next = match line.accrued_through {
                Some(d) => d.saturating_add(Duration::days(1)),
                None => line.opened_on,
            };
            if next > date {
                return Ok((days, interest));
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
                    days += 1;
                    interest += posted;
                }
                Err(LedgerError::DocumentConflict { .. }) if conflicts < CONFLICT_RETRIES_MAX => {
                    conflicts += 1;
                    self.ledger().forget_document(KIND_LINE, line_id);
                }
                Err(e) => return Err(CreditError::from_ledger(e)),
            }
        }
    }

    /// One date's interest on a line: the posting (when a whole fen or more) with the line's
    /// new document, and the fen posted.
    async fn day_command(
        &self,
        mut line: CreditLine,
        version: u64,
        date: Date,
        income: AccountId,
    ) -> Result<(Command, i64), CreditError> {
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
        let instalment_interest = self.instalment_interest_due_on(&line.line_id, date).await?;
        let exact = Decimal::from(bearing) * line.annual_rate / Decimal::from(DAYS_PER_YEAR)
            + line.interest_carry_minor;
        let posted_dec = exact.floor();
        let posted = posted_dec
            .to_i64()
            .ok_or(CreditError::Ledger(LedgerError::Overflow))?;
        let posted = posted.saturating_add(instalment_interest);
        line.interest_carry_minor = (exact - posted_dec).normalize();
        line.interest_due_minor = line.interest_due_minor.saturating_add(posted);
        line.accrued_through = Some(date);
        let document = DocumentWrite::json(KIND_LINE, &line.line_id, version, &line)?;
        let inner = if posted > 0 {
            let metadata = Metadata::from([
                ("type".to_owned(), "credit_interest".to_owned()),
                ("credit_line".to_owned(), line.line_id.clone()),
                ("date".to_owned(), date.to_string()),
                (
                    "instalment_interest_minor".to_owned(),
                    instalment_interest.to_string(),
                ),
            ]);
            let amount = Money::new(line.limit.currency, posted);
            Command::Post(NewTransaction::transfer(
                line.receivable,
                income,
                amount,
                metadata,
            ))
        } else {
            Command::NoOp
        };
        Ok((
            guarded(inner, Vec::new(), Vec::new(), vec![document]),
            posted,
        ))
    }

    /// The interest of a line's instalments falling due on `date` (fixed by their plans).
    async fn instalment_interest_due_on(
        &self,
        line_id: &str,
        date: Date,
    ) -> Result<i64, CreditError> {
        Ok(self
            .plans_of(line_id)
            .await?
            .iter()
            .flat_map(|p| &p.instalments)
            .filter(|i| i.due == date)
            .map(|i| i.interest_minor)
            .fold(0, i64::saturating_add))
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

    /// The bank's interest income on credit lines, created idempotently the first time.
    async fn interest_income(&self) -> Result<AccountId, CreditError> {
        self.inner
            .interest_income
            .get_or_try_init(|| async {
                let currency = self.currency();
                let purpose = format!("credit/interest_income/{currency}");
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
