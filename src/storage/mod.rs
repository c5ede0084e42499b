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
        PackedMetadata,
        model::{Account, AccountId, Metadata},
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
/// table's own memory (every slot it has room for) plus each account's box, kind and packed
/// metadata ([`cached_bytes`]); when full every other account is dropped until it is down to
/// three quarters of the bound (emptied when that is not enough, its table kept unless the
/// table alone is past the bound), and it refills from the batches that follow.
#[derive(Debug, Default)]
pub struct AccountCache {
    valid_at_batches_committed: Option<u64>,
    /// Boxed: the table's slots stay small, so its spare capacity (and the moment a doubling
    /// holds two tables) costs little.
    accounts: HashMap<AccountId, Box<CachedAccount>>,
    bytes: usize,
    bytes_max: usize,
}

/// One cached account: the loaded account without its metadata, and the metadata packed into
/// one allocation (a map of a handful of pairs is eleven allocations and ~1 KiB; packed, a
/// third of that). A hit unpacks it, which allocates what cloning the map did.
#[derive(Debug)]
struct CachedAccount {
    /// Its `account.metadata` is empty; the metadata is `metadata`.
    bare: LoadedAccount,
    metadata: PackedMetadata,
}

impl CachedAccount {
    fn of(a: &LoadedAccount) -> CachedAccount {
        CachedAccount {
            bare: LoadedAccount {
                account: bare_account(&a.account),
                balance: a.balance,
                tail_entries: a.tail_entries,
            },
            metadata: PackedMetadata::pack(&a.account.metadata),
        }
    }

    /// As [`CachedAccount::of`], taking `a` (its kind moves, its map is packed and dropped).
    fn of_owned(mut a: LoadedAccount) -> CachedAccount {
        let metadata = PackedMetadata::pack(&std::mem::take(&mut a.account.metadata));
        CachedAccount { bare: a, metadata }
    }

    /// The account as loaded; `None` (a miss) if its metadata does not unpack (never).
    fn unpack(&self) -> Option<LoadedAccount> {
        let metadata = self.metadata.unpack()?;
        Some(LoadedAccount {
            account: Account {
                metadata,
                ..bare_account(&self.bare.account)
            },
            balance: self.bare.balance,
            tail_entries: self.bare.tail_entries,
        })
    }
}

/// `a` without its metadata.
fn bare_account(a: &Account) -> Account {
    Account {
        id: a.id,
        currency: a.currency,
        normal_side: a.normal_side,
        kind: a.kind.clone(),
        status: a.status,
        constraint: a.constraint,
        metadata: Metadata::new(),
        created_at_ms: a.created_at_ms,
    }
}

/// What one cached account owns, about: its box, its kind and its packed metadata (its slot is
/// the table's).
fn cached_bytes(a: &CachedAccount) -> usize {
    use crate::ledger::allocation_bytes;
    allocation_bytes(std::mem::size_of::<CachedAccount>())
        + allocation_bytes(a.bare.account.kind.len())
        + a.metadata.heap_bytes()
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

    /// The account as cached, if it is.
    pub fn get(&self, id: AccountId) -> Option<LoadedAccount> {
        self.accounts.get(&id)?.unpack()
    }

    /// The table's own memory.
    fn table_bytes(&self) -> usize {
        crate::ledger::table_bytes(&self.accounts)
    }

    /// Adds accounts read under the head [`AccountCache::validate`] was given (valid whatever
    /// the batch does next).
    pub fn insert_loaded(&mut self, loaded: &[LoadedAccount]) {
        let cached: Vec<CachedAccount> = loaded.iter().map(CachedAccount::of).collect();
        self.insert_all(cached);
    }

    /// After a commit that moved the head from `before` by one batch: the batch's accounts
    /// as it left them (taken, not copied: the batch is done with them).
    pub fn committed(&mut self, before: &ChainHead, changed: Vec<LoadedAccount>) {
        if self.valid_at_batches_committed != Some(before.batches_committed) {
            self.clear();
            return;
        }
        self.valid_at_batches_committed = Some(before.batches_committed + 1);
        let cached: Vec<CachedAccount> = changed.into_iter().map(CachedAccount::of_owned).collect();
        self.insert_all(cached);
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
            let freed = crate::ledger::drop_every_other(&mut self.accounts, |_, a| cached_bytes(a));
            self.bytes = self.bytes.saturating_sub(freed);
        }
        if needed(self) > self.bytes_max {
            self.empty();
        }
        tracing::debug!(
            accounts = self.accounts.len(),
            bytes = self.bytes + self.table_bytes(),
            bytes_max = self.bytes_max,
            "account cache made room"
        );
    }

    /// Inserts `accounts`.
    fn insert_all(&mut self, accounts: Vec<CachedAccount>) {
        let adding: usize = accounts.iter().map(cached_bytes).sum();
        self.make_room(adding);
        if adding > self.bytes_max {
            return;
        }
        for a in accounts {
            let bytes = cached_bytes(&a);
            if let Some(old) = self.accounts.insert(a.bare.account.id, Box::new(a)) {
                self.bytes = self.bytes.saturating_sub(cached_bytes(&old));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ledger::model::{AccountStatus, Balance, BalanceConstraint, Side},
        money::Currency,
    };

    fn account(id: u64, pairs: usize) -> LoadedAccount {
        let metadata = (0..pairs)
            .map(|i| (format!("key{i}"), "e0e3de00".repeat(8)))
            .collect();
        LoadedAccount {
            account: Account {
                id: AccountId(id),
                currency: Currency::CNY,
                normal_side: Side::Credit,
                kind: "CLASS_II".into(),
                status: AccountStatus::Active,
                constraint: BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor: 0 },
                metadata,
                created_at_ms: 1_796_684_831_012,
            },
            balance: Balance {
                posted_credits_minor: 100,
                ..Balance::default()
            },
            tail_entries: 3,
        }
    }

    fn head(batches_committed: u64) -> ChainHead {
        ChainHead {
            last_seq: 0,
            last_hash: [0; 32],
            next_account_id: 1,
            next_pending_id: 1,
            next_hold_id: 1,
            batches_committed,
            audit_seq: 0,
            audit_hash: [0; 32],
        }
    }

    #[test]
    fn a_cached_account_comes_back_with_its_metadata_and_balances() {
        let mut cache = AccountCache::new(1 << 20);
        cache.validate(&head(5));
        cache.insert_loaded(&[account(1, 5)]);
        cache.committed(&head(5), vec![account(2, 0)]);
        cache.validate(&head(6));

        let got = cache.get(AccountId(1)).expect("cached");
        assert_eq!(got.account, account(1, 5).account);
        assert_eq!(got.balance, account(1, 5).balance);
        assert_eq!(got.tail_entries, 3);
        assert_eq!(
            cache.get(AccountId(2)).map(|a| a.account),
            Some(account(2, 0).account)
        );

        cache.validate(&head(8));
        assert!(cache.get(AccountId(1)).is_none(), "someone else wrote");
    }

    #[test]
    fn an_account_with_five_long_metadata_pairs_costs_the_cache_about_600_bytes() {
        // As a map, the same account was ~1,400 bytes: its box, a B-tree leaf of eleven
        // slots (~540 bytes) and ten strings.
        let a = CachedAccount::of(&account(1, 5));
        assert!(
            (400..640).contains(&cached_bytes(&a)),
            "{}",
            cached_bytes(&a)
        );
    }
}
