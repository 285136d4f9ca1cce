//! The journal's entries: every change of a requirement or a project is an event, written in
//! the same transaction as the change.

use crate::domain::ProjectKey;
use crate::store::{Event, Requirement};

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
