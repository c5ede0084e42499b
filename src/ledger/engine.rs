//! The batcher: group commit (组提交). Requests arrive over one bounded channel; one task per
//! process drains up to `batch_size_max` of them, runs them as one database transaction (lock
//! the chain head, load everything in one round, apply in order, write with multi-row
//! statements, commit) and only then answers each waiter. A hot account's row is written at
//! most once per batch however many of the batch's transfers touch it, and only when more than
//! its posted totals change or its journal tail grows long
//! ([`ROW_TAIL_ENTRIES_MAX`](super::store::ROW_TAIL_ENTRIES_MAX)); accounts the process
//! already holds as of the current head come from the storage adapter's account cache.

use std::{sync::Arc, time::Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::store::{BatchNeeds, BatchWrites, ChainHead, LedgerStore, LoadedBatch};
use super::{
    apply::{self, Answer, ApplyLimits, BatchItem},
    cache::{AccountState, BatchDelta, ReadCache},
    error::LedgerError,
};
use crate::{clock::Clock, telemetry::LedgerMetrics};

/// Most yields the batcher spends gathering a batch while requests keep arriving.
const GATHER_YIELDS_MAX: usize = 32;

/// A request waiting for its batch.
pub(crate) struct Submission {
    pub item: BatchItem,
    pub reply: oneshot::Sender<Answer>,
    /// When it was queued (the batch-wait histogram).
    pub queued_at: Instant,
    /// The submitter's wait, which the batch's span links to (OpenTelemetry span links).
    pub span: tracing::Span,
}

/// What the batcher works with besides its queue.
pub(crate) struct BatcherParts {
    pub store: Arc<dyn LedgerStore>,
    pub batch_size_max: usize,
    pub limits: ApplyLimits,
    pub clock: Clock,
    pub changes: watch::Sender<u64>,
    pub metrics: LedgerMetrics,
    /// Kept current by every batch this process commits.
    pub cache: Arc<ReadCache>,
}

/// Runs until every sender is gone and the queue is empty.
pub(crate) async fn run_batcher(parts: BatcherParts, mut rx: mpsc::Receiver<Submission>) {
    let BatcherParts {
        store,
        batch_size_max,
        limits,
        clock,
        changes,
        metrics,
        cache,
    } = parts;
    assert!(batch_size_max > 0);
    let mut batch: Vec<Submission> = Vec::with_capacity(batch_size_max);
    loop {
        let received = rx.recv_many(&mut batch, batch_size_max).await;
        if received == 0 {
            break;
        }
        // Let requests that are being submitted right now (typically the waiters just answered
        // by the previous batch) join this one: yield while the queue keeps growing, a bounded
        // number of times. Under low load this costs one yield.
        for _ in 0..GATHER_YIELDS_MAX {
            if batch.len() >= batch_size_max {
                break;
            }
            tokio::task::yield_now().await;
            let mut grew = false;
            while batch.len() < batch_size_max {
                match rx.try_recv() {
                    Ok(s) => {
                        batch.push(s);
                        grew = true;
                    }
                    Err(_) => break,
                }
            }
            if !grew {
                break;
            }
        }
        debug_assert!(batch.len() <= batch_size_max);
        let started = Instant::now();
        let size = batch.len();
        let span = tracing::info_span!("ledger.batch_commit", batch_size = size);
        for submission in &batch {
            metrics.batch_wait_seconds.observe(
                started
                    .saturating_duration_since(submission.queued_at)
                    .as_secs_f64(),
            );
            span.follows_from(&submission.span);
        }
        let sinks = Sinks {
            changes: &changes,
            cache: &cache,
        };
        execute(store.as_ref(), &mut batch, limits, clock.now_ms(), sinks)
            .instrument(span)
            .await;
        metrics.batch_size.observe(size as f64);
        metrics
            .batch_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        batch.clear();
    }
    tracing::debug!("ledger batcher stopped");
}

/// Who learns of a committed batch besides its waiters.
struct Sinks<'a> {
    changes: &'a watch::Sender<u64>,
    cache: &'a ReadCache,
}

/// Runs one batch as of `now` (every timestamp and deadline of the batch reads it); once it
/// committed, brings the read cache up to date, tells the [`changes`](super::Changes)
/// subscribers, then answers the waiters.
async fn execute(
    store: &dyn LedgerStore,
    batch: &mut Vec<Submission>,
    limits: ApplyLimits,
    now: i64,
    sinks: Sinks<'_>,
) {
    let started = Instant::now();
    let items: Vec<&BatchItem> = batch.iter().map(|s| &s.item).collect();
    let needs = apply::needs_of(items.iter().copied());
    let mut results: Option<Vec<Answer>> = None;
    let mut delta: Option<BatchDelta> = None;
    let committed = {
        let mut apply_fn = |loaded: LoadedBatch| {
            let locked = loaded.head;
            let seen = loaded_delta(&needs, &loaded);
            let (r, writes) = apply::apply_batch_observed(loaded, &items, now, limits);
            results = Some(r);
            delta = Some(written_delta(seen, &locked, &writes));
            writes
        };
        store.execute_batch(&needs, &mut apply_fn).await
    };
    let size = batch.len();
    match (committed, results) {
        (Ok(()), Some(results)) if results.len() == size => {
            if let Some(delta) = delta {
                sinks.cache.committed(delta);
            }
            super::changes::notify(sinks.changes);
            // A small batch frees its requests here: handing them to another thread costs more
            // than freeing them.
            let hand_off = size >= FREE_ELSEWHERE_ITEMS_MIN;
            let mut spent = Vec::with_capacity(if hand_off { size } else { 0 });
            for (sub, result) in batch.drain(..).zip(results) {
                // A waiter that gave up (dropped its receiver) is not an error.
                let _ = sub.reply.send(result);
                if hand_off {
                    spent.push(sub.item);
                }
            }
            if hand_off {
                free_elsewhere((spent, needs));
            }
        }
        (committed, _) => {
            sinks.cache.lost_track();
            let answer = match committed {
                Err(e) => {
                    tracing::error!(error = ?e, batch_size = size, "ledger batch failed; nothing written");
                    if e.is_corrupt() {
                        LedgerError::Corrupt
                    } else if e.is_unavailable() {
                        LedgerError::Unavailable
                    } else {
                        LedgerError::Storage
                    }
                }
                Ok(()) => {
                    tracing::error!(batch_size = size, "ledger batch produced no answers");
                    LedgerError::Storage
                }
            };
            for sub in batch.drain(..) {
                let _ = sub.reply.send(Answer {
                    result: Err(answer.clone()),
                    observed: None,
                });
            }
        }
    }
    tracing::trace!(
        batch_size = size,
        elapsed_us = started.elapsed().as_micros() as u64,
        "ledger batch"
    );
}

/// Batches of fewer requests than this free them on the batch's path.
const FREE_ELSEWHERE_ITEMS_MIN: usize = 128;

/// Frees `spent` on a blocking thread (inline outside a runtime): a large batch's requests are
/// thousands of small allocations (an import's commands carry a profile and metadata each), and
/// freeing them on the batch's path would hold up the next batch, which waits for nothing else.
fn free_elsewhere<T: Send + 'static>(spent: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(move || drop(spent))),
        Err(_) => drop(spent),
    }
}

/// What a batch loaded under its lock, for the read cache: accounts and counters as of the head
/// it locked (a needed counter the database does not hold is zero).
fn loaded_delta(needs: &BatchNeeds, loaded: &LoadedBatch) -> BatchDelta {
    let stored: std::collections::HashMap<&str, i64> = loaded
        .counters
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let counters = needs
        .counters
        .iter()
        .map(|key| (key.clone(), stored.get(key.as_str()).copied().unwrap_or(0)))
        .collect();
    BatchDelta {
        head_before: loaded.head.batches_committed,
        head_after: loaded.head.batches_committed,
        accounts: loaded
            .accounts
            .iter()
            .map(|a| {
                let state = AccountState {
                    status: a.account.status,
                    balance: a.balance,
                };
                (a.account.id, state)
            })
            .collect(),
        counters,
        ..BatchDelta::default()
    }
}

/// `seen` with what the batch wrote on top (later entries win in [`ReadCache::committed`]).
fn written_delta(mut seen: BatchDelta, locked: &ChainHead, writes: &BatchWrites) -> BatchDelta {
    if writes.changes_anything(locked) {
        // The storage moves `batches_committed` by one with every commit that writes.
        seen.head_after = seen.head_before + 1;
    }
    seen.accounts.extend(writes.account_states.iter().map(|a| {
        let state = AccountState {
            status: a.account.status,
            balance: a.balance,
        };
        (a.account.id, state)
    }));
    seen.counters.extend(writes.counters.iter().cloned());
    seen.documents = writes.documents.clone();
    seen.profiles = writes.profiles.clone();
    seen.profile_changes = writes.profile_changes.clone();
    seen
}
