//! The network clients against `paygate netsim` run as a real process: every network's wire
//! format end to end, rejections, no answer (unknown, then the query finds what was booked),
//! late and duplicate answers, reversal idempotence, outages, the reconciliation files, and the
//! W3C `traceparent` on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/netsim.rs"]
#[allow(dead_code)]
mod netsim_process;
use netsim_process::Sim;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use paygate::{
    clearing::{
        CardDirection, CardInstruction, ClearingClient, Network, Outcome, QueryOutcome, ReconLine,
        ReconPeriod, RefundInstruction, ReversalOutcome, cnaps,
        http::Endpoint,
        nets_union,
        netsim::{self, books::Entry},
        recon::{ReconStatus, batch_id, business_date},
        reference_for,
        routing::client,
        union_pay_qr, wallets,
        wire::{Call, Reply},
    },
    clock::Clock,
    money::{Currency, Money},
};
use tracing::{Instrument, instrument::WithSubscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

/// The networks the simulator plays: every one of the registry but on-us.
fn simulated() -> Vec<Network> {
    Network::all().filter(|n| n.is_remote()).collect()
}

/// A client's timeout in these tests: short, so an unknown outcome is quick.
const TIMEOUT_MS: u64 = 400;

/// A client of `network` on the simulator, with this file's short timeout.
fn sim_client(sim: &Sim, network: Network) -> Arc<dyn ClearingClient> {
    let endpoint = Endpoint {
        address: sim.address.clone(),
        timeout_ms: TIMEOUT_MS,
    };
    client(network, endpoint, Clock::system())
}

/// Records the result notices the simulator posts.
#[derive(Clone, Default)]
struct Notices(Arc<Mutex<Vec<(String, String)>>>);

impl Notices {
    async fn start() -> (Notices, String) {
        let notices = Notices::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let recorded = notices.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::post(move |uri: axum::http::Uri, body: String| {
                let recorded = recorded.clone();
                async move {
                    recorded
                        .0
                        .lock()
                        .unwrap()
                        .push((uri.path().to_owned(), body));
                    "SUCCESS"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (notices, address)
    }

    /// Waits until `count` notices arrived (and a little more, for any extra one).
    async fn wait_for(&self, count: usize) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.lock().unwrap().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.0.lock().unwrap().clone()
    }
}

fn faults(lines: &str) -> String {
    simulated()
        .iter()
        .map(|n| format!("[[networks]]\nnetwork = \"{}\"\n{lines}\n", n.as_str()))
        .collect()
}

fn cny(text: &str) -> Money {
    Money::parse(
        Currency::from_code("CNY").unwrap(),
        text,
        paygate::money::Sign::Positive,
    )
    .unwrap()
}

fn debit(request_id: &str, amount: &str) -> CardInstruction {
    CardInstruction {
        reference: reference_for(request_id),
        direction: CardDirection::DebitCard,
        card_token: format!("tok-{request_id}"),
        amount: cny(amount),
    }
}

fn is_success(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Succeeded { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_network_books_a_payment_and_a_refund_and_reverses_once_in_its_own_format() {
    let sim = Sim::start("seed = 1\n").await;
    for network in simulated() {
        let client = sim_client(&sim, network);
        let name = network.as_str();
        let pay = debit(&format!("{name}-pay"), "100.25");
        let paid = client.submit(&pay).await;
        assert!(is_success(&paid), "{name} pays: {paid:?}");
        assert_eq!(
            client.submit(&pay).await,
            paid,
            "{name}: a resubmit answers the same"
        );

        let payout = CardInstruction {
            direction: CardDirection::CreditCard,
            ..debit(&format!("{name}-payout"), "7.00")
        };
        assert!(is_success(&client.submit(&payout).await), "{name} pays out");

        let refund = RefundInstruction {
            reference: reference_for(&format!("{name}-refund")),
            original_reference: pay.reference.clone(),
            amount: cny("40.00"),
        };
        assert!(is_success(&client.refund(&refund).await), "{name} refunds");
        let too_much = RefundInstruction {
            reference: reference_for(&format!("{name}-refund-2")),
            amount: cny("60.26"),
            ..refund.clone()
        };
        assert!(
            matches!(client.refund(&too_much).await, Outcome::Failed { .. }),
            "{name}: no refund past the original amount"
        );

        assert_eq!(
            client.query(&pay.reference).await,
            QueryOutcome::Found {
                outcome: paid.clone(),
                reversed: false
            },
            "{name} query"
        );
        assert_eq!(
            client.query(&reference_for("never-sent")).await,
            QueryOutcome::NotFound,
            "{name}: a reference it never got"
        );
        assert_eq!(
            client.reverse(&payout.reference).await,
            ReversalOutcome::Reversed
        );
        assert_eq!(
            client.reverse(&payout.reference).await,
            ReversalOutcome::Reversed,
            "{name}: a second reversal changes nothing and says so"
        );
        assert_eq!(
            client.reverse(&too_much.reference).await,
            ReversalOutcome::NothingToReverse,
            "{name}: a failed instruction has nothing to reverse"
        );
        assert!(matches!(
            client.query(&payout.reference).await,
            QueryOutcome::Found { reversed: true, .. }
        ));
        let entry = sim.entry(network, &payout.reference).await;
        assert_eq!(entry.status, ReconStatus::Reversed);
        assert_eq!(
            entry.reversal_requests, 2,
            "{name}: both requests were seen"
        );
        assert_eq!(sim.entry(network, &pay.reference).await.resubmits, 1);
    }
}

/// What a reconciliation line and a booked entry must agree on.
type Row = (String, String, ReconStatus, i64);

fn row(line: ReconLine) -> Row {
    (
        line.reference,
        line.network_reference,
        line.status,
        line.amount.minor,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciliation_file_lists_exactly_what_was_booked() {
    let sim = Sim::start("seed = 2\n").await;
    for network in simulated() {
        let client = sim_client(&sim, network);
        for n in 0..3 {
            let pay = debit(&format!("{}-recon-{n}", network.as_str()), "10.00");
            assert!(is_success(&client.submit(&pay).await));
        }
        let voided = debit(&format!("{}-recon-0", network.as_str()), "10.00");
        assert_eq!(
            client.reverse(&voided.reference).await,
            ReversalOutcome::Reversed
        );
    }
    let books = sim.books().await;
    assert_eq!(books.len(), 3 * simulated().len());
    for network in simulated() {
        let booked: Vec<&Entry> = books.iter().filter(|e| e.network == network).collect();
        let mut periods = vec![ReconPeriod::Date(business_date(
            network,
            booked[0].booked_at_ms,
        ))];
        if network.hourly_batches() {
            periods.push(ReconPeriod::Batch(batch_id(booked[0].booked_at_ms)));
        }
        for period in periods {
            let file = sim_client(&sim, network)
                .reconciliation_file(&period)
                .await
                .unwrap_or_else(|e| panic!("{network:?} {period:?}: {e}"));
            let mut listed: Vec<Row> = file.lines.iter().map(|l| row(l.clone())).collect();
            let mut expected: Vec<Row> = booked
                .iter()
                .filter(|e| paygate::clearing::recon::in_period(network, &period, e.booked_at_ms))
                .map(|e| row(e.line()))
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(listed, expected, "{network:?} {period:?}");
            assert!(!listed.is_empty());
        }
        let reversed = booked
            .iter()
            .filter(|e| e.status == ReconStatus::Reversed)
            .count();
        assert_eq!(reversed, 1, "{network:?}");
    }
    assert!(
        sim_client(&sim, union_pay_qr::NETWORK)
            .reconciliation_file(&ReconPeriod::Batch(batch_id(books[0].booked_at_ms)))
            .await
            .is_err(),
        "hourly batches are NetsUnion's only"
    );
    let written = sim.dir.path().join("files/NETS_UNION");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&written).map_or(0, |d| d.count()) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = std::fs::read_dir(&written)
        .expect("NetsUnion files written")
        .count();
    assert!(files >= 2, "an hourly batch and a business date: {files}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_a_failure_with_the_network_s_own_code() {
    let sim = Sim::start(&format!("seed = 3\n{}", faults("reject_rate = 1.0"))).await;
    let mut codes = Vec::new();
    for network in simulated() {
        match sim_client(&sim, network)
            .submit(&debit("declined", "1.00"))
            .await
        {
            Outcome::Failed { code, .. } => {
                assert_eq!(code, network.spec().decline_code, "{network:?}");
                codes.push((network.as_str(), code));
            }
            other => panic!("{network:?} declines: {other:?}"),
        }
    }
    // The codes of the networks that were there first, as their formats spell them.
    let first = [
        "NETS_UNION",
        "UNION_PAY_QR",
        "CNAPS_HVPS",
        "CNAPS_BEPS",
        "CNAPS_IBPS",
        "ALIPAY",
        "WECHAT_PAY",
    ];
    let codes: Vec<&str> = first
        .iter()
        .filter_map(|name| codes.iter().find(|(n, _)| n == name))
        .map(|(_, code)| code.as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "EPCC0051",
            "51",
            "AM04",
            "AM04",
            "AM04",
            "NOTENOUGH",
            "NOTENOUGH"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netsunion_answers_presumed_outcomes() {
    let config = "seed = 4\n[[networks]]\nnetwork = \"NETS_UNION\"\npresumed_rate = 1.0\n\
                  reject_rate = 0.5\n";
    let sim = Sim::start(config).await;
    let client = sim_client(&sim, nets_union::NETWORK);
    let (mut presumed_success, mut presumed_failure) = (0, 0);
    for n in 0..12 {
        match client
            .submit(&debit(&format!("presumed-{n}"), "1.00"))
            .await
        {
            Outcome::PresumedSucceeded { .. } => presumed_success += 1,
            Outcome::PresumedFailed { .. } => presumed_failure += 1,
            other => panic!("a presumed outcome: {other:?}"),
        }
    }
    assert!(presumed_success > 0 && presumed_failure > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_is_unknown_and_the_query_finds_what_was_booked() {
    let sim = Sim::start(&format!(
        "seed = 5\nhang_ms_max = 3000\n{}",
        faults("no_answer_rate = 1.0")
    ))
    .await;
    for network in simulated() {
        let client = sim_client(&sim, network);
        let pay = debit("lost-answer", "88.00");
        let started = Instant::now();
        assert_eq!(client.submit(&pay).await, Outcome::Unknown, "{network:?}");
        assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS * 3));
        match client.query(&pay.reference).await {
            QueryOutcome::Found { outcome, reversed } => {
                assert!(is_success(&outcome), "{network:?}: {outcome:?}");
                assert!(!reversed);
            }
            other => panic!("{network:?}: the query finds it: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_is_unknown_then_arrives_as_a_notice() {
    let (notices, notify) = Notices::start().await;
    let config = format!(
        "seed = 6\nnotify_address = \"{notify}\"\n[[networks]]\nnetwork = \"UNION_PAY_QR\"\n\
         late_rate = 1.0\nlate_ms = {}\n",
        TIMEOUT_MS + 300
    );
    let sim = Sim::start(&config).await;
    let client = sim_client(&sim, union_pay_qr::NETWORK);
    let pay = debit("late", "5.00");
    assert_eq!(client.submit(&pay).await, Outcome::Unknown);
    let received = notices.wait_for(1).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].0, "/unionpay-qr/notify");
    let codec = netsim::codec(union_pay_qr::NETWORK).unwrap();
    let call = Call::Submit(pay.clone());
    match codec.decode_reply(&call, &received[0].1).unwrap() {
        Reply::Outcome { reference, outcome } => {
            assert_eq!(reference, pay.reference);
            assert!(is_success(&outcome));
        }
        other => panic!("an outcome notice: {other:?}"),
    }
    assert!(matches!(
        client.query(&pay.reference).await,
        QueryOutcome::Found { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_answer_books_once() {
    let (notices, notify) = Notices::start().await;
    let config = format!(
        "seed = 7\nnotify_address = \"{notify}\"\n[[networks]]\nnetwork = \"WECHAT_PAY\"\n\
         duplicate_rate = 1.0\n"
    );
    let sim = Sim::start(&config).await;
    let client = sim_client(&sim, wallets::WECHAT_PAY);
    let pay = debit("twice", "9.99");
    let answer = client.submit(&pay).await;
    assert!(is_success(&answer));
    let received = notices.wait_for(2).await;
    assert_eq!(received.len(), 2, "the answer, twice: {received:?}");
    assert_eq!(received[0], received[1]);
    assert_eq!(
        client.submit(&pay).await,
        answer,
        "a resubmit answers the same"
    );
    let books = sim.books().await;
    assert_eq!(books.len(), 1, "booked once: {books:?}");
    assert_eq!(books[0].resubmits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_unknown_and_books_nothing() {
    let config = "seed = 8\nhang_ms_max = 2000\n\
        [[networks]]\nnetwork = \"CNAPS_HVPS\"\n\
        outages = [{ after_ms = 0, for_ms = 600000, mode = \"refuse\" }]\n\
        [[networks]]\nnetwork = \"ALIPAY\"\n\
        outages = [{ after_ms = 0, for_ms = 600000, mode = \"hang\" }]\n";
    let sim = Sim::start(config).await;
    for network in [cnaps::HVPS, wallets::ALIPAY] {
        let client = sim_client(&sim, network);
        let pay = debit("in-the-outage", "3.00");
        assert_eq!(client.submit(&pay).await, Outcome::Unknown, "{network:?}");
        assert_eq!(client.query(&pay.reference).await, QueryOutcome::Unknown);
        assert_eq!(
            client.reverse(&pay.reference).await,
            ReversalOutcome::Unknown
        );
    }
    assert!(sim.books().await.is_empty());
    let up = sim_client(&sim, cnaps::BEPS);
    assert!(
        is_success(&up.submit(&debit("beside", "3.00")).await),
        "other networks are up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_s_trace_context_travels_with_the_request() {
    let sim = Sim::start("seed = 9\n").await;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let client = sim_client(&sim, nets_union::NETWORK);
    let pay = debit("traced", "1.00");
    let trace_id = async {
        let span = tracing::info_span!("rpc");
        let trace_id = span.context().span().span_context().trace_id();
        let outcome = paygate::clearing::submit(client.as_ref(), &pay)
            .instrument(span)
            .await;
        assert!(matches!(
            outcome,
            paygate::clearing::ClearingOutcome::Succeeded { .. }
        ));
        trace_id
    }
    .with_subscriber(subscriber)
    .await;
    let traceparent = sim
        .entry(nets_union::NETWORK, &pay.reference)
        .await
        .traceparent
        .expect("the request carried a traceparent");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent} is in trace {trace_id}"
    );
    let untraced = debit("untraced", "1.00");
    client.submit(&untraced).await;
    assert_eq!(
        sim.entry(nets_union::NETWORK, &untraced.reference)
            .await
            .traceparent,
        None,
        "no OpenTelemetry, no header"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_takes_the_same_path() {
    let config = format!("seed = 11\n{}", faults("reject_rate = 0.5"));
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = Sim::start(&config).await;
        let client = sim_client(&sim, cnaps::BEPS);
        let mut outcomes = Vec::new();
        for n in 0..16 {
            let outcome = client.submit(&debit(&format!("seeded-{n}"), "2.00")).await;
            outcomes.push(is_success(&outcome));
        }
        runs.push(outcomes);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&true) && runs[0].contains(&false),
        "{:?}",
        runs[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_survive_a_restart_of_the_simulator() {
    let sim = Sim::start("seed = 12\nflush_interval_ms = 50\n").await;
    let pay = debit("kept", "12.00");
    let paid = sim_client(&sim, nets_union::NETWORK).submit(&pay).await;
    assert!(is_success(&paid));
    let snapshot = sim.dir.path().join("books.json");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !snapshot.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = sim.stop();
    let again = Sim::start_in(dir, "seed = 12\n").await;
    let client = sim_client(&again, nets_union::NETWORK);
    assert_eq!(
        client.query(&pay.reference).await,
        QueryOutcome::Found {
            outcome: paid.clone(),
            reversed: false
        }
    );
    assert_eq!(client.submit(&pay).await, paid, "still booked once");
    assert_eq!(again.books().await.len(), 1);
}
