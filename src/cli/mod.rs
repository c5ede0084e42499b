//! The `paygate` command line: `serve`, `certs init` / `issue-client` / `revoke`, `config show`.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};

mod ledger;
mod yields;

use self::{ledger::LedgerCommand, yields::YieldCommand};
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
    /// Run the gateway until SIGINT or SIGTERM; SIGHUP reloads the TLS files and the callers.
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
    /// Issue a client certificate from the development CA: CN and SAN DNS name = NAME, the
    /// clientAuth extended key usage (written to <dir>/clients/NAME.pem and .key).
    IssueClient {
        /// The caller name (map it in `[[callers]] identities`).
        name: String,
        /// Folder of the development PKI (default: the configured `tls.dev_pki_dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write <dir>/crl.pem, a CRL of the development CA revoking the named client certificates
    /// (none: a CRL that revokes nothing). List it in `tls.crl_files`; SIGHUP reloads it.
    Revoke {
        /// Client certificates to revoke, by caller name (as in <dir>/clients/).
        names: Vec<String>,
        /// Folder of the development PKI (default: the configured `tls.dev_pki_dir`).
        #[arg(long)]
        dir: Option<PathBuf>,
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
    runtime.block_on(run(cli.command, config, cli.config))
}

async fn run(command: Command, config: Config, config_file: Option<PathBuf>) -> ExitCode {
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
            let reloads = tokio::spawn(reload_on_sighup(gateway.reloader(), config_file));
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
        Command::Certs {
            command: CertsCommand::IssueClient { name, dir },
        } => {
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
        Command::Certs {
            command: CertsCommand::Revoke { names, dir },
        } => {
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

/// On every SIGHUP: reads the configuration again (defaults, file, environment) and reloads the
/// TLS material and the caller table. A configuration or file that does not load is logged and
/// the running one stays in force.
async fn reload_on_sighup(reloader: Reloader, config_file: Option<PathBuf>) {
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
            reload(&reloader, config_file.as_deref());
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reloader, config_file);
    }
}

fn reload(reloader: &Reloader, config_file: Option<&Path>) {
    let outcome = Config::load(config_file)
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
