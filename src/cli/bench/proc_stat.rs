//! What the kernel says of the server process: CPU time (utime + stime of `/proc/PID/stat`),
//! peak and current resident memory (`VmHWM`, `VmRSS` of `/proc/PID/status`).

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on every Linux the gateway runs on).
const CLOCK_TICKS_PER_S: u64 = 100;

/// One reading of a process's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time so far, in microseconds.
    pub cpu_us: u64,
    /// Peak resident set size so far (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// Resident set size now (`VmRSS`).
    pub rss_bytes: u64,
}

/// The figures of process `pid`; `None` when it is gone or `/proc` is not Linux's.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_us: cpu_us(&stat)?,
        peak_rss_bytes: status_bytes(&status, "VmHWM:")?,
        rss_bytes: status_bytes(&status, "VmRSS:")?,
    })
}

/// utime + stime (fields 14 and 15, counted after the command name, which may hold spaces and
/// parentheses), in microseconds.
fn cpu_us(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime
        .checked_add(stime)?
        .checked_mul(1_000_000 / CLOCK_TICKS_PER_S)
}

/// A `Name:   12345 kB` line of `/proc/PID/status`, in bytes.
fn status_bytes(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_are_read_as_the_kernel_writes_them() {
        let stat = "4242 (pay gate) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 7 0 \
                    1000 100000 2000";
        assert_eq!(cpu_us(stat), Some(3_000_000));
        let status = "Name:\tpaygate\nVmHWM:\t   4096 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(status_bytes(status, "VmHWM:"), Some(4 * 1024 * 1024));
        assert_eq!(status_bytes(status, "VmRSS:"), Some(2 * 1024 * 1024));
        assert_eq!(status_bytes(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_figures() {
        let me = sample(std::process::id()).expect("/proc/self on Linux");
        assert!(
            me.peak_rss_bytes >= me.rss_bytes && me.rss_bytes > 0,
            "{me:?}"
        );
    }
}
