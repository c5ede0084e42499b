//! Statement pages.

use super::*;

impl AccountService {
    /// Statement lines in `[from_ms, until_ms)`, oldest first, with the running balance.
    pub async fn statement(
        &self,
        caller: &Caller,
        account: AccountId,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
        page_size: i32,
        page_token: &str,
    ) -> Result<StatementPage, AccountError> {
        let limit = self.page_size(page_size)?;
        let profile = self.profile(account).await?;
        self.check_scope(caller, &profile)?;
        let from_ms = from_ms.unwrap_or(0);
        let until_ms = until_ms.unwrap_or(i64::MAX);
        if from_ms >= until_ms {
            return Err(AccountError::invalid(
                "end_time",
                "must be after start_time",
            ));
        }
        let tag = format!("entries:{account}:{from_ms}:{until_ms}");
        let after = if page_token.is_empty() {
            (0, 0)
        } else {
            let payload = self
                .inner
                .secrets
                .open_page_token(page_token)
                .ok_or(AccountError::InvalidPageToken)?;
            let position = payload
                .strip_prefix(tag.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                .ok_or(AccountError::InvalidPageToken)?;
            parse_position(position, '_').ok_or(AccountError::InvalidPageToken)?
        };
        let entries = self
            .entries_after(&profile, after, from_ms, until_ms, limit)
            .await?;
        // A sealed payload may not contain '.' (it separates the signature): `seq_idx` here.
        let next_page_token = if entries.len() == limit as usize {
            entries.last().map_or_else(String::new, |e| {
                self.inner
                    .secrets
                    .seal_page_token(&format!("{tag}:{}_{}", e.transaction, e.index))
            })
        } else {
            String::new()
        };
        Ok(StatementPage {
            entries,
            next_page_token,
        })
    }

    pub(super) async fn latest_position(
        &self,
        profile: &Profile,
    ) -> Result<(u64, u32), AccountError> {
        let mut position = (0, 0);
        loop {
            let page = self
                .inner
                .ledger
                .statement_page(&StatementQuery {
                    account_id: profile.id.0,
                    after: position,
                    from_ms: 0,
                    until_ms: i64::MAX,
                    limit: STATEMENT_PAGE_MAX,
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(position);
            };
            position = (last.seq, last.idx);
            if page.len() < STATEMENT_PAGE_MAX as usize {
                return Ok(position);
            }
        }
    }

    pub(super) async fn entries_after(
        &self,
        profile: &Profile,
        after: (u64, u32),
        from_ms: i64,
        until_ms: i64,
        limit: u32,
    ) -> Result<Vec<StatementEntry>, AccountError> {
        let rows = self
            .inner
            .ledger
            .statement_page(&StatementQuery {
                account_id: profile.id.0,
                after,
                from_ms,
                until_ms,
                limit,
            })
            .await?;
        let currency = profile.currency;
        rows.into_iter()
            .map(|row| {
                let metadata: Metadata = serde_json::from_str(&row.metadata).unwrap_or_default();
                let debit = row.side == "D";
                let counterparty = if debit {
                    metadata.get("to")
                } else {
                    metadata.get("from")
                }
                .and_then(|id| id.parse::<u64>().ok())
                .map(AccountId)
                .filter(|id| *id != profile.id);
                let entry_type = if row.kind == "REVERSAL" {
                    EntryType::Reversal
                } else {
                    metadata
                        .get("type")
                        .and_then(|t| EntryType::parse(t))
                        .unwrap_or(EntryType::Adjustment)
                };
                Ok(StatementEntry {
                    transaction: crate::ledger::TransactionId(row.seq),
                    index: row.idx,
                    debit,
                    amount: Money::new(currency, row.amount_minor),
                    // Stored from the account's normal side: a customer account is credit-normal.
                    balance_after: Money::new(currency, row.balance_after_minor),
                    entry_type,
                    counterparty,
                    memo: metadata.get("memo").cloned().unwrap_or_default(),
                    reverses: row.reverses.map(crate::ledger::TransactionId),
                    business_date: self.inner.calendar.date_at(row.created_at_ms),
                    posted_at_ms: row.created_at_ms,
                })
            })
            .collect()
    }
}
