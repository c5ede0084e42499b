//! Daily income (每日收益): the accrual run of one product and business date.
//!
//! Each holder earns `eligible shares × R / 10,000`, **truncated to the fen**, posted from the
//! fund's income account to the holding: the income is **reinvested as shares** (the
//! money-market convention), effective on the accrual date, so it earns from the next business
//! date. The fund's posted total for the date is
//!
//! ```text
//! fund_total = trunc_fen( Σ_holders eligible_i × R / 10,000 )     (full precision inside)
//! rounding   = fund_total − Σ_holders trunc_fen(eligible_i × R / 10,000)
//! ```
//!
//! and the rounding (0 ≤ rounding < number of holders, in fen) is posted from the income account
//! to the product's rounding account, so the income account's debits of the date equal the fund
//! total exactly.
//!
//! The run is split into `yields.accrual_shards` disjoint ranges of the product's holdings
//! ([`income_shard`](super::income_shard)), fixed when the date's run starts and kept in the
//! run's document (`yield_accrual`, the plan). The shards walk their holders side by side, each
//! step one ledger command carrying up to `yields.accrual_chunk_holders` holders' postings, one
//! income document per holder (written at version 0: a holder's income of a date exists at most
//! once) and the shard's versioned progress document; the ledger commits many shards' steps in
//! one batch. Once every shard is complete, one last command posts the rounding, computed over
//! all shards, and marks the run complete with the date's totals. A crash resumes from the plan
//! and the shards' documents; a finished date posts nothing again.

use rust_decimal::Decimal;
use time::{Date, Duration};

use crate::ledger::{Command, DocumentWrite, IdempotencyKey, Metadata, NewTransaction};
use crate::money::Money;

use super::{
    AccrualProgress, AccrualShard, AccruedDoc, KIND_ACCRUAL, KIND_ACCRUAL_SHARD, KIND_ACCRUED,
    KIND_PRODUCT, Product, SYSTEM_SCOPE, YieldError, YieldService, format_date, ids,
    income_shard::{shard_bounds, superseded},
    write_doc,
};

/// Tries at the run's own documents (its plan, its end) when another run of the same date
/// writes them first.
const RUN_TRIES_MAX: u32 = 8;

/// `trunc_fen(shares × R / 10,000)` in minor units (shares in minor units).
pub fn income_minor(shares_minor: i64, rate: Decimal) -> i64 {
    let exact = Decimal::from(shares_minor) * rate / Decimal::from(10_000);
    i64::try_from(exact.trunc()).unwrap_or(0)
}

impl YieldService {
    /// Accrues one date for one product, or for every product (`None`).
    pub async fn accrue(
        &self,
        product: Option<&str>,
        date: Date,
    ) -> Result<Vec<AccrualProgress>, YieldError> {
        let products = match product {
            Some(p) => vec![self.product_doc(p).await?],
            None => {
                let mut all = Vec::new();
                let mut after = String::new();
                loop {
                    let docs = self
                        .ledger()
                        .documents_after(KIND_PRODUCT, &after, 100)
                        .await?;
                    for d in &docs {
                        all.push(
                            serde_json::from_str::<Product>(&d.body)
                                .map_err(|_| YieldError::corrupt(KIND_PRODUCT))?,
                        );
                    }
                    match docs.last() {
                        Some(d) if docs.len() == 100 => after = d.id.clone(),
                        _ => break,
                    }
                }
                all
            }
        };
        let mut out = Vec::with_capacity(products.len());
        for p in &products {
            out.push(self.accrue_product(p, date).await?);
        }
        Ok(out)
    }

    async fn accrue_product(
        &self,
        product: &Product,
        date: Date,
    ) -> Result<AccrualProgress, YieldError> {
        let p = &product.product_id;
        if let Some((done, _)) = self
            .load::<AccrualProgress>(KIND_ACCRUAL, &ids::accrual(p, date))
            .await?
            && done.complete
        {
            return Ok(done);
        }
        let accrued = self.check_accrual_date(product, date).await?;
        let rate = self
            .rate_of(p, date)
            .await?
            .ok_or_else(|| YieldError::RateNotPublished {
                product: p.clone(),
                date,
            })?;
        for _ in 0..RUN_TRIES_MAX {
            let (plan, version) = self.accrual_plan(p, date, rate.income_per_10k).await?;
            if plan.complete {
                return Ok(plan);
            }
            let shards = futures::future::try_join_all(
                (0..plan.shards).map(|k| self.accrue_shard(product, &plan, k)),
            )
            .await?;
            match self
                .finish_run(product, plan, version, &shards, &accrued)
                .await
            {
                Ok(done) => return Ok(done),
                // Another run of the date finished it first: the next turn reads it.
                Err(e) if superseded(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(YieldError::corrupt("accrual retries"))
    }

    /// The run's plan and its version: the stored one, or a new one written now. A new plan
    /// fixes the shards for the date; a run written before runs were sharded goes on as one
    /// shard from its cursor, with its sums so far.
    async fn accrual_plan(
        &self,
        p: &str,
        date: Date,
        rate: Decimal,
    ) -> Result<(AccrualProgress, u64), YieldError> {
        let id = ids::accrual(p, date);
        for _ in 0..RUN_TRIES_MAX {
            let found = self.load::<AccrualProgress>(KIND_ACCRUAL, &id).await?;
            if let Some((plan, version)) = found.clone()
                && (plan.shards > 0 || plan.complete)
            {
                return Ok((plan, version));
            }
            let mut documents = Vec::new();
            let (plan, version) = match found {
                Some((mut old, version)) => {
                    let shard = AccrualShard {
                        cursor: old.cursor.clone(),
                        holders_paid: old.holders_paid,
                        eligible_shares_minor: old.eligible_shares_minor,
                        holders_income_minor: old.holders_income_minor,
                        complete: false,
                    };
                    documents.push(write_doc(
                        KIND_ACCRUAL_SHARD,
                        &ids::accrual_shard(p, date, 0),
                        0,
                        &shard,
                    )?);
                    old.shards = 1;
                    (old, version)
                }
                None => {
                    let shards = self.inner.config.accrual_shards;
                    let next = self.ledger().next_account_id().await?;
                    let plan = AccrualProgress {
                        product_id: p.to_owned(),
                        date,
                        income_per_10k: rate,
                        cursor: String::new(),
                        holders_paid: 0,
                        eligible_shares_minor: 0,
                        holders_income_minor: 0,
                        rounding_minor: 0,
                        fund_total_minor: 0,
                        complete: false,
                        shards,
                        shard_bounds: shard_bounds(next, shards),
                    };
                    (plan, 0)
                }
            };
            documents.insert(0, write_doc(KIND_ACCRUAL, &id, version, &plan)?);
            let key =
                IdempotencyKey::new(SYSTEM_SCOPE, format!("accrue/{p}/{date}/plan/{version}"));
            match self
                .ledger()
                .submit(key, guarded(Command::NoOp, documents))
                .await
            {
                Ok(_) => return Ok((plan, version + 1)),
                Err(e) => {
                    let e = YieldError::from(e);
                    if !superseded(&e) {
                        return Err(e);
                    }
                }
            }
        }
        Err(YieldError::corrupt("accrual plan retries"))
    }

    /// The run's last command, once every shard is complete: the date's totals over all shards,
    /// the rounding posted once, the run marked complete and the product's last accrued date.
    async fn finish_run(
        &self,
        product: &Product,
        mut plan: AccrualProgress,
        version: u64,
        shards: &[AccrualShard],
        accrued: &(Option<AccruedDoc>, u64),
    ) -> Result<AccrualProgress, YieldError> {
        if shards.iter().any(|s| !s.complete) {
            return Err(YieldError::corrupt(KIND_ACCRUAL_SHARD));
        }
        add_shards(&mut plan, shards);
        plan.fund_total_minor = income_minor(plan.eligible_shares_minor, plan.income_per_10k);
        plan.rounding_minor = plan.fund_total_minor - plan.holders_income_minor;
        debug_assert!(plan.rounding_minor >= 0, "rounding is never negative");
        plan.complete = true;
        let command = self.finish_command(product, &plan, version, accrued)?;
        let key = IdempotencyKey::new(
            SYSTEM_SCOPE,
            format!("accrue/{}/{}/total/{version}", plan.product_id, plan.date),
        );
        self.ledger().submit(key, command).await?;
        Ok(plan)
    }

    /// Refuses dates that are not business dates, have not ended, are too old, or skip an
    /// unaccrued date; returns the product's last-accrued document (and its version).
    async fn check_accrual_date(
        &self,
        product: &Product,
        date: Date,
    ) -> Result<(Option<AccruedDoc>, u64), YieldError> {
        if !self.is_business_day(date) {
            return Err(YieldError::NotABusinessDate { date });
        }
        let today = self.today();
        if date >= today {
            return Err(YieldError::AccrualOutOfOrder {
                date,
                reason: "the business date has not ended".into(),
            });
        }
        let lookback = i64::from(self.inner.config.accrual_lookback_days_max);
        if today - date > Duration::days(lookback) {
            return Err(YieldError::AccrualOutOfOrder {
                date,
                reason: format!("more than {lookback} days ago"),
            });
        }
        let accrued = self
            .load::<AccruedDoc>(KIND_ACCRUED, &product.product_id)
            .await?;
        if let Some((a, _)) = &accrued {
            let expected = self.next_business_day(a.last_date);
            if date != expected {
                return Err(YieldError::AccrualOutOfOrder {
                    date,
                    reason: format!("the next date to accrue is {}", format_date(expected)),
                });
            }
        }
        Ok(match accrued {
            Some((a, v)) => (Some(a), v),
            None => (None, 0),
        })
    }

    fn finish_command(
        &self,
        product: &Product,
        progress: &AccrualProgress,
        version: u64,
        accrued: &(Option<AccruedDoc>, u64),
    ) -> Result<Command, YieldError> {
        let p = &product.product_id;
        let rounding = Money::new(self.currency(), progress.rounding_minor.max(0));
        let inner = if rounding.minor > 0 {
            Command::Post(NewTransaction::transfer(
                product.accounts.income,
                product.accounts.rounding,
                rounding,
                Metadata::from([
                    ("type".to_owned(), "yield_income_rounding".to_owned()),
                    ("product".to_owned(), p.clone()),
                    ("date".to_owned(), format_date(progress.date)),
                ]),
            ))
        } else {
            Command::NoOp
        };
        Ok(guarded(
            inner,
            vec![
                write_doc(
                    KIND_ACCRUAL,
                    &ids::accrual(p, progress.date),
                    version,
                    progress,
                )?,
                write_doc(
                    KIND_ACCRUED,
                    p,
                    accrued.1,
                    &AccruedDoc {
                        last_date: progress.date,
                    },
                )?,
            ],
        ))
    }

    /// A finished (or partial) accrual of a date, if it ran.
    pub async fn accrual(
        &self,
        product: &str,
        date: Date,
    ) -> Result<Option<AccrualProgress>, YieldError> {
        let Some((mut run, _)) = self
            .load::<AccrualProgress>(KIND_ACCRUAL, &ids::accrual(product, date))
            .await?
        else {
            return Ok(None);
        };
        if !run.complete && run.shards > 0 {
            // The totals so far are the shards' (a resumed old-style run's shard carries its
            // sums from before).
            let mut shards = Vec::new();
            for k in 0..run.shards {
                let id = ids::accrual_shard(product, date, k);
                if let Some((s, _)) = self.load::<AccrualShard>(KIND_ACCRUAL_SHARD, &id).await? {
                    shards.push(s);
                }
            }
            run.holders_paid = 0;
            run.eligible_shares_minor = 0;
            run.holders_income_minor = 0;
            add_shards(&mut run, &shards);
        }
        Ok(Some(run))
    }
}

/// A guarded command that writes `documents` with `inner`.
fn guarded(inner: Command, documents: Vec<DocumentWrite>) -> Command {
    Command::with_documents(inner, documents)
}

/// Adds the shards' sums to the run's totals.
fn add_shards(run: &mut AccrualProgress, shards: &[AccrualShard]) {
    for s in shards {
        run.holders_paid += s.holders_paid;
        run.eligible_shares_minor += s.eligible_shares_minor;
        run.holders_income_minor += s.holders_income_minor;
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn income_is_truncated_to_the_fen() {
        let r = Decimal::from_str("0.6543").expect("rate");
        // 10,000.00 shares earn 0.6543 yuan: 65 fen, the 0.43 fen left to the rounding.
        assert_eq!(income_minor(1_000_000, r), 65);
        assert_eq!(
            income_minor(333_333, Decimal::from_str("0.6421").expect("rate")),
            21
        );
        assert_eq!(income_minor(0, r), 0);
        assert_eq!(income_minor(152, r), 0);
    }
}
