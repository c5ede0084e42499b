//! Instalments (分期) over mutual TLS on both back ends: a drawdown split into 3, 6 or 12
//! monthly instalments, exact to the fen, once; refusals first (bad counts and methods, an
//! unknown drawdown, a foreign line, a repaid drawdown, a second split), each writing nothing.
//!
//! Terms: limit 5,000.00 at 18 % APR (a monthly rate of 1.5 %), repayments due on the 10th.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, TestApp, assert_refused, cny, line_now, metadata_of, open_class_ii, open_line,
    pay_with_credit, request_id, spawn_app, top_up,
    yields::{advance_to, today},
};
use paygate::grpc::pb::{
    self, AccrueInterestRequest, InstalmentMethod, InstalmentState, ListInstalmentsRequest,
    OpenCreditLineRequest, RepayRequest, SplitDrawdownRequest,
    credit_service_client::CreditServiceClient,
};
use time::{Date, Duration};
use tonic::{Code, transport::Channel};

both_backends!(
    splitting_refuses_bad_counts_methods_unknown_drawdowns_and_foreign_lines_and_writes_nothing,
    a_repaid_drawdown_is_not_split,
    an_equal_instalment_plan_is_exact_to_the_fen_made_once_and_listed,
    an_equal_principal_plan_over_twelve_months_puts_the_rounding_in_the_last_instalment,
    an_instalment_unpaid_after_its_due_date_is_overdue,
    a_plans_interest_falls_due_with_its_instalment_and_its_principal_bears_no_daily_interest,
);

type Credit = CreditServiceClient<Channel>;

struct World {
    app: TestApp,
    customer: Credit,
    bank: Credit,
    account: String,
    line: String,
    accounts: common::Accounts,
}

/// A borrower with a 5,000.00 line at 18 % due on the 10th.
async fn world(backend: Backend) -> World {
    let app = spawn_app(backend).await;
    let mut bank = CreditServiceClient::new(app.channel("core-banking").await);
    let mut accounts = app.accounts("mobile-backend").await;
    let account = open_class_ii(&mut accounts, 1).await;
    let line = open_line(
        &mut bank,
        OpenCreditLineRequest {
            request_id: request_id("open"),
            account_id: account.clone(),
            limit: Some(cny("5000.00")),
            annual_rate: "0.18".to_owned(),
            grace_days: 0,
            repayment_day: 10,
            auto_repay: false,
        },
    )
    .await;
    World {
        customer: CreditServiceClient::new(app.channel("mobile-backend").await),
        bank,
        account,
        line,
        accounts,
        app,
    }
}

impl World {
    /// Pays an order of `amount` with the line: the drawdown's id.
    async fn draw(&mut self, no: &str, amount: &str) -> String {
        pay_with_credit(&self.app, &self.account, &self.line, no, amount)
            .await
            .1
    }

    fn split(&self, drawdown: &str, count: i32, method: InstalmentMethod) -> SplitDrawdownRequest {
        SplitDrawdownRequest {
            request_id: request_id("split"),
            credit_line_id: self.line.clone(),
            drawdown_id: drawdown.to_owned(),
            count,
            method: method as i32,
        }
    }

    async fn plans(&mut self, drawdown: &str) -> Vec<pb::InstalmentPlan> {
        self.customer
            .list_instalments(ListInstalmentsRequest {
                credit_line_id: self.line.clone(),
                drawdown_id: drawdown.to_owned(),
            })
            .await
            .expect("instalments list")
            .into_inner()
            .plans
    }
}

/// (due date, principal, interest, paid, state) of each instalment.
fn rows(plan: &pb::InstalmentPlan) -> Vec<(String, String, String, String, InstalmentState)> {
    plan.instalments
        .iter()
        .map(|i| {
            (
                i.due_date.clone(),
                i.principal.clone().expect("principal").amount,
                i.interest.clone().expect("interest").amount,
                i.paid.clone().expect("paid").amount,
                i.state(),
            )
        })
        .collect()
}

/// The 10th of `months` months after `day`'s month.
fn tenth(day: Date, months: u32) -> Date {
    let index = u32::from(u8::from(day.month())) - 1 + months;
    let year = day.year() + i32::try_from(index / 12).unwrap();
    let month = time::Month::try_from(u8::try_from(index % 12 + 1).unwrap()).unwrap();
    Date::from_calendar_date(year, month, 10).unwrap()
}

/// The due dates of a plan made on `day`: the first 10th at least a month after it, then the
/// 10ths of the months after that.
fn dues(day: Date, count: u32) -> Vec<String> {
    let next = tenth(day, 1);
    let month_later = next
        .replace_day(day.day().min(next.month().length(next.year())))
        .unwrap();
    let skip = u32::from(next < month_later);
    (0..count)
        .map(|k| tenth(day, 1 + skip + k).to_string())
        .collect()
}

async fn splitting_refuses_bad_counts_methods_unknown_drawdowns_and_foreign_lines_and_writes_nothing(
    backend: Backend,
) {
    let mut w = world(backend).await;
    let drawdown = w.draw("A", "1000.00").await;
    for count in [0, 1, 2, 4, 24, -3] {
        let refused = assert_refused(
            w.customer
                .split_drawdown(w.split(&drawdown, count, InstalmentMethod::EqualPrincipal))
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(metadata_of(&refused)["field"], "count", "count {count}");
    }
    let refused = assert_refused(
        w.customer
            .split_drawdown(w.split(&drawdown, 3, InstalmentMethod::Unspecified))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(metadata_of(&refused)["field"], "method");
    let unknown = assert_refused(
        w.customer
            .split_drawdown(w.split("D404", 3, InstalmentMethod::EqualPrincipal))
            .await,
        Code::NotFound,
        "CREDIT_DRAWDOWN_NOT_FOUND",
    );
    assert_eq!(metadata_of(&unknown)["drawdown_id"], "D404");
    assert_refused(
        w.customer
            .split_drawdown(SplitDrawdownRequest {
                credit_line_id: "CL99999999999999999999".to_owned(),
                ..w.split(&drawdown, 3, InstalmentMethod::EqualPrincipal)
            })
            .await,
        Code::NotFound,
        "CREDIT_LINE_NOT_FOUND",
    );
    // A customer of another mobile back end does not see this line.
    let mut other = CreditServiceClient::new(w.app.channel("merchant-gateway").await);
    assert_refused(
        other
            .split_drawdown(w.split(&drawdown, 3, InstalmentMethod::EqualPrincipal))
            .await,
        Code::PermissionDenied,
        "METHOD_NOT_GRANTED",
    );
    // A refusal claims its request id: the same request answers the same refusal.
    let req = w.split("D404", 3, InstalmentMethod::EqualPrincipal);
    for _ in 0..2 {
        assert_refused(
            w.customer.split_drawdown(req.clone()).await,
            Code::NotFound,
            "CREDIT_DRAWDOWN_NOT_FOUND",
        );
    }
    assert!(w.plans("").await.is_empty());
    assert!(w.plans(&drawdown).await.is_empty());
}

async fn a_repaid_drawdown_is_not_split(backend: Backend) {
    let mut w = world(backend).await;
    let drawdown = w.draw("A", "300.00").await;
    top_up(&mut w.accounts, &w.account, "300.00").await;
    w.customer
        .repay(RepayRequest {
            request_id: request_id("repay"),
            credit_line_id: w.line.clone(),
            amount: Some(cny("0.01")),
            from_account_id: w.account.clone(),
            ..Default::default()
        })
        .await
        .expect("repaid a fen");
    let refused = assert_refused(
        w.customer
            .split_drawdown(w.split(&drawdown, 3, InstalmentMethod::EqualPrincipal))
            .await,
        Code::FailedPrecondition,
        "DRAWDOWN_REPAID",
    );
    assert_eq!(metadata_of(&refused)["drawdown_id"], drawdown);
    assert!(w.plans("").await.is_empty());
}

async fn an_equal_instalment_plan_is_exact_to_the_fen_made_once_and_listed(backend: Backend) {
    let mut w = world(backend).await;
    let drawdown = w.draw("A", "1000.00").await;
    let req = w.split(&drawdown, 3, InstalmentMethod::EqualInstalment);
    let plan = w
        .customer
        .split_drawdown(req.clone())
        .await
        .expect("split")
        .into_inner()
        .plan
        .expect("plan");

    // A = 1000.00 × 0.015 × 1.015³ / (1.015³ − 1) = 343.3829… → 343.38 a month:
    //   1: interest 1000.00 × 0.015 = 15.00, principal 328.38, left 671.62
    //   2: interest  671.62 × 0.015 = 10.0743 → 10.07, principal 333.31, left 338.31
    //   3: interest  338.31 × 0.015 =  5.07465 → 5.07, principal 338.31 (the last takes the rest)
    let due = dues(today(&w.app), 3);
    let pending = InstalmentState::Pending;
    let zero = || "0.00".to_owned();
    assert_eq!(
        rows(&plan),
        vec![
            (
                due[0].clone(),
                "328.38".into(),
                "15.00".into(),
                zero(),
                pending
            ),
            (
                due[1].clone(),
                "333.31".into(),
                "10.07".into(),
                zero(),
                pending
            ),
            (
                due[2].clone(),
                "338.31".into(),
                "5.07".into(),
                zero(),
                pending
            ),
        ]
    );
    assert_eq!(plan.method(), InstalmentMethod::EqualInstalment);
    assert_eq!(plan.principal.clone().expect("principal").amount, "1000.00");
    assert_eq!(plan.drawdown_id, drawdown);
    assert_eq!(plan.made_date, today(&w.app).to_string());

    // The same request answers the same plan; another is refused: a drawdown splits once.
    let again = w.customer.split_drawdown(req).await.expect("retry");
    assert_eq!(again.into_inner().plan.expect("plan"), plan);
    for method in [
        InstalmentMethod::EqualInstalment,
        InstalmentMethod::EqualPrincipal,
    ] {
        assert_refused(
            w.customer
                .split_drawdown(w.split(&drawdown, 6, method))
                .await,
            Code::FailedPrecondition,
            "DRAWDOWN_ALREADY_SPLIT",
        );
    }

    // Listed by line and by drawdown; the bank sees the same.
    let second = w.draw("B", "200.00").await;
    assert_eq!(w.plans("").await, vec![plan.clone()]);
    assert_eq!(w.plans(&drawdown).await, vec![plan.clone()]);
    assert!(w.plans(&second).await.is_empty());
    let by_bank = w
        .bank
        .list_instalments(ListInstalmentsRequest {
            credit_line_id: w.line.clone(),
            drawdown_id: String::new(),
        })
        .await
        .expect("bank lists")
        .into_inner()
        .plans;
    assert_eq!(by_bank, vec![plan]);
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

async fn an_equal_principal_plan_over_twelve_months_puts_the_rounding_in_the_last_instalment(
    backend: Backend,
) {
    let mut w = world(backend).await;
    let drawdown = w.draw("A", "1000.00").await;
    let plan = w
        .customer
        .split_drawdown(w.split(&drawdown, 12, InstalmentMethod::EqualPrincipal))
        .await
        .expect("split")
        .into_inner()
        .plan
        .expect("plan");
    // 1000.00 / 12 = 83.33 a month, the last 83.37; interest 1.5 % of what is left, truncated:
    // 15.00, 13.75 (916.67 × 0.015 = 13.75005), 12.50 (833.34 → 12.5001), 11.25, 10.00,
    // 8.75, 7.50, 6.25, 5.00, 3.75, 2.50, 1.25 (83.37 × 0.015 = 1.25055).
    let principal: Vec<String> = rows(&plan).into_iter().map(|r| r.1).collect();
    let interest: Vec<String> = rows(&plan).into_iter().map(|r| r.2).collect();
    let mut expected_principal = vec!["83.33"; 11];
    expected_principal.push("83.37");
    assert_eq!(principal, expected_principal);
    assert_eq!(
        interest,
        vec![
            "15.00", "13.75", "12.50", "11.25", "10.00", "8.75", "7.50", "6.25", "5.00", "3.75",
            "2.50", "1.25"
        ]
    );
    let due: Vec<String> = rows(&plan).into_iter().map(|r| r.0).collect();
    assert_eq!(due, dues(today(&w.app), 12));
}

async fn an_instalment_unpaid_after_its_due_date_is_overdue(backend: Backend) {
    let mut w = world(backend).await;
    let drawdown = w.draw("A", "600.00").await;
    w.customer
        .split_drawdown(w.split(&drawdown, 3, InstalmentMethod::EqualPrincipal))
        .await
        .expect("split");
    let first_due: Date = Date::parse(
        &dues(today(&w.app), 1)[0],
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();

    advance_to(&w.app, first_due);
    let states: Vec<InstalmentState> = rows(&w.plans(&drawdown).await[0])
        .into_iter()
        .map(|r| r.4)
        .collect();
    assert_eq!(states, vec![InstalmentState::Pending; 3], "due today");

    advance_to(&w.app, first_due + Duration::days(1));
    let states: Vec<InstalmentState> = rows(&w.plans(&drawdown).await[0])
        .into_iter()
        .map(|r| r.4)
        .collect();
    assert_eq!(
        states,
        vec![
            InstalmentState::Overdue,
            InstalmentState::Pending,
            InstalmentState::Pending
        ]
    );
}

async fn a_plans_interest_falls_due_with_its_instalment_and_its_principal_bears_no_daily_interest(
    backend: Backend,
) {
    let mut w = world(backend).await;
    // A: 1,000.00 split in 3 (equal principal: interest 15.00, 10.00, 5.00); B: 365.00 not
    // split, 365.00 × 0.18 / 365 = 18 fen a day (no grace: from its own date).
    let a = w.draw("A", "1000.00").await;
    w.customer
        .split_drawdown(w.split(&a, 3, InstalmentMethod::EqualPrincipal))
        .await
        .expect("split");
    w.draw("B", "365.00").await;
    let day0 = today(&w.app);
    let first_due = Date::parse(
        &dues(day0, 1)[0],
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();

    let mut date = day0;
    let mut days = 0;
    while date <= first_due {
        advance_to(&w.app, date + Duration::days(1));
        let accrue = AccrueInterestRequest {
            business_date: date.to_string(),
        };
        let run = w
            .bank
            .accrue_interest(accrue.clone())
            .await
            .expect("accrues")
            .into_inner();
        days += 1;
        let expected = if date == first_due { "15.18" } else { "0.18" };
        assert_eq!(run.interest.expect("interest").amount, expected, "{date}");
        let again = w.bank.accrue_interest(accrue).await.expect("again");
        assert_eq!(again.into_inner().line_days, 0, "never twice");
        let line = line_now(&mut w.bank, &w.line).await;
        let due_minor = 18 * days + if date == first_due { 1500 } else { 0 };
        assert_eq!(
            line.interest_due.expect("interest due").amount,
            format!("{}.{:02}", due_minor / 100, due_minor % 100),
            "{date}"
        );
        assert_eq!(line.used.expect("used").amount, "1365.00");
        date += Duration::days(1);
    }
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}
