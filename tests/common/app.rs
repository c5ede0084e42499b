//! `spawn_app(backend)`: a real gateway on an ephemeral port with its own PKI and a fresh
//! database on `backend`, and clients that speak to it over mutual TLS — exactly as a bank's
//! integration team would.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use paygate::{
    clock::Clock,
    config::{AccountScope, CallerConfig, Config},
    server::{Gateway, ReloadError, Reloader, ServeError},
    tls::{DevPkiLayout, generate_dev_pki},
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{
    db::{Backend, FreshDatabase},
    rpc::Accounts,
};

/// A certificate from the gateway's CA that maps to no configured caller.
pub const STRANGER: &str = "stranger";

pub struct TestApp {
    pub backend: Backend,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The listener of the networks' result notices, when `clearing.notices.enabled`.
    pub notices_addr: Option<SocketAddr>,
    pub pki: DevPkiLayout,
    pub config: Config,
    /// The gateway's clock: manual, starting at the wall clock's now (unless the test chose
    /// another). Tests advance it to pass expiries and TTLs instead of sleeping.
    pub clock: Clock,
    /// What SIGHUP calls in the binary.
    reloader: Reloader,
    dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
    /// The gateway's own runtime, for an app that can crash ([`spawn_app_crashable`]); `None`:
    /// the gateway runs on the test's runtime.
    runtime: Option<tokio::runtime::Runtime>,
    /// Whether the gateway runs (and restarts) on a runtime of its own.
    crashable: bool,
    /// Declared last: dropped after the server has been told to stop.
    database: FreshDatabase,
}

/// A gateway on the embedded defaults, with every sample caller of the development PKI, over a
/// fresh database on `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A gateway whose configuration `adjust` may change first (limits, callers …).
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(backend, Clock::manual_from_now(), adjust).await
}

/// A gateway on a clock of the test's choosing (e.g. a manual one set in the past, for data
/// that a command-line run on the system clock then finds a few days old).
pub async fn spawn_app_on(
    backend: Backend,
    clock: Clock,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    spawn(backend, clock, adjust, false).await
}

/// A gateway on its own runtime, so that [`TestApp::crash`] can stop it as a crash would.
pub async fn spawn_app_crashable(backend: Backend) -> TestApp {
    spawn_app_crashable_with(backend, |_| {}).await
}

/// [`spawn_app_crashable`] with a configuration `adjust` may change first.
pub async fn spawn_app_crashable_with(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    spawn(backend, Clock::manual_from_now(), adjust, true).await
}

/// A gateway being served: its addresses, its reloader and how to stop it.
struct Serving {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    notices_addr: Option<SocketAddr>,
    reloader: Reloader,
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), ServeError>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Binds and runs a gateway on `config` — on the test's runtime, or on a runtime of its own.
async fn serve(config: &Config, clock: &Clock, own_runtime: bool) -> Serving {
    let (config, clock) = (config.clone(), clock.clone());
    let (gateway, runtime) = if own_runtime {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the gateway's runtime");
        // Bound from a thread of its own: `block_on` takes the bind future as it is (the
        // compiler cannot prove it `Send` for `spawn`), and every task it starts lands on the
        // gateway's runtime.
        let on = runtime.handle().clone();
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(on.block_on(Gateway::bind_with_clock(config, clock)));
        });
        (rx.await.expect("the binding thread answers"), Some(runtime))
    } else {
        (Gateway::bind_with_clock(config, clock).await, None)
    };
    let gateway = gateway.expect("gateway binds");
    let (addr, admin_addr) = (
        gateway.local_addr(),
        gateway.admin_addr().expect("admin enabled"),
    );
    let notices_addr = gateway.notices_addr();
    let reloader = gateway.reloader();
    let (shutdown, rx) = oneshot::channel::<()>();
    let run = gateway.run(async {
        let _ = rx.await;
    });
    let handle = match &runtime {
        Some(runtime) => runtime.spawn(run),
        None => tokio::spawn(run),
    };
    Serving {
        addr,
        admin_addr,
        notices_addr,
        reloader,
        shutdown,
        handle,
        runtime,
    }
}

async fn spawn(
    backend: Backend,
    clock: Clock,
    adjust: impl FnOnce(&mut Config),
    own_runtime: bool,
) -> TestApp {
    let database = FreshDatabase::new(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = DevPkiLayout::new(dir.path().join("certs"));
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.listen = "127.0.0.1:0".parse().expect("addr");
    config.server.shutdown_grace_ms = 30_000;
    config.tls.server_cert = pki.server_cert();
    config.tls.server_key = pki.server_key();
    config.tls.client_ca = pki.ca_cert();
    config.tls.generate_dev_pki = false;
    config.tls.dev_pki_dir = pki.dir.clone();
    config.database.url = database.url.clone();
    config.secrets.key_file = dir.path().join("secret.key");
    adjust(&mut config);
    config.validate().expect("test config is valid");

    let mut names: Vec<&str> = config.callers.iter().map(|c| c.name.as_str()).collect();
    names.push(STRANGER);
    generate_dev_pki(&pki, "test CA", &names, false).expect("test PKI");

    let serving = serve(&config, &clock, own_runtime).await;
    TestApp {
        backend,
        addr: serving.addr,
        admin_addr: serving.admin_addr,
        notices_addr: serving.notices_addr,
        pki,
        config,
        clock,
        reloader: serving.reloader,
        dir,
        shutdown: Some(serving.shutdown),
        handle: Some(serving.handle),
        runtime: serving.runtime,
        crashable: own_runtime,
        database,
    }
}

/// A caller with only the given grants (and optional rate), for tests of the grant model.
pub fn caller(name: &str, grants: &[&str]) -> CallerConfig {
    CallerConfig {
        name: name.to_owned(),
        identities: vec![name.to_owned()],
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
        rate_per_s: None,
        burst: None,
        concurrent_calls_max: None,
        streams_max: None,
        account_scope: AccountScope::All,
    }
}

impl TestApp {
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Reloads the TLS files and the caller table of `config` while serving, as SIGHUP does.
    pub fn reload(&self, config: &Config) -> Result<(), ReloadError> {
        self.reloader.reload(config)
    }

    /// Client TLS trusting the gateway's CA, presenting `caller`'s certificate when given.
    pub fn client_tls(&self, caller: Option<&str>) -> ClientTlsConfig {
        client_tls(&self.pki, &self.pki, caller)
    }

    pub fn endpoint(&self) -> Endpoint {
        endpoint_at(self.addr)
    }

    /// A second gateway process on this one's database, configuration, PKI and clock (new
    /// ports): what a bank runs to scale out. It stops when dropped.
    pub async fn sibling(&self) -> Sibling {
        let serving = serve(&self.config, &self.clock, false).await;
        Sibling {
            addr: serving.addr,
            pki: self.pki.clone(),
            shutdown: Some(serving.shutdown),
            handle: serving.handle,
        }
    }

    /// An mTLS channel as `caller`.
    pub async fn channel(&self, caller: &str) -> Channel {
        self.try_channel(self.client_tls(Some(caller)))
            .await
            .expect("mTLS channel connects")
    }

    pub async fn try_channel(
        &self,
        tls: ClientTlsConfig,
    ) -> Result<Channel, tonic::transport::Error> {
        self.endpoint().tls_config(tls)?.connect().await
    }

    /// The admin listener's answer to `GET path`, as (status line, body).
    pub async fn admin_get(&self, path: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.admin_addr)
            .await
            .expect("admin connects");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        (
            head.lines().next().unwrap_or("").to_owned(),
            body.to_owned(),
        )
    }

    /// Resolves the shutdown future; returns the server's own result once it has drained.
    pub fn begin_shutdown(&mut self) -> JoinHandle<Result<(), ServeError>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.take().expect("server still running")
    }

    /// Stops the gateway (it drains what it accepted) and starts a new one on the same
    /// configuration, database and clock, on new ports: a restart. Drop the clients first.
    pub async fn restart(&mut self) {
        self.begin_shutdown()
            .await
            .expect("server task")
            .expect("the gateway stops cleanly");
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.serve_again().await;
    }

    /// Stops the gateway as a crash would — every task of it dropped where it stands, no
    /// drain, its database connections cut mid-transaction — and starts a new one on the same
    /// configuration, database and clock, on new ports. Only for [`spawn_app_crashable`].
    pub async fn crash(&mut self) {
        let runtime = self
            .runtime
            .take()
            .expect("a crash needs spawn_app_crashable");
        let shutdown = self.shutdown.take();
        self.handle.take();
        runtime.shutdown_background();
        drop(shutdown);
        self.serve_again().await;
    }

    async fn serve_again(&mut self) {
        let serving = serve(&self.config, &self.clock, self.crashable).await;
        self.addr = serving.addr;
        self.admin_addr = serving.admin_addr;
        self.notices_addr = serving.notices_addr;
        self.reloader = serving.reloader;
        self.shutdown = Some(serving.shutdown);
        self.handle = Some(serving.handle);
        self.runtime = serving.runtime;
    }
}

/// A gateway's gRPC endpoint, with the tests' connect and call timeouts.
fn endpoint_at(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
}

/// A second gateway on a [`TestApp`]'s database ([`TestApp::sibling`]).
pub struct Sibling {
    addr: SocketAddr,
    pki: DevPkiLayout,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl Sibling {
    /// An mTLS channel to this gateway as `caller`.
    pub async fn channel(&self, caller: &str) -> Channel {
        endpoint_at(self.addr)
            .tls_config(client_tls(&self.pki, &self.pki, Some(caller)))
            .expect("tls")
            .connect()
            .await
            .expect("mTLS channel connects")
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.abort();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Client TLS trusting `server_pki`'s CA and presenting a certificate from `client_pki`.
pub fn client_tls(
    server_pki: &DevPkiLayout,
    client_pki: &DevPkiLayout,
    caller: Option<&str>,
) -> ClientTlsConfig {
    let ca = std::fs::read(server_pki.ca_cert()).expect("ca");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(caller) = caller {
        let cert = std::fs::read(client_pki.client_cert(caller)).expect("client cert");
        let key = std::fs::read(client_pki.client_key(caller)).expect("client key");
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    tls
}

impl TestApp {
    /// An AccountService client as `caller`.
    pub async fn accounts(&self, caller: &str) -> Accounts {
        Accounts::new(self.channel(caller).await)
    }

    /// Runs `paygate ledger verify` on this app's database; returns (exit code, stdout+stderr).
    pub fn ledger_verify(&self) -> (Option<i32>, String) {
        self.paygate(&[
            "ledger",
            "verify",
            "--database-url",
            &self.config.database.url,
        ])
    }

    /// Runs the real `paygate` binary with `args` in the app's folder: its exit code and its
    /// output (stdout, then stderr).
    pub fn paygate(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paygate"))
            .args(args)
            .env_remove("PAYGATE_CONFIG")
            .current_dir(self.dir())
            .output()
            .expect("paygate runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}
