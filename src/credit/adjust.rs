//! AdjustLimit, FreezeCreditLine and SetAutoRepay: the line document and its usage counter
//! change in one batch, so a drawdown in flight meets either the old line or the new one, never
//! a mix. A lower limit raises the usage, a higher one releases it; a freeze raises it by the
//! whole base (no drawdown fits), an unfreeze releases that again; auto-repay is the document
//! alone.

use super::{
    AdjustLimit, CreditError, CreditLine, CreditService, FreezeLine, LineStatus, LineView,
    REASON_CHARS_MAX, SetAutoRepay, UNCAPPED, guarded, keys, observe_line,
};
use crate::{
    account::Caller,
    ledger::{
        Command, CounterCheck, CounterRelease, DocumentWrite, Freshness, IdempotencyKey,
        LedgerError,
    },
    text::check_free_text,
};

/// How often a command whose line changed under it is rebuilt and resubmitted.
const CONFLICT_RETRIES_MAX: u32 = 8;

/// A change of a line: the new line and the usage moves that go with it.
struct LineChange {
    line: CreditLine,
    raise_minor: i64,
    release_minor: i64,
}

impl CreditService {
    pub async fn adjust_limit(
        &self,
        caller: &Caller,
        r: AdjustLimit,
    ) -> Result<LineView, CreditError> {
        self.check_limit(r.limit)?;
        let fingerprint = format!("adjust|{}|{}", r.line_id, r.limit.minor);
        let key = r.request_id.key(&caller.name);
        self.change_line(caller, key, &fingerprint, &r.line_id, |mut line| {
            let old = line.limit.minor;
            line.limit = r.limit;
            LineChange {
                line,
                raise_minor: (old - r.limit.minor).max(0),
                release_minor: (r.limit.minor - old).max(0),
            }
        })
        .await
    }

    pub async fn freeze_line(
        &self,
        caller: &Caller,
        r: FreezeLine,
    ) -> Result<LineView, CreditError> {
        check_free_text(&r.reason, false, REASON_CHARS_MAX).map_err(|refusal| {
            CreditError::Text {
                field: "reason",
                refusal,
            }
        })?;
        let fingerprint = format!("freeze|{}|{}|{}", r.line_id, r.frozen, r.reason);
        let key = r.request_id.key(&caller.name);
        self.change_line(caller, key, &fingerprint, &r.line_id, |mut line| {
            let was_frozen = line.status == LineStatus::Frozen;
            let base = line.base_minor;
            line.status = if r.frozen {
                LineStatus::Frozen
            } else {
                LineStatus::Active
            };
            line.freeze_reason = if r.frozen {
                r.reason.clone()
            } else {
                String::new()
            };
            LineChange {
                line,
                raise_minor: if r.frozen && !was_frozen { base } else { 0 },
                release_minor: if !r.frozen && was_frozen { base } else { 0 },
            }
        })
        .await
    }

    /// Switches auto-repay (自动还款) on or off: the line document alone, rebuilt over
    /// whatever changed the line first (an accrual, a repayment). The value it has already is
    /// a success that changes nothing but the version.
    pub async fn set_auto_repay(
        &self,
        caller: &Caller,
        r: SetAutoRepay,
    ) -> Result<LineView, CreditError> {
        let fingerprint = format!("auto_repay|{}|{}", r.line_id, r.enabled);
        let key = r.request_id.key(&caller.name);
        self.change_line(caller, key, &fingerprint, &r.line_id, |mut line| {
            line.auto_repay = r.enabled;
            LineChange {
                line,
                raise_minor: 0,
                release_minor: 0,
            }
        })
        .await
    }

    /// Reads the line, applies `change` and commits the new line with its usage moves,
    /// rebuilt when another request changed the line first.
    async fn change_line(
        &self,
        caller: &Caller,
        key: IdempotencyKey,
        fingerprint: &str,
        line_id: &str,
        change: impl Fn(CreditLine) -> LineChange,
    ) -> Result<LineView, CreditError> {
        for _ in 0..CONFLICT_RETRIES_MAX {
            let (line, version) = match self.line_in_scope(caller, line_id).await {
                Ok(found) => found,
                Err(e) => {
                    let answer = self.claim(key.clone(), fingerprint, e).await?;
                    let (line, _) = self.line_doc(line_id, Freshness::Current).await?;
                    return self.view_observed(line, answer.observed.as_ref());
                }
            };
            let c = change(line);
            let command = guarded(
                Command::NoOp,
                (c.raise_minor > 0)
                    .then(|| CounterCheck {
                        key: keys::usage(line_id),
                        amount_minor: c.raise_minor,
                        cap_minor: UNCAPPED,
                    })
                    .into_iter()
                    .collect(),
                (c.release_minor > 0)
                    .then(|| CounterRelease {
                        key: keys::usage(line_id),
                        amount_minor: c.release_minor,
                    })
                    .into_iter()
                    .collect(),
                vec![DocumentWrite::json(
                    super::KIND_LINE,
                    line_id,
                    version,
                    &c.line,
                )?],
            );
            let answer = self
                .ledger()
                .submit_observing(key.clone(), fingerprint, command, observe_line(&c.line))
                .await?;
            match answer.result {
                Ok(_) => return self.view_observed(c.line, answer.observed.as_ref()),
                Err(LedgerError::DocumentConflict { .. }) => {
                    self.ledger().forget_document(super::KIND_LINE, line_id);
                }
                Err(e) => return Err(CreditError::from_ledger(e)),
            }
        }
        Err(CreditError::Ledger(LedgerError::DocumentConflict {
            kind: super::KIND_LINE.to_owned(),
            id: line_id.to_owned(),
        }))
    }

    /// A line with its version, for a caller whose scope covers the line's account.
    pub(super) async fn line_in_scope(
        &self,
        caller: &Caller,
        line_id: &str,
    ) -> Result<(CreditLine, u64), CreditError> {
        let (line, version) = self.line_doc(line_id, Freshness::Checked).await?;
        self.inner
            .accounts
            .facts_in_scope(caller, line.account)
            .await?;
        Ok((line, version))
    }
}
