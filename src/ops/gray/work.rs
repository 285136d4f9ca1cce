//! A gray release at work on the cluster: the canary brought to its step, the stable
//! restated, promotion and abort, the pods of each track and the analyses over them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::{
    analyses_pass, describe, now, pause_left, scene, share, started_unix, Status, Track, Work,
};
use crate::adapters::cluster::{self, End, Follow};
use crate::adapters::prometheus::Prometheus;
use crate::clock;
use crate::domain::gray::{self, Gray, Phase, TRACK_LABEL};
use crate::domain::manifest;
use crate::domain::rollout;
use crate::ops::analysis::{self, PodInfo, Report};
use crate::ops::events;
use crate::ops::gray_state;
use crate::ops::release;
use crate::ops::target::{self, Target};
use crate::store::{self, Deploy, DeployKind, DeployStatus, Store};
use crate::ui::{human_secs, Kind, Result, XoneError};

impl Work<'_, '_> {
    pub(super) fn label(&self) -> String {
        format!("{} in {}", self.t.app.name, self.t.env.name)
    }

    /// In flight, and neither being promoted nor being pulled back.
    pub(super) fn must_be_steady(&self) -> Result<()> {
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

    pub(super) fn must_be_in_flight(&self) -> Result<()> {
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

    pub(super) fn stable(&self) -> Result<Deployment> {
        target::find_deployment(&self.t.cluster, &self.t.app.name)?.ok_or_else(|| {
            XoneError::gate(format!(
                "the stable Deployment of {} is gone: the gray release cannot go on",
                self.label()
            ))
            .hint(format!("end it: xone gray abort {} --env {}", self.t.app.name, self.t.env.name))
        })
    }

    /// The annotations that tell the canary's (or a promoted stable's) story.
    pub(super) fn story(&self, verb: &str) -> BTreeMap<String, String> {
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
    pub(super) fn apply_canary(&self, stable: &Deployment) -> Result<i64> {
        let obj = canary_object(stable, &self.held.gray, &self.t.app.name, self.story("start"))?;
        let applied = self.t.cluster.apply(&obj, true)?;
        Ok(applied["metadata"]["generation"].as_i64().unwrap_or(0))
    }

    /// Brings the cluster to the state's step: the canary at its size and Available, then the
    /// stable at the rest. A canary that fails is an error of kind Rollout.
    pub(super) fn settle(&self) -> Result<()> {
        let g = &self.held.gray;
        let name = gray::canary_name(&self.t.app.name);
        let stable = self.stable()?;
        let generation = self.apply_canary(&stable)?;
        self.follow(&name, generation, canary_selector(&stable), &g.canary_image, "the canary")?;
        if let (Some(router), Some(weight)) = (&g.router, g.weight()) {
            return self.route(router, weight);
        }
        // Read again: following the canary can take a while.
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

    /// As `settle`; a canary that fails is aborted, and the failure returned (exit 7). When
    /// the abort fails too, that is said, and the state stays `aborting` for the next command.
    pub(super) fn settle_or_abort(&mut self, store: &mut Store) -> Result<()> {
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

    pub(super) fn follow(
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
    pub(super) fn restate(
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

    pub(super) fn analyse(&self) -> Result<Report> {
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
    pub(super) fn gate(&self, report: &Report) -> std::result::Result<(), XoneError> {
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
    pub(super) fn advance(
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

    /// Keeps the digest the canary's pods run in the state, once they report one.
    pub(super) fn note_digest(&mut self) -> Result<()> {
        if self.held.gray.canary_digest.is_some() {
            return Ok(());
        }
        let (canary, _) = self.pods()?;
        let pinned = pinned(&self.held.gray.canary_image, &canary.pods);
        if pinned.contains('@') {
            self.held.gray.canary_digest = Some(pinned);
            gray_state::save(&self.t.cluster, &mut self.held, &self.t.env.name)?;
        }
        Ok(())
    }

    /// Writes a phase on the condition that nobody changed the state since it was read: the
    /// promise made before acting, so that a command cut short is finished by the next.
    pub(super) fn enter(&mut self, phase: Phase) -> Result<()> {
        if self.held.gray.phase != phase {
            self.held.gray.phase = phase;
            gray_state::save(&self.t.cluster, &mut self.held, &self.t.env.name)?;
        }
        Ok(())
    }

    /// The stable takes the canary's image (by digest where the canary's pods tell it) at all
    /// its replicas and is followed to the end; then the canary goes. A stable whose rollout
    /// fails is rolled back, and the release goes on where it was.
    pub(super) fn promote(
        &mut self,
        store: &mut Store,
        passed: bool,
        forced: Option<String>,
    ) -> Result<()> {
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
        let promoted = match release::follow(self.scope.ui, &self.t.cluster, &stable_name, &f)? {
            End::Complete { revision, .. } => {
                store.write(|tx| {
                    crate::ops::notify::finish_deploy(
                        &self.actor,
                        tx,
                        id,
                        DeployStatus::Succeeded,
                        revision,
                        None,
                    )
                })?;
                revision
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
                    crate::ops::notify::finish_deploy(
                        &self.actor,
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
                    crate::ops::notify::finish_deploy(
                        &self.actor,
                        tx,
                        id,
                        DeployStatus::Interrupted,
                        revision,
                        None,
                    )
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
        };
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
        // The release watch starts now: `deploy watch` goes on with it from here.
        let window = self.scope.config.duration("gates.watch_window").as_secs() as i64;
        let watch = store::Watch {
            project: self.t.app.project.clone(),
            app: self.t.app.name.clone(),
            env: self.t.env.name.clone(),
            revision: promoted,
            image: Some(image.clone()),
            window_secs: window,
            error_rate: 0.01,
            started_unix: clock::unix_now(),
            actor: self.actor.clone(),
            ..store::Watch::default()
        };
        store.write(|tx| store::start_watch(tx, &watch).map(|_| ()))?;
        self.scope.ui.status(format!(
            "{}: promoted {image}; the release watch started ({}): xone deploy watch {} --env {} follows it",
            self.label(),
            human_secs(window),
            self.t.app.name,
            self.t.env.name
        ));
        Ok(())
    }

    /// Pulls the release back. By instances: the stable back to its replicas and image,
    /// Available, then the canary deleted. By weight: the traffic back to the stable first,
    /// then the canary deleted, then the Service selecting as before.
    pub(super) fn abort(&mut self, store: &mut Store, reason: &str) -> Result<()> {
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
    pub(super) fn pods(&self) -> Result<(Track, Track)> {
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

    pub(super) fn status(&self) -> Result<Status> {
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
            canary_digest: g.canary_digest.clone(),
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
pub(super) fn journal(
    store: &mut Store,
    t: &Target,
    g: &Gray,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<()> {
    store.write(|tx| {
        store::save_gray(tx, &t.app.project, &t.env.name, g)?;
        crate::ops::notify::gray(tx, &t.app.project, &t.env.name, g, actor, action, &detail)?;
        events::on_requirement(tx, g.requirement.as_deref(), actor, action, detail)
    })
}

/// The image of the app's container in a Deployment's pod template.
pub(super) fn app_image(d: &Deployment, app: &str) -> Option<String> {
    let spec = serde_json::to_value(d.spec.as_ref()?.template.spec.as_ref()?).ok()?;
    manifest::app_container(&spec["containers"], app)
        .and_then(|c| c["image"].as_str())
        .map(str::to_string)
}

pub(super) fn set_app_image(template: &mut Value, app: &str, image: &str) -> Result<()> {
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
pub(super) fn canary_selector(stable: &Deployment) -> String {
    let base = cluster::selector_of(stable);
    format!("{base},{TRACK_LABEL}=canary")
}

/// The stable's own pods: its selector, without the canary's (whose labels it also matches).
pub(super) fn stable_selector(stable: &Deployment) -> String {
    let base = cluster::selector_of(stable);
    format!("{base},{TRACK_LABEL}!=canary")
}

/// The canary Deployment: the stable's, its pods labelled `xone.io/track: canary` (so that
/// the app's Service selects them too, and the stable does not own them), the canary's image,
/// the step's replicas, and, with `--on-nodes`, kept on those nodes.
pub(super) fn canary_object(
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

pub(super) fn pod_info(p: &Pod, app: &str) -> PodInfo {
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
pub(super) fn pinned(image: &str, pods: &[PodInfo]) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    match pods.iter().find_map(|p| p.digest.clone()) {
        Some(d) => format!("{}@{d}", release::image_repo(image)),
        None => image.to_string(),
    }
}
