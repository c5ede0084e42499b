//! `paygate bench`, the load harness, run as an operator would: the real binary starts its own
//! gateway and echo server as child processes, seeds through the public RPCs, drives every
//! workload for a second and writes its figures as JSON; the gateway's ledger verifies after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

const WORKLOADS: [&str; 8] = [
    "echo",
    "health",
    "get-balance",
    "transfer",
    "transfer-hot",
    "pay",
    "pay-hot",
    "scan-pay",
];

#[test]
fn a_short_bench_run_measures_every_workload_without_an_error_and_its_ledger_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("server");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["bench", "--workloads", &WORKLOADS.join(",")])
        .args(["--accounts", "50", "--merchants", "3"])
        .args(["--connections", "2", "--streams", "8"])
        .args([
            "--duration-s",
            "1",
            "--warmup-s",
            "0",
            "--server-log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(&data)
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
    assert!(out.status.success(), "paygate bench failed:\n{printed}");
    assert!(
        printed.contains("| workload | calls/s |"),
        "the table is printed:\n{printed}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON is written"))
            .expect("the JSON parses");
    let workloads = report["workloads"].as_array().expect("workloads");
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["workload"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, WORKLOADS, "every workload ran, in order");
    let (mut echo_pid, mut paygate_pid) = (0, 0);
    for w in workloads {
        let name = w["workload"].as_str().unwrap();
        assert!(
            w["ok_calls"].as_u64().unwrap() > 0,
            "{name}: OK calls\n{w:#}"
        );
        assert!(
            w["calls_per_s"].as_f64().unwrap() > 0.0,
            "{name}: a rate\n{w:#}"
        );
        assert_eq!(
            w["errors"],
            serde_json::json!({}),
            "{name}: no errors\n{w:#}"
        );
        assert!(
            w["server_cpu_us_per_call"].as_f64().unwrap() > 0.0,
            "{name}: server CPU per call\n{w:#}"
        );
        assert!(
            w["server_peak_rss_bytes"].as_u64().unwrap() > 0,
            "{name}: peak RSS"
        );
        assert!(
            w["latency_ms"]["p50"].as_f64().unwrap() > 0.0,
            "{name}: latency"
        );
        assert!(
            w["latency_ms"]["p50"].as_f64() <= w["latency_ms"]["p999"].as_f64(),
            "{name}: percentiles in order"
        );
        let pid = w["server_pid"].as_u64().unwrap();
        if name == "echo" {
            assert!(w["baseline"].is_null());
            echo_pid = pid;
        } else {
            let baseline = if name == "health" { "echo" } else { "health" };
            assert_eq!(w["baseline"], baseline, "{name}");
            assert!(
                w["throughput_vs_baseline"].as_f64().unwrap() > 0.0,
                "{name}: a ratio"
            );
            paygate_pid = pid;
        }
    }
    assert_ne!(echo_pid, paygate_pid, "the floor is a process of its own");
    assert_ne!(
        u64::from(std::process::id()),
        paygate_pid,
        "the server is not the bench"
    );
    assert_eq!(report["spawned_server"], true);
    assert_eq!(report["backend"], "sqlite");

    let db = format!("sqlite://{}", data.join("paygate.db").display());
    let verify = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["ledger", "verify", "--database-url", &db])
        .current_dir(&data)
        .env_remove("PAYGATE_CONFIG")
        .output()
        .expect("paygate ledger verify runs");
    assert!(
        verify.status.success(),
        "the ledger the bench left verifies:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
