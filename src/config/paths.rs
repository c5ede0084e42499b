//! The data directory (数据目录): every relative path of the configuration — the database file,
//! the TLS files and the development PKI, the server secret — is resolved against one folder
//! (`--data-dir`, default the working directory), and what a start would create there.

use std::path::{Path, PathBuf};

use super::Config;

impl Config {
    /// Resolves every relative path against `data_dir` (absolute paths and non-file database
    /// URLs are kept as they are; `.` changes nothing).
    pub fn resolve_paths(&mut self, data_dir: &Path) {
        if data_dir == Path::new(".") {
            return;
        }
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = data_dir.join(&*path);
            }
        };
        resolve(&mut self.tls.server_cert);
        resolve(&mut self.tls.server_key);
        resolve(&mut self.tls.client_ca);
        self.tls.crl_files.iter_mut().for_each(resolve);
        resolve(&mut self.tls.dev_pki_dir);
        resolve(&mut self.secrets.key_file);
        if !self.clearing.notices.client_ca.as_os_str().is_empty() {
            resolve(&mut self.clearing.notices.client_ca);
        }
        if let Some(file) = self.database.sqlite_file()
            && file.is_relative()
        {
            self.database.url = sqlite_url(&data_dir.join(file), &self.database.url);
        }
    }

    /// The files a start creates when they are missing (per `tls.generate_dev_pki` and
    /// `secrets.generate_if_missing`, and the SQLite database file), with whether each exists.
    pub fn created_on_start(&self) -> Vec<(&'static str, PathBuf, bool)> {
        let mut files = Vec::new();
        if let Some(file) = self.database.sqlite_file() {
            let exists = file.exists();
            files.push(("database", file, exists));
        }
        if self.tls.generate_dev_pki {
            let exists = [
                &self.tls.server_cert,
                &self.tls.server_key,
                &self.tls.client_ca,
            ]
            .iter()
            .any(|f| f.exists());
            files.push(("development PKI", self.tls.dev_pki_dir.clone(), exists));
        }
        if self.secrets.generate_if_missing {
            let file = self.secrets.key_file.clone();
            let exists = file.exists();
            files.push(("secret key", file, exists));
        }
        files
    }
}

impl super::DatabaseConfig {
    /// The SQLite database file this URL names; `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split_once('?').map_or(rest, |(path, _)| path);
        if path.is_empty() || path.contains(":memory:") || self.url.contains("mode=memory") {
            return None;
        }
        Some(PathBuf::from(path))
    }
}

/// `url` (a SQLite URL) naming `file` instead, its query kept.
fn sqlite_url(file: &Path, url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q);
    let mut out = format!("sqlite://{}", file.display());
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_data_directory_and_absolute_ones_stay() {
        let mut config = Config::default();
        config.tls.client_ca = PathBuf::from("/etc/bank/ca.pem");
        config.database.url = "sqlite://data/paygate.db?mode=rwc".to_owned();

        config.resolve_paths(Path::new("/var/lib/paygate"));

        assert_eq!(
            config.database.url,
            "sqlite:///var/lib/paygate/data/paygate.db?mode=rwc"
        );
        assert_eq!(
            config.tls.server_cert,
            PathBuf::from("/var/lib/paygate/certs/server.pem")
        );
        assert_eq!(config.tls.client_ca, PathBuf::from("/etc/bank/ca.pem"));
        assert_eq!(
            config.secrets.key_file,
            PathBuf::from("/var/lib/paygate/data/secret.key")
        );
    }

    #[test]
    fn only_sqlite_files_are_database_files() {
        let file = |url: &str| {
            crate::config::DatabaseConfig {
                url: url.to_owned(),
                ..Default::default()
            }
            .sqlite_file()
        };
        assert_eq!(file("sqlite:///abs/p.db"), Some(PathBuf::from("/abs/p.db")));
        assert_eq!(file("sqlite:rel.db"), Some(PathBuf::from("rel.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://pg@db/paygate"), None);
    }
}
