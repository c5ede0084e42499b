//! A caller's rules at the front door: the methods it is granted and its rate (token bucket).

use std::{collections::HashSet, time::Instant};

/// The compiled grants of one caller.
#[derive(Debug, Default)]
pub(super) struct Grants {
    everything: bool,
    services: HashSet<String>,
    methods: HashSet<String>,
}

impl Grants {
    pub(super) fn compile(grants: &[String]) -> Grants {
        let mut compiled = Grants::default();
        for grant in grants {
            if grant == "*" {
                compiled.everything = true;
            } else if let Some(service) = grant.strip_suffix("/*") {
                compiled.services.insert(service.to_owned());
            } else {
                compiled.methods.insert(grant.clone());
            }
        }
        compiled
    }

    /// `method` is `package.Service/Method`.
    pub(super) fn allows(&self, method: &str) -> bool {
        if self.everything || self.methods.contains(method) {
            return true;
        }
        method
            .split_once('/')
            .is_some_and(|(service, _)| self.services.contains(service))
    }
}

/// Token bucket in milli-tokens, so refill needs no fractions.
#[derive(Debug)]
pub(super) struct TokenBucket {
    tokens_milli: u64,
    capacity_milli: u64,
    rate_per_s: u32,
    refilled_at: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate_per_s: u32, burst: u32) -> TokenBucket {
        let capacity_milli = u64::from(burst) * 1000;
        TokenBucket {
            tokens_milli: capacity_milli,
            capacity_milli,
            rate_per_s,
            refilled_at: Instant::now(),
        }
    }

    pub(super) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed_us = now.saturating_duration_since(self.refilled_at).as_micros();
        let refill_milli = elapsed_us.saturating_mul(u128::from(self.rate_per_s)) / 1000;
        if refill_milli > 0 {
            let refill_milli = u64::try_from(refill_milli).unwrap_or(u64::MAX);
            self.tokens_milli = self
                .tokens_milli
                .saturating_add(refill_milli)
                .min(self.capacity_milli);
            self.refilled_at = now;
        }
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_everything_a_service_or_one_method() {
        let grants = Grants::compile(&[
            "paygate.v1.CashierService/*".to_owned(),
            "paygate.v1.AccountService/GetAccount".to_owned(),
        ]);
        assert!(grants.allows("paygate.v1.CashierService/Pay"));
        assert!(grants.allows("paygate.v1.AccountService/GetAccount"));
        assert!(!grants.allows("paygate.v1.AccountService/Transfer"));
        assert!(Grants::compile(&["*".to_owned()]).allows("paygate.v1.YieldService/Redeem"));
    }

    #[test]
    fn a_token_bucket_refuses_past_its_burst_and_refills_at_its_rate() {
        let mut bucket = TokenBucket::new(10, 2);
        let start = bucket.refilled_at;
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        // 100 ms at 10/s refills exactly one token.
        assert!(bucket.try_take(start + std::time::Duration::from_millis(100)));
        assert!(!bucket.try_take(start + std::time::Duration::from_millis(100)));
    }
}
