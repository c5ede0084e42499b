//! One shard of the accrual run: a disjoint range of the product's holdings, walked in id order
//! `yields.accrual_chunk_holders` per step. Each step is one ledger command: the holders'
//! income postings, one income document per holder (written at version 0: a holder's income of
//! a date exists at most once) and the shard's progress document (versioned: cursor and running
//! sums), all in one batch. The shards of a run step side by side, so the ledger commits many
//! steps in one batch; a crashed shard resumes from its document.
//!
//! Shards are ranges of holding document ids, `(bound_k, bound_k+1]`, the first from the
//! product's first holding and the last to its end, so every holding is in exactly one shard
//! whatever the bounds are. The bounds are fixed when the run starts ([`shard_bounds`]) and
//! kept in the run's document, so a resumed run walks the same ranges.

use time::Date;

use crate::{
    ledger::{
        AccountId, Command, CounterCheck, IdempotencyKey, LedgerError, Metadata, NewEntry,
        NewTransaction, Side,
    },
    money::Money,
};

use super::{
    AccrualProgress, AccrualShard, HoldingDoc, IncomeRecord, KIND_ACCRUAL_SHARD, KIND_HOLDING,
    KIND_INCOME, Product, SYSTEM_SCOPE, UNCAPPED, YieldError, YieldService, format_date, ids,
    income::income_minor, keys, write_doc,
};

/// Steps of one shard at most (each step posts up to 7 holders): a bound, not a business limit.
const SHARD_STEPS_MAX: u32 = 10_000_000;

/// Whether a refused step was another run of the same date getting there first (the shard's
/// document moved, or its step was already submitted): reload and go on.
pub(super) fn superseded(e: &YieldError) -> bool {
    matches!(
        e,
        YieldError::Ledger(
            LedgerError::DocumentConflict { .. } | LedgerError::IdempotencyKeyReused { .. }
        )
    )
}

/// Bounds of `shards` shards over accounts `1..next_account_id`, as account ids whose holding
/// document ids split the id order into ranges of about as many accounts each.
///
/// Holding document ids order accounts by the text of their number (`P/10` before `P/9`), so a
/// bound is the account whose text is the k·n/K-th in that order. Balance only affects speed:
/// any bounds make disjoint shards that together hold every holding.
pub(super) fn shard_bounds(next_account_id: u64, shards: u32) -> Vec<u64> {
    let n = next_account_id.saturating_sub(1);
    let k = u64::from(shards.max(1));
    (1..k)
        .map(|i| {
            let t = u128::from(n) * u128::from(i) / u128::from(k);
            kth_in_text_order(n, u64::try_from(t).unwrap_or(n))
        })
        .collect()
}

/// The `t`-th (from 1) of the numbers `1..=n` in the order of their decimal text (0 when
/// `t` is 0 or `n` is 0).
fn kth_in_text_order(n: u64, t: u64) -> u64 {
    if t == 0 || n == 0 {
        return 0;
    }
    let (mut current, mut left) = (1u64, t.min(n) - 1);
    while left > 0 {
        let below = numbers_with_prefix(n, current);
        if below <= left {
            left -= below;
            current += 1;
        } else {
            left -= 1;
            current = current.saturating_mul(10);
        }
    }
    current
}

/// How many of `1..=n` have `prefix`'s text as the start of theirs (itself included).
fn numbers_with_prefix(n: u64, prefix: u64) -> u64 {
    let (mut first, mut last, mut count) = (prefix, prefix, 0u64);
    while first <= n {
        count += n.min(last) - first + 1;
        match (
            first.checked_mul(10),
            last.checked_mul(10).and_then(|l| l.checked_add(9)),
        ) {
            (Some(f), Some(l)) => (first, last) = (f, l),
            (Some(f), None) => (first, last) = (f, u64::MAX),
            _ => break,
        }
    }
    count
}

/// Shard `k`'s range of holding ids: (start, end], `None` for the product's last holding.
fn shard_range(product: &str, plan: &AccrualProgress, k: u32) -> (String, Option<String>) {
    let bound = |i: usize| {
        plan.shard_bounds
            .get(i)
            .map(|a| ids::holding(product, AccountId(*a)))
    };
    let k = k as usize;
    let start = match k {
        0 => format!("{product}/"),
        _ => bound(k - 1).unwrap_or_else(|| format!("{product}/")),
    };
    (start, bound(k))
}

impl YieldService {
    /// Walks shard `k` of a planned run to its end, step after step; returns its finished
    /// document.
    pub(super) async fn accrue_shard(
        &self,
        product: &Product,
        plan: &AccrualProgress,
        k: u32,
    ) -> Result<AccrualShard, YieldError> {
        let p = &product.product_id;
        let id = ids::accrual_shard(p, plan.date, k);
        let (start, end) = shard_range(p, plan, k);
        for _ in 0..SHARD_STEPS_MAX {
            let (shard, version) = match self.load(KIND_ACCRUAL_SHARD, &id).await? {
                Some(found) => found,
                None => (
                    AccrualShard {
                        cursor: start.clone(),
                        holders_paid: 0,
                        eligible_shares_minor: 0,
                        holders_income_minor: 0,
                        complete: false,
                    },
                    0,
                ),
            };
            if shard.complete {
                return Ok(shard);
            }
            match self
                .shard_step(product, plan, k, shard, version, end.as_deref())
                .await
            {
                Ok(()) => {}
                // Another run of the date took this step: the shard's document has moved on. A
                // refusal that left it where it was is no race, and would only come again.
                Err(e) if superseded(&e) => {
                    let now = self.ledger().document(KIND_ACCRUAL_SHARD, &id).await?;
                    if now.map_or(0, |d| d.version) == version {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(YieldError::corrupt("accrual steps"))
    }

    /// One step: the shard's next holders (the last step also marks it complete).
    async fn shard_step(
        &self,
        product: &Product,
        plan: &AccrualProgress,
        k: u32,
        mut shard: AccrualShard,
        version: u64,
        end: Option<&str>,
    ) -> Result<(), YieldError> {
        let p = &product.product_id;
        let prefix = format!("{p}/");
        let chunk = self.inner.config.accrual_chunk_holders;
        let docs = self
            .ledger()
            .documents_after(KIND_HOLDING, &shard.cursor, chunk)
            .await?;
        let mut holdings = Vec::with_capacity(docs.len());
        for d in &docs {
            if !d.id.starts_with(&prefix) || end.is_some_and(|e| d.id.as_str() > e) {
                break;
            }
            let h: HoldingDoc =
                serde_json::from_str(&d.body).map_err(|_| YieldError::corrupt(KIND_HOLDING))?;
            holdings.push((d.id.clone(), h));
        }
        // Fewer holdings than asked for: the shard (or the product) ends here.
        let last = holdings.len() < chunk as usize;
        let (transactions, mut documents) = self
            .holders_postings(product, plan, &mut shard, &holdings)
            .await?;
        shard.complete = last;
        documents.insert(
            0,
            write_doc(
                KIND_ACCRUAL_SHARD,
                &ids::accrual_shard(p, plan.date, k),
                version,
                &shard,
            )?,
        );
        let command = Command::Guarded {
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
        };
        let key = IdempotencyKey::new(
            SYSTEM_SCOPE,
            format!("accrue/{p}/{}/{k}/{version}", plan.date),
        );
        self.ledger().submit(key, command).await?;
        Ok(())
    }

    /// The income postings and documents of some holders, added to the shard's sums and
    /// cursor.
    async fn holders_postings(
        &self,
        product: &Product,
        plan: &AccrualProgress,
        shard: &mut AccrualShard,
        holdings: &[(String, HoldingDoc)],
    ) -> Result<(Vec<NewTransaction>, Vec<crate::ledger::DocumentWrite>), YieldError> {
        let p = &product.product_id;
        let (date, rate, c) = (plan.date, plan.income_per_10k, self.currency());
        let docs: Vec<&HoldingDoc> = holdings.iter().map(|(_, h)| h).collect();
        let eligible = self.eligible_minor(p, &docs, date, self.today()).await?;
        let mut transactions = Vec::new();
        let mut documents = Vec::new();
        for ((doc_id, h), eligible) in holdings.iter().zip(eligible) {
            shard.cursor = doc_id.clone();
            if eligible == 0 {
                continue;
            }
            let income = income_minor(eligible, rate);
            shard.eligible_shares_minor += eligible;
            shard.holders_income_minor += income;
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
            shard.holders_paid += 1;
            transactions.push(income_tx(product, h, date, Money::new(c, income)));
        }
        Ok((transactions, documents))
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
    use super::*;

    /// The numbers 1..=n sorted by their text, the slow way.
    fn text_order(n: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (1..=n).collect();
        v.sort_by_key(|x| x.to_string());
        v
    }

    #[test]
    fn kth_in_text_order_matches_a_sort() {
        for n in [1, 9, 10, 11, 99, 100, 101, 250, 1_000, 1_234] {
            let sorted = text_order(n);
            for t in 1..=n {
                assert_eq!(
                    kth_in_text_order(n, t),
                    sorted[(t - 1) as usize],
                    "n {n} t {t}"
                );
            }
        }
        assert_eq!(kth_in_text_order(0, 3), 0);
        assert_eq!(kth_in_text_order(5, 0), 0);
    }

    #[test]
    fn shards_split_the_holdings_evenly_and_cover_them() {
        let next = 30_001;
        let bounds = shard_bounds(next, 16);
        assert_eq!(bounds.len(), 15);
        let text = |a: u64| a.to_string();
        let mut sizes = vec![0u64; 16];
        for a in 1..next {
            // Shard k holds (bound_k-1, bound_k] in text order.
            let k = bounds
                .iter()
                .position(|b| text(a) <= text(*b))
                .unwrap_or(bounds.len());
            sizes[k] += 1;
        }
        assert_eq!(sizes.iter().sum::<u64>(), 30_000);
        assert!(
            sizes.iter().all(|s| (1_870..=1_880).contains(s)),
            "{sizes:?}"
        );
        assert_eq!(shard_bounds(next, 1), Vec::<u64>::new());
        // Fewer accounts than shards: some shards are empty, none overlap.
        let few = shard_bounds(3, 4);
        assert_eq!(few.len(), 3);
        assert!(few.windows(2).all(|w| text(w[0]) <= text(w[1])), "{few:?}");
    }
}
