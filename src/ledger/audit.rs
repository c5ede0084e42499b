//! The audit log (审计日志): one record per stored answer of a mutating request — who called
//! (the idempotency scope), which method, the request id, the outcome (`OK` or the stable
//! refusal reason) and the journal transaction it posted, if any — appended by the batch that
//! decided it, in the same database transaction. Records are hash-chained like the journal:
//! `hash = SHA-256(prev_hash ‖ canonical record)`, the first chaining from 32 zero bytes, and
//! the chain head's `audit_seq`/`audit_hash` hold the last one, so an edit, a deletion, a
//! reordering or a truncation of the log is found by [`verify_audit`].
//!
//! What is not recorded, on purpose: replays answered from the idempotency store (not new
//! effects; the first answer's record stands), and refusals that store nothing
//! (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, `UNAUTHENTICATED`, transient failures): those go to
//! the front door's refusal log and its per-method call metrics, never to the database, so a
//! stream of garbage requests cannot become a stream of writes. No request body is recorded:
//! the record's text fields are the caller's name, the method, the request id and a stable
//! reason, each bounded.

use std::{fmt, sync::Arc};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    apply::{Command, Outcome},
    error::LedgerError,
    hash::{GENESIS_HASH, hash_to_hex},
    model::IdempotencyKey,
    store::{LedgerStore, SCAN_PAGE_ROWS_MAX, StorageError},
};

/// Longest method name kept in a record (bytes); longer ones are cut at a character boundary.
pub const AUDIT_METHOD_LEN_MAX: usize = 128;
/// Longest outcome kept in a record (bytes).
pub const AUDIT_OUTCOME_LEN_MAX: usize = 64;
/// The outcome of an accepted request.
pub const AUDIT_OK: &str = "OK";

const DOMAIN: &[u8] = b"paygate.audit.record.v1\0";

tokio::task_local! {
    /// The gRPC method of the call this task serves, set by the front door around the handler.
    static CALL_METHOD: Arc<str>;
}

/// Runs `call` with `method` as the method its ledger submissions are audited under.
pub async fn in_call<F: std::future::Future>(method: Arc<str>, call: F) -> F::Output {
    CALL_METHOD.scope(method, call).await
}

/// The method a submission made now is audited under: the call's gRPC method, or, outside a
/// call (the sweepers, the yield jobs, the CLI), the command's name under `internal/`.
pub(crate) fn method_of(command: &Command) -> Arc<str> {
    CALL_METHOD
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(format!("internal/{}", command_name(command))))
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::CreateAccount(_) => "CreateAccount",
        Command::Post(_) => "Post",
        Command::PostLinked { .. } => "PostLinked",
        Command::CreatePending(_) => "CreatePending",
        Command::PostPending { .. } => "PostPending",
        Command::VoidPending { .. } => "VoidPending",
        Command::PlaceHold(_) => "PlaceHold",
        Command::ReleaseHold { .. } => "ReleaseHold",
        Command::CaptureHold { .. } => "CaptureHold",
        Command::Reverse { .. } => "Reverse",
        Command::SetAccountStatus { .. } => "SetAccountStatus",
        Command::ChangeFreeze { .. } => "ChangeFreeze",
        Command::ExpirePending { .. } => "ExpirePending",
        Command::ExpireHold { .. } => "ExpireHold",
        Command::Guarded { inner, .. } => command_name(inner),
        Command::NoOp => "NoOp",
        Command::Refuse(_) => "Refuse",
    }
}

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub seq: u64,
    pub at_ms: i64,
    /// The idempotency scope: the caller's configured name (or the system's, for jobs).
    pub caller: String,
    pub method: String,
    /// The idempotency key: the caller's request id (`id#step` for a later step of it).
    pub request_id: String,
    /// `OK`, or the stable reason of the stored refusal.
    pub outcome: String,
    /// The journal transaction the request posted (the first, for a linked set).
    pub transaction: Option<u64>,
    /// Hex SHA-256 of the previous record (zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of `prev_hash ‖ this record`.
    pub hash: String,
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

/// The hash of `row` chained from `prev` (the row's own `prev_hash` and `hash` are not read).
/// The sequence is not hashed: a record's place is its place in the chain, so records swapped
/// (contents or sequence numbers) read as a record that does not chain from the one before it,
/// and a record edited as one that does not hash to its stored hash.
pub fn audit_hash(prev: &[u8; 32], row: &AuditRow) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(DOMAIN);
    h.update(row.at_ms.to_be_bytes());
    put_str(&mut h, &row.caller);
    put_str(&mut h, &row.method);
    put_str(&mut h, &row.request_id);
    put_str(&mut h, &row.outcome);
    match row.transaction {
        Some(t) => {
            h.update([1]);
            h.update(t.to_be_bytes());
        }
        None => h.update([0]),
    }
    h.finalize().into()
}

fn bounded(text: &str, len_max: usize) -> String {
    let mut end = text.len().min(len_max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The outcome text of a stored answer.
pub(crate) fn outcome_text(result: &Result<Outcome, LedgerError>) -> String {
    match result {
        Ok(_) => AUDIT_OK.to_owned(),
        Err(LedgerError::Refused { refusal }) => bounded(&refusal.reason, AUDIT_OUTCOME_LEN_MAX),
        Err(e) => e.reason().to_owned(),
    }
}

/// The journal transaction of a stored answer, if it posted one.
fn transaction_of(result: &Result<Outcome, LedgerError>) -> Option<u64> {
    match result {
        Ok(Outcome::Posted(p)) => Some(p.id.0),
        Ok(Outcome::Linked(all)) => all.first().map(|p| p.id.0),
        Ok(Outcome::Pending(p)) => p.transaction.map(|t| t.0),
        Ok(Outcome::Hold(h)) => h.transaction.map(|t| t.0),
        Ok(Outcome::Account(_) | Outcome::Nothing) | Err(_) => None,
    }
}

/// The next record of the chain whose last record is (`last_seq`, `last_hash`).
pub(crate) fn next_record(
    last: (u64, [u8; 32]),
    key: &IdempotencyKey,
    method: &str,
    result: &Result<Outcome, LedgerError>,
    at_ms: i64,
) -> (AuditRow, [u8; 32]) {
    let (last_seq, last_hash) = last;
    let mut row = AuditRow {
        seq: last_seq + 1,
        at_ms,
        caller: key.scope.clone(),
        method: bounded(method, AUDIT_METHOD_LEN_MAX),
        request_id: key.key.clone(),
        outcome: outcome_text(result),
        transaction: transaction_of(result),
        prev_hash: hash_to_hex(&last_hash),
        hash: String::new(),
    };
    let hash = audit_hash(&last_hash, &row);
    row.hash = hash_to_hex(&hash);
    (row, hash)
}

/// What is wrong at a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditBreak {
    /// The record's content does not hash to its stored hash.
    Edited,
    /// A sequence number is skipped.
    Missing,
    /// A record does not chain from the one before it (records swapped or replaced).
    Reordered,
    /// The log ends before the chain head's last record.
    Truncated,
    /// The log goes on past the chain head's last record, or ends on another hash.
    HeadMismatch,
}

impl AuditBreak {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditBreak::Edited => "edited",
            AuditBreak::Missing => "missing",
            AuditBreak::Reordered => "reordered",
            AuditBreak::Truncated => "truncated",
            AuditBreak::HeadMismatch => "head mismatch",
        }
    }
}

/// What [`verify_audit`] found.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    pub records: u64,
    /// The chain head's last audit sequence.
    pub head_seq: u64,
    /// The first break: its sequence, what is wrong, and a sentence for the operator.
    pub first_break: Option<(u64, AuditBreak, String)>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.first_break.is_none()
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_break {
            None => write!(
                f,
                "audit verify: {} records, head at {}\nOK: audit chain intact",
                self.records, self.head_seq
            ),
            Some((seq, what, detail)) => write!(
                f,
                "audit verify: {} records read, head at {}\nBROKEN at seq {seq}: {} ({detail})",
                self.records,
                self.head_seq,
                what.as_str()
            ),
        }
    }
}

/// Recomputes the audit chain page by page (bounded memory) against the chain head as read
/// first; stops at the first break. Records a running gateway commits meanwhile (past that
/// head) are left for the next run, so it may run beside a live gateway; a record past the head
/// as read again at the end was never committed by a batch.
pub async fn verify_audit(store: &dyn LedgerStore) -> Result<AuditReport, StorageError> {
    let head = store.chain_head().await?;
    let mut report = AuditReport {
        head_seq: head.audit_seq,
        ..AuditReport::default()
    };
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH;
    let mut after = 0u64;
    'pages: loop {
        let page = store.audit_page(after, SCAN_PAGE_ROWS_MAX).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            if row.seq > head.audit_seq {
                break 'pages;
            }
            if let Some(found) = check_row(row, expected_seq, &prev) {
                report.first_break = Some(found);
                return Ok(report);
            }
            report.records += 1;
            expected_seq = row.seq + 1;
            prev = super::hash::hash_from_hex(&row.hash)?;
        }
    }
    let last_seq = expected_seq - 1;
    if last_seq < head.audit_seq {
        report.first_break = Some((
            expected_seq,
            AuditBreak::Truncated,
            format!(
                "the log ends at {last_seq}, the chain head's last record is {}",
                head.audit_seq
            ),
        ));
    } else if prev != head.audit_hash {
        report.first_break = Some((
            last_seq,
            AuditBreak::HeadMismatch,
            "the last record's hash is not the chain head's".to_owned(),
        ));
    } else if let Some(past) = store.audit_page(head.audit_seq, 1).await?.first() {
        let now = store.chain_head().await?;
        if past.seq > now.audit_seq {
            report.first_break = Some((
                past.seq,
                AuditBreak::HeadMismatch,
                format!(
                    "a record past the chain head's last record {}",
                    now.audit_seq
                ),
            ));
        }
    }
    Ok(report)
}

fn check_row(
    row: &AuditRow,
    expected_seq: u64,
    prev: &[u8; 32],
) -> Option<(u64, AuditBreak, String)> {
    if row.seq != expected_seq {
        return Some((
            expected_seq,
            AuditBreak::Missing,
            format!("the next record found is {}", row.seq),
        ));
    }
    let Ok(stored_prev) = super::hash::hash_from_hex(&row.prev_hash) else {
        return Some((
            row.seq,
            AuditBreak::Edited,
            "prev_hash is not a hash".to_owned(),
        ));
    };
    if hash_to_hex(&audit_hash(&stored_prev, row)) != row.hash {
        return Some((
            row.seq,
            AuditBreak::Edited,
            "the record does not hash to its stored hash".to_owned(),
        ));
    }
    if stored_prev != *prev {
        return Some((
            row.seq,
            AuditBreak::Reordered,
            "the record does not chain from the record before it".to_owned(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IdempotencyKey {
        IdempotencyKey::new("shop", "r-1")
    }

    #[test]
    fn any_change_of_a_record_changes_its_hash() {
        let (row, hash) = next_record((0, GENESIS_HASH), &key(), "m", &Ok(Outcome::Nothing), 5);
        let mut other = row.clone();
        other.outcome = "INSUFFICIENT_FUNDS".to_owned();
        assert_ne!(audit_hash(&GENESIS_HASH, &other), hash);
        let mut later = row.clone();
        later.at_ms = 6;
        assert_ne!(audit_hash(&GENESIS_HASH, &later), hash);
        assert_eq!(audit_hash(&GENESIS_HASH, &row), hash);
    }

    #[test]
    fn a_long_method_is_cut_at_a_character_boundary() {
        let long = "é".repeat(AUDIT_METHOD_LEN_MAX);
        let (row, _) = next_record((0, GENESIS_HASH), &key(), &long, &Ok(Outcome::Nothing), 5);
        assert!(row.method.len() <= AUDIT_METHOD_LEN_MAX);
        assert!(row.method.chars().all(|c| c == 'é'));
    }
}
