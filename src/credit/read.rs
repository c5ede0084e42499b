//! GetCreditLine: a line with what is drawn (its receivable's balance) and what is left (its
//! usage counter), and how an answer is rebuilt from what its batch observed.

use time::{Date, Duration};

use super::{CreditError, CreditLine, CreditService, LineStatus, LineView, keys};
use crate::{
    account::Caller,
    ledger::{Balance, Freshness, Observed, Side},
    money::Money,
};

impl CreditService {
    /// A line as it stands, for a caller whose account scope covers the line's account.
    pub async fn line(&self, caller: &Caller, line_id: &str) -> Result<LineView, CreditError> {
        let (line, _) = self.line_doc(line_id, Freshness::Current).await?;
        self.inner
            .accounts
            .facts_in_scope(caller, line.account)
            .await?;
        self.view_now(line).await
    }

    /// The line of `account` as it stands, if it has one (for the cashier's list of payment
    /// methods; the caller's scope over the account is the cashier's to check).
    pub async fn line_of_account(
        &self,
        account: crate::ledger::AccountId,
    ) -> Result<Option<LineView>, CreditError> {
        match self
            .line_doc(&super::ids::line(account), Freshness::Current)
            .await
        {
            Ok((line, _)) => Ok(Some(self.view_now(line).await?)),
            Err(CreditError::LineNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The line's view from current reads of its receivable and usage counter.
    pub(super) async fn view_now(&self, line: CreditLine) -> Result<LineView, CreditError> {
        let state = self
            .ledger()
            .account_state(line.receivable, Freshness::Current)
            .await?;
        let usage = self.usage(&line.line_id, Freshness::Current).await?;
        Ok(self.view_of(line, &state.balance, usage))
    }

    /// The line as a command left it, from what its batch observed (a replay answers the same).
    pub(super) fn view_observed(
        &self,
        fallback: CreditLine,
        observed: Option<&Observed>,
    ) -> Result<LineView, CreditError> {
        let Some(observed) = observed else {
            return Err(CreditError::corrupt("credit answer without observations"));
        };
        let line = CreditService::observed_line(Some(observed)).unwrap_or(fallback);
        let balance = observed
            .balances
            .iter()
            .find(|(a, _)| *a == line.receivable)
            .map(|(_, b)| *b)
            .unwrap_or_default();
        let key = keys::usage(&line.line_id);
        let usage = observed
            .counters
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, v)| *v);
        Ok(self.view_of(line, &balance, usage))
    }

    fn view_of(&self, line: CreditLine, receivable: &Balance, usage: i64) -> LineView {
        let currency = line.limit.currency;
        let used = principal_of(&line, receivable);
        let available = match line.status {
            LineStatus::Frozen => 0,
            LineStatus::Active => line
                .base_minor
                .saturating_sub(usage)
                .clamp(0, line.limit.minor),
        };
        let next_due = (used > 0 || line.charges_minor() > 0)
            .then(|| next_repayment_day(self.today(), line.repayment_day));
        LineView {
            used: Money::new(currency, used),
            interest_due: Money::new(currency, line.interest_due_minor),
            penalty_due: Money::new(currency, line.penalty_due_minor),
            overdue_principal: Money::new(currency, line.overdue_principal_minor),
            available: Money::new(currency, available),
            next_due,
            line,
        }
    }

    /// Today's business date (what an instalment's state is judged on).
    pub fn business_date(&self) -> Date {
        self.today()
    }

    pub(super) fn today(&self) -> Date {
        self.inner.accounts.today()
    }
}

/// Principal outstanding: the receivable's balance less the penalty and interest due in it.
pub(super) fn principal_of(line: &CreditLine, receivable: &Balance) -> i64 {
    super::clamp(receivable.posted_minor(Side::Debit))
        .saturating_sub(line.charges_minor())
        .max(0)
}

/// The first date after `today` falling on `day` of its month (1..=28, so every month has it).
pub fn next_repayment_day(today: Date, day: u8) -> Date {
    let mut d = today;
    for _ in 0..62 {
        d = d.saturating_add(Duration::days(1));
        if d.day() == day {
            return d;
        }
    }
    d
}
