-- Nothing to change on PostgreSQL: its idempotency_keys is a heap table already, with the key in
-- its primary-key index and large values out of line (TOAST). The SQLite flavour of this
-- migration moves its table out of a WITHOUT ROWID b-tree.
SELECT 1;
