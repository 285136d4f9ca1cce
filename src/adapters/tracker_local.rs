//! The built-in tracker: the state database is the tracker. A requirement's row is its issue,
//! its status column the workflow, and its event log (written with every change) the comment
//! thread and the links; nothing is kept twice.

use rusqlite::Connection;

use super::tracker::Tracker;
use crate::domain::{ProjectKey, RequirementKey, Status};
use crate::store;
use crate::ui::Result;

pub struct BuiltinTracker;

impl Tracker for BuiltinTracker {
    fn create(
        &self,
        c: &Connection,
        project: &ProjectKey,
        title: &str,
        actor: &str,
    ) -> Result<RequirementKey> {
        store::insert_requirement(c, project, title, actor)
    }

    fn retitle(&self, c: &Connection, key: &RequirementKey, title: &str) -> Result<()> {
        store::set_title(c, key, title)
    }

    fn transition(
        &self,
        c: &Connection,
        key: &RequirementKey,
        _from: Status,
        to: Status,
    ) -> Result<()> {
        store::set_status(c, key, to)
    }

    /// The event recorded with the change is the comment: the log shows it.
    fn comment(
        &self,
        _c: &Connection,
        _key: &RequirementKey,
        _actor: &str,
        _text: &str,
    ) -> Result<()> {
        Ok(())
    }

    /// The records of branches, merge requests, builds and deployments are the links:
    /// `requirement show` reads them.
    fn link(
        &self,
        _c: &Connection,
        _key: &RequirementKey,
        _id: &str,
        _title: &str,
        _url: Option<&str>,
    ) -> Result<()> {
        Ok(())
    }

    fn changed_since(
        &self,
        c: &Connection,
        project: &ProjectKey,
        since: &str,
    ) -> Result<Vec<RequirementKey>> {
        store::requirements_changed_since(c, project, since)
    }
}
