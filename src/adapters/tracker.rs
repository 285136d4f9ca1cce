//! Where a team's requirements live as issues: the built-in tracker (the state database
//! itself) today, Jira later. The lifecycle creates, moves and comments on requirements
//! through this trait, and links the work done for them, so that a second tracker is one more
//! implementation and no change to the lifecycle.
//!
//! Each call is handed the connection of the write transaction the change is recorded in:
//! the built-in tracker changes its rows there, so a requirement's state and its event are
//! one commit; a remote tracker keeps its local index there.

use rusqlite::Connection;

use crate::domain::{ProjectKey, RequirementKey, Status};
use crate::ui::Result;

pub trait Tracker {
    /// Creates the requirement's issue in `project`; returns its key.
    fn create(
        &self,
        c: &Connection,
        project: &ProjectKey,
        title: &str,
        actor: &str,
    ) -> Result<RequirementKey>;
    /// Gives the requirement a new title (a Jira issue's summary).
    fn retitle(&self, c: &Connection, key: &RequirementKey, title: &str) -> Result<()>;
    /// Moves the requirement from `from` to `to` in the tracker's workflow.
    fn transition(
        &self,
        c: &Connection,
        key: &RequirementKey,
        from: Status,
        to: Status,
    ) -> Result<()>;
    /// Gives the requirement's issue its document as its description (a Jira issue's); the
    /// built-in tracker keeps the document itself, so it has nothing to do.
    fn describe(&self, _c: &Connection, _key: &RequirementKey, _text: &str) -> Result<()> {
        Ok(())
    }
    /// Gives the requirement's issue its start and end dates (`YYYY-MM-DD`; `None` clears one)
    /// and its labels; the built-in tracker keeps the dates itself.
    fn dates(
        &self,
        _c: &Connection,
        _key: &RequirementKey,
        _start: Option<&str>,
        _end: Option<&str>,
    ) -> Result<()> {
        Ok(())
    }
    /// Adds a comment by `actor`: a rejection's reason, a sign-off, a forced gate, a verdict.
    fn comment(&self, c: &Connection, key: &RequirementKey, actor: &str, text: &str) -> Result<()>;
    /// Links work done for the requirement (a branch, a merge request, a build, a
    /// deployment) under `id`, which stays the same however often the link is made again, so
    /// that making it again changes nothing.
    fn link(
        &self,
        c: &Connection,
        key: &RequirementKey,
        id: &str,
        title: &str,
        url: Option<&str>,
    ) -> Result<()>;
    /// The project's requirements changed since `since` (RFC 3339 UTC), oldest change first:
    /// what an incremental `xone sync` from the tracker reads. No command syncs yet.
    #[cfg_attr(not(test), allow(dead_code))]
    fn changed_since(
        &self,
        c: &Connection,
        project: &ProjectKey,
        since: &str,
    ) -> Result<Vec<RequirementKey>>;
}
