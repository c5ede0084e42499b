//! The real `paygate` binary as a child process, for the crash tests: started on ephemeral
//! ports (the port read from its log line), killed with SIGKILL, started again on the same
//! database; `paygate ledger verify` on what it left; and a client that retries an unanswered
//! request with the same request id on whichever server is up now.

use std::{
    fs::OpenOptions,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tonic::{
    Code, Status,
    transport::{Channel, ClientTlsConfig, Endpoint},
};

/// The file in the server's folder that keeps its stderr and its WARN and ERROR log lines.
const SERVE_PROBLEMS_LOG: &str = "serve-problems.log";

/// Starts `paygate serve` in `dir` on `database_url` (and the extra `env` settings), on
/// ephemeral ports; returns the child and the gRPC port it logged.
pub fn start_serve(dir: &Path, database_url: &str, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .arg("serve")
        .current_dir(dir)
        .env("PAYGATE_SERVER__LISTEN", "127.0.0.1:0")
        .env("PAYGATE_ADMIN__LISTEN", "127.0.0.1:0")
        .env("PAYGATE_DATABASE__URL", database_url)
        .env("PAYGATE_LOG__FORMAT", "json")
        .envs(env.iter().copied())
        .env_remove("PAYGATE_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(SERVE_PROBLEMS_LOG))
                .expect("stderr log"),
        )
        .spawn()
        .expect("paygate starts");
    let log = dir.join(SERVE_PROBLEMS_LOG);
    let port = logged_port(&mut child, Duration::from_secs(30), Some(log)).unwrap_or_else(|e| {
        let stderr = std::fs::read_to_string(dir.join(SERVE_PROBLEMS_LOG)).unwrap_or_default();
        panic!("paygate did not log its address within 30 s ({e}): {stderr}")
    });
    (child, port)
}

/// The gRPC port a `paygate serve` child with JSON logs on a piped stdout logs once it serves
/// (its stdout read to the end on a thread of its own, so the child never blocks on it); its
/// WARN and ERROR lines are appended to `problems` when given.
pub fn logged_port(
    child: &mut Child,
    within: Duration,
    problems: Option<PathBuf>,
) -> Result<String, std::sync::mpsc::RecvTimeoutError> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = &problems
                && (line.contains("\"WARN\"") || line.contains("\"ERROR\""))
                && let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path)
            {
                let _ = writeln!(file, "{line}");
            }
            if !sent && line.contains("paygate serving gRPC") {
                let port = line.split("127.0.0.1:").nth(1).map(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                });
                let _ = tx.send(port.expect("port in the log line"));
                sent = true;
            }
        }
    });
    rx.recv_timeout(within)
}

/// Panics with the server's problems (stderr, WARN and ERROR lines) if it exited by itself.
pub fn assert_running(child: &mut Child, dir: &Path) {
    if let Ok(Some(status)) = child.try_wait() {
        let log = std::fs::read_to_string(dir.join(SERVE_PROBLEMS_LOG)).unwrap_or_default();
        panic!("paygate serve exited by itself ({status}):\n{log}");
    }
}

/// A server child that is killed when the test lets go of it — also when the test panics.
pub struct Served(pub Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILL, then reaps the child.
pub fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

/// Runs `paygate ledger verify` in `dir` on `database_url`; panics with its output unless it
/// exits 0.
pub fn ledger_verify(dir: &Path, database_url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["ledger", "verify"])
        .current_dir(dir)
        .env("PAYGATE_DATABASE__URL", database_url)
        .env_remove("PAYGATE_CONFIG")
        .output()
        .expect("paygate ledger verify runs");
    assert!(
        out.status.success(),
        "paygate ledger verify: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a killed, restarting or busy server looks like to a client: send again, same request id.
pub fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
    )
}

/// The port the server listens on now; `None` while it is down.
#[derive(Default)]
pub struct Port(Mutex<Option<String>>);

impl Port {
    pub fn set(&self, port: Option<String>) {
        *self.0.lock().expect("port") = port;
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().expect("port").clone()
    }
}

/// One caller's connection to whichever server is up, made again after a failure.
pub struct Conn {
    tls: ClientTlsConfig,
    channel: Option<(String, Channel)>,
}

/// The end of a request: answered, refused (FAILED_PRECONDITION, the business said no), or
/// unknown (the client gave up without an answer).
#[derive(Debug)]
pub enum Reply<T> {
    Answered(T),
    Refused(Status),
    Unknown,
}

impl Conn {
    pub fn new(tls: ClientTlsConfig) -> Conn {
        Conn { tls, channel: None }
    }

    async fn channel(&mut self, port: &Port) -> Option<Channel> {
        let now = port.get()?;
        if let Some((at, channel)) = &self.channel
            && *at == now
        {
            return Some(channel.clone());
        }
        let channel = Endpoint::from_shared(format!("https://localhost:{now}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .tls_config(self.tls.clone())
            .expect("tls")
            .connect()
            .await
            .ok()?;
        self.channel = Some((now, channel.clone()));
        Some(channel)
    }

    /// Sends with `send` until answered or refused, across crashes, always the same request;
    /// an impatient client (`patient` false) gives up at its first failure. Each failed send
    /// counts in `retries`; panics on any other refusal, or after `give_up_after`.
    pub async fn call<T, F, Fut>(
        &mut self,
        port: &Port,
        patient: bool,
        retries: &AtomicUsize,
        give_up_after: Duration,
        mut send: F,
    ) -> Reply<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = tokio::time::Instant::now() + give_up_after;
        let mut last = None;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a request never answered in {give_up_after:?}; last: {last:?}"
            );
            let failed = match self.channel(port).await {
                Some(channel) => match send(channel).await {
                    Ok(answer) => return Reply::Answered(answer.into_inner()),
                    Err(status) if status.code() == Code::FailedPrecondition => {
                        return Reply::Refused(status);
                    }
                    Err(status) if retryable(&status) => {
                        last = Some(status);
                        true
                    }
                    Err(status) => panic!("refused unexpectedly: {status:?}"),
                },
                None => port.get().is_some(),
            };
            if failed {
                retries.fetch_add(1, Ordering::Relaxed);
                self.channel = None;
                if !patient {
                    return Reply::Unknown;
                }
            }
            tokio::time::sleep(Duration::from_millis(rand::random_range(10..40))).await;
        }
    }
}
