//! Releases on Kubernetes: an app's image rolled out to an environment's cluster by
//! server-side apply, followed through watches until it is available, rolled back when it
//! fails; what runs and each revision read from the cluster itself, so that another machine
//! tells the same story; rollbacks by revision and by requirement.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::target::{self, Target};
use super::{events, Scope};
use crate::adapters::cluster::{self, Cluster, End, Failure, Follow};
use crate::adapters::Forges;
use crate::domain::manifest::{self, Spec};
use crate::domain::rollout::{self, Counts, Rollout};
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
fn stall_limit(deadline: u64) -> Duration {
    Duration::from_secs(deadline + 60)
}

fn deadline(scope: &Scope) -> u64 {
    scope.config.duration("deploy.progress_deadline").as_secs().max(1)
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
    let cl = target::connect(env, scope.remote.clone())?;
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
    let record = Deploy {
        project: app.project.clone(),
        app: app.name.clone(),
        env: env.name.clone(),
        kind: DeployKind::Deploy,
        requirement: plan.requirement.clone(),
        build: plan.build,
        image: plan.image.clone(),
        sha: plan.sha.clone(),
        context: env.context.clone(),
        namespace: env.namespace.clone(),
        prev_revision,
        prev_rs: prev_rs.clone(),
        actor: actor.to_string(),
        ..Deploy::default()
    };
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
                    store::finish_deploy(
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
        store.write(|tx| store::finish_deploy(tx, id, DeployStatus::Applied, None, None))?;
        scope.ui.status(format!(
            "applied {} to {} ({}/{}); follow it with `xone deploy status {} --env {}`",
            app.name, env.name, env.context, env.namespace, app.name, env.name
        ));
        return store::deploy(store.conn(), id);
    }
    let selector = applied_deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
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
                store::finish_deploy(tx, id, DeployStatus::Succeeded, revision, None)
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
                store::finish_deploy(tx, id, DeployStatus::Interrupted, revision, Some(detail))
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
                            store::finish_deploy(
                                tx,
                                id,
                                DeployStatus::Interrupted,
                                failure.revision,
                                Some(&detail),
                            )
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
                store::finish_deploy(tx, id, status, failure.revision, Some(&detail))
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

/// `ImagePullBackOff on pod web-7d4-x2k: Back-off pulling image …`
fn describe(f: &Failure) -> String {
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

#[derive(Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// What runs now, as the cluster tells it.
#[derive(Serialize)]
pub struct Status {
    pub app: String,
    pub env: String,
    pub context: String,
    pub namespace: String,
    pub deployment: String,
    pub revision: Option<i64>,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub requirement: Option<String>,
    pub build: Option<i64>,
    pub deployed_by: Option<String>,
    pub change_cause: Option<String>,
    pub rollout: String,
    pub replicas: Counts,
    pub conditions: Vec<Condition>,
    /// The latest local record of a rollout of this app to this environment.
    pub record: Option<Deploy>,
}

/// What runs now, read from the cluster. `None`: the app is not deployed there.
pub fn read_status(cl: &Cluster, app: &App, env: &Env) -> Result<Option<Status>> {
    let Some(d) = target::find_deployment(cl, &app.name)? else { return Ok(None) };
    let ann = d.metadata.annotations.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    let containers = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let only = containers.len() == 1;
    let image =
        containers.iter().find(|c| only || c.name == app.name).and_then(|c| c.image.clone());
    let mut digest = image.as_deref().and_then(|i| i.split_once('@')).map(|(_, d)| d.to_string());
    let generation = d.metadata.generation.unwrap_or(0);
    let judged = rollout::judge(&d, generation);
    if digest.is_none() {
        // The digest the nodes resolved the tag to, from a pod of the current revision (not
        // an old one still terminating), in the app's container.
        let revision = rollout::revision(&d.metadata);
        let hash = cl
            .replicasets(&d)
            .unwrap_or_default()
            .into_iter()
            .find(|rs| rollout::revision(&rs.metadata) == revision)
            .and_then(|rs| rs.metadata.labels.and_then(|l| l.get("pod-template-hash").cloned()));
        let selector = match &hash {
            Some(h) => format!("{},pod-template-hash={h}", cluster::selector_of(&d)),
            None => cluster::selector_of(&d),
        };
        let pods = cl.pods(&selector).unwrap_or_default();
        digest = pods
            .iter()
            .flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()))
            .filter(|c| only || c.name == app.name)
            .find_map(|c| c.image_id.split_once('@').map(|(_, d)| d.to_string()));
    }
    let conditions = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| Condition {
            kind: c.type_,
            status: c.status,
            reason: c.reason,
            message: c.message,
        })
        .collect();
    Ok(Some(Status {
        app: app.name.clone(),
        env: env.name.clone(),
        context: env.context.clone(),
        namespace: env.namespace.clone(),
        deployment: name,
        revision: rollout::revision(&d.metadata),
        image,
        digest,
        requirement: ann.get(manifest::REQUIREMENT).cloned(),
        build: ann.get(manifest::BUILD).and_then(|b| b.parse().ok()),
        deployed_by: ann.get(manifest::DEPLOYED_BY).cloned(),
        change_cause: ann.get(manifest::CHANGE_CAUSE).cloned(),
        rollout: match &judged {
            Rollout::Pending => "pending",
            Rollout::Progressing(_) => "progressing",
            Rollout::Complete(_) => "complete",
            Rollout::DeadlineExceeded(_) => "failed",
        }
        .to_string(),
        replicas: rollout::counts(&d),
        conditions,
        record: None,
    }))
}

/// What runs now, with the latest local record of a rollout there; a record of a rollout
/// nobody followed to its end is settled from what the cluster says.
pub fn status(store: &mut Store, t: &Target) -> Result<Status> {
    let (app, env) = (&t.app, &t.env);
    let mut st =
        read_status(&t.cluster, app, env)?.ok_or_else(|| target::not_deployed(&app.name, env))?;
    store.write(|tx| store::settle_abandoned_deploys(tx))?;
    let mut last =
        store::deploys(store.conn(), Some(&app.project), Some(&app.name), Some(&env.name), None)?
            .into_iter()
            .next();
    if let Some(rec) = &last {
        let unsettled = matches!(rec.status, DeployStatus::Interrupted | DeployStatus::Applied);
        let outcome = match st.rollout.as_str() {
            "complete" => Some(DeployStatus::Succeeded),
            "failed" => Some(DeployStatus::Failed),
            _ => None,
        };
        let same = st.image.as_deref() == Some(rec.image.as_str());
        if let Some(o) = outcome.filter(|_| unsettled && same) {
            let detail = format!("settled by deploy status: the rollout {}", st.rollout);
            store.write(|tx| store::finish_deploy(tx, rec.id, o, st.revision, Some(&detail)))?;
            last = Some(store::deploy(store.conn(), rec.id)?);
        }
    }
    st.record = last;
    Ok(st)
}

/// One revision of an app's Deployment, from its ReplicaSet.
#[derive(Serialize)]
pub struct Revision {
    pub revision: Option<i64>,
    pub image: Option<String>,
    pub requirement: Option<String>,
    pub build: Option<i64>,
    pub deployed_by: Option<String>,
    pub change_cause: Option<String>,
    pub created: Option<String>,
    pub replicas: i32,
    pub current: bool,
}

/// The app's revisions, as its Deployment's ReplicaSets and their annotations tell them.
pub fn history(t: &Target) -> Result<Vec<Revision>> {
    let d = t.deployment()?;
    let current = rollout::revision(&d.metadata);
    Ok(t.cluster
        .replicasets(&d)?
        .into_iter()
        .map(|rs| {
            let ann = rs.metadata.annotations.clone().unwrap_or_default();
            let revision = rollout::revision(&rs.metadata);
            let containers = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| serde_json::to_value(&s.containers).unwrap_or_default())
                .unwrap_or_default();
            let image = manifest::app_container(&containers, &t.app.name)
                .and_then(|c| c["image"].as_str())
                .map(str::to_string);
            Revision {
                revision,
                image,
                requirement: ann.get(manifest::REQUIREMENT).cloned(),
                build: ann.get(manifest::BUILD).and_then(|b| b.parse().ok()),
                deployed_by: ann.get(manifest::DEPLOYED_BY).cloned(),
                change_cause: ann.get(manifest::CHANGE_CAUSE).cloned(),
                created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
                replicas: rs.status.as_ref().map(|s| s.replicas).unwrap_or(0),
                current: revision.is_some() && revision == current,
            }
        })
        .collect())
}

/// What a rollback of one app did.
pub enum Rollback {
    /// The revision asked for already runs: as with kubectl, nothing to do.
    Skipped { revision: i64 },
    /// The record of the rollback; its status says whether it rolled out.
    Done(Box<Deploy>),
}

/// Rolls an app back as `kubectl rollout undo` does: the pod template of the previous
/// revision (or `to`) applied again, becoming the newest revision.
pub fn rollback(
    scope: &Scope,
    store: &mut Store,
    t: &Target,
    to: Option<i64>,
    wait: bool,
    actor: &str,
) -> Result<Rollback> {
    let d = t.deployment()?;
    let name = d.metadata.name.clone().unwrap_or_default();
    if let (Some(to), Some(now)) = (to, rollout::revision(&d.metadata)) {
        if to == now {
            return Ok(Rollback::Skipped { revision: to });
        }
    }
    let undo = Undo { deployment: &name, to, requirement: None, wait };
    undo_one(scope, store, t, &undo, actor).map(|d| Rollback::Done(Box::new(d)))
}

/// One rollback to make: of which Deployment, to which revision (default: the previous), for
/// which requirement, and whether to follow it.
struct Undo<'a> {
    deployment: &'a str,
    to: Option<i64>,
    requirement: Option<&'a str>,
    wait: bool,
}

/// Rolls one Deployment back and records it; a failed rollout is a record with status
/// `failed`, other errors are errors.
fn undo_one(scope: &Scope, store: &mut Store, t: &Target, u: &Undo, actor: &str) -> Result<Deploy> {
    let (cl, app, env) = (&t.cluster, &t.app, &t.env);
    let cause = match u.requirement {
        Some(k) => format!("xone rollback --requirement {k} by {actor}"),
        None => format!("xone rollback {} --env {} by {actor}", app.name, env.name),
    };
    let undo = cl.undo(u.deployment, &app.name, u.to, &cause)?;
    let record = Deploy {
        project: app.project.clone(),
        app: app.name.clone(),
        env: env.name.clone(),
        kind: DeployKind::Rollback,
        requirement: undo.story.get(manifest::REQUIREMENT).cloned(),
        build: undo.story.get(manifest::BUILD).and_then(|b| b.parse().ok()),
        image: undo.image.clone(),
        context: env.context.clone(),
        namespace: env.namespace.clone(),
        prev_revision: undo.from,
        detail: Some(format!("back to revision {}", undo.to)),
        actor: actor.to_string(),
        ..Deploy::default()
    };
    // The requirement named on the record is the one rolled back, when there is one. The
    // annotations may name another machine's requirement or build: the record keeps only
    // those this machine knows (the build only when it made this very image).
    let requirement =
        u.requirement.map(str::to_string).or(record.requirement.clone()).filter(|k| {
            k.parse::<RequirementKey>().is_ok_and(|k| store::requirement(store.conn(), &k).is_ok())
        });
    let build = record.build.filter(|id| {
        store::build(store.conn(), *id).is_ok_and(|b| {
            b.image.as_deref() == Some(undo.image.as_str())
                || b.digest
                    .as_deref()
                    .is_some_and(|d| undo.image.ends_with(d.rsplit('@').next().unwrap_or(d)))
        })
    });
    let record = Deploy { requirement, build, ..record };
    let id = store.write(|tx| store::start_deploy(tx, &record))?;
    let from = undo.from.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
    if !u.wait {
        store.write(|tx| store::finish_deploy(tx, id, DeployStatus::Applied, None, None))?;
        scope.ui.status(format!(
            "{} in {}: revision {from} -> revision {}'s template applied ({})",
            app.name, env.name, undo.to, undo.image
        ));
        return store::deploy(store.conn(), id);
    }
    let d = cl.deployment(u.deployment)?;
    let selector = d.as_ref().map(cluster::selector_of).unwrap_or_default();
    let follow_it = Follow {
        name: u.deployment,
        generation: undo.generation,
        selector,
        image: &undo.image,
        limit: stall_limit(deadline(scope)),
    };
    match follow(scope.ui, cl, &app.name, &follow_it)? {
        End::Complete { revision, .. } => {
            let detail = format!(
                "back to revision {} ({}), now revision {}",
                undo.to,
                undo.image,
                revision.unwrap_or(0)
            );
            store.write(|tx| {
                store::finish_deploy(tx, id, DeployStatus::Succeeded, revision, Some(&detail))
            })?;
            scope.ui.status(format!(
                "{} in {}: rolled back from revision {from} to revision {}'s template ({}), healthy",
                app.name, env.name, undo.to, undo.image
            ));
        }
        End::Failed(f) => {
            let detail = format!("back to revision {}: {}", undo.to, describe(&f));
            store.write(|tx| {
                store::finish_deploy(tx, id, DeployStatus::Failed, f.revision, Some(&detail))
            })?;
            scope.ui.warn(format!(
                "{} in {}: the rollback failed: {}",
                app.name,
                env.name,
                describe(&f)
            ));
        }
        End::Interrupted { revision } => {
            store.write(|tx| {
                store::finish_deploy(
                    tx,
                    id,
                    DeployStatus::Interrupted,
                    revision,
                    Some("interrupted: the cluster keeps rolling back"),
                )
            })?;
            return Err(XoneError::new(
                Kind::Interrupted,
                "stopped following the rollback; the cluster keeps rolling",
            )
            .hint(format!("xone deploy status {} --env {}", app.name, env.name)));
        }
    }
    store::deploy(store.conn(), id)
}

/// The release watch's rollback: the revision before the current one, followed to its end.
/// Returns what was done, for the watch's record.
pub fn rollback_after_watch(
    scope: &Scope,
    store: &mut Store,
    t: &Target,
    deployment: &str,
    actor: &str,
) -> Result<String> {
    let undo = Undo { deployment, to: None, requirement: None, wait: true };
    let rec = undo_one(scope, store, t, &undo, actor)?;
    if rec.status == DeployStatus::Failed {
        return Err(XoneError::new(Kind::Rollout, rec.detail.unwrap_or_default()));
    }
    Ok(format!("rolled back: {}", rec.detail.unwrap_or_default()))
}

/// Where a requirement's rollback goes back to in one app and environment.
enum Before {
    /// The ReplicaSet that ran before its first deploy, as recorded here.
    Rs(Option<String>),
    /// The revision before the oldest one carrying the requirement, read from the cluster.
    Revision(Option<i64>),
}

/// What a requirement's rollback did: the records it made, and how many of its apps and
/// environments were tried and failed.
pub struct Rollbacks {
    pub records: Vec<Deploy>,
    pub tried: usize,
    pub failed: usize,
}

/// Rolls back every app and environment a requirement deployed to, newest first, each to
/// the revision before the requirement's first deploy there. The plan comes from this
/// machine's records, else (the requirement deployed from another machine) from the
/// clusters' ReplicaSets annotated with it. Each line is shown through the scope's `Ui` as it
/// is done.
pub fn rollback_requirement(
    scope: &Scope,
    store: &mut Store,
    key: &RequirementKey,
    env: Option<&str>,
    wait: bool,
    actor: &str,
) -> Result<Rollbacks> {
    // The requirement may be another machine's: its deployments are found in the clusters.
    store::project(store.conn(), &key.project)?;
    let key_text = key.to_string();
    let records =
        store::deploys(store.conn(), Some(key.project.as_str()), None, env, Some(&key_text))?;
    // (app, env) in the order of their newest deploy; each keeps the requirement's first one.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut first: BTreeMap<(String, String), Deploy> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind == DeployKind::Deploy) {
        let k = (r.app.clone(), r.env.clone());
        if !order.contains(&k) {
            order.push(k.clone());
        }
        first.insert(k, r.clone());
    }
    let mut plans: Vec<(String, String, Before)> = order
        .iter()
        .map(|k| (k.0.clone(), k.1.clone(), Before::Rs(first[k].prev_rs.clone())))
        .collect();
    if plans.is_empty() {
        plans = plans_from_clusters(scope, store, key, env)?;
    }
    if plans.is_empty() {
        return Err(XoneError::not_found(format!(
            "{key} deployed nothing: no record here and no revision in its environments carries it"
        ))
        .hint("roll back one app with: xone rollback APP --env ENV"));
    }
    let mut done = Rollbacks { records: Vec::new(), tried: plans.len(), failed: 0 };
    for (app_name, env_name, before) in &plans {
        let line = (|| -> Result<(bool, String, Option<Deploy>)> {
            let app = store::app(store.conn(), Some(&key.project), app_name)?;
            let env = target::find_env(store, &key.project, env_name)?;
            let none_before = || {
                Ok((false, format!("no revision before {key}'s first deploy; left as is"), None))
            };
            let t = Target::connect(app, env, scope.remote.clone())?;
            let d = t.deployment()?;
            let name = d.metadata.name.clone().unwrap_or_default();
            let to = match before {
                Before::Rs(None) | Before::Revision(None) => return none_before(),
                Before::Revision(Some(n)) => *n,
                Before::Rs(Some(prev_rs)) => {
                    let found = t
                        .cluster
                        .replicasets(&d)?
                        .into_iter()
                        .find(|rs| rs.metadata.name.as_deref() == Some(prev_rs.as_str()))
                        .and_then(|rs| rollout::revision(&rs.metadata));
                    let Some(to) = found else {
                        return Ok((
                            false,
                            format!("the revision before {key} ({prev_rs}) is no longer kept"),
                            None,
                        ));
                    };
                    to
                }
            };
            if rollout::revision(&d.metadata) == Some(to) {
                return Ok((true, format!("already at revision {to}, from before {key}"), None));
            }
            let undo = Undo { deployment: &name, to: Some(to), requirement: Some(&key_text), wait };
            let rec = undo_one(scope, store, &t, &undo, actor)?;
            let ok = rec.status != DeployStatus::Failed;
            Ok((ok, rec.detail.clone().unwrap_or_default(), Some(rec)))
        })();
        let (ok, text) = match line {
            Ok((ok, text, rec)) => {
                done.records.extend(rec);
                (ok, text)
            }
            Err(e) => (false, e.message),
        };
        if !ok {
            done.failed += 1;
        }
        let mark = if ok { scope.ui.green("ok") } else { scope.ui.red("failed") };
        scope.ui.status(format!("{app_name} in {env_name}: {mark} {text}"));
    }
    Ok(done)
}

/// A requirement's deployments as the clusters tell them: in every environment of its
/// project, the ReplicaSets annotated with it. Newest first.
fn plans_from_clusters(
    scope: &Scope,
    store: &Store,
    key: &RequirementKey,
    env: Option<&str>,
) -> Result<Vec<(String, String, Before)>> {
    let apps = store::apps(store.conn(), &key.project)?;
    let envs: Vec<Env> = store::envs(store.conn(), &key.project)?
        .into_iter()
        .filter(|e| env.is_none_or(|n| n == e.name))
        .collect();
    let mut found = Vec::new();
    for env in &envs {
        let Ok(cl) = target::connect(env, scope.remote.clone()) else {
            scope.ui.warn(format!("environment {}: its cluster cannot be read; skipped", env.name));
            continue;
        };
        for app in &apps {
            let Ok(Some(d)) = target::find_deployment(&cl, &app.name) else { continue };
            let sets = cl.replicasets(&d)?;
            let ours: Vec<_> = sets
                .iter()
                .filter(|rs| {
                    rs.metadata.annotations.as_ref().and_then(|a| a.get(manifest::REQUIREMENT))
                        == Some(&key.to_string())
                })
                .collect();
            let Some(first) = ours.iter().filter_map(|rs| rollout::revision(&rs.metadata)).min()
            else {
                continue;
            };
            let newest = ours
                .iter()
                .filter_map(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()))
                .max()
                .unwrap_or_default();
            let before = sets
                .iter()
                .filter_map(|rs| rollout::revision(&rs.metadata))
                .filter(|r| *r < first)
                .max();
            found.push((newest, app.name.clone(), env.name.clone(), Before::Revision(before)));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(found.into_iter().map(|(_, app, env, before)| (app, env, before)).collect())
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
