//! The ledger core (账务核心): double-entry, two-phase, idempotent, batched.
//!
//! The one place money moves. Every mutating call carries an [`IdempotencyKey`] and goes
//! through one batcher task per process ([`engine`]), which commits many requests in one
//! database transaction (group commit) and validates each in order against the balances as the
//! batch sees them ([`apply`]). Reads go straight to storage, where an account's balances are
//! its row plus the journal entries the row does not include yet. Background tasks: the sweeper
//! voids expired pending transfers and holds; the janitor deletes idempotency keys past their
//! retention.
//!
//! No transport types live here: the gRPC layer maps [`LedgerError::reason`] to status codes.

pub mod apply;
pub mod audit;
mod background;
mod cache;
mod cache_packed;
mod changes;
mod checks;
pub mod engine;
pub mod error;
pub mod hash;
pub mod model;
mod reads;
pub mod store;
pub mod verify;

use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tracing::Instrument;

pub use apply::{Answer, Command, Observe, Observed, Outcome, Refusal};
pub use cache::{AccountState, Freshness};
pub(crate) use cache::{EVICTION_ROUNDS_MAX, allocation_bytes, drop_every_other, table_bytes};
pub(crate) use cache_packed::PackedMetadata;
pub use changes::Changes;
pub use error::LedgerError;
pub use model::*;
pub use verify::{VerifyReport, verify};

use self::checks::{check_key, check_observe};
use self::store::LedgerStore;
use self::{
    apply::{ApplyLimits, BatchItem},
    engine::Submission,
};
use crate::{clock::Clock, config::LedgerConfig, money::Money, telemetry::LedgerMetrics};

/// Handle to a running ledger. Cheap to clone; call [`Ledger::shutdown`] before dropping the
/// last one to finish queued batches.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn LedgerStore>,
    clock: Clock,
    /// `None` once shutting down.
    sender: RwLock<Option<mpsc::Sender<Submission>>>,
    stop: watch::Sender<bool>,
    /// Moves after every committed batch, this process's or another's ([`Changes`]).
    changes: watch::Sender<u64>,
    batcher: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    background: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
    /// What services read to validate, kept current by the batches ([`cache`]).
    cache: Arc<cache::ReadCache>,
    /// Shared reads of the chain head for current reads from the cache.
    probe: cache::HeadProbe,
}

impl Inner {
    async fn submit(
        &self,
        key: Option<IdempotencyKey>,
        command: Command,
    ) -> Result<Outcome, LedgerError> {
        let fingerprint = apply::fingerprint(&command);
        self.submit_as(key, fingerprint, command, Observe::default())
            .await?
            .result
    }

    /// Submits and waits; the outer error is a submission that never reached a batch.
    async fn submit_as(
        &self,
        key: Option<IdempotencyKey>,
        fingerprint: String,
        command: Command,
        observe: Observe,
    ) -> Result<Answer, LedgerError> {
        if let Some(k) = &key {
            check_key(k)?;
        }
        check_observe(&observe)?;
        let (reply, answer) = oneshot::channel();
        // The wait for the batch, a child of the caller's span; the batch's own span links it.
        let wait = tracing::info_span!("ledger.batch_wait");
        let item = BatchItem {
            key,
            fingerprint,
            method: audit::method_of(&command),
            command,
            observe,
        };
        {
            let sender = self
                .sender
                .read()
                .map_err(|_| LedgerError::ShuttingDown)?
                .clone()
                .ok_or(LedgerError::ShuttingDown)?;
            // The clone is dropped right after sending, so shutdown can close the channel.
            sender
                .try_send(Submission {
                    item,
                    reply,
                    queued_at: std::time::Instant::now(),
                    span: wait.clone(),
                })
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => LedgerError::Overloaded,
                    mpsc::error::TrySendError::Closed(_) => LedgerError::ShuttingDown,
                })?;
        }
        answer
            .instrument(wait)
            .await
            .map_err(|_| LedgerError::ShuttingDown)
    }
}

fn unexpected(outcome: &Outcome) -> LedgerError {
    tracing::error!(?outcome, "ledger answered with an unexpected outcome");
    LedgerError::Storage
}

/// What a request made with [`Ledger::submit_request`] is stored and compared under.
fn request_hash(request_fingerprint: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"paygate.ledger.request.v1\0");
    h.update(request_fingerprint.as_bytes());
    hex::encode(h.finalize())
}

impl Ledger {
    /// Spawns the batcher, the expiry sweeper and the idempotency janitor.
    pub async fn start(
        store: Arc<dyn LedgerStore>,
        config: &LedgerConfig,
        clock: Clock,
    ) -> Result<Ledger, LedgerError> {
        Ledger::start_observed(store, config, clock, LedgerMetrics::default()).await
    }

    /// [`Ledger::start`], its batches observed in `metrics` (the gateway's registered ones).
    pub async fn start_observed(
        store: Arc<dyn LedgerStore>,
        config: &LedgerConfig,
        clock: Clock,
        metrics: LedgerMetrics,
    ) -> Result<Ledger, LedgerError> {
        if config.batch_size_max == 0 || config.queue_depth_max == 0 {
            return Err(LedgerError::invalid(
                "ledger batch_size_max and queue_depth_max must be positive",
            ));
        }
        let (tx, rx) = mpsc::channel(config.queue_depth_max);
        let limits = ApplyLimits {
            pending_timeout_max_ms: config.pending_timeout_max_ms,
            hold_timeout_max_ms: config.hold_timeout_max_ms,
        };
        let (changes, _) = watch::channel(0);
        let cache = Arc::new(cache::ReadCache::new(
            usize::try_from(config.read_cache_mib)
                .unwrap_or(usize::MAX)
                .saturating_mul(1 << 20),
        ));
        let batcher = tokio::spawn(engine::run_batcher(
            engine::BatcherParts {
                store: store.clone(),
                batch_size_max: config.batch_size_max,
                limits,
                clock: clock.clone(),
                changes: changes.clone(),
                metrics,
                cache: cache.clone(),
            },
            rx,
        ));
        let probe = cache::HeadProbe::start(store.clone());
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            store,
            clock,
            sender: RwLock::new(Some(tx)),
            stop,
            changes,
            batcher: tokio::sync::Mutex::new(Some(batcher)),
            background: tokio::sync::Mutex::new(Vec::new()),
            cache,
            probe,
        });
        let sweeper = tokio::spawn(background::run_sweeper(
            Arc::downgrade(&inner),
            inner.stop.subscribe(),
            config.expiry_sweep_interval_ms.max(1),
            config.expiry_sweep_items_max,
        ));
        let janitor = tokio::spawn(background::run_janitor(
            Arc::downgrade(&inner),
            inner.stop.subscribe(),
            config.idempotency_purge_interval_ms.max(1),
            i64::from(config.idempotency_retention_days) * 86_400_000,
        ));
        let poller = tokio::spawn(changes::run_poller(
            Arc::downgrade(&inner),
            inner.stop.subscribe(),
            config.changes_poll_interval_ms.max(1),
        ));
        inner
            .background
            .lock()
            .await
            .extend([sweeper, janitor, poller]);
        Ok(Ledger { inner })
    }

    /// Stops accepting requests, stops the background tasks and finishes every queued batch.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        for task in self.inner.background.lock().await.drain(..) {
            let _ = task.await;
        }
        if let Ok(mut sender) = self.inner.sender.write() {
            sender.take();
        }
        if let Some(batcher) = self.inner.batcher.lock().await.take() {
            let _ = batcher.await;
        }
    }

    /// Requests queued for a batch now (0 once shutting down).
    pub fn queue_depth(&self) -> usize {
        self.inner
            .sender
            .read()
            .ok()
            .and_then(|sender| {
                sender
                    .as_ref()
                    .map(|s| s.max_capacity().saturating_sub(s.capacity()))
            })
            .unwrap_or(0)
    }

    /// The clock every batch and deadline of this ledger reads.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Now, by [`Ledger::clock`].
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Notices of committed batches, for readers that follow the ledger live.
    pub fn changes(&self) -> Changes {
        Changes::new(self.inner.changes.subscribe())
    }

    /// The store behind this ledger (verify and tests read it directly).
    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.inner.store
    }

    /// Submits a raw command (the typed methods below are the usual way in).
    pub async fn submit(
        &self,
        key: IdempotencyKey,
        command: Command,
    ) -> Result<Outcome, LedgerError> {
        self.inner.submit(Some(key), command).await
    }

    /// Submits a command whose idempotency is judged on the caller's request rather than on the
    /// command derived from it (which may carry server-chosen times): the same key with the same
    /// `request_fingerprint` answers the first outcome, a different one is refused with
    /// `IdempotencyKeyReused`.
    pub async fn submit_request(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        command: Command,
    ) -> Result<Outcome, LedgerError> {
        self.submit_observing(key, request_fingerprint, command, Observe::default())
            .await?
            .result
    }

    /// [`Ledger::submit_request`], recording what `observe` names of the state the command
    /// leaves (right after it, in its batch) with its outcome: the answer carries it, and so
    /// does every replay, so an answer built from it is the same every time. The outer error is
    /// a submission that never reached a batch (queue full, shutting down, malformed key).
    pub async fn submit_observing(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        command: Command,
        observe: Observe,
    ) -> Result<Answer, LedgerError> {
        self.inner
            .submit_as(
                Some(key),
                request_hash(request_fingerprint),
                command,
                observe,
            )
            .await
    }

    /// Claims `key` for a refusal a service decided before the batch from state it read: the
    /// refusal is stored like the ledger's own, so a retry answers it again. If the key already
    /// holds an answer for this request, that first answer comes back instead (a success, or
    /// an earlier refusal); another request under the key is `IdempotencyKeyReused`.
    pub async fn refuse_request(
        &self,
        key: IdempotencyKey,
        request_fingerprint: &str,
        refusal: Refusal,
    ) -> Result<Answer, LedgerError> {
        self.submit_observing(
            key,
            request_fingerprint,
            Command::Refuse(refusal),
            Observe::default(),
        )
        .await
    }

    pub async fn create_account(
        &self,
        key: IdempotencyKey,
        spec: NewAccount,
    ) -> Result<Account, LedgerError> {
        match self.submit(key, Command::CreateAccount(spec)).await? {
            Outcome::Account(a) => Ok(a),
            other => Err(unexpected(&other)),
        }
    }

    /// Posts one balanced transaction of two or more legs, all or nothing.
    pub async fn post(
        &self,
        key: IdempotencyKey,
        tx: NewTransaction,
    ) -> Result<Posted, LedgerError> {
        match self.submit(key, Command::Post(tx)).await? {
            Outcome::Posted(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Posts several transactions in order, all or nothing.
    pub async fn post_linked(
        &self,
        key: IdempotencyKey,
        txs: Vec<NewTransaction>,
    ) -> Result<Vec<Posted>, LedgerError> {
        match self
            .submit(key, Command::PostLinked { transactions: txs })
            .await?
        {
            Outcome::Linked(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Reserves a two-phase transfer (pending debits and credits) until posted, voided or expired.
    pub async fn create_pending(
        &self,
        key: IdempotencyKey,
        p: NewPending,
    ) -> Result<Pending, LedgerError> {
        match self.submit(key, Command::CreatePending(p)).await? {
            Outcome::Pending(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Posts a pending transfer, fully (`None`) or partly; the rest is released.
    pub async fn post_pending(
        &self,
        key: IdempotencyKey,
        id: PendingId,
        amount: Option<Money>,
    ) -> Result<Posted, LedgerError> {
        match self
            .submit(
                key,
                Command::PostPending {
                    pending: id,
                    amount,
                },
            )
            .await?
        {
            Outcome::Posted(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn void_pending(
        &self,
        key: IdempotencyKey,
        id: PendingId,
    ) -> Result<Pending, LedgerError> {
        match self
            .submit(key, Command::VoidPending { pending: id })
            .await?
        {
            Outcome::Pending(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Holds an amount of an account (judicial freeze, pre-authorisation).
    pub async fn place_hold(
        &self,
        key: IdempotencyKey,
        hold: NewHold,
    ) -> Result<Hold, LedgerError> {
        match self.submit(key, Command::PlaceHold(hold)).await? {
            Outcome::Hold(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn release_hold(&self, key: IdempotencyKey, id: HoldId) -> Result<Hold, LedgerError> {
        match self.submit(key, Command::ReleaseHold { hold: id }).await? {
            Outcome::Hold(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    /// Captures up to the held amount into `to` (one journal transaction); the rest is released.
    pub async fn capture_hold(
        &self,
        key: IdempotencyKey,
        id: HoldId,
        amount: Money,
        to: AccountId,
        metadata: Metadata,
    ) -> Result<Posted, LedgerError> {
        match self
            .submit(
                key,
                Command::CaptureHold {
                    hold: id,
                    amount,
                    to,
                    metadata,
                },
            )
            .await?
        {
            Outcome::Posted(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Reverses (冲正) a posted transaction with a new one that points at it; at most once.
    pub async fn reverse(
        &self,
        key: IdempotencyKey,
        tx: TransactionId,
        reason: String,
    ) -> Result<Posted, LedgerError> {
        match self
            .submit(
                key,
                Command::Reverse {
                    transaction: tx,
                    reason,
                },
            )
            .await?
        {
            Outcome::Posted(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Freezes, unfreezes or closes an account (closing only at zero with nothing open).
    pub async fn set_account_status(
        &self,
        key: IdempotencyKey,
        account: AccountId,
        status: AccountStatus,
    ) -> Result<Account, LedgerError> {
        match self
            .submit(key, Command::SetAccountStatus { account, status })
            .await?
        {
            Outcome::Account(a) => Ok(a),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs one expiry sweep now (the background sweeper does this periodically); returns how
    /// many items it voided or released.
    pub async fn sweep_expired(&self) -> Result<usize, LedgerError> {
        background::sweep_once(&self.inner, 10_000).await
    }
}
