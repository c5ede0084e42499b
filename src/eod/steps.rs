//! What each step does. A step that posts writes its record in the same batch; a step that
//! calls a service (whose runs are idempotent by date) records its end after it.

use time::Date;

use super::{
    EndOfDay, EodError, SYSTEM_SCOPE, Step, StepState,
    reconcile::{self, StoredRecon},
};
use crate::{
    account::InternalPurpose,
    cashier::{KIND_SETTLEMENT_STATEMENT, SettlementStatement},
    clearing::{Network, ReconPeriod},
    ledger::{
        Command, DOCUMENTS_PER_COMMAND_MAX, DocumentWrite, IdempotencyKey, LedgerError, Metadata,
        NewTransaction,
    },
    money::Money,
    yields::YieldError,
};

/// How a run of a step ended: its record's next state and detail, and what to write with it.
pub(super) struct Ran {
    pub state: StepState,
    pub detail: String,
    /// Written in the same batch as the record.
    pub command: Command,
    pub documents: Vec<DocumentWrite>,
}

impl Ran {
    fn only(state: StepState, detail: String) -> Ran {
        Ran {
            state,
            detail,
            command: Command::NoOp,
            documents: Vec::new(),
        }
    }
}

impl EndOfDay {
    /// Runs `step` of `date` once.
    pub(super) async fn run_step(&self, step: Step, date: Date) -> Result<Ran, EodError> {
        match step {
            Step::YieldAccrual => Ok(self.yield_accrual(date).await),
            Step::YieldEndOfDay => Ok(match self.inner.yields.end_of_day(date).await {
                Ok(done) => Ran::only(
                    StepState::Done,
                    format!(
                        "{} sweeps, {} redemptions settled",
                        done.sweeps, done.redemptions_settled
                    ),
                ),
                Err(e) => Ran::only(StepState::Failed, e.to_string()),
            }),
            Step::CreditInterest => Ok(match self.inner.credit.accrue_interest(date).await {
                Ok(run) => {
                    let currency = self.inner.accounts.rules().currency;
                    Ran::only(
                        StepState::Done,
                        format!(
                            "{} lines, {} line-days, interest {}, penalty {}, {} auto-repaid",
                            run.lines,
                            run.line_days,
                            Money::new(currency, run.interest_minor),
                            Money::new(currency, run.penalty_minor),
                            run.auto_repayments
                        ),
                    )
                }
                Err(e) => Ran::only(StepState::Failed, e.to_string()),
            }),
            Step::MerchantSettlement => self.merchant_settlement(date).await,
            Step::Recon(network) => self.recon(network, date).await,
            Step::Settle(network) => self.settle(network, date).await,
        }
    }

    async fn yield_accrual(&self, date: Date) -> Ran {
        let yields = &self.inner.yields;
        if !yields.is_business_day(date) {
            return Ran::only(
                StepState::Skipped,
                "not a business date: no rate, no income".to_owned(),
            );
        }
        match yields.accrue(None, date).await {
            Ok(runs) => {
                let holders: i64 = runs.iter().map(|r| r.holders_paid).sum();
                let income: i64 = runs.iter().map(|r| r.holders_income_minor).sum();
                let income = Money::new(yields.currency(), income);
                Ran::only(
                    StepState::Done,
                    format!("{} products, {holders} holders paid {income}", runs.len()),
                )
            }
            Err(e @ YieldError::RateNotPublished { .. }) => {
                Ran::only(StepState::Waiting, e.to_string())
            }
            Err(e) => Ran::only(StepState::Failed, e.to_string()),
        }
    }

    /// The settlement statements of `date`, each written once: those an interrupted run
    /// stored stay; the rest go with the record, or in batches of their own before it when
    /// they are more than one batch holds.
    async fn merchant_settlement(&self, date: Date) -> Result<Ran, EodError> {
        let ledger = &self.inner.ledger;
        let calendar = self.inner.accounts.calendar();
        let until_ms = calendar.ends_at_ms(date);
        let from_ms = date
            .previous_day()
            .map_or(i64::MIN, |d| calendar.ends_at_ms(d));
        let statements = match self
            .inner
            .cashier
            .settlement_statements(date, from_ms, until_ms)
            .await
        {
            Ok(s) => s,
            Err(e) => return Ok(Ran::only(StepState::Failed, e.to_string())),
        };
        let mut writes = Vec::new();
        for s in &statements {
            if ledger
                .document(KIND_SETTLEMENT_STATEMENT, &s.id())
                .await?
                .is_none()
            {
                writes.push(s.write()?);
            }
        }
        // The record takes one place of its batch.
        if writes.len() >= DOCUMENTS_PER_COMMAND_MAX {
            for chunk in std::mem::take(&mut writes).chunks(DOCUMENTS_PER_COMMAND_MAX) {
                let key = IdempotencyKey::new(
                    SYSTEM_SCOPE,
                    format!(
                        "eod/{}/{}/{}",
                        super::format_date(date),
                        Step::MerchantSettlement.name(),
                        chunk[0].id
                    ),
                );
                let command = Command::with_documents(Command::NoOp, chunk.to_vec());
                match ledger.submit(key, command).await {
                    Ok(_) => {}
                    // Written meanwhile, by another gateway's run.
                    Err(e) if lost_the_race(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let sum = |f: fn(&SettlementStatement) -> i64| {
            Money::new(
                self.inner.accounts.rules().currency,
                statements.iter().map(f).sum(),
            )
        };
        Ok(Ran {
            state: StepState::Done,
            detail: format!(
                "{} merchants: gross {}, refunded {}, fees {}, net {}",
                statements.len(),
                sum(|s| s.gross_minor),
                sum(|s| s.refunded_minor),
                sum(|s| s.fees_minor),
                sum(|s| s.net_minor)
            ),
            command: Command::NoOp,
            documents: writes,
        })
    }

    async fn recon(&self, network: Network, date: Date) -> Result<Ran, EodError> {
        let ledger = &self.inner.ledger;
        let Some(client) = self.inner.accounts.clearing().client(network).cloned() else {
            return Ok(Ran::only(
                StepState::Failed,
                format!("no client for {}", network.as_str()),
            ));
        };
        let period = ReconPeriod::Date(date);
        let (report, file) =
            match reconcile::reconcile_period(ledger, client.as_ref(), network, &period).await {
                Ok(both) => both,
                Err(e) => return Ok(Ran::only(StepState::Waiting, e)),
            };
        if report.unsettled > 0 {
            return Ok(Ran::only(
                StepState::Waiting,
                format!(
                    "{} of our calls are still unsettled (the recovery worker finishes them)",
                    report.unsettled
                ),
            ));
        }
        let mut stored = reconcile::to_store(&report, &file);
        // A reconciliation made again keeps the adjustments made since the last one.
        let before = ledger
            .document(
                super::KIND_RECON_REPORT,
                &reconcile::report_id(network, &period),
            )
            .await?;
        let version = before.as_ref().map_or(0, |d| d.version);
        if let Some(earlier) =
            before.and_then(|d| serde_json::from_str::<StoredRecon>(&d.body).ok())
        {
            stored.adjusted = earlier.adjusted;
        }
        let write = reconcile::store_write(network, &period, version, &stored)?;
        Ok(Ran {
            state: StepState::Done,
            detail: format!(
                "{} matched, {} breaks, {} carried to the next date, net {}",
                stored.matched,
                stored.breaks,
                stored.carried.len(),
                stored.net_minor
            ),
            command: Command::NoOp,
            documents: vec![write],
        })
    }

    /// Posts the network's net of `date` between the fund-settlement account and its suspense
    /// account: what it owes us comes in to the suspense account, what we owe it goes out.
    async fn settle(&self, network: Network, date: Date) -> Result<Ran, EodError> {
        let period = ReconPeriod::Date(date);
        let recon_done = super::records_of(&self.inner.ledger, date)
            .await?
            .iter()
            .any(|r| r.step == Step::Recon(network).name() && r.state == StepState::Done);
        let stored: Option<StoredRecon> = if recon_done {
            reconcile::stored(&self.inner.ledger, network, &period).await?
        } else {
            None
        };
        let Some(stored) = stored else {
            return Ok(Ran::only(
                StepState::Waiting,
                format!("waiting for {}", Step::Recon(network).name()),
            ));
        };
        if stored.net_minor == 0 {
            return Ok(Ran::only(
                StepState::Done,
                "net 0: nothing to settle".to_owned(),
            ));
        }
        let accounts = &self.inner.accounts;
        let (Some(fund), Ok(suspense)) = (
            accounts.internal_account(InternalPurpose::FundSettlement),
            accounts.suspense_of(network),
        ) else {
            return Ok(Ran::only(
                StepState::Failed,
                format!(
                    "no fund-settlement or suspense account for {}",
                    network.as_str()
                ),
            ));
        };
        let amount = Money::new(accounts.rules().currency, stored.net_minor.saturating_abs());
        let (from, to) = if stored.net_minor > 0 {
            (fund, suspense)
        } else {
            (suspense, fund)
        };
        let metadata = Metadata::from([
            ("purpose".to_owned(), "NETWORK_SETTLEMENT".to_owned()),
            ("network".to_owned(), network.as_str().to_owned()),
            ("business_date".to_owned(), super::format_date(date)),
        ]);
        let detail = if stored.net_minor > 0 {
            format!("received {amount} from {}", network.as_str())
        } else {
            format!("paid {amount} to {}", network.as_str())
        };
        Ok(Ran {
            state: StepState::Done,
            detail,
            command: Command::Post(NewTransaction::transfer(from, to, amount, metadata)),
            documents: Vec::new(),
        })
    }
}

/// The key a step's batch is committed under: one per date, step and record version, so a
/// step's posting is made once (a second gateway's copy meets the first's record version).
pub(super) fn step_key(step: Step, date: Date, version: u64) -> IdempotencyKey {
    IdempotencyKey::new(
        SYSTEM_SCOPE,
        format!("eod/{}/{}/{version}", super::format_date(date), step.name()),
    )
}

/// Whether a step's batch failed only because another writer moved its record first.
pub(super) fn lost_the_race(e: &LedgerError) -> bool {
    matches!(e, LedgerError::DocumentConflict { .. })
}
