//! Jira as the tracker: a requirement is a Jira issue of the project of the same key, created
//! there (its key is the requirement's), moved along its workflow by the transition that
//! reaches the stage's status, commented on, and linked to the work done for it. The state
//! database keeps its local index (title, stage) in the same transaction as the change.
//!
//! `Routed` picks the tracker per project, so that every command works on either.

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use rusqlite::Connection;

use super::jira::{self, Jira};
use super::tracker::Tracker;
use super::tracker_local::BuiltinTracker;
use crate::domain::lifecycle::jira_status_maps;
use crate::domain::{ProjectKey, RequirementKey, Status};
use crate::store::{self, Store};
use crate::ui::{Result, Tag, XoneError};

pub struct JiraTracker {
    settings: jira::Settings,
    client: OnceCell<Jira>,
    /// The ids of the start and end date fields, found by name once per command.
    date_fields: OnceCell<(Option<String>, Option<String>)>,
    /// How many changes this command queued because Jira could not be reached.
    queued: Rc<Cell<usize>>,
}

/// What pushing the queue did.
#[derive(Debug, Default)]
pub struct Pushed {
    pub pushed: usize,
    /// Still queued: Jira could not be reached.
    pub waiting: usize,
}

impl JiraTracker {
    pub fn new(settings: jira::Settings, queued: Rc<Cell<usize>>) -> JiraTracker {
        JiraTracker { settings, client: OnceCell::new(), date_fields: OnceCell::new(), queued }
    }

    /// The ids of the date fields `jira.start_field` and `jira.end_field` name (exit 4 naming
    /// one Jira does not have, with the nearest names).
    pub fn date_fields(&self, client: &Jira) -> Result<&(Option<String>, Option<String>)> {
        if let Some(ids) = self.date_fields.get() {
            return Ok(ids);
        }
        let ids = jira::date_fields(&self.settings, &client.fields()?)?;
        Ok(self.date_fields.get_or_init(|| ids))
    }

    /// Sets the dates and adds the labels (never removing labels others gave the issue).
    fn send_dates(
        &self,
        client: &Jira,
        issue: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<()> {
        let ids = self.date_fields(client)?;
        client.set_dates(issue, ids, start, end, &self.settings.labels)
    }

    /// Sends a change to Jira, or, when Jira cannot be reached (or changes of the requirement
    /// already wait), keeps it in the outbox, in the caller's transaction, for a later push.
    fn send_or_queue(
        &self,
        c: &Connection,
        key: &RequirementKey,
        op: &str,
        payload: serde_json::Value,
        actor: &str,
        send: impl FnOnce(&Jira) -> Result<()>,
    ) -> Result<()> {
        if !store::has_queued(c, key)? {
            let sent = self.client().and_then(send);
            match sent {
                Err(e) if e.is(Tag::Unavailable) => {}
                other => return other,
            }
        }
        store::enqueue(c, key, op, &payload, actor)?;
        self.queued.set(self.queued.get() + 1);
        Ok(())
    }

    /// Pushes what waits in the outbox, in order, each once: a change that may have reached
    /// Jira before (a lost answer) is read back first. Stops, leaving the rest queued, when
    /// Jira cannot be reached; a change Jira no longer takes is marked refused, stays local,
    /// and is the error (exit 4).
    pub fn push(&self, store: &mut Store) -> Result<Pushed> {
        let mut done = Pushed::default();
        let waiting = store::outbox(store.conn(), false)?;
        if waiting.is_empty() {
            return Ok(done);
        }
        let client = self.client()?;
        for (n, q) in waiting.iter().enumerate() {
            let issue = q.requirement.clone();
            let attempt = (|| -> Result<()> {
                match q.op.as_str() {
                    "transition" => {
                        let to: Status = q.payload["to"]
                            .as_str()
                            .unwrap_or_default()
                            .parse()
                            .map_err(XoneError::internal)?;
                        let map = &self.settings.status_map;
                        if let Some((_, now)) = client.issue(&issue)? {
                            if jira_status_maps(map, to, &now) {
                                return Ok(());
                            }
                        }
                        let offered = client.transitions(&issue)?;
                        move_along(client, &issue, &offered, map, to).map_err(|e| {
                            if e.kind != crate::ui::Kind::Gate {
                                return e;
                            }
                            XoneError::gate(format!(
                                "{issue}: the queued move to {} is not one Jira's workflow allows now; it stays here only",
                                to.as_str()
                            ))
                            .cause(e.causes.join("; "))
                            .hint(format!("look at {issue} in Jira; `xone sync --drop {}` forgets the queued move", q.id))
                        })
                    }
                    "comment" => {
                        let text = q.payload["text"].as_str().unwrap_or_default();
                        if client.comments(&issue)?.iter().any(|c| c == text) {
                            return Ok(());
                        }
                        client.comment(&issue, text)
                    }
                    "link" => {
                        let p = &q.payload;
                        let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                        client.remote_link(&issue, &s("id"), &s("title"), &s("url"))
                    }
                    "retitle" => {
                        client.set_summary(&issue, q.payload["title"].as_str().unwrap_or_default())
                    }
                    "describe" => client
                        .set_description(&issue, q.payload["text"].as_str().unwrap_or_default()),
                    "dates" => self.send_dates(
                        client,
                        &issue,
                        q.payload["start"].as_str(),
                        q.payload["end"].as_str(),
                    ),
                    other => Err(XoneError::internal(format!("an outbox entry of kind {other}"))),
                }
            })();
            match attempt {
                Ok(()) => {
                    store.write(|tx| store::unqueue(tx, q.id).map(|_| ()))?;
                    done.pushed += 1;
                }
                Err(e) if e.is(Tag::Unavailable) => {
                    done.waiting = waiting.len() - n;
                    return Ok(done);
                }
                Err(e) => {
                    let detail = e.message.clone();
                    store.write(|tx| store::refuse_queued(tx, q.id, &detail))?;
                    return Err(e);
                }
            }
        }
        Ok(done)
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
        // A date field Jira does not have is said before anything is made.
        self.date_fields(self.client()?)?;
        let made = self.client()?.create_issue(&jira_project, &self.settings.issue_type, title)?;
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
        let payload = serde_json::json!({ "title": title });
        self.send_or_queue(c, key, "retitle", payload, "", |j| {
            j.set_summary(&key.to_string(), title)
        })?;
        store::set_title(c, key, title)
    }

    fn transition(
        &self,
        c: &Connection,
        key: &RequirementKey,
        _from: Status,
        to: Status,
    ) -> Result<()> {
        let issue = key.to_string();
        let map = &self.settings.status_map;
        let payload = serde_json::json!({ "to": to.as_str() });
        self.send_or_queue(c, key, "transition", payload, "", |client| {
            let offered = client.transitions(&issue)?;
            move_along(client, &issue, &offered, map, to)
        })?;
        store::set_status(c, key, to)
    }

    fn describe(&self, c: &Connection, key: &RequirementKey, text: &str) -> Result<()> {
        let payload = serde_json::json!({ "text": text });
        self.send_or_queue(c, key, "describe", payload, "", |j| {
            j.set_description(&key.to_string(), text)
        })
    }

    fn dates(
        &self,
        c: &Connection,
        key: &RequirementKey,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<()> {
        let payload = serde_json::json!({ "start": start, "end": end });
        self.send_or_queue(c, key, "dates", payload, "", |j| {
            self.send_dates(j, &key.to_string(), start, end)
        })
    }

    fn comment(&self, c: &Connection, key: &RequirementKey, actor: &str, text: &str) -> Result<()> {
        let text = format!("{actor} (xone): {text}");
        let payload = serde_json::json!({ "text": text });
        self.send_or_queue(c, key, "comment", payload, actor, |j| {
            j.comment(&key.to_string(), &text)
        })
    }

    fn link(
        &self,
        c: &Connection,
        key: &RequirementKey,
        id: &str,
        title: &str,
        url: Option<&str>,
    ) -> Result<()> {
        // Jira wants a URL; work with none (a local repository's branch) is named by its id.
        let url = url.unwrap_or(id);
        let payload = serde_json::json!({ "id": id, "title": title, "url": url });
        self.send_or_queue(c, key, "link", payload, "", |j| {
            j.remote_link(&key.to_string(), id, title, url)
        })
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

/// Moves an issue by the transition that reaches the status of `to`; none is exit 4 listing
/// what the workflow offers.
pub fn move_along(
    client: &Jira,
    issue: &str,
    offered: &[(String, String, String)],
    map: &crate::domain::lifecycle::StatusMap,
    to: Status,
) -> Result<()> {
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
    client.transition(issue, id)
}

/// The tracker of each requirement's project: the built-in one, or Jira.
pub struct Routed {
    builtin: BuiltinTracker,
    jira: JiraTracker,
}

impl Routed {
    pub fn new(jira: jira::Settings, queued: Rc<Cell<usize>>) -> Routed {
        Routed { builtin: BuiltinTracker, jira: JiraTracker::new(jira, queued) }
    }

    /// Pushes the changes waiting for Jira (see `JiraTracker::push`).
    pub fn push(&self, store: &mut Store) -> Result<Pushed> {
        self.jira.push(store)
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

    fn describe(&self, c: &Connection, key: &RequirementKey, text: &str) -> Result<()> {
        self.of(c, &key.project)?.describe(c, key, text)
    }

    fn dates(
        &self,
        c: &Connection,
        key: &RequirementKey,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<()> {
        self.of(c, &key.project)?.dates(c, key, start, end)
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
