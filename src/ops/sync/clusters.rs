//! A project's deploy and gray history rebuilt from its clusters: each app's Deployment
//! revisions (their ReplicaSets and annotations) and the gray releases' ConfigMaps are the
//! shared truth, and this machine's journal takes what it lacks of them.

use serde::Serialize;

use super::super::fan_out::fan_out;
use super::super::{gray_state, revisions, target, Scope};
use crate::store::{self, Deploy, DeployKind, DeployStatus, Store};
use crate::ui::Result;

/// What the clusters brought.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FromClusters {
    /// Deployments recorded here for the first time: `APP ENV rREVISION IMAGE`.
    pub deploys: Vec<String>,
    /// Gray releases whose state was copied here: `APP ENV PHASE`.
    pub grays: Vec<String>,
    /// Environments that could not be read, with why; the rest are synced.
    pub unreachable: Vec<String>,
}

/// Reads every app of the project in every environment (at once) and records the revisions
/// and gray releases made for requirements this machine knows.
pub fn sync(
    scope: &Scope,
    store: &mut Store,
    project: &crate::domain::ProjectKey,
) -> Result<FromClusters> {
    let c = store.conn();
    let (envs, apps) = (store::envs(c, project)?, store::apps(c, project)?);
    let mut out = FromClusters::default();
    if apps.is_empty() {
        return Ok(out);
    }
    let read = fan_out(&envs, |env| -> Result<_> {
        let cl = target::connect(env, scope.remote.clone())?;
        let grays = gray_state::all(&cl)?;
        let mut history = Vec::new();
        for app in &apps {
            if target::find_deployment(&cl, &app.name)?.is_none() {
                continue;
            }
            let t = target::Target::connect(app.clone(), env.clone(), scope.remote.clone())?;
            history.push((app.clone(), revisions::history(&t)?));
        }
        Ok((grays, history))
    });
    // The requirement a key written then stands for (it may have moved to Jira since).
    let known = |k: &Option<String>, written: Option<&str>| -> Result<Option<String>> {
        let Some(k) = k.as_deref() else { return Ok(None) };
        Ok(store::key_as_of(store.conn(), k, written)?.map(|k| k.to_string()))
    };
    let mut deploys = Vec::new();
    let mut grays = Vec::new();
    for (env, got) in envs.iter().zip(read) {
        let (held, history) = match got {
            Ok(r) => r,
            Err(e) => {
                out.unreachable.push(format!("{}: {}", env.name, e.message));
                continue;
            }
        };
        for mut h in held {
            let Some(key) = known(&h.gray.requirement, Some(&h.gray.started_at))? else {
                continue;
            };
            if apps.iter().any(|a| a.name == h.gray.app) {
                h.gray.requirement = Some(key);
                grays.push((env.clone(), h.gray));
            }
        }
        for (app, revs) in history {
            let local = store::deploys(
                store.conn(),
                Some(&app.project),
                Some(&app.name),
                Some(&env.name),
                None,
            )?;
            for rev in revs {
                let Some(image) = rev.image.clone() else { continue };
                let Some(key) = known(&rev.requirement, rev.created.as_deref())? else {
                    continue;
                };
                let here = local
                    .iter()
                    .any(|d| d.image == image && d.requirement.as_deref() == Some(&key));
                if here {
                    continue;
                }
                let rollback =
                    rev.change_cause.as_deref().is_some_and(|c| c.starts_with("rollback"));
                let detail = format!(
                    "read from the cluster: revision {}{}{}",
                    rev.revision.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                    rev.build
                        .map(|b| format!(", build #{b} of the machine that made it"))
                        .unwrap_or_default(),
                    rev.change_cause.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
                );
                deploys.push((
                    Deploy {
                        project: app.project.clone(),
                        app: app.name.clone(),
                        env: env.name.clone(),
                        kind: if rollback { DeployKind::Rollback } else { DeployKind::Deploy },
                        requirement: Some(key),
                        image,
                        context: env.context.clone(),
                        namespace: env.namespace.clone(),
                        revision: rev.revision,
                        detail: Some(detail),
                        actor: rev.deployed_by.clone().unwrap_or_else(|| "unknown".into()),
                        ..Deploy::default()
                    },
                    rev.created.clone(),
                    rev.current,
                ));
            }
        }
    }
    store.write(|tx| {
        for (d, created, current) in &deploys {
            // Rolled out by another machine, which followed it: here it is applied and not
            // followed (`deploy status` settles the one that runs now).
            let id = store::start_deploy(tx, d)?;
            store::finish_deploy(tx, id, DeployStatus::Applied, d.revision, None)?;
            store::date_deploy(tx, id, created.as_deref())?;
            out.deploys.push(format!(
                "{} {} r{}{} {}",
                d.app,
                d.env,
                d.revision.unwrap_or_default(),
                if *current { " (current)" } else { "" },
                d.image
            ));
        }
        for (env, g) in &grays {
            store::save_gray(tx, project.as_str(), &env.name, g)?;
            out.grays.push(format!("{} {} {}", g.app, env.name, g.phase));
        }
        Ok(())
    })?;
    Ok(out)
}
