//! Gray releases by instances, with no controller in the cluster. The new version runs as a
//! canary Deployment `APP-canary` beside the stable `APP`, both behind the app's Service: at
//! each step the canary grows to its instance count and becomes Available before the stable
//! shrinks by as many, so capacity never dips. The state lives in the cluster
//! (`ops::gray_state`); every command reads it afresh, so a release started on one machine is
//! carried on from any other, and a command interrupted half-way is finished by the next.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::{json, Value};

use super::analysis::{self, Analysis, PodInfo, Report, Scene};
use super::gray_state::{self, Held};
use super::release::{self, Resolved, Source};
use super::target::{self, Target};
use super::{events, Scope};
use crate::adapters::cluster::{self, End, Follow};
use crate::adapters::prometheus::Prometheus;
use crate::clock;
use crate::domain::gray::{self, Gray, Phase, Step, TRACK_LABEL};
use crate::domain::judge::Judgement;
use crate::domain::manifest;
use crate::domain::rollout;
use crate::domain::RequirementKey;
use crate::store::{self, App, Deploy, DeployKind, DeployStatus, Env, Store};
use crate::ui::{human_secs, Kind, Result, XoneError};

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
        release::resolve(store, &app, clone_source(&s.source), s.requirement)?;
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
    } else {
        w.apply_canary()?;
        scope.ui.status(format!(
            "applied the canary of {}; the stable shrinks when it is Available (the next `xone gray` command of it sees to that)",
            w.t.app.name
        ));
    }
    w.status()
}

fn clone_source<'a>(s: &Source<'a>) -> Source<'a> {
    match s {
        Source::Build(id) => Source::Build(*id),
        Source::Image(i) => Source::Image(i),
    }
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

/// `--weight`: a share of the traffic needs a router that splits it: an ingress-nginx
/// Ingress or a Gateway API HTTPRoute sending to the app's Service. None is there: exit 4,
/// never an approximation. The stable's pods must say they are stable, so that the Service
/// can leave the canary's out.
fn router_for(t: &Target, stable: &Deployment) -> Result<gray::Router> {
    let (app, env) = (&t.app, &t.env);
    let by_instances = format!(
        "gray-release it by instances: xone gray start {} --env {} --instances N",
        app.name, env.name
    );
    let Some(service) = t.cluster.service(&app.name)? else {
        return Err(XoneError::gate(format!(
            "--weight splits the traffic of the Service {}, and there is none in namespace {}",
            app.name, env.namespace
        ))
        .hint(by_instances));
    };
    let routers = t.cluster.routers(&app.name)?;
    let Some(r) = routers.first() else {
        return Err(XoneError::gate(format!(
            "--weight needs a router in front of {}: there is no ingress-nginx Ingress nor Gateway API HTTPRoute for it in namespace {}",
            app.name, env.namespace
        ))
        .hint(by_instances));
    };
    let labels = stable
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    if labels.and_then(|l| l.get(TRACK_LABEL)).map(String::as_str) != Some("stable") {
        return Err(XoneError::gate(format!(
            "the pods of {} in {} do not carry {TRACK_LABEL}: stable, so its Service cannot leave the canary's out",
            app.name, env.name
        ))
        .hint(format!(
            "deploy it once with this xone (xone deploy {} --env {} --build ID), then start the gray release",
            app.name, env.name
        )));
    }
    let kind = r["kind"].as_str().unwrap_or("Ingress").to_string();
    Ok(gray::Router {
        rules: (kind == "HTTPRoute").then(|| r["spec"]["rules"].clone()),
        name: r["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        service: service["metadata"]["name"].as_str().unwrap_or(&app.name).to_string(),
        kind,
    })
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

impl Work<'_, '_> {
    fn label(&self) -> String {
        format!("{} in {}", self.t.app.name, self.t.env.name)
    }

    /// In flight, and neither being promoted nor being pulled back.
    fn must_be_steady(&self) -> Result<()> {
        self.must_be_in_flight()?;
        let (app, env) = (&self.t.app.name, &self.t.env.name);
        match self.held.gray.phase {
            Phase::Promoting => Err(XoneError::gate(format!(
                "the gray release of {} is being promoted",
                self.label()
            ))
            .hint(format!("finish it: xone gray promote {app} --env {env}"))),
            Phase::Aborting => Err(XoneError::gate(format!(
                "the gray release of {} is being pulled back",
                self.label()
            ))
            .hint(format!("finish it: xone gray abort {app} --env {env}"))),
            _ => Ok(()),
        }
    }

    fn must_be_in_flight(&self) -> Result<()> {
        let g = &self.held.gray;
        if g.phase.in_flight() {
            return Ok(());
        }
        let last = g.marks.last();
        Err(XoneError::gate(format!(
            "the gray release of {} was {} by {} at {}",
            self.label(),
            g.phase,
            last.map(|m| m.actor.as_str()).unwrap_or("?"),
            last.map(|m| m.at.as_str()).unwrap_or("?")
        ))
        .hint(format!(
            "start another: xone gray start {} --env {} --build ID",
            self.t.app.name, self.t.env.name
        )))
    }

    fn stable(&self) -> Result<Deployment> {
        target::find_deployment(&self.t.cluster, &self.t.app.name)?.ok_or_else(|| {
            XoneError::gate(format!(
                "the stable Deployment of {} is gone: the gray release cannot go on",
                self.label()
            ))
            .hint(format!("end it: xone gray abort {} --env {}", self.t.app.name, self.t.env.name))
        })
    }

    /// The annotations that tell the canary's (or a promoted stable's) story.
    fn story(&self, verb: &str) -> BTreeMap<String, String> {
        let g = &self.held.gray;
        let mut a = BTreeMap::new();
        a.insert(manifest::IMAGE.to_string(), g.canary_image.clone());
        a.insert(manifest::DEPLOYED_BY.to_string(), self.actor.clone());
        if let Some(r) = &g.requirement {
            a.insert(manifest::REQUIREMENT.to_string(), r.clone());
        }
        if let Some(b) = g.build {
            a.insert(manifest::BUILD.to_string(), b.to_string());
        }
        let what = match (&g.requirement, g.build) {
            (Some(r), Some(b)) => format!(" ({r}, build #{b})"),
            (Some(r), None) => format!(" ({r})"),
            (None, Some(b)) => format!(" (build #{b})"),
            (None, None) => String::new(),
        };
        a.insert(
            manifest::CHANGE_CAUSE.to_string(),
            format!(
                "xone gray {verb} {} --env {}: {}{what} by {}",
                self.t.app.name, self.t.env.name, g.canary_image, self.actor
            ),
        );
        a
    }

    /// Applies the canary Deployment at the current step's size; returns its generation.
    fn apply_canary(&self) -> Result<i64> {
        let stable = self.stable()?;
        let obj = canary_object(&stable, &self.held.gray, &self.t.app.name, self.story("start"))?;
        let applied = self.t.cluster.apply(&obj, true)?;
        Ok(applied["metadata"]["generation"].as_i64().unwrap_or(0))
    }

    /// Brings the cluster to the state's step: the canary at its size and Available, then the
    /// stable at the rest. A canary that fails is an error of kind Rollout.
    fn settle(&self) -> Result<()> {
        let g = &self.held.gray;
        let name = gray::canary_name(&self.t.app.name);
        let generation = self.apply_canary()?;
        let selector = canary_selector(&self.stable()?);
        self.follow(&name, generation, selector, &g.canary_image.clone(), "the canary")?;
        if let (Some(router), Some(weight)) = (&g.router, g.weight()) {
            return self.route(router, weight);
        }
        let stable = self.stable()?;
        let stable_name = stable.metadata.name.clone().unwrap_or_default();
        let want = g.stable_replicas_now();
        if stable.spec.as_ref().and_then(|s| s.replicas) != Some(want as i32) {
            let generation = self.restate(&stable, want, None)?;
            let selector = stable_selector(&stable);
            let image = app_image(&stable, &self.t.app.name).unwrap_or_default();
            self.follow(&stable_name, generation, selector, &image, "the stable")?;
        }
        Ok(())
    }

    /// The Service applied as it stands with another selector (its ports, labels and
    /// annotations kept, so that the apply takes nothing away).
    fn restate_service(&self, live: &Value, name: &str, selector: Value) -> Result<()> {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": self.t.env.namespace,
                "labels": live["metadata"]["labels"],
                "annotations": live["metadata"]["annotations"],
            },
            "spec": { "selector": selector, "ports": live["spec"]["ports"] },
        });
        self.t.cluster.apply(&obj, true).map(|_| ())
    }

    /// By weight: a Service for the canary's pods, the app's Service kept to the stable's, and
    /// the router sending the canary `weight` % of the traffic.
    fn route(&self, router: &gray::Router, weight: u32) -> Result<()> {
        let cl = &self.t.cluster;
        let live = cl.service(&router.service)?.ok_or_else(|| {
            XoneError::gate(format!(
                "the Service {} of {} is gone: the gray release cannot route",
                router.service,
                self.label()
            ))
        })?;
        let canary_service = gray::canary_name(&router.service);
        let mut selector = live["spec"]["selector"].clone();
        selector[TRACK_LABEL] = json!("canary");
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": canary_service,
                "namespace": self.t.env.namespace,
                "labels": { manifest::MANAGED_BY_LABEL: "xone", manifest::NAME_LABEL: self.t.app.name, TRACK_LABEL: "canary" },
            },
            "spec": { "selector": selector, "ports": live["spec"]["ports"] },
        });
        cl.apply(&svc, true)?;
        let mut stable = live["spec"]["selector"].clone();
        if stable[TRACK_LABEL] != "stable" {
            stable[TRACK_LABEL] = json!("stable");
            self.restate_service(&live, &router.service, stable)?;
        }
        let obj = match router.kind.as_str() {
            "HTTPRoute" => {
                let rules =
                    weighted_rules(router.rules.as_ref(), &router.service, &canary_service, weight);
                json!({
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "HTTPRoute",
                    "metadata": { "name": router.name, "namespace": self.t.env.namespace },
                    "spec": { "rules": rules },
                })
            }
            _ => {
                let ingress = cl
                    .routers(&router.service)?
                    .into_iter()
                    .find(|r| {
                        r["kind"] == "Ingress" && r["metadata"]["name"] == router.name.as_str()
                    })
                    .ok_or_else(|| {
                        XoneError::gate(format!(
                            "the Ingress {} in front of {} is gone: the gray release cannot route",
                            router.name,
                            self.label()
                        ))
                    })?;
                canary_ingress(&ingress, &router.service, &canary_service, weight, &self.t.app.name)
            }
        };
        cl.apply(&obj, true).map(|_| ())
    }

    /// By weight: every request back to the stable, through the router as it was.
    fn route_back(&self) -> Result<()> {
        let Some(router) = &self.held.gray.router else { return Ok(()) };
        let cl = &self.t.cluster;
        match router.kind.as_str() {
            "HTTPRoute" => {
                let obj = json!({
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "HTTPRoute",
                    "metadata": { "name": router.name, "namespace": self.t.env.namespace },
                    "spec": { "rules": router.rules },
                });
                cl.apply(&obj, true)?;
            }
            _ => cl.delete_object(
                "networking.k8s.io/v1",
                "Ingress",
                &gray::canary_name(&router.name),
            )?,
        }
        Ok(())
    }

    /// By weight, once the canary is gone: the app's Service selecting as before, and the
    /// canary's Service removed.
    fn unselect(&self) -> Result<()> {
        let Some(router) = &self.held.gray.router else { return Ok(()) };
        let cl = &self.t.cluster;
        if let Some(live) = cl.service(&router.service)? {
            let mut selector = live["spec"]["selector"].clone();
            if let Some(m) = selector.as_object_mut() {
                if m.remove(TRACK_LABEL).is_some() {
                    self.restate_service(&live, &router.service, selector)?;
                }
            }
        }
        cl.delete_object("v1", "Service", &gray::canary_name(&router.service))
    }

    /// As `settle`; a canary that fails is aborted, and the failure returned (exit 7). When
    /// the abort fails too, that is said, and the state stays `aborting` for the next command.
    fn settle_or_abort(&mut self, store: &mut Store) -> Result<()> {
        match self.settle() {
            Err(e) if e.kind == Kind::Rollout => {
                let why = e.message.clone();
                if let Err(a) = self.abort(store, &format!("the canary failed: {why}")) {
                    return Err(XoneError::new(
                        a.kind,
                        format!(
                            "the canary of {} failed ({why}), and pulling it back failed: {}",
                            self.label(),
                            a.message
                        ),
                    )
                    .hint(format!(
                        "finish it: xone gray abort {} --env {}",
                        self.t.app.name, self.t.env.name
                    )));
                }
                Err(XoneError::new(
                    Kind::Rollout,
                    format!("the canary of {} failed: {why}", self.label()),
                )
                .hint("aborted: the stable runs as before, at its replicas"))
            }
            other => other,
        }
    }

    fn follow(
        &self,
        name: &str,
        generation: i64,
        selector: String,
        image: &str,
        what: &str,
    ) -> Result<()> {
        let deadline = release::deadline(self.scope);
        let f = Follow { name, generation, selector, image, limit: release::stall_limit(deadline) };
        match release::follow(self.scope.ui, &self.t.cluster, name, &f)? {
            End::Complete { .. } => Ok(()),
            End::Failed(failure) => Err(XoneError::new(
                Kind::Rollout,
                format!("{what}: {}", release::describe(&failure)),
            )),
            End::Interrupted { .. } => Err(XoneError::new(
                Kind::Interrupted,
                format!("stopped following {what} of {}", self.label()),
            )
            .cause("the cluster goes on; the gray release's state is in the cluster")
            .hint(format!(
                "carry on from it: xone gray status {} --env {}",
                self.t.app.name, self.t.env.name
            ))),
        }
    }

    /// Applies the stable Deployment as it stands with `replicas` (and, on promotion or when
    /// restored, another image with the annotations that tell its story); returns its
    /// generation.
    fn restate(
        &self,
        d: &Deployment,
        replicas: u32,
        image: Option<(&str, BTreeMap<String, String>)>,
    ) -> Result<i64> {
        let mut spec = serde_json::to_value(&d.spec)?;
        spec["replicas"] = json!(replicas);
        let mut annotations: BTreeMap<String, String> = d
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with("xone.dev/") || k == manifest::CHANGE_CAUSE)
            .collect();
        if let Some((image, story)) = image {
            set_app_image(&mut spec["template"], &self.t.app.name, image)?;
            annotations.extend(story);
        }
        let obj = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": d.metadata.name,
                "namespace": self.t.env.namespace,
                "labels": d.metadata.labels.clone().unwrap_or_default(),
                "annotations": annotations,
            },
            "spec": spec,
        });
        let applied = self.t.cluster.apply(&obj, true)?;
        Ok(applied["metadata"]["generation"].as_i64().unwrap_or(0))
    }

    fn analyse(&self) -> Result<Report> {
        // As the release was started with them, whatever this machine's config says.
        let analyses = &self.held.gray.analyses;
        let (canary, stable) = self.pods()?;
        let since_step =
            (clock::unix_now() - started_unix(&self.held.gray.step_started_at)).max(0) as u64;
        let mut scene = scene(self.scope, &self.t.env, &canary.pods, &stable.pods);
        // Only what the current step ran counts.
        scene.window = scene.window.min(since_step).max(1);
        let prom = match &self.t.env.prometheus {
            Some(url) => Some(Prometheus::new(url, self.scope.remote.clone())?),
            None => None,
        };
        analysis::evaluate(prom.as_ref(), analyses, &scene, clock::wall_unix())
    }

    /// Whether the release may step on now: its pause passed and every analysis passes.
    fn gate(&self, report: &Report) -> std::result::Result<(), XoneError> {
        let g = &self.held.gray;
        if let Some(left) = pause_left(g).filter(|l| *l > 0) {
            return Err(XoneError::gate(format!(
                "step {} of {} pauses for {} more",
                g.step + 1,
                g.steps.len(),
                human_secs(left as i64)
            )));
        }
        if let Some(e) = &report.unreachable {
            return Err(XoneError::new(
                Kind::Remote,
                format!("the analyses cannot ask Prometheus: {}", e.message),
            ));
        }
        let failed = report.failed();
        if !failed.is_empty() {
            let which: Vec<String> = failed.iter().map(|o| describe(o)).collect();
            return Err(XoneError::gate(format!("analyses fail: {}", which.join("; "))));
        }
        let holding = report.holding();
        if !holding.is_empty() {
            let which: Vec<String> = holding.iter().map(|o| describe(o)).collect();
            return Err(XoneError::gate(format!(
                "analyses hold for want of samples: {}",
                which.join("; ")
            )));
        }
        Ok(())
    }

    /// Takes the next step; the last one is promotion.
    fn advance(
        &mut self,
        store: &mut Store,
        forced: Option<String>,
        report: &Report,
    ) -> Result<()> {
        let g = &self.held.gray;
        if g.step + 2 >= g.steps.len() {
            let passed = forced.is_none() && analyses_pass(report);
            return self.promote(store, passed, forced);
        }
        let g = &mut self.held.gray;
        g.step += 1;
        g.step_started_at = now();
        let what = format!("step {} of {}: {}", g.step + 1, g.steps.len(), share(g));
        let detail = match &forced {
            Some(f) => format!("{what}; {f}"),
            None => what.clone(),
        };
        let at = g.step_started_at.clone();
        g.mark(&at, &self.actor, "step", Some(detail.clone()), forced.is_some());
        gray_state::save(&self.t.cluster, &mut self.held, &self.t.env.name)?;
        let action = if forced.is_some() { "gray stepped (forced)" } else { "gray stepped" };
        journal(
            store,
            &self.t,
            &self.held.gray,
            &self.actor,
            action,
            format!("{}: {detail}", self.label()),
        )?;
        self.scope.ui.status(format!("{}: {what}", self.label()));
        self.settle_or_abort(store)
    }

    /// Writes a phase on the condition that nobody changed the state since it was read: the
    /// promise made before acting, so that a command cut short is finished by the next.
    fn enter(&mut self, phase: Phase) -> Result<()> {
        if self.held.gray.phase != phase {
            self.held.gray.phase = phase;
            gray_state::save(&self.t.cluster, &mut self.held, &self.t.env.name)?;
        }
        Ok(())
    }

    /// The stable takes the canary's image (by digest where the canary's pods tell it) at all
    /// its replicas and is followed to the end; then the canary goes. A stable whose rollout
    /// fails is rolled back, and the release goes on where it was.
    fn promote(&mut self, store: &mut Store, passed: bool, forced: Option<String>) -> Result<()> {
        let was = self.held.gray.phase;
        if was != Phase::Promoting {
            self.held.gray.passed = Some(passed);
        }
        self.enter(Phase::Promoting)?;
        let passed = self.held.gray.passed.unwrap_or(passed);
        let (canary, _) = self.pods()?;
        let image = pinned(&self.held.gray.canary_image, &canary.pods);
        let stable = self.stable()?;
        let stable_name = stable.metadata.name.clone().unwrap_or_default();
        let prev_revision = rollout::revision(&stable.metadata);
        let prev_rs = self
            .t
            .cluster
            .replicasets(&stable)?
            .into_iter()
            .find(|rs| prev_revision.is_some() && rollout::revision(&rs.metadata) == prev_revision)
            .and_then(|rs| rs.metadata.name);
        let g = self.held.gray.clone();
        let record = Deploy {
            project: self.t.app.project.clone(),
            app: self.t.app.name.clone(),
            env: self.t.env.name.clone(),
            kind: DeployKind::Deploy,
            requirement: g.requirement.clone(),
            build: g.build,
            image: image.clone(),
            sha: g.build.and_then(|b| store::build(store.conn(), b).ok()).map(|b| b.sha),
            context: self.t.env.context.clone(),
            namespace: self.t.env.namespace.clone(),
            prev_revision,
            prev_rs,
            actor: self.actor.clone(),
            detail: Some("gray release promoted".into()),
            ..Deploy::default()
        };
        let id = store.write(|tx| store::start_deploy(tx, &record))?;
        let story = self.story("promote");
        let generation = self.restate(&stable, g.stable_replicas, Some((&image, story)))?;
        let deadline = release::deadline(self.scope);
        let f = Follow {
            name: &stable_name,
            generation,
            selector: stable_selector(&stable),
            image: &image,
            limit: release::stall_limit(deadline),
        };
        match release::follow(self.scope.ui, &self.t.cluster, &stable_name, &f)? {
            End::Complete { revision, .. } => {
                store.write(|tx| {
                    store::finish_deploy(tx, id, DeployStatus::Succeeded, revision, None)
                })?;
            }
            End::Failed(failure) => {
                let what = release::describe(&failure);
                // As deploy does: back to the revision before, followed.
                let back = self.t.cluster.undo(
                    &stable_name,
                    &self.t.app.name,
                    prev_revision,
                    &format!("xone: rollback after a failed gray promotion, by {}", self.actor),
                );
                let did = match back {
                    Ok(undo) => {
                        let sel = stable_selector(&stable);
                        match self.follow(
                            &stable_name,
                            undo.generation,
                            sel,
                            &undo.image,
                            "the stable",
                        ) {
                            Ok(()) => format!("the stable was rolled back to {}", undo.image),
                            Err(e) => format!("rolling the stable back failed too: {}", e.message),
                        }
                    }
                    Err(e) => format!("rolling the stable back failed too: {}", e.message),
                };
                store.write(|tx| {
                    store::finish_deploy(
                        tx,
                        id,
                        DeployStatus::RolledBack,
                        failure.revision,
                        Some(&format!("{what}; {did}")),
                    )
                })?;
                self.enter(was.steady())?;
                return Err(XoneError::new(
                    Kind::Rollout,
                    format!("promoting {} failed: the stable's rollout: {what}", self.label()),
                )
                .cause(did)
                .hint(format!(
                    "the gray release goes on where it was; try again, or pull back: xone gray abort {} --env {}",
                    self.t.app.name, self.t.env.name
                )));
            }
            End::Interrupted { revision } => {
                store.write(|tx| {
                    store::finish_deploy(tx, id, DeployStatus::Interrupted, revision, None)
                })?;
                return Err(XoneError::new(
                    Kind::Interrupted,
                    format!("stopped following the promotion of {}", self.label()),
                )
                .hint(format!(
                    "run it again to finish: xone gray promote {} --env {}",
                    self.t.app.name, self.t.env.name
                )));
            }
        }
        self.route_back()?;
        self.t.cluster.delete_deployment(&gray::canary_name(&self.t.app.name))?;
        self.unselect()?;
        let gm = &mut self.held.gray;
        gm.phase = Phase::Promoted;
        gm.canary_image = image.clone();
        let verdict = if passed { "analyses passing" } else { "analyses not passing" };
        let detail = match &forced {
            Some(f) => format!("{image} on every instance; {f}"),
            None => format!("{image} on every instance; {verdict}"),
        };
        gm.mark(&now(), &self.actor, "promote", Some(detail.clone()), forced.is_some());
        gray_state::save(&self.t.cluster, &mut self.held, &self.t.env.name)?;
        journal(
            store,
            &self.t,
            &self.held.gray,
            &self.actor,
            "gray promoted",
            format!("{}: {detail}", self.label()),
        )?;
        self.scope.ui.status(format!(
            "{}: promoted {image}; watch the release: xone deploy watch {} --env {}",
            self.label(),
            self.t.app.name,
            self.t.env.name
        ));
        Ok(())
    }

    /// Pulls the release back. By instances: the stable back to its replicas and image,
    /// Available, then the canary deleted. By weight: the traffic back to the stable first,
    /// then the canary deleted, then the Service selecting as before.
    fn abort(&mut self, store: &mut Store, reason: &str) -> Result<()> {
        self.enter(Phase::Aborting)?;
        let g = self.held.gray.clone();
        let canary = gray::canary_name(&self.t.app.name);
        if g.router.is_some() {
            self.route_back()?;
            self.t.cluster.delete_deployment(&canary)?;
            self.unselect()?;
        }
        let stable = self.stable()?;
        let stable_name = stable.metadata.name.clone().unwrap_or_default();
        let image_now = app_image(&stable, &self.t.app.name).unwrap_or_default();
        let restore = (image_now != g.stable_image && !g.stable_image.is_empty())
            .then_some(g.stable_image.as_str());
        // A restored image keeps the stable's own story.
        let generation =
            self.restate(&stable, g.stable_replicas, restore.map(|i| (i, BTreeMap::new())))?;
        let image = restore.unwrap_or(&image_now).to_string();
        self.follow(&stable_name, generation, stable_selector(&stable), &image, "the stable")?;
        self.t.cluster.delete_deployment(&canary)?;
        let gm = &mut self.held.gray;
        gm.phase = Phase::Aborted;
        gm.mark(&now(), &self.actor, "abort", Some(reason.to_string()), false);
        gray_state::save(&self.t.cluster, &mut self.held, &self.t.env.name)?;
        let detail = format!(
            "{}: {} pulled back ({reason}); the stable runs {} on {} instances",
            self.label(),
            g.canary_image,
            image,
            g.stable_replicas
        );
        journal(store, &self.t, &self.held.gray, &self.actor, "gray aborted", detail.clone())?;
        self.scope.ui.status(detail);
        Ok(())
    }

    /// The pods of each track, as the API shows them.
    fn pods(&self) -> Result<(Track, Track)> {
        let cl = &self.t.cluster;
        let name = gray::canary_name(&self.t.app.name);
        let canary = cl.deployment(&name)?;
        let stable = target::find_deployment(cl, &self.t.app.name)?;
        let track =
            |d: Option<&Deployment>, fallback: &str, selector: Option<String>| -> Result<Track> {
                let pods = match &selector {
                    Some(s) => cl.pods(s)?,
                    None => Vec::new(),
                };
                let pods: Vec<PodInfo> = pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| pod_info(p, &self.t.app.name))
                    .collect();
                Ok(Track {
                    deployment: d
                        .and_then(|d| d.metadata.name.clone())
                        .unwrap_or_else(|| fallback.to_string()),
                    image: d.and_then(|d| app_image(d, &self.t.app.name)),
                    replicas: d
                        .and_then(|d| d.spec.as_ref())
                        .and_then(|s| s.replicas)
                        .unwrap_or(0)
                        .max(0) as u32,
                    ready: pods.iter().filter(|p| p.ready).count() as u32,
                    pods,
                })
            };
        let canary_track =
            track(canary.as_ref(), &name, canary.as_ref().map(cluster::selector_of))?;
        let stable_track =
            track(stable.as_ref(), &self.t.app.name, stable.as_ref().map(stable_selector))?;
        Ok((canary_track, stable_track))
    }

    fn status(&self) -> Result<Status> {
        let g = &self.held.gray;
        let (canary, stable) = self.pods()?;
        let analyses = if g.phase.in_flight() { self.analyse()?.outcomes } else { Vec::new() };
        Ok(Status {
            app: g.app.clone(),
            env: self.t.env.name.clone(),
            namespace: self.t.env.namespace.clone(),
            phase: g.phase,
            step: g.step + 1,
            steps: g.steps.len(),
            instances: g.steps.clone(),
            weight: g.weight(),
            router: g.router.clone(),
            canary_image: g.canary_image.clone(),
            stable_image: g.stable_image.clone(),
            requirement: g.requirement.clone(),
            build: g.build,
            step_started_at: g.step_started_at.clone(),
            pause_secs: g.pause_secs,
            pause_left_secs: pause_left(g),
            nodes: g.nodes.clone(),
            canary,
            stable,
            analyses,
            started_at: g.started_at.clone(),
            started_by: g.started_by.clone(),
            passed: g.passed,
            marks: g.marks.clone(),
        })
    }
}

/// This machine's copy of the state, and the event on the requirement's story.
fn journal(
    store: &mut Store,
    t: &Target,
    g: &Gray,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<()> {
    store.write(|tx| {
        store::save_gray(tx, &t.app.project, &t.env.name, g)?;
        events::on_requirement(tx, g.requirement.as_deref(), actor, action, detail)
    })
}

/// The image of the app's container in a Deployment's pod template.
fn app_image(d: &Deployment, app: &str) -> Option<String> {
    let spec = serde_json::to_value(d.spec.as_ref()?.template.spec.as_ref()?).ok()?;
    manifest::app_container(&spec["containers"], app)
        .and_then(|c| c["image"].as_str())
        .map(str::to_string)
}

fn set_app_image(template: &mut Value, app: &str, image: &str) -> Result<()> {
    let containers = template
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| XoneError::usage(format!("the Deployment of {app} has no containers")))?;
    let only = containers.len() == 1;
    let c = containers.iter_mut().find(|c| only || c["name"] == app).ok_or_else(|| {
        XoneError::usage(format!("the Deployment of {app} has no container named {app}"))
    })?;
    c["image"] = json!(image);
    Ok(())
}

/// The canary's pods: the stable's selector and `xone.io/track=canary`.
fn canary_selector(stable: &Deployment) -> String {
    let base = cluster::selector_of(stable);
    format!("{base},{TRACK_LABEL}=canary")
}

/// The stable's own pods: its selector, without the canary's (whose labels it also matches).
fn stable_selector(stable: &Deployment) -> String {
    let base = cluster::selector_of(stable);
    format!("{base},{TRACK_LABEL}!=canary")
}

/// The canary Deployment: the stable's, its pods labelled `xone.io/track: canary` (so that
/// the app's Service selects them too, and the stable does not own them), the canary's image,
/// the step's replicas, and, with `--on-nodes`, kept on those nodes.
fn canary_object(
    stable: &Deployment,
    g: &Gray,
    app: &str,
    story: BTreeMap<String, String>,
) -> Result<Value> {
    let mut spec = serde_json::to_value(&stable.spec)?;
    spec["replicas"] = json!(g.canary_replicas());
    spec["selector"]["matchLabels"][TRACK_LABEL] = json!("canary");
    spec["template"]["metadata"]["labels"][TRACK_LABEL] = json!("canary");
    set_app_image(&mut spec["template"], app, &g.canary_image)?;
    if !g.nodes.is_empty() {
        spec["template"]["spec"]["affinity"]["nodeAffinity"] = json!({
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{ "matchExpressions": [{
                    "key": "kubernetes.io/hostname",
                    "operator": "In",
                    "values": g.nodes,
                }]}],
            },
        });
    }
    let mut labels = stable.metadata.labels.clone().unwrap_or_default();
    labels.insert(TRACK_LABEL.to_string(), "canary".to_string());
    Ok(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": gray::canary_name(app),
            "namespace": g.namespace,
            "labels": labels,
            "annotations": story,
        },
        "spec": spec,
    }))
}

fn pod_info(p: &Pod, app: &str) -> PodInfo {
    let statuses = p.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    let spec = p.spec.as_ref();
    let containers = spec.map(|s| s.containers.clone()).unwrap_or_default();
    let image = containers
        .iter()
        .find(|c| containers.len() == 1 || c.name == app)
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    // `docker-pullable://reg/web@sha256:…`, or the digest alone, as runtimes report it.
    let digest = statuses
        .iter()
        .find(|s| statuses.len() == 1 || s.name == app)
        .and_then(|s| s.image_id.split_once('@').map(|(_, d)| d.to_string()))
        .filter(|d| d.starts_with("sha256:") && d.len() > 7);
    PodInfo {
        name: p.metadata.name.clone().unwrap_or_default(),
        image,
        digest,
        ready: rollout::ready(p),
        restarts: statuses.iter().map(|s| i64::from(s.restart_count)).sum(),
        node: spec.and_then(|s| s.node_name.clone()),
    }
}

/// The canary's image by digest: as given when it names one, else the digest its pods run.
fn pinned(image: &str, pods: &[PodInfo]) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    match pods.iter().find_map(|p| p.digest.clone()) {
        Some(d) => format!("{}@{d}", release::image_repo(image)),
        None => image.to_string(),
    }
}

/// An HTTPRoute's rules with each backend of `service` split: `100 - weight` to it, `weight`
/// to the canary's Service.
fn weighted_rules(rules: Option<&Value>, service: &str, canary: &str, weight: u32) -> Value {
    let mut rules = rules.cloned().unwrap_or_else(|| json!([]));
    for rule in rules.as_array_mut().into_iter().flatten() {
        let Some(refs) = rule["backendRefs"].as_array().cloned() else { continue };
        let mut out = Vec::new();
        for r in refs {
            if r["name"] == service {
                let mut stable = r.clone();
                stable["weight"] = json!(100 - weight);
                let mut c = r.clone();
                c["name"] = json!(canary);
                c["weight"] = json!(weight);
                out.push(stable);
                out.push(c);
            } else {
                out.push(r);
            }
        }
        rule["backendRefs"] = json!(out);
    }
    rules
}

/// An ingress-nginx canary Ingress beside the app's: its rules' paths to the app's Service,
/// sent to the canary's, with `canary-weight` set.
fn canary_ingress(ingress: &Value, service: &str, canary: &str, weight: u32, app: &str) -> Value {
    let mut spec = ingress["spec"].clone();
    for rule in spec["rules"].as_array_mut().into_iter().flatten() {
        if let Some(paths) = rule["http"]["paths"].as_array_mut() {
            paths.retain(|p| p["backend"]["service"]["name"] == service);
            for p in paths.iter_mut() {
                p["backend"]["service"]["name"] = json!(canary);
            }
        }
    }
    if let Some(rules) = spec["rules"].as_array_mut() {
        rules.retain(|r| r["http"]["paths"].as_array().is_some_and(|p| !p.is_empty()));
    }
    if let Some(m) = spec.as_object_mut() {
        m.remove("defaultBackend");
    }
    let name = ingress["metadata"]["name"].as_str().unwrap_or(app);
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": gray::canary_name(name),
            "namespace": ingress["metadata"]["namespace"],
            "labels": { manifest::MANAGED_BY_LABEL: "xone", manifest::NAME_LABEL: app, TRACK_LABEL: "canary" },
            "annotations": {
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": weight.to_string(),
            },
        },
        "spec": spec,
    })
}
