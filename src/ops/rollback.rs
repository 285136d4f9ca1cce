//! Rollbacks: an app back to an earlier revision as `kubectl rollout undo` does, the release
//! watch's rollback, and everything a requirement deployed, planned from this machine's
//! records or from the clusters' annotated ReplicaSets.

use std::collections::{BTreeMap, BTreeSet};

use super::bluegreen;
use super::gray;
use super::gray_state;
use super::release::{deadline, describe, follow, stall_limit};
use super::target::{self, Target};
use super::{events, Actor, Scope};
use k8s_openapi::api::apps::v1::ReplicaSet;

use crate::adapters::cluster::{self, End, Follow};
use crate::adapters::Forges;
use crate::domain::manifest;
use crate::domain::rollout;
use crate::domain::RequirementKey;
use crate::store::{self, Deploy, DeployKind, DeployStatus, Env, Store};
use crate::ui::{Kind, Result, XoneError};

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
    actor: &Actor,
) -> Result<Rollback> {
    // A gray release in flight is ended with `gray abort`, which puts the stable back.
    if let Some(g) = gray_state::in_flight(&t.cluster, &t.app.name)? {
        return Err(gray_state::busy(&g, &t.env.name)
            .hint(format!("pull it back: xone gray abort {} --env {}", t.app.name, t.env.name)));
    }
    // Released blue-green: the Service goes back to the colour kept, at once.
    if to.is_none() {
        let who = actor.clone()?;
        if let Some(record) = bluegreen::switch_back(scope, store, t, &who)? {
            return Ok(Rollback::Done(Box::new(record)));
        }
    }
    let d = t.deployment()?;
    let name = d.metadata.name.clone().unwrap_or_default();
    if let (Some(to), Some(now)) = (to, rollout::revision(&d.metadata)) {
        if to == now {
            return Ok(Rollback::Skipped { revision: to });
        }
    }
    let undo = Undo { deployment: &name, to, requirement: None, wait };
    let actor = actor.clone()?;
    undo_one(scope, store, t, &undo, &actor).map(|d| Rollback::Done(Box::new(d)))
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
    // The requirement whose release this undoes: the one named, else the one now running.
    let leaving = cl
        .deployment(u.deployment)?
        .and_then(|d| d.metadata.annotations)
        .and_then(|a| a.get(manifest::REQUIREMENT).cloned());
    let story = u.requirement.map(str::to_string).or(leaving);
    let story = story.as_deref();
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
    let on = format!("{} in {}", app.name, env.name);
    if !u.wait {
        store.write(|tx| {
            super::notify::finish_deploy(actor, tx, id, DeployStatus::Applied, None, None)?;
            let detail = format!("{on}: revision {}'s template applied ({})", undo.to, undo.image);
            events::on_requirement(tx, story, actor, "rollback", detail)
        })?;
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
                super::notify::finish_deploy(
                    actor,
                    tx,
                    id,
                    DeployStatus::Succeeded,
                    revision,
                    Some(&detail),
                )?;
                events::on_requirement(tx, story, actor, "rollback", format!("{on}: {detail}"))
            })?;
            scope.ui.status(format!(
                "{} in {}: rolled back from revision {from} to revision {}'s template ({}), healthy",
                app.name, env.name, undo.to, undo.image
            ));
        }
        End::Failed(f) => {
            let detail = format!("back to revision {}: {}", undo.to, describe(&f));
            store.write(|tx| {
                super::notify::finish_deploy(
                    actor,
                    tx,
                    id,
                    DeployStatus::Failed,
                    f.revision,
                    Some(&detail),
                )?;
                let failed = format!("{on}: failed, {detail}");
                events::on_requirement(tx, story, actor, "rollback", failed)
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
                super::notify::finish_deploy(
                    actor,
                    tx,
                    id,
                    DeployStatus::Interrupted,
                    revision,
                    Some("interrupted: the cluster keeps rolling back"),
                )?;
                let detail = format!(
                    "{on}: back to revision {} begun, not followed to its end (interrupted)",
                    undo.to
                );
                events::on_requirement(tx, story, actor, "rollback", detail)
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

/// One app and environment of a requirement's rollback, and where it goes back to.
type Plan = (String, String, Before);

/// Where a requirement's rollback goes back to in one app and environment.
enum Before {
    /// The ReplicaSet that ran before its first deploy, as recorded here.
    Rs(Option<String>),
    /// The revision before the oldest one carrying the requirement, read from the cluster.
    Revision(Option<i64>),
}

/// What a requirement's rollback did: the records it made, how many of its apps and
/// environments were tried and failed, and the environments whose cluster could not be read
/// (what the requirement deployed there is unknown).
pub struct Rollbacks {
    pub records: Vec<Deploy>,
    pub tried: usize,
    pub failed: usize,
    pub unreadable: Vec<String>,
}

/// Rolls back every app and environment a requirement deployed to, newest first, each to
/// the revision before the requirement's first deploy there. The plan comes from this
/// machine's records, else (the requirement deployed from another machine) from the
/// clusters' ReplicaSets annotated with it. Each line is shown through the scope's `Ui` as it
/// is done.
pub fn rollback_requirement(
    scope: &Scope,
    forges: &Forges,
    store: &mut Store,
    key: &RequirementKey,
    env: Option<&str>,
    wait: bool,
    actor: &Actor,
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
    let mut plans: Vec<Plan> = order
        .iter()
        .map(|k| (k.0.clone(), k.1.clone(), Before::Rs(first[k].prev_rs.clone())))
        .collect();
    let mut unreadable = Vec::new();
    if plans.is_empty() {
        (plans, unreadable) = plans_from_clusters(scope, store, key, env)?;
    }
    // First what each rollback goes back to, and whose changes go with it: other requirements
    // whose revisions came after the one gone back to are rolled back too, and are named.
    let mut prepared: Vec<(String, String, Result<Prepared>)> = Vec::new();
    for (app_name, env_name, before) in plans {
        let p = prepare(scope, forges, store, key, &app_name, &env_name, &before);
        prepared.push((app_name, env_name, p));
    }
    let riders: BTreeSet<String> = prepared
        .iter()
        .filter_map(|(_, _, p)| match p {
            Ok(Prepared::Undo { riders, .. }) => Some(riders.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    if !riders.is_empty() {
        let names = riders.iter().cloned().collect::<Vec<_>>().join(", ");
        scope.ui.warn(format!(
            "the revisions rolled back also carry {names}: their changes go back too"
        ));
        scope.ui.confirm_or_stop(
            &format!("Roll back {key} with {names}?"),
            &format!("rolling back {key} takes {names} back too"),
        )?;
    }
    // Its gray releases in flight are pulled back before the rollbacks: their stable is
    // what those start from.
    let grays = gray::abort_requirement(scope, store, key, env, actor)?;
    if prepared.is_empty() && grays.tried > 0 {
        return Ok(Rollbacks {
            records: Vec::new(),
            tried: grays.tried,
            failed: grays.failed,
            unreadable,
        });
    }
    if prepared.is_empty() && !unreadable.is_empty() {
        let mut err = XoneError::new(
            Kind::Remote,
            format!(
                "cannot tell what {key} deployed: the clusters it may have gone to cannot be read"
            ),
        );
        for u in &unreadable {
            err = err.cause(u);
        }
        return Err(err.hint("check them with `xone doctor`, then run this again"));
    }
    if prepared.is_empty() {
        return Err(XoneError::not_found(format!(
            "{key} deployed nothing: no record here and no revision in its environments carries it"
        ))
        .hint("roll back one app with: xone rollback APP --env ENV"));
    }
    let mut done = Rollbacks {
        records: Vec::new(),
        tried: prepared.len() + grays.tried,
        failed: grays.failed,
        unreadable,
    };
    for (app_name, env_name, p) in prepared {
        let line = p.and_then(|p| match p {
            Prepared::Skip { ok, text } => Ok((ok, text, None)),
            Prepared::SwitchBack { t } => {
                let rec = bluegreen::switch_back(scope, store, &t, &actor.clone()?)?
                    .ok_or_else(|| XoneError::internal("the app is no longer blue-green"))?;
                Ok((true, rec.detail.clone().unwrap_or_default(), Some(rec)))
            }
            Prepared::Undo { t, name, to, .. } => {
                let undo =
                    Undo { deployment: &name, to: Some(to), requirement: Some(&key_text), wait };
                let rec = undo_one(scope, store, &t, &undo, &actor.clone()?)?;
                let ok = rec.status != DeployStatus::Failed;
                Ok((ok, rec.detail.clone().unwrap_or_default(), Some(rec)))
            }
        });
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
        scope.ui.status_marked(&format!("{app_name} in {env_name}"), ok, &text);
    }
    Ok(done)
}

/// One app's rollback for a requirement, worked out and not yet made.
enum Prepared {
    /// Nothing to do: whether that is fine, and why.
    Skip { ok: bool, text: String },
    /// Back to revision `to` of Deployment `name`; `riders` are the other requirements whose
    /// revisions go with it.
    Undo { t: Box<Target>, name: String, to: i64, riders: BTreeSet<String> },
    /// Released blue-green: the Service back to the colour kept.
    SwitchBack { t: Box<Target> },
}

/// The requirements whose integrated work the images of these builds hold: each whose
/// branch commit taken in by an integration of the app's repository is an ancestor of (or is)
/// a build's commit. What cannot be read (a repository not fetched here) names nobody.
fn riding_in(store: &Store, forges: &Forges, app: &store::App, builds: &[i64]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if builds.is_empty() {
        return out;
    }
    let Ok(project) = app.project.parse::<crate::domain::ProjectKey>() else { return out };
    let repo = store::repos(store.conn(), &project)
        .ok()
        .and_then(|repos| repos.into_iter().find(|r| r.id == app.repo_id));
    let (Some(repo), Ok(taken)) = (repo, store::integrated_in_repo(store.conn(), app.repo_id))
    else {
        return out;
    };
    let Ok(objects) = forges.objects(&repo) else { return out };
    for id in builds {
        let Ok(b) = store::build(store.conn(), *id) else { continue };
        let Ok(image_commit) = git2::Oid::from_str(&b.sha) else { continue };
        for (requirement, feature) in &taken {
            let Ok(f) = git2::Oid::from_str(feature) else { continue };
            if f == image_commit || objects.graph_descendant_of(image_commit, f).unwrap_or(false) {
                out.insert(requirement.clone());
            }
        }
    }
    out
}

fn prepare(
    scope: &Scope,
    forges: &Forges,
    store: &Store,
    key: &RequirementKey,
    app_name: &str,
    env_name: &str,
    before: &Before,
) -> Result<Prepared> {
    let app = store::app(store.conn(), Some(&key.project), app_name)?;
    let env = target::find_env(store, &key.project, env_name)?;
    let skip = |ok: bool, text: String| Ok(Prepared::Skip { ok, text });
    let t = Target::connect(app, env, scope.remote.clone())?;
    let d = t.deployment()?;
    let name = d.metadata.name.clone().unwrap_or_default();
    // Released blue-green: its colour serving is switched back, when it is the requirement's.
    let blue_green = t
        .cluster
        .service(&t.app.name)?
        .is_some_and(|s| s["metadata"]["annotations"][manifest::ACTIVE].is_string());
    if blue_green {
        let ours = d.metadata.annotations.as_ref().and_then(|a| a.get(manifest::REQUIREMENT))
            == Some(&key.to_string());
        if !ours {
            return skip(true, format!("the colour serving ({name}) is not {key}'s; left as is"));
        }
        return Ok(Prepared::SwitchBack { t: Box::new(t) });
    }
    let sets = t.cluster.replicasets(&d)?;
    let to = match before {
        Before::Rs(None) | Before::Revision(None) => {
            return skip(false, format!("no revision before {key}'s first deploy; left as is"))
        }
        Before::Revision(Some(n)) => *n,
        Before::Rs(Some(prev_rs)) => {
            let found = sets
                .iter()
                .find(|rs| rs.metadata.name.as_deref() == Some(prev_rs.as_str()))
                .and_then(|rs| rollout::revision(&rs.metadata));
            let Some(to) = found else {
                return skip(
                    false,
                    format!("the revision before {key} ({prev_rs}) is no longer kept"),
                );
            };
            to
        }
    };
    if rollout::revision(&d.metadata) == Some(to) {
        return skip(true, format!("already at revision {to}, from before {key}"));
    }
    let going: Vec<&ReplicaSet> =
        sets.iter().filter(|rs| rollout::revision(&rs.metadata).is_some_and(|r| r > to)).collect();
    let mut riders: BTreeSet<String> = going
        .iter()
        .filter_map(|rs| rs.metadata.annotations.as_ref()?.get(manifest::REQUIREMENT).cloned())
        .collect();
    // The images going back were built from commits that may hold other requirements' work,
    // integrated beside this one's: those ride along too.
    let builds: Vec<i64> = going
        .iter()
        .filter_map(|rs| rs.metadata.annotations.as_ref()?.get(manifest::BUILD)?.parse().ok())
        .collect();
    riders.extend(riding_in(store, forges, &t.app, &builds));
    riders.remove(&key.to_string());
    Ok(Prepared::Undo { t: Box::new(t), name, to, riders })
}

/// A requirement's deployments as the clusters tell them: in every environment of its
/// project, the ReplicaSets annotated with it. Newest first.
fn plans_from_clusters(
    scope: &Scope,
    store: &Store,
    key: &RequirementKey,
    env: Option<&str>,
) -> Result<(Vec<Plan>, Vec<String>)> {
    let apps = store::apps(store.conn(), &key.project)?;
    let envs: Vec<Env> = store::envs(store.conn(), &key.project)?
        .into_iter()
        .filter(|e| env.is_none_or(|n| n == e.name))
        .collect();
    let mut found = Vec::new();
    // Environments whose cluster could not be asked: what the requirement deployed there is
    // unknown, which is not the same as nothing.
    let mut unreadable = Vec::new();
    for env in &envs {
        let read = (|| -> Result<()> {
            let cl = target::connect(env, scope.remote.clone())?;
            for app in &apps {
                let Some(d) = target::find_deployment(&cl, &app.name)? else { continue };
                let sets = cl.replicasets(&d)?;
                let ours: Vec<_> = sets
                    .iter()
                    .filter(|rs| {
                        rs.metadata.annotations.as_ref().and_then(|a| a.get(manifest::REQUIREMENT))
                            == Some(&key.to_string())
                    })
                    .collect();
                let Some(first) =
                    ours.iter().filter_map(|rs| rollout::revision(&rs.metadata)).min()
                else {
                    continue;
                };
                let newest = ours
                    .iter()
                    .filter_map(|rs| {
                        rs.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string())
                    })
                    .max()
                    .unwrap_or_default();
                let before = sets
                    .iter()
                    .filter_map(|rs| rollout::revision(&rs.metadata))
                    .filter(|r| *r < first)
                    .max();
                found.push((newest, app.name.clone(), env.name.clone(), Before::Revision(before)));
            }
            Ok(())
        })();
        if let Err(e) = read {
            let mut why = e.message.clone();
            for c in &e.causes {
                why.push_str(": ");
                why.push_str(c);
            }
            scope.ui.warn(format!("environment {}: its cluster cannot be read: {why}", env.name));
            unreadable.push(format!("{} ({}/{}): {why}", env.name, env.context, env.namespace));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    let plans = found.into_iter().map(|(_, app, env, before)| (app, env, before)).collect();
    Ok((plans, unreadable))
}
