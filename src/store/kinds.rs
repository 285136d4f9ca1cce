//! The kinds and statuses of the records: enums in the code, their text form (unchanged) in
//! the database and in `--json`.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Serialize, Serializer};

use crate::domain::{DocKind, ReviewKind, Verdict};

/// An enum kept as text: each variant with the text it is stored and printed as.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            fn from_text(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::from_text(text).ok_or_else(|| {
                    FromSqlError::Other(
                        format!("'{text}' is not a {} this xone knows", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}

text_enum! {
    /// Where a build ran.
    BuildKind {
        Pipeline = "pipeline",
        Local = "local",
    }
}

text_enum! {
    /// How a build stands.
    BuildStatus {
        Running = "running",
        Success = "success",
        Failed = "failed",
        Canceled = "canceled",
        /// Its process went away before it finished.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// What a rollout record is of.
    #[derive(Default)]
    DeployKind {
        #[default]
        Deploy = "deploy",
        Rollback = "rollback",
    }
}

text_enum! {
    /// How a rollout stands.
    #[derive(Default)]
    DeployStatus {
        #[default]
        Rolling = "rolling",
        Succeeded = "succeeded",
        Failed = "failed",
        /// It failed and was rolled back to the revision before.
        RolledBack = "rolled-back",
        /// Applied and not followed; `deploy status` settles it.
        Applied = "applied",
        /// Its follower went away; the cluster went on.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// How a post-release watch stands.
    #[derive(Default)]
    WatchStatus {
        #[default]
        Watching = "watching",
        Passed = "passed",
        Failed = "failed",
    }
}

text_enum! {
    /// What an integration did in one repository.
    IntegrationStatus {
        Done = "done",
        Unchanged = "unchanged",
        Conflict = "conflict",
    }
}

text_enum! {
    /// Which forge serves a repository.
    RepoKind {
        Local = "local",
        Gitlab = "gitlab",
    }
}

/// The domain's words, kept as their text.
macro_rules! stored_as_text {
    ($($name:ty),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e: String| FromSqlError::Other(e.into()))
            }
        }
    )+};
}

stored_as_text!(DocKind, ReviewKind, Verdict);

impl BuildStatus {
    /// Still under way (as far as this machine knows).
    pub fn is_unsettled(self) -> bool {
        matches!(self, BuildStatus::Running | BuildStatus::Interrupted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_through_the_database() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        for s in [DeployStatus::RolledBack, DeployStatus::Applied, DeployStatus::Rolling] {
            c.execute("DELETE FROM t", []).unwrap();
            c.execute("INSERT INTO t VALUES (?1)", [s]).unwrap();
            let text: String = c.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(text, s.as_str());
            let back: DeployStatus = c.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(serde_json::to_string(&DeployStatus::RolledBack).unwrap(), "\"rolled-back\"");
        c.execute("UPDATE t SET v = 'sideways'", []).unwrap();
        let odd: rusqlite::Result<DeployStatus> = c.query_row("SELECT v FROM t", [], |r| r.get(0));
        assert!(odd.is_err());
    }
}
