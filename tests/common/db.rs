//! A fresh, empty database per test on either back end.
//!
//! SQLite: a file in a temporary directory. PostgreSQL: a database created from the admin URL
//! (`PAYGATE_TEST_PG_URL`, default [`DEFAULT_PG_URL`]) and dropped when the test lets go of it —
//! also when the test panics. Its name carries the id of the test process
//! (`paygate_test_<pid>_<uuid>`), so a run that was killed before it could drop its databases
//! leaves nothing behind for long: the first PostgreSQL database of the next run drops every
//! `paygate_test_` database whose process no longer exists on this machine.
//!
//! In CI (`CI` set) or with `PAYGATE_TEST_PG=required`, a PostgreSQL that cannot be reached FAILS
//! the PostgreSQL tests; on a developer machine without one they say so loudly and pass over it,
//! so the suite runs with only the Rust toolchain.

use std::{
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
};

use paygate::config::{DatabaseConfig, SqliteSynchronous};
use sqlx::Connection;

/// Which database a test runs on.
pub use paygate::storage::Backend;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of every PostgreSQL database the tests create.
const PG_PREFIX: &str = "paygate_test_";

/// The PostgreSQL server the tests use (`PAYGATE_TEST_PG_URL` overrides).
pub fn pg_admin_url() -> String {
    std::env::var("PAYGATE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// Whether a PostgreSQL that cannot be reached must fail the tests (CI or
/// `PAYGATE_TEST_PG=required`) instead of skipping them.
pub fn postgres_required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("PAYGATE_TEST_PG").as_deref() == Ok("required")
}

/// `url` with its database name replaced by `name` (query string kept).
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
    let admin = pg_admin_url();
    match sqlx::PgConnection::connect(&admin).await {
        Ok(conn) => {
            conn.close().await.ok();
            true
        }
        Err(e) if postgres_required() => {
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

/// The pool settings of the tests (the same on both back ends).
pub fn database_config(url: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: url.to_owned(),
        connections_max: 8,
        acquire_timeout_ms: 10_000,
        sqlite_synchronous: SqliteSynchronous::Full,
        ..DatabaseConfig::default()
    }
}

/// A fresh, empty database (no schema yet: whoever connects first migrates it). Dropped with
/// `self`; [`FreshDatabase::remove`] does the same without blocking.
pub struct FreshDatabase {
    pub backend: Backend,
    pub url: String,
    dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl FreshDatabase {
    pub async fn new(backend: Backend) -> FreshDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                // A directory that does not exist yet: connecting creates it.
                let url = format!("sqlite://{}/nested/paygate.db", dir.path().display());
                FreshDatabase {
                    backend,
                    url,
                    dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} is required for this test (set PAYGATE_TEST_PG_URL): {e}")
                });
                drop_abandoned_databases(&mut conn).await;
                let name = format!(
                    "{PG_PREFIX}{}_{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                );
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                FreshDatabase {
                    backend,
                    url: with_database(&admin, &name),
                    dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The temporary directory of a SQLite database.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// Drops the PostgreSQL database now (the SQLite tempdir goes with `self`).
    pub async fn remove(mut self) {
        if let Some(name) = self.pg_name.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await
        {
            drop_database(&mut conn, &name).await;
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // does it. Never panics (this may run while a failed test unwinds).
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    drop_database(&mut conn, &name).await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// Drops a test database, ending whatever sessions still use it.
async fn drop_database(conn: &mut sqlx::PgConnection, name: &str) {
    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(conn)
        .await;
}

/// Once per test process: drops the `paygate_test_` databases of test processes that are gone
/// (killed before they could drop their own). Databases of live processes — another test run
/// on this machine — are left alone.
async fn drop_abandoned_databases(conn: &mut sqlx::PgConnection) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) || !Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)")
            .bind(PG_PREFIX)
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let Some(pid) = name
            .strip_prefix(PG_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            drop_database(conn, &name).await;
        }
    }
}
