//! `paygate bench --soak` (issue 15): first the peak of one workload (closed loop, `--peak-s`),
//! then an open-loop run at `--rate-percent` of it (70 % by default; `--rate` gives calls/s
//! directly) for `--minutes`, with one line per `--interval-s` (60 s): calls/s, p50/p99, errors,
//! the server's RSS and open files (`/proc/PID`), the database's size. At the end: the drift of
//! p99 (last interval against the first), the error rate, and growth per minute, with pass/fail
//! against the thresholds (error rate < 0.01 %, p99 drift < 10 %).
//!
//! Open loop: call `i` is due at `start + i / rate` whatever the answers before it did, so a
//! slow server shows as latency (measured from the due time, queueing included), not as fewer
//! calls; at most connections × streams calls are in flight.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use serde::Serialize;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{
    drive::{Failure, quantile_ms},
    proc_stat,
    seed::cny,
    workload::Workload,
};
use crate::grpc::pb::{
    GetBalanceRequest, TransferRequest, account_service_client::AccountServiceClient,
};

/// The thresholds.
pub const ERROR_RATE_MAX: f64 = 0.0001;
pub const P99_DRIFT_MAX: f64 = 0.10;
/// How often the dispatcher sends the calls that fell due.
const TICK_MS: u64 = 5;

/// Where the database's size is read.
#[derive(Debug, Clone)]
pub enum DbSize {
    /// A SQLite file (with its `-wal` and `-shm`).
    Sqlite(PathBuf),
    /// `pg_database_size` of the database at this URL.
    Postgres(String),
    None,
}

impl DbSize {
    async fn bytes(&self) -> Option<u64> {
        match self {
            DbSize::Sqlite(file) => {
                let mut total = 0;
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = file.clone().into_os_string();
                    name.push(suffix);
                    total += std::fs::metadata(&name).map(|m| m.len()).unwrap_or(0);
                }
                Some(total)
            }
            DbSize::Postgres(url) => {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await
                    .ok()?;
                let _ = conn.close().await;
                u64::try_from(size).ok()
            }
            DbSize::None => None,
        }
    }
}

/// How the soak runs.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub workload: Workload,
    /// Calls/s to hold; `None`: `rate_percent` of the peak measured first for `peak`.
    pub rate: Option<f64>,
    pub rate_percent: f64,
    pub peak: Duration,
    pub duration: Duration,
    pub interval: Duration,
    /// Most calls in flight.
    pub in_flight_max: usize,
}

/// One interval's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SoakInterval {
    pub index: usize,
    pub end_s: f64,
    pub calls_per_s: f64,
    pub ok_calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The server's CPU time (user + system, all its threads) in the interval divided by the
    /// calls it acknowledged: whether a call costs more as the database grows.
    pub server_cpu_us_per_call: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    pub server_open_files: Option<u64>,
    pub database_bytes: Option<u64>,
}

/// The run's figures and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub workload: Workload,
    pub peak_calls_per_s: Option<f64>,
    pub target_calls_per_s: f64,
    pub duration_s: f64,
    pub intervals: Vec<SoakInterval>,
    pub ok_calls: u64,
    pub failed_calls: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, String>,
    pub error_rate: f64,
    /// (p99 of the last interval − p99 of the first) / p99 of the first.
    pub p99_drift: f64,
    /// From the first interval's end to the last's, per minute.
    pub rss_growth_bytes_per_min: Option<f64>,
    pub open_files_growth_per_min: Option<f64>,
    pub database_growth_bytes_per_min: Option<f64>,
    /// Database growth divided by the calls acknowledged over the same span.
    pub database_bytes_per_ok_call: Option<f64>,
    pub error_rate_ok: bool,
    pub p99_drift_ok: bool,
    /// Calls due by the end that were never sent because connections × streams were all in
    /// flight (the server did not keep up with the rate): any fails the soak.
    pub calls_not_sent: u64,
    pub passed: bool,
}

type Call = Arc<dyn Fn(Channel, u64) -> BoxFuture<'static, Result<(), Failure>> + Send + Sync>;

/// The call of a soak workload (those that need no pre-seeded pool).
pub fn call_of(workload: Workload, accounts: Arc<Vec<String>>, tag: &str) -> Result<Call, String> {
    let tag: Arc<str> = Arc::from(format!("{tag}-soak"));
    let any = |n: usize| rand::random_range(0..n);
    match workload {
        Workload::Health => Ok(Arc::new(|channel, _| {
            Box::pin(async move {
                HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                    .map(|_| ())
                    .map_err(Failure::from)
            })
        })),
        Workload::GetBalance => Ok(Arc::new(move |channel, _| {
            let account_id = accounts[any(accounts.len())].clone();
            Box::pin(async move {
                AccountServiceClient::new(channel)
                    .get_balance(GetBalanceRequest { account_id })
                    .await
                    .map(|_| ())
                    .map_err(Failure::from)
            })
        })),
        Workload::Transfer => Ok(Arc::new(move |channel, n| {
            let from = any(accounts.len());
            let to = (from + 1 + any(accounts.len() - 1)) % accounts.len();
            let request = TransferRequest {
                request_id: format!("{tag}-{n}"),
                from_account_id: accounts[from].clone(),
                to_account_id: accounts[to].clone(),
                amount: cny("0.01"),
                memo: String::new(),
            };
            Box::pin(async move {
                AccountServiceClient::new(channel)
                    .transfer(request)
                    .await
                    .map(|_| ())
                    .map_err(Failure::from)
            })
        })),
        other => Err(format!(
            "--soak runs transfer, get-balance or health, not {}",
            other.name()
        )),
    }
}

/// What the calls of the current interval did.
#[derive(Default)]
struct Tally {
    ok_calls: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
}

/// Holds `rate` calls/s of `call` on `channels` for the plan's duration, one line per interval.
pub async fn run(
    plan: &SoakPlan,
    channels: &[Channel],
    call: Call,
    rate: f64,
    peak: Option<f64>,
    server_pid: u32,
    db: &DbSize,
) -> SoakReport {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let permits = Arc::new(tokio::sync::Semaphore::new(plan.in_flight_max.max(1)));
    let started = Instant::now();
    let mut sent: u64 = 0;
    // Calls due by the end that were never sent (the in-flight ceiling was reached).
    let mut behind: u64 = 0;
    let mut intervals = Vec::new();
    let (mut ok_calls, mut failed) = (0u64, 0u64);
    let mut errors_by_kind = BTreeMap::new();
    let mut error_samples = BTreeMap::new();
    let mut next_report = plan.interval;
    let mut cpu_before_us = proc_stat::sample(server_pid).map(|s| s.cpu_us);
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let elapsed = started.elapsed().min(plan.duration);
        let due = (elapsed.as_secs_f64() * rate) as u64;
        while sent < due {
            // Every call in flight already: the rest wait for the next tick (their latency
            // still counts from when they were due), and the lines keep their time.
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let due_at = started + Duration::from_secs_f64(sent as f64 / rate);
            let channel = channels[(sent as usize) % channels.len()].clone();
            let (call, tally) = (call.clone(), tally.clone());
            let n = sent;
            tokio::spawn(async move {
                let outcome = call(channel, n).await;
                let us = u32::try_from(due_at.elapsed().as_micros()).unwrap_or(u32::MAX);
                if let Ok(mut t) = tally.lock() {
                    match outcome {
                        Ok(()) => {
                            t.ok_calls += 1;
                            t.latencies_us.push(us);
                        }
                        Err(f) => {
                            *t.errors.entry(f.kind.clone()).or_default() += 1;
                            t.samples.entry(f.kind).or_insert(f.message);
                        }
                    }
                }
                drop(permit);
            });
            sent += 1;
        }
        let over = started.elapsed() >= plan.duration;
        if over {
            behind = due.saturating_sub(sent);
            // The calls still in flight end before the last interval is read.
            let all = u32::try_from(plan.in_flight_max.max(1)).unwrap_or(u32::MAX);
            let _ = tokio::time::timeout(Duration::from_secs(30), permits.acquire_many(all)).await;
        }
        if started.elapsed() >= next_report || over {
            let t = match tally.lock() {
                Ok(mut t) => std::mem::take(&mut *t),
                Err(_) => Tally::default(),
            };
            let mut t = t;
            t.latencies_us.sort_unstable();
            let end = started.elapsed();
            let length =
                end.as_secs_f64() - intervals.last().map_or(0.0, |i: &SoakInterval| i.end_s);
            let errors: u64 = t.errors.values().sum();
            let server = proc_stat::sample(server_pid);
            let cpu_now_us = server.map(|s| s.cpu_us);
            let server_cpu_us_per_call = match (cpu_before_us, cpu_now_us) {
                (Some(a), Some(b)) if t.ok_calls > 0 => {
                    Some(b.saturating_sub(a) as f64 / t.ok_calls as f64)
                }
                _ => None,
            };
            cpu_before_us = cpu_now_us;
            let line = SoakInterval {
                index: intervals.len() + 1,
                end_s: end.as_secs_f64(),
                calls_per_s: if length > 0.0 {
                    t.ok_calls as f64 / length
                } else {
                    0.0
                },
                ok_calls: t.ok_calls,
                errors,
                p50_ms: quantile_ms(&t.latencies_us, 0.50),
                p99_ms: quantile_ms(&t.latencies_us, 0.99),
                server_cpu_us_per_call,
                server_rss_bytes: server.map(|s| s.rss_bytes),
                server_open_files: open_files(server_pid),
                database_bytes: db.bytes().await,
            };
            println!("{}", interval_line(&line));
            ok_calls += t.ok_calls;
            failed += errors;
            for (kind, n) in t.errors {
                *errors_by_kind.entry(kind).or_default() += n;
            }
            for (kind, m) in t.samples {
                error_samples.entry(kind).or_insert(m);
            }
            intervals.push(line);
            next_report += plan.interval;
        }
        if over {
            break;
        }
    }
    let mut report = summarise(
        plan,
        rate,
        peak,
        started.elapsed(),
        intervals,
        ok_calls,
        failed,
        errors_by_kind,
        error_samples,
    );
    report.calls_not_sent = behind;
    report.passed = report.passed && behind == 0;
    report
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    plan: &SoakPlan,
    rate: f64,
    peak: Option<f64>,
    took: Duration,
    intervals: Vec<SoakInterval>,
    ok_calls: u64,
    failed: u64,
    errors_by_kind: BTreeMap<String, u64>,
    error_samples: BTreeMap<String, String>,
) -> SoakReport {
    let total = ok_calls + failed;
    let error_rate = if total > 0 {
        failed as f64 / total as f64
    } else {
        1.0
    };
    let (first, last) = (intervals.first(), intervals.last());
    let p99_drift = match (first, last) {
        (Some(f), Some(l)) if f.p99_ms > 0.0 => (l.p99_ms - f.p99_ms) / f.p99_ms,
        _ => 0.0,
    };
    let minutes = match (first, last) {
        (Some(f), Some(l)) if l.end_s > f.end_s => Some((l.end_s - f.end_s) / 60.0),
        _ => None,
    };
    let growth = |pick: fn(&SoakInterval) -> Option<u64>| -> Option<f64> {
        let (f, l, m) = (pick(first?)?, pick(last?)?, minutes?);
        Some((l as f64 - f as f64) / m)
    };
    let db_growth = growth(|i| i.database_bytes);
    let calls_after_first: u64 = intervals.iter().skip(1).map(|i| i.ok_calls).sum();
    let db_per_call = match (first, last) {
        (Some(f), Some(l)) if calls_after_first > 0 => match (f.database_bytes, l.database_bytes) {
            (Some(a), Some(b)) => Some((b as f64 - a as f64) / calls_after_first as f64),
            _ => None,
        },
        _ => None,
    };
    let error_rate_ok = total > 0 && error_rate < ERROR_RATE_MAX;
    let p99_drift_ok = p99_drift < P99_DRIFT_MAX;
    SoakReport {
        workload: plan.workload,
        peak_calls_per_s: peak,
        target_calls_per_s: rate,
        duration_s: took.as_secs_f64(),
        ok_calls,
        failed_calls: failed,
        errors_by_kind,
        error_samples,
        error_rate,
        p99_drift,
        rss_growth_bytes_per_min: growth(|i| i.server_rss_bytes),
        open_files_growth_per_min: growth(|i| i.server_open_files),
        database_growth_bytes_per_min: db_growth,
        database_bytes_per_ok_call: db_per_call,
        error_rate_ok,
        p99_drift_ok,
        calls_not_sent: 0,
        passed: error_rate_ok && p99_drift_ok,
        intervals,
    }
}

/// Entries of `/proc/PID/fd`.
fn open_files(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".to_owned(), |b| {
        format!("{:.1} MiB", b as f64 / 1_048_576.0)
    })
}

fn interval_line(i: &SoakInterval) -> String {
    format!(
        "interval {:>3} (to {:>6.0} s): {:>8.1} calls/s, p50 {:>7.2} ms, p99 {:>7.2} ms, errors {}, \
         server CPU {} µs/call, server RSS {}, open files {}, database {}",
        i.index,
        i.end_s,
        i.calls_per_s,
        i.p50_ms,
        i.p99_ms,
        i.errors,
        i.server_cpu_us_per_call
            .map_or("-".to_owned(), |us| format!("{us:.0}")),
        mib(i.server_rss_bytes),
        i.server_open_files
            .map_or("-".to_owned(), |n| n.to_string()),
        mib(i.database_bytes),
    )
}

/// The closing lines: figures against the thresholds.
pub fn summary(r: &SoakReport) -> String {
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    let per_min =
        |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:+.1} {unit}/min"));
    format!(
        "soak {}: {} at {:.0} calls/s{} for {:.0} s; {} OK, {} failed {:?}\n\
         error rate {:.5} % ({} < {:.2} %); p99 drift {:+.1} % ({} < {:.0} %); \
         {} calls due but not sent ({})\n\
         growth: server RSS {}, open files {}, database {} ({} per acknowledged call)",
        verdict(r.passed),
        r.workload.name(),
        r.target_calls_per_s,
        r.peak_calls_per_s
            .map_or(String::new(), |p| format!(" (peak {p:.0} calls/s)")),
        r.duration_s,
        r.ok_calls,
        r.failed_calls,
        r.errors_by_kind,
        r.error_rate * 100.0,
        verdict(r.error_rate_ok),
        ERROR_RATE_MAX * 100.0,
        r.p99_drift * 100.0,
        verdict(r.p99_drift_ok),
        P99_DRIFT_MAX * 100.0,
        r.calls_not_sent,
        verdict(r.calls_not_sent == 0),
        per_min(r.rss_growth_bytes_per_min.map(|b| b / 1024.0), "KiB"),
        per_min(r.open_files_growth_per_min, "files"),
        per_min(r.database_growth_bytes_per_min.map(|b| b / 1024.0), "KiB"),
        r.database_bytes_per_ok_call
            .map_or("-".to_owned(), |b| format!("{b:.0} bytes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(index: usize, end_s: f64, p99_ms: f64, rss: u64, db: u64) -> SoakInterval {
        SoakInterval {
            index,
            end_s,
            calls_per_s: 100.0,
            ok_calls: 6_000,
            errors: 0,
            p50_ms: 1.0,
            p99_ms,
            server_cpu_us_per_call: Some(400.0),
            server_rss_bytes: Some(rss),
            server_open_files: Some(40),
            database_bytes: Some(db),
        }
    }

    fn plan() -> SoakPlan {
        SoakPlan {
            workload: Workload::Transfer,
            rate: None,
            rate_percent: 70.0,
            peak: Duration::from_secs(10),
            duration: Duration::from_secs(180),
            interval: Duration::from_secs(60),
            in_flight_max: 8,
        }
    }

    #[test]
    fn drift_error_rate_and_growth_per_minute_are_measured_from_the_first_interval() {
        let intervals = vec![
            interval(1, 60.0, 10.0, 100 << 20, 1_000_000),
            interval(2, 120.0, 10.5, 101 << 20, 1_600_000),
            interval(3, 180.0, 10.8, 102 << 20, 2_200_000),
        ];
        let errors = BTreeMap::from([("Unavailable".to_owned(), 1)]);
        let r = summarise(
            &plan(),
            100.0,
            Some(143.0),
            Duration::from_secs(180),
            intervals,
            17_999,
            1,
            errors,
            BTreeMap::new(),
        );
        assert!((r.p99_drift - 0.08).abs() < 1e-9, "{}", r.p99_drift);
        assert!(r.p99_drift_ok);
        assert!((r.error_rate - 1.0 / 18_000.0).abs() < 1e-12);
        assert!(r.error_rate_ok && r.passed);
        assert_eq!(r.rss_growth_bytes_per_min, Some((1u64 << 20) as f64));
        assert_eq!(r.database_growth_bytes_per_min, Some(600_000.0));
        assert_eq!(r.database_bytes_per_ok_call, Some(100.0));
        assert_eq!(r.open_files_growth_per_min, Some(0.0));
    }

    #[test]
    fn a_drifting_p99_or_too_many_errors_fail_the_soak() {
        let drifting = vec![
            interval(1, 60.0, 10.0, 1, 1),
            interval(2, 120.0, 11.5, 1, 1),
        ];
        let r = summarise(
            &plan(),
            100.0,
            None,
            Duration::from_secs(120),
            drifting,
            12_000,
            0,
            BTreeMap::new(),
            BTreeMap::new(),
        );
        assert!(!r.p99_drift_ok && !r.passed);
        let steady = vec![
            interval(1, 60.0, 10.0, 1, 1),
            interval(2, 120.0, 10.0, 1, 1),
        ];
        let r = summarise(
            &plan(),
            100.0,
            None,
            Duration::from_secs(120),
            steady,
            9_998,
            2,
            BTreeMap::new(),
            BTreeMap::new(),
        );
        assert!(!r.error_rate_ok && !r.passed, "2 in 10,000 is over 0.01 %");
        assert!(summary(&r).contains("soak FAIL"));
    }
}
