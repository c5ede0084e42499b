//! The class rules of electronic accounts, black-box over mutual TLS: every limit refuses with
//! FAILED_PRECONDITION / LIMIT_EXCEEDED naming the rule, the window and what remains, and holds
//! exactly under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{
    Accounts, Backend, assert_refused, balance, book, card_number, metadata_of, open,
    open_class_ii, open_class_iii, open_merchant, open_personal, request_id, spawn_app,
    spawn_app_with, top_up, transfer_req,
};
use paygate::grpc::pb::{
    AccountKind, CaptureHoldRequest, CloseAccountRequest, HoldKind, PlaceHoldRequest, TopUpRequest,
    WithdrawRequest,
};
use tonic::Code;

/// Asserts a LIMIT_EXCEEDED refusal naming `rule` and `window`; returns its metadata.
#[track_caller]
fn limit_refusal<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    rule: &str,
    window: &str,
) -> HashMap<String, String> {
    let status = assert_refused(result, Code::FailedPrecondition, "LIMIT_EXCEEDED");
    let md = metadata_of(&status);
    assert_eq!(
        md.get("limit_rule").map(String::as_str),
        Some(rule),
        "{md:?}"
    );
    assert_eq!(md.get("window").map(String::as_str), Some(window), "{md:?}");
    md
}

/// Asserts limit, used, requested and remaining of a money limit (in CNY).
#[track_caller]
fn assert_amounts(md: &HashMap<String, String>, expected: [(&str, &str); 4]) {
    assert_eq!(
        md.get("currency").map(String::as_str),
        Some("CNY"),
        "{md:?}"
    );
    for (key, value) in expected {
        assert_eq!(
            md.get(key).map(String::as_str),
            Some(value),
            "{key}: {md:?}"
        );
    }
}

async fn business_date(c: &mut Accounts, account: &str) -> String {
    balance(c, account).await.business_date
}

both_backends!(a_class_ii_account_cannot_send_more_than_its_daily_non_bound_limit);
async fn a_class_ii_account_cannot_send_more_than_its_daily_non_bound_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "12000.00").await;
    c.transfer(transfer_req(&a, &m, "9000.00"))
        .await
        .expect("within the day");

    let over = c.transfer(transfer_req(&a, &m, "1500.00")).await;

    let md = limit_refusal(over, "CLASS_II_NON_BOUND_OUTFLOW", "DAY");
    assert_amounts(
        &md,
        [
            ("limit", "10000.00"),
            ("used", "9000.00"),
            ("requested", "1500.00"),
            ("remaining", "1000.00"),
        ],
    );
    assert_eq!(md["period"], business_date(&mut c, &a).await);
    assert_eq!(book(&mut c, &a).await, "3000.00", "nothing moved");
    c.transfer(transfer_req(&a, &m, "1000.00"))
        .await
        .expect("exactly the remainder still goes");
    // The bound card is not a non-bound counterparty: withdrawing stays possible.
    c.withdraw(WithdrawRequest {
        request_id: request_id("w"),
        account_id: a.clone(),
        amount: Some(common::cny("500.00")),
        memo: String::new(),
    })
    .await
    .expect("bound-card flows are unlimited");
}

both_backends!(a_class_ii_account_cannot_send_more_than_its_annual_non_bound_limit);
async fn a_class_ii_account_cannot_send_more_than_its_annual_non_bound_limit(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.class_ii_non_bound_outflow_per_year = "5000.00".into();
    })
    .await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "8000.00").await;
    c.transfer(transfer_req(&a, &m, "4000.00"))
        .await
        .expect("within the year");

    let over = c.transfer(transfer_req(&a, &m, "1500.00")).await;

    let md = limit_refusal(over, "CLASS_II_NON_BOUND_OUTFLOW", "YEAR");
    assert_amounts(
        &md,
        [
            ("limit", "5000.00"),
            ("used", "4000.00"),
            ("requested", "1500.00"),
            ("remaining", "1000.00"),
        ],
    );
    let date = business_date(&mut c, &a).await;
    assert_eq!(md["period"], date[..4], "the year of the business date");
    assert_eq!(book(&mut c, &a).await, "4000.00");
}

both_backends!(a_class_ii_account_cannot_receive_more_than_its_daily_non_bound_limit);
async fn a_class_ii_account_cannot_receive_more_than_its_daily_non_bound_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let payer_1 = open_class_ii(&mut c, 1).await;
    let payer_2 = open_class_ii(&mut c, 2).await;
    let payee = open_class_ii(&mut c, 3).await;
    top_up(&mut c, &payer_1, "7000.00").await;
    top_up(&mut c, &payer_2, "7000.00").await;
    c.transfer(transfer_req(&payer_1, &payee, "6000.00"))
        .await
        .expect("within the payee's day");

    let over = c.transfer(transfer_req(&payer_2, &payee, "6000.00")).await;

    let md = limit_refusal(over, "CLASS_II_NON_BOUND_INFLOW", "DAY");
    assert_amounts(
        &md,
        [
            ("limit", "10000.00"),
            ("used", "6000.00"),
            ("requested", "6000.00"),
            ("remaining", "4000.00"),
        ],
    );
    assert_eq!(book(&mut c, &payee).await, "6000.00");
    assert_eq!(book(&mut c, &payer_2).await, "7000.00");
    let payer_usage = balance(&mut c, &payer_2).await.limits;
    assert!(
        payer_usage
            .iter()
            .all(|l| l.used.as_ref().is_some_and(|m| m.amount == "0.00")),
        "a refused transfer counts against neither side: {payer_usage:?}"
    );
}

both_backends!(a_class_iii_account_cannot_be_topped_up_above_its_balance_cap);
async fn a_class_iii_account_cannot_be_topped_up_above_its_balance_cap(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_iii(&mut c, 1).await;
    top_up(&mut c, &a, "1500.00").await;

    let over = c
        .top_up(TopUpRequest {
            request_id: request_id("up"),
            account_id: a.clone(),
            amount: Some(common::cny("600.00")),
            memo: String::new(),
        })
        .await;

    let md = limit_refusal(over, "CLASS_III_BALANCE_CAP", "BALANCE");
    assert_amounts(
        &md,
        [
            ("limit", "2000.00"),
            ("used", "1500.00"),
            ("requested", "600.00"),
            ("remaining", "500.00"),
        ],
    );
    assert_eq!(book(&mut c, &a).await, "1500.00");
    top_up(&mut c, &a, "500.00").await;
    assert_eq!(book(&mut c, &a).await, "2000.00", "up to the cap exactly");
}

both_backends!(a_class_iii_account_cannot_receive_a_transfer_above_its_balance_cap);
async fn a_class_iii_account_cannot_receive_a_transfer_above_its_balance_cap(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let payer = open_class_ii(&mut c, 1).await;
    let payee = open_class_iii(&mut c, 2).await;
    top_up(&mut c, &payer, "5000.00").await;
    top_up(&mut c, &payee, "1800.00").await;

    let over = c.transfer(transfer_req(&payer, &payee, "200.01")).await;

    let md = limit_refusal(over, "CLASS_III_BALANCE_CAP", "BALANCE");
    assert_amounts(
        &md,
        [
            ("limit", "2000.00"),
            ("used", "1800.00"),
            ("requested", "200.01"),
            ("remaining", "200.00"),
        ],
    );
    assert_eq!(book(&mut c, &payee).await, "1800.00");
    assert_eq!(book(&mut c, &payer).await, "5000.00");
    let payer_usage = balance(&mut c, &payer).await.limits;
    assert!(
        payer_usage
            .iter()
            .all(|l| l.used.as_ref().is_some_and(|m| m.amount == "0.00")),
        "the payer's outflow counters are untouched: {payer_usage:?}"
    );
}

both_backends!(a_class_iii_account_cannot_send_more_than_its_daily_limit);
async fn a_class_iii_account_cannot_send_more_than_its_daily_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_iii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "2000.00").await;
    c.transfer(transfer_req(&a, &m, "1500.00"))
        .await
        .expect("within the day");
    top_up(&mut c, &a, "1500.00").await;

    let over = c.transfer(transfer_req(&a, &m, "600.00")).await;

    let md = limit_refusal(over, "CLASS_III_OUTFLOW", "DAY");
    assert_amounts(
        &md,
        [
            ("limit", "2000.00"),
            ("used", "1500.00"),
            ("requested", "600.00"),
            ("remaining", "500.00"),
        ],
    );
    assert_eq!(md["period"], business_date(&mut c, &a).await);
    assert_eq!(book(&mut c, &a).await, "2000.00");
}

both_backends!(a_person_may_hold_at_most_five_class_ii_accounts_and_a_closed_one_frees_a_place);
async fn a_person_may_hold_at_most_five_class_ii_accounts_and_a_closed_one_frees_a_place(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let person = "110101199001017778";
    let mut opened = Vec::new();
    for n in 0..5 {
        opened.push(
            open(
                &mut c,
                open_personal(AccountKind::ClassIi, "cust", person, &card_number(100 + n)),
            )
            .await,
        );
    }

    let sixth = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust",
            person,
            &card_number(200),
        ))
        .await;
    limit_refusal(sixth, "CLASS_II_PER_PERSON", "OPEN_ACCOUNTS");
    // Another class has its own count.
    open(
        &mut c,
        open_personal(AccountKind::ClassIii, "cust", person, &card_number(300)),
    )
    .await;
    c.close_account(CloseAccountRequest {
        request_id: request_id("close"),
        account_id: opened[2].clone(),
        reason: "customer request".into(),
    })
    .await
    .expect("an empty account closes");
    let after_close = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust",
            person,
            &card_number(201),
        ))
        .await;

    assert!(after_close.is_ok(), "{after_close:?}");
    let seventh = c
        .open_account(open_personal(
            AccountKind::ClassIi,
            "cust",
            person,
            &card_number(202),
        ))
        .await;
    limit_refusal(seventh, "CLASS_II_PER_PERSON", "OPEN_ACCOUNTS");
}

both_backends!(fifty_concurrent_outflows_are_accepted_up_to_the_daily_limit_exactly);
async fn fifty_concurrent_outflows_are_accepted_up_to_the_daily_limit_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "20000.00").await;

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let mut client = c.clone();
            let req = transfer_req(&a, &m, "300.00");
            tokio::spawn(async move { client.transfer(req).await })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(status) => refused.push(status),
        }
    }

    assert_eq!(
        accepted, 33,
        "33 × 300.00 = 9,900.00 ≤ 10,000.00 < 34 × 300.00"
    );
    assert_eq!(refused.len(), 17);
    for status in &refused {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(common::reason_of(status), "LIMIT_EXCEEDED", "{status:?}");
        assert_eq!(
            metadata_of(status)["limit_rule"],
            "CLASS_II_NON_BOUND_OUTFLOW"
        );
    }
    assert_eq!(book(&mut c, &a).await, "10100.00");
    assert_eq!(book(&mut c, &m).await, "9900.00");
    let usage = balance(&mut c, &a).await.limits;
    let day = usage
        .iter()
        .find(|l| {
            l.limit_rule == "CLASS_II_NON_BOUND_OUTFLOW"
                && l.window == paygate::grpc::pb::LimitWindow::Day as i32
        })
        .expect("daily outflow usage");
    assert_eq!(day.used.as_ref().expect("used").amount, "9900.00");
    assert_eq!(day.remaining.as_ref().expect("remaining").amount, "100.00");
}

fn pre_authorisation(account: &str, amount: &str, kind: HoldKind) -> PlaceHoldRequest {
    PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: account.to_owned(),
        amount: Some(common::cny(amount)),
        kind: kind as i32,
        reason: "hold".into(),
        ..Default::default()
    }
}

fn capture_all(hold_id: &str, to: &str) -> CaptureHoldRequest {
    CaptureHoldRequest {
        request_id: request_id("capture"),
        hold_id: hold_id.to_owned(),
        amount: None,
        to_account_id: to.to_owned(),
        memo: String::new(),
    }
}

async fn hold_id(c: &mut Accounts, req: PlaceHoldRequest) -> String {
    c.place_hold(req)
        .await
        .expect("hold placed")
        .into_inner()
        .hold
        .expect("hold")
        .hold_id
}

both_backends!(capturing_a_pre_authorisation_counts_against_the_class_ii_daily_outflow_limit);
async fn capturing_a_pre_authorisation_counts_against_the_class_ii_daily_outflow_limit(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "hotel").await;
    top_up(&mut c, &a, "30000.00").await;
    c.transfer(transfer_req(&a, &m, "9000.00"))
        .await
        .expect("within the day");
    let hold = hold_id(
        &mut c,
        pre_authorisation(&a, "2000.00", HoldKind::PreAuthorization),
    )
    .await;

    let capture = c.capture_hold(capture_all(&hold, &m)).await;

    let md = limit_refusal(capture, "CLASS_II_NON_BOUND_OUTFLOW", "DAY");
    assert_amounts(
        &md,
        [
            ("limit", "10000.00"),
            ("used", "9000.00"),
            ("requested", "2000.00"),
            ("remaining", "1000.00"),
        ],
    );
    assert_eq!(book(&mut c, &m).await, "9000.00");
    let held = balance(&mut c, &a).await.held.expect("held").amount;
    assert_eq!(held, "2000.00", "the hold stays active");
}

both_backends!(a_capture_cannot_lift_a_class_iii_account_above_its_balance_cap);
async fn a_capture_cannot_lift_a_class_iii_account_above_its_balance_cap(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let payer = open_class_ii(&mut c, 1).await;
    let payee = open_class_iii(&mut c, 2).await;
    top_up(&mut c, &payer, "5000.00").await;
    top_up(&mut c, &payee, "1900.00").await;
    let hold = hold_id(
        &mut c,
        pre_authorisation(&payer, "500.00", HoldKind::PreAuthorization),
    )
    .await;

    let capture = c.capture_hold(capture_all(&hold, &payee)).await;

    let md = limit_refusal(capture, "CLASS_III_BALANCE_CAP", "BALANCE");
    assert_amounts(
        &md,
        [
            ("limit", "2000.00"),
            ("used", "1900.00"),
            ("requested", "500.00"),
            ("remaining", "100.00"),
        ],
    );
    assert_eq!(book(&mut c, &payee).await, "1900.00");
    assert_eq!(book(&mut c, &payer).await, "5000.00");
}

both_backends!(a_judicial_deduction_is_captured_whatever_the_holders_daily_limit);
async fn a_judicial_deduction_is_captured_whatever_the_holders_daily_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let court = open_merchant(&mut c, "court").await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "30000.00").await;
    c.transfer(transfer_req(&a, &m, "10000.00"))
        .await
        .expect("the whole day used");
    let hold = hold_id(
        &mut c,
        pre_authorisation(&a, "15000.00", HoldKind::Judicial),
    )
    .await;

    c.capture_hold(capture_all(&hold, &court))
        .await
        .expect("a court deduction is executed");

    assert_eq!(book(&mut c, &court).await, "15000.00");
    assert_eq!(book(&mut c, &a).await, "5000.00");
}
