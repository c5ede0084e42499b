//! A replay answers the first answer, byte for byte, and a refusal that depends on state claims
//! its request id wherever it was decided — black-box over mutual TLS, on both back ends.
//!
//! Each test makes a request, changes the state its answer showed with other requests, then
//! sends the first request again: the whole answer equals the first one. A refusal met before
//! the batch (no bound card, a product not open) answers again after the state that caused it
//! is gone; a new request id is a new request and succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Accounts, Backend, TestApp, assert_refused,
    back_office::{card_of, set_card},
    cny, open_class_ii, open_merchant, request_id, spawn_app, top_up, transfer_req,
    yields::*,
};
use paygate::grpc::pb::{
    self, BalancePayment, BoundCardPayment, CloseOrderRequest, CreateOrderRequest,
    PaymentMethodType, TopUpRequest, cashier_service_client::CashierServiceClient, pay_request,
};
use tonic::{Code, transport::Channel};

type Cashier = CashierServiceClient<Channel>;

const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";

fn top_up_req(account: &str, amount: &str) -> TopUpRequest {
    TopUpRequest {
        request_id: request_id("topup"),
        account_id: account.to_owned(),
        amount: Some(cny(amount)),
        memo: String::new(),
    }
}

async fn cashier(app: &TestApp, caller: &str) -> Cashier {
    CashierServiceClient::new(app.channel(caller).await)
}

/// A merchant signed for balance and bound-card payments in apps; its id.
async fn shop(app: &TestApp, name: &str) -> String {
    let methods = [PaymentMethodType::Balance, PaymentMethodType::BoundCard];
    common::app_merchant(app, name, &methods, &[MERCHANT_CALLER]).await
}

fn order_req(merchant: &str, no: &str, amount: &str) -> CreateOrderRequest {
    common::app_order_req(merchant, no, amount)
}

async fn funded_class_ii(c: &mut Accounts, n: u64, amount: &str) -> String {
    let id = open_class_ii(c, n).await;
    top_up(c, &id, amount).await;
    id
}

// ----- a replay answers the first answer --------------------------------------------------

both_backends!(a_replayed_transfer_answers_the_balance_right_after_it_not_the_balance_now);
async fn a_replayed_transfer_answers_the_balance_right_after_it_not_the_balance_now(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = funded_class_ii(&mut c, 1, "500.00").await;
    let b = open_class_ii(&mut c, 2).await;
    let first_req = transfer_req(&a, &b, "10.00");
    let first = c.transfer(first_req.clone()).await.expect("transfer");
    let first = first.into_inner();
    assert_eq!(
        first
            .from_balance
            .as_ref()
            .unwrap()
            .available
            .as_ref()
            .unwrap()
            .amount,
        "490.00"
    );

    // The balance and the day's non-bound outflow change afterwards, and the clock moves on.
    c.transfer(transfer_req(&a, &b, "25.00"))
        .await
        .expect("a later transfer");
    top_up(&mut c, &a, "7.00").await;
    app.clock.advance_ms(5_000);

    let replay = c.transfer(first_req).await.expect("the replay answers");
    assert_eq!(replay.into_inner(), first, "the first answer, whole");
}

both_backends!(a_replayed_top_up_answers_its_first_balance_after_transfers_out);
async fn a_replayed_top_up_answers_its_first_balance_after_transfers_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    let req = top_up_req(&a, "300.00");
    let first = c.top_up(req.clone()).await.expect("top-up").into_inner();
    c.transfer(transfer_req(&a, &b, "40.00"))
        .await
        .expect("money leaves");
    app.clock.advance_ms(5_000);

    let replay = c
        .top_up(req)
        .await
        .expect("the replay answers")
        .into_inner();
    assert_eq!(replay, first);
}

both_backends!(replayed_create_and_close_order_answer_the_order_as_they_left_it);
async fn replayed_create_and_close_order_answer_the_order_as_they_left_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let merchant = shop(&app, "Tea House").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut accounts = app.accounts(PAYER_CALLER).await;
    let payer = funded_class_ii(&mut accounts, 1, "100.00").await;
    let mut p = cashier(&app, PAYER_CALLER).await;

    // Created, then paid: a replay of the creation still answers a CREATED order.
    let create = order_req(&merchant, "N1", "12.00");
    let created = m
        .create_order(create.clone())
        .await
        .expect("order")
        .into_inner();
    let order_id = created.order.as_ref().unwrap().order_id.clone();
    let pay = common::pay_req(
        &order_id,
        &payer,
        pay_request::Method::Balance(BalancePayment {}),
    );
    let paid = p.pay(pay.clone()).await.expect("paid").into_inner();
    app.clock.advance_ms(5_000);
    let replay = m.create_order(create).await.expect("replay").into_inner();
    assert_eq!(replay, created);
    assert_eq!(
        replay.order.unwrap().status,
        pb::OrderStatus::Created as i32
    );
    let replay = p.pay(pay).await.expect("pay replays").into_inner();
    assert_eq!(replay, paid);

    // Closed: a replay long after the order's expiry still answers the close it made.
    let other = m
        .create_order(order_req(&merchant, "N2", "3.00"))
        .await
        .expect("order")
        .into_inner()
        .order
        .unwrap();
    let close = CloseOrderRequest {
        request_id: request_id("close"),
        order_id: other.order_id,
        reason: "customer left".into(),
    };
    let closed = m
        .close_order(close.clone())
        .await
        .expect("closed")
        .into_inner();
    app.clock.advance_ms(3 * 86_400_000);
    let replay = m.close_order(close).await.expect("replay").into_inner();
    assert_eq!(replay, closed);
}

// ----- a refusal from state claims the request id -----------------------------------------

both_backends!(no_bound_card_claims_the_request_id_until_a_new_one_is_used);
async fn no_bound_card_claims_the_request_id_until_a_new_one_is_used(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let merchant = open_merchant(&mut c, "Book Shop").await;
    let with_card = open_class_ii(&mut c, 1).await;
    let req = top_up_req(&merchant, "20.00");
    assert_refused(
        c.top_up(req.clone()).await,
        Code::FailedPrecondition,
        "NO_BOUND_CARD",
    );

    // The back office binds a card; the same request still answers its first answer.
    let mut card = card_of(&app, &with_card).await;
    card.3 = None;
    set_card(&app, &merchant, card).await;
    assert_refused(
        c.top_up(req.clone()).await,
        Code::FailedPrecondition,
        "NO_BOUND_CARD",
    );
    let mut other = req.clone();
    other.amount = Some(cny("21.00"));
    assert_refused(
        c.top_up(other).await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let mut fresh = req;
    fresh.request_id = request_id("topup");
    let done = c.top_up(fresh).await.expect("a new request tops up");
    assert_eq!(
        done.into_inner().status,
        pb::ProcessingStatus::Succeeded as i32
    );
}

both_backends!(a_quick_pay_refused_for_no_bound_card_answers_so_again_once_one_is_bound);
async fn a_quick_pay_refused_for_no_bound_card_answers_so_again_once_one_is_bound(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let merchant = shop(&app, "Tea House").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut accounts = app.accounts(PAYER_CALLER).await;
    let payer = open_class_ii(&mut accounts, 1).await;
    let card = card_of(&app, &payer).await;
    let agreement = card.3.clone().expect("an agreement");
    set_card(&app, &payer, (None, None, None, None)).await;

    let order = m
        .create_order(order_req(&merchant, "Q1", "8.00"))
        .await
        .expect("order")
        .into_inner()
        .order
        .unwrap();
    let mut p = cashier(&app, PAYER_CALLER).await;
    let pay = common::pay_req(
        &order.order_id,
        &payer,
        pay_request::Method::BoundCard(BoundCardPayment {
            agreement_id: agreement,
        }),
    );
    assert_refused(
        p.pay(pay.clone()).await,
        Code::FailedPrecondition,
        "NO_BOUND_CARD",
    );
    set_card(&app, &payer, card).await;
    assert_refused(
        p.pay(pay.clone()).await,
        Code::FailedPrecondition,
        "NO_BOUND_CARD",
    );
    let mut fresh = pay;
    fresh.request_id = request_id("pay");
    let paid = p.pay(fresh).await.expect("a new request pays").into_inner();
    assert_eq!(
        paid.order.unwrap().status,
        pb::OrderStatus::Succeeded as i32
    );
}

both_backends!(a_subscription_refused_while_suspended_answers_so_again_once_reopened);
async fn a_subscription_refused_while_suspended_answers_so_again_once_reopened(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    advance_to(&app, next_monday(&app));
    register(
        &mut op,
        "MMF1",
        pb::ProductStatus::SubscriptionSuspended,
        "1.00",
    )
    .await;
    let a = funded_class_ii(&mut accounts, 1, "100.00").await;
    let sub = subscribe_req(&a, "MMF1", "50.00");
    assert_refused(
        op.subscribe(sub.clone()).await,
        Code::FailedPrecondition,
        "PRODUCT_NOT_OPEN",
    );
    op.set_product_status(pb::SetProductStatusRequest {
        request_id: request_id("status"),
        product_id: "MMF1".into(),
        status: pb::ProductStatus::Open as i32,
        reason: "subscriptions reopen".into(),
    })
    .await
    .expect("reopened");
    assert_refused(
        op.subscribe(sub.clone()).await,
        Code::FailedPrecondition,
        "PRODUCT_NOT_OPEN",
    );
    let mut fresh = sub;
    fresh.request_id = request_id("sub");
    op.subscribe(fresh).await.expect("a new request subscribes");
}

both_backends!(a_malformed_request_claims_nothing);
async fn a_malformed_request_claims_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = funded_class_ii(&mut c, 1, "50.00").await;
    let b = open_class_ii(&mut c, 2).await;
    let mut bad = transfer_req(&a, &b, "10.00");
    bad.amount = Some(cny("10.001"));
    assert_refused(
        c.transfer(bad.clone()).await,
        Code::InvalidArgument,
        "AMOUNT_SCALE",
    );
    let mut corrected = bad;
    corrected.amount = Some(cny("10.00"));
    c.transfer(corrected)
        .await
        .expect("the corrected request reuses the id");
}
