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
    eod::{
        adjust::{AdjustError, AdjustedBreak, BreakAdjustment, adjust_break},
        reconcile::{PeriodRefusal, our_lines, parse_network, parse_period},
    },
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
    /// Adjust (调账) the break under this reference of the period's stored reconciliation
    /// instead: move what it leaves in the network's suspense account to the reconciliation
    /// adjustment account (挂账), once, audited under the operator's name. Needs --reason and
    /// --operator.
    #[arg(long, value_name = "REFERENCE", requires_all = ["reason", "operator"])]
    pub adjust: Option<String>,
    /// Why the break is adjusted (with --adjust; 1 to 200 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who adjusts it (with --adjust; recorded as the audit log's caller).
    #[arg(long)]
    pub operator: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub async fn run(args: ReconArgs, config: &Config) -> ExitCode {
    if let Some(reference) = &args.adjust {
        return match adjust(&args, reference, config).await {
            Ok(done) => {
                println!(
                    "adjusted {reference} of {} {}: {} minor units {} the {} suspense account (operator {})",
                    args.network,
                    args.period,
                    done.amount_minor.saturating_abs(),
                    if done.amount_minor > 0 {
                        "out of"
                    } else {
                        "into"
                    },
                    args.network,
                    done.operator
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("paygate recon: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
    let (network, period) = network_and_period(args)?;
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

async fn adjust(
    args: &ReconArgs,
    reference: &str,
    config: &Config,
) -> Result<AdjustedBreak, String> {
    let (network, period) = network_and_period(args)?;
    let clock = config.clock.clock().map_err(|e| e.to_string())?;
    let store = storage::connect(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    let ledger = Ledger::start(store.clone(), &config.ledger, clock.clone())
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let clearing = Clearing::from_config(&config.clearing, &clock)?;
        let accounts = super::account_service(&ledger, clearing, config).await?;
        let request = BreakAdjustment {
            network,
            period,
            reference: reference.to_owned(),
            operator: args.operator.clone().unwrap_or_default(),
            reason: args.reason.clone().unwrap_or_default(),
            request_id: None,
        };
        adjust_break(&ledger, &accounts, &request)
            .await
            .map_err(|e| match e {
                AdjustError::Text { .. } => format!("--{e}"),
                e => e.to_string(),
            })
    }
    .await;
    ledger.shutdown().await;
    store.close().await;
    result
}

/// The network and period the arguments name.
fn network_and_period(args: &ReconArgs) -> Result<(Network, ReconPeriod), String> {
    let network = parse_network(&args.network).map_err(|e| format!("--network {e}"))?;
    let period = parse_period(network, &args.period).map_err(|e| match e {
        PeriodRefusal::NotAPeriod(_) => format!("--period {e}"),
        PeriodRefusal::UnknownNetwork(_) | PeriodRefusal::NotByBatch(_) => e.to_string(),
    })?;
    Ok((network, period))
}
