//! The bank test (issue 15): the real `paygate serve` binary over mutual TLS, on both back ends,
//! with concurrent clients doing transfers, cashier payments from the balance, refunds and holds
//! (placed, released, captured) among 100 customer accounts and 5 hot ones — the settlement
//! accounts of 5 merchants, where most of the credits go — while the server is killed with
//! SIGKILL at random moments and started again on the same database. Every client retries an
//! unanswered request with the same request id; a quarter of the transfers come from an
//! impatient client that gives up at the first failure, so their outcome is unknown.
//!
//! The money: each customer is topped up once from its bound card at setup; after that only
//! internal movements happen, so the customers' book balances plus the merchants' settlement
//! accounts plus the bank's fee income add up to the top-ups at every read (the clients paused
//! between two requests, twice per kill interval) and at the end. Checked besides:
//! - no customer or settlement account is negative (book or available) at any read;
//! - every acknowledged operation is on each of its accounts' statements exactly once, every
//!   refused transfer on none, every unknown one on both or none (the memo is the request id);
//!   a refused payment left its order unpaid; each order's refunded amount is the sum of its
//!   acknowledged refunds; nothing else is on any statement but the setup top-ups;
//! - each account's book balance is its top-up plus what the operations present moved, and its
//!   held amount the holds acknowledged and not resolved;
//! - acknowledged and refused transfers sent again answer the same;
//! - `paygate ledger verify` exits 0.
//!
//! Default: a short run (10 clients, 20 s, a kill every 3–6 s). `PAYGATE_BANK_SECONDS=n` or
//! `PAYGATE_BANK_MINUTES=n` runs that long with 32 clients and a kill every 5–15 s;
//! `PAYGATE_BANK_CLIENTS` sets the clients. The acknowledged operations per second are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    Backend, client_tls, db::FreshDatabase, merchant_req, open_class_ii, open_merchant, process::*,
    top_up, yields::minor,
};
use paygate::{
    grpc::pb::{
        self, account_service_client::AccountServiceClient,
        cashier_service_client::CashierServiceClient,
    },
    tls::DevPkiLayout,
};
use rand::seq::IndexedRandom;
use tonic::transport::Channel;

const BANK: &str = "core-banking";
const SHOP: &str = "merchant-gateway";
const CUSTOMERS: usize = 100;
const HOT: usize = 5;
/// Each customer's top-up at setup, in fen (2,000.00): the only money that enters.
const TOP_UP_MINOR: i64 = 200_000;
const FEE_RATE: &str = "0.006";
/// How long a patient client keeps sending one request (each send waits up to 30 s, the
/// server's own call timeout).
const RETRY_FOR: Duration = Duration::from_secs(300);
/// Acknowledged and refused transfers sent again at the end, at most.
const REPLAYS_MAX: usize = 400;
/// The class limits raised out of the way: the test is about crashes, not about limits (quoted:
/// an unquoted number in the environment reads as a float).
const SERVE_ENV: [(&str, &str); 4] = [
    (
        "PAYGATE_ACCOUNTS__CLASS_II_NON_BOUND_INFLOW_PER_DAY",
        "\"100000000.00\"",
    ),
    (
        "PAYGATE_ACCOUNTS__CLASS_II_NON_BOUND_INFLOW_PER_YEAR",
        "\"1000000000.00\"",
    ),
    (
        "PAYGATE_ACCOUNTS__CLASS_II_NON_BOUND_OUTFLOW_PER_DAY",
        "\"100000000.00\"",
    ),
    (
        "PAYGATE_ACCOUNTS__CLASS_II_NON_BOUND_OUTFLOW_PER_YEAR",
        "\"1000000000.00\"",
    ),
];

struct Settings {
    duration: Duration,
    clients: usize,
    kill_every_ms: Range<u64>,
}

fn settings() -> Settings {
    let number = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} is a number"))
        })
    };
    let seconds = number("PAYGATE_BANK_MINUTES")
        .map(|m| m * 60)
        .or_else(|| number("PAYGATE_BANK_SECONDS"));
    let long = seconds.is_some();
    Settings {
        duration: Duration::from_secs(seconds.unwrap_or(20)),
        clients: number("PAYGATE_BANK_CLIENTS").map_or(if long { 32 } else { 10 }, |n| n as usize),
        kill_every_ms: if long { 5_000..15_000 } else { 3_000..6_000 },
    }
}

/// What every client shares: where the server is, the pause for reads, the accounts.
struct World {
    port: Port,
    /// Clients hold it shared for one whole operation; a read takes it alone.
    gate: tokio::sync::RwLock<()>,
    retries: AtomicUsize,
    stop: AtomicBool,
    bank_tls: tonic::transport::ClientTlsConfig,
    shop_tls: tonic::transport::ClientTlsConfig,
    customers: Vec<String>,
    /// The merchants' settlement accounts, `merchants[i]` settling to `hot[i]`.
    hot: Vec<String>,
    merchants: Vec<String>,
    fee_income: String,
}

impl World {
    /// Every account whose balance counts: customers, hot ones, fee income.
    fn books(&self) -> Vec<String> {
        let mut all = self.customers.clone();
        all.extend(self.hot.iter().cloned());
        all.push(self.fee_income.clone());
        all
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Transfer,
    Payment,
    Refund,
    PlaceHold,
    ReleaseHold,
    CaptureHold,
}

/// What a request did: acknowledged with its journal transaction ("" for holds placed or
/// released) and the money it moved, refused, or never answered.
#[derive(Debug)]
enum Outcome {
    Acked {
        tx: String,
        moves: Vec<(String, i64)>,
    },
    Refused,
    Unknown,
}

#[derive(Debug)]
struct Record {
    kind: Kind,
    outcome: Outcome,
    /// Transfers: the request (memo = request id), for the statement check and replays.
    transfer: Option<pb::TransferRequest>,
    /// Payments: the order.
    order: Option<String>,
}

fn money(fen: i64) -> Option<pb::Money> {
    Some(common::cny(&format!("{}.{:02}", fen / 100, fen % 100)))
}

fn amount_of(m: Option<pb::Money>) -> i64 {
    minor(&m.expect("money").amount)
}

fn pick(from: &[String]) -> String {
    from.choose(&mut rand::rng()).expect("accounts").clone()
}

fn accounts(channel: Channel) -> AccountServiceClient<Channel> {
    AccountServiceClient::new(channel)
}

fn cashier(channel: Channel) -> CashierServiceClient<Channel> {
    CashierServiceClient::new(channel)
}

/// Sends one request on `conn`, the same request on every retry.
macro_rules! send {
    ($conn:expr, $w:expr, $patient:expr, $client:ident . $method:ident ($req:expr)) => {{
        let req = $req.clone();
        $conn
            .call(&$w.port, $patient, &$w.retries, RETRY_FOR, |ch| {
                let req = req.clone();
                async move { $client(ch).$method(req).await }
            })
            .await
    }};
}

#[path = "bank/books.rs"]
mod books;
#[path = "bank/client.rs"]
mod client;

use client::Client;

/// The figures of one run.
#[derive(Debug)]
pub struct Figures {
    pub seconds: f64,
    pub clients: usize,
    pub kills: usize,
    pub reads: usize,
    pub acknowledged: usize,
    pub refused: usize,
    pub unknown: usize,
    pub unknown_present: usize,
    pub retries: usize,
    /// The longest time from a SIGKILL to the new server's first log line of serving.
    pub restart_s_max: f64,
    pub ops_per_s: f64,
}

/// Opens the customers (topped up) and the hot merchants; finds the fee income account.
async fn setup(channel: Channel) -> (Vec<String>, Vec<String>, Vec<String>, String) {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..10u64 {
        let mut a = accounts(channel.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for n in (worker..CUSTOMERS as u64).step_by(10) {
                let id = open_class_ii(&mut a, 1_000 + n).await;
                top_up(&mut a, &id, &format!("{}.00", TOP_UP_MINOR / 100)).await;
                mine.push(id);
            }
            mine
        });
    }
    let mut customers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        customers.extend(done.expect("setup worker"));
    }
    let (mut hot, mut merchants) = (Vec::new(), Vec::new());
    let mut a = accounts(channel.clone());
    for i in 0..HOT {
        let name = format!("Hot Shop {i}");
        let settlement = open_merchant(&mut a, &name).await;
        let product = pb::PaymentProduct {
            method: pb::PaymentMethodType::Balance as i32,
            scenario: pb::Scenario::App as i32,
            fee_rate: FEE_RATE.to_owned(),
        };
        let merchant = cashier(channel.clone())
            .register_merchant(merchant_req(&name, &settlement, vec![product], &[SHOP]))
            .await
            .expect("merchant registers")
            .into_inner()
            .merchant
            .expect("merchant");
        hot.push(settlement);
        merchants.push(merchant.merchant_id);
    }
    let mut fee_income = None;
    for id in 1..=4 {
        let account = a
            .get_account(pb::GetAccountRequest {
                account_id: id.to_string(),
            })
            .await
            .expect("internal account")
            .into_inner()
            .account
            .expect("account");
        if account.internal_purpose == pb::InternalAccountPurpose::FeeIncome as i32 {
            fee_income = Some(account.account_id);
        }
    }
    (
        customers,
        hot,
        merchants,
        fee_income.expect("a fee income account"),
    )
}

/// A read with the clients paused between requests: the total is the top-ups and nothing is
/// negative.
async fn quiet_read(world: &World, conn: &mut Conn) {
    let _alone = world.gate.write().await;
    books::check_total(world, conn).await;
}

async fn bank(backend: Backend) -> Figures {
    let s = settings();
    let database = FreshDatabase::new(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = database.url.clone();
    let restart = || {
        let (dir, url) = (dir.path().to_owned(), url.clone());
        tokio::task::spawn_blocking(move || start_serve(&dir, &url, &SERVE_ENV))
    };
    let (child, first) = restart().await.expect("start");
    let mut child = Served(child);
    let pki = DevPkiLayout::new(dir.path().join("certs"));
    let bank_tls = client_tls(&pki, &pki, Some(BANK));
    let channel = tonic::transport::Endpoint::from_shared(format!("https://localhost:{first}"))
        .expect("endpoint")
        .tls_config(bank_tls.clone())
        .expect("tls")
        .connect()
        .await
        .expect("connects");
    let (customers, hot, merchants, fee_income) = setup(channel).await;
    let world = Arc::new(World {
        port: Port::default(),
        gate: tokio::sync::RwLock::new(()),
        retries: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        shop_tls: client_tls(&pki, &pki, Some(SHOP)),
        bank_tls,
        customers,
        hot,
        merchants,
        fee_income,
    });
    world.port.set(Some(first));
    let mut reader = Conn::new(world.bank_tls.clone());
    quiet_read(&world, &mut reader).await;

    let started = Instant::now();
    let clients: Vec<_> = (0..s.clients)
        .map(|n| tokio::spawn(Client::new(n, world.clone()).run()))
        .collect();
    let (mut kills, mut reads, mut restart_s_max) = (0, 1, 0f64);
    let end = tokio::time::Instant::now() + s.duration;
    loop {
        // The next kill, a read half-way to it (the read's pause counts in the interval).
        let every = Duration::from_millis(rand::random_range(s.kill_every_ms.clone()));
        let kill_at = (tokio::time::Instant::now() + every).min(end);
        tokio::time::sleep_until(kill_at - every / 2).await;
        quiet_read(&world, &mut reader).await;
        reads += 1;
        while tokio::time::Instant::now() < kill_at {
            assert_running(&mut child.0, dir.path());
            let tick = tokio::time::Instant::now() + Duration::from_millis(250);
            tokio::time::sleep_until(tick.min(kill_at)).await;
        }
        if kill_at >= end {
            break;
        }
        world.port.set(None);
        kill(&mut child.0);
        kills += 1;
        let down = Instant::now();
        let (next, port) = restart().await.expect("restart");
        restart_s_max = restart_s_max.max(down.elapsed().as_secs_f64());
        child = Served(next);
        world.port.set(Some(port));
        quiet_read(&world, &mut reader).await;
        reads += 1;
    }
    world.stop.store(true, Ordering::Relaxed);
    let mut ended = Vec::new();
    for c in clients {
        ended.push(c.await.expect("client"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let records: Vec<&Record> = ended.iter().flat_map(|c| &c.records).collect();
    let count = |f: fn(&Outcome) -> bool| records.iter().filter(|r| f(&r.outcome)).count();
    let acknowledged = count(|o| matches!(o, Outcome::Acked { .. }));
    let unknown_present = books::check_end(&world, &mut reader, &ended).await;
    kill(&mut child.0);
    ledger_verify(dir.path(), &database.url);
    database.remove().await;
    let figures = Figures {
        seconds,
        clients: s.clients,
        kills,
        reads: reads + 1,
        acknowledged,
        refused: count(|o| matches!(o, Outcome::Refused)),
        unknown: count(|o| matches!(o, Outcome::Unknown)),
        unknown_present,
        retries: world.retries.load(Ordering::Relaxed),
        restart_s_max,
        ops_per_s: acknowledged as f64 / seconds,
    };
    eprintln!(
        "bank test ({backend:?}): {:.0} acknowledged operations/s — {figures:?}",
        figures.ops_per_s
    );
    assert!(kills >= 2, "only {kills} kills landed during the run");
    figures
}

both_backends!(multi_thread: the_bank_keeps_its_books_through_sigkills);
async fn the_bank_keeps_its_books_through_sigkills(backend: Backend) {
    let figures = bank(backend).await;
    assert!(figures.acknowledged > 0);
}
