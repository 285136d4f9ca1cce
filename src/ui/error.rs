//! The one error type that reaches users. Its kind alone decides the exit code (SPEC §3).

use std::fmt;

/// What went wrong, as far as a script calling xone cares: the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Internal = 1,
    Usage = 2,
    NotFound = 3,
    Gate = 4,
    Conflict = 5,
    // Remote systems (GitLab, Jira, registries) and rollouts report these.
    #[allow(dead_code)]
    Remote = 6,
    #[allow(dead_code)]
    Rollout = 7,
    Interrupted = 130,
}

/// What a caller may recognise an error by, so that none is recognised by its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Standard output was closed (`xone requirement list | head -1`): not a failure worth a
    /// message.
    StdoutClosed,
    /// The state database was found corrupt in the middle of a command; `store::name_the_file`
    /// says which file and how to recover.
    CorruptState,
    /// A remote system refused the credentials (401 or 403).
    Refused,
    /// A remote system could not be reached or did not answer (a lost connection, a timeout,
    /// 429 or 5xx after the retries): the request may or may not have taken effect.
    Unavailable,
    /// The state database stayed locked by another writer past the busy timeout.
    StateBusy,
    /// The state database cannot be written.
    StateReadOnly,
}

/// An error for a user: what happened (`message`), why (`causes`), what to do next (`hints`).
#[derive(Clone, Debug)]
pub struct XoneError {
    pub kind: Kind,
    pub message: String,
    pub causes: Vec<String>,
    pub hints: Vec<String>,
    pub tag: Option<Tag>,
}

pub type Result<T, E = XoneError> = std::result::Result<T, E>;

impl XoneError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        XoneError {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
            tag: None,
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn gate(message: impl Into<String>) -> Self {
        Self::new(Kind::Gate, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }
    /// Adds what caused it; an empty cause (a server's empty answer) says nothing and is left
    /// out, so no error ends in a bare "Caused by:".
    pub fn cause(mut self, cause: impl fmt::Display) -> Self {
        let cause = cause.to_string();
        if !cause.trim().is_empty() {
            self.causes.push(cause);
        }
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
    pub fn tagged(mut self, tag: Tag) -> Self {
        self.tag = Some(tag);
        self
    }
    pub fn is(&self, tag: Tag) -> bool {
        self.tag == Some(tag)
    }
    pub fn exit_code(&self) -> u8 {
        self.kind as u8
    }
}

impl fmt::Display for XoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for XoneError {}

fn stdout_closed() -> XoneError {
    XoneError::internal("standard output was closed").tagged(Tag::StdoutClosed)
}

impl From<std::io::Error> for XoneError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return stdout_closed();
        }
        XoneError::internal(format!("I/O error: {e}"))
    }
}

impl From<rusqlite::Error> for XoneError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            // `store::name_the_file` names the file and says what to do.
            Some(C::DatabaseBusy | C::DatabaseLocked) => {
                XoneError::conflict("another xone is writing the state database")
                    .cause(e)
                    .tagged(Tag::StateBusy)
            }
            // `store::name_the_file` adds which file and how to recover, once it is known.
            Some(C::DatabaseCorrupt | C::NotADatabase) => {
                XoneError::new(Kind::Gate, "the state database is corrupt")
                    .cause(e)
                    .tagged(Tag::CorruptState)
            }
            Some(C::DiskFull) => XoneError::internal("the disk is full").cause(e),
            Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
                XoneError::new(Kind::Gate, "the state database is read-only")
                    .cause(e)
                    .tagged(Tag::StateReadOnly)
            }
            _ => XoneError::internal("state database error").cause(e),
        }
    }
}

impl From<git2::Error> for XoneError {
    fn from(e: git2::Error) -> Self {
        XoneError::internal("git error").cause(e.message())
    }
}

impl From<serde_json::Error> for XoneError {
    fn from(e: serde_json::Error) -> Self {
        if e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe) {
            return stdout_closed();
        }
        XoneError::internal("JSON encoding failed").cause(e)
    }
}
