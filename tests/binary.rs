//! The `paygate` binary as an operator runs it: first start on the embedded defaults creates the
//! development PKI and serves over mTLS; SIGTERM lets an in-flight call finish, then it exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{Backend, client_tls, db::FreshDatabase};
use paygate::tls::DevPkiLayout;
use tonic::transport::Endpoint;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// `paygate serve <args>` in `dir` (no config file unless `args` name one), on ephemeral ports,
/// its logs on a pipe.
fn serve_in(dir: &std::path::Path, serve_args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paygate"));
    command
        .arg("serve")
        .args(serve_args)
        .current_dir(dir)
        .env("PAYGATE_SERVER__LISTEN", "127.0.0.1:0")
        .env("PAYGATE_ADMIN__LISTEN", "127.0.0.1:0")
        .env_remove("PAYGATE_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// Starts `paygate serve` in `dir` with JSON logs; returns the child and the gRPC address it
/// logged.
fn start_in(dir: &std::path::Path) -> (Child, String) {
    start_with(dir, &[])
}

/// `paygate serve <args>` in `dir` with JSON logs; returns the child and the gRPC address it
/// logged.
fn start_with(dir: &std::path::Path, serve_args: &[&str]) -> (Child, String) {
    let mut child = serve_in(dir, serve_args)
        .env("PAYGATE_LOG__FORMAT", "json")
        .spawn()
        .expect("paygate starts");
    let port = common::process::logged_port(&mut child, Duration::from_secs(30), None)
        .expect("paygate logs its address within 30 s");
    let addr = format!("127.0.0.1:{port}");
    (child, addr)
}

fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

fn signal(child: &Child, which: &str) {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Polls for the child's exit without blocking the runtime (the client must keep running).
async fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn first_start_creates_a_dev_pki_and_sigterm_drains_an_in_flight_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = start_in(dir.path());
    let pki = DevPkiLayout::new(dir.path().join("certs"));
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .expect("endpoint")
        .tls_config(client_tls(&pki, &pki, Some("core-banking")))
        .expect("tls")
        .connect()
        .await
        .expect("connects over mTLS with the generated dev certificate");
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: "paygate.v1.AccountService".to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let before = watch.message().await.expect("stream").expect("status");

    sigterm(&child);
    let during = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the in-flight call is still served after SIGTERM")
        .expect("stream")
        .expect("status");
    let still_running = child.try_wait().expect("try_wait").is_none();
    drop(watch);
    let exit = wait_exit(&mut child, Duration::from_secs(8)).await;

    assert!(pki.ca_cert().exists() && pki.client_key("auditor").exists());
    assert_eq!(before.status, ServingStatus::Serving as i32);
    assert_eq!(during.status, ServingStatus::NotServing as i32);
    assert!(still_running, "paygate must wait for the in-flight call");
    let exit = exit.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("paygate did not exit after the call finished")
    });
    assert!(exit.success(), "{exit:?}");
}

/// Starts `paygate serve` in `dir` with text logs on a pipe and `database_url`; returns the child
/// and every line it wrote up to and including its start line.
fn start_with_text_logs(dir: &std::path::Path, database_url: &str) -> (Child, Vec<String>) {
    let mut child = serve_in(dir, &[])
        .env("PAYGATE_LOG__FORMAT", "text")
        .env("PAYGATE_DATABASE__URL", database_url)
        .env_remove("NO_COLOR")
        .spawn()
        .expect("paygate starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let started = line.contains("paygate serving gRPC");
            lines.push(line);
            if started {
                let _ = tx.send(std::mem::take(&mut lines));
            }
        }
    });
    let lines = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("paygate logs its start line within 30 s")
        });
    (child, lines)
}

/// `url` with a password in its user part (PostgreSQL's trust authentication ignores it).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => format!("{scheme}://{user}:{password}@{host}"),
        _ => url.to_owned(),
    }
}

both_backends!(logs_on_a_pipe_have_no_colour_codes_and_the_start_line_names_listeners_and_database);

async fn logs_on_a_pipe_have_no_colour_codes_and_the_start_line_names_listeners_and_database(
    backend: Backend,
) {
    let db = FreshDatabase::new(backend).await;
    let url = match backend {
        Backend::Sqlite => db.url.clone(),
        Backend::Postgres => with_password(&db.url, "never-logged"),
    };
    let dir = tempfile::tempdir().expect("tempdir");

    let (mut child, lines) = start_with_text_logs(dir.path(), &url);
    let _ = child.kill();
    let _ = child.wait();
    db.remove().await;

    let all = lines.join("\n");
    let start = lines.last().expect("the start line");
    assert!(!all.contains('\x1b'), "no ANSI escape on a pipe:\n{all}");
    assert!(start.contains("grpc=127.0.0.1:"), "{start}");
    assert!(start.contains("admin=127.0.0.1:"), "{start}");
    let logged_url = match backend {
        Backend::Sqlite => url.clone(),
        Backend::Postgres => db_url_without_password(&url),
    };
    assert!(start.contains(&format!("database={logged_url}")), "{start}");
    assert!(
        !all.contains("never-logged"),
        "the password is never logged:\n{all}"
    );
}

fn db_url_without_password(url: &str) -> String {
    url.replacen(":never-logged@", "@", 1)
}

#[test]
fn a_named_config_file_that_does_not_exist_is_refused_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["--config", "/nonexistent/paygate.toml", "serve"])
        .output()
        .expect("runs");

    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// Whether a new mTLS connection as `caller` gets a health answer from the binary at `port`.
async fn serves(pki: &DevPkiLayout, port: &str, caller: &str) -> bool {
    let Ok(endpoint) = Endpoint::from_shared(format!("https://localhost:{port}"))
        .expect("endpoint")
        .tls_config(client_tls(pki, pki, Some(caller)))
    else {
        return false;
    };
    match endpoint.connect().await {
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn sighup_puts_a_new_crl_in_force_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("paygate.toml");
    std::fs::write(&config, "[tls]\ncrl_files = []\n").expect("config");
    // --init: a config file is given and the files it names do not exist yet.
    let (mut child, addr) = start_with(dir.path(), &["--config", "paygate.toml", "--init"]);
    let pki = DevPkiLayout::new(dir.path().join("certs"));
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let before = serves(&pki, &port, "auditor").await;

    let revoke = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["certs", "revoke", "auditor", "--dir", "certs"])
        .current_dir(dir.path())
        .env_remove("PAYGATE_CONFIG")
        .output()
        .expect("paygate certs revoke runs");
    std::fs::write(&config, "[tls]\ncrl_files = [\"certs/crl.pem\"]\n").expect("config");
    signal(&child, "-HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut revoked = false;
    while !revoked && std::time::Instant::now() < deadline {
        revoked = !serves(&pki, &port, "auditor").await;
    }
    let others = serves(&pki, &port, "core-banking").await;
    let still_running = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let _ = child.wait();

    assert!(before, "the auditor is served before the reload");
    assert!(revoke.status.success(), "{revoke:?}");
    assert!(revoked, "the revoked auditor is refused after SIGHUP");
    assert!(others, "core-banking is still served");
    assert!(still_running, "SIGHUP does not stop the gateway");
}
