//! The embedded migrator: SQL files compiled into the binary, applied in order at start inside
//! one transaction, each recorded in `schema_migrations`. On PostgreSQL a transaction-scoped
//! advisory lock keeps two processes starting together from racing; on SQLite `BEGIN IMMEDIATE`
//! takes the file's write lock for the same purpose.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection, Row, SqliteConnection};

use super::StorageError;

/// (version, name, SQLite text, PostgreSQL text), in order. Never edit an applied file: add one.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("migrations/sqlite/0001_ledger.sql"),
        include_str!("migrations/postgres/0001_ledger.sql"),
    ),
    (
        2,
        "account_profiles",
        include_str!("migrations/sqlite/0002_account_profiles.sql"),
        include_str!("migrations/postgres/0002_account_profiles.sql"),
    ),
    (
        3,
        "documents_outbox",
        include_str!("migrations/sqlite/0003_documents_outbox.sql"),
        include_str!("migrations/postgres/0003_documents_outbox.sql"),
    ),
    (
        4,
        "account_row_tail",
        include_str!("migrations/sqlite/0004_account_row_tail.sql"),
        include_str!("migrations/postgres/0004_account_row_tail.sql"),
    ),
    (
        5,
        "document_transaction",
        include_str!("migrations/sqlite/0005_document_transaction.sql"),
        include_str!("migrations/postgres/0005_document_transaction.sql"),
    ),
    (
        6,
        "idempotency_observed",
        include_str!("migrations/sqlite/0006_idempotency_observed.sql"),
        include_str!("migrations/postgres/0006_idempotency_observed.sql"),
    ),
    (
        7,
        "audit_log",
        include_str!("migrations/sqlite/0007_audit_log.sql"),
        include_str!("migrations/postgres/0007_audit_log.sql"),
    ),
    (
        8,
        "journal_by_time",
        include_str!("migrations/sqlite/0008_journal_by_time.sql"),
        include_str!("migrations/postgres/0008_journal_by_time.sql"),
    ),
    (
        9,
        "idempotency_rowid",
        include_str!("migrations/sqlite/0009_idempotency_rowid.sql"),
        include_str!("migrations/postgres/0009_idempotency_rowid.sql"),
    ),
];

/// Key of the PostgreSQL advisory lock held while migrating ("paygate" in ASCII).
const ADVISORY_LOCK_KEY: i64 = 0x0070_6179_6761_7465;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A migration of the binary, by version and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
}

/// The migrations of the binary not applied to a database, in order.
pub(super) fn pending_of(applied: &[i64]) -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .filter(|(version, ..)| !applied.contains(version))
        .map(|(version, name, ..)| Migration {
            version: *version,
            name,
        })
        .collect()
}

/// Reads the applied versions: `$conn` is a connection or transaction of either back end.
macro_rules! applied_versions {
    ($conn:expr, $table_exists_sql:expr) => {{
        let exists: i64 = sqlx::query_scalar($table_exists_sql)
            .fetch_one(&mut *$conn)
            .await?;
        if exists == 0 {
            Vec::new()
        } else {
            sqlx::query("SELECT version FROM schema_migrations")
                .fetch_all(&mut *$conn)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("version"))
                .collect::<Result<Vec<i64>, _>>()?
        }
    }};
}

/// Applies `$sql` and records `$version` in `schema_migrations`.
macro_rules! apply_one {
    ($conn:expr, $sql:expr, $version:expr, $name:expr) => {{
        sqlx::raw_sql($sql).execute(&mut *$conn).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
        )
        .bind($version)
        .bind($name)
        .bind(now_ms())
        .execute(&mut *$conn)
        .await?;
    }};
}

const SQLITE_TABLE_EXISTS: &str =
    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
const POSTGRES_TABLE_EXISTS: &str = "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations' \
     AND schemaname = ANY (current_schemas(false))";

/// The migrations a SQLite database lacks (nothing is written).
pub async fn pending_sqlite(conn: &mut SqliteConnection) -> Result<Vec<Migration>, StorageError> {
    Ok(pending_of(&applied_versions!(conn, SQLITE_TABLE_EXISTS)))
}

/// The migrations a PostgreSQL database lacks (nothing is written).
pub async fn pending_postgres(conn: &mut PgConnection) -> Result<Vec<Migration>, StorageError> {
    Ok(pending_of(&applied_versions!(conn, POSTGRES_TABLE_EXISTS)))
}

/// Applies the pending migrations; returns them.
pub async fn run_sqlite(conn: &mut SqliteConnection) -> Result<Vec<Migration>, StorageError> {
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        sqlx::raw_sql(CREATE_TABLE).execute(&mut *conn).await?;
        let pending = pending_sqlite(&mut *conn).await?;
        for &Migration { version, name } in &pending {
            let sql = MIGRATIONS
                .iter()
                .find(|(v, ..)| *v == version)
                .map_or("", |(_, _, sqlite_sql, _)| *sqlite_sql);
            apply_one!(conn, sql, version, name);
            tracing::info!(version, name, "applied SQLite migration");
        }
        Ok::<_, StorageError>(pending)
    }
    .await;
    match result {
        Ok(pending) => {
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            Ok(pending)
        }
        Err(e) => {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}

/// Applies the pending migrations; returns them.
pub async fn run_postgres(conn: &mut PgConnection) -> Result<Vec<Migration>, StorageError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADVISORY_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await?;
    let pending = pending_of(&applied_versions!(tx, POSTGRES_TABLE_EXISTS));
    for &Migration { version, name } in &pending {
        let sql = MIGRATIONS
            .iter()
            .find(|(v, ..)| *v == version)
            .map_or("", |(.., pg_sql)| *pg_sql);
        apply_one!(tx, sql, version, name);
        tracing::info!(version, name, "applied PostgreSQL migration");
    }
    tx.commit().await?;
    Ok(pending)
}
