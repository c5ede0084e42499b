// Profile SQL shared by both back ends; `include!`d by `sqlite.rs` and `postgres.rs` after
// `common.rs`, compiled once per back end with its concrete sqlx types.

const PROFILE_COLUMNS: &str = "account_id, kind, currency, owner_id, display_name, parent_id, \
     person_key, card_token, card_first_six, card_last_four, agreement_id, internal_purpose, \
     opened_by, freeze_reason, opened_at_ms, closed_at_ms";

fn profile_of(row: &DbRow) -> Result<crate::ledger::store::ProfileRow, StorageError> {
    let parent: Option<i64> = row.try_get("parent_id")?;
    Ok(crate::ledger::store::ProfileRow {
        account_id: to_u64(row.try_get("account_id")?, "account id")?,
        kind: row.try_get("kind")?,
        currency: row.try_get("currency")?,
        owner_id: row.try_get("owner_id")?,
        display_name: row.try_get("display_name")?,
        parent_id: parent.map(|p| to_u64(p, "parent id")).transpose()?,
        person_key: row.try_get("person_key")?,
        card_token: row.try_get("card_token")?,
        card_first_six: row.try_get("card_first_six")?,
        card_last_four: row.try_get("card_last_four")?,
        agreement_id: row.try_get("agreement_id")?,
        internal_purpose: row.try_get("internal_purpose")?,
        opened_by: row.try_get("opened_by")?,
        freeze_reason: row.try_get("freeze_reason")?,
        opened_at_ms: row.try_get("opened_at_ms")?,
        closed_at_ms: row.try_get("closed_at_ms")?,
    })
}

async fn read_profile(
    conn: &mut DbConn,
    account_id: u64,
) -> Result<Option<crate::ledger::store::ProfileRow>, StorageError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM account_profiles WHERE account_id = $1");
    let row = sqlx::query(&sql)
        .bind(to_i64(account_id))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(profile_of).transpose()
}

/// Profiles of accounts the batch created, and changes of existing ones, as statements of the
/// batch's transaction: a profile commits with its account or not at all. The rows' texts are
/// moved into the statement, not copied (the batch is done with them).
fn push_profile_writes(stmts: &mut Statements, w: &mut BatchWrites) {
    for chunk in w.profiles.chunks_mut(BIND_PARAMS_MAX / 16) {
        let qb = stmts.start(format!("INSERT INTO account_profiles ({PROFILE_COLUMNS}) "));
        qb.push_values(chunk, |mut b, p: &mut ProfileRow| {
            b.push_bind(to_i64(p.account_id))
                .push_bind(std::mem::take(&mut p.kind))
                .push_bind(std::mem::take(&mut p.currency))
                .push_bind(std::mem::take(&mut p.owner_id))
                .push_bind(std::mem::take(&mut p.display_name))
                .push_bind(p.parent_id.map(to_i64))
                .push_bind(std::mem::take(&mut p.person_key))
                .push_bind(std::mem::take(&mut p.card_token))
                .push_bind(std::mem::take(&mut p.card_first_six))
                .push_bind(std::mem::take(&mut p.card_last_four))
                .push_bind(std::mem::take(&mut p.agreement_id))
                .push_bind(std::mem::take(&mut p.internal_purpose))
                .push_bind(std::mem::take(&mut p.opened_by))
                .push_bind(std::mem::take(&mut p.freeze_reason))
                .push_bind(p.opened_at_ms)
                .push_bind(p.closed_at_ms);
        });
    }
    for change in &w.profile_changes {
        match change {
            ProfileChange::FreezeReason { account_id, reason } => {
                let qb = stmts.start("UPDATE account_profiles SET freeze_reason = ");
                qb.push_bind(reason.clone())
                    .push(" WHERE account_id = ")
                    .push_bind(to_i64(*account_id));
            }
            ProfileChange::Closed { account_id, at_ms } => {
                let qb = stmts.start("UPDATE account_profiles SET closed_at_ms = ");
                qb.push_bind(*at_ms)
                    .push(" WHERE account_id = ")
                    .push_bind(to_i64(*account_id))
                    .push(" AND closed_at_ms IS NULL");
            }
        }
    }
}

async fn read_profiles(
    conn: &mut DbConn,
    q: &crate::ledger::store::ProfileQuery,
) -> Result<Vec<crate::ledger::store::ProfileRow>, StorageError> {
    let limit = q.limit.min(crate::ledger::store::PROFILE_PAGE_MAX);
    let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(format!(
        "SELECT {PROFILE_COLUMNS} FROM account_profiles WHERE "
    ));
    match &q.filter {
        crate::ledger::store::ProfileFilter::Owner(owner) => {
            qb.push("owner_id = ").push_bind(owner.clone());
        }
        crate::ledger::store::ProfileFilter::Parent(parent) => {
            qb.push("parent_id = ").push_bind(to_i64(*parent));
        }
    }
    if let Some(kind) = &q.kind {
        qb.push(" AND kind = ").push_bind(kind.clone());
    }
    if !q.include_closed {
        qb.push(" AND closed_at_ms IS NULL");
    }
    qb.push(" AND account_id > ")
        .push_bind(to_i64(q.after_id))
        .push(" ORDER BY account_id LIMIT ")
        .push_bind(i64::from(limit));
    let rows = built(&mut qb).fetch_all(&mut *conn).await?;
    rows.iter().map(profile_of).collect()
}

async fn read_statement_page(
    conn: &mut DbConn,
    q: &crate::ledger::store::StatementQuery,
) -> Result<Vec<crate::ledger::store::StatementRow>, StorageError> {
    let limit = q.limit.min(crate::ledger::model::STATEMENT_PAGE_MAX);
    let rows = sqlx::query(
        "SELECT e.seq, e.idx, e.side, e.currency, e.amount_minor, e.balance_after_minor, \
         t.kind, t.reverses, t.metadata, t.created_at_ms \
         FROM journal_entries e JOIN journal_transactions t ON t.seq = e.seq \
         WHERE e.account_id = $1 AND (e.seq > $2 OR (e.seq = $2 AND e.idx > $3)) \
         AND t.created_at_ms >= $4 AND t.created_at_ms < $5 \
         ORDER BY e.seq, e.idx LIMIT $6",
    )
    .bind(to_i64(q.account_id))
    .bind(to_i64(q.after.0))
    .bind(i64::from(q.after.1))
    .bind(q.from_ms)
    .bind(q.until_ms)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let idx: i64 = row.try_get("idx")?;
            let reverses: Option<i64> = row.try_get("reverses")?;
            Ok(crate::ledger::store::StatementRow {
                seq: to_u64(row.try_get("seq")?, "seq")?,
                idx: u32::try_from(idx).map_err(|_| corrupt("entry index"))?,
                side: row.try_get("side")?,
                currency: row.try_get("currency")?,
                amount_minor: row.try_get("amount_minor")?,
                balance_after_minor: row.try_get("balance_after_minor")?,
                kind: row.try_get("kind")?,
                reverses: reverses.map(|r| to_u64(r, "reversed seq")).transpose()?,
                metadata: row.try_get("metadata")?,
                created_at_ms: row.try_get("created_at_ms")?,
            })
        })
        .collect()
}

/// The lowest seq of a transaction committed at or after `from_ms` (index
/// `journal_transactions_by_time`).
async fn read_first_seq_from(conn: &mut DbConn, from_ms: i64) -> Result<Option<u64>, StorageError> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT MIN(seq) FROM journal_transactions WHERE created_at_ms >= $1")
            .bind(from_ms)
            .fetch_one(&mut *conn)
            .await?;
    seq.map(|s| to_u64(s, "seq")).transpose()
}

async fn read_counter_values(
    conn: &mut DbConn,
    keys: &[String],
) -> Result<Vec<(String, i64)>, StorageError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb: QueryBuilder<'_, Db> =
        QueryBuilder::new("SELECT key, used_minor FROM counters WHERE key IN (");
    let mut list = qb.separated(", ");
    for key in keys.iter().take(crate::ledger::store::COUNTERS_READ_MAX) {
        list.push_bind(key.clone());
    }
    qb.push(")");
    let rows = built(&mut qb).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| Ok((row.try_get("key")?, row.try_get("used_minor")?)))
        .collect()
}

/// The [`AccountStore`](crate::ledger::store::AccountReads) of this back end, over its pool.
macro_rules! impl_account_reads {
    ($storage:ty) => {
        #[async_trait]
        impl crate::ledger::store::AccountReads for $storage {
            async fn profile(
                &self,
                account_id: u64,
            ) -> Result<Option<crate::ledger::store::ProfileRow>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_profile(&mut conn, account_id).await;
                self.settled(&mut conn, result)
            }

            async fn profiles(
                &self,
                query: &crate::ledger::store::ProfileQuery,
            ) -> Result<Vec<crate::ledger::store::ProfileRow>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_profiles(&mut conn, query).await;
                self.settled(&mut conn, result)
            }

            async fn statement_page(
                &self,
                query: &crate::ledger::store::StatementQuery,
            ) -> Result<Vec<crate::ledger::store::StatementRow>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_statement_page(&mut conn, query).await;
                self.settled(&mut conn, result)
            }

            async fn counter_values(
                &self,
                keys: &[String],
            ) -> Result<Vec<(String, i64)>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_counter_values(&mut conn, keys).await;
                self.settled(&mut conn, result)
            }

            async fn first_seq_from(&self, from_ms: i64) -> Result<Option<u64>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_first_seq_from(&mut conn, from_ms).await;
                self.settled(&mut conn, result)
            }
        }
    };
}
