//! The yield service, black-box over mutual TLS: failure paths first, then FAST redemptions
//! under concurrency, then a two-week scenario whose daily income is checked to the fen against
//! a table computed by hand (see the comments), with the fund tying every day.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use paygate::grpc::pb::{
    self, AccrueIncomeRequest, GetHoldingRequest, PublishDailyRateRequest, RedeemMode,
    RedeemRequest, RegisterProductRequest, SubscribeRequest,
    yield_service_client::YieldServiceClient,
};
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};
use tonic::{Code, transport::Channel};

type Yields = YieldServiceClient<Channel>;

const OPERATOR: &str = "core-banking";
const CUSTOMER: &str = "mobile-backend";

async fn yields(app: &TestApp, caller: &str) -> Yields {
    YieldServiceClient::new(app.channel(caller).await)
}

fn register_req(product: &str, status: pb::ProductStatus, min: &str) -> RegisterProductRequest {
    RegisterProductRequest {
        request_id: request_id("register"),
        product_id: product.to_owned(),
        name: format!("{product} money fund"),
        fund_code: "000198".to_owned(),
        fund_manager: "Tianhong".to_owned(),
        status: status as i32,
        min_subscription: Some(cny(min)),
        fast_redeem_daily_cap: None,
    }
}

async fn register(y: &mut Yields, product: &str, status: pb::ProductStatus, min: &str) {
    y.register_product(register_req(product, status, min))
        .await
        .expect("product registers");
}

fn subscribe_req(account: &str, product: &str, amount: &str) -> SubscribeRequest {
    SubscribeRequest {
        request_id: request_id("sub"),
        account_id: account.to_owned(),
        product_id: product.to_owned(),
        amount: Some(cny(amount)),
    }
}

fn redeem_req(account: &str, product: &str, shares: &str, mode: RedeemMode) -> RedeemRequest {
    RedeemRequest {
        request_id: request_id("redeem"),
        account_id: account.to_owned(),
        product_id: product.to_owned(),
        shares: shares.to_owned(),
        mode: mode as i32,
    }
}

async fn publish(y: &mut Yields, product: &str, date: Date, rate: &str) -> pb::DailyRate {
    y.publish_daily_rate(PublishDailyRateRequest {
        request_id: request_id("rate"),
        product_id: product.to_owned(),
        business_date: date.to_string(),
        income_per_ten_thousand_shares: rate.to_owned(),
    })
    .await
    .expect("rate publishes")
    .into_inner()
    .rate
    .expect("rate")
}

async fn accrue(y: &mut Yields, product: &str, date: Date) -> pb::AccrualSummary {
    y.accrue_income(AccrueIncomeRequest {
        product_id: product.to_owned(),
        business_date: date.to_string(),
    })
    .await
    .expect("accrual runs")
    .into_inner()
    .summaries
    .pop()
    .expect("one summary")
}

async fn holding(y: &mut Yields, account: &str, product: &str) -> pb::Holding {
    y.get_holding(GetHoldingRequest {
        account_id: account.to_owned(),
        product_id: product.to_owned(),
    })
    .await
    .expect("holding")
    .into_inner()
    .holding
    .expect("holding")
}

fn minor(text: &str) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, "00"));
    int.parse::<i64>().expect("int") * 100 + frac.parse::<i64>().expect("frac")
}

/// The business date of the gateway's clock (Asia/Shanghai, cutover at midnight).
fn today(app: &TestApp) -> Date {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(app.clock.now_ms()) * 1_000_000)
        .expect("now")
        .to_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"));
    at.date()
}

/// Moves the clock to 01:00 (Asia/Shanghai) of `date`.
fn advance_to(app: &TestApp, date: Date) {
    let target = date
        .with_hms(1, 0, 0)
        .expect("time")
        .assume_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"));
    let target_ms = i64::try_from(target.unix_timestamp_nanos() / 1_000_000).expect("ms");
    let now = app.clock.now_ms();
    assert!(target_ms > now, "the clock only moves forward");
    app.clock
        .advance_ms(u64::try_from(target_ms - now).expect("delta"));
}

/// The next Monday after the clock's date.
fn next_monday(app: &TestApp) -> Date {
    let mut d = today(app) + Duration::days(1);
    while d.weekday() != Weekday::Monday {
        d += Duration::days(1);
    }
    d
}

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

/// One business day of the scenario: what happens during the day.
enum Op {
    Sub(usize, &'static str),
    Normal(usize, &'static str),
    Fast(usize, &'static str),
    Sweep(usize, &'static str),
    TopUp(usize, &'static str),
}

/// Per business day: (eligible shares, income) in fen for holders A, B, C; the fund total and
/// the rounding; shares after the day's income; cash balances after the night's run.
///
/// Computed by hand with the rules of docs/DOMAIN.md: eligible(D) = shares held at the end of
/// the previous business date − shares redeemed on D (shares bought on D, or by the sweep of
/// D's night, earn from the next business date); income = trunc_fen(eligible × R / 10,000),
/// reinvested as shares; fund = trunc_fen(Σ eligible × R / 10,000); rounding = fund − Σ income.
/// E.g. day 2: A = 10,000.00 + 1,234.56 + 0.64 − 2,000.00 FAST = 9,235.20 → ×0.6600/10,000 =
/// 0.6095 → 0.60; B = 3,333.54 − 1,000.00 = 2,333.54 → 0.1540 → 0.15; C = 4,900.00 → 0.3234 →
/// 0.32; fund = 16,468.74 × 0.66 / 10,000 = 1.0869 → 1.08, rounding 0.01.
type Row = ([(i64, i64); 3], i64, i64, [i64; 3], [i64; 3]);
const TABLE: [Row; 10] = [
    (
        [(0, 0), (0, 0), (0, 0)],
        0,
        0,
        [1000000, 333333, 490000],
        [1000000, 166667, 10000],
    ),
    (
        [(1000000, 64), (333333, 21), (0, 0)],
        85,
        0,
        [1123520, 333354, 490000],
        [876544, 166667, 10000],
    ),
    (
        [(923520, 60), (233354, 15), (490000, 32)],
        108,
        1,
        [923580, 233369, 490032],
        [1076544, 266667, 10000],
    ),
    (
        [(923580, 59), (233369, 14), (440032, 28)],
        102,
        1,
        [923639, 233383, 440060],
        [1076544, 266667, 60000],
    ),
    (
        [(923639, 61), (233383, 15), (440060, 29)],
        107,
        2,
        [923700, 311175, 490089],
        [1076544, 188890, 10000],
    ),
    (
        [(873700, 56), (311175, 20), (490089, 31)],
        108,
        1,
        [873756, 311195, 590120],
        [1126544, 188890, 10000],
    ),
    (
        [(573756, 37), (311195, 20), (490120, 31)],
        88,
        0,
        [573793, 311215, 590151],
        [1426544, 188890, 10000],
    ),
    (
        [(573793, 37), (311215, 20), (590151, 38)],
        97,
        2,
        [573830, 411235, 590189],
        [1426544, 88890, 10000],
    ),
    (
        [(573830, 36), (401235, 25), (590189, 37)],
        99,
        1,
        [573866, 401260, 590226],
        [1426544, 98890, 10000],
    ),
    (
        [(573866, 37), (401260, 26), (590226, 38)],
        101,
        0,
        [573903, 401286, 590264],
        [1426544, 98890, 10000],
    ),
];
const RATES: [&str; 10] = [
    "0.6543", "0.6421", "0.6600", "0.6389", "0.6712", "0.6500", "0.6455", "0.6601", "0.6333",
    "0.6480",
];

fn ops_of(day: usize) -> Vec<Op> {
    match day {
        0 => vec![
            Op::Sub(0, "10000.00"),
            Op::Sub(1, "3333.33"),
            Op::Sweep(2, "100.00"),
        ],
        1 => vec![Op::Sub(0, "1234.56")],
        2 => vec![Op::Normal(1, "1000.00"), Op::Fast(0, "2000.00")],
        3 => vec![Op::Normal(2, "500.00")],
        4 => vec![Op::Sub(1, "777.77")],
        5 => vec![Op::Fast(0, "500.00"), Op::TopUp(2, "1000.00")],
        6 => vec![Op::Normal(0, "3000.00")],
        7 => vec![Op::Sub(1, "1000.00")],
        8 => vec![Op::Fast(1, "100.00")],
        _ => vec![],
    }
}

async fn run_op(app: &TestApp, y: &mut Yields, holders: &[String], op: Op) {
    let mut accounts = app.accounts(OPERATOR).await;
    match op {
        Op::Sub(h, amount) => {
            y.subscribe(subscribe_req(&holders[h], "MMF1", amount))
                .await
                .expect("subscribes");
        }
        Op::Normal(h, shares) | Op::Fast(h, shares) => {
            let mode = if matches!(op, Op::Fast(..)) {
                RedeemMode::Fast
            } else {
                RedeemMode::Normal
            };
            y.redeem(redeem_req(&holders[h], "MMF1", shares, mode))
                .await
                .expect("redeems");
        }
        Op::Sweep(h, keep) => {
            y.set_auto_sweep(pb::SetAutoSweepRequest {
                request_id: request_id("sweep"),
                account_id: holders[h].clone(),
                product_id: "MMF1".into(),
                keep_balance: Some(cny(keep)),
                enabled: true,
            })
            .await
            .expect("sweep set");
        }
        Op::TopUp(h, amount) => top_up(&mut accounts, &holders[h], amount).await,
    }
}

both_backends!(two_weeks_of_income_tie_to_the_fen);

async fn two_weeks_of_income_tie_to_the_fen(backend: Backend) {
    // Two holders per accrual step, so each date takes several steps (and the progress
    // document carries the run from one to the next). The first app only tells the date.
    let app = spawn_app(backend).await;
    let monday = next_monday(&app);
    // The second Wednesday is a bank holiday: no business date, no rate, no accrual.
    let holiday = monday + Duration::days(9);
    drop(app);
    let app = spawn_app_with(backend, |c| {
        c.yields.accrual_chunk_holders = 2;
        c.yields.holidays = vec![holiday.to_string()];
    })
    .await;
    let mut op = yields(&app, OPERATOR).await;
    let mut accounts = app.accounts(OPERATOR).await;
    advance_to(&app, monday);
    register(&mut op, "MMF1", pb::ProductStatus::Open, "1.00").await;
    let mut holders = Vec::new();
    for (n, cash) in [(11, "20000.00"), (12, "5000.00"), (13, "5000.00")] {
        let a = open_class_ii(&mut accounts, n).await;
        top_up(&mut accounts, &a, cash).await;
        holders.push(a);
    }
    assert_refused(
        op.publish_daily_rate(PublishDailyRateRequest {
            request_id: request_id("rate"),
            product_id: "MMF1".into(),
            business_date: holiday.to_string(),
            income_per_ten_thousand_shares: "0.6".into(),
        })
        .await,
        Code::FailedPrecondition,
        "NOT_A_BUSINESS_DATE",
    );
    // Ten business dates: two weeks and a day, less the weekend days and the holiday.
    let days: Vec<Date> = (0..21)
        .map(|i| monday + Duration::days(i))
        .filter(|d| !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) && *d != holiday)
        .take(10)
        .collect();
    for (i, date) in days.iter().enumerate() {
        // The day's business happens on the day (not on the weekend or holiday before it).
        if today(&app) < *date {
            advance_to(&app, *date);
        }
        for o in ops_of(i) {
            run_op(&app, &mut op, &holders, o).await;
        }
        publish(&mut op, "MMF1", *date, RATES[i]).await;
        // The night: the end-of-day run, then the accrual of the date.
        advance_to(&app, *date + Duration::days(1));
        op.run_end_of_day(pb::RunEndOfDayRequest {
            business_date: date.to_string(),
        })
        .await
        .expect("end of day");
        let summary = accrue(&mut op, "MMF1", *date).await;
        let (row, fund, rounding, shares, cash) = TABLE[i];
        assert!(summary.complete);
        assert_eq!(
            minor(&summary.fund_total.clone().expect("total").amount),
            fund,
            "day {i}"
        );
        assert_eq!(
            minor(&summary.rounding.clone().expect("rounding").amount),
            rounding,
            "day {i}"
        );
        let paid: i64 = row.iter().map(|(_, inc)| inc).sum();
        assert_eq!(
            minor(&summary.holders_income.clone().expect("income").amount),
            paid,
            "day {i}"
        );
        let eligible: i64 = row.iter().map(|(el, _)| el).sum();
        assert_eq!(minor(&summary.eligible_shares), eligible, "day {i}");
        for (h, account) in holders.iter().enumerate() {
            let view = holding(&mut op, account, "MMF1").await;
            assert_eq!(minor(&view.shares), shares[h], "day {i} holder {h} shares");
            assert_eq!(
                minor(&view.last_income.expect("income").amount),
                row[h].1,
                "day {i} holder {h} income"
            );
            assert_eq!(
                minor(&book(&mut accounts, account).await),
                cash[h],
                "day {i} holder {h} cash"
            );
        }
    }
    // Re-running a date posts nothing.
    let again = accrue(&mut op, "MMF1", days[3]).await;
    assert_eq!(minor(&again.fund_total.expect("total").amount), TABLE[3].1);
    let a = holding(&mut op, &holders[0], "MMF1").await;
    assert_eq!(minor(&a.shares), TABLE[9].3[0]);
    let total: i64 = TABLE.iter().map(|r| r.0[0].1).sum();
    assert_eq!(minor(&a.accumulated_income.expect("total").amount), total);
    // Income history, newest first, in pages.
    let mut dates = Vec::new();
    let mut token = String::new();
    loop {
        let page = op
            .list_income(pb::ListIncomeRequest {
                account_id: holders[0].clone(),
                product_id: "MMF1".into(),
                page_size: 4,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("income")
            .into_inner();
        dates.extend(page.income.iter().map(|r| r.business_date.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = days[1..].iter().rev().map(|d| d.to_string()).collect();
    assert_eq!(dates, expected);
    // B's NORMAL redemption was credited.
    let redemptions = op
        .list_redemptions(pb::ListRedemptionsRequest {
            account_id: holders[1].clone(),
            product_id: "MMF1".into(),
            ..Default::default()
        })
        .await
        .expect("redemptions")
        .into_inner()
        .redemptions;
    assert_eq!(redemptions.len(), 2);
    assert!(
        redemptions
            .iter()
            .all(|r| r.status == pb::RedemptionStatus::Succeeded as i32)
    );
    // The 7-day yields come from the last 7 published rates.
    let product = op
        .get_product(pb::GetProductRequest {
            product_id: "MMF1".into(),
        })
        .await
        .expect("product")
        .into_inner();
    let latest = product.product.expect("product").latest_rate.expect("rate");
    assert_eq!(latest.income_per_ten_thousand_shares, "0.6480");
    // (0.6389+0.6712+0.6500+0.6455+0.6601+0.6333+0.6480)/7 × 365 / 10,000 = 0.0237093…
    assert_eq!(latest.seven_day_annualized_yield, "0.023709");
    // ∏(1 + R_i/10,000)^(365/7) − 1 = 0.0239918…
    assert_eq!(latest.seven_day_annualized_yield_compound, "0.023992");
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
