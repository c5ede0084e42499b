//! What a start may create in the data directory. The first `serve` in an empty data directory
//! on the built-in configuration (no config file) creates the development PKI, the secret key
//! and the SQLite database, and says so at WARN. Anything else that would create one of them —
//! a configuration file naming files that are missing, or a data directory that already holds
//! some of the gateway's files but not all — is refused unless `--init` is given, so that a
//! start from the wrong folder or with a mistyped path never silently begins a new ledger.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Whether `serve` may go on; `Err` says why not and what to do.
pub fn check_start(
    config: &Config,
    data_dir: &Path,
    config_file_given: bool,
    init: bool,
) -> Result<(), String> {
    let shown = absolute(data_dir);
    if !data_dir.is_dir() {
        if !init {
            return Err(format!(
                "data directory {} does not exist (pass --init to create it)",
                shown.display()
            ));
        }
        crate::private_fs::create_private_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", shown.display()))?;
    }
    let files = config.created_on_start();
    let missing: Vec<String> = files
        .iter()
        .filter(|(_, _, exists)| !exists)
        .map(|(what, path, _)| format!("{what} {}", path.display()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let fresh = files.iter().all(|(_, _, exists)| !exists);
    if init || (fresh && !config_file_given) {
        tracing::warn!(
            data_dir = %shown.display(),
            creating = %missing.join(", "),
            "initialising the data directory"
        );
        return Ok(());
    }
    let why = if fresh {
        "the configuration file names them"
    } else {
        "the data directory holds the gateway's other files"
    };
    Err(format!(
        "missing in data directory {}: {}; refusing to create them because {why} (pass --init \
         to create them, or --data-dir to point at the existing ones)",
        shown.display(),
        missing.join(", ")
    ))
}

/// A command that reads an existing database: refuses a SQLite file that does not exist
/// (opening it would create an empty one).
pub fn require_database(config: &Config, data_dir: &Path) -> Result<(), String> {
    match config.database.sqlite_file() {
        Some(file) if !file.exists() => Err(format!(
            "no database at {} (data directory {}); `paygate serve` creates it on first start",
            file.display(),
            absolute(data_dir).display()
        )),
        _ => Ok(()),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
