//! `glia backup DEST`: a consistent copy of everything a server needs to come back, taken
//! while it runs.
//!
//! - `DEST/homeserver.db`: SQLite's online backup of the configured database, copied in one
//!   step, i.e. inside one read transaction. In WAL mode that does not block the server's
//!   writer, and the copy is exactly the database as of one commit (never half a request).
//!   It is written as `homeserver.db.partial` and renamed once it passes
//!   `PRAGMA integrity_check`, so an interrupted backup is never mistaken for a good one.
//! - `DEST/<media store directory name>`: the media files, copied after the database, so
//!   every file the copied database refers to is there (files uploaded meanwhile are extra,
//!   and harmless).
//! - `DEST/<signing key file name>` and, if the config names one, the registration shared
//!   secret file.
//!
//! The file names are those of the configured paths, so restoring is: point a copy of
//! `homeserver.yaml` at DEST (`database.args.database: DEST/homeserver.db`,
//! `media_store_path`, `signing_key_path`) and start Glia. Everything is written private to
//! the user running the backup (0700 directories, 0600 files): the database holds password
//! hashes and the key signs for the server.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::config::Config;

/// The database file's name inside DEST.
pub const DATABASE_FILE: &str = "homeserver.db";

/// Back up the server `config` describes into `dest` (created if needed, and which must not
/// hold a backup already). Returns one line per thing copied, for the user.
pub fn backup(config: &Config, dest: &Path) -> Result<Vec<String>, String> {
    let mut report = vec![];
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dest)
        .map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let db_dest = dest.join(DATABASE_FILE);
    if db_dest.exists() {
        return Err(format!(
            "{} exists already: back up into a new or empty directory",
            db_dest.display()
        ));
    }
    let (pages, bytes) = backup_database(&config.database.path, &db_dest)?;
    report.push(format!(
        "database {} -> {} ({pages} pages, {bytes} bytes, integrity ok)",
        config.database.path.display(),
        db_dest.display()
    ));

    let media = &config.media_store_path;
    if media.is_dir() {
        let to = dest.join(media.file_name().unwrap_or("media_store".as_ref()));
        let (files, bytes) = copy_tree(media, &to)
            .map_err(|e| format!("copying the media store {}: {e}", media.display()))?;
        report.push(format!(
            "media store {} -> {} ({files} files, {bytes} bytes)",
            media.display(),
            to.display()
        ));
    } else {
        report.push(format!("media store {} does not exist: nothing to copy", media.display()));
    }

    let mut secrets = vec![("signing key", config.signing_key_path.clone())];
    if let Some(p) = &config.registration_shared_secret_path {
        secrets.push(("registration shared secret", p.clone()));
    }
    for (what, path) in secrets {
        if !path.exists() {
            report.push(format!("{what} {} does not exist: not copied", path.display()));
            continue;
        }
        let name = path
            .file_name()
            .ok_or_else(|| format!("{what}: {} has no file name", path.display()))?;
        let to = dest.join(name);
        copy_private(&path, &to)
            .map_err(|e| format!("copying the {what} {}: {e}", path.display()))?;
        report.push(format!("{what} {} -> {}", path.display(), to.display()));
    }
    Ok(report)
}

/// The online backup proper: returns (pages, bytes) copied.
fn backup_database(src_path: &Path, dest: &Path) -> Result<(i32, u64), String> {
    if !src_path.exists() {
        return Err(format!("the database {} does not exist", src_path.display()));
    }
    let fail = |e: rusqlite::Error| format!("backing up {}: {e}", src_path.display());
    let src = Connection::open_with_flags(
        src_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    src.busy_timeout(Duration::from_secs(10)).map_err(fail)?;

    let partial = dest.with_extension("db.partial");
    let _ = fs::remove_file(&partial);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("creating {}: {e}", partial.display()))?;
    let pages = {
        let mut dst = Connection::open(&partial).map_err(fail)?;
        let backup = Backup::new(&src, &mut dst).map_err(fail)?;
        // All pages in one step: one read transaction, so the copy is one consistent
        // snapshot (a step-wise backup restarts whenever the server commits in between).
        let mut busy_retries = 0;
        loop {
            match backup.step(-1).map_err(fail)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if busy_retries < 200 => {
                    busy_retries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(format!(
                        "backing up {}: the database stayed locked",
                        src_path.display()
                    ));
                }
                _ => {}
            }
        }
        backup.progress().pagecount
    };
    drop(src);
    let check = Connection::open(&partial)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)))
        .map_err(|e| format!("checking the copy {}: {e}", partial.display()))?;
    if check != "ok" {
        return Err(format!("the copy {} fails integrity_check: {check}", partial.display()));
    }
    fs::rename(&partial, dest).map_err(|e| format!("renaming {}: {e}", partial.display()))?;
    let file = fs::File::open(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    file.sync_all().map_err(|e| format!("syncing {}: {e}", dest.display()))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(dir) = dest.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all(); // make the rename durable
    }
    Ok((pages, bytes))
}

/// Copy a file so that only the owner can read the copy.
fn copy_private(from: &Path, to: &Path) -> io::Result<u64> {
    let n = fs::copy(from, to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o600))?;
    Ok(n)
}

/// Copy a directory tree (regular files and directories; links and other special files
/// are skipped). Returns (files, bytes).
fn copy_tree(from: &Path, to: &Path) -> io::Result<(u64, u64)> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(to)?;
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            let (f, b) = copy_tree(&entry.path(), &target)?;
            files += f;
            bytes += b;
        } else if kind.is_file() {
            match copy_private(&entry.path(), &target) {
                Ok(n) => {
                    files += 1;
                    bytes += n;
                }
                // Removed since it was listed (deleted media): nothing to keep.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_up_a_database_in_use_with_its_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        let mut config =
            Config::defaults_for(ruma::ServerName::parse("example.org").expect("name"), &data);
        config.media_store_path = data.join("media");
        fs::create_dir_all(config.media_store_path.join("ab")).expect("media dir");
        fs::write(config.media_store_path.join("ab/cdef"), b"file").expect("media file");
        fs::write(&config.signing_key_path, b"ed25519 a_key secret").expect("key");
        // A WAL database with an open writer that keeps a transaction's worth of pages in
        // the WAL (not yet checkpointed), as a running server has.
        let db = Connection::open(&config.database.path).expect("db");
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('committed');",
        )
        .expect("schema");
        let dest = dir.path().join("backup");
        let report = backup(&config, &dest).expect("backup");
        assert_eq!(report.len(), 4, "{report:?}");
        let copy = Connection::open(dest.join(DATABASE_FILE)).expect("open copy");
        let v: String = copy.query_row("SELECT v FROM t", [], |r| r.get(0)).expect("row");
        assert_eq!(v, "committed", "what was in the WAL is in the copy");
        assert_eq!(fs::read(dest.join("media/ab/cdef")).expect("media"), b"file");
        let key = dest.join("example.org.signing.key");
        assert_eq!(fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
        let err = backup(&config, &dest).expect_err("a second backup into the same place");
        assert!(err.contains("exists already"), "{err}");
    }
}
