//! `paygate bench --soak` (issue 15): the peak, then 70 % of it held open loop, a line per
//! interval (calls/s, p50/p99, errors, server RSS, open files, database size) and a verdict.
//!
//! Always: a few seconds of soak, checked for its fields. Behind a flag, the real one:
//! `PAYGATE_SOAK=1 cargo test --release --test bench_soak` (10 minutes;
//! `PAYGATE_SOAK_MINUTES=120` for the long run) must pass its thresholds (error rate < 0.01 %,
//! p99 drift < 10 %).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// Runs `paygate bench --soak` with `args`; its exit status, what it printed, and its JSON.
fn soak(args: &[&str]) -> (bool, String, Option<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("soak.json");
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["bench", "--soak", "--server-log", "warn"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path().join("server"))
        .arg("--json")
        .arg(&json)
        .env_remove("PAYGATE_CONFIG")
        .env_remove("PAYGATE_DATA_DIR")
        .output()
        .expect("paygate bench runs");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|text| serde_json::from_str(&text).expect("the JSON parses"));
    (out.status.success(), printed, report)
}

#[test]
fn a_few_seconds_of_soak_report_every_interval_and_the_verdict() {
    let (_, printed, report) = soak(&[
        "--minutes",
        "0.1",
        "--interval-s",
        "2",
        "--peak-s",
        "1",
        "--warmup-s",
        "0",
        "--accounts",
        "20",
        "--connections",
        "1",
        "--streams",
        "4",
    ]);
    let report = report.unwrap_or_else(|| panic!("no JSON written:\n{printed}"));
    assert!(
        printed.contains("measuring the peak of transfer"),
        "{printed}"
    );
    assert!(
        printed.contains("interval   1"),
        "a line per interval:\n{printed}"
    );
    assert!(
        printed.contains("soak pass") || printed.contains("soak FAIL"),
        "{printed}"
    );
    let peak = report["peak_calls_per_s"].as_f64().expect("a peak");
    let target = report["target_calls_per_s"].as_f64().expect("a target");
    assert!(
        peak > 0.0 && (target - peak * 0.7).abs() < 1e-6,
        "70 % of the peak: {report:#}"
    );
    let intervals = report["intervals"].as_array().expect("intervals");
    assert!(intervals.len() >= 2, "6 s in 2 s intervals: {report:#}");
    for i in intervals {
        assert!(i["ok_calls"].as_u64().unwrap() > 0, "{i:#}");
        assert!(
            i["p99_ms"].as_f64().unwrap() >= i["p50_ms"].as_f64().unwrap(),
            "{i:#}"
        );
        assert!(
            i["server_cpu_us_per_call"].as_f64().unwrap() > 0.0,
            "the server's CPU per acknowledged call: {i:#}"
        );
        assert!(i["server_rss_bytes"].as_u64().unwrap() > 0, "{i:#}");
        assert!(i["server_open_files"].as_u64().unwrap() > 0, "{i:#}");
        assert!(i["database_bytes"].as_u64().unwrap() > 0, "{i:#}");
    }
    for field in [
        "error_rate",
        "p99_drift",
        "rss_growth_bytes_per_min",
        "open_files_growth_per_min",
        "database_growth_bytes_per_min",
        "calls_not_sent",
    ] {
        assert!(report[field].is_number(), "{field}: {report:#}");
    }
    assert_eq!(report["failed_calls"], 0, "no call failed: {report:#}");
    assert!(report["passed"].is_boolean());
}

#[test]
fn a_soak_of_a_pool_workload_is_refused() {
    let (ok, printed, _) = soak(&["--workloads", "pay"]);
    assert!(!ok && printed.contains("--soak runs transfer"), "{printed}");
}

#[test]
fn the_soak_holds_seventy_percent_of_the_peak_within_the_thresholds() {
    if std::env::var("PAYGATE_SOAK").as_deref() != Ok("1") {
        eprintln!("SKIPPED: PAYGATE_SOAK=1 not set (10 minutes; PAYGATE_SOAK_MINUTES=120 for 2 h)");
        return;
    }
    let minutes = std::env::var("PAYGATE_SOAK_MINUTES").unwrap_or_else(|_| "10".to_owned());
    let (ok, printed, report) = soak(&["--minutes", &minutes, "--accounts", "10000"]);
    println!("{printed}");
    let report = report.expect("the JSON is written");
    assert!(
        ok && report["passed"] == true,
        "the soak failed:\n{printed}"
    );
}
