//! The `paygate` command.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use paygate::{config::Config, ledger::cli::LedgerCommand};

#[derive(Parser)]
#[command(name = "paygate", version, about)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Overrides `database.url`.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ledger operations.
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(url) = cli.database_url {
        config.database.url = url;
        if let Err(e) = config.validate() {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    match cli.command {
        Command::Ledger(cmd) => paygate::ledger::cli::run(cmd, &config).await,
    }
}
