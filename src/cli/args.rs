//! The options several subcommands share. Each subcommand declares the ones it uses, so its
//! `--help` shows only its own; the same options before the subcommand
//! (`paygate --config FILE serve`) still work, and one after it wins.

use std::path::PathBuf;

/// Where the configuration and the gateway's files are.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file (defaults apply without one; `PAYGATE_*` variables override
    /// both). Also PAYGATE_CONFIG.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory: relative paths of the configuration (database file, certificates,
    /// secret key) resolve against it [default: the working directory]. Also PAYGATE_DATA_DIR.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Which database (for the commands that open one).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// Overrides `database.url` (e.g. to verify another database).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// The same options before the subcommand, and their environment variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TopArgs {
    /// TOML configuration file (defaults apply without one; `PAYGATE_*` variables override both).
    #[arg(long, env = "PAYGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory relative paths of the configuration resolve against [default: .].
    #[arg(long, env = "PAYGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides `database.url`.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// The options in force: the subcommand's, else the ones before it (or their variables).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

impl TopArgs {
    pub fn resolve(self, own: &ConfigArgs, database: Option<&DatabaseArgs>) -> Resolved {
        Resolved {
            config_file: own.config.clone().or(self.config),
            data_dir: own
                .data_dir
                .clone()
                .or(self.data_dir)
                .unwrap_or_else(|| PathBuf::from(".")),
            database_url: database
                .and_then(|d| d.database_url.clone())
                .or(self.database_url),
        }
    }
}
