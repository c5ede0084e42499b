//! The simulator's listener: plain HTTP/1.1 over TCP (hyper's server connection API, so a
//! network in an outage can drop a connection without answering), the faults, and the
//! writing of the books and files.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use rand::Rng;

use super::{NetworkFaults, OutageMode, State, books::Verdict, codec};
use crate::clearing::{
    Network, ReconPeriod,
    http::{self as wire_http, Endpoint},
    notice::{MAC_HEADER, NOTICE_PATH, Notice},
    wire::{Call, Codec, Reply},
};

/// Most bytes of a request body.
const REQUEST_BYTES_MAX: usize = 1024 * 1024;
/// Most connections served at once.
const CONNECTIONS_MAX: usize = 4_096;

/// Why a connection is dropped without an answer (hyper closes it).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped by the simulator")
    }
}

impl std::error::Error for Dropped {}

type Answer = Result<Response<Full<Bytes>>, Dropped>;

fn respond(status: StatusCode, content_type: &str, body: String) -> Answer {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| Dropped)
}

pub(super) async fn accept(listener: tokio::net::TcpListener, state: Arc<State>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "netsim accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn faults(state: &State, network: Network) -> NetworkFaults {
    state
        .config
        .networks
        .iter()
        .find(|f| f.network == network)
        .cloned()
        .unwrap_or_else(|| NetworkFaults {
            network,
            ..NetworkFaults::default()
        })
}

/// How a new movement or reversal is answered.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Answer,
    NoAnswer,
    Late,
}

struct Draw {
    latency_ms: u64,
    fate: Fate,
    verdict: Verdict,
    duplicate: bool,
}

fn draw(state: &State, f: &NetworkFaults) -> Draw {
    let mut rng = state.rng.lock().unwrap_or_else(|p| p.into_inner());
    let latency_ms = rng.random_range(f.latency_min_ms..=f.latency_max_ms);
    let fate: f64 = rng.random();
    let fate = if fate < f.no_answer_rate {
        Fate::NoAnswer
    } else if fate < f.no_answer_rate + f.late_rate {
        Fate::Late
    } else {
        Fate::Answer
    };
    let verdict = Verdict {
        reject: rng.random::<f64>() < f.reject_rate,
        presumed: rng.random::<f64>() < f.presumed_rate,
    };
    Draw {
        latency_ms,
        fate,
        verdict,
        duplicate: rng.random::<f64>() < f.duplicate_rate,
    }
}

/// `GET`: the simulator's own pages.
fn page(state: &State, path: &str) -> Answer {
    match path {
        "/netsim/health" => respond(StatusCode::OK, "text/plain", "ok".into()),
        "/netsim/books" => {
            let entries = state
                .books
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entries();
            let json = serde_json::to_string_pretty(&entries).map_err(|_| Dropped)?;
            respond(StatusCode::OK, "application/json", json)
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "no such page".into()),
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Answer {
    let path = request.uri().path().to_owned();
    if request.method() == http::Method::GET {
        return page(&state, &path);
    }
    let Some((network, rest)) = Network::under_path(&path) else {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("no network at {path}"),
        );
    };
    let Some(codec) = codec(network) else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not simulated".into());
    };
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let f = faults(&state, network);
    let elapsed_ms = u64::try_from(state.clock.now_ms() - state.started_ms).unwrap_or(0);
    match f.outage_at(elapsed_ms) {
        Some(OutageMode::Refuse) => return Err(Dropped),
        Some(OutageMode::Hang) => {
            tokio::time::sleep(Duration::from_millis(state.config.hang_ms_max)).await;
            return Err(Dropped);
        }
        None => {}
    }
    let body = match Limited::new(request.into_body(), REQUEST_BYTES_MAX)
        .collect()
        .await
    {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "too large".into(),
            );
        }
    };
    let call = match codec.decode_call(rest, &body) {
        Ok(call) => call,
        Err(e) => return respond(StatusCode::BAD_REQUEST, "text/plain", e),
    };
    let draw = draw(&state, &f);
    tokio::time::sleep(Duration::from_millis(draw.latency_ms)).await;
    let exchange = Exchange {
        network,
        codec: codec.as_ref(),
        faults: &f,
        draw,
        traceparent,
    };
    answer(&state, exchange, call).await
}

/// One request to a network, decoded, with its draw of the faults.
struct Exchange<'a> {
    network: Network,
    codec: &'a dyn Codec,
    faults: &'a NetworkFaults,
    draw: Draw,
    traceparent: Option<String>,
}

/// Answers a decoded call from the books: files and queries at once, movements and
/// reversals as the draw says (answer, never, or late). A movement answered late, or whose
/// answer the draw duplicates, is also posted as the network's result notice.
async fn answer(state: &Arc<State>, x: Exchange<'_>, call: Call) -> Answer {
    let network = x.network;
    let now_ms = state.clock.now_ms();
    let content_type = x.codec.content_type();
    let (reply, notice) = {
        let mut books = state.books.lock().unwrap_or_else(|p| p.into_inner());
        let (reply, amount) = match &call {
            Call::Recon(period) => {
                let valid = matches!(period, ReconPeriod::Date(_)) || network.hourly_batches();
                let file = valid.then(|| books.recon(network, period));
                drop(books);
                return match file {
                    Some(file) => {
                        respond(StatusCode::OK, content_type, x.codec.encode_recon(&file))
                    }
                    None => respond(StatusCode::NOT_FOUND, "text/plain", "no such file".into()),
                };
            }
            Call::Query { reference } => {
                let reply = Reply::Query {
                    reference: reference.clone(),
                    outcome: books.query(network, reference),
                };
                drop(books);
                return respond(
                    StatusCode::OK,
                    content_type,
                    x.codec.encode_reply(&reply, now_ms),
                );
            }
            Call::Submit(i) => (
                Reply::Outcome {
                    reference: i.reference.clone(),
                    outcome: books.submit(network, i, x.draw.verdict, now_ms, x.traceparent),
                },
                Some(i.amount),
            ),
            Call::Refund(r) => (
                Reply::Outcome {
                    reference: r.reference.clone(),
                    outcome: books.refund(network, r, x.draw.verdict, now_ms, x.traceparent),
                },
                Some(r.amount),
            ),
            Call::Reverse { reference } => (
                Reply::Reversal {
                    reference: reference.clone(),
                    outcome: books.reverse(network, reference),
                },
                None,
            ),
        };
        // The notice names what the books hold (a resubmit is answered from the first).
        let notice = match (&reply, amount) {
            (Reply::Outcome { reference, outcome }, Some(amount)) => Some(Notice {
                reference: reference.clone(),
                outcome: outcome.clone(),
                amount: books
                    .get(network, reference)
                    .map_or(amount, |entry| entry.amount),
            }),
            _ => None,
        };
        (reply, notice)
    };
    let encoded = x.codec.encode_reply(&reply, now_ms);
    match x.draw.fate {
        Fate::NoAnswer => {
            tokio::time::sleep(Duration::from_millis(state.config.hang_ms_max)).await;
            Err(Dropped)
        }
        Fate::Late => {
            // The notice goes out on its own task: hyper drops this one when the client,
            // timed out, closes the connection.
            let late = Duration::from_millis(x.faults.late_ms);
            if let Some(notice) = notice {
                let notice_state = state.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(late).await;
                    notify(&notice_state, network, &notice, 1);
                });
            }
            tokio::time::sleep(late).await;
            respond(StatusCode::OK, content_type, encoded)
        }
        Fate::Answer => {
            if let (true, Some(notice)) = (x.draw.duplicate, notice) {
                notify(state, network, &notice, 2);
            }
            respond(StatusCode::OK, content_type, encoded)
        }
    }
}

/// Posts `notice` `times` times to the configured address, in the background, in the
/// network's format, with its MAC when the simulator has the network's key.
fn notify(state: &State, network: Network, notice: &Notice, times: u32) {
    if state.config.notify_address.is_empty() {
        return;
    }
    let Some(codec) = codec(network) else {
        return;
    };
    let body = match codec.encode_notice(notice, state.clock.now_ms()) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "netsim cannot write a notice");
            return;
        }
    };
    let mut headers = Vec::new();
    if let Some(key) = state.notice_keys.of(network) {
        headers.push((MAC_HEADER, key.sign(body.as_bytes())));
    }
    let endpoint = Endpoint {
        address: state.config.notify_address.clone(),
        timeout_ms: 5_000,
    };
    let path = format!("{}{NOTICE_PATH}", network.path_prefix());
    let content_type = codec.content_type();
    tokio::spawn(async move {
        for _ in 0..times {
            let posted =
                wire_http::post_with(&endpoint, &path, content_type, &headers, body.clone()).await;
            if let Err(e) = posted {
                tracing::info!(error = %e, "netsim notice not delivered");
            }
        }
    });
}

pub(super) async fn flush_every(state: Arc<State>) -> Infallible {
    let every = Duration::from_millis(state.config.flush_interval_ms);
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = flush(&state) {
            tracing::warn!(error = %e, "netsim could not write its books");
        }
    }
}

/// Writes the snapshot (when it changed) and every reconciliation file that changed.
pub(super) fn flush(state: &State) -> Result<(), String> {
    let (files, snapshot) = {
        let mut books = state.books.lock().unwrap_or_else(|p| p.into_inner());
        let (dirty, changed) = books.take_dirty();
        let files: Vec<_> = dirty
            .into_iter()
            .map(|(network, period)| books.recon(network, &period))
            .collect();
        (files, changed.then(|| books.entries()))
    };
    if let (Some(path), Some(entries)) = (&state.storage.books, snapshot) {
        let json = serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?;
        write_atomically(path, &json)?;
    }
    if let Some(dir) = &state.storage.files {
        for file in files {
            let Some(codec) = codec(file.network) else {
                continue;
            };
            let path = dir.join(file.network.as_str()).join(format!(
                "{}.{}",
                file.period.as_text(),
                codec.file_extension()
            ));
            write_atomically(&path, &codec.encode_recon(&file))?;
        }
    }
    Ok(())
}

fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).map_err(|e| format!("{}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|e| format!("{}: {e}", path.display()))
}
