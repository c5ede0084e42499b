//! The floor reference: a bare tonic server that serves only `grpc.health.v1.Health/Check`
//! (tonic-health), over the same mutual TLS as the gateway (client certificate required, the
//! same certificates, HTTP/2 only, TCP_NODELAY, the same stream limit). Whatever paygate's
//! Health/Check costs beyond it is the front door's own.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// `paygate bench echo-server` (hidden: the bench starts it as a child process).
#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Server certificate (PEM chain).
    #[arg(long)]
    pub cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long)]
    pub key: PathBuf,
    /// CA that client certificates must chain to (a client certificate is required).
    #[arg(long)]
    pub ca: PathBuf,
    /// HTTP/2 streams per connection.
    #[arg(long, default_value_t = 256)]
    pub streams_max: u32,
}

/// Serves Health/Check until SIGINT or SIGTERM.
pub async fn serve(args: EchoArgs) -> ExitCode {
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paygate bench echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: EchoArgs) -> Result<(), String> {
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read(&args.cert)?, read(&args.key)?))
        .client_ca_root(Certificate::from_pem(read(&args.ca)?))
        .client_auth_optional(false);
    let (_reporter, health) = tonic_health::server::health_reporter();
    Server::builder()
        .tls_config(tls)
        .map_err(|e| format!("TLS: {e}"))?
        .max_concurrent_streams(args.streams_max)
        .tcp_nodelay(true)
        .accept_http1(false)
        .add_service(health)
        .serve_with_shutdown(args.listen, super::super::shutdown_signal())
        .await
        .map_err(|e| format!("serving on {}: {e}", args.listen))
}
