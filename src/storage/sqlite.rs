//! SQLite back end: one file in WAL mode, `synchronous` from configuration (FULL by default: an
//! acknowledged posting survives power loss), foreign keys on, a busy timeout. A batch takes the
//! database's write lock first (a no-op UPDATE of the chain head) so that two processes on one
//! file serialise instead of failing a lock upgrade.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    SqliteConnection, SqlitePool,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};

use super::{AccountCache, Backend, Storage, migrate, put_cache, take_cache};
use crate::config::{DatabaseConfig, SqliteSynchronous as ConfigSynchronous};

type Db = sqlx::Sqlite;
type DbConn = SqliteConnection;
type DbRow = SqliteRow;
/// SQLite has no row locks: the write lock taken by [`lock_head`] covers the whole file.
const LOCK_SUFFIX: &str = "";
/// sqlx runs every statement of a text in one round trip to its SQLite worker thread; on a
/// small machine each round trip costs two thread wake-ups, so a batch sends few of them.
const STATEMENTS_PER_ROUND_TRIP: bool = true;
/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT_MS: u64 = 10_000;
/// Page cache per connection, in KiB. Larger is slower here: at the end of every write
/// transaction SQLite walks its page-cache hash table, and with 128 MiB that walk cost a third
/// of the batch throughput (`pcache1TruncateUnsafe` in `perf`).
const PAGE_CACHE_KIB: u32 = 16_384;
/// WAL frames after which a commit checkpoints (SQLite's default is 1,000). A spread batch
/// appends ~150 frames, mostly B-tree leaves that the next batches dirty again; a longer log
/// copies each such page once per checkpoint instead of once per ~7 batches (+25 % measured).
/// About 32 MiB of WAL with 4 KiB pages.
const WAL_AUTOCHECKPOINT_FRAMES: u32 = 8_192;
/// Prepared statements kept per connection (multi-row statements vary by row count).
const STATEMENT_CACHE_CAPACITY: usize = 1_024;

/// Opens the batch's transaction with the file's write lock (`BEGIN IMMEDIATE`, waiting up to
/// the busy timeout for another process) and reads the head, in one round trip.
async fn lock_head(conn: &mut DbConn) -> Result<ChainHead, StorageError> {
    let rows = sqlx::query(&format!("BEGIN IMMEDIATE; {HEAD_SELECT}"))
        .fetch_all(&mut *conn)
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| StorageError::new("chain head row is missing"))?;
    head_of(row)
}

include!("common.rs");
include!("profiles_sql.rs");
include!("documents_sql.rs");

/// Lock, load, apply, write and COMMIT in as few round trips as possible; then the cache
/// learns the batch's accounts.
async fn run_sqlite_batch(
    conn: &mut DbConn,
    needs: &BatchNeeds,
    apply: &mut super::ApplyFn<'_>,
    cache: &mut AccountCache,
) -> Result<(), StorageError> {
    let head = lock_head(conn).await?;
    let loaded = load_needs(conn, head, needs, cache).await?;
    let writes = apply(loaded);
    if writes.is_empty() && writes.head.is_none_or(|h| h == head) {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        return Ok(());
    }
    write_batch(conn, &writes, Some("COMMIT")).await?;
    cache.committed(&head, &writes.account_states);
    Ok(())
}

/// The SQLite [`Storage`].
pub struct SqliteStorage {
    /// Reads and the document store.
    pool: SqlitePool,
    /// The ledger's batches.
    writer: SqlitePool,
    /// Taken by a batch while it runs (a concurrent batch finds it empty and reads the rows).
    cache: std::sync::Mutex<AccountCache>,
}

impl SqliteStorage {
    pub async fn connect(config: &DatabaseConfig) -> Result<SqliteStorage, StorageError> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| StorageError::new(format!("sqlite url: {e}")))?;
        let file = options.get_filename().to_owned();
        if let Some(dir) = file.parent()
            && !dir.as_os_str().is_empty()
            && file != Path::new(":memory:")
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::new(format!("create {}: {e}", dir.display())))?;
        }
        let synchronous = match config.sqlite_synchronous {
            ConfigSynchronous::Full => SqliteSynchronous::Full,
            ConfigSynchronous::Normal => SqliteSynchronous::Normal,
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .foreign_keys(true)
            .statement_cache_capacity(STATEMENT_CACHE_CAPACITY)
            // Statement journals and temporary B-trees stay in memory, off the disk.
            .pragma("temp_store", "MEMORY")
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_FRAMES.to_string())
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(config.connections_max)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .connect_with(options.clone())
            .await?;
        // Batches run on one long-lived connection of their own: its page cache stays warm
        // (a connection that sees another one's commit in WAL mode drops its whole cache).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            // The batch itself checks every account, pending, hold and transaction it refers to,
            // under the write lock, before it writes; SQLite's foreign-key probes would repeat
            // that on random account pages at every insert (about a tenth of the throughput).
            // Every other connection keeps them on.
            .connect_with(options.clone().foreign_keys(false))
            .await?;
        let storage = SqliteStorage {
            pool,
            writer,
            cache: std::sync::Mutex::new(AccountCache::new(config.account_cache_entries_max)),
        };
        let mut conn = storage.pool.acquire().await?;
        migrate::run_sqlite(&mut conn).await?;
        Ok(storage)
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn execute_batch(
        &self,
        needs: &BatchNeeds,
        apply: &mut super::ApplyFn<'_>,
    ) -> Result<(), StorageError> {
        // The transaction is driven by hand so that BEGIN and COMMIT ride along with the
        // first and last statements; every failure path rolls back.
        let mut conn = self.writer.acquire().await?;
        let mut cache = take_cache(&self.cache);
        let result = run_sqlite_batch(&mut conn, needs, apply, &mut cache).await;
        if result.is_err() {
            // Whatever the database holds now, the cache may not match it.
            cache.clear();
            if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::warn!(error = %e, "rollback after a failed batch failed; dropping the connection");
                conn.detach();
            }
        }
        put_cache(&self.cache, cache);
        result
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

impl_ledger_reads!(SqliteStorage);
impl_document_store!(SqliteStorage);
impl_profile_store!(SqliteStorage);
