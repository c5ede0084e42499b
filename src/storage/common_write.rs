// Batch writing SQL shared by both back ends; `include!`d by `sqlite.rs` and `postgres.rs` after
// `common.rs`, in the same scope (see there).

/// Write statements of a batch. Where the back end runs several statements per round trip
/// (`STATEMENTS_PER_ROUND_TRIP`, SQLite) they are joined into one text; otherwise each is sent
/// on its own. Either way they run in order inside the batch's transaction.
struct Statements {
    done: Vec<QueryBuilder<'static, Db>>,
    current: QueryBuilder<'static, Db>,
    current_empty: bool,
}

impl Statements {
    fn new() -> Statements {
        Statements {
            done: Vec::new(),
            current: QueryBuilder::new(""),
            current_empty: true,
        }
    }

    fn start(&mut self, sql: impl Into<String>) -> &mut QueryBuilder<'static, Db> {
        if !self.current_empty {
            if STATEMENTS_PER_ROUND_TRIP {
                self.current.push("; ");
            } else {
                let full = std::mem::replace(&mut self.current, QueryBuilder::new(""));
                self.done.push(full);
            }
        }
        self.current_empty = false;
        self.current.push(sql.into());
        &mut self.current
    }

    async fn run(mut self, conn: &mut DbConn) -> Result<(), StorageError> {
        for mut qb in self.done.drain(..) {
            built(&mut qb).execute(&mut *conn).await?;
        }
        if !self.current_empty {
            built(&mut self.current).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// Writes a batch: multi-row INSERTs chunked under the bind limit, one upsert of the touched
/// accounts, then the head. The per-request texts (profiles, idempotency and audit records,
/// counter keys) are moved into the statements, not copied: `w` is spent once written.
async fn write_batch(
    conn: &mut DbConn,
    w: &mut BatchWrites,
    tail: Option<&str>,
) -> Result<(), StorageError> {
    let mut stmts = Statements::new();
    push_account_writes(&mut stmts, w)?;
    push_profile_writes(&mut stmts, w);
    push_journal_writes(&mut stmts, w);
    push_pending_and_hold_writes(&mut stmts, w);
    push_state_writes(&mut stmts, w);
    push_audit_writes(&mut stmts, w);
    if let Some(head) = &w.head {
        let qb = stmts.start("UPDATE ledger_head SET batches_committed = batches_committed + 1, last_seq = ");
        qb.push_bind(to_i64(head.last_seq));
        qb.push(", last_hash = ");
        qb.push_bind(hash_to_hex(&head.last_hash));
        qb.push(", next_account_id = ");
        qb.push_bind(to_i64(head.next_account_id));
        qb.push(", next_pending_id = ");
        qb.push_bind(to_i64(head.next_pending_id));
        qb.push(", next_hold_id = ");
        qb.push_bind(to_i64(head.next_hold_id));
        qb.push(", audit_seq = ");
        qb.push_bind(to_i64(head.audit_seq));
        qb.push(", audit_hash = ");
        qb.push_bind(hash_to_hex(&head.audit_hash));
        qb.push(" WHERE id = 1");
    }
    if let Some(tail) = tail {
        stmts.start(tail);
    }
    stmts.run(conn).await
}

/// The account rows to rewrite, each with its full balances as of the batch's new head.
fn push_account_writes(stmts: &mut Statements, w: &BatchWrites) -> Result<(), StorageError> {
    // A written row holds the account's full balances as of the batch's new head.
    let posted_through_seq = match (&w.head, w.accounts.is_empty()) {
        (Some(head), _) => to_i64(head.last_seq),
        (None, true) => 0,
        (None, false) => return Err(StorageError::new("account rows to write without a head")),
    };
    for chunk in w.accounts.chunks(BIND_PARAMS_MAX / ACCOUNT_COLUMN_COUNT) {
        let qb = stmts.start(format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, (a, bal)| {
            let (ck, cm) = a.constraint.as_db();
            b.push_bind(to_i64(a.id.0))
                .push_bind(a.currency.code().to_owned())
                .push_bind(a.normal_side.as_str())
                .push_bind(a.kind.clone())
                .push_bind(a.status.as_db())
                .push_bind(ck)
                .push_bind(cm)
                .push_bind(metadata_text(&a.metadata))
                .push_bind(a.created_at_ms)
                .push_bind(bal.posted_debits_minor)
                .push_bind(bal.posted_credits_minor)
                .push_bind(bal.pending_debits_minor)
                .push_bind(bal.pending_credits_minor)
                .push_bind(bal.held_minor)
                .push_bind(posted_through_seq);
        });
        qb.push(
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
             posted_through_seq = excluded.posted_through_seq, \
             posted_debits_minor = excluded.posted_debits_minor, \
             posted_credits_minor = excluded.posted_credits_minor, \
             pending_debits_minor = excluded.pending_debits_minor, \
             pending_credits_minor = excluded.pending_credits_minor, \
             held_minor = excluded.held_minor",
        );
    }
    Ok(())
}

/// The journal: transactions and their entries.
fn push_journal_writes(stmts: &mut Statements, w: &BatchWrites) {
    for chunk in w.transactions.chunks(BIND_PARAMS_MAX / 7) {
        let qb = stmts.start(
            "INSERT INTO journal_transactions \
             (seq, kind, reverses, metadata, created_at_ms, prev_hash, hash) ",
        );
        qb.push_values(chunk, |mut b, t| {
            b.push_bind(to_i64(t.posted.id.0))
                .push_bind(t.posted.kind.as_db())
                .push_bind(t.posted.reverses.map(|r| to_i64(r.0)))
                .push_bind(metadata_text(&t.posted.metadata))
                .push_bind(t.posted.created_at_ms)
                .push_bind(t.prev_hash.clone())
                .push_bind(t.posted.hash.clone());
        });
    }
    for chunk in w.entries.chunks(BIND_PARAMS_MAX / 7) {
        let qb = stmts.start(
            "INSERT INTO journal_entries \
             (seq, idx, account_id, side, currency, amount_minor, balance_after_minor) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(to_i64(e.seq))
                .push_bind(i64::from(e.index))
                .push_bind(to_i64(e.entry.account.0))
                .push_bind(e.entry.side.as_str())
                .push_bind(e.entry.amount.currency.code().to_owned())
                .push_bind(e.entry.amount.minor)
                .push_bind(e.balance_after_minor);
        });
    }
}

/// New and resolved pendings and holds, and the expiry queue.
fn push_pending_and_hold_writes(stmts: &mut Statements, w: &BatchWrites) {
    push_new_pendings(stmts, w);
    push_new_holds(stmts, w);
    push_pending_resolutions(stmts, w);
    push_hold_resolutions(stmts, w);
    push_expiries_added(stmts, w);
    push_expiries_removed(stmts, w);
}

/// New pendings.
fn push_new_pendings(stmts: &mut Statements, w: &BatchWrites) {
    for chunk in w.new_pendings.chunks(BIND_PARAMS_MAX / 8) {
        let qb = stmts.start(
            "INSERT INTO pendings (id, debit_account, credit_account, currency, amount_minor, \
             expires_at_ms, metadata, created_at_ms) ",
        );
        qb.push_values(chunk, |mut b, p| {
            b.push_bind(to_i64(p.id.0))
                .push_bind(to_i64(p.debit_account.0))
                .push_bind(to_i64(p.credit_account.0))
                .push_bind(p.amount.currency.code().to_owned())
                .push_bind(p.amount.minor)
                .push_bind(p.expires_at_ms)
                .push_bind(metadata_text(&p.metadata))
                .push_bind(p.created_at_ms);
        });
    }
}

/// New holds.
fn push_new_holds(stmts: &mut Statements, w: &BatchWrites) {
    for chunk in w.new_holds.chunks(BIND_PARAMS_MAX / 7) {
        let qb = stmts.start(
            "INSERT INTO holds (id, account_id, currency, amount_minor, expires_at_ms, metadata, \
             created_at_ms) ",
        );
        qb.push_values(chunk, |mut b, h| {
            b.push_bind(to_i64(h.id.0))
                .push_bind(to_i64(h.account.0))
                .push_bind(h.amount.currency.code().to_owned())
                .push_bind(h.amount.minor)
                .push_bind(h.expires_at_ms)
                .push_bind(metadata_text(&h.metadata))
                .push_bind(h.created_at_ms);
        });
    }
}

/// Resolved pendings.
fn push_pending_resolutions(stmts: &mut Statements, w: &BatchWrites) {
    for chunk in w.pending_resolutions.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO pending_resolutions (pending_id, state, posted_minor, transaction_seq, \
             resolved_at_ms) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(to_i64(r.pending.0))
                .push_bind(r.state.as_db())
                .push_bind(r.posted_minor)
                .push_bind(r.transaction.map(|t| to_i64(t.0)))
                .push_bind(r.resolved_at_ms);
        });
    }
}

/// Resolved holds.
fn push_hold_resolutions(stmts: &mut Statements, w: &BatchWrites) {
    for chunk in w.hold_resolutions.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO hold_resolutions (hold_id, state, captured_minor, transaction_seq, \
             resolved_at_ms) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(to_i64(r.hold.0))
                .push_bind(r.state.as_db())
                .push_bind(r.captured_minor)
                .push_bind(r.transaction.map(|t| to_i64(t.0)))
                .push_bind(r.resolved_at_ms);
        });
    }
}

/// Items joining the expiry queue.
fn push_expiries_added(stmts: &mut Statements, w: &BatchWrites) {
    for chunk in w.expiries_added.chunks(BIND_PARAMS_MAX / 3) {
        let qb = stmts.start("INSERT INTO expiry_queue (item_kind, item_id, expires_at_ms) ");
        qb.push_values(chunk, |mut b, (item, at)| {
            let (kind, id) = item.db_parts();
            b.push_bind(kind).push_bind(id).push_bind(*at);
        });
    }
}

/// Items leaving the expiry queue.
fn push_expiries_removed(stmts: &mut Statements, w: &BatchWrites) {
    // Short chunks: each item is one term of an OR chain (SQLite limits expression depth).
    for chunk in w.expiries_removed.chunks(EXPRESSION_TERMS_MAX) {
        // One primary-key probe per item (a row-value IN list is a scan on SQLite).
        let qb = stmts.start("DELETE FROM expiry_queue WHERE ");
        let mut first = true;
        for item in chunk {
            let (kind, id) = item.db_parts();
            qb.push(if first { "(item_kind = " } else { " OR (item_kind = " });
            qb.push_bind(kind);
            qb.push(" AND item_id = ");
            qb.push_bind(id);
            qb.push(")");
            first = false;
        }
    }
}

/// Counters, idempotency records, documents and outbox events.
fn push_state_writes(stmts: &mut Statements, w: &mut BatchWrites) {
    let updated_at_ms = w
        .idempotency
        .first()
        .map(|i| i.created_at_ms)
        .unwrap_or_default();
    for chunk in w.counters.chunks_mut(BIND_PARAMS_MAX / 3) {
        let qb = stmts.start("INSERT INTO counters (key, used_minor, updated_at_ms) ");
        qb.push_values(chunk, |mut b, (key, used)| {
            b.push_bind(std::mem::take(key))
                .push_bind(*used)
                .push_bind(updated_at_ms);
        });
        qb.push(
            " ON CONFLICT (key) DO UPDATE SET used_minor = excluded.used_minor, \
             updated_at_ms = excluded.updated_at_ms",
        );
    }
    for chunk in w.idempotency.chunks_mut(BIND_PARAMS_MAX / 6) {
        let qb = stmts.start(
            "INSERT INTO idempotency_keys \
             (scope, key, request_hash, outcome, observed, created_at_ms) ",
        );
        qb.push_values(chunk, |mut b, i| {
            b.push_bind(std::mem::take(&mut i.key.scope))
                .push_bind(std::mem::take(&mut i.key.key))
                .push_bind(std::mem::take(&mut i.request_hash))
                .push_bind(std::mem::take(&mut i.outcome))
                .push_bind(i.observed.take())
                .push_bind(i.created_at_ms);
        });
    }
    for chunk in w.documents.chunks(BIND_PARAMS_MAX / 6) {
        let qb = stmts.start(
            "INSERT INTO documents (kind, id, version, body, updated_at_ms, transaction_seq) ",
        );
        qb.push_values(chunk, |mut b, d| {
            b.push_bind(d.kind.clone())
                .push_bind(d.id.clone())
                .push_bind(to_i64(d.version))
                .push_bind(d.body.clone())
                .push_bind(d.updated_at_ms)
                .push_bind(d.transaction.map(|t| to_i64(t.0)));
        });
        qb.push(
            " ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, \
             body = excluded.body, updated_at_ms = excluded.updated_at_ms, \
             transaction_seq = excluded.transaction_seq",
        );
    }
    for chunk in w.events.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO outbox (stream, event_key, body, created_at_ms, transaction_seq) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.stream.clone())
                .push_bind(e.key.clone())
                .push_bind(e.body.clone())
                .push_bind(e.created_at_ms)
                .push_bind(e.transaction.map(|t| to_i64(t.0)));
        });
    }
}
