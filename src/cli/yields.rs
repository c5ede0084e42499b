//! `paygate yield accrue --date YYYY-MM-DD [--product ID] [--end-of-day]`: the yield service's
//! daily runs from the command line, on the configured database, without a running gateway
//! (the ledger's batch and documents keep it safe beside one).

use std::process::ExitCode;

use clap::Subcommand;

use super::{ConfigArgs, DatabaseArgs};
use crate::{
    clearing::routing::Clearing,
    config::Config,
    ledger::Ledger,
    storage,
    yields::{YieldService, parse_date},
};

#[derive(Debug, Subcommand)]
pub enum YieldCommand {
    /// Accrue one business date's income for every product (or one); resumable, never twice.
    Accrue {
        /// Business date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Only this product.
        #[arg(long)]
        product: Option<String>,
        /// Run the end-of-day run (auto-sweeps, due redemptions) of the date first.
        #[arg(long)]
        end_of_day: bool,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl YieldCommand {
    /// The shared options this subcommand was given.
    pub fn options(&self) -> (&ConfigArgs, Option<&DatabaseArgs>) {
        let YieldCommand::Accrue {
            config, database, ..
        } = self;
        (config, Some(database))
    }
}

pub async fn run(cmd: YieldCommand, config: &Config) -> ExitCode {
    match execute(cmd, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paygate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cmd: YieldCommand, config: &Config) -> Result<(), String> {
    let YieldCommand::Accrue {
        date,
        product,
        end_of_day,
        ..
    } = cmd;
    let date = parse_date("date", &date).map_err(|e| e.to_string())?;
    let store = storage::connect(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    let clock = config.clock.clock().map_err(|e| e.to_string())?;
    let ledger = Ledger::start(store.clone(), &config.ledger, clock)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let accounts = super::account_service(&ledger, Clearing::on_us(), config).await?;
        let yields = YieldService::start(ledger.clone(), accounts, &config.yields)
            .await
            .map_err(|e| e.to_string())?;
        if end_of_day {
            let done = yields.end_of_day(date).await.map_err(|e| e.to_string())?;
            println!(
                "end of day {date}: {} sweeps, {} redemptions settled",
                done.sweeps, done.redemptions_settled
            );
        }
        let runs = yields
            .accrue(product.as_deref(), date)
            .await
            .map_err(|e| e.to_string())?;
        for r in runs {
            println!(
                "{} {}: rate {} holders {} eligible {} income {} rounding {} fund {} (minor units)",
                r.product_id,
                r.date,
                r.income_per_10k,
                r.holders_paid,
                r.eligible_shares_minor,
                r.holders_income_minor,
                r.rounding_minor,
                r.fund_total_minor
            );
        }
        Ok(())
    }
    .await;
    ledger.shutdown().await;
    store.close().await;
    result
}
