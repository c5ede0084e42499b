//! Certificates: the development PKI (`paygate certs init`, `issue-client`, CRLs), the server's
//! TLS material (`material.rs`, reloadable), accepting connections (`accept.rs`: handshake and
//! idle limits), and reading a caller's identities from its verified client certificate.

mod accept;
mod material;

pub use accept::{
    AcceptLimits, CallOnConnection, ConnectionActivity, ConnectionInfo, TlsConnection,
    handshake_failure_reason, incoming,
};
pub use material::{ServerTls, notice_acceptor};

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};

use crate::config::TlsConfig;

/// How long the development certificates are valid.
const DEV_CERT_VALIDITY_DAYS: i64 = 825;
/// How long a development CRL is current (its nextUpdate).
const DEV_CRL_VALIDITY_DAYS: i64 = 7;

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
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Rustls(String),
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
    /// The development CRL (`paygate certs revoke`), for `tls.crl_files`.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
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
        sign_client(layout, name, client_params(name)?, &ca)?;
    }
    Ok(())
}

/// The development client certificate of caller `name`: CN and SAN DNS name = `name` (so both
/// of its identities name the same caller), the clientAuth extended key usage, nothing else.
pub fn client_params(name: &str) -> Result<CertificateParams, TlsError> {
    let mut client = CertificateParams::new(vec![name.to_owned()])?;
    client.distinguished_name = named(name);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    set_validity(&mut client);
    Ok(client)
}

/// Issues the development client certificate of `name` (see [`client_params`]) from the
/// development CA in `layout` (`paygate certs issue-client`); replaces one of the same name.
pub fn issue_client(layout: &DevPkiLayout, name: &str) -> Result<(), TlsError> {
    issue_from_dev_ca(layout, name, client_params(name)?)
}

/// Signs `params` with the development CA in `layout` and writes the certificate and a fresh key
/// as `clients/<file_name>.pem` / `.key` (tests issue odd certificates this way).
pub fn issue_from_dev_ca(
    layout: &DevPkiLayout,
    file_name: &str,
    params: CertificateParams,
) -> Result<(), TlsError> {
    let ca = dev_ca(layout)?;
    create_dir(&layout.dir.join("clients"))?;
    sign_client(layout, file_name, params, &ca)
}

/// Writes a CRL of the development CA to `layout.crl()` revoking the client certificates of
/// `revoked` (as found in `clients/`); an empty list writes a CRL that revokes nothing.
pub fn write_dev_crl(layout: &DevPkiLayout, revoked: &[&str]) -> Result<(), TlsError> {
    let ca = dev_ca(layout)?;
    let now = time::OffsetDateTime::now_utc();
    let revoked_certs = revoked
        .iter()
        .map(|name| {
            Ok(RevokedCertParams {
                serial_number: serial_of(&layout.client_cert(name))?,
                revocation_time: now,
                reason_code: Some(rcgen::RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, TlsError>>()?;
    // A CRL number only has to grow: the time in seconds does.
    let crl_number = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(DEV_CRL_VALIDITY_DAYS),
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca)?;
    write_file(&layout.crl(), crl.pem()?.as_bytes(), false)
}

fn sign_client(
    layout: &DevPkiLayout,
    file_name: &str,
    params: CertificateParams,
    ca: &Issuer<'_, KeyPair>,
) -> Result<(), TlsError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    write_file(&layout.client_cert(file_name), cert.pem().as_bytes(), false)?;
    write_file(
        &layout.client_key(file_name),
        key.serialize_pem().as_bytes(),
        true,
    )
}

/// The development CA of `layout`, from its certificate and key files.
fn dev_ca(layout: &DevPkiLayout) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let cert = fs::read_to_string(layout.ca_cert()).map_err(|source| TlsError::Io {
        path: layout.ca_cert(),
        source,
    })?;
    let key = fs::read_to_string(layout.ca_key()).map_err(|source| TlsError::Io {
        path: layout.ca_key(),
        source,
    })?;
    let key = KeyPair::from_pem(&key)?;
    Ok(Issuer::from_ca_cert_pem(&cert, key)?)
}

/// The serial number of the certificate in a PEM file.
fn serial_of(path: &Path) -> Result<SerialNumber, TlsError> {
    let pem = read_file(path)?;
    let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| TlsError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let cert = parsed.parse_x509().map_err(|e| TlsError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(SerialNumber::from_slice(cert.raw_serial()))
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

/// The identities a verified client certificate presents: its SAN DNS names, URIs and e-mail
/// addresses, then its subject CNs (IP addresses and other names are not identities). Empty if
/// the certificate cannot be parsed. The gate looks each up in the caller table; all that match
/// must name the same caller (see certs/README.md).
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
