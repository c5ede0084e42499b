// Document and outbox SQL shared by both back ends; `include!`d by `sqlite.rs` and
// `postgres.rs` after `common.rs`, compiled once per back end with its concrete sqlx types.

/// A stored transaction link (NULL: the command posted nothing).
fn transaction_of(
    seq: Option<i64>,
) -> Result<Option<crate::ledger::TransactionId>, StorageError> {
    seq.map(|s| to_u64(s, "transaction seq").map(crate::ledger::TransactionId))
        .transpose()
}

async fn read_document(
    conn: &mut DbConn,
    kind: &str,
    id: &str,
) -> Result<Option<crate::ledger::StoredDocument>, StorageError> {
    let row = sqlx::query(
        "SELECT kind, id, version, body, updated_at_ms, transaction_seq FROM documents \
         WHERE kind = $1 AND id = $2",
    )
    .bind(kind)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(crate::ledger::StoredDocument {
            kind: row.try_get("kind")?,
            id: row.try_get("id")?,
            version: to_u64(row.try_get("version")?, "document version")?,
            body: row.try_get("body")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            transaction: transaction_of(row.try_get("transaction_seq")?)?,
        })
    })
    .transpose()
}

async fn read_documents_after(
    conn: &mut DbConn,
    kind: &str,
    after_id: &str,
    limit: u32,
) -> Result<Vec<crate::ledger::StoredDocument>, StorageError> {
    let limit = limit.clamp(1, crate::ledger::store::DOCUMENTS_PAGE_MAX);
    let rows = sqlx::query(
        "SELECT kind, id, version, body, updated_at_ms, transaction_seq FROM documents \
         WHERE kind = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(kind)
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(crate::ledger::StoredDocument {
                kind: row.try_get("kind")?,
                id: row.try_get("id")?,
                version: to_u64(row.try_get("version")?, "document version")?,
                body: row.try_get("body")?,
                updated_at_ms: row.try_get("updated_at_ms")?,
                transaction: transaction_of(row.try_get("transaction_seq")?)?,
            })
        })
        .collect()
}

async fn read_outbox_after(
    conn: &mut DbConn,
    streams: &[String],
    after_seq: u64,
    limit: u32,
) -> Result<Vec<crate::ledger::StoredEvent>, StorageError> {
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let limit = limit.clamp(1, crate::ledger::OUTBOX_PAGE_MAX);
    let mut qb: QueryBuilder<'_, Db> = QueryBuilder::new(
        "SELECT seq, stream, event_key, body, created_at_ms, transaction_seq FROM outbox WHERE seq > ",
    );
    qb.push_bind(to_i64(after_seq)).push(" AND stream IN (");
    let mut list = qb.separated(", ");
    for stream in streams.iter().take(crate::ledger::store::OUTBOX_STREAMS_MAX) {
        list.push_bind(stream.clone());
    }
    qb.push(") ORDER BY seq LIMIT ").push_bind(i64::from(limit));
    let rows = built(&mut qb).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            Ok(crate::ledger::StoredEvent {
                seq: to_u64(row.try_get("seq")?, "outbox seq")?,
                stream: row.try_get("stream")?,
                key: row.try_get("event_key")?,
                body: row.try_get("body")?,
                created_at_ms: row.try_get("created_at_ms")?,
                transaction: transaction_of(row.try_get("transaction_seq")?)?,
            })
        })
        .collect()
}

/// The [`DocumentStore`](crate::ledger::store::DocumentReads) of this back end, over its pool.
macro_rules! impl_document_reads {
    ($storage:ty) => {
        #[async_trait]
        impl crate::ledger::store::DocumentReads for $storage {
            async fn document(
                &self,
                kind: &str,
                id: &str,
            ) -> Result<Option<crate::ledger::StoredDocument>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_document(&mut conn, kind, id).await;
                self.settled(&mut conn, result)
            }

            async fn documents_after(
                &self,
                kind: &str,
                after_id: &str,
                limit: u32,
            ) -> Result<Vec<crate::ledger::StoredDocument>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_documents_after(&mut conn, kind, after_id, limit).await;
                self.settled(&mut conn, result)
            }

            async fn outbox_after(
                &self,
                streams: &[String],
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<crate::ledger::StoredEvent>, StorageError> {
                let mut conn = self.acquire().await?;
                let result = read_outbox_after(&mut conn, streams, after_seq, limit).await;
                self.settled(&mut conn, result)
            }
        }
    };
}
