//! `paygate netsim`: run the simulated clearing networks until SIGINT or SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use crate::{
    clearing::{
        Network,
        netsim::{Netsim, NetsimConfig, Storage},
        notice::NoticeKeys,
    },
    config::LogConfig,
    secrets::Secrets,
    telemetry,
};

#[derive(Debug, clap::Args)]
pub struct NetsimArgs {
    /// Address to listen on (plain TCP; keep it on loopback). Port 0 picks a free port; the
    /// bound address is printed on the first line of stdout.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// The simulator's TOML settings (seed, notices, faults per network); without one every
    /// network answers at once, always.
    #[arg(long, value_name = "FILE")]
    pub sim_config: Option<PathBuf>,
    /// Overrides the settings' `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// JSON snapshot of the books: loaded at start when it exists, written as they change.
    #[arg(long, value_name = "FILE")]
    pub books: Option<PathBuf>,
    /// Folder the reconciliation files are written to.
    #[arg(long, value_name = "DIR")]
    pub files: Option<PathBuf>,
    /// A gateway's server secret file (`secrets.key_file`): the result notices are signed with
    /// each network's notice key derived from it, as the gateway checks them. Without it they
    /// go unsigned (and a gateway refuses them). A sandbox's only: never a production secret.
    #[arg(long, value_name = "FILE")]
    pub notice_secret: Option<PathBuf>,
}

/// Runs the simulator in a runtime of its own.
pub fn main(args: NetsimArgs) -> ExitCode {
    telemetry::init_logging(&LogConfig::default());
    let mut config = match &args.sim_config {
        Some(path) => match NetsimConfig::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("paygate netsim: {e}");
                return ExitCode::from(2);
            }
        },
        None => NetsimConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("paygate netsim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let storage = Storage {
        books: args.books,
        files: args.files,
    };
    let notice_keys = match &args.notice_secret {
        Some(path) => match Secrets::load_or_create(path, false) {
            Ok(secrets) => NoticeKeys::derive(|code| secrets.notice_key(code)),
            Err(e) => {
                eprintln!("paygate netsim: {e}");
                return ExitCode::from(2);
            }
        },
        None => NoticeKeys::default(),
    };
    runtime.block_on(async move {
        let netsim = match Netsim::bind(args.listen, config, storage, notice_keys).await {
            Ok(netsim) => netsim,
            Err(e) => {
                eprintln!("paygate netsim: {e}");
                return ExitCode::from(2);
            }
        };
        for network in Network::all().filter(|n| n.is_remote()) {
            let spec = network.spec();
            tracing::info!(
                network = spec.code,
                name = spec.display_name,
                prefix = spec.path_prefix,
                "simulating"
            );
        }
        match netsim.local_addr() {
            Ok(addr) => println!("netsim listening on {addr}"),
            Err(e) => {
                eprintln!("paygate netsim: {e}");
                return ExitCode::FAILURE;
            }
        }
        match netsim.run(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("paygate netsim: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
