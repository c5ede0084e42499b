//! Ninety days of one credit line, walked business date by business date on the gateway's
//! manual clock, every balance checked against a table computed by hand (the arithmetic is in
//! the table's comment): two drawdowns, a grace period, daily interest
//! truncated to the fen with the remainder carried, partial repayments that pay interest first,
//! a refund that restores the line, and an early payoff. Failure paths of the accrual first.
//!
//! Terms: limit 5,000.00, APR 7.3 % (so a day's interest is exactly principal × 0.0002), 10
//! grace days (a drawdown bears no interest on its own date and the 9 after it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, app_merchant, app_order_req, assert_refused, book, cny, line_now, open_class_ii,
    open_line, pay_req, request_id, spawn_app, top_up,
    yields::{advance_to, today},
};
use paygate::grpc::pb::{
    self, AccrueInterestRequest, CreditPayment, OpenCreditLineRequest, PaymentMethodType,
    RefundRequest, RepayRequest, cashier_service_client::CashierServiceClient,
    credit_service_client::CreditServiceClient, pay_request,
};
use time::Duration;
use tonic::Code;

both_backends!(
    accrual_refuses_dates_that_have_not_ended_or_are_malformed,
    ninety_days_of_a_line_match_the_hand_computed_table,
);

/// After the accrual of each listed day: (day, principal used, interest due).
///
/// ```text
/// day  0  draw 1,234.56 (order A)          in grace days 0–9: no interest
/// day 10  1,234.56 × 0.0002 = 24.6912 fen  → 0.24, carry 0.6912
/// day 11  24.6912 + 0.6912 = 25.3824       → 0.25 (due 0.49), carry 0.3824
/// day 20  draw 2,000.00 (order B): in grace days 20–29, so still 1,234.56 bears interest
/// day 29  due 4.93, carry 0.8240
/// day 30  repay 100.00 = interest 4.93 + principal 95.07 → principal 3,139.49
///         3,139.49 × 0.0002 + 0.8240 = 63.6138 → 0.63, carry 0.6138
/// day 45  refund 500.00 of order B restores the line → principal 2,639.49: 53 fen a day
/// day 60  repay 50.00 = interest 17.34 + principal 32.66 → principal 2,606.83: 52 a day
/// day 89  early payoff 2,621.95 = interest 15.12 + principal 2,606.83
/// ```
const TABLE: &[(i64, &str, &str)] = &[
    (0, "1234.56", "0.00"),
    (9, "1234.56", "0.00"),
    (10, "1234.56", "0.24"),
    (11, "1234.56", "0.49"),
    (19, "1234.56", "2.46"),
    (20, "3234.56", "2.71"),
    (29, "3234.56", "4.93"),
    (30, "3139.49", "0.63"),
    (31, "3139.49", "1.26"),
    (44, "3139.49", "9.42"),
    (45, "2639.49", "9.95"),
    (46, "2639.49", "10.48"),
    (59, "2639.49", "17.34"),
    (60, "2606.83", "0.52"),
    (61, "2606.83", "1.04"),
    (88, "2606.83", "15.12"),
    (89, "0.00", "0.00"),
];

/// Repayments: (day, amount, interest repaid, principal repaid).
const REPAYMENTS: &[(i64, &str, &str, &str)] = &[
    (30, "100.00", "4.93", "95.07"),
    (60, "50.00", "17.34", "32.66"),
    (89, "2621.95", "15.12", "2606.83"),
];

fn money(m: Option<pb::Money>) -> String {
    m.expect("money").amount
}

async fn accrual_refuses_dates_that_have_not_ended_or_are_malformed(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut bank = CreditServiceClient::new(app.channel("core-banking").await);
    let accrue = |date: String| AccrueInterestRequest {
        business_date: date,
    };
    let day = today(&app);
    for not_ended in [day, day + Duration::days(1)] {
        assert_refused(
            bank.accrue_interest(accrue(not_ended.to_string())).await,
            Code::FailedPrecondition,
            "BUSINESS_DATE_OUT_OF_ORDER",
        );
    }
    assert_refused(
        bank.accrue_interest(accrue((day - Duration::days(32)).to_string()))
            .await,
        Code::FailedPrecondition,
        "BUSINESS_DATE_OUT_OF_ORDER",
    );
    assert_refused(
        bank.accrue_interest(accrue("2026-13-01".to_owned())).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let mut customer = CreditServiceClient::new(app.channel("mobile-backend").await);
    assert_refused(
        customer
            .accrue_interest(accrue((day - Duration::days(1)).to_string()))
            .await,
        Code::PermissionDenied,
        "METHOD_NOT_GRANTED",
    );
    // No line yet: an ended date accrues nothing, successfully.
    let run = bank
        .accrue_interest(accrue((day - Duration::days(1)).to_string()))
        .await
        .expect("accrues")
        .into_inner();
    assert_eq!((run.lines, run.line_days), (0, 0));
    assert_eq!(money(run.interest), "0.00");
}

async fn ninety_days_of_a_line_match_the_hand_computed_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let merchant = app_merchant(
        &app,
        "furniture shop",
        &[PaymentMethodType::Credit],
        &["merchant-gateway"],
    )
    .await;
    let mut shop = CashierServiceClient::new(app.channel("merchant-gateway").await);
    let mut payer_app = CashierServiceClient::new(app.channel("mobile-backend").await);
    let mut bank = CreditServiceClient::new(app.channel("core-banking").await);
    let mut accounts = app.accounts("mobile-backend").await;
    let account = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &account, "3000.00").await;
    let line = open_line(
        &mut bank,
        OpenCreditLineRequest {
            request_id: request_id("open"),
            account_id: account.clone(),
            limit: Some(cny("5000.00")),
            annual_rate: "0.073".to_owned(),
            grace_days: 10,
            repayment_day: 15,
            auto_repay: false,
        },
    )
    .await;
    let day0 = today(&app);
    let mut order_b = String::new();
    let mut income_minor = 0;

    for day in 0..90_i64 {
        // The clock is at 01:00 of `date` (day 0: when the line opened).
        let date = day0 + Duration::days(day);
        match day {
            0 | 20 => {
                let (no, amount) = if day == 0 {
                    ("A", "1234.56")
                } else {
                    ("B", "2000.00")
                };
                let order = shop
                    .create_order(app_order_req(&merchant, no, amount))
                    .await
                    .expect("order")
                    .into_inner()
                    .order
                    .expect("order")
                    .order_id;
                payer_app
                    .pay(pay_req(
                        &order,
                        &account,
                        pay_request::Method::Credit(CreditPayment {
                            credit_line_id: line.clone(),
                            ..Default::default()
                        }),
                    ))
                    .await
                    .expect("paid with credit");
                if day == 20 {
                    order_b = order;
                }
            }
            45 => {
                shop.refund(RefundRequest {
                    request_id: request_id("refund"),
                    order_id: order_b.clone(),
                    merchant_refund_no: "RF-B".to_owned(),
                    amount: Some(cny("500.00")),
                    reason: "one chair returned".to_owned(),
                })
                .await
                .expect("refunded");
            }
            _ => {}
        }
        if let Some((_, amount, interest, principal)) = REPAYMENTS.iter().find(|(d, ..)| *d == day)
        {
            let done = CreditServiceClient::new(app.channel("mobile-backend").await)
                .repay(RepayRequest {
                    request_id: request_id("repay"),
                    credit_line_id: line.clone(),
                    amount: Some(cny(amount)),
                    from_account_id: account.clone(),
                    ..Default::default()
                })
                .await
                .expect("repaid")
                .into_inner();
            assert_eq!(
                (money(done.interest_repaid), money(done.principal_repaid)),
                ((*interest).to_owned(), (*principal).to_owned()),
                "day {day}"
            );
        }

        // The date ends; the end-of-day run accrues it (and a second run posts nothing).
        advance_to(&app, date + Duration::days(1));
        let accrue = AccrueInterestRequest {
            business_date: date.to_string(),
        };
        let run = bank
            .accrue_interest(accrue.clone())
            .await
            .expect("accrues")
            .into_inner();
        assert_eq!((run.lines, run.line_days), (1, 1), "day {day}");
        income_minor += common::yields::minor(&money(run.interest));
        if day % 15 == 0 {
            let again = bank
                .accrue_interest(accrue)
                .await
                .expect("accrues again")
                .into_inner();
            assert_eq!((again.line_days, money(again.interest)), (0, "0.00".into()));
        }
        if let Some((_, used, due)) = TABLE.iter().find(|(d, ..)| *d == day) {
            let l = line_now(&mut bank, &line).await;
            assert_eq!(
                (money(l.used), money(l.interest_due)),
                ((*used).to_owned(), (*due).to_owned()),
                "day {day}"
            );
            assert_eq!(l.accrued_through_date, date.to_string());
        }
    }

    // 37.39 of interest in all: 4.93 + 17.34 + 15.12 repaid.
    assert_eq!(income_minor, 3739);
    // 3,000.00 − 100.00 − 50.00 − 2,621.95.
    assert_eq!(book(&mut accounts, &account).await, "228.05");
    let l = line_now(&mut bank, &line).await;
    assert_eq!(
        (money(l.used), money(l.available), l.next_due_date),
        ("0.00".into(), "5000.00".into(), String::new())
    );
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}
