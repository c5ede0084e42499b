//! The `paygate` binary: everything lives in the library.

/// mimalloc instead of glibc's malloc: see docs/BENCHMARKS.md, "The allocator".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    allocator::return_freed_memory_at_once();
    paygate::cli::main()
}

/// mimalloc's settings. Its default purge delay (10 ms, and 10× that for its arenas) keeps
/// freed pages resident for a while; with the gateway's caches halving and refilling under load
/// that was ~30 MiB of peak RSS (a million accounts imported: 323 MiB with the delay, 290–294
/// MiB without; docs/BENCHMARKS.md, "A million accounts, quiet and busy").
#[allow(unsafe_code)]
mod allocator {
    use std::ffi::{c_int, c_long};

    /// `mi_option_purge_delay`: the 16th `mi_option_e` in mimalloc 2.x's and 3.x's `mimalloc.h`.
    const MI_OPTION_PURGE_DELAY: c_int = 15;

    unsafe extern "C" {
        fn mi_version() -> c_int;
        fn mi_option_set(option: c_int, value: c_long);
    }

    /// Purges freed memory at once instead of after the delay.
    pub fn return_freed_memory_at_once() {
        // SAFETY: both only read or store an integer of mimalloc's (compiled in through the
        // `mimalloc` crate); they are valid at any time and from any thread.
        let major = unsafe { mi_version() } / 10_000;
        // The option's number is only known for these versions; another keeps its default.
        if (2..=3).contains(&major) {
            // SAFETY: as above.
            unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
        }
    }
}
