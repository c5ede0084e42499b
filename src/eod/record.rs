//! The record of one step of one date: where it stands, written with what the step does.

use serde::{Deserialize, Serialize};

use super::EodError;
use crate::ledger::{DocumentWrite, StoredDocument};

/// Most characters of a record's detail (a summary or the last error).
pub const DETAIL_LEN_MAX: usize = 500;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    /// Planned, not yet due or not yet tried.
    Pending,
    /// Tried; something it needs is not there yet (a rate, a file, an unsettled call).
    Waiting,
    /// Tried and failed; tried again after a backoff.
    Failed,
    Done,
    /// Nothing to do on this date (not a business date).
    Skipped,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "PENDING",
            StepState::Waiting => "WAITING",
            StepState::Failed => "FAILED",
            StepState::Done => "DONE",
            StepState::Skipped => "SKIPPED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, StepState::Done | StepState::Skipped)
    }
}

/// A step's record (`eod_step`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The business date, `YYYY-MM-DD`.
    pub date: String,
    pub step: String,
    pub state: StepState,
    pub due_at_ms: i64,
    pub attempts: u32,
    /// Not tried again before this instant.
    pub next_try_at_ms: i64,
    /// When it became final (0 while it is not).
    pub finished_at_ms: i64,
    /// A summary of what it did, or why it waits or failed.
    pub detail: String,
    /// The record's version (not stored: the document's own).
    #[serde(skip)]
    pub version: u64,
    /// The record's document id (not stored).
    #[serde(skip)]
    pub id: String,
}

impl StepRecord {
    /// The record's next version, as a document write.
    pub fn write(&self) -> Result<DocumentWrite, EodError> {
        DocumentWrite::json(super::KIND_EOD_STEP, &self.id, self.version, self)
            .map_err(|e| EodError::Corrupt(format!("eod step {}: {e}", self.id)))
    }

    /// This record moved to `state` at `now_ms` with `detail`.
    pub fn moved(&self, state: StepState, now_ms: i64, detail: String) -> StepRecord {
        let mut next = self.clone();
        next.state = state;
        next.attempts = next.attempts.saturating_add(1);
        next.detail = bounded(detail);
        if state.is_final() {
            next.finished_at_ms = now_ms;
        }
        next
    }
}

pub(super) fn decode(doc: &StoredDocument) -> Result<StepRecord, EodError> {
    let mut record: StepRecord = serde_json::from_str(&doc.body)
        .map_err(|e| EodError::Corrupt(format!("eod step {} does not decode: {e}", doc.id)))?;
    record.version = doc.version;
    record.id.clone_from(&doc.id);
    Ok(record)
}

fn bounded(mut text: String) -> String {
    if text.chars().count() > DETAIL_LEN_MAX {
        text = text.chars().take(DETAIL_LEN_MAX - 1).collect();
        text.push('…');
    }
    text
}
