//! The SQLite (embedded default, WAL) and PostgreSQL adapters of the ledger's storage port
//! ([`crate::ledger::store`]), chosen by the database URL. Both run the same embedded
//! migrations at start (`schema_migrations`). This module imports the ledger; the ledger never
//! imports it.

use std::{collections::HashMap, sync::Arc};

pub use crate::ledger::store::{
    Backend, DurabilityRisk, LedgerStore, PoolConnections, StorageError,
};
use crate::{
    config::DatabaseConfig,
    ledger::{
        model::AccountId,
        store::{ChainHead, LoadedAccount},
    },
};
pub use backup::{Backup, backup_sqlite};

mod backup;
mod migrate;
mod pg_hosts;

pub use migrate::Migration;
pub mod postgres;
pub mod sqlite;
mod sqlite_checkpoint;

/// Most bind parameters in one statement (SQLite's default ceiling is 32,766, PostgreSQL's 65,535).
pub const BIND_PARAMS_MAX: usize = 16_000;

/// The accounts a process saw at the end of its last committed batch, keyed by the head's
/// `batches_committed` after that batch. A batch that finds the head unmoved takes its accounts
/// from here and loads only the rest; any other head empties it. Bounded by `bytes_max`: its
/// table's own memory (every slot it has room for) plus each account's box and metadata
/// ([`loaded_bytes`]); when full every other account is dropped until it is down to three
/// quarters of the bound (emptied when that is not enough, its table kept unless the table
/// alone is past the bound), and it refills from the batches that follow.
#[derive(Debug, Default)]
pub struct AccountCache {
    valid_at_batches_committed: Option<u64>,
    /// Boxed: the table's slots stay small, so its spare capacity (and the moment a doubling
    /// holds two tables) costs little.
    accounts: HashMap<AccountId, Box<LoadedAccount>>,
    bytes: usize,
    bytes_max: usize,
}

/// What one cached account owns, about: its box and its strings (its slot is the table's).
pub fn loaded_bytes(a: &LoadedAccount) -> usize {
    const ALLOCATION_OVERHEAD_BYTES: usize = 16;
    ALLOCATION_OVERHEAD_BYTES
        + std::mem::size_of::<LoadedAccount>()
        + a.account.kind.len()
        + a.account
            .metadata
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2 * std::mem::size_of::<String>() + 16)
            .sum::<usize>()
}

impl AccountCache {
    pub fn new(bytes_max: usize) -> AccountCache {
        AccountCache {
            valid_at_batches_committed: None,
            accounts: HashMap::new(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Called under the head lock: keeps the cache only if nobody wrote since it was filled.
    /// Either way it is valid as of this head from here on.
    pub fn validate(&mut self, head: &ChainHead) {
        if self.valid_at_batches_committed != Some(head.batches_committed) {
            self.clear();
            self.valid_at_batches_committed = Some(head.batches_committed);
        }
    }

    pub fn get(&self, id: AccountId) -> Option<&LoadedAccount> {
        self.accounts.get(&id).map(|a| &**a)
    }

    /// The table's own memory.
    fn table_bytes(&self) -> usize {
        crate::ledger::table_bytes(&self.accounts)
    }

    /// Adds accounts read under the head [`AccountCache::validate`] was given (valid whatever
    /// the batch does next).
    pub fn insert_loaded(&mut self, loaded: &[LoadedAccount]) {
        self.insert_all(
            loaded.iter().cloned(),
            loaded.iter().map(loaded_bytes).sum(),
        );
    }

    /// After a commit that moved the head from `before` by one batch: the batch's accounts
    /// as it left them (taken, not copied: the batch is done with them).
    pub fn committed(&mut self, before: &ChainHead, changed: Vec<LoadedAccount>) {
        if self.valid_at_batches_committed != Some(before.batches_committed) {
            self.clear();
            return;
        }
        self.valid_at_batches_committed = Some(before.batches_committed + 1);
        let adding = changed.iter().map(loaded_bytes).sum();
        self.insert_all(changed.into_iter(), adding);
    }

    pub fn clear(&mut self) {
        self.valid_at_batches_committed = None;
        self.empty();
    }

    /// Drops every account. The table keeps its memory (refilling it allocates nothing new)
    /// unless it alone is past the bound (it just doubled).
    fn empty(&mut self) {
        self.accounts.clear();
        self.bytes = 0;
        if self.table_bytes() > self.bytes_max {
            self.accounts = HashMap::new();
        }
    }

    /// Makes room for `adding` more bytes when they would take it past the bound: drops every
    /// other account until it is down to three quarters of it (the batches that follow re-read
    /// only those they use, a few at a time), or empties it when that is not enough.
    fn make_room(&mut self, adding: usize) {
        let needed =
            |cache: &AccountCache| cache.bytes.saturating_add(adding) + cache.table_bytes();
        if needed(self) <= self.bytes_max {
            return;
        }
        let target = self.bytes_max / 4 * 3;
        for _ in 0..crate::ledger::EVICTION_ROUNDS_MAX {
            if self.accounts.is_empty() || needed(self) <= target {
                break;
            }
            let freed = crate::ledger::drop_every_other(&mut self.accounts, |_, a| loaded_bytes(a));
            self.bytes = self.bytes.saturating_sub(freed);
        }
        if needed(self) > self.bytes_max {
            self.empty();
        }
    }

    /// Inserts `accounts`, which own `adding` bytes ([`loaded_bytes`]) in all.
    fn insert_all(&mut self, accounts: impl Iterator<Item = LoadedAccount>, adding: usize) {
        self.make_room(adding);
        if adding > self.bytes_max {
            return;
        }
        for a in accounts {
            let bytes = loaded_bytes(&a);
            if let Some(old) = self.accounts.insert(a.account.id, Box::new(a)) {
                self.bytes = self.bytes.saturating_sub(loaded_bytes(&old));
            }
            self.bytes += bytes;
        }
        if self.bytes + self.table_bytes() > self.bytes_max {
            // The table outgrew what was left: the next batches refill.
            self.empty();
        }
        debug_assert!(self.bytes + self.table_bytes() <= self.bytes_max);
    }
}

/// The ledger batches' own connection, held for the process's life (never queued behind reads
/// for a pooled one). A batch takes it out and puts it back only once it ended cleanly: if the
/// batch's future is dropped half way, or the batch fails, the connection goes with it (closing
/// it rolls back) and the next batch connects afresh.
struct BatchConnection<C: sqlx::Connection> {
    /// `None` while a batch has it, or after a failure.
    slot: tokio::sync::Mutex<Option<C>>,
    /// How it (re)connects; replaced when the database moves to another host (a failover).
    options: Arc<std::sync::RwLock<C::Options>>,
}

impl<C: sqlx::Connection> BatchConnection<C> {
    async fn open(options: C::Options) -> Result<BatchConnection<C>, StorageError> {
        use sqlx::ConnectOptions as _;
        let conn = options.connect().await?;
        Ok(BatchConnection {
            slot: tokio::sync::Mutex::new(Some(conn)),
            options: Arc::new(std::sync::RwLock::new(options)),
        })
    }

    /// The connection for one batch, with the slot held (batches run one at a time) so that the
    /// batch can put it back; an error when the storage is closed.
    async fn take(
        &self,
        closed: bool,
    ) -> Result<(tokio::sync::MutexGuard<'_, Option<C>>, C), StorageError> {
        use sqlx::ConnectOptions as _;
        let mut slot = self.slot.lock().await;
        if closed {
            return Err(StorageError::new("storage is closed"));
        }
        let conn = match slot.take() {
            Some(conn) => conn,
            None => self.options().connect().await?,
        };
        Ok((slot, conn))
    }

    /// The options a new connection is opened with.
    fn options(&self) -> C::Options {
        match self.options.read() {
            Ok(options) => options.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Where the next connection goes (the one open now, if any, stays until it fails).
    fn options_handle(&self) -> Arc<std::sync::RwLock<C::Options>> {
        self.options.clone()
    }

    async fn close(&self) {
        if let Some(conn) = self.slot.lock().await.take()
            && let Err(e) = conn.close().await
        {
            tracing::warn!(error = %e, "closing the batch connection failed");
        }
    }
}

/// Takes the process's cache out for one batch (an empty one if another batch has it).
fn take_cache(slot: &std::sync::Mutex<AccountCache>) -> AccountCache {
    match slot.lock() {
        Ok(mut guard) => {
            let bytes_max = guard.bytes_max;
            std::mem::replace(&mut *guard, AccountCache::new(bytes_max))
        }
        Err(_) => AccountCache::default(),
    }
}

/// Puts a batch's cache back.
fn put_cache(slot: &std::sync::Mutex<AccountCache>, cache: AccountCache) {
    if let Ok(mut guard) = slot.lock() {
        *guard = cache;
    }
}

/// Connects by URL (`sqlite://path/file.db`, creating file and parent directory, or
/// `postgres://…`) and applies the migrations.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn LedgerStore>, StorageError> {
    let url = config.url.as_str();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStorage::connect(config).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStorage::connect(config).await?))
    } else {
        Err(StorageError::new(
            "database url must start with sqlite: or postgres:",
        ))
    }
}

/// The migrations of this binary that the database of `config` lacks, in order; with `apply`,
/// applies them first (in one transaction) and returns what it applied. One connection, no pool;
/// a SQLite file that does not exist is not created.
pub async fn migrations(
    config: &DatabaseConfig,
    apply: bool,
) -> Result<Vec<Migration>, StorageError> {
    use sqlx::{ConnectOptions as _, Connection as _};
    let url = config.url.as_str();
    if url.starts_with("sqlite:") {
        if !apply && config.sqlite_file().is_some_and(|file| !file.exists()) {
            return Ok(migrate::pending_of(&[]));
        }
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)
            .map_err(|e| StorageError::new(format!("sqlite url: {e}")))?
            .create_if_missing(false)
            .busy_timeout(std::time::Duration::from_millis(config.acquire_timeout_ms));
        let mut conn = options.connect().await?;
        let result = if apply {
            migrate::run_sqlite(&mut conn).await
        } else {
            migrate::pending_sqlite(&mut conn).await
        };
        let _ = conn.close().await;
        result
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // The first host that fits the URL's target (with a host list: the primary).
        let options = pg_hosts::PgHosts::from_config(config, |o| o)?
            .find()
            .await?;
        let mut conn = options.connect().await?;
        let result = if apply {
            migrate::run_postgres(&mut conn).await
        } else {
            migrate::pending_postgres(&mut conn).await
        };
        let _ = conn.close().await;
        result
    } else {
        Err(StorageError::new(
            "database url must start with sqlite: or postgres:",
        ))
    }
}
