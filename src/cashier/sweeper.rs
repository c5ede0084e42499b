//! The order expiry sweeper: unpaid orders past their expiry are closed (EXPIRED).

use super::*;

impl CashierService {
    /// Runs the expiry sweeper until the ledger shuts down: every interval, unpaid orders past
    /// their expiry are closed (reason EXPIRED) with an ORDER_CLOSED event, in the same batch.
    pub fn spawn_expiry_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let interval =
            std::time::Duration::from_millis(self.inner.config.expiry_sweep_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match service.sweep_expired_orders(service.now_ms()).await {
                    Ok(_) => {}
                    Err(CashierError::Ledger(LedgerError::ShuttingDown)) => return,
                    Err(e) => tracing::warn!(error = %e, "order expiry sweep failed; retrying"),
                }
            }
        })
    }

    /// Closes unpaid orders whose expiry is at or before `now_ms`, oldest first, at most
    /// `EXPIRY_SWEEP_BATCH_MAX` per call; returns how many queue entries it dealt with. Each
    /// close checks the order's version, so an order paid meanwhile is left paid. Safe to run in
    /// several processes: the progress document is versioned too.
    pub async fn sweep_expired_orders(&self, now_ms: i64) -> Result<usize, CashierError> {
        let (cursor, mut cursor_version) = self
            .load::<String>(KIND_SWEEP, SWEEP_ORDER_EXPIRY)
            .await?
            .unwrap_or_default();
        let due = self
            .inner
            .ledger
            .documents_after(KIND_ORDER_EXPIRY, &cursor, EXPIRY_SWEEP_BATCH_MAX)
            .await?;
        let mut done = 0;
        for entry in due {
            let Some((expires_at_ms, order_id)) = parse_expiry_key(&entry.id) else {
                tracing::error!(id = %entry.id, "malformed order expiry entry; skipped");
                continue;
            };
            if expires_at_ms > now_ms {
                break;
            }
            let mut documents = vec![write_doc(
                KIND_SWEEP,
                SWEEP_ORDER_EXPIRY,
                cursor_version,
                &entry.id,
            )?];
            let mut events = Vec::new();
            let (stored, version) = self.order_doc(order_id).await?;
            if stored.status == OrderStatus::Created {
                let mut order = stored.as_of(expires_at_ms);
                order.event_sequence += 1;
                events.push(event_of(&order, EventType::OrderClosed, None, now_ms)?);
                documents.push(write_doc(KIND_ORDER, order_id, version, &order)?);
            }
            let command = guarded(Command::NoOp, Vec::new(), documents, events);
            let key = IdempotencyKey::new(SYSTEM_CALLER, format!("expire/{}", entry.id));
            match self
                .submit(key, fingerprint("Expire", &entry.id), command, &[])
                .await
            {
                Ok(_) => {}
                // Paid, closed or swept by someone else meanwhile: the next round looks again.
                Err(e)
                    if matches!(
                        self.conflict_is(e.clone(), "order"),
                        CashierError::Conflict { .. }
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
            cursor_version += 1;
            done += 1;
        }
        debug_assert!(done <= EXPIRY_SWEEP_BATCH_MAX as usize);
        Ok(done)
    }
}
