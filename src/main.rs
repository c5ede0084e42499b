//! The `paygate` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    paygate::cli::main()
}
