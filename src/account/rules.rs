//! The class rules of electronic accounts (Class II / Class III) and the business calendar they
//! count in. Every limit comes from configuration; the defaults are the regulatory figures.
//! Limits are enforced by ledger counters checked in the same database transaction as the
//! posting, so concurrent requests cannot slip past them.

use time::{Date, OffsetDateTime, UtcOffset};

use crate::{
    account::model::AccountKind,
    config::AccountsConfig,
    ledger::{AccountId, CounterCheck},
    money::{Currency, Money, Sign},
};

/// A named limit. The name is what a refusal reports (`limit_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitRule {
    ClassIiNonBoundInflow,
    ClassIiNonBoundOutflow,
    ClassIiiOutflow,
    ClassIiiBalanceCap,
    ClassIiPerPerson,
    ClassIiiPerPerson,
    /// Barcode payments (rule, 银发〔2017〕296号): a payer's static-code payments per day.
    BarcodeStaticCode,
    /// Dynamic-code payments per day by risk level A, B and C.
    BarcodeDynamicA,
    BarcodeDynamicB,
    BarcodeDynamicC,
}

impl LimitRule {
    pub fn name(self) -> &'static str {
        match self {
            LimitRule::ClassIiNonBoundInflow => "CLASS_II_NON_BOUND_INFLOW",
            LimitRule::ClassIiNonBoundOutflow => "CLASS_II_NON_BOUND_OUTFLOW",
            LimitRule::ClassIiiOutflow => "CLASS_III_OUTFLOW",
            LimitRule::ClassIiiBalanceCap => "CLASS_III_BALANCE_CAP",
            LimitRule::ClassIiPerPerson => "CLASS_II_PER_PERSON",
            LimitRule::ClassIiiPerPerson => "CLASS_III_PER_PERSON",
            LimitRule::BarcodeStaticCode => "BARCODE_STATIC_CODE",
            LimitRule::BarcodeDynamicA => "BARCODE_DYNAMIC_CODE_A",
            LimitRule::BarcodeDynamicB => "BARCODE_DYNAMIC_CODE_B",
            LimitRule::BarcodeDynamicC => "BARCODE_DYNAMIC_CODE_C",
        }
    }
}

/// The window a limit counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitWindow {
    Day,
    Year,
    Balance,
    Lifetime,
}

impl LimitWindow {
    pub fn name(self) -> &'static str {
        match self {
            LimitWindow::Day => "DAY",
            LimitWindow::Year => "YEAR",
            LimitWindow::Balance => "BALANCE",
            LimitWindow::Lifetime => "OPEN_ACCOUNTS",
        }
    }
}

/// One limit as it applies to one request: the ledger counter that enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCheck {
    pub rule: LimitRule,
    pub window: LimitWindow,
    /// The period the counter covers: the business date, the year, or empty.
    pub period: String,
    pub limit_minor: i64,
    pub counter: CounterCheck,
}

#[derive(Debug, thiserror::Error)]
#[error("accounts.{field}: {reason}")]
pub struct RulesError {
    pub field: &'static str,
    pub reason: String,
}

/// The class rules in minor units of the electronic-account currency.
#[derive(Debug, Clone)]
pub struct ClassRules {
    pub currency: Currency,
    pub class_ii_per_person_max: u32,
    pub class_iii_per_person_max: u32,
    pub class_ii_inflow_day_minor: i64,
    pub class_ii_inflow_year_minor: i64,
    pub class_ii_outflow_day_minor: i64,
    pub class_ii_outflow_year_minor: i64,
    pub class_iii_balance_max_minor: i64,
    pub class_iii_outflow_day_minor: i64,
    pub class_iii_outflow_year_minor: i64,
}

impl ClassRules {
    pub fn from_config(config: &AccountsConfig) -> Result<ClassRules, RulesError> {
        let currency = Currency::from_code(&config.currency).map_err(|e| RulesError {
            field: "currency",
            reason: e.to_string(),
        })?;
        let amount = |field: &'static str, text: &str| {
            Money::parse(currency, text, Sign::Positive)
                .map(|m| m.minor)
                .map_err(|e| RulesError {
                    field,
                    reason: e.to_string(),
                })
        };
        let count = |field: &'static str, n: u32| {
            if n == 0 {
                Err(RulesError {
                    field,
                    reason: "must be greater than zero".into(),
                })
            } else {
                Ok(n)
            }
        };
        Ok(ClassRules {
            currency,
            class_ii_per_person_max: count(
                "class_ii_per_person_max",
                config.class_ii_per_person_max,
            )?,
            class_iii_per_person_max: count(
                "class_iii_per_person_max",
                config.class_iii_per_person_max,
            )?,
            class_ii_inflow_day_minor: amount(
                "class_ii_non_bound_inflow_per_day",
                &config.class_ii_non_bound_inflow_per_day,
            )?,
            class_ii_inflow_year_minor: amount(
                "class_ii_non_bound_inflow_per_year",
                &config.class_ii_non_bound_inflow_per_year,
            )?,
            class_ii_outflow_day_minor: amount(
                "class_ii_non_bound_outflow_per_day",
                &config.class_ii_non_bound_outflow_per_day,
            )?,
            class_ii_outflow_year_minor: amount(
                "class_ii_non_bound_outflow_per_year",
                &config.class_ii_non_bound_outflow_per_year,
            )?,
            class_iii_balance_max_minor: amount(
                "class_iii_balance_max",
                &config.class_iii_balance_max,
            )?,
            class_iii_outflow_day_minor: amount(
                "class_iii_outflow_per_day",
                &config.class_iii_outflow_per_day,
            )?,
            class_iii_outflow_year_minor: amount(
                "class_iii_outflow_per_year",
                &config.class_iii_outflow_per_year,
            )?,
        })
    }

    /// Limits on money leaving `account` to anything but its bound card (transfers, payments).
    pub fn outflow_checks(
        &self,
        kind: AccountKind,
        account: AccountId,
        amount_minor: i64,
        date: Date,
    ) -> Vec<LimitCheck> {
        match kind {
            AccountKind::ClassIi => self.windowed(
                LimitRule::ClassIiNonBoundOutflow,
                account,
                amount_minor,
                date,
                self.class_ii_outflow_day_minor,
                self.class_ii_outflow_year_minor,
            ),
            AccountKind::ClassIii => self.windowed(
                LimitRule::ClassIiiOutflow,
                account,
                amount_minor,
                date,
                self.class_iii_outflow_day_minor,
                self.class_iii_outflow_year_minor,
            ),
            AccountKind::MerchantSettlement
            | AccountKind::PlatformMaster
            | AccountKind::PlatformSub
            | AccountKind::BankInternal => Vec::new(),
        }
    }

    /// Limits on money arriving in `account` from anything but its bound card.
    pub fn inflow_checks(
        &self,
        kind: AccountKind,
        account: AccountId,
        amount_minor: i64,
        date: Date,
    ) -> Vec<LimitCheck> {
        match kind {
            AccountKind::ClassIi => self.windowed(
                LimitRule::ClassIiNonBoundInflow,
                account,
                amount_minor,
                date,
                self.class_ii_inflow_day_minor,
                self.class_ii_inflow_year_minor,
            ),
            // Class III inflows are bounded by its balance cap, a ledger constraint.
            AccountKind::ClassIii
            | AccountKind::MerchantSettlement
            | AccountKind::PlatformMaster
            | AccountKind::PlatformSub
            | AccountKind::BankInternal => Vec::new(),
        }
    }

    /// The per-person count of open accounts of this class (`delta` +1 to open, −1 on close).
    pub fn per_person_check(
        &self,
        kind: AccountKind,
        person_key: &str,
        delta: i64,
    ) -> Option<LimitCheck> {
        let (rule, max) = match kind {
            AccountKind::ClassIi => (LimitRule::ClassIiPerPerson, self.class_ii_per_person_max),
            AccountKind::ClassIii => (LimitRule::ClassIiiPerPerson, self.class_iii_per_person_max),
            AccountKind::MerchantSettlement
            | AccountKind::PlatformMaster
            | AccountKind::PlatformSub
            | AccountKind::BankInternal => return None,
        };
        let limit = i64::from(max);
        Some(LimitCheck {
            rule,
            window: LimitWindow::Lifetime,
            period: String::new(),
            limit_minor: limit,
            counter: CounterCheck {
                key: format!("{}/{person_key}", rule.name()),
                amount_minor: delta,
                cap_minor: limit,
            },
        })
    }

    fn windowed(
        &self,
        rule: LimitRule,
        account: AccountId,
        amount_minor: i64,
        date: Date,
        day_minor: i64,
        year_minor: i64,
    ) -> Vec<LimitCheck> {
        let day = date.to_string();
        let year = date.year().to_string();
        [
            (LimitWindow::Day, day, day_minor),
            (LimitWindow::Year, year, year_minor),
        ]
        .into_iter()
        .map(|(window, period, limit_minor)| LimitCheck {
            rule,
            window,
            counter: CounterCheck {
                key: counter_key(rule, window, account, &period),
                amount_minor,
                cap_minor: limit_minor,
            },
            period,
            limit_minor,
        })
        .collect()
    }

    /// The counters a balance view reports for an account on a business date.
    pub fn usage_keys(&self, kind: AccountKind, account: AccountId, date: Date) -> Vec<LimitCheck> {
        let mut checks = self.outflow_checks(kind, account, 0, date);
        checks.extend(self.inflow_checks(kind, account, 0, date));
        checks
    }
}

/// The ledger counter of one limit of one account in one period.
pub fn counter_key(
    rule: LimitRule,
    window: LimitWindow,
    account: AccountId,
    period: &str,
) -> String {
    format!("{}/{}/{account}/{period}", rule.name(), window.name())
}

/// The bank's business calendar: dates in its time zone, rolling at the cutover (日切).
#[derive(Debug, Clone, Copy)]
pub struct BusinessCalendar {
    offset: UtcOffset,
    cutover_minute: u32,
}

impl BusinessCalendar {
    pub fn from_config(config: &AccountsConfig) -> Result<BusinessCalendar, RulesError> {
        let offset = UtcOffset::from_whole_seconds(config.business_day_utc_offset_minutes * 60)
            .map_err(|e| RulesError {
                field: "business_day_utc_offset_minutes",
                reason: e.to_string(),
            })?;
        if config.business_day_cutover_minute >= 24 * 60 {
            return Err(RulesError {
                field: "business_day_cutover_minute",
                reason: "must be below 1440".into(),
            });
        }
        Ok(BusinessCalendar {
            offset,
            cutover_minute: config.business_day_cutover_minute,
        })
    }

    /// The business date at a UTC instant in milliseconds.
    pub fn date_at(&self, at_ms: i64) -> Date {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.offset)
            - time::Duration::minutes(i64::from(self.cutover_minute));
        at.date()
    }

    /// The instant (Unix ms) business date `date` ends: the cutover after it. An instant just
    /// before it is in `date`, the instant itself in the next date.
    pub fn ends_at_ms(&self, date: Date) -> i64 {
        let end = date
            .next_day()
            .unwrap_or(date)
            .midnight()
            .assume_offset(self.offset)
            + time::Duration::minutes(i64::from(self.cutover_minute));
        i64::try_from(end.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ClassRules {
        ClassRules::from_config(&AccountsConfig::default()).expect("defaults")
    }

    #[test]
    fn the_defaults_are_the_regulatory_figures_in_fen() {
        let r = rules();
        assert_eq!(r.class_ii_outflow_day_minor, 1_000_000);
        assert_eq!(r.class_ii_outflow_year_minor, 20_000_000);
        assert_eq!(r.class_iii_balance_max_minor, 200_000);
        assert_eq!(r.class_iii_outflow_year_minor, 5_000_000);
        assert_eq!(r.class_ii_per_person_max, 5);
    }

    #[test]
    fn a_class_ii_outflow_counts_against_its_day_and_its_year() {
        let date = Date::from_calendar_date(2026, time::Month::November, 26).expect("date");
        let checks = rules().outflow_checks(AccountKind::ClassIi, AccountId(7), 500, date);
        let keys: Vec<&str> = checks.iter().map(|c| c.counter.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "CLASS_II_NON_BOUND_OUTFLOW/DAY/7/2026-11-26",
                "CLASS_II_NON_BOUND_OUTFLOW/YEAR/7/2026"
            ]
        );
        assert!(
            rules()
                .outflow_checks(AccountKind::MerchantSettlement, AccountId(7), 500, date)
                .is_empty()
        );
    }

    #[test]
    fn the_business_date_is_shanghai_time_and_rolls_at_the_cutover() {
        let calendar = BusinessCalendar::from_config(&AccountsConfig::default()).expect("cal");
        // 2026-11-25T16:30:00Z is 00:30 on the 26th in Shanghai.
        let at_ms = 1_795_624_200_000;
        assert_eq!(calendar.date_at(at_ms).to_string(), "2026-11-26");
        let end_ms = calendar.ends_at_ms(calendar.date_at(at_ms));
        assert_eq!(calendar.date_at(end_ms - 1), calendar.date_at(at_ms));
        assert_eq!(calendar.date_at(end_ms).to_string(), "2026-11-27");
        let late = BusinessCalendar::from_config(&AccountsConfig {
            business_day_cutover_minute: 60,
            ..AccountsConfig::default()
        })
        .expect("cal");
        assert_eq!(late.date_at(at_ms).to_string(), "2026-11-25");
    }
}
