//! `paygate migrate [--dry-run]`: the schema migrations this binary holds that the database
//! lacks, listed, then applied in one transaction (unless `--dry-run`).

use std::process::ExitCode;

use crate::{config::DatabaseConfig, storage};

pub async fn run(database: &DatabaseConfig, dry_run: bool) -> ExitCode {
    let pending = match storage::migrations(database, false).await {
        Ok(pending) => pending,
        Err(e) => return failed(&e),
    };
    if pending.is_empty() {
        println!("the database is up to date: no pending migration");
        return ExitCode::SUCCESS;
    }
    println!("pending migrations:");
    for m in &pending {
        println!("  {:04}_{}", m.version, m.name);
    }
    if dry_run {
        println!("dry run: nothing applied");
        return ExitCode::SUCCESS;
    }
    match storage::migrations(database, true).await {
        Ok(applied) => {
            println!("applied {}", crate::server::describe(&applied));
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

fn failed(e: &storage::StorageError) -> ExitCode {
    eprintln!("paygate migrate: {}", e.detail());
    ExitCode::FAILURE
}
