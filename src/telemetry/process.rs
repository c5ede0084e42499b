//! The process's own figures, read from `/proc/self` at each scrape (Linux; elsewhere they stay
//! at zero): resident memory, open and allowed file descriptors, threads and CPU time.

use std::sync::{Mutex, atomic::AtomicU64};

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

/// Kernel clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 by the Linux ABI).
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// Most `/proc/self/fd` entries counted (the figure is capped there).
const FDS_COUNTED_MAX: usize = 1 << 20;

#[derive(Debug)]
pub(super) struct ProcessMetrics {
    resident_memory_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    threads: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    /// CPU seconds already added to the counter (it only moves forward).
    cpu_seconds_counted: Mutex<f64>,
}

impl ProcessMetrics {
    pub(super) fn register(registry: &mut Registry) -> ProcessMetrics {
        let resident_memory_bytes = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            resident_memory_bytes.clone(),
        );
        let open_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "File descriptors open (connections, database files, listeners)",
            open_fds.clone(),
        );
        let max_fds = Gauge::default();
        registry.register(
            "process_max_fds",
            "The soft limit of open file descriptors",
            max_fds.clone(),
        );
        let threads = Gauge::default();
        registry.register("process_threads", "Threads of the process", threads.clone());
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time of the process, user and system",
            cpu_seconds.clone(),
        );
        ProcessMetrics {
            resident_memory_bytes,
            open_fds,
            max_fds,
            threads,
            cpu_seconds,
            cpu_seconds_counted: Mutex::new(0.0),
        }
    }

    /// Reads `/proc/self` afresh; a figure that cannot be read keeps its last value.
    pub(super) fn refresh(&self) {
        if let Some(rss) = read("/proc/self/status").and_then(|s| resident_bytes(&s)) {
            self.resident_memory_bytes.set(saturate(rss));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(saturate(dir.take(FDS_COUNTED_MAX).count() as u64));
        }
        if let Some(max) = read("/proc/self/limits").and_then(|s| max_open_files(&s)) {
            self.max_fds.set(saturate(max));
        }
        if let Some((cpu_s, threads)) = read("/proc/self/stat").and_then(|s| cpu_and_threads(&s)) {
            self.threads.set(saturate(threads));
            if let Ok(mut counted) = self.cpu_seconds_counted.lock()
                && cpu_s > *counted
            {
                self.cpu_seconds.inc_by(cpu_s - *counted);
                *counted = cpu_s;
            }
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `VmRSS:   12345 kB` of `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU seconds and the thread count from `/proc/self/stat` (fields 14, 15 and
/// 20, counted after the command name, which may itself hold spaces and parentheses).
fn cpu_and_threads(stat: &str) -> Option<(f64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let threads: u64 = fields.get(17)?.parse().ok()?;
    Some(((utime + stime) as f64 / CLOCK_TICKS_PER_S, threads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let stat = "4242 (pay gate) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 7 0 \
                    1000 100000 2000";
        assert_eq!(cpu_and_threads(stat), Some((3.0, 7)));
        assert_eq!(
            resident_bytes("Name:\tpaygate\nVmRSS:\t   2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }
}
