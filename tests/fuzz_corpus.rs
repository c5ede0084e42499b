//! The fuzz corpora, replayed on the stable toolchain: every file of `fuzz/corpus/<target>/`
//! goes through the same entry point its `cargo fuzz` target calls (`fuzz/src/lib.rs`, included
//! here by path), so CI covers the seeds and every past finding without cargo-fuzz or nightly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::{fs, path::Path};

use harness::journal::{MemoryStore, run_verify};
use paygate::ledger::{Metadata, Posted, TransactionId, TransactionKind, store::TransactionRow};

/// Corpus files are minimised seeds: a bigger one was committed by mistake.
const CORPUS_FILE_BYTES_MAX: u64 = 4096;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let size = fs::metadata(&path).expect("corpus file").len();
            assert!(
                size <= CORPUS_FILE_BYTES_MAX,
                "{}: {size} bytes",
                path.display()
            );
            (
                path.display().to_string(),
                fs::read(&path).expect("corpus file"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_corpus_and_replays_it_without_a_finding() {
    for (target, run) in harness::TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        for (name, data) in files {
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {name} fails (see the panic above)"
            );
        }
    }
}

#[test]
fn every_fuzz_target_has_its_cargo_fuzz_binary() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .expect("fuzz/Cargo.toml");
    for (target, _) in harness::TARGETS {
        let bin = format!("path = \"fuzz_targets/{target}.rs\"");
        assert!(
            manifest.contains(&bin),
            "fuzz/Cargo.toml has no [[bin]] for {target}"
        );
    }
}

/// Found by `journal_verify` (corpus `arbitrary_max_seq`): the verifier computed the next
/// sequence as `seq + 1` and panicked on overflow when a store handed over the largest `u64`.
/// The SQL adapters refuse a negative sequence as corrupt, so only the store port reached it.
#[test]
fn a_journal_at_the_largest_sequence_is_reported_not_a_panic() {
    let mut store = MemoryStore::default();
    let posted = Posted {
        id: TransactionId(u64::MAX),
        kind: TransactionKind::Posting,
        entries: Vec::new(),
        reverses: None,
        metadata: Metadata::new(),
        created_at_ms: 0,
        hash: String::new(),
    };
    let row = TransactionRow {
        posted,
        prev_hash: String::new(),
    };
    store.transactions.push((row, Vec::new()));
    store.head.last_seq = u64::MAX;
    let report = run_verify(&store);
    let gap = format!("sequence gap: expected 1, found {}", u64::MAX);
    assert!(report.problems.contains(&gap), "{report}");
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.starts_with("chain head says")),
        "the head names the last transaction: {report}"
    );
}
