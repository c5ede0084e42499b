//! The `paygate` command line: `serve`, `migrate`, `backup`, `certs init` / `issue-client` / `revoke`,
//! `ledger verify`, `yield accrue`, `accounts import`, `config show`, `bench` (the load harness),
//! `recon` (reconciliation), `eod status` / `eod run` (end of day), `netsim`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod accounts;
mod args;
mod audit;
mod bench;
mod data_dir;
mod eod;
mod ledger;
mod migrate;
mod netsim;
mod recon;
mod yields;

pub use self::args::{ConfigArgs, DatabaseArgs, Resolved, TopArgs};
use self::{
    accounts::AccountsCommand, audit::AuditCommand, eod::EodCommand, ledger::LedgerCommand,
    yields::YieldCommand,
};
use crate::{
    config::Config,
    server::{Gateway, Reloader},
    telemetry,
    tls::{DevPkiLayout, generate_dev_pki, issue_client, write_dev_crl},
};

#[derive(Debug, Parser)]
#[command(
    name = "paygate",
    version,
    about = "A bank's payment gateway over gRPC with mutual TLS"
)]
pub struct Cli {
    #[command(flatten)]
    pub top: TopArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGINT or SIGTERM; SIGHUP reloads the TLS files and the callers.
    Serve(ServeArgs),
    /// Schema migrations: list the pending ones and apply them (`--dry-run`: list only).
    Migrate(MigrateArgs),
    /// Write an online backup of the SQLite database to a new file (`VACUUM INTO`: a
    /// consistent snapshot while the gateway serves). PostgreSQL: use pg_basebackup or pg_dump.
    Backup(BackupArgs),
    /// Certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// The ledger: `verify` the hash chain and every balance.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The audit log of mutating calls: `verify` its hash chain, `export` it as JSON lines.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Balance yield: `accrue` a business date's income.
    #[command(subcommand)]
    Yield(YieldCommand),
    /// Accounts: `import` a JSON-lines file of accounts through a running gateway.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Load harness: start a fresh gateway (or drive `--target`) over mutual TLS from N
    /// connections × M streams, workload after workload, and print calls/s, latency, errors,
    /// server CPU per call and memory beside the in-run baselines (docs/BENCHMARKS.md).
    Bench(Box<bench::BenchArgs>),
    /// Reconcile (对账) one network's file for a batch or a business date against our records
    /// of the calls sent to it: matched, theirs only, ours only, amount or status differs.
    Recon(Box<recon::ReconArgs>),
    /// End of day (日切): `status` of each date's steps, or `run` one round of them now.
    #[command(subcommand)]
    Eod(EodCommand),
    /// Simulate the clearing networks off-us (every one of the registry but on-us: NetsUnion,
    /// UnionPay QR, CNAPS, the wallets, …) in this process, over plain HTTP on loopback, with
    /// configurable faults; until SIGINT or SIGTERM.
    Netsim(netsim::NetsimArgs),
}

/// The options of a command that reads no gateway configuration.
const NO_CONFIG_ARGS: &ConfigArgs = &ConfigArgs {
    config: None,
    data_dir: None,
};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Create what is missing (data directory, SQLite database, development PKI, secret key)
    /// even where the configuration names it or the data directory holds the gateway's other
    /// files. Without it only a first start in an empty data directory, with no config file,
    /// creates them.
    #[arg(long)]
    pub init: bool,
    /// Do not apply pending schema migrations at start, and refuse to start if there are any
    /// (as `database.migrate_on_start = false`).
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// List the pending migrations; apply nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The new file to write (relative to the working directory; it must not exist).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a development CA, a server certificate for localhost and one client certificate per
    /// configured caller.
    Init {
        /// Folder to write to (default: the configured `tls.dev_pki_dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Replace an existing development PKI.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Issue a client certificate from the development CA: CN and SAN DNS name = NAME, the
    /// clientAuth extended key usage (written to <dir>/clients/NAME.pem and .key).
    IssueClient {
        /// The caller name (map it in `[[callers]] identities`).
        name: String,
        /// Folder of the development PKI (default: the configured `tls.dev_pki_dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Write <dir>/crl.pem, a CRL of the development CA revoking the named client certificates
    /// (none: a CRL that revokes nothing). List it in `tls.crl_files`; SIGHUP reloads it.
    Revoke {
        /// Client certificates to revoke, by caller name (as in <dir>/clients/).
        names: Vec<String>,
        /// Folder of the development PKI (default: the configured `tls.dev_pki_dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file and environment merged, paths
    /// resolved against the data directory) as TOML.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the key a clearing network signs its result notices with (HMAC-SHA256, hex),
    /// derived from the server secret, to hand to that network's operators.
    NoticeKey {
        #[command(flatten)]
        config: ConfigArgs,
        /// The network's code (`NETS_UNION`, `UNION_PAY_QR`, …).
        #[arg(long)]
        network: String,
    },
}

impl Command {
    /// The shared options this subcommand was given.
    fn options(&self) -> (&ConfigArgs, Option<&DatabaseArgs>) {
        match self {
            Command::Serve(a) => (&a.config, Some(&a.database)),
            Command::Migrate(a) => (&a.config, Some(&a.database)),
            Command::Backup(a) => (&a.config, Some(&a.database)),
            Command::Certs { command } => match command {
                CertsCommand::Init { config, .. }
                | CertsCommand::IssueClient { config, .. }
                | CertsCommand::Revoke { config, .. } => (config, None),
            },
            Command::Ledger(command) => command.options(),
            Command::Audit(command) => command.options(),
            Command::Yield(command) => command.options(),
            Command::Accounts(command) => (command.options(), None),
            Command::Config {
                command: ConfigCommand::Show { config, database },
            } => (config, Some(database)),
            Command::Config {
                command: ConfigCommand::NoticeKey { config, .. },
            } => (config, None),
            Command::Bench(args) => (&args.config, None),
            Command::Recon(args) => (&args.config, Some(&args.database)),
            Command::Eod(command) => command.options(),
            Command::Netsim(_) => (NO_CONFIG_ARGS, None),
        }
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::Netsim(args) => return netsim::main(args),
        command => Cli { command, ..cli },
    };
    let (own, database) = cli.command.options();
    let options = cli.top.resolve(own, database);
    let config = match load(&options) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("paygate: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("paygate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command, config, options))
}

/// The configuration: defaults, file, environment, `--database-url`; then every relative path
/// resolved against the data directory.
pub fn load(options: &Resolved) -> Result<Config, crate::config::ConfigError> {
    let mut config = Config::load(options.config_file.as_deref())?;
    if let Some(url) = &options.database_url {
        config.database.url = url.clone();
        config.validate()?;
    }
    config.resolve_paths(&options.data_dir);
    Ok(config)
}

/// Client TLS for the commands that call a gateway (`bench`, `accounts import`): trusting `ca`,
/// presenting `cert`/`key`, expecting `server_name`.
fn client_tls(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    server_name: &str,
) -> Result<tonic::transport::ClientTlsConfig, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .identity(Identity::from_pem(read(cert)?, read(key)?))
        .domain_name(server_name))
}

/// Logs at WARN and above only (the commands that print their own report).
fn quiet_logging(config: &Config) {
    telemetry::init_logging(&crate::config::LogConfig {
        filter: "warn".to_owned(),
        ..config.log.clone()
    });
}

/// The account service an offline command works through, over `ledger` with `clearing`.
async fn account_service(
    ledger: &crate::ledger::Ledger,
    clearing: crate::clearing::routing::Clearing,
    config: &Config,
) -> Result<crate::account::AccountService, String> {
    let secrets = crate::secrets::Secrets::load_or_create(
        &config.secrets.key_file,
        config.secrets.generate_if_missing,
    )
    .map_err(|e| e.to_string())?;
    crate::account::AccountService::start(
        ledger.clone(),
        std::sync::Arc::new(clearing),
        secrets,
        &config.accounts,
    )
    .await
    .map_err(|e| e.to_string())
}

/// Refused before anything is opened: exit status 2 and the reason on stderr.
fn refused(why: &str) -> ExitCode {
    eprintln!("paygate: {why}");
    ExitCode::from(2)
}

async fn run(command: Command, mut config: Config, options: Resolved) -> ExitCode {
    match command {
        Command::Serve(args) => {
            let exporter = match telemetry::init(&config.log, &config.tracing) {
                Ok(exporter) => exporter,
                Err(e) => return refused(&e.to_string()),
            };
            if args.no_migrate {
                config.database.migrate_on_start = false;
            }
            let given = options.config_file.is_some();
            if let Err(why) = data_dir::check_start(&config, &options.data_dir, given, args.init) {
                tracing::error!(reason = %why, "paygate cannot start");
                return refused(&why);
            }
            let code = serve(config, options).await;
            if let Some(exporter) = exporter {
                // Blocking: the last spans go out before the process ends.
                let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
            }
            code
        }
        Command::Migrate(args) => {
            quiet_logging(&config);
            if let Err(why) = data_dir::require_database(&config, &options.data_dir) {
                return refused(&why);
            }
            migrate::run(&config.database, args.dry_run).await
        }
        Command::Backup(args) => {
            quiet_logging(&config);
            if let Err(why) = data_dir::require_database(&config, &options.data_dir) {
                return refused(&why);
            }
            match crate::storage::backup_sqlite(&config.database, &args.to).await {
                Ok(backup) => {
                    println!(
                        "backup written: {} ({} bytes)",
                        args.to.display(),
                        backup.bytes
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("paygate backup: {}", e.detail());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Certs { command } => certs(command, &config),
        Command::Ledger(command) => {
            quiet_logging(&config);
            if command.reads_existing_database()
                && let Err(why) = data_dir::require_database(&config, &options.data_dir)
            {
                return refused(&why);
            }
            ledger::run(command, &config).await
        }
        Command::Accounts(command) => {
            quiet_logging(&config);
            accounts::run(command, &config).await
        }
        Command::Audit(command) => {
            quiet_logging(&config);
            if let Err(why) = data_dir::require_database(&config, &options.data_dir) {
                return refused(&why);
            }
            audit::run(command, &config).await
        }
        Command::Yield(command) => {
            quiet_logging(&config);
            if let Err(why) = data_dir::require_database(&config, &options.data_dir) {
                return refused(&why);
            }
            yields::run(command, &config).await
        }
        Command::Bench(args) => {
            quiet_logging(&config);
            bench::run(*args, config, options).await
        }
        Command::Recon(args) => {
            quiet_logging(&config);
            if let Err(why) = data_dir::require_database(&config, &options.data_dir) {
                return refused(&why);
            }
            recon::run(*args, &config).await
        }
        Command::Eod(command) => {
            quiet_logging(&config);
            if let Err(why) = data_dir::require_database(&config, &options.data_dir) {
                return refused(&why);
            }
            eod::run(command, &config).await
        }
        Command::Config {
            command: ConfigCommand::Show { .. },
        } => match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("paygate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Config {
            command: ConfigCommand::NoticeKey { network, .. },
        } => {
            let Some(network) = crate::clearing::Network::parse(&network).filter(|n| n.is_remote())
            else {
                return refused(&format!("{network:?} is not a clearing network off-us"));
            };
            match crate::secrets::Secrets::load_or_create(&config.secrets.key_file, false) {
                Ok(secrets) => {
                    println!("{}", hex::encode(secrets.notice_key(network.as_str())));
                    ExitCode::SUCCESS
                }
                Err(e) => refused(&e.to_string()),
            }
        }
        // Run by `main` before any configuration is read.
        Command::Netsim(_) => refused("netsim is run by main, without the gateway's configuration"),
    }
}

async fn serve(config: Config, options: Resolved) -> ExitCode {
    let gateway = match Gateway::bind(config).await {
        Ok(gateway) => gateway,
        Err(e) => {
            tracing::error!(error = %e, "paygate cannot start");
            return ExitCode::FAILURE;
        }
    };
    let reloads = tokio::spawn(reload_on_sighup(gateway.reloader(), options));
    let stopped = gateway.run(shutdown_signal()).await;
    reloads.abort();
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "paygate stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn certs(command: CertsCommand, config: &Config) -> ExitCode {
    match command {
        CertsCommand::Init { dir, force, .. } => {
            let dir = dir.unwrap_or_else(|| config.tls.dev_pki_dir.clone());
            let names: Vec<&str> = config.callers.iter().map(|c| c.name.as_str()).collect();
            match generate_dev_pki(&DevPkiLayout::new(&dir), "paygate dev CA", &names, force) {
                Ok(()) => {
                    println!(
                        "wrote a development PKI to {} (CA, server for localhost, clients: {})",
                        dir.display(),
                        names.join(", ")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("paygate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CertsCommand::IssueClient { name, dir, .. } => {
            let dir = dir.unwrap_or_else(|| config.tls.dev_pki_dir.clone());
            let layout = DevPkiLayout::new(&dir);
            certs_outcome(issue_client(&layout, &name), || {
                format!(
                    "wrote {} and {} (CN and SAN DNS = {name}, clientAuth)",
                    layout.client_cert(&name).display(),
                    layout.client_key(&name).display()
                )
            })
        }
        CertsCommand::Revoke { names, dir, .. } => {
            let dir = dir.unwrap_or_else(|| config.tls.dev_pki_dir.clone());
            let layout = DevPkiLayout::new(&dir);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            certs_outcome(write_dev_crl(&layout, &names), || {
                format!(
                    "wrote {} revoking: {}",
                    layout.crl().display(),
                    if names.is_empty() {
                        "nothing".to_owned()
                    } else {
                        names.join(", ")
                    }
                )
            })
        }
    }
}

fn certs_outcome(
    outcome: Result<(), crate::tls::TlsError>,
    done: impl FnOnce() -> String,
) -> ExitCode {
    match outcome {
        Ok(()) => {
            println!("{}", done());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paygate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// On every SIGHUP: reads the configuration again (defaults, file, environment, paths resolved
/// against the same data directory) and reloads the
/// TLS material and the caller table. A configuration or file that does not load is logged and
/// the running one stays in force.
async fn reload_on_sighup(reloader: Reloader, options: Resolved) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads need a restart");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            reload(&reloader, &options);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reloader, options);
    }
}

fn reload(reloader: &Reloader, options: &Resolved) {
    let outcome = load(options)
        .map_err(crate::server::ReloadError::from)
        .and_then(|config| reloader.reload(&config));
    if let Err(e) = outcome {
        tracing::error!(error = %e, "reload failed; the running TLS material and callers stay in force");
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
