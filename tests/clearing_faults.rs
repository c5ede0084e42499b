//! The clearing networks under faults, end to end: card payments (quick pay by the bound card)
//! and their refunds go to every off-us network of the registry on a real `paygate netsim` process, which
//! leaves 20 % of them unanswered, answers 5 % late, posts 2 % of its result notices twice and
//! is down for 30 seconds once per network. After the recovery worker has finished: every
//! payment and refund is final, the networks booked each exactly once and exactly what we
//! booked, the end-of-day run's reconciliation of every network finds no break, its settlement
//! brings every network's clearing suspense account to zero, and the ledger verifies.
//!
//! The simulator posts its result notices (the late answers, the duplicates) to the gateway's
//! notice listener, which settles what they answer before the recovery worker queries it;
//! `PAYGATE_FAULT_NOTICES=0` runs without the listener (the notices go nowhere).
//!
//! The default run is 30 payments per network; `PAYGATE_FAULT_PAYMENTS=2000` runs the full
//! one (docs/RELIABILITY.md has its figures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{
    Backend, TestApp, cny, luhn_check_digit,
    netsim::{NoticeLine, Sim},
    open, open_personal, request_id, resident_id, spawn_app_on,
    yields::rows,
};
use paygate::{
    clearing::{
        Network,
        recon::{ReconKind, ReconStatus},
        routing::{
            ClearingConfig, IssuerConfig, NetworkEndpointConfig, PaymentMethod, RecoveryConfig,
            RouteConfig, Scenario,
        },
    },
    clock::Clock,
    grpc::pb::{
        self, BoundCardPayment, GetOrderRequest, GetRefundRequest, OrderStatus, PaymentMethodType,
        RefundStatus, cashier_service_client::CashierServiceClient, get_order_request,
        get_refund_request, pay_request,
    },
};
use tokio::sync::Semaphore;

const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";
/// Every off-us network of the registry, each the issuer network of one bank (`BANK1`…) and
/// its BIN prefix (`621001`…).
fn networks() -> Vec<(Network, String, String)> {
    Network::all()
        .filter(|n| n.is_remote())
        .enumerate()
        .map(|(k, network)| {
            (
                network,
                format!("BANK{}", k + 1),
                format!("621{:03}", k + 1),
            )
        })
        .collect()
}
/// Payers per network (each pays in turn).
const PAYERS_PER_NETWORK: usize = 10;
/// Payments are spread over this long, so the outage falls among them.
const PAYMENT_WINDOW_MS: u64 = 50_000;
/// Calls in flight at once, over all networks.
const IN_FLIGHT_MAX: usize = 64;

/// Whether the gateway takes the simulator's result notices (`PAYGATE_FAULT_NOTICES`, on
/// unless `0`).
fn notices_on() -> bool {
    std::env::var("PAYGATE_FAULT_NOTICES").map_or(true, |v| v != "0")
}

fn payments_per_network() -> usize {
    std::env::var("PAYGATE_FAULT_PAYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// The simulator's faults: the same rates on every network, each down 30 s once (refusing
/// connections on some, holding them unanswered on the others), 12 s after it started.
fn faults() -> String {
    let mut text = String::from("seed = 17\nhang_ms_max = 2000\n");
    for (n, (network, _, _)) in networks().iter().enumerate() {
        text.push_str(&format!(
            "[[networks]]\nnetwork = \"{}\"\nlatency_min_ms = 1\nlatency_max_ms = 20\n\
             no_answer_rate = 0.20\nlate_rate = 0.05\nlate_ms = 1000\nduplicate_rate = 0.02\n\
             outages = [{{ after_ms = 12000, for_ms = 30000, mode = \"{}\" }}]\n",
            network.as_str(),
            if n % 2 == 0 { "refuse" } else { "hang" }
        ));
    }
    text
}

/// A Luhn-valid card of the bank whose BIN is `bin`.
fn card(bin: &str, n: usize) -> String {
    let partial = format!("{bin}{n:012}");
    let mut number = partial.clone();
    number.push(luhn_check_digit(&partial));
    number
}

/// Routes each bank's quick pays to its network on `sim`; everything else on-us.
fn routing(sim: &Sim) -> ClearingConfig {
    let route = |method, bank: &str, network| RouteConfig {
        method,
        scenario: Scenario::Any,
        bank: bank.to_owned(),
        network,
    };
    let networks = networks();
    let mut routes: Vec<RouteConfig> = networks
        .iter()
        .map(|(network, bank, _)| route(PaymentMethod::QuickPay, bank, *network))
        .collect();
    routes.push(route(PaymentMethod::Any, "*", Network::ON_US));
    ClearingConfig {
        routes,
        networks: networks
            .iter()
            .map(|(network, _, _)| NetworkEndpointConfig {
                network: *network,
                address: sim.address.clone(),
                timeout_ms: 300,
            })
            .collect(),
        issuers: networks
            .iter()
            .map(|(_, bank, bin)| IssuerConfig {
                bin_prefix: bin.clone(),
                bank: bank.clone(),
            })
            .collect(),
        recovery: RecoveryConfig {
            interval_ms: 200,
            first_query_after_ms: 1_000,
            query_backoff_max_ms: 4_000,
            bound_ms: 120_000,
            ..Default::default()
        },
        notices: Default::default(),
    }
}

/// A payer: its account and its card's agreement.
struct Payer {
    account: String,
    agreement: String,
}

async fn payers(app: &TestApp) -> Vec<Vec<Payer>> {
    let mut accounts = app.accounts(PAYER_CALLER).await;
    let mut all = Vec::new();
    for (k, (_, _, bin)) in networks().iter().enumerate() {
        let mut of_network = Vec::new();
        for p in 0..PAYERS_PER_NETWORK {
            let n = k * PAYERS_PER_NETWORK + p;
            let account = open(
                &mut accounts,
                open_personal(
                    pb::AccountKind::ClassIi,
                    &format!("payer-{n}"),
                    &resident_id(100 + n as u64),
                    &card(bin, n),
                ),
            )
            .await;
            let agreement = common::bound_card_agreement(&mut accounts, &account).await;
            of_network.push(Payer { account, agreement });
        }
        all.push(of_network);
    }
    all
}

/// Polls until `final_of` says every id is final (at most `limit`); returns the last answers.
async fn until_all_final<F, Fut>(ids: &[String], limit: Duration, answer: F) -> Vec<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = (i32, bool)>,
{
    let deadline = Instant::now() + limit;
    let mut states = vec![0; ids.len()];
    let mut open: Vec<usize> = (0..ids.len()).collect();
    while !open.is_empty() {
        let mut still = Vec::new();
        for i in open {
            let (state, is_final) = answer(ids[i].clone()).await;
            states[i] = state;
            if !is_final {
                still.push(i);
            }
        }
        open = still;
        if !open.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} still not final, e.g. {}",
                open.len(),
                ids[open[0]]
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    states
}

both_backends!(multi_thread: card_payments_and_refunds_through_every_network_under_faults_all_settle_and_reconcile);

async fn card_payments_and_refunds_through_every_network_under_faults_all_settle_and_reconcile(
    backend: Backend,
) {
    let per_network = payments_per_network();
    let started = Instant::now();
    let line = NoticeLine::new();
    let sim = if notices_on() {
        Sim::start_notifying(&faults(), &line).await
    } else {
        Sim::start(&faults()).await
    };
    let clearing = routing(&sim);
    let notices = line.gateway();
    let app = spawn_app_on(backend, Clock::system(), move |c| {
        c.clearing = clearing;
        c.eod.interval_ms = 200;
        if notices_on() {
            notices(c);
        }
    })
    .await;
    let merchant = common::app_merchant(
        &app,
        "fault-shop",
        &[PaymentMethodType::BoundCard],
        &[MERCHANT_CALLER],
    )
    .await;
    let payers = Arc::new(payers(&app).await);

    // Every network's payments, spread evenly over the window, 64 in flight at most.
    let gate = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let window_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..per_network {
        let due =
            window_start + Duration::from_millis(PAYMENT_WINDOW_MS * i as u64 / per_network as u64);
        for k in 0..networks().len() {
            let (payers, gate, merchant) = (payers.clone(), gate.clone(), merchant.clone());
            let mut m = CashierServiceClient::new(app.channel(MERCHANT_CALLER).await);
            let mut p = CashierServiceClient::new(app.channel(PAYER_CALLER).await);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                let _permit = gate.acquire().await.unwrap();
                let amount = format!("{}.{:02}", 1 + i % 40, (i * 7 + k) % 100);
                let order = m
                    .create_order(common::app_order_req(
                        &merchant,
                        &format!("F{k}-{i}"),
                        &amount,
                    ))
                    .await
                    .expect("order created")
                    .into_inner()
                    .order
                    .unwrap();
                let payer = &payers[k][i % PAYERS_PER_NETWORK];
                let paid = p
                    .pay(common::pay_req(
                        &order.order_id,
                        &payer.account,
                        pay_request::Method::BoundCard(BoundCardPayment {
                            agreement_id: payer.agreement.clone(),
                        }),
                    ))
                    .await
                    .expect("a card payment is accepted (PROCESSING at worst)")
                    .into_inner()
                    .order
                    .unwrap();
                let network = paid.payment.as_ref().map(|p| p.network).unwrap_or_default();
                (order.order_id, network, paid.status)
            }));
        }
    }
    let mut orders = Vec::new();
    for task in tasks {
        orders.push(task.await.unwrap());
    }
    let paid_s = started.elapsed().as_secs_f64();

    // The recovery worker makes every payment final.
    let order_ids: Vec<String> = orders.iter().map(|(id, _, _)| id.clone()).collect();
    let unanswered = orders
        .iter()
        .filter(|(_, _, status)| *status == OrderStatus::Processing as i32)
        .count();
    assert!(
        unanswered > 0,
        "some payments were left to the recovery worker"
    );
    let m = CashierServiceClient::new(app.channel(MERCHANT_CALLER).await);
    let lookup = |id: String| {
        let mut m = m.clone();
        async move {
            let order = m
                .get_order(GetOrderRequest {
                    lookup: Some(get_order_request::Lookup::OrderId(id)),
                })
                .await
                .unwrap()
                .into_inner()
                .order
                .unwrap();
            let status = order.status;
            (
                status,
                status == OrderStatus::Succeeded as i32 || status == OrderStatus::Failed as i32,
            )
        }
    };
    let order_states = until_all_final(&order_ids, Duration::from_secs(200), lookup).await;
    let orders_final_s = started.elapsed().as_secs_f64();

    // Half of every paid order is refunded to its card, under the same faults.
    let mut refund_tasks = Vec::new();
    for (n, (order_id, _, _)) in orders.iter().enumerate() {
        if order_states[n] != OrderStatus::Succeeded as i32 {
            continue;
        }
        let (gate, order_id) = (gate.clone(), order_id.clone());
        let mut m = m.clone();
        refund_tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let order = m
                .get_order(GetOrderRequest {
                    lookup: Some(get_order_request::Lookup::OrderId(order_id.clone())),
                })
                .await
                .unwrap()
                .into_inner()
                .order
                .unwrap();
            let amount = order.amount.unwrap().amount;
            let minor = common::yields::minor(&amount) / 2;
            m.refund(pb::RefundRequest {
                request_id: request_id("fault-refund"),
                order_id,
                merchant_refund_no: String::new(),
                amount: Some(cny(&format!("{}.{:02}", minor / 100, minor % 100))),
                reason: "returned".to_owned(),
            })
            .await
            .expect("a card refund is accepted (PROCESSING at worst)")
            .into_inner()
            .refund
            .unwrap()
            .refund_id
        }));
    }
    let mut refund_ids = Vec::new();
    for task in refund_tasks {
        refund_ids.push(task.await.unwrap());
    }
    let lookup = |id: String| {
        let mut m = m.clone();
        async move {
            let refund = m
                .get_refund(GetRefundRequest {
                    lookup: Some(get_refund_request::Lookup::RefundId(id)),
                })
                .await
                .unwrap()
                .into_inner()
                .refund
                .unwrap();
            let status = refund.status;
            (status, status != RefundStatus::Processing as i32)
        }
    };
    let refund_states = until_all_final(&refund_ids, Duration::from_secs(200), lookup).await;
    let settled_s = started.elapsed().as_secs_f64();

    // The networks booked each of our successes once and nothing else that moved money.
    let books = sim.books().await;
    let succeeded = |kind: ReconKind| {
        books
            .iter()
            .filter(|e| e.kind == kind && e.status == ReconStatus::Succeeded)
            .count()
    };
    let paid = order_states
        .iter()
        .filter(|s| **s == OrderStatus::Succeeded as i32)
        .count();
    let refunded = refund_states
        .iter()
        .filter(|s| **s == RefundStatus::Succeeded as i32)
        .count();
    assert_eq!(succeeded(ReconKind::Debit), paid, "no payer charged twice");
    assert_eq!(
        succeeded(ReconKind::Refund) + succeeded(ReconKind::Credit),
        refunded,
        "no refund paid twice"
    );
    let reach: BTreeMap<i32, usize> = orders.iter().fold(BTreeMap::new(), |mut m, (_, n, _)| {
        *m.entry(*n).or_default() += 1;
        m
    });
    assert_eq!(
        reach.len(),
        networks().len(),
        "every network was used: {reach:?}"
    );

    // The end of day, run by the operator's command on a clock two days on: every network's
    // reconciliation of the dates is clean and its settlement nets its suspense to zero.
    let mut config = app.config.clone();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    config.clock.start = later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let path = app.dir().join("eod-later.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let (code, out) = app.paygate(&["eod", "run", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = app.paygate(&[
        "eod",
        "status",
        "--config",
        path.to_str().unwrap(),
        "--dates",
        "4",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    // The dates the payments were made on (two when the run crossed midnight Beijing time):
    // the later ones are not due yet.
    let beijing = time::UtcOffset::from_hms(8, 0, 0).unwrap();
    let first_date = (time::OffsetDateTime::now_utc()
        - time::Duration::seconds_f64(started.elapsed().as_secs_f64()))
    .to_offset(beijing)
    .date()
    .to_string();
    let last_date = time::OffsetDateTime::now_utc()
        .to_offset(beijing)
        .date()
        .to_string();
    let mut reconciled = 0;
    for r in records.iter().filter(|r| {
        let date = r["date"].as_str().unwrap();
        first_date.as_str() <= date && date <= last_date.as_str()
    }) {
        let (step, state, detail) = (
            r["step"].as_str().unwrap(),
            r["state"].as_str().unwrap(),
            r["detail"].as_str().unwrap(),
        );
        if step.starts_with("RECON/") || step.starts_with("SETTLE/") {
            assert_eq!(state, "DONE", "{step} of {}: {detail}", r["date"]);
        }
        if step.starts_with("RECON/") {
            assert!(
                detail.contains(" 0 breaks"),
                "{step} of {}: {detail}",
                r["date"]
            );
            reconciled += detail
                .split(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap();
        }
    }
    assert!(
        reconciled >= paid + refunded,
        "{reconciled} lines matched of {paid} + {refunded}"
    );
    let internal = rows::balances_of_kind(&app.config.database.url, "BANK_INTERNAL").await;
    for (network, _, _) in networks() {
        let name = format!("CLEARING_SUSPENSE_{}", network.as_str());
        assert_eq!(
            internal.get(&name).copied(),
            Some(0),
            "{name}: {internal:?}"
        );
    }
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
    let notices = notices_taken(&app).await;
    eprintln!(
        "fault run: {} payments ({unanswered} left PROCESSING by the network, {paid} paid) and {} refunds ({refunded} refunded) over {} \
         networks; payments sent by {paid_s:.1} s, every order final by {orders_final_s:.1} s, \
         all final by {settled_s:.1} s; notices {notices}; {} lines reconciled, 0 breaks; every \
         suspense account 0",
        orders.len(),
        refund_ids.len(),
        networks().len(),
        reconciled,
    );
}

/// The result notices the gateway took, by result over every network (`off` without them).
async fn notices_taken(app: &TestApp) -> String {
    if !notices_on() {
        return "off".to_owned();
    }
    let (_, metrics) = app.admin_get("/metrics").await;
    let mut by_result: BTreeMap<String, u64> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("paygate_clearing_notices_total{") else {
            continue;
        };
        let (labels, count) = rest.split_once("} ").unwrap();
        let result = labels
            .split("result=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        *by_result.entry(result.to_owned()).or_default() += count.trim().parse::<u64>().unwrap();
    }
    format!("{by_result:?}")
}
