//! The kinds and statuses of the records: enums in the code, their text form (unchanged) in
//! the database and in `--json`.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

use crate::domain::names::word_enum;
use crate::domain::{DocKind, ReviewKind, Verdict};

word_enum! {
    /// Where a build ran.
    BuildKind {
        Pipeline = "pipeline",
        Local = "local",
    }
}

word_enum! {
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

word_enum! {
    /// What a rollout record is of.
    #[derive(Default)]
    DeployKind {
        #[default]
        Deploy = "deploy",
        Rollback = "rollback",
    }
}

word_enum! {
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

word_enum! {
    /// How a post-release watch stands.
    #[derive(Default)]
    WatchStatus {
        #[default]
        Watching = "watching",
        Passed = "passed",
        Failed = "failed",
    }
}

word_enum! {
    /// What an integration did in one repository.
    IntegrationStatus {
        Done = "done",
        Unchanged = "unchanged",
        Conflict = "conflict",
    }
}

word_enum! {
    /// Which forge serves a repository.
    RepoKind {
        Local = "local",
        Gitlab = "gitlab",
    }
}

/// Words kept as their text in the database.
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

stored_as_text!(
    DocKind,
    ReviewKind,
    Verdict,
    BuildKind,
    BuildStatus,
    DeployKind,
    DeployStatus,
    WatchStatus,
    IntegrationStatus,
    RepoKind
);

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
