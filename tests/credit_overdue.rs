//! Ninety days of a line with an instalment plan (分期), walked business date by business date
//! on a manual clock fixed at 2026-03-02, every balance checked against a table computed by
//! hand: repayments allocated penalty → interest → the oldest instalment's principal →
//! principal not in a plan, a partial and two late repayments, an instalment overdue with
//! penalty interest (罚息), an early payoff that closes the plan and waives the interest not yet
//! due, and auto-repay (自动还款) on a repayment day. Refusals first.
//!
//! Terms: limit 5,000.00, APR 7.3 % (a day's interest is principal × 0.0002), no grace,
//! repayments due on the 10th, penalty rate 14.6 % (a day's penalty is overdue × 0.0004).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, Credit, TestApp, assert_refused, book, cny, line_now, metadata_of, open_class_ii,
    open_line, pay_with_credit, request_id, spawn_app_on, top_up,
    yields::{advance_to, minor},
};
use paygate::{
    clock::Clock,
    grpc::pb::{
        self, AccrueInterestRequest, InstalmentMethod, InstalmentState, ListInstalmentsRequest,
        OpenCreditLineRequest, RefundRequest, RepayRequest, SplitDrawdownRequest,
        cashier_service_client::CashierServiceClient, credit_service_client::CreditServiceClient,
    },
};
use time::{Date, Duration, UtcOffset, macros::date};
use tonic::Code;

both_backends!(
    a_refund_of_a_split_purchase_repays_its_instalments_oldest_first_so_none_falls_overdue,
    an_auto_repayment_takes_what_the_account_has_once_per_date_and_leaves_the_rest_overdue,
    ninety_days_with_a_plan_an_overdue_instalment_and_an_early_payoff_match_the_table,
);

/// Day 0 of both tests.
const DAY0: Date = date!(2026 - 03 - 02);

struct World {
    app: TestApp,
    bank: Credit,
    customer: Credit,
    accounts: common::Accounts,
    account: String,
    line: String,
}

/// A borrower on 2026-03-02 with `balance` in the account and a 5,000.00 line at 7.3 %.
async fn world(backend: Backend, balance: &str, auto_repay: bool) -> World {
    let at = DAY0
        .with_hms(1, 0, 0)
        .expect("time")
        .assume_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"));
    let clock = Clock::manual(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("ms"));
    let app = spawn_app_on(backend, clock, |c| {
        c.credit.penalty_annual_rate = "0.146".to_owned();
    })
    .await;
    let mut bank = CreditServiceClient::new(app.channel("core-banking").await);
    let mut accounts = app.accounts("mobile-backend").await;
    let account = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &account, balance).await;
    let line = open_line(
        &mut bank,
        OpenCreditLineRequest {
            request_id: request_id("open"),
            account_id: account.clone(),
            limit: Some(cny("5000.00")),
            annual_rate: "0.073".to_owned(),
            grace_days: 0,
            repayment_day: 10,
            auto_repay,
        },
    )
    .await;
    World {
        customer: CreditServiceClient::new(app.channel("mobile-backend").await),
        app,
        bank,
        accounts,
        account,
        line,
    }
}

fn money(m: Option<pb::Money>) -> String {
    m.expect("money").amount
}

impl World {
    /// Pays an order with the line and splits its drawdown into 3 equal-principal instalments:
    /// the order's id.
    async fn draw_and_split(&mut self, no: &str, amount: &str) -> String {
        let (order, drawdown) =
            pay_with_credit(&self.app, &self.account, &self.line, no, amount).await;
        self.customer
            .split_drawdown(SplitDrawdownRequest {
                request_id: request_id("split"),
                credit_line_id: self.line.clone(),
                drawdown_id: drawdown,
                count: 3,
                method: InstalmentMethod::EqualPrincipal as i32,
            })
            .await
            .expect("split");
        order
    }

    fn repay(&self, amount: &str) -> RepayRequest {
        RepayRequest {
            request_id: request_id("repay"),
            credit_line_id: self.line.clone(),
            amount: Some(cny(amount)),
            from_account_id: self.account.clone(),
            ..Default::default()
        }
    }

    /// (used, interest due, penalty due, overdue principal).
    async fn balances(&mut self) -> (String, String, String, String) {
        let l = line_now(&mut self.bank, &self.line).await;
        (
            money(l.used),
            money(l.interest_due),
            money(l.penalty_due),
            money(l.overdue_principal),
        )
    }

    /// Each instalment of the line's plan: (state, paid, interest waived).
    async fn instalments(&mut self) -> Vec<(InstalmentState, String, String)> {
        let plans = self
            .customer
            .list_instalments(ListInstalmentsRequest {
                credit_line_id: self.line.clone(),
                drawdown_id: String::new(),
            })
            .await
            .expect("instalments list")
            .into_inner()
            .plans;
        plans[0]
            .instalments
            .iter()
            .map(|i| {
                let (paid, waived) = (money(i.paid.clone()), money(i.interest_waived.clone()));
                (i.state(), paid, waived)
            })
            .collect()
    }

    /// Accrues an ended `date` (as the end-of-day run does).
    async fn accrue(&mut self, date: Date) -> pb::AccrueInterestResponse {
        self.bank
            .accrue_interest(AccrueInterestRequest {
                business_date: date.to_string(),
            })
            .await
            .expect("accrues")
            .into_inner()
    }

    /// Ends `date` and accrues it: (interest, penalty, auto-repayments) the run posted.
    async fn end_of(&mut self, date: Date) -> (i64, i64, i64) {
        advance_to(&self.app, date + Duration::days(1));
        let run = self.accrue(date).await;
        (
            minor(&money(run.interest)),
            minor(&money(run.penalty)),
            run.auto_repayments,
        )
    }
}

fn row(
    used: &str,
    interest: &str,
    penalty: &str,
    overdue: &str,
) -> (String, String, String, String) {
    (used.into(), interest.into(), penalty.into(), overdue.into())
}

async fn a_refund_of_a_split_purchase_repays_its_instalments_oldest_first_so_none_falls_overdue(
    backend: Backend,
) {
    let mut w = world(backend, "10.00", false).await;
    // 300.00 in 3 from 04-10: interest 300.00, 200.00, 100.00 × 0.073 / 12 = 1.82, 1.21, 0.60.
    let order = w.draw_and_split("A", "300.00").await;
    CashierServiceClient::new(w.app.channel("merchant-gateway").await)
        .refund(RefundRequest {
            request_id: request_id("refund"),
            order_id: order,
            merchant_refund_no: "RF-A".to_owned(),
            amount: Some(cny("200.00")),
            reason: "two chairs returned".to_owned(),
        })
        .await
        .expect("refunded");
    // The 200.00 restored pays the principal of instalments 1 and 2 (oldest first), as a
    // repayment's principal would; their interest still falls due on their dates.
    let listed: Vec<_> = ["100.00", "100.00", "0.00"]
        .iter()
        .map(|p| (InstalmentState::Pending, (*p).to_owned(), "0.00".to_owned()))
        .collect();
    assert_eq!(w.instalments().await, listed);
    // Past the first due date: its interest 1.82 falls due, and no principal is overdue, so
    // no penalty.
    assert_eq!(w.end_of(date!(2026 - 04 - 11)).await, (182, 0, 0));
    assert_eq!(w.balances().await, row("100.00", "1.82", "0.00", "0.00"));
    assert_eq!(book(&mut w.accounts, &w.account).await, "10.00");
}

async fn an_auto_repayment_takes_what_the_account_has_once_per_date_and_leaves_the_rest_overdue(
    backend: Backend,
) {
    let mut w = world(backend, "60.00", true).await;
    // 300.00 in 3 from 04-10: 100.00 + 300.00 × 0.073 / 12 = 1.825 → 1.82 interest first.
    w.draw_and_split("A", "300.00").await;
    let due = date!(2026 - 04 - 10);
    // One run catches the line up from its opening; 03-10 has nothing due (a no-op).
    let (interest, penalty, auto) = w.end_of(due).await;
    assert_eq!((interest, penalty, auto), (182, 0, 1));
    // Due 101.82; the account has 60.00: interest 1.82, then 58.18 of instalment 1's principal.
    assert_eq!(book(&mut w.accounts, &w.account).await, "0.00");
    assert_eq!(w.balances().await, row("241.82", "0.00", "0.00", "41.82"));
    assert_eq!(
        w.instalments().await[0],
        (
            InstalmentState::Overdue,
            "60.00".to_owned(),
            "0.00".to_owned()
        )
    );

    // The same date again repays nothing more, even with money in the account now.
    top_up(&mut w.accounts, &w.account, "500.00").await;
    let again = w.accrue(due).await;
    assert_eq!((again.line_days, again.auto_repayments), (0, 0));
    assert_eq!(book(&mut w.accounts, &w.account).await, "500.00");

    // 04-11 is overdue: 41.82 × 0.0004 = 1.6728 fen → 0.01 penalty, carry 0.6728.
    assert_eq!(w.end_of(due + Duration::days(1)).await, (0, 1, 0));
    assert_eq!(w.balances().await, row("241.82", "0.00", "0.01", "41.82"));
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

/// After the accrual of each listed day: (day, used, interest due, penalty due, overdue).
///
/// ```text
/// day  0 03-02  draw A 1,200.00, split in 3 equal principal: 400.00 each, due 04-10, 05-10,
///               06-10, interest 1,200.00 × 0.073 / 12 = 7.30, 800.00 → 4.8666 → 4.86,
///               400.00 → 2.4333 → 2.43. A plan's principal bears no daily interest.
/// day  3 03-05  draw B 500.00, not split: 500.00 × 0.0002 = 0.10 a day from day 3
/// day 20 03-22  repay 50.00 = interest 1.70 (days 3–19) + principal 48.30, which goes to the
///               oldest instalment (A1 left 351.70), not to B: still 0.10 a day
/// day 39 04-10  A1 due: interest 0.10 × 20 (days 20–39) + 7.30 = 9.30; unpaid, 351.70 overdue
/// day 40–44     penalty 351.70 × 0.0004 = 14.068 fen a day: 0.14 × 5 (carry 0.340) = 0.70
/// day 45 04-16  1,700.00 refused: owed 1,651.70 + 9.80 + 0.70 = 1,662.20
///               repay 200.00 = penalty 0.70 + interest 9.80 + principal 189.50 (A1 left
///               162.20); penalty on 162.20: 6.488 fen a day + carry 0.340 = 6.828 → 0.06
/// day 46–49     7.316 → 0.07, 6.804 → 0.06, 7.292 → 0.07, 6.780 → 0.06: 0.32 (carry 0.780)
/// day 50 04-21  repay 163.02 = penalty 0.32 + interest 0.50 + principal 162.20: A1 paid
/// day 60 05-01  early payoff 1,301.00 = interest 1.00 (days 50–59) + principal 1,300.00
///               (A2, A3, then B): the plan closes, A2's 4.86 and A3's 2.43 are waived
/// day 69 05-10  A2's due date posts nothing
/// day 75 05-16  draw C 250.00: 0.05 a day, days 75–89: 0.75
/// ```
const TABLE: &[(i64, &str, &str, &str, &str)] = &[
    (0, "1200.00", "0.00", "0.00", "0.00"),
    (2, "1200.00", "0.00", "0.00", "0.00"),
    (3, "1700.00", "0.10", "0.00", "0.00"),
    (19, "1700.00", "1.70", "0.00", "0.00"),
    (20, "1651.70", "0.10", "0.00", "0.00"),
    (38, "1651.70", "1.90", "0.00", "0.00"),
    (39, "1651.70", "9.30", "0.00", "351.70"),
    (40, "1651.70", "9.40", "0.14", "351.70"),
    (44, "1651.70", "9.80", "0.70", "351.70"),
    (45, "1462.20", "0.10", "0.06", "162.20"),
    (46, "1462.20", "0.20", "0.13", "162.20"),
    (49, "1462.20", "0.50", "0.32", "162.20"),
    (50, "1300.00", "0.10", "0.00", "0.00"),
    (59, "1300.00", "1.00", "0.00", "0.00"),
    (60, "0.00", "0.00", "0.00", "0.00"),
    (69, "0.00", "0.00", "0.00", "0.00"),
    (75, "250.00", "0.05", "0.00", "0.00"),
    (89, "250.00", "0.75", "0.00", "0.00"),
];

/// An instalment as listed: (state, paid, interest waived).
type Listed = (InstalmentState, &'static str, &'static str);

/// After the accrual of a day, each instalment of A's plan.
const PLAN_STATES: &[(i64, [Listed; 3])] = &[
    (
        39,
        [
            (InstalmentState::Overdue, "48.30", "0.00"),
            (InstalmentState::Pending, "0.00", "0.00"),
            (InstalmentState::Pending, "0.00", "0.00"),
        ],
    ),
    (
        50,
        [
            (InstalmentState::Paid, "407.30", "0.00"),
            (InstalmentState::Pending, "0.00", "0.00"),
            (InstalmentState::Pending, "0.00", "0.00"),
        ],
    ),
    // Closed by the payoff: principal only, the interest waived.
    (
        69,
        [
            (InstalmentState::Paid, "407.30", "0.00"),
            (InstalmentState::Paid, "400.00", "4.86"),
            (InstalmentState::Paid, "400.00", "2.43"),
        ],
    ),
];

/// Repayments: (day, amount, penalty, interest, principal repaid).
const REPAYMENTS: &[(i64, &str, &str, &str, &str)] = &[
    (20, "50.00", "0.00", "1.70", "48.30"),
    (45, "200.00", "0.70", "9.80", "189.50"),
    (50, "163.02", "0.32", "0.50", "162.20"),
    (60, "1301.00", "0.00", "1.00", "1300.00"),
];

async fn ninety_days_with_a_plan_an_overdue_instalment_and_an_early_payoff_match_the_table(
    backend: Backend,
) {
    let mut w = world(backend, "2000.00", false).await;
    let (mut interest_minor, mut penalty_minor) = (0, 0);
    for day in 0..90_i64 {
        let date = DAY0 + Duration::days(day);
        match day {
            0 => drop(w.draw_and_split("A", "1200.00").await),
            3 => drop(pay_with_credit(&w.app, &w.account, &w.line, "B", "500.00").await),
            75 => drop(pay_with_credit(&w.app, &w.account, &w.line, "C", "250.00").await),
            45 => {
                let refused = assert_refused(
                    w.customer.repay(w.repay("1700.00")).await,
                    Code::FailedPrecondition,
                    "REPAYMENT_EXCEEDS_OUTSTANDING",
                );
                assert_eq!(metadata_of(&refused)["outstanding"], "1662.20");
            }
            _ => {}
        }
        if let Some((_, amount, penalty, interest, principal)) =
            REPAYMENTS.iter().find(|(d, ..)| *d == day)
        {
            let done = w
                .customer
                .repay(w.repay(amount))
                .await
                .expect("repaid")
                .into_inner();
            assert_eq!(
                (
                    money(done.penalty_repaid),
                    money(done.interest_repaid),
                    money(done.principal_repaid)
                ),
                (
                    (*penalty).to_owned(),
                    (*interest).to_owned(),
                    (*principal).to_owned()
                ),
                "day {day}"
            );
        }
        let (interest, penalty, auto) = w.end_of(date).await;
        assert_eq!(auto, 0, "no auto-repay on this line");
        interest_minor += interest;
        penalty_minor += penalty;
        if let Some((_, used, due, pen, overdue)) = TABLE.iter().find(|(d, ..)| *d == day) {
            assert_eq!(
                w.balances().await,
                row(used, due, pen, overdue),
                "day {day}"
            );
        }
        if let Some((_, expected)) = PLAN_STATES.iter().find(|(d, _)| *d == day) {
            let expected: Vec<_> = expected
                .iter()
                .map(|(st, p, waived)| (*st, (*p).to_owned(), (*waived).to_owned()))
                .collect();
            assert_eq!(w.instalments().await, expected, "day {day}");
        }
    }

    // Interest: 0.10 × 57 (days 3–59) + 7.30 + 0.75 = 13.75; penalty 0.70 + 0.32.
    assert_eq!((interest_minor, penalty_minor), (1375, 102));
    // 2,000.00 − 50.00 − 200.00 − 163.02 − 1,301.00.
    assert_eq!(book(&mut w.accounts, &w.account).await, "285.98");
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}
