//! SubscribeEvents: the merchant's outbox, read again after each ledger commit.

use super::*;
use crate::ledger::StoredEvent;

impl CashierService {
    /// Streams the merchant's events (and its sub-merchants', when asked) strictly after
    /// `cursor`, reading the outbox again after the ledger committed something (at most once per
    /// `events_poll_interval_ms`; an idle subscription neither reads nor wakes). Ends when the
    /// receiver goes.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        merchant_id: &str,
        include_sub_merchants: bool,
        cursor: &str,
    ) -> Result<mpsc::Receiver<Result<DeliveredEvent, CashierError>>, CashierError> {
        let (merchant, _) = self.merchant_doc(merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        let position = parse_cursor(cursor)?;
        let streams = self.streams_of(&merchant, include_sub_merchants).await?;
        let (tx, rx) = mpsc::channel(EVENTS_BUFFER);
        let poll = Duration::from_millis(self.inner.config.events_poll_interval_ms.max(1));
        tokio::spawn(pump_events(
            self.inner.ledger.clone(),
            streams,
            position,
            poll,
            tx,
        ));
        Ok(rx)
    }

    /// The outbox streams a subscription follows: the merchant's, and its sub-merchants'.
    async fn streams_of(
        &self,
        merchant: &Merchant,
        include_sub_merchants: bool,
    ) -> Result<Vec<String>, CashierError> {
        let mut streams = vec![merchant.merchant_id.clone()];
        if include_sub_merchants {
            if merchant.merchant_type != MerchantType::ServiceProvider {
                return Err(CashierError::invalid(
                    "include_sub_merchants",
                    "only a service provider has sub-merchants",
                ));
            }
            if let Some((subs, _)) = self
                .load::<Vec<String>>(KIND_SUB_MERCHANTS, &merchant.merchant_id)
                .await?
            {
                streams.extend(subs);
            }
        }
        Ok(streams)
    }
}

/// A cursor is the outbox sequence of the last event seen; empty is the beginning.
fn parse_cursor(cursor: &str) -> Result<u64, CashierError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    if cursor.len() <= 20 && cursor.bytes().all(|b| b.is_ascii_digit()) {
        return cursor
            .parse()
            .map_err(|_| CashierError::invalid("cursor", "malformed"));
    }
    Err(CashierError::invalid("cursor", "malformed"))
}

/// Reads the outbox after `position` and sends each event, then waits for a ledger change
/// (and at least `poll`), until the receiver goes or a read fails (the failure is sent, then
/// the stream ends).
async fn pump_events(
    ledger: Ledger,
    streams: Vec<String>,
    mut position: u64,
    poll: Duration,
    tx: mpsc::Sender<Result<DeliveredEvent, CashierError>>,
) {
    // Subscribed before the first read: a batch committed during any read wakes the next.
    let mut changes = ledger.changes();
    loop {
        let events = match ledger
            .outbox_after(&streams, position, EVENTS_BATCH_MAX)
            .await
        {
            Ok(events) => events,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        for stored in events {
            position = stored.seq;
            let delivered = decode_event(stored);
            let failed = delivered.is_err();
            if tx.send(delivered).await.is_err() || failed {
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
}

/// An outbox event as a subscriber receives it, linked to its posting.
fn decode_event(stored: StoredEvent) -> Result<DeliveredEvent, CashierError> {
    let mut event = serde_json::from_str::<Event>(&stored.body).map_err(|e| {
        tracing::error!(seq = stored.seq, error = %e, "unreadable outbox event");
        CashierError::corrupt("event", stored.seq.to_string())
    })?;
    event.link_transaction(stored.transaction);
    Ok(DeliveredEvent {
        cursor: stored.seq.to_string(),
        event,
    })
}
