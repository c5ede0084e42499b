//! Shared fixtures of the ledger tests: a fresh database per test on either back end, and
//! small builders. In CI (`CI` set) or with `PAYGATE_TEST_PG=required`, a PostgreSQL that cannot
//! be reached FAILS the PostgreSQL tests; on a developer machine without one they say so loudly
//! and pass over it, so the suite runs with only the Rust toolchain.

#![allow(dead_code)]

use std::sync::Arc;

use paygate::{
    config::{DatabaseConfig, LedgerConfig, SqliteSynchronous},
    ledger::{
        AccountId, BalanceConstraint, IdempotencyKey, Ledger, Metadata, NewAccount, NewEntry,
        NewTransaction, Side,
    },
    money::{Currency, Money},
    storage::{self, LedgerStore},
};
use sqlx::Connection;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use (`PAYGATE_TEST_PG_URL` overrides).
pub fn pg_admin_url() -> String {
    std::env::var("PAYGATE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Whether the PostgreSQL half can run here (see the module doc for when its absence fails).
pub async fn postgres_available() -> bool {
    let required = std::env::var_os("CI").is_some()
        || std::env::var("PAYGATE_TEST_PG").as_deref() == Ok("required");
    let admin = pg_admin_url();
    match sqlx::PgConnection::connect(&admin).await {
        Ok(conn) => {
            conn.close().await.ok();
            true
        }
        Err(e) if required => {
            panic!("PostgreSQL at {admin} is required here (CI or PAYGATE_TEST_PG=required): {e}")
        }
        Err(e) => {
            // Written past the test harness's capture on purpose: a skip must be seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL at {admin} is unreachable ({e}); the PostgreSQL tests did not run. \
                 Start it or set PAYGATE_TEST_PG_URL; PAYGATE_TEST_PG=required makes this a failure."
            );
            false
        }
    }
}

/// A fresh, empty database that is removed by [`TestDb::cleanup`].
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub storage: Arc<dyn LedgerStore>,
    dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

pub fn database_config(url: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: url.to_owned(),
        connections_max: 8,
        acquire_timeout_ms: 10_000,
        sqlite_synchronous: SqliteSynchronous::Full,
        ..DatabaseConfig::default()
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let (url, dir, pg_name) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/nested/ledger.db", dir.path().display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("ledger_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} is required for this test (set PAYGATE_TEST_PG_URL): {e}")
                });
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                (with_database(&admin, &name), None, Some(name))
            }
        };
        let storage = storage::connect(&database_config(&url))
            .await
            .expect("connect and migrate");
        TestDb {
            backend,
            url,
            storage,
            dir,
            pg_name,
        }
    }

    /// Closes the pool and drops the PostgreSQL database (the SQLite tempdir goes with `self`).
    pub async fn cleanup(self) {
        self.storage.close().await;
        if let Some(name) = &self.pg_name {
            let admin = pg_admin_url();
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }

    /// Runs raw SQL against the database behind the ledger's back (tamper tests only).
    pub async fn exec_raw(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("raw sql");
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("open");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("raw sql");
            }
        }
    }
}

impl TestDb {
    /// Reads one integer straight from the database (to look at how rows are stored).
    pub async fn query_i64(&self, sql: &str) -> i64 {
        use sqlx::Row as _;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open");
                let row = sqlx::query(sql).fetch_one(&mut c).await.expect("query");
                row.try_get::<i64, _>(0).expect("an integer")
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("open");
                let row = sqlx::query(sql).fetch_one(&mut c).await.expect("query");
                row.try_get::<i64, _>(0).expect("an integer")
            }
        }
    }
}

pub fn ledger_config() -> LedgerConfig {
    LedgerConfig {
        expiry_sweep_interval_ms: 50,
        ..LedgerConfig::default()
    }
}

pub async fn start(db: &TestDb) -> Ledger {
    Ledger::start(
        db.storage.clone(),
        &ledger_config(),
        paygate::clock::Clock::system(),
    )
    .await
    .expect("ledger starts")
}

pub fn key() -> IdempotencyKey {
    IdempotencyKey::new("tests", uuid::Uuid::new_v4().to_string())
}

pub fn cny(minor: i64) -> Money {
    Money::new(Currency::CNY, minor)
}

pub fn leg(account: AccountId, side: Side, minor: i64) -> NewEntry {
    NewEntry {
        account,
        side,
        amount: cny(minor),
    }
}

pub fn tx(entries: Vec<NewEntry>) -> NewTransaction {
    NewTransaction {
        entries,
        metadata: Metadata::new(),
        counters: Vec::new(),
    }
}

pub fn transfer(from: AccountId, to: AccountId, minor: i64) -> NewTransaction {
    tx(vec![
        leg(from, Side::Debit, minor),
        leg(to, Side::Credit, minor),
    ])
}

/// A customer account (credit normal) that may not go below zero (plus `overdraft_minor`).
pub async fn customer(ledger: &Ledger, overdraft_minor: i64) -> AccountId {
    ledger
        .create_account(
            key(),
            NewAccount {
                currency: Currency::CNY,
                normal_side: Side::Credit,
                kind: "customer".into(),
                constraint: BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor },
                metadata: Metadata::new(),
                profile: None,
            },
        )
        .await
        .expect("customer account")
        .id
}

/// An unconstrained bank-internal account (debit normal): the source of test money.
pub async fn internal(ledger: &Ledger) -> AccountId {
    ledger
        .create_account(
            key(),
            NewAccount {
                currency: Currency::CNY,
                normal_side: Side::Debit,
                kind: "internal".into(),
                constraint: BalanceConstraint::None,
                metadata: Metadata::new(),
                profile: None,
            },
        )
        .await
        .expect("internal account")
        .id
}

pub async fn fund(ledger: &Ledger, source: AccountId, to: AccountId, minor: i64) {
    ledger
        .post(key(), transfer(source, to, minor))
        .await
        .expect("funding posts");
}

/// Book balance of an account on its normal side.
pub async fn posted(ledger: &Ledger, id: AccountId) -> i128 {
    let (a, b) = ledger.account(id).await.expect("account");
    b.posted_minor(a.normal_side)
}

/// Generates `#[tokio::test]`s running `async fn name(backend: Backend)` on both back ends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !super::support::postgres_available().await {
                        return;
                    }
                    super::$name(super::support::Backend::Postgres).await
                }
            )*
        }
    };
}
