//! Builds: an app built at one commit, its tests run in a clean export of that commit, the
//! project's gates applied, the image built through the Docker Engine API and pushed, and the
//! whole record kept. Pipeline builds on GitLab CI are in `ops::pipeline`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::events;
use crate::adapters::docker::{BuildSpec, Builder, Engine};
use crate::adapters::{forge_local, Forges};
use crate::config::{self, Config};
use crate::domain::{reports, ProjectKey, RequirementKey};
use crate::store::{self, App, Build, BuildKind, BuildOutcome, BuildStatus, Gate, Store, Tests};
use crate::ui::progress::Progress;
use crate::ui::{short_sha, Result, Ui, XoneError};

/// Where a build's output is kept on this machine.
pub fn log_path(id: i64) -> PathBuf {
    config::state_dir().join("builds").join(format!("{id}.log"))
}

/// Appends to a build's log on disk.
pub struct Log {
    file: std::fs::File,
}

impl Log {
    pub fn open(id: i64) -> Result<Log> {
        let path = log_path(id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Log { file })
    }
    pub fn line(&mut self, s: &str) {
        let _ = writeln!(self.file, "{s}");
    }
}

/// What a build builds: the app, its repository, the requirement (if any) and the ref.
pub struct Subject {
    pub app: App,
    pub repo: store::Repo,
    pub req: Option<store::Requirement>,
    pub git_ref: String,
}

/// The app to build (in `project`, the requirement's, or the only project with one so
/// named) and the ref: `git_ref`, or the requirement's feature branch in the app's repository.
pub fn subject(
    store: &Store,
    app_name: &str,
    project: Option<&ProjectKey>,
    requirement: Option<&RequirementKey>,
    git_ref: Option<&str>,
) -> Result<Subject> {
    let project = project.cloned().or_else(|| requirement.map(|k| k.project.clone()));
    let app = store::app(store.conn(), project.as_ref(), app_name)?;
    let repos = store::repos(store.conn(), &app.project.parse().map_err(XoneError::internal)?)?;
    let repo = repos.iter().find(|r| r.id == app.repo_id).cloned().ok_or_else(|| {
        XoneError::not_found(format!(
            "app {}'s repository {} is no longer linked",
            app.name, app.repo
        ))
    })?;
    let req = match requirement {
        Some(k) => Some(store::requirement(store.conn(), k)?),
        None => None,
    };
    let git_ref = match (requirement, git_ref) {
        (_, Some(r)) => r.to_string(),
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
    Ok(Subject { app, repo, req, git_ref })
}

/// What a build is asked to do beside its subject.
pub struct Request {
    /// Push the image and record its digest.
    pub push: bool,
    /// The tests to run instead of the app's test command.
    pub test_cmd: Option<String>,
    /// Pass failed gates on the record, for this reason.
    pub forced: Option<String>,
    /// The network the image's `RUN` steps use (`build.network`).
    pub network: Option<String>,
}

/// Builds the subject locally: its tests in a clean export of the commit held to the gates,
/// then the image through the Docker engine, tagged, labelled and (with `push`) pushed. The
/// build's record, once it succeeded; a failure is recorded, then returned as the error.
pub fn local(
    ui: &Ui,
    store: &mut Store,
    forges: &Forges,
    s: &Subject,
    r: &Request,
    policy: &Policy,
    actor: &str,
) -> Result<Build> {
    let (app, repo, git_ref) = (&s.app, &s.repo, &s.git_ref);
    let req = s.req.as_ref();
    // Everything that can be checked is checked before anything is recorded.
    let objects = forges.objects(repo)?;
    let commit =
        objects.revparse_single(git_ref).and_then(|o| o.peel_to_commit()).map_err(|_| {
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
        .hint(format!(
            "commit a Dockerfile there, or point the app at it: xone project app set {} {} --dockerfile PATH --context DIR",
            app.project, app.name
        )));
    }
    let image = app.image.clone().or(env_image(store, app)?);
    let image = match (image, r.push) {
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
    let builder = engine.builder()?;
    if let (Builder::BuildKit, Some(network)) = (builder, &r.network) {
        if !matches!(network.as_str(), "none" | "host" | "default") {
            return Err(XoneError::usage(format!(
                "build.network is '{network}': the engine's BuildKit gives RUN steps none, host or default"
            ))
            .hint("xone config set build.network none (or host), or build with the legacy builder: DOCKER_BUILDKIT=0"));
        }
    }
    // The tests' export is made before the record: a failure here leaves nothing behind.
    let test_cmd = r.test_cmd.clone().or_else(|| app.test_cmd.clone());
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
    let key = req.map(|r| r.key());
    let key = key.as_ref();
    let id = store
        .write(|tx| store::start_build(tx, app, key, git_ref, &sha, BuildKind::Local, actor))?;
    let mut log = Log::open(id)?;
    log.line(&format!("xone build {id}: {} at {git_ref} ({sha})", app.name));
    ui.status(format!("build {id}: {} at {git_ref} ({})", app.name, short_sha(&sha)));

    // Tests first: a failing gate stops before the image is built.
    let (tests, coverage, mut gates) = match (&test_cmd, &scratch) {
        (Some(cmd), Some(dir)) => {
            let measured =
                run_tests(ui, &mut log, app, cmd, dir, git_ref, &sha, policy.coverage_min);
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
    if r.forced.is_some() {
        for g in gates.iter_mut().filter(|g| !g.passed) {
            g.forced = true;
        }
    }
    // Every way this build can fail from here on is recorded the same way, then reported.
    let fail = |store: &mut Store, e: XoneError, image: Option<&str>| -> Result<Build> {
        let outcome = BuildOutcome {
            status: BuildStatus::Failed,
            tests: tests.as_ref(),
            coverage,
            gates: &gates,
            image,
            digest: None,
            detail: Some(&e.message),
        };
        finish(store, id, app, req, actor, &outcome, None)?;
        Err(e)
    };
    if !failed.is_empty() && r.forced.is_none() {
        return fail(store, gate_error(app, &failed, tests.as_ref()), None);
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
    let spec = BuildSpec {
        dockerfile: app.dockerfile.clone(),
        tags: tags.clone(),
        labels,
        network: r.network.clone(),
    };
    log.line(match builder {
        Builder::BuildKit => "the image, through the engine's BuildKit",
        Builder::Legacy => "the image, through the engine's legacy builder",
    });
    let path = objects.path().to_path_buf();
    let oid = commit.id();
    // The context's .dockerignore, read from the commit as `docker build` reads it from disk.
    let ignore = forge_local::read_file(&objects, oid, &in_context(".dockerignore"))?
        .map(|b| crate::domain::ignore::Ignore::parse(&String::from_utf8_lossy(&b)));
    let keep =
        vec![app.dockerfile.trim_start_matches("./").to_string(), ".dockerignore".to_string()];
    let built = {
        let progress = ui.progress(Duration::from_millis(100));
        engine.build(
            &spec,
            builder,
            move |w| {
                let repo = git2::Repository::open(&path)?;
                let filter =
                    ignore.as_ref().map(|i| forge_local::ContextFilter { ignore: i, keep: &keep });
                forge_local::export_tar_filtered(&repo, oid, &context, w, filter.as_ref())
            },
            &mut |l, header| {
                log.line(l);
                show_step(&progress, l, header);
            },
        )
    };
    if let Err(e) = built {
        return fail(store, e, None);
    }
    let reference = tags.first().cloned().unwrap_or_default();
    let mut digest = None;
    if r.push {
        let progress = ui.progress(Duration::from_millis(100));
        let mut pushed = Ok(String::new());
        for t in &tags {
            pushed = engine.push(t, &mut |l, header| {
                log.line(l);
                show_step(&progress, l, header);
            });
            if pushed.is_err() {
                break;
            }
        }
        match pushed {
            Ok(d) => digest = Some(d),
            Err(e) => return fail(store, e, Some(&reference)),
        }
    }
    finish(
        store,
        id,
        app,
        req,
        actor,
        &BuildOutcome {
            status: BuildStatus::Success,
            tests: tests.as_ref(),
            coverage,
            gates: &gates,
            image: Some(&reference),
            digest: digest.as_deref(),
            detail: None,
        },
        r.forced.clone().filter(|_| !failed.is_empty()),
    )?;
    store::build(store.conn(), id)
}

/// The engine's steps show as lines of their own; the rest only on a live line.
/// A step's header stays on the screen; other output passes as a hint.
fn show_step(progress: &Progress, line: &str, header: bool) {
    if header {
        progress.step(line);
    } else {
        progress.hint(line);
    }
}

/// Records the outcome and, for a requirement's build, an event on its story.
pub fn finish(
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
        let b = store::build(tx, id)?;
        let failed: Vec<&str> =
            o.gates.iter().filter(|g| !g.passed).map(|g| g.name.as_str()).collect();
        let base = super::notify::event(
            "build.finished",
            actor,
            &app.project,
            req.map(|r| r.key.as_str()),
        );
        let fields = serde_json::json!({
            "title": req.map(|r| r.title.clone()),
            "build": id, "app": app.name, "ref": b.git_ref, "sha": b.sha, "status": o.status,
            "failed_gates": failed, "forced": forced, "coverage": o.coverage,
            "tests": o.tests, "image": o.digest.or(o.image), "url": b.pipeline_url,
        });
        super::notify::emit(tx, base, fields)?;
        if let Some(r) = req {
            let e = store::Event {
                detail: Some(format!("{} build {id}: {}", app.name, o.status)),
                forced: forced.is_some(),
                reason: forced.clone(),
                ..events::requirement(r, actor, "build")
            };
            store::record(tx, &e)?;
        }
        Ok(())
    })
}

/// The build gates as configured under `[gates]`.
#[derive(Clone)]
pub struct Policy {
    pub coverage_min: f64,
    /// Gates turned off: `gates.tests = false`, `gates.pipeline = false`, `gates.coverage = 0`.
    disabled: Vec<&'static str>,
}

impl Policy {
    pub fn read(cfg: &Config) -> Result<Policy> {
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
    pub fn apply(&self, gates: &mut Vec<Gate>) {
        gates.retain(|g| !self.disabled.contains(&g.name.as_str()));
    }
}

/// The image an app without its own `--image` gets: REGISTRY/APP, REGISTRY being the `test`
/// environment's registry (builds go to test first), else the first environment's that has
/// one.
fn env_image(store: &Store, app: &App) -> Result<Option<String>> {
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
    ui: &Ui,
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

pub fn gate_error(app: &App, failed: &[Gate], tests: Option<&Tests>) -> XoneError {
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

/// A build's app and the repository it is built from.
pub fn app_and_repo(store: &Store, b: &Build) -> Result<(App, store::Repo)> {
    let project: ProjectKey = b.project.parse().map_err(XoneError::internal)?;
    let app = store::app(store.conn(), Some(&project), &b.app)?;
    let repo = store::repos(store.conn(), &project)?
        .into_iter()
        .find(|r| r.id == app.repo_id)
        .ok_or_else(|| XoneError::not_found(format!("app {}'s repository is gone", app.name)))?;
    Ok((app, repo))
}
