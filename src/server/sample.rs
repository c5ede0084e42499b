//! What the admin listener reads afresh at each scrape: the ledger's queue, the database pool and
//! (at most every [`IDEMPOTENCY_COUNT_INTERVAL_MS`]) the number of idempotency records.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    ledger::Ledger,
    storage::LedgerStore,
    telemetry::{Metrics, Sample},
};

/// The idempotency records are counted with a full `COUNT(*)`: at most this often.
const IDEMPOTENCY_COUNT_INTERVAL_MS: u64 = 15_000;
/// A count that takes longer is given up (the gauge keeps its last value).
const IDEMPOTENCY_COUNT_TIMEOUT_MS: u64 = 2_000;

pub(super) struct GatewaySampler {
    ledger: Ledger,
    store: Arc<dyn LedgerStore>,
    /// When the idempotency records were last counted.
    counted_at: Mutex<Option<Instant>>,
}

impl GatewaySampler {
    pub(super) fn new(ledger: Ledger, store: Arc<dyn LedgerStore>) -> GatewaySampler {
        GatewaySampler {
            ledger,
            store,
            counted_at: Mutex::new(None),
        }
    }

    /// Whether a count is due now (and if so, marks it as done now).
    fn count_due(&self) -> bool {
        let Ok(mut counted_at) = self.counted_at.lock() else {
            return false;
        };
        let interval = Duration::from_millis(IDEMPOTENCY_COUNT_INTERVAL_MS);
        if counted_at.is_some_and(|at| at.elapsed() < interval) {
            return false;
        }
        *counted_at = Some(Instant::now());
        true
    }
}

#[async_trait::async_trait]
impl Sample for GatewaySampler {
    async fn sample(&self, metrics: &Metrics) {
        let depth = i64::try_from(self.ledger.queue_depth()).unwrap_or(i64::MAX);
        metrics.ledger_queue_depth.set(depth);
        let pool = self.store.pool_connections();
        metrics.db_pool_connections.set(i64::from(pool.open));
        metrics
            .db_pool_idle_connections
            .set(i64::try_from(pool.idle).unwrap_or(i64::MAX));
        if !self.count_due() {
            return;
        }
        let timeout = Duration::from_millis(IDEMPOTENCY_COUNT_TIMEOUT_MS);
        match tokio::time::timeout(timeout, self.store.idempotency_keys_count()).await {
            Ok(Ok(count)) => {
                metrics
                    .idempotency_keys
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            Ok(Err(e)) => tracing::warn!(error = ?e, "counting the idempotency records failed"),
            Err(_) => tracing::warn!(
                timeout_ms = IDEMPOTENCY_COUNT_TIMEOUT_MS,
                "counting the idempotency records took too long"
            ),
        }
    }
}
