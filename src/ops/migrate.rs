//! Carrying a project's requirements from one tracker to the other (`project set --tracker
//! … --migrate`). Into Jira, each requirement gets an issue (one already there with its key
//! and title is adopted): its summary, the requirement document as its description, its dates
//! and labels, a comment carrying its people, verdicts and sign-offs for other machines'
//! sync, its branches as remote links, and the status of its stage. The requirement then takes
//! the issue's key, and the key it had stays an alias every command takes. Each issue is
//! recorded as it is made, so a move that stops (Jira down, a workflow without a path) goes on
//! where it stopped when run again; the keys change in one transaction at the end. Back to the
//! built-in tracker, the requirements keep their keys.

use serde::Serialize;

use super::events;
use crate::adapters::jira::{self, Jira};
use crate::adapters::tracker_jira::move_along;
use crate::domain::lifecycle::jira_status_maps;
use crate::domain::remarks::{with_remarks, Remark};
use crate::domain::{DocKind, ProjectKey, RequirementKey, Status};
use crate::store::{self, Store};
use crate::ui::{Result, Ui, XoneError};

/// One requirement carried over.
#[derive(Clone, Debug, Serialize)]
pub struct Carried {
    pub from: String,
    pub to: String,
    /// An issue with its key and title was there already and was taken as it is.
    pub adopted: bool,
}

/// Makes (or finds) the Jira issue of each of the project's requirements, records it, then
/// gives every requirement its issue's key. `jira_project` is the Jira project's key.
pub fn into_jira(
    ui: &Ui,
    store: &mut Store,
    settings: &jira::Settings,
    project: &ProjectKey,
    jira_project: &str,
) -> Result<Vec<Carried>> {
    let client = Jira::new(settings)?;
    let keys = store::requirement_keys_of(store.conn(), project)?;
    let mut moved = store::key_moves(store.conn(), project)?;
    let mut date_ids = None;
    let mut out = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let req = store::requirement(store.conn(), key)?;
        let known = moved.iter().find(|m| m.0 == key.to_string()).cloned();
        let (issue, adopted, filled) = match known {
            Some((_, issue, filled)) => (issue.clone(), issue == key.to_string(), filled),
            None => {
                let there = client.issue(&key.to_string())?;
                let same = there
                    .as_ref()
                    .is_some_and(|(s, _)| s.trim().eq_ignore_ascii_case(req.title.trim()));
                // The issue is recorded the moment it exists: a move that stops after this
                // never makes it again.
                let issue = if same {
                    key.to_string()
                } else {
                    client.create_issue(jira_project, &settings.issue_type, &req.title)?
                };
                let new: RequirementKey = issue.parse().map_err(|e| {
                    XoneError::new(crate::ui::Kind::Remote, format!("Jira made the issue {issue}"))
                        .cause(e)
                })?;
                store.write(|tx| store::record_key_move(tx, project, key, &new))?;
                moved.push((key.to_string(), issue.clone(), same));
                (issue, same, same)
            }
        };
        if !filled {
            let ids = match &date_ids {
                Some(ids) => ids,
                None => date_ids.insert(jira::date_fields(settings, &client.fields()?)?),
            };
            fill(ui, &client, settings, store, key, &req, &issue, ids)?;
            store.write(|tx| store::key_move_filled(tx, project, key))?;
        }
        // The stage's status, whether the issue was just made or the move stopped before.
        if req.status != Status::Draft {
            let now = client.issue(&issue)?.map(|(_, s)| s).unwrap_or_default();
            if !jira_status_maps(&settings.status_map, req.status, &now) {
                let offered = client.transitions(&issue)?;
                move_along(&client, &issue, &offered, &settings.status_map, req.status)?;
            }
        }
        ui.status(format!(
            "[{}/{}] {key} → {issue}{}",
            n + 1,
            keys.len(),
            if adopted { " (adopted)" } else { "" }
        ));
        out.push(Carried { from: key.to_string(), to: issue, adopted });
    }
    Ok(out)
}

/// Gives a new issue what Jira should know of its requirement. Each step can be made again
/// (a move that stopped here does them again): the comment is made only if it is not there.
#[allow(clippy::too_many_arguments)]
fn fill(
    ui: &Ui,
    client: &Jira,
    settings: &jira::Settings,
    store: &Store,
    key: &RequirementKey,
    req: &store::Requirement,
    issue: &str,
    date_ids: &(Option<String>, Option<String>),
) -> Result<()> {
    let c = store.conn();
    // The latest version of the document its authors wrote (not a review's record).
    let own = store::documents(c, key)?
        .into_iter()
        .filter(|d| d.kind == DocKind::Requirement)
        .filter(|d| !d.note.as_deref().is_some_and(|n| n.starts_with("review #")))
        .max_by_key(|d| d.version);
    if let Some(d) = own {
        if let Some((_, bytes)) = store::document(c, key, DocKind::Requirement, Some(d.version))? {
            if let Ok(text) = String::from_utf8(bytes) {
                client.set_description(issue, &text)?;
            }
        }
    }
    let (start, end) = (req.dates.start.as_deref(), req.dates.end.as_deref());
    client.set_dates(issue, date_ids, start, end, &settings.labels)?;
    // What other machines' sync rebuilds: people, verdicts, sign-offs.
    let mut remarks: Vec<Remark> = store::assignments(c, key)?
        .into_iter()
        .map(|p| Remark::Assign { role: p.role, user: p.user })
        .collect();
    for r in store::reviews(c, Some(key))? {
        let id = store::review_origin(c, r.id)?;
        let (kind, by) = (r.kind, r.created_by.clone());
        remarks.push(Remark::Review { kind, by, at: r.created_at.clone(), id: id.clone() });
        if let (Some(verdict), Some(by), Some(at)) = (r.verdict, r.verdict_by, r.verdict_at) {
            remarks.push(Remark::Verdict { kind, verdict, by, at, review: Some(id) });
        }
    }
    for s in store::signoffs(c, key)? {
        if let Some(stage) = s.stage.as_deref().and_then(|st| st.parse().ok()) {
            remarks.push(Remark::Signoff { stage, by: s.user, at: s.at });
        }
    }
    let text = format!("xone: carried over from the built-in tracker, where it was {key}");
    if !client.comments(issue)?.iter().any(|c| c.starts_with(&text)) {
        client.comment(issue, &with_remarks(&text, &remarks))?;
    }
    // A link Jira will not take is said; the move goes on.
    let repos = store::repos(c, &key.project)?;
    for b in store::branches(c, Some(key), None)? {
        let url = repos.iter().find(|r| r.name == b.repo).and_then(|r| r.web_url.clone());
        let (id, title) = super::branches::branch_link(&b.repo, &b.name);
        let url = url.unwrap_or_else(|| id.clone());
        if let Err(e) = client.remote_link(issue, &id, &title, &url) {
            ui.warn(format!("{issue}: {title} is not linked: {}", e.message));
        }
    }
    Ok(())
}

/// Ends a move into Jira: every requirement takes its issue's key, and the project's
/// requirements live in Jira from now on; one transaction.
pub fn finish_into_jira(
    store: &mut Store,
    project: &ProjectKey,
    jira_project: &str,
    carried: &[Carried],
    actor: &str,
) -> Result<()> {
    store.write(|tx| {
        store::apply_key_moves(tx, project)?;
        store::set_tracker(tx, project, "jira", Some(jira_project))?;
        for c in carried {
            let key: RequirementKey = c.to.parse().map_err(XoneError::internal)?;
            let req = store::requirement(tx, &key)?;
            let detail = if c.from == c.to {
                format!("carried into Jira as {} (the issue was there)", c.to)
            } else {
                format!("carried into Jira: {} is now {}", c.from, c.to)
            };
            let e = store::Event {
                detail: Some(detail),
                ..events::requirement(&req, actor, "migrate")
            };
            store::record(tx, &e)?;
        }
        let detail = format!(
            "requirements live in Jira project {jira_project}; {} carried over",
            carried.len()
        );
        store::record(tx, &events::project(project, actor, "project tracker", detail))
    })
}
