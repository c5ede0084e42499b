//! paygate — a bank's own payment gateway.
//!
//! The map:
//! - [`config`]: the one typed configuration tree.

pub mod config;
