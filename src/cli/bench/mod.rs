//! `paygate bench`: the load harness. It drives a real gateway in a separate process over
//! mutual TLS — by default a fresh `paygate serve` it starts itself (this same executable) on a
//! temporary data directory with its own development PKI, SQLite synchronous FULL — from
//! `--connections` HTTP/2 connections × `--streams` concurrent calls each, workload after
//! workload, and prints calls/s, latency percentiles, errors by status, the server's CPU per
//! call and memory, each beside its in-run baseline: paygate's Health/Check, itself beside a
//! bare tonic server with the same TLS (`echo`, the floor). See docs/BENCHMARKS.md.
//!
//! - [`args`]: the flags; [`workload`]: the workloads; [`server`]: the processes under load;
//!   [`seed`]: data through the public RPCs; [`calls`]: each workload's call; [`drive`]: the
//!   load and the window; [`proc_stat`]: `/proc`; [`report`]: lines, table, JSON;
//!   [`profile`]: `perf record` on one workload; [`echo`]: the floor server; [`soak`]: the
//!   soak (`--soak`: the peak, then 70 % of it for `--minutes`).

mod args;
mod calls;
mod drive;
mod echo;
mod proc_stat;
mod profile;
mod report;
mod seed;
mod server;
mod soak;
mod workload;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

pub use self::args::{BenchArgs, BenchCommand};
use self::{
    args::{Backend, Plan},
    calls::Seeded,
    drive::Load,
    report::{RunReport, WorkloadReport},
    server::{ServerChild, Target},
    workload::Workload,
};
use super::args::Resolved;
use crate::{
    config::Config,
    tls::{DevPkiLayout, generate_dev_pki},
};

/// Rate assumed for sizing the first payment pool when no posting workload ran before it.
const POOL_RATE_GUESS_PER_S: f64 = 2_000.0;
/// Fewest and most items pre-seeded for one payment workload.
const POOL_MIN: usize = 100;
const POOL_MAX: usize = 2_000_000;

/// Runs `paygate bench` (or its hidden `echo-server`).
pub async fn run(args: BenchArgs, config: Config, options: Resolved) -> ExitCode {
    if let Some(BenchCommand::EchoServer(echo)) = args.command {
        return echo::serve(echo).await;
    }
    match bench(args, config, options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paygate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The run's folder: the one given (kept), or a new temporary one (removed unless `--keep`).
struct WorkDir {
    path: PathBuf,
    remove: bool,
}

impl WorkDir {
    fn new(given: Option<PathBuf>, keep: bool, run: &str) -> Result<WorkDir, String> {
        let (path, remove) = match given {
            Some(path) => (path, false),
            None => (
                std::env::temp_dir().join(format!("paygate-bench-{run}")),
                !keep,
            ),
        };
        crate::private_fs::create_private_dir_all(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let path = path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(WorkDir { path, remove })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The servers of the run; declared so that the children stop before the folder goes.
struct Servers {
    paygate: Target,
    echo: Option<Target>,
    children: Vec<ServerChild>,
}

async fn bench(args: BenchArgs, config: Config, options: Resolved) -> Result<(), String> {
    let plan = Plan::from_args(&args)?;
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    // Letters only: the run tag goes into owner ids and references, and the gateway refuses free
    // text holding a run of digits that reads as a card number (a random hex tag with the
    // line's number after it sometimes did).
    let run: String = uuid::Uuid::new_v4().simple().to_string()[..12]
        .bytes()
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    let given_dir = args
        .config
        .data_dir
        .as_ref()
        .map(|_| options.data_dir.clone());
    let dir = WorkDir::new(given_dir, args.keep, &run)?;
    let pki = DevPkiLayout::new(dir.path.join("certs"));
    if !pki.ca_cert().exists() {
        generate_dev_pki(&pki, "paygate bench CA", &["loadtest"], false)
            .map_err(|e| format!("the bench's PKI: {e}"))?;
    }
    let mut notes = Vec::new();
    let mut pg_database = None;
    let mut servers = start_servers(
        &args,
        &plan,
        config,
        &dir.path,
        &pki,
        &run,
        &mut pg_database,
    )
    .await?;
    if let Some(soak) = &plan.soak {
        let db = match (&args.target, plan.backend, &pg_database, &args.pg_url) {
            (None, Backend::Sqlite, _, _) => soak::DbSize::Sqlite(dir.path.join("paygate.db")),
            (None, Backend::Postgres, Some(name), Some(admin)) => {
                soak::DbSize::Postgres(server::with_database(admin, name))
            }
            _ => soak::DbSize::None,
        };
        let outcome = soak_run(&plan, soak, &servers, &run, &db).await;
        for child in &mut servers.children {
            child.stop();
        }
        drop(servers);
        if let (Some(name), Some(admin)) = (&pg_database, &args.pg_url)
            && !args.keep
            && let Err(e) = server::drop_pg_database(admin, name).await
        {
            eprintln!("paygate bench: {e}");
        }
        let report = outcome?;
        println!("{}", soak::summary(&report));
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("\nwrote {}", path.display());
        }
        return if report.passed {
            Ok(())
        } else {
            Err("the soak failed its thresholds".to_owned())
        };
    }
    let outcome = drive_all(&args, &plan, &servers, &run, &mut notes).await;
    for child in &mut servers.children {
        child.stop();
    }
    drop(servers);
    if let (Some(name), Some(admin)) = (&pg_database, &args.pg_url)
        && !args.keep
        && let Err(e) = server::drop_pg_database(admin, name).await
    {
        eprintln!("paygate bench: {e}");
    }
    let workloads = outcome?;
    let report = RunReport {
        started_at,
        backend: plan.backend.name(),
        spawned_server: args.target.is_none(),
        connections: plan.connections,
        streams_per_connection: plan.streams,
        warmup_s: plan.warmup_s,
        duration_s: plan.duration_s,
        accounts: plan.accounts,
        merchants: plan.merchants,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        data_dir: (!dir.remove).then(|| dir.path.display().to_string()),
        database_url: pg_database.map(|name| format!("{name} (PostgreSQL)")),
        targets: report::targets(&workloads),
        workloads,
        notes,
    };
    println!("{}", report::table(&report));
    if let Some(path) = &args.json {
        report::write_json(&report, path)?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

/// Starts (or attaches to) paygate, and starts the echo server when `echo` is asked for.
async fn start_servers(
    args: &BenchArgs,
    plan: &Plan,
    config: Config,
    dir: &Path,
    pki: &DevPkiLayout,
    run: &str,
    pg_database: &mut Option<String>,
) -> Result<Servers, String> {
    let mut children = Vec::new();
    let paygate = match &args.target {
        Some(addr) => {
            let need = |f: &Option<PathBuf>, name: &str| {
                f.clone().ok_or_else(|| format!("--target needs --{name}"))
            };
            let tls = Target::tls(
                &need(&args.ca, "ca")?,
                &need(&args.cert, "cert")?,
                &need(&args.key, "key")?,
                &args.server_name,
            )?;
            let pid = args.server_pid.ok_or("--target needs --server-pid")?;
            let target = Target {
                addr: addr.clone(),
                tls,
                pid,
            };
            target.until_serving(None).await?;
            target
        }
        None => {
            let database_url = match plan.backend {
                Backend::Sqlite => format!("sqlite://{}", dir.join("paygate.db").display()),
                Backend::Postgres => {
                    let admin = args
                        .pg_url
                        .as_deref()
                        .ok_or("--backend postgres needs --pg-url")?;
                    let (name, url) = server::fresh_pg_database(admin, run).await?;
                    *pg_database = Some(name);
                    url
                }
            };
            let settings = server::ServeSettings {
                dir,
                pki,
                database_url,
                log_filter: args.server_log.clone(),
                calls_in_flight: plan.connections * plan.streams,
                streams_per_connection: plan.streams,
            };
            let config = server::serve_config(config, &settings)?;
            eprintln!(
                "starting paygate serve in {} ({})",
                dir.display(),
                plan.backend.name()
            );
            let (child, target) = server::start_paygate(&config, dir, pki).await?;
            children.push(child);
            target
        }
    };
    let echo = if plan.workloads.contains(&Workload::Echo) {
        let streams = u32::try_from(plan.streams.max(256)).unwrap_or(u32::MAX);
        let (child, target) = server::start_echo(dir, pki, streams).await?;
        children.push(child);
        Some(target)
    } else {
        None
    };
    Ok(Servers {
        paygate,
        echo,
        children,
    })
}

/// Seeds what the plan needs, then measures each workload in turn.
async fn drive_all(
    args: &BenchArgs,
    plan: &Plan,
    servers: &Servers,
    run: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<WorkloadReport>, String> {
    let paygate = servers.paygate.connect(plan.connections).await?;
    let echo = match &servers.echo {
        Some(target) => Some(target.connect(plan.connections).await?),
        None => None,
    };
    let concurrency = plan.connections * plan.streams;
    let mut seeded = Seeded::default();
    seed_accounts(plan, &paygate, run, &mut seeded).await?;
    if plan.workloads.iter().any(|w| w.needs_merchants()) {
        eprintln!("seeding {} merchants", plan.merchants);
        seeded.merchants =
            Arc::new(seed::merchants(&paygate, concurrency, run, plan.merchants).await?);
    }
    let load = Load {
        streams_per_connection: plan.streams,
        warmup: Duration::from_secs(plan.warmup_s),
        duration: Duration::from_secs(plan.duration_s),
    };
    let mut done: Vec<WorkloadReport> = Vec::new();
    for &workload in &plan.workloads {
        let (channels, target) = if workload.on_echo_server() {
            match (&echo, &servers.echo) {
                (Some(channels), Some(target)) => (channels, target),
                _ => return Err("the echo server is not running".to_owned()),
            }
        } else {
            (&paygate, &servers.paygate)
        };
        let pool = if workload.consumes_pool() {
            let size = pool_size(plan, &done);
            eprintln!(
                "seeding {size} {} for {}",
                pool_items(workload),
                workload.name()
            );
            Some(seed_pool(workload, &paygate, concurrency, run, &seeded, size).await?)
        } else {
            None
        };
        let pool_len = pool.as_ref().map(|p| p.len());
        eprintln!("running {} ({})", workload.name(), workload.rpc());
        let profiling = if args.profile == Some(workload) {
            profile::start(target.pid, &args.json, workload, notes)
        } else {
            None
        };
        let measured = calls::measure(
            workload,
            channels,
            load,
            target.pid,
            &seeded,
            pool.unwrap_or_default(),
            run,
        )
        .await;
        if let Some(profiling) = profiling {
            profiling.stop(notes);
        }
        let mut line = WorkloadReport::new(workload, &measured, target.pid, pool_len);
        line.compare(&done);
        println!("{}", line.line());
        done.push(line);
    }
    Ok(done)
}

/// The funded accounts, when a workload of the plan needs them.
async fn seed_accounts(
    plan: &Plan,
    paygate: &[tonic::transport::Channel],
    run: &str,
    seeded: &mut Seeded,
) -> Result<(), String> {
    if plan.workloads.iter().any(|w| w.needs_accounts()) {
        eprintln!("seeding {} funded accounts", plan.accounts);
        // Persons distinct from other runs on the same database (a person holds at most five).
        let first_person = rand::random_range(0..19_000u64) * 1_000;
        let first_person = first_person.min(20_000_000 - plan.accounts as u64);
        let concurrency = plan.connections * plan.streams;
        seeded.accounts = Arc::new(
            seed::funded_accounts(paygate, concurrency, run, first_person, plan.accounts).await?,
        );
    }
    Ok(())
}

/// `--soak`: seeds, measures the peak (unless `--rate`), then holds the soak's rate.
async fn soak_run(
    plan: &Plan,
    soak: &soak::SoakPlan,
    servers: &Servers,
    run: &str,
    db: &soak::DbSize,
) -> Result<soak::SoakReport, String> {
    let paygate = servers.paygate.connect(plan.connections).await?;
    let mut seeded = Seeded::default();
    seed_accounts(plan, &paygate, run, &mut seeded).await?;
    let pid = servers.paygate.pid;
    let (rate, peak) = match soak.rate {
        Some(rate) => (rate, None),
        None => {
            eprintln!(
                "measuring the peak of {} for {} s",
                soak.workload.name(),
                soak.peak.as_secs()
            );
            let load = Load {
                streams_per_connection: plan.streams,
                warmup: Duration::from_secs(plan.warmup_s),
                duration: soak.peak,
            };
            let measured = calls::measure(
                soak.workload,
                &paygate,
                load,
                pid,
                &seeded,
                Arc::default(),
                &format!("{run}-peak"),
            )
            .await;
            let seconds = measured.window.as_secs_f64();
            let peak = if seconds > 0.0 {
                measured.ok_calls as f64 / seconds
            } else {
                0.0
            };
            if peak < 1.0 {
                return Err(format!(
                    "the peak measured no OK calls (errors: {:?})",
                    measured.error_samples
                ));
            }
            (peak * soak.rate_percent / 100.0, Some(peak))
        }
    };
    eprintln!(
        "soaking {} at {rate:.0} calls/s for {:.0} s",
        soak.workload.name(),
        soak.duration.as_secs_f64()
    );
    let call = soak::call_of(soak.workload, seeded.accounts.clone(), run)?;
    Ok(soak::run(soak, &paygate, call, rate, peak, pid, db).await)
}

/// What a payment workload's pool holds.
fn pool_items(workload: Workload) -> &'static str {
    if workload == Workload::ScanPay {
        "payment codes"
    } else {
        "unpaid orders"
    }
}

/// Items to pre-seed for a payment workload: `--orders`, else the best posting rate measured so
/// far in this run (or a guess) over the warm-up and the window, with half again to spare.
fn pool_size(plan: &Plan, done: &[WorkloadReport]) -> usize {
    if let Some(orders) = plan.orders {
        return orders;
    }
    let rate = done
        .iter()
        .filter(|r| r.workload.posts())
        .map(|r| r.calls_per_s)
        .fold(0.0, f64::max);
    let rate = if rate > 0.0 {
        rate
    } else {
        POOL_RATE_GUESS_PER_S
    };
    let seconds = (plan.warmup_s + plan.duration_s) as f64;
    ((rate * seconds * 1.5) as usize).clamp(POOL_MIN, POOL_MAX)
}

/// Pre-seeds a payment workload's pool: unpaid orders (of every merchant, or of the first one
/// for pay-hot), or payment codes of the seeded payers.
async fn seed_pool(
    workload: Workload,
    channels: &[tonic::transport::Channel],
    concurrency: usize,
    run: &str,
    seeded: &Seeded,
    size: usize,
) -> Result<Arc<Vec<String>>, String> {
    let tag = format!("{run}-{}-seed", workload.name());
    let items = match workload {
        Workload::ScanPay => {
            seed::payment_codes(channels, concurrency, &tag, seeded.accounts.clone(), size).await?
        }
        Workload::PayHot => {
            let hot = Arc::new(seeded.merchants.iter().take(1).cloned().collect());
            seed::orders(channels, concurrency, &tag, hot, size).await?
        }
        _ => seed::orders(channels, concurrency, &tag, seeded.merchants.clone(), size).await?,
    };
    Ok(Arc::new(items))
}
