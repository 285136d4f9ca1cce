//! Apps and their builds in the state database.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::kinds::{BuildKind, BuildStatus};
use crate::clock;
pub use crate::domain::reports::Tests;
use crate::domain::{ProjectKey, RequirementKey};
use crate::ui::{Result, XoneError};

/// A deployable service of a project, built from one of its repositories.
#[derive(Clone, Debug, Default, Serialize)]
pub struct App {
    #[serde(skip)]
    pub id: i64,
    pub project: String,
    pub name: String,
    pub repo: String,
    #[serde(skip)]
    pub repo_id: i64,
    /// `REGISTRY/NAME` without a tag; `None`: taken from the environment's registry later.
    pub image: Option<String>,
    pub dockerfile: String,
    pub context: String,
    pub port: Option<i64>,
    pub health: Option<String>,
    /// Replicas per environment.
    pub replicas: BTreeMap<String, i64>,
    pub test_cmd: Option<String>,
    /// Where the test command leaves its JUnit XML report, relative to the repository.
    pub junit: String,
    /// Where the test command leaves its Cobertura XML coverage report.
    pub cobertura: String,
    /// A directory of the repository with the app's own Kubernetes manifests.
    pub manifests: Option<String>,
    /// PromQL label matchers of its alerts and series, overriding the environment's.
    pub alert_labels: Option<String>,
    /// PromQL of its HTTP error ratio, overriding the environment's.
    pub error_query: Option<String>,
    pub added_at: String,
}

const APP_COLS: &str = "a.id, a.project, a.name, r.name, a.repo, a.image, a.dockerfile, a.context, a.port, a.health, a.replicas, a.test_cmd, a.junit, a.cobertura, a.added_at, a.manifests, a.alert_labels, a.error_query";

fn app_row(r: &Row) -> rusqlite::Result<App> {
    let replicas: String = r.get(10)?;
    Ok(App {
        id: r.get(0)?,
        project: r.get(1)?,
        name: r.get(2)?,
        repo: r.get(3)?,
        repo_id: r.get(4)?,
        image: r.get(5)?,
        dockerfile: r.get(6)?,
        context: r.get(7)?,
        port: r.get(8)?,
        health: r.get(9)?,
        replicas: serde_json::from_str(&replicas).unwrap_or_default(),
        test_cmd: r.get(11)?,
        junit: r.get(12)?,
        cobertura: r.get(13)?,
        added_at: r.get(14)?,
        manifests: r.get(15)?,
        alert_labels: r.get(16)?,
        error_query: r.get(17)?,
    })
}

pub fn apps(c: &Connection, project: &ProjectKey) -> Result<Vec<App>> {
    let mut st = c.prepare(&format!(
        "SELECT {APP_COLS} FROM app a JOIN repo r ON r.id = a.repo WHERE a.project = ?1 ORDER BY a.name"
    ))?;
    let rows = st.query_map([project.as_str()], app_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The app named `name`: in `project` if given, else in the only project that has one.
pub fn app(c: &Connection, project: Option<&ProjectKey>, name: &str) -> Result<App> {
    let mut st = c.prepare(&format!(
        "SELECT {APP_COLS} FROM app a JOIN repo r ON r.id = a.repo
         WHERE a.name = ?1 AND (?2 IS NULL OR a.project = ?2) ORDER BY a.project"
    ))?;
    let found = st
        .query_map(params![name, project.map(|p| p.as_str())], app_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one row")),
        0 => Err(XoneError::not_found(match project {
            Some(p) => format!("project {p} has no app {name}"),
            None => format!("no app {name}"),
        })
        .hint("add it with `xone project app add KEY APP --repo REPO`")),
        _ => {
            let projects: Vec<String> = found.iter().map(|a| a.project.clone()).collect();
            Err(XoneError::usage(format!(
                "app {name} exists in several projects: {}",
                projects.join(", ")
            ))
            .hint("name the project with -p KEY"))
        }
    }
}

pub fn insert_app(c: &Connection, a: &App) -> Result<()> {
    let exists: bool = c
        .query_row(
            "SELECT 1 FROM app WHERE project = ?1 AND name = ?2",
            params![a.project, a.name],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if exists {
        return Err(XoneError::conflict(format!(
            "project {} already has an app {}",
            a.project, a.name
        ))
        .hint("pick another name, or see it with `xone project app show`"));
    }
    c.execute(
        "INSERT INTO app (project, name, repo, image, dockerfile, context, port, health, replicas, test_cmd, junit, cobertura, added_at, manifests, alert_labels, error_query)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            a.project,
            a.name,
            a.repo_id,
            a.image,
            a.dockerfile,
            a.context,
            a.port,
            a.health,
            serde_json::to_string(&a.replicas).unwrap_or_else(|_| "{}".into()),
            a.test_cmd,
            a.junit,
            a.cobertura,
            clock::now(),
            a.manifests,
            a.alert_labels,
            a.error_query
        ],
    )?;
    Ok(())
}

/// Changes an app's settings (all of them, as `a` holds them).
pub fn update_app(c: &Connection, a: &App) -> Result<()> {
    c.execute(
        "UPDATE app SET repo = ?3, image = ?4, dockerfile = ?5, context = ?6, port = ?7, health = ?8,
             replicas = ?9, test_cmd = ?10, junit = ?11, cobertura = ?12, manifests = ?13,
             alert_labels = ?14, error_query = ?15
         WHERE project = ?1 AND name = ?2",
        params![
            a.project,
            a.name,
            a.repo_id,
            a.image,
            a.dockerfile,
            a.context,
            a.port,
            a.health,
            serde_json::to_string(&a.replicas).unwrap_or_else(|_| "{}".into()),
            a.test_cmd,
            a.junit,
            a.cobertura,
            a.manifests,
            a.alert_labels,
            a.error_query
        ],
    )?;
    Ok(())
}

/// Removes an app and its builds' records; deployment records stay, without their build.
/// Returns how many builds went with it.
pub fn delete_app(c: &Connection, a: &App) -> Result<usize> {
    c.execute(
        "UPDATE deploy SET build = NULL WHERE build IN (SELECT id FROM build WHERE app = ?1)",
        [a.id],
    )?;
    let builds = c.execute("DELETE FROM build WHERE app = ?1", [a.id])?;
    c.execute("DELETE FROM app WHERE id = ?1", [a.id])?;
    Ok(builds)
}

/// Removes an environment's settings; the records of what was deployed to it stay.
pub fn delete_env(c: &Connection, project: &ProjectKey, name: &str) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM env WHERE project = ?1 AND name = ?2",
        params![project.as_str(), name],
    )? > 0)
}

/// One gate a build was measured against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub name: String,
    pub passed: bool,
    pub actual: serde_json::Value,
    pub threshold: serde_json::Value,
    pub forced: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Build {
    pub id: i64,
    pub app: String,
    pub project: String,
    pub requirement: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub kind: BuildKind,
    pub status: BuildStatus,
    pub pipeline_id: Option<i64>,
    pub pipeline_url: Option<String>,
    pub tests: Option<Tests>,
    pub coverage: Option<f64>,
    pub gates: Vec<Gate>,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub detail: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub actor: String,
}

const BUILD_COLS: &str = "b.id, a.name, a.project, b.requirement, b.ref, b.sha, b.kind, b.status, b.pipeline_id, b.pipeline_url, b.tests, b.coverage, b.gates, b.image, b.digest, b.detail, b.started_at, b.finished_at, b.actor";

fn build_row(r: &Row) -> rusqlite::Result<Build> {
    let tests: Option<String> = r.get(10)?;
    let gates: String = r.get(12)?;
    Ok(Build {
        id: r.get(0)?,
        app: r.get(1)?,
        project: r.get(2)?,
        requirement: r.get(3)?,
        git_ref: r.get(4)?,
        sha: r.get(5)?,
        kind: r.get(6)?,
        status: r.get(7)?,
        pipeline_id: r.get(8)?,
        pipeline_url: r.get(9)?,
        tests: tests.and_then(|t| serde_json::from_str(&t).ok()),
        coverage: r.get(11)?,
        gates: serde_json::from_str(&gates).unwrap_or_default(),
        image: r.get(13)?,
        digest: r.get(14)?,
        detail: r.get(15)?,
        started_at: r.get(16)?,
        finished_at: r.get(17)?,
        actor: r.get(18)?,
    })
}

/// Records a build as started, running in process `pid`; returns its id.
pub fn start_build(
    c: &Connection,
    app: &App,
    requirement: Option<&RequirementKey>,
    git_ref: &str,
    sha: &str,
    kind: BuildKind,
    actor: &str,
) -> Result<i64> {
    c.execute(
        "INSERT INTO build (app, requirement, ref, sha, kind, status, pid, started_at, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8)",
        params![
            app.id,
            requirement.map(|k| k.to_string()),
            git_ref,
            sha,
            kind,
            std::process::id(),
            clock::now(),
            actor
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// A build's outcome, written once it is known.
pub struct BuildOutcome<'a> {
    pub status: BuildStatus,
    pub tests: Option<&'a Tests>,
    pub coverage: Option<f64>,
    pub gates: &'a [Gate],
    pub image: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub detail: Option<&'a str>,
}

pub fn finish_build(c: &Connection, id: i64, o: &BuildOutcome) -> Result<()> {
    c.execute(
        "UPDATE build SET status = ?2, tests = ?3, coverage = ?4, gates = ?5, image = ?6, digest = ?7,
                          detail = ?8, finished_at = ?9, pid = NULL
         WHERE id = ?1",
        params![
            id,
            o.status,
            o.tests.map(|t| serde_json::to_string(t).unwrap_or_default()),
            o.coverage,
            serde_json::to_string(o.gates).unwrap_or_else(|_| "[]".into()),
            o.image,
            o.digest,
            o.detail,
            clock::now()
        ],
    )?;
    Ok(())
}

/// Notes the pipeline a build follows.
pub fn set_pipeline(c: &Connection, id: i64, pipeline: i64, url: Option<&str>) -> Result<()> {
    c.execute(
        "UPDATE build SET pipeline_id = ?2, pipeline_url = ?3 WHERE id = ?1",
        params![id, pipeline, url],
    )?;
    Ok(())
}

/// A pipeline build that xone stops following (it runs on; `build show` picks it up).
pub fn detach_build(c: &Connection, id: i64, status: BuildStatus) -> Result<()> {
    c.execute("UPDATE build SET pid = NULL, status = ?2 WHERE id = ?1", params![id, status])?;
    Ok(())
}

/// Marks builds whose xone process is gone while still `running` as `interrupted` (Ctrl-C, a
/// closed terminal). A pipeline goes on running on GitLab: `build show` picks it up again.
pub fn settle_interrupted(c: &Connection) -> Result<usize> {
    let mut st =
        c.prepare("SELECT id, pid FROM build WHERE status = 'running' AND pid IS NOT NULL")?;
    let running: Vec<(i64, Option<i64>)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut n = 0;
    for (id, pid) in running {
        let alive = pid.is_some_and(|p| {
            p as u32 == std::process::id() || std::path::Path::new(&format!("/proc/{p}")).exists()
        });
        if !alive {
            n += c.execute(
                "UPDATE build SET status = 'interrupted', finished_at = ?2, pid = NULL,
                        detail = coalesce(detail, 'the build was interrupted before it finished')
                 WHERE id = ?1 AND status = 'running'",
                params![id, clock::now()],
            )?;
        }
    }
    Ok(n)
}

pub fn build(c: &Connection, id: i64) -> Result<Build> {
    c.query_row(
        &format!("SELECT {BUILD_COLS} FROM build b JOIN app a ON a.id = b.app WHERE b.id = ?1"),
        [id],
        build_row,
    )
    .optional()?
    .ok_or_else(|| {
        XoneError::not_found(format!("no build {id}")).hint("list builds with `xone build list`")
    })
}

/// Builds, newest first: of one app, one requirement, or all.
pub fn builds(
    c: &Connection,
    app: Option<i64>,
    requirement: Option<&RequirementKey>,
) -> Result<Vec<Build>> {
    let mut st = c.prepare(&format!(
        "SELECT {BUILD_COLS} FROM build b JOIN app a ON a.id = b.app
         WHERE (?1 IS NULL OR b.app = ?1) AND (?2 IS NULL OR b.requirement = ?2)
         ORDER BY b.id DESC"
    ))?;
    let rows = st
        .query_map(params![app, requirement.map(|k| k.to_string())], build_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Names of every app, for completion.
pub fn app_names(c: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = c.prepare("SELECT name, project FROM app ORDER BY name")?;
    let rows =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// An environment of a project: where its apps run and what watches them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Env {
    pub project: String,
    pub name: String,
    pub context: String,
    pub namespace: String,
    pub prometheus: Option<String>,
    pub registry: Option<String>,
    pub smoke: Option<String>,
    /// PromQL label matchers of its apps' alerts and series (`{app}`, `{namespace}`, `{env}`
    /// are filled in); `None`: `app="{app}",namespace="{namespace}"`.
    pub alert_labels: Option<String>,
    /// PromQL of an app's HTTP error ratio; `None`: Micrometer's 5xx share.
    pub error_query: Option<String>,
    pub set_at: String,
}

pub fn envs(c: &Connection, project: &ProjectKey) -> Result<Vec<Env>> {
    let mut st = c.prepare(
        "SELECT project, name, context, namespace, prometheus, registry, smoke, set_at, alert_labels, error_query FROM env
         WHERE project = ?1 ORDER BY CASE name WHEN 'daily' THEN 0 WHEN 'test' THEN 1 WHEN 'gray' THEN 2 WHEN 'prod' THEN 3 ELSE 4 END, name",
    )?;
    let rows = st
        .query_map([project.as_str()], |r| {
            Ok(Env {
                project: r.get(0)?,
                name: r.get(1)?,
                context: r.get(2)?,
                namespace: r.get(3)?,
                prometheus: r.get(4)?,
                registry: r.get(5)?,
                smoke: r.get(6)?,
                set_at: r.get(7)?,
                alert_labels: r.get(8)?,
                error_query: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Sets an environment whole (a new one, or every setting of an existing one).
pub fn set_env(c: &Connection, e: &Env) -> Result<()> {
    c.execute(
        "INSERT INTO env (project, name, context, namespace, prometheus, registry, smoke, set_at, alert_labels, error_query)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (project, name) DO UPDATE SET context = ?3, namespace = ?4, prometheus = ?5,
             registry = ?6, smoke = ?7, set_at = ?8, alert_labels = ?9, error_query = ?10",
        params![
            e.project,
            e.name,
            e.context,
            e.namespace,
            e.prometheus,
            e.registry,
            e.smoke,
            clock::now(),
            e.alert_labels,
            e.error_query
        ],
    )?;
    Ok(())
}

/// Environment names, for completion.
pub fn env_names(c: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = c.prepare("SELECT DISTINCT name, project FROM env ORDER BY name")?;
    let rows =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
