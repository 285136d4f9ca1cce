//! The Kubernetes objects of an app in an environment: rendered from the app's settings, or
//! taken from its own manifests with the app container's image set. Every object carries the
//! labels that find it again and the annotations that tell its story (requirement, build,
//! image, who deployed), so that any machine reading the cluster sees the same history.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const REQUIREMENT: &str = "xone.dev/requirement";
pub const BUILD: &str = "xone.dev/build";
pub const IMAGE: &str = "xone.dev/image";
pub const DEPLOYED_BY: &str = "xone.dev/deployed-by";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// On the Service of an app released blue-green: the Deployment it sends to.
pub const ACTIVE: &str = "xone.io/active";

/// What a deployment of one app to one environment is made of.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    pub app: &'a str,
    pub namespace: &'a str,
    pub image: &'a str,
    pub replicas: i64,
    pub port: Option<i64>,
    pub health: Option<&'a str>,
    /// `RollingUpdate` or `Recreate`.
    pub strategy: &'a str,
    pub progress_deadline: i64,
    pub annotations: BTreeMap<String, String>,
}

fn labels(app: &str) -> Value {
    json!({ NAME_LABEL: app, MANAGED_BY_LABEL: "xone", "app": app })
}

/// A pod's labels: the app's, and its track (`stable`: a gray release's canary pods say
/// `canary`).
fn pod_labels(app: &str) -> Value {
    let mut l = labels(app);
    l[crate::domain::gray::TRACK_LABEL] = json!("stable");
    l
}

/// A Deployment and, when the app serves a port, its Service.
pub fn render(s: &Spec) -> Vec<Value> {
    let mut container = json!({ "name": s.app, "image": s.image });
    if let Some(port) = s.port {
        container["ports"] = json!([{ "name": "http", "containerPort": port, "protocol": "TCP" }]);
        if let Some(path) = s.health {
            let probe = |initial: i64, period: i64| {
                json!({
                    "httpGet": { "path": path, "port": "http" },
                    "initialDelaySeconds": initial,
                    "periodSeconds": period,
                    "failureThreshold": 3,
                })
            };
            container["readinessProbe"] = probe(2, 5);
            container["livenessProbe"] = probe(15, 10);
        }
    }
    let strategy = if s.strategy == "Recreate" {
        json!({ "type": "Recreate" })
    } else {
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": 0 } })
    };
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": s.app,
            "namespace": s.namespace,
            "labels": labels(s.app),
            "annotations": s.annotations,
        },
        "spec": {
            "replicas": s.replicas,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": s.progress_deadline,
            "strategy": strategy,
            "selector": { "matchLabels": { NAME_LABEL: s.app } },
            "template": {
                "metadata": { "labels": pod_labels(s.app) },
                "spec": { "containers": [container] },
            },
        },
    });
    let mut out = vec![deployment];
    if let Some(port) = s.port {
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": s.app,
                "namespace": s.namespace,
                "labels": labels(s.app),
                "annotations": s.annotations,
            },
            "spec": {
                "selector": { NAME_LABEL: s.app },
                "ports": [{ "name": "http", "port": port, "targetPort": "http", "protocol": "TCP" }],
            },
        }));
    }
    out
}

/// Takes an app's own manifests (YAML documents, several per file allowed): puts each object
/// in the namespace, adds xone's labels and annotations, and sets the image of the app's
/// container (the one named like the app, or the only one) in its Deployment. Returns the
/// objects and the Deployment's name.
pub fn adopt(docs: &[(String, String)], s: &Spec) -> Result<(Vec<Value>, String), String> {
    let mut out = Vec::new();
    for (file, text) in docs {
        for doc in serde_yaml::Deserializer::from_str(text) {
            use serde::Deserialize;
            let v = Value::deserialize(doc).map_err(|e| format!("{file}: not valid YAML: {e}"))?;
            if v.is_null() {
                continue;
            }
            if !v.is_object() || v.get("kind").is_none() || v.get("apiVersion").is_none() {
                return Err(format!("{file}: a document without apiVersion and kind"));
            }
            out.push(v);
        }
    }
    let mut deployment = None;
    for v in &mut out {
        let meta = v
            .as_object_mut()
            .expect("checked above")
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else { return Err("metadata is not a map".into()) };
        meta.insert("namespace".into(), json!(s.namespace));
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.entry(NAME_LABEL).or_insert_with(|| json!(s.app));
            l.insert(MANAGED_BY_LABEL.into(), json!("xone"));
        }
        let ann = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            for (k, val) in &s.annotations {
                a.insert(k.clone(), json!(val));
            }
        }
        if v["kind"] == "Deployment" && deployment.is_none() {
            let name = v["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let containers = v
                .pointer_mut("/spec/template/spec/containers")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| format!("Deployment {name} has no containers"))?;
            let only = containers.len() == 1;
            let c = containers
                .iter_mut()
                .find(|c| only || c["name"] == s.app)
                .ok_or_else(|| format!("Deployment {name} has no container named {}", s.app))?;
            c["image"] = json!(s.image);
            if let Some(l) =
                v.pointer_mut("/spec/template/metadata/labels").and_then(Value::as_object_mut)
            {
                l.insert(crate::domain::gray::TRACK_LABEL.into(), json!("stable"));
            }
            deployment = Some(name);
        }
    }
    let name = deployment.ok_or("the manifests hold no Deployment")?;
    Ok((out, name))
}

/// The app's container among a pod template's: the only one, or the one named like the app.
pub fn app_container<'a>(containers: &'a Value, app: &str) -> Option<&'a Value> {
    let list = containers.as_array()?;
    if list.len() == 1 {
        return list.first();
    }
    list.iter().find(|c| c["name"] == app)
}

/// The objects as one YAML stream, for `--dry-run`.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o).unwrap_or_default());
    }
    out
}

/// The pod template to re-apply for a rollback: the old ReplicaSet's, without the label the
/// controller added.
pub fn template_of(rs_template: &Value) -> Value {
    let mut t = rs_template.clone();
    if let Some(l) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        l.remove("pod-template-hash");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec<'static> {
        Spec {
            app: "web",
            namespace: "pay-test",
            image: "reg/web@sha256:ab",
            replicas: 2,
            port: Some(8080),
            health: Some("/health"),
            strategy: "RollingUpdate",
            progress_deadline: 600,
            annotations: BTreeMap::from([(REQUIREMENT.to_string(), "PAY-1".to_string())]),
        }
    }

    #[test]
    fn renders_a_probed_deployment_and_its_service() {
        let objs = render(&spec());
        assert_eq!(objs.len(), 2);
        let d = &objs[0];
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["metadata"]["labels"][MANAGED_BY_LABEL], "xone");
        assert_eq!(d["metadata"]["annotations"][REQUIREMENT], "PAY-1");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "reg/web@sha256:ab");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
        assert_eq!(objs[1]["spec"]["ports"][0]["port"], 8080);
        // Parsed back, the YAML is the same objects.
        let yaml = to_yaml(&objs);
        let back: Vec<Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(back, objs);
    }

    #[test]
    fn without_a_port_there_is_no_service_and_no_probe() {
        let objs = render(&Spec { port: None, ..spec() });
        assert_eq!(objs.len(), 1);
        assert!(objs[0]["spec"]["template"]["spec"]["containers"][0]
            .get("readinessProbe")
            .is_none());
    }

    #[test]
    fn own_manifests_get_the_image_namespace_and_story() {
        let docs = vec![(
            "k8s/app.yaml".to_string(),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-main\nspec:\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: envoy\n      - name: web\n        image: old\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n".to_string(),
        )];
        let (objs, name) = adopt(&docs, &spec()).unwrap();
        assert_eq!(name, "web-main");
        assert_eq!(
            objs[0]["spec"]["template"]["spec"]["containers"][1]["image"],
            "reg/web@sha256:ab"
        );
        assert_eq!(objs[0]["spec"]["template"]["spec"]["containers"][0]["image"], "envoy");
        assert_eq!(objs[1]["metadata"]["namespace"], "pay-test");
        assert_eq!(objs[1]["metadata"]["annotations"][REQUIREMENT], "PAY-1");
        let bad = vec![("x.yaml".to_string(), "kind: ConfigMap\n".to_string())];
        assert!(adopt(&bad, &spec()).unwrap_err().contains("x.yaml"));
    }
}
