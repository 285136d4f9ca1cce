//! The state database: one SQLite file (WAL, busy timeout, short immediate transactions), a
//! fast local index and journal of everything xone did.

mod builds;
mod deploys;
mod keys;
mod kinds;
mod notices;
mod queries;
mod schema;
mod shared;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use builds::*;
pub use deploys::*;
pub use keys::*;
pub use kinds::*;
pub use notices::*;
pub use queries::*;
use schema::{APPLICATION_ID, MIGRATIONS};
pub use shared::*;

use crate::ui::{Kind, Result, XoneError};

pub const FILE_NAME: &str = "state.db";

pub struct Store {
    conn: Connection,
    pub path: PathBuf,
    /// Opened for reading only: its folder or the file cannot be written (a read-only home).
    read_only: bool,
}

/// How long a writer waits for another process's transaction before giving up
/// (`state.busy_timeout`). Transactions are short, so this is only reached when something is
/// stuck.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Names the database file in an error about it found while a command ran (corrupt, locked,
/// read-only), and says what to do.
pub fn name_the_file(e: XoneError) -> XoneError {
    use crate::ui::Tag;
    let path = crate::config::state_dir().join(FILE_NAME);
    let mut named = if e.is(Tag::CorruptState) {
        unusable(&path, "is corrupt")
    } else if e.is(Tag::StateBusy) {
        busy(&path)
    } else if e.is(Tag::StateReadOnly) {
        read_only(&path)
    } else {
        return e;
    };
    named.causes = e.causes;
    named
}

fn busy(path: &Path) -> XoneError {
    XoneError::conflict(format!(
        "another xone is writing the state database {}: it stayed locked",
        path.display()
    ))
    .hint("run this again once the other xone is done; if none is running, look for a stuck process (fuser)")
    .hint("state.busy_timeout sets how long xone waits")
}

fn read_only(path: &Path) -> XoneError {
    XoneError::new(Kind::Gate, format!("the state database {} is read-only", path.display()))
        .hint("commands that only read still work; to change anything, make its folder and file writable, or point XONE_HOME at a writable directory")
}

/// Whether this process may write `path` (a file or a folder), as the kernel judges it.
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

fn unusable(path: &Path, what: &str) -> XoneError {
    XoneError::new(Kind::Gate, format!("the state database {} {what}", path.display()))
        .hint(format!(
            "xone left it untouched; move it aside (mv {0} {0}.bad) and run `xone init`, or point XONE_HOME at another directory",
            path.display()
        ))
}

/// Refuses a file that is not SQLite before SQLite gets a chance to touch it.
fn check_header(path: &Path) -> Result<()> {
    let mut head = [0u8; 16];
    let n = match std::fs::File::open(path) {
        Ok(mut f) => f.read(&mut head)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(XoneError::internal(format!("cannot read {}", path.display())).cause(e))
        }
    };
    if n == 0 || (n == 16 && &head == b"SQLite format 3\0") {
        Ok(())
    } else {
        Err(unusable(path, "is not an SQLite database (corrupt, or another program's file)"))
    }
}

impl Store {
    /// Opens the database in `dir`, creating and migrating it as needed. The common case costs
    /// one read of the schema version.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_waiting(dir, BUSY_TIMEOUT)
    }

    /// As `open`, a writer waiting at most `busy` for another process's transaction. The
    /// folder and the file are made private (0700, 0600), whatever the umask. In a folder
    /// that cannot be written, an existing database is opened for reading only.
    pub fn open_waiting(dir: &Path, busy: Duration) -> Result<Store> {
        if !dir.exists() {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
                XoneError::new(
                    Kind::Gate,
                    format!("cannot create the state directory {}", dir.display()),
                )
                .cause(e)
                .hint("set XONE_HOME to a writable directory")
            })?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let path = dir.join(FILE_NAME);
        if path.is_dir() {
            return Err(unusable(&path, "is a directory, not a database file"));
        }
        check_header(&path)?;
        let existed = path.exists();
        if existed && !(writable(&path) && writable(dir)) {
            return Store::open_reading(&path);
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            XoneError::new(Kind::Gate, format!("cannot open {}", path.display())).cause(e)
        })?;
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            // Before anything is written to it: SQLite gives its -wal and -shm files the same.
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        let mut store = Store { conn, path, read_only: false };
        store.prepare(busy)?;
        Ok(store)
    }

    /// An existing database in a place xone may not write: opened as immutable (no lock,
    /// no -shm file to make), at the current schema, for reading only.
    fn open_reading(path: &Path) -> Result<Store> {
        let uri = format!("file:{}?mode=ro&immutable=1", path.display());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&uri, flags).map_err(|e| read_only(path).cause(e))?;
        let (version, app, tables) = versions(&conn).map_err(|e| read_only(path).cause(e))?;
        if version != MIGRATIONS.len() as i64 || app != APPLICATION_ID {
            check_versions(path, version, app, tables)?;
            return Err(read_only(path)
                .cause("it is at an older schema and cannot be upgraded where it is"));
        }
        Ok(Store { conn, path: path.to_path_buf(), read_only: true })
    }

    /// Opens an existing database for reading only (completion): never creates or migrates.
    pub fn open_read_only(dir: &Path) -> Option<Store> {
        let path = dir.join(FILE_NAME);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.busy_timeout(Duration::from_millis(500)).ok()?;
        let (version, app, _) = versions(&conn).ok()?;
        (version == MIGRATIONS.len() as i64 && app == APPLICATION_ID).then_some(Store {
            conn,
            path,
            read_only: true,
        })
    }

    fn prepare(&mut self, busy: Duration) -> Result<()> {
        let path = self.path.clone();
        let wrap = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                unusable(&path, "is corrupt").cause(e)
            }
            _ => XoneError::from(e),
        };
        self.conn.busy_timeout(busy).map_err(wrap)?;
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(wrap)?;
        let (version, app, tables) = versions(&self.conn).map_err(wrap)?;
        if version == MIGRATIONS.len() as i64 && app == APPLICATION_ID {
            return Ok(());
        }
        check_versions(&path, version, app, tables)?;
        // WAL lets readers go on while one process writes; it is a property of the file, so it
        // is set once, when xone first creates or migrates it.
        let mode: String =
            self.conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(wrap)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(XoneError::internal(format!(
                "{} cannot use WAL journaling ({mode})",
                path.display()
            )));
        }
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(wrap)?;
        // Another process may have migrated while this one waited for the lock: look again.
        let (version, app, tables) = versions(&tx).map_err(wrap)?;
        check_versions(&path, version, app, tables)?;
        for sql in MIGRATIONS.iter().skip(version as usize) {
            tx.execute_batch(sql).map_err(wrap)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64).map_err(wrap)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(wrap)?;
        tx.commit().map_err(wrap)
    }
}

/// Refuses a database that is not xone's, or is newer than this xone, before anything is
/// written to it (even switching it to WAL changes its header).
fn check_versions(path: &Path, version: i64, app: i64, tables: i64) -> Result<()> {
    if version == 0 && app != APPLICATION_ID && tables > 0 {
        return Err(unusable(
            path,
            "belongs to another program (it has tables but no xone schema)",
        ));
    }
    if app != 0 && app != APPLICATION_ID {
        return Err(unusable(path, "belongs to another program (foreign application id)"));
    }
    if version > MIGRATIONS.len() as i64 {
        return Err(XoneError::new(
                Kind::Gate,
                format!(
                    "the state database {} was written by a newer xone (schema {version}; this xone knows {})",
                    path.display(),
                    MIGRATIONS.len()
                ),
            )
            .hint("upgrade xone; this one leaves the file as it is"));
    }
    Ok(())
}

impl Store {
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one short write transaction, taken at the start so that two writers queue
    /// instead of failing on an upgrade from read to write.
    /// Ctrl-C waits for it: it commits or rolls back whole, never half-way.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        if self.read_only {
            return Err(read_only(&self.path));
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let _hold = crate::interrupt::hold();
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// Schema version, application id and table count, read in one statement so that they come
/// from one snapshot even while another process migrates.
fn versions(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version), \
                (SELECT application_id FROM pragma_application_id), \
                (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}
