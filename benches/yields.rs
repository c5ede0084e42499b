//! The daily income run of one product over N holders (default 1,000,000), in process, through
//! the library: seeding (open a Class II account, top it up from its bound card, subscribe) is
//! timed and reported apart from the accrual of one business date (`YieldService::accrue`).
//!
//! `cargo bench --bench yields -- --holders 100000 --backend sqlite` (release build). Flags (or
//! environment):
//! - `--holders N` (`PAYGATE_BENCH_HOLDERS`, default 1,000,000)
//! - `--backend sqlite|postgres` (`PAYGATE_BENCH_BACKEND`, default `sqlite`)
//! - `--seeders N` (`PAYGATE_BENCH_SEEDERS`, default 256): concurrent seeding tasks
//! - `--shards N` (`PAYGATE_BENCH_SHARDS`): `yields.accrual_shards` (default: the configuration's)
//! - `--no-verify`: skip `verify` of the whole ledger at the end
//! - `--cache N` (`PAYGATE_BENCH_CACHE`): `database.account_cache_mib`
//! - `--seeded NAME` (`PAYGATE_BENCH_PG_SEEDED`), PostgreSQL only: keep the seeded holders as the
//!   database NAME, or, when it exists, copy it instead of seeding (seeding 1,000,000 holders
//!   takes over half an hour; the accrual runs on a fresh copy each time). Drop it by hand.
//! - `PAYGATE_BENCH_PG_URL`: PostgreSQL server (default `postgres://postgres@127.0.0.1:5432/test`;
//!   a fresh database is created on it and dropped afterwards, `test` itself is not written)
//! - `PAYGATE_BENCH_DIR`: where the SQLite file goes (default `target/bench-yields`, on disk)
//!
//! The clock is manual: holders subscribe on a Monday; the services restart (as the end-of-day
//! run of a restarted process would: no warm cache) on Tuesday (the shares earn from Tuesday), a
//! rate is published for Tuesday, the clock steps to Wednesday and Tuesday is accrued. The run is checked against figures the bench computes on its own: every
//! holder paid, eligible shares = Σ subscriptions, Σ holder income = Σ trunc_fen(shares × R /
//! 10,000), fund total = trunc_fen(Σ shares × R / 10,000) = Σ income + rounding, and the
//! fund's income and rounding accounts moved by exactly those amounts.
// A benchmark is a test tool: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use futures::FutureExt;
use paygate::{
    account::{AccountKind, AccountService, Caller, IdDocumentType, OpenAccount, PersonIdentity},
    clock::Clock,
    config::{
        AccountScope, AccountsConfig, DatabaseConfig, LedgerConfig, ProductConfig, YieldsConfig,
    },
    ledger::{Ledger, RequestId, Side},
    money::{Currency, Money},
    secrets::Secrets,
    storage::{self, LedgerStore},
    yields::{Subscribe, YieldService, income::income_minor},
};
use rust_decimal::Decimal;
use support::{PgScratch, cores, env_or, runtime, verify_clean};
use time::{Date, Duration};

const PRODUCT: &str = "MMF1";
const RATE: &str = "0.6543";

#[derive(Clone)]
struct Args {
    holders: usize,
    backend: String,
    seeders: usize,
    shards: Option<u32>,
    verify: bool,
    /// PostgreSQL: a kept database of seeded holders, reused when it exists, made when not.
    seeded: Option<String>,
    /// `database.account_cache_mib` (default: the configuration's).
    cache: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        holders: env_or("PAYGATE_BENCH_HOLDERS", 1_000_000),
        backend: env_or("PAYGATE_BENCH_BACKEND", "sqlite".to_owned()),
        seeders: env_or("PAYGATE_BENCH_SEEDERS", 256),
        shards: std::env::var("PAYGATE_BENCH_SHARDS")
            .ok()
            .and_then(|v| v.parse().ok()),
        verify: true,
        seeded: std::env::var("PAYGATE_BENCH_PG_SEEDED").ok(),
        cache: std::env::var("PAYGATE_BENCH_CACHE")
            .ok()
            .and_then(|v| v.parse().ok()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--holders" => a.holders = it.next().and_then(|v| v.parse().ok()).expect("--holders N"),
            "--backend" => a.backend = it.next().expect("--backend sqlite|postgres"),
            "--seeders" => a.seeders = it.next().and_then(|v| v.parse().ok()).expect("--seeders N"),
            "--shards" => a.shards = it.next().and_then(|v| v.parse().ok()),
            "--no-verify" => a.verify = false,
            "--seeded" => a.seeded = Some(it.next().expect("--seeded NAME")),
            "--cache" => a.cache = it.next().and_then(|v| v.parse().ok()),
            // `cargo bench` adds `--bench`; anything else is ignored the same way.
            _ => {}
        }
    }
    a
}

/// Peak resident set size of this process (kB), from `/proc/self/status`.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux: `5` into `/proc/self/clear_refs`).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Holder `i`'s subscription, in fen: 1,000.00 to 1,999.99, so every holder earns at least a fen
/// at the bench's rate and the truncations leave a rounding.
fn subscription_minor(i: usize) -> i64 {
    100_000 + (i as i64 * 7_919) % 100_000
}

/// 01:00 Asia/Shanghai of `date`, in ms since the epoch.
fn one_am(date: Date) -> i64 {
    let at = date
        .with_hms(1, 0, 0)
        .unwrap()
        .assume_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn rid(text: String) -> RequestId {
    RequestId::try_from(text).unwrap()
}

async fn seed_one(accounts: &AccountService, yields: &YieldService, caller: &Caller, i: usize) {
    let account = accounts
        .open(
            caller,
            OpenAccount {
                request_id: rid(format!("open-{i}")),
                kind: AccountKind::ClassIi,
                currency: None,
                owner_id: format!("holder-{i}"),
                identity: Some(PersonIdentity {
                    full_name: "张三".to_owned(),
                    document_type: Some(IdDocumentType::ResidentIdCard),
                    document_number: support::resident_id(i as u64),
                }),
                card_number: Some(card_number(i as u64)),
                parent: None,
                display_name: String::new(),
            },
        )
        .await
        .expect("account opens")
        .id;
    let amount = Money::new(Currency::CNY, subscription_minor(i));
    accounts
        .top_up(caller, &rid(format!("topup-{i}")), account, amount, "")
        .await
        .expect("top-up");
    yields
        .subscribe(
            caller,
            Subscribe {
                request_id: rid(format!("sub-{i}")),
                account,
                product_id: PRODUCT.to_owned(),
                amount,
            },
        )
        .await
        .expect("subscribes");
}

/// A card number that passes the Luhn check.
fn card_number(n: u64) -> String {
    let partial = format!("622202{n:012}");
    let digits: Vec<u32> = partial.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    format!("{partial}{}", (10 - sum % 10) % 10)
}

/// The services of one bench phase, on `store`, their manual clock at `at_ms`.
struct Services {
    clock: Clock,
    ledger: Ledger,
    accounts: AccountService,
    yields: YieldService,
    config: YieldsConfig,
}

async fn start(store: Arc<dyn LedgerStore>, shards: Option<u32>, at_ms: i64) -> Services {
    let clock = Clock::manual(at_ms);
    let ledger = Ledger::start(store, &LedgerConfig::default(), clock.clone())
        .await
        .expect("ledger starts");
    let accounts = AccountService::start(
        ledger.clone(),
        Arc::new(paygate::clearing::routing::Clearing::on_us()),
        Secrets::from_secret(&[7; 32]),
        &AccountsConfig::default(),
    )
    .await
    .expect("accounts start");
    let mut config = YieldsConfig::default();
    if let Some(k) = shards {
        config.accrual_shards = k;
    }
    config.products.push(ProductConfig {
        product_id: PRODUCT.to_owned(),
        name: "Bench money fund".to_owned(),
        fund_code: String::new(),
        fund_manager: String::new(),
        min_subscription: "1.00".to_owned(),
        fast_redeem_daily_cap: None,
    });
    let yields = YieldService::start(ledger.clone(), accounts.clone(), &config)
        .await
        .expect("yields start");
    Services {
        clock,
        ledger,
        accounts,
        yields,
        config,
    }
}

fn operator() -> Caller {
    Caller {
        name: "core-banking".to_owned(),
        scope: AccountScope::All,
    }
}

const MONDAY: Date = time::macros::date!(2026 - 11 - 30);

/// Seeding, on Monday: every holder opens a Class II account, tops it up from its bound card
/// and subscribes. The services stop at the end (the accrual starts its own, as the end-of-day
/// run of a restarted process would).
async fn seed(label: &'static str, store: Arc<dyn LedgerStore>, a: Args) {
    let Services {
        ledger,
        accounts,
        yields,
        ..
    } = start(store, a.shards, one_am(MONDAY)).await;
    let caller = operator();
    println!(
        "{label}: seeding {} holders with {} seeders",
        a.holders, a.seeders
    );

    // Seeding: each holder is three service calls (open, top-up, subscribe), from many tasks at
    // once so that the batcher commits many of them per transaction.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..a.seeders)
        .map(|_| {
            let (accounts, yields, caller, next) = (
                accounts.clone(),
                yields.clone(),
                caller.clone(),
                next.clone(),
            );
            let (n, step) = (a.holders, (a.holders / 10).max(1));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    seed_one(&accounts, &yields, &caller, i).await;
                    if (i + 1) % step == 0 {
                        println!(
                            "  seeded {} at {:.0} s",
                            i + 1,
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("seeder");
    }
    let seeding = started.elapsed().as_secs_f64();
    println!(
        "{label}: seeded {} holders in {seeding:.1} s = {:.0} holders/s (peak RSS {} MiB)",
        a.holders,
        a.holders as f64 / seeding,
        peak_rss_kb() / 1024
    );

    ledger.shutdown().await;
}

/// The accrual of Tuesday (its rate published on Tuesday, the run on Wednesday), checked against
/// figures computed here; then `verify` of the whole ledger.
async fn accrue(label: &'static str, store: Arc<dyn LedgerStore>, a: Args) {
    let tuesday = MONDAY + Duration::days(1);
    let Services {
        clock,
        ledger,
        yields,
        config,
        ..
    } = start(store.clone(), a.shards, one_am(tuesday)).await;
    let caller = operator();
    println!(
        "{label}: accruing {} holders, accrual_shards {}, accrual_chunk_holders {}",
        a.holders, config.accrual_shards, config.accrual_chunk_holders
    );
    let rate = Decimal::from_str(RATE).unwrap();
    yields
        .publish_rate(&caller, rid("rate-tue".into()), PRODUCT, tuesday, rate)
        .await
        .expect("rate publishes");
    clock.advance_ms(86_400_000);
    let product = yields.product(PRODUCT).await.expect("product").product;
    let reset = reset_peak_rss();
    let started = Instant::now();
    let runs = yields
        .accrue(Some(PRODUCT), tuesday)
        .await
        .expect("accrual runs");
    let accrual = started.elapsed().as_secs_f64();
    let rss = peak_rss_kb() / 1024;
    let run = runs.first().expect("one run");
    println!(
        "{label}: accrued {} holders in {accrual:.2} s = {:.0} holders/s (peak RSS during the \
         accrual {rss} MiB{})",
        run.holders_paid,
        a.holders as f64 / accrual,
        if reset {
            ""
        } else {
            ", not reset: whole process"
        }
    );

    // The checks, against figures computed here.
    let shares: i64 = (0..a.holders).map(subscription_minor).sum();
    let incomes: i64 = (0..a.holders)
        .map(|i| income_minor(subscription_minor(i), rate))
        .sum();
    let fund = income_minor(shares, rate);
    println!(
        "{label}: holders_paid {} eligible {} income {} rounding {} fund {} (minor units)",
        run.holders_paid,
        run.eligible_shares_minor,
        run.holders_income_minor,
        run.rounding_minor,
        run.fund_total_minor
    );
    assert!(run.complete, "the run is complete");
    assert_eq!(run.holders_paid, a.holders as i64, "every holder paid");
    assert_eq!(run.eligible_shares_minor, shares, "eligible shares");
    assert_eq!(run.holders_income_minor, incomes, "holders' income");
    assert_eq!(run.fund_total_minor, fund, "fund total");
    assert_eq!(
        run.holders_income_minor + run.rounding_minor,
        run.fund_total_minor,
        "income + rounding = fund total"
    );
    let (_, income_account) = ledger
        .account(product.accounts.income)
        .await
        .expect("income account");
    let (_, rounding_account) = ledger
        .account(product.accounts.rounding)
        .await
        .expect("rounding account");
    assert_eq!(income_account.posted_debits_minor, fund, "income account");
    assert_eq!(
        rounding_account.posted_minor(Side::Credit),
        i128::from(run.rounding_minor),
        "rounding account"
    );
    // A second run of the finished date posts nothing.
    let again = yields.accrue(Some(PRODUCT), tuesday).await.expect("again");
    assert_eq!(again.first(), Some(run));
    let (_, income_again) = ledger.account(product.accounts.income).await.unwrap();
    assert_eq!(
        income_again.posted_debits_minor, fund,
        "nothing posted twice"
    );
    println!("{label}: the fund ties (income + rounding = fund total = the bench's own sum)");

    ledger.shutdown().await;
    if a.verify {
        verify_clean(label, store.as_ref()).await;
    }
    store.close().await;
}

fn db_config(url: String, a: &Args) -> DatabaseConfig {
    let defaults = DatabaseConfig::default();
    DatabaseConfig {
        url,
        acquire_timeout_ms: 60_000,
        account_cache_mib: a.cache.unwrap_or(defaults.account_cache_mib),
        ..defaults
    }
}

/// PostgreSQL, on the scratch database at `url`: seed (unless it is a copy of the kept seeded
/// database) and keep it when asked, then accrue.
async fn seed_and_accrue(url: String, reuse: bool, a: Args) {
    let label = "postgres";
    if !reuse {
        let store = storage::connect(&db_config(url.clone(), &a))
            .await
            .expect("postgres opens");
        seed(label, store.clone(), a.clone()).await;
        store.close().await;
        if let Some(name) = &a.seeded {
            support::pg_copy_database(&url, name).await;
            println!("{label}: seeded holders kept as the database {name}");
        }
    }
    let store = storage::connect(&db_config(url, &a))
        .await
        .expect("postgres opens");
    accrue(label, store, a).await;
}

/// PostgreSQL: seed (or copy the kept seeded database), accrue, drop the scratch database.
async fn postgres(a: Args) {
    let label = "postgres";
    let reuse = match &a.seeded {
        Some(name) => {
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "--seeded takes a plain database name"
            );
            support::pg_database_exists(name).await
        }
        None => false,
    };
    let template = a.seeded.as_deref().filter(|_| reuse);
    let scratch = PgScratch::create_from("yields_bench", template).await;
    if let Some(name) = template {
        println!("{label}: holders copied from the kept database {name} (seeding skipped)");
    }
    // A failed check still drops the scratch database.
    let outcome = std::panic::AssertUnwindSafe(seed_and_accrue(scratch.url.clone(), reuse, a))
        .catch_unwind()
        .await;
    scratch.drop().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

fn main() {
    let a = args();
    let rt = runtime();
    println!("yields bench: {} cores", cores());
    rt.block_on(async {
        match a.backend.clone().as_str() {
            "sqlite" => {
                let dir: String = env_or("PAYGATE_BENCH_DIR", "target/bench-yields".to_owned());
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("bench dir");
                let config = db_config(format!("sqlite://{dir}/bench.db"), &a);
                let label = "sqlite (synchronous FULL)";
                let store = storage::connect(&config).await.expect("sqlite opens");
                seed(label, store.clone(), a.clone()).await;
                accrue(label, store, a).await;
                let _ = std::fs::remove_dir_all(&dir);
            }
            "postgres" => postgres(a).await,
            other => panic!("unknown backend {other} (sqlite or postgres)"),
        }
    });
}
