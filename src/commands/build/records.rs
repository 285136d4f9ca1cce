//! `xone build list|show|log`: the builds' records.

use super::super::Ctx;
use crate::domain::{ProjectKey, RequirementKey};
use crate::ops::build::{log_path, Policy};
use crate::ops::pipeline;
use crate::store::{self, Build, BuildKind, BuildStatus};
use crate::ui::{safe, safe_table, short_sha, table, Result, XoneError};

pub fn list(
    cx: &mut Ctx,
    app: Option<String>,
    project: Option<ProjectKey>,
    requirement: Option<RequirementKey>,
) -> Result<()> {
    let mut store = cx.store()?;
    store.write(|tx| store::settle_interrupted(tx))?;
    let app_id = match &app {
        Some(name) => Some(store::app(store.conn(), project.as_ref(), name)?.id),
        None => None,
    };
    if let Some(k) = &requirement {
        store::requirement(store.conn(), k)?;
    }
    let rows = store::builds(store.conn(), app_id, requirement.as_ref())?;
    if cx.ui.json {
        return cx.ui.print_json(&rows);
    }
    if rows.is_empty() {
        cx.ui.status("no builds yet: `xone build APP --requirement KEY`");
        return Ok(());
    }
    let mut t = vec![vec![
        "ID".into(),
        "APP".into(),
        "REF".into(),
        "SHA".into(),
        "STATUS".into(),
        "TESTS".into(),
        "COVERAGE".into(),
        "IMAGE".into(),
    ]];
    for b in &rows {
        t.push(build_row(cx, b));
    }
    write!(cx.ui.out(), "{}", table(&t))?;
    Ok(())
}

fn build_row(cx: &Ctx, b: &Build) -> Vec<String> {
    let status = match b.status {
        BuildStatus::Success => cx.ui.green("success"),
        BuildStatus::Failed | BuildStatus::Interrupted => cx.ui.red(b.status.as_str()),
        s => s.to_string(),
    };
    vec![
        b.id.to_string(),
        b.app.clone(),
        safe(&b.git_ref).into_owned(),
        safe(short_sha(&b.sha)).into_owned(),
        status,
        b.tests.as_ref().map(|t| format!("{}/{}", t.passed, t.total)).unwrap_or_else(|| "-".into()),
        b.coverage.map(|c| format!("{c:.1} %")).unwrap_or_else(|| "-".into()),
        safe(b.digest.as_deref().or(b.image.as_deref()).unwrap_or("-")).into_owned(),
    ]
}

pub fn show(cx: &mut Ctx, id: i64) -> Result<()> {
    // A pipeline it settles is told by the next command that changes something.
    cx.read_only();
    let mut store = cx.store()?;
    store.write(|tx| store::settle_interrupted(tx))?;
    let b = store::build(store.conn(), id)?;
    // A pipeline not seen to its end is asked about again.
    if b.kind == BuildKind::Pipeline && b.status.is_unsettled() {
        if let Some(id) = b.pipeline_id {
            let policy = Policy::read(cx.config()?)?;
            let forges = cx.forges()?;
            pipeline::refresh(&mut store, &forges, &policy, &b, id)?;
        }
    }
    let b = store::build(store.conn(), id)?;
    if cx.ui.json {
        return cx.ui.print_json(&b);
    }
    let mut rows = vec![
        vec!["build".to_string(), format!("{} ({}, {})", b.id, b.kind, b.status)],
        vec!["app".to_string(), format!("{} ({})", b.app, b.project)],
        vec!["requirement".to_string(), b.requirement.clone().unwrap_or_else(|| "-".into())],
        vec!["commit".to_string(), format!("{} at {}", b.sha, b.git_ref)],
        vec![
            "tests".to_string(),
            b.tests
                .as_ref()
                .map(|t| {
                    format!(
                        "{} total, {} passed, {} failed, {} skipped",
                        t.total, t.passed, t.failed, t.skipped
                    )
                })
                .unwrap_or_else(|| "not measured".into()),
        ],
        vec![
            "coverage".to_string(),
            b.coverage.map(|c| format!("{c:.2} %")).unwrap_or_else(|| "not measured".into()),
        ],
    ];
    for g in &b.gates {
        let verdict = match (g.passed, g.forced) {
            (true, _) => "passed",
            (false, true) => "forced",
            (false, false) => "failed",
        };
        rows.push(vec![
            format!("gate {}", g.name),
            format!("{verdict}: {} (threshold {})", g.actual, g.threshold),
        ]);
    }
    rows.push(vec!["image".to_string(), b.image.clone().unwrap_or_else(|| "-".into())]);
    rows.push(vec!["digest".to_string(), b.digest.clone().unwrap_or_else(|| "-".into())]);
    if let Some(d) = &b.detail {
        rows.push(vec!["detail".to_string(), d.clone()]);
    }
    rows.push(vec![
        "when".to_string(),
        format!(
            "{} to {} by {}",
            cx.ui.when(&b.started_at),
            b.finished_at.as_deref().map(|f| cx.ui.when(f)).unwrap_or_else(|| "…".into()),
            b.actor
        ),
    ]);
    write!(cx.ui.out(), "{}", safe_table(&rows))?;
    Ok(())
}

pub fn log(cx: &mut Ctx, id: i64, job: Option<String>) -> Result<()> {
    let store = cx.store()?;
    let b = store::build(store.conn(), id)?;
    if job.is_some() && b.kind == BuildKind::Local {
        return Err(XoneError::usage(format!(
            "build {id} is a local build: it has no pipeline jobs"
        ))
        .hint(format!("its whole output: xone build log {id}")));
    }
    if let (Some(name), Some(_)) = (&job, b.pipeline_id) {
        let forges = cx.forges()?;
        let trace = pipeline::job_log(&store, &forges, &b, name)?;
        write_log(cx, trace.as_bytes())?;
        return Ok(());
    }
    if b.pipeline_id.is_some() {
        // Each job's log under its name, in stage order, as the pipeline's page shows them.
        let forges = cx.forges()?;
        let mut first = true;
        return pipeline::each_job_log(&store, &forges, &b, |j, trace| {
            let head = format!("==> {} ({}): {} <==", j.name, j.stage, j.status);
            let gap = if first { "" } else { "\n" };
            first = false;
            let head = cx.ui.bold(&safe(&head));
            writeln!(cx.ui.out(), "{gap}{head}")?;
            match trace {
                Ok(t) if t.is_empty() => writeln!(cx.ui.out(), "(no log: the job has not run)")?,
                Ok(t) => {
                    write_log(cx, t.as_bytes())?;
                    if !cx.ui.stdout_tty && !t.ends_with('\n') {
                        writeln!(cx.ui.out())?;
                    }
                }
                Err(e) => writeln!(cx.ui.out(), "(log unavailable: {})", safe(&e.message))?,
            }
            cx.ui.flush()
        });
    }
    let text = std::fs::read(log_path(id)).map_err(|_| {
        XoneError::not_found(format!("build {id} has no log on this machine"))
            .hint("logs are kept where the build ran")
    })?;
    write_log(cx, &text)
}

/// A log as it was kept, into a file or a pipe; on a terminal without its colour codes and
/// carriage-return progress, and with no other control character left to act.
fn write_log(cx: &mut Ctx, bytes: &[u8]) -> Result<()> {
    if cx.ui.stdout_tty {
        let text = pipeline::plain(&String::from_utf8_lossy(bytes));
        writeln!(cx.ui.out(), "{}", safe(&text))?;
    } else {
        cx.ui.out().write_all(bytes)?;
    }
    Ok(())
}
