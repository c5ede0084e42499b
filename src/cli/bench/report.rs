//! The figures of a run: one line per workload as it ends, a table at the end with each
//! workload beside its in-run baseline and the targets, and the same as JSON.

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use super::{
    drive::{Measured, quantile_ms},
    workload::Workload,
};

/// Latency percentiles of the OK calls, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

/// One workload's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    pub workload: Workload,
    pub rpc: &'static str,
    /// Length of the measured window in seconds (shorter than asked when the pool ran out).
    pub window_s: f64,
    pub ok_calls: u64,
    /// OK calls per second of the window.
    pub calls_per_s: f64,
    pub latency_ms: Latency,
    /// Failed calls by gRPC status code (or `ORDER_<STATUS>` for an answered Pay that did not
    /// succeed), and one message of each.
    pub errors: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, String>,
    /// Server CPU (user + system) over the window divided by the OK calls, in microseconds.
    pub server_cpu_us_per_call: Option<f64>,
    /// Server CPU over the window as a share of one core (1.0 = one core busy).
    pub server_cores_busy: Option<f64>,
    /// The server's peak resident memory so far (`VmHWM`) and its resident memory at the end
    /// of the window (`VmRSS`).
    pub server_peak_rss_bytes: Option<u64>,
    pub server_rss_bytes: Option<u64>,
    /// The process the figures are of: the echo server for `echo`, paygate for the others.
    pub server_pid: u32,
    /// Items pre-seeded for the workload (orders, payment codes), and whether they ran out
    /// before the window's end.
    pub pool: Option<usize>,
    pub pool_ran_out: bool,
    /// The in-run baseline and this workload's throughput and CPU per call against it.
    pub baseline: Option<Workload>,
    pub throughput_vs_baseline: Option<f64>,
    pub cpu_per_call_vs_baseline: Option<f64>,
}

impl WorkloadReport {
    pub fn new(workload: Workload, m: &Measured, server_pid: u32, pool: Option<usize>) -> Self {
        let window_s = m.window.as_secs_f64();
        let cpu_us = match (m.server_before, m.server_after) {
            (Some(before), Some(after)) => Some(after.cpu_us.saturating_sub(before.cpu_us)),
            _ => None,
        };
        WorkloadReport {
            workload,
            rpc: workload.rpc(),
            window_s,
            ok_calls: m.ok_calls,
            calls_per_s: if window_s > 0.0 {
                m.ok_calls as f64 / window_s
            } else {
                0.0
            },
            latency_ms: Latency {
                p50: quantile_ms(&m.latencies_us, 0.50),
                p90: quantile_ms(&m.latencies_us, 0.90),
                p99: quantile_ms(&m.latencies_us, 0.99),
                p999: quantile_ms(&m.latencies_us, 0.999),
            },
            errors: m.errors.clone(),
            error_samples: m.error_samples.clone(),
            server_cpu_us_per_call: cpu_us
                .filter(|_| m.ok_calls > 0)
                .map(|us| us as f64 / m.ok_calls as f64),
            server_cores_busy: cpu_us
                .filter(|_| window_s > 0.0)
                .map(|us| us as f64 / 1e6 / window_s),
            server_peak_rss_bytes: m.server_after.map(|s| s.peak_rss_bytes),
            server_rss_bytes: m.server_after.map(|s| s.rss_bytes),
            server_pid,
            pool,
            pool_ran_out: m.ran_out,
            baseline: workload.baseline(),
            throughput_vs_baseline: None,
            cpu_per_call_vs_baseline: None,
        }
    }

    /// Fills in the ratios to the baseline, when the baseline ran before it.
    pub fn compare(&mut self, done: &[WorkloadReport]) {
        let Some(base) = self
            .baseline
            .and_then(|b| done.iter().find(|r| r.workload == b))
        else {
            return;
        };
        if base.calls_per_s > 0.0 {
            self.throughput_vs_baseline = Some(self.calls_per_s / base.calls_per_s);
        }
        if let (Some(mine), Some(theirs)) =
            (self.server_cpu_us_per_call, base.server_cpu_us_per_call)
            && theirs > 0.0
        {
            self.cpu_per_call_vs_baseline = Some(mine / theirs);
        }
    }

    /// The line printed as the workload ends.
    pub fn line(&self) -> String {
        let errors: u64 = self.errors.values().sum();
        let mut line = format!(
            "{:<13} {:>9.0} calls/s ({} OK in {:.2} s)  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2} ms  \
             server CPU {} µs/call  peak RSS {}  RSS {}",
            self.workload.name(),
            self.calls_per_s,
            self.ok_calls,
            self.window_s,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.p999,
            opt(self.server_cpu_us_per_call, 0),
            mib(self.server_peak_rss_bytes),
            mib(self.server_rss_bytes),
        );
        if let (Some(base), Some(ratio)) = (self.baseline, self.throughput_vs_baseline) {
            line.push_str(&format!("  = {:.0} % of {}", ratio * 100.0, base.name()));
        }
        if errors > 0 {
            let by_code: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            line.push_str(&format!("\n              errors: {}", by_code.join(", ")));
            for (kind, message) in &self.error_samples {
                line.push_str(&format!("\n                {kind}: {message}"));
            }
        }
        if self.pool_ran_out {
            line.push_str(&format!(
                "\n              the {} pre-seeded items ran out: the window ended early",
                self.pool.unwrap_or(0)
            ));
        }
        line
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.0} MiB", b as f64 / 1048576.0),
    )
}

/// The whole run, as written with `--json`.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub started_at: String,
    pub backend: &'static str,
    /// Whether the bench started the server (`false`: `--target`).
    pub spawned_server: bool,
    pub connections: usize,
    pub streams_per_connection: usize,
    pub warmup_s: u64,
    pub duration_s: u64,
    pub accounts: usize,
    pub merchants: usize,
    /// Cores of the machine (the bench shares them with the server).
    pub cores: usize,
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
    pub workloads: Vec<WorkloadReport>,
    /// Each of the targets the run could judge: (what, the figure, met).
    pub targets: Vec<TargetCheck>,
    pub notes: Vec<String>,
}

/// One target of the issue, judged on this run's figures.
#[derive(Debug, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// The targets that this run's workloads can judge.
pub fn targets(done: &[WorkloadReport]) -> Vec<TargetCheck> {
    let find = |w: Workload| done.iter().find(|r| r.workload == w);
    let mut checks = Vec::new();
    for w in [Workload::Pay, Workload::Transfer, Workload::GetBalance] {
        if let Some(r) = find(w)
            && let Some(ratio) = r.throughput_vs_baseline
        {
            checks.push(TargetCheck {
                target: format!("{} ≥ 50 % of health, p99 ≤ 20 ms", w.name()),
                measured: format!("{:.0} %, p99 {:.1} ms", ratio * 100.0, r.latency_ms.p99),
                met: ratio >= 0.5 && r.latency_ms.p99 <= 20.0,
            });
        }
    }
    if let Some(ratio) = find(Workload::Health).and_then(|r| r.throughput_vs_baseline) {
        checks.push(TargetCheck {
            target: "health ≥ 80 % of echo".to_owned(),
            measured: format!("{:.0} %", ratio * 100.0),
            met: ratio >= 0.8,
        });
    }
    if let Some(cpu) = find(Workload::Pay).and_then(|r| r.server_cpu_us_per_call) {
        checks.push(TargetCheck {
            target: "server CPU per pay ≤ 120 µs".to_owned(),
            measured: format!("{cpu:.0} µs"),
            met: cpu <= 120.0,
        });
    }
    if let (Some(hot), Some(spread)) = (find(Workload::PayHot), find(Workload::Pay))
        && spread.calls_per_s > 0.0
    {
        let ratio = hot.calls_per_s / spread.calls_per_s;
        checks.push(TargetCheck {
            target: "pay-hot ≥ 90 % of pay".to_owned(),
            measured: format!("{:.0} %", ratio * 100.0),
            met: ratio >= 0.9,
        });
    }
    checks
}

/// The table at the end of the run.
pub fn table(run: &RunReport) -> String {
    let mut out = format!(
        "\n{} × {} streams, {} s per workload after {} s warm-up, {} backend, {} cores shared with the bench\n\n",
        run.connections,
        run.streams_per_connection,
        run.duration_s,
        run.warmup_s,
        run.backend,
        run.cores
    );
    out.push_str("| workload | calls/s | vs baseline | p50 ms | p99 ms | p99.9 ms | server CPU µs/call | CPU vs baseline | errors | peak RSS |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in &run.workloads {
        let vs = match (r.baseline, r.throughput_vs_baseline) {
            (Some(b), Some(x)) => format!("{:.0} % of {}", x * 100.0, b.name()),
            _ => "—".to_owned(),
        };
        let cpu_vs = r
            .cpu_per_call_vs_baseline
            .map_or_else(|| "—".to_owned(), |x| format!("{x:.1}×"));
        out.push_str(&format!(
            "| {} | {:.0} | {vs} | {:.2} | {:.2} | {:.2} | {} | {cpu_vs} | {} | {} |\n",
            r.workload.name(),
            r.calls_per_s,
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.latency_ms.p999,
            opt(r.server_cpu_us_per_call, 0),
            r.errors.values().sum::<u64>(),
            mib(r.server_peak_rss_bytes),
        ));
    }
    if !run.targets.is_empty() {
        out.push_str("\n| target | measured | met |\n| --- | --- | --- |\n");
        for t in &run.targets {
            let met = if t.met { "yes" } else { "no" };
            out.push_str(&format!("| {} | {} | {met} |\n", t.target, t.measured));
        }
    }
    for note in &run.notes {
        out.push_str(&format!("\nnote: {note}"));
    }
    out
}

/// Writes the run as pretty JSON to `path`.
pub fn write_json(run: &RunReport, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(run).map_err(|e| format!("JSON: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}
