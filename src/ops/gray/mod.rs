//! Gray releases with no controller in the cluster. The new version runs as a canary
//! Deployment `APP-canary` beside the stable `APP`. By instances, both are behind the app's
//! Service: at each step the canary grows to its instance count and becomes Available before
//! the stable shrinks by as many, so capacity never dips. By weight, a router sends the
//! canary its share (`route`). The state lives in the cluster (`ops::gray_state`); every
//! command reads it afresh, so a release started on one machine is carried on from any other,
//! and a command interrupted half-way is finished by the next. What acts on the cluster is in
//! `work`; this module is the commands' entry points.

mod route;
mod work;

use route::router_for;
use work::{app_image, journal, pod_info, stable_selector};

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use super::analysis::{self, Analysis, PodInfo, Report, Scene};
use super::gray_state::{self, Held};
use super::release::{self, Resolved, Source};
use super::target::{self, Target};
use super::Scope;
use crate::adapters::prometheus::Prometheus;
use crate::clock;
use crate::domain::gray::{self, Gray, Phase, Step};
use crate::domain::judge::Judgement;
use crate::domain::RequirementKey;
use crate::store::{self, App, Env, Store};
use crate::ui::{Kind, Result, XoneError};

/// What `gray start` is asked for.
pub struct Start<'a> {
    pub source: Source<'a>,
    pub requirement: Option<&'a RequirementKey>,
    pub instances: Option<u32>,
    pub weight: Option<u32>,
    pub steps: Vec<Step>,
    pub pause: Option<u64>,
    pub analyses: Vec<String>,
    pub nodes: Vec<String>,
    /// Follow the canary until it is Available and the stable has shrunk.
    pub wait: bool,
}

/// Why a step is taken though its gate would not let it: `--force --reason`.
pub struct Forced<'a> {
    pub reason: &'a str,
}

/// The pods of one track and what they run.
#[derive(Clone, Debug, Serialize)]
pub struct Track {
    pub deployment: String,
    pub image: Option<String>,
    /// Replicas asked for.
    pub replicas: u32,
    pub ready: u32,
    pub pods: Vec<PodInfo>,
}

/// A gray release as it stands, recomputed from the cluster and Prometheus.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub app: String,
    pub env: String,
    pub namespace: String,
    pub phase: Phase,
    /// The step it is at, counted from 1, of `steps`.
    pub step: usize,
    pub steps: usize,
    /// The canary's instances at each step (by weight: its share of the traffic, in %).
    pub instances: Vec<u32>,
    /// By weight: the canary's share of the traffic now, and the router that splits it.
    pub weight: Option<u32>,
    pub router: Option<gray::Router>,
    pub canary_image: String,
    /// The canary's image by digest, once its pods reported it.
    pub canary_digest: Option<String>,
    pub stable_image: String,
    pub requirement: Option<String>,
    pub build: Option<i64>,
    pub step_started_at: String,
    pub pause_secs: Option<u64>,
    /// Seconds of the pause still to run; `null` without a pause.
    pub pause_left_secs: Option<u64>,
    pub nodes: Vec<String>,
    pub canary: Track,
    pub stable: Track,
    pub analyses: Vec<analysis::Outcome>,
    pub started_at: String,
    pub started_by: String,
    pub passed: Option<bool>,
    pub marks: Vec<gray::Mark>,
}

/// A gray release in one environment, for `gray list`.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    pub project: String,
    pub env: String,
    #[serde(flatten)]
    pub gray: Gray,
}

/// The time a pause, a start or a mark is written with.
fn now() -> String {
    clock::now()
}

fn started_unix(at: &str) -> i64 {
    crate::domain::date::parse_rfc3339(at).unwrap_or_else(clock::unix_now)
}

/// Seconds of the current step's pause still to run, on xone's clock.
pub fn pause_left(g: &Gray) -> Option<u64> {
    g.pause_left(started_unix(&g.step_started_at), clock::unix_now())
}

/// One gray release's working set: the target and its state as last read.
struct Work<'s, 'a> {
    scope: &'s Scope<'a>,
    t: Target,
    held: Held,
    actor: String,
}

/// Starts a gray release: checks everything first, writes the state, then puts the canary up.
pub fn start(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    s: &Start,
    actor: &str,
) -> Result<Status> {
    let analyses = analysis::resolve(scope.config, &s.analyses)?;
    let Resolved { image, build, requirement, .. } =
        release::resolve(store, &app, s.source, s.requirement)?;
    let t = Target::connect(app, env, scope.remote.clone())?;
    let (app, env) = (&t.app, &t.env);
    let existing = gray_state::read(&t.cluster, &app.name)?;
    if let Some(h) = existing.as_ref().filter(|h| h.gray.phase.in_flight()) {
        return Err(gray_state::busy(&h.gray, &env.name));
    }
    let stable = target::find_deployment(&t.cluster, &app.name)?.ok_or_else(|| {
        XoneError::gate(format!(
            "{} is not deployed to {}: a gray release needs the stable version running",
            app.name, env.name
        ))
        .hint(format!("deploy it first: xone deploy {} --env {} --build ID", app.name, env.name))
    })?;
    let replicas = stable.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32;
    let (steps, router) = match s.weight {
        Some(weight) => {
            let router = router_for(&t, &stable)?;
            let weights = gray::plan_weights(&s.steps, weight).map_err(|e| {
                XoneError::gate(format!("cannot gray-release {} in {}", app.name, env.name))
                    .cause(e)
                    .hint("--steps 10%,50% with --weight")
            })?;
            (weights, Some(router))
        }
        None => {
            let steps = gray::plan(&s.steps, s.instances, replicas).map_err(|e| {
                XoneError::gate(format!("cannot gray-release {} in {}", app.name, env.name))
                    .cause(e)
                    .hint("choose --instances or --steps below the app's replicas, or raise its replicas")
            })?;
            (steps, None)
        }
    };
    if !s.nodes.is_empty() {
        let known = t.cluster.nodes()?;
        let unknown: Vec<&String> = s.nodes.iter().filter(|n| !known.contains(n)).collect();
        if !unknown.is_empty() {
            return Err(XoneError::gate(format!(
                "the cluster of {} has no node {}",
                env.name,
                unknown.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .cause(format!("its nodes: {}", known.join(", ")))
            .hint("--on-nodes takes node names as `kubectl get nodes` shows them"));
        }
    }
    probe(scope, &t, &analyses, &stable)?;
    let stable_image = app_image(&stable, &app.name).unwrap_or_default();
    let at = now();
    let mut g = Gray {
        app: app.name.clone(),
        namespace: env.namespace.clone(),
        canary_digest: image.contains('@').then(|| image.clone()),
        canary_image: image,
        stable_image,
        stable_replicas: replicas,
        steps,
        step: 0,
        step_started_at: at.clone(),
        pause_secs: s.pause,
        analyses: analyses.clone(),
        phase: Phase::Progressing,
        requirement,
        build,
        nodes: s.nodes.clone(),
        router,
        started_at: at.clone(),
        started_by: actor.to_string(),
        passed: None,
        marks: Vec::new(),
    };
    let what = share(&g);
    g.mark(&at, actor, "start", Some(what.clone()), false);
    let held = gray_state::create(&t.cluster, &g, &env.name, existing.as_ref())?;
    journal(store, &t, &held.gray, actor, "gray started", what)?;
    let mut w = Work { scope, t, held, actor: actor.to_string() };
    if s.wait {
        w.settle_or_abort(store)?;
        w.note_digest()?;
    } else {
        w.apply_canary(&stable)?;
        scope.ui.status(format!(
            "applied the canary of {}; the stable shrinks when it is Available (the next `xone gray` command of it sees to that)",
            w.t.app.name
        ));
    }
    w.status()
}

/// Runs the analyses' queries once over the stable's pods, so that one Prometheus cannot run
/// is refused (exit 4 naming it) before anything changes.
fn probe(scope: &Scope, t: &Target, analyses: &[Analysis], stable: &Deployment) -> Result<()> {
    let Some(url) = &t.env.prometheus else { return Ok(()) };
    let prom = Prometheus::new(url, scope.remote.clone())?;
    let pods: Vec<PodInfo> = t
        .cluster
        .pods(&stable_selector(stable))?
        .iter()
        .map(|p| pod_info(p, &t.app.name))
        .collect();
    let mut scene = scene(scope, &t.env, &[], &pods);
    scene.window = scene.window.min(60);
    match analysis::evaluate(Some(&prom), analyses, &scene, clock::wall_unix()) {
        Ok(_) => Ok(()),
        // Prometheus down is said when the analyses are asked for; the start can go on.
        Err(e) if e.kind == Kind::Remote => Ok(()),
        Err(e) => Err(e),
    }
}

/// What the analyses look at, as the settings say.
fn scene<'a>(
    scope: &'a Scope,
    env: &'a Env,
    canary: &'a [PodInfo],
    stable: &'a [PodInfo],
) -> Scene<'a> {
    let config = scope.config;
    Scene {
        namespace: &env.namespace,
        canary,
        stable,
        window: config.duration("gray.window").as_secs().max(1),
        min_samples: config.int("gray.min_samples").unwrap_or(10).max(1) as usize,
        range: config.duration("gray.range").as_secs().max(1),
        pod_label: config.str("gray.pod_label").unwrap_or("pod"),
        namespace_label: config.str("gray.namespace_label").unwrap_or("namespace"),
    }
}

/// What the canary has: `IMAGE on 2 of 3 instances`, or `IMAGE on 10% of the traffic`.
fn share(g: &Gray) -> String {
    match g.weight() {
        Some(w) => format!(
            "{} on {w}% of the traffic ({} instance(s))",
            g.canary_image,
            g.canary_replicas()
        ),
        None => format!(
            "{} on {} of {} instances",
            g.canary_image,
            g.canary_replicas(),
            g.stable_replicas
        ),
    }
}

/// Opens the app's gray release in an environment, which must exist.
fn open<'s, 'a>(scope: &'s Scope<'a>, app: App, env: Env, actor: &str) -> Result<Work<'s, 'a>> {
    let t = Target::connect(app, env, scope.remote.clone())?;
    let held = gray_state::read(&t.cluster, &t.app.name)?.ok_or_else(|| {
        XoneError::not_found(format!("{} has no gray release in {}", t.app.name, t.env.name)).hint(
            format!("start one: xone gray start {} --env {} --build ID", t.app.name, t.env.name),
        )
    })?;
    Ok(Work { scope, t, held, actor: actor.to_string() })
}

/// What `gray status` shows, recomputed from the cluster and Prometheus.
pub fn status(scope: &Scope, app: App, env: Env, actor: &str) -> Result<Status> {
    open(scope, app, env, actor)?.status()
}

/// Every gray release of the project's environments (or one), finished ones left out unless
/// `all`.
/// Environments whose cluster cannot be read are warned of and named in the second list.
pub fn list(scope: &Scope, envs: &[Env], all_too: bool) -> Result<(Vec<Listed>, Vec<String>)> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for env in envs {
        let read = target::connect(env, scope.remote.clone()).and_then(|cl| gray_state::all(&cl));
        match read {
            Ok(all) => out.extend(
                all.into_iter().filter(|h| all_too || h.gray.phase.in_flight()).map(|h| Listed {
                    project: env.project.clone(),
                    env: env.name.clone(),
                    gray: h.gray,
                }),
            ),
            Err(e) => {
                scope.ui.warn(format!("{} {}: {}", env.project, env.name, e.message));
                unreadable.push(env.name.clone());
            }
        }
    }
    Ok((out, unreadable))
}

/// Widens the release to its next step (the last step is promotion) when the pause has
/// passed and the analyses pass, or when forced.
pub fn step(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    forced: Option<Forced>,
    actor: &str,
) -> Result<Status> {
    let mut w = open(scope, app, env, actor)?;
    w.must_be_steady()?;
    if w.held.gray.phase == Phase::Paused {
        return Err(XoneError::gate(format!(
            "the gray release of {} in {} is paused",
            w.t.app.name, w.t.env.name
        ))
        .hint(format!(
            "resume it first: xone gray resume {} --env {}",
            w.t.app.name, w.t.env.name
        )));
    }
    w.settle_or_abort(store)?;
    let report = w.analyse()?;
    let verdict = w.gate(&report);
    let detail = match (verdict, &forced) {
        (Ok(()), _) => None,
        (Err(e), Some(f)) => Some(format!("forced past \"{}\": {}", e.message, f.reason)),
        (Err(e), None) => return Err(e),
    };
    w.advance(store, detail, &report)?;
    w.status()
}

/// Pauses or resumes a release in flight.
pub fn pause(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    pause: bool,
    actor: &str,
) -> Result<Status> {
    let mut w = open(scope, app, env, actor)?;
    w.must_be_steady()?;
    let (from, to, action) = if pause {
        (Phase::Progressing, Phase::Paused, "pause")
    } else {
        (Phase::Paused, Phase::Progressing, "resume")
    };
    if w.held.gray.phase == from {
        w.held.gray.phase = to;
        w.held.gray.mark(&now(), actor, action, None, false);
        gray_state::save(&w.t.cluster, &mut w.held, &w.t.env.name)?;
        let on = format!("{} in {}", w.t.app.name, w.t.env.name);
        journal(store, &w.t, &w.held.gray, actor, &format!("gray {action}d"), on)?;
    } else {
        scope.ui.status(format!(
            "the gray release of {} in {} is {} already",
            w.t.app.name, w.t.env.name, w.held.gray.phase
        ));
    }
    w.status()
}

/// Promotes a release in flight at once: the stable takes the canary's image.
pub fn promote(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    actor: &str,
) -> Result<Status> {
    let mut w = open(scope, app, env, actor)?;
    w.must_be_in_flight()?;
    match w.held.gray.phase {
        Phase::Aborting => w.must_be_steady()?,
        // Cut short before: finished as it was begun.
        Phase::Promoting => {
            let passed = w.held.gray.passed.unwrap_or(false);
            w.promote(store, passed, None)?;
        }
        _ => {
            w.settle_or_abort(store)?;
            let report = w.analyse()?;
            w.promote(store, analyses_pass(&report), None)?;
        }
    }
    w.status()
}

/// Pulls a release back: the stable returns to its replicas and image, the canary goes.
pub fn abort(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    reason: Option<&str>,
    actor: &str,
) -> Result<Status> {
    let mut w = open(scope, app, env, actor)?;
    w.must_be_in_flight()?;
    w.abort(store, reason.unwrap_or("by hand"))?;
    w.status()
}

/// What pulling back a requirement's gray releases did.
pub struct Aborted {
    pub tried: usize,
    pub failed: usize,
}

/// Aborts every gray release of the requirement in flight in its project's environments (or
/// one), each said on its own line. A cluster that cannot be read is passed over here: the
/// rollback that follows names it.
pub fn abort_requirement(
    scope: &Scope,
    store: &mut Store,
    key: &RequirementKey,
    env: Option<&str>,
    actor: &super::Actor,
) -> Result<Aborted> {
    let mut done = Aborted { tried: 0, failed: 0 };
    let envs = store::envs(store.conn(), &key.project)?;
    for e in envs.into_iter().filter(|e| env.is_none_or(|n| n == e.name)) {
        let Ok(cl) = target::connect(&e, scope.remote.clone()) else { continue };
        let Ok(all) = gray_state::all(&cl) else { continue };
        let key_text = key.to_string();
        for h in all.into_iter().filter(|h| {
            h.gray.phase.in_flight() && h.gray.requirement.as_deref() == Some(key_text.as_str())
        }) {
            done.tried += 1;
            let line = (|| -> Result<()> {
                let actor = actor.clone()?;
                let app = store::app(store.conn(), Some(&key.project), &h.gray.app)?;
                let mut w = open(scope, app, e.clone(), &actor)?;
                w.abort(store, &format!("rollback of {key}"))
            })();
            let label = format!("{} in {}", h.gray.app, e.name);
            match line {
                Ok(()) => scope.ui.status_marked(&label, true, "gray release aborted"),
                Err(err) => {
                    done.failed += 1;
                    scope.ui.status_marked(
                        &label,
                        false,
                        &format!("abort failed: {}", err.message),
                    );
                }
            }
        }
    }
    Ok(done)
}

/// How `gray watch` ended.
pub enum Watched {
    /// It was promoted (here or elsewhere).
    Promoted(Status),
    /// It failed a critical analysis or its canary failed, and was aborted: why.
    Aborted { status: Status, why: String },
    /// It was aborted by someone else.
    AbortedElsewhere(Status),
}

/// Evaluates the release every interval until it is promoted or aborted; with `auto`, steps
/// it on whenever its pause has passed and its analyses pass. A critical failure aborts it.
pub fn watch(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    auto: bool,
    interval: Option<u64>,
    actor: &str,
) -> Result<Watched> {
    let interval = interval.unwrap_or_else(|| scope.config.duration("gray.interval").as_secs());
    let interval = Duration::from_secs(interval.max(1));
    let mut w = open(scope, app, env, actor)?;
    let progress = scope.ui.progress(Duration::from_millis(200));
    let mut next = Instant::now();
    loop {
        // Read afresh every round: another machine may have stepped, paused or ended it.
        w.held = gray_state::read(&w.t.cluster, &w.t.app.name)?.ok_or_else(|| {
            XoneError::not_found(format!(
                "the gray release of {} in {} is gone",
                w.t.app.name, w.t.env.name
            ))
        })?;
        match w.held.gray.phase {
            Phase::Promoted => return Ok(Watched::Promoted(w.status()?)),
            Phase::Aborted => return Ok(Watched::AbortedElsewhere(w.status()?)),
            // A promotion or an abort cut short is finished.
            Phase::Promoting => {
                let passed = w.held.gray.passed.unwrap_or(false);
                w.promote(store, passed, None)?;
                return Ok(Watched::Promoted(w.status()?));
            }
            Phase::Aborting => {
                w.abort(store, "finishing an abort cut short")?;
                return Ok(Watched::AbortedElsewhere(w.status()?));
            }
            Phase::Progressing | Phase::Paused => {}
        }
        if let Err(e) = w.settle_or_abort(store) {
            if e.kind == Kind::Rollout && w.held.gray.phase == Phase::Aborted {
                let why = e.message.clone();
                return Ok(Watched::Aborted { status: w.status()?, why });
            }
            return Err(e);
        }
        let report = w.analyse()?;
        if let Some(e) = report.unreachable.as_ref() {
            return Err(XoneError::new(
                Kind::Remote,
                format!(
                    "the analyses of {} in {} cannot ask Prometheus",
                    w.t.app.name, w.t.env.name
                ),
            )
            .cause(e.message.clone())
            .hint(
                "nothing was stepped or aborted; start the watch again when Prometheus answers",
            ));
        }
        let critical: Vec<String> =
            report.failed().iter().filter(|o| o.critical).map(|o| describe(o)).collect();
        if !critical.is_empty() {
            let why = critical.join("; ");
            w.abort(store, &format!("critical analysis failed: {why}"))?;
            return Ok(Watched::Aborted { status: w.status()?, why });
        }
        let g = &w.held.gray;
        let gate = w.gate(&report);
        let line = match (&gate, g.phase) {
            (_, Phase::Paused) => "paused".to_string(),
            (Ok(()), _) if auto => "due: stepping on".to_string(),
            (Ok(()), _) => "due: `xone gray step` widens it".to_string(),
            (Err(e), _) => e.message.clone(),
        };
        progress.say(format!(
            "{} in {}: step {} of {} ({}): {line}",
            w.t.app.name,
            w.t.env.name,
            g.step + 1,
            g.steps.len(),
            share(g)
        ));
        if auto && gate.is_ok() && g.phase == Phase::Progressing {
            w.advance(store, None, &report)?;
            if w.held.gray.phase == Phase::Promoted {
                return Ok(Watched::Promoted(w.status()?));
            }
        }
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Whether every analysis passed: none failed, none held, Prometheus answered.
fn analyses_pass(report: &Report) -> bool {
    report.unreachable.is_none() && report.failed().is_empty() && report.holding().is_empty()
}

fn describe(o: &analysis::Outcome) -> String {
    match &o.judgement {
        Judgement::Fail(why) | Judgement::Hold(why) => format!("{} {}", o.name, why),
        Judgement::Pass => o.name.clone(),
    }
}
