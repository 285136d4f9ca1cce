//! The requirement lifecycle: the facts each gate looks at, gathered from the store, the
//! forges and the clusters; the smoke check; and the moves (advance, reject, cancel) and
//! sign-offs, each in one transaction with its event, through the tracker.

use serde::Serialize;
use serde_json::json;

use super::branches::BranchView;
use super::{events, gray_state, revisions, target, Scope, Work};
use crate::adapters::tracker::Tracker;
use crate::adapters::Forges;
use crate::domain::gray::{Gray, Phase};
use crate::domain::lifecycle::{self, BranchFact, ReviewFact};
use crate::domain::remarks::{with_remarks, Remark};
use crate::domain::{DocKind, Facts, ProjectKey, RequirementKey, ReviewKind, Role, Status};
use crate::store::{
    self, BuildStatus, DeployKind, DeployStatus, Event, Requirement, Store, WatchStatus,
};
use crate::ui::{human_secs, short_sha, Result, Ui, XoneError};

/// For each app of the requirement (built from a repository that holds its branch): the
/// builds that stand for it. `at_tip`: builds that measured tests and coverage, passed (or
/// were forced through) their gates, and were made at the branch tip or at a test
/// integration commit containing it. Otherwise (for prod): passing builds of any commit that
/// contains the tip.
fn app_builds(
    forges: &Forges,
    store: &Store,
    key: &RequirementKey,
    repos: &[store::Repo],
    branches: &[BranchView],
    test_branch: &str,
    at_tip: bool,
) -> Result<Vec<(store::App, Vec<store::Build>)>> {
    let c = store.conn();
    let apps = store::apps(c, &key.project)?;
    let builds = store::builds(c, None, None)?;
    let mut out = Vec::new();
    for b in branches {
        let Some(repo) = repos.iter().find(|r| r.name == b.repo) else { continue };
        for app in apps.iter().filter(|a| a.repo_id == repo.id) {
            let Some(tip) = b.sha.as_deref() else {
                out.push((app.clone(), Vec::new()));
                continue;
            };
            let candidates: Vec<&store::Build> = builds
                .iter()
                .filter(|x| {
                    x.app == app.name
                        && x.project == app.project
                        && x.status == BuildStatus::Success
                })
                .filter(|x| !at_tip || (x.tests.is_some() && x.coverage.is_some()))
                .filter(|x| x.gates.iter().all(|g| g.passed || g.forced))
                .collect();
            // At the tip, or (for test) a build of the test integration that holds the tip;
            // another requirement's branch built on top of this one does not stand for it.
            let mut ok: Vec<store::Build> =
                candidates.iter().filter(|x| x.sha == tip).map(|x| (*x).clone()).collect();
            let wider: Vec<&&store::Build> = candidates
                .iter()
                .filter(|x| x.sha != tip && (!at_tip || x.git_ref == test_branch))
                .collect();
            if !wider.is_empty() {
                let objects = forges.objects(repo)?;
                let tip = git2::Oid::from_str(tip)?;
                ok.extend(
                    wider
                        .into_iter()
                        .filter(|x| {
                            git2::Oid::from_str(&x.sha)
                                .is_ok_and(|s| objects.graph_descendant_of(s, tip).unwrap_or(false))
                        })
                        .map(|x| (**x).clone()),
                );
            }
            out.push((app.clone(), ok));
        }
    }
    Ok(out)
}

/// What a gate finds of an app's deployment to an environment.
enum Found {
    /// Not there, not healthy, or not running the image of a build that stands for it.
    Problem(String),
    /// The project has no such environment.
    NoEnv,
    Healthy {
        env: Box<store::Env>,
        image: String,
    },
}

/// The images built from the commits at which `standing` (the builds that stand for the
/// requirement's branch) were made: whichever build made an image from such a commit, it is
/// an image of that commit (SPEC §2), so tests passed in a pipeline and an image built here
/// from the same commit go together.
fn images_of_commits(store: &Store, app: &store::App, standing: &[store::Build]) -> Result<Images> {
    let commits: Vec<&str> = standing.iter().map(|b| b.sha.as_str()).collect();
    let builds = store::builds(store.conn(), Some(app.id), None)?
        .into_iter()
        .filter(|b| b.status == BuildStatus::Success && commits.contains(&b.sha.as_str()))
        .filter(|b| b.image.is_some() || b.digest.is_some())
        .collect();
    let mut shas: Vec<String> = Vec::new();
    for b in standing {
        let sha = short_sha(&b.sha).to_string();
        if !shas.contains(&sha) {
            shas.push(sha);
        }
    }
    Ok(Images { builds, commits: shas })
}

/// Images that may run for a requirement: the builds that made them, and the commits that
/// stand for its branch.
struct Images {
    builds: Vec<store::Build>,
    commits: Vec<String>,
}

/// An app's deployment to an environment, read from the cluster, against the images built
/// from the commits that stand for the requirement's branch.
fn deployment_problem(
    scope: &Scope,
    store: &Store,
    app: &store::App,
    env_name: &str,
    images: &Images,
) -> Result<Found> {
    let builds = &images.builds;
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let Ok(env) = target::find_env(store, &project, env_name) else {
        return Ok(Found::NoEnv);
    };
    // A cluster that cannot be read is a missing fact, which --force can pass.
    let read = target::connect(&env, scope.remote.clone())
        .and_then(|cl| revisions::read_status(&cl, app, &env));
    let st = match read {
        Ok(st) => st,
        Err(e) => {
            return Ok(Found::Problem(format!(
                "{} in {env_name} cannot be read: {}",
                app.name, e.message
            )))
        }
    };
    let Some(st) = st else {
        return Ok(Found::Problem(format!("{} is not deployed to {env_name}", app.name)));
    };
    let image = st.image.clone().unwrap_or_default();
    if st.rollout != "complete" {
        return Ok(Found::Problem(format!(
            "{} in {env_name} is not healthy: its rollout is {} ({})",
            app.name, st.rollout, st.replicas
        )));
    }
    // By what runs, not by the annotation's build number: that is this machine's record,
    // and another machine's build of the same commit has another.
    let runs_it = builds.iter().any(|b| match &b.digest {
        Some(d) => {
            let digest = d.rsplit('@').next().unwrap_or(d);
            image.ends_with(digest) || st.digest.as_deref() == Some(digest)
        }
        None => b.image.as_deref() == Some(image.as_str()),
    });
    if !runs_it {
        let which = match (images.commits.is_empty(), builds.is_empty()) {
            (true, _) => "no build stands for its branch".to_string(),
            (false, true) => {
                format!("no image was built from {} here", images.commits.join(", "))
            }
            (false, false) => {
                let ids: Vec<String> = builds.iter().map(|b| format!("#{}", b.id)).collect();
                format!("images from {}: builds {}", images.commits.join(", "), ids.join(", "))
            }
        };
        return Ok(Found::Problem(format!(
            "{} in {env_name} runs {image}, not an image built from a commit that stands for its branch ({which})",
            app.name
        )));
    }
    Ok(Found::Healthy { env: Box::new(env), image })
}

/// The facts only the clusters and the release records tell, for the step out of
/// `submitted`, `gray` or `released`. Returns the smoke checks to run when the gate is
/// otherwise open: (app, environment, image).
fn release_facts(
    scope: &Scope,
    forges: &Forges,
    store: &Store,
    req: &Requirement,
    branches: &[BranchView],
    test_branch: &str,
    facts: &mut Facts,
) -> Result<Vec<(store::App, store::Env, String)>> {
    let key = req.key();
    let repos = store::repos(store.conn(), &key.project)?;
    let mut smoke = Vec::new();
    match req.status {
        Status::Submitted => {
            facts.clusters_checked = true;
            facts.test_env_smoke =
                target::find_env(store, &key.project, "test").ok().map(|e| e.smoke.is_some());
            for (app, builds) in
                app_builds(forges, store, &key, &repos, branches, test_branch, true)?
            {
                let images = images_of_commits(store, &app, &builds)?;
                let problem = match deployment_problem(scope, store, &app, "test", &images)? {
                    Found::Problem(p) => Some(p),
                    Found::Healthy { env, image } => {
                        smoke.push((app.clone(), *env, image));
                        None
                    }
                    // The environment's absence is one item of its own.
                    Found::NoEnv => None,
                };
                facts.test_deploys.push((app.name.clone(), problem));
            }
        }
        Status::Gray => {
            facts.clusters_checked = true;
            let require_gray = scope
                .config
                .get("gates.require_gray")?
                .and_then(|e| e.value.as_bool())
                .unwrap_or(false);
            let prod = target::find_env(store, &key.project, "prod").ok();
            let cluster = prod.as_ref().map(|e| target::connect(e, scope.remote.clone()));
            for (app, builds) in
                app_builds(forges, store, &key, &repos, branches, test_branch, false)?
            {
                let images = images_of_commits(store, &app, &builds)?;
                let problem = match deployment_problem(scope, store, &app, "prod", &images)? {
                    Found::Problem(p) => Some(p),
                    Found::NoEnv => {
                        Some(format!("project {} has no prod environment", key.project))
                    }
                    Found::Healthy { .. } => None,
                };
                facts.prod_deploys.push((app.name.clone(), problem));
                let (problem, promoted) = match latest_gray(store, cluster.as_ref(), &key, &app) {
                    Err(e) => (Some(format!("the gray release of {} in prod cannot be read: {}", app.name, e.message)), false),
                    Ok(None) => (None, false),
                    Ok(Some(g)) => match g.phase {
                        Phase::Progressing
                        | Phase::Paused
                        | Phase::Promoting
                        | Phase::Aborting => (
                            Some(format!(
                                "the gray release of {} in prod is still in flight (step {} of {}): promote or abort it",
                                app.name,
                                g.step + 1,
                                g.steps.len()
                            )),
                            false,
                        ),
                        Phase::Promoted if g.passed != Some(true) => (
                            Some(format!(
                                "the gray release of {} in prod was promoted without its analyses passing",
                                app.name
                            )),
                            false,
                        ),
                        Phase::Promoted => (None, true),
                        // Its last gray release was pulled back: what runs did not pass one.
                        Phase::Aborted => (
                            Some(format!(
                                "the gray release of {} in prod was aborted: release it through one that is promoted",
                                app.name
                            )),
                            false,
                        ),
                    },
                };
                facts.gray_releases.push((app.name.clone(), problem));
                if require_gray && !promoted {
                    facts.gray_missing.push(app.name.clone());
                }
            }
        }
        Status::Released => {
            let window = scope.config.duration("gates.watch_window").as_secs() as i64;
            let apps = app_builds(forges, store, &key, &repos, branches, test_branch, false)?;
            for (app, _) in apps {
                let released = store::deploys(
                    store.conn(),
                    Some(&app.project),
                    Some(&app.name),
                    Some("prod"),
                    Some(key.to_string().as_str()),
                )?
                .into_iter()
                .find(|d| d.kind == DeployKind::Deploy && d.status == DeployStatus::Succeeded);
                let problem = match released {
                    None => Some(format!(
                        "{} was not released to prod by {key} (a deployment that rolled out)",
                        app.name
                    )),
                    Some(d) => {
                        let passed = store::watches(
                            store.conn(),
                            &app.project,
                            Some(&app.name),
                            Some("prod"),
                        )?
                        .into_iter()
                        .any(|w| {
                            w.status == WatchStatus::Passed
                                && w.window_secs >= window
                                && w.started_at >= d.started_at
                        });
                        (!passed).then(|| {
                            format!(
                                "no post-release watch of {} on prod at least {} long passed since its release (gates.watch_window)",
                                app.name,
                                human_secs(window)
                            )
                        })
                    }
                };
                facts.watches.push((app.name.clone(), problem));
            }
        }
        _ => {}
    }
    Ok(smoke)
}

/// The requirement's latest gray release of `app` in prod: the cluster's, when it is the
/// requirement's, else the newest this machine has seen.
fn latest_gray(
    store: &Store,
    cluster: Option<&Result<crate::adapters::cluster::Cluster>>,
    key: &RequirementKey,
    app: &store::App,
) -> Result<Option<Gray>> {
    if let Some(cl) = cluster {
        let cl = cl.as_ref().map_err(|e| e.clone())?;
        if let Some(h) = gray_state::read(cl, &app.name)? {
            if h.gray.requirement.as_deref() == Some(key.to_string().as_str()) {
                return Ok(Some(h.gray));
            }
        }
    }
    Ok(store::grays_of(store.conn(), &key.to_string())?
        .into_iter()
        .find(|(env, g)| env == "prod" && g.app == app.name)
        .map(|(_, g)| g))
}

/// Runs the test environment's smoke command for each app; the first failure's output.
fn run_smoke(ui: &Ui, runs: &[(store::App, store::Env, String)]) -> Result<Option<String>> {
    for (app, env, image) in runs {
        let Some(cmd) = &env.smoke else { continue };
        ui.status(format!("smoke check of {} on {}: {cmd}", app.name, env.name));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("XONE_APP", &app.name)
            .env("XONE_ENV", &env.name)
            .env("XONE_NAMESPACE", &env.namespace)
            .env("XONE_IMAGE", image)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| XoneError::internal("cannot run the smoke command with sh").cause(e))?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            let code =
                out.status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
            return Ok(Some(format!(
                "smoke check of {} on {} failed (exit {code}): {}",
                app.name,
                env.name,
                tail.trim()
            )));
        }
    }
    Ok(None)
}

/// Gathers what the gates look at: documents, people, dates, reviews, sign-offs, and the
/// feature branches as their forge reports them now (`branches`, measured by the caller).
pub fn gather_facts(
    forges: &Forges,
    store: &Store,
    req: &Requirement,
    branches: &[BranchView],
    test_branch: &str,
) -> Result<Facts> {
    let c = store.conn();
    let key = req.key();
    let docs = store::documents(c, &key)?;
    let has_doc = |k: DocKind| docs.iter().any(|d| d.kind == k);
    let first_sha = docs
        .iter()
        .find(|d| d.kind == DocKind::Requirement && d.version == 1)
        .map(|d| d.sha256.clone());
    // Versions that only carry a review's record are not the authors' edits.
    let records: Vec<i64> = store::reviews(c, Some(&key))?
        .into_iter()
        .filter(|r| r.kind == ReviewKind::Requirement)
        .filter_map(|r| r.doc_version)
        .collect();
    let latest_own = docs
        .iter()
        .filter(|d| d.kind == DocKind::Requirement && !records.contains(&d.version))
        .max_by_key(|d| d.version);
    let review = |k: ReviewKind| -> Result<Option<ReviewFact>> {
        Ok(store::latest_review(c, &key, k)?.map(|(id, verdict)| ReviewFact { id, verdict }))
    };
    let people = store::assignments(c, &key)?;
    let project: ProjectKey = req.project.parse().map_err(XoneError::internal)?;
    let repos = store::repos(c, &project)?;
    let mut test_integration = Vec::new();
    for b in branches {
        let repo = repos.iter().find(|r| r.name == b.repo);
        let held = match (repo, &b.sha) {
            (Some(r), Some(sha)) => forges.for_repo(r)?.contains(r, test_branch, sha)?,
            _ => false,
        };
        test_integration.push((b.repo.clone(), b.name.clone(), held));
    }
    let app_builds = app_builds(forges, store, &key, &repos, branches, test_branch, true)?
        .into_iter()
        .map(|(app, builds)| (app.name, !builds.is_empty()))
        .collect();
    let branches = branches
        .iter()
        .map(|b| BranchFact { repo: b.repo.clone(), branch: b.name.clone(), ahead: b.ahead })
        .collect();
    let (mut qa_signoff, mut pm_acceptance) = (false, false);
    for s in store::signoffs(c, &key)? {
        if s.stage.as_deref() == Some(Status::Gray.as_str()) {
            pm_acceptance |= store::has_role(c, &project, &s.user, Role::Pm)?;
        } else {
            qa_signoff |= store::has_role(c, &project, &s.user, Role::Qa)?;
        }
    }
    Ok(Facts {
        app_builds,
        test_integration,
        test_integration_branch: test_branch.to_string(),
        requirement_doc_edited: matches!((latest_own, &first_sha), (Some(d), Some(first)) if d.sha256 != *first),
        pm_assigned: people.iter().any(|p| p.role == Role::Pm),
        start_date: req.dates.start.is_some(),
        end_date: req.dates.end.is_some(),
        requirement_review: review(ReviewKind::Requirement)?,
        tech_design_doc: has_doc(DocKind::TechDesign),
        tech_design_review: review(ReviewKind::TechDesign)?,
        branches,
        test_cases_review: review(ReviewKind::TestCases)?,
        test_submit_date: req.dates.test_submit.is_some(),
        qa_signoff,
        pm_acceptance,
        release_plan_doc: has_doc(DocKind::ReleasePlan),
        rollback_plan_doc: has_doc(DocKind::RollbackPlan),
        ..Facts::default()
    })
}

/// A move of a requirement from one state to the next, as `advance --json` tells it.
#[derive(Serialize)]
pub struct Transition {
    pub key: String,
    pub from: Status,
    pub to: Status,
    pub forced: bool,
    pub missing: Vec<lifecycle::Missing>,
}

/// Moves the requirement to `to` in one transaction with its event, through the tracker,
/// refusing if someone else moved it since `req` was read. A `comment` (a reason, a forced
/// gate) goes to the tracker too.
fn transition(
    store: &mut Store,
    tracker: &dyn Tracker,
    req: &Requirement,
    to: Status,
    e: Event,
    comment: Option<&str>,
) -> Result<()> {
    let key = req.key();
    store.write(|tx| {
        let now = store::requirement(tx, &key)?;
        if now.status != req.status {
            return Err(XoneError::conflict(format!(
                "{key} changed from {} to {} while this command ran",
                req.status, now.status
            ))
            .hint("look at it again with `xone requirement show`"));
        }
        tracker.transition(tx, &key, req.status, to)?;
        if let Some(text) = comment {
            tracker.comment(tx, &key, &e.actor, text)?;
        }
        let (name, fields) = match e.action.as_str() {
            "reject" => ("requirement.rejected", json!({ "from": req.status, "to": to, "reason": e.reason })),
            "cancel" => ("requirement.cancelled", json!({ "from": req.status, "reason": e.reason })),
            _ => (
                "requirement.advanced",
                json!({ "from": req.status, "to": to, "forced": e.forced, "reason": e.reason, "detail": e.detail }),
            ),
        };
        super::notify::on_requirement(tx, req, name, &e.actor, fields)?;
        store::record(
            tx,
            &Event { from: Some(req.status.to_string()), to: Some(to.to_string()), ..e },
        )
    })
}

/// Moves the requirement one step on when that step's gate is open (or `force`d, on the
/// record). Out of `submitted`, the smoke check runs last; its failure rejects the
/// requirement back to `developing`.
pub fn advance(
    scope: &Scope,
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    force: bool,
    reason: Option<String>,
) -> Result<Transition> {
    let req = store::requirement(store.conn(), key)?;
    let Some(to) = req.status.next() else {
        return Err(XoneError::gate(format!("{key} is {}: there is no next step", req.status)));
    };
    let branches = super::branches::views(w.forges, store.conn(), Some(key), None)?;
    let test_branch = super::branches::integration_branch(scope.config, "test")?;
    let mut facts = gather_facts(w.forges, store, &req, &branches, &test_branch)?;
    let smoke = release_facts(scope, w.forges, store, &req, &branches, &test_branch, &mut facts)?;
    let missing = lifecycle::gate(req.status, key, &facts);
    // The smoke check runs last, on a deployment the gate found right: only its failure
    // sends the requirement back to development.
    if missing.is_empty() && req.status == Status::Submitted {
        if let Some(output) = run_smoke(scope.ui, &smoke)? {
            let e = Event {
                reason: Some(output.clone()),
                ..events::requirement(&req, w.actor, "reject")
            };
            transition(store, w.tracker, &req, Status::Developing, e, Some(&output))?;
            return Err(XoneError::gate(format!(
                "{key} failed its smoke check: rejected back to developing"
            ))
            .cause(output)
            .hint(format!(
                "fix it, deploy again and advance: xone requirement log {key} has the output"
            )));
        }
    }
    if !missing.is_empty() && !force {
        let mut err =
            XoneError::gate(format!("{key} cannot enter {to}: {} missing", missing.len()));
        for m in &missing {
            err = err.cause(&m.item);
        }
        for m in &missing {
            err = err.hint(m.hint.clone());
        }
        return Err(err.hint(format!(
            "or pass the gate knowingly: xone requirement advance {key} --force --reason \"…\""
        )));
    }
    let forced = !missing.is_empty();
    let detail = forced.then(|| {
        let items: Vec<&str> = missing.iter().map(|m| m.item.as_str()).collect();
        format!("gate forced past: {}", items.join("; "))
    });
    let comment = detail.as_ref().map(|d| match &reason {
        Some(r) => format!("{d} (reason: {r})"),
        None => d.clone(),
    });
    let e = Event { detail, reason, forced, ..events::requirement(&req, w.actor, "advance") };
    transition(store, w.tracker, &req, to, e, comment.as_deref())?;
    Ok(Transition { key: key.to_string(), from: req.status, to, forced, missing })
}

/// Whether a requirement in this state can be rejected back to `developing`; the error says
/// why not.
pub fn check_rejectable(store: &Store, key: &RequirementKey) -> Result<Requirement> {
    let req = store::requirement(store.conn(), key)?;
    if !req.status.can_reject() {
        return Err(XoneError::gate(format!(
            "{key} is {}: only submitted or testing work can be rejected",
            req.status
        ))
        .hint("cancel it instead with `xone requirement cancel`"));
    }
    Ok(req)
}

/// Sends submitted or testing work back to `developing`, with the reason.
pub fn reject(w: &Work, store: &mut Store, req: &Requirement, reason: String) -> Result<()> {
    let e = Event { reason: Some(reason.clone()), ..events::requirement(req, w.actor, "reject") };
    transition(store, w.tracker, req, Status::Developing, e, Some(&reason))
}

/// Cancels a requirement that is not closed, with the reason.
pub fn cancel(w: &Work, store: &mut Store, req: &Requirement, reason: String) -> Result<()> {
    let e = Event { reason: Some(reason.clone()), ..events::requirement(req, w.actor, "cancel") };
    transition(store, w.tracker, req, Status::Cancelled, e, Some(&reason))
}

/// Records a sign-off by the acting user: QA's in submitted or testing (a qa member), the
/// product manager's acceptance of the gray release in gray (a pm member).
pub fn signoff(
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    note: Option<String>,
) -> Result<()> {
    let actor = w.actor;
    let req = store::open_requirement(store.conn(), key)?;
    if req.status == Status::Gray {
        if !store::has_role(store.conn(), &key.project, actor, Role::Pm)? {
            return Err(XoneError::gate(format!(
                "{actor} is not a pm member of {}: in gray, the product manager accepts the gray release",
                key.project
            ))
            .hint(format!(
                "xone project member add {} {actor} --role pm, or act as a pm member (XONE_USER)",
                key.project
            )));
        }
        return store.write(|tx| {
            let at = store::insert_signoff(tx, key, actor, note.as_deref(), Status::Gray.as_str())?;
            let text = match &note {
                Some(n) => format!("gray release accepted by {actor}: {n}"),
                None => format!("gray release accepted by {actor}"),
            };
            let remark = Remark::Signoff { stage: Status::Gray, by: actor.to_string(), at };
            w.tracker.comment(tx, key, actor, &with_remarks(&text, &[remark]))?;
            let fields = json!({ "stage": Status::Gray, "note": note });
            super::notify::on_requirement(tx, &req, "requirement.signed_off", actor, fields)?;
            let e = Event { detail: Some(text), ..events::requirement(&req, actor, "signoff") };
            store::record(tx, &e)
        });
    }
    if !store::has_role(store.conn(), &key.project, actor, Role::Qa)? {
        return Err(XoneError::gate(format!(
            "{actor} is not a qa member of {}: only QA signs off",
            key.project
        ))
        .hint(format!(
            "xone project member add {} {actor} --role qa, or act as a qa member (XONE_USER)",
            key.project
        )));
    }
    if !matches!(req.status, Status::Submitted | Status::Testing) {
        return Err(XoneError::gate(format!(
            "{key} is {}: QA signs off on work in submitted or testing, the product manager in gray",
            req.status
        )));
    }
    store.write(|tx| {
        let at = store::insert_signoff(tx, key, actor, note.as_deref(), req.status.as_str())?;
        let text = match &note {
            Some(n) => format!("signed off by {actor}: {n}"),
            None => format!("signed off by {actor}"),
        };
        let remark = Remark::Signoff { stage: req.status, by: actor.to_string(), at };
        w.tracker.comment(tx, key, actor, &with_remarks(&text, &[remark]))?;
        let fields = json!({ "stage": req.status, "note": note });
        super::notify::on_requirement(tx, &req, "requirement.signed_off", actor, fields)?;
        store::record(
            tx,
            &Event { detail: note.clone(), ..events::requirement(&req, actor, "signoff") },
        )
    })
}

/// What xone's gates would have asked for on the way from the requirement's stage forward to
/// `to`, judged on what this machine knows and the forges say now (the clusters are not
/// asked): a move made around xone, in Jira, is reported with it. Empty for a move back or a
/// cancellation, which no gate guards.
pub fn would_refuse(
    scope: &Scope,
    forges: &Forges,
    store: &Store,
    req: &Requirement,
    to: Status,
) -> Result<Vec<lifecycle::Missing>> {
    let mut stages = Vec::new();
    let mut at = req.status;
    while at != to {
        stages.push(at);
        match at.next() {
            Some(n) => at = n,
            None => return Ok(Vec::new()),
        }
    }
    if stages.is_empty() {
        return Ok(Vec::new());
    }
    let key = req.key();
    let test_branch = super::branches::integration_branch(scope.config, "test")?;
    let (branches, unread) = match super::branches::views(forges, store.conn(), Some(&key), None) {
        Ok(b) => (b, None),
        Err(e) => (Vec::new(), Some(e.message)),
    };
    let facts = match gather_facts(forges, store, req, &branches, &test_branch) {
        Ok(f) => f,
        Err(e) => {
            return Ok(vec![lifecycle::Missing {
                item: format!("its gates could not be judged: {}", e.message),
                hint: format!("xone requirement show {key}"),
            }])
        }
    };
    let mut out: Vec<lifecycle::Missing> = Vec::new();
    if let Some(why) = unread {
        out.push(lifecycle::Missing {
            item: format!("its branches could not be read: {why}"),
            hint: format!("xone branch list {key}"),
        });
    }
    for stage in stages {
        for m in lifecycle::gate(stage, &key, &facts) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use rusqlite::Connection;

    use super::*;
    use crate::adapters::tracker_local::BuiltinTracker;
    use crate::adapters::{gitlab, http};
    use crate::ops::requirement::{self, NewRequirement};

    /// The built-in tracker, with every call written down.
    #[derive(Default)]
    struct Recording {
        calls: RefCell<Vec<String>>,
    }

    impl Tracker for Recording {
        fn create(
            &self,
            c: &Connection,
            project: &ProjectKey,
            title: &str,
            actor: &str,
        ) -> Result<RequirementKey> {
            self.calls.borrow_mut().push(format!("create {project} {title}"));
            BuiltinTracker.create(c, project, title, actor)
        }
        fn retitle(&self, c: &Connection, key: &RequirementKey, title: &str) -> Result<()> {
            self.calls.borrow_mut().push(format!("retitle {key} {title}"));
            BuiltinTracker.retitle(c, key, title)
        }
        fn transition(
            &self,
            c: &Connection,
            key: &RequirementKey,
            from: Status,
            to: Status,
        ) -> Result<()> {
            self.calls.borrow_mut().push(format!("transition {key} {from} -> {to}"));
            BuiltinTracker.transition(c, key, from, to)
        }
        fn comment(
            &self,
            _: &Connection,
            key: &RequirementKey,
            actor: &str,
            text: &str,
        ) -> Result<()> {
            self.calls.borrow_mut().push(format!("comment {key} by {actor}: {text}"));
            Ok(())
        }
        fn link(
            &self,
            _: &Connection,
            key: &RequirementKey,
            id: &str,
            _: &str,
            _: Option<&str>,
        ) -> Result<()> {
            self.calls.borrow_mut().push(format!("link {key} {id}"));
            Ok(())
        }
        fn changed_since(
            &self,
            c: &Connection,
            project: &ProjectKey,
            since: &str,
        ) -> Result<Vec<RequirementKey>> {
            BuiltinTracker.changed_since(c, project, since)
        }
    }

    fn forges() -> Forges {
        Forges::new(gitlab::Settings {
            url: None,
            token: None,
            http: http::Settings {
                timeout: std::time::Duration::from_secs(1),
                retries: 0,
                verbose: false,
            },
            mirrors: std::env::temp_dir(),
            workspace: std::env::temp_dir(),
        })
    }

    fn project(store: &mut Store) -> ProjectKey {
        let key: ProjectKey = "PAY".parse().unwrap();
        store.write(|tx| store::insert_project(tx, &key, "Payments", "", "alice")).unwrap();
        key
    }

    #[test]
    fn the_lifecycle_creates_moves_and_comments_through_the_tracker() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let pay = project(&mut store);
        let tracker = Recording::default();
        let new = NewRequirement {
            project: &pay,
            title: "Refunds",
            start: None,
            end: None,
            first_edit: None,
            assign: &[],
        };
        let key = requirement::create(&mut store, &tracker, &new, "alice").unwrap();
        let (ui, forges) = (Ui::new(false, true, false), forges());
        let w = Work { ui: &ui, forges: &forges, tracker: &tracker, actor: "quinn" };

        store.write(|tx| store::set_status(tx, &key, Status::Submitted)).unwrap();
        let req = check_rejectable(&store, &key).unwrap();
        reject(&w, &mut store, &req, "the totals are wrong".into()).unwrap();
        let req = store::open_requirement(store.conn(), &key).unwrap();
        assert_eq!(req.status, Status::Developing);
        cancel(&w, &mut store, &req, "no longer wanted".into()).unwrap();

        assert_eq!(
            tracker.calls.borrow().as_slice(),
            [
                "create PAY Refunds",
                "transition PAY-1 submitted -> developing",
                "comment PAY-1 by quinn: the totals are wrong",
                "transition PAY-1 developing -> cancelled",
                "comment PAY-1 by quinn: no longer wanted",
            ]
        );
        let actions: Vec<String> =
            store::events(store.conn(), &key).unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["create", "reject", "cancel"]);
        assert_eq!(store::requirement(store.conn(), &key).unwrap().status, Status::Cancelled);
    }

    #[test]
    fn a_move_someone_else_made_first_is_a_conflict_and_reaches_no_tracker() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let pay = project(&mut store);
        let key =
            store.write(|tx| store::insert_requirement(tx, &pay, "Refunds", "alice")).unwrap();
        store.write(|tx| store::set_status(tx, &key, Status::Testing)).unwrap();
        let req = check_rejectable(&store, &key).unwrap();
        // Another process moves it on meanwhile.
        store.write(|tx| store::set_status(tx, &key, Status::Gray)).unwrap();
        let tracker = Recording::default();
        let (ui, forges) = (Ui::new(false, true, false), forges());
        let w = Work { ui: &ui, forges: &forges, tracker: &tracker, actor: "quinn" };
        let err = reject(&w, &mut store, &req, "late".into()).unwrap_err();
        assert_eq!(err.kind, crate::ui::Kind::Conflict, "{}", err.message);
        assert!(tracker.calls.borrow().is_empty());
        assert_eq!(store::requirement(store.conn(), &key).unwrap().status, Status::Gray);
    }

    #[test]
    fn the_builtin_tracker_lists_what_changed_since_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let pay = project(&mut store);
        let tracker = BuiltinTracker;
        let first = store.write(|tx| tracker.create(tx, &pay, "One", "alice")).unwrap();
        let second = store.write(|tx| tracker.create(tx, &pay, "Two", "alice")).unwrap();
        let all = tracker.changed_since(store.conn(), &pay, "1970-01-01T00:00:00Z").unwrap();
        assert_eq!(all, [first.clone(), second.clone()]);
        assert!(tracker
            .changed_since(store.conn(), &pay, "2999-01-01T00:00:00Z")
            .unwrap()
            .is_empty());
        // A move is a change.
        store
            .write(|tx| tracker.transition(tx, &first, Status::Draft, Status::RequirementReview))
            .unwrap();
        let since = store::requirement(store.conn(), &first).unwrap().updated_at;
        assert!(tracker.changed_since(store.conn(), &pay, &since).unwrap().contains(&first));
    }
}
