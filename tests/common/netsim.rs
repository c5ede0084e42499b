//! `paygate netsim` as a real process for the tests: started on an ephemeral port with a
//! given fault configuration, killed when dropped; its books read over HTTP.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use paygate::{
    clearing::{
        CardDirection, CardInstruction, ClearingClient, Network,
        http::{Endpoint, HttpError},
        netsim::books::Entry,
        notice::{MAC_HEADER, Notice, NoticeKey},
        routing::{
            ClearingConfig, NetworkEndpointConfig, PaymentMethod, RecoveryConfig, RouteConfig,
            Scenario,
        },
    },
    clock::Clock,
    config::Config,
    money::{Currency, Money},
    secrets::Secrets,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

/// `paygate netsim` on an ephemeral port, killed when dropped.
pub struct Sim {
    child: Child,
    pub address: String,
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub async fn start(config: &str) -> Sim {
        Sim::start_in(tempfile::tempdir().unwrap(), config).await
    }

    /// Starts the simulator on the books and files in `dir`.
    pub async fn start_in(dir: tempfile::TempDir, config: &str) -> Sim {
        Sim::spawn(dir, config, None).await
    }

    /// Starts the simulator posting its result notices to `line`'s gateway, signed with the
    /// networks' keys (`config` without a `notify_address`: the line's is added).
    pub async fn start_notifying(config: &str, line: &NoticeLine) -> Sim {
        let config = format!("notify_address = \"{}\"\n{config}", line.listen);
        Sim::spawn(tempfile::tempdir().unwrap(), &config, Some(&line.secret)).await
    }

    async fn spawn(dir: tempfile::TempDir, config: &str, notice_secret: Option<&Path>) -> Sim {
        let config_path = dir.path().join("netsim.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_paygate"));
        command
            .args(["netsim", "--listen", "127.0.0.1:0", "--sim-config"])
            .arg(&config_path)
            .arg("--files")
            .arg(dir.path().join("files"))
            .arg("--books")
            .arg(dir.path().join("books.json"));
        if let Some(secret) = notice_secret {
            command.arg("--notice-secret").arg(secret);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("paygate netsim starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("netsim listening on ") {
                    return address.to_owned();
                }
            }
            panic!("netsim ended before it listened")
        })
        .await
        .expect("netsim prints its address");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Sim {
            child,
            address,
            dir,
        }
    }

    /// The simulator's books, from `GET /netsim/books`.
    /// Kills the simulator and hands back its folder (books and files), to start again on.
    pub fn stop(self) -> tempfile::TempDir {
        let Sim { child, dir, .. } = self;
        drop(child);
        dir
    }

    /// A configuration change that routes every quick-pay movement (top-ups, withdrawals,
    /// quick pays) to `network` on this simulator (300 ms timeout), everything else on-us.
    pub fn routing_quick_pay(
        &self,
        network: Network,
        recovery: RecoveryConfig,
    ) -> impl FnOnce(&mut Config) + use<> {
        let address = self.address.clone();
        move |config: &mut Config| {
            let route = |method, network| RouteConfig {
                method,
                scenario: Scenario::Any,
                bank: "*".to_owned(),
                network,
            };
            config.clearing = ClearingConfig {
                routes: vec![
                    route(PaymentMethod::QuickPay, network),
                    route(PaymentMethod::Any, Network::ON_US),
                ],
                networks: vec![NetworkEndpointConfig {
                    network,
                    address,
                    timeout_ms: 300,
                }],
                issuers: Vec::new(),
                recovery,
                notices: std::mem::take(&mut config.clearing.notices),
            };
        }
    }

    /// A client of `network` on this simulator, as the gateway's own (for what a test makes
    /// the network do behind the gateway's back).
    pub fn client(&self, network: Network) -> std::sync::Arc<dyn ClearingClient> {
        let endpoint = Endpoint {
            address: self.address.clone(),
            timeout_ms: 2_000,
        };
        paygate::clearing::routing::client(network, endpoint, Clock::system())
    }

    /// Books on `network` a card debit of `minor` fen under `reference` that the gateway never
    /// sent: a break the network's file has alone (长款).
    pub async fn plant_debit(&self, network: Network, reference: &str, minor: i64) {
        let planted = CardInstruction {
            reference: reference.to_owned(),
            direction: CardDirection::DebitCard,
            card_token: "token".to_owned(),
            amount: Money::new(Currency::from_code("CNY").unwrap(), minor),
        };
        self.client(network).submit(&planted).await;
    }

    /// [`Sim::routing_quick_pay`] with a recovery worker that queries a call `first_query_ms`
    /// after it was sent (above the 300 ms timeout), then every 100 ms round with the wait
    /// doubling up to 2 s, and presumes it failed 30 s after it was sent.
    pub fn routing_quick_pay_recovered(
        &self,
        network: Network,
        first_query_ms: u64,
    ) -> impl FnOnce(&mut Config) + use<> {
        self.routing_quick_pay(
            network,
            RecoveryConfig {
                interval_ms: 100,
                first_query_after_ms: first_query_ms,
                query_backoff_max_ms: 2_000,
                bound_ms: 30_000,
                ..Default::default()
            },
        )
    }

    /// [`Sim::routing_quick_pay`] with the recovery worker kept away (its first query after 5
    /// minutes): what the gateway booked is what the requests' own answers settled.
    pub fn routing_quick_pay_unrecovered(
        &self,
        network: Network,
    ) -> impl FnOnce(&mut Config) + use<> {
        self.routing_quick_pay(
            network,
            RecoveryConfig {
                interval_ms: 1_000,
                first_query_after_ms: 300_000,
                query_backoff_max_ms: 300_000,
                bound_ms: 500_000,
                ..Default::default()
            },
        )
    }

    pub async fn books(&self) -> Vec<Entry> {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        let request = "GET /netsim/books HTTP/1.1\r\nHost: netsim\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    pub async fn entry(&self, network: Network, reference: &str) -> Entry {
        let books = self.books().await;
        books
            .into_iter()
            .find(|e| e.network == network && e.reference == reference)
            .unwrap_or_else(|| panic!("{network:?} booked {reference}"))
    }
}

/// Where a simulator's result notices go: a gateway's notice listener on a loopback port
/// chosen before either process starts (each needs the other's address), and the server
/// secret whose per-network keys both sides derive.
pub struct NoticeLine {
    pub listen: SocketAddr,
    pub secret: PathBuf,
    _dir: tempfile::TempDir,
}

impl NoticeLine {
    pub fn new() -> NoticeLine {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.key");
        Secrets::load_or_create(&secret, true).unwrap();
        // A free port, let go for the gateway to bind.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        NoticeLine {
            listen,
            secret,
            _dir: dir,
        }
    }

    /// The gateway's side: notices taken on the line's port, keys from the line's secret.
    pub fn gateway(&self) -> impl FnOnce(&mut Config) + use<> {
        let (listen, secret) = (self.listen, self.secret.clone());
        move |config: &mut Config| {
            config.clearing.notices.enabled = true;
            config.clearing.notices.listen = listen;
            config.secrets.key_file = secret;
        }
    }

    /// `network`'s notice key, as the gateway derives it.
    pub fn key(&self, network: Network) -> NoticeKey {
        let secrets = Secrets::load_or_create(&self.secret, false).unwrap();
        NoticeKey(secrets.notice_key(network.as_str()))
    }

    /// `notice` in `network`'s format, as the network would post it.
    pub fn body(network: Network, notice: &Notice) -> String {
        let codec = network.codec().expect("a network on the wire");
        codec
            .encode_notice(notice, Clock::system().now_ms())
            .unwrap()
    }

    /// Posts `body` as `network`'s notice with `mac` (none: no MAC header): the answer's
    /// status and body.
    pub async fn post(&self, network: Network, body: String, mac: Option<String>) -> (u16, String) {
        let codec = network.codec().expect("a network on the wire");
        let endpoint = Endpoint {
            address: self.listen.to_string(),
            timeout_ms: 10_000,
        };
        let path = format!("{}/notify", network.path_prefix());
        let headers: Vec<(&'static str, String)> =
            mac.into_iter().map(|mac| (MAC_HEADER, mac)).collect();
        let posted = paygate::clearing::http::post_with(
            &endpoint,
            &path,
            codec.content_type(),
            &headers,
            body,
        )
        .await;
        match posted {
            Ok(bytes) => (200, String::from_utf8_lossy(&bytes).into_owned()),
            Err(HttpError::Status { status, body }) => (status, body),
            Err(e) => panic!("the notice listener did not answer: {e}"),
        }
    }

    /// Posts `notice` as `network` would, signed with its key.
    pub async fn post_signed(&self, network: Network, notice: &Notice) -> (u16, String) {
        let body = NoticeLine::body(network, notice);
        let mac = self.key(network).sign(body.as_bytes());
        self.post(network, body, Some(mac)).await
    }
}
