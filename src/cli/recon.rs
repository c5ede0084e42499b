//! `paygate recon --network N --period P [--json]`: reconciliation (对账) of one network's
//! file for a NetsUnion batch (`B` + yyyymmdd + 4 digits) or a business date (yyyymmdd)
//! against our records of the calls we sent it, on the configured database and routing table.
//! Prints a readable table (or the report as JSON) and exits 0 when nothing is broken, 4 when
//! there are breaks. It reads only: adjustments are never made by reconciliation itself.

use std::process::ExitCode;

use super::{ConfigArgs, DatabaseArgs};
use crate::{
    clearing::{Network, ReconPeriod, matching::reconcile, routing::Clearing},
    config::Config,
    eod::reconcile::our_lines,
    ledger::Ledger,
    storage,
};

/// Exit status when the reconciliation found breaks.
const EXIT_BREAKS: u8 = 4;

#[derive(Debug, clap::Args)]
pub struct ReconArgs {
    /// The network, as the configuration names it (NETS_UNION, UNION_PAY_QR, CNAPS_HVPS, …).
    #[arg(long)]
    pub network: String,
    /// A NetsUnion batch (`B` + yyyymmdd + 4 digits) or a business date (yyyymmdd).
    #[arg(long)]
    pub period: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub async fn run(args: ReconArgs, config: &Config) -> ExitCode {
    match execute(&args, config).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("paygate recon: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.table());
            }
            if report.breaks.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BREAKS)
            }
        }
        Err(e) => {
            eprintln!("paygate recon: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(
    args: &ReconArgs,
    config: &Config,
) -> Result<crate::clearing::matching::ReconReport, String> {
    let network = Network::parse(&args.network).ok_or_else(|| {
        format!(
            "--network {:?}: not a network this gateway knows",
            args.network
        )
    })?;
    let period = ReconPeriod::parse(&args.period).ok_or_else(|| {
        format!(
            "--period {:?}: a batch B + yyyymmdd + 0001..0024, or a date yyyymmdd",
            args.period
        )
    })?;
    if matches!(period, ReconPeriod::Batch(_)) && !network.hourly_batches() {
        return Err(format!(
            "{} reconciles by date, not by batch",
            network.as_str()
        ));
    }
    let clock = config.clock.clock().map_err(|e| e.to_string())?;
    let clearing = Clearing::from_config(&config.clearing, &clock)?;
    let client = clearing
        .client(network)
        .ok_or_else(|| format!("no route names {}: nothing to reconcile", network.as_str()))?
        .clone();
    let file = client
        .reconciliation_file(&period)
        .await
        .map_err(|e| format!("{}'s file for {}: {e}", network.as_str(), period.as_text()))?;
    let store = storage::connect(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    let ledger = Ledger::start(store.clone(), &config.ledger, clock)
        .await
        .map_err(|e| e.to_string())?;
    let ours = our_lines(&ledger, network, &period).await;
    ledger.shutdown().await;
    store.close().await;
    Ok(reconcile(&file, &ours.map_err(|e| e.to_string())?))
}
