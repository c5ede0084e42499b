//! Files and folders only the gateway's own user may read: the SQLite database with its `-wal`
//! and `-shm` files, the server secret, and the folders the gateway creates for them. On Unix
//! files are created `0600` and folders `0700` (the umask can only narrow these); elsewhere they
//! get the platform's defaults. A leaf module: it names nothing else of the crate.

use std::{fs, io, path::Path};

/// Mode of a private file: read and write for the owner only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of a private folder: the owner only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with [`PRIVATE_DIR_MODE`]; folders that exist already
/// are left as they are.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder.create(dir)
}

/// Options that create a new file (never an existing one) with [`PRIVATE_FILE_MODE`].
pub fn new_private_file() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    options
}

/// Creates an empty `path` with [`PRIVATE_FILE_MODE`] unless it exists; `true` when it did not
/// exist and was created now.
pub fn create_private_file_if_missing(path: &Path) -> io::Result<bool> {
    match new_private_file().open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Narrows an existing `path` to [`PRIVATE_FILE_MODE`]; a missing one is no error.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_FILE_MODE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Logs a warning when an existing `path` may be read by other users (it was not created by
/// this gateway, or its mode was changed since): the operator's choice is left alone.
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the {what} may be read by other users; 0600 is recommended"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_files_and_folders_are_the_owners_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir_all(&dir).unwrap();
        assert_eq!(mode(&root.path().join("a")), PRIVATE_DIR_MODE);
        assert_eq!(mode(&dir), PRIVATE_DIR_MODE);
        let file = dir.join("f");
        assert!(create_private_file_if_missing(&file).unwrap());
        assert!(!create_private_file_if_missing(&file).unwrap());
        assert_eq!(mode(&file), PRIVATE_FILE_MODE);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&file).unwrap();
        assert_eq!(mode(&file), PRIVATE_FILE_MODE);
        make_private(&dir.join("missing")).unwrap();
    }
}
