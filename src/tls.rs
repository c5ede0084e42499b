//! Certificates: the development PKI (`paygate certs init`), loading the server's TLS
//! configuration, and reading a caller's identity from its verified client certificate.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

/// How long the development certificates are valid.
const DEV_CERT_VALIDITY_DAYS: i64 = 825;
/// The TLS handshake must finish within this time or the connection is dropped.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "TLS files missing ({missing}); run `paygate certs init` or point tls.* at your own PKI"
    )]
    Missing { missing: String },
    #[error("{0} already exists; pass --force to replace the development PKI")]
    Exists(PathBuf),
}

/// Where the files of a development PKI live inside its folder.
#[derive(Debug, Clone)]
pub struct DevPkiLayout {
    pub dir: PathBuf,
}

impl DevPkiLayout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DevPkiLayout { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn client_cert(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{name}.pem"))
    }
    pub fn client_key(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{name}.key"))
    }
}

/// Writes a development CA, a server certificate for localhost/127.0.0.1/::1 and one client
/// certificate per caller name (CN and SAN DNS name = the caller name, client-auth only).
/// Private keys are written with mode 0600. Refuses to overwrite unless `force`.
pub fn generate_dev_pki(
    layout: &DevPkiLayout,
    ca_name: &str,
    client_names: &[&str],
    force: bool,
) -> Result<(), TlsError> {
    if !force && layout.ca_cert().exists() {
        return Err(TlsError::Exists(layout.ca_cert()));
    }
    create_dir(&layout.dir)?;
    create_dir(&layout.dir.join("clients"))?;

    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = named(ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca_params);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    write_file(&layout.ca_cert(), ca.pem().as_bytes(), false)?;
    write_file(&layout.ca_key(), ca.key().serialize_pem().as_bytes(), true)?;

    let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
    server.distinguished_name = named("paygate server");
    server
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    set_validity(&mut server);
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;
    write_file(&layout.server_cert(), server_cert.pem().as_bytes(), false)?;
    write_file(
        &layout.server_key(),
        server_key.serialize_pem().as_bytes(),
        true,
    )?;

    for name in client_names {
        let mut client = CertificateParams::new(vec![(*name).to_owned()])?;
        client.distinguished_name = named(name);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut client);
        let key = KeyPair::generate()?;
        let cert = client.signed_by(&key, &ca)?;
        write_file(&layout.client_cert(name), cert.pem().as_bytes(), false)?;
        write_file(
            &layout.client_key(name),
            key.serialize_pem().as_bytes(),
            true,
        )?;
    }
    Ok(())
}

/// On first start with the embedded defaults: create the development PKI when none of the
/// configured TLS files exists. If only some exist, that is a broken PKI, not a first start.
pub fn ensure_dev_pki(config: &TlsConfig, client_names: &[&str]) -> Result<bool, TlsError> {
    let files = [&config.server_cert, &config.server_key, &config.client_ca];
    if !config.generate_dev_pki || files.iter().any(|f| f.exists()) {
        return Ok(false);
    }
    let layout = DevPkiLayout::new(&config.dev_pki_dir);
    generate_dev_pki(&layout, "paygate dev CA", client_names, false)?;
    Ok(true)
}

/// The server side of mutual TLS: our identity, and the only CA whose client certificates we accept.
/// A client certificate is mandatory (rustls speaks TLS 1.2 and 1.3 only).
pub fn server_tls_config(config: &TlsConfig) -> Result<ServerTlsConfig, TlsError> {
    let missing: Vec<String> = [&config.server_cert, &config.server_key, &config.client_ca]
        .into_iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(TlsError::Missing {
            missing: missing.join(", "),
        });
    }
    let cert = read_file(&config.server_cert)?;
    let key = read_file(&config.server_key)?;
    let ca = read_file(&config.client_ca)?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(ca))
        .client_auth_optional(false)
        .timeout(std::time::Duration::from_millis(HANDSHAKE_TIMEOUT_MS)))
}

/// The names a verified client certificate goes by: its SAN DNS names, URIs and e-mail
/// addresses, then its subject CN. Empty if the certificate cannot be parsed.
pub fn certificate_identities(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::URI(n) | GeneralName::RFC822Name(n) => {
                    names.push((*n).to_owned())
                }
                _ => {}
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            names.push(cn.to_owned());
        }
    }
    names
}

fn named(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "paygate development");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(DEV_CERT_VALIDITY_DAYS);
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_client_certificate_names_its_caller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = DevPkiLayout::new(dir.path());
        generate_dev_pki(&layout, "test CA", &["core-banking"], false).expect("pki");
        let pem = fs::read_to_string(layout.client_cert("core-banking")).expect("read");
        let der = pem_to_der(&pem);
        let ids = certificate_identities(&der);
        assert_eq!(
            ids,
            vec!["core-banking".to_owned(), "core-banking".to_owned()]
        );
        assert!(matches!(
            generate_dev_pki(&layout, "test CA", &[], false),
            Err(TlsError::Exists(_))
        ));
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        parsed.contents
    }
}
