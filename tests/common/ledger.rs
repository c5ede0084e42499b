//! The ledger tests' fixtures: a migrated [`TestDb`] on either back end, and small builders of
//! accounts and postings. (Its `cny` takes minor units; the gateway helpers' takes a string.)

use std::sync::Arc;

use paygate::{
    config::LedgerConfig,
    ledger::{
        AccountId, BalanceConstraint, IdempotencyKey, Ledger, Metadata, NewAccount, NewEntry,
        NewTransaction, Side,
    },
    money::{Currency, Money},
    storage::{self, LedgerStore},
};
use sqlx::Connection;

pub use super::db::{Backend, FreshDatabase, database_config, postgres_available};

/// A fresh database, migrated, with its storage open. [`TestDb::cleanup`] closes the pool and
/// removes the database; a test that panics first leaves that to the drop of [`FreshDatabase`].
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub storage: Arc<dyn LedgerStore>,
    database: FreshDatabase,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let database = FreshDatabase::new(backend).await;
        let storage = storage::connect(&database_config(&database.url))
            .await
            .expect("connect and migrate");
        TestDb {
            backend,
            url: database.url.clone(),
            storage,
            database,
        }
    }

    /// Closes the pool and removes the database.
    pub async fn cleanup(self) {
        self.storage.close().await;
        self.database.remove().await;
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
        // Manual: tests advance it through deadlines instead of sleeping.
        paygate::clock::Clock::manual_from_now(),
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
