//! The read cache with two gateway processes on one database: whatever one gateway holds in
//! memory, a read answers what the database holds now, and a request checked against an old
//! entry is settled by its batch — it never overdraws, pays a closed order or moves a frozen
//! account. Black-box over mutual TLS, on both back ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, app_merchant, app_order_req, assert_refused, balance, book, open_class_ii, pay_req,
    request_id, spawn_app, top_up, transfer_req,
};
use paygate::grpc::pb::{
    self, BalancePayment, CloseOrderRequest, GetOrderRequest, PaymentMethodType,
    cashier_service_client::CashierServiceClient, get_order_request, pay_request,
};
use tonic::Code;

const BANK: &str = "core-banking";
const MERCHANT_CALLER: &str = "merchant-gateway";

/// Two gateways on one database, a client of each as the bank, and two Class II accounts
/// opened through the first, the payer topped up with `funds`. Both gateways stop when their
/// fields are dropped: bind every field.
struct TwoGateways {
    app: common::TestApp,
    _other: common::Sibling,
    a: common::Accounts,
    b: common::Accounts,
    payer: String,
    payee: String,
}

async fn two_gateways(backend: Backend, funds: &str) -> TwoGateways {
    let app = spawn_app(backend).await;
    let other = app.sibling().await;
    let mut a = app.accounts(BANK).await;
    let b = common::Accounts::new(other.channel(BANK).await);
    let payer = open_class_ii(&mut a, 1).await;
    let payee = open_class_ii(&mut a, 2).await;
    top_up(&mut a, &payer, funds).await;
    TwoGateways {
        app,
        _other: other,
        a,
        b,
        payer,
        payee,
    }
}

both_backends!(a_balance_read_answers_what_another_gateway_just_posted);
async fn a_balance_read_answers_what_another_gateway_just_posted(backend: Backend) {
    let TwoGateways {
        app: _app,
        mut a,
        mut b,
        payer,
        payee,
        _other,
    } = two_gateways(backend, "100.00").await;
    // Gateway A has just posted both accounts: its cache holds them.
    assert_eq!(book(&mut a, &payer).await, "100.00");

    for round in 1..=5 {
        b.transfer(transfer_req(&payer, &payee, "3.00"))
            .await
            .expect("the other gateway transfers");
        let expected = format!("{}.00", 100 - 3 * round);
        assert_eq!(book(&mut a, &payer).await, expected, "round {round}");
        assert_eq!(
            book(&mut a, &payee).await,
            format!("{}.00", 3 * round),
            "round {round}"
        );
    }
    // And the daily usage the balance shows is the other gateway's too.
    let used = balance(&mut a, &payer).await;
    assert!(
        format!("{used:?}").contains("15.00"),
        "the outflow used today counts the other gateway's transfers: {used:?}"
    );
}

both_backends!(a_transfer_checked_against_an_old_balance_cannot_overdraw);
async fn a_transfer_checked_against_an_old_balance_cannot_overdraw(backend: Backend) {
    let TwoGateways {
        app,
        mut a,
        mut b,
        payer,
        payee,
        _other,
    } = two_gateways(backend, "10.00").await;
    assert_eq!(book(&mut b, &payer).await, "10.00");

    // Gateway B spends it all; gateway A still remembers 10.00 from its own last batch.
    b.transfer(transfer_req(&payer, &payee, "10.00"))
        .await
        .expect("the other gateway spends it");
    assert_refused(
        a.transfer(transfer_req(&payer, &payee, "10.00")).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
    assert_eq!(book(&mut a, &payer).await, "0.00");
    assert_eq!(book(&mut a, &payee).await, "10.00");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

both_backends!(an_account_frozen_through_another_gateway_does_not_move);
async fn an_account_frozen_through_another_gateway_does_not_move(backend: Backend) {
    let TwoGateways {
        app: _app,
        mut a,
        mut b,
        payer,
        payee,
        _other,
    } = two_gateways(backend, "10.00").await;

    b.freeze_account(pb::FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: payer.clone(),
        mode: pb::FreezeMode::Both as i32,
        reason: "court order".to_owned(),
    })
    .await
    .expect("the other gateway freezes it");
    let refused = a
        .transfer(transfer_req(&payer, &payee, "1.00"))
        .await
        .expect_err("a frozen account does not move");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(book(&mut a, &payer).await, "10.00");
    let account = a
        .get_account(pb::GetAccountRequest {
            account_id: payer.clone(),
        })
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(account.freeze_mode, pb::FreezeMode::Both as i32);
    assert_eq!(account.freeze_reason, "court order");
}

both_backends!(an_order_closed_through_another_gateway_is_not_paid);
async fn an_order_closed_through_another_gateway_is_not_paid(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.sibling().await;
    let merchant = app_merchant(
        &app,
        "Tea House",
        &[PaymentMethodType::Balance],
        &[MERCHANT_CALLER],
    )
    .await;
    let mut a_accounts = app.accounts(BANK).await;
    let payer = open_class_ii(&mut a_accounts, 1).await;
    top_up(&mut a_accounts, &payer, "50.00").await;
    let mut a = CashierServiceClient::new(app.channel(MERCHANT_CALLER).await);
    let mut b = CashierServiceClient::new(other.channel(MERCHANT_CALLER).await);
    let order = a
        .create_order(app_order_req(&merchant, "T-1", "8.00"))
        .await
        .expect("order")
        .into_inner()
        .order
        .expect("order");

    b.close_order(CloseOrderRequest {
        request_id: request_id("close"),
        order_id: order.order_id.clone(),
        reason: "customer left".to_owned(),
    })
    .await
    .expect("the other gateway closes it");
    let mut payer_cashier = CashierServiceClient::new(app.channel(BANK).await);
    let pay = pay_req(
        &order.order_id,
        &payer,
        pay_request::Method::Balance(BalancePayment {}),
    );
    assert_refused(
        payer_cashier.pay(pay).await,
        Code::FailedPrecondition,
        "ORDER_CLOSED",
    );
    let seen = a
        .get_order(GetOrderRequest {
            lookup: Some(get_order_request::Lookup::OrderId(order.order_id.clone())),
        })
        .await
        .expect("order reads")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(seen.status, pb::OrderStatus::Closed as i32);
    assert_eq!(book(&mut a_accounts, &payer).await, "50.00");
}
