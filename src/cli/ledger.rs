//! `paygate ledger …`: operator commands on the ledger.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{ConfigArgs, DatabaseArgs};
use crate::{
    clock::Clock,
    config::Config,
    ledger::{
        Account, AccountId, BalanceConstraint, IdempotencyKey, Ledger, LedgerError, Metadata,
        NewAccount, NewTransaction, Side, verify,
    },
    money::{Currency, Money},
    storage,
};

/// Most concurrent submitters `stress` may start.
const STRESS_CONCURRENCY_MAX: u32 = 1_024;
/// Most accounts `stress` may hammer.
const STRESS_ACCOUNTS_MAX: u32 = 10_000;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain and every balance from the journal; exit non-zero on any break.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Test tool, not for operators: hammer a few accounts with transfers that would overdraw
    /// them if interleaved wrongly (several processes may run it at once on one database), then
    /// exit. It writes test accounts and postings into the configured database, so it runs only
    /// with `--scratch-database`, and on PostgreSQL only with `--force` as well.
    #[command(hide = true)]
    Stress {
        /// Confirms that the configured database is a scratch database this may write into.
        #[arg(long)]
        scratch_database: bool,
        /// Also on PostgreSQL (a production database is PostgreSQL: be sure).
        #[arg(long)]
        force: bool,
        /// Customer accounts to hammer (each may not go below zero).
        #[arg(long, default_value_t = 4)]
        accounts: u32,
        /// Transfers to attempt in total.
        #[arg(long, default_value_t = 2_000)]
        transfers: u64,
        /// Concurrent submitter tasks.
        #[arg(long, default_value_t = 32)]
        concurrency: u32,
        /// Opening balance of each account, in minor units.
        #[arg(long, default_value_t = 10_000)]
        funding_minor: i64,
        /// Name of the shared setup: processes with the same label share accounts.
        #[arg(long, default_value = "stress")]
        label: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl LedgerCommand {
    /// The shared options this subcommand was given.
    pub fn options(&self) -> (&ConfigArgs, Option<&DatabaseArgs>) {
        match self {
            LedgerCommand::Verify { config, database }
            | LedgerCommand::Stress {
                config, database, ..
            } => (config, Some(database)),
        }
    }

    /// Whether it reads a database that must exist (`stress` may fill a new scratch one).
    pub fn reads_existing_database(&self) -> bool {
        matches!(self, LedgerCommand::Verify { .. })
    }
}

pub async fn run(cmd: LedgerCommand, config: &Config) -> ExitCode {
    match cmd {
        LedgerCommand::Verify { .. } => run_verify(config).await,
        LedgerCommand::Stress {
            scratch_database,
            force,
            accounts,
            transfers,
            concurrency,
            funding_minor,
            label,
            ..
        } => {
            if let Err(refusal) = stress_allowed(config, scratch_database, force) {
                eprintln!("stress: {refusal}");
                return ExitCode::from(2);
            }
            if !(2..=STRESS_ACCOUNTS_MAX).contains(&accounts)
                || !(1..=STRESS_CONCURRENCY_MAX).contains(&concurrency)
                || funding_minor <= 0
            {
                eprintln!(
                    "stress: accounts 2..={STRESS_ACCOUNTS_MAX}, concurrency \
                     1..={STRESS_CONCURRENCY_MAX}, funding_minor > 0"
                );
                return ExitCode::from(2);
            }
            match run_stress(
                config,
                accounts,
                transfers,
                concurrency,
                funding_minor,
                &label,
            )
            .await
            {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("stress failed: {e} ({})", e.reason());
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Whether `stress` may write into the configured database.
fn stress_allowed(config: &Config, scratch_database: bool, force: bool) -> Result<(), String> {
    if !scratch_database {
        return Err(
            "writes test data into the configured database; pass --scratch-database to confirm \
             it is a scratch database"
                .to_owned(),
        );
    }
    let postgres = config.database.url.starts_with("postgres");
    if postgres && !force {
        return Err("refusing a PostgreSQL database without --force".to_owned());
    }
    Ok(())
}

async fn run_verify(config: &Config) -> ExitCode {
    let storage = match storage::connect(&config.database).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = ?e, "cannot open the database");
            eprintln!("verify: {e}");
            return ExitCode::from(2);
        }
    };
    let result = verify(storage.as_ref()).await;
    storage.close().await;
    match result {
        Ok(report) => {
            println!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("verify: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_stress(
    config: &Config,
    accounts: u32,
    transfers: u64,
    concurrency: u32,
    funding_minor: i64,
    label: &str,
) -> Result<ExitCode, LedgerError> {
    let storage = storage::connect(&config.database).await?;
    let ledger = Ledger::start(storage.clone(), &config.ledger, Clock::system()).await?;
    let ids = Arc::new(setup_accounts(&ledger, accounts, funding_minor, label).await?);
    let tally = Arc::new(StressTally::default());
    let scope = format!("stress-{}-{}", label, uuid::Uuid::new_v4());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency as usize);
    for t in 0..concurrency {
        let share = transfers / u64::from(concurrency)
            + u64::from(u64::from(t) < transfers % u64::from(concurrency));
        tasks.push(tokio::spawn(submit_transfers(
            ledger.clone(),
            ids.clone(),
            tally.clone(),
            scope.clone(),
            t,
            share,
            funding_minor,
        )));
    }
    for task in tasks {
        if task.await.is_err() {
            tally.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    let elapsed = started.elapsed();
    ledger.shutdown().await;
    storage.close().await;
    Ok(report_stress(&tally, elapsed))
}

/// The source account and `accounts` customer accounts, each funded with `funding_minor` from
/// the source; returns the customers' ids.
async fn setup_accounts(
    ledger: &Ledger,
    accounts: u32,
    funding_minor: i64,
    label: &str,
) -> Result<Vec<AccountId>, LedgerError> {
    let setup = |k: String| IdempotencyKey::new("stress-setup", format!("{label}-{k}"));
    let source = ledger
        .create_account(
            setup("source".into()),
            NewAccount {
                currency: Currency::CNY,
                normal_side: Side::Debit,
                kind: "internal".into(),
                constraint: BalanceConstraint::None,
                metadata: Metadata::new(),
                profile: None,
            },
        )
        .await?;
    let mut customers: Vec<Account> = Vec::with_capacity(accounts as usize);
    for i in 0..accounts {
        let a = ledger
            .create_account(
                setup(format!("account-{i}")),
                NewAccount {
                    currency: Currency::CNY,
                    normal_side: Side::Credit,
                    kind: "customer".into(),
                    constraint: BalanceConstraint::DebitsMustNotExceedCredits {
                        overdraft_minor: 0,
                    },
                    metadata: Metadata::new(),
                    profile: None,
                },
            )
            .await?;
        ledger
            .post(
                setup(format!("fund-{i}")),
                transfer(source.id, a.id, funding_minor),
            )
            .await?;
        customers.push(a);
    }
    Ok(customers.iter().map(|a| a.id).collect())
}

/// What the submitters got back, counted as they go.
#[derive(Default)]
struct StressTally {
    ok: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// Submitter `t`: posts `share` random transfers between two distinct accounts of `ids`.
async fn submit_transfers(
    ledger: Ledger,
    ids: Arc<Vec<AccountId>>,
    tally: Arc<StressTally>,
    scope: String,
    t: u32,
    share: u64,
    funding_minor: i64,
) {
    let mut rng = StdRng::from_os_rng();
    for n in 0..share {
        let from = rng.random_range(0..ids.len());
        let mut to = rng.random_range(0..ids.len() - 1);
        if to >= from {
            to += 1;
        }
        // Between a quarter and three quarters of an opening balance: two such debits
        // of one account interleaved wrongly would overdraw it.
        let amount = rng
            .random_range(funding_minor / 4..=funding_minor * 3 / 4)
            .max(1);
        let key = IdempotencyKey::new(scope.clone(), format!("{t}-{n}"));
        match ledger.post(key, transfer(ids[from], ids[to], amount)).await {
            Ok(_) => tally.ok.fetch_add(1, Ordering::Relaxed),
            Err(LedgerError::InsufficientFunds { .. }) => {
                tally.refused.fetch_add(1, Ordering::Relaxed)
            }
            Err(e) => {
                eprintln!("stress: unexpected {e}");
                tally.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Prints the tally; success only when nothing failed.
fn report_stress(tally: &StressTally, elapsed: Duration) -> ExitCode {
    let (ok, refused, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    println!(
        "stress: {ok} posted, {refused} refused for insufficient funds, {failed} failed, in {} ms",
        elapsed.as_millis()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn transfer(from: AccountId, to: AccountId, minor: i64) -> NewTransaction {
    NewTransaction::transfer(from, to, Money::new(Currency::CNY, minor), Metadata::new())
}
