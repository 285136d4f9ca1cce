//! Kubernetes through kube-rs. Contexts come from the user's kubeconfig (`KUBECONFIG`'s files
//! merged as kubectl merges them, else `~/.kube/config`) or, named `in-cluster`, from the pod's
//! service account. Objects are applied server-side as field manager `xone`; rollouts are
//! followed through watches on the Deployment and its pods, never by polling.
//!
//! Single requests go through `Cluster::call`, which retries what is safe to repeat (reads and
//! applies: an apply is idempotent) on 429 and 5xx, honouring `Retry-After`, and turns the
//! API server's `Status` answers into errors that name the verb, resource and namespace.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Event as KubeEvent, Node, Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::Resource;
use serde_json::{json, Value};

use super::http::Settings;
use crate::domain::manifest;
use crate::domain::rollout::{self, Counts, Rollout};
use crate::ui::{Kind, Result, XoneError};

/// The context name that means the pod's own service account.
pub const IN_CLUSTER: &str = "in-cluster";
pub const FIELD_MANAGER: &str = "xone";

/// The kubeconfig files in effect: `KUBECONFIG`'s list (missing files skipped, as kubectl
/// does), else `~/.kube/config` when it exists.
fn kubeconfig_paths() -> Vec<PathBuf> {
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => {
            std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty() && p.exists()).collect()
        }
        _ => {
            let p = crate::config::home_dir().join(".kube").join("config");
            if p.exists() {
                vec![p]
            } else {
                Vec::new()
            }
        }
    }
}

/// The merged kubeconfig, or `None` when there is no file.
pub fn kubeconfig() -> Result<Option<Kubeconfig>> {
    let paths = kubeconfig_paths();
    if paths.is_empty() {
        return Ok(None);
    }
    let mut merged = Kubeconfig::default();
    for p in &paths {
        let one = Kubeconfig::read_from(p).map_err(|e| {
            XoneError::usage(format!("cannot read the kubeconfig {}", p.display()))
                .cause(e)
                .hint("fix the file, or point KUBECONFIG at a good one")
        })?;
        merged = merged.merge(one).map_err(|e| {
            XoneError::usage("cannot merge the kubeconfig files of KUBECONFIG").cause(e)
        })?;
    }
    Ok(Some(merged))
}

fn in_cluster_available() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// Checks that `context` exists: exit 4 listing the contexts that do.
pub fn check_context(context: &str) -> Result<()> {
    if context == IN_CLUSTER {
        if in_cluster_available() {
            return Ok(());
        }
        return Err(XoneError::gate(
            "context in-cluster needs a pod's service account: KUBERNETES_SERVICE_HOST is not set",
        ));
    }
    let kc = kubeconfig()?;
    let names: Vec<String> =
        kc.iter().flat_map(|k| k.contexts.iter().map(|c| c.name.clone())).collect();
    if names.iter().any(|n| n == context) {
        return Ok(());
    }
    let err = XoneError::gate(format!("there is no Kubernetes context '{context}'"));
    Err(if names.is_empty() {
        err.cause("no kubeconfig was found (KUBECONFIG, ~/.kube/config)")
            .hint("point KUBECONFIG at the cluster's kubeconfig, or use `in-cluster` inside a pod")
    } else {
        err.cause(format!("the kubeconfig has: {}", names.join(", ")))
            .hint("xone project env set KEY ENV --context NAME with one of those")
    })
}

/// One request as an error message names it: `patch deployments/web`.
#[derive(Clone, Debug)]
pub struct Call {
    pub verb: &'static str,
    pub resource: String,
}

fn call(verb: &'static str, resource: impl Into<String>) -> Call {
    Call { verb, resource: resource.into() }
}

/// The end of a followed rollout.
#[derive(Clone, Debug)]
pub enum End {
    Complete {
        revision: Option<i64>,
        counts: Counts,
    },
    Failed(Failure),
    /// Ctrl-C: the cluster goes on rolling out.
    Interrupted {
        revision: Option<i64>,
    },
}

/// What made a rollout fail, told as a person needs it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub revision: Option<i64>,
    pub reason: String,
    pub message: String,
    pub pod: Option<String>,
    /// The pod's last events, oldest first.
    pub events: Vec<String>,
}

/// What to follow: the Deployment, the generation the change produced, the pods' selector and
/// the image the new pods run.
pub struct Follow<'a> {
    pub name: &'a str,
    pub generation: i64,
    pub selector: String,
    pub image: &'a str,
    /// Give up after this long even when the cluster never says the deadline passed.
    pub limit: Duration,
}

/// A rollback's plan: from which revision to which, with what image.
#[derive(Clone, Debug)]
pub struct Undo {
    pub from: Option<i64>,
    pub to: i64,
    pub image: String,
    pub generation: i64,
    /// The annotations of the revision gone back to.
    pub story: BTreeMap<String, String>,
}

pub struct Cluster {
    rt: tokio::runtime::Runtime,
    client: kube::Client,
    pub context: String,
    pub namespace: String,
    pub server: String,
    settings: Settings,
}

impl Cluster {
    pub fn connect(context: &str, namespace: &str, settings: Settings) -> Result<Cluster> {
        check_context(context)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| XoneError::internal("cannot start the async runtime").cause(e))?;
        let mut config = if context == IN_CLUSTER {
            kube::Config::incluster().map_err(|e| {
                XoneError::gate("cannot read the in-cluster service account").cause(e)
            })?
        } else {
            let kc = kubeconfig()?.expect("check_context found it");
            let opts =
                KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
            rt.block_on(kube::Config::from_custom_kubeconfig(kc, &opts)).map_err(|e| {
                XoneError::usage(format!("the kubeconfig's context '{context}' is not usable"))
                    .cause(e)
                    .hint("check its cluster, user and certificate entries")
            })?
        };
        config.connect_timeout = Some(settings.timeout);
        config.default_namespace = namespace.to_string();
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        // A plain-http server needs no CA roots; without this the client would look for the
        // machine's and, in a minimal container that has none, refuse to start.
        if config.cluster_url.scheme_str() == Some("http") && config.root_cert.is_none() {
            config.root_cert = Some(Vec::new());
        }
        let client = {
            let _guard = rt.enter();
            kube::Client::try_from(config).map_err(|e| {
                let no_roots = matches!(
                    &e,
                    kube::Error::RustlsTls(kube::client::RustlsTlsError::NoValidNativeRootCA(_))
                );
                let err = XoneError::usage(format!("cannot make a client for context '{context}'"))
                    .cause(e);
                if no_roots {
                    err.hint("its cluster has no certificate-authority and this machine has no CA certificates: add the cluster's CA to the kubeconfig, or install ca-certificates")
                } else {
                    err
                }
            })?
        };
        Ok(Cluster {
            rt,
            client,
            context: context.to_string(),
            namespace: namespace.to_string(),
            server,
            settings,
        })
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn unreachable(&self, c: &Call, cause: impl std::fmt::Display) -> XoneError {
        XoneError::new(
            Kind::Remote,
            format!(
                "cannot reach the Kubernetes API server of context {} ({}) to {} {}",
                self.context, self.server, c.verb, c.resource
            ),
        )
        .cause(cause)
        .hint("check the cluster is up and the kubeconfig's server address")
    }

    /// The error for an answer that is not a success.
    fn refused(&self, c: &Call, code: u16, body: &[u8]) -> XoneError {
        let status: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message = status["message"].as_str().unwrap_or("").to_string();
        let reason = status["reason"].as_str().unwrap_or("").to_string();
        let ns = &self.namespace;
        let what = format!("{} {} in namespace {ns}", c.verb, c.resource);
        let with_message = |e: XoneError| if message.is_empty() { e } else { e.cause(&message) };
        match code {
            401 => with_message(XoneError::new(
                Kind::Remote,
                format!(
                    "Kubernetes refused the credentials of context {} (401) to {what}",
                    self.context
                ),
            ))
            .hint("renew the credentials of that context in the kubeconfig"),
            403 => with_message(XoneError::new(
                Kind::Remote,
                format!("Kubernetes forbids {} to {what} (403)", self.context),
            ))
            .hint(format!(
                "ask for RBAC permission to {} {} in namespace {ns}",
                c.verb,
                c.resource.split('/').next().unwrap_or("")
            )),
            404 if message.starts_with("namespaces ") => XoneError::gate(format!(
                "namespace {ns} does not exist in context {}",
                self.context
            ))
            .hint("create it with --create-namespace, or set the environment's --namespace"),
            404 => with_message(XoneError::not_found(format!(
                "{} not found in namespace {ns}",
                c.resource
            ))),
            409 if reason == "Conflict" && message.contains(" with \"") => {
                // `conflict with "m" …` for one field, `conflicts with "m": …` for several.
                let mut managers: Vec<&str> = Vec::new();
                for part in message.split(" with \"").skip(1) {
                    if let Some(m) = part.split('"').next() {
                        if !managers.contains(&m) {
                            managers.push(m);
                        }
                    }
                }
                XoneError::conflict(format!(
                    "{} is also managed by {}: it owns fields xone would change",
                    c.resource,
                    managers.join(", ")
                ))
                .cause(&message)
                .hint("take them over with --force-conflicts, or change them through their owner")
            }
            409 => with_message(XoneError::conflict(format!("conflict on {what} (409)"))),
            422 | 400 => with_message(XoneError::usage(format!(
                "Kubernetes rejected the {} as invalid ({code})",
                c.resource
            )))
            .hint("fix the app's settings or manifests"),
            _ => with_message(XoneError::new(
                Kind::Remote,
                format!("the Kubernetes API server failed to {what} ({code} {reason})"),
            ))
            .hint("try again later; `xone doctor` checks the cluster"),
        }
    }

    /// Sends a request, retrying on 429 and 5xx (honouring `Retry-After`) and on connection
    /// failures: only requests that are safe to repeat come here.
    async fn send(&self, c: &Call, make: &dyn Fn() -> http::Request<Vec<u8>>) -> Result<Vec<u8>> {
        match self.exchange(c, make).await? {
            (code, body) if (200..300).contains(&code) => Ok(body),
            (code, body) => Err(self.refused(c, code, &body)),
        }
    }

    /// As `send`, but an answer the server gave (after the retries) is the caller's to read,
    /// whatever its status: `(status, body)`.
    async fn exchange(
        &self,
        c: &Call,
        make: &dyn Fn() -> http::Request<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let req = make();
            let line = format!("{} {}", req.method(), req.uri());
            let sent =
                tokio::time::timeout(self.settings.timeout, self.client.send(req.map(Body::from)))
                    .await;
            // What is left to retry: no answer, or 429/5xx (with the server's Retry-After).
            let (wait, err) = match sent {
                Err(_) => (None, self.unreachable(c, "no answer in time")),
                Ok(Err(e)) => (None, self.unreachable(c, e)),
                Ok(Ok(resp)) => {
                    let code = resp.status().as_u16();
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let body = match resp.into_body().collect_bytes().await {
                        Ok(b) => b.to_vec(),
                        Err(e) => return Err(self.unreachable(c, e)),
                    };
                    if self.settings.verbose {
                        log(&format!(
                            "Kubernetes {line} → {code} in {} ms",
                            started.elapsed().as_millis()
                        ));
                    }
                    // 429 and 5xx are retried below; any other answer is the caller's.
                    if code != 429 && code < 500 {
                        return Ok((code, body));
                    }
                    (after, self.refused(c, code, &body))
                }
            };
            if attempt >= self.settings.retries {
                return Err(if attempt > 0 {
                    err.cause(format!("after {} attempts", attempt + 1))
                } else {
                    err
                });
            }
            attempt += 1;
            let backoff = wait.map(|s| Duration::from_secs(s.min(30))).unwrap_or_else(|| {
                let base = 200u64 << attempt.min(5);
                Duration::from_millis(base + jitter(base / 2))
            });
            if self.settings.verbose {
                log(&format!("Kubernetes {line}: retrying in {} ms", backoff.as_millis()));
            }
            tokio::time::sleep(backoff).await;
        }
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        c: &Call,
        make: &dyn Fn() -> http::Request<Vec<u8>>,
    ) -> Result<T> {
        let body = self.block_on(self.send(c, make))?;
        serde_json::from_slice(&body).map_err(|e| {
            XoneError::new(
                Kind::Remote,
                format!(
                    "the Kubernetes API server answered {} {} with something unreadable",
                    c.verb, c.resource
                ),
            )
            .cause(e)
        })
    }

    /// Whether the namespace exists.
    pub fn namespace_exists(&self) -> Result<bool> {
        let ns = self.namespace.clone();
        let c = call("get", format!("namespaces/{ns}"));
        let path = k8s_openapi::api::core::v1::Namespace::url_path(&(), None);
        let req = kube::core::Request::new(path);
        let make = || req.get(&ns, &Default::default()).expect("valid request");
        match self.block_on(self.exchange(&c, &make))? {
            (404, _) => Ok(false),
            // Many deployers may not read namespaces: the apply will say if it is missing.
            (code, _) if (200..300).contains(&code) || code == 403 => Ok(true),
            (code, body) => Err(self.refused(&c, code, &body)),
        }
    }

    pub fn create_namespace(&self) -> Result<()> {
        let ns = self.namespace.clone();
        let c = call("create", format!("namespaces/{ns}"));
        let body = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": ns, "labels": { manifest::MANAGED_BY_LABEL: "xone" } },
        });
        let path = k8s_openapi::api::core::v1::Namespace::url_path(&(), None);
        let req = kube::core::Request::new(path);
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        let make = || req.create(&pp, body.to_string().into_bytes()).expect("valid request");
        match self.block_on(self.send(&c, &make)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind == Kind::Conflict => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Server-side apply of one namespaced object as field manager `xone`.
    pub fn apply(&self, obj: &Value, force: bool) -> Result<Value> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let plural = plural(kind);
        let base = if group.is_empty() {
            format!("/api/{version}/namespaces/{}/{plural}", self.namespace)
        } else {
            format!("/apis/{group}/{version}/namespaces/{}/{plural}", self.namespace)
        };
        let c = call("patch", format!("{plural}/{name}"));
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = force;
        let req = kube::core::Request::new(base);
        let patch = Patch::Apply(obj.clone());
        let make = || req.patch(&name, &pp, &patch).expect("valid request");
        self.get_json(&c, &make)
    }

    pub fn deployment(&self, name: &str) -> Result<Option<Deployment>> {
        self.named("deployments", Deployment::url_path(&(), Some(&self.namespace)), name)
    }

    /// One object of the namespace by name (`plural` names it in errors); gone is `None`.
    fn named<T: serde::de::DeserializeOwned>(
        &self,
        plural: &str,
        path: String,
        name: &str,
    ) -> Result<Option<T>> {
        let c = call("get", format!("{plural}/{name}"));
        let req = kube::core::Request::new(path);
        let make = || req.get(name, &Default::default()).expect("valid request");
        match self.get_json(&c, &make) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deployments carrying these labels.
    pub fn deployments(&self, selector: &str) -> Result<Vec<Deployment>> {
        let lp = ListParams::default().labels(selector);
        self.list("deployments", Deployment::url_path(&(), Some(&self.namespace)), &lp)
    }

    fn list<K: serde::de::DeserializeOwned + Clone>(
        &self,
        resource: &str,
        path: String,
        lp: &ListParams,
    ) -> Result<Vec<K>> {
        let c = call("list", resource.to_string());
        let req = kube::core::Request::new(path);
        let make = || req.list(lp).expect("valid request");
        let list: kube::core::ObjectList<K> = self.get_json(&c, &make)?;
        Ok(list.items)
    }

    /// The Deployment's ReplicaSets (one per revision), oldest revision first.
    pub fn replicasets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>> {
        let selector = selector_of(d);
        let lp = ListParams::default().labels(&selector);
        let path = ReplicaSet::url_path(&(), Some(&self.namespace));
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let mut sets: Vec<ReplicaSet> = self
            .list::<ReplicaSet>("replicasets", path, &lp)?
            .into_iter()
            .filter(|rs| rs.metadata.owner_references.iter().flatten().any(|o| o.uid == uid))
            .collect();
        sets.sort_by_key(|rs| rollout::revision(&rs.metadata).unwrap_or(0));
        Ok(sets)
    }

    pub fn pods(&self, selector: &str) -> Result<Vec<Pod>> {
        let lp = ListParams::default().labels(selector);
        self.list("pods", Pod::url_path(&(), Some(&self.namespace)), &lp)
    }

    /// A pod's last five distinct events, oldest first, as `reason: message`.
    pub fn pod_events(&self, pod: &str) -> Result<Vec<String>> {
        let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        let mut events: Vec<KubeEvent> =
            self.list("events", KubeEvent::url_path(&(), Some(&self.namespace)), &lp)?;
        events.sort_by_key(|e| {
            e.last_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
        });
        let mut lines: Vec<String> = Vec::new();
        for e in events.iter().rev() {
            let line = format!(
                "{}: {}",
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            );
            if !lines.contains(&line) {
                lines.push(line);
            }
            if lines.len() == 5 {
                break;
            }
        }
        lines.reverse();
        Ok(lines)
    }

    /// Follows a rollout through watches on the Deployment and its pods until it completes,
    /// fails or the user interrupts. `progress` hears every change of the counts.
    pub fn follow(&self, f: &Follow, progress: &mut dyn FnMut(&Counts)) -> Result<End> {
        // Ctrl-C ends the following (End::Interrupted), which the caller records.
        let _hold = crate::interrupt::hold();
        let end = self.block_on(self.watch_rollout(f, progress))?;
        // The failing pod's events, with a plain request after the watches are done.
        if let End::Failed(mut failure) = end {
            if let Some(pod) = &failure.pod {
                failure.events = self.pod_events(pod).unwrap_or_default();
            }
            return Ok(End::Failed(failure));
        }
        Ok(end)
    }

    async fn watch_rollout(
        &self,
        f: &Follow<'_>,
        progress: &mut dyn FnMut(&Counts),
    ) -> Result<End> {
        // Short-lived, one at a time: the size difference does not matter.
        #[allow(clippy::large_enum_variant)]
        enum Seen {
            Deployment(watcher::Result<watcher::Event<Deployment>>),
            Pod(watcher::Result<watcher::Event<Pod>>),
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let by_name = watcher::Config::default().fields(&format!("metadata.name={}", f.name));
        let by_label = watcher::Config::default().labels(&f.selector);
        let events = futures_util::stream::select(
            watcher(deployments, by_name).map(Seen::Deployment),
            watcher(pods, by_label).map(Seen::Pod),
        );
        tokio::pin!(events);
        let mut current: Option<Deployment> = None;
        let mut seen_pods: BTreeMap<String, Pod> = BTreeMap::new();
        let mut last_counts: Option<Counts> = None;
        let mut errors = 0u32;
        let interrupt = tokio::signal::ctrl_c();
        tokio::pin!(interrupt);
        // Re-armed at every change of the counts: like the progress deadline, it measures a
        // rollout that stopped moving, not a slow one.
        let limit = tokio::time::sleep(f.limit);
        tokio::pin!(limit);
        loop {
            let next = tokio::select! {
                n = events.next() => n,
                _ = &mut interrupt => {
                    let revision = current.as_ref().and_then(|d| rollout::revision(&d.metadata));
                    return Ok(End::Interrupted { revision });
                }
                _ = &mut limit => {
                    let revision = current.as_ref().and_then(|d| rollout::revision(&d.metadata));
                    let pod = seen_pods
                        .values()
                        .filter(|p| runs(p, f.image) && !rollout::ready(p))
                        .find_map(|p| p.metadata.name.clone());
                    return Ok(End::Failed(Failure {
                        revision,
                        reason: "Timeout".into(),
                        message: format!("the rollout made no progress for {} s", f.limit.as_secs()),
                        pod,
                        events: Vec::new(),
                    }));
                }
            };
            let Some(next) = next else {
                return Err(self.unreachable(&call("watch", "deployments"), "the watch ended"));
            };
            match next {
                Seen::Deployment(Ok(e)) => {
                    errors = 0;
                    match e {
                        watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                            current = Some(d)
                        }
                        watcher::Event::Delete(_) => current = None,
                        _ => {}
                    }
                }
                Seen::Pod(Ok(e)) => {
                    errors = 0;
                    match e {
                        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                            seen_pods.insert(p.metadata.name.clone().unwrap_or_default(), p);
                        }
                        watcher::Event::Delete(p) => {
                            seen_pods.remove(&p.metadata.name.clone().unwrap_or_default());
                        }
                        watcher::Event::Init => seen_pods.clear(),
                        watcher::Event::InitDone => {}
                    }
                }
                Seen::Deployment(Err(e)) | Seen::Pod(Err(e)) => {
                    errors += 1;
                    if let Some(err) = self.watch_failure(&e, errors) {
                        return Err(err);
                    }
                    tokio::time::sleep(Duration::from_millis(100 << errors.min(5))).await;
                    continue;
                }
            }
            let Some(d) = &current else { continue };
            let revision = rollout::revision(&d.metadata);
            match rollout::judge(d, f.generation) {
                Rollout::Pending => {}
                Rollout::Complete(counts) => {
                    if last_counts != Some(counts) {
                        progress(&counts);
                    }
                    return Ok(End::Complete { revision, counts });
                }
                Rollout::DeadlineExceeded(message) => {
                    let stuck =
                        seen_pods.values().filter(|p| runs(p, f.image)).find_map(rollout::stuck);
                    let (pod, reason, message) = match stuck {
                        Some((pod, reason, m)) => (Some(pod), reason, format!("{message} {m}")),
                        // A pod of the new revision that never became ready (a failing
                        // readiness probe): its events say why.
                        None => (
                            seen_pods
                                .values()
                                .filter(|p| runs(p, f.image) && !rollout::ready(p))
                                .find_map(|p| p.metadata.name.clone()),
                            "ProgressDeadlineExceeded".to_string(),
                            message,
                        ),
                    };
                    return Ok(End::Failed(Failure {
                        revision,
                        reason,
                        message,
                        pod,
                        events: Vec::new(),
                    }));
                }
                Rollout::Progressing(counts) => {
                    if last_counts != Some(counts) {
                        progress(&counts);
                        last_counts = Some(counts);
                        limit.as_mut().reset(tokio::time::Instant::now() + f.limit);
                    }
                }
            }
            if let Some((pod, reason, message)) =
                seen_pods.values().filter(|p| runs(p, f.image)).find_map(rollout::stuck)
            {
                return Ok(End::Failed(Failure {
                    revision,
                    reason,
                    message,
                    pod: Some(pod),
                    events: Vec::new(),
                }));
            }
        }
    }

    /// Whether a watch error ends the follow: a refusal at once (naming what was refused),
    /// anything else once it keeps happening.
    fn watch_failure(&self, e: &watcher::Error, errors: u32) -> Option<XoneError> {
        let verb = match e {
            watcher::Error::InitialListFailed(_) => "list",
            _ => "watch",
        };
        let refusal = |ae: &kube::core::ErrorResponse| {
            // The API server's message starts with the resource it refused.
            let resource = if ae.message.starts_with("pods") { "pods" } else { "deployments" };
            let body = json!({ "message": ae.message, "reason": ae.reason });
            self.refused(&call(verb, resource), ae.code, body.to_string().as_bytes())
        };
        if let watcher::Error::InitialListFailed(kube::Error::Api(ae))
        | watcher::Error::WatchStartFailed(kube::Error::Api(ae))
        | watcher::Error::WatchFailed(kube::Error::Api(ae))
        | watcher::Error::WatchError(ae) = e
        {
            if matches!(ae.code, 401 | 403) {
                return Some(refusal(ae));
            }
        }
        (errors > self.settings.retries.max(1) * 3)
            .then(|| self.unreachable(&call(verb, "deployments and pods"), e))
    }

    /// Plans `rollout undo`: the pod template of revision `to` (default: the one before the
    /// current) applied again, so that it becomes the newest revision. Applies it and returns
    /// the plan with the generation to follow.
    pub fn undo(&self, name: &str, app: &str, to: Option<i64>, cause: &str) -> Result<Undo> {
        let d = self.deployment(name)?.ok_or_else(|| {
            XoneError::not_found(format!(
                "there is no Deployment {name} in namespace {} of context {}",
                self.namespace, self.context
            ))
            .hint("deploy it first: xone deploy APP --env ENV --build ID")
        })?;
        let current = rollout::revision(&d.metadata);
        let sets = self.replicasets(&d)?;
        let revisions: Vec<i64> =
            sets.iter().filter_map(|rs| rollout::revision(&rs.metadata)).collect();
        let target = match to {
            Some(n) => sets
                .iter()
                .find(|rs| rollout::revision(&rs.metadata) == Some(n))
                .ok_or_else(|| {
                    XoneError::not_found(format!("{name} has no revision {n}"))
                        .cause(format!("its revisions: {}", join(&revisions)))
                        .hint(format!("xone deploy history {name} --env ENV"))
                })?,
            None => sets
                .iter()
                .rev()
                .find(|rs| rollout::revision(&rs.metadata) < current)
                .ok_or_else(|| {
                    XoneError::gate(format!(
                        "{name} has no revision before {} to roll back to",
                        current.map(|c| c.to_string()).unwrap_or_else(|| "the current one".into())
                    ))
                })?,
        };
        let to = rollout::revision(&target.metadata).unwrap_or(0);
        let template = serde_json::to_value(target.spec.as_ref().and_then(|s| s.template.clone()))?;
        let template = manifest::template_of(&template);
        let image = manifest::app_container(&template["spec"]["containers"], app)
            .and_then(|c| c["image"].as_str())
            .unwrap_or_default()
            .to_string();
        let mut story: BTreeMap<String, String> = target
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k.starts_with("xone.dev/"))
            .collect();
        story.insert(manifest::CHANGE_CAUSE.into(), cause.to_string());
        // The whole object as it stands, with the old template: fields xone applied before
        // and left out now would be removed by the server.
        let mut spec = serde_json::to_value(&d.spec)?;
        spec["template"] = template;
        let labels = d.metadata.labels.clone().unwrap_or_default();
        let obj = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": story,
            },
            "spec": spec,
        });
        let applied = self.apply(&obj, true)?;
        Ok(Undo {
            from: current,
            to,
            image,
            generation: applied["metadata"]["generation"].as_i64().unwrap_or(0),
            story,
        })
    }

    /// Deletes a namespaced object (`apiVersion`, `kind`, name); gone already is fine.
    pub fn delete_object(&self, api_version: &str, kind: &str, name: &str) -> Result<()> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let plural = plural(kind);
        let base = if group.is_empty() {
            format!("/api/{version}/namespaces/{}/{plural}", self.namespace)
        } else {
            format!("/apis/{group}/{version}/namespaces/{}/{plural}", self.namespace)
        };
        let c = call("delete", format!("{plural}/{name}"));
        let req = kube::core::Request::new(base);
        let dp = kube::api::DeleteParams::background();
        let make = || req.delete(name, &dp).expect("valid request");
        match self.block_on(self.send(&c, &make)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind == Kind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A Service of the namespace, if there is one.
    pub fn service(&self, name: &str) -> Result<Option<Value>> {
        self.named("services", Service::url_path(&(), Some(&self.namespace)), name)
    }

    /// A ConfigMap of the namespace, if there is one.
    pub fn configmap(&self, name: &str) -> Result<Option<ConfigMap>> {
        self.named("configmaps", ConfigMap::url_path(&(), Some(&self.namespace)), name)
    }

    /// ConfigMaps carrying these labels.
    pub fn configmaps(&self, selector: &str) -> Result<Vec<ConfigMap>> {
        let lp = ListParams::default().labels(selector);
        self.list("configmaps", ConfigMap::url_path(&(), Some(&self.namespace)), &lp)
    }

    /// Creates a ConfigMap; one of that name already there is a conflict (exit 5).
    pub fn create_configmap(&self, obj: &Value) -> Result<ConfigMap> {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let c = call("create", format!("configmaps/{name}"));
        let req = kube::core::Request::new(ConfigMap::url_path(&(), Some(&self.namespace)));
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        let make = || req.create(&pp, obj.to_string().into_bytes()).expect("valid request");
        self.get_json(&c, &make)
    }

    /// Replaces a ConfigMap on the condition that it is still at the `metadata.resourceVersion`
    /// `obj` carries: a change made since, by anyone, is a conflict (exit 5), never overwritten.
    pub fn replace_configmap(&self, obj: &Value) -> Result<ConfigMap> {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let c = call("update", format!("configmaps/{name}"));
        let req = kube::core::Request::new(ConfigMap::url_path(&(), Some(&self.namespace)));
        let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        let make = || req.replace(&name, &pp, obj.to_string().into_bytes()).expect("valid request");
        self.get_json(&c, &make)
    }

    /// The names of the cluster's nodes.
    pub fn nodes(&self) -> Result<Vec<String>> {
        let nodes: Vec<Node> =
            self.list("nodes", Node::url_path(&(), None), &ListParams::default())?;
        Ok(nodes.into_iter().filter_map(|n| n.metadata.name).collect())
    }

    /// Deletes a Deployment and, with it, its ReplicaSets and pods; gone already is fine.
    pub fn delete_deployment(&self, name: &str) -> Result<()> {
        let c = call("delete", format!("deployments/{name}"));
        let req = kube::core::Request::new(Deployment::url_path(&(), Some(&self.namespace)));
        let dp = kube::api::DeleteParams::background();
        let make = || req.delete(name, &dp).expect("valid request");
        match self.block_on(self.send(&c, &make)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind == Kind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The routers that could split an app's traffic by weight: ingress-nginx Ingresses and
    /// Gateway API HTTPRoutes of the namespace that send to the app's Service (each with its
    /// `kind` and `apiVersion` set). An API the cluster does not serve has none.
    pub fn routers(&self, service: &str) -> Result<Vec<Value>> {
        let ns = &self.namespace;
        let kinds = [
            ("Ingress", format!("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses")),
            ("HTTPRoute", format!("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes")),
        ];
        let mut out = Vec::new();
        for (kind, path) in kinds {
            let c = call("list", format!("{}s", kind.to_ascii_lowercase()));
            let make =
                || http::Request::get(path.as_str()).body(Vec::new()).expect("valid request");
            let list: Value = match self.block_on(self.exchange(&c, &make))? {
                (404, _) => continue,
                (code, body) if (200..300).contains(&code) => {
                    serde_json::from_slice(&body).unwrap_or(Value::Null)
                }
                (code, body) => return Err(self.refused(&c, code, &body)),
            };
            for item in list["items"].as_array().into_iter().flatten() {
                // A canary Ingress of ingress-nginx is not a route of its own.
                let canary = item["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"]
                    .as_str()
                    == Some("true");
                let text = item["spec"].to_string();
                let nginx = kind == "HTTPRoute"
                    || item["spec"]["ingressClassName"]
                        .as_str()
                        .is_some_and(|c| c.contains("nginx"))
                    || item["metadata"]["annotations"]["kubernetes.io/ingress.class"]
                        .as_str()
                        .is_some_and(|c| c.contains("nginx"));
                if nginx && !canary && text.contains(&format!("\"name\":\"{service}\"")) {
                    let mut obj = item.clone();
                    obj["kind"] = json!(kind);
                    obj["apiVersion"] = json!(if kind == "Ingress" {
                        "networking.k8s.io/v1"
                    } else {
                        "gateway.networking.k8s.io/v1"
                    });
                    out.push(obj);
                }
            }
        }
        Ok(out)
    }

    /// The API server's version, for `xone doctor`.
    pub fn version(&self) -> Result<String> {
        let c = call("get", "version");
        let make = || http::Request::get("/version").body(Vec::new()).expect("valid request");
        let v: Value = self.get_json(&c, &make)?;
        Ok(v["gitVersion"].as_str().unwrap_or("?").to_string())
    }
}

/// Whether the pod runs `image` in one of its containers.
fn runs(pod: &Pod, image: &str) -> bool {
    pod.spec.iter().flat_map(|s| s.containers.iter()).any(|c| c.image.as_deref() == Some(image))
}

/// The Deployment's selector as a label selector string.
pub fn selector_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn join(v: &[i64]) -> String {
    v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
}

/// The resource name of a kind, as the API's paths spell it.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.as_str() {
        "ingress" => "ingresses".into(),
        "networkpolicy" => "networkpolicies".into(),
        "poddisruptionbudget" => "poddisruptionbudgets".into(),
        _ if lower.ends_with('s') => format!("{lower}es"),
        _ if lower.ends_with('y') => format!("{}ies", &lower[..lower.len() - 1]),
        _ => format!("{lower}s"),
    }
}

fn jitter(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    if max == 0 {
        0
    } else {
        nanos % max
    }
}

#[allow(clippy::print_stderr)]
fn log(line: &str) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_become_their_resource_names() {
        assert_eq!(plural("Deployment"), "deployments");
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural("ConfigMap"), "configmaps");
        assert_eq!(plural("HorizontalPodAutoscaler"), "horizontalpodautoscalers");
    }
}
