//! `paygate eod status [--date D] [--dates N] [--json]`: where each end-of-day (日切) step of the
//! recent business dates stands, read from the database; `paygate eod run`: one round of the
//! worker now (plan the open dates, run every due step), as a running gateway's worker does
//! every `eod.interval_ms` — safe beside one (every step is idempotent and its record versioned).

use std::process::ExitCode;

use clap::Subcommand;
use time::{Date, OffsetDateTime, UtcOffset};

use super::{ConfigArgs, DatabaseArgs};
use crate::{
    account::rules::BusinessCalendar,
    cashier::CashierService,
    clearing::routing::Clearing,
    config::Config,
    credit::CreditService,
    eod::{EndOfDay, StepRecord, StepState, records_of},
    ledger::Ledger,
    storage,
    yields::{YieldService, parse_date},
};

/// Most dates one status shows.
const STATUS_DATES_MAX: u32 = 31;

#[derive(Debug, Subcommand)]
pub enum EodCommand {
    /// Show each step of the recent business dates: state, due time, attempts, what it did.
    Status {
        /// Only this business date (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
        /// How many dates back from today (1..=31).
        #[arg(long, default_value_t = 3)]
        dates: u32,
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Run one round now: plan the open dates and run every step that is due.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl EodCommand {
    /// The shared options this subcommand was given.
    pub fn options(&self) -> (&ConfigArgs, Option<&DatabaseArgs>) {
        match self {
            EodCommand::Status {
                config, database, ..
            }
            | EodCommand::Run { config, database } => (config, Some(database)),
        }
    }
}

pub async fn run(cmd: EodCommand, config: &Config) -> ExitCode {
    let store = match storage::connect(&config.database).await {
        Ok(s) => s,
        Err(e) => return failed(&e.to_string()),
    };
    let clock = match config.clock.clock() {
        Ok(c) => c,
        Err(e) => return failed(&e.to_string()),
    };
    let ledger = match Ledger::start(store.clone(), &config.ledger, clock).await {
        Ok(l) => l,
        Err(e) => return failed(&e.to_string()),
    };
    let result = match cmd {
        EodCommand::Status {
            date, dates, json, ..
        } => status(&ledger, config, date.as_deref(), dates, json).await,
        EodCommand::Run { .. } => run_round(&ledger, config).await,
    };
    ledger.shutdown().await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e),
    }
}

fn failed(why: &str) -> ExitCode {
    eprintln!("paygate eod: {why}");
    ExitCode::FAILURE
}

async fn status(
    ledger: &Ledger,
    config: &Config,
    date: Option<&str>,
    dates: u32,
    json: bool,
) -> Result<(), String> {
    let calendar = BusinessCalendar::from_config(&config.accounts).map_err(|e| e.to_string())?;
    let today = calendar.date_at(ledger.now_ms());
    let wanted: Vec<Date> = match date {
        Some(text) => vec![parse_date("date", text).map_err(|e| e.to_string())?],
        None => {
            if !(1..=STATUS_DATES_MAX).contains(&dates) {
                return Err(format!("--dates must be within 1..={STATUS_DATES_MAX}"));
            }
            (0..dates)
                .rev()
                .map(|back| today - time::Duration::days(i64::from(back)))
                .collect()
        }
    };
    let mut all: Vec<StepRecord> = Vec::new();
    for d in wanted {
        all.extend(records_of(ledger, d).await.map_err(|e| e.to_string())?);
    }
    if json {
        let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    println!("business date today: {today}");
    if all.is_empty() {
        println!("no end-of-day steps recorded for these dates (is a gateway's worker running?)");
    }
    println!(
        "{:<10}  {:<28} {:<8} {:<25} {:>8}  detail",
        "date", "step", "state", "due (Beijing)", "attempts"
    );
    for r in &all {
        println!(
            "{:<10}  {:<28} {:<8} {:<25} {:>8}  {}",
            r.date,
            r.step,
            r.state.as_str(),
            beijing_time(r.due_at_ms),
            r.attempts,
            r.detail
        );
    }
    let open = all.iter().filter(|r| !r.state.is_final()).count();
    let failed = all.iter().filter(|r| r.state == StepState::Failed).count();
    println!(
        "{} steps: {} final, {open} open ({failed} failed)",
        all.len(),
        all.len() - open
    );
    Ok(())
}

fn beijing_time(at_ms: i64) -> String {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{} {:02}:{:02}:{:02}",
        at.date(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

async fn run_round(ledger: &Ledger, config: &Config) -> Result<(), String> {
    let clearing =
        Clearing::from_config(&config.clearing, ledger.clock()).map_err(|e| e.to_string())?;
    let accounts = super::account_service(ledger, clearing, config).await?;
    let yields = YieldService::start(ledger.clone(), accounts.clone(), &config.yields)
        .await
        .map_err(|e| e.to_string())?;
    let credit = CreditService::start(ledger.clone(), accounts.clone(), &config.credit)
        .map_err(|e| e.to_string())?;
    let cashier = CashierService::start(
        accounts.clone(),
        ledger.clone(),
        yields.clone(),
        credit.clone(),
        &config.cashier,
    )
    .map_err(|e| e.to_string())?;
    let eod = EndOfDay::new(
        ledger.clone(),
        accounts,
        yields,
        (credit, cashier),
        &config.eod,
    );
    let round = eod
        .run_due(ledger.now_ms())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{} steps finished, {} still open after this round",
        round.finished, round.unfinished
    );
    Ok(())
}
