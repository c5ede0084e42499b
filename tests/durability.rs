//! The durability gate: the gateway refuses to serve on database settings under which an
//! acknowledged payment can be lost, unless told otherwise — and then it says so at every start
//! and in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, spawn_app, spawn_app_with};
use paygate::{
    config::SqliteSynchronous,
    server::{Gateway, ServeError},
};
use sqlx::{Connection, PgConnection};

/// The refusal's text when `Gateway::bind` refuses; panics when it serves.
async fn refusal(config: paygate::config::Config) -> String {
    match Gateway::bind(config).await {
        Err(e @ ServeError::DurabilityRisk(_)) => e.to_string(),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("served on a database that can lose acknowledged payments"),
    }
}

#[tokio::test]
async fn sqlite_below_synchronous_full_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut config = app.config.clone();
    config.database.sqlite_synchronous = SqliteSynchronous::Normal;

    let refused = refusal(config).await;

    assert!(refused.contains("sqlite.synchronous = NORMAL"), "{refused}");
    assert!(refused.contains("allow_durability_risk"), "{refused}");
}

#[tokio::test]
async fn an_override_serves_and_shows_in_the_metrics() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.database.sqlite_synchronous = SqliteSynchronous::Normal;
        c.database.allow_durability_risk = true;
    })
    .await;

    let (_, metrics) = app.admin_get("/metrics").await;

    assert!(
        metrics.contains("paygate_durability_override{setting=\"sqlite.synchronous\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn durable_settings_show_no_override() {
    let app = spawn_app(Backend::Sqlite).await;

    let (_, metrics) = app.admin_get("/metrics").await;

    assert!(
        !metrics.contains("paygate_durability_override{"),
        "{metrics}"
    );
}

#[tokio::test]
async fn postgres_with_synchronous_commit_off_is_refused() {
    if !common::postgres_available().await {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let url = app.config.database.url.clone();
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let mut admin = PgConnection::connect(&common::db::pg_admin_url())
        .await
        .expect("admin connection");
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" SET synchronous_commit = off"
    ))
    .execute(&mut admin)
    .await
    .expect("set for new connections");

    let refused = refusal(app.config.clone()).await;

    assert!(
        refused.contains("postgresql.synchronous_commit = off"),
        "{refused}"
    );
    let mut allowed = app.config.clone();
    allowed.database.allow_durability_risk = true;
    Gateway::bind(allowed)
        .await
        .expect("served under the override");
}
