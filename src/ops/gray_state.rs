//! Where a gray release's state lives: a ConfigMap `xone-gray-APP` in the app's namespace,
//! written only on the condition that nobody changed it since it was read (its
//! resourceVersion), so that two machines carrying the same release on never overwrite each
//! other. The state database keeps a copy for `requirement show` and the log.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use k8s_openapi::api::core::v1::ConfigMap;

use crate::adapters::cluster::Cluster;
use crate::domain::gray::{self, Gray};
use crate::domain::manifest;
use crate::ui::{Kind, Result, XoneError};

/// The label every gray release's ConfigMap carries, for listing them.
pub const GRAY_LABEL: &str = "xone.io/gray";

/// A gray release as read from the cluster, with the version it was read at.
#[derive(Clone, Debug)]
pub struct Held {
    pub gray: Gray,
    pub resource_version: String,
    /// The ConfigMap's labels and annotations as read: others may have added theirs, which a
    /// write keeps.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

fn unreadable(name: &str, namespace: &str, cause: impl std::fmt::Display) -> XoneError {
    XoneError::gate(format!(
        "the gray release state {name} in namespace {namespace} cannot be read"
    ))
    .cause(cause)
    .hint(format!(
        "someone edited it by hand; put it back, or delete the ConfigMap {name} to start afresh"
    ))
}

fn held_of(cm: &k8s_openapi::api::core::v1::ConfigMap, namespace: &str) -> Result<Held> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let text =
        cm.data.as_ref().and_then(|d| d.get(gray::STATE_KEY)).ok_or_else(|| {
            unreadable(&name, namespace, format!("it has no {}", gray::STATE_KEY))
        })?;
    let gray: Gray = serde_json::from_str(text).map_err(|e| unreadable(&name, namespace, e))?;
    Ok(Held {
        gray,
        resource_version: cm.metadata.resource_version.clone().unwrap_or_default(),
        labels: cm.metadata.labels.clone().unwrap_or_default(),
        annotations: cm.metadata.annotations.clone().unwrap_or_default(),
    })
}

/// The app's gray release in the cluster's namespace, finished or not.
pub fn read(cl: &Cluster, app: &str) -> Result<Option<Held>> {
    match cl.configmap(&gray::state_name(app))? {
        Some(cm) => held_of(&cm, &cl.namespace).map(Some),
        None => Ok(None),
    }
}

/// Every gray release of the namespace, finished or not.
pub fn all(cl: &Cluster) -> Result<Vec<Held>> {
    let maps = cl.configmaps(&format!("{GRAY_LABEL}=true"))?;
    maps.iter().map(|cm| held_of(cm, &cl.namespace)).collect()
}

/// The app's gray release when one is in flight: what `deploy` refuses to go around.
pub fn in_flight(cl: &Cluster, app: &str) -> Result<Option<Gray>> {
    Ok(read(cl, app)?.map(|h| h.gray).filter(|g| g.phase.in_flight()))
}

/// The error for an app whose gray release is in flight.
pub fn busy(g: &Gray, env: &str) -> XoneError {
    XoneError::conflict(format!(
        "{} has a gray release in flight in {env}: {} on {} of {} instances, started by {} at {}",
        g.app,
        g.canary_image,
        g.canary_replicas(),
        g.stable_replicas,
        g.started_by,
        g.started_at
    ))
    .hint(format!(
        "carry it on (xone gray status {app} --env {env}) or end it: xone gray promote|abort {app} --env {env}",
        app = g.app
    ))
}

fn object(
    g: &Gray,
    namespace: &str,
    resource_version: Option<&str>,
    kept: Option<&Held>,
) -> Result<Value> {
    let state = serde_json::to_string_pretty(g)?;
    let mut obj = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": gray::state_name(&g.app),
            "namespace": namespace,
            "labels": {
                manifest::MANAGED_BY_LABEL: "xone",
                manifest::NAME_LABEL: g.app,
                GRAY_LABEL: "true",
            },
        },
        "data": { gray::STATE_KEY: state, "phase": g.phase.to_string() },
    });
    if let Some(rv) = resource_version {
        obj["metadata"]["resourceVersion"] = json!(rv);
    }
    if let Some(h) = kept {
        for (k, v) in &h.labels {
            if obj["metadata"]["labels"].get(k).is_none() {
                obj["metadata"]["labels"][k] = json!(v);
            }
        }
        if !h.annotations.is_empty() {
            obj["metadata"]["annotations"] = json!(h.annotations);
        }
    }
    Ok(obj)
}

fn changed_elsewhere(g: &Gray, env: &str, e: XoneError) -> XoneError {
    if e.kind != Kind::Conflict {
        return e;
    }
    XoneError::conflict(format!(
        "the gray release of {} in {env} was changed from elsewhere while xone worked on it",
        g.app
    ))
    .cause(e.message)
    .hint(format!(
        "nothing was overwritten; see where it stands: xone gray status {} --env {env}",
        g.app
    ))
}

/// A write answered with a conflict may be xone's own, retried after an answer that was
/// lost: read back, a ConfigMap that holds exactly this state is the write having gone
/// through, not someone else's change.
fn written(cl: &Cluster, g: &Gray, sent: Result<ConfigMap>) -> Result<ConfigMap> {
    match sent {
        Err(e) if e.kind == Kind::Conflict => {
            let now = cl.configmap(&gray::state_name(&g.app))?;
            let ours = now
                .as_ref()
                .and_then(|cm| cm.data.as_ref()?.get(gray::STATE_KEY))
                .and_then(|text| serde_json::from_str::<Gray>(text).ok());
            match (now, ours) {
                (Some(cm), Some(state)) if state == *g => Ok(cm),
                _ => Err(e),
            }
        }
        other => other,
    }
}

/// Writes a new gray release; one written meanwhile by another machine is a conflict (exit 5).
/// `over` is the finished release it replaces, if there is one.
pub fn create(cl: &Cluster, g: &Gray, env: &str, over: Option<&Held>) -> Result<Held> {
    let cm = match over {
        Some(old) => {
            let obj = object(g, &cl.namespace, Some(&old.resource_version), Some(old))?;
            cl.replace_configmap(&obj)
        }
        None => cl.create_configmap(&object(g, &cl.namespace, None, None)?),
    };
    let cm = written(cl, g, cm).map_err(|e| changed_elsewhere(g, env, e))?;
    Ok(Held {
        gray: g.clone(),
        resource_version: cm.metadata.resource_version.clone().unwrap_or_default(),
        labels: cm.metadata.labels.unwrap_or_default(),
        annotations: cm.metadata.annotations.unwrap_or_default(),
    })
}

/// Writes `held`'s state on the condition that the cluster still has the version it was read
/// at; a change made since, from anywhere, is a conflict (exit 5) and is left as it is.
pub fn save(cl: &Cluster, held: &mut Held, env: &str) -> Result<()> {
    let obj = object(&held.gray, &cl.namespace, Some(&held.resource_version), Some(held))?;
    let cm = written(cl, &held.gray, cl.replace_configmap(&obj))
        .map_err(|e| changed_elsewhere(&held.gray, env, e))?;
    held.resource_version = cm.metadata.resource_version.unwrap_or_default();
    held.labels = cm.metadata.labels.unwrap_or_default();
    held.annotations = cm.metadata.annotations.unwrap_or_default();
    Ok(())
}
