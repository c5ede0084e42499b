//! Compiles the `paygate.v1` contract without a system `protoc`: the pure-Rust `protox` compiler
//! produces the descriptor set, `tonic-prost-build` generates the code from it, and the same set
//! (imports included) is written to `OUT_DIR` for server reflection.

use std::{env, fs, path::PathBuf, process::Command};

use prost::Message;

const PROTO_ROOT: &str = "proto";
const PROTO_DIR: &str = "proto/paygate/v1";
/// Google's error details, served by reflection so tools can decode `ErrorInfo`.
const THIRD_PARTY_ROOT: &str = "third_party";
const ERROR_DETAILS: &str = "google/rpc/error_details.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed={THIRD_PARTY_ROOT}");

    let mut files: Vec<PathBuf> = fs::read_dir(PROTO_DIR)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .proto files under {PROTO_DIR}");

    let descriptor_set = protox::Compiler::new([PROTO_ROOT])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(&files)?
        .file_descriptor_set();
    let error_details = protox::Compiler::new([THIRD_PARTY_ROOT])?
        .include_imports(true)
        .open_files([ERROR_DETAILS])?
        .file_descriptor_set();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("paygate_descriptor.bin"),
        descriptor_set.encode_to_vec(),
    )?;
    fs::write(
        out_dir.join("error_details_descriptor.bin"),
        error_details.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // An RPC whose issue has not landed answers UNIMPLEMENTED; nothing fakes success.
        .generate_default_stubs(true)
        // Requests that do not decode answer INVALID_ARGUMENT, not prost's INTERNAL.
        .codec_path("crate::grpc::codec::StrictCodec")
        .compile_fds(descriptor_set)?;
    git_commit();
    Ok(())
}

/// `PAYGATE_GIT_COMMIT` for the build-info metric, when built from a git checkout (a source
/// tarball has none: the metric says `unknown`). Rebuilt when HEAD or its branch moves.
fn git_commit() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=PAYGATE_GIT_COMMIT={commit}");
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    // Only files that exist: a missing one would rerun this script on every build.
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
