//! Every mutating RPC claims its request id for a refusal that depends on state, wherever the
//! refusal was decided — in the ledger's batch or in the service's checks before it — and
//! answers its first answer again: black-box over mutual TLS, on both back ends.
//!
//! Each test meets a refusal decided before the batch (an object not found, an order not paid,
//! no shares held, a master with open sub-accounts …), changes the state that caused it where
//! the contract allows, and retries: the same refusal comes back; the same id with another
//! request is `IDEMPOTENCY_KEY_REUSED`; a new id is a new request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, TestApp, assert_refused, cny, open, open_class_ii, open_plain, request_id, spawn_app,
    top_up, yields::*,
};
use paygate::grpc::pb::{
    self, AccountKind, BalancePayment, CaptureHoldRequest, CloseAccountRequest, CloseOrderRequest,
    CreateOrderRequest, FreezeAccountRequest, FreezeMode, HoldKind, PayRequest, PaymentMethodType,
    PlaceHoldRequest, RefundRequest, ReleaseHoldRequest,
    cashier_service_client::CashierServiceClient, pay_request,
};
use tonic::{Code, transport::Channel};

type Cashier = CashierServiceClient<Channel>;

const BANK: &str = "core-banking";
const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";
const NO_SUCH_ACCOUNT: &str = "987654321";

async fn cashier(app: &TestApp, caller: &str) -> Cashier {
    CashierServiceClient::new(app.channel(caller).await)
}

/// Sends `req`, then the same id with `other` (another request): ALREADY_EXISTS.
fn reused<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    assert_refused(result, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
}

// ----- accounts ------------------------------------------------------------------------------

both_backends!(account_requests_refused_before_the_batch_claim_their_request_id);
async fn account_requests_refused_before_the_batch_claim_their_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts(BANK).await;
    let a = open_class_ii(&mut c, 1).await;

    let freeze = FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: NO_SUCH_ACCOUNT.into(),
        mode: FreezeMode::Both as i32,
        reason: "court order 1".into(),
    };
    assert_refused(
        c.freeze_account(freeze.clone()).await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    let mut other = freeze.clone();
    other.account_id = a.clone();
    reused(c.freeze_account(other).await);

    let hold = PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: NO_SUCH_ACCOUNT.into(),
        amount: Some(cny("1.00")),
        kind: HoldKind::PreAuthorization as i32,
        reason: "deposit".into(),
        external_reference: String::new(),
        expire_time: None,
    };
    assert_refused(
        c.place_hold(hold.clone()).await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    let mut other = hold.clone();
    other.account_id = a.clone();
    reused(c.place_hold(other).await);

    let release = ReleaseHoldRequest {
        request_id: request_id("release"),
        hold_id: "424242".into(),
        reason: String::new(),
    };
    assert_refused(
        c.release_hold(release.clone()).await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    let mut other = release.clone();
    other.hold_id = "434343".into();
    reused(c.release_hold(other).await);

    let capture = CaptureHoldRequest {
        request_id: request_id("capture"),
        hold_id: "424242".into(),
        amount: None,
        to_account_id: a.clone(),
        memo: String::new(),
    };
    assert_refused(
        c.capture_hold(capture.clone()).await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    let mut other = capture;
    other.memo = "another".into();
    reused(c.capture_hold(other).await);

    let sub = open_plain(AccountKind::PlatformSub, "p", NO_SUCH_ACCOUNT);
    let refused = c
        .open_account(sub.clone())
        .await
        .expect_err("no such parent");
    let mut other = sub;
    other.display_name = "another name".into();
    reused(c.open_account(other).await);
    assert_ne!(refused.code(), Code::Ok);
}

both_backends!(a_close_refused_for_open_sub_accounts_answers_so_after_they_close);
async fn a_close_refused_for_open_sub_accounts_answers_so_after_they_close(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts(BANK).await;
    let master = open(&mut c, open_plain(AccountKind::PlatformMaster, "p", "")).await;
    let sub = open(&mut c, open_plain(AccountKind::PlatformSub, "p", &master)).await;
    let close = |account: &str| CloseAccountRequest {
        request_id: request_id("close"),
        account_id: account.to_owned(),
        reason: "platform left".into(),
    };
    let close_master = close(&master);
    assert_refused(
        c.close_account(close_master.clone()).await,
        Code::FailedPrecondition,
        "ACCOUNT_NOT_EMPTY",
    );

    c.close_account(close(&sub)).await.expect("the sub closes");

    assert_refused(
        c.close_account(close_master.clone()).await,
        Code::FailedPrecondition,
        "ACCOUNT_NOT_EMPTY",
    );
    let mut fresh = close_master;
    fresh.request_id = request_id("close");
    c.close_account(fresh)
        .await
        .expect("a new request closes the master");
}

both_backends!(a_replayed_open_answers_the_account_as_it_was_opened);
async fn a_replayed_open_answers_the_account_as_it_was_opened(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts(BANK).await;
    let req = open_plain(AccountKind::MerchantSettlement, "m1", "");
    let first = c.open_account(req.clone()).await.unwrap().into_inner();
    let id = first.account.as_ref().unwrap().account_id.clone();
    c.freeze_account(FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: id,
        mode: FreezeMode::Both as i32,
        reason: "court order 2".into(),
    })
    .await
    .expect("frozen");

    let again = c.open_account(req).await.unwrap().into_inner();

    assert_eq!(again, first);
}

both_backends!(a_hold_with_an_expiry_retried_later_is_the_same_request);
async fn a_hold_with_an_expiry_retried_later_is_the_same_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts(BANK).await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "10.00").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let hold = PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: a.clone(),
        amount: Some(cny("4.00")),
        kind: HoldKind::PreAuthorization as i32,
        reason: "deposit".into(),
        external_reference: "room 12".into(),
        expire_time: Some(prost_types::Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap() + 3_600,
            nanos: 0,
        }),
    };
    let first = c.place_hold(hold.clone()).await.unwrap().into_inner();

    // Its expiry is now nearer: the server-side timeout differs, the request does not.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let again = c.place_hold(hold).await.expect("a replay").into_inner();

    assert_eq!(again, first);
    assert_eq!(
        common::balance(&mut c, &a).await.available.unwrap().amount,
        "6.00"
    );
}

// ----- cashier -------------------------------------------------------------------------------

/// A merchant signed for balance payments in apps; its id.
async fn shop(app: &TestApp, name: &str) -> String {
    common::app_merchant(app, name, &[PaymentMethodType::Balance], &[MERCHANT_CALLER]).await
}

fn order_req(merchant: &str, no: &str, amount: &str) -> CreateOrderRequest {
    common::app_order_req(merchant, no, amount)
}

fn pay_req(order: &str, payer: &str) -> PayRequest {
    common::pay_req(
        order,
        payer,
        pay_request::Method::Balance(BalancePayment {}),
    )
}

both_backends!(a_refund_refused_before_the_order_is_paid_answers_so_after_it_is_paid);
async fn a_refund_refused_before_the_order_is_paid_answers_so_after_it_is_paid(backend: Backend) {
    let app = spawn_app(backend).await;
    let merchant = shop(&app, "tea").await;
    let mut payer_accounts = app.accounts(PAYER_CALLER).await;
    let payer = open_class_ii(&mut payer_accounts, 1).await;
    top_up(&mut payer_accounts, &payer, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;
    let order = m
        .create_order(order_req(&merchant, "T1", "30.00"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let refund = RefundRequest {
        request_id: request_id("refund"),
        order_id: order.order_id.clone(),
        merchant_refund_no: "RF1".into(),
        amount: Some(cny("10.00")),
        reason: "returned".into(),
    };
    assert_refused(
        m.refund(refund.clone()).await,
        Code::FailedPrecondition,
        "ORDER_NOT_PAID",
    );

    p.pay(pay_req(&order.order_id, &payer)).await.expect("paid");

    assert_refused(
        m.refund(refund.clone()).await,
        Code::FailedPrecondition,
        "ORDER_NOT_PAID",
    );
    let mut fresh = refund;
    fresh.request_id = request_id("refund");
    fresh.merchant_refund_no = "RF2".into();
    m.refund(fresh).await.expect("a new request refunds");
    assert_eq!(common::book(&mut payer_accounts, &payer).await, "80.00");
}

both_backends!(cashier_requests_refused_before_the_batch_claim_their_request_id);
async fn cashier_requests_refused_before_the_batch_claim_their_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let merchant = shop(&app, "tea").await;
    let mut payer_accounts = app.accounts(PAYER_CALLER).await;
    let payer = open_class_ii(&mut payer_accounts, 1).await;
    top_up(&mut payer_accounts, &payer, "100.00").await;
    let mut m = cashier(&app, MERCHANT_CALLER).await;
    let mut p = cashier(&app, PAYER_CALLER).await;

    // An order that does not exist: paid, closed.
    let pay = pay_req("O-no-such-order", &payer);
    assert_refused(p.pay(pay.clone()).await, Code::NotFound, "ORDER_NOT_FOUND");
    let mut other = pay;
    other.order_id = "O-another".into();
    reused(p.pay(other).await);
    let close = CloseOrderRequest {
        request_id: request_id("close"),
        order_id: "O-no-such-order".into(),
        reason: String::new(),
    };
    assert_refused(
        m.close_order(close.clone()).await,
        Code::NotFound,
        "ORDER_NOT_FOUND",
    );
    let mut other = close;
    other.reason = "another".into();
    reused(m.close_order(other).await);

    // An order paid by another request: this one's refusal stays its answer.
    let order = m
        .create_order(order_req(&merchant, "T2", "5.00"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    p.pay(pay_req(&order.order_id, &payer)).await.expect("paid");
    let late = pay_req(&order.order_id, &payer);
    assert_refused(
        p.pay(late.clone()).await,
        Code::FailedPrecondition,
        "ORDER_ALREADY_PAID",
    );
    assert_refused(
        p.pay(late).await,
        Code::FailedPrecondition,
        "ORDER_ALREADY_PAID",
    );
    assert_eq!(common::book(&mut payer_accounts, &payer).await, "95.00");

    // A merchant that does not exist.
    let create = order_req("M-no-such-merchant", "T3", "1.00");
    assert_refused(
        m.create_order(create.clone()).await,
        Code::NotFound,
        "MERCHANT_NOT_FOUND",
    );
    let mut other = create;
    other.merchant_id = merchant;
    reused(m.create_order(other).await);
}

// ----- yield ---------------------------------------------------------------------------------

both_backends!(a_redemption_refused_for_no_shares_answers_so_after_shares_are_bought);
async fn a_redemption_refused_for_no_shares_answers_so_after_shares_are_bought(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    advance_to(&app, next_monday(&app));
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    let a = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &a, "100.00").await;
    let redeem = redeem_req(&a, "MMF1", "10.00", pb::RedeemMode::Normal);
    assert_refused(
        op.redeem(redeem.clone()).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_SHARES",
    );

    op.subscribe(subscribe_req(&a, "MMF1", "50.00"))
        .await
        .expect("subscribed");

    assert_refused(
        op.redeem(redeem.clone()).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_SHARES",
    );
    let mut other = redeem.clone();
    other.shares = "20.00".into();
    reused(op.redeem(other).await);
    let mut fresh = redeem;
    fresh.request_id = request_id("redeem");
    op.redeem(fresh).await.expect("a new request redeems");
}

both_backends!(a_replayed_status_change_answers_the_status_it_set_after_a_later_close);
async fn a_replayed_status_change_answers_the_status_it_set_after_a_later_close(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = yields(&app, OPERATOR).await;
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    let status = |status: pb::ProductStatus| pb::SetProductStatusRequest {
        request_id: request_id("status"),
        product_id: "MMF1".into(),
        status: status as i32,
        reason: "quarter end".into(),
    };
    let suspend = status(pb::ProductStatus::SubscriptionSuspended);
    let first = op
        .set_product_status(suspend.clone())
        .await
        .unwrap()
        .into_inner();
    op.set_product_status(status(pb::ProductStatus::Closed))
        .await
        .expect("closed");

    let again = op
        .set_product_status(suspend)
        .await
        .expect("a replay")
        .into_inner();

    assert_eq!(again.product.unwrap().status, first.product.unwrap().status);
    let missing = pb::SetProductStatusRequest {
        product_id: "NOPE".into(),
        ..status(pb::ProductStatus::Open)
    };
    assert_refused(
        op.set_product_status(missing.clone()).await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    let mut other = missing;
    other.product_id = "MMF1".into();
    reused(op.set_product_status(other).await);
}
