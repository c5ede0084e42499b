//! `paygate netsim`: the clearing networks off-us, simulated in a process of their own, so
//! the gateway's calls cross a real socket and its timeouts are real.
//!
//! One plain-TCP HTTP/1.1 listener (`--listen`, loopback), one path prefix per network
//! ([`Network::path_prefix`]: `/netsunion`, `/unionpay-qr`, `/cnaps-hvps`, `/cnaps-beps`,
//! `/cnaps-ibps`, `/alipay`, `/wechat-pay`, …: every network of the registry but on-us), each
//! speaking its module's wire format and outcome codes through the same [`Codec`] the clients
//! use. Per network (a TOML file,
//! `--sim-config`, see [`NetsimConfig`]): a latency range, and the rates of rejections,
//! no-answers (booked, never answered), late answers (booked, answered after `late_ms`, past
//! the client's timeout), duplicate answers (the result notice posted twice to
//! `notify_address`), presumed outcomes (NetsUnion's), and scheduled outages (a window after
//! start in which the network drops every connection unanswered, or holds it). The faults are
//! drawn from one RNG seeded by `seed`: a run with the same seed and the same sequence of
//! requests takes the same path.
//!
//! The simulator keeps its own books ([`books`]): a duplicate submit books once, a query
//! finds what a lost answer booked, a reversal voids once. `GET /netsim/books` answers them as
//! JSON; `--books FILE` keeps a JSON snapshot across restarts; `--files DIR` receives the
//! reconciliation files (`DIR/<NETWORK>/<period>.txt`, CNAPS camt.053 as `.xml`: the codec's
//! [`Codec::file_extension`]): hourly NetsUnion batches and every network's business date,
//! rewritten as they change.

pub mod books;
mod server;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use self::books::{Books, Entry};
use super::{Network, nets_union, notice::NoticeKeys, wire::Codec};
use crate::clock::Clock;

/// Longest any configured delay may be.
pub const DELAY_MS_MAX: u64 = 600_000;
/// Most outages per network.
pub const OUTAGES_MAX: usize = 64;

/// The simulator's settings (`--sim-config FILE`, TOML).
///
/// ```toml
/// seed = 7
/// notify_address = "127.0.0.1:9000"  # result notices (late, duplicate); empty: none
/// [[networks]]
/// network = "NETS_UNION"
/// latency_min_ms = 5
/// latency_max_ms = 20                  # uniform in [min, max]
/// reject_rate = 0.1
/// no_answer_rate = 0.2
/// late_rate = 0.05
/// late_ms = 5000
/// duplicate_rate = 0.02
/// presumed_rate = 0.05                 # NetsUnion only
/// outages = [{ after_ms = 60000, for_ms = 30000, mode = "refuse" }]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetsimConfig {
    pub seed: u64,
    /// `host:port` the result notices are posted to (`<prefix>/notify`); empty: none.
    pub notify_address: String,
    /// Longest a no-answer or a holding outage keeps a connection before dropping it.
    pub hang_ms_max: u64,
    /// How often the snapshot and the reconciliation files are written when they changed.
    pub flush_interval_ms: u64,
    /// Faults per network; a network not listed answers at once, always.
    pub networks: Vec<NetworkFaults>,
    /// Empty: the system clock. An RFC 3339 instant: a rehearsal clock that reads it at start
    /// and runs on at real speed (as the gateway's `clock.start`), so a sandbox walks both
    /// through the same cutover.
    pub clock_start: String,
}

impl Default for NetsimConfig {
    fn default() -> Self {
        NetsimConfig {
            seed: 1,
            notify_address: String::new(),
            hang_ms_max: 60_000,
            flush_interval_ms: 500,
            networks: Vec::new(),
            clock_start: String::new(),
        }
    }
}

/// How one network misbehaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkFaults {
    pub network: Network,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// Share of new submits and refunds declined.
    pub reject_rate: f64,
    /// Share of new submits, refunds and reversals booked and never answered.
    pub no_answer_rate: f64,
    /// Share of new submits, refunds and reversals answered `late_ms` late.
    pub late_rate: f64,
    pub late_ms: u64,
    /// Share of answers whose result notice is posted twice.
    pub duplicate_rate: f64,
    /// Share of NetsUnion answers that are presumed (异常成功 / 异常失败).
    pub presumed_rate: f64,
    pub outages: Vec<Outage>,
}

impl Default for NetworkFaults {
    fn default() -> Self {
        NetworkFaults {
            network: nets_union::NETWORK,
            latency_min_ms: 0,
            latency_max_ms: 0,
            reject_rate: 0.0,
            no_answer_rate: 0.0,
            late_rate: 0.0,
            late_ms: 0,
            duplicate_rate: 0.0,
            presumed_rate: 0.0,
            outages: Vec::new(),
        }
    }
}

/// A window, counted from the simulator's start, in which a network is down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub after_ms: u64,
    pub for_ms: u64,
    pub mode: OutageMode,
}

/// What a network does in an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// Drops every connection without an answer.
    Refuse,
    /// Holds every connection unanswered (up to `hang_ms_max`), then drops it.
    Hang,
}

impl NetworkFaults {
    /// The outage in force `elapsed_ms` after start, if any.
    pub fn outage_at(&self, elapsed_ms: u64) -> Option<OutageMode> {
        self.outages
            .iter()
            .find(|o| (o.after_ms..o.after_ms.saturating_add(o.for_ms)).contains(&elapsed_ms))
            .map(|o| o.mode)
    }
}

impl NetsimConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<NetsimConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: NetsimConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Rates within 0..=1 (no-answer and late together too), delays bounded, min ≤ max, each
    /// network once, presumed outcomes for NetsUnion only, no on-us.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=DELAY_MS_MAX).contains(&self.hang_ms_max)
            || !(1..=60_000).contains(&self.flush_interval_ms)
        {
            return Err("hang_ms_max and flush_interval_ms must be positive and bounded".into());
        }
        for (n, f) in self.networks.iter().enumerate() {
            let name = f.network.as_str();
            let rates = [
                f.reject_rate,
                f.no_answer_rate,
                f.late_rate,
                f.duplicate_rate,
                f.presumed_rate,
                f.no_answer_rate + f.late_rate,
            ];
            if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
                return Err(format!(
                    "{name}: every rate (and no-answer + late) is within 0..=1"
                ));
            }
            if f.latency_min_ms > f.latency_max_ms
                || [f.latency_max_ms, f.late_ms]
                    .iter()
                    .any(|d| *d > DELAY_MS_MAX)
                || f.outages.len() > OUTAGES_MAX
                || f.outages.iter().any(|o| o.for_ms > DELAY_MS_MAX * 10)
            {
                return Err(format!(
                    "{name}: delays within 0..={DELAY_MS_MAX}, min ≤ max"
                ));
            }
            if !f.network.is_remote() {
                return Err(format!("{name} is not simulated (it is in process)"));
            }
            if f.presumed_rate > 0.0 && !f.network.spec().presumed_outcomes {
                return Err(format!("{name} answers no presumed outcomes"));
            }
            if self.networks[..n].iter().any(|o| o.network == f.network) {
                return Err(format!("{name} is listed twice"));
            }
        }
        Ok(())
    }
}

/// The codec a network speaks (none in process): the registry's ([`Network::codec`]).
pub fn codec(network: Network) -> Option<Box<dyn Codec>> {
    network.codec()
}

/// Where the simulator keeps its books and files.
#[derive(Debug, Clone, Default)]
pub struct Storage {
    /// The JSON snapshot of the books, loaded at start when it exists.
    pub books: Option<PathBuf>,
    /// The folder of the reconciliation files.
    pub files: Option<PathBuf>,
}

struct State {
    config: NetsimConfig,
    storage: Storage,
    clock: Clock,
    started_ms: i64,
    books: Mutex<Books>,
    rng: Mutex<StdRng>,
    /// The networks' notice keys: a notice of a network with one carries its MAC.
    notice_keys: NoticeKeys,
}

/// A bound simulator: [`Netsim::run`] serves until its shutdown future resolves.
pub struct Netsim {
    listener: tokio::net::TcpListener,
    state: Arc<State>,
}

impl Netsim {
    /// Binds `listen` and loads the books' snapshot, if there is one. Notices are signed with
    /// `notice_keys` (a network without a key posts them unsigned, and a gateway refuses them).
    pub async fn bind(
        listen: SocketAddr,
        config: NetsimConfig,
        storage: Storage,
        notice_keys: NoticeKeys,
    ) -> Result<Netsim, String> {
        config.validate()?;
        let entries: Vec<Entry> = match &storage.books {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            _ => Vec::new(),
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let clock = if config.clock_start.is_empty() {
            Clock::system()
        } else {
            let at = time::OffsetDateTime::parse(
                &config.clock_start,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| format!("clock_start: an RFC 3339 instant ({e})"))?;
            Clock::starting_at(
                i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
                    .map_err(|_| "clock_start is out of range".to_owned())?,
            )
        };
        let state = State {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config,
            storage,
            started_ms: clock.now_ms(),
            clock,
            books: Mutex::new(Books::from_entries(entries)),
            notice_keys,
        };
        Ok(Netsim {
            listener,
            state: Arc::new(state),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Serves until `shutdown` resolves, then writes the books and files one last time.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), String> {
        let state = self.state;
        let flusher = tokio::spawn(server::flush_every(state.clone()));
        tokio::select! {
            () = server::accept(self.listener, state.clone()) => {}
            () = shutdown => {}
        }
        flusher.abort();
        server::flush(&state)
    }
}
