-- The audit log: one record per stored answer of a mutating request (caller, method, request
-- id, outcome, the journal transaction it posted), hash-chained like the journal and appended
-- by the batch that decided it, in the same transaction. The chain head row keeps the last
-- record's sequence and hash, so deleting the last records is found by `paygate audit verify`.
ALTER TABLE ledger_head ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_head ADD COLUMN audit_hash TEXT NOT NULL
    DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    caller TEXT NOT NULL,
    method TEXT NOT NULL,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    transaction_seq BIGINT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
