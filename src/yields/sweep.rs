//! Auto-sweep (余额自动申购) and the end-of-day run.
//!
//! `RunEndOfDay(D)`, run once business date D has ended (after the cutover): first each enabled
//! auto-sweep subscribes the account's available balance above its kept balance (one
//! subscription per account and date, under the run's own idempotency key, so a re-run sweeps
//! nothing twice) — a subscription of D, though it runs after the cutover: its shares are held
//! at the end of D and earn from the next business date after D; then every redemption due by
//! the next business date after D is settled — NORMAL ones credit the account, FAST ones repay
//! the bank's advance — so NORMAL cash is there when the next business date opens. Sweeping
//! first keeps the cash of a redemption settled the same night out of that night's sweep.
//! Income accrual is its own run (`AccrueIncome`, `paygate yield accrue`).

use time::{Date, Duration};

use crate::{
    account::Caller,
    ledger::{Command, CounterRelease, IdempotencyKey, LedgerError, Metadata, NewTransaction},
    money::Money,
};

use super::{
    AutoSweep, CONFLICT_RETRIES_MAX, DueDoc, EndOfDay, KIND_DUE, KIND_REDEMPTION, KIND_SWEEP,
    RedeemMode, Redemption, RedemptionStatus, SYSTEM_SCOPE, SetAutoSweep, YieldError, YieldService,
    format_date, ids, keys, write_doc,
};

/// Documents read per page by the end-of-day run.
const EOD_PAGE: u32 = 100;

impl YieldService {
    /// Sets (or replaces) an account's auto-sweep.
    pub async fn set_auto_sweep(
        &self,
        caller: &Caller,
        s: SetAutoSweep,
    ) -> Result<AutoSweep, YieldError> {
        let sweep = s.sweep;
        if sweep.keep_balance.currency != self.currency() || sweep.keep_balance.minor < 0 {
            return Err(YieldError::invalid(
                "keep_balance",
                format!("zero or more {}", self.currency()),
            ));
        }
        let id = ids::sweep(sweep.account);
        let fingerprint = format!("set_auto_sweep|{sweep:?}");
        let key = s.request_id.key(&caller.name);
        // An account or product not found claims the request id like the batch's refusals;
        // an earlier success under it answers the sweep as this request set it.
        let checked = match self
            .inner
            .accounts
            .facts_in_scope(caller, sweep.account)
            .await
        {
            Ok(_) => self.product_doc(&sweep.product_id).await.map(|_| ()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = checked {
            self.claim(key, &fingerprint, e).await?;
            return Ok(sweep);
        }
        for attempt in 0.. {
            let version = self
                .load::<AutoSweep>(KIND_SWEEP, &id)
                .await?
                .map_or(0, |(_, v)| v);
            let command = Command::with_documents(
                Command::NoOp,
                vec![write_doc(KIND_SWEEP, &id, version, &sweep)?],
            );
            match self
                .ledger()
                .submit_request(key.clone(), &fingerprint, command)
                .await
            {
                Ok(_) => return Ok(sweep),
                Err(LedgerError::DocumentConflict { .. }) if attempt < CONFLICT_RETRIES_MAX => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(YieldError::corrupt("sweep retries"))
    }

    pub async fn auto_sweep(
        &self,
        caller: &Caller,
        account: crate::ledger::AccountId,
    ) -> Result<AutoSweep, YieldError> {
        self.inner.accounts.facts_in_scope(caller, account).await?;
        self.sweep_doc(account)
            .await?
            .ok_or_else(|| YieldError::SweepNotFound {
                account: account.to_string(),
            })
    }

    /// An account's yield settings (auto-sweep, top-up opt-in), if it has any.
    pub(super) async fn sweep_doc(
        &self,
        account: crate::ledger::AccountId,
    ) -> Result<Option<AutoSweep>, YieldError> {
        Ok(self
            .load::<AutoSweep>(KIND_SWEEP, &ids::sweep(account))
            .await?
            .map(|(s, _)| s))
    }

    /// The end-of-day run of a business date that has ended.
    pub async fn end_of_day(&self, date: Date) -> Result<EndOfDay, YieldError> {
        if date >= self.today() {
            return Err(YieldError::AccrualOutOfOrder {
                date,
                reason: "the business date has not ended".into(),
            });
        }
        let mut done = EndOfDay::default();
        let mut after = String::new();
        loop {
            let docs = self
                .ledger()
                .documents_after(KIND_SWEEP, &after, EOD_PAGE)
                .await?;
            for doc in &docs {
                let sweep: AutoSweep =
                    serde_json::from_str(&doc.body).map_err(|_| YieldError::corrupt(KIND_SWEEP))?;
                if sweep.enabled && self.sweep_one(&sweep, date).await? {
                    done.sweeps += 1;
                }
            }
            match docs.last() {
                Some(d) if docs.len() == EOD_PAGE as usize => after = d.id.clone(),
                _ => break,
            }
        }
        done.redemptions_settled = self.settle_due(self.next_business_day(date)).await?;
        Ok(done)
    }

    /// Subscribes the excess of one account; a refusal (limits, product not open, below the
    /// minimum) is logged and skipped: the sweep is a convenience, not an obligation.
    async fn sweep_one(&self, sweep: &AutoSweep, date: Date) -> Result<bool, YieldError> {
        let facts = self.inner.accounts.facts(sweep.account).await?;
        let product = self.product_doc(&sweep.product_id).await?;
        let excess = facts.available.minor - sweep.keep_balance.minor;
        if excess <= 0 || excess < product.min_subscription.minor {
            return Ok(false);
        }
        let key = IdempotencyKey::new(
            SYSTEM_SCOPE,
            format!("sweep/{}/{}", sweep.account, format_date(date)),
        );
        let fingerprint = format!("sweep|{}|{date}", sweep.account);
        if self
            .ledger()
            .answered_request(&key, &fingerprint)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let id = format!("sweep-{}-{}", sweep.account, format_date(date));
        let amount = Money::new(self.currency(), excess);
        match self
            .subscribe_as(key, &fingerprint, &id, &facts, &product, amount, date)
            .await
        {
            Ok(_) => Ok(true),
            Err(YieldError::Ledger(e)) if !e.is_stored_outcome() => Err(YieldError::Ledger(e)),
            Err(e) => {
                tracing::warn!(account = %sweep.account, error = %e, "auto-sweep refused");
                Ok(false)
            }
        }
    }

    /// Settles every unsettled redemption due on or before `through`.
    async fn settle_due(&self, through: Date) -> Result<i64, YieldError> {
        let lookback = i64::from(self.inner.config.accrual_lookback_days_max) * 2;
        let mut after = format_date(through.saturating_sub(Duration::days(lookback)));
        let last = format_date(through);
        let mut settled = 0;
        loop {
            let docs = self
                .ledger()
                .documents_after(KIND_DUE, &after, EOD_PAGE)
                .await?;
            for doc in &docs {
                if doc.id.get(..10).is_none_or(|d| d > last.as_str()) {
                    return Ok(settled);
                }
                let due: DueDoc =
                    serde_json::from_str(&doc.body).map_err(|_| YieldError::corrupt(KIND_DUE))?;
                if !due.settled && self.settle_one(&doc.id, due, doc.version).await? {
                    settled += 1;
                }
            }
            match docs.last() {
                Some(d) if docs.len() == EOD_PAGE as usize => after = d.id.clone(),
                _ => return Ok(settled),
            }
        }
    }

    async fn settle_one(
        &self,
        due_id: &str,
        due: DueDoc,
        version: u64,
    ) -> Result<bool, YieldError> {
        let product = self.product_doc(&due.product_id).await?;
        let Some((mut redemption, r_version)) = self
            .load::<Redemption>(KIND_REDEMPTION, &due.redemption_doc_id)
            .await?
        else {
            return Err(YieldError::corrupt(KIND_REDEMPTION));
        };
        let mut documents = vec![write_doc(
            KIND_DUE,
            due_id,
            version,
            &DueDoc {
                settled: true,
                ..due.clone()
            },
        )?];
        let mut releases = Vec::new();
        if due.mode == RedeemMode::Normal {
            redemption.status = RedemptionStatus::Succeeded;
            redemption.credited_at_ms = Some(self.ledger().now_ms());
            documents.push(write_doc(
                KIND_REDEMPTION,
                &due.redemption_doc_id,
                r_version,
                &redemption,
            )?);
            releases.push(CounterRelease {
                key: keys::pending_out(&due.product_id, redemption.account),
                amount_minor: due.amount.minor,
            });
        }
        let tx = settle_tx(product.accounts.settlement, &due, &redemption.redemption_id);
        let command = Command::Guarded {
            inner: Box::new(Command::Post(tx)),
            counters: Vec::new(),
            releases,
            caps: Vec::new(),
            documents,
            events: Vec::new(),
        };
        let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("settle/{due_id}"));
        match self.ledger().submit(key, command).await {
            Ok(_) => Ok(true),
            Err(LedgerError::DocumentConflict { .. }) => Ok(false),
            Err(e) if e.is_stored_outcome() => {
                tracing::error!(due = due_id, error = %e, "a due redemption could not be settled");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The settlement posting of a due redemption: the fund pays the account or repays the advance.
fn settle_tx(
    settlement: crate::ledger::AccountId,
    due: &DueDoc,
    redemption_id: &str,
) -> NewTransaction {
    NewTransaction::transfer(
        settlement,
        due.payee,
        due.amount,
        Metadata::from([
            ("type".to_owned(), "yield_redeem_settle".to_owned()),
            ("product".to_owned(), due.product_id.clone()),
            ("mode".to_owned(), due.mode.as_str().to_owned()),
            ("redemption".to_owned(), redemption_id.to_owned()),
        ]),
    )
}
