-- An account row holds its posted totals through posted_through_seq; the account's journal
-- entries after that sequence (its tail) are added on every read. A batch rewrites the row only
-- when something besides posted totals changes or the tail grows long, so a transfer between
-- quiet accounts appends to the journal without rewriting two account rows. Existing rows are
-- complete through the current head.
ALTER TABLE accounts ADD COLUMN posted_through_seq INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET posted_through_seq = (SELECT last_seq FROM ledger_head WHERE id = 1);

-- Counts committed batches. A process caches account rows between its own batches and trusts
-- the cache only while this has not moved since its last commit (no other process wrote).
ALTER TABLE ledger_head ADD COLUMN batches_committed INTEGER NOT NULL DEFAULT 0;
