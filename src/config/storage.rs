//! The database and the ledger's batching, expiry and retention.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user@host:port/db`.
    pub url: String,
    /// Connection pool size ceiling (reads). The ledger's batches have one more connection of
    /// their own, so a process opens at most `connections_max + 1`.
    pub connections_max: u32,
    /// How long to wait for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// SQLite `PRAGMA synchronous`: FULL (default; an acknowledged posting survives power loss) or NORMAL.
    pub sqlite_synchronous: SqliteSynchronous,
    /// Memory for the accounts a process keeps between its own batches, in MiB (used only
    /// while no other process has written; 0 turns the cache off). Counted from each account's
    /// size, its metadata included; past it the cache empties and refills.
    pub account_cache_mib: u32,
    /// Apply pending schema migrations when `serve` (or another command) opens the database.
    /// Off: `paygate migrate` applies them, and a start on a database with pending migrations
    /// is refused (`serve --no-migrate` turns it off for one start).
    pub migrate_on_start: bool,
    /// Serve although the database runs with settings under which an acknowledged payment can
    /// be lost (SQLite not in WAL or `synchronous` below FULL; PostgreSQL with `fsync`,
    /// `full_page_writes` or `synchronous_commit` off, or `synchronous_commit = local` while a
    /// synchronous standby is configured). Off: such a start is refused. On: logged as an error
    /// at every start and shown as `paygate_durability_override` in `/metrics`. Never in
    /// production.
    pub allow_durability_risk: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl SqliteSynchronous {
    pub fn pragma_value(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Most requests gathered into one database transaction (group commit).
    pub batch_size_max: usize,
    /// Requests waiting for a batch; beyond it submissions are refused with RESOURCE_EXHAUSTED.
    pub queue_depth_max: usize,
    /// How long idempotency keys (and their stored answers) are kept.
    pub idempotency_retention_days: u32,
    /// How often expired pending transfers and holds are voided.
    pub expiry_sweep_interval_ms: u64,
    /// Most expired items voided per sweep.
    pub expiry_sweep_items_max: u32,
    /// Longest timeout a two-phase pending transfer may ask for.
    pub pending_timeout_max_ms: u64,
    /// Longest timeout a hold may ask for (a hold without timeout lasts until released).
    pub hold_timeout_max_ms: u64,
    /// How often idempotency keys older than the retention are deleted.
    pub idempotency_purge_interval_ms: u64,
    /// How often one poller per process reads the chain head so that live readers (account
    /// watches, event subscriptions) see the batches other gateway processes commit on the same
    /// database; this process's own batches wake them at once.
    pub changes_poll_interval_ms: u64,
    /// Memory for the read cache (profiles, documents, balances and counters that requests
    /// validate against before their batch), in MiB; past it the cache empties and refills.
    pub read_cache_mib: u32,
}

impl DatabaseConfig {
    /// `account_cache_mib` in bytes.
    pub fn account_cache_bytes_max(&self) -> usize {
        usize::try_from(self.account_cache_mib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1 << 20)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/paygate.db".to_owned(),
            connections_max: 8,
            acquire_timeout_ms: 5_000,
            sqlite_synchronous: SqliteSynchronous::Full,
            account_cache_mib: 64,
            migrate_on_start: true,
            allow_durability_risk: false,
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            batch_size_max: 1_024,
            queue_depth_max: 65_536,
            idempotency_retention_days: 30,
            expiry_sweep_interval_ms: 1_000,
            expiry_sweep_items_max: 1_000,
            pending_timeout_max_ms: 7 * 24 * 3_600_000,
            hold_timeout_max_ms: 366 * 24 * 3_600_000,
            idempotency_purge_interval_ms: 3_600_000,
            changes_poll_interval_ms: 200,
            read_cache_mib: 64,
        }
    }
}
