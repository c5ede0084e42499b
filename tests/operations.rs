//! The operations RPC, end to end over mutual TLS: only an operator caller may use it; bad
//! networks, periods and dates are refused, and what the end of day has not stored yet is not
//! found. An operator reads a network's stored reconciliation with a planted break, adjusts
//! that break once (the same request again answers the same adjustment, another is refused),
//! reads where each end-of-day step stands, and reads a merchant's settlement statement that
//! matches the day's payments and refunds to the fen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Backend, TestApp, app_merchant, app_order_req, assert_refused, book, cny,
    eod::{dashed, eod_run_later, eod_status, recon_period},
    metadata_of,
    netsim::Sim,
    open_class_ii, pay_req, request_id, spawn_app, spawn_app_with, top_up,
    yields::{advance_to, rows::balances_of_kind, today},
};
use paygate::{
    clearing::nets_union,
    grpc::pb::{
        AdjustBreakRequest, BalancePayment, BreakKind, ClearingNetwork, EndOfDayStep,
        EndOfDayStepState, GetEndOfDayRequest, GetMerchantSettlementRequest,
        GetReconciliationRequest, MerchantSettlement, PaymentMethodType, ReconBreak,
        ReconLineStatus, ReconMovement, RefundRequest,
        cashier_service_client::CashierServiceClient,
        operations_service_client::OperationsServiceClient, pay_request,
    },
};
use time::Date;
use tonic::{Code, transport::Channel};

type Ops = OperationsServiceClient<Channel>;

/// The caller the default configuration grants the operations service.
const OPERATOR: &str = "operator";

both_backends!(
    only_an_operator_caller_is_granted_the_operations_service,
    bad_networks_periods_and_dates_are_invalid_arguments,
    what_the_end_of_day_has_not_stored_is_not_found
);
both_backends!(
    multi_thread: an_operator_reads_and_adjusts_a_planted_break_once,
    a_merchant_settlement_statement_matches_the_days_payments_and_refunds_to_the_fen,
    more_merchants_than_one_batch_holds_each_get_their_statement
);

async fn ops(app: &TestApp, caller: &str) -> Ops {
    OperationsServiceClient::new(app.channel(caller).await)
}

fn recon_req(network: i32, period: &str) -> GetReconciliationRequest {
    GetReconciliationRequest {
        network,
        period: period.to_owned(),
    }
}

fn adjust_req(id: &str, period: &str, reference: &str, reason: &str) -> AdjustBreakRequest {
    AdjustBreakRequest {
        request_id: id.to_owned(),
        network: ClearingNetwork::Netsunion as i32,
        period: period.to_owned(),
        reference: reference.to_owned(),
        reason: reason.to_owned(),
    }
}

fn statement_req(merchant: &str, date: &str) -> GetMerchantSettlementRequest {
    GetMerchantSettlementRequest {
        merchant_id: merchant.to_owned(),
        business_date: date.to_owned(),
    }
}

fn eod_req(date: &str) -> GetEndOfDayRequest {
    GetEndOfDayRequest {
        business_date: date.to_owned(),
    }
}

/// `GetEndOfDay(date)`: the date's steps, in order.
async fn steps_of(op: &mut Ops, date: &str) -> Vec<EndOfDayStep> {
    op.get_end_of_day(eod_req(date))
        .await
        .expect("the date's steps")
        .into_inner()
        .steps
}

async fn only_an_operator_caller_is_granted_the_operations_service(backend: Backend) {
    let app = spawn_app(backend).await;
    for caller in ["auditor", "merchant-gateway", "mobile-backend"] {
        let mut c = ops(&app, caller).await;
        let refused = assert_refused(
            c.get_end_of_day(eod_req("2026-01-05")).await,
            Code::PermissionDenied,
            "METHOD_NOT_GRANTED",
        );
        assert_eq!(metadata_of(&refused)["caller"], caller);
        assert_refused(
            c.adjust_break(adjust_req(&request_id("adj"), "20260105", "PGX", "why"))
                .await,
            Code::PermissionDenied,
            "METHOD_NOT_GRANTED",
        );
    }
    let answer = ops(&app, OPERATOR)
        .await
        .get_end_of_day(eod_req("2001-01-01"))
        .await
        .expect("the operator is granted it")
        .into_inner();
    assert!(answer.steps.is_empty(), "no run planned 2001: {answer:?}");
}

async fn bad_networks_periods_and_dates_are_invalid_arguments(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = ops(&app, OPERATOR).await;
    let period = recon_period(&app, nets_union::NETWORK);
    for network in [
        ClearingNetwork::Unspecified as i32,
        ClearingNetwork::OnUs as i32,
        99,
    ] {
        let refused = assert_refused(
            op.get_reconciliation(recon_req(network, &period)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(metadata_of(&refused)["field"], "network");
    }
    let netsunion = ClearingNetwork::Netsunion as i32;
    for bad in ["", "2026-01-05", "20261301", "B2026010500", "yesterday"] {
        let refused = assert_refused(
            op.get_reconciliation(recon_req(netsunion, bad)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(metadata_of(&refused)["field"], "period", "{bad:?}");
    }
    assert_refused(
        op.get_reconciliation(recon_req(
            ClearingNetwork::CnapsHvps as i32,
            "B202601050001",
        ))
        .await,
        Code::InvalidArgument,
        "NETWORK_RECONCILES_BY_DATE",
    );
    for bad in ["", "20260105", "2026-02-30"] {
        assert_refused(
            op.get_end_of_day(eod_req(bad)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_refused(
            op.get_merchant_settlement(statement_req("M1", bad)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
    }
    assert_refused(
        op.get_merchant_settlement(statement_req("", "2026-01-05"))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let refused = assert_refused(
        op.adjust_break(adjust_req("", &period, "PGX", "why")).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(metadata_of(&refused)["field"], "request_id");
    let refused = assert_refused(
        op.adjust_break(adjust_req(&request_id("adj"), &period, "PGX", " "))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(metadata_of(&refused)["field"], "reason");
}

async fn what_the_end_of_day_has_not_stored_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = ops(&app, OPERATOR).await;
    let period = recon_period(&app, nets_union::NETWORK);
    let refused = assert_refused(
        op.get_reconciliation(recon_req(ClearingNetwork::Netsunion as i32, &period))
            .await,
        Code::NotFound,
        "RECONCILIATION_NOT_FOUND",
    );
    assert_eq!(
        metadata_of(&refused)["reconciliation"],
        format!("NETS_UNION/{period}")
    );
    assert_refused(
        op.adjust_break(adjust_req(&request_id("adj"), &period, "PGX", "case 1"))
            .await,
        Code::NotFound,
        "RECONCILIATION_NOT_FOUND",
    );
    assert_refused(
        op.get_merchant_settlement(statement_req("M1", &dashed(&period)))
            .await,
        Code::NotFound,
        "SETTLEMENT_STATEMENT_NOT_FOUND",
    );
}

async fn an_operator_reads_and_adjusts_a_planted_break_once(backend: Backend) {
    let sim = Sim::start("seed = 41\n").await;
    let app = spawn_app_with(
        backend,
        sim.routing_quick_pay_unrecovered(nets_union::NETWORK),
    )
    .await;
    // One top-up both sides book alike, and a card debit only the network booked (长款).
    let mut accounts = app.accounts("core-banking").await;
    let account = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &account, "10.00").await;
    let theirs_only = "PGTHEIRSONLY00000000000000000002";
    sim.plant_debit(nets_union::NETWORK, theirs_only, 500).await;
    let period = recon_period(&app, nets_union::NETWORK);
    let netsunion = ClearingNetwork::Netsunion as i32;
    let mut op = ops(&app, OPERATOR).await;
    assert_refused(
        op.get_reconciliation(recon_req(netsunion, &period)).await,
        Code::NotFound,
        "RECONCILIATION_NOT_FOUND",
    );

    let later = eod_run_later(&app, 2);
    let recon = op
        .get_reconciliation(recon_req(netsunion, &period))
        .await
        .expect("stored by the end of day")
        .into_inner();
    assert_eq!(
        (
            recon.their_lines,
            recon.our_lines,
            recon.matched,
            recon.unsettled
        ),
        (2, 1, 1, 0),
        "{recon:?}"
    );
    assert_eq!(recon.net, Some(cny("15.00")), "the file's two debits");
    let planted = ReconBreak {
        kind: BreakKind::TheirsOnly as i32,
        reference: theirs_only.to_owned(),
        ours_amount: None,
        theirs_amount: Some(cny("5.00")),
        ours_status: ReconLineStatus::Unspecified as i32,
        theirs_status: ReconLineStatus::Succeeded as i32,
        theirs_movement: ReconMovement::Debit as i32,
        adjustment: None,
    };
    assert_eq!(recon.breaks, vec![planted.clone()]);

    // Refusals first: a break that is not there, then the adjustment, once.
    assert_refused(
        op.adjust_break(adjust_req(&request_id("adj"), &period, "PGNOSUCH", "typo"))
            .await,
        Code::NotFound,
        "BREAK_NOT_FOUND",
    );
    let id = request_id("adj");
    let reason = "network debited a card for no order of ours: case 17";
    let first = op
        .adjust_break(adjust_req(&id, &period, theirs_only, reason))
        .await
        .expect("adjusted")
        .into_inner();
    let adjustment = first.adjustment.clone().unwrap();
    assert_eq!(adjustment.amount, Some(cny("5.00")), "out of the suspense");
    assert_eq!(
        (adjustment.operator.as_str(), adjustment.reason.as_str()),
        (OPERATOR, reason)
    );
    let again = op
        .adjust_break(adjust_req(&id, &period, theirs_only, reason))
        .await
        .expect("the same request answers again")
        .into_inner();
    assert_eq!(again, first);
    assert_refused(
        op.adjust_break(adjust_req(&id, &period, theirs_only, "another reason"))
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let refused = assert_refused(
        op.adjust_break(adjust_req(&request_id("adj"), &period, theirs_only, reason))
            .await,
        Code::FailedPrecondition,
        "BREAK_ALREADY_ADJUSTED",
    );
    assert_eq!(metadata_of(&refused)["operator"], OPERATOR);

    let recon = op
        .get_reconciliation(recon_req(netsunion, &period))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        recon.breaks,
        vec![ReconBreak {
            adjustment: Some(adjustment),
            ..planted
        }]
    );
    let balances = balances_of_kind(&app.config.database.url, "BANK_INTERNAL").await;
    assert_eq!(balances["CLEARING_SUSPENSE_NETS_UNION"], 0, "{balances:?}");
    assert_eq!(balances["RECON_ADJUSTMENT"], 500, "{balances:?}");

    // The date's steps, as `paygate eod status --date D --json` shows them.
    let date = dashed(&period);
    let steps = steps_of(&mut op, &date).await;
    let printed = eod_status(&app, &later, &date);
    assert_eq!(steps.len(), printed.len(), "{steps:?}");
    for (rpc, cli) in steps.iter().zip(&printed) {
        assert_eq!(rpc.step, cli["step"].as_str().unwrap());
        assert_eq!(
            EndOfDayStepState::try_from(rpc.state)
                .unwrap()
                .as_str_name(),
            format!("END_OF_DAY_STEP_STATE_{}", cli["state"].as_str().unwrap())
        );
        assert_eq!(i64::from(rpc.attempts), cli["attempts"].as_i64().unwrap());
        assert_eq!(rpc.detail, cli["detail"].as_str().unwrap());
    }
    let detail = |name: &str| {
        let step = steps.iter().find(|s| s.step == name).unwrap();
        assert_eq!(step.state, EndOfDayStepState::Done as i32, "{step:?}");
        assert!(step.finish_time.is_some(), "{step:?}");
        step.detail.clone()
    };
    assert_eq!(
        detail("RECON/NETS_UNION"),
        "1 matched, 1 breaks, 0 carried to the next date, net 1500"
    );
    assert_eq!(
        detail("SETTLE/NETS_UNION"),
        "received 15.00 CNY from NETS_UNION"
    );

    // The adjustment is in the audit log once, under the operator's name, the RPC's method
    // and the request id (the replay and the refusals wrote nothing).
    let (code, out) = app.paygate(&["audit", "export", "--config", later.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let audited: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["caller"] == OPERATOR)
        .collect();
    assert_eq!(audited.len(), 1, "{out}");
    assert_eq!(
        audited[0]["method"],
        "paygate.v1.OperationsService/AdjustBreak"
    );
    assert_eq!(audited[0]["request_id"], id.as_str());
    assert_eq!(audited[0]["outcome"], "OK");
}

/// A gateway whose end-of-day worker runs every 50 ms, once its first round made today the
/// first date it closes; an operator's client; today.
async fn app_with_its_first_date(backend: Backend) -> (TestApp, Ops, Date) {
    let app = spawn_app_with(backend, |c| c.eod.interval_ms = 50).await;
    let mut op = ops(&app, OPERATOR).await;
    let day = today(&app);
    let deadline = Instant::now() + Duration::from_secs(10);
    while steps_of(&mut op, &day.to_string()).await.is_empty() {
        assert!(Instant::now() < deadline, "the end-of-day worker never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (app, op, day)
}

/// A merchant paid by balance in apps at 0.6 %, acted for by the merchant gateway.
async fn balance_merchant(app: &TestApp, name: &str) -> String {
    app_merchant(
        app,
        name,
        &[PaymentMethodType::Balance],
        &["merchant-gateway"],
    )
    .await
}

/// A Class II payer of the mobile back end, topped up with `amount`.
async fn payer_with(app: &TestApp, amount: &str) -> String {
    let mut accounts = app.accounts("mobile-backend").await;
    let payer = open_class_ii(&mut accounts, 7).await;
    top_up(&mut accounts, &payer, amount).await;
    payer
}

/// An order `no` of `merchant` for `amount`, paid by `payer` from its balance; its id.
async fn pay(app: &TestApp, merchant: &str, payer: &str, no: &str, amount: &str) -> String {
    let order = CashierServiceClient::new(app.channel("merchant-gateway").await)
        .create_order(app_order_req(merchant, no, amount))
        .await
        .expect("order created")
        .into_inner()
        .order
        .unwrap();
    CashierServiceClient::new(app.channel("mobile-backend").await)
        .pay(pay_req(
            &order.order_id,
            payer,
            pay_request::Method::Balance(BalancePayment {}),
        ))
        .await
        .expect("paid");
    order.order_id
}

/// Moves the clock past `day` and waits for its MERCHANT_SETTLEMENT step to be done.
async fn settled_after_the_date(app: &TestApp, op: &mut Ops, day: Date) -> EndOfDayStep {
    advance_to(app, day.next_day().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let step = steps_of(op, &day.to_string())
            .await
            .into_iter()
            .find(|s| s.step == "MERCHANT_SETTLEMENT")
            .expect("planned");
        if step.state == EndOfDayStepState::Done as i32 {
            return step;
        }
        assert!(Instant::now() < deadline, "never done: {step:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_merchant_settlement_statement_matches_the_days_payments_and_refunds_to_the_fen(
    backend: Backend,
) {
    let (app, mut op, day) = app_with_its_first_date(backend).await;
    let date = day.to_string();
    let shop = balance_merchant(&app, "tea-house").await;
    let quiet = balance_merchant(&app, "quiet-shop").await;
    let payer = payer_with(&app, "500.00").await;
    let mut merchant = CashierServiceClient::new(app.channel("merchant-gateway").await);
    // Fees at 0.6 %, half up to the fen: 0.60, 0.20 (19.998) and 0.08 (7.5).
    let mut orders = Vec::new();
    for (no, amount) in [("T1", "100.00"), ("T2", "33.33"), ("T3", "12.50")] {
        orders.push(pay(&app, &shop, &payer, no, amount).await);
    }
    for (order, amount) in [(&orders[0], "20.00"), (&orders[2], "5.00")] {
        merchant
            .refund(RefundRequest {
                request_id: request_id("refund"),
                order_id: order.clone(),
                merchant_refund_no: String::new(),
                amount: Some(cny(amount)),
                reason: "returned".to_owned(),
            })
            .await
            .expect("refunded");
    }
    assert_refused(
        op.get_merchant_settlement(statement_req(&shop, &date))
            .await,
        Code::NotFound,
        "SETTLEMENT_STATEMENT_NOT_FOUND",
    );

    // The date ends; the worker's MERCHANT_SETTLEMENT step makes the statements.
    let step = settled_after_the_date(&app, &mut op, day).await;
    assert_eq!(
        step.detail,
        "1 merchants: gross 145.83 CNY, refunded 25.00 CNY, fees 0.88 CNY, net 119.95 CNY"
    );
    let statement = op
        .get_merchant_settlement(statement_req(&shop, &date))
        .await
        .expect("made by the end of day")
        .into_inner()
        .settlement
        .unwrap();
    assert_eq!(
        statement,
        MerchantSettlement {
            merchant_id: shop.clone(),
            business_date: date.clone(),
            settlement_account_id: statement.settlement_account_id.clone(),
            payments: 3,
            gross: Some(cny("145.83")),
            refunds: 2,
            refunded: Some(cny("25.00")),
            fees: Some(cny("0.88")),
            net: Some(cny("119.95")),
            closing_balance: Some(cny("119.95")),
        }
    );
    let mut bank = app.accounts("core-banking").await;
    let settled = book(&mut bank, &statement.settlement_account_id).await;
    assert_eq!(settled, "119.95");
    // A merchant with nothing that date has no statement.
    assert_refused(
        op.get_merchant_settlement(statement_req(&quiet, &date))
            .await,
        Code::NotFound,
        "SETTLEMENT_STATEMENT_NOT_FOUND",
    );
}

async fn more_merchants_than_one_batch_holds_each_get_their_statement(backend: Backend) {
    let (app, mut op, day) = app_with_its_first_date(backend).await;
    let payer = payer_with(&app, "100.00").await;
    // Eleven statements: more than one batch of documents holds with the step's record.
    let mut shops = Vec::new();
    for n in 1..=11 {
        let shop = balance_merchant(&app, &format!("stall-{n:02}")).await;
        pay(&app, &shop, &payer, "S1", &format!("{n}.00")).await;
        shops.push(shop);
    }
    let step = settled_after_the_date(&app, &mut op, day).await;
    assert_eq!(
        step.detail,
        "11 merchants: gross 66.00 CNY, refunded 0.00 CNY, fees 0.40 CNY, net 65.60 CNY"
    );
    for (n, shop) in (1..).zip(&shops) {
        let statement = op
            .get_merchant_settlement(statement_req(shop, &day.to_string()))
            .await
            .expect("each merchant has its statement")
            .into_inner()
            .settlement
            .unwrap();
        assert_eq!(
            (statement.payments, statement.gross.clone()),
            (1, Some(cny(&format!("{n}.00")))),
            "{statement:?}"
        );
    }
}
