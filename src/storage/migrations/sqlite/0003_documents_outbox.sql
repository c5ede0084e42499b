-- Versioned documents and the transactional outbox, written by ledger commands in the same
-- database transaction as the postings they describe (orders, refunds, payment codes, events).
CREATE TABLE documents (
    kind          TEXT NOT NULL,
    id            TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    body          TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);

-- seq is the readers' cursor: assigned in commit order (batches are serialised by the chain head).
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    stream        TEXT NOT NULL,
    event_key     TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE INDEX outbox_by_stream ON outbox (stream, seq);
