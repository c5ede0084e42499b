//! A credit line's terms after it opened, over mutual TLS on both back ends, on a manual clock
//! fixed at 2026-03-02: instalments (分期) chosen at payment, committed with the drawdown or not
//! at all; auto-repay (自动还款) switched on and off by the bank; a line with overdue principal
//! refusing new drawdowns until it is repaid, and the cashier saying why. Refusals first.
//!
//! Terms: limit 5,000.00 at 7.3 % APR (a day's interest is principal × 0.0002), no grace,
//! repayments due on the 10th.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, Credit, TestApp, app_merchant, app_order_req, assert_refused, book, borrower,
    clock_on, cny, line_now, metadata_of, pay_req, payment_methods, request_id, spawn_app_on,
    top_up,
    yields::{advance_to, minor},
};
use paygate::grpc::pb::{
    self, AccrueInterestRequest, CreditPayment, InstalmentMethod, ListInstalmentsRequest,
    OrderStatus, PaymentMethodType, RepayRequest, SetAutoRepayRequest, SplitDrawdownRequest,
    cashier_service_client::CashierServiceClient, credit_service_client::CreditServiceClient,
    pay_request,
};
use time::{Date, Duration, macros::date};
use tonic::{Code, transport::Channel};

type Cashier = CashierServiceClient<Channel>;

both_backends!(
    a_plan_chosen_at_payment_commits_with_the_drawdown_or_not_at_all,
    auto_repay_is_switched_on_and_off_by_the_bank_alone,
    a_line_with_overdue_principal_refuses_new_drawdowns_until_it_is_repaid,
);

const DAY0: Date = date!(2026 - 03 - 02);

struct World {
    app: TestApp,
    bank: Credit,
    customer: Credit,
    shop: Cashier,
    payer_app: Cashier,
    accounts: common::Accounts,
    merchant: String,
    account: String,
    line: String,
}

async fn world(backend: Backend) -> World {
    let app = spawn_app_on(backend, clock_on(DAY0), |_| {}).await;
    let (bank, account, line) = borrower(&app, "5000.00", "0.073").await;
    let merchant = app_merchant(
        &app,
        "furniture",
        &[PaymentMethodType::Credit],
        &["merchant-gateway"],
    )
    .await;
    World {
        customer: CreditServiceClient::new(app.channel("mobile-backend").await),
        shop: CashierServiceClient::new(app.channel("merchant-gateway").await),
        payer_app: CashierServiceClient::new(app.channel("mobile-backend").await),
        accounts: app.accounts("mobile-backend").await,
        app,
        bank,
        merchant,
        account,
        line,
    }
}

fn money(m: Option<pb::Money>) -> String {
    m.expect("money").amount
}

impl World {
    async fn order(&mut self, no: &str, amount: &str) -> String {
        self.shop
            .create_order(app_order_req(&self.merchant, no, amount))
            .await
            .expect("order")
            .into_inner()
            .order
            .expect("order")
            .order_id
    }

    /// A credit payment of `order`, split at payment into `count` instalments by `method`.
    fn pay(&self, order: &str, count: i32, method: InstalmentMethod) -> pb::PayRequest {
        pay_req(
            order,
            &self.account,
            pay_request::Method::Credit(CreditPayment {
                credit_line_id: self.line.clone(),
                instalment_count: count,
                instalment_method: method as i32,
            }),
        )
    }

    async fn order_status(&mut self, order: &str) -> OrderStatus {
        self.shop
            .get_order(pb::GetOrderRequest {
                lookup: Some(pb::get_order_request::Lookup::OrderId(order.to_owned())),
            })
            .await
            .expect("order reads")
            .into_inner()
            .order
            .expect("order")
            .status()
    }

    async fn plans(&mut self) -> Vec<pb::InstalmentPlan> {
        self.customer
            .list_instalments(ListInstalmentsRequest {
                credit_line_id: self.line.clone(),
                drawdown_id: String::new(),
            })
            .await
            .expect("instalments list")
            .into_inner()
            .plans
    }

    fn set_auto_repay(&self, enabled: bool) -> SetAutoRepayRequest {
        SetAutoRepayRequest {
            request_id: request_id("auto"),
            credit_line_id: self.line.clone(),
            enabled,
        }
    }

    /// Ends `date` and accrues it: (interest, penalty, auto-repayments) the run posted.
    async fn end_of(&mut self, date: Date) -> (i64, i64, i64) {
        advance_to(&self.app, date + Duration::days(1));
        let run = self
            .bank
            .accrue_interest(AccrueInterestRequest {
                business_date: date.to_string(),
            })
            .await
            .expect("accrues")
            .into_inner();
        (
            minor(&money(run.interest)),
            minor(&money(run.penalty)),
            run.auto_repayments,
        )
    }

    /// The CREDIT option the cashier lists for `order`: (available, unavailable reason).
    async fn credit_option(&mut self, order: &str) -> (bool, String) {
        let account = self.account.clone();
        let methods = payment_methods(&mut self.payer_app, order, &account).await;
        let credit = methods
            .into_iter()
            .find(|m| m.method() == PaymentMethodType::Credit)
            .expect("CREDIT is listed");
        (credit.available, credit.unavailable_reason)
    }
}

/// (due date, principal, interest) of each instalment of a plan.
fn schedule(plan: &pb::InstalmentPlan) -> Vec<(String, String, String)> {
    plan.instalments
        .iter()
        .map(|i| {
            (
                i.due_date.clone(),
                money(i.principal.clone()),
                money(i.interest.clone()),
            )
        })
        .collect()
}

async fn a_plan_chosen_at_payment_commits_with_the_drawdown_or_not_at_all(backend: Backend) {
    let mut w = world(backend).await;
    let order = w.order("TABLE-1", "1200.00").await;

    for (count, method, field) in [
        (
            4,
            InstalmentMethod::EqualPrincipal,
            "credit.instalment_count",
        ),
        (
            -3,
            InstalmentMethod::EqualPrincipal,
            "credit.instalment_count",
        ),
        (
            0,
            InstalmentMethod::EqualInstalment,
            "credit.instalment_count",
        ),
        (3, InstalmentMethod::Unspecified, "credit.instalment_method"),
    ] {
        let refused = assert_refused(
            w.payer_app.pay(w.pay(&order, count, method)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(metadata_of(&refused)["field"], field, "{count} {method:?}");
    }
    // Beyond the line: refused in its batch, so neither the drawdown nor its plan is written.
    let too_big = w.order("WARDROBE-1", "6000.00").await;
    assert_refused(
        w.payer_app
            .pay(w.pay(&too_big, 3, InstalmentMethod::EqualPrincipal))
            .await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    assert_eq!(w.order_status(&order).await, OrderStatus::Created);
    assert!(w.plans().await.is_empty(), "no plan without its drawdown");
    assert_eq!(money(line_now(&mut w.bank, &w.line).await.used), "0.00");

    let pay = w.pay(&order, 3, InstalmentMethod::EqualPrincipal);
    let paid = w
        .payer_app
        .pay(pay.clone())
        .await
        .expect("paid")
        .into_inner();
    let again = w.payer_app.pay(pay).await.expect("replayed").into_inner();
    assert_eq!(again, paid, "a retry answers the first payment");
    let drawdown = paid.order.unwrap().payment.unwrap().credit_drawdown_id;

    // 1,200.00 in 3 of 400.00, interest 1,200.00 × 0.073 / 12 = 7.30, then on 800.00 and
    // 400.00 (truncated), due on the first 10th at least a month away and the two after.
    let plans = w.plans().await;
    assert_eq!(plans.len(), 1, "one plan, made once");
    assert_eq!(plans[0].drawdown_id, drawdown);
    assert_eq!(plans[0].made_date, "2026-03-02");
    let row =
        |due: &str, interest: &str| (due.to_owned(), "400.00".to_owned(), interest.to_owned());
    assert_eq!(
        schedule(&plans[0]),
        vec![
            row("2026-04-10", "7.30"),
            row("2026-05-10", "4.86"),
            row("2026-06-10", "2.43"),
        ]
    );
    assert_refused(
        w.customer
            .split_drawdown(SplitDrawdownRequest {
                request_id: request_id("split"),
                credit_line_id: w.line.clone(),
                drawdown_id: drawdown,
                count: 6,
                method: InstalmentMethod::EqualInstalment as i32,
            })
            .await,
        Code::FailedPrecondition,
        "DRAWDOWN_ALREADY_SPLIT",
    );
    let line = line_now(&mut w.bank, &w.line).await;
    assert_eq!(
        (money(line.used), money(line.available)),
        ("1200.00".into(), "3800.00".into())
    );
    // The plan's principal bears the plan's interest, never the daily one.
    assert_eq!(w.end_of(DAY0).await, (0, 0, 0));
    assert_eq!(w.app.ledger_verify().0, Some(0));
}

async fn auto_repay_is_switched_on_and_off_by_the_bank_alone(backend: Backend) {
    let mut w = world(backend).await;
    assert_refused(
        w.customer.set_auto_repay(w.set_auto_repay(true)).await,
        Code::PermissionDenied,
        "METHOD_NOT_GRANTED",
    );
    assert_refused(
        w.bank
            .set_auto_repay(SetAutoRepayRequest {
                credit_line_id: "CL99999".to_owned(),
                ..w.set_auto_repay(true)
            })
            .await,
        Code::NotFound,
        "CREDIT_LINE_NOT_FOUND",
    );
    assert!(!line_now(&mut w.bank, &w.line).await.auto_repay);

    let on = w.set_auto_repay(true);
    let first = w
        .bank
        .set_auto_repay(on.clone())
        .await
        .expect("on")
        .into_inner();
    assert!(first.credit_line.as_ref().unwrap().auto_repay);
    let again = w
        .bank
        .set_auto_repay(on.clone())
        .await
        .expect("again")
        .into_inner();
    assert_eq!(again, first, "a retry answers the first answer");
    assert_refused(
        w.bank
            .set_auto_repay(SetAutoRepayRequest {
                enabled: false,
                ..on
            })
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );

    // 1,000.00 drawn on 03-02 bears 0.20 a day; on the repayment day 03-10 the nine days'
    // 1.80 has fallen due and is repaid from the account.
    let order = w.order("LAMP-1", "1000.00").await;
    w.payer_app
        .pay(w.pay(&order, 0, InstalmentMethod::Unspecified))
        .await
        .expect("paid");
    let account = w.account.clone();
    top_up(&mut w.accounts, &account, "100.00").await;
    assert_eq!(w.end_of(date!(2026 - 03 - 10)).await, (180, 0, 1));
    assert_eq!(
        money(line_now(&mut w.bank, &w.line).await.interest_due),
        "0.00"
    );
    assert_eq!(book(&mut w.accounts, &account).await, "98.20");

    // Switched off, the next repayment day leaves its 31 days' interest (6.20) due.
    let off = w
        .bank
        .set_auto_repay(w.set_auto_repay(false))
        .await
        .expect("off")
        .into_inner();
    assert!(!off.credit_line.unwrap().auto_repay);
    assert_eq!(w.end_of(date!(2026 - 04 - 10)).await, (620, 0, 0));
    assert_eq!(
        money(line_now(&mut w.bank, &w.line).await.interest_due),
        "6.20"
    );
    assert_eq!(book(&mut w.accounts, &account).await, "98.20");
    assert_eq!(w.app.ledger_verify().0, Some(0));
}

async fn a_line_with_overdue_principal_refuses_new_drawdowns_until_it_is_repaid(backend: Backend) {
    let mut w = world(backend).await;
    let sofa = w.order("SOFA-1", "600.00").await;
    w.payer_app
        .pay(w.pay(&sofa, 3, InstalmentMethod::EqualPrincipal))
        .await
        .expect("paid in 3");
    // The first instalment (200.00 + 600.00 × 0.073 / 12 = 3.65) falls due on 04-10 and is
    // not repaid: overdue once 04-10 is accrued.
    w.end_of(date!(2026 - 04 - 10)).await;
    let line = line_now(&mut w.bank, &w.line).await;
    assert_eq!(
        (money(line.overdue_principal), money(line.interest_due)),
        ("200.00".into(), "3.65".into())
    );

    let lamp = w.order("LAMP-2", "100.00").await;
    let pay = w.pay(&lamp, 0, InstalmentMethod::Unspecified);
    let refused = assert_refused(
        w.payer_app.pay(pay.clone()).await,
        Code::FailedPrecondition,
        "CREDIT_LINE_OVERDUE",
    );
    let metadata = metadata_of(&refused);
    assert_eq!(metadata["overdue_principal"], "200.00");
    assert_eq!(metadata["credit_line_id"], w.line);
    assert_eq!(w.order_status(&lamp).await, OrderStatus::Created);
    assert_eq!(money(line_now(&mut w.bank, &w.line).await.used), "600.00");
    assert_eq!(
        w.credit_option(&lamp).await,
        (false, "CREDIT_LINE_OVERDUE".to_owned())
    );

    // Repaying what has fallen due lifts it.
    let account = w.account.clone();
    top_up(&mut w.accounts, &account, "203.65").await;
    w.customer
        .repay(RepayRequest {
            request_id: request_id("repay"),
            credit_line_id: w.line.clone(),
            amount: Some(cny("203.65")),
            from_account_id: account.clone(),
            ..Default::default()
        })
        .await
        .expect("repaid");
    assert_eq!(
        money(line_now(&mut w.bank, &w.line).await.overdue_principal),
        "0.00"
    );
    assert_eq!(w.credit_option(&lamp).await, (true, String::new()));
    // The refused request keeps its answer; a new one pays.
    assert_refused(
        w.payer_app.pay(pay).await,
        Code::FailedPrecondition,
        "CREDIT_LINE_OVERDUE",
    );
    w.payer_app
        .pay(w.pay(&lamp, 0, InstalmentMethod::Unspecified))
        .await
        .expect("paid once nothing is overdue");
    assert_eq!(money(line_now(&mut w.bank, &w.line).await.used), "500.00");
    assert_eq!(w.app.ledger_verify().0, Some(0));
}
