//! Reconciliation (对账) end to end: top-ups routed to NetsUnion on a real `paygate netsim`,
//! then one break of every kind planted — a movement only the network booked, one only we
//! booked, an amount and a status that differ — and `paygate recon` finds exactly those four
//! and matches the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Backend, TestApp, cny,
    eod::{dashed, done_detail, eod_run_later, eod_status, recon_period},
    netsim::Sim,
    open_class_ii, request_id, spawn_app_with,
};
use paygate::{
    account::outbound::reference_of,
    clearing::{ReversalOutcome, nets_union},
    grpc::pb::{ProcessingStatus, TopUpRequest},
    ledger::IdempotencyKey,
};
use sqlx::{AnyConnection, Connection};

both_backends!(multi_thread: reconciliation_finds_every_planted_break_and_nothing_else);

/// NetsUnion refuses connections for its first 4 s, then answers everything.
const DOWN_AT_FIRST: &str = "seed = 21\n[[networks]]\nnetwork = \"NETS_UNION\"\n\
     [[networks.outages]]\nafter_ms = 0\nfor_ms = 4000\nmode = \"refuse\"\n";

async fn reconciliation_finds_every_planted_break_and_nothing_else(backend: Backend) {
    let sim = Sim::start(DOWN_AT_FIRST).await;
    let answering_at = Instant::now() + Duration::from_millis(4_100);
    let app = spawn_app_with(
        backend,
        sim.routing_quick_pay_unrecovered(nets_union::NETWORK),
    )
    .await;
    let mut accounts = app.accounts("core-banking").await;
    let account = open_class_ii(&mut accounts, 1).await;
    let top_up = |amount: &str| {
        let id = request_id("topup");
        let req = TopUpRequest {
            request_id: id.clone(),
            account_id: account.clone(),
            amount: Some(cny(amount)),
            memo: String::new(),
        };
        let mut accounts = accounts.clone();
        async move {
            let status = accounts.top_up(req).await.unwrap().into_inner().status;
            (
                reference_of(&IdempotencyKey::new("core-banking", id)),
                status,
            )
        }
    };

    // Ours only: sent while the network is down (never booked), then marked succeeded in our
    // records, as a bug or a tampered row would.
    let (ours_only, status) = top_up("1.00").await;
    assert_eq!(status, ProcessingStatus::Processing as i32);
    tokio::time::sleep_until(answering_at.into()).await;
    let mut booked = Vec::new();
    for amount in ["10.00", "11.00", "12.00", "13.00"] {
        let (reference, status) = top_up(amount).await;
        assert_eq!(status, ProcessingStatus::Succeeded as i32);
        booked.push(reference);
    }
    let (matched_a, amount_differs, status_differs, matched_b) =
        (&booked[0], &booked[1], &booked[2], &booked[3]);
    edit_call(
        &app,
        &ours_only,
        "\"state\":\"SENT\"",
        "\"state\":\"SUCCEEDED\",\"network_reference\":\"X1\"",
    )
    .await;
    edit_call(
        &app,
        amount_differs,
        "\"amount_minor\":1100",
        "\"amount_minor\":1099",
    )
    .await;
    // Status differs: the network reversed a movement we booked as succeeded.
    assert_eq!(
        sim.client(nets_union::NETWORK)
            .reverse(status_differs)
            .await,
        ReversalOutcome::Reversed
    );
    // Theirs only: the network booked a movement we never sent.
    let theirs_only = "PGTHEIRSONLY00000000000000000001".to_owned();
    sim.plant_debit(nets_union::NETWORK, &theirs_only, 500)
        .await;

    let period = recon_period(&app, nets_union::NETWORK);
    let config = app.dir().join("recon.toml");
    std::fs::write(
        &config,
        toml::to_string(&OnlyClearing {
            clearing: &app.config.clearing,
        })
        .unwrap(),
    )
    .unwrap();
    let recon = |json: bool| {
        let mut args = vec![
            "recon",
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            &app.config.database.url,
            "--network",
            "NETS_UNION",
            "--period",
            &period,
        ];
        if json {
            args.push("--json");
        }
        app.paygate(&args)
    };
    let (code, out) = recon(true);
    assert_eq!(code, Some(4), "breaks exit 4: {out}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let breaks: Vec<(String, String)> = report["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_owned(),
                b["reference"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        breaks,
        vec![
            ("THEIRS_ONLY".to_owned(), theirs_only.clone()),
            ("OURS_ONLY".to_owned(), ours_only),
            ("AMOUNT_DIFFERS".to_owned(), amount_differs.clone()),
            ("STATUS_DIFFERS".to_owned(), status_differs.clone()),
        ],
        "{report:#}"
    );
    assert_eq!(
        report["matched"], 2,
        "{matched_a} and {matched_b}: {report:#}"
    );
    assert_eq!(report["unsettled"], 0);

    let (code, table) = recon(false);
    assert_eq!(code, Some(4));
    assert!(
        table.contains("2 matched, 0 unsettled, 4 breaks"),
        "{table}"
    );

    // The end of day (the operator's `eod run`, on a clock two days on) stores the date's
    // reconciliation and settles the file's net: what the breaks leave stays in the suspense
    // account. The two genuine ones (the network's extra debit, its reversal of a movement we
    // booked) are adjusted by an operator's command naming each; the suspense account nets to
    // zero. The other two were planted by editing our records, so what they would move is not
    // what the journal holds: they are left for investigation.
    let later_path = eod_run_later(&app, 2);
    let later_config = later_path.to_str().unwrap();
    let steps = eod_status(&app, &later_path, &dashed(&period));
    let detail = |name: &str| done_detail(&steps, name);
    assert_eq!(
        detail("RECON/NETS_UNION"),
        "2 matched, 4 breaks, 0 carried to the next date, net 3900"
    );
    assert_eq!(
        detail("SETTLE/NETS_UNION"),
        "received 39.00 CNY from NETS_UNION"
    );
    let suspense = || async {
        common::yields::rows::balances_of_kind(&app.config.database.url, "BANK_INTERNAL").await
    };
    // Our four booked top-ups took 46.00 out; the file's 39.00 came back in.
    assert_eq!(suspense().await["CLEARING_SUSPENSE_NETS_UNION"], -700);

    let adjust = |reference: &str, reason: &str| {
        app.paygate(&[
            "recon",
            "--config",
            later_config,
            "--network",
            "NETS_UNION",
            "--period",
            &period,
            "--adjust",
            reference,
            "--reason",
            reason,
            "--operator",
            "alice",
        ])
    };
    let (code, out) = adjust("PGNOSUCHBREAK000000000000000001", "a typo");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("has no break under PGNOSUCHBREAK"), "{out}");
    let (code, out) = adjust(&theirs_only, "");
    assert_eq!(code, Some(1), "a reason is required: {out}");
    let (code, out) = adjust(
        &theirs_only,
        "network debited a card for no order of ours: case 17",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("500 minor units out of"), "{out}");
    let (code, out) = adjust(
        status_differs,
        "network reversed a top-up we posted: case 18",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1200 minor units into"), "{out}");
    let (code, out) = adjust(status_differs, "again");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("adjusted already, by alice"), "{out}");
    let balances = suspense().await;
    assert_eq!(balances["CLEARING_SUSPENSE_NETS_UNION"], 0, "{balances:?}");
    assert_eq!(balances["RECON_ADJUSTMENT"], -700, "{balances:?}");

    // Each adjustment is in the audit log under the operator's name.
    let (code, out) = app.paygate(&["audit", "export", "--config", later_config]);
    assert_eq!(code, Some(0), "{out}");
    let adjustments: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("paygate recon --adjust"))
        .collect();
    assert_eq!(adjustments.len(), 2, "{out}");
    assert!(
        adjustments
            .iter()
            .all(|l| l.contains("operator:alice") && l.contains("\"OK\"")),
        "{adjustments:?}"
    );
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "{out}");
}

/// A configuration file of just the routing table (the rest default).
#[derive(serde::Serialize)]
struct OnlyClearing<'a> {
    clearing: &'a paygate::clearing::routing::ClearingConfig,
}

/// Edits the body of our record of the call `reference` out of band (and moves the chain
/// head's batch count, as every write besides a batch must).
async fn edit_call(app: &TestApp, reference: &str, from: &str, to: &str) {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(&app.config.database.url)
        .await
        .unwrap();
    let done = sqlx::query(
        "UPDATE documents SET body = replace(body, $1, $2) WHERE kind = 'outbound' AND id = $3",
    )
    .bind(from)
    .bind(to)
    .bind(reference)
    .execute(&mut c)
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1, "{reference}");
    sqlx::query("UPDATE ledger_head SET batches_committed = batches_committed + 1")
        .execute(&mut c)
        .await
        .unwrap();
}
