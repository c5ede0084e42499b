//! A bound on repetitive log lines: refusals at the front door (an unknown caller retrying in a
//! loop, a caller over its rate) are logged at most `lines_per_window_max` times per window;
//! the rest are counted, and the first line of the next window says how many were left out.
//! The metrics still count every refusal.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// Refusal lines logged per window at most.
pub const LINES_PER_WINDOW_MAX: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Decides, per line, whether to log it.
#[derive(Debug)]
pub struct LogThrottle {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Whether to log this line, and how many similar lines the previous window left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Log { suppressed_before: u64 },
    Suppress,
}

impl Default for LogThrottle {
    fn default() -> Self {
        LogThrottle {
            state: Mutex::new(Window {
                started: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }
}

impl LogThrottle {
    pub fn check(&self, now: Instant) -> Verdict {
        let Ok(mut w) = self.state.lock() else {
            return Verdict::Log {
                suppressed_before: 0,
            };
        };
        let mut suppressed_before = 0;
        if now.duration_since(w.started) >= WINDOW {
            suppressed_before = w.suppressed;
            *w = Window {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < LINES_PER_WINDOW_MAX {
            w.logged += 1;
            Verdict::Log { suppressed_before }
        } else {
            w.suppressed = w.suppressed.saturating_add(1);
            Verdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_a_few_lines_and_the_next_window_says_how_many_were_left_out() {
        let throttle = LogThrottle::default();
        let start = Instant::now();
        let verdicts: Vec<Verdict> = (0..1000).map(|_| throttle.check(start)).collect();
        let logged = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Log { .. }))
            .count();
        assert_eq!(logged, LINES_PER_WINDOW_MAX as usize);
        assert_eq!(
            throttle.check(start + WINDOW),
            Verdict::Log {
                suppressed_before: 1000 - u64::from(LINES_PER_WINDOW_MAX)
            }
        );
    }
}
