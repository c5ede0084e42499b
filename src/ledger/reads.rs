//! The ledger's read API: what services read outside a batch (accounts with their balances,
//! statements, pendings, holds, the account service's profiles and counters, documents and the
//! outbox). Services never reach the store themselves; these reads are the only way.

use super::{
    AccountState, Answer, Freshness, Ledger, LedgerError, Outcome, apply,
    cache::ReadCache,
    model::IdempotencyKey,
    model::{
        Account, AccountId, Balance, Hold, HoldId, Pending, PendingId, STATEMENT_PAGE_MAX,
        StatementLine, StoredDocument, StoredEvent,
    },
    request_hash,
    store::{COUNTERS_READ_MAX, ProfileQuery, ProfileRow, StatementQuery, StatementRow},
};

impl Ledger {
    /// What the read cache answers for `freshness`: any entry for a checked read; for a
    /// current read, an entry known current at a chain head read after this call began (one
    /// read shared by the calls waiting for it). `None`: read the database.
    async fn cached<T>(
        &self,
        freshness: Freshness,
        lookup: impl Fn(&ReadCache, Option<u64>) -> Option<T>,
    ) -> Option<T> {
        let cache = &self.inner.cache;
        match freshness {
            Freshness::Checked => lookup(cache, None),
            Freshness::CurrentAt(head) => lookup(cache, Some(head)),
            Freshness::Current => {
                // Only worth a head read if the entry is current as of this process's own
                // last batch.
                lookup(cache, Some(cache.head()?))?;
                let head = self.inner.probe.head().await?;
                lookup(cache, Some(head))
            }
        }
    }

    /// A freshness for the current reads of one call: the chain head read once, after the
    /// call began, when the read cache may answer them.
    pub async fn current(&self) -> Freshness {
        if self.inner.cache.head().is_none() {
            return Freshness::Current;
        }
        match self.inner.probe.head().await {
            Some(head) => Freshness::CurrentAt(head),
            None => Freshness::Current,
        }
    }

    /// An account's status and balances.
    pub async fn account_state(
        &self,
        id: AccountId,
        freshness: Freshness,
    ) -> Result<AccountState, LedgerError> {
        if let Some(state) = self.cached(freshness, |c, h| c.account(id, h)).await {
            return Ok(state);
        }
        let stamp = self.inner.cache.read_stamp();
        let (account, balance) = self.account(id).await?;
        let state = AccountState {
            status: account.status,
            balance,
        };
        if let Some(stamp) = stamp {
            self.inner.cache.remember_account(stamp, id, state);
        }
        Ok(state)
    }

    /// [`Ledger::profile`], from the read cache when `freshness` allows.
    pub async fn profile_as(
        &self,
        id: AccountId,
        freshness: Freshness,
    ) -> Result<Option<ProfileRow>, LedgerError> {
        if let Some(row) = self.cached(freshness, |c, h| c.profile(id.0, h)).await {
            return Ok(Some(row));
        }
        let stamp = self.inner.cache.read_stamp();
        let row = self.inner.store.profile(id.0).await?;
        if let (Some(stamp), Some(row)) = (stamp, &row) {
            self.inner.cache.remember_profile(stamp, row);
        }
        Ok(row)
    }

    /// [`Ledger::document`], from the read cache when `freshness` allows.
    pub async fn document_as(
        &self,
        kind: &str,
        id: &str,
        freshness: Freshness,
    ) -> Result<Option<StoredDocument>, LedgerError> {
        if let Some(doc) = self.cached(freshness, |c, h| c.document(kind, id, h)).await {
            return Ok(Some(doc));
        }
        let stamp = self.inner.cache.read_stamp();
        let doc = self.inner.store.document(kind, id).await?;
        if let (Some(stamp), Some(doc)) = (stamp, &doc) {
            self.inner.cache.remember_document(stamp, doc);
        }
        Ok(doc)
    }

    /// A document a batch found at another version than a request read: the next read goes
    /// to the database.
    pub fn forget_document(&self, kind: &str, id: &str) {
        self.inner.cache.forget_document(kind, id);
    }

    /// [`Ledger::counter_values`], from the read cache when `freshness` allows (then every key
    /// is answered, zero included).
    pub async fn counter_values_as(
        &self,
        keys: &[String],
        freshness: Freshness,
    ) -> Result<Vec<(String, i64)>, LedgerError> {
        if let Some(values) = self.cached(freshness, |c, h| c.counters(keys, h)).await {
            return Ok(keys.iter().cloned().zip(values).collect());
        }
        self.counter_values(keys).await
    }

    /// An account with its balances.
    /// The answer stored for a request made with [`Ledger::submit_request`], without submitting
    /// anything: `None` while the key is unused, `IdempotencyKeyReused` when it was used for a
    /// different request. A service answers a retry from it before checks that the first
    /// request's own effects would now fail (an order it paid is no longer payable).
    pub async fn answered_request(
        &self,
        key: &IdempotencyKey,
        request_fingerprint: &str,
    ) -> Result<Option<Result<Outcome, LedgerError>>, LedgerError> {
        Ok(self
            .answered_observed(key, request_fingerprint)
            .await?
            .map(|a| a.result))
    }

    /// [`Ledger::answered_request`] with what the first request observed.
    pub async fn answered_observed(
        &self,
        key: &IdempotencyKey,
        request_fingerprint: &str,
    ) -> Result<Option<Answer>, LedgerError> {
        let Some(stored) = self.inner.store.idempotency(key).await? else {
            return Ok(None);
        };
        apply::StoredOutcome::decode(&stored)
            .answer_observed(key, &request_hash(request_fingerprint))
            .map(Some)
    }

    pub async fn account(&self, id: AccountId) -> Result<(Account, Balance), LedgerError> {
        self.inner
            .store
            .account(id)
            .await?
            .ok_or(LedgerError::UnknownAccount { account: id })
    }

    /// The id the next account will be given: every account's id is below it.
    pub async fn next_account_id(&self) -> Result<u64, LedgerError> {
        Ok(self.inner.store.chain_head().await?.next_account_id)
    }

    /// Statement lines (with running balance) after `after_seq`, at most `limit` (≤ 1,000) plus
    /// the rest of the last transaction, in stable (transaction, entry) order.
    pub async fn entries(
        &self,
        id: AccountId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StatementLine>, LedgerError> {
        self.account(id).await?;
        let limit = limit.clamp(1, STATEMENT_PAGE_MAX);
        Ok(self.inner.store.statement(id, after_seq, limit).await?)
    }

    pub async fn pending(&self, id: PendingId) -> Result<Pending, LedgerError> {
        self.inner
            .store
            .pending(id)
            .await?
            .ok_or(LedgerError::PendingNotFound { pending: id })
    }

    pub async fn hold(&self, id: HoldId) -> Result<Hold, LedgerError> {
        self.inner
            .store
            .hold(id)
            .await?
            .ok_or(LedgerError::HoldNotFound { hold: id })
    }

    /// The profile the account service keeps for an account (written with the account).
    pub async fn profile(&self, id: AccountId) -> Result<Option<ProfileRow>, LedgerError> {
        Ok(self.inner.store.profile(id.0).await?)
    }

    /// A page of profiles, in account-id order.
    pub async fn profiles(&self, query: &ProfileQuery) -> Result<Vec<ProfileRow>, LedgerError> {
        Ok(self.inner.store.profiles(query).await?)
    }

    /// A page of statement lines with their transactions' metadata, in (seq, idx) order.
    pub async fn statement_page(
        &self,
        query: &StatementQuery,
    ) -> Result<Vec<StatementRow>, LedgerError> {
        Ok(self.inner.store.statement_page(query).await?)
    }

    /// The first journal transaction committed at or after `from_ms`, if the store can tell.
    pub async fn first_seq_from(&self, from_ms: i64) -> Result<Option<u64>, LedgerError> {
        Ok(self.inner.store.first_seq_from(from_ms).await?)
    }

    /// Current values of counters (absent ones are not returned), read in pages of the most
    /// keys the store takes at once.
    pub async fn counter_values(&self, keys: &[String]) -> Result<Vec<(String, i64)>, LedgerError> {
        let mut values = Vec::new();
        for page in keys.chunks(COUNTERS_READ_MAX) {
            values.extend(self.inner.store.counter_values(page).await?);
        }
        Ok(values)
    }

    /// A document at its current version.
    pub async fn document(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, LedgerError> {
        Ok(self.inner.store.document(kind, id).await?)
    }

    /// Documents of one kind after an id, in id order.
    pub async fn documents_after(
        &self,
        kind: &str,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, LedgerError> {
        Ok(self
            .inner
            .store
            .documents_after(kind, after_id, limit)
            .await?)
    }

    /// Outbox events of the given streams after a sequence number, in order.
    pub async fn outbox_after(
        &self,
        streams: &[String],
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, LedgerError> {
        Ok(self
            .inner
            .store
            .outbox_after(streams, after_seq, limit)
            .await?)
    }
}
