//! The live stream of an account.

use super::*;

impl AccountService {
    /// A live stream of an account: a snapshot first, then every posted entry after `cursor`
    /// (a cursor from an earlier event resumes exactly after it), and a fresh snapshot whenever
    /// the balance changes without an entry (holds, reservations). Ends when the receiver goes.
    ///
    /// It reads the account again only after the ledger committed something
    /// ([`crate::ledger::Changes`]), and at most once per `watch_poll_interval_ms`: an idle
    /// watch waits without reading or waking.
    pub async fn watch(
        &self,
        caller: &Caller,
        account: AccountId,
        cursor: &str,
    ) -> Result<mpsc::Receiver<Result<WatchEvent, AccountError>>, AccountError> {
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        let mut position = if cursor.is_empty() {
            None
        } else {
            Some(
                parse_position(cursor, '.')
                    .ok_or_else(|| AccountError::invalid("cursor", "malformed"))?,
            )
        };
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let service = self.clone();
        let poll = Duration::from_millis(self.inner.config.watch_poll_interval_ms.max(1));
        // Subscribed before the first read: a batch committed during any read wakes the next.
        let mut changes = self.inner.ledger.changes();
        tokio::spawn(async move {
            let mut last_balance = None;
            loop {
                match service
                    .poll_watch(&profile, &mut position, &mut last_balance, &tx)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = tx.closed() => return,
                }
                tokio::select! {
                    alive = changes.changed() => if !alive { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    /// One poll of a watch: the entries after `position` (each with the balance right after it)
    /// or, when there are none and the balance moved, a snapshot. `Ok(false)`: the receiver went.
    async fn poll_watch(
        &self,
        profile: &Profile,
        position: &mut Option<(u64, u32)>,
        last_balance: &mut Option<BalanceFingerprint>,
        tx: &mpsc::Sender<Result<WatchEvent, AccountError>>,
    ) -> Result<bool, AccountError> {
        if position.is_none() {
            // A fresh watch starts at the newest entry.
            *position = Some(self.latest_position(profile).await?);
        }
        let after = position.unwrap_or((0, 0));
        // Balance first, entries second: an entry committed in between shows up as an
        // entry (with its own running balance), never as a balance change without one.
        let balance = self.balance_of(profile).await?;
        let entries = self
            .entries_after(profile, after, 0, i64::MAX, WATCH_BATCH_MAX)
            .await?;
        let fingerprint_of = |b: &BalanceView| {
            (
                b.book.minor,
                b.held.minor,
                b.pending_in.minor,
                b.pending_out.minor,
            )
        };
        let mut fingerprint = fingerprint_of(&balance);
        let got_entries = !entries.is_empty();
        for entry in entries {
            *position = Some((entry.transaction.0, entry.index));
            // One poll may bring several entries: each event carries the balance right
            // after its own entry (book from the running balance; held and pending as
            // of the poll), not the balance after the last one.
            let mut after = balance.clone();
            let delta = entry.balance_after.minor - balance.book.minor;
            after.book = entry.balance_after;
            after.available = Money::new(
                after.available.currency,
                after.available.minor.saturating_add(delta).max(0),
            );
            after.as_of_ms = entry.posted_at_ms;
            fingerprint = fingerprint_of(&after);
            let event = WatchEvent {
                cursor: format!("{}.{}", entry.transaction, entry.index),
                kind: WatchEventKind::EntryPosted,
                balance: after,
                entry: Some(entry),
            };
            if tx.send(Ok(event)).await.is_err() {
                return Ok(false);
            }
        }
        if !got_entries && *last_balance != Some(fingerprint) {
            let (seq, idx) = position.unwrap_or((0, 0));
            let event = WatchEvent {
                cursor: format!("{seq}.{idx}"),
                kind: WatchEventKind::Snapshot,
                balance: balance.clone(),
                entry: None,
            };
            if tx.send(Ok(event)).await.is_err() {
                return Ok(false);
            }
        }
        *last_balance = Some(fingerprint);
        Ok(true)
    }
}

/// Events of [`AccountService::watch`].
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// Resume after this event by passing it back as the cursor.
    pub cursor: String,
    pub kind: WatchEventKind,
    pub balance: BalanceView,
    pub entry: Option<StatementEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventKind {
    Snapshot,
    EntryPosted,
}

/// Events buffered per watcher before the producer waits.
const WATCH_BUFFER: usize = 64;
/// Entries read per poll of a watch.
const WATCH_BATCH_MAX: u32 = 256;

/// Book, held, pending in and pending out: what a snapshot is sent on a change of.
type BalanceFingerprint = (i64, i64, i64, i64);
