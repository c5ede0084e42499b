//! End of day (日切): the steps that close each business date, run while payments go on.
//!
//! The business date of the bank rolls at its cutover ([`crate::account::rules::BusinessCalendar`]);
//! limits need no step: their counters are keyed by business date, so a new date starts from
//! zero the instant it begins, exactly once. Each clearing network has its own calendar (UnionPay
//! QR's date rolls at 23:00, the others' at midnight Beijing time: [`crate::clearing::recon`]).
//!
//! For every business date `D` the run has these steps, each due at its own instant:
//! - `YIELD_ACCRUAL`: the money-market income of `D` ([`YieldService::accrue`]), once the bank's
//!   `D` has ended; skipped on a date that is not a business date (holiday or weekend: no rate);
//!   it waits while a product's rate of `D` is not published.
//! - `YIELD_END_OF_DAY`: the auto-sweep of `D` and the NORMAL redemptions due by the next
//!   business date ([`YieldService::end_of_day`]), once the bank's `D` has ended.
//! - `CREDIT_INTEREST`: the consumer-credit lines' daily interest and penalty (罚息) of `D`
//!   ([`CreditService::accrue_interest`]), once the bank's `D` has ended, and on a line's
//!   repayment day its auto-repayment (自动还款) of what has fallen due.
//! - `MERCHANT_SETTLEMENT`: merchant settlement (商户结算) of `D`, once the bank's `D` has
//!   ended: a settlement statement (结算单) per merchant with a payment or refund that date
//!   (payments, gross, refunds, fees, net, the settlement account's closing balance), read from
//!   the journal lines of its settlement account ([`CashierService::settlement_statements`]).
//!   It posts nothing: the takings were credited in each payment's own posting.
//! - `RECON/<NETWORK>` per network this gateway reaches (on-us excepted: it is our own book):
//!   reconciliation (对账) of the network's file of `D` against our calls, once the file is due
//!   (`eod.file_due_after_ms` after that network's `D` ends); it waits while a call of `D` is
//!   still unsettled (the recovery worker finishes it within its bound).
//! - `SETTLE/<NETWORK>`: the network's settlement of `D` (清算): the net of what its file booked,
//!   posted between the bank's fund-settlement account and the network's clearing suspense
//!   account, after the reconciliation. Once every call is final and both sides agree, the
//!   suspense account nets to zero.
//!
//! Every step has a versioned record (`eod_step`, `YYYY-MM-DD/NN-STEP`) written in the same
//! batch as what the step posts; a step runs again only while its record is not final, and
//! what it posts is keyed by date and step, so a step is resumable and never done twice, by a
//! restarted gateway or by several gateways on one database. `paygate eod status` reads the
//! records.

pub mod adjust;
pub mod operations;
pub mod reconcile;
mod record;
mod steps;
mod worker;

use std::sync::Arc;

use time::Date;

pub use self::{
    record::{StepRecord, StepState},
    worker::EodRound,
};
use crate::{
    account::AccountService,
    cashier::CashierService,
    clearing::{Network, recon::date_ends_at_ms},
    config::EodConfig,
    credit::CreditService,
    ledger::{Ledger, LedgerError},
    yields::YieldService,
};

/// Document kind of the step records.
pub const KIND_EOD_STEP: &str = "eod_step";
/// Document kind of the stored reconciliation reports (`NETWORK/YYYYMMDD`).
pub const KIND_RECON_REPORT: &str = "recon_report";
/// The idempotency scope of the run's own batches.
const SYSTEM_SCOPE: &str = "paygate-eod";
/// Most step records one date has.
pub const STEPS_PER_DATE_MAX: usize = 32;

/// One step of a date's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    YieldAccrual,
    YieldEndOfDay,
    CreditInterest,
    MerchantSettlement,
    Recon(Network),
    Settle(Network),
}

impl Step {
    /// The step's name as records and the status command show it.
    pub fn name(self) -> String {
        match self {
            Step::YieldAccrual => "YIELD_ACCRUAL".to_owned(),
            Step::YieldEndOfDay => "YIELD_END_OF_DAY".to_owned(),
            Step::CreditInterest => "CREDIT_INTEREST".to_owned(),
            Step::MerchantSettlement => "MERCHANT_SETTLEMENT".to_owned(),
            Step::Recon(n) => format!("RECON/{}", n.as_str()),
            Step::Settle(n) => format!("SETTLE/{}", n.as_str()),
        }
    }

    /// Where the step sorts within its date (and in its record's id).
    fn rank(self) -> u32 {
        let network = |n: Network| {
            Network::all()
                .position(|m| m == n)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0)
        };
        match self {
            Step::YieldAccrual => 1,
            Step::YieldEndOfDay => 2,
            Step::CreditInterest => 3,
            Step::MerchantSettlement => 4,
            Step::Recon(n) => 10 + network(n),
            Step::Settle(n) => 20 + network(n),
        }
    }

    /// The id of the step's record for `date`.
    pub fn record_id(self, date: Date) -> String {
        format!(
            "{}/{:02}-{}",
            format_date(date),
            self.rank(),
            self.name().replace('/', "_")
        )
    }
}

/// A step as planned for a date: when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub step: Step,
    pub due_at_ms: i64,
}

/// What can stop the run (a step's own failure is recorded on its record, not returned).
#[derive(Debug, thiserror::Error)]
pub enum EodError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Corrupt(String),
}

/// The end-of-day run of one gateway.
#[derive(Clone)]
pub struct EndOfDay {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    accounts: AccountService,
    yields: YieldService,
    credit: CreditService,
    cashier: CashierService,
    config: EodConfig,
}

impl EndOfDay {
    pub fn new(
        ledger: Ledger,
        accounts: AccountService,
        yields: YieldService,
        (credit, cashier): (CreditService, CashierService),
        config: &EodConfig,
    ) -> EndOfDay {
        EndOfDay {
            inner: Arc::new(Inner {
                ledger,
                accounts,
                yields,
                credit,
                cashier,
                config: config.clone(),
            }),
        }
    }

    /// The networks a date reconciles and settles: every one this gateway has a client for,
    /// but on-us (our own book: nothing to reconcile or settle).
    fn networks(&self) -> Vec<Network> {
        let mut networks: Vec<Network> = self
            .inner
            .accounts
            .clearing()
            .networks()
            .filter(|n| *n != Network::ON_US)
            .collect();
        networks.sort_by_key(|n| Step::Recon(*n).rank());
        networks
    }

    /// The steps of `date`, in order, with their due instants.
    pub fn plan(&self, date: Date) -> Vec<Planned> {
        let bank_end_ms = self.inner.accounts.calendar().ends_at_ms(date);
        let mut plan = vec![
            Planned {
                step: Step::YieldAccrual,
                due_at_ms: bank_end_ms,
            },
            Planned {
                step: Step::YieldEndOfDay,
                due_at_ms: bank_end_ms,
            },
            Planned {
                step: Step::CreditInterest,
                due_at_ms: bank_end_ms,
            },
            Planned {
                step: Step::MerchantSettlement,
                due_at_ms: bank_end_ms,
            },
        ];
        let file_due_after_ms = i64::try_from(self.inner.config.file_due_after_ms).unwrap_or(0);
        for network in self.networks() {
            let due_at_ms = date_ends_at_ms(network, date).saturating_add(file_due_after_ms);
            plan.push(Planned {
                step: Step::Recon(network),
                due_at_ms,
            });
            plan.push(Planned {
                step: Step::Settle(network),
                due_at_ms,
            });
        }
        debug_assert!(plan.len() <= STEPS_PER_DATE_MAX);
        plan
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    crate::yields::format_date(date)
}

/// The step records of `date`, in order (what `paygate eod status` shows).
pub async fn records_of(ledger: &Ledger, date: Date) -> Result<Vec<StepRecord>, EodError> {
    let prefix = format!("{}/", format_date(date));
    let docs = ledger
        .documents_after(KIND_EOD_STEP, &prefix, STEPS_PER_DATE_MAX as u32)
        .await?;
    docs.into_iter()
        .take_while(|d| d.id.starts_with(&prefix))
        .map(|d| record::decode(&d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record ids of stored steps keep their ranks: a network added to the registry takes
    /// the next free rank of each kind, and the ranks of reconciliations (10 + n) stay below
    /// those of settlements (20 + n) only for up to ten networks — widen them before the
    /// eleventh.
    #[test]
    fn every_network_s_steps_rank_between_the_services_and_in_order() {
        let networks: Vec<Network> = Network::all().collect();
        assert!(networks.len() <= 10, "widen Step::rank first");
        let date = Date::from_calendar_date(2026, time::Month::December, 7).expect("date");
        assert_eq!(
            Step::Recon(networks[1]).record_id(date),
            "2026-12-07/11-RECON_NETS_UNION"
        );
        let last = networks.last().copied().expect("networks");
        assert!(Step::Recon(last).rank() < Step::Settle(Network::ON_US).rank());
        assert!(Step::MerchantSettlement.rank() < Step::Recon(Network::ON_US).rank());
    }
}
