//! Jira as the tracker: a requirement is a Jira issue of the project of the same key, created
//! there (its key is the requirement's), moved along its workflow by the transition that
//! reaches the stage's status, commented on, and linked to the work done for it. The state
//! database keeps its local index (title, stage) in the same transaction as the change.
//!
//! `Routed` picks the tracker per project, so that every command works on either.

use std::cell::OnceCell;

use rusqlite::Connection;

use super::jira::{self, Jira};
use super::tracker::Tracker;
use super::tracker_local::BuiltinTracker;
use crate::domain::lifecycle::jira_status_maps;
use crate::domain::{ProjectKey, RequirementKey, Status};
use crate::store;
use crate::ui::{Result, XoneError};

/// The issue type requirements are made as.
const ISSUE_TYPE: &str = "Story";

pub struct JiraTracker {
    settings: jira::Settings,
    client: OnceCell<Jira>,
}

impl JiraTracker {
    pub fn new(settings: jira::Settings) -> JiraTracker {
        JiraTracker { settings, client: OnceCell::new() }
    }

    fn client(&self) -> Result<&Jira> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = Jira::new(&self.settings)?;
        Ok(self.client.get_or_init(|| c))
    }
}

impl Tracker for JiraTracker {
    fn create(
        &self,
        c: &Connection,
        project: &ProjectKey,
        title: &str,
        actor: &str,
    ) -> Result<RequirementKey> {
        let p = store::project(c, project)?;
        let jira_project = p.jira_project.unwrap_or_else(|| project.to_string());
        let made = self.client()?.create_issue(&jira_project, ISSUE_TYPE, title)?;
        let key: RequirementKey = made.parse().map_err(|e| {
            XoneError::new(crate::ui::Kind::Remote, format!("Jira made the issue {made}"))
                .cause(e)
                .hint("the Jira project's key must be the xone project's")
        })?;
        if key.project != *project {
            return Err(XoneError::gate(format!(
                "Jira made {made} in another project than {project}"
            )));
        }
        store::insert_requirement_as(c, &key, title, actor)?;
        Ok(key)
    }

    fn retitle(&self, c: &Connection, key: &RequirementKey, title: &str) -> Result<()> {
        self.client()?.set_summary(&key.to_string(), title)?;
        store::set_title(c, key, title)
    }

    fn transition(
        &self,
        c: &Connection,
        key: &RequirementKey,
        _from: Status,
        to: Status,
    ) -> Result<()> {
        let client = self.client()?;
        let issue = key.to_string();
        let offered = client.transitions(&issue)?;
        let map = &self.settings.status_map;
        let Some((id, _, _)) =
            offered.iter().find(|(_, _, reaches)| jira_status_maps(map, to, reaches))
        else {
            let list: Vec<String> =
                offered.iter().map(|(_, name, reaches)| format!("{name} (to {reaches})")).collect();
            return Err(XoneError::gate(format!(
                "Jira's workflow offers {issue} no transition to the status of {}",
                to.as_str()
            ))
            .cause(if list.is_empty() {
                "it offers no transition at all now".to_string()
            } else {
                format!("it offers: {}", list.join(", "))
            })
            .hint("add the transition to the workflow, or a status named like the stage"));
        };
        client.transition(&issue, id)?;
        store::set_status(c, key, to)
    }

    fn comment(
        &self,
        _c: &Connection,
        key: &RequirementKey,
        actor: &str,
        text: &str,
    ) -> Result<()> {
        self.client()?.comment(&key.to_string(), &format!("{actor} (xone): {text}"))
    }

    fn link(
        &self,
        _c: &Connection,
        key: &RequirementKey,
        id: &str,
        title: &str,
        url: Option<&str>,
    ) -> Result<()> {
        // Jira wants a URL; work with none (a local repository's branch) is named by its id.
        self.client()?.remote_link(&key.to_string(), id, title, url.unwrap_or(id))
    }

    fn changed_since(
        &self,
        c: &Connection,
        project: &ProjectKey,
        since: &str,
    ) -> Result<Vec<RequirementKey>> {
        // What changed in Jira is read by `xone sync`; this index knows what changed here.
        store::requirements_changed_since(c, project, since)
    }
}

/// The tracker of each requirement's project: the built-in one, or Jira.
pub struct Routed {
    builtin: BuiltinTracker,
    jira: JiraTracker,
}

impl Routed {
    pub fn new(jira: jira::Settings) -> Routed {
        Routed { builtin: BuiltinTracker, jira: JiraTracker::new(jira) }
    }

    fn of(&self, c: &Connection, project: &ProjectKey) -> Result<&dyn Tracker> {
        Ok(match store::project(c, project)?.tracker.as_str() {
            "jira" => &self.jira,
            _ => &self.builtin,
        })
    }
}

impl Tracker for Routed {
    fn create(
        &self,
        c: &Connection,
        project: &ProjectKey,
        title: &str,
        actor: &str,
    ) -> Result<RequirementKey> {
        self.of(c, project)?.create(c, project, title, actor)
    }

    fn retitle(&self, c: &Connection, key: &RequirementKey, title: &str) -> Result<()> {
        self.of(c, &key.project)?.retitle(c, key, title)
    }

    fn transition(
        &self,
        c: &Connection,
        key: &RequirementKey,
        from: Status,
        to: Status,
    ) -> Result<()> {
        self.of(c, &key.project)?.transition(c, key, from, to)
    }

    fn comment(&self, c: &Connection, key: &RequirementKey, actor: &str, text: &str) -> Result<()> {
        self.of(c, &key.project)?.comment(c, key, actor, text)
    }

    fn link(
        &self,
        c: &Connection,
        key: &RequirementKey,
        id: &str,
        title: &str,
        url: Option<&str>,
    ) -> Result<()> {
        self.of(c, &key.project)?.link(c, key, id, title, url)
    }

    fn changed_since(
        &self,
        c: &Connection,
        project: &ProjectKey,
        since: &str,
    ) -> Result<Vec<RequirementKey>> {
        self.of(c, project)?.changed_since(c, project, since)
    }
}
