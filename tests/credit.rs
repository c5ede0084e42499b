//! Consumer credit (消费金融), black-box over mutual TLS on both back ends: credit lines opened
//! by core banking, the cashier's CREDIT method drawing a line down and paying the merchant in
//! one posting, refunds restoring the line, repayments, limits and freezes. Refusals first:
//! each names its rule and writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Accounts, Backend, TestApp, app_merchant, app_order_req, assert_refused, book, cny, line_now,
    metadata_of, open_class_ii, open_line, pay_req, payment_methods, request_id, spawn_app, top_up,
};
use paygate::grpc::pb::{
    self, AdjustLimitRequest, CreditLineStatus, CreditPayment, FreezeCreditLineRequest,
    GetCreditLineRequest, OpenCreditLineRequest, OrderStatus, PaymentMethodType, RefundRequest,
    RepayRequest, cashier_service_client::CashierServiceClient,
    credit_service_client::CreditServiceClient, pay_request,
};
use tonic::{Code, transport::Channel};

type Credit = CreditServiceClient<Channel>;
type Cashier = CashierServiceClient<Channel>;

const BANK: &str = "core-banking";
const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";

both_backends!(
    opening_a_line_refuses_a_rate_above_the_cap_bad_terms_and_a_second_line,
    paying_with_credit_refuses_unknown_foreign_frozen_and_exhausted_lines_and_writes_nothing,
    a_credit_payment_draws_the_line_and_pays_the_merchant_in_one_posting,
    a_refund_restores_the_line_first_then_credits_the_surplus_to_the_account,
    repayment_refuses_what_it_must_and_releases_the_line,
    a_lower_limit_and_a_freeze_stop_drawdowns_and_lifting_them_restores_the_line,
    a_customer_sees_only_the_lines_of_the_accounts_it_opened,
    the_cashier_offers_credit_with_what_the_line_has_left,
);
both_backends!(
    multi_thread: concurrent_credit_payments_never_draw_past_the_limit,
    concurrent_repayments_never_repay_more_than_is_owed,
);

/// A gateway with a merchant signed for credit payments in apps (fee 0.6 %) and the clients
/// the tests use.
struct World {
    app: TestApp,
    merchant_id: String,
    bank: Credit,
    customer: Credit,
    shop: Cashier,
    payer_app: Cashier,
    accounts: Accounts,
    bank_accounts: Accounts,
}

async fn world(backend: Backend) -> World {
    let app = spawn_app(backend).await;
    let merchant_id = app_merchant(
        &app,
        "noodle bar",
        &[PaymentMethodType::Credit, PaymentMethodType::Balance],
        &[MERCHANT_CALLER],
    )
    .await;
    World {
        merchant_id,
        bank: CreditServiceClient::new(app.channel(BANK).await),
        customer: CreditServiceClient::new(app.channel(PAYER_CALLER).await),
        shop: CashierServiceClient::new(app.channel(MERCHANT_CALLER).await),
        payer_app: CashierServiceClient::new(app.channel(PAYER_CALLER).await),
        accounts: app.accounts(PAYER_CALLER).await,
        bank_accounts: app.accounts(BANK).await,
        app,
    }
}

fn open_req(account: &str, limit: &str, rate: &str) -> OpenCreditLineRequest {
    OpenCreditLineRequest {
        request_id: request_id("open-line"),
        account_id: account.to_owned(),
        limit: Some(cny(limit)),
        annual_rate: rate.to_owned(),
        grace_days: 30,
        repayment_day: 10,
        auto_repay: false,
    }
}

fn amount(m: &Option<pb::Money>) -> String {
    m.as_ref().expect("money").amount.clone()
}

impl World {
    /// A Class II customer with a line of `limit` at 18 % APR: (account, line id).
    async fn borrower(&mut self, n: u64, limit: &str) -> (String, String) {
        let account = open_class_ii(&mut self.accounts, n).await;
        let line = open_line(&mut self.bank, open_req(&account, limit, "0.18")).await;
        (account, line)
    }

    async fn order(&mut self, no: &str, amount: &str) -> String {
        self.shop
            .create_order(app_order_req(&self.merchant_id, no, amount))
            .await
            .expect("order created")
            .into_inner()
            .order
            .expect("order")
            .order_id
    }

    fn pay_with(order: &str, payer: &str, line: &str) -> pb::PayRequest {
        pay_req(
            order,
            payer,
            pay_request::Method::Credit(CreditPayment {
                credit_line_id: line.to_owned(),
                ..Default::default()
            }),
        )
    }

    async fn line(&mut self, line: &str) -> pb::CreditLine {
        line_now(&mut self.bank, line).await
    }

    /// (used, available) of a line.
    async fn usage(&mut self, line: &str) -> (String, String) {
        let l = self.line(line).await;
        (amount(&l.used), amount(&l.available))
    }

    async fn order_status(&mut self, id: &str) -> pb::Order {
        self.shop
            .get_order(pb::GetOrderRequest {
                lookup: Some(pb::get_order_request::Lookup::OrderId(id.to_owned())),
            })
            .await
            .expect("order reads")
            .into_inner()
            .order
            .expect("order")
    }

    async fn settlement_book(&mut self) -> String {
        let merchant = CashierServiceClient::new(self.app.channel(BANK).await)
            .get_merchant(pb::GetMerchantRequest {
                merchant_id: self.merchant_id.clone(),
            })
            .await
            .expect("merchant reads")
            .into_inner()
            .merchant
            .expect("merchant");
        book(&mut self.bank_accounts, &merchant.settlement_account_id).await
    }

    fn assert_ledger_verifies(&self) {
        let (code, out) = self.app.ledger_verify();
        assert_eq!(code, Some(0), "ledger verify: {out}");
    }
}

async fn opening_a_line_refuses_a_rate_above_the_cap_bad_terms_and_a_second_line(backend: Backend) {
    let mut w = world(backend).await;
    let account = open_class_ii(&mut w.accounts, 1).await;

    let above_cap = w
        .bank
        .open_credit_line(open_req(&account, "1000.00", "0.2401"))
        .await;
    let status = assert_refused(above_cap, Code::InvalidArgument, "RATE_ABOVE_CAP");
    assert_eq!(metadata_of(&status)["cap"], "0.24");
    for (req, field) in [
        (open_req(&account, "0.00", "0.18"), "limit"),
        (open_req(&account, "1000000.01", "0.18"), "limit"),
        (open_req(&account, "1000.00", "-0.01"), "annual_rate"),
        (open_req(&account, "1000.00", "18%"), "annual_rate"),
        (
            OpenCreditLineRequest {
                repayment_day: 29,
                ..open_req(&account, "1000.00", "0.18")
            },
            "repayment_day",
        ),
        (
            OpenCreditLineRequest {
                grace_days: 61,
                ..open_req(&account, "1000.00", "0.18")
            },
            "grace_days",
        ),
    ] {
        let status = assert_refused(
            w.bank.open_credit_line(req).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(metadata_of(&status)["field"], field);
    }
    assert_refused(
        w.bank
            .open_credit_line(open_req("999999", "1000.00", "0.18"))
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    // Only core banking opens lines: a customer's app may not.
    assert_refused(
        w.customer
            .open_credit_line(open_req(&account, "1000.00", "0.18"))
            .await,
        Code::PermissionDenied,
        "METHOD_NOT_GRANTED",
    );

    let req = open_req(&account, "1000.00", "0.18");
    let line = w
        .bank
        .open_credit_line(req.clone())
        .await
        .expect("line opens")
        .into_inner()
        .credit_line
        .expect("line");
    assert_eq!(line.account_id, account);
    assert_eq!(line.status, CreditLineStatus::Active as i32);
    assert_eq!(
        (
            amount(&line.limit),
            amount(&line.used),
            amount(&line.available)
        ),
        ("1000.00".into(), "0.00".into(), "1000.00".into())
    );
    assert_eq!(line.annual_rate, "0.18");
    assert_eq!((line.grace_days, line.repayment_day), (30, 10));
    assert_eq!(line.next_due_date, "", "nothing used, nothing due");

    let again = w
        .bank
        .open_credit_line(req.clone())
        .await
        .expect("a retry answers the first answer")
        .into_inner()
        .credit_line
        .expect("line");
    assert_eq!(again, line);
    assert_refused(
        w.bank
            .open_credit_line(OpenCreditLineRequest {
                limit: Some(cny("2000.00")),
                ..req
            })
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let second = assert_refused(
        w.bank
            .open_credit_line(open_req(&account, "500.00", "0.12"))
            .await,
        Code::AlreadyExists,
        "CREDIT_LINE_ALREADY_EXISTS",
    );
    assert_eq!(metadata_of(&second)["credit_line_id"], line.credit_line_id);
    assert_eq!(amount(&w.line(&line.credit_line_id).await.limit), "1000.00");
    w.assert_ledger_verifies();
}

async fn paying_with_credit_refuses_unknown_foreign_frozen_and_exhausted_lines_and_writes_nothing(
    backend: Backend,
) {
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "100.00").await;
    let (_, other_line) = w.borrower(2, "100.00").await;
    let order = w.order("N-1", "120.00").await;

    assert_refused(
        w.payer_app
            .pay(World::pay_with(&order, &payer, "CL99999999999999999999"))
            .await,
        Code::NotFound,
        "CREDIT_LINE_NOT_FOUND",
    );
    assert_refused(
        w.payer_app
            .pay(World::pay_with(&order, &payer, &other_line))
            .await,
        Code::PermissionDenied,
        "CREDIT_LINE_NOT_OWNED",
    );
    let req = World::pay_with(&order, &payer, &line);
    let over = assert_refused(
        w.payer_app.pay(req.clone()).await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    let meta = metadata_of(&over);
    assert_eq!(
        (meta["limit_rule"].as_str(), meta["remaining"].as_str()),
        ("CREDIT_LINE", "100.00")
    );
    // The refusal is this request's answer, even once the line could pay.
    w.bank
        .adjust_limit(AdjustLimitRequest {
            request_id: request_id("raise"),
            credit_line_id: line.clone(),
            limit: Some(cny("500.00")),
        })
        .await
        .expect("limit raised");
    assert_refused(
        w.payer_app.pay(req).await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    w.bank
        .freeze_credit_line(FreezeCreditLineRequest {
            request_id: request_id("freeze"),
            credit_line_id: line.clone(),
            frozen: true,
            reason: "overdue elsewhere".to_owned(),
        })
        .await
        .expect("line frozen");
    assert_refused(
        w.payer_app
            .pay(World::pay_with(&order, &payer, &line))
            .await,
        Code::FailedPrecondition,
        "CREDIT_LINE_FROZEN",
    );
    assert_refused(
        w.payer_app
            .pay(pay_req(
                &order,
                &payer,
                pay_request::Method::Credit(CreditPayment {
                    credit_line_id: "not a line!".to_owned(),
                    ..Default::default()
                }),
            ))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );

    assert_eq!(w.usage(&line).await, ("0.00".into(), "0.00".into()));
    assert_eq!(book(&mut w.accounts, &payer).await, "0.00");
    assert_eq!(w.settlement_book().await, "0.00");
    assert_eq!(
        w.order_status(&order).await.status,
        OrderStatus::Created as i32
    );
    w.assert_ledger_verifies();
}

async fn a_credit_payment_draws_the_line_and_pays_the_merchant_in_one_posting(backend: Backend) {
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "1000.00").await;
    let order = w.order("N-1", "300.00").await;

    let req = World::pay_with(&order, &payer, &line);
    let paid = w
        .payer_app
        .pay(req.clone())
        .await
        .expect("paid with credit")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    let payment = paid.payment.clone().expect("payment");
    assert_eq!(payment.method, PaymentMethodType::Credit as i32);
    assert_eq!(payment.credit_line_id, line);
    assert!(payment.credit_drawdown_id.starts_with('D'));
    assert_eq!(
        (amount(&payment.fee), amount(&payment.net_amount)),
        ("1.80".into(), "298.20".into())
    );

    // The line lent 300.00 (used is its receivable's balance), the merchant got 298.20, the
    // payer's balance is where it was.
    assert_eq!(w.usage(&line).await, ("300.00".into(), "700.00".into()));
    assert_eq!(w.settlement_book().await, "298.20");
    assert_eq!(book(&mut w.accounts, &payer).await, "0.00");
    assert!(!w.line(&line).await.next_due_date.is_empty());

    let again = w
        .payer_app
        .pay(req)
        .await
        .expect("a retry answers the first payment")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(again, paid);
    assert_eq!(w.usage(&line).await, ("300.00".into(), "700.00".into()));
    w.assert_ledger_verifies();
}

async fn a_refund_restores_the_line_first_then_credits_the_surplus_to_the_account(
    backend: Backend,
) {
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "1000.00").await;
    let order = w.order("N-1", "300.00").await;
    w.payer_app
        .pay(World::pay_with(&order, &payer, &line))
        .await
        .expect("paid with credit");
    top_up(&mut w.accounts, &payer, "100.00").await;
    w.customer
        .repay(RepayRequest {
            request_id: request_id("repay"),
            credit_line_id: line.clone(),
            amount: Some(cny("100.00")),
            from_account_id: payer.clone(),
            ..Default::default()
        })
        .await
        .expect("repaid");
    assert_eq!(w.usage(&line).await, ("200.00".into(), "800.00".into()));
    assert_eq!(book(&mut w.accounts, &payer).await, "0.00");

    // 250.00 back: 200.00 restores the line, the other 50.00 goes to the account.
    let refund = w
        .shop
        .refund(RefundRequest {
            request_id: request_id("refund"),
            order_id: order.clone(),
            merchant_refund_no: "RF-1".to_owned(),
            amount: Some(cny("250.00")),
            reason: "cold noodles".to_owned(),
        })
        .await
        .expect("refunded")
        .into_inner()
        .refund
        .expect("refund");
    assert_eq!(refund.status, pb::RefundStatus::Succeeded as i32);
    assert_eq!(w.usage(&line).await, ("0.00".into(), "1000.00".into()));
    assert_eq!(book(&mut w.accounts, &payer).await, "50.00");
    assert_eq!(w.settlement_book().await, "48.20");
    assert_eq!(w.line(&line).await.next_due_date, "");
    w.assert_ledger_verifies();
}

async fn repayment_refuses_what_it_must_and_releases_the_line(backend: Backend) {
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "1000.00").await;
    let (stranger, _) = w.borrower(2, "1000.00").await;
    let order = w.order("N-1", "400.00").await;
    w.payer_app
        .pay(World::pay_with(&order, &payer, &line))
        .await
        .expect("paid with credit");
    top_up(&mut w.accounts, &payer, "500.00").await;
    let repay = |amount: &str, from: &str| RepayRequest {
        request_id: request_id("repay"),
        credit_line_id: line.clone(),
        amount: Some(cny(amount)),
        from_account_id: from.to_owned(),
        ..Default::default()
    };

    for bad in ["0.00", "-1.00", "1.001"] {
        assert_refused(
            w.customer.repay(repay(bad, &payer)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
    }
    assert_refused(
        w.customer.repay(repay("10.00", &stranger)).await,
        Code::PermissionDenied,
        "CREDIT_LINE_NOT_OWNED",
    );
    let too_much = assert_refused(
        w.customer.repay(repay("400.01", &payer)).await,
        Code::FailedPrecondition,
        "REPAYMENT_EXCEEDS_OUTSTANDING",
    );
    assert_eq!(metadata_of(&too_much)["outstanding"], "400.00");
    assert_refused(
        w.customer
            .repay(RepayRequest {
                credit_line_id: "CL99999999999999999999".to_owned(),
                ..repay("10.00", &payer)
            })
            .await,
        Code::NotFound,
        "CREDIT_LINE_NOT_FOUND",
    );
    assert_eq!(book(&mut w.accounts, &payer).await, "500.00");

    let req = repay("150.00", &payer);
    let done = w
        .customer
        .repay(req.clone())
        .await
        .expect("repaid")
        .into_inner();
    assert_eq!(amount(&done.principal_repaid), "150.00");
    let after = done.credit_line.clone().expect("line");
    assert_eq!(
        (amount(&after.used), amount(&after.available)),
        ("250.00".into(), "750.00".into())
    );
    let again = w
        .customer
        .repay(req.clone())
        .await
        .expect("a retry answers the first repayment")
        .into_inner();
    assert_eq!(again.transaction_id, done.transaction_id);
    assert_eq!(again.credit_line, done.credit_line);
    assert_refused(
        w.customer
            .repay(RepayRequest {
                amount: Some(cny("151.00")),
                ..req
            })
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    // Early full repayment.
    w.customer
        .repay(repay("250.00", &payer))
        .await
        .expect("paid off");
    assert_eq!(w.usage(&line).await, ("0.00".into(), "1000.00".into()));
    assert_eq!(book(&mut w.accounts, &payer).await, "100.00");
    assert_refused(
        w.customer.repay(repay("0.01", &payer)).await,
        Code::FailedPrecondition,
        "REPAYMENT_EXCEEDS_OUTSTANDING",
    );
    w.assert_ledger_verifies();
}

async fn a_lower_limit_and_a_freeze_stop_drawdowns_and_lifting_them_restores_the_line(
    backend: Backend,
) {
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "1000.00").await;
    let first = w.order("N-1", "600.00").await;
    w.payer_app
        .pay(World::pay_with(&first, &payer, &line))
        .await
        .expect("paid with credit");

    let adjust = |limit: &str| AdjustLimitRequest {
        request_id: request_id("adjust"),
        credit_line_id: line.clone(),
        limit: Some(cny(limit)),
    };
    assert_refused(
        w.bank
            .adjust_limit(AdjustLimitRequest {
                credit_line_id: "CL99999999999999999999".to_owned(),
                ..adjust("10.00")
            })
            .await,
        Code::NotFound,
        "CREDIT_LINE_NOT_FOUND",
    );
    assert_refused(
        w.customer.adjust_limit(adjust("5000.00")).await,
        Code::PermissionDenied,
        "METHOD_NOT_GRANTED",
    );
    // Below what is used: allowed, and nothing more may be drawn.
    let lower = adjust("500.00");
    let lowered = w
        .bank
        .adjust_limit(lower.clone())
        .await
        .expect("limit lowered")
        .into_inner()
        .credit_line
        .expect("line");
    let again = w
        .bank
        .adjust_limit(lower.clone())
        .await
        .expect("a retry answers the first answer")
        .into_inner()
        .credit_line
        .expect("line");
    assert_eq!(again, lowered);
    assert_refused(
        w.bank
            .adjust_limit(AdjustLimitRequest {
                limit: Some(cny("400.00")),
                ..lower
            })
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(
        (
            amount(&lowered.limit),
            amount(&lowered.used),
            amount(&lowered.available)
        ),
        ("500.00".into(), "600.00".into(), "0.00".into())
    );
    let second = w.order("N-2", "0.01").await;
    assert_refused(
        w.payer_app
            .pay(World::pay_with(&second, &payer, &line))
            .await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    w.bank
        .adjust_limit(adjust("800.00"))
        .await
        .expect("limit raised");
    assert_eq!(w.usage(&line).await, ("600.00".into(), "200.00".into()));

    let freeze = |frozen: bool| FreezeCreditLineRequest {
        request_id: request_id("freeze"),
        credit_line_id: line.clone(),
        frozen,
        reason: if frozen { "fraud check" } else { "" }.to_owned(),
    };
    let frozen = w
        .bank
        .freeze_credit_line(freeze(true))
        .await
        .expect("frozen")
        .into_inner()
        .credit_line
        .expect("line");
    assert_eq!(frozen.status, CreditLineStatus::Frozen as i32);
    assert_eq!(amount(&frozen.available), "0.00");
    // Freezing a frozen line is an idempotent success that changes nothing.
    w.bank
        .freeze_credit_line(freeze(true))
        .await
        .expect("still frozen");
    let third = w.order("N-3", "100.00").await;
    assert_refused(
        w.payer_app
            .pay(World::pay_with(&third, &payer, &line))
            .await,
        Code::FailedPrecondition,
        "CREDIT_LINE_FROZEN",
    );
    let thawed = w
        .bank
        .freeze_credit_line(freeze(false))
        .await
        .expect("unfrozen")
        .into_inner()
        .credit_line
        .expect("line");
    assert_eq!(thawed.status, CreditLineStatus::Active as i32);
    assert_eq!(w.usage(&line).await, ("600.00".into(), "200.00".into()));
    w.payer_app
        .pay(World::pay_with(&third, &payer, &line))
        .await
        .expect("paid with credit again");
    assert_eq!(w.usage(&line).await, ("700.00".into(), "100.00".into()));
    w.assert_ledger_verifies();
}

async fn concurrent_credit_payments_never_draw_past_the_limit(backend: Backend) {
    const ORDERS: usize = 24;
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "1000.00").await;
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push(w.order(&format!("N-{i}"), "50.00").await);
    }
    let mut tasks = Vec::new();
    for order in orders {
        let mut client = w.payer_app.clone();
        let req = World::pay_with(&order, &payer, &line);
        tasks.push(tokio::spawn(async move { client.pay(req).await }));
    }
    let (mut paid, mut refused) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => paid += 1,
            Err(status) => {
                assert_eq!(
                    (status.code(), common::reason_of(&status).as_str()),
                    (Code::FailedPrecondition, "LIMIT_EXCEEDED"),
                    "{status:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!((paid, refused), (20, 4), "1000.00 holds exactly 20 × 50.00");
    assert_eq!(w.usage(&line).await, ("1000.00".into(), "0.00".into()));
    assert_eq!(w.settlement_book().await, "994.00");
    w.assert_ledger_verifies();
}

async fn a_customer_sees_only_the_lines_of_the_accounts_it_opened(backend: Backend) {
    let mut w = world(backend).await;
    let (_, own_line) = w.borrower(1, "1000.00").await;
    // An account the bank opened itself: outside the mobile back end's scope.
    let bank_customer = open_class_ii(&mut w.bank_accounts, 2).await;
    let line = open_line(&mut w.bank, open_req(&bank_customer, "1000.00", "0.18")).await;
    let get = |id: &str| GetCreditLineRequest {
        credit_line_id: id.to_owned(),
    };
    assert_refused(
        w.customer.get_credit_line(get(&line)).await,
        Code::PermissionDenied,
        "ACCOUNT_NOT_IN_SCOPE",
    );
    assert_refused(
        w.customer
            .repay(RepayRequest {
                request_id: request_id("repay"),
                credit_line_id: line.clone(),
                amount: Some(cny("1.00")),
                from_account_id: bank_customer,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        "ACCOUNT_NOT_IN_SCOPE",
    );
    let own = w
        .customer
        .get_credit_line(get(&own_line))
        .await
        .expect("its own line reads")
        .into_inner()
        .credit_line
        .expect("line");
    assert_eq!(amount(&own.available), "1000.00");
    assert_refused(
        w.customer
            .get_credit_line(get("CL99999999999999999999"))
            .await,
        Code::NotFound,
        "CREDIT_LINE_NOT_FOUND",
    );
}

async fn concurrent_repayments_never_repay_more_than_is_owed(backend: Backend) {
    const REPAYMENTS: usize = 8;
    let mut w = world(backend).await;
    let (payer, line) = w.borrower(1, "1000.00").await;
    let order = w.order("N-1", "300.00").await;
    w.payer_app
        .pay(World::pay_with(&order, &payer, &line))
        .await
        .expect("paid with credit");
    top_up(&mut w.accounts, &payer, "3000.00").await;
    let mut tasks = Vec::new();
    for _ in 0..REPAYMENTS {
        let mut client = w.customer.clone();
        let req = RepayRequest {
            request_id: request_id("repay"),
            credit_line_id: line.clone(),
            amount: Some(cny("300.00")),
            from_account_id: payer.clone(),
            ..Default::default()
        };
        tasks.push(tokio::spawn(async move { client.repay(req).await }));
    }
    let mut repaid = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => repaid += 1,
            Err(status) => assert_eq!(
                common::reason_of(&status),
                "REPAYMENT_EXCEEDS_OUTSTANDING",
                "{status:?}"
            ),
        }
    }
    assert_eq!(repaid, 1, "300.00 owed is repaid once");
    assert_eq!(w.usage(&line).await, ("0.00".into(), "1000.00".into()));
    assert_eq!(book(&mut w.accounts, &payer).await, "2700.00");
    w.assert_ledger_verifies();
}

impl World {
    /// The CREDIT option the cashier lists for `payer` on `order`.
    async fn credit_option(&mut self, order: &str, payer: &str) -> pb::PaymentMethodOption {
        payment_methods(&mut self.payer_app, order, payer)
            .await
            .into_iter()
            .find(|o| o.method == PaymentMethodType::Credit as i32)
            .expect("CREDIT listed")
    }
}

async fn the_cashier_offers_credit_with_what_the_line_has_left(backend: Backend) {
    let mut w = world(backend).await;
    // A payer without a line: listed, unavailable, and why.
    let no_line = open_class_ii(&mut w.accounts, 7).await;
    let order = w.order("L-1", "300.00").await;
    let option = w.credit_option(&order, &no_line).await;
    assert!(!option.available);
    assert_eq!(option.unavailable_reason, "CREDIT_LINE_NOT_FOUND");
    assert_eq!(option.credit_line_id, "");

    // A 500.00 line: available for 300.00, spendable 500.00, naming the line to pay with.
    let (payer, line) = w.borrower(1, "500.00").await;
    let option = w.credit_option(&order, &payer).await;
    assert!(option.available, "{option:?}");
    assert_eq!(option.credit_line_id, line);
    assert_eq!(amount(&option.spendable), "500.00");
    w.payer_app
        .pay(World::pay_with(&order, &payer, &option.credit_line_id))
        .await
        .expect("paid with the listed line");

    // 200.00 left: a second 300.00 order is not payable with it, and the listing says so.
    let second = w.order("L-2", "300.00").await;
    let option = w.credit_option(&second, &payer).await;
    assert!(!option.available);
    assert_eq!(option.unavailable_reason, "LIMIT_EXCEEDED");
    assert_eq!(amount(&option.spendable), "200.00");

    // Frozen: unavailable whatever is left.
    w.bank
        .freeze_credit_line(FreezeCreditLineRequest {
            request_id: request_id("freeze"),
            credit_line_id: line.clone(),
            frozen: true,
            reason: "fraud check".to_owned(),
        })
        .await
        .expect("frozen");
    let small = w.order("L-3", "10.00").await;
    let option = w.credit_option(&small, &payer).await;
    assert!(!option.available);
    assert_eq!(option.unavailable_reason, "CREDIT_LINE_FROZEN");
}
