//! The embedded store's files: the data directory (0700), the database, its WAL and its
//! shared-memory index (0600), and the lock file that tells `zerotouch restore` whether anyone
//! has the store open. They hold SIP passwords, HA1s and the Digest nonce key, so nobody but
//! the server's user may read them, whatever the umask.
//!
//! A directory or file created here gets its mode set exactly (not through the umask). A
//! database file that is wider than 0600 is tightened, with a warning naming it; a data
//! directory wider than 0700 is only warned about, since the operator may have chosen it for
//! other things too. Must not know SQL or the schema.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::store::Error;

/// Mode of the data directory.
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode of every file of the store.
pub(super) const FILE_MODE: u32 = 0o600;

/// The files beside the database SQLite keeps in WAL mode: its write-ahead log and its
/// shared-memory index.
pub(super) fn companions(db: &Path) -> [PathBuf; 2] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with("-wal"), with("-shm")]
}

/// The lock file of the store at `db`: every open store holds a shared lock on it, `restore`
/// an exclusive one.
pub(super) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_error(path: &Path, reason: &dyn std::fmt::Display) -> Error {
    Error::Open {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Before the database is opened: the data directory exists (created 0700, or warned about
/// when wider), and the database and whatever WAL and index it has are 0600 (created so, or
/// tightened).
pub(super) fn prepare(db: &Path) -> Result<(), Error> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.exists() {
        warn_if_wider(dir, DIR_MODE, "data directory");
    } else {
        create_private_dir(dir).map_err(|e| open_error(dir, &e))?;
    }
    if !db.exists() {
        // An empty file is a new database to SQLite; creating it here sets its mode, which
        // SQLite then gives its WAL and index as well.
        create_private_file(db).map_err(|e| open_error(db, &e))?;
    }
    tighten(db);
    Ok(())
}

/// After the database is opened (and SQLite has made its WAL and index): those too are 0600.
pub(super) fn tighten_companions(db: &Path) {
    for path in companions(db) {
        if path.exists() {
            tighten(&path);
        }
    }
}

/// Takes a shared lock on the store's lock file (creating it 0600): held while the store is
/// open, so `restore` can tell that a server or a command is using it.
pub(super) fn lock_shared(db: &Path) -> Result<File, Error> {
    let path = lock_path(db);
    let file = open_lock(&path).map_err(|e| open_error(&path, &e))?;
    match try_lock(&file, false) {
        Ok(true) => Ok(file),
        Ok(false) => Err(open_error(
            db,
            &"the store is being restored (zerotouch restore holds it): try again when it is done",
        )),
        Err(e) => Err(open_error(&path, &e)),
    }
}

/// Takes the exclusive lock on the store's lock file, or says that someone holds it.
pub(super) fn lock_exclusive(db: &Path) -> Result<File, Error> {
    let path = lock_path(db);
    let file = open_lock(&path).map_err(|e| open_error(&path, &e))?;
    match try_lock(&file, true) {
        Ok(true) => Ok(file),
        Ok(false) => Err(Error::InUse {
            path: db.display().to_string(),
        }),
        Err(e) => Err(open_error(&path, &e)),
    }
}

/// An advisory lock (flock) on `file` without waiting: `Ok(false)` when another open file
/// holds a conflicting one. Released when the file is closed.
#[cfg(unix)]
fn try_lock(file: &File, exclusive: bool) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    let operation = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(file, operation) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere there is no lock: `restore` cannot tell whether the store is in use.
#[cfg(not(unix))]
fn try_lock(_file: &File, _exclusive: bool) -> std::io::Result<bool> {
    Ok(true)
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    set_create_mode(&mut options);
    let file = options.open(path)?;
    tighten(path);
    Ok(file)
}

/// Creates `path` (and any missing parent) with mode 0700, set exactly.
pub(super) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(DIR_MODE);
        builder.create(path)?;
        // The umask may have taken bits away from 0700; the store needs exactly these.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))
    }
    #[cfg(not(unix))]
    builder.create(path)
}

/// Creates `path`, which must not exist, with mode 0600, set exactly.
pub(super) fn create_private_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    set_create_mode(&mut options);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

fn set_create_mode(options: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// The permission bits of `path`, if it can be read.
#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// Warns (naming the path) when `path` allows more than `allowed`.
fn warn_if_wider(path: &Path, allowed: u32, what: &str) {
    #[cfg(unix)]
    if let Some(mode) = mode_of(path) {
        if mode & !allowed != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:04o}"),
                "the {what} {} is mode {mode:04o}, wider than {allowed:04o}: the store holds SIP passwords and HA1s; chmod {allowed:o} it",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, allowed, what);
}

/// Sets a store file wider than 0600 to 0600, warning (naming the path) that it was.
fn tighten(path: &Path) {
    #[cfg(unix)]
    if let Some(mode) = mode_of(path) {
        if mode & !FILE_MODE == 0 {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:04o}"),
                "the store file {} was mode {mode:04o}, readable beyond its owner: tightened to 0600",
                path.display()
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:04o}"),
                error = %e,
                "the store file {} is mode {mode:04o}, readable beyond its owner, and cannot be tightened: chmod 600 it",
                path.display()
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_fresh_store_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("a/b/zerotouch.db");
        prepare(&db).unwrap();
        assert_eq!(mode(db.parent().unwrap()), 0o700);
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn wider_store_files_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("zerotouch.db");
        let [wal, _] = companions(&db);
        for f in [&db, &wal] {
            std::fs::write(f, b"").unwrap();
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        prepare(&db).unwrap();
        tighten_companions(&db);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn an_exclusive_lock_waits_for_no_one() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("zerotouch.db");
        let shared = lock_shared(&db).unwrap();
        assert!(matches!(lock_exclusive(&db), Err(Error::InUse { .. })));
        drop(shared);
        let exclusive = lock_exclusive(&db).unwrap();
        assert!(lock_shared(&db).is_err(), "no store opens during a restore");
        drop(exclusive);
        assert_eq!(mode(&lock_path(&db)), 0o600);
    }
}
