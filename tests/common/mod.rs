//! The one test harness.
//!
//! - [`db`]: the [`Backend`] enum and a fresh database per test on SQLite or PostgreSQL (see
//!   there for when a missing PostgreSQL skips and when it fails).
//! - [`app`]: `spawn_app(backend)` / `spawn_app_with(backend, adjust)` — a real gateway over
//!   mutual TLS on that database.
//! - [`rpc`]: helpers of the gRPC clients (re-exported here, as are `app` and `db`).
//! - [`yields`]: helpers of the yield service's tests (requests, runs, the manual clock by date).
//! - [`eod`]: the end-of-day run from the command line (today's round, then a later one).
//! - [`back_office`]: database edits no RPC makes (a bound card removed), moving the chain head.
//! - [`ledger`]: the ledger tests' fixtures ([`ledger::TestDb`] and builders).
//! - [`both_backends!`]: one `async fn name(backend: Backend)` becomes `name::sqlite` and
//!   `name::postgres`.
#![allow(dead_code, unused_imports)]

pub mod app;
pub mod back_office;
pub mod db;
pub mod eod;
pub mod ledger;
pub mod netsim;
pub mod process;
pub mod rpc;
pub mod yields;

pub use app::*;
pub use db::{Backend, postgres_available};
pub use rpc::*;

/// Runs each named `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`; the PostgreSQL one skips loudly when PostgreSQL is unreachable (fails
/// instead in CI or with `PAYGATE_TEST_PG=required`).
///
/// ```ignore
/// both_backends!(a_transfer_moves_money);
/// async fn a_transfer_moves_money(backend: Backend) { … }
///
/// both_backends!(multi_thread: two_tasks_race, …); // on a two-worker runtime
/// ```
#[macro_export]
macro_rules! both_backends {
    (multi_thread: $($name:ident),+ $(,)?) => {
        $(
            $crate::both_backends!(
                @test $name, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            );
        )+
    };
    (@test $name:ident, #[$test:meta]) => {
        mod $name {
            #[$test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }

            #[$test]
            async fn postgres() {
                if !$crate::common::postgres_available().await {
                    return;
                }
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    };
    ($($name:ident),+ $(,)?) => {
        $(
            $crate::both_backends!(@test $name, #[tokio::test]);
        )+
    };
}
