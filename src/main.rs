//! The `paygate` binary: everything lives in the library.

/// mimalloc instead of glibc's malloc: see docs/BENCHMARKS.md, "The allocator".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    paygate::cli::main()
}
