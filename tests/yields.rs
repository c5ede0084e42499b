//! The yield service, black-box over mutual TLS: failure paths first, then FAST redemptions
//! under concurrency. The six-week income scenario is tests/yields_scenario.rs; a crashed
//! accrual run is tests/yields_crash.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{yields::*, *};
use paygate::grpc::pb::{
    self, AccrueIncomeRequest, GetHoldingRequest, PublishDailyRateRequest, RedeemMode,
    SubscribeRequest,
};
use time::Duration;
use tonic::Code;

both_backends!(refusals_write_nothing_and_name_the_rule);

async fn refusals_write_nothing_and_name_the_rule(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = yields(&app, OPERATOR).await;
    let mut y = yields(&app, CUSTOMER).await;
    let mut accounts = app.accounts(CUSTOMER).await;
    advance_to(&app, next_monday(&app));
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    register(&mut op, "SHUT", pb::ProductStatus::Closed, "1.00").await;
    let a = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &a, "500.00").await;

    // Operator RPCs are not granted to a customer back end.
    assert_refused(
        y.register_product(register_req("X1", pb::ProductStatus::Open, "1.00"))
            .await,
        Code::PermissionDenied,
        "METHOD_NOT_GRANTED",
    );
    // Unknown and closed products, the minimum, the balance.
    assert_refused(
        y.subscribe(subscribe_req(&a, "NOPE", "10.00")).await,
        Code::NotFound,
        "PRODUCT_NOT_FOUND",
    );
    assert_refused(
        y.subscribe(subscribe_req(&a, "SHUT", "10.00")).await,
        Code::FailedPrecondition,
        "PRODUCT_NOT_OPEN",
    );
    assert_refused(
        y.subscribe(subscribe_req(&a, "MMF1", "0.99")).await,
        Code::FailedPrecondition,
        "BELOW_MINIMUM_SUBSCRIPTION",
    );
    assert_refused(
        y.subscribe(subscribe_req(&a, "MMF1", "500.01")).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
    // Malformed input: INVALID_ARGUMENT, nothing written (no holding appears).
    for bad in [
        SubscribeRequest {
            amount: Some(cny("1.001")),
            ..subscribe_req(&a, "MMF1", "1")
        },
        SubscribeRequest {
            request_id: String::new(),
            ..subscribe_req(&a, "MMF1", "10.00")
        },
        SubscribeRequest {
            account_id: "x".into(),
            ..subscribe_req(&a, "MMF1", "10.00")
        },
        SubscribeRequest {
            amount: None,
            ..subscribe_req(&a, "MMF1", "10.00")
        },
    ] {
        assert_refused(
            y.subscribe(bad).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
    }
    assert_refused(
        y.redeem(redeem_req(&a, "MMF1", "1.00", RedeemMode::Unspecified))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_refused(
        y.get_holding(GetHoldingRequest {
            account_id: a.clone(),
            product_id: "MMF1".into(),
        })
        .await,
        Code::NotFound,
        "HOLDING_NOT_FOUND",
    );
    assert_eq!(book(&mut accounts, &a).await, "500.00");
    // No shares yet.
    assert_refused(
        y.redeem(redeem_req(&a, "MMF1", "1.00", RedeemMode::Normal))
            .await,
        Code::FailedPrecondition,
        "INSUFFICIENT_SHARES",
    );

    // Replay: the same request answers the first answer; another body under the id is refused.
    let req = subscribe_req(&a, "MMF1", "300.00");
    let first = y
        .subscribe(req.clone())
        .await
        .expect("subscribes")
        .into_inner();
    let again = y
        .subscribe(req.clone())
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(first, again);
    assert_refused(
        y.subscribe(SubscribeRequest {
            amount: Some(cny("1.00")),
            ..req
        })
        .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(book(&mut accounts, &a).await, "200.00");
    let h = holding(&mut y, &a, "MMF1").await;
    assert_eq!(
        (h.shares.as_str(), h.pending_shares.as_str()),
        ("300.00", "300.00")
    );
    assert_refused(
        y.redeem(redeem_req(&a, "MMF1", "300.01", RedeemMode::Fast))
            .await,
        Code::FailedPrecondition,
        "INSUFFICIENT_SHARES",
    );

    // Rates: once per date; the same value again is fine; another is refused.
    let monday = today(&app);
    publish(&mut op, "MMF1", monday, "0.6543").await;
    publish(&mut op, "MMF1", monday, "0.6543").await;
    assert_refused(
        op.publish_daily_rate(PublishDailyRateRequest {
            request_id: request_id("rate"),
            product_id: "MMF1".into(),
            business_date: monday.to_string(),
            income_per_ten_thousand_shares: "0.6544".into(),
        })
        .await,
        Code::FailedPrecondition,
        "RATE_ALREADY_PUBLISHED",
    );
    assert_refused(
        op.publish_daily_rate(PublishDailyRateRequest {
            request_id: request_id("rate"),
            product_id: "MMF1".into(),
            business_date: monday.to_string(),
            income_per_ten_thousand_shares: "-1".into(),
        })
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    // Accrual: not before the date has ended, not without a rate.
    assert_refused(
        op.accrue_income(AccrueIncomeRequest {
            product_id: "MMF1".into(),
            business_date: monday.to_string(),
        })
        .await,
        Code::FailedPrecondition,
        "BUSINESS_DATE_OUT_OF_ORDER",
    );
    advance_to(&app, monday + Duration::days(2));
    let tuesday = monday + Duration::days(1);
    accrue(&mut op, "MMF1", monday).await;
    assert_refused(
        op.accrue_income(AccrueIncomeRequest {
            product_id: "MMF1".into(),
            business_date: tuesday.to_string(),
        })
        .await,
        Code::FailedPrecondition,
        "RATE_NOT_PUBLISHED",
    );

    // FAST cap: 10,000.00 per investor per fund per day by default; refusal says what remains.
    let rich = open_class_ii(&mut accounts, 2).await;
    top_up(&mut accounts, &rich, "20000.00").await;
    y.subscribe(subscribe_req(&rich, "MMF1", "10000.00"))
        .await
        .expect("subscribes");
    advance_to(&app, monday + Duration::days(3));
    y.subscribe(subscribe_req(&rich, "MMF1", "5000.00"))
        .await
        .expect("subscribes");
    y.redeem(redeem_req(&rich, "MMF1", "9000.00", RedeemMode::Fast))
        .await
        .expect("FAST within the cap");
    let status = assert_refused(
        y.redeem(redeem_req(&rich, "MMF1", "1000.01", RedeemMode::Fast))
            .await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );
    let meta = metadata_of(&status);
    assert_eq!(meta.get("remaining").map(String::as_str), Some("1000.00"));
    assert_eq!(
        meta.get("limit_rule").map(String::as_str),
        Some("YIELD_FAST_REDEMPTION")
    );
    let h = holding(&mut y, &rich, "MMF1").await;
    assert_eq!(
        h.fast_redeem_remaining.expect("remaining").amount,
        "1000.00"
    );
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(multi_thread: concurrent_fast_redemptions_never_pass_the_cap);

async fn concurrent_fast_redemptions_never_pass_the_cap(backend: Backend) {
    // The product comes from configuration this time.
    let app = spawn_app_with(backend, |c| {
        c.accounts.class_ii_non_bound_outflow_per_day = "100000.00".into();
        c.yields.products.push(paygate::config::ProductConfig {
            product_id: "MMF1".into(),
            name: "Configured money fund".into(),
            fund_code: String::new(),
            fund_manager: String::new(),
            min_subscription: "1.00".into(),
            fast_redeem_daily_cap: None,
        });
    })
    .await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    advance_to(&app, next_monday(&app));
    let a = open_class_ii(&mut accounts, 7).await;
    top_up(&mut accounts, &a, "20000.00").await;
    op.subscribe(subscribe_req(&a, "MMF1", "20000.00"))
        .await
        .expect("subscribes");
    // 50 × 300.00 = 15,000.00 against a 10,000.00 cap.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let mut y = op.clone();
            let req = redeem_req(&a, "MMF1", "300.00", RedeemMode::Fast);
            tokio::spawn(async move { y.redeem(req).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(status) => assert_eq!(reason_of(&status), "LIMIT_EXCEEDED", "{status:?}"),
        }
    }
    assert_eq!(accepted, 33, "floor(10,000 / 300) redemptions fit");
    assert_eq!(book(&mut accounts, &a).await, "9900.00");
    let h = holding(&mut op, &a, "MMF1").await;
    assert_eq!(h.shares, "10100.00");
    assert_eq!(h.fast_redeem_remaining.expect("remaining").amount, "100.00");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(multi_thread: concurrent_runs_of_a_date_pay_each_holder_once);

async fn concurrent_runs_of_a_date_pay_each_holder_once(backend: Backend) {
    // Three shards of one holder per step: the run takes many steps in each shard, and four
    // runs of the same date race through them.
    let app = spawn_app_with(backend, |c| {
        c.yields.accrual_shards = 3;
        c.yields.accrual_chunk_holders = 1;
    })
    .await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    let monday = next_monday(&app);
    advance_to(&app, monday);
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    let mut holders = Vec::new();
    let mut shares = Vec::new();
    for n in 0..12u64 {
        let a = open_class_ii(&mut accounts, 40 + n).await;
        top_up(&mut accounts, &a, "5000.00").await;
        let amount = format!("{}.{:02}", 1000 + n * 111, n * 7);
        op.subscribe(subscribe_req(&a, "MMF1", &amount))
            .await
            .expect("subscribes");
        shares.push(minor(&amount));
        holders.push(a);
    }
    let tuesday = monday + Duration::days(1);
    advance_to(&app, tuesday);
    publish(&mut op, "MMF1", tuesday, "0.6543").await;
    advance_to(&app, tuesday + Duration::days(1));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let mut y = op.clone();
            tokio::spawn(async move { accrue(&mut y, "MMF1", tuesday).await })
        })
        .collect();
    let mut summaries = Vec::new();
    for t in tasks {
        summaries.push(t.await.expect("task"));
    }
    assert!(
        summaries.iter().all(|s| *s == summaries[0]),
        "{summaries:?}"
    );
    // income_i = trunc_fen(shares_i × 0.6543 / 10,000); fund = trunc_fen(Σ shares × 0.6543 / 10,000).
    let incomes: Vec<i64> = shares.iter().map(|s| s * 6_543 / 100_000_000).collect();
    let eligible: i64 = shares.iter().sum();
    let fund = eligible * 6_543 / 100_000_000;
    let s = &summaries[0];
    assert!(s.complete);
    assert_eq!(s.holders_paid, 12);
    assert_eq!(minor(&s.eligible_shares), eligible);
    let paid: i64 = incomes.iter().sum();
    assert_eq!(
        minor(&s.holders_income.clone().expect("income").amount),
        paid
    );
    assert_eq!(minor(&s.fund_total.clone().expect("fund").amount), fund);
    assert_eq!(
        minor(&s.rounding.clone().expect("rounding").amount),
        fund - paid
    );
    for (h, account) in holders.iter().enumerate() {
        let view = holding(&mut op, account, "MMF1").await;
        assert_eq!(minor(&view.shares), shares[h] + incomes[h], "holder {h}");
        assert_eq!(
            minor(&view.accumulated_income.expect("income").amount),
            incomes[h],
            "holder {h} paid once"
        );
    }
    // Once more, after the fact: nothing is posted again.
    assert_eq!(accrue(&mut op, "MMF1", tuesday).await, summaries[0]);
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

both_backends!(the_fast_cap_is_per_investor_across_all_their_accounts);

async fn the_fast_cap_is_per_investor_across_all_their_accounts(backend: Backend) {
    // The rule caps FAST redemptions per investor, per fund, per day: one person's two accounts
    // share one 10,000.00 a day; another person has their own.
    let app = spawn_app_with(backend, |c| {
        c.accounts.class_ii_non_bound_outflow_per_day = "100000.00".into();
    })
    .await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    advance_to(&app, next_monday(&app));
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    let req = |n: u64, person: u64| {
        open_personal(
            pb::AccountKind::ClassIi,
            &format!("customer-{person}"),
            &resident_id(person),
            &card_number(n),
        )
    };
    let first = open(&mut accounts, req(1, 7)).await;
    let second = open(&mut accounts, req(2, 7)).await;
    let other_person = open(&mut accounts, req(3, 8)).await;
    for a in [&first, &second, &other_person] {
        top_up(&mut accounts, a, "9000.00").await;
        op.subscribe(subscribe_req(a, "MMF1", "9000.00"))
            .await
            .expect("subscribes");
    }
    op.redeem(redeem_req(&first, "MMF1", "6000.00", RedeemMode::Fast))
        .await
        .expect("within the cap");
    let refused = op
        .redeem(redeem_req(&second, "MMF1", "6000.00", RedeemMode::Fast))
        .await;
    let status = assert_refused(refused, Code::FailedPrecondition, "LIMIT_EXCEEDED");
    assert_eq!(metadata_of(&status)["remaining"], "4000.00");
    let h = holding(&mut op, &second, "MMF1").await;
    assert_eq!(
        h.fast_redeem_remaining.expect("remaining").amount,
        "4000.00",
        "the second account sees the person's quota"
    );
    op.redeem(redeem_req(
        &other_person,
        "MMF1",
        "6000.00",
        RedeemMode::Fast,
    ))
    .await
    .expect("another investor has their own cap");
}

both_backends!(an_operator_suspends_subscriptions_then_closes_the_product);

async fn an_operator_suspends_subscriptions_then_closes_the_product(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    advance_to(&app, next_monday(&app));
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    let a = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &a, "1000.00").await;
    op.subscribe(subscribe_req(&a, "MMF1", "500.00"))
        .await
        .expect("subscribes while open");
    let set = |status: pb::ProductStatus| pb::SetProductStatusRequest {
        request_id: request_id("status"),
        product_id: "MMF1".into(),
        status: status as i32,
        reason: "fund manager notice 2026-12".into(),
    };

    let suspend = set(pb::ProductStatus::SubscriptionSuspended);
    let product = op
        .set_product_status(suspend.clone())
        .await
        .expect("suspended")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(
        product.status,
        pb::ProductStatus::SubscriptionSuspended as i32
    );
    op.set_product_status(suspend)
        .await
        .expect("a retry answers the same");
    let refused = op.subscribe(subscribe_req(&a, "MMF1", "100.00")).await;
    assert_refused(refused, Code::FailedPrecondition, "PRODUCT_NOT_OPEN");
    op.redeem(redeem_req(&a, "MMF1", "100.00", RedeemMode::Fast))
        .await
        .expect("redemptions go on while subscriptions are suspended");

    op.set_product_status(set(pb::ProductStatus::Closed))
        .await
        .expect("closed");
    let refused = op
        .redeem(redeem_req(&a, "MMF1", "100.00", RedeemMode::Fast))
        .await;
    assert_refused(refused, Code::FailedPrecondition, "PRODUCT_NOT_OPEN");
    let refused = op.set_product_status(set(pb::ProductStatus::Open)).await;
    assert_refused(refused, Code::FailedPrecondition, "PRODUCT_NOT_OPEN");
    let refused = op
        .set_product_status(pb::SetProductStatusRequest {
            product_id: "NOPE".into(),
            ..set(pb::ProductStatus::Open)
        })
        .await;
    assert_refused(refused, Code::NotFound, "PRODUCT_NOT_FOUND");
    let mut customer = yields(&app, CUSTOMER).await;
    let refused = customer
        .set_product_status(set(pb::ProductStatus::Open))
        .await;
    assert_refused(refused, Code::PermissionDenied, "METHOD_NOT_GRANTED");
}
