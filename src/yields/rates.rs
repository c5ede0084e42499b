//! Daily rates: the operator publishes each business date's income per 10,000 shares (万份收益)
//! once; the 7-day annualised yields (七日年化) are computed from the last seven published.
//!
//! ```text
//! simple   = (ΣR_i / 7) × 365 / 10,000
//! compound = ∏(1 + R_i / 10,000)^(365/7) − 1
//! ```
//!
//! Both are computed in `rust_decimal` (28 significant digits). The fractional power is
//! `Decimal::checked_powd` (the crate's `maths` feature: exp(y·ln x) by series, accurate far
//! beyond the 6 decimals shown); both yields are rounded half-even to 6 decimals of a fraction
//! (0.0001 %). With fewer than 7 published dates there is no 7-day yield yet.

use std::str::FromStr;

use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};
use time::Date;

use crate::{
    account::Caller,
    ledger::{Command, LedgerError, RequestId},
};

use super::{
    KIND_RATE, RateView, SEVEN_DAY_WINDOW, StoredRate, YieldError, YieldService, ids,
    model::{RATE_MAX_YUAN, RATE_SCALE_MAX},
    newest_first, write_doc,
};

/// Decimals the 7-day yields are shown with.
const YIELD_SCALE: u32 = 6;

/// Parses a 万份收益: a plain decimal, 0 ≤ R ≤ 100, at most 4 decimals.
pub fn parse_rate(text: &str) -> Result<Decimal, YieldError> {
    let invalid = || {
        YieldError::invalid(
            "income_per_ten_thousand_shares",
            format!("a decimal 0..={RATE_MAX_YUAN} with at most {RATE_SCALE_MAX} decimals"),
        )
    };
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(invalid());
    }
    let rate = Decimal::from_str(text).map_err(|_| invalid())?.normalize();
    if rate.scale() > RATE_SCALE_MAX || rate > Decimal::from(RATE_MAX_YUAN) {
        return Err(invalid());
    }
    Ok(rate)
}

impl YieldService {
    /// Publishes a product's rate for a business date: once; the same value again answers the
    /// published rate, another value is `RateAlreadyPublished`.
    pub async fn publish_rate(
        &self,
        caller: &Caller,
        request_id: RequestId,
        product: &str,
        date: Date,
        rate: Decimal,
    ) -> Result<RateView, YieldError> {
        let fingerprint = format!("publish_rate|{product}|{date}|{rate}");
        let key = request_id.key(&caller.name);
        // No such product, or a date that is not a business date: the request's refusal,
        // claimed like the batch's (an earlier success under the id answers the rate).
        let checked = match self.product_doc(product).await {
            Ok(_) if !self.is_business_day(date) => Err(YieldError::NotABusinessDate { date }),
            other => other,
        };
        let product = match checked {
            Ok(product) => product,
            Err(e) => {
                self.claim(key.clone(), &fingerprint, e).await?;
                self.product_doc(product).await?
            }
        };
        let id = ids::rate(&product.product_id, date);
        let stored = StoredRate {
            date,
            income_per_10k: rate,
            published_at_ms: self.ledger().now_ms(),
        };
        if self.load::<StoredRate>(KIND_RATE, &id).await?.is_none() {
            let command = Command::with_documents(
                Command::NoOp,
                vec![write_doc(KIND_RATE, &id, 0, &stored)?],
            );
            match self
                .ledger()
                .submit_request(key, &fingerprint, command)
                .await
            {
                Ok(_) | Err(LedgerError::DocumentConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (published, _) = self
            .load::<StoredRate>(KIND_RATE, &id)
            .await?
            .ok_or_else(|| YieldError::corrupt(KIND_RATE))?;
        if published.income_per_10k != rate {
            return Err(YieldError::RateAlreadyPublished {
                product: product.product_id,
                date,
                published: published.income_per_10k.to_string(),
            });
        }
        let window = self.rates_until(&product.product_id, Some(date)).await?;
        rate_view(&window).ok_or_else(|| YieldError::corrupt(KIND_RATE))
    }

    /// The rate published for a date, if any.
    pub(super) async fn rate_of(
        &self,
        product: &str,
        date: Date,
    ) -> Result<Option<StoredRate>, YieldError> {
        Ok(self
            .load::<StoredRate>(KIND_RATE, &ids::rate(product, date))
            .await?
            .map(|(r, _)| r))
    }

    /// The last 7 published rates, newest first.
    pub(super) async fn recent_rates(&self, product: &str) -> Result<Vec<StoredRate>, YieldError> {
        self.rates_until(product, None).await
    }

    /// The last 7 rates published for dates up to `until` (all dates: `None`), newest first.
    async fn rates_until(
        &self,
        product: &str,
        until: Option<Date>,
    ) -> Result<Vec<StoredRate>, YieldError> {
        let prefix = format!("{product}/");
        // Ids sort newest first; start just before `until`'s id so it is included.
        let after = match until {
            None => prefix.clone(),
            Some(d) => {
                let inverted: i64 = newest_first(d).parse().unwrap_or(0);
                format!("{prefix}{:08}", inverted - 1)
            }
        };
        let docs = self
            .ledger()
            .documents_after(KIND_RATE, &after, SEVEN_DAY_WINDOW as u32)
            .await?;
        docs.iter()
            .filter(|d| d.id.starts_with(&prefix))
            .map(|d| serde_json::from_str(&d.body).map_err(|_| YieldError::corrupt(KIND_RATE)))
            .collect()
    }
}

/// The newest rate with its 7-day yields (empty yields while fewer than 7 are published).
pub fn rate_view(newest_first: &[StoredRate]) -> Option<RateView> {
    let latest = newest_first.first()?.clone();
    let (simple, compound) = if newest_first.len() >= SEVEN_DAY_WINDOW {
        seven_day_yields(&newest_first[..SEVEN_DAY_WINDOW])
    } else {
        (None, None)
    };
    Some(RateView {
        rate: latest,
        seven_day_simple: simple,
        seven_day_compound: compound,
    })
}

/// (simple, compound) 7-day annualised yields of seven daily rates.
pub fn seven_day_yields(rates: &[StoredRate]) -> (Option<Decimal>, Option<Decimal>) {
    let ten_thousand = Decimal::from(10_000);
    let n = Decimal::from(rates.len() as u64);
    let sum: Decimal = rates.iter().map(|r| r.income_per_10k).sum();
    let simple = (sum / n * Decimal::from(365) / ten_thousand)
        .round_dp_with_strategy(YIELD_SCALE, RoundingStrategy::MidpointNearestEven);
    let product = rates.iter().try_fold(Decimal::ONE, |acc, r| {
        acc.checked_mul(Decimal::ONE + r.income_per_10k / ten_thousand)
    });
    let exponent = Decimal::from(365) / Decimal::from(7);
    let compound = product.and_then(|p| p.checked_powd(exponent)).map(|g| {
        (g - Decimal::ONE)
            .round_dp_with_strategy(YIELD_SCALE, RoundingStrategy::MidpointNearestEven)
    });
    (Some(simple), compound)
}
