//! Judging a rollout from what the API server reports, as `kubectl rollout status` does: the
//! controller must have observed the Deployment's newest generation before its counts mean
//! anything, then every replica must be updated and available; `ProgressDeadlineExceeded`
//! ends it. Pods stuck pulling their image or crash-looping end it sooner.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// The controller has not yet seen the newest spec.
    Pending,
    Progressing(Counts),
    Complete(Counts),
    /// The Deployment's progress deadline passed; the condition's message.
    DeadlineExceeded(String),
}

/// Replica counts of a Deployment's status, against the desired number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// Every replica, old and new.
    pub total: i32,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} updated, {} ready, {} available of {}",
            self.updated, self.ready, self.available, self.desired
        )
    }
}

pub fn counts(d: &Deployment) -> Counts {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let s = d.status.clone().unwrap_or_default();
    Counts {
        desired,
        updated: s.updated_replicas.unwrap_or(0),
        ready: s.ready_replicas.unwrap_or(0),
        available: s.available_replicas.unwrap_or(0),
        total: s.replicas.unwrap_or(0),
    }
}

/// The Deployment's rollout state. `generation` is the one the caller's change produced:
/// a status that has not observed it describes an older rollout.
pub fn judge(d: &Deployment, generation: i64) -> Rollout {
    let status = d.status.clone().unwrap_or_default();
    let own = d.metadata.generation.unwrap_or(0).max(generation);
    if status.observed_generation.unwrap_or(0) < own {
        return Rollout::Pending;
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Rollout::DeadlineExceeded(c.message.clone().unwrap_or_default());
    }
    let n = counts(d);
    if n.updated < n.desired || n.total > n.updated || n.available < n.updated {
        return Rollout::Progressing(n);
    }
    Rollout::Complete(n)
}

/// The waiting reasons that will not fix themselves without a new image or configuration.
pub const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// A pod of the rollout that is stuck: (pod, reason, message).
pub fn stuck(pod: &Pod) -> Option<(String, String, String)> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for c in all {
        let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
        let reason = w.reason.clone().unwrap_or_default();
        if STUCK.contains(&reason.as_str()) {
            let name = pod.metadata.name.clone().unwrap_or_default();
            return Some((name, reason, w.message.clone().unwrap_or_default()));
        }
    }
    None
}

/// Whether the pod's Ready condition is true.
pub fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A revision number as the Deployment controller writes it in its annotation.
pub fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

pub const REVISION: &str = "deployment.kubernetes.io/revision";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_unobserved_generation_is_pending_even_when_the_counts_look_done() {
        let d = dep(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
        }));
        assert_eq!(judge(&d, 3), Rollout::Pending);
        let mut d = d;
        d.status.as_mut().unwrap().observed_generation = Some(3);
        assert!(matches!(judge(&d, 3), Rollout::Complete(_)));
    }

    #[test]
    fn old_replicas_still_running_keep_it_progressing() {
        let d = dep(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3}
        }));
        assert!(matches!(judge(&d, 2), Rollout::Progressing(c) if c.total == 3));
    }

    #[test]
    fn the_deadline_condition_ends_it() {
        let d = dep(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                "message": "ReplicaSet \"web-1\" has timed out progressing."}]}
        }));
        assert_eq!(
            judge(&d, 2),
            Rollout::DeadlineExceeded("ReplicaSet \"web-1\" has timed out progressing.".into())
        );
    }

    #[test]
    fn pods_waiting_on_a_pull_are_stuck_but_creating_ones_are_not() {
        let pod = |reason: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "web-1-abc"},
                "status": {"containerStatuses": [{"name": "web", "image": "x", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": reason, "message": "m"}}}]}
            }))
            .unwrap()
        };
        assert_eq!(
            stuck(&pod("ImagePullBackOff")),
            Some(("web-1-abc".into(), "ImagePullBackOff".into(), "m".into()))
        );
        assert_eq!(stuck(&pod("ContainerCreating")), None);
    }
}
