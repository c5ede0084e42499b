//! What the benches share: settings from the environment, and a scratch PostgreSQL database
//! created on a server for one run and dropped after it (the server's own databases are not
//! written).

use std::str::FromStr;

use sqlx::Connection;

/// An environment variable parsed, or `default`.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh database on `PAYGATE_BENCH_PG_URL` (default
/// `postgres://postgres@127.0.0.1:5432/test`), named `{prefix}_{uuid}`.
pub struct PgScratch {
    admin: sqlx::PgConnection,
    name: String,
    /// The scratch database's URL.
    pub url: String,
}

impl PgScratch {
    #[allow(dead_code)] // the yields bench creates through `create_from`
    pub async fn create(prefix: &str) -> PgScratch {
        PgScratch::create_from(prefix, None).await
    }

    /// A fresh database, empty or (with `template`) a copy of the database of that name.
    pub async fn create_from(prefix: &str, template: Option<&str>) -> PgScratch {
        let admin_url = admin_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL reachable");
        let from = template.map_or(String::new(), |t| format!(" TEMPLATE {t}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {name}{from}"))
            .execute(&mut admin)
            .await
            .expect("create bench database");
        let url = match admin_url.rsplit_once('/') {
            Some((root, _)) => format!("{root}/{name}"),
            None => admin_url.clone(),
        };
        PgScratch { admin, name, url }
    }

    /// Drops the database (its connections are closed by force).
    pub async fn drop(mut self) {
        let _ = sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut self.admin)
        .await;
    }
}

fn admin_url() -> String {
    env_or(
        "PAYGATE_BENCH_PG_URL",
        "postgres://postgres@127.0.0.1:5432/test".to_owned(),
    )
}

/// Whether a database of this name exists on the bench's PostgreSQL server.
#[allow(dead_code)] // only the yields bench keeps seeded databases
pub async fn pg_database_exists(name: &str) -> bool {
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL reachable");
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("pg_database")
        > 0
}

/// Copies the database at `url` (no connection may be open on it) to a new database `name`.
#[allow(dead_code)] // only the yields bench keeps seeded databases
pub async fn pg_copy_database(url: &str, name: &str) {
    let from = url.rsplit_once('/').map_or(url, |(_, db)| db);
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL reachable");
    sqlx::raw_sql(&format!("CREATE DATABASE {name} TEMPLATE {from}"))
        .execute(&mut admin)
        .await
        .expect("copy the seeded database");
}

/// Runs `verify` over the whole ledger, prints how long it took, and stops the bench when the
/// ledger is not clean.
pub async fn verify_clean(label: &str, store: &dyn paygate::storage::LedgerStore) {
    let started = std::time::Instant::now();
    let report = paygate::ledger::verify(store).await.expect("verify");
    println!(
        "{label}: verify {} in {:.2} s",
        if report.is_clean() { "clean" } else { "BROKEN" },
        started.elapsed().as_secs_f64()
    );
    assert!(report.is_clean(), "{report}");
}

/// The benches' runtime: two worker threads, as many as the machine's cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The machine's cores, for the bench's first line.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

/// A valid resident ID number (GB 11643-1999 check character), distinct for each `n` below
/// 10,000,000: region 110101, born 1950-01-01 plus `n / 1000` days, sequence `n % 1000`.
#[allow(dead_code)] // the ledger bench opens no personal accounts
pub fn resident_id(n: u64) -> String {
    const WEIGHTS: [u64; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    assert!(n < 10_000_000, "resident_id takes n below 10,000,000");
    let born = time::macros::date!(1950 - 01 - 01) + time::Duration::days((n / 1000) as i64);
    let body = format!(
        "110101{:04}{:02}{:02}{:03}",
        born.year(),
        u8::from(born.month()),
        born.day(),
        n % 1000
    );
    let sum: u64 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u64::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    format!("{body}{}", char::from(check))
}
