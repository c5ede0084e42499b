//! `paygate audit …`: the hash-chained audit log of mutating calls (`src/ledger/audit.rs`).

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use super::{ConfigArgs, DatabaseArgs};
use crate::{
    config::Config,
    ledger::{
        audit::verify_audit,
        store::{LedgerStore, SCAN_PAGE_ROWS_MAX, StorageError},
    },
    storage,
};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit chain against the chain head; exit non-zero at the first edited,
    /// missing, reordered or truncated record, naming its sequence.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Write the audit log as JSON lines (one record a line, in sequence order), for a SIEM.
    Export {
        /// Only the records after this sequence (a SIEM's last one).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: u64,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

impl AuditCommand {
    /// The shared options this subcommand was given.
    pub fn options(&self) -> (&ConfigArgs, Option<&DatabaseArgs>) {
        match self {
            AuditCommand::Verify { config, database }
            | AuditCommand::Export {
                config, database, ..
            } => (config, Some(database)),
        }
    }
}

pub async fn run(cmd: AuditCommand, config: &Config) -> ExitCode {
    let storage = match storage::connect(&config.database).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = ?e, "cannot open the database");
            eprintln!("audit: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match cmd {
        AuditCommand::Verify { .. } => match verify_audit(storage.as_ref()).await {
            Ok(report) => {
                println!("{report}");
                if report.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, "audit verify failed");
                eprintln!("audit verify: {e}");
                ExitCode::from(2)
            }
        },
        AuditCommand::Export { after, out, .. } => {
            match export(storage.as_ref(), after, out.as_deref()).await {
                Ok(count) => {
                    eprintln!("audit export: {count} records");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("audit export: {e}");
                    ExitCode::from(2)
                }
            }
        }
    };
    storage.close().await;
    code
}

/// Streams the records after `after` page by page as JSON lines; returns how many.
async fn export(store: &dyn LedgerStore, after: u64, out: Option<&Path>) -> Result<u64, String> {
    let sink: Box<dyn Write + Send> = match out {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let mut sink = BufWriter::new(sink);
    let mut after = after;
    let mut count = 0u64;
    loop {
        let page =
            store
                .audit_page(after, SCAN_PAGE_ROWS_MAX)
                .await
                .map_err(|e: StorageError| {
                    tracing::error!(error = ?e, "audit export failed");
                    e.to_string()
                })?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            serde_json::to_writer(&mut sink, row).map_err(|e| e.to_string())?;
            sink.write_all(b"\n").map_err(|e| e.to_string())?;
            count += 1;
        }
    }
    sink.flush().map_err(|e| e.to_string())?;
    Ok(count)
}
