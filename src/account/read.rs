//! Reading accounts: get, list, balance.

use super::*;

impl AccountService {
    pub async fn get(&self, caller: &Caller, id: AccountId) -> Result<AccountView, AccountError> {
        let profile = self.profile(id).await?;
        self.check_scope(caller, &profile)?;
        let state = self
            .inner
            .ledger
            .account_state(id, Freshness::Current)
            .await?;
        Ok(profile.view(state.status))
    }

    /// Accounts of an owner or under a parent, in id order; `page_token` continues a listing.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: ListBy,
        kind: Option<AccountKind>,
        include_closed: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AccountView>, String), AccountError> {
        let limit = self.page_size(page_size)?;
        match &filter {
            ListBy::Owner(owner) if owner.is_empty() || owner.len() > OWNER_ID_LEN_MAX => {
                return Err(AccountError::invalid("owner_id", "1..=64 characters"));
            }
            ListBy::Parent(parent) => {
                let master = self.profile(*parent).await?;
                self.check_scope(caller, &master)?;
            }
            ListBy::Owner(_) => {}
        }
        let query_tag = short_hash(&format!(
            "{filter:?}|{}|{include_closed}",
            kind.map_or("", AccountKind::as_str)
        ));
        let after_id = self.list_after_id(page_token, &query_tag)?;
        let rows = self
            .inner
            .ledger
            .profiles(&ProfileQuery {
                filter: match filter {
                    ListBy::Owner(owner) => ProfileFilter::Owner(owner),
                    ListBy::Parent(parent) => ProfileFilter::Parent(parent.0),
                },
                kind: kind.map(|k| k.as_str().to_owned()),
                include_closed,
                after_id,
                limit,
            })
            .await?;
        let next = if rows.len() == limit as usize {
            rows.last().map_or_else(String::new, |last| {
                self.inner
                    .secrets
                    .seal_page_token(&format!("accounts:{query_tag}:{}", last.account_id))
            })
        } else {
            String::new()
        };
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let profile = Profile::from_row(row)?;
            if self.check_scope(caller, &profile).is_err() {
                continue;
            }
            let state = self
                .inner
                .ledger
                .account_state(profile.id, Freshness::Current)
                .await?;
            views.push(profile.view(state.status));
        }
        Ok((views, next))
    }

    pub async fn balance(
        &self,
        caller: &Caller,
        id: AccountId,
    ) -> Result<BalanceView, AccountError> {
        // One shared read of the chain head answers whether the read cache is current.
        let current = self.inner.ledger.current().await;
        let profile = self.profile_as(id, current).await?;
        self.check_scope(caller, &profile)?;
        self.balance_as(&profile, current).await
    }

    pub(super) async fn balance_of(&self, profile: &Profile) -> Result<BalanceView, AccountError> {
        self.balance_as(profile, Freshness::Current).await
    }

    async fn balance_as(
        &self,
        profile: &Profile,
        current: Freshness,
    ) -> Result<BalanceView, AccountError> {
        let balance = if profile.kind == AccountKind::PlatformMaster {
            self.master_balance(profile).await?
        } else {
            self.inner
                .ledger
                .account_state(profile.id, current)
                .await?
                .balance
        };
        let date = self.today();
        let usage = self.inner.rules.usage_keys(profile.kind, profile.id, date);
        let keys: Vec<String> = usage.iter().map(|c| c.counter.key.clone()).collect();
        let values: BTreeMap<String, i64> = self
            .inner
            .ledger
            .counter_values_as(&keys, current)
            .await?
            .into_iter()
            .collect();
        let as_of_ms = self.inner.ledger.now_ms();
        Ok(self.balance_view(profile, balance, date, as_of_ms, |key| {
            values.get(key).copied().unwrap_or(0)
        }))
    }

    /// A balance view of `profile` from its balances and its limit counters (`used` of a
    /// counter key) on business date `date`.
    pub(super) fn balance_view(
        &self,
        profile: &Profile,
        balance: Balance,
        date: time::Date,
        as_of_ms: i64,
        used: impl Fn(&str) -> i64,
    ) -> BalanceView {
        let currency = profile.currency;
        let usage = self.inner.rules.usage_keys(profile.kind, profile.id, date);
        let money = |minor: i64| Money::new(currency, minor);
        let mut limits: Vec<LimitUsage> = usage
            .iter()
            .map(|c| {
                let used = used(&c.counter.key);
                LimitUsage {
                    rule: c.rule,
                    window: c.window,
                    limit: money(c.limit_minor),
                    used: money(used),
                    remaining: money(c.limit_minor.saturating_sub(used).max(0)),
                }
            })
            .collect();
        let book = clamp(balance.posted_minor(Side::Credit));
        if profile.kind == AccountKind::ClassIii {
            // The balance cap counts what is posted and what is on its way in (as the ledger
            // checks it): what remains is what may still be topped up or received.
            let cap = self.inner.rules.class_iii_balance_max_minor;
            let used = book.saturating_add(balance.pending_credits_minor);
            limits.push(LimitUsage {
                rule: rules::LimitRule::ClassIiiBalanceCap,
                window: rules::LimitWindow::Balance,
                limit: money(cap),
                used: money(used),
                remaining: money(cap.saturating_sub(used).max(0)),
            });
        }
        let available = clamp(balance.available_minor(Side::Credit));
        BalanceView {
            account: profile.id,
            book: money(book),
            held: money(balance.held_minor),
            pending_in: money(balance.pending_credits_minor),
            pending_out: money(balance.pending_debits_minor),
            available: money(available),
            business_date: date,
            limits,
            as_of_ms,
        }
    }

    /// A master account's balance: the sum of its sub-accounts' balances.
    pub(super) async fn master_balance(&self, master: &Profile) -> Result<Balance, AccountError> {
        let mut total = Balance::default();
        let mut after_id = 0;
        loop {
            let children = self
                .inner
                .ledger
                .profiles(&ProfileQuery {
                    filter: ProfileFilter::Parent(master.id.0),
                    kind: None,
                    include_closed: true,
                    after_id,
                    limit: PROFILE_PAGE_MAX,
                })
                .await?;
            let Some(last) = children.last() else { break };
            after_id = last.account_id;
            for child in &children {
                let (_, b) = self
                    .inner
                    .ledger
                    .account(AccountId(child.account_id))
                    .await?;
                let add = |a: i64, b: i64| a.checked_add(b).ok_or(LedgerError::Overflow);
                total.posted_debits_minor = add(total.posted_debits_minor, b.posted_debits_minor)?;
                total.posted_credits_minor =
                    add(total.posted_credits_minor, b.posted_credits_minor)?;
                total.pending_debits_minor =
                    add(total.pending_debits_minor, b.pending_debits_minor)?;
                total.pending_credits_minor =
                    add(total.pending_credits_minor, b.pending_credits_minor)?;
                total.held_minor = add(total.held_minor, b.held_minor)?;
            }
            if children.len() < PROFILE_PAGE_MAX as usize {
                break;
            }
        }
        Ok(total)
    }

    /// The account id a listing's page token continues after (0 for the first page); a token
    /// sealed for another query is refused.
    fn list_after_id(&self, page_token: &str, query_tag: &str) -> Result<u64, AccountError> {
        if page_token.is_empty() {
            return Ok(0);
        }
        let payload = self
            .inner
            .secrets
            .open_page_token(page_token)
            .ok_or(AccountError::InvalidPageToken)?;
        let (tag, after) = payload
            .strip_prefix("accounts:")
            .and_then(|rest| rest.split_once(':'))
            .ok_or(AccountError::InvalidPageToken)?;
        if tag != query_tag {
            return Err(AccountError::InvalidPageToken);
        }
        after
            .parse::<u64>()
            .map_err(|_| AccountError::InvalidPageToken)
    }
}
