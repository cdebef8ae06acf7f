//! Backups of the embedded store: a consistent copy taken while a server runs and writes
//! (SQLite's online backup), and putting such a copy back after checking it (`restore`).
//!
//! A backup copies every page in one step, so it reads one snapshot: in WAL mode that never
//! blocks the server's writer, and nothing committed halfway through slips in. The copy is
//! written to a private temporary file beside the target, checked, synced and renamed into
//! place, so a crash leaves the old file or the new one, never half of one. Restore refuses a
//! copy whose schema is newer than this build, or that fails SQLite's integrity check, and
//! refuses to replace a store that a server or command has open (the lock in `files.rs`).
//!
//! Must not know HTTP, the registry, PostgreSQL or the command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{files, schema, SqliteStore};
use crate::store::Error;

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The schema version of the copy.
    pub schema_version: i64,
    /// Devices in the copy.
    pub devices: i64,
    /// Size of the copy in bytes.
    pub bytes: u64,
}

/// What a restore put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The schema version of the restored store (the server migrates it at start if older).
    pub schema_version: i64,
    /// Devices in the restored store.
    pub devices: i64,
    /// Whether a store was there before (and is now replaced).
    pub replaced: bool,
}

/// How long a backup step waits for a lock held by a writer before trying again, and how
/// often: a checkpoint or a migration holds it briefly; nothing holds it for a minute.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
const BUSY_TRIES: u32 = 1200;

impl SqliteStore {
    /// Copies the store at `db` to `to` while it may be in use: one consistent snapshot,
    /// written privately (0600) beside `to`, checked and renamed into place.
    pub fn backup(db: &Path, to: &Path) -> Result<BackupReport, Error> {
        if !db.is_file() {
            return Err(open_error(db, "no store here (is --data-dir right?)"));
        }
        if same_file(db, to) {
            return Err(open_error(
                to,
                "this is the store itself: back it up to another file",
            ));
        }
        // A store being restored is not copied half-replaced.
        let _lock = files::lock_shared(db)?;
        let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| open_error(db, e))?;
        source
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| open_error(db, e))?;
        let written = into_place(to, |partial| {
            copy(&source, partial).map_err(|e| open_error(db, e))?;
            let copy = Connection::open(partial).map_err(|e| open_error(to, e))?;
            // One self-contained file: no WAL beside it.
            copy.pragma_update(None, "journal_mode", "DELETE")
                .map_err(|e| open_error(to, e))?;
            let (schema_version, devices) = check(&copy, to)?;
            Ok((schema_version, devices))
        })?;
        let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        Ok(BackupReport {
            schema_version: written.0,
            devices: written.1,
            bytes,
        })
    }

    /// Replaces the store at `db` with the backup `from`, after checking that this build
    /// knows its schema and that it passes SQLite's integrity check. Refuses while a server
    /// or another command has the store open.
    pub fn restore(from: &Path, db: &Path) -> Result<RestoreReport, Error> {
        if !from.is_file() {
            return Err(open_error(from, "no such file"));
        }
        let backup = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| bad_backup(from, e))?;
        let (schema_version, devices) = check(&backup, from)?;

        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                files::create_private_dir(dir).map_err(|e| open_error(dir, e))?;
            }
        }
        let _lock = files::lock_exclusive(db)?;
        let replaced = db.exists();
        into_place(db, |partial| {
            copy(&backup, partial).map_err(|e| bad_backup(from, e))?;
            if replaced {
                set_aside_log(db);
            }
            Ok(())
        })?;
        Ok(RestoreReport {
            schema_version,
            devices,
            replaced,
        })
    }
}

/// Writes a new `target` through `write` (which fills the private temporary file it is
/// given), then syncs it and renames it over `target`. The temporary file is removed on
/// failure.
fn into_place<T>(target: &Path, write: impl FnOnce(&Path) -> Result<T, Error>) -> Result<T, Error> {
    let partial = partial_path(target);
    // A leftover of a crashed run is ours to replace.
    let _ = std::fs::remove_file(&partial);
    let result = files::create_private_file(&partial)
        .map_err(|e| open_error(&partial, e))
        .and_then(|file| {
            drop(file);
            let out = write(&partial)?;
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| open_error(&partial, e))?;
            std::fs::rename(&partial, target).map_err(|e| open_error(target, e))?;
            // The rename itself is durable once the directory is synced.
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(out)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Whether `a` and `b` name one existing file (renaming a copy over the live store would
/// pull it from under the server).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `.NAME.partial` beside `target`.
fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zerotouch.db".into());
    target.with_file_name(format!(".{name}.partial"))
}

/// Copies every page of `source` into a new database at `to`, in one step (one snapshot).
fn copy(source: &Connection, to: &Path) -> rusqlite::Result<()> {
    let mut target = Connection::open(to)?;
    let backup = Backup::new(source, &mut target)?;
    let mut tries = 0;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            // -1 copies everything at once: More does not happen, but would be harmless.
            StepResult::More => {}
            // Busy, Locked (and whatever a later rusqlite adds): wait and try again.
            _ => {
                tries += 1;
                if tries >= BUSY_TRIES {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the store stayed locked for a minute".into()),
                    ));
                }
                std::thread::sleep(BUSY_PAUSE);
            }
        }
    }
}

/// The old store's write-ahead log and index go before the new file takes the name: a log
/// left beside it would be replayed onto the restored pages. Nobody has the old store open
/// (the exclusive lock), so its log is first checkpointed into it, as a last copy of it.
fn set_aside_log(db: &Path) {
    if let Ok(old) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        if let Err(e) = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(path = %db.display(), error = %e, "could not checkpoint the store being replaced");
        }
    }
    for path in files::companions(db) {
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "could not remove the replaced store's file");
            }
        }
    }
}

/// The schema version and device count of a copy, once it is known to be a sound zerotouch
/// store this build can serve.
fn check(conn: &Connection, path: &Path) -> Result<(i64, i64), Error> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| bad_backup(path, e))?;
    if version > schema::VERSION {
        return Err(Error::BackupTooNew {
            path: path.display().to_string(),
            found: version,
            supported: schema::VERSION,
        });
    }
    if version < 1 {
        return Err(bad_backup(path, "not a zerotouch store (no schema)"));
    }
    let mut problems = Vec::new();
    conn.pragma_query(None, "integrity_check", |r| {
        problems.push(r.get::<_, String>(0)?);
        Ok(())
    })
    .map_err(|e| bad_backup(path, e))?;
    if problems != ["ok"] {
        problems.truncate(5);
        return Err(bad_backup(
            path,
            format!("integrity check failed: {}", problems.join("; ")),
        ));
    }
    let devices = conn
        .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
        .map_err(|e| bad_backup(path, e))?;
    Ok((version, devices))
}

fn open_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Open {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn bad_backup(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::BadBackup {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_restores_and_a_newer_or_damaged_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("data/zerotouch.db");
        let store = SqliteStore::open(&db).unwrap();
        let copy = tmp.path().join("copy.db");
        assert!(SqliteStore::backup(&db, &db).is_err(), "not onto itself");
        let report = SqliteStore::backup(&db, &copy).unwrap();
        assert_eq!(report.schema_version, schema::VERSION);
        assert!(!partial_path(&copy).exists());

        assert!(
            matches!(SqliteStore::restore(&copy, &db), Err(Error::InUse { .. })),
            "the store is open"
        );
        drop(store);
        let restored = SqliteStore::restore(&copy, &db).unwrap();
        assert!(restored.replaced);

        let newer = tmp.path().join("newer.db");
        std::fs::copy(&copy, &newer).unwrap();
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
        assert!(matches!(
            SqliteStore::restore(&newer, &db),
            Err(Error::BackupTooNew { .. })
        ));

        let junk = tmp.path().join("junk.db");
        std::fs::write(&junk, vec![7u8; 8192]).unwrap();
        assert!(matches!(
            SqliteStore::restore(&junk, &db),
            Err(Error::BadBackup { .. })
        ));
        SqliteStore::open(&db).unwrap();
    }
}
