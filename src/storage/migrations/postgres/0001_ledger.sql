-- Ledger core schema, PostgreSQL flavour. Journal tables (journal_transactions, journal_entries) are
-- append-only: the code has no UPDATE or DELETE for them.
CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    next_account_id BIGINT NOT NULL,
    next_pending_id BIGINT NOT NULL,
    next_hold_id BIGINT NOT NULL
);
INSERT INTO ledger_head (id, last_seq, last_hash, next_account_id, next_pending_id, next_hold_id)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 1, 1, 1);

CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    currency TEXT NOT NULL,
    normal_side TEXT NOT NULL CHECK (normal_side IN ('D', 'C')),
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    constraint_kind TEXT NOT NULL,
    constraint_minor BIGINT NOT NULL CHECK (constraint_minor >= 0),
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    posted_debits_minor BIGINT NOT NULL CHECK (posted_debits_minor >= 0),
    posted_credits_minor BIGINT NOT NULL CHECK (posted_credits_minor >= 0),
    pending_debits_minor BIGINT NOT NULL CHECK (pending_debits_minor >= 0),
    pending_credits_minor BIGINT NOT NULL CHECK (pending_credits_minor >= 0),
    held_minor BIGINT NOT NULL CHECK (held_minor >= 0),
    CHECK (constraint_kind <> 'DEBITS_LE_CREDITS'
        OR posted_debits_minor + pending_debits_minor + held_minor <= posted_credits_minor + constraint_minor),
    CHECK (constraint_kind <> 'CREDITS_LE_DEBITS'
        OR posted_credits_minor + pending_credits_minor + held_minor <= posted_debits_minor + constraint_minor)
);

CREATE TABLE journal_transactions (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    reverses BIGINT UNIQUE REFERENCES journal_transactions (seq),
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE journal_entries (
    seq BIGINT NOT NULL REFERENCES journal_transactions (seq),
    idx BIGINT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    side TEXT NOT NULL CHECK (side IN ('D', 'C')),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    balance_after_minor BIGINT NOT NULL,
    PRIMARY KEY (seq, idx)
);
CREATE INDEX journal_entries_by_account ON journal_entries (account_id, seq, idx);

CREATE TABLE pendings (
    id BIGINT PRIMARY KEY,
    debit_account BIGINT NOT NULL REFERENCES accounts (id),
    credit_account BIGINT NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    expires_at_ms BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- A pending resolves at most once: the primary key forbids a second resolution.
CREATE TABLE pending_resolutions (
    pending_id BIGINT PRIMARY KEY REFERENCES pendings (id),
    state TEXT NOT NULL CHECK (state IN ('POSTED', 'VOIDED', 'EXPIRED')),
    posted_minor BIGINT NOT NULL CHECK (posted_minor >= 0),
    transaction_seq BIGINT REFERENCES journal_transactions (seq),
    resolved_at_ms BIGINT NOT NULL
);

CREATE TABLE holds (
    id BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    expires_at_ms BIGINT,
    metadata TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE hold_resolutions (
    hold_id BIGINT PRIMARY KEY REFERENCES holds (id),
    state TEXT NOT NULL CHECK (state IN ('RELEASED', 'CAPTURED', 'EXPIRED')),
    captured_minor BIGINT NOT NULL CHECK (captured_minor >= 0),
    transaction_seq BIGINT REFERENCES journal_transactions (seq),
    resolved_at_ms BIGINT NOT NULL
);

-- Open pendings and holds with a deadline, for the sweeper; a row leaves when its item resolves.
CREATE TABLE expiry_queue (
    item_kind TEXT NOT NULL CHECK (item_kind IN ('PENDING', 'HOLD')),
    item_id BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (item_kind, item_id)
);
CREATE INDEX expiry_queue_due ON expiry_queue (expires_at_ms);

CREATE TABLE counters (
    key TEXT PRIMARY KEY,
    used_minor BIGINT NOT NULL CHECK (used_minor >= 0),
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at_ms);
