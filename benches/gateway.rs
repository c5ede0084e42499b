//! End-to-end gateway throughput over mutual TLS, the way ghz would measure it: a real gateway on
//! an ephemeral port (SQLite, synchronous FULL, its own PKI), a few HTTP/2 connections as the
//! `loadtest` caller, many concurrent callers per RPC for a fixed number of calls.
//!
//! `cargo bench --bench gateway`. Environment:
//! - `PAYGATE_BENCH_CALLS`: calls per RPC (default 20,000)
//! - `PAYGATE_BENCH_CONCURRENCY`: concurrent callers (default 64)
//! - `PAYGATE_BENCH_CONNECTIONS`: HTTP/2 connections they share (default 4)
// A benchmark is a test tool: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use paygate::{
    config::Config,
    grpc::pb::{
        self, GetBalanceRequest, Money, OpenAccountRequest, PersonIdentity, TopUpRequest,
        TransferRequest, account_service_client::AccountServiceClient,
    },
    server::Gateway,
    tls::{DevPkiLayout, generate_dev_pki},
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cny(amount: &str) -> Option<Money> {
    Some(Money {
        currency: "CNY".to_owned(),
        amount: amount.to_owned(),
    })
}

/// Runs `calls` calls of `op` from `concurrency` tasks; returns elapsed time and latencies.
async fn drive<F, Fut>(concurrency: usize, calls: usize, op: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= calls {
                    return latencies;
                }
                let t = Instant::now();
                op(i).await;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(calls);
    for task in tasks {
        all.extend(task.await.expect("caller task"));
    }
    (started.elapsed(), all)
}

fn report(name: &str, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{name}: {} calls in {:.2} s = {:.0} calls/s (latency p50 {:.2} ms, p99 {:.2} ms)",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(50).as_secs_f64() * 1000.0,
        pct(99).as_secs_f64() * 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let calls: usize = env_or("PAYGATE_BENCH_CALLS", 20_000);
    let concurrency: usize = env_or("PAYGATE_BENCH_CONCURRENCY", 64);
    let connections: usize = env_or("PAYGATE_BENCH_CONNECTIONS", 4);

    let dir = tempfile::tempdir().expect("tempdir");
    let pki = DevPkiLayout::new(dir.path().join("certs"));
    generate_dev_pki(&pki, "bench CA", &["loadtest"], false).expect("pki");
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.enabled = false;
    config.tls.server_cert = pki.server_cert();
    config.tls.server_key = pki.server_key();
    config.tls.client_ca = pki.ca_cert();
    config.tls.generate_dev_pki = false;
    config.database.url = format!("sqlite://{}", dir.path().join("paygate.db").display());
    config.secrets.key_file = dir.path().join("secret.key");
    config.log.filter = "warn".to_owned();
    // Loads far beyond a person's daily limits: lift them for the write benchmark.
    config.accounts.class_ii_non_bound_outflow_per_day = "100000000000.00".to_owned();
    config.accounts.class_ii_non_bound_outflow_per_year = "100000000000.00".to_owned();
    config.accounts.class_ii_non_bound_inflow_per_day = "100000000000.00".to_owned();
    config.accounts.class_ii_non_bound_inflow_per_year = "100000000000.00".to_owned();
    config.limits.caller_rate_per_s = 1_000_000;
    config.limits.caller_burst = 1_000_000;
    paygate::telemetry::init_logging(&config.log);
    let gateway = Gateway::bind(config).await.expect("gateway binds");
    let port = gateway.local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(pki.ca_cert()).expect("ca"),
        ))
        .identity(Identity::from_pem(
            std::fs::read(pki.client_cert("loadtest")).expect("cert"),
            std::fs::read(pki.client_key("loadtest")).expect("key"),
        ))
        .domain_name("localhost");
    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..connections.max(1) {
        channels.push(
            Endpoint::from_shared(format!("https://localhost:{port}"))
                .expect("endpoint")
                .tls_config(tls.clone())
                .expect("tls")
                .connect()
                .await
                .expect("connects over mTLS"),
        );
    }
    let channels = Arc::new(channels);
    println!(
        "gateway bench: {} cores, {concurrency} concurrent callers over {} mTLS connections, {calls} calls per RPC",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        channels.len()
    );

    // Two funded Class II accounts.
    let mut setup = AccountServiceClient::new(channels[0].clone());
    let mut ids = Vec::new();
    for (n, card) in [(1, "6222021234567890128"), (2, "6222020000000000018")] {
        let account = setup
            .open_account(OpenAccountRequest {
                request_id: format!("open-{n}"),
                kind: pb::AccountKind::ClassIi as i32,
                owner_id: format!("bench-{n}"),
                display_name: "bench".to_owned(),
                identity: Some(PersonIdentity {
                    full_name: "Bench".to_owned(),
                    document_type: pb::IdDocumentType::ResidentIdCard as i32,
                    document_number: if n == 1 {
                        "11010519491231002X"
                    } else {
                        "440304198503151231"
                    }
                    .to_owned(),
                    mobile: String::new(),
                }),
                bound_card_number: card.to_owned(),
                ..Default::default()
            })
            .await
            .expect("open")
            .into_inner()
            .account
            .expect("account")
            .account_id;
        setup
            .top_up(TopUpRequest {
                request_id: format!("fund-{n}"),
                account_id: account.clone(),
                amount: cny("10000000.00"),
                memo: String::new(),
            })
            .await
            .expect("fund");
        ids.push(account);
    }
    let ids = Arc::new(ids);

    let chans = channels.clone();
    let (elapsed, latencies) = drive(concurrency, calls, move |i| {
        let mut client = HealthClient::new(chans[i % chans.len()].clone());
        async move {
            client
                .check(HealthCheckRequest::default())
                .await
                .expect("health");
        }
    })
    .await;
    report("grpc.health.v1.Health/Check", elapsed, latencies);

    let (chans, accounts) = (channels.clone(), ids.clone());
    let (elapsed, latencies) = drive(concurrency, calls, move |i| {
        let mut client = AccountServiceClient::new(chans[i % chans.len()].clone());
        let account_id = accounts[i % 2].clone();
        async move {
            client
                .get_balance(GetBalanceRequest { account_id })
                .await
                .expect("balance");
        }
    })
    .await;
    report("paygate.v1.AccountService/GetBalance", elapsed, latencies);

    let (chans, accounts) = (channels.clone(), ids.clone());
    let (elapsed, latencies) = drive(concurrency, calls, move |i| {
        let mut client = AccountServiceClient::new(chans[i % chans.len()].clone());
        let (from, to) = (accounts[i % 2].clone(), accounts[(i + 1) % 2].clone());
        async move {
            client
                .transfer(TransferRequest {
                    request_id: format!("t-{i}"),
                    from_account_id: from,
                    to_account_id: to,
                    amount: cny("0.01"),
                    memo: String::new(),
                })
                .await
                .expect("transfer");
        }
    })
    .await;
    report("paygate.v1.AccountService/Transfer", elapsed, latencies);

    let _ = stop.send(());
    let _ = server.await;
}
