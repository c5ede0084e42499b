//! The networks' result notices (交易结果通知), end to end: a real `paygate netsim` posts its
//! notices — late answers, duplicates — to the gateway's notice listener, in each network's
//! format and signed with the network's key. A verified notice settles a PROCESSING payment at
//! once (long before the recovery worker's first query); a duplicate, a notice with a wrong or
//! missing MAC, one for another amount and one about no call of ours change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Backend, TestApp, cny,
    netsim::{NoticeLine, Sim},
    open, open_personal, request_id, resident_id, spawn_app_with,
};
use paygate::{
    clearing::{
        Network, Outcome, e_cny, nets_union,
        notice::{Notice, NoticeKey},
        union_pay_qr, wallets,
    },
    config::Config,
    grpc::pb::{
        self, BoundCardPayment, GetOrderRequest, OrderStatus, PaymentMethodType,
        cashier_service_client::CashierServiceClient, get_order_request, pay_request,
    },
    money::{Currency, Money},
};
use tonic::transport::Channel;

const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";

/// Routes every quick pay to `network` on `sim` with the recovery worker kept away (its first
/// query 5 minutes on, on a clock the test never moves), and takes the notices on `line`.
fn routed(sim: &Sim, network: Network, line: &NoticeLine) -> impl FnOnce(&mut Config) + use<> {
    let (route, notices) = (sim.routing_quick_pay_unrecovered(network), line.gateway());
    move |config: &mut Config| {
        route(config);
        notices(config);
    }
}

/// A simulator whose `network` books every movement and answers none in time: it answers
/// 1 s late (past the 300 ms timeout) and posts the answer as its result notice then.
fn late(network: Network) -> String {
    format!(
        "seed = 31\n[[networks]]\nnetwork = \"{}\"\nlate_rate = 1.0\nlate_ms = 1000\n",
        network.as_str()
    )
}

/// A simulator whose `network` books every movement and never answers (nor notifies).
fn silent(network: Network) -> String {
    format!(
        "seed = 32\n[[networks]]\nnetwork = \"{}\"\nno_answer_rate = 1.0\n",
        network.as_str()
    )
}

/// A merchant signed for bound-card payments and a payer with a bound card.
struct Shop {
    merchant: String,
    payer: String,
    agreement: String,
    m: CashierServiceClient<Channel>,
    p: CashierServiceClient<Channel>,
}

impl Shop {
    async fn open(app: &TestApp) -> Shop {
        let merchant = common::app_merchant(
            app,
            "notice-shop",
            &[PaymentMethodType::BoundCard],
            &[MERCHANT_CALLER],
        )
        .await;
        let mut accounts = app.accounts(PAYER_CALLER).await;
        let payer = open(
            &mut accounts,
            open_personal(
                pb::AccountKind::ClassIi,
                "notice-payer",
                &resident_id(77),
                &common::card_number(77),
            ),
        )
        .await;
        let agreement = common::bound_card_agreement(&mut accounts, &payer).await;
        Shop {
            merchant,
            payer,
            agreement,
            m: CashierServiceClient::new(app.channel(MERCHANT_CALLER).await),
            p: CashierServiceClient::new(app.channel(PAYER_CALLER).await),
        }
    }

    /// Creates an order of `amount` and pays it with the bound card: the order as paid.
    async fn pay(&mut self, no: &str, amount: &str) -> pb::Order {
        let order = self
            .m
            .create_order(common::app_order_req(&self.merchant, no, amount))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        let method = pay_request::Method::BoundCard(BoundCardPayment {
            agreement_id: self.agreement.clone(),
        });
        self.p
            .pay(common::pay_req(&order.order_id, &self.payer, method))
            .await
            .expect("a card payment is accepted (PROCESSING at worst)")
            .into_inner()
            .order
            .unwrap()
    }

    async fn order(&mut self, order_id: &str) -> pb::Order {
        self.m
            .get_order(GetOrderRequest {
                lookup: Some(get_order_request::Lookup::OrderId(order_id.to_owned())),
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
    }

    /// Polls until the order is `status` (at most 10 s).
    async fn until(&mut self, order_id: &str, status: OrderStatus) -> pb::Order {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let order = self.order(order_id).await;
            if order.status == status as i32 {
                return order;
            }
            assert!(Instant::now() < deadline, "never {status:?}: {order:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The notice of what `sim`'s books hold under its only entry (as the network would send it).
async fn booked_notice(sim: &Sim) -> (Network, Notice) {
    let books = sim.books().await;
    assert_eq!(
        books.len(),
        1,
        "the network booked the payment once: {books:?}"
    );
    let entry = &books[0];
    let notice = Notice {
        reference: entry.reference.clone(),
        outcome: entry.outcome(),
        amount: entry.amount,
    };
    (entry.network, notice)
}

/// What the database holds: journal transactions, and the one outbound call's record.
async fn stored(app: &TestApp) -> (i64, serde_json::Value) {
    sqlx::any::install_default_drivers();
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.config.database.url)
        .await
        .unwrap();
    let (transactions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM journal_transactions")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let (body,): (String,) = sqlx::query_as("SELECT body FROM documents WHERE kind = 'outbound'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    (transactions, serde_json::from_str(&body).unwrap())
}

/// `paygate_clearing_notices_total` of `network` and `result` in `/metrics` (0 when absent).
async fn notices_counted(app: &TestApp, network: Network, result: &str) -> u64 {
    let (_, metrics) = app.admin_get("/metrics").await;
    let series = format!(
        "paygate_clearing_notices_total{{network=\"{}\",result=\"{result}\"}} ",
        network.as_str()
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A payment left PROCESSING by a `network` that booked it and never answered (nor notified):
/// what the database held then, and the notice of what the network booked.
struct Unanswered {
    line: NoticeLine,
    _sim: Sim,
    app: TestApp,
    shop: Shop,
    order_id: String,
    before: (i64, serde_json::Value),
    notice: Notice,
}

impl Unanswered {
    async fn pay(backend: Backend, network: Network, amount: &str) -> Unanswered {
        let line = NoticeLine::new();
        let sim = Sim::start_notifying(&silent(network), &line).await;
        let app = spawn_app_with(backend, routed(&sim, network, &line)).await;
        let mut shop = Shop::open(&app).await;
        let paid = shop.pay("P1", amount).await;
        assert_eq!(paid.status, OrderStatus::Processing as i32, "{paid:?}");
        let before = stored(&app).await;
        let (_, notice) = booked_notice(&sim).await;
        Unanswered {
            line,
            _sim: sim,
            app,
            shop,
            order_id: paid.order_id,
            before,
            notice,
        }
    }

    /// Nothing was written since the payment, and the order is still PROCESSING.
    async fn assert_unchanged(&mut self) {
        assert_eq!(stored(&self.app).await, self.before, "nothing settled");
        assert_eq!(
            self.shop.order(&self.order_id).await.status,
            OrderStatus::Processing as i32
        );
    }
}

fn cny_minor(minor: i64) -> Money {
    Money::new(Currency::from_code("CNY").unwrap(), minor)
}

both_backends!(
    multi_thread: a_late_notice_settles_a_processing_payment_before_the_first_query,
    a_duplicate_notice_changes_nothing,
    a_notice_without_a_valid_mac_is_refused_and_changes_nothing,
    a_notice_for_another_amount_is_refused_and_changes_nothing,
    a_notice_about_no_call_of_ours_is_answered_not_found,
);

async fn a_late_notice_settles_a_processing_payment_before_the_first_query(backend: Backend) {
    let line = NoticeLine::new();
    let sim = Sim::start_notifying(&late(nets_union::NETWORK), &line).await;
    let app = spawn_app_with(backend, routed(&sim, nets_union::NETWORK, &line)).await;
    let mut shop = Shop::open(&app).await;

    let paid = shop.pay("N1", "88.00").await;
    assert_eq!(
        paid.status,
        OrderStatus::Processing as i32,
        "no answer in time: {paid:?}"
    );

    // The recovery worker's first query is 5 minutes away on a clock that does not move: only
    // the notice, a second later, can settle it.
    let settled = shop.until(&paid.order_id, OrderStatus::Succeeded).await;
    let payment = settled.payment.unwrap();
    assert!(
        payment.network_reference.starts_with("NU"),
        "NetsUnion's own reference: {payment:?}"
    );
    assert!(!payment.transaction_id.is_empty(), "{payment:?}");
    let (_, call) = stored(&app).await;
    assert_eq!(call["state"], "SUCCEEDED", "{call}");
    assert_eq!(call["queries"], 0, "settled without a query: {call}");
    assert_eq!(call["presumed"], false, "{call}");
    assert_eq!(
        notices_counted(&app, nets_union::NETWORK, "settled").await,
        1
    );
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

async fn a_duplicate_notice_changes_nothing(backend: Backend) {
    let line = NoticeLine::new();
    let sim = Sim::start_notifying(&late(union_pay_qr::NETWORK), &line).await;
    let app = spawn_app_with(backend, routed(&sim, union_pay_qr::NETWORK, &line)).await;
    let mut shop = Shop::open(&app).await;
    let paid = shop.pay("D1", "42.50").await;
    let settled = shop.until(&paid.order_id, OrderStatus::Succeeded).await;
    let before = stored(&app).await;

    // UnionPay QR sends its transaction notice again, twice: each is acknowledged as its
    // format expects (so it stops resending) and changes nothing.
    let (network, notice) = booked_notice(&sim).await;
    for _ in 0..2 {
        let (status, answer) = line.post_signed(network, &notice).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("respCode=00"), "{answer}");
    }
    assert_eq!(stored(&app).await, before, "no posting, no record written");
    assert_eq!(shop.order(&paid.order_id).await, settled);
    assert_eq!(notices_counted(&app, network, "settled").await, 1);
    assert_eq!(notices_counted(&app, network, "already_final").await, 2);
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

async fn a_notice_without_a_valid_mac_is_refused_and_changes_nothing(backend: Backend) {
    let network = wallets::WECHAT_PAY;
    let mut u = Unanswered::pay(backend, network, "19.99").await;
    let body = NoticeLine::body(network, &u.notice);

    // No MAC, another network's key, a key of our own making, a MAC of another body.
    let (status, _) = u.line.post(network, body.clone(), None).await;
    assert_eq!(status, 401);
    let forgeries = [
        u.line.key(nets_union::NETWORK).sign(body.as_bytes()),
        NoticeKey([9; 32]).sign(body.as_bytes()),
        u.line.key(network).sign(b"<xml></xml>"),
    ];
    for mac in forgeries {
        let (status, _) = u.line.post(network, body.clone(), Some(mac)).await;
        assert_eq!(status, 403);
    }
    u.assert_unchanged().await;
    assert_eq!(notices_counted(&u.app, network, "mac_missing").await, 1);
    assert_eq!(notices_counted(&u.app, network, "mac_invalid").await, 3);

    // The same notice under WeChat Pay's own key is the network's word: it settles.
    let (status, answer) = u.line.post_signed(network, &u.notice).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("<return_code>SUCCESS</return_code>"),
        "{answer}"
    );
    u.shop.until(&u.order_id, OrderStatus::Succeeded).await;
}

async fn a_notice_for_another_amount_is_refused_and_changes_nothing(backend: Backend) {
    let network = e_cny::NETWORK;
    let mut u = Unanswered::pay(backend, network, "10.00").await;

    // A genuine notice (the network's key) that says it moved a fen more than we sent.
    let more = Notice {
        amount: cny_minor(u.notice.amount.minor + 1),
        ..u.notice.clone()
    };
    let (status, answer) = u.line.post_signed(network, &more).await;
    assert_eq!(status, 409, "{answer}");
    u.assert_unchanged().await;
    assert_eq!(notices_counted(&u.app, network, "amount_differs").await, 1);

    // The notice for the amount sent settles it.
    let (status, _) = u.line.post_signed(network, &u.notice).await;
    assert_eq!(status, 200);
    let settled = u.shop.until(&u.order_id, OrderStatus::Succeeded).await;
    assert_eq!(settled.amount, Some(cny("10.00")));
}

async fn a_notice_about_no_call_of_ours_is_answered_not_found(backend: Backend) {
    let network = nets_union::NETWORK;
    let mut u = Unanswered::pay(backend, network, "5.00").await;

    // A reference we never sent, and ours from a network we did not send it to.
    let stranger = Notice {
        reference: paygate::clearing::reference_for(&request_id("never-sent")),
        outcome: Outcome::Succeeded {
            network_reference: "NU000000000099".to_owned(),
        },
        amount: cny_minor(500),
    };
    let (status, _) = u.line.post_signed(network, &stranger).await;
    assert_eq!(status, 404);
    let (status, _) = u.line.post_signed(union_pay_qr::NETWORK, &u.notice).await;
    assert_eq!(
        status, 404,
        "a notice counts only from the network the call went to"
    );
    u.assert_unchanged().await;
    assert_eq!(
        notices_counted(&u.app, network, "unknown_reference").await,
        1
    );
    assert_eq!(
        notices_counted(&u.app, union_pay_qr::NETWORK, "unknown_reference").await,
        1
    );
}
