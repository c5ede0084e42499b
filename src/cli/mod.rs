//! The `paygate` command line: `serve`, `certs init`, `config show`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod ledger;
mod yields;

use self::{ledger::LedgerCommand, yields::YieldCommand};
use crate::{
    config::Config,
    server::Gateway,
    telemetry,
    tls::{DevPkiLayout, generate_dev_pki},
};

#[derive(Debug, Parser)]
#[command(
    name = "paygate",
    version,
    about = "A bank's payment gateway over gRPC with mutual TLS"
)]
pub struct Cli {
    /// TOML configuration file (defaults apply without one; `PAYGATE_*` variables override both).
    #[arg(long, global = true, env = "PAYGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `database.url` (e.g. to verify another database).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGINT or SIGTERM.
    Serve,
    /// Certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// The ledger: `verify` the hash chain and every balance.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Balance yield: `accrue` a business date's income.
    #[command(subcommand)]
    Yield(YieldCommand),
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
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
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file and environment merged) as TOML.
    Show,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("paygate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(url) = cli.database_url {
        config.database.url = url;
        if let Err(e) = config.validate() {
            eprintln!("paygate: {e}");
            return ExitCode::from(2);
        }
    }
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
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve => {
            telemetry::init_logging(&config.log);
            let gateway = match Gateway::bind(config).await {
                Ok(gateway) => gateway,
                Err(e) => {
                    tracing::error!(error = %e, "paygate cannot start");
                    return ExitCode::FAILURE;
                }
            };
            match gateway.run(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "paygate stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Certs {
            command: CertsCommand::Init { dir, force },
        } => {
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
        Command::Ledger(command) => {
            telemetry::init_logging(&crate::config::LogConfig {
                filter: "warn".to_owned(),
                ..config.log.clone()
            });
            ledger::run(command, &config).await
        }
        Command::Yield(command) => {
            telemetry::init_logging(&crate::config::LogConfig {
                filter: "warn".to_owned(),
                ..config.log.clone()
            });
            yields::run(command, &config).await
        }
        Command::Config {
            command: ConfigCommand::Show,
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
