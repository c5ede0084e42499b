//! The read cache (读缓存): what services read to validate a request before its batch —
//! profiles, documents (merchants, orders), account status and balances, limit counters — kept
//! in memory and kept current by this process's own batches, so that a payment reaches its batch
//! without a database round trip.
//!
//! Every entry carries the `batches_committed` after the batch that stamped it. This process's
//! batches see the chain head they lock: a batch that finds it where this process's previous
//! batch left it knows nobody else wrote in between; one that finds it moved starts a new
//! continuity (`continuous_since`), and entries stamped before it are never used again.
//!
//! Two uses, two promises:
//! - **Checked** reads (a request's validation before its batch) use entries of the current
//!   continuity: the state as of this process's last batch, without a database read. Another
//!   process may have written since; that is the same race as reading the database just before
//!   another process's batch, and the batch settles it: it re-checks everything that moves money
//!   under its lock (account status and balances, counters, document versions). A version
//!   conflict evicts the document.
//! - **Current** reads (GetBalance, GetOrder) use an entry only when a batch stamped it and a
//!   chain-head read that started after the call arrived (one read shared by every call waiting,
//!   [`HeadProbe`]) still equals this process's last batch. Otherwise they read the database.
//!
//! Bounded in bytes: its hash tables' own memory (every slot they have room for, used or not)
//! plus the heap its entries own (strings, document bodies). Past `bytes_max` every other entry
//! that owns heap is dropped until it is down to three quarters of it, or, when that is not
//! enough, it is emptied (its tables kept, unless they alone are past it); it refills from
//! the batches and reads that follow. (While a table doubles, the old and the new one are held
//! together for a moment.)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{mpsc, oneshot};

use super::{
    cache_packed::{PackedProfile, counter_digest},
    model::{AccountId, AccountStatus, Balance, StoredDocument},
    store::{LedgerStore, ProfileChange, ProfileRow},
};

/// Halvings a full cache tries before it empties itself (each halves what its entries own);
/// also the storage's account cache's.
pub(crate) const EVICTION_ROUNDS_MAX: usize = 4;

/// What the allocator adds to each heap allocation (a string, a document body) an entry owns.
const ALLOCATION_OVERHEAD_BYTES: usize = 16;

/// The heap one allocation of `len` bytes costs (none for an empty string or slice). Also the
/// packed entries' and the storage's account cache's measure.
pub(crate) fn allocation_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len + ALLOCATION_OVERHEAD_BYTES
    }
}

/// A hash table's own memory: a slot and a control byte for every bucket (a table of fewer than
/// 8 buckets holds one less than it has, a larger one 7/8 of them). Also the storage's account
/// cache's measure.
pub(crate) fn table_bytes<K, V>(table: &HashMap<K, V>) -> usize {
    let capacity = table.capacity();
    let buckets = match capacity {
        0 => 0,
        1..7 => capacity + 1,
        _ => capacity / 7 * 8,
    };
    buckets * (std::mem::size_of::<(K, V)>() + 1)
}

/// Drops every other entry of `table` (in its own order, so about half of it, spread at
/// random); the bytes `bytes_of` says they owned. Also the storage's account cache's halving.
pub(crate) fn drop_every_other<K, V>(
    table: &mut HashMap<K, V>,
    bytes_of: impl Fn(&K, &V) -> usize,
) -> usize {
    let (mut keep, mut freed) = (true, 0usize);
    table.retain(|k, v| {
        keep = !keep;
        if !keep {
            freed += bytes_of(k, v);
        }
        keep
    });
    freed
}

/// Shrinks `table` to what its entries need, freeing the old table before the new one is
/// allocated (`shrink_to_fit` would hold both at once: for a million-slot counter table that
/// was the process's peak memory): the entries wait in a vector, which has no empty slots.
fn shrink<K: std::hash::Hash + Eq, V>(table: &mut HashMap<K, V>) {
    let mut entries = Vec::with_capacity(table.len());
    entries.extend(std::mem::take(table));
    let mut smaller = HashMap::with_capacity(entries.len());
    smaller.extend(entries);
    *table = smaller;
}

/// A string's heap.
fn string_bytes(s: &str) -> usize {
    allocation_bytes(s.len())
}

/// An account's status and balances, as a batch left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub status: AccountStatus,
    pub balance: Balance,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A batch re-checks what matters: any cached entry will do.
    Checked,
    /// The answer must be the database's as of some moment during the call.
    Current,
    /// As `Current`, with the chain head already read during this call
    /// ([`Ledger::current`](super::Ledger::current)): several reads of one call share it.
    CurrentAt(u64),
}

/// What one committed batch tells the cache.
#[derive(Debug, Default)]
pub(crate) struct BatchDelta {
    /// `batches_committed` when the batch locked the head, and after it committed.
    pub head_before: u64,
    pub head_after: u64,
    pub accounts: Vec<(AccountId, AccountState)>,
    pub counters: Vec<(String, i64)>,
    pub documents: Vec<StoredDocument>,
    pub profiles: Vec<ProfileRow>,
    pub profile_changes: Vec<ProfileChange>,
}

/// Set in a [`Stamped`] entry's stamp when it was read from the database outside a batch
/// (`batches_committed` never comes near 2⁶³).
const FROM_READ: u64 = 1 << 63;

/// An entry with the head it is current as of, in one word (a counter's slot is 32 bytes).
#[derive(Debug)]
struct Stamped<T> {
    /// `batches_committed` after the batch that stamped it, or (read from the database) as of
    /// this process's last batch before the read, with [`FROM_READ`] set: good for checks,
    /// never for current reads.
    stamp: u64,
    value: T,
}

impl<T> Stamped<T> {
    fn batch(at: u64, value: T) -> Stamped<T> {
        debug_assert!(at < FROM_READ);
        Stamped { stamp: at, value }
    }

    fn read(at: u64, value: T) -> Stamped<T> {
        debug_assert!(at < FROM_READ);
        Stamped {
            stamp: at | FROM_READ,
            value,
        }
    }

    fn at(&self) -> u64 {
        self.stamp & !FROM_READ
    }

    fn is_from_read(&self) -> bool {
        self.stamp & FROM_READ != 0
    }
}

#[derive(Debug, Default)]
struct State {
    /// `batches_committed` after this process's last batch; `None` before its first.
    head: Option<u64>,
    /// Entries stamped at or after this are current as of `head`.
    continuous_since: u64,
    profiles: HashMap<u64, Stamped<PackedProfile>>,
    accounts: HashMap<AccountId, Stamped<AccountState>>,
    /// By [`counter_digest`] of the key.
    counters: HashMap<u128, Stamped<i64>>,
    /// Documents by kind, then id.
    documents: HashMap<String, HashMap<String, Stamped<StoredDocument>>>,
    bytes: usize,
    /// Moves at every emptying: a read that began before it remembers nothing.
    epoch: u64,
}

impl State {
    /// Empties it. The tables keep their size: refilling them allocates nothing new (moving the
    /// full tables elsewhere to be freed would hold two of each at once, against the bound).
    fn clear(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.profiles.clear();
        self.accounts.clear();
        self.counters.clear();
        self.documents.clear();
        self.bytes = 0;
    }

    /// Its whole memory: the tables' plus the heap of their entries.
    fn total_bytes(&self) -> usize {
        self.bytes
            + table_bytes(&self.profiles)
            + table_bytes(&self.accounts)
            + table_bytes(&self.counters)
            + table_bytes(&self.documents)
            + self.documents.values().map(table_bytes).sum::<usize>()
    }

    /// Makes room for `incoming` more bytes when they would take it past `bytes_max`: drops
    /// every other entry of the tables whose entries own heap (profiles, counters, documents)
    /// until it is down to three quarters of the bound; empties it when that is not enough.
    /// Halving spreads the refill over the calls that follow; emptying all of it sent every
    /// call of the next moment to the database at once (a latency spike each time a busy
    /// process filled it).
    fn make_room(&mut self, bytes_max: usize, incoming: usize) {
        if self.total_bytes().saturating_add(incoming) <= bytes_max {
            return;
        }
        // A read that began before this remembers nothing (what it found may be older than a
        // batch's entry dropped here).
        self.epoch = self.epoch.wrapping_add(1);
        let target = bytes_max / 4 * 3;
        for _ in 0..EVICTION_ROUNDS_MAX {
            if self.bytes == 0 || self.total_bytes().saturating_add(incoming) <= target {
                break;
            }
            let freed = self.drop_every_other();
            self.bytes = self.bytes.saturating_sub(freed);
        }
        if self.total_bytes().saturating_add(incoming) > bytes_max {
            self.clear();
        }
        tracing::debug!(
            profiles = self.profiles.len(),
            counters = self.counters.len(),
            accounts = self.accounts.len(),
            bytes = self.total_bytes(),
            bytes_max,
            "read cache made room"
        );
    }

    /// Drops every other profile, counter and document, and shrinks their tables to what is
    /// left (a table is most of what counters cost, and without the shrink a table that had
    /// just doubled would stay as large, so that getting under the bound took dropping nearly
    /// every profile); the heap it freed.
    fn drop_every_other(&mut self) -> usize {
        let mut freed = drop_every_other(&mut self.profiles, |_, e| e.value.heap_bytes());
        shrink(&mut self.profiles);
        drop_every_other(&mut self.counters, |_, _| 0);
        shrink(&mut self.counters);
        for by_id in self.documents.values_mut() {
            freed += drop_every_other(by_id, |_, e| document_bytes(&e.value));
            shrink(by_id);
        }
        freed
    }

    /// Makes room if it holds more than `bytes_max`, and frees its tables too if they alone
    /// are past it (the one that just doubled).
    fn bound(&mut self, bytes_max: usize) {
        if self.total_bytes() > bytes_max {
            self.make_room(bytes_max, 0);
            if self.total_bytes() > bytes_max {
                self.profiles = HashMap::new();
                self.accounts = HashMap::new();
                self.counters = HashMap::new();
                self.documents = HashMap::new();
            }
        }
    }

    /// Whether `entry` may answer a checked read (`probed` `None`) or a current read made at
    /// chain head `probed`.
    fn usable<T>(&self, entry: &Stamped<T>, probed: Option<u64>) -> bool {
        let Some(head) = self.head else {
            return false;
        };
        let continuous = entry.at() >= self.continuous_since;
        match probed {
            None => continuous,
            Some(probed) => continuous && !entry.is_from_read() && head == probed,
        }
    }

    /// The stamp of an entry read from the database now.
    fn read_stamp(&self) -> Option<ReadStamp> {
        self.head.map(|at| ReadStamp {
            at,
            epoch: self.epoch,
        })
    }
}

/// When a database read that may be remembered began: this process's head then, and the
/// cache's epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadStamp {
    at: u64,
    epoch: u64,
}

/// The process's read cache. See the module documentation.
#[derive(Debug)]
pub(crate) struct ReadCache {
    state: Mutex<State>,
    bytes_max: usize,
}

impl ReadCache {
    pub(crate) fn new(bytes_max: usize) -> ReadCache {
        ReadCache {
            state: Mutex::new(State::default()),
            bytes_max,
        }
    }

    /// The head as of this process's last batch, if it has committed one.
    pub(crate) fn head(&self) -> Option<u64> {
        self.state.lock().ok().and_then(|s| s.head)
    }

    pub(crate) fn profile(&self, id: u64, probed: Option<u64>) -> Option<ProfileRow> {
        let state = self.state.lock().ok()?;
        let entry = state.profiles.get(&id)?;
        if !state.usable(entry, probed) {
            return None;
        }
        entry.value.unpack(id)
    }

    pub(crate) fn account(&self, id: AccountId, probed: Option<u64>) -> Option<AccountState> {
        let state = self.state.lock().ok()?;
        let entry = state.accounts.get(&id)?;
        state.usable(entry, probed).then_some(entry.value)
    }

    /// Every one of `keys`, or `None` if any is missing or not usable.
    pub(crate) fn counters(&self, keys: &[String], probed: Option<u64>) -> Option<Vec<i64>> {
        // Digested before the lock, which the batches wait for too.
        let digests: Vec<u128> = keys.iter().map(|key| counter_digest(key)).collect();
        let state = self.state.lock().ok()?;
        digests
            .iter()
            .map(|digest| {
                let entry = state.counters.get(digest)?;
                state.usable(entry, probed).then_some(entry.value)
            })
            .collect()
    }

    pub(crate) fn document(
        &self,
        kind: &str,
        id: &str,
        probed: Option<u64>,
    ) -> Option<StoredDocument> {
        let state = self.state.lock().ok()?;
        let entry = state.documents.get(kind)?.get(id)?;
        state.usable(entry, probed).then(|| entry.value.clone())
    }

    /// This process's head before a database read whose answer may be remembered: `None`
    /// (remember nothing) before its first batch.
    pub(crate) fn read_stamp(&self) -> Option<ReadStamp> {
        self.state.lock().ok().and_then(|s| s.read_stamp())
    }

    /// A profile read from the database after `stamp` ([`ReadCache::read_stamp`]): good for
    /// checked reads, never over an entry a batch stamped meanwhile.
    pub(crate) fn remember_profile(&self, stamp: ReadStamp, row: &ProfileRow) {
        let packed = PackedProfile::pack(row);
        self.remember(stamp, |state, stamp| {
            if state.profiles.contains_key(&row.account_id) {
                return 0;
            }
            let bytes = packed.heap_bytes();
            state
                .profiles
                .insert(row.account_id, Stamped::read(stamp, packed));
            bytes
        });
    }

    /// An account read from the database after `stamp` (as above).
    pub(crate) fn remember_account(&self, stamp: ReadStamp, id: AccountId, value: AccountState) {
        self.remember(stamp, |state, stamp| {
            if state.accounts.contains_key(&id) {
                return 0;
            }
            state.accounts.insert(id, Stamped::read(stamp, value));
            0
        });
    }

    /// A document read from the database after `stamp` (as above).
    pub(crate) fn remember_document(&self, stamp: ReadStamp, doc: &StoredDocument) {
        self.remember(stamp, |state, stamp| {
            let by_id = state.documents.entry(doc.kind.clone()).or_default();
            if by_id.contains_key(&doc.id) {
                return 0;
            }
            by_id.insert(doc.id.clone(), Stamped::read(stamp, doc.clone()));
            document_bytes(doc)
        });
    }

    /// Forgets a document a batch found at another version than the cached one.
    pub(crate) fn forget_document(&self, kind: &str, id: &str) {
        if let Ok(mut state) = self.state.lock()
            && let Some(by_id) = state.documents.get_mut(kind)
        {
            by_id.remove(id);
        }
    }

    /// Inserts what a read that began at `stamp` found, unless the cache was emptied since
    /// (the read may be older than a batch whose entry went with it).
    fn remember(&self, stamp: ReadStamp, insert: impl FnOnce(&mut State, u64) -> usize) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.epoch != stamp.epoch {
            return;
        }
        let added = insert(&mut state, stamp.at);
        state.bytes = state.bytes.saturating_add(added);
        state.bound(self.bytes_max);
    }

    /// What a committed batch changed and loaded, stamped with the head after it.
    pub(crate) fn committed(&self, delta: BatchDelta) {
        // Packed and digested before the lock, which every read waits for.
        let profiles: Vec<(u64, PackedProfile)> = delta
            .profiles
            .iter()
            .map(|row| (row.account_id, PackedProfile::pack(row)))
            .collect();
        let counters: Vec<(u128, i64)> = delta
            .counters
            .iter()
            .map(|(key, value)| (counter_digest(key), *value))
            .collect();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        assert!(delta.head_after >= delta.head_before);
        assert!(delta.head_after < FROM_READ);
        if state.head != Some(delta.head_before) {
            // Another process committed since this one's last batch (or this is the first):
            // what is stamped from here on is current; older entries serve checks only.
            state.continuous_since = delta.head_after;
        }
        state.head = Some(delta.head_after);
        let at = delta.head_after;
        // Room is made before the batch's entries go in, not after: emptied after, the cache
        // would lose the entries its own waiters are about to read (an import's new profiles,
        // read back by each OpenAccount), and each of them would go to the database.
        let incoming = profiles.iter().map(|(_, p)| p.heap_bytes()).sum::<usize>()
            + delta.documents.iter().map(document_bytes).sum::<usize>();
        state.make_room(self.bytes_max, incoming);
        // Heap the batch's entries add, and heap of the entries they replace.
        let (mut added, mut replaced) = (0usize, 0usize);
        for (id, value) in delta.accounts {
            state.accounts.insert(id, Stamped::batch(at, value));
        }
        for (digest, value) in counters {
            state.counters.insert(digest, Stamped::batch(at, value));
        }
        for doc in delta.documents {
            added += document_bytes(&doc);
            let by_id = state.documents.entry(doc.kind.clone()).or_default();
            if let Some(old) = by_id.insert(doc.id.clone(), Stamped::batch(at, doc)) {
                replaced += document_bytes(&old.value);
            }
        }
        for (id, packed) in profiles {
            added += packed.heap_bytes();
            if let Some(old) = state.profiles.insert(id, Stamped::batch(at, packed)) {
                replaced += old.value.heap_bytes();
            }
        }
        for change in delta.profile_changes {
            let id = match &change {
                ProfileChange::FreezeReason { account_id, .. }
                | ProfileChange::Closed { account_id, .. } => *account_id,
            };
            let continuous_since = state.continuous_since;
            let Some(entry) = state.profiles.get_mut(&id) else {
                continue;
            };
            let changed = (entry.at() >= continuous_since)
                .then(|| entry.value.unpack(id))
                .flatten();
            replaced += entry.value.heap_bytes();
            match changed {
                Some(mut row) => {
                    apply_profile_change(&mut row, change);
                    let packed = PackedProfile::pack(&row);
                    added += packed.heap_bytes();
                    *entry = Stamped::batch(at, packed);
                }
                None => {
                    // Known only from before another process wrote: not worth keeping.
                    state.profiles.remove(&id);
                }
            }
        }
        state.bytes = state.bytes.saturating_add(added).saturating_sub(replaced);
        state.bound(self.bytes_max);
    }

    /// The batch failed or its outcome is unknown: nothing cached can be trusted as current.
    pub(crate) fn lost_track(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.head = None;
            state.clear();
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.state.lock().map(|s| s.total_bytes()).unwrap_or(0)
    }
}

/// Most callers waiting for one shared read of the chain head.
const PROBE_WAITERS_MAX: usize = 4_096;

/// Reads of the chain head shared by every current read waiting at the time (single flight):
/// a caller waits for a read that *starts* after it asked, so the head it gets was the
/// database's at some moment during its call. One read serves a whole wave of callers.
#[derive(Debug)]
pub(crate) struct HeadProbe {
    requests: mpsc::Sender<oneshot::Sender<Option<u64>>>,
}

impl HeadProbe {
    /// Spawns the reader; it stops when the probe is dropped.
    pub(crate) fn start(store: Arc<dyn LedgerStore>) -> HeadProbe {
        let (requests, mut queue) =
            mpsc::channel::<oneshot::Sender<Option<u64>>>(PROBE_WAITERS_MAX);
        tokio::spawn(async move {
            let mut waiters = Vec::with_capacity(PROBE_WAITERS_MAX);
            while queue.recv_many(&mut waiters, PROBE_WAITERS_MAX).await > 0 {
                let head = match store.chain_head().await {
                    Ok(head) => Some(head.batches_committed),
                    Err(e) => {
                        tracing::warn!(error = ?e, "reading the chain head for the read cache failed");
                        None
                    }
                };
                for waiter in waiters.drain(..) {
                    let _ = waiter.send(head);
                }
            }
        });
        HeadProbe { requests }
    }

    /// `batches_committed` read after this call; `None` if it could not be read (the caller
    /// reads the database instead).
    pub(crate) async fn head(&self) -> Option<u64> {
        let (reply, answer) = oneshot::channel();
        self.requests.try_send(reply).ok()?;
        answer.await.ok().flatten()
    }
}

/// A profile as a batch changes it (the same rules as the storage's update).
fn apply_profile_change(row: &mut ProfileRow, change: ProfileChange) {
    match change {
        ProfileChange::FreezeReason { reason, .. } => row.freeze_reason = reason,
        ProfileChange::Closed { at_ms, .. } => {
            if row.closed_at_ms.is_none() {
                row.closed_at_ms = Some(at_ms);
            }
        }
    }
}

/// The heap a document owns, its key (the id) included (its slot is the table's).
fn document_bytes(doc: &StoredDocument) -> usize {
    string_bytes(&doc.kind) + 2 * string_bytes(&doc.id) + string_bytes(&doc.body)
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
