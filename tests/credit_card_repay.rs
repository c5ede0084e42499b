//! Repaying a credit line from the bound card (还款 from the card), over mutual TLS on both back
//! ends: on-us (the bank's own book, answered at once) and through NetsUnion on a real
//! `paygate netsim` process that declines or never answers. The money is allocated by the rule
//! of any repayment in the batch that settles the card debit, exactly once however often the
//! request is retried; an unknown outcome answers PROCESSING and the recovery worker settles
//! it against the line as it stands then. Refusals first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Backend, Credit, TestApp, app_merchant, app_order_req, assert_refused,
    back_office::{card_of, set_card},
    book, borrower, cny, line_now, metadata_of,
    netsim::Sim,
    pay_req, request_id, spawn_app, spawn_app_crashable_with,
};
use paygate::{
    clearing::nets_union,
    grpc::pb::{
        self, ClearingNetwork, CreditPayment, GetRepaymentRequest, InstalmentMethod,
        ListInstalmentsRequest, PaymentMethodType, ProcessingStatus, RefundRequest, RepayRequest,
        RepayResponse, SplitDrawdownRequest, cashier_service_client::CashierServiceClient,
        credit_service_client::CreditServiceClient, get_repayment_request::Lookup, pay_request,
    },
};
use tonic::Code;

both_backends!(
    a_card_repayment_refuses_a_line_whose_account_has_no_bound_card_and_records_nothing,
    an_on_us_card_repayment_is_allocated_at_once_and_a_retry_moves_nothing_twice,
);
both_backends!(
    multi_thread: a_card_repayment_the_network_declines_allocates_nothing_and_gives_its_reason,
    a_card_repayment_never_answered_is_allocated_once_by_the_recovery_worker,
);

/// The recovery worker's first query, after the network's 300 ms timeout.
const FIRST_QUERY_AFTER_MS: u64 = 600;

struct World {
    app: TestApp,
    bank: Credit,
    customer: Credit,
    account: String,
    line: String,
    /// The credit payment's order and its drawdown.
    order: String,
    drawdown: String,
}

/// A borrower with a 5,000.00 line at 18 % who paid `drawn` with it, on `app`.
async fn world(app: TestApp, drawn: &str) -> World {
    let (bank, account, line) = borrower(&app, "5000.00", "0.18").await;
    let merchant = app_merchant(
        &app,
        "sofas",
        &[PaymentMethodType::Credit],
        &["merchant-gateway"],
    )
    .await;
    let order = CashierServiceClient::new(app.channel("merchant-gateway").await)
        .create_order(app_order_req(&merchant, "SOFA-1", drawn))
        .await
        .expect("order")
        .into_inner()
        .order
        .unwrap()
        .order_id;
    let drawdown = CashierServiceClient::new(app.channel("mobile-backend").await)
        .pay(pay_req(
            &order,
            &account,
            pay_request::Method::Credit(CreditPayment {
                credit_line_id: line.clone(),
                ..Default::default()
            }),
        ))
        .await
        .expect("paid with credit")
        .into_inner()
        .order
        .unwrap()
        .payment
        .unwrap()
        .credit_drawdown_id;
    World {
        customer: CreditServiceClient::new(app.channel("mobile-backend").await),
        app,
        bank,
        account,
        line,
        order,
        drawdown,
    }
}

fn money(m: Option<pb::Money>) -> String {
    m.expect("money").amount
}

impl World {
    fn card_repay_req(&self, amount: &str) -> RepayRequest {
        RepayRequest {
            request_id: request_id("card-repay"),
            credit_line_id: self.line.clone(),
            amount: Some(cny(amount)),
            from_bound_card: true,
            ..Default::default()
        }
    }

    async fn repay(&mut self, req: RepayRequest) -> RepayResponse {
        self.customer
            .repay(req)
            .await
            .expect("repay answers")
            .into_inner()
    }

    async fn repayment(&mut self, lookup: Lookup) -> pb::CardRepayment {
        self.customer
            .get_repayment(GetRepaymentRequest {
                credit_line_id: self.line.clone(),
                lookup: Some(lookup),
            })
            .await
            .expect("repayment reads")
            .into_inner()
            .repayment
            .expect("repayment")
    }

    async fn used(&mut self) -> String {
        money(line_now(&mut self.bank, &self.line).await.used)
    }

    async fn balance(&mut self) -> String {
        let account = self.account.clone();
        book(&mut self.app.accounts("core-banking").await, &account).await
    }

    /// Polls the repayment by its request id until it leaves PROCESSING (at most 20 s).
    async fn until_settled(&mut self, request_id: &str) -> pb::CardRepayment {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self
                .repayment(Lookup::RequestId(request_id.to_owned()))
                .await;
            if r.status() != ProcessingStatus::Processing {
                return r;
            }
            assert!(Instant::now() < deadline, "never settled: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Routes every quick-pay movement (card repayments are routed as top-ups) to NetsUnion on
/// `sim`, the worker querying 600 ms after a call.
fn routed_to(sim: &Sim) -> impl FnOnce(&mut paygate::config::Config) + use<> {
    sim.routing_quick_pay_recovered(nets_union::NETWORK, FIRST_QUERY_AFTER_MS)
}

async fn a_card_repayment_refuses_a_line_whose_account_has_no_bound_card_and_records_nothing(
    backend: Backend,
) {
    let mut w = world(spawn_app(backend).await, "500.00").await;
    let both = RepayRequest {
        from_account_id: w.account.clone(),
        ..w.card_repay_req("10.00")
    };
    let refused = assert_refused(
        w.customer.repay(both).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(metadata_of(&refused)["field"], "from_account_id");
    let refused = assert_refused(
        w.customer.repay(w.card_repay_req("500.01")).await,
        Code::FailedPrecondition,
        "REPAYMENT_EXCEEDS_OUTSTANDING",
    );
    assert_eq!(metadata_of(&refused)["outstanding"], "500.00");

    // The back office removes the card (no RPC does); the gateway's next batch (here core
    // banking switching auto-repay on) sees the chain head it moved and reads the account anew.
    let card = card_of(&w.app, &w.account).await;
    set_card(&w.app, &w.account, (None, None, None, None)).await;
    w.bank
        .set_auto_repay(pb::SetAutoRepayRequest {
            request_id: request_id("auto"),
            credit_line_id: w.line.clone(),
            enabled: true,
        })
        .await
        .expect("auto-repay on");
    let req = w.card_repay_req("100.00");
    let refused = assert_refused(
        w.customer.repay(req.clone()).await,
        Code::FailedPrecondition,
        "NO_BOUND_CARD",
    );
    assert_eq!(metadata_of(&refused)["account_id"], w.account);
    assert_refused(
        w.customer
            .get_repayment(GetRepaymentRequest {
                credit_line_id: w.line.clone(),
                lookup: Some(Lookup::RequestId(req.request_id.clone())),
            })
            .await,
        Code::NotFound,
        "REPAYMENT_NOT_FOUND",
    );
    // The refusal is the request's answer, card or no card.
    set_card(&w.app, &w.account, card).await;
    assert_refused(
        w.customer.repay(req).await,
        Code::FailedPrecondition,
        "NO_BOUND_CARD",
    );
    assert_eq!(w.used().await, "500.00");
    assert_eq!(w.app.ledger_verify().0, Some(0));
}

async fn an_on_us_card_repayment_is_allocated_at_once_and_a_retry_moves_nothing_twice(
    backend: Backend,
) {
    let mut w = world(spawn_app(backend).await, "900.00").await;
    w.customer
        .split_drawdown(SplitDrawdownRequest {
            request_id: request_id("split"),
            credit_line_id: w.line.clone(),
            drawdown_id: w.drawdown.clone(),
            count: 3,
            method: InstalmentMethod::EqualPrincipal as i32,
        })
        .await
        .expect("split in 3 of 300.00");

    let req = w.card_repay_req("400.00");
    let first = w.repay(req.clone()).await;
    assert_eq!(first.status(), ProcessingStatus::Succeeded, "{first:?}");
    assert_eq!(first.network(), ClearingNetwork::OnUs);
    assert_eq!(money(first.principal_repaid.clone()), "400.00");
    assert_eq!(money(first.surplus_to_account.clone()), "0.00");
    assert!(!first.transaction_id.is_empty() && !first.network_reference.is_empty());
    assert_eq!(
        money(first.credit_line.clone().unwrap().used),
        "500.00",
        "the answer shows the line the repayment left"
    );
    let again = w.repay(req.clone()).await;
    assert_eq!(again, first, "a retry answers the first answer");

    // Allocated like any repayment: the oldest instalment first, then the next.
    let plans = w
        .customer
        .list_instalments(ListInstalmentsRequest {
            credit_line_id: w.line.clone(),
            drawdown_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .plans;
    let paid: Vec<String> = plans[0]
        .instalments
        .iter()
        .map(|i| money(i.paid.clone()))
        .collect();
    assert_eq!(paid, ["300.00", "100.00", "0.00"]);
    assert_eq!(w.used().await, "500.00", "moved once");
    assert_eq!(w.balance().await, "0.00", "the card paid, not the account");

    let by_id = w.repayment(Lookup::RequestId(req.request_id.clone())).await;
    let by_reference = w
        .repayment(Lookup::Reference(first.reference.clone()))
        .await;
    assert_eq!(by_id, by_reference);
    assert_eq!(by_id.status(), ProcessingStatus::Succeeded);
    assert_eq!(by_id.transaction_id, first.transaction_id);
    assert_eq!(money(by_id.principal_repaid), "400.00");
    assert!(by_id.settle_time.is_some());
    assert_refused(
        w.customer
            .repay(RepayRequest {
                amount: Some(cny("1.00")),
                ..req
            })
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(w.app.ledger_verify().0, Some(0));
}

async fn a_card_repayment_the_network_declines_allocates_nothing_and_gives_its_reason(
    backend: Backend,
) {
    let sim =
        Sim::start("seed = 3\n[[networks]]\nnetwork = \"NETS_UNION\"\nreject_rate = 1.0\n").await;
    let app = spawn_app_crashable_with(backend, routed_to(&sim)).await;
    let mut w = world(app, "800.00").await;

    let req = w.card_repay_req("300.00");
    let first = w.repay(req.clone()).await;
    assert_eq!(first.status(), ProcessingStatus::Failed, "{first:?}");
    assert_eq!(first.network(), ClearingNetwork::Netsunion);
    assert!(first.failure_reason.contains("EPCC0051"), "{first:?}");
    assert_eq!(money(first.principal_repaid.clone()), "0.00");
    assert!(first.transaction_id.is_empty());
    assert_eq!(
        w.repay(req.clone()).await,
        first,
        "a retry answers the same"
    );

    let recorded = w.repayment(Lookup::RequestId(req.request_id)).await;
    assert_eq!(recorded.status(), ProcessingStatus::Failed);
    assert_eq!(recorded.failure_reason, first.failure_reason);
    assert_eq!(w.used().await, "800.00", "nothing allocated");
    assert_eq!(w.balance().await, "0.00");
    assert_eq!(w.app.ledger_verify().0, Some(0));
}

async fn a_card_repayment_never_answered_is_allocated_once_by_the_recovery_worker(
    backend: Backend,
) {
    let sim =
        Sim::start("seed = 11\n[[networks]]\nnetwork = \"NETS_UNION\"\nno_answer_rate = 1.0\n")
            .await;
    let app = spawn_app_crashable_with(backend, routed_to(&sim)).await;
    let mut w = world(app, "1000.00").await;

    let req = w.card_repay_req("400.00");
    let first = w.repay(req.clone()).await;
    assert_eq!(first.status(), ProcessingStatus::Processing, "{first:?}");
    assert!(first.transaction_id.is_empty());
    assert_eq!(w.used().await, "1000.00", "nothing allocated while unknown");
    let again = w.repay(req.clone()).await;
    assert_eq!(again.status(), ProcessingStatus::Processing);
    assert_eq!(
        again.reference, first.reference,
        "sent again under one reference"
    );
    let pending = w
        .repayment(Lookup::Reference(first.reference.clone()))
        .await;
    assert_eq!(pending.status(), ProcessingStatus::Processing);
    assert!(pending.settle_time.is_none());

    // Meanwhile the merchant refunds 700.00: the line owes 300.00, less than the 400.00 the
    // card paid; the worker allocates 300.00 and credits the other 100.00 to the account.
    CashierServiceClient::new(w.app.channel("merchant-gateway").await)
        .refund(RefundRequest {
            request_id: request_id("refund"),
            order_id: w.order.clone(),
            merchant_refund_no: "RF-1".to_owned(),
            amount: Some(cny("700.00")),
            reason: "scratched".to_owned(),
        })
        .await
        .expect("refunded");
    assert_eq!(w.used().await, "300.00");

    w.app.clock.advance_ms(FIRST_QUERY_AFTER_MS);
    let settled = w.until_settled(&req.request_id).await;
    assert_eq!(settled.status(), ProcessingStatus::Succeeded, "{settled:?}");
    assert_eq!(money(settled.principal_repaid.clone()), "300.00");
    assert_eq!(money(settled.surplus_to_account.clone()), "100.00");
    assert!(!settled.network_reference.is_empty());
    assert_eq!(w.used().await, "0.00");
    assert_eq!(w.balance().await, "100.00");

    let replay = w.repay(req).await;
    assert_eq!(replay.status(), ProcessingStatus::Succeeded, "{replay:?}");
    assert_eq!(replay.transaction_id, settled.transaction_id);
    assert_eq!(money(replay.surplus_to_account), "100.00");
    assert_eq!(w.used().await, "0.00", "allocated exactly once");
    assert_eq!(w.balance().await, "100.00");
    let booked = sim
        .books()
        .await
        .into_iter()
        .filter(|e| e.reference == first.reference)
        .count();
    assert_eq!(booked, 1, "the network booked the debit once");
    assert_eq!(w.app.ledger_verify().0, Some(0));
}
