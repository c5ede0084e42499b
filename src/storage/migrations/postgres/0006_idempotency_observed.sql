-- What a request's batch observed right after its command (the balances and counters of the
-- accounts its answer shows, the documents it wrote), stored beside its idempotency outcome so
-- a replay rebuilds the first answer instead of reading the state as it is later. JSON; NULL
-- for outcomes stored before this column and for requests whose answer needs nothing of it.
ALTER TABLE idempotency_keys ADD COLUMN observed TEXT;
