//! Pure, in-memory application of a batch of commands to the state a batch loaded: no I/O, so
//! every rule is unit-testable without a database.
//!
//! Each command runs against a scratch overlay of the batch state and sees every earlier
//! command's effects; if it fails, its overlay is dropped (nothing of it is written) and the
//! next command goes on. Its outcome, success or domain failure, is recorded under its
//! idempotency key in the same database transaction.

mod accounts;
mod command;
mod guarded;
mod holds;
mod needs;
mod pendings;
mod postings;
mod scratch;
mod state;
#[cfg(test)]
mod tests;

pub use command::{
    Answer, ApplyLimits, BatchItem, Command, OBSERVED_ACCOUNTS_MAX, OBSERVED_COUNTERS_MAX,
    OBSERVED_KINDS_MAX, Observe, Observed, Outcome, REFUSAL_BODY_LEN_MAX, Refusal, fingerprint,
};
pub use needs::needs_of;
pub use state::BatchState;
pub(crate) use state::StoredOutcome;

use crate::ledger::error::LedgerError;
use crate::ledger::store::{BatchWrites, LoadedBatch};

/// Applies a whole batch: answers in command order, and the writes.
pub fn apply_batch(
    loaded: LoadedBatch,
    items: &[&BatchItem],
    now_ms: i64,
    limits: ApplyLimits,
) -> (Vec<Result<Outcome, LedgerError>>, BatchWrites) {
    let (answers, writes) = apply_batch_observed(loaded, items, now_ms, limits);
    (answers.into_iter().map(|a| a.result).collect(), writes)
}

/// [`apply_batch`], with what each request observed.
pub fn apply_batch_observed(
    loaded: LoadedBatch,
    items: &[&BatchItem],
    now_ms: i64,
    limits: ApplyLimits,
) -> (Vec<Answer>, BatchWrites) {
    let mut state = BatchState::new(loaded, now_ms, limits);
    let answers = items
        .iter()
        .map(|item| state.apply_observed(item))
        .collect();
    (answers, state.into_writes())
}
