//! The load: `streams` concurrent callers on each of the connections, each calling as fast as
//! it is answered, a warm-up, then a measured window. A call counts in the window when it ends
//! inside it; the server's CPU and memory are read from `/proc` at both ends of the window.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::transport::Channel;

use super::proc_stat::{self, ProcSample};

/// Most latencies kept for the percentiles of one workload (40 MB); calls beyond it still count.
const LATENCY_SAMPLES_MAX: usize = 10_000_000;
/// How often the driver looks whether the window is over or every caller has stopped.
const POLL_MS: u64 = 20;

const WARMING_UP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// How hard and how long to drive one workload.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub streams_per_connection: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Why a call was not answered OK: its gRPC status code name (`FailedPrecondition` …) or an
/// answer that is not the success asked for (`ORDER_FAILED` …), with the server's message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        Failure {
            kind: format!("{:?}", status.code()),
            message: status.message().to_owned(),
        }
    }
}

/// What one call ended in: `None` when there was nothing left to call with (the workload's
/// pre-seeded pool ran out), else the answer.
pub type CallOutcome = Option<Result<(), Failure>>;

/// What a window measured.
#[derive(Debug, Default)]
pub struct Measured {
    /// Length of the measured window.
    pub window: Duration,
    /// Calls answered OK that ended in the window.
    pub ok_calls: u64,
    /// Latencies of the OK calls of the window, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Failed calls of the window by kind, and one message of each kind.
    pub errors: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, String>,
    /// The server at the start and at the end of the window.
    pub server_before: Option<ProcSample>,
    pub server_after: Option<ProcSample>,
    /// Whether every caller stopped before the window's end (the pool ran out).
    pub ran_out: bool,
}

/// One caller's tally.
#[derive(Default)]
struct Tally {
    ok_calls: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    error_samples: BTreeMap<String, String>,
}

/// Drives `call` (given a connection and a number unique within this workload) from every
/// caller on `channels`; `server_pid`'s figures frame the window.
pub async fn measure<F, Fut>(channels: &[Channel], load: Load, server_pid: u32, call: F) -> Measured
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallOutcome> + Send + 'static,
{
    assert!(!channels.is_empty() && load.streams_per_connection > 0);
    let callers = channels.len() * load.streams_per_connection;
    let call = Arc::new(call);
    let phase = Arc::new(AtomicU8::new(if load.warmup.is_zero() {
        MEASURING
    } else {
        WARMING_UP
    }));
    let next = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicUsize::new(callers));
    let samples_max = LATENCY_SAMPLES_MAX / callers;
    let mut tasks = Vec::with_capacity(callers);
    for channel in channels {
        for _ in 0..load.streams_per_connection {
            let (call, phase, next, running) =
                (call.clone(), phase.clone(), next.clone(), running.clone());
            let channel = channel.clone();
            tasks.push(tokio::spawn(async move {
                let tally = caller(channel, call, phase, next, samples_max).await;
                running.fetch_sub(1, Ordering::AcqRel);
                tally
            }));
        }
    }
    let started = Instant::now();
    while started.elapsed() < load.warmup && running.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    let server_before = proc_stat::sample(server_pid);
    let window_start = Instant::now();
    phase.store(MEASURING, Ordering::Release);
    while window_start.elapsed() < load.duration && running.load(Ordering::Acquire) > 0 {
        let left = load.duration.saturating_sub(window_start.elapsed());
        tokio::time::sleep(left.min(Duration::from_millis(POLL_MS))).await;
    }
    let ran_out = running.load(Ordering::Acquire) == 0;
    let window = window_start.elapsed();
    let server_after = proc_stat::sample(server_pid);
    phase.store(STOPPING, Ordering::Release);

    let mut measured = Measured {
        window,
        server_before,
        server_after,
        ran_out,
        ..Measured::default()
    };
    for task in tasks {
        let Ok(tally) = task.await else { continue };
        measured.ok_calls += tally.ok_calls;
        measured.latencies_us.extend(tally.latencies_us);
        for (kind, n) in tally.errors {
            *measured.errors.entry(kind).or_default() += n;
        }
        for (kind, message) in tally.error_samples {
            measured.error_samples.entry(kind).or_insert(message);
        }
    }
    measured.latencies_us.sort_unstable();
    measured
}

/// One caller: calls until told to stop or until there is nothing left to call with; counts
/// what ends while the window is open.
async fn caller<F, Fut>(
    channel: Channel,
    call: Arc<F>,
    phase: Arc<AtomicU8>,
    next: Arc<AtomicU64>,
    samples_max: usize,
) -> Tally
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallOutcome> + Send + 'static,
{
    let mut tally = Tally::default();
    while phase.load(Ordering::Acquire) != STOPPING {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let Some(outcome) = call(channel.clone(), n).await else {
            break;
        };
        if phase.load(Ordering::Acquire) != MEASURING {
            continue;
        }
        match outcome {
            Ok(()) => {
                tally.ok_calls += 1;
                if tally.latencies_us.len() < samples_max {
                    let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    tally.latencies_us.push(us);
                }
            }
            Err(failure) => {
                *tally.errors.entry(failure.kind.clone()).or_default() += 1;
                tally
                    .error_samples
                    .entry(failure.kind)
                    .or_insert(failure.message);
            }
        }
    }
    tally
}

/// The `q` quantile (0 < q ≤ 1) of sorted latencies, in milliseconds (nearest rank); 0 when
/// there are none.
pub fn quantile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted_us.len() as f64).ceil() as usize;
    let at = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[at]) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let us: Vec<u32> = (1..=1000).map(|n| n * 1000).collect();
        assert_eq!(quantile_ms(&us, 0.5), 500.0);
        assert_eq!(quantile_ms(&us, 0.99), 990.0);
        assert_eq!(quantile_ms(&us, 0.999), 999.0);
        assert_eq!(quantile_ms(&us, 1.0), 1000.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
