//! Paying with yield (余额增值支付), black-box over mutual TLS: the cashier's YIELD_BALANCE
//! method redeems FAST and pays in one journal transaction, and a short balance payment is
//! topped up from yield when the payer opted in. Refusals first: each names its rule and writes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Accounts, Backend, TestApp, assert_refused, book, cny, metadata_of, open_class_ii,
    open_merchant, payment_methods, reason_of, request_id, spawn_app, spawn_app_with, top_up,
    yields::{Yields, register, subscribe_req},
};
use paygate::grpc::pb::{
    self, BalancePayment, CreateOrderRequest, GetHoldingRequest, GetOrderRequest,
    ListRedemptionsRequest, MerchantType, OrderStatus, PayRequest, PaymentMethodType,
    PaymentProduct, RegisterMerchantRequest, Scenario, SetAutoSweepRequest, YieldBalancePayment,
    cashier_service_client::CashierServiceClient, get_order_request, pay_request,
    yield_service_client::YieldServiceClient,
};
use tonic::{Code, transport::Channel};

type Cashier = CashierServiceClient<Channel>;

const BANK: &str = "core-banking";
const MERCHANT_CALLER: &str = "merchant-gateway";
const PAYER_CALLER: &str = "mobile-backend";
const FUND: &str = "MMF1";

/// A gateway with one open money fund, a merchant signed for balance and yield payments in
/// the app scenario (fee 0.6 %), and the clients the tests use.
struct World {
    app: TestApp,
    merchant_id: String,
    settlement: String,
    bank: Yields,
    shop: Cashier,
    payer_app: Cashier,
    accounts: Accounts,
}

async fn world(app: TestApp) -> World {
    let mut accounts = app.accounts(BANK).await;
    let settlement = open_merchant(&mut accounts, "tea house").await;
    let mut bank_cashier = CashierServiceClient::new(app.channel(BANK).await);
    let product = |method: PaymentMethodType| PaymentProduct {
        method: method as i32,
        scenario: Scenario::App as i32,
        fee_rate: "0.006".to_owned(),
    };
    let merchant = bank_cashier
        .register_merchant(RegisterMerchantRequest {
            request_id: request_id("merchant"),
            name: "tea house".to_owned(),
            merchant_type: MerchantType::Normal as i32,
            service_provider_id: String::new(),
            settlement_account_id: settlement.clone(),
            products: vec![
                product(PaymentMethodType::Balance),
                product(PaymentMethodType::YieldBalance),
            ],
            allowed_callers: vec![MERCHANT_CALLER.to_owned()],
        })
        .await
        .expect("merchant registers")
        .into_inner()
        .merchant
        .expect("merchant");
    let mut bank = YieldServiceClient::new(app.channel(BANK).await);
    register(&mut bank, FUND, pb::ProductStatus::Open, "1.00").await;
    World {
        shop: CashierServiceClient::new(app.channel(MERCHANT_CALLER).await),
        payer_app: CashierServiceClient::new(app.channel(PAYER_CALLER).await),
        accounts: app.accounts(PAYER_CALLER).await,
        merchant_id: merchant.merchant_id,
        settlement,
        bank,
        app,
    }
}

impl World {
    /// A Class II payer with `cash` on its balance, of which `invested` is subscribed.
    async fn investor(&mut self, n: u64, cash: &str, invested: &str) -> String {
        let id = open_class_ii(&mut self.accounts, n).await;
        top_up(&mut self.accounts, &id, cash).await;
        if invested != "0" {
            self.bank
                .subscribe(subscribe_req(&id, FUND, invested))
                .await
                .expect("subscribes");
        }
        id
    }

    async fn order(&mut self, no: &str, amount: &str) -> String {
        self.shop
            .create_order(CreateOrderRequest {
                request_id: request_id("order"),
                merchant_id: self.merchant_id.clone(),
                merchant_order_no: no.to_owned(),
                amount: Some(cny(amount)),
                subject: "a pot of oolong".to_owned(),
                scenario: Scenario::App as i32,
                expire_time: None,
            })
            .await
            .expect("order created")
            .into_inner()
            .order
            .expect("order")
            .order_id
    }

    /// An order of another merchant.
    async fn order_at(&mut self, merchant: &str, no: &str, amount: &str) -> String {
        let merchant_id = std::mem::replace(&mut self.merchant_id, merchant.to_owned());
        let id = self.order(no, amount).await;
        self.merchant_id = merchant_id;
        id
    }

    async fn order_status(&mut self, id: &str) -> pb::Order {
        self.shop
            .get_order(GetOrderRequest {
                lookup: Some(get_order_request::Lookup::OrderId(id.to_owned())),
            })
            .await
            .expect("order reads")
            .into_inner()
            .order
            .expect("order")
    }

    async fn shares(&mut self, account: &str) -> String {
        self.holding(account).await.shares
    }

    async fn holding(&mut self, account: &str) -> pb::Holding {
        self.bank
            .get_holding(GetHoldingRequest {
                account_id: account.to_owned(),
                product_id: FUND.to_owned(),
            })
            .await
            .expect("holding")
            .into_inner()
            .holding
            .expect("holding")
    }

    async fn opt_in_to_top_ups(&mut self, account: &str) {
        self.bank
            .set_auto_sweep(SetAutoSweepRequest {
                request_id: request_id("settings"),
                account_id: account.to_owned(),
                product_id: FUND.to_owned(),
                keep_balance: Some(cny("0.00")),
                enabled: false,
                top_up_payments: true,
            })
            .await
            .expect("settings saved");
    }
}

fn with_yield(order: &str, payer: &str, product: &str) -> PayRequest {
    PayRequest {
        request_id: request_id("pay"),
        order_id: order.to_owned(),
        payer_account_id: payer.to_owned(),
        method: Some(pay_request::Method::YieldBalance(YieldBalancePayment {
            product_id: product.to_owned(),
        })),
    }
}

fn with_balance(order: &str, payer: &str) -> PayRequest {
    PayRequest {
        request_id: request_id("pay"),
        order_id: order.to_owned(),
        payer_account_id: payer.to_owned(),
        method: Some(pay_request::Method::Balance(BalancePayment {})),
    }
}

fn amount(m: &Option<pb::Money>) -> &str {
    m.as_ref().map_or("<none>", |m| m.amount.as_str())
}

both_backends!(paying_with_yield_is_refused_by_the_rule_it_breaks_and_writes_nothing);
async fn paying_with_yield_is_refused_by_the_rule_it_breaks_and_writes_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.accounts.class_ii_non_bound_outflow_per_day = "100000.00".into();
    })
    .await;
    let mut w = world(app).await;
    let rich = w.investor(1, "20000.00", "15000.00").await;
    let poor = w.investor(2, "100.00", "50.00").await;
    let stranger = w.investor(3, "100.00", "0").await;
    let order = w.order("R1", "80.00").await;

    let refused = w.payer_app.pay(with_yield(&order, &rich, "NOPE")).await;
    assert_refused(refused, Code::NotFound, "PRODUCT_NOT_FOUND");

    let refused = w.payer_app.pay(with_yield(&order, &stranger, FUND)).await;
    assert_refused(refused, Code::FailedPrecondition, "INSUFFICIENT_SHARES");

    let refused = w.payer_app.pay(with_yield(&order, &poor, FUND)).await;
    let status = assert_refused(refused, Code::FailedPrecondition, "INSUFFICIENT_SHARES");
    assert_eq!(metadata_of(&status)["held"], "50.00");
    assert_eq!(metadata_of(&status)["requested"], "80.00");

    // 9,990.00 redeemed FAST today leaves 10.00 of the 10,000.00 cap.
    let order_big = w.order("R2", "9990.00").await;
    w.payer_app
        .pay(with_yield(&order_big, &rich, FUND))
        .await
        .expect("a payment within the cap goes through");
    let capped = with_yield(&order, &rich, FUND);
    for attempt in ["first try", "retry under the same request id"] {
        let refused = w.payer_app.pay(capped.clone()).await;
        let status = assert_refused(refused, Code::FailedPrecondition, "LIMIT_EXCEEDED");
        let m = metadata_of(&status);
        assert_eq!(m["limit_rule"], "YIELD_FAST_REDEMPTION", "{attempt}");
        assert_eq!(m["remaining"], "10.00", "{attempt}");
        assert_eq!(m["requested"], "80.00", "{attempt}");
    }

    // Nothing of the refused payments was written.
    assert_eq!(
        w.order_status(&order).await.status,
        OrderStatus::Created as i32
    );
    assert_eq!(w.shares(&poor).await, "50.00");
    assert_eq!(w.shares(&rich).await, "5010.00");
    assert_eq!(book(&mut w.accounts, &poor).await, "50.00");
    assert_eq!(book(&mut w.accounts, &rich).await, "5000.00");

    // A merchant not signed for yield payments in the scenario.
    let mut bare = w.app.accounts(BANK).await;
    let settlement = open_merchant(&mut bare, "bare shop").await;
    let mut bank = CashierServiceClient::new(w.app.channel(BANK).await);
    let shop = bank
        .register_merchant(RegisterMerchantRequest {
            request_id: request_id("merchant"),
            name: "bare shop".to_owned(),
            merchant_type: MerchantType::Normal as i32,
            service_provider_id: String::new(),
            settlement_account_id: settlement,
            products: vec![PaymentProduct {
                method: PaymentMethodType::Balance as i32,
                scenario: Scenario::App as i32,
                fee_rate: "0.006".to_owned(),
            }],
            allowed_callers: vec![MERCHANT_CALLER.to_owned()],
        })
        .await
        .expect("merchant")
        .into_inner()
        .merchant
        .expect("merchant");
    let other = w.order_at(&shop.merchant_id, "B1", "1.00").await;
    let refused = w.payer_app.pay(with_yield(&other, &rich, FUND)).await;
    assert_refused(refused, Code::FailedPrecondition, "PRODUCT_NOT_SIGNED");
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(paying_with_yield_redeems_and_pays_in_one_transaction_and_a_retry_charges_once);
async fn paying_with_yield_redeems_and_pays_in_one_transaction_and_a_retry_charges_once(
    backend: Backend,
) {
    let mut w = world(spawn_app(backend).await).await;
    let payer = w.investor(1, "1000.00", "600.00").await;
    let order = w.order("Y1", "100.00").await;
    let req = with_yield(&order, &payer, FUND);
    let paid = w
        .payer_app
        .pay(req.clone())
        .await
        .expect("pays with yield")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(paid.status, OrderStatus::Succeeded as i32);
    let payment = paid.payment.clone().expect("payment");
    assert_eq!(payment.method, PaymentMethodType::YieldBalance as i32);
    assert_eq!(payment.yield_product_id, FUND);
    assert_eq!(amount(&payment.yield_redeemed), "100.00");
    assert_eq!(amount(&payment.fee), "0.60");
    assert_eq!(amount(&payment.net_amount), "99.40");

    // The shares paid; the balance is where it was; the merchant has the net.
    assert_eq!(w.shares(&payer).await, "500.00");
    assert_eq!(book(&mut w.accounts, &payer).await, "400.00");
    let mut bank_accounts = w.app.accounts(BANK).await;
    assert_eq!(book(&mut bank_accounts, &w.settlement).await, "99.40");
    let h = w.holding(&payer).await;
    assert_eq!(amount(&h.fast_redeem_remaining), "9900.00");

    // The redemption is listed, FAST and done, under the id the payment names.
    let redemptions = w
        .bank
        .list_redemptions(ListRedemptionsRequest {
            account_id: payer.clone(),
            product_id: FUND.to_owned(),
            ..Default::default()
        })
        .await
        .expect("redemptions")
        .into_inner()
        .redemptions;
    assert_eq!(redemptions.len(), 1);
    assert_eq!(redemptions[0].redemption_id, payment.yield_redemption_id);
    assert_eq!(redemptions[0].mode, pb::RedeemMode::Fast as i32);
    assert_eq!(
        redemptions[0].status,
        pb::RedemptionStatus::Succeeded as i32
    );

    // A retry (after a timeout, say) answers the paid order and redeems nothing more.
    let again = w
        .payer_app
        .pay(req)
        .await
        .expect("the retry answers")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(again.payment, paid.payment);
    assert_eq!(w.shares(&payer).await, "500.00");

    // The fund repays the bank's advance at the end of the day; the books verify.
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(a_short_balance_payment_is_topped_up_from_yield_only_when_the_payer_opted_in);
async fn a_short_balance_payment_is_topped_up_from_yield_only_when_the_payer_opted_in(
    backend: Backend,
) {
    let mut w = world(spawn_app(backend).await).await;
    // 30.00 on the balance, 500.00 in the fund.
    let payer = w.investor(1, "530.00", "500.00").await;
    let order = w.order("T1", "100.00").await;

    let refused = w.payer_app.pay(with_balance(&order, &payer)).await;
    assert_refused(refused, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");

    w.opt_in_to_top_ups(&payer).await;
    let too_big = w.order("T2", "600.00").await;
    let refused = w.payer_app.pay(with_balance(&too_big, &payer)).await;
    assert_refused(refused, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");
    assert_eq!(w.shares(&payer).await, "500.00");

    let paid = w
        .payer_app
        .pay(with_balance(&order, &payer))
        .await
        .expect("the top-up covers the 70.00 the balance lacks")
        .into_inner()
        .order
        .expect("order");
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.method, PaymentMethodType::Balance as i32);
    assert_eq!(amount(&payment.yield_redeemed), "70.00");
    assert_eq!(book(&mut w.accounts, &payer).await, "0.00");
    assert_eq!(w.shares(&payer).await, "430.00");

    // A payment the balance covers redeems nothing.
    top_up(&mut w.accounts, &payer, "50.00").await;
    let small = w.order("T3", "20.00").await;
    let paid = w
        .payer_app
        .pay(with_balance(&small, &payer))
        .await
        .expect("pays from the balance")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(paid.payment.expect("payment").yield_redeemed, None);
    assert_eq!(w.shares(&payer).await, "430.00");
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(multi_thread: concurrent_yield_payments_never_pass_the_fast_cap);
async fn concurrent_yield_payments_never_pass_the_fast_cap(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.accounts.class_ii_non_bound_outflow_per_day = "100000.00".into();
    })
    .await;
    let mut w = world(app).await;
    let payer = w.investor(1, "20000.00", "20000.00").await;
    // 30 × 400.00 = 12,000.00 against a 10,000.00 cap.
    let mut orders = Vec::new();
    for n in 0..30 {
        orders.push(w.order(&format!("C{n}"), "400.00").await);
    }
    let tasks: Vec<_> = orders
        .iter()
        .map(|order| {
            let mut c = w.payer_app.clone();
            let req = with_yield(order, &payer, FUND);
            tokio::spawn(async move { c.pay(req).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(status) => assert_eq!(reason_of(&status), "LIMIT_EXCEEDED", "{status:?}"),
        }
    }
    assert_eq!(
        accepted, 25,
        "floor(10,000 / 400) payments fit under the cap"
    );
    assert_eq!(w.shares(&payer).await, "10000.00");
    assert_eq!(book(&mut w.accounts, &payer).await, "0.00");
    let (code, out) = w.app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(the_methods_offered_include_yield_with_what_it_could_pay_now);
async fn the_methods_offered_include_yield_with_what_it_could_pay_now(backend: Backend) {
    let mut w = world(spawn_app(backend).await).await;
    let investor = w.investor(1, "300.00", "250.00").await;
    let saver = w.investor(2, "300.00", "0").await;
    let order = w.order("M1", "100.00").await;
    let yield_option = |methods: Vec<pb::PaymentMethodOption>| {
        methods
            .into_iter()
            .find(|o| o.method == PaymentMethodType::YieldBalance as i32)
            .expect("yield is listed")
    };
    let list = |payer: String| {
        let mut c = w.payer_app.clone();
        let order = order.clone();
        async move { payment_methods(&mut c, &order, &payer).await }
    };
    let offered = yield_option(list(investor.clone()).await);
    assert!(offered.available, "{offered:?}");
    assert_eq!(offered.yield_product_id, FUND);
    assert_eq!(amount(&offered.spendable), "250.00");
    let offered = yield_option(list(saver).await);
    assert!(!offered.available);
    assert_eq!(offered.unavailable_reason, "HOLDING_NOT_FOUND");
    let big = w.order("M2", "260.00").await;
    let methods = payment_methods(&mut w.payer_app, &big, &investor).await;
    assert_eq!(
        yield_option(methods).unavailable_reason,
        "INSUFFICIENT_SHARES"
    );
}
