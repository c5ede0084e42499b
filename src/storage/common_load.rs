// Batch loading SQL shared by both back ends; `include!`d by `sqlite.rs` and `postgres.rs` after
// `common.rs`, in the same scope (see there).

/// `SELECT … WHERE <column> IN (…)` over `ids`, chunked under the bind limit.
async fn select_in_i64(
    conn: &mut DbConn,
    select: &str,
    column: &str,
    ids: &[i64],
    tail: &str,
) -> Result<Vec<DbRow>, StorageError> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BIND_PARAMS_MAX) {
        let mut qb = QueryBuilder::<'static, Db>::new(select);
        qb.push(" WHERE ");
        qb.push(column);
        qb.push(" IN (");
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        qb.push(")");
        qb.push(tail);
        rows.extend(built(&mut qb).fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

async fn read_idempotency(
    conn: &mut DbConn,
    key: &crate::ledger::model::IdempotencyKey,
) -> Result<Option<StoredIdempotency>, StorageError> {
    let row = sqlx::query(
        "SELECT scope, key, request_hash, outcome, observed, created_at_ms FROM idempotency_keys \
         WHERE scope = $1 AND key = $2",
    )
    .bind(key.scope.clone())
    .bind(key.key.clone())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(stored_idempotency_of).transpose()
}

fn stored_idempotency_of(row: &DbRow) -> Result<StoredIdempotency, StorageError> {
    Ok(StoredIdempotency {
        key: crate::ledger::model::IdempotencyKey {
            scope: row.try_get("scope")?,
            key: row.try_get("key")?,
        },
        request_hash: row.try_get("request_hash")?,
        outcome: row.try_get("outcome")?,
        observed: row.try_get("observed")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

/// Loads what a batch needs. The caller has locked the head already.
async fn load_needs(
    conn: &mut DbConn,
    head: ChainHead,
    needs: &BatchNeeds,
    cache: &mut crate::storage::AccountCache,
) -> Result<LoadedBatch, StorageError> {
    cache.validate(&head);
    let mut loaded = LoadedBatch {
        head,
        accounts: Vec::new(),
        idempotency: Vec::new(),
        pendings: Vec::new(),
        holds: Vec::new(),
        transactions: Vec::new(),
        counters: Vec::new(),
        documents: Vec::new(),
    };
    load_idempotency(conn, needs, &mut loaded).await?;

    let mut account_ids: std::collections::BTreeSet<i64> =
        needs.accounts.iter().map(|a| to_i64(a.0)).collect();

    if !needs.pendings.is_empty() {
        let ids: Vec<i64> = needs.pendings.iter().map(|p| to_i64(p.0)).collect();
        for row in select_in_i64(conn, PENDING_SELECT, "p.id", &ids, "").await? {
            let p = pending_of(&row)?;
            account_ids.insert(to_i64(p.debit_account.0));
            account_ids.insert(to_i64(p.credit_account.0));
            loaded.pendings.push(p);
        }
    }
    if !needs.holds.is_empty() {
        let ids: Vec<i64> = needs.holds.iter().map(|h| to_i64(h.0)).collect();
        for row in select_in_i64(conn, HOLD_SELECT, "h.id", &ids, "").await? {
            let h = hold_of(&row)?;
            account_ids.insert(to_i64(h.account.0));
            loaded.holds.push(h);
        }
    }
    load_reversal_targets(conn, needs, &mut loaded, &mut account_ids).await?;
    load_counters_and_documents(conn, needs, &mut loaded).await?;
    load_accounts(conn, account_ids, cache, &mut loaded).await?;
    Ok(loaded)
}

/// The idempotency records of the batch's keys.
async fn load_idempotency(
    conn: &mut DbConn,
    needs: &BatchNeeds,
    loaded: &mut LoadedBatch,
) -> Result<(), StorageError> {
    let keys: Vec<_> = needs.idempotency.iter().collect();
    for chunk in keys.chunks(BIND_PARAMS_MAX / 2) {
        // The keys drive the join (one primary-key probe each): SQLite answers
        // `(scope, key) IN (VALUES …)` with a scan of the whole table.
        let mut qb = QueryBuilder::<'static, Db>::new(
            "SELECT i.scope, i.key, i.request_hash, i.outcome, i.observed, i.created_at_ms FROM (",
        );
        qb.push_values(chunk, |mut b, k| {
            b.push_bind(k.scope.clone());
            b.push_bind(k.key.clone());
        });
        qb.push(
            ") AS v CROSS JOIN idempotency_keys i \
             WHERE i.scope = v.column1 AND i.key = v.column2",
        );
        for row in built(&mut qb).fetch_all(&mut *conn).await? {
            loaded.idempotency.push(stored_idempotency_of(&row)?);
        }
    }
    Ok(())
}

/// The transactions the batch may reverse, with their entries and any reversal; their accounts
/// join `account_ids`.
async fn load_reversal_targets(
    conn: &mut DbConn,
    needs: &BatchNeeds,
    loaded: &mut LoadedBatch,
    account_ids: &mut std::collections::BTreeSet<i64>,
) -> Result<(), StorageError> {
    if needs.transactions.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = needs.transactions.iter().map(|t| to_i64(t.0)).collect();
    let heads = select_in_i64(
        conn,
        "SELECT t.seq, r.seq AS reversed_by FROM journal_transactions t \
         LEFT JOIN journal_transactions r ON r.reverses = t.seq",
        "t.seq",
        &ids,
        "",
    )
    .await?;
    let entries = select_in_i64(
        conn,
        "SELECT seq, idx, account_id, side, currency, amount_minor, balance_after_minor \
         FROM journal_entries",
        "seq",
        &ids,
        " ORDER BY seq, idx",
    )
    .await?;
    let mut by_seq: std::collections::BTreeMap<u64, Vec<Entry>> = Default::default();
    for row in &entries {
        let e = entry_row_of(row)?;
        account_ids.insert(to_i64(e.entry.account.0));
        by_seq.entry(e.seq).or_default().push(e.entry);
    }
    for row in &heads {
        let seq = to_u64(row.try_get("seq")?, "seq")?;
        let reversed_by: Option<i64> = row.try_get("reversed_by")?;
        loaded.transactions.push(ReversalTarget {
            id: TransactionId(seq),
            entries: by_seq.remove(&seq).unwrap_or_default(),
            reversed_by: reversed_by
                .map(|r| to_u64(r, "seq"))
                .transpose()?
                .map(TransactionId),
        });
    }
    Ok(())
}

/// The counters and document versions the batch's commands check.
async fn load_counters_and_documents(
    conn: &mut DbConn,
    needs: &BatchNeeds,
    loaded: &mut LoadedBatch,
) -> Result<(), StorageError> {
    if !needs.counters.is_empty() {
        let keys: Vec<&String> = needs.counters.iter().collect();
        for chunk in keys.chunks(BIND_PARAMS_MAX) {
            let mut qb = QueryBuilder::<'static, Db>::new(
                "SELECT key, used_minor FROM counters WHERE key IN (",
            );
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind((*k).clone());
            }
            qb.push(")");
            for row in built(&mut qb).fetch_all(&mut *conn).await? {
                loaded
                    .counters
                    .push((row.try_get("key")?, row.try_get("used_minor")?));
            }
        }
    }
    let doc_keys: Vec<&(String, String)> = needs.documents.iter().collect();
    for chunk in doc_keys.chunks(BIND_PARAMS_MAX / 2) {
        let mut qb = QueryBuilder::<'static, Db>::new("SELECT d.kind, d.id, d.version FROM (");
        qb.push_values(chunk, |mut b, (kind, id)| {
            b.push_bind(kind.clone());
            b.push_bind(id.clone());
        });
        qb.push(") AS v CROSS JOIN documents d WHERE d.kind = v.column1 AND d.id = v.column2");
        for row in built(&mut qb).fetch_all(&mut *conn).await? {
            loaded.documents.push((
                row.try_get("kind")?,
                row.try_get("id")?,
                to_u64(row.try_get("version")?, "document version")?,
            ));
        }
    }
    Ok(())
}

/// The batch's accounts: from the cache when it is valid for this head, the rest read (and
/// locked on PostgreSQL) in sorted id order.
async fn load_accounts(
    conn: &mut DbConn,
    account_ids: std::collections::BTreeSet<i64>,
    cache: &mut crate::storage::AccountCache,
    loaded: &mut LoadedBatch,
) -> Result<(), StorageError> {
    // Accounts this process already holds as of this very head come from its cache; the rest
    // are read (sorted ids, locked in that order on PostgreSQL, so batches never deadlock).
    let mut missing: Vec<i64> = Vec::new();
    for id in account_ids {
        match cache.get(AccountId(to_u64(id, "account id")?)) {
            Some(a) => loaded.accounts.push(a),
            None => missing.push(id),
        }
    }
    if !missing.is_empty() {
        let tail = format!(" ORDER BY a.id{LOCK_SUFFIX}");
        let mut read = Vec::with_capacity(missing.len());
        for row in select_in_i64(conn, ACCOUNT_SELECT, "a.id", &missing, &tail).await? {
            read.push(loaded_account_of(&row)?);
        }
        cache.insert_loaded(&read);
        loaded.accounts.extend(read);
        loaded.accounts.sort_by_key(|a| a.account.id);
    }
    Ok(())
}
