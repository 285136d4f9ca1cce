//! `xone sync`: a machine's view of its projects rebuilt from the shared systems. For a project
//! whose requirements live in Jira, its issues are read (all of them the first time, then only
//! those changed since the last sync) and each requirement's title and stage are taken from
//! Jira, which is the truth for status: a status moved in Jira's web UI shows here after a
//! sync, said as a move that went around xone's gates.

use serde::Serialize;
use serde_json::Value;

mod clusters;

use super::fan_out::fan_out;
use super::{events, lifecycle, Scope};
use crate::adapters::jira::{self, Jira};
use crate::adapters::Forges;
use crate::clock;
use crate::domain::date;
use crate::domain::lifecycle::{stage_of_jira_status, StatusMap};
use crate::domain::remarks::{self, Remark};
use crate::domain::{template, DocKind, ProjectKey, RequirementKey, Status};
use crate::store::{self, Event, Store};
use crate::ui::{Result, Tag, XoneError};

/// A stage that changed in Jira.
#[derive(Clone, Debug, Serialize)]
pub struct Moved {
    pub key: String,
    pub from: String,
    pub to: String,
    /// What xone's gates would have asked for on the way (a move forward): the move is
    /// taken, since Jira is the truth for status, and this is said.
    pub gates: Vec<String>,
}

/// What a project's sync did.
#[derive(Clone, Debug, Serialize)]
pub struct Synced {
    pub project: String,
    /// `full` the first time, `incremental` after.
    pub kind: &'static str,
    /// Requests made to Jira, and how many of them were pages of the search.
    pub requests: usize,
    pub pages: usize,
    pub issues: usize,
    pub created: Vec<String>,
    pub retitled: Vec<String>,
    pub moved: Vec<Moved>,
    /// Issues whose Jira status stands for no stage: (key, status).
    pub unmapped: Vec<(String, String)>,
    /// What the issues' comments and descriptions brought: assignments (`KEY role=user`),
    /// reviews' verdicts, sign-offs, and requirement documents edited in Jira.
    pub people: Vec<String>,
    /// Verdicts and sign-offs a comment claimed for someone other than its author, passed
    /// over: `KEY REMARK (written by ACCOUNT)`.
    pub unproven: Vec<String>,
    pub reviews: usize,
    pub signoffs: usize,
    pub documents: usize,
    /// Dates taken from the issues' fields: `KEY start|end DATE` (`-`: cleared).
    pub dates: Vec<String>,
    /// What the project's shared definition added here: `TABLE NAME` (a repository, a member,
    /// an environment, an app...).
    pub project_added: Vec<String>,
    /// What it has that was not taken here, with why (a command; a clash with what is here).
    pub project_passed: Vec<String>,
    /// Feature branches found on the forges that this machine did not know: `KEY repo branch`.
    pub branches: Vec<String>,
    /// Repositories whose branches could not be listed, with why; the rest are synced.
    pub unread_repos: Vec<String>,
    #[serde(flatten)]
    pub clusters: clusters::FromClusters,
}

/// The Jira project property that keeps a project's shared definition.
const DEFINITION: &str = "xone.project";

/// A project this machine does not have, taken in from Jira: the Jira project of its key (exit
/// 3 when the user cannot see it) and the definition the team shares there.
fn take_in(
    client: &Jira,
    store: &mut Store,
    key: &ProjectKey,
    actor: &str,
) -> Result<store::Taken> {
    let jp = client.project(key.as_str())?;
    let def = client.project_property(key.as_str(), DEFINITION)?.ok_or_else(|| {
        XoneError::not_found(format!(
            "the Jira project {key} carries no xone project yet, so there is nothing to set up here"
        ))
        .hint(format!("run `xone sync -p {key}` on a machine that has the project: it shares it"))
    })?;
    let name = def["name"].as_str().or(jp["name"].as_str()).unwrap_or(key.as_str()).to_string();
    let description = def["description"].as_str().unwrap_or_default().to_string();
    store.write(|tx| {
        store::insert_project(tx, key, &name, &description, actor)?;
        store::set_tracker(tx, key, "jira", Some(key.as_str()))?;
        let taken = store::take_definition(tx, key, &def)?;
        let mut detail = format!("set up from Jira: {}", taken.added.join(", "));
        if !taken.passed.is_empty() {
            detail.push_str(&format!("; passed over: {}", taken.passed.join("; ")));
        }
        store::record(tx, &events::project(key, actor, "project create", detail))?;
        Ok(taken)
    })
}

/// The project's shared definition, kept as a property of its Jira project: what it has that
/// this machine lacks is added here, and what this machine has that it lacks is added to it
/// (written only when that changes it; a row it has stays as it is). Returns what was taken
/// here, and whether the definition was written.
fn share(
    client: &Jira,
    store: &mut Store,
    key: &ProjectKey,
    jira_key: &str,
) -> Result<(store::Taken, bool)> {
    let theirs = client.project_property(jira_key, DEFINITION)?;
    let taken = match &theirs {
        Some(def) => store.write(|tx| store::take_definition(tx, key, def))?,
        None => store::Taken::default(),
    };
    let ours = store::project_definition(store.conn(), key)?;
    let merged = match &theirs {
        Some(t) => store::merge_definitions(t, &ours),
        None => ours,
    };
    if theirs.as_ref().map(normal) == Some(normal(&merged)) {
        return Ok((taken, false));
    }
    let mut taken = taken;
    match client.set_project_property(jira_key, DEFINITION, &merged) {
        Ok(()) => {}
        // Writing a project's properties takes a project administrator in Jira.
        Err(e) if e.is(Tag::Refused) => taken.passed.push(format!(
            "what this machine adds to the project is not shared: Jira refused to write the project property {DEFINITION} (a project administrator's token may)"
        )),
        Err(e) => return Err(e),
    }
    Ok((taken, true))
}

/// Shares the project's definition now (`project set --tracker jira`), so that a teammate's
/// `xone sync -p KEY` finds it; returns what was taken here, and what was passed over.
pub fn share_definition(
    settings: &jira::Settings,
    store: &mut Store,
    key: &ProjectKey,
) -> Result<store::Taken> {
    let p = store::project(store.conn(), key)?;
    let jira_key = p.jira_project.clone().unwrap_or_else(|| key.to_string());
    share(&Jira::new(settings)?, store, key, &jira_key).map(|(t, _)| t)
}

/// A definition with its lists in one order, to compare two.
fn normal(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normal(v))).collect()),
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normal).collect();
            items.sort_by_key(|x| x.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// One minute further back than the last sync: JQL compares to the minute.
const OVERLAP_SECS: i64 = 60;

/// Syncs the projects (every one whose requirements live in Jira, or `only`).
pub fn sync(
    scope: &Scope,
    forges: &Forges,
    store: &mut Store,
    settings: &jira::Settings,
    only: Option<&ProjectKey>,
    actor: &str,
) -> Result<Vec<Synced>> {
    let mut set_up = store::Taken::default();
    if let Some(k) = only {
        let here = store::projects(store.conn(), true)?.iter().any(|p| p.key == k.as_str());
        if !here {
            set_up = take_in(&Jira::new(settings)?, store, k, actor)?;
        }
    }
    let projects: Vec<store::Project> = match only {
        Some(k) => vec![store::project(store.conn(), k)?],
        None => store::projects(store.conn(), false)?,
    };
    let tracked: Vec<store::Project> =
        projects.into_iter().filter(|p| p.tracker == "jira").collect();
    if tracked.is_empty() {
        return Err(match only {
            Some(k) => XoneError::gate(format!(
                "the requirements of {k} live in the built-in tracker: there is nothing to sync"
            ))
            .hint(format!("xone project set {k} --tracker jira")),
            None => XoneError::gate("no project keeps its requirements in Jira: nothing to sync")
                .hint("xone project set KEY --tracker jira, or set up a teammate's project from Jira: xone sync -p KEY"),
        });
    }
    let client = Jira::new(settings)?;
    let mut out = Vec::new();
    for p in tracked {
        let key: ProjectKey = p.key.parse().map_err(XoneError::internal)?;
        let mut synced = project(scope, forges, &client, settings, store, &key, &p, actor)?;
        synced.project_added.append(&mut set_up.added);
        synced.project_passed.append(&mut set_up.passed);
        scope.ui.status(format!(
            "{}: {} sync, {} issue(s) read in {} request(s); {} new, {} moved",
            synced.project,
            synced.kind,
            synced.issues,
            synced.requests,
            synced.created.len(),
            synced.moved.len()
        ));
        out.push(synced);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn project(
    scope: &Scope,
    forges: &Forges,
    client: &Jira,
    settings: &jira::Settings,
    store: &mut Store,
    key: &ProjectKey,
    p: &store::Project,
    actor: &str,
) -> Result<Synced> {
    let map = &settings.status_map;
    let started = clock::now();
    let jira_key = p.jira_project.as_deref().unwrap_or(key.as_str());
    let (taken, shared) = share(client, store, key, jira_key)?;
    let (project_added, project_passed) = (taken.added, taken.passed);
    let since = store::synced_at(store.conn(), key)?;
    let mut jql = format!("project = \"{jira_key}\"");
    if let Some(at) = since.as_deref().and_then(date::parse_rfc3339) {
        // Relative to Jira's own now: an absolute time would be read in the Jira user's time
        // zone, which may be behind UTC and would miss changes.
        let ago = clock::unix_now() - at + OVERLAP_SECS;
        jql.push_str(&format!(" AND updated >= \"{}\"", jql_ago(ago)));
    }
    jql.push_str(" ORDER BY updated ASC");
    // The date fields, by name (one request), read with the issues.
    let (start_id, end_id) = jira::date_fields(settings, &client.fields()?)?;
    let mut fields = "summary,status,updated,description,comment".to_string();
    for id in [&start_id, &end_id].into_iter().flatten() {
        fields.push(',');
        fields.push_str(id);
    }
    let (issues, searches) = client.search(&jql, &fields)?;
    let requests = searches + 2 + usize::from(shared);
    let date_ids = (start_id, end_id);
    let mut done = Synced {
        project: key.to_string(),
        kind: if since.is_some() { "incremental" } else { "full" },
        requests,
        pages: searches,
        issues: issues.len(),
        created: Vec::new(),
        retitled: Vec::new(),
        moved: Vec::new(),
        unmapped: Vec::new(),
        people: Vec::new(),
        unproven: Vec::new(),
        reviews: 0,
        signoffs: 0,
        documents: 0,
        dates: Vec::new(),
        project_added,
        project_passed,
        branches: Vec::new(),
        unread_repos: Vec::new(),
        clusters: Default::default(),
    };
    // First what the issues tell (new requirements, titles, documents, people, verdicts,
    // sign-offs, dates), so that a move made in Jira is judged on all of it.
    store.write(|tx| {
        for issue in &issues {
            take(tx, map, key, issue, actor, &mut done)?;
            dates(tx, issue, &date_ids, actor, &mut done)?;
        }
        Ok(())
    })?;
    // A move forward made in Jira is judged by the gates xone would have held it to, before
    // it is taken: on what this machine knows, and the forges say now.
    let mut gates = std::collections::HashMap::new();
    for issue in &issues {
        let Some(Ok(k)) = issue["key"].as_str().map(str::parse::<RequirementKey>) else {
            continue;
        };
        let status_name = issue["fields"]["status"]["name"].as_str().unwrap_or_default();
        let (Some(req), Some(to)) =
            (store::find_requirement(store.conn(), &k)?, stage_of_jira_status(map, status_name))
        else {
            continue;
        };
        if to != req.status && !store::has_queued(store.conn(), &k)? {
            let missing = lifecycle::would_refuse(scope, forges, store, &req, to)?;
            gates.insert(k.to_string(), missing.into_iter().map(|m| m.item).collect::<Vec<_>>());
        }
    }
    store.write(|tx| {
        for issue in &issues {
            step(tx, map, key, issue, actor, &gates, &mut done)?;
        }
        store::set_synced_at(tx, key, &started)
    })?;
    (done.branches, done.unread_repos) = branches(forges, store, key, actor)?;
    done.clusters = clusters::sync(scope, store, key)?;
    Ok(done)
}

/// The project's feature branches as its forges have them (one listing per repository, all
/// at once): those of requirements this machine knows, and does not know the branch of, are
/// recorded; their merge requests are then found as any branch's are.
fn branches(
    forges: &Forges,
    store: &mut Store,
    project: &ProjectKey,
    actor: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let repos = store::repos(store.conn(), project)?;
    let prefix = format!("feature/{project}-");
    let listed = fan_out(&repos, |r| forges.for_repo(r).and_then(|f| f.branches(r, &prefix)));
    // A branch recorded for any requirement is taken: a name made before the project moved to
    // Jira carries its old key, which may be another requirement's now.
    let known = store::branches(store.conn(), None, Some(project))?;
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for (repo, names) in repos.iter().zip(listed) {
        let names = match names {
            Ok(n) => n,
            Err(e) => {
                unreadable.push(format!("{}: {}", repo.name, e.message));
                continue;
            }
        };
        for name in names {
            // feature/PAY-12-refund-orders (or feature/PAY-12) → PAY-12
            let tail = &name[prefix.len()..];
            let n: String = tail.chars().take_while(char::is_ascii_digit).collect();
            let after = &tail[n.len()..];
            if !(after.is_empty() || after.starts_with('-')) {
                continue;
            }
            let Ok(key) = format!("{project}-{n}").parse::<RequirementKey>() else { continue };
            let taken = known.iter().any(|b| {
                b.repo == repo.name && (b.requirement == key.to_string() || b.name == name)
            });
            if taken || store::find_requirement(store.conn(), &key)?.is_none() {
                continue;
            }
            found.push((key, repo.clone(), name));
        }
    }
    store.write(|tx| {
        for (key, repo, name) in &found {
            store::record_branch(tx, key, repo.id, name, &repo.default_branch)?;
            store::set_branch_name(tx, key, name)?;
            let req = store::requirement(tx, key)?;
            let e = Event {
                detail: Some(format!("{}: {name}, found on its forge", repo.name)),
                ..events::requirement(&req, actor, "branch create")
            };
            store::record(tx, &e)?;
        }
        Ok(())
    })?;
    Ok((found.into_iter().map(|(k, r, n)| format!("{k} {} {n}", r.name)).collect(), unreadable))
}

/// One issue into the local index.
fn take(
    c: &rusqlite::Connection,
    map: &StatusMap,
    project: &ProjectKey,
    issue: &Value,
    actor: &str,
    done: &mut Synced,
) -> Result<()> {
    let Some(Ok(key)) = issue["key"].as_str().map(str::parse::<RequirementKey>) else {
        return Ok(());
    };
    if key.project != *project {
        return Ok(());
    }
    let summary = issue["fields"]["summary"].as_str().unwrap_or_default();
    let status_name = issue["fields"]["status"]["name"].as_str().unwrap_or_default();
    let stage = stage_of_jira_status(map, status_name);
    if stage.is_none() {
        done.unmapped.push((key.to_string(), status_name.to_string()));
    }
    match store::find_requirement(c, &key)? {
        None => {
            store::insert_requirement_as(c, &key, summary, "jira")?;
            if let Some(s) = stage.filter(|s| *s != Status::Draft) {
                store::set_status(c, &key, s)?;
            }
            let req = store::requirement(c, &key)?;
            let e = Event {
                detail: Some(format!("from Jira: {status_name}")),
                ..events::requirement(&req, actor, "sync")
            };
            store::record(c, &e)?;
            done.created.push(key.to_string());
        }
        Some(req) => {
            if req.title != summary && !summary.is_empty() {
                store::set_title(c, &key, summary)?;
                done.retitled.push(key.to_string());
            }
        }
    }
    absorb(c, &key, issue, actor, done)
}

/// A stage moved in Jira, taken, with what xone's gates would have refused.
fn step(
    c: &rusqlite::Connection,
    map: &StatusMap,
    project: &ProjectKey,
    issue: &Value,
    actor: &str,
    gates: &std::collections::HashMap<String, Vec<String>>,
    done: &mut Synced,
) -> Result<()> {
    let Some(Ok(key)) = issue["key"].as_str().map(str::parse::<RequirementKey>) else {
        return Ok(());
    };
    if key.project != *project || done.created.contains(&key.to_string()) {
        return Ok(());
    }
    let status_name = issue["fields"]["status"]["name"].as_str().unwrap_or_default();
    let stage = stage_of_jira_status(map, status_name);
    match store::find_requirement(c, &key)? {
        None => {}
        Some(req) => {
            // A move made here and still waiting for Jira is ahead of what Jira says.
            let waiting = store::has_queued(c, &key)?;
            if let Some(to) = stage.filter(|s| *s != req.status && !waiting) {
                store::set_status(c, &key, to)?;
                let refused = gates.get(&key.to_string()).cloned().unwrap_or_default();
                let detail = if refused.is_empty() {
                    format!("moved in Jira to {status_name}, not through xone's gates")
                } else {
                    format!(
                        "moved in Jira to {status_name}, past xone's gates, which would have refused: {}",
                        refused.join("; ")
                    )
                };
                let e = Event {
                    from: Some(req.status.to_string()),
                    to: Some(to.to_string()),
                    detail: Some(detail),
                    forced: !refused.is_empty(),
                    ..events::requirement(&req, actor, "sync")
                };
                store::record(c, &e)?;
                done.moved.push(Moved {
                    key: key.to_string(),
                    from: req.status.to_string(),
                    to: to.to_string(),
                    gates: refused,
                });
            }
        }
    }
    Ok(())
}

/// The start and end dates as the issue's fields hold them (Jira is the truth for them too),
/// unless a change made here still waits for Jira.
fn dates(
    c: &rusqlite::Connection,
    issue: &Value,
    (start_id, end_id): &(Option<String>, Option<String>),
    actor: &str,
    done: &mut Synced,
) -> Result<()> {
    let Some(Ok(key)) = issue["key"].as_str().map(str::parse::<RequirementKey>) else {
        return Ok(());
    };
    let Some(req) = store::find_requirement(c, &key)? else { return Ok(()) };
    if store::has_queued(c, &key)? {
        return Ok(());
    }
    for (id, col, flag, now) in [
        (start_id, "start_date", "start", &req.dates.start),
        (end_id, "end_date", "end", &req.dates.end),
    ] {
        let Some(id) = id else { continue };
        let theirs = issue["fields"][id.as_str()]
            .as_str()
            .and_then(|d| d.get(..10))
            .filter(|d| d.parse::<date::Date>().is_ok());
        if theirs != now.as_deref() {
            store::set_date(c, &key, col, theirs)?;
            let detail = format!("{flag} {}, from Jira", theirs.unwrap_or("cleared"));
            store::record(
                c,
                &Event { detail: Some(detail), ..events::requirement(&req, actor, "schedule") },
            )?;
            done.dates.push(format!("{key} {flag} {}", theirs.unwrap_or("-")));
        }
    }
    Ok(())
}

/// What an issue's description and comments tell: the requirement document as edited in Jira,
/// and the facts xone's comments carry (see `domain::remarks`), each taken once.
fn absorb(
    c: &rusqlite::Connection,
    key: &RequirementKey,
    issue: &Value,
    actor: &str,
    done: &mut Synced,
) -> Result<()> {
    let req = store::requirement(c, key)?;
    let ev = |action: &str, detail: String| Event {
        detail: Some(detail),
        ..events::requirement(&req, actor, action)
    };
    let mut docs = store::documents(c, key)?;
    docs.retain(|d| d.kind == DocKind::Requirement);
    if docs.is_empty() {
        // As `requirement create` makes it: the template first, so that an edit shows.
        let tpl = super::docs::template_for(c, &key.project, DocKind::Requirement)?
            .unwrap_or_else(|| template::REQUIREMENT.to_string());
        let body = template::render(&tpl, &key.to_string(), &req.title, key.project.as_str());
        store::add_document_version(
            c,
            key,
            DocKind::Requirement,
            body.as_bytes(),
            "text/markdown",
            None,
            actor,
            Some("generated from the template"),
        )?;
        docs = store::documents(c, key)?;
        docs.retain(|d| d.kind == DocKind::Requirement);
    }
    let text = jira::plain_text(&issue["fields"]["description"]);
    let sha = store::sha256_hex(text.as_bytes());
    if !text.trim().is_empty() && !docs.iter().any(|d| d.sha256 == sha) {
        let v = store::add_document_version(
            c,
            key,
            DocKind::Requirement,
            text.as_bytes(),
            "text/markdown",
            None,
            actor,
            Some("the Jira issue's description"),
        )?;
        if let Some(v) = v {
            store::record(c, &ev("doc", format!("requirement v{v} from Jira")))?;
            done.documents += 1;
        }
    }
    let comments = issue["fields"]["comment"]["comments"].as_array().cloned().unwrap_or_default();
    // Who is assigned is what the last word on each person says: the comments are read again
    // whenever the issue changes, so only that is applied.
    let mut people: Vec<((crate::domain::Role, String), bool)> = Vec::new();
    for comment in &comments {
        // A verdict or a sign-off counts only from its own author: the comment's Jira account
        // must be the member it names (as when it is given with Jira as the tracker).
        let author = jira::Account::of(&comment["author"]);
        let member = match &author {
            Some(a) => super::project::member_of_account(c, &key.project, a)?,
            None => None,
        };
        for r in remarks::parse(&jira::plain_text(&comment["body"])) {
            let on = matches!(r, Remark::Assign { .. });
            if let Remark::Review { by, .. }
            | Remark::Verdict { by, .. }
            | Remark::Signoff { by, .. } = &r
            {
                if member.as_deref() != Some(by.as_str()) {
                    let account = author.as_ref().map(|a| a.id.as_str()).unwrap_or("nobody known");
                    done.unproven.push(format!("{key} {r} (written by {account})"));
                    continue;
                }
            }
            match r {
                Remark::Assign { role, user } | Remark::Unassign { role, user } => {
                    people.retain(|(p, _)| *p != (role, user.clone()));
                    people.push(((role, user), on));
                }
                Remark::Review { kind, by, at, id: origin } => {
                    if let Some(id) = store::insert_open_review(c, key, kind, &by, &at, &origin)? {
                        let d = format!("#{id} {kind} review opened by {by}, from Jira");
                        store::record(c, &ev("review create", d))?;
                        done.reviews += 1;
                    }
                }
                Remark::Verdict { kind, verdict, by, at, review } => {
                    // The review it closes, where it names one this machine has.
                    let open = match &review {
                        Some(o) => store::review_by_origin(c, o)?,
                        None => None,
                    };
                    let closed = match open {
                        Some((_, true)) => None,
                        Some((id, false)) => {
                            store::set_verdict_as_given(c, id, verdict, &by, &at)?;
                            Some(id)
                        }
                        None => store::insert_closed_review(c, key, kind, verdict, &by, &at)?,
                    };
                    if let Some(id) = closed {
                        let d = format!("#{id} {kind} review: {verdict} by {by}, from Jira");
                        store::record(c, &ev("review verdict", d))?;
                        done.reviews += 1;
                    }
                }
                Remark::Signoff { stage, by, at } => {
                    if store::insert_signoff_at(c, key, &by, None, stage.as_str(), &at)? {
                        let d = format!("signed off by {by} in {stage}, from Jira");
                        store::record(c, &ev("signoff", d))?;
                        done.signoffs += 1;
                    }
                }
            }
        }
    }
    for ((role, user), on) in people {
        if on && store::assign(c, key, role, &user)? {
            store::record(c, &ev("assign", format!("{role}={user}, from Jira")))?;
            done.people.push(format!("{key} {role}={user}"));
        } else if !on && store::unassign(c, key, role, &user)? {
            store::record(c, &ev("unassign", format!("{role}={user}, from Jira")))?;
            done.people.push(format!("{key} -{role}={user}"));
        }
    }
    Ok(())
}

/// Links a Jira issue that already exists as a requirement of its project (which keeps its
/// requirements in Jira): its key, summary and stage are the issue's.
pub fn adopt(
    store: &mut Store,
    settings: &jira::Settings,
    key: &RequirementKey,
    actor: &str,
) -> Result<store::Requirement> {
    let p = store::active_project(store.conn(), &key.project)?;
    if p.tracker != "jira" {
        return Err(XoneError::gate(format!(
            "the requirements of {} live in the built-in tracker: there is no Jira issue to adopt",
            key.project
        ))
        .hint(format!("xone project set {} --tracker jira", key.project)));
    }
    if store::find_requirement(store.conn(), key)?.is_some() {
        return Err(XoneError::conflict(format!("{key} is a requirement here already"))
            .hint(format!("xone requirement show {key}")));
    }
    let client = Jira::new(settings)?;
    let (summary, status) = client.issue(&key.to_string())?.ok_or_else(|| {
        XoneError::not_found(format!("{} at {} has no issue {key}", client.deployment, client.url))
            .hint("check the key, and that the token's user may see the issue")
    })?;
    let stage = stage_of_jira_status(&settings.status_map, &status);
    store.write(|tx| {
        store::insert_requirement_as(tx, key, &summary, actor)?;
        if let Some(s) = stage.filter(|s| *s != Status::Draft) {
            store::set_status(tx, key, s)?;
        }
        let req = store::requirement(tx, key)?;
        let e = Event {
            detail: Some(format!("adopted the Jira issue, {status}")),
            ..events::requirement(&req, actor, "adopt")
        };
        store::record(tx, &e)
    })?;
    store::requirement(store.conn(), key)
}

/// A time `secs` ago as JQL takes it, relative to the server's now and in whole minutes,
/// rounded up: `-15m`.
fn jql_ago(secs: i64) -> String {
    format!("-{}m", (secs.max(0) + 59) / 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jql_times_are_minutes_ago_rounded_up() {
        assert_eq!(super::jql_ago(0), "-0m");
        assert_eq!(super::jql_ago(61), "-2m");
        assert_eq!(super::jql_ago(3_600), "-60m");
    }
}
