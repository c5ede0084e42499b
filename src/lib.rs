//! paygate — a bank's own payment gateway.
//!
//! The map:
//! - [`config`]: the one typed configuration tree.
//! - [`money`]: exact amounts in ISO 4217 currencies.
//! - [`storage`]: SQLite and PostgreSQL behind one trait, with embedded migrations.
//! - [`ledger`]: the double-entry ledger core (batched, two-phase, idempotent).

pub mod config;
pub mod ledger;
pub mod money;
pub mod storage;
