//! The journal's entries: every change of a requirement or a project is an event, written in
//! the same transaction as the change.

use crate::domain::{ProjectKey, RequirementKey};
use crate::store::{self, Event, Requirement};
use crate::ui::Result;

/// An event on a requirement's story; the caller adds what changed.
pub fn requirement(req: &Requirement, actor: &str, action: &str) -> Event {
    Event {
        project: req.project.clone(),
        requirement: Some(req.key.clone()),
        actor: actor.to_string(),
        action: action.to_string(),
        ..Event::default()
    }
}

/// An event on a project that no single requirement owns.
pub fn project(project: &ProjectKey, actor: &str, action: &str, detail: String) -> Event {
    Event {
        project: project.to_string(),
        actor: actor.to_string(),
        action: action.to_string(),
        detail: Some(detail),
        ..Event::default()
    }
}

/// Records an event on the requirement `key` names, when this machine has it: a release made
/// from another machine has no story here to add to.
pub fn on_requirement(
    c: &rusqlite::Connection,
    key: Option<&str>,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<()> {
    let Some(key) = key.and_then(|k| k.parse::<RequirementKey>().ok()) else { return Ok(()) };
    let Ok(req) = store::requirement(c, &key) else { return Ok(()) };
    store::record(c, &Event { detail: Some(detail), ..requirement(&req, actor, action) })
}
