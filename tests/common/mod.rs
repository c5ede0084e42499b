//! `spawn_app()`: a real gateway on an ephemeral port with its own PKI and database, and
//! clients that speak to it over mutual TLS — exactly as a bank's integration team would.
#![allow(dead_code)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use paygate::{
    config::{AccountScope, CallerConfig, Config},
    server::{Gateway, ServeError},
    tls::{DevPkiLayout, generate_dev_pki},
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A certificate from the gateway's CA that maps to no configured caller.
pub const STRANGER: &str = "stranger";

pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub pki: DevPkiLayout,
    pub config: Config,
    dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

/// A gateway on the embedded defaults, with every sample caller of the development PKI.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A gateway whose configuration `adjust` may change first (limits, callers …).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = DevPkiLayout::new(dir.path().join("certs"));
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.listen = "127.0.0.1:0".parse().expect("addr");
    config.server.shutdown_grace_ms = 30_000;
    config.tls.server_cert = pki.server_cert();
    config.tls.server_key = pki.server_key();
    config.tls.client_ca = pki.ca_cert();
    config.tls.generate_dev_pki = false;
    config.tls.dev_pki_dir = pki.dir.clone();
    config.database.url = format!("sqlite://{}", dir.path().join("paygate.db").display());
    config.secrets.key_file = dir.path().join("secret.key");
    adjust(&mut config);
    config.validate().expect("test config is valid");

    let mut names: Vec<&str> = config.callers.iter().map(|c| c.name.as_str()).collect();
    names.push(STRANGER);
    generate_dev_pki(&pki, "test CA", &names, false).expect("test PKI");

    let gateway = Gateway::bind(config.clone()).await.expect("gateway binds");
    let addr = gateway.local_addr();
    let admin_addr = gateway.admin_addr().expect("admin enabled");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(gateway.run(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        admin_addr,
        pki,
        config,
        dir,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// A caller with only the given grants (and optional rate), for tests of the grant model.
pub fn caller(name: &str, grants: &[&str]) -> CallerConfig {
    CallerConfig {
        name: name.to_owned(),
        identities: vec![name.to_owned()],
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
        rate_per_s: None,
        burst: None,
        account_scope: AccountScope::All,
    }
}

impl TestApp {
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Client TLS trusting the gateway's CA, presenting `caller`'s certificate when given.
    pub fn client_tls(&self, caller: Option<&str>) -> ClientTlsConfig {
        client_tls(&self.pki, &self.pki, caller)
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("https://localhost:{}", self.addr.port()))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
    }

    /// An mTLS channel as `caller`.
    pub async fn channel(&self, caller: &str) -> Channel {
        self.try_channel(self.client_tls(Some(caller)))
            .await
            .expect("mTLS channel connects")
    }

    pub async fn try_channel(
        &self,
        tls: ClientTlsConfig,
    ) -> Result<Channel, tonic::transport::Error> {
        self.endpoint().tls_config(tls)?.connect().await
    }

    /// The admin listener's answer to `GET path`, as (status line, body).
    pub async fn admin_get(&self, path: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.admin_addr)
            .await
            .expect("admin connects");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        (
            head.lines().next().unwrap_or("").to_owned(),
            body.to_owned(),
        )
    }

    /// Resolves the shutdown future; returns the server's own result once it has drained.
    pub fn begin_shutdown(&mut self) -> JoinHandle<Result<(), ServeError>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.take().expect("server still running")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Client TLS trusting `server_pki`'s CA and presenting a certificate from `client_pki`.
pub fn client_tls(
    server_pki: &DevPkiLayout,
    client_pki: &DevPkiLayout,
    caller: Option<&str>,
) -> ClientTlsConfig {
    let ca = std::fs::read(server_pki.ca_cert()).expect("ca");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(caller) = caller {
        let cert = std::fs::read(client_pki.client_cert(caller)).expect("client cert");
        let key = std::fs::read(client_pki.client_key(caller)).expect("client key");
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    tls
}

/// The `ErrorInfo.reason` of a status, or "" when it has none.
pub fn reason_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

// ----- account service helpers ---------------------------------------------------------------

/// An AccountService client over mTLS.
pub type Accounts = paygate::grpc::pb::account_service_client::AccountServiceClient<Channel>;

impl TestApp {
    /// An AccountService client as `caller`.
    pub async fn accounts(&self, caller: &str) -> Accounts {
        Accounts::new(self.channel(caller).await)
    }

    /// Runs `paygate ledger verify` on this app's database; returns (exit code, stdout+stderr).
    pub fn ledger_verify(&self) -> (Option<i32>, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paygate"))
            .args([
                "ledger",
                "verify",
                "--database-url",
                &self.config.database.url,
            ])
            .env_remove("PAYGATE_CONFIG")
            .current_dir(self.dir())
            .output()
            .expect("paygate ledger verify runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}

/// `Money` in CNY.
pub fn cny(amount: &str) -> paygate::grpc::pb::Money {
    paygate::grpc::pb::Money {
        currency: "CNY".to_owned(),
        amount: amount.to_owned(),
    }
}

/// A fresh idempotency key, unique within the test process.
pub fn request_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{tag}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The Luhn check digit that completes `partial` (the number without its last digit).
pub fn luhn_check_digit(partial: &str) -> char {
    let sum: u32 = partial
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit will take position 0 from the right, so position i here is i + 1.
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10).expect("a digit")
}

/// A Luhn-valid 19-digit card number with BIN 622202, distinct for each `n`.
pub fn card_number(n: u64) -> String {
    let partial = format!("622202{n:012}");
    let mut number = partial.clone();
    number.push(luhn_check_digit(&partial));
    number
}

/// A resident identity of a person, distinct for each `document_number`.
pub fn identity(document_number: &str) -> paygate::grpc::pb::PersonIdentity {
    paygate::grpc::pb::PersonIdentity {
        full_name: "张三".to_owned(),
        document_type: paygate::grpc::pb::IdDocumentType::ResidentIdCard as i32,
        document_number: document_number.to_owned(),
        mobile: "13800000000".to_owned(),
    }
}

/// A request to open a Class II or Class III account for a person with a bound card.
pub fn open_personal(
    kind: paygate::grpc::pb::AccountKind,
    owner_id: &str,
    document_number: &str,
    card: &str,
) -> paygate::grpc::pb::OpenAccountRequest {
    paygate::grpc::pb::OpenAccountRequest {
        request_id: request_id("open"),
        kind: kind as i32,
        currency: "CNY".to_owned(),
        owner_id: owner_id.to_owned(),
        identity: Some(identity(document_number)),
        bound_card_number: card.to_owned(),
        parent_account_id: String::new(),
        display_name: String::new(),
    }
}

/// A request to open an account of a kind without identity or card (merchant, platform).
pub fn open_plain(
    kind: paygate::grpc::pb::AccountKind,
    owner_id: &str,
    parent: &str,
) -> paygate::grpc::pb::OpenAccountRequest {
    paygate::grpc::pb::OpenAccountRequest {
        request_id: request_id("open"),
        kind: kind as i32,
        currency: "CNY".to_owned(),
        owner_id: owner_id.to_owned(),
        identity: None,
        bound_card_number: String::new(),
        parent_account_id: parent.to_owned(),
        display_name: format!("{owner_id} account"),
    }
}

/// Opens an account and returns its id, panicking on refusal.
pub async fn open(client: &mut Accounts, req: paygate::grpc::pb::OpenAccountRequest) -> String {
    client
        .open_account(req)
        .await
        .expect("account opens")
        .into_inner()
        .account
        .expect("account")
        .account_id
}

/// Opens a Class II account for a fresh person (document and card derived from `n`).
pub async fn open_class_ii(client: &mut Accounts, n: u64) -> String {
    open(
        client,
        open_personal(
            paygate::grpc::pb::AccountKind::ClassIi,
            &format!("customer-{n}"),
            &format!("11010119900101{n:04}"),
            &card_number(n),
        ),
    )
    .await
}

/// Opens a Class III account for a fresh person (document and card derived from `n`).
pub async fn open_class_iii(client: &mut Accounts, n: u64) -> String {
    open(
        client,
        open_personal(
            paygate::grpc::pb::AccountKind::ClassIii,
            &format!("customer-{n}"),
            &format!("11010119900101{n:04}"),
            &card_number(n),
        ),
    )
    .await
}

/// Opens a merchant settlement account.
pub async fn open_merchant(client: &mut Accounts, merchant: &str) -> String {
    open(
        client,
        open_plain(
            paygate::grpc::pb::AccountKind::MerchantSettlement,
            merchant,
            "",
        ),
    )
    .await
}

/// Tops `account` up from its bound card, panicking on refusal.
pub async fn top_up(client: &mut Accounts, account: &str, amount: &str) {
    let r = client
        .top_up(paygate::grpc::pb::TopUpRequest {
            request_id: request_id("topup"),
            account_id: account.to_owned(),
            amount: Some(cny(amount)),
            memo: String::new(),
        })
        .await
        .expect("top-up accepted")
        .into_inner();
    assert_eq!(
        r.status,
        paygate::grpc::pb::ProcessingStatus::Succeeded as i32,
        "the on-us network always succeeds"
    );
}

/// A transfer request with a fresh request id.
pub fn transfer_req(from: &str, to: &str, amount: &str) -> paygate::grpc::pb::TransferRequest {
    paygate::grpc::pb::TransferRequest {
        request_id: request_id("transfer"),
        from_account_id: from.to_owned(),
        to_account_id: to.to_owned(),
        amount: Some(cny(amount)),
        memo: String::new(),
    }
}

/// The balance view of `account`.
pub async fn balance(client: &mut Accounts, account: &str) -> paygate::grpc::pb::Balance {
    client
        .get_balance(paygate::grpc::pb::GetBalanceRequest {
            account_id: account.to_owned(),
        })
        .await
        .expect("balance")
        .into_inner()
        .balance
        .expect("balance view")
}

/// The book balance of `account` as a decimal string.
pub async fn book(client: &mut Accounts, account: &str) -> String {
    balance(client, account).await.book.expect("book").amount
}

/// The `ErrorInfo.metadata` of a status (empty when it has none).
pub fn metadata_of(status: &tonic::Status) -> std::collections::HashMap<String, String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.metadata.clone())
        .unwrap_or_default()
}

/// Asserts a refusal's gRPC code and `ErrorInfo.reason`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    reason: &str,
) -> tonic::Status {
    match result {
        Ok(answer) => panic!("expected {code:?}/{reason}, got an answer: {answer:?}"),
        Err(status) => {
            assert_eq!(
                (status.code(), reason_of(&status).as_str()),
                (code, reason),
                "{status:?}"
            );
            status
        }
    }
}
