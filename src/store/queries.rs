//! Reads and writes of the state database, one function per question or change. Writes take a
//! transaction from `Store::write`, so a command's changes land together or not at all.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::kinds::{IntegrationStatus, RepoKind};
use crate::clock;
use crate::domain::{DocKind, ProjectKey, RequirementKey, ReviewKind, Role, Status, Verdict};
use crate::ui::{Result, XoneError};

// ---- projects ----------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub key: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
    pub archived_at: Option<String>,
    /// Where its requirements live: `builtin` or `jira`.
    pub tracker: String,
    /// The Jira project they live in, with the Jira tracker.
    pub jira_project: Option<String>,
}

fn project_row(r: &Row) -> rusqlite::Result<Project> {
    Ok(Project {
        key: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
        archived_at: r.get(5)?,
        tracker: r.get(6)?,
        jira_project: r.get(7)?,
    })
}

const PROJECT_COLS: &str =
    "key, name, description, created_at, created_by, archived_at, tracker, jira_project";

/// Sets where a project's requirements live.
pub fn set_tracker(
    c: &Connection,
    key: &ProjectKey,
    tracker: &str,
    jira_project: Option<&str>,
) -> Result<()> {
    c.execute(
        "UPDATE project SET tracker = ?2, jira_project = ?3 WHERE key = ?1",
        params![key.as_str(), tracker, jira_project],
    )?;
    Ok(())
}

pub fn find_project(c: &Connection, key: &ProjectKey) -> Result<Option<Project>> {
    Ok(c.query_row(
        &format!("SELECT {PROJECT_COLS} FROM project WHERE key = ?1"),
        [key.as_str()],
        project_row,
    )
    .optional()?)
}

pub fn project(c: &Connection, key: &ProjectKey) -> Result<Project> {
    find_project(c, key)?.ok_or_else(|| {
        XoneError::not_found(format!("no project {key}"))
            .hint("list projects with `xone project list`, or create one with `xone project create KEY --name NAME`")
    })
}

/// A project that takes new work: it exists and is not archived.
pub fn active_project(c: &Connection, key: &ProjectKey) -> Result<Project> {
    let p = project(c, key)?;
    if let Some(at) = &p.archived_at {
        return Err(XoneError::gate(format!("project {key} was archived on {at}"))
            .hint("archived projects are read-only"));
    }
    Ok(p)
}

pub fn projects(c: &Connection, include_archived: bool) -> Result<Vec<Project>> {
    let sql = format!(
        "SELECT {PROJECT_COLS} FROM project {} ORDER BY key",
        if include_archived { "" } else { "WHERE archived_at IS NULL" }
    );
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map([], project_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn project_keys(c: &Connection) -> Result<Vec<(String, String)>> {
    let mut st =
        c.prepare("SELECT key, name FROM project WHERE archived_at IS NULL ORDER BY key")?;
    let rows =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn ensure_new_project(c: &Connection, key: &ProjectKey) -> Result<()> {
    if find_project(c, key)?.is_some() {
        return Err(XoneError::conflict(format!("project {key} already exists"))
            .hint(format!("see it with `xone project show {key}`, or choose another key")));
    }
    Ok(())
}

pub fn insert_project(
    c: &Connection,
    key: &ProjectKey,
    name: &str,
    description: &str,
    actor: &str,
) -> Result<()> {
    ensure_new_project(c, key)?;
    c.execute(
        "INSERT INTO project (key, name, description, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.as_str(), name, description, clock::now(), actor],
    )?;
    Ok(())
}

pub fn archive_project(c: &Connection, key: &ProjectKey) -> Result<()> {
    c.execute(
        "UPDATE project SET archived_at = ?2 WHERE key = ?1",
        params![key.as_str(), clock::now()],
    )?;
    Ok(())
}

pub fn unarchive_project(c: &Connection, key: &ProjectKey) -> Result<()> {
    c.execute("UPDATE project SET archived_at = NULL WHERE key = ?1", params![key.as_str()])?;
    Ok(())
}

/// What a project holds: its requirements not done or cancelled, and its deployments.
pub fn open_work(c: &Connection, key: &ProjectKey) -> Result<(Vec<String>, i64)> {
    let mut st = c.prepare(
        "SELECT key FROM requirement WHERE project = ?1 AND status NOT IN ('done', 'cancelled')
         ORDER BY seq",
    )?;
    let open =
        st.query_map([key.as_str()], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
    let deploys: i64 =
        c.query_row("SELECT count(*) FROM deploy WHERE project = ?1", [key.as_str()], |r| {
            r.get(0)
        })?;
    Ok((open, deploys))
}

/// How many requirements a project has, of any status.
pub fn requirement_count(c: &Connection, key: &ProjectKey) -> Result<i64> {
    Ok(c.query_row("SELECT count(*) FROM requirement WHERE project = ?1", [key.as_str()], |r| {
        r.get(0)
    })?)
}

/// Deletes a project and every record xone keeps of it; the project-level events stay in the
/// journal. Returns how many requirements went with it.
pub fn delete_project(c: &Connection, key: &ProjectKey) -> Result<usize> {
    const REQS: &str = "(SELECT key FROM requirement WHERE project = ?1)";
    const REVIEWS: &str =
        "(SELECT id FROM review WHERE requirement IN (SELECT key FROM requirement WHERE project = ?1))";
    let requirements: i64 =
        c.query_row("SELECT count(*) FROM requirement WHERE project = ?1", [key.as_str()], |r| {
            r.get(0)
        })?;
    let statements = [
        format!("DELETE FROM review_comment WHERE review IN {REVIEWS}"),
        format!("DELETE FROM review_attendee WHERE review IN {REVIEWS}"),
        format!("DELETE FROM review WHERE requirement IN {REQS}"),
        format!("DELETE FROM assignment WHERE requirement IN {REQS}"),
        format!("DELETE FROM document WHERE requirement IN {REQS}"),
        format!("DELETE FROM signoff WHERE requirement IN {REQS}"),
        format!("DELETE FROM branch WHERE requirement IN {REQS}"),
        format!(
            "DELETE FROM integration_item WHERE requirement IN {REQS}
             OR integration IN (SELECT id FROM integration WHERE project = ?1)"
        ),
        "DELETE FROM watch WHERE project = ?1".into(),
        "DELETE FROM deploy WHERE project = ?1".into(),
        "DELETE FROM build WHERE app IN (SELECT id FROM app WHERE project = ?1)".into(),
        "DELETE FROM integration WHERE project = ?1".into(),
        "DELETE FROM app WHERE project = ?1".into(),
        "DELETE FROM env WHERE project = ?1".into(),
        format!("DELETE FROM event WHERE requirement IN {REQS}"),
        "DELETE FROM requirement WHERE project = ?1".into(),
        "DELETE FROM repo WHERE project = ?1".into(),
        "DELETE FROM member WHERE project = ?1".into(),
        "DELETE FROM template WHERE project = ?1".into(),
        "DELETE FROM project WHERE key = ?1".into(),
    ];
    for sql in &statements {
        c.execute(sql, [key.as_str()])?;
    }
    c.execute("DELETE FROM blob WHERE sha256 NOT IN (SELECT sha256 FROM document)", [])?;
    Ok(requirements as usize)
}

// ---- repositories -------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Repo {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub kind: RepoKind,
    pub location: String,
    pub default_branch: String,
    pub bare: bool,
    /// GitLab's numeric project id.
    pub remote_id: Option<i64>,
    /// Where git clones it from (GitLab's `http_url_to_repo`).
    pub clone_url: Option<String>,
    pub web_url: Option<String>,
}

fn repo_row(r: &Row) -> rusqlite::Result<Repo> {
    Ok(Repo {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        location: r.get(3)?,
        default_branch: r.get(4)?,
        bare: r.get(5)?,
        remote_id: r.get(6)?,
        clone_url: r.get(7)?,
        web_url: r.get(8)?,
    })
}

pub fn repos(c: &Connection, project: &ProjectKey) -> Result<Vec<Repo>> {
    let mut st = c.prepare(
        "SELECT id, name, kind, location, default_branch, bare, remote_id, clone_url, web_url FROM repo WHERE project = ?1 ORDER BY name",
    )?;
    let rows = st.query_map([project.as_str()], repo_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn insert_repo(c: &Connection, project: &ProjectKey, repo: &Repo) -> Result<()> {
    let existing = repos(c, project)?;
    if let Some(r) = existing.iter().find(|r| r.name == repo.name || r.location == repo.location) {
        return Err(XoneError::conflict(format!(
            "project {project} already has repository {} ({})",
            r.name, r.location
        ))
        .hint("give another one a distinct name with --name"));
    }
    c.execute(
        "INSERT INTO repo (project, name, kind, location, default_branch, bare, added_at, remote_id, clone_url, web_url)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            project.as_str(),
            repo.name,
            repo.kind,
            repo.location,
            repo.default_branch,
            repo.bare,
            clock::now(),
            repo.remote_id,
            repo.clone_url,
            repo.web_url
        ],
    )?;
    Ok(())
}

pub fn delete_repo(c: &Connection, project: &ProjectKey, name: &str) -> Result<()> {
    let n = c.execute(
        "DELETE FROM repo WHERE project = ?1 AND name = ?2",
        params![project.as_str(), name],
    )?;
    if n == 0 {
        return Err(XoneError::not_found(format!("project {project} has no repository {name}"))
            .hint(format!("see its repositories with `xone project repo list {project}`")));
    }
    Ok(())
}

// ---- members ------------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub user: String,
    pub roles: Vec<String>,
}

pub fn members(c: &Connection, project: &ProjectKey) -> Result<Vec<Member>> {
    let mut st =
        c.prepare("SELECT user, role FROM member WHERE project = ?1 ORDER BY user, role")?;
    let mut out: Vec<Member> = Vec::new();
    let rows =
        st.query_map([project.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (user, role) = row?;
        match out.last_mut() {
            Some(m) if m.user == user => m.roles.push(role),
            _ => out.push(Member { user, roles: vec![role] }),
        }
    }
    for m in &mut out {
        m.roles.sort_by_key(|r| r.parse::<Role>().map(|r| r as u8).unwrap_or(u8::MAX));
    }
    Ok(out)
}

pub fn has_role(c: &Connection, project: &ProjectKey, user: &str, role: Role) -> Result<bool> {
    Ok(c.query_row(
        "SELECT 1 FROM member WHERE project = ?1 AND user = ?2 AND role = ?3",
        params![project.as_str(), user, role.as_str()],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

pub fn is_member(c: &Connection, project: &ProjectKey, user: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT 1 FROM member WHERE project = ?1 AND user = ?2",
        params![project.as_str(), user],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

/// Adds roles; returns those that were new.
/// A change for Jira kept until it can be pushed.
#[derive(Clone, Debug, Serialize)]
pub struct Queued {
    pub id: i64,
    pub requirement: String,
    /// `transition`, `comment`, `link` or `retitle`.
    pub op: String,
    pub payload: serde_json::Value,
    pub actor: String,
    pub queued_at: String,
    /// `queued`, or `refused` (Jira would not take it: it stays local).
    pub state: String,
    pub detail: Option<String>,
}

pub fn enqueue(
    c: &Connection,
    requirement: &RequirementKey,
    op: &str,
    payload: &serde_json::Value,
    actor: &str,
) -> Result<i64> {
    c.execute(
        "INSERT INTO outbox (requirement, op, payload, actor, queued_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![requirement.to_string(), op, payload.to_string(), actor, clock::now()],
    )?;
    Ok(c.last_insert_rowid())
}

/// The outbox, oldest first; only what waits to be pushed unless `all`.
pub fn outbox(c: &Connection, all: bool) -> Result<Vec<Queued>> {
    let mut st = c.prepare(&format!(
        "SELECT id, requirement, op, payload, actor, queued_at, state, detail FROM outbox {} ORDER BY id",
        if all { "" } else { "WHERE state = 'queued'" }
    ))?;
    let rows = st
        .query_map([], |r| {
            let payload: String = r.get(3)?;
            Ok(Queued {
                id: r.get(0)?,
                requirement: r.get(1)?,
                op: r.get(2)?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                actor: r.get(4)?,
                queued_at: r.get(5)?,
                state: r.get(6)?,
                detail: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Whether changes of the requirement wait to be pushed.
pub fn has_queued(c: &Connection, requirement: &RequirementKey) -> Result<bool> {
    Ok(c.query_row(
        "SELECT count(*) FROM outbox WHERE requirement = ?1 AND state = 'queued'",
        [requirement.to_string()],
        |r| r.get::<_, i64>(0),
    )? > 0)
}

pub fn unqueue(c: &Connection, id: i64) -> Result<bool> {
    Ok(c.execute("DELETE FROM outbox WHERE id = ?1", [id])? > 0)
}

pub fn refuse_queued(c: &Connection, id: i64, detail: &str) -> Result<()> {
    c.execute(
        "UPDATE outbox SET state = 'refused', detail = ?2 WHERE id = ?1",
        params![id, detail],
    )?;
    Ok(())
}

/// Records the Jira account a member acts as.
pub fn set_member_account(
    c: &Connection,
    project: &ProjectKey,
    user: &str,
    account: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO member_account (project, user, jira_account) VALUES (?1, ?2, ?3)
         ON CONFLICT (project, user) DO UPDATE SET jira_account = excluded.jira_account",
        params![project.as_str(), user, account],
    )?;
    Ok(())
}

/// The members' Jira accounts: (user, account).
pub fn member_accounts(c: &Connection, project: &ProjectKey) -> Result<Vec<(String, String)>> {
    let mut st = c.prepare(
        "SELECT user, jira_account FROM member_account WHERE project = ?1 ORDER BY user",
    )?;
    let rows = st
        .query_map([project.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn add_member(
    c: &Connection,
    project: &ProjectKey,
    user: &str,
    roles: &[Role],
) -> Result<Vec<Role>> {
    let mut added = Vec::new();
    for role in roles {
        let n = c.execute(
            "INSERT OR IGNORE INTO member (project, user, role, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![project.as_str(), user, role.as_str(), clock::now()],
        )?;
        if n > 0 {
            added.push(*role);
        }
    }
    Ok(added)
}

/// Removes the given roles, or all of the user's roles when none are given.
pub fn remove_member(
    c: &Connection,
    project: &ProjectKey,
    user: &str,
    roles: &[Role],
) -> Result<usize> {
    let n = if roles.is_empty() {
        c.execute(
            "DELETE FROM member WHERE project = ?1 AND user = ?2",
            params![project.as_str(), user],
        )?
    } else {
        let mut n = 0;
        for role in roles {
            n += c.execute(
                "DELETE FROM member WHERE project = ?1 AND user = ?2 AND role = ?3",
                params![project.as_str(), user, role.as_str()],
            )?;
        }
        n
    };
    if n == 0 {
        return Err(XoneError::not_found(format!("{user} has no such role in project {project}"))
            .hint(format!("see the members with `xone project member list {project}`")));
    }
    Ok(n)
}

// ---- templates ----------------------------------------------------------------------------

pub fn template(c: &Connection, project: &ProjectKey, kind: DocKind) -> Result<Option<String>> {
    Ok(c.query_row(
        "SELECT body FROM template WHERE project = ?1 AND kind = ?2",
        params![project.as_str(), kind.as_str()],
        |r| r.get(0),
    )
    .optional()?)
}

pub fn set_template(
    c: &Connection,
    project: &ProjectKey,
    kind: DocKind,
    body: Option<&str>,
) -> Result<()> {
    match body {
        Some(b) => c.execute(
            "INSERT INTO template (project, kind, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, kind) DO UPDATE SET body = excluded.body",
            params![project.as_str(), kind.as_str(), b],
        )?,
        None => c.execute(
            "DELETE FROM template WHERE project = ?1 AND kind = ?2",
            params![project.as_str(), kind.as_str()],
        )?,
    };
    Ok(())
}

// ---- requirements -------------------------------------------------------------------------

#[derive(Clone, Debug, Default, Serialize)]
pub struct Dates {
    pub start: Option<String>,
    pub end: Option<String>,
    pub dev_end: Option<String>,
    pub test_submit: Option<String>,
    pub smoke: Option<String>,
    pub test_end: Option<String>,
    pub release: Option<String>,
}

impl Dates {
    /// The dates in the order of `DATE_COLUMNS`.
    pub fn in_column_order(&self) -> [&Option<String>; 7] {
        [
            &self.start,
            &self.end,
            &self.dev_end,
            &self.test_submit,
            &self.smoke,
            &self.test_end,
            &self.release,
        ]
    }
}

/// The date columns, in the order of `Dates`' fields, with the flag that sets each.
pub const DATE_COLUMNS: [(&str, &str); 7] = [
    ("start_date", "start"),
    ("end_date", "end"),
    ("dev_end", "dev-end"),
    ("test_submit", "test-submit"),
    ("smoke", "smoke"),
    ("test_end", "test-end"),
    ("release_date", "release"),
];

#[derive(Clone, Debug, Serialize)]
pub struct Requirement {
    pub key: String,
    pub project: String,
    pub title: String,
    pub status: Status,
    pub branch: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub dates: Dates,
}

impl Requirement {
    pub fn key(&self) -> RequirementKey {
        self.key.parse().expect("keys in the database were checked when they were made")
    }
}

const REQ_COLS: &str = "key, project, title, status, branch, created_at, created_by, updated_at, \
    start_date, end_date, dev_end, test_submit, smoke, test_end, release_date";

fn requirement_row(r: &Row) -> rusqlite::Result<Requirement> {
    let status: String = r.get(3)?;
    Ok(Requirement {
        key: r.get(0)?,
        project: r.get(1)?,
        title: r.get(2)?,
        status: status.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
        })?,
        branch: r.get(4)?,
        created_at: r.get(5)?,
        created_by: r.get(6)?,
        updated_at: r.get(7)?,
        dates: Dates {
            start: r.get(8)?,
            end: r.get(9)?,
            dev_end: r.get(10)?,
            test_submit: r.get(11)?,
            smoke: r.get(12)?,
            test_end: r.get(13)?,
            release: r.get(14)?,
        },
    })
}

/// A requirement, if this machine has it.
pub fn find_requirement(c: &Connection, key: &RequirementKey) -> Result<Option<Requirement>> {
    Ok(c.query_row(
        &format!("SELECT {REQ_COLS} FROM requirement WHERE key = ?1"),
        [key.to_string()],
        requirement_row,
    )
    .optional()?)
}

pub fn requirement(c: &Connection, key: &RequirementKey) -> Result<Requirement> {
    c.query_row(
        &format!("SELECT {REQ_COLS} FROM requirement WHERE key = ?1"),
        [key.to_string()],
        requirement_row,
    )
    .optional()?
    .ok_or_else(|| {
        XoneError::not_found(format!("no requirement {key}"))
            .hint(format!("list them with `xone requirement list -p {}`", key.project))
    })
}

/// A requirement that may still change: it exists and is neither done nor cancelled.
pub fn open_requirement(c: &rusqlite::Connection, key: &RequirementKey) -> Result<Requirement> {
    let req = requirement(c, key)?;
    if req.status.is_closed() {
        return Err(XoneError::gate(format!("{key} is {} and can no longer change", req.status))
            .hint("create a new requirement for further work"));
    }
    Ok(req)
}

/// Allocates the project's next key and inserts the requirement. The counter lives on the
/// project row and moves inside the caller's write transaction, so keys have no gaps and no
/// duplicates however many processes create at once.
pub fn insert_requirement(
    c: &Connection,
    project: &ProjectKey,
    title: &str,
    actor: &str,
) -> Result<RequirementKey> {
    let seq: i64 = c.query_row(
        "UPDATE project SET next_seq = next_seq + 1 WHERE key = ?1 RETURNING next_seq - 1",
        [project.as_str()],
        |r| r.get(0),
    )?;
    let key = RequirementKey::new(project.clone(), seq);
    let now = clock::now();
    c.execute(
        "INSERT INTO requirement (key, project, seq, title, status, created_at, created_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
        params![key.to_string(), project.as_str(), seq, title, Status::Draft.as_str(), now, actor],
    )?;
    Ok(key)
}

/// When a project was last synced from its tracker (RFC 3339), if ever.
pub fn synced_at(c: &Connection, project: &ProjectKey) -> Result<Option<String>> {
    Ok(c.query_row(
        "SELECT synced_at FROM sync_state WHERE project = ?1",
        [project.as_str()],
        |r| r.get(0),
    )
    .optional()?)
}

pub fn set_synced_at(c: &Connection, project: &ProjectKey, at: &str) -> Result<()> {
    c.execute(
        "INSERT INTO sync_state (project, synced_at) VALUES (?1, ?2)
         ON CONFLICT (project) DO UPDATE SET synced_at = excluded.synced_at",
        params![project.as_str(), at],
    )?;
    Ok(())
}

/// Records a requirement whose key another tracker gave (a Jira issue's); the project's
/// numbering moves past it.
pub fn insert_requirement_as(
    c: &Connection,
    key: &RequirementKey,
    title: &str,
    actor: &str,
) -> Result<()> {
    let now = clock::now();
    c.execute(
        "INSERT INTO requirement (key, project, seq, title, status, created_at, created_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
        params![
            key.to_string(),
            key.project.as_str(),
            key.seq,
            title,
            Status::Draft.as_str(),
            now,
            actor
        ],
    )?;
    c.execute(
        "UPDATE project SET next_seq = max(next_seq, ?2 + 1) WHERE key = ?1",
        params![key.project.as_str(), key.seq],
    )?;
    Ok(())
}

pub fn set_status(c: &Connection, key: &RequirementKey, status: Status) -> Result<()> {
    c.execute(
        "UPDATE requirement SET status = ?2, updated_at = ?3 WHERE key = ?1",
        params![key.to_string(), status.as_str(), clock::now()],
    )?;
    Ok(())
}

pub fn set_title(c: &Connection, key: &RequirementKey, title: &str) -> Result<()> {
    c.execute(
        "UPDATE requirement SET title = ?2, updated_at = ?3 WHERE key = ?1",
        params![key.to_string(), title, clock::now()],
    )?;
    Ok(())
}

pub fn set_branch_name(c: &Connection, key: &RequirementKey, branch: &str) -> Result<()> {
    c.execute(
        "UPDATE requirement SET branch = ?2 WHERE key = ?1",
        params![key.to_string(), branch],
    )?;
    Ok(())
}

/// Sets one date column (from `DATE_COLUMNS`) or clears it.
pub fn set_date(
    c: &Connection,
    key: &RequirementKey,
    column: &str,
    value: Option<&str>,
) -> Result<()> {
    debug_assert!(DATE_COLUMNS.iter().any(|(col, _)| *col == column));
    c.execute(
        &format!("UPDATE requirement SET {column} = ?2, updated_at = ?3 WHERE key = ?1"),
        params![key.to_string(), value, clock::now()],
    )?;
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub project: Option<ProjectKey>,
    /// Any of these (none: every status).
    pub status: Vec<Status>,
    pub user: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RequirementRow {
    pub key: String,
    pub project: String,
    pub title: String,
    pub status: Status,
    pub updated_at: String,
    pub end: Option<String>,
}

/// One page of requirements, newest first, and how many match in all.
pub fn list_requirements(
    c: &Connection,
    f: &ListFilter,
    limit: Option<usize>,
    offset: usize,
) -> Result<(Vec<RequirementRow>, usize)> {
    let mut cond = vec!["1 = 1".to_string()];
    let mut args: Vec<String> = Vec::new();
    if let Some(p) = &f.project {
        args.push(p.as_str().to_string());
        cond.push(format!("r.project = ?{}", args.len()));
    }
    if !f.status.is_empty() {
        let mut marks = Vec::new();
        for s in &f.status {
            args.push(s.as_str().to_string());
            marks.push(format!("?{}", args.len()));
        }
        cond.push(format!("r.status IN ({})", marks.join(", ")));
    }
    if let Some(u) = &f.user {
        args.push(u.clone());
        cond.push(format!(
            "EXISTS (SELECT 1 FROM assignment a WHERE a.requirement = r.key AND a.user = ?{})",
            args.len()
        ));
    }
    let cond = cond.join(" AND ");
    let total: i64 = c.query_row(
        &format!("SELECT count(*) FROM requirement r WHERE {cond}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = if f.project.is_some() { "r.seq DESC" } else { "r.rowid DESC" };
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut st = c.prepare(&format!(
        "SELECT r.key, r.project, r.title, r.status, r.updated_at, r.end_date FROM requirement r WHERE {cond} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    ))?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            let status: String = r.get(3)?;
            Ok(RequirementRow {
                key: r.get(0)?,
                project: r.get(1)?,
                title: r.get(2)?,
                status: status.parse().unwrap_or(Status::Draft),
                updated_at: r.get(4)?,
                end: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as usize))
}

/// The keys of requirements that start with `prefix`, with their titles when asked for, in
/// project and number order (PAY-2 before PAY-10), for completion.
pub fn requirement_keys(
    c: &Connection,
    prefix: &str,
    titles: bool,
) -> Result<Vec<(String, String)>> {
    // Without titles, only (project, seq) is read: the index alone answers, with no lookup
    // of each row in the table. The key is made from them, as it was when stored.
    let title = if titles { "title" } else { "''" };
    // Both shapes walk the (project, seq) index in order, so nothing is sorted afterwards:
    // `PAY-1` is project PAY with numbers starting "1"; `PA` is every project from PA. Keys
    // read in any case, so `pay-1` completes as `PAY-1` does.
    let prefix = prefix.to_ascii_uppercase();
    let (sql, project, number) = match prefix.rsplit_once('-') {
        Some((project, number)) => {
            if !number.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Vec::new());
            }
            // No digits yet: every number of the project, with no test per row.
            let filter =
                if number.is_empty() { "?2 = ''" } else { "CAST(seq AS TEXT) GLOB ?2 || '*'" };
            let sql = format!(
                "SELECT project, seq, {title} FROM requirement WHERE project = ?1 \
                 AND {filter} ORDER BY seq"
            );
            (sql, project, number)
        }
        None => {
            let sql = format!(
                "SELECT project, seq, {title} FROM requirement WHERE project >= ?1 AND project < ?1 || '~' \
                 AND ?2 = '' ORDER BY project, seq"
            );
            (sql, prefix.as_str(), "")
        }
    };
    let mut st = c.prepare(&sql)?;
    let mut out = Vec::new();
    let mut rows = st.query([project, number])?;
    while let Some(r) = rows.next()? {
        let project = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let seq: i64 = r.get(1)?;
        let title = if titles { r.get(2)? } else { String::new() };
        // Built by hand: `format!` costs more than the rest of the row for 10 000 keys.
        let mut key = String::with_capacity(project.len() + 12);
        key.push_str(project);
        key.push('-');
        push_number(&mut key, seq.unsigned_abs());
        out.push((key, title));
    }
    Ok(out)
}

fn push_number(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
}

// ---- people on a requirement --------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Person {
    pub role: Role,
    pub user: String,
}

pub fn assignments(c: &Connection, key: &RequirementKey) -> Result<Vec<Person>> {
    let mut st = c.prepare("SELECT role, user FROM assignment WHERE requirement = ?1")?;
    let mut rows = st
        .query_map([key.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter_map(|(role, user)| Some(Person { role: role.parse().ok()?, user }))
        .collect::<Vec<_>>();
    rows.sort_by(|a, b| (a.role, &a.user).cmp(&(b.role, &b.user)));
    Ok(rows)
}

pub fn assign(c: &Connection, key: &RequirementKey, role: Role, user: &str) -> Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO assignment (requirement, role, user) VALUES (?1, ?2, ?3)",
        params![key.to_string(), role.as_str(), user],
    )?;
    Ok(n > 0)
}

pub fn unassign(c: &Connection, key: &RequirementKey, role: Role, user: &str) -> Result<bool> {
    let n = c.execute(
        "DELETE FROM assignment WHERE requirement = ?1 AND role = ?2 AND user = ?3",
        params![key.to_string(), role.as_str(), user],
    )?;
    Ok(n > 0)
}

// ---- documents ----------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct DocVersion {
    pub kind: DocKind,
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    pub media_type: String,
    pub file_name: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub note: Option<String>,
}

const DOC_COLS: &str = "d.kind, d.version, d.sha256, b.size, d.media_type, d.file_name, d.created_at, d.created_by, d.note";

fn doc_row(r: &Row) -> rusqlite::Result<DocVersion> {
    Ok(DocVersion {
        kind: r.get(0)?,
        version: r.get(1)?,
        sha256: r.get(2)?,
        size: r.get(3)?,
        media_type: r.get(4)?,
        file_name: r.get(5)?,
        created_at: r.get(6)?,
        created_by: r.get(7)?,
        note: r.get(8)?,
    })
}

/// Every version of every document, oldest first.
pub fn documents(c: &Connection, key: &RequirementKey) -> Result<Vec<DocVersion>> {
    let mut st = c.prepare(&format!(
        "SELECT {DOC_COLS} FROM document d JOIN blob b ON b.sha256 = d.sha256 WHERE d.requirement = ?1 ORDER BY d.kind, d.version"
    ))?;
    let rows = st.query_map([key.to_string()], doc_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A version of a document (the latest when `version` is `None`) and its bytes.
pub fn document(
    c: &Connection,
    key: &RequirementKey,
    kind: DocKind,
    version: Option<i64>,
) -> Result<Option<(DocVersion, Vec<u8>)>> {
    let sql = format!(
        "SELECT {DOC_COLS}, b.data FROM document d JOIN blob b ON b.sha256 = d.sha256
         WHERE d.requirement = ?1 AND d.kind = ?2 AND (?3 IS NULL OR d.version = ?3)
         ORDER BY d.version DESC LIMIT 1"
    );
    Ok(c.query_row(&sql, params![key.to_string(), kind.as_str(), version], |r| {
        Ok((doc_row(r)?, r.get(9)?))
    })
    .optional()?)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Stores `bytes` as the next version of a document, content-addressed; returns `None` when
/// they equal the latest version (nothing to record).
#[allow(clippy::too_many_arguments)]
pub fn add_document_version(
    c: &Connection,
    key: &RequirementKey,
    kind: DocKind,
    bytes: &[u8],
    media_type: &str,
    file_name: Option<&str>,
    actor: &str,
    note: Option<&str>,
) -> Result<Option<i64>> {
    let sha = sha256_hex(bytes);
    let latest: Option<(i64, String)> = c
        .query_row(
            "SELECT version, sha256 FROM document WHERE requirement = ?1 AND kind = ?2 ORDER BY version DESC LIMIT 1",
            params![key.to_string(), kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((_, s)) = &latest {
        if *s == sha {
            return Ok(None);
        }
    }
    let version = latest.map(|(v, _)| v + 1).unwrap_or(1);
    c.execute(
        "INSERT OR IGNORE INTO blob (sha256, size, data) VALUES (?1, ?2, ?3)",
        params![sha, bytes.len() as i64, bytes],
    )?;
    c.execute(
        "INSERT INTO document (requirement, kind, version, sha256, media_type, file_name, created_at, created_by, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![key.to_string(), kind.as_str(), version, sha, media_type, file_name, clock::now(), actor, note],
    )?;
    Ok(Some(version))
}

// ---- reviews ------------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Comment {
    pub id: i64,
    pub author: String,
    pub created_at: String,
    pub section: Option<String>,
    pub body: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Review {
    pub id: i64,
    pub requirement: String,
    pub kind: ReviewKind,
    pub at: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub verdict: Option<Verdict>,
    pub verdict_at: Option<String>,
    pub verdict_by: Option<String>,
    pub note: Option<String>,
    /// The document version that carries this review's record, once it has a verdict.
    pub doc_version: Option<i64>,
    pub attendees: Vec<String>,
    pub comments: Vec<Comment>,
}

impl Review {
    /// Comments nobody has resolved yet.
    pub fn open_comments(&self) -> usize {
        self.comments.iter().filter(|c| c.resolved_at.is_none()).count()
    }
}

const REVIEW_COLS: &str = "id, requirement, kind, at, created_at, created_by, verdict, verdict_at, verdict_by, note, doc_version";

fn review_row(r: &Row) -> rusqlite::Result<Review> {
    Ok(Review {
        id: r.get(0)?,
        requirement: r.get(1)?,
        kind: r.get(2)?,
        at: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        verdict: r.get(6)?,
        verdict_at: r.get(7)?,
        verdict_by: r.get(8)?,
        note: r.get(9)?,
        doc_version: r.get(10)?,
        attendees: Vec::new(),
        comments: Vec::new(),
    })
}

fn fill_review(c: &Connection, mut rv: Review) -> Result<Review> {
    let mut st = c.prepare("SELECT user FROM review_attendee WHERE review = ?1 ORDER BY user")?;
    rv.attendees = st.query_map([rv.id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = c.prepare(
        "SELECT id, author, created_at, section, body, resolved_at, resolved_by FROM review_comment WHERE review = ?1 ORDER BY id",
    )?;
    rv.comments = st
        .query_map([rv.id], |r| {
            Ok(Comment {
                id: r.get(0)?,
                author: r.get(1)?,
                created_at: r.get(2)?,
                section: r.get(3)?,
                body: r.get(4)?,
                resolved_at: r.get(5)?,
                resolved_by: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rv)
}

pub fn review(c: &Connection, id: i64) -> Result<Review> {
    let rv = c
        .query_row(&format!("SELECT {REVIEW_COLS} FROM review WHERE id = ?1"), [id], review_row)
        .optional()?
        .ok_or_else(|| {
            XoneError::not_found(format!("no review #{id}"))
                .hint("list reviews with `xone review list KEY`")
        })?;
    fill_review(c, rv)
}

pub fn reviews(c: &Connection, key: Option<&RequirementKey>) -> Result<Vec<Review>> {
    let mut st = c.prepare(&format!(
        "SELECT {REVIEW_COLS} FROM review WHERE ?1 IS NULL OR requirement = ?1 ORDER BY id"
    ))?;
    let rows = st
        .query_map([key.map(|k| k.to_string())], review_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|r| fill_review(c, r)).collect()
}

pub fn insert_review(
    c: &Connection,
    key: &RequirementKey,
    kind: ReviewKind,
    at: Option<&str>,
    attendees: &[String],
    actor: &str,
) -> Result<i64> {
    c.execute(
        "INSERT INTO review (requirement, kind, at, created_at, created_by, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, lower(hex(randomblob(8))))",
        params![key.to_string(), kind, at, clock::now(), actor],
    )?;
    let id = c.last_insert_rowid();
    for a in attendees {
        c.execute(
            "INSERT OR IGNORE INTO review_attendee (review, user) VALUES (?1, ?2)",
            params![id, a],
        )?;
    }
    Ok(id)
}

pub fn insert_comment(
    c: &Connection,
    review: i64,
    author: &str,
    section: Option<&str>,
    body: &str,
) -> Result<i64> {
    c.execute(
        "INSERT INTO review_comment (review, author, created_at, section, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![review, author, clock::now(), section, body],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn resolve_comment(c: &Connection, review: i64, comment: i64, actor: &str) -> Result<bool> {
    let found: Option<Option<String>> = c
        .query_row(
            "SELECT resolved_at FROM review_comment WHERE id = ?1 AND review = ?2",
            params![comment, review],
            |r| r.get(0),
        )
        .optional()?;
    match found {
        None => Err(XoneError::not_found(format!("review #{review} has no comment {comment}"))
            .hint(format!("see its comments with `xone review show {review}`"))),
        Some(Some(_)) => Ok(false),
        Some(None) => {
            c.execute(
                "UPDATE review_comment SET resolved_at = ?2, resolved_by = ?3 WHERE id = ?1",
                params![comment, clock::now(), actor],
            )?;
            Ok(true)
        }
    }
}

pub fn set_verdict(
    c: &Connection,
    review: i64,
    verdict: Verdict,
    note: Option<&str>,
    actor: &str,
    doc_version: Option<i64>,
) -> Result<()> {
    c.execute(
        "UPDATE review SET verdict = ?2, verdict_at = ?3, verdict_by = ?4, note = ?5, doc_version = ?6 WHERE id = ?1",
        params![review, verdict, clock::now(), actor, note, doc_version],
    )?;
    Ok(())
}

/// What names a review on every machine (its number is this machine's own).
pub fn review_origin(c: &Connection, id: i64) -> Result<String> {
    Ok(c.query_row("SELECT coalesce(origin, '') FROM review WHERE id = ?1", [id], |r| r.get(0))?)
}

/// The review of that name here: its id and whether it has a verdict.
pub fn review_by_origin(c: &Connection, origin: &str) -> Result<Option<(i64, bool)>> {
    Ok(c.query_row("SELECT id, verdict IS NOT NULL FROM review WHERE origin = ?1", [origin], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()?)
}

/// Records a review opened elsewhere, read back from the tracker; `None` when it is here.
pub fn insert_open_review(
    c: &Connection,
    key: &RequirementKey,
    kind: ReviewKind,
    by: &str,
    at: &str,
    origin: &str,
) -> Result<Option<i64>> {
    if review_by_origin(c, origin)?.is_some() {
        return Ok(None);
    }
    c.execute(
        "INSERT INTO review (requirement, kind, created_at, created_by, origin) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.to_string(), kind, at, by, origin],
    )?;
    Ok(Some(c.last_insert_rowid()))
}

/// Gives a review opened elsewhere the verdict given elsewhere, as given then.
pub fn set_verdict_as_given(
    c: &Connection,
    review: i64,
    verdict: Verdict,
    by: &str,
    at: &str,
) -> Result<()> {
    c.execute(
        "UPDATE review SET verdict = ?2, verdict_at = ?3, verdict_by = ?4 WHERE id = ?1 AND verdict IS NULL",
        params![review, verdict, at, by],
    )?;
    Ok(())
}

/// Records a review closed elsewhere, read back from the tracker: `None` when a review of
/// that kind with that verdict, by that person at that time, is here already.
pub fn insert_closed_review(
    c: &Connection,
    key: &RequirementKey,
    kind: ReviewKind,
    verdict: Verdict,
    by: &str,
    at: &str,
) -> Result<Option<i64>> {
    let known: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM review WHERE requirement = ?1 AND kind = ?2 AND verdict_by = ?3 AND verdict_at = ?4)",
        params![key.to_string(), kind, by, at],
        |r| r.get(0),
    )?;
    if known {
        return Ok(None);
    }
    c.execute(
        "INSERT INTO review (requirement, kind, created_at, created_by, verdict, verdict_at, verdict_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?4)",
        params![key.to_string(), kind, at, by, verdict],
    )?;
    Ok(Some(c.last_insert_rowid()))
}

/// The latest review of a kind: its id and verdict.
pub fn latest_review(
    c: &Connection,
    key: &RequirementKey,
    kind: ReviewKind,
) -> Result<Option<(i64, Option<Verdict>)>> {
    Ok(c.query_row(
        "SELECT id, verdict FROM review WHERE requirement = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1",
        params![key.to_string(), kind],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

// ---- branches -----------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct BranchRecord {
    pub requirement: String,
    pub repo: String,
    #[serde(skip)]
    pub repo_id: i64,
    pub name: String,
    pub base: String,
    pub created_at: String,
}

pub fn branches(
    c: &Connection,
    key: Option<&RequirementKey>,
    project: Option<&ProjectKey>,
) -> Result<Vec<BranchRecord>> {
    let mut st = c.prepare(
        "SELECT b.requirement, r.name, r.id, b.name, b.base, b.created_at
         FROM branch b JOIN repo r ON r.id = b.repo JOIN requirement q ON q.key = b.requirement
         WHERE (?1 IS NULL OR b.requirement = ?1) AND (?2 IS NULL OR q.project = ?2)
         ORDER BY q.project, q.seq, r.name",
    )?;
    let rows = st
        .query_map(params![key.map(|k| k.to_string()), project.map(|p| p.as_str())], |r| {
            Ok(BranchRecord {
                requirement: r.get(0)?,
                repo: r.get(1)?,
                repo_id: r.get(2)?,
                name: r.get(3)?,
                base: r.get(4)?,
                created_at: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn record_branch(
    c: &Connection,
    key: &RequirementKey,
    repo_id: i64,
    name: &str,
    base: &str,
) -> Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO branch (requirement, repo, name, base, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.to_string(), repo_id, name, base, clock::now()],
    )?;
    Ok(())
}

pub fn forget_branch(c: &Connection, key: &RequirementKey, repo_id: i64) -> Result<()> {
    c.execute(
        "DELETE FROM branch WHERE requirement = ?1 AND repo = ?2",
        params![key.to_string(), repo_id],
    )?;
    Ok(())
}

// ---- sign-offs ----------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Signoff {
    pub user: String,
    pub at: String,
    pub note: Option<String>,
    /// The requirement's state then (`gray`: the product manager's acceptance); unknown for
    /// sign-offs recorded before it was kept.
    pub stage: Option<String>,
}

pub fn signoffs(c: &Connection, key: &RequirementKey) -> Result<Vec<Signoff>> {
    let mut st =
        c.prepare("SELECT user, at, note, stage FROM signoff WHERE requirement = ?1 ORDER BY id")?;
    let rows = st
        .query_map([key.to_string()], |r| {
            Ok(Signoff { user: r.get(0)?, at: r.get(1)?, note: r.get(2)?, stage: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Records a sign-off now; returns when.
pub fn insert_signoff(
    c: &Connection,
    key: &RequirementKey,
    user: &str,
    note: Option<&str>,
    stage: &str,
) -> Result<String> {
    let at = clock::now();
    insert_signoff_at(c, key, user, note, stage, &at)?;
    Ok(at)
}

/// Records a sign-off given at `at` (read back from the tracker); `false` when it is here
/// already.
pub fn insert_signoff_at(
    c: &Connection,
    key: &RequirementKey,
    user: &str,
    note: Option<&str>,
    stage: &str,
    at: &str,
) -> Result<bool> {
    let known: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM signoff WHERE requirement = ?1 AND user = ?2 AND (stage = ?3 OR stage IS NULL) AND at = ?4)",
        params![key.to_string(), user, stage, at],
        |r| r.get(0),
    )?;
    if known {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO signoff (requirement, user, at, note, stage) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.to_string(), user, at, note, stage],
    )?;
    Ok(true)
}

// ---- events -------------------------------------------------------------------------------

#[derive(Clone, Debug, Default, Serialize)]
pub struct Event {
    pub id: i64,
    pub project: String,
    pub requirement: Option<String>,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: Option<String>,
    pub reason: Option<String>,
    pub forced: bool,
}

/// Appends an event; the journal is never edited.
pub fn record(c: &Connection, e: &Event) -> Result<()> {
    c.execute(
        "INSERT INTO event (project, requirement, at, actor, action, from_status, to_status, detail, reason, forced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![e.project, e.requirement, clock::now(), e.actor, e.action, e.from, e.to, e.detail, e.reason, e.forced],
    )?;
    Ok(())
}

pub fn events(c: &Connection, key: &RequirementKey) -> Result<Vec<Event>> {
    let mut st = c.prepare(
        "SELECT id, project, requirement, at, actor, action, from_status, to_status, detail, reason, forced
         FROM event WHERE requirement = ?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([key.to_string()], |r| {
            Ok(Event {
                id: r.get(0)?,
                project: r.get(1)?,
                requirement: r.get(2)?,
                at: r.get(3)?,
                actor: r.get(4)?,
                action: r.get(5)?,
                from: r.get(6)?,
                to: r.get(7)?,
                detail: r.get(8)?,
                reason: r.get(9)?,
                forced: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// ---- integrations -------------------------------------------------------------------------

/// One repository's part of one `branch integrate` run.
pub struct NewIntegration<'a> {
    pub project: &'a ProjectKey,
    pub env: &'a str,
    pub repo_id: i64,
    pub branch: &'a str,
    pub base: &'a str,
    pub base_sha: &'a str,
    pub sha: Option<&'a str>,
    pub status: IntegrationStatus,
    pub detail: Option<&'a str>,
    pub actor: &'a str,
}

pub fn insert_integration(c: &Connection, i: &NewIntegration<'_>) -> Result<i64> {
    c.execute(
        "INSERT INTO integration (project, env, repo, branch, base, base_sha, sha, status, detail, at, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            i.project.as_str(),
            i.env,
            i.repo_id,
            i.branch,
            i.base,
            i.base_sha,
            i.sha,
            i.status,
            i.detail,
            clock::now(),
            i.actor
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn insert_integration_item(
    c: &Connection,
    integration: i64,
    key: &str,
    feature_branch: &str,
    sha: &str,
) -> Result<()> {
    c.execute(
        "INSERT INTO integration_item (integration, requirement, feature_branch, sha) VALUES (?1, ?2, ?3, ?4)",
        params![integration, key, feature_branch, sha],
    )?;
    Ok(())
}

/// An integration that took in a requirement's branch.
#[derive(Clone, Debug, Serialize)]
pub struct IntegrationRecord {
    pub id: i64,
    pub env: String,
    pub repo: String,
    pub branch: String,
    pub base: String,
    pub sha: Option<String>,
    pub feature_sha: String,
    pub at: String,
    pub actor: String,
}

/// Every requirement whose branch was integrated in repository `repo_id`, with the commit of
/// its branch that was taken in: (requirement, feature commit).
pub fn integrated_in_repo(c: &Connection, repo_id: i64) -> Result<Vec<(String, String)>> {
    let mut st = c.prepare(
        "SELECT DISTINCT it.requirement, it.sha FROM integration_item it
         JOIN integration i ON i.id = it.integration WHERE i.repo = ?1",
    )?;
    let rows = st
        .query_map([repo_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The integrations that took in `key`'s branches, oldest first.
pub fn integrations_of(c: &Connection, key: &RequirementKey) -> Result<Vec<IntegrationRecord>> {
    let mut st = c.prepare(
        "SELECT i.id, i.env, r.name, i.branch, i.base, i.sha, it.sha, i.at, i.actor
         FROM integration_item it JOIN integration i ON i.id = it.integration JOIN repo r ON r.id = i.repo
         WHERE it.requirement = ?1 ORDER BY i.id",
    )?;
    let rows = st
        .query_map([key.to_string()], |r| {
            Ok(IntegrationRecord {
                id: r.get(0)?,
                env: r.get(1)?,
                repo: r.get(2)?,
                branch: r.get(3)?,
                base: r.get(4)?,
                sha: r.get(5)?,
                feature_sha: r.get(6)?,
                at: r.get(7)?,
                actor: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Requirements of a project in any of `statuses`, in key order.
pub fn requirements_in(
    c: &Connection,
    project: &ProjectKey,
    statuses: &[Status],
) -> Result<Vec<Requirement>> {
    let mut st =
        c.prepare(&format!("SELECT {REQ_COLS} FROM requirement WHERE project = ?1 ORDER BY seq"))?;
    let rows =
        st.query_map([project.as_str()], requirement_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().filter(|r| statuses.contains(&r.status)).collect())
}

/// The project's requirements updated at or after `since` (RFC 3339 UTC), oldest first.
#[cfg_attr(not(test), allow(dead_code))]
pub fn requirements_changed_since(
    c: &Connection,
    project: &ProjectKey,
    since: &str,
) -> Result<Vec<RequirementKey>> {
    let mut st = c.prepare(
        "SELECT key FROM requirement WHERE project = ?1 AND updated_at >= ?2
         ORDER BY updated_at, seq",
    )?;
    let keys = st
        .query_map(params![project.as_str(), since], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    keys.into_iter().map(|k| k.parse().map_err(XoneError::internal)).collect()
}
