//! Instalment schedules (分期还款计划), exact to the fen. Pure arithmetic: no I/O.
//!
//! The monthly rate is the line's APR / 12. Interest of each month is the principal still in the
//! plan times the monthly rate, truncated to the fen. The last instalment takes whatever
//! principal is left, so the principals always sum to the drawdown exactly.
//!
//! ```text
//! equal principal (等额本金):   principal_k = ⌊P / n⌋            (last: the rest)
//!                               interest_k  = ⌊remaining_k × r⌋
//! equal instalment (等额本息):  A = ⌊P × r × (1+r)^n / ((1+r)^n − 1)⌋   (r = 0: ⌊P / n⌋)
//!                               interest_k  = ⌊remaining_k × r⌋,  principal_k = A − interest_k
//!                               (last: principal the rest, interest ⌊rest × r⌋)
//! ```

use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Serialize};
use time::{Date, Month};

const MONTHS_PER_YEAR: i64 = 12;

/// How many monthly instalments a drawdown may be split into.
pub const INSTALMENT_COUNTS: [u32; 3] = [3, 6, 12];

/// How a plan spreads principal and interest over its months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstalmentMethod {
    /// Equal principal (等额本金): the same principal each month, interest falling.
    EqualPrincipal,
    /// Equal instalment (等额本息): the same total each month (the last absorbs rounding).
    EqualInstalment,
}

impl InstalmentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            InstalmentMethod::EqualPrincipal => "EQUAL_PRINCIPAL",
            InstalmentMethod::EqualInstalment => "EQUAL_INSTALMENT",
        }
    }
}

/// One month of a schedule, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledInstalment {
    /// 1-based.
    pub number: u32,
    pub due: Date,
    pub principal_minor: i64,
    pub interest_minor: i64,
}

/// The schedule of `principal_minor` over `count` months at `annual_rate`, the first falling due
/// on `first_due` and each next one a month later (same day; `first_due.day()` ≤ 28). `None`
/// when the arithmetic does not fit (a principal far beyond any limit).
pub fn schedule(
    principal_minor: i64,
    count: u32,
    method: InstalmentMethod,
    annual_rate: Decimal,
    first_due: Date,
) -> Option<Vec<ScheduledInstalment>> {
    if principal_minor <= 0 || count == 0 {
        return None;
    }
    let r = annual_rate.checked_div(Decimal::from(MONTHS_PER_YEAR))?;
    let n = i64::from(count);
    let level = match method {
        InstalmentMethod::EqualPrincipal => None,
        InstalmentMethod::EqualInstalment => Some(level_payment(principal_minor, count, r)?),
    };
    let mut remaining = principal_minor;
    let mut out = Vec::with_capacity(count as usize);
    for k in 1..=count {
        // Multiplied before it is divided, so a whole fen stays whole (APR / 12 is inexact).
        let interest = floor_minor(
            Decimal::from(remaining)
                .checked_mul(annual_rate)?
                .checked_div(Decimal::from(MONTHS_PER_YEAR))?,
        )?;
        let principal = if k == count {
            remaining
        } else {
            match level {
                None => principal_minor / n,
                Some(a) => a.checked_sub(interest)?.clamp(0, remaining),
            }
        };
        remaining -= principal;
        out.push(ScheduledInstalment {
            number: k,
            due: add_months(first_due, k - 1)?,
            principal_minor: principal,
            interest_minor: interest,
        });
    }
    Some(out)
}

/// The equal monthly payment, truncated to the fen.
fn level_payment(principal_minor: i64, count: u32, r: Decimal) -> Option<i64> {
    let p = Decimal::from(principal_minor);
    if r.is_zero() {
        return Some(principal_minor / i64::from(count));
    }
    let mut growth = Decimal::ONE;
    for _ in 0..count {
        growth = growth.checked_mul(Decimal::ONE.checked_add(r)?)?;
    }
    let a = p
        .checked_mul(r)?
        .checked_mul(growth)?
        .checked_div(growth.checked_sub(Decimal::ONE)?)?;
    floor_minor(a)
}

fn floor_minor(v: Decimal) -> Option<i64> {
    v.floor().to_i64()
}

/// `date` moved `months` months on, same day of the month (or the month's last day).
pub fn add_months(date: Date, months: u32) -> Option<Date> {
    let index = i64::from(date.month() as u8) - 1 + i64::from(months);
    let year = date
        .year()
        .checked_add(i32::try_from(index / MONTHS_PER_YEAR).ok()?)?;
    let month = Month::try_from(u8::try_from(index % MONTHS_PER_YEAR + 1).ok()?).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// A plan's first due date: the first repayment day (`day`, 1..=28) at least a month after
/// `made_on`, so the first instalment's month of interest is a month.
pub fn first_due(made_on: Date, day: u8) -> Option<Date> {
    let month_later = add_months(made_on, 1)?;
    let mut due = Date::from_calendar_date(month_later.year(), month_later.month(), day).ok()?;
    if due < month_later {
        due = add_months(due, 1)?;
    }
    Some(due)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    fn rows(p: i64, n: u32, m: InstalmentMethod, rate: &str) -> Vec<(i64, i64)> {
        schedule(p, n, m, rate.parse().unwrap(), date!(2026 - 01 - 10))
            .unwrap()
            .iter()
            .map(|i| (i.principal_minor, i.interest_minor))
            .collect()
    }

    #[test]
    fn equal_principal_of_1000_yuan_over_3_months_at_18_percent() {
        // r = 0.015; 100000 / 3 = 33333 (last 33334); interest 1500, 1000.005→1000, 500.01→500.
        assert_eq!(
            rows(100_000, 3, InstalmentMethod::EqualPrincipal, "0.18"),
            vec![(33_333, 1_500), (33_333, 1_000), (33_334, 500)]
        );
    }

    #[test]
    fn equal_instalment_of_1000_yuan_over_3_months_at_18_percent() {
        // A = 100000 × 0.015 × 1.015³ / (1.015³ − 1) = 34338.27… → 34338.
        // 1: interest 1500, principal 32838, left 67162; 2: interest 1007.43→1007, principal
        // 33331, left 33831; 3: interest 507.465→507, principal 33831 (total 34338).
        assert_eq!(
            rows(100_000, 3, InstalmentMethod::EqualInstalment, "0.18"),
            vec![(32_838, 1_500), (33_331, 1_007), (33_831, 507)]
        );
    }

    #[test]
    fn principals_sum_to_the_drawdown_for_every_count_and_method() {
        for n in INSTALMENT_COUNTS {
            for m in [
                InstalmentMethod::EqualPrincipal,
                InstalmentMethod::EqualInstalment,
            ] {
                for p in [1, 2, 99, 100_001, 123_457] {
                    let r = rows(p, n, m, "0.1234");
                    assert_eq!(r.len(), n as usize);
                    assert_eq!(r.iter().map(|x| x.0).sum::<i64>(), p, "{m:?} {n} {p}");
                }
            }
        }
    }

    #[test]
    fn a_whole_fen_of_interest_stays_whole_although_the_monthly_rate_is_inexact() {
        // 1200.00 × 0.073 / 12 = 7.30 exactly (0.073 / 12 first would give 7.2999…).
        assert_eq!(
            rows(120_000, 3, InstalmentMethod::EqualPrincipal, "0.073"),
            vec![(40_000, 730), (40_000, 486), (40_000, 243)]
        );
    }

    #[test]
    fn the_first_instalment_falls_due_at_least_a_month_after_the_split() {
        assert_eq!(
            first_due(date!(2026 - 12 - 09), 10),
            Some(date!(2027 - 01 - 10))
        );
        assert_eq!(
            first_due(date!(2026 - 12 - 10), 10),
            Some(date!(2027 - 01 - 10))
        );
        assert_eq!(
            first_due(date!(2026 - 12 - 11), 10),
            Some(date!(2027 - 02 - 10))
        );
        assert_eq!(
            first_due(date!(2027 - 01 - 31), 28),
            Some(date!(2027 - 02 - 28))
        );
    }

    #[test]
    fn a_rate_of_zero_carries_no_interest() {
        assert_eq!(
            rows(1_000, 3, InstalmentMethod::EqualInstalment, "0"),
            vec![(333, 0), (333, 0), (334, 0)]
        );
    }

    #[test]
    fn due_dates_run_monthly_across_the_year_end() {
        let s = schedule(
            1_200,
            3,
            InstalmentMethod::EqualPrincipal,
            Decimal::ZERO,
            date!(2026 - 11 - 28),
        )
        .unwrap();
        let dues: Vec<Date> = s.iter().map(|i| i.due).collect();
        assert_eq!(
            dues,
            vec![
                date!(2026 - 11 - 28),
                date!(2026 - 12 - 28),
                date!(2027 - 01 - 28)
            ]
        );
    }
}
