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

pub use command::{ApplyLimits, BatchItem, Command, Outcome, fingerprint};
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
    let mut state = BatchState::new(loaded, now_ms, limits);
    let results = items.iter().map(|item| state.apply(item)).collect();
    (results, state.into_writes())
}
