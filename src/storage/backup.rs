//! An online backup of the SQLite database: `VACUUM INTO` a new file, a consistent snapshot
//! taken while the gateway keeps serving (it reads one transaction; writers wait at most for
//! its end). PostgreSQL is backed up with its own tools (pg_basebackup and WAL archiving for
//! point-in-time recovery, or pg_dump), never by paygate.

use std::path::Path;

use sqlx::{ConnectOptions as _, Connection as _};

use super::StorageError;
use crate::{config::DatabaseConfig, private_fs};

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backup {
    pub bytes: u64,
}

/// Writes a consistent copy of the SQLite database of `config` to `to` (a new file, readable
/// by the owner only). PostgreSQL, an in-memory database or an existing `to` are refused.
pub async fn backup_sqlite(config: &DatabaseConfig, to: &Path) -> Result<Backup, StorageError> {
    let url = config.url.as_str();
    if !url.starts_with("sqlite:") {
        return Err(StorageError::new(
            "paygate backup copies SQLite databases; back PostgreSQL up with pg_basebackup \
             (and WAL archiving for point-in-time recovery) or pg_dump",
        ));
    }
    if config.sqlite_file().is_none() {
        return Err(StorageError::new(
            "an in-memory database has nothing to back up",
        ));
    }
    if to.exists() {
        return Err(StorageError::new(format!(
            "{} exists: a backup is written to a new file",
            to.display()
        )));
    }
    let target = to
        .to_str()
        .ok_or_else(|| StorageError::new("the backup path is not valid UTF-8"))?;
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)
        .map_err(|e| StorageError::new(format!("sqlite url: {e}")))?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_millis(config.acquire_timeout_ms));
    let mut conn = options.connect().await?;
    // Created empty and private first, so the copy is never readable by others.
    private_fs::create_private_file_if_missing(to)
        .map_err(|e| StorageError::new(format!("create {}: {e}", to.display())))?;
    let result = sqlx::query("VACUUM INTO ?1")
        .bind(target)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(to);
        return Err(e.into());
    }
    let bytes = std::fs::metadata(to)
        .map_err(|e| StorageError::new(format!("read {}: {e}", to.display())))?
        .len();
    Ok(Backup { bytes })
}
