//! `paygate accounts import FILE`: bulk onboarding from a JSON-lines file, through a running
//! gateway's `ImportAccounts` stream over mutual TLS (so its rules, idempotency and read cache
//! hold as for any OpenAccount). One JSON object per line, the fields of `OpenAccountRequest`;
//! a refused or unreadable line is written to the error report and the others go on.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Subcommand;
use serde::Deserialize;
use tokio::sync::{Mutex, mpsc};
use tonic::transport::{Channel, Endpoint};

use super::ConfigArgs;
use crate::{
    config::Config,
    grpc::{account::IMPORT_LINES_MAX, pb},
    tls::DevPkiLayout,
};

/// Most import streams side by side.
const IMPORT_STREAMS_MAX: usize = 64;
/// Progress lines at most this often.
const PROGRESS_INTERVAL_MS: u64 = 500;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Open the accounts of a JSON-lines file (one OpenAccountRequest per line: request_id,
    /// kind, currency, owner_id, identity {full_name, document_type, document_number, mobile},
    /// bound_card_number, parent_account_id, display_name) through a running gateway. Each line
    /// keeps its request_id: run it again after an interruption and opened lines answer as
    /// before. Refused lines go to the error report (JSON lines); exit status 0 when every line
    /// was opened, 3 when some were refused.
    Import {
        /// The JSON-lines file.
        file: PathBuf,
        /// The gateway (default: https://localhost:<server.listen port>).
        #[arg(long)]
        target: Option<String>,
        /// CA certificate of the gateway (default: the development PKI's).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Client certificate and key (default: the development PKI's for --caller).
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Caller whose development certificate to use when --cert is not given.
        #[arg(long, default_value = "core-banking")]
        caller: String,
        /// Lines per ImportAccounts message (1..=1000).
        #[arg(long, default_value_t = 500)]
        chunk_lines: usize,
        /// Streams side by side (1..=64).
        #[arg(long, default_value_t = 4)]
        streams: usize,
        /// Where refused lines go (default: FILE.errors.jsonl).
        #[arg(long)]
        errors: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

impl AccountsCommand {
    pub fn options(&self) -> &ConfigArgs {
        let AccountsCommand::Import { config, .. } = self;
        config
    }
}

/// One line of the file: an OpenAccountRequest in its JSON shape (enum values by name, with
/// or without their prefix).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    request_id: String,
    kind: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    owner_id: String,
    #[serde(default)]
    identity: Option<IdentityLine>,
    #[serde(default)]
    bound_card_number: String,
    #[serde(default)]
    parent_account_id: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityLine {
    full_name: String,
    document_type: String,
    document_number: String,
    #[serde(default)]
    mobile: String,
}

impl Line {
    fn into_request(self) -> Result<pb::OpenAccountRequest, String> {
        let kind = enum_value("kind", &self.kind, "ACCOUNT_KIND_", |n| {
            pb::AccountKind::from_str_name(n).map(|k| k as i32)
        })?;
        let identity = match self.identity {
            None => None,
            Some(i) => Some(pb::PersonIdentity {
                full_name: i.full_name,
                document_type: enum_value(
                    "identity.document_type",
                    &i.document_type,
                    "ID_DOCUMENT_TYPE_",
                    |n| pb::IdDocumentType::from_str_name(n).map(|k| k as i32),
                )?,
                document_number: i.document_number,
                mobile: i.mobile,
            }),
        };
        Ok(pb::OpenAccountRequest {
            request_id: self.request_id,
            kind,
            currency: self.currency,
            owner_id: self.owner_id,
            identity,
            bound_card_number: self.bound_card_number,
            parent_account_id: self.parent_account_id,
            display_name: self.display_name,
        })
    }
}

/// An enum value by its full name or its name without `prefix`.
fn enum_value(
    field: &str,
    name: &str,
    prefix: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<i32, String> {
    parse(name)
        .or_else(|| parse(&format!("{prefix}{name}")))
        .ok_or_else(|| format!("{field}: unknown value {name:?}"))
}

/// What one line came to, for the report.
#[derive(Debug, serde::Serialize)]
struct Refused {
    line: u64,
    code: String,
    reason: String,
    message: String,
}

/// Counts shared by the streams, for the progress line.
#[derive(Debug, Default)]
struct Progress {
    opened: AtomicU64,
    refused: AtomicU64,
}

pub async fn run(cmd: AccountsCommand, config: &Config) -> ExitCode {
    match import(cmd, config).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(3),
        Err(e) => {
            eprintln!("paygate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Imports the file; the number of lines not opened.
async fn import(cmd: AccountsCommand, config: &Config) -> Result<u64, String> {
    let AccountsCommand::Import {
        file,
        target,
        ca,
        cert,
        key,
        caller,
        chunk_lines,
        streams,
        errors,
        config: _,
    } = cmd;
    if !(1..=IMPORT_LINES_MAX).contains(&chunk_lines) {
        return Err(format!("--chunk-lines: 1..={IMPORT_LINES_MAX}"));
    }
    if !(1..=IMPORT_STREAMS_MAX).contains(&streams) {
        return Err(format!("--streams: 1..={IMPORT_STREAMS_MAX}"));
    }
    let total = count_lines(&file)?;
    let errors_path = errors.unwrap_or_else(|| {
        let mut name = file.clone().into_os_string();
        name.push(".errors.jsonl");
        PathBuf::from(name)
    });
    let report = std::fs::File::create(&errors_path)
        .map_err(|e| format!("{}: {e}", errors_path.display()))?;
    let report = Arc::new(Mutex::new(std::io::BufWriter::new(report)));
    let channel = connect(config, target, ca, cert.zip(key), &caller).await?;

    let progress = Arc::new(Progress::default());
    let (chunks_tx, chunks_rx) = mpsc::channel::<Vec<pb::ImportAccountLine>>(streams * 2);
    let chunks_rx = Arc::new(Mutex::new(chunks_rx));
    let mut workers = Vec::with_capacity(streams);
    for _ in 0..streams {
        workers.push(tokio::spawn(stream_worker(
            channel.clone(),
            chunks_rx.clone(),
            progress.clone(),
            report.clone(),
        )));
    }
    let started = Instant::now();
    let ticker = tokio::spawn(show_progress(progress.clone(), total, started));
    let read = read_chunks(&file, chunk_lines, &chunks_tx, &progress, &report).await;
    drop(chunks_tx);
    let mut failure = read.err();
    for worker in workers {
        match worker.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(format!("import stream: {e}"))),
        }
    }
    ticker.abort();
    report
        .lock()
        .await
        .flush()
        .map_err(|e| format!("{}: {e}", errors_path.display()))?;
    let opened = progress.opened.load(Ordering::Relaxed);
    let refused = progress.refused.load(Ordering::Relaxed);
    let elapsed_s = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "\rimported {total} lines in {elapsed_s:.1} s: {opened} opened, {refused} refused ({:.0} lines/s); refused lines in {}",
        (opened + refused) as f64 / elapsed_s,
        errors_path.display()
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(total.saturating_sub(opened)),
    }
}

fn count_lines(file: &Path) -> Result<u64, String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut n = 0u64;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| format!("{}: {e}", file.display()))?;
        if !line.trim().is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

/// Reads the file into chunks of `chunk_lines` lines; a line that does not parse is refused
/// here (INVALID_ARGUMENT), never sent.
async fn read_chunks(
    file: &Path,
    chunk_lines: usize,
    chunks: &mpsc::Sender<Vec<pb::ImportAccountLine>>,
    progress: &Progress,
    report: &Mutex<std::io::BufWriter<std::fs::File>>,
) -> Result<(), String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut chunk = Vec::with_capacity(chunk_lines);
    for (index, text) in std::io::BufReader::new(f).lines().enumerate() {
        let text = text.map_err(|e| format!("{}: {e}", file.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let number = index as u64 + 1;
        let parsed = serde_json::from_str::<Line>(&text)
            .map_err(|e| e.to_string())
            .and_then(Line::into_request);
        match parsed {
            Ok(account) => chunk.push(pb::ImportAccountLine {
                line: number,
                account: Some(account),
            }),
            Err(message) => {
                progress.refused.fetch_add(1, Ordering::Relaxed);
                let refused = Refused {
                    line: number,
                    code: "INVALID_ARGUMENT".to_owned(),
                    reason: "LINE_UNREADABLE".to_owned(),
                    message,
                };
                write_refused(report, &refused).await?;
            }
        }
        if chunk.len() == chunk_lines {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_lines));
            if chunks.send(full).await.is_err() {
                return Err("every import stream ended".to_owned());
            }
        }
    }
    if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
        return Err("every import stream ended".to_owned());
    }
    Ok(())
}

/// One ImportAccounts stream: sends chunks as they come and records each answer.
async fn stream_worker(
    channel: Channel,
    chunks: Arc<Mutex<mpsc::Receiver<Vec<pb::ImportAccountLine>>>>,
    progress: Arc<Progress>,
    report: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
) -> Result<(), String> {
    let mut client = pb::account_service_client::AccountServiceClient::new(channel);
    // One message in flight per stream: the gateway answers a stream's messages in order.
    let (tx, rx) = mpsc::channel::<pb::ImportAccountsRequest>(1);
    let mut answers = client
        .import_accounts(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("ImportAccounts: {} {}", s.code(), s.message()))?
        .into_inner();
    loop {
        let next = chunks.lock().await.recv().await;
        let Some(lines) = next else {
            return Ok(());
        };
        let sent = lines.len();
        tx.send(pb::ImportAccountsRequest { lines })
            .await
            .map_err(|_| "the gateway ended the import stream".to_owned())?;
        let answer = answers
            .message()
            .await
            .map_err(|s| format!("ImportAccounts: {} {}", s.code(), s.message()))?
            .ok_or("the gateway ended the import stream")?;
        if answer.results.len() != sent {
            return Err(format!(
                "the gateway answered {} lines of {sent}",
                answer.results.len()
            ));
        }
        for result in answer.results {
            match result.refusal {
                None => {
                    progress.opened.fetch_add(1, Ordering::Relaxed);
                }
                Some(r) => {
                    progress.refused.fetch_add(1, Ordering::Relaxed);
                    let refused = Refused {
                        line: result.line,
                        code: r.code,
                        reason: r.reason,
                        message: r.message,
                    };
                    write_refused(&report, &refused).await?;
                }
            }
        }
    }
}

async fn write_refused(
    report: &Mutex<std::io::BufWriter<std::fs::File>>,
    refused: &Refused,
) -> Result<(), String> {
    let line = serde_json::to_string(refused).map_err(|e| e.to_string())?;
    writeln!(report.lock().await, "{line}").map_err(|e| format!("error report: {e}"))
}

/// A progress bar on stderr, redrawn in place.
async fn show_progress(progress: Arc<Progress>, total: u64, started: Instant) {
    const WIDTH: u64 = 30;
    loop {
        tokio::time::sleep(Duration::from_millis(PROGRESS_INTERVAL_MS)).await;
        let opened = progress.opened.load(Ordering::Relaxed);
        let refused = progress.refused.load(Ordering::Relaxed);
        let done = opened + refused;
        let filled = (done * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r[{}{}] {done}/{total} lines, {refused} refused, {rate:.0}/s ",
            "#".repeat(filled as usize),
            " ".repeat((WIDTH - filled) as usize),
        );
    }
}

/// A channel to the gateway as the importing caller.
async fn connect(
    config: &Config,
    target: Option<String>,
    ca: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
    caller: &str,
) -> Result<Channel, String> {
    let pki = DevPkiLayout::new(config.tls.dev_pki_dir.clone());
    let ca = ca.unwrap_or_else(|| pki.ca_cert());
    let (cert, key) = identity.unwrap_or_else(|| (pki.client_cert(caller), pki.client_key(caller)));
    let tls = super::client_tls(&ca, &cert, &key, "localhost")?;
    let target =
        target.unwrap_or_else(|| format!("https://localhost:{}", config.server.listen.port()));
    Endpoint::from_shared(target.clone())
        .map_err(|e| format!("--target {target}: {e}"))?
        .tls_config(tls)
        .map_err(|e| format!("TLS: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot reach {target}: {e}"))
}
