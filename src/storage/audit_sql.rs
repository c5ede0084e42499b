// Audit log SQL shared by both back ends; `include!`d by `sqlite.rs` and `postgres.rs` after
// `common.rs`, in the same scope (see there).

const AUDIT_COLUMNS: &str =
    "seq, at_ms, caller, method, request_id, outcome, transaction_seq, prev_hash, hash";
const AUDIT_COLUMN_COUNT: usize = 9;

/// The batch's audit records: multi-row INSERTs chunked under the bind limit, their texts moved
/// into the statement.
fn push_audit_writes(stmts: &mut Statements, w: &mut BatchWrites) {
    for chunk in w.audit.chunks_mut(BIND_PARAMS_MAX / AUDIT_COLUMN_COUNT) {
        let qb = stmts.start(format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(to_i64(r.seq))
                .push_bind(r.at_ms)
                .push_bind(std::mem::take(&mut r.caller))
                .push_bind(std::mem::take(&mut r.method))
                .push_bind(std::mem::take(&mut r.request_id))
                .push_bind(std::mem::take(&mut r.outcome))
                .push_bind(r.transaction.map(to_i64))
                .push_bind(std::mem::take(&mut r.prev_hash))
                .push_bind(std::mem::take(&mut r.hash));
        });
    }
}

async fn read_audit_page(
    conn: &mut DbConn,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<crate::ledger::audit::AuditRow>, StorageError> {
    let rows = sqlx::query(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(to_i64(after_seq))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let transaction: Option<i64> = row.try_get("transaction_seq")?;
            Ok(crate::ledger::audit::AuditRow {
                seq: to_u64(row.try_get("seq")?, "audit seq")?,
                at_ms: row.try_get("at_ms")?,
                caller: row.try_get("caller")?,
                method: row.try_get("method")?,
                request_id: row.try_get("request_id")?,
                outcome: row.try_get("outcome")?,
                transaction: transaction.map(|t| to_u64(t, "seq")).transpose()?,
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        })
        .collect()
}
