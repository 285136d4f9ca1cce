//! Pipeline builds on GitLab CI: the pipeline started on the ref, followed with backoff and
//! a line per job, the failing jobs' log tails shown, its test report and coverage held to the
//! gates; a pipeline not followed to its end is picked up again later.

use serde_json::json;

use super::build::{app_and_repo, finish, gate_error, Log, Policy, Subject};
use super::Scope;
use crate::adapters::gitlab::{self, GitLab, Job};
use crate::adapters::Forges;
use crate::store::{
    self, App, Build, BuildKind, BuildOutcome, BuildStatus, Gate, RepoKind, Store, Tests,
};
use crate::ui::{Kind, Result, Ui, XoneError};

/// How a pipeline build ended, as far as xone followed it.
pub enum Pipeline {
    /// Started and not waited for: `build show` picks it up.
    Started(Build),
    /// Finished, and its gates passed (or were forced).
    Finished(Build),
}

/// A build on GitLab CI: the pipeline is started on the ref and, with `wait`, followed to its
/// end (one line per job state change, the failing jobs' log tails), then its test report
/// and coverage meet the gates.
#[allow(clippy::too_many_arguments)]
pub fn run(
    scope: &Scope,
    store: &mut Store,
    forges: &Forges,
    s: &Subject,
    forced: Option<String>,
    wait: bool,
    policy: &Policy,
    actor: &str,
) -> Result<Pipeline> {
    if forced.is_some() && !wait {
        return Err(XoneError::usage("--force judges a finished pipeline: add --wait")
            .hint("or look at the pipeline later with `xone build show ID`"));
    }
    if s.repo.kind != RepoKind::Gitlab {
        return Err(XoneError::gate(format!(
            "{} is not on GitLab: pipelines run on GitLab CI",
            s.repo.name
        ))
        .hint("build it locally instead: --local"));
    }
    let start_timeout = scope.config.duration("build.start_timeout");
    let gl = forges.gitlab()?;
    let sha = gl.commit_of(&s.repo, &s.git_ref)?;
    let pipeline = gl.create_pipeline(&s.repo, &s.git_ref, &sha)?;
    let key = s.req.as_ref().map(|r| r.key());
    let sha = if pipeline.sha.is_empty() { sha } else { pipeline.sha.clone() };
    let id = store.write(|tx| {
        let id = store::start_build(
            tx,
            &s.app,
            key.as_ref(),
            &s.git_ref,
            &sha,
            BuildKind::Pipeline,
            actor,
        )?;
        store::set_pipeline(tx, id, pipeline.id, pipeline.web_url.as_deref())?;
        Ok(id)
    })?;
    let mut log = Log::open(id)?;
    let url = pipeline.web_url.clone().unwrap_or_default();
    log.line(&format!(
        "xone build {id}: pipeline {} of {} at {} ({sha}) {url}",
        pipeline.id, s.app.name, s.git_ref
    ));
    scope.ui.status(format!("build {id}: pipeline {} on {} {url}", pipeline.id, s.git_ref));
    if !wait {
        store.write(|tx| store::detach_build(tx, id, BuildStatus::Running))?;
        return Ok(Pipeline::Started(store::build(store.conn(), id)?));
    }
    let finished = follow(scope.ui, gl, &s.repo, pipeline.id, start_timeout, &mut log);
    let (done, jobs) = match finished {
        Ok(x) => x,
        Err(e) => {
            // The pipeline goes on without xone: `build show` picks it up again.
            store.write(|tx| store::detach_build(tx, id, BuildStatus::Running))?;
            return Err(e.hint(format!("`xone build show {id}` follows it later")));
        }
    };
    let mut judged = judge(gl, &s.repo, &done, &jobs, policy.coverage_min, &mut log)?;
    policy.apply(&mut judged.gates);
    settle(store, id, &s.app, s.req.as_ref(), actor, judged, forced).map(Pipeline::Finished)
}

/// What a finished pipeline measured.
struct Judged {
    status: BuildStatus,
    tests: Option<Tests>,
    coverage: Option<f64>,
    gates: Vec<Gate>,
    detail: Option<String>,
    /// The failing jobs' log tails, for the error.
    tails: Vec<String>,
}

fn judge(
    gl: &GitLab,
    repo: &store::Repo,
    p: &gitlab::Pipeline,
    jobs: &[Job],
    coverage_min: f64,
    log: &mut Log,
) -> Result<Judged> {
    let status = match p.status.as_str() {
        "success" => BuildStatus::Success,
        "failed" => BuildStatus::Failed,
        _ => BuildStatus::Canceled,
    };
    let report = gl.test_report(repo, p.id)?;
    let tests = (report.total > 0).then_some(report);
    let mut gates = vec![Gate {
        name: "pipeline".into(),
        passed: p.status == "success",
        actual: json!(p.status),
        threshold: json!("success"),
        forced: false,
    }];
    gates.push(match &tests {
        Some(t) => Gate {
            name: "tests".into(),
            passed: t.failed == 0,
            actual: json!(format!("{} of {} passed, {} failed", t.passed, t.total, t.failed)),
            threshold: json!("all pass"),
            forced: false,
        },
        None => Gate {
            name: "tests".into(),
            passed: false,
            actual: json!("no test report (artifacts:reports:junit)"),
            threshold: json!("all pass"),
            forced: false,
        },
    });
    gates.push(Gate {
        name: "coverage".into(),
        passed: p.coverage.is_some_and(|c| c >= coverage_min),
        actual: p
            .coverage
            .map(|c| json!(c))
            .unwrap_or_else(|| json!("not reported (the job's coverage regex)")),
        threshold: json!(coverage_min),
        forced: false,
    });
    let failed_jobs: Vec<&Job> =
        jobs.iter().filter(|j| j.status == "failed" && !j.allow_failure).collect();
    let mut tails = Vec::new();
    for j in &failed_jobs {
        let trace = plain(&gl.trace(repo, j.id).unwrap_or_default());
        let lines: Vec<&str> = trace.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        log.line(&format!("--- job {} ({}) failed; the end of its log:", j.name, j.stage));
        for l in tail {
            log.line(l);
            tails.push(format!("{}: {l}", j.name));
        }
    }
    let detail = (!failed_jobs.is_empty()).then(|| {
        let names: Vec<String> =
            failed_jobs.iter().map(|j| format!("{} ({})", j.name, j.stage)).collect();
        format!("failed jobs: {}", names.join(", "))
    });
    Ok(Judged { status, tests, coverage: p.coverage, gates, detail, tails })
}

/// A job log as a person reads it: without the terminal colours, carriage-return progress
/// and GitLab's collapsible section markers.
pub fn plain(trace: &str) -> String {
    let mut out = String::with_capacity(trace.len());
    let mut chars = trace.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … final byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out.lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(l))
        .filter(|l| !l.starts_with("section_start:") && !l.starts_with("section_end:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Records a finished pipeline's outcome; returns the gates that failed and were not forced.
/// GitLab's word stands (success, failed, canceled); gates forced on the record make a build
/// pass, and gates failing make a finished pipeline's build fail.
fn record_pipeline(
    store: &mut Store,
    id: i64,
    app: &App,
    req: Option<&store::Requirement>,
    actor: &str,
    j: &mut Judged,
    forced: Option<String>,
) -> Result<Vec<Gate>> {
    let mut failed: Vec<Gate> = j.gates.iter().filter(|g| !g.passed).cloned().collect();
    let force = forced.is_some() && !failed.is_empty();
    if force {
        for g in j.gates.iter_mut().filter(|g| !g.passed) {
            g.forced = true;
        }
    }
    let status = match (failed.is_empty() || force, j.status) {
        (true, _) => BuildStatus::Success,
        (false, BuildStatus::Canceled) => BuildStatus::Canceled,
        (false, _) => BuildStatus::Failed,
    };
    let outcome = BuildOutcome {
        status,
        tests: j.tests.as_ref(),
        coverage: j.coverage,
        gates: &j.gates,
        image: None,
        digest: None,
        detail: j.detail.as_deref(),
    };
    finish(store, id, app, req, actor, &outcome, forced.filter(|_| force))?;
    if force {
        failed.clear();
    }
    Ok(failed)
}

/// Records a finished pipeline's outcome; failed gates are exit 4 unless forced.
fn settle(
    store: &mut Store,
    id: i64,
    app: &App,
    req: Option<&store::Requirement>,
    actor: &str,
    mut j: Judged,
    forced: Option<String>,
) -> Result<Build> {
    let failed = record_pipeline(store, id, app, req, actor, &mut j, forced)?;
    if !failed.is_empty() {
        let mut err = gate_error(app, &failed, j.tests.as_ref());
        if let Some(d) = &j.detail {
            err = err.cause(d.clone());
        }
        for t in j.tails.iter().rev().take(10).rev() {
            err = err.cause(format!("| {t}"));
        }
        return Err(err);
    }
    store::build(store.conn(), id)
}

/// Polls the pipeline with backoff (GitLab has no watch) until it finishes, reporting each job
/// state change; gives up when no runner takes it within `start_timeout`.
fn follow(
    ui: &Ui,
    gl: &GitLab,
    repo: &store::Repo,
    pipeline: i64,
    start_timeout: std::time::Duration,
    log: &mut Log,
) -> Result<(gitlab::Pipeline, Vec<Job>)> {
    let began = std::time::Instant::now();
    let mut board = ui.jobs();
    let mut seen: Vec<Job> = Vec::new();
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        let p = gl.pipeline(repo, pipeline)?;
        let jobs = gl.jobs(repo, pipeline)?;
        for j in &jobs {
            if !seen.iter().any(|s| s.id == j.id && s.status == j.status) {
                log.line(&format!("job {} ({}): {}", j.name, j.stage, j.status));
                // A job that fails shows the end of its log as soon as it is known.
                let tail = if j.status == "failed" && !j.allow_failure {
                    let trace = plain(&gl.trace(repo, j.id).unwrap_or_default());
                    let lines: Vec<String> = trace.lines().map(str::to_string).collect();
                    lines[lines.len().saturating_sub(15)..].to_vec()
                } else {
                    Vec::new()
                };
                board.changed(j.id, &j.name, &j.stage, &j.status, &tail);
            }
        }
        seen = jobs.clone();
        if p.finished() {
            log.line(&format!("pipeline {pipeline}: {}", p.status));
            return Ok((p, jobs));
        }
        if !p.started() && began.elapsed() > start_timeout {
            return Err(XoneError::new(
                Kind::Remote,
                format!(
                    "pipeline {pipeline} has not started after {} s: no runner took it up",
                    start_timeout.as_secs()
                ),
            )
            .hint(
                "check the project's CI/CD runners on GitLab (build.start_timeout sets the wait)",
            ));
        }
        // Every 250 ms while a pipeline is young (most finish or fail early), then backing
        // off to every 2 s: GitLab has no watch, and a long pipeline need not be asked often.
        std::thread::sleep(pause);
        if began.elapsed() > std::time::Duration::from_secs(30) {
            pause = (pause * 3 / 2).min(std::time::Duration::from_secs(2));
        }
    }
}

/// Asks GitLab again about a pipeline build not seen to its end, and records its outcome
/// once it finished.
pub fn refresh(
    store: &mut Store,
    forges: &Forges,
    policy: &Policy,
    b: &Build,
    pipeline: i64,
) -> Result<()> {
    let (app, repo) = app_and_repo(store, b)?;
    let gl = forges.gitlab()?;
    let p = gl.pipeline(&repo, pipeline)?;
    if !p.finished() {
        if b.status == BuildStatus::Interrupted {
            store.write(|tx| store::detach_build(tx, b.id, BuildStatus::Running))?;
        }
        return Ok(());
    }
    let mut log = Log::open(b.id)?;
    let jobs = gl.jobs(&repo, pipeline)?;
    let mut judged = judge(gl, &repo, &p, &jobs, policy.coverage_min, &mut log)?;
    policy.apply(&mut judged.gates);
    let req = match &b.requirement {
        Some(k) => {
            Some(store::requirement(store.conn(), &k.parse().map_err(XoneError::internal)?)?)
        }
        None => None,
    };
    record_pipeline(store, b.id, &app, req.as_ref(), &b.actor, &mut judged, None)?;
    Ok(())
}

/// Hands `each` every job of a pipeline build, in stage order, with its log as GitLab keeps
/// it, one job at a time as it comes; a job that has not run has an empty log, and a log that
/// cannot be read is that job's error, not the whole answer's.
pub fn each_job_log(
    store: &Store,
    forges: &Forges,
    b: &Build,
    mut each: impl FnMut(&Job, Result<String>) -> Result<()>,
) -> Result<()> {
    let Some(pipeline) = b.pipeline_id else {
        return Err(XoneError::not_found(format!("build {} has no pipeline", b.id)));
    };
    let (_, repo) = app_and_repo(store, b)?;
    let gl = forges.gitlab()?;
    for j in gl.jobs(&repo, pipeline)? {
        let ran = !matches!(j.status.as_str(), "created" | "pending" | "skipped" | "manual");
        let trace = if ran { gl.trace(&repo, j.id) } else { Ok(String::new()) };
        each(&j, trace)?;
    }
    Ok(())
}

/// The log of one job of a pipeline build, as GitLab keeps it.
pub fn job_log(store: &Store, forges: &Forges, b: &Build, name: &str) -> Result<String> {
    let Some(pipeline) = b.pipeline_id else {
        return Err(XoneError::not_found(format!("build {} has no pipeline", b.id)));
    };
    let (_, repo) = app_and_repo(store, b)?;
    let gl = forges.gitlab()?;
    let jobs = gl.jobs(&repo, pipeline)?;
    let found = jobs.iter().find(|j| j.name == name).ok_or_else(|| {
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        XoneError::not_found(format!("pipeline {pipeline} has no job {name}"))
            .hint(format!("its jobs: {}", names.join(", ")))
    })?;
    gl.trace(&repo, found.id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_logs_lose_their_terminal_codes() {
        let raw = "\u{1b}[0Ksection_start:1:step\r\u{1b}[0K\u{1b}[32;1mRunning\u{1b}[0;m\nprogress 10%\rprogress 100%\n\u{1b}[31mFAIL\u{1b}[0m";
        assert_eq!(super::plain(raw), "Running\nprogress 100%\nFAIL");
    }
}
