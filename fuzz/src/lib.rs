//! The fuzz entry points: one function per target, each taking the raw input bytes. The
//! `cargo fuzz` targets in `fuzz_targets/` call them, and so does the stable-toolchain test
//! `tests/fuzz_corpus.rs` (which includes this file by path) for every file of
//! `fuzz/corpus/<target>/`, so CI replays the corpora without cargo-fuzz or nightly.
//!
//! Each entry point decodes its input deterministically (never fails to decode: short input
//! reads as zeros) and asserts properties, not only the absence of panics.

#[path = "bytes.rs"]
pub mod bytes;
#[path = "codes.rs"]
pub mod codes;
#[path = "journal.rs"]
pub mod journal;
#[path = "money.rs"]
pub mod money;
#[path = "page_token.rs"]
pub mod page_token;
#[path = "wire.rs"]
pub mod wire;

/// A target's name (its corpus folder and its `fuzz_targets/<name>.rs`) and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("money", money::run),
    ("wire", wire::run),
    ("payment_code_qr", codes::run),
    ("page_token", page_token::run),
    ("journal_verify", journal::run),
];
