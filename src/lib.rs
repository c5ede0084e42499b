//! paygate — a bank's own payment gateway: quick cashier (快捷收银台), virtual accounts and
//! balance yield over one double-entry ledger, served over gRPC with mutual TLS.
//!
//! The map (arrows point down only):
//! - [`cli`]: the `paygate` command line.
//! - [`server`]: [`server::Gateway`] — bind, then run until a shutdown future resolves.
//! - [`grpc`]: the contract's generated types, the front door (identity, grants, limits) and thin
//!   handlers; the only place that knows gRPC.
//! - [`admin`]: metrics and liveness over plain HTTP.
//! - [`notices`]: the listener of the clearing networks' result notices, which settle the calls
//!   they answer through the recovery worker's path.
//! - [`account`]: the account service (electronic accounts, sub-accounts, holds, limits,
//!   statements); no gRPC types.
//! - [`yields`]: the yield service (余额增值: products, subscribe, redeem, daily income, sweep);
//!   no gRPC types.
//! - [`eod`]: the end-of-day run (日切): per date, the yield accrual and sweep, and each
//!   network's reconciliation and settlement, as resumable, idempotent steps; no gRPC types.
//! - [`clearing`]: clearing-network clients behind one trait (on-us in process; NetsUnion,
//!   UnionPay QR, CNAPS and the wallets over HTTP/1.1), the routing table, and the network
//!   simulator `paygate netsim`.
//! - [`ledger`]: the double-entry ledger core (batched, two-phase, idempotent) every service
//!   posts through. It owns the storage port ([`ledger::store`]) and the one write path: a
//!   service's state commits in the same batch as its posting.
//! - [`storage`]: the SQLite and PostgreSQL adapters of that port, with embedded migrations;
//!   chosen in [`server`], imported by nothing above the ledger.
//! - [`money`]: exact amounts in ISO 4217 currencies.
//! - [`config`]: the one typed configuration tree.
//! - [`clock`]: the injectable clock (system in production, manual in tests).
//! - [`private_fs`]: files and folders only the gateway's user may read (0600 / 0700).
//! - [`secrets`]: the server secret: card tokens, person keys, page-token signatures.
//! - [`text`]: the free-text rules (no control or bidi characters, no card numbers).
//! - [`tls`]: certificates and the caller identity in them.
//! - [`telemetry`]: logs, metrics (process figures from `/proc/self`) and OpenTelemetry traces.

pub mod account;
pub mod admin;
pub mod cashier;
pub mod clearing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credit;
pub mod eod;
pub mod grpc;
pub mod ledger;
pub mod money;
pub mod notices;
pub mod private_fs;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod swap;
pub mod telemetry;
pub mod text;
pub mod tls;
pub mod yields;
