//! The end-of-day worker: each round plans the open dates (from the first date this database
//! ran, at most `eod.dates_open_max` back) and runs every step that is due, in order.

use std::time::Duration;

use time::Date;

use super::{
    EndOfDay, EodError, Planned, SYSTEM_SCOPE, StepRecord, StepState, format_date, records_of,
    steps::{lost_the_race, step_key},
};
use crate::ledger::{
    Command, DOCUMENTS_PER_COMMAND_MAX, DocumentWrite, IdempotencyKey, LedgerError,
};

/// The first date the run covers on this database: the business date of its first round.
const KIND_EOD_ORIGIN: &str = "eod_origin";
const ORIGIN_ID: &str = "origin";
/// Longest backoff after a step failed.
const BACKOFF_MS_MAX: i64 = 3_600_000;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EodRound {
    /// Steps that became final (done or skipped).
    pub finished: usize,
    /// Steps tried that wait for something or failed.
    pub unfinished: usize,
}

impl EndOfDay {
    /// Runs the worker until the ledger shuts down.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let run = self.clone();
        let interval = Duration::from_millis(self.inner.config.interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let now_ms = run.inner.ledger.now_ms();
                match run.run_due(now_ms).await {
                    Ok(_) => {}
                    Err(EodError::Ledger(LedgerError::ShuttingDown)) => return,
                    Err(e) => tracing::warn!(error = %e, "end-of-day round failed; retrying"),
                }
            }
        })
    }

    /// One round at `now_ms`: every open date planned, every due step run once.
    pub async fn run_due(&self, now_ms: i64) -> Result<EodRound, EodError> {
        let today = self.inner.accounts.calendar().date_at(now_ms);
        let origin = self.origin(today).await?;
        let open_days = i64::from(self.inner.config.dates_open_max);
        let mut date = origin.max(today - time::Duration::days(open_days));
        let mut round = EodRound::default();
        while date <= today {
            self.run_date(date, now_ms, &mut round).await?;
            match date.next_day() {
                Some(next) => date = next,
                None => break,
            }
        }
        Ok(round)
    }

    /// The step records of `date` as planned, each paired with its step (missing ones are
    /// written, pending).
    pub async fn planned(
        &self,
        date: Date,
        now_ms: i64,
    ) -> Result<Vec<(Planned, StepRecord)>, EodError> {
        let plan = self.plan(date);
        let mut records = records_of(&self.inner.ledger, date).await?;
        let missing: Vec<StepRecord> = plan
            .iter()
            .filter(|p| !records.iter().any(|r| r.id == p.step.record_id(date)))
            .map(|p| StepRecord {
                date: format_date(date),
                step: p.step.name(),
                state: StepState::Pending,
                due_at_ms: p.due_at_ms,
                attempts: 0,
                next_try_at_ms: 0,
                finished_at_ms: 0,
                detail: String::new(),
                version: 0,
                id: p.step.record_id(date),
            })
            .collect();
        if !missing.is_empty() {
            // A command writes at most DOCUMENTS_PER_COMMAND_MAX documents: one per chunk.
            for chunk in missing.chunks(DOCUMENTS_PER_COMMAND_MAX) {
                let writes = chunk
                    .iter()
                    .map(StepRecord::write)
                    .collect::<Result<Vec<_>, _>>()?;
                let key = IdempotencyKey::new(
                    SYSTEM_SCOPE,
                    format!("eod/{}/plan/{}/{now_ms}", format_date(date), chunk[0].id),
                );
                let command = Command::with_documents(Command::NoOp, writes);
                match self.inner.ledger.submit(key, command).await {
                    Ok(_) => {}
                    Err(e) if lost_the_race(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            records = records_of(&self.inner.ledger, date).await?;
        }
        Ok(plan
            .into_iter()
            .filter_map(|p| {
                let id = p.step.record_id(date);
                records.iter().find(|r| r.id == id).cloned().map(|r| (p, r))
            })
            .collect())
    }

    async fn run_date(
        &self,
        date: Date,
        now_ms: i64,
        round: &mut EodRound,
    ) -> Result<(), EodError> {
        for (planned, record) in self.planned(date, now_ms).await? {
            if record.state.is_final()
                || planned.due_at_ms > now_ms
                || record.next_try_at_ms > now_ms
            {
                continue;
            }
            let ran = self.run_step(planned.step, date).await?;
            let mut next = record.moved(ran.state, now_ms, ran.detail);
            if ran.state == StepState::Failed {
                let exponent = next.attempts.min(6);
                let backoff_ms = i64::try_from(self.inner.config.interval_ms)
                    .unwrap_or(BACKOFF_MS_MAX)
                    .saturating_mul(1 << exponent)
                    .min(BACKOFF_MS_MAX);
                next.next_try_at_ms = now_ms.saturating_add(backoff_ms);
                tracing::warn!(date = %next.date, step = %next.step, detail = %next.detail, "end-of-day step failed");
            }
            let mut documents = vec![next.write()?];
            documents.extend(ran.documents);
            let command = Command::with_documents(ran.command, documents);
            let key = step_key(planned.step, date, record.version);
            match self.inner.ledger.submit(key, command).await {
                Ok(_) => {
                    if next.state.is_final() {
                        round.finished += 1;
                        tracing::info!(date = %next.date, step = %next.step, detail = %next.detail, "end-of-day step done");
                    } else {
                        round.unfinished += 1;
                    }
                }
                // Another gateway ran it first: its record stands.
                Err(e) if lost_the_race(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The first date this database's run covers (written on the first round).
    async fn origin(&self, today: Date) -> Result<Date, EodError> {
        let ledger = &self.inner.ledger;
        if let Some(doc) = ledger.document(KIND_EOD_ORIGIN, ORIGIN_ID).await? {
            let text: String = serde_json::from_str(&doc.body)
                .map_err(|e| EodError::Corrupt(format!("eod origin does not decode: {e}")))?;
            return crate::yields::parse_date("eod origin", &text)
                .map_err(|e| EodError::Corrupt(format!("eod origin: {e}")));
        }
        let write = DocumentWrite::json(KIND_EOD_ORIGIN, ORIGIN_ID, 0, &format_date(today))?;
        let key = IdempotencyKey::new(SYSTEM_SCOPE, format!("eod/origin/{}", format_date(today)));
        match ledger
            .submit(key, Command::with_documents(Command::NoOp, vec![write]))
            .await
        {
            Ok(_) => Ok(today),
            // Another gateway wrote it first: read theirs.
            Err(e) if lost_the_race(&e) => Box::pin(self.origin(today)).await,
            Err(e) => Err(e.into()),
        }
    }
}
