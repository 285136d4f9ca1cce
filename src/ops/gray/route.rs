//! A gray release by weight: the router in front of the app's Service (an ingress-nginx
//! Ingress or a Gateway API HTTPRoute) sends the canary its share, through a Service of its
//! own, while the app's Service keeps to the stable's pods.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{json, Value};

use super::Work;
use crate::domain::gray::{self, TRACK_LABEL};
use crate::domain::manifest;
use crate::ops::target::Target;
use crate::ui::{Result, XoneError};

/// `--weight`: a share of the traffic needs a router that splits it: an ingress-nginx
/// Ingress or a Gateway API HTTPRoute sending to the app's Service. None is there: exit 4,
/// never an approximation. The stable's pods must say they are stable, so that the Service
/// can leave the canary's out.
pub(super) fn router_for(t: &Target, stable: &Deployment) -> Result<gray::Router> {
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

impl Work<'_, '_> {
    /// The Service applied as it stands with another selector (its ports, labels and
    /// annotations kept, so that the apply takes nothing away).
    pub(super) fn restate_service(&self, live: &Value, name: &str, selector: Value) -> Result<()> {
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
    pub(super) fn route(&self, router: &gray::Router, weight: u32) -> Result<()> {
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
    pub(super) fn route_back(&self) -> Result<()> {
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
    pub(super) fn unselect(&self) -> Result<()> {
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
}

/// An HTTPRoute's rules with each backend of `service` split: `100 - weight` to it, `weight`
/// to the canary's Service.
pub(super) fn weighted_rules(
    rules: Option<&Value>,
    service: &str,
    canary: &str,
    weight: u32,
) -> Value {
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
pub(super) fn canary_ingress(
    ingress: &Value,
    service: &str,
    canary: &str,
    weight: u32,
    app: &str,
) -> Value {
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
