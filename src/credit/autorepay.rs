//! Auto-repay (自动还款): a line opened with `auto_repay` is repaid by the end-of-day run on
//! each of its repayment days, once that date is accrued (so the instalments due on it have
//! fallen due): what has fallen due — penalty, interest due, and the principal of instalments
//! due on or before the date — from the line's account, as far as its available balance covers.
//! A partial auto-repayment is fine: what is left stays overdue and bears penalty from the next
//! date. Allocated like any repayment (see [`super::allocate`]).
//!
//! Idempotent per line and date: the repayment's key is the line and the date, and a date with
//! nothing to repay (or nothing available) records a no-op under it, so a repeated or resumed
//! run never repays a date twice, nor later than the run that first reached it. A repayment
//! refused in its batch (the account debited meanwhile, or frozen) is that date's answer too.

use time::Date;

use super::{CreditError, CreditLine, CreditService, SYSTEM_SCOPE};
use crate::ledger::{Freshness, IdempotencyKey, LedgerError, Outcome, Side};

impl CreditService {
    /// Auto-repays `line` for `date`, a repayment day it has accrued: the fen repaid.
    pub(super) async fn auto_repay(
        &self,
        line: &CreditLine,
        date: Date,
    ) -> Result<i64, CreditError> {
        let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("autorepay/{}/{date}", line.line_id));
        let fingerprint = format!("autorepay|{}|{date}", line.line_id);
        let account = self
            .ledger()
            .account_state(line.account, Freshness::Current)
            .await?;
        let available = super::clamp(account.balance.available_minor(Side::Credit)).max(0);
        let answer = self
            .submit_repayment(&line.line_id, line.account, key, &fingerprint, |o| {
                Ok(o.due_minor().min(available).max(0))
            })
            .await;
        match answer {
            Ok(answer) => Ok(match answer.result {
                Ok(Outcome::Posted(p)) => p
                    .entries
                    .iter()
                    .find(|e| e.account == line.receivable)
                    .map_or(0, |e| e.amount.minor),
                _ => 0,
            }),
            // Refused in its batch (funds gone, the account frozen or closed): not repaid.
            Err(CreditError::Ledger(
                LedgerError::InsufficientFunds { .. }
                | LedgerError::AccountFrozen { .. }
                | LedgerError::AccountClosed { .. }
                | LedgerError::LimitExceeded { .. },
            )) => {
                tracing::warn!(line = %line.line_id, %date, "auto-repayment refused");
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}
