//! CashierService, black-box over mutual TLS: merchants, orders, every payment method and
//! scenario, refunds and merchant notifications. Failure paths first in each section.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Accounts, Backend, TestApp, assert_refused, book, cny, metadata_of, netsim::Sim, open_class_ii,
    open_merchant, payment_methods, request_id, spawn_app, spawn_app_crashable_with,
    spawn_app_with, top_up,
};
use paygate::grpc::pb::{
    self, AuthFactor, BalancePayment, BoundCardPayment, BusinessClass, CloseOrderRequest,
    CreateOrderRequest, GetOrderRequest, GetRefundRequest, IssuePaymentCodeRequest,
    MerchantQrPayment, MerchantType, OrderEventType, OrderStatus, PayRequest, PaymentMethodType,
    PaymentProduct, RefundRequest, RegisterMerchantRequest, ScanPayRequest, Scenario,
    SubscribeEventsRequest, cashier_service_client::CashierServiceClient, get_order_request,
    get_refund_request, pay_request,
};
use tonic::{Code, transport::Channel};

type Cashier = CashierServiceClient<Channel>;

const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";

struct Shop {
    merchant_id: String,
    settlement: String,
}

fn product(method: PaymentMethodType, scenario: Scenario, rate: &str) -> PaymentProduct {
    PaymentProduct {
        method: method as i32,
        scenario: scenario as i32,
        fee_rate: rate.to_owned(),
    }
}

fn products() -> Vec<PaymentProduct> {
    vec![
        product(PaymentMethodType::Balance, Scenario::App, "0.006"),
        product(PaymentMethodType::Balance, Scenario::PcWeb, "0.006"),
        product(PaymentMethodType::BoundCard, Scenario::App, "0.006"),
        product(PaymentMethodType::MerchantQr, Scenario::Pos, "0.0038"),
        product(PaymentMethodType::PaymentCode, Scenario::Pos, "0.0038"),
    ]
}

async fn cashier(app: &TestApp, caller: &str) -> Cashier {
    CashierServiceClient::new(app.channel(caller).await)
}

async fn shop(app: &TestApp, name: &str) -> Shop {
    let mut accounts = app.accounts("core-banking").await;
    let settlement = open_merchant(&mut accounts, name).await;
    let mut bank = cashier(app, "core-banking").await;
    let merchant = bank
        .register_merchant(RegisterMerchantRequest {
            request_id: request_id("merchant"),
            name: name.to_owned(),
            merchant_type: MerchantType::Normal as i32,
            service_provider_id: String::new(),
            settlement_account_id: settlement.clone(),
            products: products(),
            allowed_callers: vec![MERCHANT_CALLER.to_owned()],
        })
        .await
        .expect("merchant registers")
        .into_inner()
        .merchant
        .expect("merchant");
    Shop {
        merchant_id: merchant.merchant_id,
        settlement,
    }
}

/// A Class II payer opened by the payer's app back end, topped up with `amount`.
async fn payer(app: &TestApp, n: u64, amount: &str) -> (Accounts, String) {
    let mut accounts = app.accounts(PAYER_CALLER).await;
    let id = open_class_ii(&mut accounts, n).await;
    if amount != "0" {
        top_up(&mut accounts, &id, amount).await;
    }
    (accounts, id)
}

fn order_req(merchant: &str, no: &str, amount: &str, scenario: Scenario) -> CreateOrderRequest {
    CreateOrderRequest {
        request_id: request_id("order"),
        merchant_id: merchant.to_owned(),
        merchant_order_no: no.to_owned(),
        amount: Some(cny(amount)),
        subject: "a cup of tea".to_owned(),
        scenario: scenario as i32,
        expire_time: None,
    }
}

async fn create(c: &mut Cashier, merchant: &str, no: &str, amount: &str) -> pb::Order {
    c.create_order(order_req(merchant, no, amount, Scenario::App))
        .await
        .expect("order created")
        .into_inner()
        .order
        .expect("order")
}

/// A quick pay of `order` by the payer's bound card under `agreement`.
fn pay_bound_card(order: &str, payer: &str, agreement: &str) -> PayRequest {
    PayRequest {
        method: Some(pay_request::Method::BoundCard(BoundCardPayment {
            agreement_id: agreement.to_owned(),
        })),
        ..pay_balance(order, payer)
    }
}

fn pay_balance(order: &str, payer: &str) -> PayRequest {
    PayRequest {
        request_id: request_id("pay"),
        order_id: order.to_owned(),
        payer_account_id: payer.to_owned(),
        method: Some(pay_request::Method::Balance(BalancePayment {})),
    }
}

async fn get_order(c: &mut Cashier, id: &str) -> pb::Order {
    c.get_order(GetOrderRequest {
        lookup: Some(get_order_request::Lookup::OrderId(id.to_owned())),
    })
    .await
    .expect("order reads")
    .into_inner()
    .order
    .expect("order")
}

fn amount(m: &Option<pb::Money>) -> &str {
    m.as_ref().map_or("<none>", |m| m.amount.as_str())
}

fn refund_req(order: &str, value: &str) -> RefundRequest {
    RefundRequest {
        request_id: request_id("refund"),
        order_id: order.to_owned(),
        merchant_refund_no: String::new(),
        amount: Some(cny(value)),
        reason: "returned".to_owned(),
    }
}

// ----- merchants and orders -----------------------------------------------------------------

both_backends!(a_caller_acting_for_a_merchant_it_does_not_serve_is_refused);
async fn a_caller_acting_for_a_merchant_it_does_not_serve_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "tea-house").await;
    let mut stranger = cashier(&app, PAYER_CALLER).await;
    let refused = assert_refused(
        stranger
            .create_order(order_req(&shop.merchant_id, "A1", "1.00", Scenario::App))
            .await,
        Code::PermissionDenied,
        "MERCHANT_NOT_PERMITTED",
    );
    assert_eq!(metadata_of(&refused)["merchant_id"], shop.merchant_id);
    assert_refused(
        stranger
            .get_merchant(pb::GetMerchantRequest {
                merchant_id: shop.merchant_id.clone(),
            })
            .await,
        Code::PermissionDenied,
        "MERCHANT_NOT_PERMITTED",
    );
    // Only the bank registers ordinary merchants.
    let mut merchant_side = cashier(&app, MERCHANT_CALLER).await;
    assert_refused(
        merchant_side
            .register_merchant(RegisterMerchantRequest {
                request_id: request_id("m"),
                name: "rogue".into(),
                merchant_type: MerchantType::Normal as i32,
                service_provider_id: String::new(),
                settlement_account_id: shop.settlement.clone(),
                products: products(),
                allowed_callers: vec![],
            })
            .await,
        Code::PermissionDenied,
        "MERCHANT_NOT_PERMITTED",
    );
}

both_backends!(a_service_provider_acts_for_its_sub_merchants_only);
async fn a_service_provider_acts_for_its_sub_merchants_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut accounts = app.accounts("core-banking").await;
    let mut bank = cashier(&app, "core-banking").await;
    let register = |kind: MerchantType, provider: &str, settlement: &str, callers: Vec<String>| {
        RegisterMerchantRequest {
            request_id: request_id("m"),
            name: "m".into(),
            merchant_type: kind as i32,
            service_provider_id: provider.to_owned(),
            settlement_account_id: settlement.to_owned(),
            products: products(),
            allowed_callers: callers,
        }
    };
    let s1 = open_merchant(&mut accounts, "sp").await;
    let provider = bank
        .register_merchant(register(
            MerchantType::ServiceProvider,
            "",
            &s1,
            vec![MERCHANT_CALLER.into()],
        ))
        .await
        .expect("provider")
        .into_inner()
        .merchant
        .expect("merchant");
    // The provider's caller onboards a sub-merchant and acts for it.
    let mut sp = cashier(&app, MERCHANT_CALLER).await;
    let s2 = open_merchant(&mut accounts, "sub").await;
    let sub = sp
        .register_merchant(register(
            MerchantType::SubMerchant,
            &provider.merchant_id,
            &s2,
            vec![],
        ))
        .await
        .expect("sub-merchant")
        .into_inner()
        .merchant
        .expect("merchant");
    assert_eq!(sub.service_provider_id, provider.merchant_id);
    let sub_order = create(&mut sp, &sub.merchant_id, "S1", "1.00").await;
    // The provider follows its sub-merchants' events from its own stream.
    let mut stream = sp
        .subscribe_events(SubscribeEventsRequest {
            merchant_id: provider.merchant_id.clone(),
            include_sub_merchants: true,
            cursor: String::new(),
        })
        .await
        .expect("subscribed")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("an event");
    assert_eq!(first.order_id, sub_order.order_id);
    assert_eq!(first.event_type, OrderEventType::OrderCreated as i32);
    // Another merchant, not under the provider, is not its to act for.
    let other = shop(&app, "elsewhere").await;
    let mut outsider = cashier(&app, "auditor").await;
    outsider
        .get_merchant(pb::GetMerchantRequest {
            merchant_id: other.merchant_id.clone(),
        })
        .await
        .expect("the bank's auditor reads any merchant");
    let s3 = open_merchant(&mut accounts, "n").await;
    let normal = bank
        .register_merchant(register(
            MerchantType::Normal,
            "",
            &s3,
            vec!["loadtest".into()],
        ))
        .await
        .expect("normal")
        .into_inner()
        .merchant
        .expect("merchant");
    assert_refused(
        sp.create_order(order_req(&normal.merchant_id, "X", "1.00", Scenario::App))
            .await,
        Code::PermissionDenied,
        "MERCHANT_NOT_PERMITTED",
    );
}

both_backends!(a_duplicate_merchant_order_number_is_refused_but_a_replay_answers_the_first_order);
async fn a_duplicate_merchant_order_number_is_refused_but_a_replay_answers_the_first_order(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "dup").await;
    let mut c = cashier(&app, MERCHANT_CALLER).await;
    let req = order_req(&shop.merchant_id, "N-1", "12.34", Scenario::Pos);
    let first = c
        .create_order(req.clone())
        .await
        .expect("created")
        .into_inner()
        .order
        .unwrap();
    let replay = c
        .create_order(req.clone())
        .await
        .expect("replayed")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(first.order_id, replay.order_id);
    assert_eq!(first.business_class, BusinessClass::Offline as i32);
    assert_eq!(first.status, OrderStatus::Created as i32);
    assert!(
        first.qr_payload.starts_with("paygate:qr:order:"),
        "{first:?}"
    );
    let mut other = req.clone();
    other.request_id = request_id("order");
    assert_refused(
        c.create_order(other).await,
        Code::AlreadyExists,
        "DUPLICATE_MERCHANT_ORDER_NO",
    );
    let mut changed = req;
    changed.amount = Some(cny("1.00"));
    assert_refused(
        c.create_order(changed).await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let by_no = c
        .get_order(GetOrderRequest {
            lookup: Some(get_order_request::Lookup::MerchantOrder(
                pb::MerchantOrderRef {
                    merchant_id: shop.merchant_id.clone(),
                    merchant_order_no: "N-1".into(),
                },
            )),
        })
        .await
        .expect("by number")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(by_no.order_id, first.order_id);
    assert_eq!(amount(&by_no.amount), "12.34");
}

// ----- paying from the balance --------------------------------------------------------------

both_backends!(insufficient_balance_is_refused_and_the_order_stays_payable);
async fn insufficient_balance_is_refused_and_the_order_stays_payable(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "poor").await;
    let (_, payer) = payer(&app, 1, "10.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "P1", "10.01").await;
    let refused = assert_refused(
        p.pay(pay_balance(&order.order_id, &payer)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
    assert_eq!(metadata_of(&refused)["available"], "10.00");
    assert_eq!(
        get_order(&mut m, &order.order_id).await.status,
        OrderStatus::Created as i32
    );
}

both_backends!(an_expired_order_reads_closed_and_cannot_be_paid);
async fn an_expired_order_reads_closed_and_cannot_be_paid(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "late").await;
    let (_, payer) = payer(&app, 2, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let mut req = order_req(&shop.merchant_id, "E1", "1.00", Scenario::App);
    let soon_ms = app.clock.now_ms() + 300;
    req.expire_time = Some(prost_types::Timestamp {
        seconds: soon_ms / 1_000,
        nanos: (soon_ms % 1_000) as i32 * 1_000_000,
    });
    let order = m
        .create_order(req)
        .await
        .expect("created")
        .into_inner()
        .order
        .unwrap();
    app.clock.advance_ms(500);
    assert_refused(
        p.pay(pay_balance(&order.order_id, &payer)).await,
        Code::FailedPrecondition,
        "ORDER_EXPIRED",
    );
    let read = get_order(&mut m, &order.order_id).await;
    assert_eq!(read.status, OrderStatus::Closed as i32);
    assert_eq!(read.close_reason, "EXPIRED");
}

both_backends!(a_closed_order_cannot_be_paid_or_refunded);
async fn a_closed_order_cannot_be_paid_or_refunded(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "closed").await;
    let (_, payer) = payer(&app, 3, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "C1", "1.00").await;
    let closed = m
        .close_order(CloseOrderRequest {
            request_id: request_id("close"),
            order_id: order.order_id.clone(),
            reason: "customer left".into(),
        })
        .await
        .expect("closes")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(closed.status, OrderStatus::Closed as i32);
    assert_eq!(closed.close_reason, "customer left");
    assert_refused(
        p.pay(pay_balance(&order.order_id, &payer)).await,
        Code::FailedPrecondition,
        "ORDER_CLOSED",
    );
    assert_refused(
        m.refund(refund_req(&order.order_id, "1.00")).await,
        Code::FailedPrecondition,
        "ORDER_CLOSED",
    );
    let unpaid = create(&mut m, &shop.merchant_id, "C2", "1.00").await;
    assert_refused(
        m.refund(refund_req(&unpaid.order_id, "1.00")).await,
        Code::FailedPrecondition,
        "ORDER_NOT_PAID",
    );
}

both_backends!(a_balance_payment_splits_the_fee_and_a_second_payment_is_refused);
async fn a_balance_payment_splits_the_fee_and_a_second_payment_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "tea").await;
    let (mut accounts, payer) = payer(&app, 4, "500.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "T1", "100.00").await;
    let paid = p
        .pay(pay_balance(&order.order_id, &payer))
        .await
        .expect("paid")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    let payment = paid.payment.clone().expect("payment");
    assert_eq!(payment.method, PaymentMethodType::Balance as i32);
    assert_eq!(amount(&payment.fee), "0.60");
    assert_eq!(amount(&payment.net_amount), "99.40");
    assert!(payment.transaction_id.parse::<u64>().is_ok(), "{payment:?}");
    assert!(paid.pay_time.is_some());
    assert_eq!(book(&mut accounts, &payer).await, "400.00");
    let mut bank = app.accounts("core-banking").await;
    assert_eq!(book(&mut bank, &shop.settlement).await, "99.40");
    assert_refused(
        p.pay(pay_balance(&order.order_id, &payer)).await,
        Code::FailedPrecondition,
        "ORDER_ALREADY_PAID",
    );
}

both_backends!(a_payment_retried_under_its_request_id_answers_the_paid_order_and_charges_once);
async fn a_payment_retried_under_its_request_id_answers_the_paid_order_and_charges_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "retry").await;
    let (mut accounts, payer) = payer(&app, 14, "500.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "R1", "100.00").await;
    let pay = pay_balance(&order.order_id, &payer);
    let first = p.pay(pay.clone()).await.expect("paid").into_inner().order;
    // Same id, other body: refused, whatever the order's state.
    let mut other = pay.clone();
    other.payer_account_id = shop.settlement.clone();
    assert_refused(
        p.pay(other).await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    // A retry after a lost answer: the first answer again, not ORDER_ALREADY_PAID.
    let retried = p
        .pay(pay.clone())
        .await
        .expect("retry answers")
        .into_inner()
        .order;
    assert_eq!(retried, first);
    assert_eq!(book(&mut accounts, &payer).await, "400.00");
    // Still the first answer after a refund (the order as the payment left it), and still
    // nothing charged twice; reading the order shows the refund.
    m.refund(refund_req(&order.order_id, "30.00"))
        .await
        .expect("refunded");
    let later = p.pay(pay).await.expect("retry answers").into_inner().order;
    assert_eq!(later, first);
    let now = get_order(&mut m, &order.order_id).await;
    assert_eq!(now.status, OrderStatus::Succeeded as i32);
    assert_eq!(amount(&now.refunded_amount), "30.00");
    assert_eq!(book(&mut accounts, &payer).await, "430.00");
}

both_backends!(a_close_retried_under_its_request_id_answers_the_closed_order);
async fn a_close_retried_under_its_request_id_answers_the_closed_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "reclose").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "RC1", "1.00").await;
    let close = CloseOrderRequest {
        request_id: request_id("close"),
        order_id: order.order_id.clone(),
        reason: "customer left".into(),
    };
    let first = m
        .close_order(close.clone())
        .await
        .expect("closes")
        .into_inner()
        .order;
    let retried = m
        .close_order(close.clone())
        .await
        .expect("retry answers")
        .into_inner()
        .order;
    assert_eq!(retried, first);
    // A new close request for the closed order is still refused.
    let again = CloseOrderRequest {
        request_id: request_id("close"),
        ..close
    };
    assert_refused(
        m.close_order(again).await,
        Code::FailedPrecondition,
        "ORDER_CLOSED",
    );
}

both_backends!(the_same_order_paid_concurrently_is_charged_exactly_once);
async fn the_same_order_paid_concurrently_is_charged_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "race").await;
    let (mut accounts, payer) = payer(&app, 5, "1000.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "R1", "10.00").await;
    let p = cashier(&app, PAYER_CALLER).await;
    let attempts = (0..12).map(|_| {
        let mut p = p.clone();
        let req = pay_balance(&order.order_id, &payer);
        tokio::spawn(async move { p.pay(req).await })
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    for r in &results {
        if let Ok(Err(status)) = r {
            assert_eq!(
                common::reason_of(status),
                "ORDER_ALREADY_PAID",
                "{status:?}"
            );
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(book(&mut accounts, &payer).await, "990.00");
}

both_backends!(multi_thread: identical_payments_sent_at_once_all_answer_the_paid_order);
async fn identical_payments_sent_at_once_all_answer_the_paid_order(backend: Backend) {
    // One request, sent 50 times at once (a client retrying on a timer): it executes once and
    // every copy is told the payment went through, none that its own order is already paid.
    let app = spawn_app(backend).await;
    let shop = shop(&app, "copies").await;
    let (mut accounts, payer) = payer(&app, 5, "1000.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "D1", "10.00").await;
    let p = cashier(&app, PAYER_CALLER).await;
    let req = pay_balance(&order.order_id, &payer);
    // Spread over a few milliseconds, so copies arrive before, during and after the first
    // one's batch commits.
    let copies = (0..50u64).map(|i| {
        let mut p = p.clone();
        let req = req.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(i * 200)).await;
            p.pay(req).await
        })
    });
    let answers = futures::future::join_all(copies).await;
    let mut paid = Vec::new();
    for answer in answers {
        let order = answer
            .expect("task")
            .expect("every copy answers the payment")
            .into_inner()
            .order
            .expect("order");
        paid.push(order.payment.expect("payment"));
    }
    assert!(paid.windows(2).all(|w| w[0] == w[1]), "one payment");
    assert_eq!(book(&mut accounts, &payer).await, "990.00");
}

both_backends!(a_payment_beyond_the_class_limit_names_the_rule);
async fn a_payment_beyond_the_class_limit_names_the_rule(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.accounts.class_ii_non_bound_outflow_per_day = "50.00".into()
    })
    .await;
    let shop = shop(&app, "limit").await;
    let (_, payer) = payer(&app, 6, "500.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "L1", "60.00").await;
    let refused = assert_refused(
        p.pay(pay_balance(&order.order_id, &payer)).await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    assert_eq!(
        metadata_of(&refused)["limit_rule"],
        "CLASS_II_NON_BOUND_OUTFLOW"
    );
}

// ----- QR, payment codes and quick pay ------------------------------------------------------

both_backends!(a_payer_pays_the_order_its_dynamic_qr_names);
async fn a_payer_pays_the_order_its_dynamic_qr_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "qr").await;
    let (_, payer) = payer(&app, 8, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = m
        .create_order(order_req(&shop.merchant_id, "Q1", "20.00", Scenario::Pos))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let paid = p
        .pay(PayRequest {
            request_id: request_id("qr"),
            order_id: String::new(),
            payer_account_id: payer.clone(),
            method: Some(pay_request::Method::MerchantQr(MerchantQrPayment {
                qr_payload: order.qr_payload.clone(),
                amount: None,
                verified_factors: vec![AuthFactor::Password as i32, AuthFactor::SmsOtp as i32],
            })),
        })
        .await
        .expect("paid by QR")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(paid.order_id, order.order_id);
    let payment = paid.payment.unwrap();
    assert_eq!(payment.method, PaymentMethodType::MerchantQr as i32);
    assert_eq!(payment.risk_level, pb::BarcodeRiskLevel::B as i32);
    assert_eq!(amount(&payment.fee), "0.08");
}

both_backends!(static_merchant_code_payments_stop_at_500_a_day);
async fn static_merchant_code_payments_stop_at_500_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "static").await;
    let (_, payer) = payer(&app, 9, "2000.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let merchant = m
        .get_merchant(pb::GetMerchantRequest {
            merchant_id: shop.merchant_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .merchant
        .unwrap();
    let mut p = cashier(&app, PAYER_CALLER).await;
    let scan = |value: &str| PayRequest {
        request_id: request_id("static"),
        order_id: String::new(),
        payer_account_id: payer.clone(),
        method: Some(pay_request::Method::MerchantQr(MerchantQrPayment {
            qr_payload: merchant.static_qr_payload.clone(),
            amount: Some(cny(value)),
            verified_factors: vec![AuthFactor::Password as i32],
        })),
    };
    let paid = p
        .pay(scan("450.00"))
        .await
        .expect("first")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    assert_eq!(paid.merchant_id, shop.merchant_id);
    let refused = assert_refused(
        p.pay(scan("60.00")).await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    let md = metadata_of(&refused);
    assert_eq!(md["limit_rule"], "BARCODE_STATIC_CODE");
    assert_eq!(md["remaining"], "50.00");
    p.pay(scan("50.00")).await.expect("up to the limit");
}

both_backends!(a_payment_code_pays_once_and_is_refused_when_reused_or_expired);
async fn a_payment_code_pays_once_and_is_refused_when_reused_or_expired(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.cashier.payment_code_ttl_ms = 400).await;
    let shop = shop(&app, "pos").await;
    let (mut accounts, payer) = payer(&app, 10, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let issue = |factors: Vec<i32>| IssuePaymentCodeRequest {
        request_id: request_id("code"),
        payer_account_id: payer.clone(),
        verified_factors: factors,
    };
    let code = p
        .issue_payment_code(issue(vec![AuthFactor::Password as i32]))
        .await
        .expect("issued")
        .into_inner()
        .payment_code
        .unwrap();
    assert_eq!(code.code.len(), 18);
    assert_eq!(code.risk_level, pb::BarcodeRiskLevel::C as i32);
    let scan = |no: &str, code: &str, value: &str| ScanPayRequest {
        request_id: request_id("scan"),
        merchant_id: shop.merchant_id.clone(),
        merchant_order_no: no.to_owned(),
        payment_code: code.to_owned(),
        amount: Some(cny(value)),
        subject: "noodles".into(),
        scenario: Scenario::Pos as i32,
    };
    let paid = m
        .scan_pay(scan("POS-1", &code.code, "12.00"))
        .await
        .expect("scanned")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    assert_eq!(
        paid.payment.unwrap().method,
        PaymentMethodType::PaymentCode as i32
    );
    assert_eq!(book(&mut accounts, &payer).await, "88.00");
    assert_refused(
        m.scan_pay(scan("POS-2", &code.code, "1.00")).await,
        Code::FailedPrecondition,
        "PAYMENT_CODE_USED",
    );
    assert_refused(
        m.scan_pay(scan("POS-3", "281234567890123456", "1.00"))
            .await,
        Code::FailedPrecondition,
        "PAYMENT_CODE_INVALID",
    );
    let late = p
        .issue_payment_code(issue(vec![]))
        .await
        .unwrap()
        .into_inner()
        .payment_code
        .unwrap();
    app.clock.advance_ms(600);
    assert_refused(
        m.scan_pay(scan("POS-4", &late.code, "1.00")).await,
        Code::FailedPrecondition,
        "PAYMENT_CODE_EXPIRED",
    );
    assert_eq!(book(&mut accounts, &payer).await, "88.00");
}

both_backends!(dynamic_code_limits_follow_the_risk_level);
async fn dynamic_code_limits_follow_the_risk_level(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "risk").await;
    let (_, payer) = payer(&app, 12, "5000.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let p = cashier(&app, PAYER_CALLER).await;
    let scan_with = |factors: Vec<i32>, value: &'static str| {
        let payer = payer.clone();
        let merchant = shop.merchant_id.clone();
        let mut p = p.clone();
        async move {
            let code = p
                .issue_payment_code(IssuePaymentCodeRequest {
                    request_id: request_id("code"),
                    payer_account_id: payer,
                    verified_factors: factors,
                })
                .await
                .unwrap()
                .into_inner()
                .payment_code
                .unwrap();
            ScanPayRequest {
                request_id: request_id("scan"),
                merchant_id: merchant,
                merchant_order_no: request_id("no"),
                payment_code: code.code,
                amount: Some(cny(value)),
                subject: "s".into(),
                scenario: Scenario::Pos as i32,
            }
        }
    };
    let c_level = scan_with(vec![AuthFactor::Password as i32], "1000.01").await;
    let refused = assert_refused(
        m.scan_pay(c_level).await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    assert_eq!(
        metadata_of(&refused)["limit_rule"],
        "BARCODE_DYNAMIC_CODE_C"
    );
    let b_level = scan_with(
        vec![AuthFactor::Password as i32, AuthFactor::Biometric as i32],
        "1000.01",
    )
    .await;
    m.scan_pay(b_level).await.expect("B allows 5,000 a day");
}

both_backends!(
    multi_thread: a_quick_pay_and_a_card_refund_the_network_never_answered_are_settled_by_the_recovery_worker_after_a_crash
);
async fn a_quick_pay_and_a_card_refund_the_network_never_answered_are_settled_by_the_recovery_worker_after_a_crash(
    backend: Backend,
) {
    // NetsUnion books every debit and answers none (queries it answers).
    let sim =
        Sim::start("seed = 31\n[[networks]]\nnetwork = \"NETS_UNION\"\nno_answer_rate = 1.0\n")
            .await;
    let recovery = paygate::clearing::routing::RecoveryConfig {
        interval_ms: 100,
        first_query_after_ms: 600,
        query_backoff_max_ms: 2_000,
        bound_ms: 30_000,
        ..Default::default()
    };
    let mut app = spawn_app_crashable_with(
        backend,
        sim.routing_quick_pay(paygate::clearing::nets_union::NETWORK, recovery),
    )
    .await;
    let shop = shop(&app, "card").await;
    let (mut accounts, payer) = payer(&app, 14, "0").await;
    let agreement = common::bound_card_agreement(&mut accounts, &payer).await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "K2", "50.00").await;
    let req = pay_bound_card(&order.order_id, &payer, &agreement);
    let processing = p
        .pay(req.clone())
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(processing.status, OrderStatus::Processing as i32);
    assert_eq!(
        processing.payment.unwrap().network,
        pb::ClearingNetwork::Netsunion as i32
    );

    drop((m, p, accounts));
    app.crash().await;
    app.clock.advance_ms(600);
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while get_order(&mut m, &order.order_id).await.status != OrderStatus::Succeeded as i32 {
        assert!(std::time::Instant::now() < deadline, "never paid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut p = cashier(&app, PAYER_CALLER).await;
    let again = p.pay(req).await.unwrap().into_inner().order.unwrap();
    assert_eq!(
        again.status,
        OrderStatus::Succeeded as i32,
        "the retry answers the paid order"
    );
    assert!(!again.payment.unwrap().network_reference.is_empty());
    let mut bank = app.accounts("core-banking").await;
    assert_eq!(book(&mut bank, &shop.settlement).await, "49.70");
    assert_eq!(sim.books().await.len(), 1, "the card was debited once");

    // A refund to the card the network never answers: the worker settles it too.
    let refund_request = refund_req(&order.order_id, "40.00");
    let refund = m
        .refund(refund_request.clone())
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(refund.status, pb::RefundStatus::Processing as i32);
    app.clock.advance_ms(600);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = m
            .get_refund(GetRefundRequest {
                lookup: Some(get_refund_request::Lookup::RefundId(
                    refund.refund_id.clone(),
                )),
            })
            .await
            .unwrap()
            .into_inner()
            .refund
            .unwrap();
        if now.status == pb::RefundStatus::Succeeded as i32 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never refunded: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replay = m
        .refund(refund_request)
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(replay.status, pb::RefundStatus::Succeeded as i32);
    assert_eq!(book(&mut bank, &shop.settlement).await, "9.70");
    assert_eq!(sim.books().await.len(), 2, "the card was credited once");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(multi_thread: a_bound_card_payment_and_its_refund_go_through_e_cny_and_reconcile);
/// e-CNY (数字人民币), the network added last (one module, one registry line, its contract value;
/// docs/ARCHITECTURE.md, "A new clearing network"): a payment from the bound wallet and a
/// partial refund to it cross the simulator in e-CNY's own format, its reconciliation matches
/// both, and the end of day settles its suspense account to zero.
async fn a_bound_card_payment_and_its_refund_go_through_e_cny_and_reconcile(backend: Backend) {
    use common::{
        eod::{dashed, done_detail, eod_run_later, eod_status, recon_period},
        yields::rows,
    };
    use paygate::clearing::{e_cny, recon::ReconKind};

    let sim = Sim::start("seed = 41\n").await;
    let app = spawn_app_with(backend, sim.routing_quick_pay_unrecovered(e_cny::NETWORK)).await;
    let shop = shop(&app, "e-cny").await;
    let (mut accounts, payer) = payer(&app, 16, "0").await;
    let agreement = common::bound_card_agreement(&mut accounts, &payer).await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "E1", "50.00").await;
    let req = pay_bound_card(&order.order_id, &payer, &agreement);
    let paid = p.pay(req).await.unwrap().into_inner().order.unwrap();
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    let payment = paid.payment.unwrap();
    assert_eq!(payment.network, pb::ClearingNetwork::ECny as i32);
    assert!(
        payment.network_reference.starts_with("ECNY"),
        "e-CNY's own reference: {payment:?}"
    );
    // A refund above what was paid never reaches the network.
    assert_refused(
        m.refund(refund_req(&order.order_id, "50.01")).await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_PAID",
    );
    let refund = m
        .refund(refund_req(&order.order_id, "20.00"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(refund.status, pb::RefundStatus::Succeeded as i32);
    let mut bank = app.accounts("core-banking").await;
    assert_eq!(book(&mut bank, &shop.settlement).await, "29.70");

    // The network booked the debit of the wallet and the refund pushed back to it, once each.
    let mut books: Vec<(ReconKind, i64)> = sim
        .books()
        .await
        .iter()
        .map(|e| {
            assert_eq!(e.network, e_cny::NETWORK);
            (e.kind, e.amount.minor)
        })
        .collect();
    books.sort_by_key(|(_, minor)| -minor);
    assert_eq!(
        books,
        [(ReconKind::Debit, 5_000), (ReconKind::Credit, 2_000)]
    );

    // Its statement of the date matches our records of both calls.
    let period = recon_period(&app, e_cny::NETWORK);
    let config = app.dir().join("e-cny.toml");
    std::fs::write(&config, toml::to_string(&app.config).unwrap()).unwrap();
    let (code, out) = app.paygate(&[
        "recon",
        "--config",
        config.to_str().unwrap(),
        "--network",
        "E_CNY",
        "--period",
        &period,
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 matched, 0 unsettled, 0 breaks"), "{out}");

    // The end of day reconciles and settles the date: the statement's net (50.00 in, 20.00
    // out) comes back, and e-CNY's suspense account is even.
    let later = eod_run_later(&app, 2);
    let steps = eod_status(&app, &later, &dashed(&period));
    let detail = |name: &str| done_detail(&steps, name);
    assert_eq!(
        detail("RECON/E_CNY"),
        "2 matched, 0 breaks, 0 carried to the next date, net 3000"
    );
    assert_eq!(detail("SETTLE/E_CNY"), "received 30.00 CNY from E_CNY");
    let internal = rows::balances_of_kind(&app.config.database.url, "BANK_INTERNAL").await;
    assert_eq!(internal["CLEARING_SUSPENSE_E_CNY"], 0, "{internal:?}");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(bound_card_quick_pay_settles_through_the_network);
async fn bound_card_quick_pay_settles_through_the_network(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "card").await;
    let (mut accounts, payer) = payer(&app, 13, "0").await;
    let agreement = common::bound_card_agreement(&mut accounts, &payer).await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "K1", "50.00").await;
    assert_refused(
        p.pay(pay_bound_card(&order.order_id, &payer, "AGR-not-mine"))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let paid = p
        .pay(pay_bound_card(&order.order_id, &payer, &agreement))
        .await
        .expect("quick pay")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    let payment = paid.payment.unwrap();
    assert_eq!(payment.network, pb::ClearingNetwork::OnUs as i32);
    assert!(payment.masked_card_number.contains('*'), "{payment:?}");
    assert_eq!(
        book(&mut accounts, &payer).await,
        "0.00",
        "the card paid, not the balance"
    );
    let mut bank = app.accounts("core-banking").await;
    assert_eq!(book(&mut bank, &shop.settlement).await, "49.70");
    // The fee is kept: the merchant bears the refund out of its settlement balance.
    let refund = m
        .refund(refund_req(&order.order_id, "40.00"))
        .await
        .expect("refund to card");
    assert_eq!(
        refund.into_inner().refund.unwrap().status,
        pb::RefundStatus::Succeeded as i32
    );
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(payment_methods_list_what_can_pay_now_with_reasons_for_the_rest);
async fn payment_methods_list_what_can_pay_now_with_reasons_for_the_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "methods").await;
    let (_, payer) = payer(&app, 14, "5.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = create(&mut m, &shop.merchant_id, "M1", "10.00").await;
    let methods = payment_methods(&mut p, &order.order_id, &payer).await;
    let find = |method: PaymentMethodType| {
        methods
            .iter()
            .find(|o| o.method == method as i32)
            .cloned()
            .expect("listed")
    };
    assert!(find(PaymentMethodType::BoundCard).available);
    assert!(methods[0].available, "available ones first");
    assert_eq!(
        find(PaymentMethodType::Balance).unavailable_reason,
        "INSUFFICIENT_FUNDS"
    );
    assert_eq!(
        find(PaymentMethodType::MerchantQr).unavailable_reason,
        "PRODUCT_NOT_SIGNED"
    );
    assert_eq!(
        find(PaymentMethodType::YieldBalance).unavailable_reason,
        "PRODUCT_NOT_SIGNED"
    );
    assert_eq!(amount(&find(PaymentMethodType::Balance).spendable), "5.00");
}

// ----- refunds ------------------------------------------------------------------------------

both_backends!(refunds_are_partial_and_repeated_and_never_above_the_paid_amount);
async fn refunds_are_partial_and_repeated_and_never_above_the_paid_amount(backend: Backend) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "refunds").await;
    let (mut accounts, payer) = payer(&app, 15, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    // Another sale first: the fee is kept, so a full refund is paid partly out of it.
    let float = create(&mut m, &shop.merchant_id, "F0", "10.00").await;
    p.pay(pay_balance(&float.order_id, &payer))
        .await
        .expect("paid");
    let order = create(&mut m, &shop.merchant_id, "F1", "30.00").await;
    p.pay(pay_balance(&order.order_id, &payer))
        .await
        .expect("paid");
    let mut first = refund_req(&order.order_id, "10.00");
    first.merchant_refund_no = "RF-1".into();
    let r1 = m
        .refund(first.clone())
        .await
        .expect("first refund")
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(amount(&r1.amount), "10.00");
    assert_eq!(amount(&r1.fee_refunded), "0.00");
    let again = m
        .refund(first)
        .await
        .expect("replay")
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(again.refund_id, r1.refund_id);
    m.refund(refund_req(&order.order_id, "15.00"))
        .await
        .expect("second refund");
    let refused = assert_refused(
        m.refund(refund_req(&order.order_id, "5.01")).await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_PAID",
    );
    assert_eq!(metadata_of(&refused)["refundable"], "5.00");
    let mut dup = refund_req(&order.order_id, "1.00");
    dup.merchant_refund_no = "RF-1".into();
    assert_refused(
        m.refund(dup).await,
        Code::AlreadyExists,
        "DUPLICATE_MERCHANT_REFUND_NO",
    );
    m.refund(refund_req(&order.order_id, "5.00"))
        .await
        .expect("the rest");
    assert_eq!(book(&mut accounts, &payer).await, "90.00");
    let read = get_order(&mut m, &order.order_id).await;
    assert_eq!(amount(&read.refunded_amount), "30.00");
    let got = m
        .get_refund(GetRefundRequest {
            lookup: Some(get_refund_request::Lookup::MerchantRefund(
                pb::MerchantRefundRef {
                    merchant_id: shop.merchant_id.clone(),
                    merchant_refund_no: "RF-1".into(),
                },
            )),
        })
        .await
        .expect("by number")
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(got.refund_id, r1.refund_id);
    assert!(got.transaction_id.parse::<u64>().is_ok());
}

// ----- notifications and the books ----------------------------------------------------------

async fn collect(
    c: &mut Cashier,
    merchant: &str,
    cursor: &str,
    count: usize,
) -> Vec<pb::SubscribeEventsResponse> {
    let mut stream = c
        .subscribe_events(SubscribeEventsRequest {
            merchant_id: merchant.to_owned(),
            include_sub_merchants: false,
            cursor: cursor.to_owned(),
        })
        .await
        .expect("subscribed")
        .into_inner();
    let mut got = Vec::new();
    while got.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("an event");
        got.push(next);
    }
    got
}

both_backends!(a_subscriber_that_resumes_from_its_cursor_gets_every_event_once_in_order_per_order);
async fn a_subscriber_that_resumes_from_its_cursor_gets_every_event_once_in_order_per_order(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let shop = shop(&app, "events").await;
    let (_, payer) = payer(&app, 16, "1000.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let mut orders = Vec::new();
    for i in 0..4 {
        let o = create(&mut m, &shop.merchant_id, &format!("EV{i}"), "10.00").await;
        p.pay(pay_balance(&o.order_id, &payer)).await.expect("paid");
        orders.push(o.order_id);
    }
    m.refund(refund_req(&orders[0], "3.00"))
        .await
        .expect("refund");
    // 4 × (created, paid) + 1 refund = 9 events; read 5, disconnect, resume from the 5th.
    let first = collect(&mut m, &shop.merchant_id, "", 5).await;
    let resumed = collect(&mut m, &shop.merchant_id, &first[4].cursor, 4).await;
    // At least once: a resume from an older cursor repeats; de-duplication by id removes it.
    let repeated = collect(&mut m, &shop.merchant_id, &first[2].cursor, 6).await;
    let mut seen = std::collections::BTreeSet::new();
    let mut events = Vec::new();
    for e in first.into_iter().chain(resumed).chain(repeated) {
        if seen.insert(e.event_id.clone()) {
            events.push(e);
        }
    }
    assert_eq!(events.len(), 9);
    for order in &orders {
        let seqs: Vec<i64> = events
            .iter()
            .filter(|e| &e.order_id == order)
            .map(|e| e.order_sequence)
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{order}: {seqs:?}");
    }
    let types: Vec<i32> = events
        .iter()
        .filter(|e| e.order_id == orders[0])
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            OrderEventType::OrderCreated as i32,
            OrderEventType::PaymentSucceeded as i32,
            OrderEventType::RefundSucceeded as i32
        ]
    );
    let refund_event = events.last().unwrap();
    assert_eq!(
        amount(&refund_event.refund.as_ref().unwrap().amount),
        "3.00"
    );
    assert_refused(
        m.subscribe_events(SubscribeEventsRequest {
            merchant_id: shop.merchant_id.clone(),
            include_sub_merchants: false,
            cursor: "not-a-cursor".into(),
        })
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}

fn minor(text: &str) -> i64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, "00"));
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

both_backends!(
    after_mixed_payments_and_refunds_the_ledger_verifies_and_each_merchant_balances_to_the_fen
);
async fn after_mixed_payments_and_refunds_the_ledger_verifies_and_each_merchant_balances_to_the_fen(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let shops = [shop(&app, "books-a").await, shop(&app, "books-b").await];
    let (_, payer) = payer(&app, 17, "5000.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let mut expected = [0i64; 2];
    let amounts = [
        "0.01", "1.33", "17.77", "99.99", "250.00", "3.14", "0.50", "64.01",
    ];
    for (i, value) in amounts.iter().enumerate() {
        let k = i % 2;
        let o = create(&mut m, &shops[k].merchant_id, &format!("B{i}"), value).await;
        let paid = p
            .pay(pay_balance(&o.order_id, &payer))
            .await
            .expect("paid")
            .into_inner()
            .order
            .unwrap();
        let fee = minor(amount(&paid.payment.as_ref().unwrap().fee));
        expected[k] += minor(value) - fee;
        if i % 3 == 0 {
            let part = (minor(value) / 2).max(1);
            let text = format!("{}.{:02}", part / 100, part % 100);
            m.refund(refund_req(&o.order_id, &text))
                .await
                .expect("refund");
            expected[k] -= part;
        }
    }
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
    let mut bank = app.accounts("core-banking").await;
    for (k, shop) in shops.iter().enumerate() {
        assert_eq!(minor(&book(&mut bank, &shop.settlement).await), expected[k]);
    }
}

both_backends!(an_unpaid_order_is_closed_at_its_expiry_and_the_merchant_is_told);
async fn an_unpaid_order_is_closed_at_its_expiry_and_the_merchant_is_told(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.cashier.expiry_sweep_interval_ms = 50).await;
    let shop = shop(&app, "sweep").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut req = order_req(&shop.merchant_id, "X1", "1.00", Scenario::App);
    let soon_ms = app.clock.now_ms() + 200;
    req.expire_time = Some(prost_types::Timestamp {
        seconds: soon_ms / 1_000,
        nanos: (soon_ms % 1_000) as i32 * 1_000_000,
    });
    let order = m
        .create_order(req)
        .await
        .expect("created")
        .into_inner()
        .order
        .expect("order");
    let paid_later = create(&mut m, &shop.merchant_id, "X2", "1.00").await;
    app.clock.advance_ms(300);

    let events = collect(&mut m, &shop.merchant_id, "", 3).await;
    let read = get_order(&mut m, &order.order_id).await;
    let still_open = get_order(&mut m, &paid_later.order_id).await;

    let kinds: Vec<(String, i32)> = events
        .iter()
        .map(|e| (e.order_id.clone(), e.event_type))
        .collect();
    assert_eq!(
        kinds,
        [
            (order.order_id.clone(), OrderEventType::OrderCreated as i32),
            (
                paid_later.order_id.clone(),
                OrderEventType::OrderCreated as i32
            ),
            (order.order_id.clone(), OrderEventType::OrderClosed as i32),
        ]
    );
    assert_eq!(read.status, OrderStatus::Closed as i32);
    assert_eq!(read.close_reason, "EXPIRED");
    assert_eq!(still_open.status, OrderStatus::Created as i32);
}
