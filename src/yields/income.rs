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
//! The run walks the product's holdings in id order, `yields.accrual_chunk_holders` per step;
//! each step is one ledger command: the holders' postings, one income document per holder
//! (written at version 0: a holder's income of a date exists at most once) and the run's
//! progress document (versioned: cursor and running sums), all in one batch. A crash resumes
//! from the progress document; a finished date posts nothing again.

use rust_decimal::Decimal;
use time::{Date, Duration};

use crate::ledger::{
    Command, CounterCheck, IdempotencyKey, LedgerError, Metadata, NewEntry, NewTransaction, Side,
};
use crate::money::Money;

use super::{
    AccrualProgress, AccruedDoc, HoldingDoc, IncomeRecord, KIND_ACCRUAL, KIND_ACCRUED,
    KIND_HOLDING, KIND_INCOME, KIND_PRODUCT, Product, SYSTEM_SCOPE, UNCAPPED, YieldError,
    YieldService, format_date, ids, keys, write_doc,
};

/// Steps of one run at most (each step posts up to 7 holders): a bound, not a business limit.
const ACCRUAL_STEPS_MAX: u32 = 1_000_000;

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
        let progress_id = ids::accrual(p, date);
        if let Some((done, _)) = self
            .load::<AccrualProgress>(KIND_ACCRUAL, &progress_id)
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
        for _ in 0..ACCRUAL_STEPS_MAX {
            let (progress, version) = match self.load(KIND_ACCRUAL, &progress_id).await? {
                Some(found) => found,
                None => (
                    AccrualProgress {
                        product_id: p.clone(),
                        date,
                        income_per_10k: rate.income_per_10k,
                        cursor: format!("{p}/"),
                        holders_paid: 0,
                        eligible_shares_minor: 0,
                        holders_income_minor: 0,
                        rounding_minor: 0,
                        fund_total_minor: 0,
                        complete: false,
                    },
                    0,
                ),
            };
            if progress.complete {
                return Ok(progress);
            }
            let step = self
                .accrual_step(product, progress, version, &accrued)
                .await;
            match step {
                Ok(()) | Err(YieldError::Ledger(LedgerError::DocumentConflict { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Err(YieldError::corrupt("accrual steps"))
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

    /// One step: the next holders, or (none left) the rounding and the end of the run.
    async fn accrual_step(
        &self,
        product: &Product,
        mut progress: AccrualProgress,
        version: u64,
        accrued: &(Option<AccruedDoc>, u64),
    ) -> Result<(), YieldError> {
        let p = &product.product_id;
        let prefix = format!("{p}/");
        let chunk = self.inner.config.accrual_chunk_holders;
        let docs = self
            .ledger()
            .documents_after(KIND_HOLDING, &progress.cursor, chunk)
            .await?;
        let holdings = docs
            .iter()
            .filter(|d| d.id.starts_with(&prefix))
            .map(|d| {
                serde_json::from_str::<HoldingDoc>(&d.body)
                    .map(|h| (d.id.clone(), h))
                    .map_err(|_| YieldError::corrupt(KIND_HOLDING))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key = IdempotencyKey::new(
            SYSTEM_SCOPE,
            format!("accrue/{p}/{}/{version}", progress.date),
        );
        let command = if holdings.is_empty() {
            self.finish_command(product, &mut progress, version, accrued)?
        } else {
            self.holders_command(product, &mut progress, version, &holdings)
                .await?
        };
        self.ledger().submit(key, command).await?;
        Ok(())
    }

    async fn holders_command(
        &self,
        product: &Product,
        progress: &mut AccrualProgress,
        version: u64,
        holdings: &[(String, HoldingDoc)],
    ) -> Result<Command, YieldError> {
        let p = &product.product_id;
        let (date, rate, c) = (progress.date, progress.income_per_10k, self.currency());
        let today = self.today();
        let mut transactions = Vec::new();
        let mut documents = Vec::new();
        for (doc_id, h) in holdings {
            progress.cursor = doc_id.clone();
            let eligible = self.eligible_minor(p, h, date, today).await?;
            if eligible == 0 {
                continue;
            }
            let income = income_minor(eligible, rate);
            progress.eligible_shares_minor += eligible;
            progress.holders_income_minor += income;
            let record = IncomeRecord {
                date,
                shares: Money::new(c, eligible),
                income_per_10k: rate,
                income: Money::new(c, income),
                transaction: None,
                posted_at_ms: 0,
            };
            documents.push(write_doc(
                KIND_INCOME,
                &ids::income(p, h.account, date),
                0,
                &record,
            )?);
            if income == 0 {
                continue;
            }
            progress.holders_paid += 1;
            transactions.push(income_tx(product, h, date, Money::new(c, income)));
        }
        documents.insert(
            0,
            write_doc(KIND_ACCRUAL, &ids::accrual(p, date), version, progress)?,
        );
        Ok(Command::Guarded {
            inner: Box::new(if transactions.is_empty() {
                Command::NoOp
            } else {
                Command::PostLinked { transactions }
            }),
            counters: Vec::new(),
            releases: Vec::new(),
            caps: Vec::new(),
            documents,
            events: Vec::new(),
        })
    }

    fn finish_command(
        &self,
        product: &Product,
        progress: &mut AccrualProgress,
        version: u64,
        accrued: &(Option<AccruedDoc>, u64),
    ) -> Result<Command, YieldError> {
        let p = &product.product_id;
        progress.fund_total_minor =
            income_minor(progress.eligible_shares_minor, progress.income_per_10k);
        progress.rounding_minor = progress.fund_total_minor - progress.holders_income_minor;
        debug_assert!(progress.rounding_minor >= 0, "rounding is never negative");
        progress.complete = true;
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
        Ok(Command::Guarded {
            inner: Box::new(inner),
            counters: Vec::new(),
            releases: Vec::new(),
            caps: Vec::new(),
            documents: vec![
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
            events: Vec::new(),
        })
    }

    /// A finished (or partial) accrual of a date, if it ran.
    pub async fn accrual(
        &self,
        product: &str,
        date: Date,
    ) -> Result<Option<AccrualProgress>, YieldError> {
        Ok(self
            .load(KIND_ACCRUAL, &ids::accrual(product, date))
            .await?
            .map(|(a, _)| a))
    }
}

fn income_tx(product: &Product, h: &HoldingDoc, date: Date, income: Money) -> NewTransaction {
    let p = &product.product_id;
    NewTransaction {
        entries: vec![
            NewEntry {
                account: product.accounts.income,
                side: Side::Debit,
                amount: income,
            },
            NewEntry {
                account: h.holding_account,
                side: Side::Credit,
                amount: income,
            },
        ],
        metadata: Metadata::from([
            ("type".to_owned(), "yield_income".to_owned()),
            ("product".to_owned(), p.clone()),
            ("account".to_owned(), h.account.to_string()),
            ("date".to_owned(), format_date(date)),
        ]),
        counters: vec![
            CounterCheck {
                key: keys::shares_in(p, h.account, date),
                amount_minor: income.minor,
                cap_minor: UNCAPPED,
            },
            CounterCheck {
                key: keys::income_total(p, h.account),
                amount_minor: income.minor,
                cap_minor: UNCAPPED,
            },
        ],
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
