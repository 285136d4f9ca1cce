//! Requirements: made (through the tracker) with their first document, people and dates;
//! assigned and scheduled; and read back as a whole thread.

use serde::Serialize;

use super::branches::{self, BranchView};
use super::docs;
use super::events;
use crate::adapters::tracker::Tracker;
use crate::adapters::{CommitInfo, Forges};
use crate::domain::date::Date;
use crate::domain::lifecycle;
use crate::domain::names::Assignment;
use crate::domain::remarks::{with_remarks, Remark};
use crate::domain::{template, DocKind, ProjectKey, RequirementKey, Status};
use crate::store::{self, Event, Requirement, Store};
use crate::ui::{Result, XoneError};

/// The longest title, in characters: Jira's summary holds no more.
pub const TITLE_MAX: usize = 255;

/// A title as it is kept: trimmed, not empty, at most `TITLE_MAX` characters.
pub fn check_title(title: &str) -> Result<&str> {
    let title = title.trim();
    if title.is_empty() {
        return Err(
            XoneError::usage("the title is empty").hint("give the requirement a title in quotes")
        );
    }
    let n = title.chars().count();
    if n > TITLE_MAX {
        return Err(XoneError::usage(format!(
            "the title is {n} characters long; a title has at most {TITLE_MAX} (as Jira's summary)"
        ))
        .hint("put the detail in the requirement document: xone requirement doc KEY --edit"));
    }
    Ok(title)
}

/// A requirement cannot end before it starts.
pub fn check_span(start: Option<Date>, end: Option<Date>) -> Result<()> {
    match (start, end) {
        (Some(s), Some(e)) if e < s => {
            Err(XoneError::usage(format!("the end date {e} is before the start date {s}")))
        }
        _ => Ok(()),
    }
}

/// A requirement to create.
pub struct NewRequirement<'a> {
    pub project: &'a ProjectKey,
    pub title: &'a str,
    pub start: Option<Date>,
    pub end: Option<Date>,
    /// The requirement document's first edit beyond its template: its bytes and the file
    /// (or `-`) it came from.
    pub first_edit: Option<(Vec<u8>, String)>,
    pub assign: &'a [Assignment],
}

/// Creates the requirement in the tracker, in `draft`, with its document from the
/// project's template, its first edit, dates and people, in one transaction.
pub fn create(
    store: &mut Store,
    tracker: &dyn Tracker,
    new: &NewRequirement,
    actor: &str,
) -> Result<RequirementKey> {
    let (project, title) = (new.project, check_title(new.title)?);
    store::active_project(store.conn(), project)?;
    let tpl = docs::template_for(store.conn(), project, DocKind::Requirement)?
        .unwrap_or_else(|| template::REQUIREMENT.to_string());
    store.write(|tx| {
        let key = tracker.create(tx, project, title, actor)?;
        let req = store::requirement(tx, &key)?;
        store::record(
            tx,
            &Event {
                detail: Some(title.to_string()),
                to: Some(Status::Draft.to_string()),
                ..events::requirement(&req, actor, "create")
            },
        )?;
        super::notify::on_requirement(
            tx,
            &req,
            "requirement.created",
            actor,
            serde_json::json!({}),
        )?;
        let body = template::render(&tpl, &key.to_string(), title, project.as_str());
        store::add_document_version(
            tx,
            &key,
            DocKind::Requirement,
            body.as_bytes(),
            "text/markdown",
            None,
            actor,
            Some("generated from the template"),
        )?;
        let mut described = body.clone();
        if let Some((bytes, file)) = &new.first_edit {
            let name = docs::file_name(file);
            let v = store::add_document_version(
                tx,
                &key,
                DocKind::Requirement,
                bytes,
                docs::media_type(bytes, name.as_deref()),
                name.as_deref(),
                actor,
                None,
            )?;
            if let Some(v) = v {
                store::record(
                    tx,
                    &Event {
                        detail: Some(format!("requirement v{v} from {file}")),
                        ..events::requirement(&req, actor, "doc")
                    },
                )?;
            }
            if docs::is_text(docs::media_type(bytes, name.as_deref())) {
                described = String::from_utf8_lossy(bytes).into_owned();
            }
        }
        // The description is the requirement document.
        tracker.describe(tx, &key, &described)?;
        for (col, d) in [("start_date", new.start), ("end_date", new.end)] {
            if let Some(d) = d {
                store::set_date(tx, &key, col, Some(&d.to_string()))?;
            }
        }
        let (start, end) = (new.start.map(|d| d.to_string()), new.end.map(|d| d.to_string()));
        tracker.dates(tx, &key, start.as_deref(), end.as_deref())?;
        let remarks: Vec<Remark> = new
            .assign
            .iter()
            .map(|a| Remark::Assign { role: a.role, user: a.user.clone() })
            .collect();
        if !remarks.is_empty() {
            let list: Vec<String> =
                new.assign.iter().map(|a| format!("{}={}", a.role, a.user)).collect();
            let text = format!("assigned {}", list.join(", "));
            tracker.comment(tx, &key, actor, &with_remarks(&text, &remarks))?;
        }
        for asg in new.assign {
            store::assign(tx, &key, asg.role, &asg.user)?;
            store::record(
                tx,
                &Event {
                    detail: Some(format!("{}={}", asg.role, asg.user)),
                    ..events::requirement(&req, actor, "assign")
                },
            )?;
        }
        Ok(key)
    })
}

/// People need not be members to be assigned, but a gate that needs a role looks at
/// membership: the assignments whose user lacks that role on the project.
pub fn unknown_people<'a>(
    store: &Store,
    project: &ProjectKey,
    assigned: &'a [Assignment],
) -> Result<Vec<&'a Assignment>> {
    let mut unknown = Vec::new();
    for a in assigned {
        if !store::has_role(store.conn(), project, &a.user, a.role)? {
            unknown.push(a);
        }
    }
    Ok(unknown)
}

/// Gives people roles on the requirement (or takes them away); returns what changed, as
/// `role=user`.
pub fn assign(
    store: &mut Store,
    tracker: &dyn Tracker,
    key: &RequirementKey,
    list: &[Assignment],
    remove: bool,
    actor: &str,
) -> Result<Vec<String>> {
    let req = store::open_requirement(store.conn(), key)?;
    store.write(|tx| {
        let mut changed = Vec::new();
        let mut remarks = Vec::new();
        for a in list {
            let did = if remove {
                store::unassign(tx, key, a.role, &a.user)?
            } else {
                store::assign(tx, key, a.role, &a.user)?
            };
            if did {
                let action = if remove { "unassign" } else { "assign" };
                store::record(
                    tx,
                    &Event {
                        detail: Some(format!("{}={}", a.role, a.user)),
                        ..events::requirement(&req, actor, action)
                    },
                )?;
                changed.push(format!("{}={}", a.role, a.user));
                let (role, user) = (a.role, a.user.clone());
                remarks.push(if remove {
                    Remark::Unassign { role, user }
                } else {
                    Remark::Assign { role, user }
                });
            }
        }
        if !changed.is_empty() {
            let text = format!(
                "{} {}",
                if remove { "unassigned" } else { "assigned" },
                changed.join(", ")
            );
            tracker.comment(tx, key, actor, &with_remarks(&text, &remarks))?;
        }
        Ok(changed)
    })
}

/// Gives the requirement a new title, through the tracker; `false` when it already had it.
/// The feature branch keeps the name it was given (a rename would fork it).
pub fn retitle(
    store: &mut Store,
    tracker: &dyn Tracker,
    key: &RequirementKey,
    title: &str,
    actor: &str,
) -> Result<bool> {
    let title = check_title(title)?;
    let req = store::open_requirement(store.conn(), key)?;
    if req.title == title {
        return Ok(false);
    }
    store.write(|tx| {
        tracker.retitle(tx, key, title)?;
        let detail = format!("title: {} -> {title}", req.title);
        store::record(
            tx,
            &Event { detail: Some(detail), ..events::requirement(&req, actor, "edit") },
        )
    })?;
    Ok(true)
}

/// Sets or clears dates of the requirement: (column, flag name, value; `None` clears).
pub fn schedule(
    store: &mut Store,
    tracker: &dyn Tracker,
    req: &Requirement,
    changes: &[(&str, &str, Option<String>)],
    actor: &str,
) -> Result<()> {
    let key = req.key();
    store.write(|tx| {
        for (col, flag, value) in changes {
            store::set_date(tx, &key, col, value.as_deref())?;
            let detail = format!("{flag} {}", value.as_deref().unwrap_or("cleared"));
            let e = Event { detail: Some(detail), ..events::requirement(req, actor, "schedule") };
            store::record(tx, &e)?;
        }
        // The tracker holds the start and end dates.
        if changes.iter().any(|(col, _, _)| matches!(*col, "start_date" | "end_date")) {
            let d = store::requirement(tx, &key)?.dates;
            tracker.dates(tx, &key, d.start.as_deref(), d.end.as_deref())?;
        }
        Ok(())
    })
}

#[derive(Serialize)]
pub struct NextStep {
    pub status: Status,
    pub missing: Vec<lifecycle::Missing>,
}

/// A requirement's whole story, as `requirement show` tells it.
#[derive(Serialize)]
pub struct Thread {
    #[serde(flatten)]
    pub requirement: Requirement,
    /// The keys it had before its project moved to Jira; each still names it.
    pub aliases: Vec<String>,
    pub people: Vec<store::Person>,
    pub documents: Vec<store::DocVersion>,
    pub reviews: Vec<store::Review>,
    pub branches: Vec<BranchView>,
    /// Per repository, the commits on the requirement's branch that its base lacks.
    pub commits: Vec<RepoCommits>,
    pub integrations: Vec<store::IntegrationRecord>,
    pub builds: Vec<store::Build>,
    /// Deployments and rollbacks made for it, newest first.
    pub deploys: Vec<store::Deploy>,
    pub watches: Vec<store::Watch>,
    /// Its gray releases as this machine last saw them, newest first.
    pub grays: Vec<super::gray::Listed>,
    pub signoffs: Vec<store::Signoff>,
    pub events: Vec<Event>,
    pub next: Option<NextStep>,
}

#[derive(Serialize)]
pub struct RepoCommits {
    pub repo: String,
    pub branch: String,
    pub commits: Vec<CommitInfo>,
}

/// How many of a branch's commits `requirement show` lists per repository.
const COMMITS_SHOWN: usize = 20;

/// The requirement's whole story, its branches measured now, and what the next step's gate
/// still misses.
pub fn thread(
    forges: &Forges,
    store: &Store,
    key: &RequirementKey,
    test_branch: &str,
) -> Result<Thread> {
    let c = store.conn();
    let req = store::requirement(c, key)?;
    let branches = branches::views(forges, c, Some(key), None)?;
    let repos = store::repos(c, &key.project)?;
    let mut commits = Vec::new();
    for b in branches.iter().filter(|b| b.exists) {
        if let Some(r) = repos.iter().find(|r| r.name == b.repo) {
            let list = forges.for_repo(r)?.commits(r, &b.name, &b.base, COMMITS_SHOWN)?;
            commits.push(RepoCommits {
                repo: b.repo.clone(),
                branch: b.name.clone(),
                commits: list,
            });
        }
    }
    let next = match req.status.next() {
        Some(status) => Some(NextStep {
            status,
            missing: lifecycle::gate(
                req.status,
                key,
                &super::lifecycle::gather_facts(forges, store, &req, &branches, test_branch)?,
            ),
        }),
        None => None,
    };
    Ok(Thread {
        aliases: store::aliases_of(c, key)?,
        people: store::assignments(c, key)?,
        documents: store::documents(c, key)?,
        reviews: store::reviews(c, Some(key))?,
        branches,
        commits,
        integrations: store::integrations_of(c, key)?,
        builds: store::builds(c, None, Some(key))?,
        deploys: store::deploys(
            c,
            Some(key.project.as_str()),
            None,
            None,
            Some(key.to_string().as_str()),
        )?,
        watches: {
            let deployed: Vec<(String, String)> = store::deploys(
                c,
                Some(key.project.as_str()),
                None,
                None,
                Some(key.to_string().as_str()),
            )?
            .into_iter()
            .map(|d| (d.app, d.env))
            .collect();
            store::watches(c, key.project.as_str(), None, None)?
                .into_iter()
                .filter(|w| deployed.contains(&(w.app.clone(), w.env.clone())))
                .collect()
        },
        grays: store::grays_of(c, &key.to_string())?
            .into_iter()
            .map(|(env, gray)| super::gray::Listed { project: key.project.to_string(), env, gray })
            .collect(),
        signoffs: store::signoffs(c, key)?,
        events: store::events(c, key)?,
        next,
        requirement: req,
    })
}
