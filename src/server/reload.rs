//! SIGHUP's reload: the TLS material and the caller table, swapped whole while serving.

use std::sync::Arc;

use crate::{
    config::{Config, ConfigError, LimitsConfig},
    grpc::gate::GateState,
    tls::{ServerTls, TlsError},
};

/// Why a reload was refused (the running configuration stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Reloads what may change without a restart: the server certificate and key, the client CA
/// bundle, the CRLs (`tls.*`) and the caller table (`[[callers]]`). Handshakes from then on use
/// the new material and calls from then on the new callers; open connections and calls in flight
/// are not touched. Everything else in the configuration needs a restart.
#[derive(Clone)]
pub struct Reloader {
    pub(super) tls: ServerTls,
    pub(super) gate: Arc<GateState>,
    pub(super) limits: LimitsConfig,
}

impl Reloader {
    /// Puts `config`'s TLS material and callers in force; on any error nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), ReloadError> {
        config.validate()?;
        self.tls.reload(&config.tls)?;
        self.gate.replace_callers(&config.callers, &self.limits);
        tracing::info!(
            callers = config.callers.len(),
            crl_files = config.tls.crl_files.len(),
            "reloaded the TLS material and the caller table"
        );
        Ok(())
    }
}
