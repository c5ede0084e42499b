//! OpenTelemetry over OTLP: with `tracing.otlp_endpoint` set, a call that carries a W3C
//! `traceparent` is exported — to an in-process collector stub that records what it receives —
//! as spans of that trace: the call, its wait for the ledger batch and its clearing-network
//! call; the batch's own span links to the wait; and the network (a real `paygate netsim`,
//! NetsUnion) receives the trace context of that clearing call in its request. Its own test
//! binary: the subscriber is global.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Backend, cny, netsim::Sim, open_class_ii, request_id, spawn_app_with};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use paygate::{
    clearing::{nets_union, routing::RecoveryConfig},
    config::{LogConfig, TracingConfig},
    grpc::pb::TopUpRequest,
    telemetry,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn start_collector() -> (Collector, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let collector = Collector::default();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (collector, format!("http://{addr}"))
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_traceparent_is_exported_as_spans_of_that_trace() {
    let (collector, endpoint) = start_collector().await;
    let exporter = telemetry::init(
        &LogConfig {
            filter: "info".to_owned(),
            ..LogConfig::default()
        },
        &TracingConfig {
            otlp_endpoint: endpoint,
            ..TracingConfig::default()
        },
    )
    .expect("exporter")
    .expect("configured");
    let sim = Sim::start("seed = 3\n").await;
    let app = spawn_app_with(
        Backend::Sqlite,
        sim.routing_quick_pay(nets_union::NETWORK, RecoveryConfig::default()),
    )
    .await;
    let mut accounts = app.accounts("core-banking").await;
    let account = open_class_ii(&mut accounts, 1).await;

    let mut top_up = tonic::Request::new(TopUpRequest {
        request_id: request_id("traced"),
        account_id: account,
        amount: Some(cny("10.00")),
        memo: String::new(),
    });
    top_up.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
            .parse()
            .expect("ascii"),
    );
    accounts.top_up(top_up).await.expect("top-up");
    let flushing = exporter.clone();
    tokio::task::spawn_blocking(move || flushing.flush())
        .await
        .expect("flush");
    let trace_id = hex::decode(TRACE_ID).expect("hex");
    let mut spans = Vec::new();
    for _ in 0..50 {
        spans = collector.spans.lock().unwrap().clone();
        if spans.iter().any(|s| s.name == "ledger.batch_commit") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let in_trace = |s: &&Span| s.trace_id == trace_id;

    let calls: Vec<&Span> = named(&spans, "rpc").into_iter().filter(in_trace).collect();
    assert_eq!(calls.len(), 1, "one call span in the trace: {spans:#?}");
    assert_eq!(
        calls[0].parent_span_id,
        hex::decode(PARENT_SPAN_ID).unwrap()
    );
    let waits: Vec<&Span> = named(&spans, "ledger.batch_wait")
        .into_iter()
        .filter(in_trace)
        .collect();
    assert!(!waits.is_empty(), "the ledger wait is in the trace");
    assert!(waits.iter().all(|w| w.parent_span_id == calls[0].span_id));
    let submits: Vec<&Span> = named(&spans, "clearing.submit")
        .into_iter()
        .filter(in_trace)
        .collect();
    assert_eq!(submits.len(), 1, "the clearing call is in the trace");
    let http: Vec<&Span> = named(&spans, "clearing.http")
        .into_iter()
        .filter(|s| s.parent_span_id == submits[0].span_id)
        .collect();
    assert_eq!(
        http.len(),
        1,
        "the HTTP exchange is a child of the clearing call"
    );
    let books = sim.books().await;
    assert_eq!(books.len(), 1, "{books:?}");
    let received = books[0]
        .traceparent
        .clone()
        .expect("the network received a traceparent");
    assert_eq!(
        received,
        format!("00-{TRACE_ID}-{}-01", hex::encode(&http[0].span_id)),
        "the network's request carries the trace, as a child of the HTTP exchange's span"
    );
    let commits = named(&spans, "ledger.batch_commit");
    assert!(
        commits.iter().any(|c| c
            .links
            .iter()
            .any(|l| l.trace_id == trace_id && waits.iter().any(|w| w.span_id == l.span_id))),
        "a batch commit links to the call's wait: {commits:#?}"
    );
    tokio::task::spawn_blocking(move || exporter.shutdown())
        .await
        .expect("shutdown");
}
