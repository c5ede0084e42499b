-- Ledger core schema, SQLite flavour. Journal tables (journal_transactions, journal_entries) are
-- append-only: the code has no UPDATE or DELETE for them.
CREATE TABLE ledger_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    next_account_id INTEGER NOT NULL,
    next_pending_id INTEGER NOT NULL,
    next_hold_id INTEGER NOT NULL
);
INSERT INTO ledger_head (id, last_seq, last_hash, next_account_id, next_pending_id, next_hold_id)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 1, 1, 1);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    currency TEXT NOT NULL,
    normal_side TEXT NOT NULL CHECK (normal_side IN ('D', 'C')),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    constraint_kind TEXT NOT NULL,
    constraint_minor INTEGER NOT NULL CHECK (constraint_minor >= 0),
    metadata TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    posted_debits_minor INTEGER NOT NULL CHECK (posted_debits_minor >= 0),
    posted_credits_minor INTEGER NOT NULL CHECK (posted_credits_minor >= 0),
    pending_debits_minor INTEGER NOT NULL CHECK (pending_debits_minor >= 0),
    pending_credits_minor INTEGER NOT NULL CHECK (pending_credits_minor >= 0),
    held_minor INTEGER NOT NULL CHECK (held_minor >= 0),
    CHECK (constraint_kind <> 'DEBITS_LE_CREDITS'
        OR posted_debits_minor + pending_debits_minor + held_minor <= posted_credits_minor + constraint_minor),
    CHECK (constraint_kind <> 'CREDITS_LE_DEBITS'
        OR posted_credits_minor + pending_credits_minor + held_minor <= posted_debits_minor + constraint_minor)
);

CREATE TABLE journal_transactions (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    reverses INTEGER UNIQUE REFERENCES journal_transactions (seq),
    metadata TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE journal_entries (
    seq INTEGER NOT NULL REFERENCES journal_transactions (seq),
    idx INTEGER NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    side TEXT NOT NULL CHECK (side IN ('D', 'C')),
    currency TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    balance_after_minor INTEGER NOT NULL,
    PRIMARY KEY (seq, idx)
) WITHOUT ROWID;
CREATE INDEX journal_entries_by_account ON journal_entries (account_id, seq, idx);

CREATE TABLE pendings (
    id INTEGER PRIMARY KEY,
    debit_account INTEGER NOT NULL REFERENCES accounts (id),
    credit_account INTEGER NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    expires_at_ms INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

-- A pending resolves at most once: the primary key forbids a second resolution.
CREATE TABLE pending_resolutions (
    pending_id INTEGER PRIMARY KEY REFERENCES pendings (id),
    state TEXT NOT NULL CHECK (state IN ('POSTED', 'VOIDED', 'EXPIRED')),
    posted_minor INTEGER NOT NULL CHECK (posted_minor >= 0),
    transaction_seq INTEGER REFERENCES journal_transactions (seq),
    resolved_at_ms INTEGER NOT NULL
);

CREATE TABLE holds (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    expires_at_ms INTEGER,
    metadata TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE hold_resolutions (
    hold_id INTEGER PRIMARY KEY REFERENCES holds (id),
    state TEXT NOT NULL CHECK (state IN ('RELEASED', 'CAPTURED', 'EXPIRED')),
    captured_minor INTEGER NOT NULL CHECK (captured_minor >= 0),
    transaction_seq INTEGER REFERENCES journal_transactions (seq),
    resolved_at_ms INTEGER NOT NULL
);

-- Open pendings and holds with a deadline, for the sweeper; a row leaves when its item resolves.
CREATE TABLE expiry_queue (
    item_kind TEXT NOT NULL CHECK (item_kind IN ('PENDING', 'HOLD')),
    item_id INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (item_kind, item_id)
) WITHOUT ROWID;
CREATE INDEX expiry_queue_due ON expiry_queue (expires_at_ms);

CREATE TABLE counters (
    key TEXT PRIMARY KEY,
    used_minor INTEGER NOT NULL CHECK (used_minor >= 0),
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
