//! End of day (日切), end to end: the gateway's worker closes each business date while payments
//! go on, as its steps fall due — the yield accrual (skipped on a holiday), the yield sweep and
//! redemption settlement, and each network's reconciliation and settlement — each exactly once,
//! whatever the number of rounds; limits count by business date, so they reset at the cutover
//! exactly once; `paygate eod status` shows where each step stands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::PathBuf,
    time::{Duration as StdDuration, Instant},
};

use common::{
    Backend, TestApp, assert_refused, metadata_of, open_class_ii, open_merchant, spawn_app_with,
    top_up, transfer_req,
    yields::{OPERATOR, advance_to, minor, publish, register, rows, subscribe_req, yields},
};
use paygate::grpc::pb::{self, ListEntriesRequest};
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};
use tonic::Code;

const PRODUCT: &str = "MMF-EOD";

fn beijing() -> UtcOffset {
    UtcOffset::from_hms(8, 0, 0).unwrap()
}

fn ms_of(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Moves the manual clock forward to `target_ms`.
fn set_clock(app: &TestApp, target_ms: i64) {
    let now = app.clock.now_ms();
    assert!(target_ms >= now, "the clock only moves forward");
    app.clock
        .advance_ms(u64::try_from(target_ms - now).unwrap());
}

/// The instant `date` `hh:mm:ss.mmm` Beijing time.
fn at(date: Date, h: u8, m: u8, s: u8, milli: u16) -> i64 {
    ms_of(
        date.with_hms_milli(h, m, s, milli)
            .unwrap()
            .assume_offset(beijing()),
    )
}

/// A configuration file for the `paygate` command line on this app's database: the app's own,
/// on a rehearsal clock that starts at the app's (manual) time.
fn cli_config(app: &TestApp) -> PathBuf {
    let mut config = app.config.clone();
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(app.clock.now_ms()) * 1_000_000)
        .unwrap();
    config.clock.start = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let path = app.dir().join("eod-cli.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    path
}

/// `paygate eod status --date D --json`: the step records of `date`, by step name.
fn status(app: &TestApp, date: Date) -> Vec<serde_json::Value> {
    common::eod::eod_status(app, &cli_config(app), &date.to_string())
}

/// Each step of `date` as `paygate eod status` shows it: (name, state, detail).
fn steps_of(app: &TestApp, date: Date) -> Vec<(String, String, String)> {
    status(app, date)
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
                r["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Polls until `steps` of `date` (every step: empty) are final (at most 60 s); returns every
/// step of the date.
async fn until_final(app: &TestApp, date: Date, steps: &[&str]) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        let records = steps_of(app, date);
        let is_final = |state: &str| state == "DONE" || state == "SKIPPED";
        let finished = if steps.is_empty() {
            !records.is_empty() && records.iter().all(|(_, state, _)| is_final(state))
        } else {
            steps.iter().all(|step| {
                records
                    .iter()
                    .any(|(name, state, _)| name == step && is_final(state))
            })
        };
        if finished {
            return records;
        }
        if Instant::now() >= deadline {
            let config = cli_config(app);
            let (_, table) = app.paygate(&[
                "eod",
                "status",
                "--config",
                config.to_str().unwrap(),
                "--dates",
                "10",
            ]);
            panic!("{steps:?} of {date} never finished: {records:#?}\n{table}");
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
}

fn state_of<'a>(steps: &'a [(String, String, String)], step: &str) -> (&'a str, &'a str) {
    steps
        .iter()
        .find(|(name, _, _)| name == step)
        .map(|(_, state, detail)| (state.as_str(), detail.as_str()))
        .unwrap_or_else(|| panic!("no {step} in {steps:#?}"))
}

both_backends!(multi_thread: a_business_date_closes_once_over_a_holiday_and_limits_reset_exactly_once);

async fn a_business_date_closes_once_over_a_holiday_and_limits_reset_exactly_once(
    backend: Backend,
) {
    // The Monday after next, so the worker's first date (today) is well before it; its
    // Tuesday is a bank holiday.
    let mut monday = OffsetDateTime::now_utc().to_offset(beijing()).date() + Duration::days(1);
    while monday.weekday() != Weekday::Monday {
        monday += Duration::days(1);
    }
    let tuesday = monday + Duration::days(1);
    let wednesday = tuesday + Duration::days(1);
    let app = spawn_app_with(backend, move |c| {
        c.eod.interval_ms = 50;
        c.yields.holidays = vec![tuesday.to_string()];
    })
    .await;
    let mut accounts = app.accounts(OPERATOR).await;
    let mut y = yields(&app, OPERATOR).await;
    // The worker's first round makes today the first date it closes.
    let today = common::yields::today(&app);
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while steps_of(&app, today).is_empty() {
        assert!(Instant::now() < deadline, "the end-of-day worker never ran");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    advance_to(&app, monday);

    // A holder subscribes on Monday: the shares earn from the next business date, Wednesday.
    register(&mut y, PRODUCT, pb::ProductStatus::Open, "1.00").await;
    let holder = open_class_ii(&mut accounts, 1).await;
    top_up(&mut accounts, &holder, "5000.00").await;
    y.subscribe(subscribe_req(&holder, PRODUCT, "1000.00"))
        .await
        .expect("subscribed");
    publish(&mut y, PRODUCT, monday, "0.5000").await;

    // A payer spends its whole daily outflow to a merchant, the last fen in the last
    // millisecond of Monday.
    let payer = open_class_ii(&mut accounts, 2).await;
    let shop = open_merchant(&mut accounts, "shop").await;
    top_up(&mut accounts, &payer, "30000.00").await;
    accounts
        .transfer(transfer_req(&payer, &shop, "9999.99"))
        .await
        .expect("within Monday's limit");
    set_clock(&app, at(monday, 23, 59, 59, 999));
    accounts
        .transfer(transfer_req(&payer, &shop, "0.01"))
        .await
        .expect("the last fen of Monday");
    let over = accounts.transfer(transfer_req(&payer, &shop, "0.01")).await;
    let md = metadata_of(&assert_refused(
        over,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    ));
    assert_eq!(md["limit_rule"], "CLASS_II_NON_BOUND_OUTFLOW", "{md:?}");

    // The cutover: Tuesday's first millisecond starts a fresh day's limit, once.
    set_clock(&app, at(tuesday, 0, 0, 0, 0));
    accounts
        .transfer(transfer_req(&payer, &shop, "10000.00"))
        .await
        .expect("Tuesday's limit is whole");
    let monday_steps = until_final(&app, monday, &[]).await;
    assert_eq!(
        state_of(&monday_steps, "YIELD_ACCRUAL"),
        ("DONE", "1 products, 0 holders paid 0.00 CNY"),
        "Monday's shares earn from Wednesday: {monday_steps:#?}"
    );
    assert_eq!(state_of(&monday_steps, "YIELD_END_OF_DAY").0, "DONE");
    assert_refused(
        accounts.transfer(transfer_req(&payer, &shop, "0.01")).await,
        Code::FailedPrecondition,
        "LIMIT_EXCEEDED",
    );

    // Nothing was booked to the wrong date: the statement dates each posting by the business
    // date of its instant.
    let entries = accounts
        .list_entries(ListEntriesRequest {
            account_id: payer.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let dated: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.amount.as_ref().unwrap().amount.clone(),
                e.business_date.clone(),
            )
        })
        .collect();
    assert_eq!(
        dated,
        vec![
            ("30000.00".to_owned(), monday.to_string()),
            ("9999.99".to_owned(), monday.to_string()),
            ("0.01".to_owned(), monday.to_string()),
            ("10000.00".to_owned(), tuesday.to_string()),
        ]
    );

    // The holiday: no rate, no accrual; the sweep and settlement still run.
    set_clock(&app, at(wednesday, 0, 0, 0, 1));
    let tuesday_steps = until_final(&app, tuesday, &[]).await;
    assert_eq!(
        state_of(&tuesday_steps, "YIELD_ACCRUAL"),
        ("SKIPPED", "not a business date: no rate, no income")
    );
    assert_eq!(state_of(&tuesday_steps, "YIELD_END_OF_DAY").0, "DONE");

    // Wednesday pays the holder (1,000 shares × 0.6 / 10,000 = 0.06), once, however many
    // rounds run after it and a `paygate eod run` on top.
    publish(&mut y, PRODUCT, wednesday, "0.6000").await;
    set_clock(&app, at(wednesday + Duration::days(1), 0, 0, 1, 0));
    let wednesday_steps = until_final(&app, wednesday, &[]).await;
    assert_eq!(
        state_of(&wednesday_steps, "YIELD_ACCRUAL"),
        ("DONE", "1 products, 1 holders paid 0.06 CNY")
    );
    let income = rows::postings_of_type(&app.config.database.url, "yield_income").await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let config = cli_config(&app);
    let (code, out) = app.paygate(&["eod", "run", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        rows::postings_of_type(&app.config.database.url, "yield_income").await,
        income,
        "a closed date posts nothing again"
    );
    let paid: i64 = income.iter().map(|(_, m)| *m).sum();
    assert_eq!(paid, minor("0.06"), "{income:?}");

    let (code, table) = app.paygate(&[
        "eod",
        "status",
        "--config",
        config.to_str().unwrap(),
        "--dates",
        "4",
    ]);
    assert_eq!(code, Some(0), "{table}");
    assert!(
        table.contains("YIELD_ACCRUAL") && table.contains("SKIPPED"),
        "{table}"
    );
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

/// The system clock now, in Unix ms.
fn system_ms() -> i64 {
    ms_of(OffsetDateTime::now_utc())
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

both_backends!(multi_thread: union_pay_s_date_rolls_at_23_00_while_top_ups_go_on_and_each_date_settles_its_own);

async fn union_pay_s_date_rolls_at_23_00_while_top_ups_go_on_and_each_date_settles_its_own(
    backend: Backend,
) {
    use common::netsim::Sim;
    use paygate::clearing::{
        recon::{ReconStatus, business_date},
        routing::RecoveryConfig,
        union_pay_qr,
    };

    // Tomorrow, 22:59:50 Beijing time, on both the gateway's and the network's clocks (both
    // rehearsal clocks, anchored to the same real instant).
    let date = OffsetDateTime::now_utc().to_offset(beijing()).date() + Duration::days(1);
    let start_ms = at(date, 22, 59, 50, 0);
    let anchor_ms = system_ms();
    let sim = Sim::start(&format!(
        "seed = 5\nclock_start = \"{}\"\n",
        rfc3339(start_ms + (system_ms() - anchor_ms))
    ))
    .await;
    let route = sim.routing_quick_pay(
        union_pay_qr::NETWORK,
        RecoveryConfig {
            interval_ms: 100,
            first_query_after_ms: 600,
            query_backoff_max_ms: 2_000,
            bound_ms: 30_000,
            ..Default::default()
        },
    );
    let clock = paygate::clock::Clock::starting_at(start_ms + (system_ms() - anchor_ms));
    let app = common::spawn_app_on(backend, clock, move |c| {
        route(c);
        c.eod.interval_ms = 100;
        c.eod.file_due_after_ms = 4_000;
    })
    .await;
    let mut accounts = app.accounts(OPERATOR).await;
    let mut payers = Vec::new();
    for n in 0..4 {
        payers.push(open_class_ii(&mut accounts, 40 + n).await);
    }

    // Four payers top up from their cards, one after another, until 23:00:12.
    let stop_ms = at(date, 23, 0, 12, 0);
    let mut tasks = Vec::new();
    for payer in payers.clone() {
        let mut client = app.accounts(OPERATOR).await;
        let clock = app.clock.clone();
        tasks.push(tokio::spawn(async move {
            let mut total = 0;
            let mut n = 0;
            while clock.now_ms() < stop_ms {
                n += 1;
                let amount = format!("{}.{:02}", 1 + n % 9, n % 100);
                let req = pb::TopUpRequest {
                    request_id: common::request_id("eod-topup"),
                    account_id: payer.clone(),
                    amount: Some(common::cny(&amount)),
                    memo: String::new(),
                };
                // A network slower than its timeout leaves the top-up PROCESSING; the retry
                // under the same request id answers it once the recovery worker settled it.
                let deadline = Instant::now() + StdDuration::from_secs(30);
                let answer = loop {
                    let answer = client
                        .top_up(req.clone())
                        .await
                        .expect("top-up accepted")
                        .into_inner();
                    if answer.status != pb::ProcessingStatus::Processing as i32 {
                        break answer;
                    }
                    assert!(Instant::now() < deadline, "{req:?} stayed PROCESSING");
                    tokio::time::sleep(StdDuration::from_millis(200)).await;
                };
                assert_eq!(answer.network, pb::ClearingNetwork::UnionpayQr as i32);
                if answer.status == pb::ProcessingStatus::Succeeded as i32 {
                    total += minor(&amount);
                }
                tokio::time::sleep(StdDuration::from_millis(40)).await;
            }
            total
        }));
    }
    let mut topped_up = 0;
    for task in tasks {
        topped_up += task.await.unwrap();
    }

    // The network's books say which date each top-up belongs to.
    let books = sim.books().await;
    let on = |d: Date| -> (usize, i64) {
        let of_date: Vec<_> = books
            .iter()
            .filter(|e| {
                e.status == ReconStatus::Succeeded
                    && business_date(union_pay_qr::NETWORK, e.booked_at_ms) == d
            })
            .collect();
        (of_date.len(), of_date.iter().map(|e| e.amount.minor).sum())
    };
    let next = date + Duration::days(1);
    let ((before_n, before_minor), (after_n, after_minor)) = (on(date), on(next));
    assert!(
        before_n > 20 && after_n > 20,
        "top-ups on both sides of 23:00: {before_n}, {after_n}"
    );
    assert_eq!(
        before_minor + after_minor,
        topped_up,
        "every top-up booked once"
    );

    // The network's date closed at 23:00: its reconciliation matched every top-up of the date,
    // and its settlement brought in exactly that date's net, while the next date's stayed out.
    let steps = until_final(&app, date, &["RECON/UNION_PAY_QR", "SETTLE/UNION_PAY_QR"]).await;
    let (_, recon) = state_of(&steps, "RECON/UNION_PAY_QR");
    assert!(
        recon.contains(" 0 breaks") && recon.ends_with(&format!("net {before_minor}")),
        "{recon}"
    );
    let matched: usize = recon.split(' ').next().unwrap().parse().unwrap();
    let carried: usize = recon
        .split(", ")
        .find_map(|p| p.strip_suffix(" carried to the next date"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(matched, before_n, "{recon}");
    let (_, settle) = state_of(&steps, "SETTLE/UNION_PAY_QR");
    assert_eq!(
        settle,
        format!(
            "received {}.{:02} CNY from UNION_PAY_QR",
            before_minor / 100,
            before_minor % 100
        )
    );
    let internal = rows::balances_of_kind(&app.config.database.url, "BANK_INTERNAL").await;
    assert_eq!(
        internal.get("CLEARING_SUSPENSE_UNION_PAY_QR").copied(),
        Some(-after_minor),
        "what the network owes for the next date only: {internal:?}"
    );

    // The next date's reconciliation (its file so far) takes the calls carried across the
    // cutover as its own: nothing is broken on either side of it.
    let config = cli_config(&app);
    let period = format!(
        "{:04}{:02}{:02}",
        next.year(),
        u8::from(next.month()),
        next.day()
    );
    let (code, out) = app.paygate(&[
        "recon",
        "--config",
        config.to_str().unwrap(),
        "--network",
        "UNION_PAY_QR",
        "--period",
        &period,
        "--json",
    ]);
    assert_eq!(code, Some(0), "no breaks: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["matched"], after_n, "{report:#}");
    assert!(carried <= after_n);
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}
