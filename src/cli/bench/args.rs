//! The flags of `paygate bench`, and the plan they make once checked against their limits.

use std::path::PathBuf;

use super::{echo::EchoArgs, workload::Workload};
use crate::cli::ConfigArgs;

/// Most HTTP/2 connections, concurrent calls per connection, and seconds of one window.
const CONNECTIONS_MAX: usize = 256;
const STREAMS_MAX: usize = 4096;
const SECONDS_MAX: u64 = 3_600;
/// Most seeded accounts and merchants.
const ACCOUNTS_MAX: usize = 10_000_000;
const MERCHANTS_MAX: usize = 100_000;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// `--config`: the base configuration of the server the bench starts (defaults without it;
    /// the bench then sets its port, PKI, database and lifted limits). `--data-dir`: the
    /// server's data directory, kept after the run [default: a new temporary one, removed].
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Workloads to run, comma-separated; they run in the order listed here [default: all]
    #[arg(long, value_delimiter = ',', value_enum)]
    pub workloads: Vec<Workload>,
    /// HTTP/2 connections (each its own TCP connection and TLS handshake).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Concurrent calls per connection.
    #[arg(long, default_value_t = 64)]
    pub streams: usize,
    /// Seconds measured per workload.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Seconds of load before each measured window.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    /// Funded Class II accounts to seed (payers, transfer ends, balances read).
    #[arg(long, default_value_t = 100_000)]
    pub accounts: usize,
    /// Merchants to seed (pay spreads its orders over all of them; pay-hot uses the first).
    #[arg(long, default_value_t = 100)]
    pub merchants: usize,
    /// Unpaid orders (or payment codes) pre-seeded per payment workload [default: the best
    /// posting rate measured so far in the run × (warm-up + duration) × 1.5].
    #[arg(long)]
    pub orders: Option<usize>,
    /// Database of the server the bench starts: a file in its data directory, or a fresh
    /// database on the PostgreSQL server of `--pg-url` (dropped after the run unless `--keep`).
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server for `--backend postgres`, e.g. postgres://postgres@127.0.0.1:5432/postgres.
    #[arg(long, value_name = "URL")]
    pub pg_url: Option<String>,
    /// Log filter of the server the bench starts (its log: serve.log in its data directory).
    #[arg(long, default_value = "info", value_name = "FILTER")]
    pub server_log: String,
    /// Drive a gateway already running at HOST:PORT instead (with --ca, --cert, --key and
    /// --server-pid); its limits are its own.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// CA of the target's server certificate.
    #[arg(long, requires = "target")]
    pub ca: Option<PathBuf>,
    /// Client certificate and key to call the target with (a caller granted everything).
    #[arg(long, requires = "target")]
    pub cert: Option<PathBuf>,
    #[arg(long, requires = "target")]
    pub key: Option<PathBuf>,
    /// Process id of the target, whose CPU and memory are read from /proc.
    #[arg(long, requires = "target")]
    pub server_pid: Option<u32>,
    /// Name the target's certificate is checked against.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Keep the temporary data directory and the PostgreSQL database.
    #[arg(long)]
    pub keep: bool,
    /// Soak instead of the workloads' table (issue 15): the peak of one workload (transfer
    /// unless --workloads names one of transfer, get-balance, health) for --peak-s, then
    /// --rate-percent of it, open loop, for --minutes, with a line per --interval-s and a
    /// verdict (error rate < 0.01 %, p99 drift < 10 %); exits non-zero when it fails.
    #[arg(long)]
    pub soak: bool,
    /// Length of the soak, in minutes (fractions allowed; 120 for the long run).
    #[arg(long, default_value_t = 10.0, requires = "soak")]
    pub minutes: f64,
    /// Seconds between two soak lines.
    #[arg(long, default_value_t = 60, requires = "soak")]
    pub interval_s: u64,
    /// Seconds of closed-loop load that measure the peak before the soak.
    #[arg(long, default_value_t = 10, requires = "soak")]
    pub peak_s: u64,
    /// Share of the measured peak the soak holds, in percent.
    #[arg(long, default_value_t = 70.0, requires = "soak")]
    pub rate_percent: f64,
    /// Calls/s the soak holds (no peak measured first).
    #[arg(long, requires = "soak")]
    pub rate: Option<f64>,
    /// Record the server with `perf record -g` during this workload (when perf is installed),
    /// to perf-WORKLOAD.data next to the --json file or in the working directory.
    #[arg(long, value_enum, value_name = "WORKLOAD")]
    pub profile: Option<Workload>,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The floor reference the bench starts as a child: a bare tonic Health/Check server with
    /// the gateway's TLS settings.
    #[command(hide = true)]
    EchoServer(EchoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The flags, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workloads: Vec<Workload>,
    pub connections: usize,
    pub streams: usize,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub accounts: usize,
    pub merchants: usize,
    pub orders: Option<usize>,
    pub backend: Backend,
    /// `--soak`: how it runs (its workload is the only one of `workloads`).
    pub soak: Option<super::soak::SoakPlan>,
}

impl Plan {
    pub fn from_args(args: &BenchArgs) -> Result<Plan, String> {
        let within = |name: &str, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(format!("--{name} must be within {min}..={max}"))
            }
        };
        let workloads = if args.soak && args.workloads.is_empty() {
            vec![Workload::Transfer]
        } else {
            super::workload::plan(&args.workloads)
        };
        let soak = if args.soak {
            Some(soak_plan(args, &workloads)?)
        } else {
            None
        };
        let needs_accounts = workloads.iter().any(|w| w.needs_accounts());
        let needs_merchants = workloads.iter().any(|w| w.needs_merchants());
        if args.duration_s == 0 || args.duration_s > SECONDS_MAX || args.warmup_s > SECONDS_MAX {
            return Err(format!(
                "--duration-s must be within 1..={SECONDS_MAX}, --warmup-s at most {SECONDS_MAX}"
            ));
        }
        if args.backend == Backend::Postgres && args.pg_url.is_none() && args.target.is_none() {
            return Err("--backend postgres needs --pg-url".to_owned());
        }
        Ok(Plan {
            connections: within("connections", args.connections, 1, CONNECTIONS_MAX)?,
            streams: within("streams", args.streams, 1, STREAMS_MAX)?,
            duration_s: args.duration_s,
            warmup_s: args.warmup_s,
            accounts: if needs_accounts {
                within("accounts", args.accounts, 2, ACCOUNTS_MAX)?
            } else {
                0
            },
            merchants: if needs_merchants {
                within("merchants", args.merchants, 1, MERCHANTS_MAX)?
            } else {
                0
            },
            orders: match args.orders {
                Some(n) => Some(within("orders", n, 1, super::seed::SEED_ITEMS_MAX)?),
                None => None,
            },
            backend: args.backend,
            workloads,
            soak,
        })
    }
}

fn soak_plan(args: &BenchArgs, workloads: &[Workload]) -> Result<super::soak::SoakPlan, String> {
    let [workload] = workloads else {
        return Err("--soak runs one workload".to_owned());
    };
    if !matches!(
        workload,
        Workload::Transfer | Workload::GetBalance | Workload::Health
    ) {
        return Err(format!(
            "--soak runs transfer, get-balance or health, not {}",
            workload.name()
        ));
    }
    let seconds = args.minutes * 60.0;
    if !(1.0..=(24.0 * 3_600.0)).contains(&seconds) {
        return Err("--minutes must make 1 s to 24 h".to_owned());
    }
    if args.interval_s == 0 || args.peak_s == 0 || args.peak_s > SECONDS_MAX {
        return Err(format!(
            "--interval-s must be at least 1, --peak-s within 1..={SECONDS_MAX}"
        ));
    }
    if !(1.0..=100.0).contains(&args.rate_percent) {
        return Err("--rate-percent must be within 1..=100".to_owned());
    }
    if let Some(rate) = args.rate
        && !(1.0..=1_000_000.0).contains(&rate)
    {
        return Err("--rate must be within 1..=1000000 calls/s".to_owned());
    }
    Ok(super::soak::SoakPlan {
        workload: *workload,
        rate: args.rate,
        rate_percent: args.rate_percent,
        peak: std::time::Duration::from_secs(args.peak_s),
        duration: std::time::Duration::from_secs_f64(seconds),
        interval: std::time::Duration::from_secs(args.interval_s),
        in_flight_max: args.connections.saturating_mul(args.streams),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn plan(line: &str) -> Result<Plan, String> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(line.split_whitespace()))
            .map_err(|e| e.to_string())?;
        Plan::from_args(&cli.bench)
    }

    #[test]
    fn the_defaults_are_the_issues_load() {
        let p = plan("").unwrap();
        assert_eq!(
            (p.connections, p.streams, p.duration_s, p.warmup_s),
            (4, 64, 10, 2)
        );
        assert_eq!((p.accounts, p.merchants), (100_000, 100));
        assert_eq!(p.workloads, Workload::ALL);
    }

    #[test]
    fn a_run_seeds_only_what_its_workloads_need() {
        let p = plan("--workloads echo,health --accounts 1").unwrap();
        assert_eq!((p.accounts, p.merchants), (0, 0));
        let p = plan("--workloads transfer,get-balance --accounts 50").unwrap();
        assert_eq!(p.workloads, [Workload::GetBalance, Workload::Transfer]);
        assert_eq!((p.accounts, p.merchants), (50, 0));
    }

    #[test]
    fn numbers_beyond_their_limits_are_refused() {
        assert!(plan("--connections 0").is_err());
        assert!(plan("--duration-s 0").is_err());
        assert!(plan("--workloads transfer --accounts 1").is_err());
        assert!(plan("--backend postgres").is_err());
        assert!(plan("--workloads nonsense").is_err());
        assert!(plan("--ca x.pem").is_err(), "--ca only with --target");
    }

    #[test]
    fn a_soak_holds_seventy_percent_of_transfer_for_ten_minutes_by_default() {
        let p = plan("--soak").unwrap();
        assert_eq!(p.workloads, [Workload::Transfer]);
        let soak = p.soak.unwrap();
        assert_eq!(soak.duration.as_secs(), 600);
        assert_eq!((soak.interval.as_secs(), soak.peak.as_secs()), (60, 10));
        assert_eq!((soak.rate, soak.rate_percent), (None, 70.0));
        assert_eq!(soak.in_flight_max, 256);
        let long = plan("--soak --minutes 120 --rate 500")
            .unwrap()
            .soak
            .unwrap();
        assert_eq!((long.duration.as_secs(), long.rate), (7_200, Some(500.0)));
        assert!(plan("").unwrap().soak.is_none());
    }

    #[test]
    fn a_soak_refuses_several_workloads_a_pool_workload_and_odd_numbers() {
        assert!(plan("--soak --workloads transfer,health").is_err());
        assert!(plan("--soak --workloads pay").is_err());
        assert!(plan("--soak --minutes 0").is_err());
        assert!(plan("--soak --rate-percent 0").is_err());
        assert!(plan("--soak --rate 0").is_err());
        assert!(plan("--minutes 5").is_err(), "--minutes only with --soak");
    }
}
