//! `xone build`: an app built at one commit, its tests run in a clean export of that commit,
//! the project's gates applied, the image built through the Docker Engine API and pushed, and
//! the whole record kept: `build list|show|log`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};
use serde_json::json;

use super::{complete, Ctx};
use crate::adapters::docker::{BuildSpec, Engine};
use crate::adapters::forge_local;
use crate::config;
use crate::domain::{reports, ProjectKey, RequirementKey};
use crate::ops::events::requirement as event;
use crate::store::{self, App, Build, BuildOutcome, Gate, Tests};
use crate::ui::{short_sha, table, Result, XoneError};

#[cfg(test)]
mod tests {
    #[test]
    fn job_logs_lose_their_terminal_codes() {
        let raw = "\u{1b}[0Ksection_start:1:step\r\u{1b}[0K\u{1b}[32;1mRunning\u{1b}[0;m\nprogress 10%\rprogress 100%\n\u{1b}[31mFAIL\u{1b}[0m";
        assert_eq!(super::plain(raw), "Running\nprogress 100%\nFAIL");
    }
}

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = "\
Builds APP at the requirement's feature branch (or --ref) from a clean export of that commit, \
never a work tree's uncommitted files. With a test command (--test-cmd or the app's), the tests \
run first in another export and their JUnit and Cobertura reports meet the gates (all tests \
pass; coverage at least gates.coverage); a failed gate exits 4 naming each gate, its value and \
threshold, and the failing tests; --force --reason passes it on the record. The image is built \
through the Docker engine at DOCKER_HOST, tagged IMAGE:KEY-<shortsha> and IMAGE:<shortsha>, \
labelled with its source, revision, creation time and requirement, and with --push pushed with \
the credentials of ~/.docker/config.json; the digest is recorded. JSON: as for build show"
)]
pub struct BuildArgs {
    #[command(subcommand)]
    pub cmd: Option<BuildCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The app to build
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: Option<String>,
    /// The app's project (default: the requirement's, or the only one with such an app)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    /// Build the requirement's feature branch
    #[arg(long, value_name = "KEY", conflicts_with = "git_ref", add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// Build this ref instead: a branch (e.g. release/test), tag or commit
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Build locally through the Docker engine (the default)
    #[arg(long, conflicts_with = "pipeline")]
    pub local: bool,
    /// Run the project's GitLab CI pipeline instead
    #[arg(long)]
    pub pipeline: bool,
    /// Push the image to its registry and record the digest
    #[arg(long, conflicts_with = "pipeline")]
    pub push: bool,
    /// Follow a pipeline to its end (local builds always finish before returning)
    #[arg(long)]
    pub wait: bool,
    /// Run these tests instead of the app's test command (sh -c, in a clean export)
    #[arg(long, value_name = "CMD", conflicts_with = "pipeline")]
    pub test_cmd: Option<String>,
    /// Pass failed gates, on the record
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why the gates are forced
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum BuildCommand {
    /// Builds, newest first
    #[command(after_long_help = "JSON: [as for show]")]
    List {
        /// Only this app's builds
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: Option<String>,
        #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
        project: Option<ProjectKey>,
        /// Only this requirement's builds
        #[arg(long, value_name = "KEY", add = ArgValueCompleter::new(complete::requirement_keys))]
        requirement: Option<RequirementKey>,
    },
    /// One build: its commit, status, tests, coverage, gates, image and digest
    #[command(after_long_help = "\
JSON: {\"id\", \"app\", \"project\", \"requirement\", \"ref\", \"sha\", \"kind\": pipeline|local, \
\"status\": running|success|failed|canceled|interrupted, \"pipeline_url\", \"tests\": {\"total\", \
\"passed\", \"failed\", \"skipped\"} or null, \"coverage\": percent or null, \"gates\": [{\"name\", \
\"passed\", \"actual\", \"threshold\", \"forced\"}], \"image\", \"digest\", \"detail\", \"started_at\", \
\"finished_at\", \"actor\"}")]
    Show { id: i64 },
    /// The build's output: the test command's and the engine's, as kept on disk
    Log {
        id: i64,
        /// A pipeline job's log (pipeline builds)
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
    },
}

pub fn run(cx: &mut Ctx, a: BuildArgs) -> Result<()> {
    match a.cmd {
        Some(BuildCommand::List { app, project, requirement }) => {
            list(cx, app, project, requirement)
        }
        Some(BuildCommand::Show { id }) => show(cx, id),
        Some(BuildCommand::Log { id, job }) => log(cx, id, job),
        None => build(cx, a.run),
    }
}

fn log_path(id: i64) -> PathBuf {
    config::state_dir().join("builds").join(format!("{id}.log"))
}

/// Appends to a build's log on disk.
struct Log {
    file: std::fs::File,
}

impl Log {
    fn open(id: i64) -> Result<Log> {
        let path = log_path(id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Log { file })
    }
    fn line(&mut self, s: &str) {
        let _ = writeln!(self.file, "{s}");
    }
}

fn build(cx: &mut Ctx, a: RunArgs) -> Result<()> {
    let Some(app_name) = a.app.clone() else {
        return Err(XoneError::usage("name the app to build: xone build APP --requirement KEY")
            .hint("see the apps with `xone project app list KEY`"));
    };
    let actor = cx.actor()?;
    let policy = Policy::read(cx)?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let project = a.project.clone().or_else(|| a.requirement.as_ref().map(|k| k.project.clone()));
    let app = store::app(store.conn(), project.as_ref(), &app_name)?;
    let repos = store::repos(store.conn(), &app.project.parse().map_err(XoneError::internal)?)?;
    let repo = repos.iter().find(|r| r.id == app.repo_id).cloned().ok_or_else(|| {
        XoneError::not_found(format!(
            "app {}'s repository {} is no longer linked",
            app.name, app.repo
        ))
    })?;
    let req = match &a.requirement {
        Some(k) => Some(store::requirement(store.conn(), k)?),
        None => None,
    };
    let git_ref = match (&a.requirement, &a.git_ref) {
        (_, Some(r)) => r.clone(),
        (Some(k), None) => store::branches(store.conn(), Some(k), None)?
            .into_iter()
            .find(|b| b.repo_id == repo.id)
            .map(|b| b.name)
            .ok_or_else(|| {
                XoneError::gate(format!("{k} has no feature branch in {}", repo.name))
                    .hint(format!("create it with `xone branch create {k} --repo {}`", repo.name))
            })?,
        (None, None) => {
            return Err(XoneError::usage("say what to build: --requirement KEY or --ref REF"))
        }
    };
    if a.pipeline {
        let start_timeout = cx.config()?.duration("build.start_timeout");
        let p = PipelineRun {
            app: &app,
            repo: &repo,
            req: req.as_ref(),
            git_ref: &git_ref,
            policy: policy.clone(),
            start_timeout,
        };
        return pipeline_build(cx, &mut store, &forges, &p, &a, &actor);
    }
    // Everything that can be checked is checked before anything is recorded.
    let objects = forges.objects(&repo)?;
    let commit =
        objects.revparse_single(&git_ref).and_then(|o| o.peel_to_commit()).map_err(|_| {
            XoneError::not_found(format!("{} has no ref {git_ref}", repo.name))
                .hint("name an existing branch, tag or commit with --ref")
        })?;
    let sha = commit.id().to_string();
    let context = app.context.trim_matches('/').to_string();
    // A path inside the context, as a path of the repository.
    let in_context = |f: &str| match context.as_str() {
        "" | "." => f.to_string(),
        dir => format!("{dir}/{f}"),
    };
    let dockerfile_path = in_context(&app.dockerfile);
    if !forge_local::has_file(&objects, commit.id(), &dockerfile_path)? {
        return Err(XoneError::gate(format!(
            "commit {} of {} has no {dockerfile_path}",
            short_sha(&sha),
            repo.name
        ))
        .hint("commit a Dockerfile there, or point the app at it (--dockerfile, --context on app add)"));
    }
    let image = app.image.clone().or(env_image(&store, &app)?);
    let image = match (image, a.push) {
        (Some(i), _) => i,
        (None, false) => format!("xone/{}/{}", app.project.to_lowercase(), app.name),
        (None, true) => {
            return Err(XoneError::gate(format!("app {} has no image name to push to", app.name))
                .hint(format!(
                    "give an environment a registry (xone project env set {} test --registry R) or the app an image (--image REGISTRY/NAME)",
                    app.project
                )))
        }
    };
    let engine = Engine::connect()?;
    // The tests' export is made before the record: a failure here leaves nothing behind.
    let test_cmd = a.test_cmd.clone().or_else(|| app.test_cmd.clone());
    let scratch = match &test_cmd {
        Some(_) => {
            let dir = scratch_dir()?;
            if let Err(e) = forge_local::export_dir(&objects, commit.id(), &dir) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            Some(dir)
        }
        None => None,
    };
    let key = a.requirement.as_ref();
    let id =
        store.write(|tx| store::start_build(tx, &app, key, &git_ref, &sha, "local", &actor))?;
    let mut log = Log::open(id)?;
    log.line(&format!("xone build {id}: {} at {git_ref} ({sha})", app.name));
    let ui = &cx.ui;
    ui.status(format!("build {id}: {} at {git_ref} ({})", app.name, short_sha(&sha)));

    // Tests first: a failing gate stops before the image is built.
    let (tests, coverage, mut gates) = match (&test_cmd, &scratch) {
        (Some(cmd), Some(dir)) => {
            let measured =
                run_tests(ui, &mut log, &app, cmd, dir, &git_ref, &sha, policy.coverage_min);
            let _ = std::fs::remove_dir_all(dir);
            measured
        }
        _ => {
            ui.status("no test command: this build measures no tests or coverage and passes on the image alone");
            log.line("no test command: no tests or coverage measured");
            (None, None, Vec::new())
        }
    };
    policy.apply(&mut gates);
    let failed: Vec<Gate> = gates.iter().filter(|g| !g.passed).cloned().collect();
    if a.force {
        for g in gates.iter_mut().filter(|g| !g.passed) {
            g.forced = true;
        }
    }
    // Every way this build can fail from here on is recorded the same way, then reported.
    let fail = |store: &mut store::Store, e: XoneError, image: Option<&str>| -> Result<()> {
        let outcome = BuildOutcome {
            status: "failed",
            tests: tests.as_ref(),
            coverage,
            gates: &gates,
            image,
            digest: None,
            detail: Some(&e.message),
        };
        finish(store, id, &app, req.as_ref(), &actor, &outcome, None)?;
        Err(e)
    };
    if !failed.is_empty() && !a.force {
        return fail(&mut store, gate_error(&app, &failed, tests.as_ref()), None);
    }

    // The image, from a clean export of the commit streamed to the engine.
    let short = short_sha(&sha).to_string();
    let mut tags = Vec::new();
    if let Some(k) = key {
        tags.push(format!("{image}:{k}-{short}"));
    }
    tags.push(format!("{image}:{short}"));
    let mut labels = HashMap::new();
    let source = repo.web_url.clone().unwrap_or_else(|| repo.location.clone());
    labels.insert("org.opencontainers.image.source".to_string(), source);
    labels.insert("org.opencontainers.image.revision".to_string(), sha.clone());
    // The commit's time, not the clock's: building the same commit again gives the same
    // image, which the engine's layer cache then serves as it does for `docker build`.
    labels.insert(
        "org.opencontainers.image.created".to_string(),
        crate::domain::date::rfc3339(commit.time().seconds()),
    );
    if let Some(k) = key {
        labels.insert("xone.requirement".to_string(), k.to_string());
    }
    let spec = BuildSpec { dockerfile: app.dockerfile.clone(), tags: tags.clone(), labels };
    let path = objects.path().to_path_buf();
    let oid = commit.id();
    // The context's .dockerignore, read from the commit as `docker build` reads it from disk.
    let ignore = forge_local::read_file(&objects, oid, &in_context(".dockerignore"))?
        .map(|b| crate::domain::ignore::Ignore::parse(&String::from_utf8_lossy(&b)));
    let keep =
        vec![app.dockerfile.trim_start_matches("./").to_string(), ".dockerignore".to_string()];
    let built = {
        let progress = Progress::new(ui);
        engine.build(
            &spec,
            move |w| {
                let repo = git2::Repository::open(&path)?;
                let filter =
                    ignore.as_ref().map(|i| forge_local::ContextFilter { ignore: i, keep: &keep });
                forge_local::export_tar_filtered(&repo, oid, &context, w, filter.as_ref())
            },
            &mut |l| {
                log.line(l);
                progress.line(l);
            },
        )
    };
    if let Err(e) = built {
        return fail(&mut store, e, None);
    }
    let reference = tags.first().cloned().unwrap_or_default();
    let mut digest = None;
    if a.push {
        let progress = Progress::new(ui);
        let mut pushed = Ok(String::new());
        for t in &tags {
            pushed = engine.push(t, &mut |l| {
                log.line(l);
                progress.line(l);
            });
            if pushed.is_err() {
                break;
            }
        }
        match pushed {
            Ok(d) => digest = Some(d),
            Err(e) => return fail(&mut store, e, Some(&reference)),
        }
    }
    let forced = a.force.then(|| a.reason.clone().unwrap_or_default());
    finish(
        &mut store,
        id,
        &app,
        req.as_ref(),
        &actor,
        &BuildOutcome {
            status: "success",
            tests: tests.as_ref(),
            coverage,
            gates: &gates,
            image: Some(&reference),
            digest: digest.as_deref(),
            detail: None,
        },
        forced.filter(|_| !failed.is_empty()),
    )?;
    let b = store::build(store.conn(), id)?;
    if cx.ui.json {
        return cx.ui.print_json(&b);
    }
    cx.ui.line(format!("build {id} succeeded: {}", digest.unwrap_or(reference)))?;
    Ok(())
}

struct PipelineRun<'a> {
    app: &'a App,
    repo: &'a store::Repo,
    req: Option<&'a store::Requirement>,
    git_ref: &'a str,
    policy: Policy,
    start_timeout: std::time::Duration,
}

/// A build on GitLab CI: the pipeline is started on the ref and, with --wait, followed to its
/// end (one line per job state change, the failing jobs' log tails), then its test report
/// and coverage meet the gates.
fn pipeline_build(
    cx: &mut Ctx,
    store: &mut store::Store,
    forges: &crate::adapters::Forges,
    p: &PipelineRun,
    a: &RunArgs,
    actor: &str,
) -> Result<()> {
    if a.force && !a.wait {
        return Err(XoneError::usage("--force judges a finished pipeline: add --wait")
            .hint("or look at the pipeline later with `xone build show ID`"));
    }
    if p.repo.kind != "gitlab" {
        return Err(XoneError::gate(format!(
            "{} is not on GitLab: pipelines run on GitLab CI",
            p.repo.name
        ))
        .hint("build it locally instead: --local"));
    }
    let gl = forges.gitlab()?;
    let sha = gl.commit_of(p.repo, p.git_ref)?;
    let pipeline = gl.create_pipeline(p.repo, p.git_ref, &sha)?;
    let key = p.req.map(|r| r.key());
    let sha = if pipeline.sha.is_empty() { sha } else { pipeline.sha.clone() };
    let id = store.write(|tx| {
        let id = store::start_build(tx, p.app, key.as_ref(), p.git_ref, &sha, "pipeline", actor)?;
        store::set_pipeline(tx, id, pipeline.id, pipeline.web_url.as_deref())?;
        Ok(id)
    })?;
    let mut log = Log::open(id)?;
    let url = pipeline.web_url.clone().unwrap_or_default();
    log.line(&format!(
        "xone build {id}: pipeline {} of {} at {} ({sha}) {url}",
        pipeline.id, p.app.name, p.git_ref
    ));
    cx.ui.status(format!("build {id}: pipeline {} on {} {url}", pipeline.id, p.git_ref));
    if !a.wait {
        store.write(|tx| store::detach_build(tx, id, "running"))?;
        let b = store::build(store.conn(), id)?;
        if cx.ui.json {
            return cx.ui.print_json(&b);
        }
        cx.ui.line(format!("build {id} started: pipeline {} {url}", pipeline.id))?;
        cx.ui.status(format!("follow it with `xone build show {id}`, or build with --wait"));
        return Ok(());
    }
    let finished = follow(&cx.ui, gl, p.repo, pipeline.id, p.start_timeout, &mut log);
    let (done, jobs) = match finished {
        Ok(x) => x,
        Err(e) => {
            // The pipeline goes on without xone: `build show` picks it up again.
            store.write(|tx| store::detach_build(tx, id, "running"))?;
            return Err(e.hint(format!("`xone build show {id}` follows it later")));
        }
    };
    let mut outcome = judge(gl, p.repo, &done, &jobs, p.policy.coverage_min, &mut log)?;
    p.policy.apply(&mut outcome.gates);
    settle_pipeline(
        cx,
        store,
        id,
        p.app,
        p.req,
        actor,
        outcome,
        a.force.then(|| a.reason.clone().unwrap_or_default()),
    )
}

/// What a finished pipeline measured.
struct Judged {
    status: &'static str,
    tests: Option<Tests>,
    coverage: Option<f64>,
    gates: Vec<Gate>,
    detail: Option<String>,
    /// The failing jobs' log tails, for the error.
    tails: Vec<String>,
}

fn judge(
    gl: &crate::adapters::gitlab::GitLab,
    repo: &store::Repo,
    p: &crate::adapters::gitlab::Pipeline,
    jobs: &[crate::adapters::gitlab::Job],
    coverage_min: f64,
    log: &mut Log,
) -> Result<Judged> {
    let status = match p.status.as_str() {
        "success" => "success",
        "failed" => "failed",
        _ => "canceled",
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
    let failed_jobs: Vec<&crate::adapters::gitlab::Job> =
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
fn plain(trace: &str) -> String {
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
    store: &mut store::Store,
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
        (true, _) => "success",
        (false, "canceled") => "canceled",
        (false, _) => "failed",
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
#[allow(clippy::too_many_arguments)]
fn settle_pipeline(
    cx: &mut Ctx,
    store: &mut store::Store,
    id: i64,
    app: &App,
    req: Option<&store::Requirement>,
    actor: &str,
    mut j: Judged,
    forced: Option<String>,
) -> Result<()> {
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
    let b = store::build(store.conn(), id)?;
    if cx.ui.json {
        return cx.ui.print_json(&b);
    }
    cx.ui.line(format!(
        "build {id} {}: pipeline {}",
        b.status,
        b.pipeline_url.unwrap_or_default()
    ))?;
    Ok(())
}

/// Polls the pipeline with backoff (GitLab has no watch) until it finishes, reporting each job
/// state change; gives up when no runner takes it within `start_timeout`.
fn follow(
    ui: &crate::ui::Ui,
    gl: &crate::adapters::gitlab::GitLab,
    repo: &store::Repo,
    pipeline: i64,
    start_timeout: std::time::Duration,
    log: &mut Log,
) -> Result<(crate::adapters::gitlab::Pipeline, Vec<crate::adapters::gitlab::Job>)> {
    let began = std::time::Instant::now();
    // On a terminal one live line per job; elsewhere one line per job state change.
    let live = ui.stderr_tty && !ui.json;
    let multi = indicatif::MultiProgress::with_draw_target(if live {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    });
    let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:<24} {wide_msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let mut bars: Vec<(i64, indicatif::ProgressBar)> = Vec::new();
    let mut seen: Vec<crate::adapters::gitlab::Job> = Vec::new();
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        let p = gl.pipeline(repo, pipeline)?;
        let jobs = gl.jobs(repo, pipeline)?;
        for j in &jobs {
            if !seen.iter().any(|s| s.id == j.id && s.status == j.status) {
                let line = format!("job {} ({}): {}", j.name, j.stage, j.status);
                log.line(&line);
                // A job that fails shows the end of its log as soon as it is known.
                let tail = if j.status == "failed" && !j.allow_failure {
                    let trace = plain(&gl.trace(repo, j.id).unwrap_or_default());
                    let lines: Vec<String> = trace.lines().map(str::to_string).collect();
                    lines[lines.len().saturating_sub(15)..].to_vec()
                } else {
                    Vec::new()
                };
                if !live {
                    ui.status(&line);
                    for l in &tail {
                        ui.status(format!("  | {l}"));
                    }
                    continue;
                }
                for l in &tail {
                    let _ = multi.println(format!("  {} | {l}", j.name));
                }
                let bar = match bars.iter().find(|(id, _)| *id == j.id) {
                    Some((_, b)) => b.clone(),
                    None => {
                        let b = multi.add(indicatif::ProgressBar::new_spinner());
                        b.set_style(style.clone());
                        b.set_prefix(format!("{} ({})", j.name, j.stage));
                        b.enable_steady_tick(std::time::Duration::from_millis(100));
                        bars.push((j.id, b.clone()));
                        b
                    }
                };
                if matches!(j.status.as_str(), "success" | "failed" | "canceled" | "skipped") {
                    bar.finish_with_message(j.status.clone());
                } else {
                    bar.set_message(j.status.clone());
                }
            }
        }
        seen = jobs.clone();
        if p.finished() {
            log.line(&format!("pipeline {pipeline}: {}", p.status));
            return Ok((p, jobs));
        }
        if !p.started() && began.elapsed() > start_timeout {
            return Err(XoneError::new(
                crate::ui::Kind::Remote,
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

/// Records the outcome and, for a requirement's build, an event on its story.
fn finish(
    store: &mut store::Store,
    id: i64,
    app: &App,
    req: Option<&store::Requirement>,
    actor: &str,
    o: &BuildOutcome,
    forced: Option<String>,
) -> Result<()> {
    store.write(|tx| {
        store::finish_build(tx, id, o)?;
        if let Some(r) = req {
            let e = store::Event {
                detail: Some(format!("{} build {id}: {}", app.name, o.status)),
                forced: forced.is_some(),
                reason: forced.clone(),
                ..event(r, actor, "build")
            };
            store::record(tx, &e)?;
        }
        Ok(())
    })
}

/// The build gates as configured under `[gates]`.
#[derive(Clone)]
struct Policy {
    coverage_min: f64,
    /// Gates turned off: `gates.tests = false`, `gates.pipeline = false`, `gates.coverage = 0`.
    disabled: Vec<&'static str>,
}

impl Policy {
    fn read(cx: &mut Ctx) -> Result<Policy> {
        let cfg = cx.config()?;
        let on = |k: &str| -> Result<bool> {
            Ok(cfg.get(k)?.and_then(|e| e.value.as_bool()).unwrap_or(true))
        };
        let coverage_min =
            cfg.get("gates.coverage")?.and_then(|e| e.value.as_float()).unwrap_or(80.0);
        let mut disabled = Vec::new();
        if !on("gates.tests")? {
            disabled.push("tests");
        }
        if !on("gates.pipeline")? {
            disabled.push("pipeline");
        }
        if coverage_min <= 0.0 {
            disabled.push("coverage");
        }
        Ok(Policy { coverage_min, disabled })
    }

    /// Drops the gates that are turned off.
    fn apply(&self, gates: &mut Vec<Gate>) {
        gates.retain(|g| !self.disabled.contains(&g.name.as_str()));
    }
}

/// The image an app without its own `--image` gets: REGISTRY/APP, REGISTRY being the `test`
/// environment's registry (builds go to test first), else the first environment's that has
/// one.
fn env_image(store: &store::Store, app: &App) -> Result<Option<String>> {
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let envs = store::envs(store.conn(), &project)?;
    let registry = envs
        .iter()
        .find(|e| e.name == "test" && e.registry.is_some())
        .or_else(|| envs.iter().find(|e| e.registry.is_some()))
        .and_then(|e| e.registry.clone());
    Ok(registry.map(|r| format!("{r}/{}", app.name)))
}

/// A new, empty directory of this build's own for the tests' export.
fn scratch_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("xone-build-{}-{nanos}", std::process::id()));
    // Made here, not found: a directory someone else put there first is refused.
    std::fs::create_dir(&dir)
        .map_err(|e| XoneError::internal(format!("cannot make {}", dir.display())).cause(e))?;
    Ok(dir)
}

/// Runs the tests in the export and reads their reports: the tests and coverage measured,
/// and the gates they meet or fail.
#[allow(clippy::too_many_arguments)]
fn run_tests(
    ui: &crate::ui::Ui,
    log: &mut Log,
    app: &App,
    cmd: &str,
    dir: &std::path::Path,
    git_ref: &str,
    sha: &str,
    coverage_min: f64,
) -> (Option<Tests>, Option<f64>, Vec<Gate>) {
    ui.status(format!("running tests: {cmd}"));
    log.line(&format!("$ {cmd}"));
    let output = std::process::Command::new("sh")
        .args(["-c", cmd])
        .current_dir(dir)
        .env("XONE_APP", &app.name)
        .env("XONE_REF", git_ref)
        .env("XONE_SHA", sha)
        // The branch's code runs here: it gets no token of the user's.
        .env_remove("XONE_GITLAB_TOKEN")
        .env_remove("GITLAB_TOKEN")
        .env_remove("CI_JOB_TOKEN")
        .env_remove("XONE_JIRA_TOKEN")
        .stdin(std::process::Stdio::null())
        .output();
    let (code, text) = match output {
        Ok(o) => {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.code(), t)
        }
        Err(e) => (None, format!("the test command could not start: {e}")),
    };
    for l in text.lines() {
        log.line(l);
    }
    log.line(&format!(
        "test command exited {}",
        code.map(|c| c.to_string()).unwrap_or_else(|| "by a signal".into())
    ));
    let junit = std::fs::read_to_string(dir.join(&app.junit))
        .map_err(|_| format!("no JUnit report at {}", app.junit))
        .and_then(|x| reports::junit(&x).map_err(|e| format!("{}: {e}", app.junit)));
    let cobertura = std::fs::read_to_string(dir.join(&app.cobertura))
        .map_err(|_| format!("no Cobertura report at {}", app.cobertura))
        .and_then(|x| reports::cobertura(&x).map_err(|e| format!("{}: {e}", app.cobertura)));
    let mut gates = Vec::new();
    let tests = junit.as_ref().ok().cloned();
    let tests_gate = match (&junit, code) {
        (Ok(t), Some(0)) => Gate {
            name: "tests".into(),
            passed: t.failed == 0 && t.total > 0,
            actual: json!(format!("{} of {} passed, {} failed", t.passed, t.total, t.failed)),
            threshold: json!("all pass"),
            forced: false,
        },
        (Ok(t), c) => Gate {
            name: "tests".into(),
            passed: false,
            actual: json!(format!(
                "{} failed; the command exited {}",
                t.failed,
                c.map(|c| c.to_string()).unwrap_or_else(|| "by a signal".into())
            )),
            threshold: json!("all pass"),
            forced: false,
        },
        (Err(why), c) => Gate {
            name: "tests".into(),
            passed: false,
            actual: json!(format!(
                "{why}; the command exited {}",
                c.map(|c| c.to_string()).unwrap_or_else(|| "by a signal".into())
            )),
            threshold: json!("all pass"),
            forced: false,
        },
    };
    gates.push(tests_gate);
    let coverage = cobertura.as_ref().ok().copied();
    gates.push(match &cobertura {
        Ok(pct) => Gate {
            name: "coverage".into(),
            passed: *pct >= coverage_min,
            actual: json!(pct),
            threshold: json!(coverage_min),
            forced: false,
        },
        Err(why) => Gate {
            name: "coverage".into(),
            passed: false,
            actual: json!(why),
            threshold: json!(coverage_min),
            forced: false,
        },
    });
    ui.status(format!(
        "tests: {}; coverage: {}",
        tests
            .as_ref()
            .map(|t| format!("{} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped))
            .unwrap_or_else(|| "no report".into()),
        coverage.map(|c| format!("{c:.2} %")).unwrap_or_else(|| "no report".into())
    ));
    (tests, coverage, gates)
}

fn gate_error(app: &App, failed: &[Gate], tests: Option<&Tests>) -> XoneError {
    let names: Vec<&str> = failed.iter().map(|g| g.name.as_str()).collect();
    let mut e =
        XoneError::gate(format!("build of {} failed its gates: {}", app.name, names.join(", ")));
    for g in failed {
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        e = e.cause(format!("{}: {} (threshold {})", g.name, show(&g.actual), show(&g.threshold)));
    }
    if let Some(t) = tests.filter(|t| !t.failures.is_empty()) {
        let first: Vec<&str> = t.failures.iter().take(10).map(String::as_str).collect();
        let more = t.failures.len().saturating_sub(10);
        let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
        e = e.cause(format!("failing tests: {}{tail}", first.join(", ")));
    }
    e.hint("fix them and build again, or pass the gate on the record with --force --reason \"…\"")
}

/// A live line on a terminal; elsewhere one line per build step.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(ui: &crate::ui::Ui) -> Progress {
        let bar = (ui.stderr_tty && !ui.json).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(100));
            b
        });
        Progress { bar }
    }

    fn line(&self, l: &str) {
        match &self.bar {
            Some(b) => b.set_message(l.chars().take(100).collect::<String>()),
            None if l.starts_with("Step ") || l.starts_with("Successfully") => {
                let _ = writeln!(std::io::stderr(), "{l}");
            }
            None => {}
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn list(
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
    let status = match b.status.as_str() {
        "success" => cx.ui.green("success"),
        "failed" | "interrupted" => cx.ui.red(&b.status),
        s => s.to_string(),
    };
    vec![
        b.id.to_string(),
        b.app.clone(),
        b.git_ref.clone(),
        short_sha(&b.sha).to_string(),
        status,
        b.tests.as_ref().map(|t| format!("{}/{}", t.passed, t.total)).unwrap_or_else(|| "-".into()),
        b.coverage.map(|c| format!("{c:.1} %")).unwrap_or_else(|| "-".into()),
        b.digest.clone().or(b.image.clone()).unwrap_or_else(|| "-".into()),
    ]
}

fn show(cx: &mut Ctx, id: i64) -> Result<()> {
    let mut store = cx.store()?;
    store.write(|tx| store::settle_interrupted(tx))?;
    let b = store::build(store.conn(), id)?;
    // A pipeline not seen to its end is asked about again.
    if b.kind == "pipeline" && matches!(b.status.as_str(), "running" | "interrupted") {
        if let Some(pipeline) = b.pipeline_id {
            refresh(cx, &mut store, &b, pipeline)?;
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
            b.started_at,
            b.finished_at.clone().unwrap_or_else(|| "…".into()),
            b.actor
        ),
    ]);
    write!(cx.ui.out(), "{}", table(&rows))?;
    Ok(())
}

/// A build's app and the repository it is built from.
fn app_and_repo(store: &store::Store, b: &Build) -> Result<(App, store::Repo)> {
    let project: ProjectKey = b.project.parse().map_err(XoneError::internal)?;
    let app = store::app(store.conn(), Some(&project), &b.app)?;
    let repo = store::repos(store.conn(), &project)?
        .into_iter()
        .find(|r| r.id == app.repo_id)
        .ok_or_else(|| XoneError::not_found(format!("app {}'s repository is gone", app.name)))?;
    Ok((app, repo))
}

fn refresh(cx: &mut Ctx, store: &mut store::Store, b: &Build, pipeline: i64) -> Result<()> {
    let policy = Policy::read(cx)?;
    let forges = cx.forges()?;
    let (app, repo) = app_and_repo(store, b)?;
    let gl = forges.gitlab()?;
    let p = gl.pipeline(&repo, pipeline)?;
    if !p.finished() {
        if b.status == "interrupted" {
            store.write(|tx| store::detach_build(tx, b.id, "running"))?;
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

fn log(cx: &mut Ctx, id: i64, job: Option<String>) -> Result<()> {
    let store = cx.store()?;
    let b = store::build(store.conn(), id)?;
    if job.is_some() && b.kind == "local" {
        return Err(XoneError::usage(format!(
            "build {id} is a local build: it has no pipeline jobs"
        ))
        .hint(format!("its whole output: xone build log {id}")));
    }
    if let (Some(name), Some(pipeline)) = (&job, b.pipeline_id) {
        let forges = cx.forges()?;
        let (_, repo) = app_and_repo(&store, &b)?;
        let gl = forges.gitlab()?;
        let jobs = gl.jobs(&repo, pipeline)?;
        let found = jobs.iter().find(|j| &j.name == name).ok_or_else(|| {
            let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
            XoneError::not_found(format!("pipeline {pipeline} has no job {name}"))
                .hint(format!("its jobs: {}", names.join(", ")))
        })?;
        let trace = gl.trace(&repo, found.id)?;
        cx.ui.out().write_all(trace.as_bytes())?;
        return Ok(());
    }
    let text = std::fs::read(log_path(id)).map_err(|_| {
        XoneError::not_found(format!("build {id} has no log on this machine"))
            .hint("logs are kept where the build ran")
    })?;
    cx.ui.out().write_all(&text)?;
    Ok(())
}
