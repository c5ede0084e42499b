//! The clock every deadline, expiry and timestamp reads: the system's wall clock in production,
//! a manual one in tests, which advance it instead of sleeping, and a rehearsal clock (the
//! system's, shifted to start at a chosen instant: `clock.start`) for walking a sandbox through
//! business dates. One clock is made at start and passed down (the ledger owns it; services
//! read it through the ledger).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// Milliseconds since the Unix epoch, from the system or from a test. Cheap to clone; clones
/// share one time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock (shifted by `offset_ms`).
    manual: Option<Arc<AtomicI64>>,
    /// Added to the system clock (zero but for a rehearsal clock).
    offset_ms: i64,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock {
            manual: None,
            offset_ms: 0,
        }
    }

    /// The system's clock shifted so that it reads `start_ms` now and runs on at real speed
    /// from there: a rehearsal of other business dates, never production.
    pub fn starting_at(start_ms: i64) -> Clock {
        Clock {
            manual: None,
            offset_ms: start_ms.saturating_sub(system_now_ms()),
        }
    }

    /// A clock that stands still at `start_ms` until [`Clock::advance_ms`] moves it.
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
            offset_ms: 0,
        }
    }

    /// A manual clock starting at the system's time now.
    pub fn manual_from_now() -> Clock {
        Clock::manual(system_now_ms())
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => system_now_ms().saturating_add(self.offset_ms),
        }
    }

    /// Moves a manual clock forward (a system clock ignores it; time only goes forward).
    pub fn advance_ms(&self, ms: u64) {
        if let Some(at) = &self.manual {
            let step = i64::try_from(ms).unwrap_or(i64::MAX);
            let _ = at.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(step))
            });
        }
    }

    /// Whether this is a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Whether this clock is the system's own, unshifted (production).
    pub fn is_system(&self) -> bool {
        self.manual.is_none() && self.offset_ms == 0
    }
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        other.advance_ms(250);
        assert_eq!(clock.now_ms(), 1_250);
        assert!(clock.is_manual());
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let clock = Clock::system();
        let before = system_now_ms();
        clock.advance_ms(1_000_000);
        let now = clock.now_ms();
        assert!(now >= before && now < before + 60_000);
    }
}
