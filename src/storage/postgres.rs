//! PostgreSQL back end for production. A batch locks the chain-head row (`SELECT … FOR UPDATE`),
//! which serialises batches across gateway processes, then loads and locks the accounts it
//! touches in id order; every load happens after the head lock, so no process acts on stale
//! balances.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions, PgRow},
};

use super::{
    AccountCache, Backend, BatchConnection, DurabilityRisk, LedgerStore, PoolConnections, migrate,
    pg_hosts::{self, PgHosts},
    put_cache, take_cache,
};
use crate::config::{DatabaseConfig, TargetSession};

type Db = sqlx::Postgres;
type DbConn = PgConnection;
type DbRow = PgRow;
const LOCK_SUFFIX: &str = " FOR UPDATE";
/// PostgreSQL's extended protocol takes one statement per round trip.
const STATEMENTS_PER_ROUND_TRIP: bool = false;
/// Prepared statements kept per connection (multi-row statements vary by row count).
const STATEMENT_CACHE_CAPACITY: usize = 1_024;

async fn lock_head(conn: &mut DbConn) -> Result<ChainHead, StorageError> {
    let row = sqlx::query(&format!("{HEAD_SELECT} FOR UPDATE"))
        .fetch_one(&mut *conn)
        .await?;
    head_of(&row)
}

include!("common.rs");
include!("common_load.rs");
include!("common_write.rs");
include!("common_read.rs");
include!("profiles_sql.rs");
include!("documents_sql.rs");
include!("audit_sql.rs");

/// One whole batch on an open transaction: lock, load, apply, write.
/// Returns what the cache learns once the transaction commits: the head the batch started from
/// and its accounts as it left them (`None`: nothing was written).
async fn run_batch_on(
    conn: &mut DbConn,
    needs: &BatchNeeds,
    apply: &mut crate::ledger::store::ApplyFn<'_>,
    cache: &mut AccountCache,
) -> Result<Option<(ChainHead, Vec<LoadedAccount>)>, StorageError> {
    let head = lock_head(conn).await?;
    let loaded = load_needs(conn, head, needs, cache).await?;
    let mut writes = apply(loaded);
    if !writes.changes_anything(&head) {
        return Ok(None);
    }
    write_batch(conn, &mut writes, None).await?;
    Ok(Some((head, writes.account_states)))
}

/// The PostgreSQL adapter of [`LedgerStore`].
pub struct PgStorage {
    /// Reads and the document store.
    pool: PgPool,
    /// The ledger's batches: one connection of their own, so a batch never queues behind reads
    /// for a pooled connection (under a read-heavy load, such as the accrual run's many shards
    /// reading side by side, it waited behind every one of them).
    writer: BatchConnection<PgConnection>,
    /// Taken by a batch while it runs (a concurrent batch finds it empty and reads the rows).
    cache: std::sync::Mutex<AccountCache>,
    /// The URL's hosts (one, or libpq's list) and the one in use.
    hosts: std::sync::Arc<PgHosts>,
}

/// The settings every connection gets.
fn tuned(options: PgConnectOptions) -> PgConnectOptions {
    options
        .statement_cache_capacity(STATEMENT_CACHE_CAPACITY)
        // No JIT: the gateway's statements are short and run thousands of times a second.
        // On a large journal the planner's estimate for the account read (its journal-tail
        // subqueries) passes `jit_above_cost`, and PostgreSQL then compiled that statement
        // with LLVM on every execution: ~450 ms of CPU per batch, the accrual of 1,000,000
        // holders down from thousands of holders/s to ~130.
        .options([("jit", "off")])
}

impl PgStorage {
    pub async fn connect(config: &DatabaseConfig) -> Result<PgStorage, StorageError> {
        let hosts = std::sync::Arc::new(PgHosts::from_config(config, tuned)?);
        // The first host that fits (read-write: the primary); the error names each host's reason.
        let options = hosts.find().await?;
        let target = if hosts.read_write() {
            TargetSession::ReadWrite
        } else {
            TargetSession::Any
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.connections_max)
            .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
            // A pooled connection never lands on a standby: the pool tries again (until its
            // acquire timeout) while the storage looks for the primary.
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if pg_hosts::session_fits(conn, target).await? {
                        Ok(())
                    } else {
                        Err(pg_hosts::read_only_session())
                    }
                })
            })
            .connect_with(options.clone())
            .await?;
        let writer = BatchConnection::open(options).await?;
        let storage = PgStorage {
            pool,
            writer,
            cache: std::sync::Mutex::new(AccountCache::new(config.account_cache_bytes_max())),
            hosts,
        };
        let mut conn = storage.pool.acquire().await?;
        if config.migrate_on_start {
            migrate::run_postgres(&mut conn).await?;
        }
        Ok(storage)
    }

    /// A connection-class failure (the server went away, or it is read-only now): with several
    /// hosts, look for the primary in the background and move new connections there.
    fn lost_server(&self) {
        let writer_options = self.writer.options_handle();
        self.hosts.search_soon(&self.pool, move |options| {
            if let Ok(mut slot) = writer_options.write() {
                *slot = options;
            }
        });
    }

    /// A pooled connection (its failure starts the search for the primary).
    async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Db>, StorageError> {
        self.pool.acquire().await.map_err(|e| {
            let e = StorageError::from(e);
            if e.is_unavailable() {
                self.lost_server();
            }
            e
        })
    }

    /// A pooled connection's answer. On a connection-class failure (lost server, or `25006`: a
    /// demoted primary's read-only session) the connection is closed, not returned to the
    /// pool, so the next call connects afresh, and the search for the primary starts.
    fn settled<T>(
        &self,
        conn: &mut sqlx::pool::PoolConnection<Db>,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(e) = &result
            && e.is_unavailable()
        {
            conn.close_on_drop();
            self.lost_server();
        }
        result
    }
}
#[async_trait]
impl LedgerStore for PgStorage {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn execute_batch(
        &self,
        needs: &BatchNeeds,
        apply: &mut crate::ledger::store::ApplyFn<'_>,
    ) -> Result<(), StorageError> {
        // Put back only once the batch committed.
        let (mut writer, mut conn) = self.writer.take(self.pool.is_closed()).await?;
        let mut cache = take_cache(&self.cache);
        let result = async {
            let mut tx = conn.begin().await?;
            let learned = run_batch_on(&mut tx, needs, apply, &mut cache).await?;
            tx.commit().await?;
            Ok::<_, StorageError>(learned)
        }
        .await;
        let result = match result {
            Ok(learned) => {
                if let Some((head, accounts)) = learned {
                    cache.committed(&head, accounts);
                }
                *writer = Some(conn);
                Ok(())
            }
            // Whatever the database holds now, the cache may not match it. The connection is
            // dropped (closed) here: the next batch connects afresh, to the primary found by
            // then if this one lost its server or went read-only (`25006`).
            Err(e) => {
                cache.clear();
                if e.is_unavailable() {
                    self.lost_server();
                }
                Err(e)
            }
        };
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
        let mut conn = self.acquire().await?;
        let mut setting = async |name: &str| -> Result<String, StorageError> {
            Ok(sqlx::query_scalar(&format!("SHOW {name}"))
                .fetch_one(&mut *conn)
                .await?)
        };
        let fsync = setting("fsync").await?;
        let full_page_writes = setting("full_page_writes").await?;
        let synchronous_commit = setting("synchronous_commit").await?;
        let standbys = setting("synchronous_standby_names").await?;
        let mut risks = Vec::new();
        if fsync == "off" {
            risks.push(DurabilityRisk {
                setting: "postgresql.fsync",
                value: fsync,
                why: "off: a crash of the server's machine can lose or corrupt committed data",
            });
        }
        if full_page_writes == "off" {
            risks.push(DurabilityRisk {
                setting: "postgresql.full_page_writes",
                value: full_page_writes,
                why: "off: a crash mid-write can leave torn pages that recovery cannot repair",
            });
        }
        let standby = !standbys.trim().is_empty();
        if synchronous_commit == "off" || (standby && synchronous_commit == "local") {
            risks.push(DurabilityRisk {
                setting: "postgresql.synchronous_commit",
                value: synchronous_commit,
                why: if standby {
                    "commits are acknowledged before the synchronous standby has them: a failover loses them"
                } else {
                    "off: commits acknowledged just before a server crash are lost"
                },
            });
        }
        Ok(risks)
    }

    async fn close(&self) {
        // The pool first: a batch that finds it closed does not reconnect.
        self.pool.close().await;
        self.writer.close().await;
    }
}

impl_ledger_reads!(PgStorage);
impl_document_reads!(PgStorage);
impl_account_reads!(PgStorage);
