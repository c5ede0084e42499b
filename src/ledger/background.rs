//! The ledger's background tasks: the expiry sweeper (voids expired pending transfers and
//! holds) and the idempotency janitor (deletes keys past their retention).

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use tokio::sync::watch;

use super::{Command, Inner, LedgerError, Outcome, store::ExpiryItem};

/// Most idempotency keys deleted per statement by the janitor.
const PURGE_ROWS_MAX: u32 = 10_000;
/// Most statements per janitor run (bounds one run to `PURGE_ROWS_MAX × PURGE_ROUNDS_MAX` rows).
const PURGE_ROUNDS_MAX: u32 = 1_000;

pub(super) async fn sweep_once(inner: &Inner, items_max: u32) -> Result<usize, LedgerError> {
    let due = inner
        .store
        .due_expiries(inner.clock.now_ms(), items_max)
        .await?;
    let answers = futures::future::join_all(due.into_iter().map(|item| {
        let command = match item {
            ExpiryItem::Pending(pending) => Command::ExpirePending { pending },
            ExpiryItem::Hold(hold) => Command::ExpireHold { hold },
        };
        inner.submit(None, command)
    }))
    .await;
    let mut done = 0;
    for answer in answers {
        match answer {
            Ok(Outcome::Nothing) => {}
            Ok(_) => done += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Waits `interval_ms` for a background task's next run: the ledger, or `None` once it is
/// stopping or gone.
pub(super) async fn next_tick(
    inner: &Weak<Inner>,
    stop: &mut watch::Receiver<bool>,
    interval_ms: u64,
) -> Option<Arc<Inner>> {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
        _ = stop.changed() => return None,
    }
    if *stop.borrow() {
        return None;
    }
    inner.upgrade()
}

pub(super) async fn run_sweeper(
    inner: Weak<Inner>,
    mut stop: watch::Receiver<bool>,
    interval_ms: u64,
    items_max: u32,
) {
    while let Some(inner) = next_tick(&inner, &mut stop, interval_ms).await {
        match sweep_once(&inner, items_max).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired pending transfers and holds"),
            Err(e) => tracing::warn!(reason = e.reason(), "expiry sweep failed"),
        }
    }
}

pub(super) async fn run_janitor(
    inner: Weak<Inner>,
    mut stop: watch::Receiver<bool>,
    interval_ms: u64,
    retention_ms: i64,
) {
    while let Some(inner) = next_tick(&inner, &mut stop, interval_ms).await {
        let cutoff_ms = inner.clock.now_ms().saturating_sub(retention_ms);
        for _ in 0..PURGE_ROUNDS_MAX {
            match inner
                .store
                .purge_idempotency(cutoff_ms, PURGE_ROWS_MAX)
                .await
            {
                Ok(n) if n < u64::from(PURGE_ROWS_MAX) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = ?e, "idempotency purge failed");
                    break;
                }
            }
        }
    }
}
