-- The journal transaction posted by the command that wrote a document version or an outbox
-- event, as a typed column: a service links its record to the posting it describes without the
-- ledger touching the record's body.
ALTER TABLE documents ADD COLUMN transaction_seq BIGINT;
ALTER TABLE outbox ADD COLUMN transaction_seq BIGINT;
