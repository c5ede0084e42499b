//! The gateway as a library: [`Gateway::bind`] opens everything (TLS material, listeners) and
//! [`Gateway::run`] serves until the shutdown future resolves, then drains in-flight calls.
//! `main` and the tests start it the same way.

mod durability;
mod reload;
mod sample;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use futures::{FutureExt, future::Shared};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::transport::{Server, server::Router};
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

pub use self::reload::{ReloadError, Reloader};
use self::{durability::check_durability, sample::GatewaySampler};
use crate::{
    account::{AccountError, AccountService, CallSettler},
    admin,
    cashier::{CashierError, CashierService},
    clearing::{notice::NoticeKeys, routing::Clearing},
    clock::Clock,
    config::{Config, LimitsConfig},
    credit::{CreditError, CreditService},
    eod::{EndOfDay, operations::Operations},
    grpc::{
        account::AccountApi,
        cashier::CashierApi,
        closing::Closing,
        connection::ConnectionCallsLayer,
        credit::CreditApi,
        gate::{GateLayer, GateState},
        operations::OperationsApi,
        pb::{
            self, account_service_server::AccountServiceServer,
            cashier_service_server::CashierServiceServer,
            credit_service_server::CreditServiceServer,
            operations_service_server::OperationsServiceServer,
            yield_service_server::YieldServiceServer,
        },
        yields::YieldApi,
    },
    ledger::{Ledger, LedgerError},
    notices::NoticeDesk,
    secrets::{SecretError, Secrets},
    storage::{self, LedgerStore, StorageError},
    telemetry::{self, Metrics},
    tls::{self, AcceptLimits, ServerTls, TlsError},
    yields::{YieldError, YieldService},
};

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("admin listener: {0}")]
    Admin(std::io::Error),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// With the cause (a start's failure is logged, never answered to a caller): the URL
    /// that did not parse (never the URL itself), the hosts that refused and why.
    #[error("database: {}", .0.detail())]
    Storage(#[from] StorageError),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("account service: {0}")]
    Account(#[from] AccountError),
    #[error("cashier: {0}")]
    Cashier(#[from] CashierError),
    #[error("yield service: {0}")]
    Yield(#[from] YieldError),
    #[error("credit service: {0}")]
    Credit(#[from] CreditError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "the database lacks {0}; database.migrate_on_start is off: run `paygate migrate` first"
    )]
    PendingMigrations(String),
    #[error(
        "the database can lose an acknowledged payment: {0}; fix the database's settings (or set database.allow_durability_risk, never in production)"
    )]
    DurabilityRisk(String),
}

/// The bound listener of the networks' result notices, its TLS and the networks' keys.
struct Notices {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    keys: NoticeKeys,
}

/// A gateway whose listeners are bound and whose TLS material is loaded, ready to serve.
pub struct Gateway {
    config: Config,
    tls: ServerTls,
    gate: Arc<GateState>,
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    notices: Option<Notices>,
    metrics: Metrics,
    store: Arc<dyn LedgerStore>,
    ledger: Ledger,
    accounts: AccountService,
    cashier: CashierService,
    yields: YieldService,
    credit: CreditService,
}

impl Gateway {
    /// Loads TLS (creating the development PKI on first start when configured to), and binds the
    /// gRPC and admin listeners. Port 0 picks a free port; see [`Gateway::local_addr`].
    pub async fn bind(config: Config) -> Result<Gateway, ServeError> {
        let clock = config.clock.clock()?;
        if !clock.is_system() {
            tracing::warn!(
                clock_start = %config.clock.start,
                "clock.start is set: a rehearsal clock, not the system's (never in production)"
            );
        }
        Gateway::bind_with_clock(config, clock).await
    }

    /// [`Gateway::bind`] with a given clock: tests pass a manual one and advance it instead of
    /// sleeping through expiries and TTLs.
    pub async fn bind_with_clock(config: Config, clock: Clock) -> Result<Gateway, ServeError> {
        if !config.database.migrate_on_start {
            let pending = storage::migrations(&config.database, false).await?;
            if !pending.is_empty() {
                return Err(ServeError::PendingMigrations(describe(&pending)));
            }
        }
        let client_names: Vec<&str> = config.callers.iter().map(|c| c.name.as_str()).collect();
        if tls::ensure_dev_pki(&config.tls, &client_names)? {
            tracing::warn!(
                dir = %config.tls.dev_pki_dir.display(),
                "created a development PKI (never use it in production; see certs/README.md)"
            );
        }
        let tls = ServerTls::load(&config.tls)?;
        let secrets =
            Secrets::load_or_create(&config.secrets.key_file, config.secrets.generate_if_missing)?;
        let notices = bind_notices(&config, &secrets).await?;
        // The one place an adapter of the ledger's storage port is chosen.
        let store = storage::connect(&config.database).await?;
        let metrics = Metrics::new();
        check_durability(&config.database, store.as_ref(), &metrics).await?;
        let ledger = Ledger::start_observed(
            store.clone(),
            &config.ledger,
            clock.clone(),
            metrics.ledger.clone(),
        )
        .await?;
        let clearing = Clearing::from_config(&config.clearing, &clock)
            .map_err(|e| ServeError::Account(AccountError::invalid("clearing", e)))?;
        let accounts = AccountService::start(
            ledger.clone(),
            Arc::new(clearing),
            secrets,
            &config.accounts,
        )
        .await?;
        let yields = YieldService::start(ledger.clone(), accounts.clone(), &config.yields).await?;
        let credit = CreditService::start(ledger.clone(), accounts.clone(), &config.credit)?;
        let cashier = CashierService::start(
            accounts.clone(),
            ledger.clone(),
            yields.clone(),
            credit.clone(),
            &config.cashier,
        )?;
        let listener = bind(config.server.listen).await?;
        let admin_listener = if config.admin.enabled {
            Some(bind(config.admin.listen).await?)
        } else {
            None
        };
        let gate = Arc::new(GateState::new(
            &config.callers,
            &config.limits,
            metrics.clone(),
        ));
        Ok(Gateway {
            config,
            tls,
            gate,
            listener,
            admin_listener,
            notices,
            metrics,
            store,
            ledger,
            accounts,
            cashier,
            yields,
            credit,
        })
    }

    /// The bound gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener
            .local_addr()
            .unwrap_or(self.config.server.listen)
    }

    /// What SIGHUP calls: reloads the TLS material and the caller table while serving.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            tls: self.tls.clone(),
            gate: self.gate.clone(),
            limits: self.config.limits.clone(),
        }
    }

    /// The bound admin (metrics, liveness) address, when enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The bound address of the networks' result notices, when enabled.
    pub fn notices_addr(&self) -> Option<SocketAddr> {
        self.notices
            .as_ref()
            .and_then(|n| n.listener.local_addr().ok())
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight calls finish for up
    /// to `server.shutdown_grace_ms`, and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Gateway {
            config,
            tls,
            gate,
            listener,
            admin_listener,
            notices,
            metrics,
            store,
            ledger,
            accounts,
            cashier,
            yields,
            credit,
        } = self;
        let limits = &config.limits;
        let message_size_max = limits.message_size_max_bytes;
        let (shutdown, stopping) = broadcast_shutdown(shutdown);

        let (health, health_service) = tonic_health::server::health_reporter();
        set_paygate_serving(&health).await;
        // Each reflection version lists everything served: paygate, health, and both
        // reflection versions (its own is added by the builder).
        let reflection_v1 = reflection()
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .build_v1()?;
        let reflection_v1alpha = reflection()
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        // Closes unpaid orders at their expiry; it stops when the ledger shuts down.
        let expiry_sweeper = cashier.spawn_expiry_sweeper();
        // Settles the clearing calls no network answered, from their records: on every start,
        // it resumes what a previous run left unfinished. The networks' result notices settle
        // them sooner, through the same settlers.
        let settlers: Arc<dyn CallSettler> = Arc::new(crate::account::Settlers(vec![
            Arc::new(cashier.clone()),
            Arc::new(credit.clone()),
        ]));
        let recovery = accounts.spawn_recovery(settlers.clone());
        let notices_addr = notices.as_ref().and_then(|n| n.listener.local_addr().ok());
        let notices_task = notices.map(
            |Notices {
                 listener,
                 tls,
                 keys,
             }| {
                let desk = NoticeDesk::new(
                    accounts.clone(),
                    settlers,
                    keys,
                    metrics.clone(),
                    &config.clearing.notices,
                );
                tokio::spawn(crate::notices::serve(
                    listener,
                    tls,
                    Arc::new(desk),
                    shutdown.clone(),
                ))
            },
        );
        // Closes each business date (日切): yield accrual and sweep, credit interest, each
        // network's reconciliation and settlement, as their due times pass; resumes on every
        // start.
        let end_of_day = config.eod.enabled.then(|| {
            EndOfDay::new(
                ledger.clone(),
                accounts.clone(),
                yields.clone(),
                (credit.clone(), cashier.clone()),
                &config.eod,
            )
            .spawn()
        });

        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        let admin_task = admin_listener.map(|listener| {
            let sampler = Arc::new(GatewaySampler::new(ledger.clone(), store.clone()));
            tokio::spawn(admin::serve(
                listener,
                metrics.clone(),
                sampler,
                shutdown.clone(),
            ))
        });

        let grpc = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let admin = admin_addr.map_or_else(|| "off".to_owned(), |a| a.to_string());
        let notices = notices_addr.map_or_else(|| "off".to_owned(), |a| a.to_string());
        let database = telemetry::database_url_for_logs(&config.database.url);
        tracing::info!(%grpc, %admin, %notices, %database, "paygate serving gRPC over mutual TLS");

        let signal = drain_signal(shutdown.clone(), health.clone());
        let router = grpc_server(limits, gate)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let closing = Closing::new(stopping.clone());
        let operations = Operations::new(ledger.clone(), accounts.clone(), cashier.clone());
        let serve = add_paygate_services(
            router,
            accounts,
            cashier.clone(),
            (yields, credit, operations),
            message_size_max,
            closing,
        )
        .serve_with_incoming_shutdown(
            tls::incoming(
                listener,
                tls,
                accept_limits(limits),
                metrics.tls_handshake_failures.clone(),
            ),
            signal,
        );

        let result = serve_within_grace(serve, stopping, config.server.shutdown_grace_ms).await;
        join_admin(admin_task).await;
        // The notices in hand settle before the ledger closes.
        if let Some(task) = notices_task
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "notice listener task failed");
        }
        // Every call has ended: finish the queued ledger batches, then close the database.
        expiry_sweeper.abort();
        recovery.abort();
        if let Some(task) = end_of_day {
            task.abort();
        }
        ledger.shutdown().await;
        store.close().await;
        tracing::info!("paygate stopped");
        result
    }
}

/// The caller's shutdown future, shareable between the gRPC and admin listeners, and a watch
/// that turns true once it has resolved (the grace period counts from then).
fn broadcast_shutdown(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (
    Shared<impl Future<Output = ()> + Send + 'static>,
    watch::Receiver<bool>,
) {
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let shutdown = shutdown
        .then(move |()| async move {
            let _ = stopping_tx.send(true);
        })
        .shared();
    (shutdown, stopping_rx)
}

/// Reports the paygate services as serving.
async fn set_paygate_serving(health: &HealthReporter) {
    health
        .set_serving::<AccountServiceServer<AccountApi>>()
        .await;
    health
        .set_serving::<CashierServiceServer<CashierApi>>()
        .await;
    health.set_serving::<YieldServiceServer<YieldApi>>().await;
    health.set_serving::<CreditServiceServer<CreditApi>>().await;
    health
        .set_serving::<OperationsServiceServer<OperationsApi>>()
        .await;
}

/// Resolves when `shutdown` does, after reporting the paygate services as not serving; the gRPC
/// server then stops accepting and drains.
async fn drain_signal(shutdown: impl Future<Output = ()>, health: HealthReporter) {
    shutdown.await;
    tracing::info!("shutdown requested; draining in-flight calls");
    health
        .set_not_serving::<AccountServiceServer<AccountApi>>()
        .await;
    health
        .set_not_serving::<CashierServiceServer<CashierApi>>()
        .await;
    health
        .set_not_serving::<YieldServiceServer<YieldApi>>()
        .await;
    health
        .set_not_serving::<CreditServiceServer<CreditApi>>()
        .await;
    health
        .set_not_serving::<OperationsServiceServer<OperationsApi>>()
        .await;
}

/// The gRPC server with the configured limits, the front door's gate, and each call counted on
/// its connection. TLS is accepted before it ([`tls::incoming`]).
fn grpc_server(
    limits: &LimitsConfig,
    gate: Arc<GateState>,
) -> Server<Stack<ConnectionCallsLayer, Stack<GateLayer, Identity>>> {
    Server::builder()
        // Call deadlines are the gate's (grpc/deadline.rs): DEADLINE_EXCEEDED with an ErrorInfo.
        .max_concurrent_streams(limits.concurrent_streams_max)
        .http2_keepalive_interval(Some(Duration::from_millis(limits.keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_millis(limits.keepalive_timeout_ms)))
        .http2_max_header_list_size(HEADER_LIST_SIZE_MAX_BYTES)
        .tcp_nodelay(true)
        .accept_http1(false)
        .layer(GateLayer::new(gate))
        .layer(ConnectionCallsLayer)
}

fn accept_limits(limits: &LimitsConfig) -> AcceptLimits {
    AcceptLimits {
        handshake_timeout: Duration::from_millis(limits.tls_handshake_timeout_ms),
        idle_timeout: Duration::from_millis(limits.connection_idle_timeout_ms),
    }
}

/// Adds the account, cashier, yield, credit and operations services, each capped at
/// `message_size_max` bytes.
fn add_paygate_services<L>(
    router: Router<L>,
    accounts: AccountService,
    cashier: CashierService,
    (yields, credit, operations): (YieldService, CreditService, Operations),
    message_size_max: usize,
    closing: Closing,
) -> Router<L> {
    router
        .add_service(
            AccountServiceServer::new(AccountApi::new(accounts, closing.clone()))
                .max_decoding_message_size(message_size_max)
                .max_encoding_message_size(message_size_max),
        )
        .add_service(
            CashierServiceServer::new(CashierApi::new(cashier, closing))
                .max_decoding_message_size(message_size_max)
                .max_encoding_message_size(message_size_max),
        )
        .add_service(
            YieldServiceServer::new(YieldApi::new(yields))
                .max_decoding_message_size(message_size_max)
                .max_encoding_message_size(message_size_max),
        )
        .add_service(
            CreditServiceServer::new(CreditApi::new(credit))
                .max_decoding_message_size(message_size_max)
                .max_encoding_message_size(message_size_max),
        )
        .add_service(
            OperationsServiceServer::new(OperationsApi::new(operations))
                .max_decoding_message_size(message_size_max)
                .max_encoding_message_size(message_size_max),
        )
}

/// Runs `serve` to its end, or until `grace_ms` after `stopping` turns true, whichever is first.
async fn serve_within_grace(
    serve: impl Future<Output = Result<(), tonic::transport::Error>>,
    mut stopping: watch::Receiver<bool>,
    grace_ms: u64,
) -> Result<(), ServeError> {
    let grace = Duration::from_millis(grace_ms);
    let grace_expired = async move {
        while !*stopping.borrow_and_update() {
            if stopping.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = serve => result.map_err(ServeError::from),
        () = grace_expired => {
            tracing::warn!(grace_ms, "grace period over; cutting remaining calls");
            Ok(())
        }
    }
}

/// Waits for the admin listener, if any, logging how it stopped.
async fn join_admin(admin_task: Option<JoinHandle<std::io::Result<()>>>) {
    if let Some(task) = admin_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "admin listener stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
        }
    }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(pb::ERROR_DETAILS_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// `3 migrations (0004_account_row_tail, …)`, for messages.
pub fn describe(migrations: &[storage::Migration]) -> String {
    let names: Vec<String> = migrations
        .iter()
        .map(|m| format!("{:04}_{}", m.version, m.name))
        .collect();
    format!("{} migration(s) ({})", names.len(), names.join(", "))
}

/// HTTP/2 header block limit: metadata beyond this is refused.
const HEADER_LIST_SIZE_MAX_BYTES: u32 = 16 * 1024;

/// The notice listener, when `clearing.notices.enabled`: bound, with its TLS acceptor when
/// `client_ca` is set, and each network's key derived from the server secret.
async fn bind_notices(config: &Config, secrets: &Secrets) -> Result<Option<Notices>, ServeError> {
    let notices = &config.clearing.notices;
    if !notices.enabled {
        return Ok(None);
    }
    let tls = if notices.is_tls() {
        Some(tls::notice_acceptor(&config.tls, &notices.client_ca)?)
    } else {
        None
    };
    Ok(Some(Notices {
        listener: bind(notices.listen).await?,
        tls,
        keys: NoticeKeys::derive(|code| secrets.notice_key(code)),
    }))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}
