//! `xone deploy` and `xone rollback`: an app's image rolled out to an environment's cluster by
//! server-side apply, followed through watches until it is available, rolled back when it
//! fails; `deploy status|history` read the cluster itself, so another machine tells the same
//! story.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};
use serde::Serialize;
use serde_json::Value;

use super::{complete, Ctx};
use crate::adapters::cluster::{self, Cluster, End, Failure, Follow};
use crate::domain::manifest::{self, Spec};
use crate::domain::rollout::{self, Counts, Rollout};
use crate::domain::{ProjectKey, RequirementKey};
use crate::store::{self, App, Deploy, Env, Event};
use crate::ui::{short_sha, table, Kind, Result, XoneError};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = "\
Renders APP's Deployment (image pinned by digest when the build pushed one, the app's port, \
replicas for ENV, readiness and liveness probes on its health path) and Service, or takes the \
app's own manifests and sets its container's image, and applies them server-side as field \
manager xone. The objects carry app.kubernetes.io/name, app.kubernetes.io/managed-by=xone and \
annotations naming the requirement, build, image and deployer (kubernetes.io/change-cause \
too). --wait (the default on a terminal and in CI) follows the rollout through watches; a \
rollout that fails (progress deadline, pods in ImagePullBackOff or CrashLoopBackOff) is rolled \
back to the previous revision unless --no-rollback, and xone exits 7 saying what failed and \
what it did. --dry-run prints the manifests as YAML and touches nothing. \
JSON: {\"id\", \"project\", \"app\", \"env\", \"kind\": deploy|rollback, \"requirement\", \"build\", \
\"image\", \"sha\", \"context\", \"namespace\", \"status\": rolling|succeeded|failed|rolled-back|applied|interrupted, \
\"revision\", \"prev_revision\", \"prev_rs\", \"detail\", \"started_at\", \"finished_at\", \"actor\"}; \
with --dry-run, the objects"
)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub cmd: Option<DeployCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Strategy {
    Rolling,
    Recreate,
}

#[derive(Args, Debug)]
#[group(id = "what", required = true, multiple = false, args = ["build", "image"])]
pub struct RunArgs {
    /// The app to deploy
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: Option<String>,
    #[command(flatten)]
    pub at: Target,
    /// Deploy the image of this build (pinned by its digest when it was pushed)
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
    /// Deploy this image reference
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The requirement this deployment serves (default: the build's)
    #[arg(long, value_name = "KEY", add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// How pods are replaced
    #[arg(long, value_enum, default_value = "rolling")]
    pub strategy: Strategy,
    /// Follow the rollout to its end (the default on a terminal and in CI)
    #[arg(long, conflicts_with = "no_wait")]
    pub wait: bool,
    /// Apply and return without following the rollout
    #[arg(long)]
    pub no_wait: bool,
    /// Print the manifests and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Create the namespace when it does not exist
    #[arg(long)]
    pub create_namespace: bool,
    /// Leave a failed rollout as it is instead of rolling back
    #[arg(long)]
    pub no_rollback: bool,
    /// Take over fields another field manager owns
    #[arg(long)]
    pub force_conflicts: bool,
}

/// Where: the environment, and the project when the app's name is not enough.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The environment (daily, test, gray, prod, …)
    #[arg(long, value_name = "ENV", add = ArgValueCandidates::new(complete::env_names))]
    pub env: Option<String>,
    /// The app's project (default: the only one with such an app)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
}

#[derive(Subcommand, Debug)]
pub enum DeployCommand {
    /// What runs now, read from the cluster: revision, image and digest, requirement,
    /// replicas, conditions
    #[command(after_long_help = "\
Settles the local record of a rollout that was interrupted or not waited for. JSON: {\"app\", \
\"env\", \"context\", \"namespace\", \"deployment\", \"revision\", \"image\", \"digest\", \"requirement\", \
\"build\", \"deployed_by\", \"change_cause\", \"rollout\": complete|progressing|failed|pending, \
\"replicas\": {\"desired\", \"updated\", \"ready\", \"available\", \"total\"}, \"conditions\": [{\"type\", \
\"status\", \"reason\", \"message\"}], \"record\": the latest deployment record or null}")]
    Status {
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
        #[command(flatten)]
        at: Target,
    },
    /// One row per revision, from the Deployment's ReplicaSets and their annotations
    #[command(after_long_help = "\
JSON: [{\"revision\", \"image\", \"requirement\", \"build\", \"deployed_by\", \"change_cause\", \
\"created\", \"replicas\", \"current\"}], oldest first")]
    History {
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
        #[command(flatten)]
        at: Target,
    },
    /// The post-release watch: firing alerts and the HTTP error ratio on Prometheus
    Watch(super::watch::WatchArgs),
}

#[derive(Args, Debug)]
#[command(after_long_help = "\
APP --env ENV: as `kubectl rollout undo`, the pod template of the previous revision (or \
--to-revision N) is applied again and becomes the newest revision. --requirement KEY: every \
app and environment that requirement deployed to, newest first, back to the revision before \
its first deploy there; one line per app, exit 7 if any failed. JSON: [the rollback records]")]
pub struct RollbackArgs {
    /// The app to roll back
    #[arg(add = ArgValueCandidates::new(complete::app_names), required_unless_present = "requirement", conflicts_with = "requirement")]
    pub app: Option<String>,
    #[command(flatten)]
    pub at: Target,
    /// The revision to go back to (default: the one before the current)
    #[arg(long, value_name = "N")]
    pub to_revision: Option<i64>,
    /// Roll back everything this requirement deployed
    #[arg(long, value_name = "KEY", add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// Follow the rollback's rollout (the default on a terminal and in CI)
    #[arg(long, conflicts_with = "no_wait")]
    pub wait: bool,
    /// Return once the old revision is applied
    #[arg(long)]
    pub no_wait: bool,
}

pub fn run(cx: &mut Ctx, a: DeployArgs) -> Result<()> {
    match a.cmd {
        Some(DeployCommand::Status { app, at }) => status(cx, &app, &at),
        Some(DeployCommand::History { app, at }) => history(cx, &app, &at),
        Some(DeployCommand::Watch(w)) => super::watch::run(cx, w),
        None => deploy(cx, a.run),
    }
}

/// Whether to follow a rollout: asked for, or by default on a terminal and in CI.
fn waits(cx: &Ctx, wait: bool, no_wait: bool) -> bool {
    wait || (!no_wait && (cx.ui.stderr_tty || std::env::var_os("CI").is_some()))
}

/// The app and its environment.
pub fn locate(cx: &mut Ctx, app: &str, at: &Target) -> Result<(App, Env)> {
    let store = cx.store()?;
    let app = store::app(store.conn(), at.project.as_ref(), app)?;
    let env_name = at
        .env
        .clone()
        .ok_or_else(|| XoneError::usage("which environment? --env ENV is required"))?;
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let env = find_env(&store, &project, &env_name)?;
    Ok((app, env))
}

pub fn find_env(store: &store::Store, project: &ProjectKey, name: &str) -> Result<Env> {
    store::envs(store.conn(), project)?.into_iter().find(|e| e.name == name).ok_or_else(|| {
        XoneError::not_found(format!("project {project} has no environment {name}"))
            .hint(format!("xone project env set {project} {name} --context CONTEXT --namespace NS"))
    })
}

pub fn connect(cx: &mut Ctx, env: &Env) -> Result<Cluster> {
    let settings = cx.remote()?;
    Cluster::connect(&env.context, &env.namespace, settings)
}

/// How long a rollout may make no visible progress before xone gives up on it: the
/// Deployment's own deadline, and a minute for the controller to say so.
fn stall_limit(deadline: u64) -> Duration {
    Duration::from_secs(deadline + 60)
}

/// The repository part of an image reference: no tag, no digest.
pub fn image_repo(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The Deployment of an app in a namespace: named like the app, else the one labelled with
/// its name (an app with its own manifests).
fn find_deployment(
    cl: &Cluster,
    app: &str,
) -> Result<Option<k8s_openapi::api::apps::v1::Deployment>> {
    if let Some(d) = cl.deployment(app)? {
        return Ok(Some(d));
    }
    let labelled = cl.deployments(&format!("{}={app}", manifest::NAME_LABEL))?;
    Ok(labelled.into_iter().next())
}

fn deploy(cx: &mut Ctx, a: RunArgs) -> Result<()> {
    let app_name =
        a.app.clone().ok_or_else(|| XoneError::usage("which app? xone deploy APP --env ENV"))?;
    let (app, env) = locate(cx, &app_name, &a.at)?;
    let actor = cx.actor()?;
    let store = cx.store()?;
    // The image: a build's (by digest when pushed), or the one given.
    let (image, build, sha, build_req) = match (a.build, &a.image) {
        (Some(id), _) => {
            let b = store::build(store.conn(), id)?;
            if b.app != app.name || b.project != app.project {
                return Err(XoneError::usage(format!(
                    "build #{id} is of {}/{}, not {}/{}",
                    b.project, b.app, app.project, app.name
                )));
            }
            if b.status != "success" {
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
        (None, Some(i)) => {
            if i.is_empty() || i.contains(char::is_whitespace) {
                return Err(XoneError::usage(format!("--image '{i}' is not an image reference")));
            }
            (i.clone(), None, None, None)
        }
        (None, None) => return Err(XoneError::usage("deploy what? --build ID or --image IMAGE")),
    };
    let requirement = match a.requirement.as_ref().map(|k| k.to_string()).or(build_req) {
        Some(k) => {
            let key: RequirementKey = k.parse().map_err(XoneError::usage)?;
            store::requirement(store.conn(), &key)?;
            Some(k)
        }
        None => None,
    };
    let deadline = cx.config()?.duration("deploy.progress_deadline").as_secs().max(1);
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
    annotations.insert(manifest::DEPLOYED_BY.to_string(), actor.clone());
    let spec = Spec {
        app: &app.name,
        namespace: &env.namespace,
        image: &image,
        replicas: app.replicas.get(&env.name).copied().unwrap_or(1),
        port: app.port,
        health: app.health.as_deref(),
        strategy: match a.strategy {
            Strategy::Rolling => "RollingUpdate",
            Strategy::Recreate => "Recreate",
        },
        progress_deadline: deadline as i64,
        annotations,
    };
    let (objects, deployment) = match &app.manifests {
        Some(dir) => {
            let docs = own_manifests(cx, &app, dir, sha.as_deref())?;
            manifest::adopt(&docs, &spec).map_err(|e| {
                XoneError::usage(format!("the manifests of {} in {dir} cannot be used", app.name))
                    .cause(e)
            })?
        }
        None => (manifest::render(&spec), app.name.clone()),
    };
    if a.dry_run {
        if cx.ui.json {
            return cx.ui.print_json(&objects);
        }
        write!(cx.ui.out(), "{}", manifest::to_yaml(&objects))?;
        return Ok(());
    }
    drop(store);
    let cl = connect(cx, &env)?;
    if !cl.namespace_exists()? {
        if !a.create_namespace {
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
        cx.ui.status(format!("created namespace {}", env.namespace));
    }
    // Where the Deployment stands before: the revision a failure goes back to.
    let before = cl.deployment(&deployment)?;
    let prev_revision = before.as_ref().and_then(|d| rollout::revision(&d.metadata));
    let prev_rs = match &before {
        Some(d) => cl
            .replicasets(d)?
            .into_iter()
            .find(|rs| rollout::revision(&rs.metadata) == prev_revision && prev_revision.is_some())
            .and_then(|rs| rs.metadata.name),
        None => None,
    };
    let mut store = cx.store()?;
    let record = Deploy {
        project: app.project.clone(),
        app: app.name.clone(),
        env: env.name.clone(),
        kind: "deploy".into(),
        requirement: requirement.clone(),
        build,
        image: image.clone(),
        sha: sha.clone(),
        context: env.context.clone(),
        namespace: env.namespace.clone(),
        prev_revision,
        prev_rs: prev_rs.clone(),
        actor: actor.clone(),
        ..Deploy::default()
    };
    let id = store.write(|tx| store::start_deploy(tx, &record))?;
    // Everything else first, so that what the pods read exists before they start.
    let mut applied_deployment = Value::Null;
    let mut ordered: Vec<&Value> = objects.iter().filter(|o| o["kind"] != "Deployment").collect();
    ordered.extend(objects.iter().filter(|o| o["kind"] == "Deployment"));
    for o in ordered {
        match cl.apply(o, a.force_conflicts) {
            Ok(v) => {
                if o["kind"] == "Deployment" && o["metadata"]["name"] == deployment.as_str() {
                    applied_deployment = v;
                }
            }
            Err(e) => {
                store.write(|tx| {
                    store::finish_deploy(
                        tx,
                        id,
                        "failed",
                        None,
                        Some(&format!("apply: {}", e.message)),
                    )
                })?;
                return Err(e);
            }
        }
    }
    if let Some(r) = &requirement {
        let key: RequirementKey = r.parse().map_err(XoneError::usage)?;
        let req = store::requirement(store.conn(), &key)?;
        store.write(|tx| {
            store::record(
                tx,
                &Event {
                    detail: Some(format!("{} to {}: {image}", app.name, env.name)),
                    ..super::requirement::event(&req, &actor, "deploy")
                },
            )
        })?;
    }
    let generation = applied_deployment["metadata"]["generation"].as_i64().unwrap_or(0);
    if !waits(cx, a.wait, a.no_wait) {
        store.write(|tx| store::finish_deploy(tx, id, "applied", None, None))?;
        cx.ui.status(format!(
            "applied {} to {} ({}/{}); follow it with `xone deploy status {} --env {}`",
            app.name, env.name, env.context, env.namespace, app.name, env.name
        ));
        return print_record(cx, &store, id);
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
    let follow = Follow {
        name: &deployment,
        generation,
        selector: selector.clone(),
        image: &image,
        limit: stall_limit(deadline),
    };
    let end = follow_shown(cx, &cl, &app.name, &follow)?;
    match end {
        End::Complete { revision, counts } => {
            store.write(|tx| store::finish_deploy(tx, id, "succeeded", revision, None))?;
            cx.ui.status(format!(
                "{} rolled out to {} (revision {}): {image}; {} of {} available",
                app.name,
                env.name,
                revision.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                counts.available,
                counts.desired
            ));
            print_record(cx, &store, id)
        }
        End::Interrupted { revision } => {
            let detail = "interrupted: the cluster keeps rolling out; `xone deploy status` settles this record";
            store
                .write(|tx| store::finish_deploy(tx, id, "interrupted", revision, Some(detail)))?;
            Err(XoneError::new(
                Kind::Interrupted,
                format!("stopped following the rollout of {} to {}", app.name, env.name),
            )
            .cause("the cluster keeps rolling it out")
            .hint(format!("xone deploy status {} --env {}", app.name, env.name)))
        }
        End::Failed(failure) => {
            let what = describe(&failure);
            let (status, did) = if a.no_rollback {
                (
                    "failed",
                    format!(
                        "left as is (--no-rollback): xone rollback {} --env {}",
                        app.name, env.name
                    ),
                )
            } else if prev_rs.is_none() {
                (
                    "failed",
                    "there is no earlier revision to roll back to: the Deployment is left as is"
                        .to_string(),
                )
            } else {
                match roll_back_after_failure(
                    cx,
                    &cl,
                    &deployment,
                    &app.name,
                    prev_rs.as_deref(),
                    &selector,
                    deadline,
                ) {
                    Ok(line) => ("rolled-back", line),
                    Err(e) if e.kind == Kind::Interrupted => {
                        let detail = format!(
                            "{what}; interrupted while rolling back: the cluster keeps rolling back"
                        );
                        store.write(|tx| {
                            store::finish_deploy(
                                tx,
                                id,
                                "interrupted",
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
                    Err(e) => ("failed", format!("the rollback failed too: {}", e.message)),
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

/// After a failed rollout: the previous revision's template applied again and followed.
fn roll_back_after_failure(
    cx: &mut Ctx,
    cl: &Cluster,
    deployment: &str,
    app: &str,
    prev_rs: Option<&str>,
    selector: &str,
    deadline: u64,
) -> Result<String> {
    let to = match (prev_rs, cl.deployment(deployment)?) {
        (Some(rs), Some(d)) => cl
            .replicasets(&d)?
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(rs))
            .and_then(|r| rollout::revision(&r.metadata)),
        _ => None,
    };
    let actor = cx.actor()?;
    let undo = cl.undo(
        deployment,
        app,
        to,
        &format!("xone: automatic rollback after a failed rollout, by {actor}"),
    )?;
    let follow = Follow {
        name: deployment,
        generation: undo.generation,
        selector: selector.to_string(),
        image: &undo.image,
        limit: stall_limit(deadline),
    };
    match follow_shown(cx, cl, deployment, &follow)? {
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

/// Follows a rollout with a live line on a terminal, or one line per change elsewhere.
pub fn follow_shown(cx: &Ctx, cl: &Cluster, app: &str, f: &Follow) -> Result<End> {
    let bar = (cx.ui.stderr_tty && !cx.ui.json).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(100));
        b.set_message(format!("{app}: waiting for the controller"));
        b
    });
    let mut show = |c: &Counts| match &bar {
        Some(b) => b.set_message(format!("{app}: {c}")),
        None => {
            let _ = writeln!(std::io::stderr(), "{app}: {c}");
        }
    };
    let end = cl.follow(f, &mut show);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    end
}

fn print_record(cx: &mut Ctx, store: &store::Store, id: i64) -> Result<()> {
    let d = store::deploy(store.conn(), id)?;
    if cx.ui.json {
        return cx.ui.print_json(&d);
    }
    Ok(())
}

/// The files of an app's own manifests directory at the build's commit (else the
/// repository's default branch).
fn own_manifests(
    cx: &mut Ctx,
    app: &App,
    dir: &str,
    sha: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let store = cx.store()?;
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let repo = store::repos(store.conn(), &project)?
        .into_iter()
        .find(|r| r.id == app.repo_id)
        .ok_or_else(|| XoneError::not_found(format!("the repository of {} is gone", app.name)))?;
    let forges = cx.forges()?;
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
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
    reason: Option<String>,
    message: Option<String>,
}

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
    conditions: Vec<Condition>,
    pub record: Option<Deploy>,
}

/// What runs now, read from the cluster. `None`: the app is not deployed there.
pub fn read_status(cl: &Cluster, app: &App, env: &Env) -> Result<Option<Status>> {
    let Some(d) = find_deployment(cl, &app.name)? else { return Ok(None) };
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

fn not_deployed(app: &str, env: &Env) -> XoneError {
    XoneError::not_found(format!(
        "{app} is not deployed to {} (no Deployment in namespace {} of context {})",
        env.name, env.namespace, env.context
    ))
    .hint(format!("xone deploy {app} --env {} --build ID", env.name))
}

fn status(cx: &mut Ctx, app_name: &str, at: &Target) -> Result<()> {
    let (app, env) = locate(cx, app_name, at)?;
    let cl = connect(cx, &env)?;
    let mut st = read_status(&cl, &app, &env)?.ok_or_else(|| not_deployed(&app.name, &env))?;
    // Settle the record of a rollout nobody followed to the end, from what the cluster says.
    let mut store = cx.store()?;
    store.write(|tx| store::settle_abandoned_deploys(tx))?;
    let mut last =
        store::deploys(store.conn(), Some(&app.project), Some(&app.name), Some(&env.name), None)?
            .into_iter()
            .next();
    if let Some(rec) = &last {
        let unsettled = matches!(rec.status.as_str(), "interrupted" | "applied");
        let outcome = match st.rollout.as_str() {
            "complete" => Some("succeeded"),
            "failed" => Some("failed"),
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
    if cx.ui.json {
        return cx.ui.print_json(&st);
    }
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut rows = vec![
        ("revision", dash(st.revision.map(|r| r.to_string()))),
        ("image", dash(st.image.clone())),
        ("digest", dash(st.digest.clone())),
        ("requirement", dash(st.requirement.clone())),
        ("build", dash(st.build.map(|b| format!("#{b}")))),
        ("deployed by", dash(st.deployed_by.clone())),
        ("rollout", format!("{} ({})", st.rollout, st.replicas)),
    ];
    for c in &st.conditions {
        let text = [Some(c.status.clone()), c.reason.clone(), c.message.clone()];
        rows.push((c.kind.as_str(), text.into_iter().flatten().collect::<Vec<_>>().join(" ")));
    }
    if let Some(r) = &st.record {
        rows.push(("last record", format!("#{} {} {} by {}", r.id, r.kind, r.status, r.actor)));
    }
    let mut out = format!("{} in {} ({}/{})\n", st.app, st.env, st.context, st.namespace);
    for (label, value) in rows {
        out.push_str(&format!("  {label:<12}{value}\n"));
    }
    write!(cx.ui.out(), "{out}")?;
    Ok(())
}

#[derive(Serialize)]
struct Revision {
    revision: Option<i64>,
    image: Option<String>,
    requirement: Option<String>,
    build: Option<i64>,
    deployed_by: Option<String>,
    change_cause: Option<String>,
    created: Option<String>,
    replicas: i32,
    current: bool,
}

fn history(cx: &mut Ctx, app_name: &str, at: &Target) -> Result<()> {
    let (app, env) = locate(cx, app_name, at)?;
    let cl = connect(cx, &env)?;
    let d = find_deployment(&cl, &app.name)?.ok_or_else(|| not_deployed(&app.name, &env))?;
    let current = rollout::revision(&d.metadata);
    let rows: Vec<Revision> = cl
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
            let image = manifest::app_container(&containers, &app.name)
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
        .collect();
    if cx.ui.json {
        return cx.ui.print_json(&rows);
    }
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut t = vec![vec![
        "REVISION".into(),
        "IMAGE".into(),
        "REQUIREMENT".into(),
        "BUILD".into(),
        "BY".into(),
        "CHANGE-CAUSE".into(),
    ]];
    for r in &rows {
        let mark = if r.current { "*" } else { "" };
        t.push(vec![
            format!("{}{mark}", r.revision.map(|n| n.to_string()).unwrap_or_else(|| "-".into())),
            dash(&r.image),
            dash(&r.requirement),
            r.build.map(|b| format!("#{b}")).unwrap_or_else(|| "-".into()),
            dash(&r.deployed_by),
            dash(&r.change_cause),
        ]);
    }
    write!(cx.ui.out(), "{}", table(&t))?;
    Ok(())
}

/// `xone rollback`: one app, or everything a requirement deployed.
pub fn rollback(cx: &mut Ctx, a: RollbackArgs) -> Result<()> {
    let wait = waits(cx, a.wait, a.no_wait);
    if let Some(key) = &a.requirement {
        return rollback_requirement(cx, key, &a.at, wait);
    }
    let app_name = a.app.clone().expect("clap requires app or --requirement");
    let (app, env) = locate(cx, &app_name, &a.at)?;
    let cl = connect(cx, &env)?;
    let d = find_deployment(&cl, &app.name)?.ok_or_else(|| not_deployed(&app.name, &env))?;
    let name = d.metadata.name.clone().unwrap_or_default();
    if let (Some(to), Some(now)) = (a.to_revision, rollout::revision(&d.metadata)) {
        // As kubectl: nothing to do is not a failure.
        if to == now {
            cx.ui.status(format!(
                "{} in {}: skipped, it already runs revision {to}",
                app.name, env.name
            ));
            return if cx.ui.json { cx.ui.print_json(&Vec::<Deploy>::new()) } else { Ok(()) };
        }
    }
    let record = undo_one(cx, &cl, &app, &env, &name, a.to_revision, None, wait)?;
    if cx.ui.json {
        cx.ui.print_json(&vec![&record])?;
    }
    if record.status == "failed" {
        return Err(XoneError::new(
            Kind::Rollout,
            format!("the rollback of {} in {} failed", app.name, env.name),
        )
        .cause(record.detail.unwrap_or_default()));
    }
    Ok(())
}

/// Rolls one Deployment back and records it; a failed rollout is a record with status
/// `failed`, other errors are errors.
#[allow(clippy::too_many_arguments)]
fn undo_one(
    cx: &mut Ctx,
    cl: &Cluster,
    app: &App,
    env: &Env,
    deployment: &str,
    to: Option<i64>,
    requirement: Option<&str>,
    wait: bool,
) -> Result<Deploy> {
    let actor = cx.actor()?;
    let cause = match requirement {
        Some(k) => format!("xone rollback --requirement {k} by {actor}"),
        None => format!("xone rollback {} --env {} by {actor}", app.name, env.name),
    };
    let undo = cl.undo(deployment, &app.name, to, &cause)?;
    let mut store = cx.store()?;
    let record = Deploy {
        project: app.project.clone(),
        app: app.name.clone(),
        env: env.name.clone(),
        kind: "rollback".into(),
        requirement: undo.story.get(manifest::REQUIREMENT).cloned(),
        build: undo.story.get(manifest::BUILD).and_then(|b| b.parse().ok()),
        image: undo.image.clone(),
        context: env.context.clone(),
        namespace: env.namespace.clone(),
        prev_revision: undo.from,
        detail: Some(format!("back to revision {}", undo.to)),
        actor,
        ..Deploy::default()
    };
    // The requirement named on the record is the one rolled back, when there is one. The
    // annotations may name another machine's requirement or build: the record keeps only
    // those this machine knows (the build only when it made this very image).
    let requirement = requirement.map(str::to_string).or(record.requirement.clone()).filter(|k| {
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
    if !wait {
        store.write(|tx| store::finish_deploy(tx, id, "applied", None, None))?;
        cx.ui.status(format!(
            "{} in {}: revision {from} -> revision {}'s template applied ({})",
            app.name, env.name, undo.to, undo.image
        ));
        return store::deploy(store.conn(), id);
    }
    let d = cl.deployment(deployment)?;
    let selector = d.as_ref().map(cluster::selector_of).unwrap_or_default();
    let deadline = cx.config()?.duration("deploy.progress_deadline").as_secs().max(1);
    let follow = Follow {
        name: deployment,
        generation: undo.generation,
        selector,
        image: &undo.image,
        limit: stall_limit(deadline),
    };
    match follow_shown(cx, cl, &app.name, &follow)? {
        End::Complete { revision, .. } => {
            let detail = format!(
                "back to revision {} ({}), now revision {}",
                undo.to,
                undo.image,
                revision.unwrap_or(0)
            );
            store.write(|tx| store::finish_deploy(tx, id, "succeeded", revision, Some(&detail)))?;
            cx.ui.status(format!(
                "{} in {}: rolled back from revision {from} to revision {}'s template ({}), healthy",
                app.name, env.name, undo.to, undo.image
            ));
        }
        End::Failed(f) => {
            let detail = format!("back to revision {}: {}", undo.to, describe(&f));
            store.write(|tx| store::finish_deploy(tx, id, "failed", f.revision, Some(&detail)))?;
            cx.ui.warn(format!(
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
                    "interrupted",
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

/// The watch's rollback: the revision before the current one, followed to its end.
pub fn rollback_for_watch(
    cx: &mut Ctx,
    cl: &Cluster,
    app: &App,
    env: &Env,
    deployment: &str,
) -> Result<String> {
    let rec = undo_one(cx, cl, app, env, deployment, None, None, true)?;
    if rec.status == "failed" {
        return Err(XoneError::new(Kind::Rollout, rec.detail.unwrap_or_default()));
    }
    Ok(format!("rolled back: {}", rec.detail.unwrap_or_default()))
}

fn rollback_requirement(cx: &mut Ctx, key: &RequirementKey, at: &Target, wait: bool) -> Result<()> {
    let store = cx.store()?;
    // The requirement may be another machine's: its deployments are found in the clusters.
    store::project(store.conn(), &key.project)?;
    let key_text = key.to_string();
    let records = store::deploys(
        store.conn(),
        Some(key.project.as_str()),
        None,
        at.env.as_deref(),
        Some(&key_text),
    )?;
    // (app, env) in the order of their newest deploy; each keeps the requirement's first one.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut first: BTreeMap<(String, String), Deploy> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind == "deploy") {
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
    drop(store);
    if plans.is_empty() {
        // Deployed from another machine: the clusters' ReplicaSets carry the requirement.
        plans = plans_from_clusters(cx, key, at)?;
    }
    if plans.is_empty() {
        return Err(XoneError::not_found(format!(
            "{key} deployed nothing: no record here and no revision in its environments carries it"
        ))
        .hint("roll back one app with: xone rollback APP --env ENV"));
    }
    let mut failed = 0;
    let mut done = Vec::new();
    for (app_name, env_name, before) in &plans {
        let line = (|| -> Result<(bool, String, Option<Deploy>)> {
            let store = cx.store()?;
            let app = store::app(store.conn(), Some(&key.project), app_name)?;
            let env = find_env(&store, &key.project, env_name)?;
            drop(store);
            let none_before = || {
                Ok((false, format!("no revision before {key}'s first deploy; left as is"), None))
            };
            let cl = connect(cx, &env)?;
            let d =
                find_deployment(&cl, &app.name)?.ok_or_else(|| not_deployed(&app.name, &env))?;
            let name = d.metadata.name.clone().unwrap_or_default();
            let to = match before {
                Before::Rs(None) | Before::Revision(None) => return none_before(),
                Before::Revision(Some(n)) => *n,
                Before::Rs(Some(prev_rs)) => {
                    let target = cl
                        .replicasets(&d)?
                        .into_iter()
                        .find(|rs| rs.metadata.name.as_deref() == Some(prev_rs.as_str()))
                        .and_then(|rs| rollout::revision(&rs.metadata));
                    let Some(to) = target else {
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
            let rec = undo_one(cx, &cl, &app, &env, &name, Some(to), Some(&key_text), wait)?;
            let ok = rec.status != "failed";
            Ok((ok, rec.detail.clone().unwrap_or_default(), Some(rec)))
        })();
        let (ok, text) = match line {
            Ok((ok, text, rec)) => {
                done.extend(rec);
                (ok, text)
            }
            Err(e) => (false, e.message),
        };
        if !ok {
            failed += 1;
        }
        let mark = if ok { cx.ui.green("ok") } else { cx.ui.red("failed") };
        cx.ui.status(format!("{app_name} in {env_name}: {mark} {text}"));
    }
    if cx.ui.json {
        cx.ui.print_json(&done)?;
    }
    if failed > 0 {
        return Err(XoneError::new(
            Kind::Rollout,
            format!("{failed} of {} rollbacks of {key} failed", plans.len()),
        )
        .hint("see each line above; `xone deploy status APP --env ENV` shows what runs"));
    }
    Ok(())
}

/// Where a requirement's rollback goes back to in one app and environment.
enum Before {
    /// The ReplicaSet that ran before its first deploy, as recorded here.
    Rs(Option<String>),
    /// The revision before the oldest one carrying the requirement, read from the cluster.
    Revision(Option<i64>),
}

/// A requirement's deployments as the clusters tell them: in every environment of its
/// project, the ReplicaSets annotated with it. Newest first.
fn plans_from_clusters(
    cx: &mut Ctx,
    key: &RequirementKey,
    at: &Target,
) -> Result<Vec<(String, String, Before)>> {
    let store = cx.store()?;
    let apps = store::apps(store.conn(), &key.project)?;
    let envs: Vec<Env> = store::envs(store.conn(), &key.project)?
        .into_iter()
        .filter(|e| at.env.as_ref().is_none_or(|n| *n == e.name))
        .collect();
    drop(store);
    let mut found = Vec::new();
    for env in &envs {
        let Ok(cl) = connect(cx, env) else {
            cx.ui.warn(format!("environment {}: its cluster cannot be read; skipped", env.name));
            continue;
        };
        for app in &apps {
            let Ok(Some(d)) = find_deployment(&cl, &app.name) else { continue };
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
