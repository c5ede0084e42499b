//! The servers of a multi-host PostgreSQL URL (libpq's `h1:p1,h2:p2` with
//! `target_session_attrs`): which one the gateway uses, and finding the new primary after a
//! failover. sqlx 0.8 connects to one host, so the list is split here
//! ([`crate::config::parse_pg_url`]) into one set of connection options per host.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use sqlx::{
    ConnectOptions as _, Connection as _, PgConnection,
    postgres::{PgConnectOptions, PgPool},
};

use crate::config::{DatabaseConfig, TargetSession, parse_pg_url};
use crate::ledger::store::StorageError;

/// How long a search for the primary waits before it looks again when no host takes writes.
const SEARCH_PAUSE_MS: u64 = 250;

/// The hosts of the database URL, in the URL's order.
pub struct PgHosts {
    candidates: Vec<(String, PgConnectOptions)>,
    target: TargetSession,
    /// Longest wait for one host's connection and answer while searching.
    probe_timeout: Duration,
    /// The candidate the pool and the batch connection use now.
    current: AtomicUsize,
    /// A search for the primary is running (one at a time).
    searching: AtomicBool,
}

impl PgHosts {
    /// One set of options per host; `tune` adds the settings every connection gets. A URL that
    /// does not parse is refused with the reason, never with the URL (it may hold a password).
    pub fn from_config(
        config: &DatabaseConfig,
        tune: impl Fn(PgConnectOptions) -> PgConnectOptions,
    ) -> Result<PgHosts, StorageError> {
        let url = parse_pg_url(&config.url).map_err(StorageError::new)?;
        let mut candidates = Vec::with_capacity(url.hosts.len());
        for host in &url.hosts {
            let mut options = PgConnectOptions::from_str(&url.url_for(host))
                .map_err(|e| StorageError::new(format!("the database url did not parse: {e}")))?;
            if host.host.contains(':') {
                // An IPv6 address: sqlx keeps the URL's brackets, which no resolver takes.
                options = options.host(&host.host);
            }
            let name = if host.host.contains(':') {
                format!("[{}]:{}", host.host, host.port)
            } else {
                format!("{}:{}", host.host, host.port)
            };
            candidates.push((name, tune(options)));
        }
        Ok(PgHosts {
            candidates,
            target: url.target,
            probe_timeout: Duration::from_millis(config.acquire_timeout_ms.max(1)),
            current: AtomicUsize::new(0),
            searching: AtomicBool::new(false),
        })
    }

    pub fn read_write(&self) -> bool {
        self.target == TargetSession::ReadWrite
    }

    /// Goes through the hosts in order and settles on the first that fits the target (for
    /// read-write: `transaction_read_only` is `off`). The error names every host's reason.
    pub async fn find(&self) -> Result<PgConnectOptions, StorageError> {
        let mut reasons = Vec::new();
        for (i, (name, options)) in self.candidates.iter().enumerate() {
            match tokio::time::timeout(self.probe_timeout, probe(options, self.target)).await {
                Ok(Ok(())) => {
                    let before = self.current.swap(i, Ordering::Relaxed);
                    if before != i {
                        tracing::warn!(host = %name, "database: now using this host");
                    }
                    return Ok(options.clone());
                }
                Ok(Err(why)) => reasons.push(format!("{name}: {why}")),
                Err(_) => reasons.push(format!("{name}: no answer in {:?}", self.probe_timeout)),
            }
        }
        let what = if self.read_write() {
            "no host of the database url takes writes"
        } else {
            "no host of the database url answers"
        };
        Err(StorageError::unavailable(format!(
            "{what} ({})",
            reasons.join("; ")
        )))
    }

    /// After a connection-class failure: when the URL names several hosts, searches them in
    /// the background until one fits, then points the pool and the batch connection at it (new
    /// connections go there; broken ones are dropped as they fail). One search at a time.
    pub fn search_soon(
        self: &Arc<PgHosts>,
        pool: &PgPool,
        on_found: impl Fn(PgConnectOptions) + Send + 'static,
    ) {
        if self.candidates.len() < 2 || self.searching.swap(true, Ordering::AcqRel) {
            return;
        }
        let hosts = self.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            while !pool.is_closed() {
                match hosts.find().await {
                    Ok(options) => {
                        pool.set_connect_options(options.clone());
                        on_found(options);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = ?e, "database: still looking for the primary");
                        tokio::time::sleep(Duration::from_millis(SEARCH_PAUSE_MS)).await;
                    }
                }
            }
            hosts.searching.store(false, Ordering::Release);
        });
    }
}

async fn probe(options: &PgConnectOptions, target: TargetSession) -> Result<(), String> {
    let mut conn = options.connect().await.map_err(|e| e.to_string())?;
    let fits = session_fits(&mut conn, target).await;
    let _ = conn.close().await;
    match fits {
        Ok(true) => Ok(()),
        Ok(false) => Err("read-only (a standby or a demoted primary)".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether a session may serve the target: for read-write, `transaction_read_only` is `off`.
pub async fn session_fits(
    conn: &mut PgConnection,
    target: TargetSession,
) -> Result<bool, sqlx::Error> {
    match target {
        TargetSession::Any => Ok(true),
        TargetSession::ReadWrite => {
            let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
                .fetch_one(&mut *conn)
                .await?;
            Ok(read_only == "off")
        }
    }
}

/// The error of a connection refused because its session is read-only (retryable: the pool
/// tries again, and the storage looks for the primary).
pub fn read_only_session() -> sqlx::Error {
    sqlx::Error::Protocol(
        "the server is read-only (a standby or a demoted primary) and the url asks for read-write"
            .to_owned(),
    )
}
