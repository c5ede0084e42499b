//! Certificates and connections, black-box over mutual TLS: which caller a certificate names,
//! which certificates never finish the handshake (no clientAuth, revoked), reloading the TLS
//! material and the caller table while serving, and closing idle connections. Nothing here
//! touches the database, so it runs on the embedded SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    Backend, STRANGER, TestApp, caller, client_tls, health_check, metadata_of, open_stream,
    reason_of, spawn_app, spawn_app_with,
};
use paygate::{
    grpc::pb::{
        GetAccountRequest, GetProductRequest, account_service_client::AccountServiceClient,
        yield_service_client::YieldServiceClient,
    },
    tls::{DevPkiLayout, client_params, generate_dev_pki, issue_from_dev_ca, write_dev_crl},
};
use rcgen::{DistinguishedName, DnType, ExtendedKeyUsagePurpose, SanType};
use tokio::{io::AsyncReadExt, net::TcpStream, time::Instant};
use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// Whether a new connection presenting `client`'s certificate (from `client_pki`) is refused by
/// the handshake. With TLS 1.3 the client may finish its side before the server has judged its
/// certificate, so the first call over the channel is what tells.
async fn refused_with(app: &TestApp, client_pki: &DevPkiLayout, client: &str) -> bool {
    match app
        .try_channel(client_tls(&app.pki, client_pki, Some(client)))
        .await
    {
        Err(_) => true,
        Ok(channel) => health_check(channel, "").await.is_err(),
    }
}

async fn refused(app: &TestApp, client: &str) -> bool {
    refused_with(app, &app.pki, client).await
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

#[tokio::test]
async fn a_certificate_whose_identities_name_two_callers_is_refused_as_ambiguous() {
    let app = spawn_app(Backend::Sqlite).await;
    // SAN DNS names core-banking, CN auditor.
    let mut cn_against_san = client_params("core-banking").unwrap();
    cn_against_san.distinguished_name = common_name("auditor");
    issue_from_dev_ca(&app.pki, "cn-against-san", cn_against_san).unwrap();
    // Two SAN DNS names, two callers.
    let mut two_sans = client_params("core-banking").unwrap();
    two_sans
        .subject_alt_names
        .push(SanType::DnsName("auditor".try_into().unwrap()));
    issue_from_dev_ca(&app.pki, "two-sans", two_sans).unwrap();

    for name in ["cn-against-san", "two-sans"] {
        let channel = app.channel(name).await;
        let denied = AccountServiceClient::new(channel.clone())
            .get_account(GetAccountRequest::default())
            .await
            .expect_err("an ambiguous certificate names no caller");
        let health = health_check(channel, "").await;

        assert_eq!(denied.code(), Code::PermissionDenied, "{name}: {denied:?}");
        assert_eq!(reason_of(&denied), "CALLER_AMBIGUOUS", "{name}");
        assert_eq!(
            metadata_of(&denied).get("callers").map(String::as_str),
            Some("core-banking,auditor"),
            "{name}"
        );
        assert_eq!(
            health.expect("health stays open to valid certificates"),
            ServingStatus::Serving as i32
        );
    }
}

#[tokio::test]
async fn a_certificate_whose_identities_all_name_one_caller_is_that_caller() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        let core = c.callers.iter_mut().find(|c| c.name == "core-banking");
        let core = core.expect("a sample caller");
        core.identities
            .push("spiffe://bank/core-banking".to_owned());
    })
    .await;
    let mut uri_and_cn = client_params("core-banking").unwrap();
    uri_and_cn.subject_alt_names = vec![SanType::URI(
        "spiffe://bank/core-banking".try_into().unwrap(),
    )];
    issue_from_dev_ca(&app.pki, "uri-and-cn", uri_and_cn).unwrap();
    let client = YieldServiceClient::new(app.channel("uri-and-cn").await);

    let answered = client
        .clone()
        .get_product(GetProductRequest::default())
        .await
        .expect_err("the handler refuses an empty product id");

    assert_eq!(answered.code(), Code::InvalidArgument, "{answered:?}");
}

#[tokio::test]
async fn a_client_certificate_without_the_client_auth_eku_fails_the_handshake() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.callers.push(caller("no-eku", &["*"]));
        c.callers.push(caller("server-eku", &["*"]));
    })
    .await;
    let mut no_eku = client_params("no-eku").unwrap();
    no_eku.extended_key_usages.clear();
    issue_from_dev_ca(&app.pki, "no-eku", no_eku).unwrap();
    let mut server_eku = client_params("server-eku").unwrap();
    server_eku.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue_from_dev_ca(&app.pki, "server-eku", server_eku).unwrap();

    assert!(refused(&app, "no-eku").await, "no EKU extension at all");
    assert!(refused(&app, "server-eku").await, "serverAuth only");
    assert!(!refused(&app, "core-banking").await, "clientAuth");
}

#[tokio::test]
async fn a_revoked_certificate_fails_the_handshake_after_a_reload_while_an_open_stream_lives_on() {
    let app = spawn_app(Backend::Sqlite).await;
    let auditor = app.channel("auditor").await;
    let mut watch = open_stream(auditor.clone()).await;

    write_dev_crl(&app.pki, &["auditor"]).unwrap();
    let mut config = app.config.clone();
    config.tls.crl_files = vec![app.pki.crl()];
    app.reload(&config).expect("the CRL reloads");

    assert!(refused(&app, "auditor").await, "revoked");
    assert!(!refused(&app, "core-banking").await, "not revoked");
    let quiet = tokio::time::timeout(Duration::from_millis(300), watch.message()).await;
    assert!(
        quiet.is_err(),
        "the open stream neither ended nor failed: {quiet:?}"
    );
    let same_connection = health_check(auditor, "").await;
    assert_eq!(
        same_connection.expect("an open connection is not cut"),
        ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn a_reload_that_does_not_parse_keeps_the_running_material_and_callers() {
    let app = spawn_app(Backend::Sqlite).await;
    write_dev_crl(&app.pki, &["auditor"]).unwrap();
    let broken = app.dir().join("broken-crl.pem");
    std::fs::write(&broken, "not a CRL\n").unwrap();
    let mut broken_crl = app.config.clone();
    broken_crl.tls.crl_files = vec![app.pki.crl(), broken];
    let mut repeated_identity = app.config.clone();
    repeated_identity
        .callers
        .push(caller("auditor-twin", &["*"]));
    repeated_identity.callers.last_mut().unwrap().identities = vec!["auditor".to_owned()];
    let mut missing_key = app.config.clone();
    missing_key.tls.server_key = app.dir().join("nowhere.key");

    let refusals = [
        app.reload(&broken_crl).map_err(|e| e.to_string()),
        app.reload(&repeated_identity).map_err(|e| e.to_string()),
        app.reload(&missing_key).map_err(|e| e.to_string()),
    ];

    for refusal in &refusals {
        assert!(refusal.is_err(), "{refusals:?}");
    }
    assert!(refusals[0].as_ref().unwrap_err().contains("broken-crl.pem"));
    assert!(
        !refused(&app, "auditor").await,
        "the CRL never came into force"
    );
    let auditor = YieldServiceClient::new(app.channel("auditor").await)
        .get_product(GetProductRequest::default())
        .await
        .expect_err("the handler refuses an empty product id");
    assert_eq!(auditor.code(), Code::InvalidArgument, "still the auditor");
}

#[tokio::test]
async fn a_reloaded_caller_table_admits_a_new_caller_on_an_open_connection() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = YieldServiceClient::new(app.channel(STRANGER).await);
    let before = client
        .clone()
        .get_product(GetProductRequest::default())
        .await
        .expect_err("unknown caller");

    let mut config = app.config.clone();
    config
        .callers
        .push(caller(STRANGER, &["paygate.v1.YieldService/*"]));
    app.reload(&config).expect("the callers reload");
    let after = client
        .clone()
        .get_product(GetProductRequest::default())
        .await
        .expect_err("the handler refuses an empty product id");

    assert_eq!(reason_of(&before), "CALLER_UNKNOWN");
    assert_eq!(after.code(), Code::InvalidArgument, "{after:?}");
}

#[tokio::test]
async fn a_reloaded_client_ca_bundle_admits_certificates_of_the_new_ca() {
    let app = spawn_app(Backend::Sqlite).await;
    let partner_dir = tempfile::tempdir().unwrap();
    let partner = DevPkiLayout::new(partner_dir.path());
    generate_dev_pki(&partner, "partner CA", &["core-banking"], false).unwrap();
    let before = refused_with(&app, &partner, "core-banking").await;

    let bundle = app.dir().join("client-cas.pem");
    let mut pem = std::fs::read(app.pki.ca_cert()).unwrap();
    pem.extend(std::fs::read(partner.ca_cert()).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let mut config = app.config.clone();
    config.tls.client_ca = bundle;
    app.reload(&config).expect("the CA bundle reloads");

    assert!(before, "the partner CA was not trusted yet");
    assert!(!refused_with(&app, &partner, "core-banking").await);
    assert!(!refused(&app, "core-banking").await, "our own CA still is");
}

/// A TLS client of our own that presents `client`'s certificate and then sends nothing.
async fn raw_tls_client(app: &TestApp, client: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(app.pki.ca_cert()).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(app.pki.client_cert(client))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(app.pki.client_key(client)).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the handshake succeeds")
}

/// Reads (and discards what the server sends, its HTTP/2 settings) until the connection ends.
async fn until_closed(mut stream: impl tokio::io::AsyncRead + Unpin) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

#[tokio::test]
async fn a_connection_that_handshakes_and_sends_nothing_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.limits.connection_idle_timeout_ms = 300;
    })
    .await;
    let connection = raw_tls_client(&app, "core-banking").await;
    let handshaken = Instant::now();

    tokio::time::timeout(Duration::from_secs(5), until_closed(connection))
        .await
        .expect("the server closes the idle connection");

    let idle = handshaken.elapsed();
    assert!(idle >= Duration::from_millis(250), "closed after {idle:?}");
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_handshake_is_closed_after_the_handshake_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.limits.tls_handshake_timeout_ms = 300;
    })
    .await;
    let connection = TcpStream::connect(app.addr).await.unwrap();
    let opened = Instant::now();

    tokio::time::timeout(Duration::from_secs(5), until_closed(connection))
        .await
        .expect("the server drops the unfinished handshake");

    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn an_open_stream_keeps_its_connection_past_the_idle_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.limits.connection_idle_timeout_ms = 300;
    })
    .await;
    let channel = app.channel("core-banking").await;
    let mut watch = open_stream(channel).await;

    let quiet = tokio::time::timeout(Duration::from_millis(1_000), watch.message()).await;

    assert!(
        quiet.is_err(),
        "the stream neither ended nor failed: {quiet:?}"
    );
}

#[tokio::test]
async fn a_channel_whose_connection_was_closed_as_idle_reconnects_for_its_next_call() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.limits.connection_idle_timeout_ms = 200;
    })
    .await;
    let channel = app.channel("core-banking").await;
    let first = health_check(channel.clone(), "").await;

    tokio::time::sleep(Duration::from_millis(800)).await;
    let after_idle = health_check(channel, "").await;

    assert_eq!(first.expect("first call"), ServingStatus::Serving as i32);
    assert_eq!(
        after_idle.expect("a new connection serves the next call"),
        ServingStatus::Serving as i32
    );
}
