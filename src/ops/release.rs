//! Releases on Kubernetes: an app's image rolled out to an environment's cluster by
//! server-side apply, followed through watches until it is available, and rolled back when it
//! fails. What runs is read in `ops::revisions`; rollbacks are in `ops::rollback`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::gray_state;
use super::target::{self};
use super::{events, Scope};
use crate::adapters::cluster::{Cluster, End, Failure, Follow};
use crate::adapters::Forges;
use crate::domain::manifest::{self, Spec};
use crate::domain::rollout::{self, Counts};
use crate::domain::{ProjectKey, RequirementKey};
use crate::store::{self, App, BuildStatus, Deploy, DeployKind, DeployStatus, Env, Store};
use crate::ui::{short_sha, Kind, Result, Ui, XoneError};

/// How pods are replaced.
#[derive(Clone, Copy, Debug)]
pub enum Strategy {
    Rolling,
    Recreate,
}

/// What to deploy: a build's image (by digest when it was pushed), or an image reference.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Build(i64),
    Image(&'a str),
}

/// A deployment worked out and not yet applied: the objects and what they stand for.
pub struct Plan {
    pub app: App,
    pub env: Env,
    pub image: String,
    pub build: Option<i64>,
    pub sha: Option<String>,
    pub requirement: Option<String>,
    pub objects: Vec<Value>,
    /// The name of the app's Deployment among the objects.
    pub deployment: String,
    /// The Deployment's progress deadline, in seconds.
    pub deadline: u64,
}

/// The repository part of an image reference: no tag, no digest.
pub fn image_repo(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// How long a rollout may make no visible progress before xone gives up on it: the
/// Deployment's own deadline, and a minute for the controller to say so.
pub(super) fn stall_limit(deadline: u64) -> Duration {
    Duration::from_secs(deadline + 60)
}

pub(super) fn deadline(scope: &Scope) -> u64 {
    scope.config.duration("deploy.progress_deadline").as_secs().max(1)
}

/// What a source stands for: the image (by digest when the build pushed one), the build and
/// commit it came from, and the requirement it serves (`requirement`, else the build's).
pub struct Resolved {
    pub image: String,
    pub build: Option<i64>,
    pub sha: Option<String>,
    pub requirement: Option<String>,
}

/// Resolves what to release of `app`: a build must be of the app, have succeeded and made an
/// image; a requirement named must exist here.
pub fn resolve(
    store: &Store,
    app: &App,
    source: Source,
    requirement: Option<&RequirementKey>,
) -> Result<Resolved> {
    let (image, build, sha, build_req) = match source {
        Source::Build(id) => {
            let b = store::build(store.conn(), id)?;
            if b.app != app.name || b.project != app.project {
                return Err(XoneError::usage(format!(
                    "build #{id} is of {}/{}, not {}/{}",
                    b.project, b.app, app.project, app.name
                )));
            }
            if b.status != BuildStatus::Success {
                return Err(XoneError::gate(format!("build #{id} did not succeed ({})", b.status))
                    .hint(format!("deploy a build that passed: xone build list {}", app.name)));
            }
            let Some(tagged) = b.image.clone() else {
                return Err(XoneError::usage(format!("build #{id} made no image xone knows of"))
                    .cause("pipeline builds build what the CI file builds")
                    .hint("deploy it with --image IMAGE"));
            };
            // The digest is recorded as the registry's reference (REPO@sha256:…).
            let image = match &b.digest {
                Some(d) if d.contains('@') => d.clone(),
                Some(d) => format!("{}@{d}", image_repo(&tagged)),
                None => tagged,
            };
            (image, Some(id), Some(b.sha.clone()), b.requirement.clone())
        }
        Source::Image(i) => {
            if i.is_empty() || i.contains(char::is_whitespace) {
                return Err(XoneError::usage(format!("--image '{i}' is not an image reference")));
            }
            (i.to_string(), None, None, None)
        }
    };
    let requirement = match requirement.map(|k| k.to_string()).or(build_req) {
        Some(k) => {
            let key: RequirementKey = k.parse().map_err(XoneError::usage)?;
            store::requirement(store.conn(), &key)?;
            Some(k)
        }
        None => None,
    };
    Ok(Resolved { image, build, sha, requirement })
}

/// Works out what deploying `source` of `app` to `env` applies, touching no cluster.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    scope: &Scope,
    store: &Store,
    forges: &Forges,
    app: App,
    env: Env,
    source: Source,
    requirement: Option<&RequirementKey>,
    strategy: Strategy,
    actor: &str,
) -> Result<Plan> {
    let Resolved { image, build, sha, requirement } = resolve(store, &app, source, requirement)?;
    let deadline = deadline(scope);
    let mut annotations = BTreeMap::new();
    let what = match (&requirement, build) {
        (Some(r), Some(b)) => format!(" ({r}, build #{b})"),
        (Some(r), None) => format!(" ({r})"),
        (None, Some(b)) => format!(" (build #{b})"),
        (None, None) => String::new(),
    };
    annotations.insert(
        manifest::CHANGE_CAUSE.to_string(),
        format!("xone deploy {} --env {}: {image}{what} by {actor}", app.name, env.name),
    );
    if let Some(r) = &requirement {
        annotations.insert(manifest::REQUIREMENT.to_string(), r.clone());
    }
    if let Some(b) = build {
        annotations.insert(manifest::BUILD.to_string(), b.to_string());
    }
    annotations.insert(manifest::IMAGE.to_string(), image.clone());
    annotations.insert(manifest::DEPLOYED_BY.to_string(), actor.to_string());
    let spec = Spec {
        app: &app.name,
        namespace: &env.namespace,
        image: &image,
        replicas: app.replicas.get(&env.name).copied().unwrap_or(1),
        port: app.port,
        health: app.health.as_deref(),
        strategy: match strategy {
            Strategy::Rolling => "RollingUpdate",
            Strategy::Recreate => "Recreate",
        },
        progress_deadline: deadline as i64,
        annotations,
    };
    let (objects, deployment) = match &app.manifests {
        Some(dir) => {
            let docs = own_manifests(store, forges, &app, dir, sha.as_deref())?;
            manifest::adopt(&docs, &spec).map_err(|e| {
                XoneError::usage(format!("the manifests of {} in {dir} cannot be used", app.name))
                    .cause(e)
            })?
        }
        None => (manifest::render(&spec), app.name.clone()),
    };
    Ok(Plan { app, env, image, build, sha, requirement, objects, deployment, deadline })
}

/// How a plan is applied.
pub struct Options {
    /// Follow the rollout to its end.
    pub wait: bool,
    pub create_namespace: bool,
    /// Leave a failed rollout as it is.
    pub no_rollback: bool,
    /// Take over fields another field manager owns.
    pub force_conflicts: bool,
}

/// Applies a plan and, when asked, follows the rollout; a rollout that fails is rolled back
/// to the revision before unless `no_rollback`. Returns the deployment's record; a failure
/// is recorded, then returned as the error.
pub fn deploy(
    scope: &Scope,
    store: &mut Store,
    plan: &Plan,
    o: &Options,
    actor: &str,
) -> Result<Deploy> {
    let (app, env) = (&plan.app, &plan.env);
    let req = plan.requirement.as_deref();
    let cl = target::connect(env, scope.remote.clone())?;
    // A gray release in flight owns the app's Deployments until it is promoted or aborted.
    if let Some(g) = gray_state::in_flight(&cl, &app.name)? {
        return Err(gray_state::busy(&g, &env.name));
    }
    // An app released blue-green has its Service pointed at a colour: a rolling deploy would
    // point it at everything.
    if let Some(svc) = cl.service(&app.name).ok().flatten() {
        if let Some(active) = svc["metadata"]["annotations"][manifest::ACTIVE].as_str() {
            return Err(XoneError::gate(format!(
                "{} is released blue-green in {} ({active} serves)",
                app.name, env.name
            ))
            .hint(format!(
                "xone deploy {} --env {} --strategy blue-green --build ID",
                app.name, env.name
            )));
        }
    }
    if !cl.namespace_exists()? {
        if !o.create_namespace {
            return Err(XoneError::gate(format!(
                "namespace {} does not exist in context {}",
                env.namespace, env.context
            ))
            .hint(format!(
                "xone deploy {} --env {} --create-namespace (or create it yourself)",
                app.name, env.name
            )));
        }
        cl.create_namespace()?;
        scope.ui.status(format!("created namespace {}", env.namespace));
    }
    // Where the Deployment stands before: the revision a failure goes back to.
    let before = cl.deployment(&plan.deployment)?;
    let prev_revision = before.as_ref().and_then(|d| rollout::revision(&d.metadata));
    let prev_rs = match &before {
        Some(d) => cl
            .replicasets(d)?
            .into_iter()
            .find(|rs| rollout::revision(&rs.metadata) == prev_revision && prev_revision.is_some())
            .and_then(|rs| rs.metadata.name),
        None => None,
    };
    let record = Deploy { prev_revision, prev_rs: prev_rs.clone(), ..plan.record(actor) };
    let id = store.write(|tx| store::start_deploy(tx, &record))?;
    // Everything else first, so that what the pods read exists before they start.
    let mut applied_deployment = Value::Null;
    let mut ordered: Vec<&Value> =
        plan.objects.iter().filter(|o| o["kind"] != "Deployment").collect();
    ordered.extend(plan.objects.iter().filter(|o| o["kind"] == "Deployment"));
    for obj in ordered {
        match cl.apply(obj, o.force_conflicts) {
            Ok(v) => {
                if obj["kind"] == "Deployment"
                    && obj["metadata"]["name"] == plan.deployment.as_str()
                {
                    applied_deployment = v;
                }
            }
            Err(e) => {
                store.write(|tx| {
                    super::notify::finish_deploy(
                        actor,
                        tx,
                        id,
                        DeployStatus::Failed,
                        None,
                        Some(&format!("apply: {}", e.message)),
                    )
                })?;
                return Err(e);
            }
        }
    }
    if let Some(r) = &plan.requirement {
        let key: RequirementKey = r.parse().map_err(XoneError::usage)?;
        let req = store::requirement(store.conn(), &key)?;
        let e = store::Event {
            detail: Some(format!("{} to {}: {}", app.name, env.name, plan.image)),
            ..events::requirement(&req, actor, "deploy")
        };
        store.write(|tx| store::record(tx, &e))?;
    }
    let generation = applied_deployment["metadata"]["generation"].as_i64().unwrap_or(0);
    if !o.wait {
        store.write(|tx| {
            super::notify::finish_deploy(actor, tx, id, DeployStatus::Applied, None, None)
        })?;
        scope.ui.status(format!(
            "applied {} to {} ({}/{}); follow it with `xone deploy status {} --env {}`",
            app.name, env.name, env.context, env.namespace, app.name, env.name
        ));
        return store::deploy(store.conn(), id);
    }
    let selector = pod_selector(&applied_deployment)
        .unwrap_or_else(|| format!("{}={}", manifest::NAME_LABEL, app.name));
    let follow_it = Follow {
        name: &plan.deployment,
        generation,
        selector: selector.clone(),
        image: &plan.image,
        limit: stall_limit(plan.deadline),
    };
    match follow(scope.ui, &cl, &app.name, &follow_it)? {
        End::Complete { revision, counts } => {
            store.write(|tx| {
                super::notify::finish_deploy(actor, tx, id, DeployStatus::Succeeded, revision, None)
            })?;
            scope.ui.status(format!(
                "{} rolled out to {} (revision {}): {}; {} of {} available",
                app.name,
                env.name,
                revision.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                plan.image,
                counts.available,
                counts.desired
            ));
            store::deploy(store.conn(), id)
        }
        End::Interrupted { revision } => {
            let detail = "interrupted: the cluster keeps rolling out; `xone deploy status` settles this record";
            store.write(|tx| {
                super::notify::finish_deploy(
                    actor,
                    tx,
                    id,
                    DeployStatus::Interrupted,
                    revision,
                    Some(detail),
                )
            })?;
            Err(XoneError::new(
                Kind::Interrupted,
                format!("stopped following the rollout of {} to {}", app.name, env.name),
            )
            .cause("the cluster keeps rolling it out")
            .hint(format!("xone deploy status {} --env {}", app.name, env.name)))
        }
        End::Failed(failure) => {
            let what = describe(&failure);
            let (status, did) = if o.no_rollback {
                (
                    DeployStatus::Failed,
                    format!(
                        "left as is (--no-rollback): xone rollback {} --env {}",
                        app.name, env.name
                    ),
                )
            } else if prev_rs.is_none() {
                (
                    DeployStatus::Failed,
                    "there is no earlier revision to roll back to: the Deployment is left as is"
                        .to_string(),
                )
            } else {
                let back = AfterFailure {
                    deployment: &plan.deployment,
                    app: &app.name,
                    prev_rs: prev_rs.as_deref(),
                    selector: &selector,
                    deadline: plan.deadline,
                };
                match roll_back_after_failure(scope.ui, &cl, &back, actor) {
                    Ok(line) => (DeployStatus::RolledBack, line),
                    Err(e) if e.kind == Kind::Interrupted => {
                        let detail = format!(
                            "{what}; interrupted while rolling back: the cluster keeps rolling back"
                        );
                        store.write(|tx| {
                            super::notify::finish_deploy(
                                actor,
                                tx,
                                id,
                                DeployStatus::Interrupted,
                                failure.revision,
                                Some(&detail),
                            )?;
                            let on = format!("{} to {}: {detail}", app.name, env.name);
                            events::on_requirement(tx, req, actor, "deploy failed", on)
                        })?;
                        return Err(XoneError::new(
                            Kind::Interrupted,
                            format!("the rollout of {} to {} failed: {what}", app.name, env.name),
                        )
                        .cause("interrupted while rolling back; the cluster keeps rolling back")
                        .hint(format!("xone deploy status {} --env {}", app.name, env.name)));
                    }
                    Err(e) => {
                        (DeployStatus::Failed, format!("the rollback failed too: {}", e.message))
                    }
                }
            };
            let detail = format!("{what}; {did}");
            store.write(|tx| {
                super::notify::finish_deploy(
                    actor,
                    tx,
                    id,
                    status,
                    failure.revision,
                    Some(&detail),
                )?;
                let on = format!("{} to {}: {what}", app.name, env.name);
                events::on_requirement(tx, req, actor, "deploy failed", on)?;
                if status == DeployStatus::RolledBack {
                    let back = format!(
                        "{} in {}: automatic, after the failed rollout: {did}",
                        app.name, env.name
                    );
                    events::on_requirement(tx, req, actor, "rollback", back)?;
                }
                Ok(())
            })?;
            let mut err = XoneError::new(
                Kind::Rollout,
                format!("the rollout of {} to {} failed: {what}", app.name, env.name),
            );
            for e in &failure.events {
                err = err.cause(e);
            }
            Err(err.hint(did))
        }
    }
}

/// A Deployment object's pod selector (`spec.selector.matchLabels`) as a label selector.
pub(super) fn pod_selector(deployment: &Value) -> Option<String> {
    deployment["spec"]["selector"]["matchLabels"].as_object().map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",")
    })
}

impl Plan {
    /// The record of this plan's rollout, as it starts.
    pub(super) fn record(&self, actor: &str) -> Deploy {
        Deploy {
            project: self.app.project.clone(),
            app: self.app.name.clone(),
            env: self.env.name.clone(),
            kind: DeployKind::Deploy,
            requirement: self.requirement.clone(),
            build: self.build,
            image: self.image.clone(),
            sha: self.sha.clone(),
            context: self.env.context.clone(),
            namespace: self.env.namespace.clone(),
            actor: actor.to_string(),
            ..Deploy::default()
        }
    }
}

/// `ImagePullBackOff on pod web-7d4-x2k: Back-off pulling image …`
pub(super) fn describe(f: &Failure) -> String {
    let on = f.pod.as_ref().map(|p| format!(" on pod {p}")).unwrap_or_default();
    let message = f.message.trim();
    if message.is_empty() {
        format!("{}{on}", f.reason)
    } else {
        format!("{}{on}: {message}", f.reason)
    }
}

/// Where an automatic rollback goes: the ReplicaSet that ran before a failed rollout.
struct AfterFailure<'a> {
    deployment: &'a str,
    app: &'a str,
    prev_rs: Option<&'a str>,
    selector: &'a str,
    deadline: u64,
}

/// After a failed rollout: the previous revision's template applied again and followed.
fn roll_back_after_failure(
    ui: &Ui,
    cl: &Cluster,
    back: &AfterFailure,
    actor: &str,
) -> Result<String> {
    let to = match (back.prev_rs, cl.deployment(back.deployment)?) {
        (Some(rs), Some(d)) => cl
            .replicasets(&d)?
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(rs))
            .and_then(|r| rollout::revision(&r.metadata)),
        _ => None,
    };
    let undo = cl.undo(
        back.deployment,
        back.app,
        to,
        &format!("xone: automatic rollback after a failed rollout, by {actor}"),
    )?;
    let follow_it = Follow {
        name: back.deployment,
        generation: undo.generation,
        selector: back.selector.to_string(),
        image: &undo.image,
        limit: stall_limit(back.deadline),
    };
    match follow(ui, cl, back.deployment, &follow_it)? {
        End::Complete { revision, .. } => Ok(format!(
            "rolled back to the previous revision (now revision {}, {}), which is healthy",
            revision.unwrap_or(undo.to),
            undo.image
        )),
        End::Failed(f) => Err(XoneError::new(Kind::Rollout, describe(&f))),
        End::Interrupted { .. } => {
            Err(XoneError::new(Kind::Interrupted, "interrupted during the rollback"))
        }
    }
}

/// Follows a rollout, its progress shown through `ui`.
pub fn follow(ui: &Ui, cl: &Cluster, app: &str, f: &Follow) -> Result<End> {
    let progress = ui.progress(Duration::from_millis(100));
    progress.hint(&format!("{app}: waiting for the controller"));
    cl.follow(f, &mut |c: &Counts| progress.say(format!("{app}: {c}")))
}

/// The files of an app's own manifests directory at the build's commit (else the
/// repository's default branch).
fn own_manifests(
    store: &Store,
    forges: &Forges,
    app: &App,
    dir: &str,
    sha: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let repo = store::repos(store.conn(), &project)?
        .into_iter()
        .find(|r| r.id == app.repo_id)
        .ok_or_else(|| XoneError::not_found(format!("the repository of {} is gone", app.name)))?;
    let objects = forges.objects(&repo)?;
    let commit = match sha {
        Some(s) => objects.find_commit(git2::Oid::from_str(s)?)?,
        None => objects.revparse_single(&repo.default_branch)?.peel_to_commit()?,
    };
    let tree = commit.tree()?;
    let entry = tree.get_path(std::path::Path::new(dir.trim_matches('/'))).map_err(|_| {
        XoneError::not_found(format!(
            "{} has no directory {dir} at {}",
            repo.name,
            short_sha(&commit.id().to_string())
        ))
        .hint("fix the app's --manifests")
    })?;
    let sub = objects
        .find_tree(entry.id())
        .map_err(|_| XoneError::usage(format!("{dir} in {} is not a directory", repo.name)))?;
    let mut docs = Vec::new();
    for e in sub.iter() {
        let name = e.name().unwrap_or_default().to_string();
        if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) {
            continue;
        }
        let blob = objects.find_blob(e.id())?;
        let text = String::from_utf8_lossy(blob.content()).into_owned();
        docs.push((format!("{dir}/{name}"), text));
    }
    docs.sort();
    Ok(docs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_repositories_lose_tags_and_digests() {
        use super::image_repo;
        assert_eq!(image_repo("reg:5000/pay/web:PAY-1-abc"), "reg:5000/pay/web");
        assert_eq!(image_repo("reg:5000/pay/web@sha256:ab"), "reg:5000/pay/web");
        assert_eq!(image_repo("reg:5000/pay/web"), "reg:5000/pay/web");
        assert_eq!(image_repo("web:1"), "web");
    }
}
