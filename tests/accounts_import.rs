//! Bulk onboarding (ImportAccounts and `paygate accounts import`): every line opened or refused
//! exactly as OpenAccount would, by its own request id, with a result per line — over mutual TLS
//! against a real gateway, on both back ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, card_number, open_personal, request_id, resident_id, spawn_app};
use paygate::grpc::pb::{
    self, AccountKind, ImportAccountLine, ImportAccountsRequest, ListAccountsRequest,
    account_service_client::AccountServiceClient, list_accounts_request,
};
use tokio_stream::StreamExt;

const BANK: &str = "core-banking";

fn line(n: u64, account: pb::OpenAccountRequest) -> ImportAccountLine {
    ImportAccountLine {
        line: n,
        account: Some(account),
    }
}

fn person(n: u64) -> pb::OpenAccountRequest {
    open_personal(
        AccountKind::ClassIi,
        &format!("importer-{n}"),
        &resident_id(n),
        &card_number(n),
    )
}

both_backends!(an_import_stream_answers_every_line_by_its_own_rules_and_request_id);
async fn an_import_stream_answers_every_line_by_its_own_rules_and_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = AccountServiceClient::new(app.channel(BANK).await);
    let first: Vec<ImportAccountLine> = (1..=300).map(|n| line(n, person(n))).collect();
    let mut bad_card = person(301);
    bad_card.bound_card_number = "1234".to_owned();
    let replayed = first[7].clone();
    let second = vec![line(301, bad_card), line(302, person(302)), replayed];

    let requests = tokio_stream::iter(vec![
        ImportAccountsRequest {
            lines: first.clone(),
        },
        ImportAccountsRequest { lines: second },
    ]);
    let mut answers = client
        .import_accounts(requests)
        .await
        .expect("stream opens")
        .into_inner();
    let one = answers.next().await.expect("an answer").expect("ok");
    let two = answers.next().await.expect("an answer").expect("ok");
    assert!(answers.next().await.is_none(), "one answer per request");

    assert_eq!(one.results.len(), 300);
    assert!(
        one.results
            .iter()
            .zip(1..)
            .all(|(r, n)| r.line == n && r.account.is_some() && r.refusal.is_none()),
        "every line of the first message opened, in line order"
    );
    let lines: Vec<u64> = two.results.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![301, 302, 8]);
    let refusal = two.results[0].refusal.as_ref().expect("refused");
    assert_eq!(
        (refusal.code.as_str(), refusal.reason.as_str()),
        ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        "{refusal:?}"
    );
    assert!(two.results[0].account.is_none());
    assert!(two.results[1].account.is_some());
    assert_eq!(
        two.results[2].account.as_ref().map(|a| &a.account_id),
        one.results[7].account.as_ref().map(|a| &a.account_id),
        "a line sent again under its request id answers the account it opened"
    );

    // Person 5 already holds one Class II account: of five more, the one past the per-person
    // limit (five by default) is refused, as OpenAccount refuses it.
    let more: Vec<ImportAccountLine> = (1..=5)
        .map(|n| {
            let mut again = person(5);
            again.request_id = request_id("open");
            line(n, again)
        })
        .collect();
    let answer = client
        .import_accounts(tokio_stream::iter(vec![ImportAccountsRequest {
            lines: more,
        }]))
        .await
        .expect("stream opens")
        .into_inner()
        .next()
        .await
        .expect("an answer")
        .expect("ok");
    let refused: Vec<_> = answer
        .results
        .iter()
        .filter_map(|r| r.refusal.as_ref())
        .collect();
    assert_eq!(refused.len(), 1, "{answer:?}");
    assert_eq!(refused[0].code, "FAILED_PRECONDITION", "{answer:?}");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

both_backends!(a_message_with_too_many_lines_ends_the_stream_with_invalid_argument);
async fn a_message_with_too_many_lines_ends_the_stream_with_invalid_argument(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = AccountServiceClient::new(app.channel(BANK).await);
    let lines: Vec<ImportAccountLine> = (1..=1_001).map(|n| line(n, person(n))).collect();
    let mut answers = client
        .import_accounts(tokio_stream::iter(vec![
            ImportAccountsRequest { lines: Vec::new() },
            ImportAccountsRequest { lines },
        ]))
        .await
        .expect("stream opens")
        .into_inner();
    let status = answers
        .next()
        .await
        .expect("an answer")
        .expect_err("an empty message is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(answers.next().await.is_none(), "the stream ends there");
    let listed = AccountServiceClient::new(app.channel(BANK).await)
        .list_accounts(ListAccountsRequest {
            filter: Some(list_accounts_request::Filter::OwnerId(
                "importer-1".to_owned(),
            )),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.accounts.is_empty(), "nothing was opened");
}

both_backends!(the_import_command_reports_each_refused_line_and_is_safe_to_run_again);
async fn the_import_command_reports_each_refused_line_and_is_safe_to_run_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = app.dir();
    let file = dir.join("customers.jsonl");
    let mut text = String::new();
    for n in 1..=120u64 {
        let card = if n == 60 {
            "1234".to_owned()
        } else {
            card_number(1_000 + n)
        };
        text.push_str(&format!(
            "{{\"request_id\":\"import-{n}\",\"kind\":\"CLASS_II\",\"currency\":\"CNY\",\"owner_id\":\"cli-{n}\",\"identity\":{{\"full_name\":\"张三\",\"document_type\":\"RESIDENT_ID_CARD\",\"document_number\":\"{}\"}},\"bound_card_number\":\"{card}\"}}\n",
            resident_id(1_000 + n)
        ));
        if n == 30 {
            text.push_str("{\"request_id\": \"import-broken\", \"kind\": \n");
        }
    }
    std::fs::write(&file, text).expect("file");
    let target = format!("https://localhost:{}", app.addr.port());
    let (ca, cert, key) = (
        app.pki.ca_cert(),
        app.pki.client_cert(BANK),
        app.pki.client_key(BANK),
    );
    let args = [
        "accounts",
        "import",
        file.to_str().unwrap(),
        "--target",
        &target,
        "--ca",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--chunk-lines",
        "50",
        "--streams",
        "2",
    ];

    for run in 1..=2 {
        // The gateway runs on this test's runtime: the command must not block it.
        let run_out = tokio::process::Command::new(env!("CARGO_BIN_EXE_paygate"))
            .args(args)
            .env_remove("PAYGATE_CONFIG")
            .current_dir(&dir)
            .output()
            .await
            .expect("paygate runs");
        let code = run_out.status.code();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&run_out.stdout),
            String::from_utf8_lossy(&run_out.stderr)
        );
        assert_eq!(code, Some(3), "run {run}: some lines were refused: {out}");
        assert!(out.contains("119 opened, 2 refused"), "run {run}: {out}");
        let report = std::fs::read_to_string(dir.join("customers.jsonl.errors.jsonl"))
            .expect("error report");
        let mut refused: Vec<serde_json::Value> = report
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        refused.sort_by_key(|v| v["line"].as_u64());
        assert_eq!(refused.len(), 2, "run {run}: {report}");
        assert_eq!(
            refused[0]["line"], 31,
            "the unreadable line, by its number in the file"
        );
        assert_eq!(refused[0]["reason"], "LINE_UNREADABLE");
        assert_eq!(refused[1]["line"], 61, "the line with a short card number");
        assert_eq!(refused[1]["code"], "INVALID_ARGUMENT");
    }
    let listed = AccountServiceClient::new(app.channel(BANK).await)
        .list_accounts(ListAccountsRequest {
            filter: Some(list_accounts_request::Filter::OwnerId("cli-7".to_owned())),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.accounts.len(),
        1,
        "a second run opens nothing twice: {listed:?}"
    );
}
