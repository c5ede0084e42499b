//! The server's TLS material as rustls wants it: our certificate and key, the client CA, the
//! CRLs, and a client verifier that also insists on the clientAuth extended key usage. Built from
//! the configured files at start and again on every reload; a reload that fails keeps the old.

use std::{path::Path, sync::Arc};

use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{
        CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime, pem::PemObject,
    },
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};

use super::TlsError;
use crate::{config::TlsConfig, swap::Swap};

/// ALPN: gRPC is HTTP/2 only.
const ALPN_H2: &[u8] = b"h2";

/// The TLS material in force, swapped whole on reload. Each handshake takes the material current
/// when it starts; connections already open keep theirs.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<Swap<ServerConfig>>,
}

impl ServerTls {
    /// Loads the configured files; any missing or malformed file is an error.
    pub fn load(config: &TlsConfig) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            current: Arc::new(Swap::new(server_config(config)?)),
        })
    }

    /// Loads the configured files again and puts them in force; on error the old stay.
    pub fn reload(&self, config: &TlsConfig) -> Result<(), TlsError> {
        self.current.replace(server_config(config)?);
        Ok(())
    }

    /// An acceptor over the material in force now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.get())
    }
}

/// The acceptor of the clearing networks' result notices (HTTP/1.1): our server certificate and
/// key from `config`, and a client certificate that chains to `networks_ca` (the networks'
/// CA, not the callers'), with the clientAuth usage.
pub fn notice_acceptor(
    config: &TlsConfig,
    networks_ca: &Path,
) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let networks = TlsConfig {
        client_ca: networks_ca.to_owned(),
        crl_files: Vec::new(),
        ..config.clone()
    };
    let mut server = server_config(&networks)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// The rustls server configuration of `config`: a client certificate is mandatory, must chain to
/// `client_ca`, must not be revoked by `crl_files`, and must carry the clientAuth EKU.
fn server_config(config: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let missing: Vec<String> = [&config.server_cert, &config.server_key, &config.client_ca]
        .into_iter()
        .chain(&config.crl_files)
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(TlsError::Missing {
            missing: missing.join(", "),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&config.server_cert)?;
    let key = PrivateKeyDer::from_pem_file(&config.server_key)
        .map_err(|e| invalid(&config.server_key, format!("no private key: {e}")))?;
    let verifier = client_verifier(config, provider.clone())?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&config.server_cert, e.to_string()))?;
    server.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(server)
}

fn client_verifier(
    config: &TlsConfig,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(&config.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| invalid(&config.client_ca, e.to_string()))?;
    }
    let mut crls = Vec::new();
    for path in &config.crl_files {
        let found = CertificateRevocationListDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid(path, format!("not a PEM CRL file: {e}")))?;
        if found.is_empty() {
            return Err(invalid(path, "no CRL in the file".to_owned()));
        }
        crls.extend(found);
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Rustls(format!("client verifier: {e}")))?;
    Ok(Arc::new(ClientAuthOnly { webpki }))
}

/// Every certificate of a PEM file; none is an error.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let found = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(path, format!("not a PEM certificate file: {e}")))?;
    if found.is_empty() {
        return Err(invalid(path, "no certificate in the file".to_owned()));
    }
    Ok(found)
}

fn invalid(path: &Path, reason: String) -> TlsError {
    TlsError::Invalid {
        path: path.to_owned(),
        reason,
    }
}

/// webpki's client verifier (chain, validity, CRLs), plus one rule it leaves out: webpki accepts
/// a client certificate that has no extended key usage at all (RFC 5280 allows it); we require the
/// extension, with clientAuth in it, so a server or signing certificate of the same CA is no key
/// to the gateway.
#[derive(Debug)]
struct ClientAuthOnly {
    webpki: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ClientAuthOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)?;
        if !has_client_auth_eku(end_entity) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Whether a certificate carries the extended key usage extension with clientAuth in it.
fn has_client_auth_eku(der: &[u8]) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(der)
        .ok()
        .and_then(|(_, cert)| {
            cert.extended_key_usage()
                .ok()
                .flatten()
                .map(|eku| eku.value.client_auth)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{DevPkiLayout, client_params, generate_dev_pki, issue_from_dev_ca};

    #[test]
    fn webpki_alone_accepts_a_client_certificate_without_an_eku_and_paygate_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = DevPkiLayout::new(dir.path());
        generate_dev_pki(&layout, "test CA", &["with-eku"], false).expect("pki");
        let mut params = client_params("no-eku").expect("params");
        params.extended_key_usages.clear();
        issue_from_dev_ca(&layout, "no-eku", params).expect("issued");
        let config = TlsConfig {
            server_cert: layout.server_cert(),
            server_key: layout.server_key(),
            client_ca: layout.ca_cert(),
            ..TlsConfig::default()
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(certificates(&layout.ca_cert()).expect("ca").remove(0))
            .expect("root");
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("webpki");
        let ours = client_verifier(&config, provider).expect("ours");
        let no_eku = certificates(&layout.client_cert("no-eku"))
            .expect("cert")
            .remove(0);
        let with_eku = certificates(&layout.client_cert("with-eku"))
            .expect("cert")
            .remove(0);
        let now = UnixTime::now();

        assert!(webpki.verify_client_cert(&no_eku, &[], now).is_ok());
        assert!(ours.verify_client_cert(&no_eku, &[], now).is_err());
        assert!(ours.verify_client_cert(&with_eku, &[], now).is_ok());
    }
}
