//! Creating files and folders that only their owner can read.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700. An existing folder
/// is left as it is: it may be the user's own, shared with other tools.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates `path` if it does not exist, with mode 0600, and tightens an
/// existing file to 0600.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

/// Creates `path`, which must not exist, with mode 0600. The final
/// component is never followed as a symlink (a dangling link is refused,
/// not created through), and an existing file is never reused.
pub fn create_new_private_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    Ok(())
}

/// Refuses a file that holds a secret (the config file with a database
/// password) while others than its owner may read it, as ssh and libpq do.
pub fn check_private(path: &Path) -> crate::error::Result<()> {
    let mode = fs::metadata(path)
        .map_err(|e| crate::error::Error::file("read", path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(crate::error::Error::usage(format!(
            "{} holds a database password but other users may read it (mode {:o})",
            path.display(),
            mode & 0o777
        ))
        .with_hint(format!("chmod 600 {}", path.display())));
    }
    Ok(())
}
