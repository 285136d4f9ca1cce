//! Deployments, rollbacks and post-release watches in the state database: the local journal
//! of what xone did to each cluster. The cluster's own ReplicaSets and annotations stay the
//! shared truth; `deploy status` reads them and settles these records.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::kinds::{DeployKind, DeployStatus, WatchStatus};
use crate::clock;
use crate::domain::date;
use crate::ui::{Result, XoneError};

/// One rollout xone started: a deploy of an image, or a rollback to an earlier revision.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Deploy {
    pub id: i64,
    pub project: String,
    pub app: String,
    pub env: String,
    pub kind: DeployKind,
    pub requirement: Option<String>,
    pub build: Option<i64>,
    pub image: String,
    /// The commit the image was built from, when a build made it.
    pub sha: Option<String>,
    pub context: String,
    pub namespace: String,
    pub status: DeployStatus,
    pub revision: Option<i64>,
    /// The revision the Deployment was at before, and its ReplicaSet, which keeps its name
    /// when later rollbacks renumber it.
    pub prev_revision: Option<i64>,
    pub prev_rs: Option<String>,
    pub detail: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub actor: String,
}

const COLS: &str = "id, project, app, env, kind, requirement, build, image, sha, context, namespace, status, revision, prev_revision, prev_rs, detail, started_at, finished_at, actor";

fn row(r: &Row) -> rusqlite::Result<Deploy> {
    Ok(Deploy {
        id: r.get(0)?,
        project: r.get(1)?,
        app: r.get(2)?,
        env: r.get(3)?,
        kind: r.get(4)?,
        requirement: r.get(5)?,
        build: r.get(6)?,
        image: r.get(7)?,
        sha: r.get(8)?,
        context: r.get(9)?,
        namespace: r.get(10)?,
        status: r.get(11)?,
        revision: r.get(12)?,
        prev_revision: r.get(13)?,
        prev_rs: r.get(14)?,
        detail: r.get(15)?,
        started_at: r.get(16)?,
        finished_at: r.get(17)?,
        actor: r.get(18)?,
    })
}

/// Records a rollout as started (status `rolling`), with this process's id so that a record
/// left by a killed process can be told apart from one still running.
pub fn start_deploy(c: &Connection, d: &Deploy) -> Result<i64> {
    c.execute(
        "INSERT INTO deploy (project, app, env, kind, requirement, build, image, sha, context, namespace, status, revision, prev_revision, prev_rs, detail, pid, started_at, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'rolling', ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            d.project,
            d.app,
            d.env,
            d.kind,
            d.requirement,
            d.build,
            d.image,
            d.sha,
            d.context,
            d.namespace,
            d.revision,
            d.prev_revision,
            d.prev_rs,
            d.detail,
            std::process::id(),
            clock::now(),
            d.actor
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Settles a rollout: its outcome, the revision it made and what happened.
pub fn finish_deploy(
    c: &Connection,
    id: i64,
    status: DeployStatus,
    revision: Option<i64>,
    detail: Option<&str>,
) -> Result<()> {
    let settled = !matches!(status, DeployStatus::Rolling | DeployStatus::Interrupted);
    let finished = settled.then(clock::now);
    c.execute(
        "UPDATE deploy SET status = ?2, revision = COALESCE(?3, revision), detail = COALESCE(?4, detail),
             finished_at = ?5, pid = NULL WHERE id = ?1",
        params![id, status, revision, detail, finished],
    )?;
    Ok(())
}

/// Dates a record read back from a cluster by when the cluster made it (`None`: now).
pub fn date_deploy(c: &Connection, id: i64, at: Option<&str>) -> Result<()> {
    if let Some(at) = at {
        c.execute(
            "UPDATE deploy SET started_at = ?2, finished_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
    }
    Ok(())
}

/// Rollouts whose process is gone while they were `rolling`: the cluster went on without a
/// watcher. They become `interrupted` until `deploy status` reads the outcome.
pub fn settle_abandoned_deploys(c: &Connection) -> Result<()> {
    let mut st =
        c.prepare("SELECT id, pid FROM deploy WHERE status = 'rolling' AND pid IS NOT NULL")?;
    let rows: Vec<(i64, i64)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    for (id, pid) in rows {
        if pid as u32 != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            c.execute("UPDATE deploy SET status = 'interrupted', pid = NULL WHERE id = ?1", [id])?;
        }
    }
    Ok(())
}

pub fn deploy(c: &Connection, id: i64) -> Result<Deploy> {
    c.query_row(&format!("SELECT {COLS} FROM deploy WHERE id = ?1"), [id], row)
        .optional()?
        .ok_or_else(|| XoneError::not_found(format!("no deployment #{id}")))
}

/// Rollouts of an app to an environment (or of every app and environment), newest first.
pub fn deploys(
    c: &Connection,
    project: Option<&str>,
    app: Option<&str>,
    env: Option<&str>,
    requirement: Option<&str>,
) -> Result<Vec<Deploy>> {
    let mut st = c.prepare(&format!(
        "SELECT {COLS} FROM deploy WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR app = ?2)
           AND (?3 IS NULL OR env = ?3) AND (?4 IS NULL OR requirement = ?4) ORDER BY id DESC"
    ))?;
    let rows = st
        .query_map(params![project, app, env, requirement], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A post-release watch of an app in an environment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Watch {
    pub id: i64,
    pub project: String,
    pub app: String,
    pub env: String,
    pub revision: Option<i64>,
    pub image: Option<String>,
    pub window_secs: i64,
    pub error_rate: f64,
    pub status: WatchStatus,
    pub detail: Option<String>,
    pub started_at: String,
    #[serde(skip)]
    pub started_unix: i64,
    pub finished_at: Option<String>,
    pub actor: String,
}

const WATCH_COLS: &str = "id, project, app, env, revision, image, window_secs, error_rate, status, detail, started_at, started_unix, finished_at, actor";

fn watch_row(r: &Row) -> rusqlite::Result<Watch> {
    Ok(Watch {
        id: r.get(0)?,
        project: r.get(1)?,
        app: r.get(2)?,
        env: r.get(3)?,
        revision: r.get(4)?,
        image: r.get(5)?,
        window_secs: r.get(6)?,
        error_rate: r.get(7)?,
        status: r.get(8)?,
        detail: r.get(9)?,
        started_at: r.get(10)?,
        started_unix: r.get(11)?,
        finished_at: r.get(12)?,
        actor: r.get(13)?,
    })
}

pub fn start_watch(c: &Connection, w: &Watch) -> Result<i64> {
    c.execute(
        "INSERT INTO watch (project, app, env, revision, image, window_secs, error_rate, status, started_at, started_unix, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'watching', ?8, ?9, ?10)",
        params![
            w.project,
            w.app,
            w.env,
            w.revision,
            w.image,
            w.window_secs,
            w.error_rate,
            date::rfc3339(w.started_unix),
            w.started_unix,
            w.actor
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn finish_watch(c: &Connection, id: i64, status: WatchStatus, detail: &str) -> Result<()> {
    c.execute(
        "UPDATE watch SET status = ?2, detail = ?3, finished_at = ?4 WHERE id = ?1",
        params![id, status, detail, clock::now()],
    )?;
    Ok(())
}

/// Watches of an app in an environment (or all of them), newest first.
pub fn watches(
    c: &Connection,
    project: &str,
    app: Option<&str>,
    env: Option<&str>,
) -> Result<Vec<Watch>> {
    let mut st = c.prepare(&format!(
        "SELECT {WATCH_COLS} FROM watch WHERE project = ?1 AND (?2 IS NULL OR app = ?2)
           AND (?3 IS NULL OR env = ?3) ORDER BY id DESC"
    ))?;
    let rows = st
        .query_map(params![project, app, env], watch_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// This machine's copy of a gray release's state, as the cluster's ConfigMap last had it.
pub fn save_gray(
    c: &Connection,
    project: &str,
    env: &str,
    g: &crate::domain::gray::Gray,
) -> Result<()> {
    let state = serde_json::to_string(g).map_err(|e| XoneError::internal(e.to_string()))?;
    // A release begun before its requirement moved to Jira names it by its old key.
    let requirement = match &g.requirement {
        Some(k) => {
            super::key_as_of(c, k, Some(&g.started_at))?.map(|k| k.to_string()).or(Some(k.clone()))
        }
        None => None,
    };
    c.execute(
        "INSERT INTO gray (project, app, env, started_at, requirement, phase, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project, app, env, started_at) DO UPDATE SET
             requirement = excluded.requirement, phase = excluded.phase,
             state = excluded.state, updated_at = excluded.updated_at",
        params![
            project,
            g.app,
            env,
            g.started_at,
            requirement,
            g.phase.to_string(),
            state,
            clock::now()
        ],
    )?;
    Ok(())
}

/// The gray releases this machine has seen of a requirement, newest first, with their
/// environments.
pub fn grays_of(
    c: &Connection,
    requirement: &str,
) -> Result<Vec<(String, crate::domain::gray::Gray)>> {
    let mut st = c.prepare(
        "SELECT env, state FROM gray WHERE requirement = ?1 ORDER BY started_at DESC, app",
    )?;
    let rows =
        st.query_map([requirement], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (env, state) = row?;
        let g = serde_json::from_str(&state).map_err(|e| {
            XoneError::new(crate::ui::Kind::Internal, "a gray release's stored state is unreadable")
                .cause(e)
        })?;
        out.push((env, g));
    }
    Ok(out)
}
