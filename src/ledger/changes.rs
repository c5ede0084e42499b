//! Change notices (变更通知): how a long-lived reader (an account watch, an event subscription)
//! learns that the ledger may hold something new without reading the database on a timer of its
//! own. A counter moves after every batch this process commits, and one poller per process reads
//! the chain head's `batches_committed` at a bounded interval, so the batches of other gateway
//! processes on the same database move it too. An idle reader parks on the counter and costs
//! nothing; a thousand idle readers cost one small read per interval, and none while nobody
//! listens.

use std::sync::Weak;

use tokio::sync::watch;

use super::Inner;

/// A subscriber to the ledger's change notices. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Changes(watch::Receiver<u64>);

impl Changes {
    pub(super) fn new(receiver: watch::Receiver<u64>) -> Changes {
        Changes(receiver)
    }

    /// Waits until a batch committed after this subscriber was made or last woke (one that
    /// committed while the subscriber was busy reading wakes it at once). `false`: the ledger is
    /// gone and nothing will change any more.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// Moves the counter: something committed.
pub(super) fn notify(counter: &watch::Sender<u64>) {
    counter.send_modify(|n| *n = n.wrapping_add(1));
}

/// Reads the chain head every `interval_ms` while anyone listens, and moves the counter when
/// `batches_committed` moved (another process's batch, or this one's, already notified: a
/// second notice only costs each subscriber one read).
pub(super) async fn run_poller(
    inner: Weak<Inner>,
    mut stop: watch::Receiver<bool>,
    interval_ms: u64,
) {
    let mut seen = None;
    while let Some(inner) = super::background::next_tick(&inner, &mut stop, interval_ms).await {
        if inner.changes.receiver_count() == 0 {
            continue;
        }
        match inner.store.chain_head().await {
            Ok(head) => {
                if seen.is_some_and(|seen| seen != head.batches_committed) {
                    notify(&inner.changes);
                }
                seen = Some(head.batches_committed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the chain head for change notices failed")
            }
        }
    }
}
