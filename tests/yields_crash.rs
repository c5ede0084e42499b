//! Crash safety of the daily income run: the real `paygate yield accrue` binary, one holder per
//! accrual step, SIGKILLed again and again in the middle of a date's run and started again on
//! the same database, then let finish. Afterwards every holder has exactly one income record
//! and exactly one income posting of the date, each income is trunc_fen(shares × R / 10,000),
//! the incomes and the rounding make the fund total, another run posts nothing, and
//! `paygate ledger verify` is clean.
//!
//! The holders are seeded through a gateway whose clock stands a week before the accrued date:
//! the command line runs on the system clock and accrues only a date that has ended (the last
//! business date before today), and only shares bought before that date earn on it — shares
//! bought today through a server on the system clock would earn nothing there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    time::{Duration as StdDuration, Instant},
};

use common::{yields::*, *};
use paygate::clock::Clock;
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};

const PRODUCT: &str = "MMF1";
const HOLDERS: usize = 500;
/// Income per 10,000 shares of the accrued date, and the same as an integer over 10^4.
const RATE: &str = "0.6543";
const RATE_E4: i64 = 6543;
const KILLS: usize = 3;
/// Concurrent clients seeding the holders.
const SEEDERS: usize = 8;

/// Today in the bank's calendar (Asia/Shanghai, cutover at midnight: the defaults the command
/// line runs with).
fn bank_today() -> Date {
    OffsetDateTime::now_utc()
        .to_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"))
        .date()
}

/// The last weekday before `date` (no holidays are configured).
fn previous_business_date(date: Date) -> Date {
    let mut d = date - Duration::days(1);
    while matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
        d -= Duration::days(1);
    }
    d
}

/// Shares of holder `n`, in fen: 1,000.00 to about 9,400.00, every one different.
fn shares_of(n: usize) -> i64 {
    100_000 + (n as i64 * 2_803_517) % 840_000
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// trunc_fen(shares × R / 10,000) in integers: fen × (R × 10^4) / 10^8.
fn income_of(shares: i64) -> i64 {
    shares * RATE_E4 / 100_000_000
}

/// Opens the holders and subscribes their shares, `SEEDERS` at a time; returns their account
/// ids with their shares.
async fn seed(app: &TestApp) -> BTreeMap<String, i64> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..SEEDERS {
        let mut accounts = app.accounts(OPERATOR).await;
        let mut y = yields(app, OPERATOR).await;
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for n in (worker..HOLDERS).step_by(SEEDERS) {
                let account = open_class_ii(&mut accounts, 1_000 + n as u64).await;
                let shares = shares_of(n);
                top_up(&mut accounts, &account, &yuan(shares)).await;
                y.subscribe(subscribe_req(&account, PRODUCT, &yuan(shares)))
                    .await
                    .expect("subscribes");
                mine.push((account, shares));
            }
            mine
        });
    }
    let mut holders = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        holders.extend(done.expect("seeder"));
    }
    holders
}

/// `paygate yield accrue --date D` on the app's database, one holder per accrual step.
fn accrue_command(app: &TestApp, date: Date) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paygate"));
    cmd.args([
        "yield",
        "accrue",
        "--date",
        &date.to_string(),
        "--product",
        PRODUCT,
    ])
    .current_dir(app.dir())
    .env("PAYGATE_DATABASE__URL", &app.config.database.url)
    .env("PAYGATE_SECRETS__KEY_FILE", &app.config.secrets.key_file)
    .env("PAYGATE_YIELDS__ACCRUAL_CHUNK_HOLDERS", "1")
    .env_remove("PAYGATE_CONFIG")
    .env_remove("RUST_LOG");
    cmd
}

/// Ids of the date's income records so far (one per holder paid; none is written twice).
async fn income_record_ids(url: &str, date: Date) -> Vec<String> {
    let suffix = newest_first(date);
    rows::document_ids(url, "yield_income")
        .await
        .into_iter()
        .filter(|id| id.ends_with(&suffix))
        .collect()
}

async fn income_records(url: &str, date: Date) -> usize {
    income_record_ids(url, date).await.len()
}

/// The id suffix of a date in the yield documents (`99999999 − YYYYMMDD`).
fn newest_first(date: Date) -> String {
    let n = date.year() * 10_000 + i32::from(u8::from(date.month())) * 100 + i32::from(date.day());
    format!("{:08}", 99_999_999 - n)
}

/// The date's journal postings of `kind`: their metadata and amounts.
async fn postings(url: &str, kind: &str, date: Date) -> Vec<(BTreeMap<String, String>, i64)> {
    rows::postings_of_type(url, kind)
        .await
        .into_iter()
        .filter(|(m, _)| m.get("date").map(String::as_str) == Some(date.to_string().as_str()))
        .collect()
}

both_backends!(multi_thread: sigkill_mid_accrual_then_rerun_posts_each_income_once);

async fn sigkill_mid_accrual_then_rerun_posts_each_income_once(backend: Backend) {
    let started = Instant::now();
    let date = previous_business_date(bank_today());
    let seeded_on = date - Duration::days(7);
    let at = seeded_on
        .with_hms(10, 0, 0)
        .expect("time")
        .assume_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"));
    let clock = Clock::manual(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("ms"));
    let mut app = spawn_app_on(backend, clock, |c| {
        c.yields.products.push(paygate::config::ProductConfig {
            product_id: PRODUCT.into(),
            name: "Crash-tested money fund".into(),
            fund_code: String::new(),
            fund_manager: String::new(),
            min_subscription: "1.00".into(),
            fast_redeem_daily_cap: None,
        });
    })
    .await;
    let holders = seed(&app).await;
    assert_eq!(holders.len(), HOLDERS);
    publish(&mut yields(&app, OPERATOR).await, PRODUCT, date, RATE).await;
    let seeded = started.elapsed();
    // The gateway stops; the database stays (the app owns it until the end of the test).
    app.begin_shutdown()
        .await
        .expect("server task")
        .expect("server stops cleanly");
    let url = app.config.database.url.clone();

    // Kill the run with SIGKILL once a few more holders are paid each time, and start it again.
    let mut paid_before = 0;
    let mut landed = Vec::new();
    for kill in 1..=KILLS {
        let target = paid_before + rand::random_range(HOLDERS / 10..HOLDERS / 4);
        let mut child = accrue_command(&app, date)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("paygate yield accrue starts");
        let run_started = Instant::now();
        let deadline = run_started + StdDuration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("child") {
                panic!("run {kill} ended ({status}) before {target} holders were paid");
            }
            if income_records(&url, date).await >= target {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "run {kill} never reached {target} holders"
            );
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let records = income_records(&url, date).await;
        let posted = postings(&url, "yield_income", date).await.len();
        assert!(
            paid_before < records && records < HOLDERS,
            "kill {kill} landed mid-run: {records} of {HOLDERS} holders paid (before: {paid_before})"
        );
        assert_eq!(
            records, posted,
            "kill {kill}: each income record committed with its posting"
        );
        paid_before = records;
        landed.push(format!(
            "{records} paid at {} ms",
            run_started.elapsed().as_millis()
        ));
    }

    // The last run finishes the date.
    let last_started = Instant::now();
    let out = accrue_command(&app, date).output().expect("runs");
    let last_run = last_started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the last run finishes: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = rows::journal_rows(&url).await;

    // Exactly one income record and one income posting per holder, each the holder's due.
    // (An income record's id is `MMF1/<account>/<date>`.)
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for id in income_record_ids(&url, date).await {
        let account = id.split('/').nth(1).expect("account in the id");
        *recorded
            .entry(account.trim_start_matches('0').to_owned())
            .or_default() += 1;
    }
    let unpaid: Vec<&String> = holders
        .keys()
        .filter(|a| !recorded.contains_key(*a))
        .collect();
    let strangers: Vec<&String> = recorded
        .keys()
        .filter(|a| !holders.contains_key(*a))
        .collect();
    assert!(
        unpaid.is_empty() && strangers.is_empty(),
        "one income record per holder: none for {unpaid:?}; records of non-holders {strangers:?}"
    );
    assert!(recorded.values().all(|n| *n == 1), "no holder has two");
    let mut paid: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (metadata, amount) in postings(&url, "yield_income", date).await {
        let account = metadata.get("account").expect("account").clone();
        paid.entry(account).or_default().push(amount);
    }
    for (account, shares) in &holders {
        assert_eq!(
            paid.get(account).map(Vec::as_slice),
            Some(&[income_of(*shares)][..]),
            "holder {account} ({} shares) is paid trunc_fen(shares × {RATE} / 10,000) once",
            yuan(*shares)
        );
    }
    assert_eq!(
        paid.len(),
        HOLDERS,
        "income goes to the holders and nobody else"
    );

    // The incomes and the rounding make the fund total.
    let eligible: i64 = holders.values().sum();
    let incomes: i64 = holders.values().map(|s| income_of(*s)).sum();
    let fund = income_of(eligible);
    let rounding: Vec<i64> = postings(&url, "yield_income_rounding", date)
        .await
        .iter()
        .map(|(_, amount)| *amount)
        .collect();
    let expected: Vec<i64> = Some(fund - incomes)
        .filter(|r| *r > 0)
        .into_iter()
        .collect();
    assert_eq!(
        rounding, expected,
        "one rounding posting (when not 0): fund − incomes"
    );
    let summary = format!(
        "{PRODUCT} {date}: rate {RATE} holders {HOLDERS} eligible {eligible} income {incomes} \
         rounding {} fund {fund} (minor units)",
        fund - incomes
    );
    assert!(
        stdout.contains(&summary),
        "run summary: {stdout}\nexpected: {summary}"
    );

    // Another run posts nothing.
    let again = accrue_command(&app, date).output().expect("runs");
    assert!(again.status.success(), "a finished date runs again quietly");
    assert!(String::from_utf8_lossy(&again.stdout).contains(&summary));
    assert_eq!(
        rows::journal_rows(&url).await,
        journal,
        "a re-run posts nothing"
    );
    let (code, verify) = app.ledger_verify();
    assert_eq!(code, Some(0), "{verify}");
    eprintln!(
        "yields_crash on {backend:?}: {HOLDERS} holders seeded in {:.1} s; kills: {}; the last \
         run paid {} in {:.1} s; {:.1} s in all",
        seeded.as_secs_f64(),
        landed.join(", "),
        HOLDERS - paid_before,
        last_run.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
