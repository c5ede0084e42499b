-- Journal transactions by commit time: a read of one business date (the merchant settlement
-- statements of the end-of-day run) finds the date's first transaction without a full scan.
CREATE INDEX journal_transactions_by_time ON journal_transactions (created_at_ms, seq);
