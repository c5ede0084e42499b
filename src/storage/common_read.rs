// Read SQL (the ledger's read traits) shared by both back ends; `include!`d by `sqlite.rs` and `postgres.rs` after
// `common.rs`, in the same scope (see there).

async fn read_head(conn: &mut DbConn) -> Result<ChainHead, StorageError> {
    let row = sqlx::query(HEAD_SELECT).fetch_one(&mut *conn).await?;
    head_of(&row)
}

async fn read_account(
    conn: &mut DbConn,
    id: AccountId,
) -> Result<Option<(Account, Balance)>, StorageError> {
    let sql = format!("{ACCOUNT_SELECT} WHERE a.id = $1");
    let row = sqlx::query(&sql)
        .bind(to_i64(id.0))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(account_of).transpose()
}

async fn read_statement(
    conn: &mut DbConn,
    id: AccountId,
    after_seq: Option<u64>,
    limit: u32,
) -> Result<Vec<StatementLine>, StorageError> {
    let sql = format!(
        "{STATEMENT_SELECT} WHERE e.account_id = $1 AND e.seq > $2 ORDER BY e.seq, e.idx LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(to_i64(id.0))
        .bind(after_seq.map(to_i64).unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let mut lines = rows
        .iter()
        .map(statement_line_of)
        .collect::<Result<Vec<_>, _>>()?;
    if lines.len() == limit as usize
        && let Some(last) = lines.last().cloned()
    {
        // Complete the last transaction so that a page never splits one.
        let sql = format!(
            "{STATEMENT_SELECT} WHERE e.account_id = $1 AND e.seq = $2 AND e.idx > $3 \
             ORDER BY e.idx"
        );
        let rest = sqlx::query(&sql)
            .bind(to_i64(id.0))
            .bind(to_i64(last.transaction.0))
            .bind(i64::from(last.index))
            .fetch_all(&mut *conn)
            .await?;
        for row in &rest {
            lines.push(statement_line_of(row)?);
        }
    }
    Ok(lines)
}

async fn read_pending(conn: &mut DbConn, id: PendingId) -> Result<Option<Pending>, StorageError> {
    let rows = select_in_i64(conn, PENDING_SELECT, "p.id", &[to_i64(id.0)], "").await?;
    rows.first().map(pending_of).transpose()
}

async fn read_hold(conn: &mut DbConn, id: HoldId) -> Result<Option<Hold>, StorageError> {
    let rows = select_in_i64(conn, HOLD_SELECT, "h.id", &[to_i64(id.0)], "").await?;
    rows.first().map(hold_of).transpose()
}

async fn read_due_expiries(
    conn: &mut DbConn,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<ExpiryItem>, StorageError> {
    let rows = sqlx::query(
        "SELECT item_kind, item_id FROM expiry_queue WHERE expires_at_ms <= $1 \
         ORDER BY expires_at_ms, item_kind, item_id LIMIT $2",
    )
    .bind(now_ms)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("item_kind")?;
            let id = to_u64(row.try_get("item_id")?, "id")?;
            match kind.as_str() {
                "PENDING" => Ok(ExpiryItem::Pending(PendingId(id))),
                "HOLD" => Ok(ExpiryItem::Hold(HoldId(id))),
                _ => Err(corrupt("expiry kind")),
            }
        })
        .collect()
}

async fn delete_old_idempotency(
    conn: &mut DbConn,
    cutoff_ms: i64,
    limit: u32,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (scope, key) IN \
         (SELECT scope, key FROM idempotency_keys WHERE created_at_ms < $1 LIMIT $2)",
    )
    .bind(cutoff_ms)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

async fn read_transactions_page(
    conn: &mut DbConn,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<(TransactionRow, Vec<EntryRow>)>, StorageError> {
    let rows = sqlx::query(
        "SELECT seq, kind, reverses, metadata, created_at_ms, prev_hash, hash \
         FROM journal_transactions WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(to_i64(after_seq))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let Some(last) = rows.last() else {
        return Ok(Vec::new());
    };
    let last_seq: i64 = last.try_get("seq")?;
    let entry_rows = sqlx::query(
        "SELECT seq, idx, account_id, side, currency, amount_minor, balance_after_minor \
         FROM journal_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq, idx",
    )
    .bind(to_i64(after_seq))
    .bind(last_seq)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_seq: std::collections::BTreeMap<u64, Vec<EntryRow>> = Default::default();
    for row in &entry_rows {
        let e = entry_row_of(row)?;
        by_seq.entry(e.seq).or_default().push(e);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq = to_u64(row.try_get("seq")?, "seq")?;
        let kind: String = row.try_get("kind")?;
        let reverses: Option<i64> = row.try_get("reverses")?;
        let entries = by_seq.remove(&seq).unwrap_or_default();
        let posted = Posted {
            id: TransactionId(seq),
            kind: TransactionKind::from_db(&kind).ok_or_else(|| corrupt("kind"))?,
            entries: entries.iter().map(|e| e.entry.clone()).collect(),
            reverses: reverses
                .map(|r| to_u64(r, "seq"))
                .transpose()?
                .map(TransactionId),
            metadata: metadata_of(&row.try_get::<String, _>("metadata")?)?,
            created_at_ms: row.try_get("created_at_ms")?,
            hash: row.try_get("hash")?,
        };
        out.push((
            TransactionRow {
                posted,
                prev_hash: row.try_get("prev_hash")?,
            },
            entries,
        ));
    }
    Ok(out)
}

async fn read_accounts_page(
    conn: &mut DbConn,
    after_id: u64,
    limit: u32,
) -> Result<Vec<(Account, Balance)>, StorageError> {
    let sql = format!("{ACCOUNT_SELECT} WHERE a.id > $1 ORDER BY a.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(to_i64(after_id))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(account_of).collect()
}

async fn read_open_pendings_page(
    conn: &mut DbConn,
    after_id: u64,
    limit: u32,
) -> Result<Vec<Pending>, StorageError> {
    let sql =
        format!("{PENDING_SELECT} WHERE r.pending_id IS NULL AND p.id > $1 ORDER BY p.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(to_i64(after_id))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(pending_of).collect()
}

async fn read_open_holds_page(
    conn: &mut DbConn,
    after_id: u64,
    limit: u32,
) -> Result<Vec<Hold>, StorageError> {
    let sql = format!("{HOLD_SELECT} WHERE r.hold_id IS NULL AND h.id > $1 ORDER BY h.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(to_i64(after_id))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(hold_of).collect()
}

/// The [`LedgerReads`](crate::ledger::store::LedgerReads) of this back end: each read on a pooled connection.
macro_rules! impl_ledger_reads {
    ($storage:ty) => {
        #[async_trait]
        impl crate::ledger::store::LedgerReads for $storage {
            async fn account(&self, id: AccountId) -> Result<Option<(Account, Balance)>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_account(&mut conn, id).await;
                self.settled(&mut conn, result)
            }

            async fn idempotency(
                &self,
                key: &crate::ledger::model::IdempotencyKey,
            ) -> Result<Option<StoredIdempotency>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_idempotency(&mut conn, key).await;
                self.settled(&mut conn, result)
            }

            async fn statement(
                &self,
                id: AccountId,
                after_seq: Option<u64>,
                limit: u32,
            ) -> Result<Vec<StatementLine>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_statement(&mut conn, id, after_seq, limit).await;
                self.settled(&mut conn, result)
            }

            async fn pending(&self, id: PendingId) -> Result<Option<Pending>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_pending(&mut conn, id).await;
                self.settled(&mut conn, result)
            }

            async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_hold(&mut conn, id).await;
                self.settled(&mut conn, result)
            }

            async fn due_expiries(&self, now_ms: i64, limit: u32) -> Result<Vec<ExpiryItem>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_due_expiries(&mut conn, now_ms, limit).await;
                self.settled(&mut conn, result)
            }

            async fn idempotency_keys_count(&self) -> Result<u64, StorageError> {
                let mut conn = self.acquire().await?;
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn purge_idempotency(&self, cutoff_ms: i64, limit: u32) -> Result<u64, StorageError> {
                let mut conn = self.acquire().await?;
                let result = delete_old_idempotency(&mut conn, cutoff_ms, limit).await;
                self.settled(&mut conn, result)
            }

            async fn chain_head(&self) -> Result<ChainHead, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_head(&mut conn).await;
                self.settled(&mut conn, result)
            }

            async fn transactions_page(
                &self,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<(TransactionRow, Vec<EntryRow>)>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_transactions_page(&mut conn, after_seq, limit).await;
                self.settled(&mut conn, result)
            }

            async fn accounts_page(
                &self,
                after_id: u64,
                limit: u32,
            ) -> Result<Vec<(Account, Balance)>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_accounts_page(&mut conn, after_id, limit).await;
                self.settled(&mut conn, result)
            }

            async fn open_pendings_page(
                &self,
                after_id: u64,
                limit: u32,
            ) -> Result<Vec<Pending>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_open_pendings_page(&mut conn, after_id, limit).await;
                self.settled(&mut conn, result)
            }

            async fn open_holds_page(&self, after_id: u64, limit: u32) -> Result<Vec<Hold>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_open_holds_page(&mut conn, after_id, limit).await;
                self.settled(&mut conn, result)
            }

            async fn audit_page(
                &self,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<crate::ledger::audit::AuditRow>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_audit_page(&mut conn, after_seq, limit).await
            }
        }
    };
}
