//! The listener of the clearing networks' result notices (交易结果通知): when a movement a
//! network did not answer in time completes, the network posts its outcome to
//! `<prefix>/notify` (`/netsunion/notify`, `/unionpay-qr/notify`, …) in its own format. Here a
//! notice is limited (body size, notices in hand, notices a second per source address),
//! authenticated (the MAC of the body under the network's key, [`crate::clearing::notice`]),
//! decoded by the network's codec and handed to the account service, which settles the call
//! through the recovery worker's path; the network gets the answer its format expects.
//!
//! | what | answer | counted as (`paygate_clearing_notices_total`) |
//! |---|---|---|
//! | settled now, final already, or not decided yet | 200, the network's acknowledgement | `settled`, `already_final`, `not_final` |
//! | no call to this network under the reference | 404 | `unknown_reference` |
//! | an amount other than the call's: refused, logged for reconciliation | 409 | `amount_differs` |
//! | no MAC / a wrong MAC (logged without the body) | 401 / 403 | `mac_missing` / `mac_invalid` |
//! | unreadable in the network's format | 400 | `malformed` |
//! | over `body_bytes_max` | 413 | `too_large` |
//! | over `rate_per_s_per_source` | 429 | `rate_limited` |
//! | over `in_flight_max`, the record moving under it, or a failure | 503 (the network resends) | `busy`, `error` |
//!
//! Plain HTTP on loopback, or mutual TLS with the networks' client certificates
//! (`clearing.notices.client_ca`). Started and drained with the gateway: at shutdown it stops
//! accepting and lets the notices in hand finish.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};
use tokio_rustls::TlsAcceptor;

use crate::{
    account::{AccountService, CallSettler, NoticeVerdict},
    clearing::{
        Network,
        notice::{MAC_HEADER, NOTICE_PATH, Notice, NoticeKeys, NoticesConfig},
        wire::Codec,
    },
    telemetry::{Metrics, NoticeLabels, ReasonLabels},
    tls::handshake_failure_reason,
};

/// Most source addresses whose rate is tracked (the table starts over when it is full).
const SOURCES_MAX: usize = 4_096;
/// Most connections open at once; one more is closed at once.
const CONNECTIONS_MAX: usize = 1_024;
/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// How long the listener waits at shutdown for the notices in hand.
const DRAIN_MS: u64 = 10_000;

/// What takes the notices: the account service and the settlers above it, the keys, the limits.
pub struct NoticeDesk {
    accounts: AccountService,
    settlers: Arc<dyn CallSettler>,
    keys: NoticeKeys,
    metrics: Metrics,
    config: NoticesConfig,
    in_flight: Semaphore,
    started: Instant,
    /// Per source address: the second (since `started`) counted, and the notices in it.
    rates: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

/// An answer: its status, content type and body.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

fn plain(status: StatusCode, body: &str) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_owned(),
    }
}

impl NoticeDesk {
    pub fn new(
        accounts: AccountService,
        settlers: Arc<dyn CallSettler>,
        keys: NoticeKeys,
        metrics: Metrics,
        config: &NoticesConfig,
    ) -> NoticeDesk {
        NoticeDesk {
            accounts,
            settlers,
            keys,
            metrics,
            in_flight: Semaphore::new(config.in_flight_max),
            config: config.clone(),
            started: Instant::now(),
            rates: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, network: Network, result: &str) {
        self.metrics
            .clearing_notices
            .get_or_create(&NoticeLabels {
                network: network.as_str().to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Whether one more notice from `source` fits this second.
    fn admit(&self, source: IpAddr) -> bool {
        let per_s = self.config.rate_per_s_per_source;
        if per_s == 0 {
            return true;
        }
        let second = self.started.elapsed().as_secs();
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        if rates.len() >= SOURCES_MAX && !rates.contains_key(&source) {
            rates.clear();
        }
        let counted = rates.entry(source).or_insert((second, 0));
        if counted.0 != second {
            *counted = (second, 0);
        }
        counted.1 = counted.1.saturating_add(1);
        counted.1 <= per_s
    }

    /// Takes one request from `source`.
    async fn take(&self, source: IpAddr, request: Request<Incoming>) -> Answer {
        let path = request.uri().path().to_owned();
        let found = Network::under_path(&path)
            .filter(|(_, rest)| *rest == NOTICE_PATH)
            .and_then(|(network, _)| network.codec().map(|codec| (network, codec)));
        let Some((network, codec)) = found else {
            return plain(StatusCode::NOT_FOUND, "no notices are taken here");
        };
        if request.method() != http::Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "POST a notice");
        }
        if !self.admit(source) {
            self.count(network, "rate_limited");
            return plain(StatusCode::TOO_MANY_REQUESTS, "too many notices");
        }
        let Ok(_permit) = self.in_flight.try_acquire() else {
            self.count(network, "busy");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "busy, send it again");
        };
        let mac = request
            .headers()
            .get(MAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match Limited::new(request.into_body(), self.config.body_bytes_max)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                self.count(network, "too_large");
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "notice too large");
            }
        };
        let key = self.keys.of(network);
        let Some(mac) = mac else {
            self.count(network, "mac_missing");
            tracing::warn!(network = network.as_str(), %source, bytes = body.len(), "a result notice without its MAC; refused");
            return plain(StatusCode::UNAUTHORIZED, "the notice carries no MAC");
        };
        if !key.is_some_and(|key| key.verifies(&body, &mac)) {
            self.count(network, "mac_invalid");
            tracing::warn!(network = network.as_str(), %source, bytes = body.len(), "a result notice whose MAC does not verify; refused");
            return plain(StatusCode::FORBIDDEN, "the notice's MAC does not verify");
        }
        let decoded = std::str::from_utf8(&body)
            .map_err(|e| e.to_string())
            .and_then(|text| codec.decode_notice(text));
        let notice = match decoded {
            Ok(notice) => notice,
            Err(e) => {
                self.count(network, "malformed");
                tracing::warn!(network = network.as_str(), %source, error = %e, "an unreadable result notice; refused");
                return plain(StatusCode::BAD_REQUEST, "unreadable notice");
            }
        };
        self.settle(network, codec.as_ref(), &notice).await
    }

    /// Settles what a verified notice says, and answers the network.
    async fn settle(&self, network: Network, codec: &dyn Codec, notice: &Notice) -> Answer {
        let name = network.as_str();
        let reference = notice.reference.as_str();
        let verdict = self
            .accounts
            .settle_notice(network, notice, self.settlers.as_ref())
            .await;
        let taken = Answer {
            status: StatusCode::OK,
            content_type: codec.content_type(),
            body: codec.notice_answer(self.accounts.now_ms()),
        };
        match verdict {
            Ok(NoticeVerdict::Settled) => {
                self.count(network, "settled");
                tracing::info!(network = name, reference, outcome = ?notice.outcome, "a result notice settled its call");
                taken
            }
            Ok(NoticeVerdict::AlreadyFinal) => {
                self.count(network, "already_final");
                taken
            }
            Ok(NoticeVerdict::NotFinal) => {
                self.count(network, "not_final");
                taken
            }
            Ok(NoticeVerdict::UnknownReference) => {
                self.count(network, "unknown_reference");
                tracing::warn!(
                    network = name,
                    reference,
                    "a result notice about no call of ours to this network"
                );
                plain(StatusCode::NOT_FOUND, "no such call")
            }
            Ok(NoticeVerdict::AmountDiffers { ours_minor }) => {
                self.count(network, "amount_differs");
                tracing::error!(
                    network = name,
                    reference,
                    ours_minor,
                    theirs_minor = notice.amount.minor,
                    "a result notice for another amount than the call's; refused, nothing settled (a reconciliation item)"
                );
                plain(StatusCode::CONFLICT, "the amount is not the call's")
            }
            Ok(NoticeVerdict::Busy) => {
                self.count(network, "busy");
                plain(StatusCode::SERVICE_UNAVAILABLE, "busy, send it again")
            }
            Err(e) => {
                self.count(network, "error");
                tracing::error!(network = name, reference, error = %e, "a result notice could not be settled; the network will resend it");
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not settled, send it again",
                )
            }
        }
    }
}

/// Takes notices on `listener` (over TLS with `tls`) until `shutdown` resolves, then lets the
/// notices in hand finish (at most [`DRAIN_MS`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    desk: Arc<NoticeDesk>,
    shutdown: impl Future<Output = ()> + Clone + Send + 'static,
) {
    let mut connections = JoinSet::new();
    let stop = shutdown.clone();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "notice listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if connections.len() >= CONNECTIONS_MAX {
            continue;
        }
        let _ = stream.set_nodelay(true);
        let connection = connection(stream, peer, tls.clone(), desk.clone(), shutdown.clone());
        connections.spawn(connection);
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_millis(DRAIN_MS), drained)
        .await
        .is_err()
    {
        tracing::warn!("notice listener: notices still in hand at the end of the drain; cut");
    }
    connections.abort_all();
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    desk: Arc<NoticeDesk>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limit = Duration::from_millis(desk.config.connection_timeout_ms);
    let metrics = desk.metrics.clone();
    let served = async move {
        let Some(acceptor) = tls else {
            return http1(stream, peer.ip(), desk, shutdown).await;
        };
        let handshake = Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
        let reason = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => return http1(stream, peer.ip(), desk, shutdown).await,
            Ok(Err(e)) => handshake_failure_reason(&e),
            Err(_) => "timeout",
        };
        tracing::info!(%peer, reason, "notice listener: TLS handshake failed");
        metrics
            .tls_handshake_failures
            .get_or_create(&ReasonLabels {
                reason: format!("notices_{reason}"),
            })
            .inc();
    };
    if tokio::time::timeout(limit, served).await.is_err() {
        tracing::info!(%peer, "notice listener: connection open too long; closed");
    }
}

/// Serves HTTP/1.1 on one connection until it closes, or, at shutdown, until its request in
/// hand is answered.
async fn http1<IO>(
    io: IO,
    source: IpAddr,
    desk: Arc<NoticeDesk>,
    shutdown: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let desk = desk.clone();
        async move {
            let answer = desk.take(source, request).await;
            let response = Response::builder()
                .status(answer.status)
                .header(http::header::CONTENT_TYPE, answer.content_type)
                .body(Full::new(Bytes::from(answer.body)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
            Ok::<_, Infallible>(response)
        }
    });
    let served =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        () = shutdown => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}
