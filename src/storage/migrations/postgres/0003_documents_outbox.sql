-- Versioned documents and the transactional outbox, written by ledger commands in the same
-- database transaction as the postings they describe (orders, refunds, payment codes, events).
CREATE TABLE documents (
    kind          TEXT NOT NULL,
    id            TEXT NOT NULL,
    version       BIGINT NOT NULL CHECK (version > 0),
    body          TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- seq is the readers' cursor: assigned in commit order (batches are serialised by the chain
-- head row lock, held until commit).
CREATE TABLE outbox (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream        TEXT NOT NULL,
    event_key     TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX outbox_by_stream ON outbox (stream, seq);
