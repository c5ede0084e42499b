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

pub async fn run_sqlite(conn: &mut SqliteConnection) -> Result<(), StorageError> {
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        sqlx::raw_sql(CREATE_TABLE).execute(&mut *conn).await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>("version"))
            .collect::<Result<_, _>>()?;
        for (version, name, sqlite_sql, _) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(sqlite_sql).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            )
            .bind(version)
            .bind(*name)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
            tracing::info!(version, name, "applied SQLite migration");
        }
        Ok::<(), StorageError>(())
    }
    .await;
    match result {
        Ok(()) => {
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}

pub async fn run_postgres(conn: &mut PgConnection) -> Result<(), StorageError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADVISORY_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    for (version, name, _, pg_sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        sqlx::raw_sql(pg_sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(*name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tracing::info!(version, name, "applied PostgreSQL migration");
    }
    tx.commit().await?;
    Ok(())
}
