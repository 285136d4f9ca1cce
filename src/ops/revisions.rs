//! What runs, read from the cluster itself, so that another machine tells the same story:
//! an app's current revision, image, digest and rollout, and every revision it had.

use serde::Serialize;

use super::target::{self, Target};
use crate::adapters::cluster::{self, Cluster};
use crate::domain::rollout::{self, Counts, Rollout};
use crate::domain::{date, manifest};
use crate::store::{self, App, Deploy, DeployStatus, Env, Store};
use crate::ui::Result;

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
                created: rs
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| date::rfc3339(t.0.timestamp())),
                replicas: rs.status.as_ref().map(|s| s.replicas).unwrap_or(0),
                current: revision.is_some() && revision == current,
            }
        })
        .collect())
}
