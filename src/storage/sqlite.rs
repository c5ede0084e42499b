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

use super::sqlite_checkpoint::{self, Checkpointer};
use super::{
    AccountCache, Backend, BatchConnection, DurabilityRisk, LedgerStore, PoolConnections, migrate,
    put_cache, take_cache,
};
use crate::{
    config::{DatabaseConfig, SqliteSynchronous as ConfigSynchronous},
    private_fs,
};

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
/// Page cache per connection, in KiB. Small on purpose: at the end of every write
/// transaction that split a B-tree page, SQLite walks its whole page cache (a page renumbered
/// through the lock-byte page during the split leaves `pcache1Truncate` a key past the end of
/// the file; seen in `perf` and under `gdb`). With 128 MiB that walk cost a third of the batch
/// throughput, with 16 MiB a tenth; pages it no longer holds come from the operating system's
/// cache. Readers lose their cache at every commit in WAL mode anyway.
const PAGE_CACHE_KIB: u32 = 4_096;
/// WAL frames after which a commit checkpoints (SQLite's default is 1,000), on every connection
/// but the batches' while a [checkpointer](super::sqlite_checkpoint) runs: that one copies the
/// frames beside the batches and restarts the log at [`sqlite_checkpoint::RESTART_LOG_FRAMES`].
/// A spread batch appends ~150 frames, mostly B-tree leaves that later batches dirty again; a
/// longer log copies each such page once per checkpoint instead of once per few batches.
const WAL_AUTOCHECKPOINT_FRAMES: u32 = 32_768;
/// The batch connection's own checkpoint while a checkpointer runs: only a backstop, reached
/// if the checkpointer cannot keep up or stopped (1 GiB of log with 4 KiB pages). A batch that
/// checkpoints holds every waiting call until the copy and the file's sync are done: at 32,768
/// frames, on a database past 1 GB, 40–75 ms every ~2 s at 1,500 transfers/s, which made the
/// calls' p99 (docs/RELIABILITY.md, § Soak).
const WAL_AUTOCHECKPOINT_BACKSTOP_FRAMES: u32 = 262_144;
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
        .ok_or_else(|| StorageError::corrupt("chain head row is missing"))?;
    head_of(row)
}

include!("common.rs");
include!("common_load.rs");
include!("common_write.rs");
include!("common_read.rs");
include!("profiles_sql.rs");
include!("documents_sql.rs");
include!("audit_sql.rs");

/// Lock, load, apply, write and COMMIT in as few round trips as possible; then the cache
/// learns the batch's accounts.
async fn run_sqlite_batch(
    conn: &mut DbConn,
    needs: &BatchNeeds,
    apply: &mut crate::ledger::store::ApplyFn<'_>,
    cache: &mut AccountCache,
) -> Result<(), StorageError> {
    let head = lock_head(conn).await?;
    let loaded = load_needs(conn, head, needs, cache).await?;
    let mut writes = apply(loaded);
    if !writes.changes_anything(&head) {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        return Ok(());
    }
    write_batch(conn, &mut writes, Some("COMMIT")).await?;
    cache.committed(&head, std::mem::take(&mut writes.account_states));
    Ok(())
}

/// The SQLite adapter of [`LedgerStore`].
pub struct SqliteStorage {
    /// Reads and the document store.
    pool: SqlitePool,
    /// The ledger's batches: one connection held for the process's life (a pooled one would
    /// be pinged by the pool on every acquire and release, two extra round trips to its
    /// worker thread per batch).
    writer: BatchConnection<SqliteConnection>,
    /// Taken by a batch while it runs (a concurrent batch finds it empty and reads the rows).
    cache: std::sync::Mutex<AccountCache>,
    /// Copies the WAL into the database file beside the batches (none for an in-memory one).
    checkpointer: std::sync::Mutex<Option<Checkpointer>>,
}

impl SqliteStorage {
    pub async fn connect(config: &DatabaseConfig) -> Result<SqliteStorage, StorageError> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| StorageError::new(format!("sqlite url: {e}")))?;
        let file = options.get_filename().to_owned();
        let in_memory = config.url.contains(":memory:") || config.url.contains("mode=memory");
        let created = !in_memory && create_private_database(&file)?;
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
        // No ping before handing out a pooled connection: it is a round trip to the
        // connection's worker thread on every read, and an embedded connection does not go
        // stale the way a network one does (one that broke is closed by `settled`, below).
        let pool = SqlitePoolOptions::new()
            .max_connections(config.connections_max)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        // A file's log is copied by the checkpointer (below), the batch connection's own
        // checkpoint only a backstop; an in-memory database has no log to copy.
        let checkpointer_runs = !in_memory;
        // Batches run on one long-lived connection of their own: its page cache stays warm
        // (a connection that sees another one's commit in WAL mode drops its whole cache).
        // The batch itself checks every account, pending, hold and transaction it refers to,
        // under the write lock, before it writes; SQLite's foreign-key probes would repeat that
        // on random account pages at every insert (about a tenth of the throughput). Every
        // other connection keeps them on.
        let writer_autocheckpoint_frames = if checkpointer_runs {
            WAL_AUTOCHECKPOINT_BACKSTOP_FRAMES
        } else {
            WAL_AUTOCHECKPOINT_FRAMES
        };
        let writer_options = options.clone().foreign_keys(false).pragma(
            "wal_autocheckpoint",
            writer_autocheckpoint_frames.to_string(),
        );
        let mut conn = pool.acquire().await?;
        if config.migrate_on_start {
            migrate::run_sqlite(&mut conn).await?;
        }
        drop(conn);
        let writer = BatchConnection::open(writer_options).await?;
        let checkpointer = checkpointer_runs.then(|| {
            Checkpointer::start(options.clone(), sqlite_checkpoint::CHECKPOINT_INTERVAL_MS)
        });
        if created {
            // SQLite gives them the database file's mode already; this makes sure of it.
            for suffix in ["-wal", "-shm"] {
                let mut sidecar = file.clone().into_os_string();
                sidecar.push(suffix);
                let sidecar = std::path::PathBuf::from(sidecar);
                private_fs::make_private(&sidecar)
                    .map_err(|e| StorageError::new(format!("chmod {}: {e}", sidecar.display())))?;
            }
        }
        Ok(SqliteStorage {
            pool,
            writer,
            cache: std::sync::Mutex::new(AccountCache::new(config.account_cache_bytes_max())),
            checkpointer: std::sync::Mutex::new(checkpointer),
        })
    }
}

impl SqliteStorage {
    /// A pooled connection.
    async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Db>, StorageError> {
        Ok(self.pool.acquire().await?)
    }

    /// A pooled connection's answer; a connection that broke is closed, not pooled again.
    fn settled<T>(
        &self,
        conn: &mut sqlx::pool::PoolConnection<Db>,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(e) = &result
            && e.is_unavailable()
        {
            conn.close_on_drop();
        }
        result
    }
}

/// Creates the database file (`0600`) and its missing folders (`0700`) before SQLite opens it,
/// so that neither it nor its `-wal` and `-shm` files are ever readable by other users;
/// `true` when the file is new. An existing file is left as it is (a warning if others may
/// read it).
fn create_private_database(file: &Path) -> Result<bool, StorageError> {
    if file.as_os_str().is_empty() {
        return Ok(false);
    }
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
    {
        private_fs::create_private_dir_all(dir)
            .map_err(|e| StorageError::new(format!("create {}: {e}", dir.display())))?;
    }
    let created = private_fs::create_private_file_if_missing(file)
        .map_err(|e| StorageError::new(format!("create {}: {e}", file.display())))?;
    if !created {
        private_fs::warn_if_readable_by_others(file, "database file");
    }
    Ok(created)
}

#[async_trait]
impl LedgerStore for SqliteStorage {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn execute_batch(
        &self,
        needs: &BatchNeeds,
        apply: &mut crate::ledger::store::ApplyFn<'_>,
    ) -> Result<(), StorageError> {
        // The transaction is driven by hand so that BEGIN and COMMIT ride along with the
        // first and last statements; every failure path rolls back.
        // Put back once the batch committed or rolled back.
        let (mut writer, mut conn) = self.writer.take(self.pool.is_closed()).await?;
        let mut cache = take_cache(&self.cache);
        let result = run_sqlite_batch(&mut conn, needs, apply, &mut cache).await;
        match &result {
            Ok(()) => *writer = Some(conn),
            Err(_) => {
                // Whatever the database holds now, the cache may not match it.
                cache.clear();
                match sqlx::query("ROLLBACK").execute(&mut conn).await {
                    Ok(_) => *writer = Some(conn),
                    Err(e) => {
                        tracing::warn!(error = %e, "rollback after a failed batch failed; reconnecting");
                    }
                }
            }
        }
        put_cache(&self.cache, cache);
        result
    }

    fn pool_connections(&self) -> PoolConnections {
        PoolConnections {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
        }
    }

    async fn durability_risks(&self) -> Result<Vec<DurabilityRisk>, StorageError> {
        let mut conn = self.pool.acquire().await?;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let mut risks = Vec::new();
        if !journal.eq_ignore_ascii_case("wal") {
            risks.push(DurabilityRisk {
                setting: "sqlite.journal_mode",
                value: journal,
                why: "not WAL: the gateway's commits are not written as it assumes",
            });
        }
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
        if synchronous < 2 {
            risks.push(DurabilityRisk {
                setting: "sqlite.synchronous",
                value: ["OFF", "NORMAL"]
                    .get(usize::try_from(synchronous).unwrap_or(0))
                    .copied()
                    .unwrap_or("OFF")
                    .to_owned(),
                why: "below FULL: commits acknowledged just before a power loss are lost",
            });
        }
        Ok(risks)
    }

    async fn close(&self) {
        // The pool first: a batch that finds it closed does not reconnect.
        self.pool.close().await;
        self.writer.close().await;
        let checkpointer = match self.checkpointer.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop().await;
        }
    }
}

impl_ledger_reads!(SqliteStorage);
impl_document_reads!(SqliteStorage);
impl_account_reads!(SqliteStorage);
