-- Idempotency records in a rowid table, their key in a small unique index. The first schema kept
-- them WITHOUT ROWID, where a row is its own b-tree key: a payment's record (outcome and observed
-- order, ~1.7 KB) spilled onto an overflow page, and every key comparison of a lookup or an
-- insert read that page back to compare two keys. Now the index holds only (scope, key), the
-- rows append in insertion order, and a record's body is read only when it is found.
CREATE TABLE idempotency_keys_rowid (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    observed TEXT,
    UNIQUE (scope, key)
);
INSERT INTO idempotency_keys_rowid (scope, key, request_hash, outcome, created_at_ms, observed)
SELECT scope, key, request_hash, outcome, created_at_ms, observed
FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_rowid RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
