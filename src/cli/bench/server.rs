//! The servers under load, each a process of its own: a fresh `paygate serve` started from this
//! very executable (or one already running, `--target`), and the bare tonic echo server that is
//! the floor. Both are stopped with SIGTERM when the bench lets go of them.

use std::{
    fs::File,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{config::Config, tls::DevPkiLayout};

/// How long a server may take from its start to answering SERVING.
const READY_WITHIN_S: u64 = 120;
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_WITHIN_S: u64 = 15;
/// Upper bound of one call (seeding or measured).
const CALL_TIMEOUT_S: u64 = 30;
/// `ServingStatus::Serving` of grpc.health.v1.
const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
/// A limit far beyond any load of the bench (Class II limits, barcode limits, caller rate).
const UNLIMITED_AMOUNT: &str = "100000000000.00";

/// Where and as whom the bench calls a server.
#[derive(Clone)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    pub tls: ClientTlsConfig,
    /// The server process, whose CPU and memory are read from `/proc`.
    pub pid: u32,
}

impl Target {
    /// A client TLS configuration trusting `ca`, presenting `cert`/`key`, expecting `server_name`.
    pub fn tls(
        ca: &Path,
        cert: &Path,
        key: &Path,
        server_name: &str,
    ) -> Result<ClientTlsConfig, String> {
        crate::cli::client_tls(ca, cert, key, server_name)
    }

    /// `connections` HTTP/2 connections to the server, each its own TCP connection and handshake.
    pub async fn connect(&self, connections: usize) -> Result<Vec<Channel>, String> {
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(
                self.endpoint()?
                    .connect()
                    .await
                    .map_err(|e| format!("cannot connect to {} over mTLS: {e:?}", self.addr))?,
            );
        }
        Ok(channels)
    }

    fn endpoint(&self) -> Result<Endpoint, String> {
        let endpoint = Endpoint::from_shared(format!("https://{}", self.addr))
            .map_err(|e| format!("{}: {e}", self.addr))?
            .tls_config(self.tls.clone())
            .map_err(|e| format!("{}: {e}", self.addr))?;
        Ok(endpoint
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(CALL_TIMEOUT_S)))
    }

    /// Waits until the server answers SERVING to Health/Check over mTLS; fails early when
    /// `child` exits first.
    pub async fn until_serving(&self, mut child: Option<&mut ServerChild>) -> Result<(), String> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < Duration::from_secs(READY_WITHIN_S) {
            if let Some(child) = child.as_deref_mut() {
                child.assert_running()?;
            }
            match self.endpoint()?.connect().await {
                Ok(channel) => match HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                {
                    Ok(answer) if answer.get_ref().status == SERVING => return Ok(()),
                    Ok(answer) => last = format!("status {}", answer.get_ref().status),
                    Err(status) => last = format!("{status:?}"),
                },
                Err(e) => last = format!("{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "{} did not answer SERVING within {READY_WITHIN_S} s (last: {last})",
            self.addr
        ))
    }
}

/// A server started by the bench: stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ServerChild {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ServerChild {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn assert_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited by itself ({status}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// SIGTERM, then waits for the process to drain and exit; SIGKILL after the grace.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = signal(self.pid(), "TERM");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(STOP_WITHIN_S) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} did not stop within {STOP_WITHIN_S} s: killed",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `SIG<name>` to `pid` (with kill(1): the gateway forbids unsafe code).
pub fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{name} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid}: {status}"))
    }
}

/// The last lines of a log file.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A loopback port free right now.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts this executable with `args` in `dir`, its output to `dir/<log>`, none of the caller's
/// `PAYGATE_*` or `RUST_LOG` settings in its environment (the file given is the configuration).
fn spawn_self(
    name: &'static str,
    dir: &Path,
    log: &str,
    args: &[String],
) -> Result<ServerChild, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let log = dir.join(log);
    let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PAYGATE_") {
            command.env_remove(key);
        }
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok(ServerChild { name, child, log })
}

/// How the bench's own `paygate serve` is configured.
pub struct ServeSettings<'a> {
    pub dir: &'a Path,
    pub pki: &'a DevPkiLayout,
    pub database_url: String,
    pub log_filter: String,
    /// Calls the bench keeps in flight at most (connections × streams).
    pub calls_in_flight: usize,
    pub streams_per_connection: usize,
}

/// The configuration of the bench's server: `base` (defaults or `--config`), on a free
/// loopback port, the bench's PKI and database, synchronous FULL, no admin listener, and the
/// limits a load far beyond a person's day needs lifted: Class II and barcode limits, payment
/// code lifetime, the `loadtest` caller's rate and concurrency.
pub fn serve_config(mut config: Config, s: &ServeSettings<'_>) -> Result<Config, String> {
    let port = free_port()?;
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], port));
    config.admin.enabled = false;
    config.tls.server_cert = s.pki.server_cert();
    config.tls.server_key = s.pki.server_key();
    config.tls.client_ca = s.pki.ca_cert();
    config.tls.crl_files = Vec::new();
    config.tls.generate_dev_pki = false;
    config.tls.dev_pki_dir = s.pki.dir.clone();
    config.database.url = s.database_url.clone();
    config.database.sqlite_synchronous = crate::config::SqliteSynchronous::Full;
    config.secrets.key_file = s.dir.join("secret.key");
    config.secrets.generate_if_missing = true;
    config.log.filter = s.log_filter.clone();
    let a = &mut config.accounts;
    for limit in [
        &mut a.class_ii_non_bound_inflow_per_day,
        &mut a.class_ii_non_bound_inflow_per_year,
        &mut a.class_ii_non_bound_outflow_per_day,
        &mut a.class_ii_non_bound_outflow_per_year,
        &mut config.cashier.dynamic_code_a_per_day,
        &mut config.cashier.dynamic_code_b_per_day,
        &mut config.cashier.dynamic_code_c_per_day,
    ] {
        UNLIMITED_AMOUNT.clone_into(limit);
    }
    config.cashier.payment_code_ttl_ms = 3_600_000;
    let l = &mut config.limits;
    l.caller_rate_per_s = l.caller_rate_per_s.max(1_000_000);
    l.caller_burst = l.caller_burst.max(1_000_000);
    l.caller_concurrent_calls_max = l.caller_concurrent_calls_max.max(s.calls_in_flight);
    l.inflight_calls_max = l.inflight_calls_max.max(s.calls_in_flight);
    let streams = u32::try_from(s.streams_per_connection).unwrap_or(u32::MAX);
    l.concurrent_streams_max = l.concurrent_streams_max.max(streams);
    if !config
        .callers
        .iter()
        .any(|c| c.identities.iter().any(|i| i == "loadtest"))
    {
        config.callers.push(crate::config::CallerConfig {
            name: "loadtest".to_owned(),
            identities: vec!["loadtest".to_owned()],
            grants: vec!["*".to_owned()],
            rate_per_s: None,
            burst: None,
            concurrent_calls_max: None,
            streams_max: None,
            account_scope: crate::config::AccountScope::All,
        });
    }
    for caller in config
        .callers
        .iter_mut()
        .filter(|c| c.identities.iter().any(|i| i == "loadtest"))
    {
        caller.rate_per_s = None;
        caller.burst = None;
        caller.concurrent_calls_max = None;
    }
    if !config.cashier.bank_callers.iter().any(|c| c == "loadtest") {
        config.cashier.bank_callers.push("loadtest".to_owned());
    }
    config
        .validate()
        .map_err(|e| format!("the bench server's configuration: {e}"))?;
    Ok(config)
}

/// Starts `paygate serve` on `config` (written to `dir/bench-server.toml`) and waits until it
/// answers SERVING; the child and how to call it as `loadtest`.
pub async fn start_paygate(
    config: &Config,
    dir: &Path,
    pki: &DevPkiLayout,
) -> Result<(ServerChild, Target), String> {
    let file = dir.join("bench-server.toml");
    let text =
        toml::to_string_pretty(config).map_err(|e| format!("the server's configuration: {e}"))?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    let args = [
        "serve".to_owned(),
        "--config".to_owned(),
        file.display().to_string(),
        "--data-dir".to_owned(),
        dir.display().to_string(),
        "--init".to_owned(),
    ];
    let addr = config.server.listen.to_string();
    start_serving("paygate serve", dir, "serve.log", &args, addr, pki).await
}

/// Starts this executable with `args` as server `name` on `addr` and waits until it answers
/// SERVING to the bench's `loadtest` certificate of `pki`.
async fn start_serving(
    name: &'static str,
    dir: &Path,
    log: &str,
    args: &[String],
    addr: String,
    pki: &DevPkiLayout,
) -> Result<(ServerChild, Target), String> {
    let mut child = spawn_self(name, dir, log, args)?;
    let target = Target {
        addr,
        tls: Target::tls(
            &pki.ca_cert(),
            &pki.client_cert("loadtest"),
            &pki.client_key("loadtest"),
            "localhost",
        )?,
        pid: child.pid(),
    };
    target.until_serving(Some(&mut child)).await?;
    Ok((child, target))
}

/// Starts the bare echo server (`paygate bench echo-server`) with the same certificates and
/// HTTP/2 stream limit, and waits until it answers SERVING.
pub async fn start_echo(
    dir: &Path,
    pki: &DevPkiLayout,
    streams_max: u32,
) -> Result<(ServerChild, Target), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let path = |p: PathBuf| p.display().to_string();
    let args = [
        "bench".to_owned(),
        "echo-server".to_owned(),
        "--listen".to_owned(),
        addr.to_string(),
        "--cert".to_owned(),
        path(pki.server_cert()),
        "--key".to_owned(),
        path(pki.server_key()),
        "--ca".to_owned(),
        path(pki.ca_cert()),
        "--streams-max".to_owned(),
        streams_max.to_string(),
    ];
    let addr = addr.to_string();
    start_serving(
        "paygate bench echo-server",
        dir,
        "echo.log",
        &args,
        addr,
        pki,
    )
    .await
}

/// A fresh PostgreSQL database for the run on the server of `admin_url`: (its name, its URL).
pub async fn fresh_pg_database(admin_url: &str, run: &str) -> Result<(String, String), String> {
    use sqlx::Connection;
    let name = format!("paygate_bench_{run}");
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("PostgreSQL at {admin_url}: {e}"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
    let _ = conn.close().await;
    Ok((name.clone(), with_database(admin_url, &name)))
}

/// Drops the run's PostgreSQL database (the server has stopped).
pub async fn drop_pg_database(admin_url: &str, name: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| format!("PostgreSQL at {admin_url}: {e}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("DROP DATABASE {name}: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_database_replaces_the_admin_database_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "paygate_bench_x"),
            "postgres://postgres@127.0.0.1:5432/paygate_bench_x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "b"),
            "postgres://u@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
    }

    #[test]
    fn the_bench_server_lifts_the_limits_a_load_run_would_hit() {
        let dir = Path::new("/tmp/bench");
        let pki = DevPkiLayout::new(dir.join("certs"));
        let settings = ServeSettings {
            dir,
            pki: &pki,
            database_url: "sqlite:///tmp/bench/paygate.db".to_owned(),
            log_filter: "info".to_owned(),
            calls_in_flight: 2048,
            streams_per_connection: 512,
        };
        let config = serve_config(Config::default(), &settings).expect("valid");
        assert_eq!(
            config.accounts.class_ii_non_bound_outflow_per_day,
            UNLIMITED_AMOUNT
        );
        assert_eq!(config.limits.caller_concurrent_calls_max, 2048);
        assert_eq!(config.limits.concurrent_streams_max, 512);
        assert!(
            config
                .callers
                .iter()
                .any(|c| c.name == "loadtest" && c.grants == ["*"])
        );
        assert_eq!(config.tls.client_ca, pki.ca_cert());
        assert!(!config.admin.enabled);
    }
}
