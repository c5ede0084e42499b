//! Holdings: the ledger account that holds an account's shares of a product, the holding view,
//! eligibility by date, and the income and redemption histories.
//!
//! **Eligibility.** Every change of a holding's shares also adds to a per-date counter in the
//! same batch: `in/D` (subscriptions on D, and the income of D, reinvested) and `out/D`
//! (redemptions on D). Shares that earn on D are those held at the end of D−1 less those
//! redeemed on D (first in, first out: a redemption takes the oldest shares):
//!
//! ```text
//! held_end(D−1) = balance_now − Σ_{d ≥ D} in(d) + Σ_{d ≥ D} out(d)
//! eligible(D)   = max(0, held_end(D−1) − out(D))
//! ```
//!
//! The balance and the counters are read apart; the counters are read again after the balance
//! and the read is retried until they agree (every change of the balance moves a counter).

use time::{Date, Duration};

use crate::{
    account::Caller,
    ledger::{
        AccountId, BalanceConstraint, DocumentWrite, IdempotencyKey, Metadata, NewAccount, Side,
    },
    money::Money,
};

use super::{
    HoldingDoc, HoldingView, IncomeRecord, KIND_HOLDING, KIND_INCOME, KIND_REDEMPTION, Page,
    Product, Redemption, SYSTEM_SCOPE, YieldError, YieldService, clamp, ids, keys, write_doc,
};

/// Reads of balance and counters retried until they agree.
const CONSISTENT_READ_TRIES_MAX: u32 = 16;

impl YieldService {
    /// The holding of (account, product), if the account ever subscribed.
    pub(super) async fn holding_doc(
        &self,
        account: AccountId,
        product: &str,
    ) -> Result<Option<HoldingDoc>, YieldError> {
        Ok(self
            .load::<HoldingDoc>(KIND_HOLDING, &ids::holding(product, account))
            .await?
            .map(|(h, _)| h))
    }

    /// The holding's ledger account, and the holding document to write with the posting when
    /// it is new. The ledger account is created under a key of its own (account, product), so
    /// every try finds the same one; the document that makes it the holding commits in the
    /// subscription's batch.
    pub(super) async fn holding_for_write(
        &self,
        account: AccountId,
        product: &Product,
        today: Date,
    ) -> Result<(AccountId, Option<DocumentWrite>), YieldError> {
        if let Some(h) = self.holding_doc(account, &product.product_id).await? {
            return Ok((h.holding_account, None));
        }
        let spec = NewAccount {
            currency: self.currency(),
            normal_side: Side::Credit,
            kind: "yield_holding".to_owned(),
            // Shares never go below zero: a redemption beyond them is refused in the batch.
            constraint: BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor: 0 },
            metadata: Metadata::from([
                ("product".to_owned(), product.product_id.clone()),
                ("account".to_owned(), account.to_string()),
            ]),
            profile: None,
        };
        let key = IdempotencyKey::new(
            SYSTEM_SCOPE,
            format!("holding/{}/{account}", product.product_id),
        );
        let created = self.ledger().create_account(key, spec).await?;
        let doc = HoldingDoc {
            account,
            product_id: product.product_id.clone(),
            holding_account: created.id,
            opened_on: today,
        };
        let write = write_doc(
            KIND_HOLDING,
            &ids::holding(&product.product_id, account),
            0,
            &doc,
        )?;
        Ok((created.id, Some(write)))
    }

    async fn holding_in_scope(
        &self,
        caller: &Caller,
        account: AccountId,
        product: &str,
    ) -> Result<(Product, HoldingDoc, String), YieldError> {
        let facts = self.inner.accounts.facts_in_scope(caller, account).await?;
        let product = self.product_doc(product).await?;
        let holding = self
            .holding_doc(account, &product.product_id)
            .await?
            .ok_or_else(|| YieldError::HoldingNotFound {
                account: account.to_string(),
                product: product.product_id.clone(),
            })?;
        Ok((product, holding, facts.investor()))
    }

    /// An account's holding in one product, as of now.
    pub async fn holding(
        &self,
        caller: &Caller,
        account: AccountId,
        product: &str,
    ) -> Result<HoldingView, YieldError> {
        let (product, holding, investor) = self.holding_in_scope(caller, account, product).await?;
        let p = &product.product_id;
        let today = self.today();
        let yesterday = self.previous_business_day(today);
        let counter_keys = [
            keys::shares_in(p, account, today),
            keys::income_total(p, account),
            keys::pending_out(p, account),
            keys::fast(p, &investor, today),
        ];
        let [bought_today, income_total, pending_out, fast_used] =
            match self.counters(&counter_keys).await?[..] {
                [a, b, c, d] => [a, b, c, d],
                _ => return Err(YieldError::corrupt("counters")),
            };
        let shares = self.posted_minor(holding.holding_account).await?;
        let last_income = self
            .load::<IncomeRecord>(KIND_INCOME, &ids::income(p, account, yesterday))
            .await?
            .map_or(0, |(r, _)| r.income.minor);
        let c = self.currency();
        let cap = product.fast_redeem_daily_cap.minor;
        Ok(HoldingView {
            account,
            product_id: product.product_id.clone(),
            shares: Money::new(c, shares),
            earning_shares: Money::new(c, (shares - bought_today).max(0)),
            pending_shares: Money::new(c, bought_today.min(shares)),
            last_income: Money::new(c, last_income),
            accumulated_income: Money::new(c, income_total),
            pending_redemptions: Money::new(c, pending_out),
            fast_redeem_remaining: Money::new(c, (cap - fast_used).max(0)),
            business_date: today,
            as_of_ms: self.ledger().now_ms(),
        })
    }

    /// Shares of each holding that earn on `date` (see the module docs), read consistently: the
    /// counters of all of them, their balances side by side, the counters again.
    pub(super) async fn eligible_minor(
        &self,
        product: &str,
        holdings: &[&HoldingDoc],
        date: Date,
        today: Date,
    ) -> Result<Vec<i64>, YieldError> {
        let mut days = Vec::new();
        let mut d = date;
        while d <= today {
            days.push(d);
            d = d.saturating_add(Duration::days(1));
        }
        if days.is_empty() {
            return Ok(vec![0; holdings.len()]);
        }
        // Per holding: in(d) for each day, then out(d) for each day.
        let per = 2 * days.len();
        let all: Vec<String> = holdings
            .iter()
            .flat_map(|h| {
                let ins = days.iter().map(|d| keys::shares_in(product, h.account, *d));
                let outs = days
                    .iter()
                    .map(|d| keys::shares_out(product, h.account, *d));
                ins.chain(outs).collect::<Vec<_>>()
            })
            .collect();
        for _ in 0..CONSISTENT_READ_TRIES_MAX {
            let before = self.counters(&all).await?;
            let balances = futures::future::try_join_all(
                holdings
                    .iter()
                    .map(|h| self.posted_minor(h.holding_account)),
            )
            .await?;
            let after = self.counters(&all).await?;
            if before != after {
                continue;
            }
            return Ok(balances
                .iter()
                .zip(before.chunks(per))
                .map(|(balance, counters)| {
                    let (ins, outs) = counters.split_at(days.len());
                    let sum_in: i128 = ins.iter().map(|v| i128::from(*v)).sum();
                    let sum_out: i128 = outs.iter().map(|v| i128::from(*v)).sum();
                    let out_today = i128::from(outs.first().copied().unwrap_or(0));
                    let held_before = i128::from(*balance) - sum_in + sum_out;
                    clamp((held_before - out_today).max(0))
                })
                .collect());
        }
        Err(YieldError::Ledger(crate::ledger::LedgerError::Overloaded))
    }

    /// Daily income of a holding, newest first; the page token is the last record's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_income(
        &self,
        caller: &Caller,
        account: AccountId,
        product: &str,
        start: Option<Date>,
        end: Option<Date>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<IncomeRecord>, YieldError> {
        let (product, _, _) = self.holding_in_scope(caller, account, product).await?;
        let limit = self.page_size(page_size)?;
        let prefix = format!("{}/", ids::holding(&product.product_id, account));
        let after = match (page_token, end) {
            ("", Some(end)) => {
                // Newest first: start just before the end date's id.
                let id = ids::income(&product.product_id, account, end);
                let (head, tail) = id.split_at(id.len() - 8);
                let n: i64 = tail.parse().unwrap_or(0);
                format!("{head}{:08}", n - 1)
            }
            ("", None) => prefix.clone(),
            (token, _) if token.starts_with(&prefix) => token.to_owned(),
            _ => return Err(YieldError::InvalidPageToken),
        };
        let docs = self
            .ledger()
            .documents_after(KIND_INCOME, &after, limit)
            .await?;
        let full = docs.len() == limit as usize;
        let mut items = Vec::new();
        let mut last_id = String::new();
        let mut done = !full;
        for doc in docs.iter() {
            if !doc.id.starts_with(&prefix) {
                done = true;
                break;
            }
            let mut record: IncomeRecord =
                serde_json::from_str(&doc.body).map_err(|_| YieldError::corrupt(KIND_INCOME))?;
            if start.is_some_and(|s| record.date < s) {
                done = true;
                break;
            }
            record.transaction = doc.transaction;
            record.posted_at_ms = doc.updated_at_ms;
            last_id = doc.id.clone();
            items.push(record);
        }
        Ok(Page {
            items,
            next_page_token: if done { String::new() } else { last_id },
        })
    }

    /// Redemptions of a holding, newest first; the page token is the last redemption's id.
    pub async fn list_redemptions(
        &self,
        caller: &Caller,
        account: AccountId,
        product: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Redemption>, YieldError> {
        let (product, _, _) = self.holding_in_scope(caller, account, product).await?;
        let limit = self.page_size(page_size)?;
        let prefix = format!("{}/", ids::holding(&product.product_id, account));
        let after = match page_token {
            "" => prefix.clone(),
            t if t.starts_with(&prefix) => t.to_owned(),
            _ => return Err(YieldError::InvalidPageToken),
        };
        let docs = self
            .ledger()
            .documents_after(KIND_REDEMPTION, &after, limit)
            .await?;
        let full = docs.len() == limit as usize;
        let mut items = Vec::new();
        let mut last_id = String::new();
        let mut done = !full;
        for doc in &docs {
            if !doc.id.starts_with(&prefix) {
                done = true;
                break;
            }
            let mut r: Redemption = serde_json::from_str(&doc.body)
                .map_err(|_| YieldError::corrupt(KIND_REDEMPTION))?;
            // The document's version was written by the posting that credited the account.
            if r.status == super::RedemptionStatus::Succeeded {
                r.credit_transaction = doc.transaction;
            }
            items.push(r);
            last_id = doc.id.clone();
        }
        Ok(Page {
            items,
            next_page_token: if done { String::new() } else { last_id },
        })
    }
}
