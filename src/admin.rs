//! The admin listener (plain HTTP, loopback by default): Prometheus metrics and liveness.
//! It carries no payment data and no mutating endpoint.

use std::{future::Future, sync::Arc};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use tokio::net::TcpListener;

use crate::telemetry::{Metrics, Sample};

#[derive(Clone)]
struct Scrape {
    metrics: Metrics,
    sampler: Arc<dyn Sample>,
}

/// Serves `/metrics` (after asking `sampler` for the figures read at each scrape), `/livez`
/// and `/readyz` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    sampler: Arc<dyn Sample>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ok\n" }))
        .with_state(Scrape { metrics, sampler });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render_metrics(State(scrape): State<Scrape>) -> impl IntoResponse {
    scrape.sampler.sample(&scrape.metrics).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        scrape.metrics.encode(),
    )
}
