-- Account profiles: what the account service knows of a ledger account beyond its money —
-- kind, owner, parent, the bound card (token and mask only; never the number), and who opened it.
CREATE TABLE account_profiles (
    account_id       BIGINT PRIMARY KEY REFERENCES accounts (id),
    kind             TEXT NOT NULL,
    currency         TEXT NOT NULL,
    owner_id         TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    parent_id        BIGINT NULL REFERENCES accounts (id),
    person_key       TEXT NULL,
    card_token       TEXT NULL,
    card_first_six   TEXT NULL,
    card_last_four   TEXT NULL,
    agreement_id     TEXT NULL UNIQUE,
    internal_purpose TEXT NULL,
    opened_by        TEXT NOT NULL,
    freeze_reason    TEXT NOT NULL DEFAULT '',
    opened_at_ms     BIGINT NOT NULL,
    closed_at_ms     BIGINT NULL
);

CREATE INDEX account_profiles_by_owner ON account_profiles (owner_id, account_id);
CREATE INDEX account_profiles_by_parent ON account_profiles (parent_id, account_id);
