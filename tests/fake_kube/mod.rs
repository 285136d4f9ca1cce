//! A stateful fake Kubernetes API server: a real HTTP/1.1 server on 127.0.0.1 that xone reaches
//! through a kubeconfig, as it would a real cluster. It speaks JSON over `apps/v1` Deployments
//! and ReplicaSets and `v1` Namespaces, Pods, Services and Events: get, list, watch, create,
//! server-side apply (with field ownership and conflicts), merge patches, replace and delete.
//!
//! A Deployment controller runs inside: it creates ReplicaSets named by a pod-template hash,
//! keeps revisions (rollback by re-applying an old template reuses its ReplicaSet), creates pods
//! that become ready or get stuck as their image's [`PodBehavior`] says, rolls out with the
//! RollingUpdate or Recreate strategy, and writes the Deployment's status and conditions the
//! way kube-controller-manager does, down to the progress deadline.
//!
//! Every write bumps one global resourceVersion and lands in a change history that watches read
//! from; a watch is pushed each change the moment it is made (a condition variable, no polling).
//! Responses carry every key of the real API server's objects in `fixtures/kubernetes/`.
//! Knobs inject faults: statuses with `Retry-After`, RBAC refusals, other field managers and
//! history compaction (410 Gone).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::fake_http as wire;
use wire::{Request, Response};

const VERSION: &str = include_str!("../../fixtures/kubernetes/version.json");

/// The user the bearer token authenticates as; RBAC refusals name it.
pub const USER: &str = "xone-test";
/// The node every pod is scheduled to.
pub const NODE: &str = "fake-node";
/// The alphabet Kubernetes uses for generated name suffixes and template hashes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Changes kept for watches before the oldest are compacted away (then 410 Gone).
const HISTORY_LIMIT: usize = 100_000;
/// How long after a spec change the controller observes it.
const OBSERVE_DELAY: Duration = Duration::from_millis(2);
/// How long a container with a `Waiting` behavior takes to get stuck.
const WAITING_DELAY: Duration = Duration::from_millis(30);

/// What the containers of an image do once their pod is created.
#[derive(Clone, Debug)]
pub enum PodBehavior {
    /// Running and ready `after` the pod's creation.
    Ready { after: Duration },
    /// Stuck in `state.waiting` with this reason and message, e.g. `ImagePullBackOff` or
    /// `CrashLoopBackOff`, with the Warning events the kubelet records for it.
    Waiting { reason: String, message: String },
}

/// The fake API server. Dropping it stops it.
pub struct FakeKube {
    pub url: String,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled after every write, every new task and on stop: watches and the controller
    /// wait on it.
    changed: Condvar,
    token: String,
    addr: SocketAddr,
    conns: Mutex<Vec<(u64, TcpStream)>>,
    next_conn: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Namespace,
    Deployment,
    ReplicaSet,
    Pod,
    Service,
    Event,
    ConfigMap,
    Node,
    Ingress,
    HttpRoute,
}

/// Every kind the fake serves.
const KINDS: [Kind; 10] = [
    Kind::Namespace,
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::Pod,
    Kind::Service,
    Kind::Event,
    Kind::ConfigMap,
    Kind::Node,
    Kind::Ingress,
    Kind::HttpRoute,
];

impl Kind {
    fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::Event => "Event",
            Kind::ConfigMap => "ConfigMap",
            Kind::Node => "Node",
            Kind::Ingress => "Ingress",
            Kind::HttpRoute => "HTTPRoute",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::Pod => "pods",
            Kind::Service => "services",
            Kind::Event => "events",
            Kind::ConfigMap => "configmaps",
            Kind::Node => "nodes",
            Kind::Ingress => "ingresses",
            Kind::HttpRoute => "httproutes",
        }
    }
    fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps",
            Kind::Ingress => "networking.k8s.io",
            Kind::HttpRoute => "gateway.networking.k8s.io",
            _ => "",
        }
    }
    fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            "apps" => "apps/v1",
            "networking.k8s.io" => "networking.k8s.io/v1",
            _ => "gateway.networking.k8s.io/v1",
        }
    }
    /// `deployments.apps`, `pods`: how error messages name the resource.
    fn qualified(self) -> String {
        if self.group().is_empty() {
            self.plural().to_string()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }
    fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }
    /// Kinds whose metadata carries a generation.
    fn generational(self) -> bool {
        matches!(self, Kind::Deployment | Kind::ReplicaSet | Kind::Ingress | Kind::HttpRoute)
    }
    fn from_plural(group: &str, plural: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.plural() == plural && k.group() == group)
    }
}

type Key = (Kind, String, String);
type FieldPath = Vec<String>;

/// One entry of `metadata.managedFields`: a manager and the leaf fields it owns. Lists and
/// empty maps count as one leaf.
#[derive(Clone, Debug, PartialEq)]
struct Manager {
    name: String,
    operation: &'static str,
    api_version: String,
    subresource: Option<&'static str>,
    time: String,
    fields: BTreeSet<FieldPath>,
}

impl Manager {
    fn is(&self, name: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.name == name && self.operation == operation && self.subresource == subresource
    }
    /// How the API server names a manager in conflict messages.
    fn describe(&self) -> String {
        let mut d = format!("{:?}", self.name);
        if let Some(sub) = self.subresource {
            d.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            d.push_str(&format!(" using {}", self.api_version));
        }
        d
    }
    fn render(&self) -> Value {
        let mut root = Map::new();
        for path in &self.fields {
            let mut cur = &mut root;
            for seg in path {
                let next = cur.entry(format!("f:{seg}")).or_insert_with(|| json!({}));
                cur = next.as_object_mut().expect("fieldsV1 nodes are objects");
            }
        }
        let mut m = json!({
            "manager": self.name,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": root,
        });
        if let Some(sub) = self.subresource {
            m["subresource"] = json!(sub);
        }
        m
    }
}

struct Stored {
    obj: Value,
    managers: Vec<Manager>,
}

/// One write, as watches see it.
struct Change {
    rv: u64,
    kind: Kind,
    ns: String,
    kind_of_change: &'static str,
    obj: Value,
    prev: Option<Value>,
}

#[derive(Clone, Debug)]
enum Task {
    Reconcile(String, String),
    Container { ns: String, pod: String, index: usize },
}

/// Per Deployment: when its Progressing condition last recorded progress (the deadline counts
/// from there), and when a rollout of which generation first showed complete.
#[derive(Clone, Debug)]
struct Rollout {
    progress_at: Instant,
    completed: Option<(i64, SystemTime)>,
}

struct Fault {
    method: String,
    path_contains: String,
    status: u16,
    times: usize,
    retry_after: Option<u64>,
}

struct State {
    rv: u64,
    objects: BTreeMap<Key, Stored>,
    history: VecDeque<Change>,
    /// Changes at or below this resourceVersion are forgotten.
    compacted: u64,
    tasks: Vec<(Instant, u64, Task)>,
    next_task: u64,
    behaviors: Vec<(String, PodBehavior)>,
    faults: Vec<Fault>,
    /// (verb, resource, namespace)
    refusals: Vec<(String, String, String)>,
    log: Vec<(String, String)>,
    /// When each request of `log` arrived.
    log_at: Vec<SystemTime>,
    rollouts: HashMap<(String, String), Rollout>,
    rng: u64,
    next_ip: u32,
    last_event: u64,
    stopped: bool,
    /// Requests without credentials are let in (a cluster with anonymous auth allowed).
    anonymous: bool,
    /// ConfigMaps another client changes right after the next read of them: (namespace,
    /// name, key, value).
    after_read: Vec<(String, String, String, String)>,
    /// Requests that are carried out and whose answer is then lost: a 503 from a proxy in
    /// between, (method, path part, times).
    lose_answers: Vec<(String, String, usize)>,
}

impl FakeKube {
    /// Starts the server on a random port of 127.0.0.1 with the namespaces every cluster has.
    pub fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let seed =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
                ^ u64::from(addr.port()).rotate_left(32);
        let mut state = State {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted: 0,
            tasks: Vec::new(),
            next_task: 0,
            behaviors: Vec::new(),
            faults: Vec::new(),
            refusals: Vec::new(),
            log: Vec::new(),
            log_at: Vec::new(),
            rollouts: HashMap::new(),
            rng: seed | 1,
            next_ip: 2,
            last_event: 0,
            stopped: false,
            anonymous: false,
            after_read: Vec::new(),
            lose_answers: Vec::new(),
        };
        for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            state.create_namespace(ns);
        }
        let token = (0..4).map(|_| format!("{:016x}", state.random())).collect::<String>();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            token,
            addr,
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("fake-kube-accept".into())
            .spawn(move || accept(sh, listener))
            .expect("spawn the accept thread");
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("fake-kube-controller".into())
            .spawn(move || controller(sh))
            .expect("spawn the controller thread");
        FakeKube { url: format!("http://{addr}"), shared, acceptor: Mutex::new(Some(acceptor)) }
    }

    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// Writes a kubeconfig (YAML) with one cluster, one user and one context per
    /// `(name, namespace)`; the first is the current context. The cluster and user entries
    /// are named after this server's address, so that the kubeconfigs of several fakes merge
    /// (KUBECONFIG=a:b) as those of different clusters do.
    pub fn write_kubeconfig(&self, path: &Path, contexts: &[(&str, &str)]) {
        let q = |s: &str| Value::String(s.to_string()).to_string();
        let host = self.url.trim_start_matches("http://");
        let cluster = format!("fake-kube-{}", host.replace([':', '.'], "-"));
        let user = format!("{USER}@{cluster}");
        let mut y = String::from("apiVersion: v1\nkind: Config\npreferences: {}\n");
        y.push_str(&format!(
            "clusters:\n- name: {}\n  cluster:\n    server: {}\n",
            q(&cluster),
            q(&self.url)
        ));
        y.push_str(&format!(
            "users:\n- name: {}\n  user:\n    token: {}\n",
            q(&user),
            q(&self.shared.token)
        ));
        y.push_str("contexts:\n");
        for (name, ns) in contexts {
            y.push_str(&format!(
                "- name: {}\n  context:\n    cluster: {}\n    user: {}\n    namespace: {}\n",
                q(name),
                q(&cluster),
                q(&user),
                q(ns)
            ));
        }
        if let Some((first, _)) = contexts.first() {
            y.push_str(&format!("current-context: {}\n", q(first)));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the kubeconfig's folder");
        }
        std::fs::write(path, y).expect("write the kubeconfig");
    }

    /// Lets requests without credentials in, as a cluster that allows anonymous requests
    /// does: kubectl sends no bearer token over plain HTTP.
    pub fn allow_anonymous(&self) {
        self.with(|s| s.anonymous = true);
    }

    pub fn add_namespace(&self, ns: &str) {
        self.with(|s| {
            if s.get(Kind::Namespace, "", ns).is_none() {
                s.create_namespace(ns);
            }
        })
    }

    /// What containers whose image contains `image_contains` do; the first match wins, the
    /// default is ready after 150 ms.
    pub fn pod_behavior(&self, image_contains: &str, b: PodBehavior) {
        self.with(|s| s.behaviors.push((image_contains.to_string(), b)))
    }

    /// Answers the next `times` requests whose method is `method` (`*` or empty: any) and
    /// whose path and query contain `path_contains` with a Status of `status`.
    pub fn fail(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        times: usize,
        retry_after: Option<u64>,
    ) {
        self.with(|s| {
            s.faults.push(Fault {
                method: method.to_string(),
                path_contains: path_contains.to_string(),
                status,
                times,
                retry_after,
            })
        })
    }

    /// Denies `verb` (get, list, watch, create, patch, update, delete) on `resource`
    /// (`deployments`, `pods`, ...) in `namespace` (`*`: all) with RBAC's 403.
    pub fn refuse(&self, verb: &str, resource: &str, namespace: &str) {
        let resource = resource.split('.').next().unwrap_or(resource).to_string();
        self.with(|s| s.refusals.push((verb.to_string(), resource, namespace.to_string())))
    }

    /// Lifts every refusal.
    pub fn allow_all(&self) {
        self.with(|s| s.refusals.clear())
    }

    /// Sets a field of a Deployment as another field manager's update would (`path` like
    /// `.spec.replicas`): the value changes and `manager` becomes its only owner.
    pub fn set_field_owner(
        &self,
        ns: &str,
        deployment: &str,
        manager: &str,
        path: &str,
        value: Value,
    ) {
        let path: FieldPath = path.trim_start_matches('.').split('.').map(str::to_string).collect();
        self.with(|s| {
            let key = (Kind::Deployment, ns.to_string(), deployment.to_string());
            let Some(st) = s.objects.get(&key) else {
                panic!("no deployment {ns}/{deployment}");
            };
            let mut obj = st.obj.clone();
            let mut managers = st.managers.clone();
            let old_spec = obj["spec"].clone();
            set_path(&mut obj, &path, value);
            for m in &mut managers {
                m.fields.remove(&path);
            }
            let time = now_iso();
            match managers.iter_mut().find(|m| m.is(manager, "Update", None)) {
                Some(m) => {
                    m.fields.insert(path.clone());
                    m.time = time;
                }
                None => managers.push(Manager {
                    name: manager.to_string(),
                    operation: "Update",
                    api_version: "apps/v1".into(),
                    subresource: None,
                    time,
                    fields: [path.clone()].into(),
                }),
            }
            managers.retain(|m| !m.fields.is_empty());
            default_object(Kind::Deployment, &mut obj);
            if obj["spec"] != old_spec {
                bump_generation(&mut obj);
            }
            s.put(Kind::Deployment, ns, deployment, obj, managers);
            s.schedule(OBSERVE_DELAY, Task::Reconcile(ns.into(), deployment.into()));
        })
    }

    pub fn deployment(&self, ns: &str, name: &str) -> Option<Value> {
        self.with(|s| s.get(Kind::Deployment, ns, name).cloned())
    }

    pub fn replicasets(&self, ns: &str) -> Vec<Value> {
        self.with(|s| s.all(Kind::ReplicaSet, Some(ns)))
    }

    pub fn pods(&self, ns: &str) -> Vec<Value> {
        self.with(|s| s.all(Kind::Pod, Some(ns)))
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<Value> {
        self.with(|s| s.get(Kind::Service, ns, name).cloned())
    }

    pub fn events(&self, ns: &str) -> Vec<Value> {
        self.with(|s| s.all(Kind::Event, Some(ns)))
    }

    pub fn configmap(&self, ns: &str, name: &str) -> Option<Value> {
        self.with(|s| s.get(Kind::ConfigMap, ns, name).cloned())
    }

    /// Changes a ConfigMap's data as another client would (a new resourceVersion).
    pub fn edit_configmap(&self, ns: &str, name: &str, key: &str, value: &str) {
        self.with(|s| s.edit_configmap(ns, name, key, value))
    }

    /// Carries out the next `times` requests of `method` whose path contains `path_contains`,
    /// then answers 503 as a proxy that lost the answer would.
    pub fn lose_answers(&self, method: &str, path_contains: &str, times: usize) {
        self.with(|s| s.lose_answers.push((method.into(), path_contains.into(), times)))
    }

    /// Has another client change a ConfigMap's data right after the next read of it: the
    /// reader's copy is then out of date.
    pub fn edit_configmap_after_next_read(&self, ns: &str, name: &str, key: &str, value: &str) {
        self.with(|s| s.after_read.push((ns.into(), name.into(), key.into(), value.into())))
    }

    /// Creates an object of any kind it serves, as `kubectl create` would (an Ingress, an
    /// HTTPRoute a person wrote).
    pub fn add_object(&self, obj: Value) {
        self.with(|s| {
            let kind = KINDS
                .into_iter()
                .find(|k| obj["kind"] == k.kind())
                .unwrap_or_else(|| panic!("the fake serves no {}", obj["kind"]));
            let ns = text(&obj, "/metadata/namespace");
            let name = text(&obj, "/metadata/name");
            let mut fresh = s.fresh(kind, &ns, &name);
            merge(&mut fresh, &managed_part(&obj));
            s.default_new(kind, &mut fresh);
            s.put(kind, &ns, &name, fresh, Vec::new());
        })
    }

    /// An object by its resource name (`ingresses`, `httproutes`, ...), namespace and name.
    pub fn object(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let kind = KINDS.into_iter().find(|k| k.plural() == plural).expect("a served resource");
        self.with(|s| s.get(kind, ns, name).cloned())
    }

    /// A machine of the cluster, registered and Ready, as a kubelet registers one.
    pub fn add_node(&self, name: &str) {
        self.with(|s| {
            let mut obj = s.fresh(Kind::Node, "", name);
            obj["metadata"]["labels"] = json!({
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
            });
            obj["metadata"]["annotations"] = json!({
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            });
            obj["spec"] = json!({ "podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"] });
            let at = now_iso();
            let condition = |t: &str, status: &str, reason: &str, message: &str| {
                json!({
                    "type": t, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": at, "lastTransitionTime": at,
                })
            };
            let resources = json!({
                "cpu": "2", "ephemeral-storage": "20134592Ki", "hugepages-2Mi": "0",
                "memory": "4025004Ki", "pods": "110",
            });
            obj["status"] = json!({
                "addresses": [
                    { "type": "InternalIP", "address": "192.168.49.2" },
                    { "type": "Hostname", "address": name },
                ],
                "allocatable": resources,
                "capacity": resources,
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                "daemonEndpoints": { "kubeletEndpoint": { "Port": 10250 } },
                "images": [],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": s.uid(),
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.1.0",
                    "kubeProxyVersion": "v1.33.0",
                    "kubeletVersion": "v1.33.0",
                    "machineID": s.uid().replace('-', ""),
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "systemUUID": s.uid(),
                },
            });
            s.put(Kind::Node, "", name, obj, Vec::new());
        })
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.with(|s| {
            s.all(Kind::Namespace, None).iter().map(|n| text(n, "/metadata/name")).collect()
        })
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.with(|s| s.rv)
    }

    /// Forgets the change history, as etcd compaction does: watches from an older
    /// resourceVersion then get 410 Gone.
    pub fn compact(&self) {
        self.with(|s| {
            s.history.clear();
            s.compacted = s.rv;
        })
    }

    /// (method, path with query) of every request, in order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.with(|s| s.log.clone())
    }

    /// When the first request with this method to a path ending so arrived, if one did.
    pub fn first_request_at(&self, method: &str, path_end: &str) -> Option<SystemTime> {
        self.with(|s| {
            let path = |p: &str| p.split('?').next().unwrap_or(p).ends_with(path_end);
            let i = s.log.iter().position(|(m, p)| m == method && path(p))?;
            s.log_at.get(i).copied()
        })
    }

    pub fn clear_requests(&self) {
        self.with(|s| {
            s.log.clear();
            s.log_at.clear();
        })
    }

    /// When the Deployment's status first showed its current generation's rollout complete;
    /// `None` while it is not complete.
    pub fn completed_at(&self, ns: &str, name: &str) -> Option<SystemTime> {
        self.with(|s| {
            let d = s.get(Kind::Deployment, ns, name)?;
            if !rollout_complete(d) {
                return None;
            }
            let r = s.rollouts.get(&(ns.to_string(), name.to_string()))?;
            let (generation, at) = r.completed?;
            (generation == num(d, "/metadata/generation")).then_some(at)
        })
    }

    /// Closes the listener and every connection, ending open watches.
    pub fn stop(&self) {
        {
            let mut s = self.shared.lock();
            if s.stopped {
                return;
            }
            s.stopped = true;
        }
        self.shared.changed.notify_all();
        let conns =
            std::mem::take(&mut *self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, c) in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the stop and closes the listener.
        let woke = TcpStream::connect_timeout(&self.shared.addr, Duration::from_secs(1)).is_ok();
        if let Some(t) = self.acceptor.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if woke {
                let _ = t.join();
            }
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.shared.lock());
        self.shared.changed.notify_all();
        r
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Threads: accept, serve a connection, the controller.
// ---------------------------------------------------------------------------------------------

fn accept(sh: Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if sh.lock().stopped {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(c) = stream.try_clone() {
            sh.conns.lock().unwrap_or_else(|e| e.into_inner()).push((id, c));
        }
        let sh = sh.clone();
        let _ = std::thread::Builder::new().name("fake-kube-conn".into()).spawn(move || {
            serve(&sh, stream);
            sh.conns.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != id);
        });
    }
}

/// One connection: requests in turn (keep-alive) until the client closes it.
fn serve(sh: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    while let Some(req) = wire::read_request(&mut reader) {
        if sh.lock().stopped {
            return;
        }
        let close = req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let reply = handle(sh, &req);
        sh.changed.notify_all();
        let ok = match reply {
            Reply::Full(mut resp) => {
                resp.headers.push(("Cache-Control".into(), "no-cache, private".into()));
                wire::write_response(&mut writer, &resp).is_ok()
            }
            Reply::Watch(w) => stream_watch(sh, &mut writer, *w),
        };
        if !ok || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Runs the tasks (controller syncs, container state changes) as they fall due.
fn controller(sh: Arc<Shared>) {
    let mut s = sh.lock();
    loop {
        if s.stopped {
            return;
        }
        let now = Instant::now();
        let due = s
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.0 <= now)
            .min_by_key(|(_, t)| (t.0, t.1))
            .map(|(i, _)| i);
        if let Some(i) = due {
            let (_, _, task) = s.tasks.swap_remove(i);
            s.run(task);
            drop(s);
            sh.changed.notify_all();
            s = sh.lock();
            continue;
        }
        let wait = s
            .tasks
            .iter()
            .map(|t| t.0.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1));
        s = sh.changed.wait_timeout(s, wait).unwrap_or_else(|e| e.into_inner()).0;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// The kube fake's reading of a request's query.
impl Request {
    fn flag(&self, name: &str) -> bool {
        matches!(self.q(name), Some("true") | Some("1"))
    }
}

enum Reply {
    Full(Response),
    Watch(Box<Watch>),
}

fn reply(status: u16, body: &Value) -> Reply {
    Reply::Full(Response {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}

// ---------------------------------------------------------------------------------------------
// Statuses: the API server's error bodies.
// ---------------------------------------------------------------------------------------------

fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Reply {
    reply(code, &status_body(code, reason, message, details))
}

fn details(kind: Kind, name: Option<&str>) -> Value {
    let mut d = Map::new();
    if let Some(n) = name {
        d.insert("name".into(), json!(n));
    }
    if !kind.group().is_empty() {
        d.insert("group".into(), json!(kind.group()));
    }
    d.insert("kind".into(), json!(kind.plural()));
    Value::Object(d)
}

fn not_found(kind: Kind, name: &str) -> Reply {
    status(
        404,
        "NotFound",
        &format!("{} {name:?} not found", kind.qualified()),
        Some(details(kind, Some(name))),
    )
}

fn namespace_not_found(ns: &str) -> Reply {
    not_found(Kind::Namespace, ns)
}

fn bad_request(message: &str) -> Reply {
    status(400, "BadRequest", message, None)
}

/// The reason and a message the API server gives with a status code.
fn reason_for(code: u16) -> (&'static str, &'static str) {
    match code {
        400 => ("BadRequest", "the server rejected our request for an unknown reason"),
        401 => ("Unauthorized", "Unauthorized"),
        403 => ("Forbidden", "forbidden"),
        404 => ("NotFound", "the server could not find the requested resource"),
        405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
        409 => ("Conflict", "the server reported a conflict"),
        410 => ("Expired", "the resource version requested is too old"),
        422 => ("Invalid", "the server rejected our request due to an error in our request"),
        429 => ("TooManyRequests", "Too many requests, please try again later."),
        500 => ("InternalError", "Internal error occurred: an error on the server has prevented the request from succeeding"),
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request"),
        504 => ("Timeout", "Timeout: request did not complete within the allotted timeout"),
        _ => ("Unknown", "an error on the server has prevented the request from succeeding"),
    }
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

/// What a request addresses: a collection (`name` None) or one object, in a namespace or (for
/// collections) across all.
struct Target {
    kind: Kind,
    ns: Option<String>,
    name: Option<String>,
}

/// Applies RFC 6902 operations (add, replace, remove, test) to `obj`. Returns the touched
/// fields as an object, the shape a merge patch of the same change would have.
fn apply_json_patch(obj: &mut Value, ops: &[Value]) -> Result<Value, String> {
    let mut touched = json!({});
    for op in ops {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = op["path"].as_str().ok_or("a JSON patch operation without a path")?;
        let segs: Vec<String> =
            path.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
        let (last, parents) =
            segs.split_last().ok_or("a JSON patch may not replace the whole object")?;
        let mut cur = &mut *obj;
        for seg in parents {
            cur = match cur {
                Value::Object(m) => m.get_mut(seg),
                Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                _ => None,
            }
            .ok_or_else(|| format!("doc is missing path: {path}"))?;
        }
        let value = op.get("value").cloned();
        match (kind, cur) {
            ("test", parent) => {
                let have = match parent {
                    Value::Object(m) => m.get(last).cloned(),
                    Value::Array(a) => last.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
                    _ => None,
                };
                if have != value {
                    return Err(format!("testing value {path} failed"));
                }
                continue;
            }
            ("add" | "replace", Value::Object(m)) => {
                if kind == "replace" && !m.contains_key(last) {
                    return Err(format!("doc is missing key: {path}"));
                }
                m.insert(last.clone(), value.clone().unwrap_or(Value::Null));
            }
            ("add", Value::Array(a)) if last == "-" => a.push(value.clone().unwrap_or(Value::Null)),
            ("add" | "replace", Value::Array(a)) => {
                let i: usize = last.parse().map_err(|_| format!("invalid index in {path}"))?;
                if i > a.len() || (kind == "replace" && i == a.len()) {
                    return Err(format!("index out of range: {path}"));
                }
                let v = value.clone().unwrap_or(Value::Null);
                if kind == "add" {
                    a.insert(i, v);
                } else {
                    a[i] = v;
                }
            }
            ("remove", Value::Object(m)) => {
                m.remove(last).ok_or_else(|| format!("doc is missing key: {path}"))?;
            }
            ("remove", Value::Array(a)) => {
                let i: usize = last.parse().map_err(|_| format!("invalid index in {path}"))?;
                if i >= a.len() {
                    return Err(format!("index out of range: {path}"));
                }
                a.remove(i);
            }
            (other, _) => {
                return Err(format!("unsupported JSON patch operation {other:?} at {path}"))
            }
        }
        // Record the touched field; a list counts whole, as elsewhere in the fake.
        let prefix: Vec<&String> =
            segs.iter().take_while(|seg| seg.parse::<usize>().is_err() && *seg != "-").collect();
        let pointer: String = prefix
            .iter()
            .map(|seg| format!("/{}", seg.replace('~', "~0").replace('/', "~1")))
            .collect();
        let now = obj.pointer(&pointer).cloned().unwrap_or(Value::Null);
        let mut t = &mut touched;
        for seg in &prefix {
            if !t.is_object() {
                *t = json!({});
            }
            t = t
                .as_object_mut()
                .expect("an object")
                .entry(seg.to_string())
                .or_insert_with(|| json!({}));
        }
        *t = now;
    }
    Ok(touched)
}

/// Legacy (unaggregated) API discovery, which kubectl reads to map kinds to paths:
/// `/api`, `/apis`, `/api/v1`, `/apis/apps/v1`.
fn discovery(path: &str) -> Option<Value> {
    let resources = |group: &str, gv: &str| {
        let list: Vec<Value> = KINDS
            .iter()
            .filter(|k| k.group() == group)
            .map(|k| {
                json!({
                    "name": k.plural(),
                    "singularName": k.kind().to_ascii_lowercase(),
                    "namespaced": k.namespaced(),
                    "kind": k.kind(),
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                })
            })
            .collect();
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list })
    };
    Some(match path {
        "/api" => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }],
        }),
        "/apis" => {
            let groups: Vec<Value> = ["apps", "networking.k8s.io", "gateway.networking.k8s.io"]
                .iter()
                .map(|g| {
                    json!({
                        "name": g,
                        "versions": [{ "groupVersion": format!("{g}/v1"), "version": "v1" }],
                        "preferredVersion": { "groupVersion": format!("{g}/v1"), "version": "v1" },
                    })
                })
                .collect();
            json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
        }
        "/api/v1" => resources("", "v1"),
        "/apis/apps/v1" => resources("apps", "apps/v1"),
        "/apis/networking.k8s.io/v1" => resources("networking.k8s.io", "networking.k8s.io/v1"),
        "/apis/gateway.networking.k8s.io/v1" => {
            resources("gateway.networking.k8s.io", "gateway.networking.k8s.io/v1")
        }
        _ => return None,
    })
}

fn handle(sh: &Shared, req: &Request) -> Reply {
    let mut s = sh.lock();
    s.log.push((req.method.clone(), req.target.clone()));
    s.log_at.push(SystemTime::now());
    if let Some(r) = s.take_fault(req) {
        return r;
    }
    // Every path needs the bearer token. (Clusters that allow anonymous requests answer
    // /version without one; this one does not.)
    let authorized = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == sh.token);
    let anonymous = s.anonymous && req.header("authorization").is_none();
    if !authorized && !anonymous {
        return status(401, "Unauthorized", "Unauthorized", None);
    }
    let answer = s.route(req);
    let lost = s.lose_answers.iter().position(|(m, p, n)| {
        *n > 0 && m.eq_ignore_ascii_case(&req.method) && req.target.contains(p.as_str())
    });
    if let Some(i) = lost {
        s.lose_answers[i].2 -= 1;
        let (reason, message) = reason_for(503);
        return reply(503, &status_body(503, reason, message, None));
    }
    answer
}

impl State {
    fn take_fault(&mut self, req: &Request) -> Option<Reply> {
        let i = self.faults.iter().position(|f| {
            f.times > 0
                && (f.method.is_empty()
                    || f.method == "*"
                    || f.method.eq_ignore_ascii_case(&req.method))
                && req.target.contains(&f.path_contains)
        })?;
        let f = &mut self.faults[i];
        f.times -= 1;
        let (code, retry_after) = (f.status, f.retry_after);
        if f.times == 0 {
            self.faults.remove(i);
        }
        let (reason, message) = reason_for(code);
        let mut details = None;
        if let Some(secs) = retry_after {
            details = Some(json!({ "retryAfterSeconds": secs }));
        }
        let mut r = reply(code, &status_body(code, reason, message, details));
        if let (Reply::Full(resp), Some(secs)) = (&mut r, retry_after) {
            resp.headers.push(("Retry-After".into(), secs.to_string()));
        }
        Some(r)
    }

    fn route(&mut self, req: &Request) -> Reply {
        let path = wire::decode(&req.path);
        let path = path.trim_end_matches('/');
        if path == "/version" {
            return if req.method == "GET" { reply(200, &version()) } else { method_not_allowed() };
        }
        if let Some(doc) = discovery(path) {
            return if req.method == "GET" { reply(200, &doc) } else { method_not_allowed() };
        }
        let (group, rest) = if let Some(r) = path.strip_prefix("/api/v1") {
            ("", r)
        } else if let Some(r) = path.strip_prefix("/apis/apps/v1") {
            ("apps", r)
        } else if let Some(r) = path.strip_prefix("/apis/networking.k8s.io/v1") {
            ("networking.k8s.io", r)
        } else if let Some(r) = path.strip_prefix("/apis/gateway.networking.k8s.io/v1") {
            ("gateway.networking.k8s.io", r)
        } else {
            return path_not_found();
        };
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let t = match (group, segs.as_slice()) {
            ("", ["namespaces"]) => Target { kind: Kind::Namespace, ns: None, name: None },
            ("", ["namespaces", n]) => {
                Target { kind: Kind::Namespace, ns: None, name: Some(n.to_string()) }
            }
            (g, ["namespaces", ns, plural]) => match Kind::from_plural(g, plural) {
                Some(k) if k.namespaced() => {
                    Target { kind: k, ns: Some(ns.to_string()), name: None }
                }
                _ => return path_not_found(),
            },
            (g, ["namespaces", ns, plural, name]) => match Kind::from_plural(g, plural) {
                Some(k) if k.namespaced() => {
                    Target { kind: k, ns: Some(ns.to_string()), name: Some(name.to_string()) }
                }
                _ => return path_not_found(),
            },
            // Every namespace's objects, or a cluster-scoped kind's (nodes).
            (g, [plural]) => match Kind::from_plural(g, plural) {
                Some(k) => Target { kind: k, ns: None, name: None },
                _ => return path_not_found(),
            },
            (g, [plural, name]) => match Kind::from_plural(g, plural) {
                Some(k) if !k.namespaced() => {
                    Target { kind: k, ns: None, name: Some(name.to_string()) }
                }
                _ => return path_not_found(),
            },
            _ => return path_not_found(),
        };
        let verb = match (req.method.as_str(), t.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if req.flag("watch") => "watch",
            ("GET", false) => "list",
            ("POST", false) => "create",
            ("PATCH", true) => "patch",
            ("PUT", true) => "update",
            ("DELETE", true) => "delete",
            _ => return method_not_allowed(),
        };
        if let Some(r) = self.refused(verb, &t) {
            return r;
        }
        match verb {
            "get" => self.get_one(&t),
            "list" => self.list(&t, req),
            "watch" => self.watch(&t, req),
            "create" => self.create(&t, req),
            "patch" => self.patch(&t, req),
            "update" => self.update(&t, req),
            _ => self.delete(&t),
        }
    }

    /// RBAC's answer when a refusal covers the request.
    fn refused(&self, verb: &str, t: &Target) -> Option<Reply> {
        // A namespace's own requests are authorized "in the namespace" it names.
        let ns = match t.kind {
            Kind::Namespace => t.name.clone(),
            _ => t.ns.clone(),
        };
        let hit = self.refusals.iter().any(|(v, r, n)| {
            v == verb
                && r == t.kind.plural()
                && (n == "*" || n.is_empty() || Some(n.as_str()) == ns.as_deref())
        });
        if !hit {
            return None;
        }
        let subject = match &t.name {
            Some(n) => format!("{} {n:?}", t.kind.qualified()),
            None => t.kind.qualified(),
        };
        let scope = match ns {
            Some(n) => format!("in the namespace {n:?}"),
            None => "at the cluster scope".into(),
        };
        let message = format!(
            "{subject} is forbidden: User {USER:?} cannot {verb} resource {:?} in API group {:?} {scope}",
            t.kind.plural(),
            t.kind.group()
        );
        Some(status(403, "Forbidden", &message, Some(details(t.kind, t.name.as_deref()))))
    }

    fn get_one(&mut self, t: &Target) -> Reply {
        let name = t.name.as_deref().unwrap_or_default();
        let ns = t.ns.as_deref().unwrap_or_default();
        let answer = match self.get(t.kind, ns, name) {
            Some(o) => reply(200, o),
            None => not_found(t.kind, name),
        };
        // Another machine writes it just after this client read it.
        if t.kind == Kind::ConfigMap {
            if let Some(i) = self.after_read.iter().position(|(n, m, _, _)| n == ns && m == name) {
                let (_, _, key, value) = self.after_read.remove(i);
                self.edit_configmap(ns, name, &key, &value);
            }
        }
        answer
    }

    fn list(&mut self, t: &Target, req: &Request) -> Reply {
        let sel = match Selector::from_request(t.kind, req) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let items: Vec<Value> = self
            .all(t.kind, t.ns.as_deref())
            .into_iter()
            .filter(|o| sel.matches(o))
            .map(|mut o| {
                // List items carry no kind and apiVersion: the list's own say them.
                if let Some(m) = o.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            })
            .collect();
        reply(
            200,
            &json!({
                "kind": format!("{}List", t.kind.kind()),
                "apiVersion": t.kind.api_version(),
                "metadata": { "resourceVersion": self.rv.to_string() },
                "items": items,
            }),
        )
    }

    fn watch(&mut self, t: &Target, req: &Request) -> Reply {
        let sel = match Selector::from_request(t.kind, req) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let timeout = req.q("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).unwrap_or(290);
        let mut w = Watch {
            kind: t.kind,
            ns: t.ns.clone(),
            sel,
            last: self.rv,
            initial: Vec::new(),
            deadline: Instant::now() + Duration::from_secs(timeout),
            bookmarks: req.flag("allowWatchBookmarks"),
        };
        let send_initial = req.flag("sendInitialEvents");
        match req.q("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
            Some(v) if !send_initial => {
                let Ok(rv) = v.parse::<u64>() else {
                    return status(
                        400,
                        "BadRequest",
                        &format!("invalid resource version: {v}"),
                        None,
                    );
                };
                if rv < self.compacted {
                    // The watch cache answers a too old version with an ERROR event.
                    let e = status_body(
                        410,
                        "Expired",
                        &format!("too old resource version: {rv} ({})", self.rv),
                        None,
                    );
                    w.initial.push(event_line("ERROR", &e));
                    w.deadline = Instant::now();
                    w.last = self.rv;
                    w.bookmarks = false;
                } else {
                    w.last = rv;
                }
            }
            _ => {
                // No version (or "0"): the current objects first, as ADDED.
                for o in self.all(w.kind, w.ns.as_deref()) {
                    if w.sel.matches(&o) {
                        w.initial.push(event_line("ADDED", &o));
                    }
                }
                if send_initial {
                    w.initial.push(self.bookmark(w.kind, true));
                }
            }
        }
        Reply::Watch(Box::new(w))
    }

    fn bookmark(&self, kind: Kind, initial_end: bool) -> String {
        let mut meta = json!({ "resourceVersion": self.rv.to_string() });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        event_line(
            "BOOKMARK",
            &json!({ "kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": meta }),
        )
    }

    fn create(&mut self, t: &Target, req: &Request) -> Reply {
        let kind = t.kind;
        let Some(ns) = t.ns.clone().or_else(|| (!kind.namespaced()).then(String::new)) else {
            return method_not_allowed();
        };
        let body = match parse_body(req, kind) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let mut name = text(&body, "/metadata/name");
        if name.is_empty() {
            let prefix = text(&body, "/metadata/generateName");
            if prefix.is_empty() {
                return status(
                    422,
                    "Invalid",
                    &format!("{} \"\" is invalid: metadata.name: Required value: name or generateName is required", kind.kind()),
                    None,
                );
            }
            name = format!("{prefix}{}", self.suffix(5));
        }
        if let Some(r) = check_namespace(&body, &ns) {
            return r;
        }
        if kind.namespaced() && self.get(Kind::Namespace, "", &ns).is_none() {
            return namespace_not_found(&ns);
        }
        if self.get(kind, &ns, &name).is_some() {
            return status(
                409,
                "AlreadyExists",
                &format!("{} {name:?} already exists", kind.qualified()),
                Some(details(kind, Some(&name))),
            );
        }
        if kind == Kind::Namespace {
            return reply(201, &self.create_namespace(&name));
        }
        let manager = request_manager(req);
        let managed = managed_part(&body);
        let mut obj = self.fresh(kind, &ns, &name);
        merge(&mut obj, &managed);
        if kind == Kind::Pod {
            // A pod created directly keeps the status it was given: no ReplicaSet owns it, so
            // the kubelet here leaves it alone.
            if let Some(st) = body.get("status") {
                obj["status"] = st.clone();
            }
        }
        self.default_new(kind, &mut obj);
        if let Some(r) = validate(kind, &obj) {
            return r;
        }
        let managers = vec![Manager {
            name: manager,
            operation: "Update",
            api_version: kind.api_version().into(),
            subresource: None,
            time: now_iso(),
            fields: leaves_of(&managed),
        }];
        let out = self.put(kind, &ns, &name, obj, managers);
        if kind == Kind::Deployment {
            self.schedule(OBSERVE_DELAY, Task::Reconcile(ns, name));
        }
        reply(201, &out)
    }

    fn patch(&mut self, t: &Target, req: &Request) -> Reply {
        let apply =
            req.header("content-type").is_some_and(|c| c.starts_with("application/apply-patch"));
        if !apply && req.q("force").is_some() {
            let m = "Forbidden: may not be specified for non-apply patch";
            return invalid_patch_options("force", "FieldValueForbidden", m);
        }
        let ctype = req
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        match ctype {
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => self.apply(t, req),
            "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/json-patch+json" => self.merge_patch(t, req),
            _ => status(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml; got {ctype:?}"
                ),
                None,
            ),
        }
    }

    /// Server-side apply: creates the object or merges the applied configuration into it,
    /// tracking which manager owns which leaf field.
    fn apply(&mut self, t: &Target, req: &Request) -> Reply {
        let kind = t.kind;
        let ns = t.ns.clone().unwrap_or_default();
        let name = t.name.clone().unwrap_or_default();
        let Some(manager) = req.q("fieldManager").filter(|m| !m.is_empty()).map(str::to_string)
        else {
            let m = "Required value: is required for apply patch";
            return invalid_patch_options("fieldManager", "FieldValueRequired", m);
        };
        let force = req.flag("force");
        let body = match parse_body(req, kind) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let body_name = text(&body, "/metadata/name");
        if body_name != name {
            return bad_request(&format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            ));
        }
        if let Some(r) = check_namespace(&body, &ns) {
            return r;
        }
        if kind.namespaced() && self.get(Kind::Namespace, "", &ns).is_none() {
            return namespace_not_found(&ns);
        }
        let applied = managed_part(&body);
        let paths = leaves_of(&applied);
        let key = (kind, ns.clone(), name.clone());
        let me = Manager {
            name: manager.clone(),
            operation: "Apply",
            api_version: kind.api_version().into(),
            subresource: None,
            time: now_iso(),
            fields: paths.clone(),
        };
        let Some(st) = self.objects.get(&key) else {
            let mut obj = self.fresh(kind, &ns, &name);
            merge(&mut obj, &applied);
            self.default_new(kind, &mut obj);
            if let Some(r) = validate(kind, &obj) {
                return r;
            }
            let out = self.put(kind, &ns, &name, obj, vec![me]);
            if kind == Kind::Deployment {
                self.schedule(OBSERVE_DELAY, Task::Reconcile(ns, name));
            }
            return reply(201, &out);
        };
        // A field another manager owns may only be set to another value with force.
        let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
        for m in st.managers.iter().filter(|m| !m.is(&manager, "Apply", None)) {
            for p in m.fields.iter().filter(|p| paths.contains(*p)) {
                if get_path(&st.obj, p) != get_path(&applied, p) {
                    conflicts.push((m.describe(), p.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return conflict(&conflicts);
        }
        let mut obj = st.obj.clone();
        let mut managers = st.managers.clone();
        let before = strip_managed_fields(&st.obj);
        let before_owners: Vec<_> =
            managers.iter().map(|m| (m.name.clone(), m.fields.clone())).collect();
        for (_, p) in &conflicts {
            for m in managers.iter_mut().filter(|m| !m.is(&manager, "Apply", None)) {
                m.fields.remove(p);
            }
        }
        // Fields this manager applied before but leaves out now go, unless someone else owns
        // them.
        let previous =
            managers.iter().find(|m| m.is(&manager, "Apply", None)).map(|m| m.fields.clone());
        for p in previous.unwrap_or_default().difference(&paths) {
            let owned =
                managers.iter().any(|m| !m.is(&manager, "Apply", None) && m.fields.contains(p));
            let still = paths.iter().any(|q| q.starts_with(p) || p.starts_with(q));
            if !owned && !still {
                remove_path(&mut obj, p);
            }
        }
        merge(&mut obj, &applied);
        default_object(kind, &mut obj);
        match managers.iter_mut().find(|m| m.is(&manager, "Apply", None)) {
            Some(m) => m.fields = paths,
            None => managers.push(me),
        }
        managers.retain(|m| !m.fields.is_empty());
        if let Some(r) = validate(kind, &obj) {
            return r;
        }
        let after_owners: Vec<_> =
            managers.iter().map(|m| (m.name.clone(), m.fields.clone())).collect();
        if strip_managed_fields(&obj) == before && after_owners == before_owners {
            // A no-op apply writes nothing and keeps the resourceVersion.
            return reply(200, &st.obj.clone());
        }
        self.write_update(kind, &ns, &name, obj, managers, &manager)
    }

    /// JSON merge patch (RFC 7386), or a strategic merge patch: the same, except that lists of
    /// named items (containers, env, volumes, ...) merge item by item.
    fn merge_patch(&mut self, t: &Target, req: &Request) -> Reply {
        let strategic = req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/strategic-merge-patch+json"));
        let json_patch = req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json-patch+json"));
        let kind = t.kind;
        let ns = t.ns.clone().unwrap_or_default();
        let name = t.name.clone().unwrap_or_default();
        let decoded = serde_json::from_slice::<Value>(&req.body);
        let patch = match decoded {
            Ok(p @ Value::Object(_)) if !json_patch => p,
            Ok(Value::Array(_)) if json_patch => Value::Null,
            _ => {
                return bad_request(&format!(
                    "the body of the request could not be decoded as a JSON {}patch",
                    if json_patch { "" } else { "merge " }
                ))
            }
        };
        let Some(st) = self.objects.get(&(kind, ns.clone(), name.clone())) else {
            return not_found(kind, &name);
        };
        let mut obj = st.obj.clone();
        let mut managers = st.managers.clone();
        let mut patch = patch;
        if json_patch {
            // RFC 6902 (`kubectl rollout undo` sends one): the fields it touches stand for the
            // patch when ownership changes hands.
            let ops: Vec<Value> = serde_json::from_slice(&req.body).unwrap_or_default();
            match apply_json_patch(&mut obj, &ops) {
                Ok(touched) => patch = touched,
                Err(e) => return status(422, "Invalid", &e, None),
            }
        } else {
            if strategic {
                strip_directives(&mut patch);
            }
            json_merge_patch(&mut obj, &patch, strategic);
        }
        for k in ["kind", "apiVersion"] {
            obj[k] = st.obj[k].clone();
        }
        for k in ["name", "namespace", "uid", "creationTimestamp", "resourceVersion", "generation"]
        {
            match st.obj["metadata"].get(k) {
                Some(v) => obj["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        default_object(kind, &mut obj);
        if let Some(r) = validate(kind, &obj) {
            return r;
        }
        let updater = request_manager(req);
        take_ownership(&mut managers, &st.obj, &obj, &managed_part(&patch), &updater, kind);
        if strip_managed_fields(&obj) == strip_managed_fields(&st.obj) {
            return reply(200, &st.obj.clone());
        }
        self.write_update(kind, &ns, &name, obj, managers, &updater)
    }

    /// PUT: replaces the object, with optimistic concurrency on metadata.resourceVersion.
    fn update(&mut self, t: &Target, req: &Request) -> Reply {
        let kind = t.kind;
        let ns = t.ns.clone().unwrap_or_default();
        let name = t.name.clone().unwrap_or_default();
        let body = match parse_body(req, kind) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(st) = self.objects.get(&(kind, ns.clone(), name.clone())) else {
            return not_found(kind, &name);
        };
        let sent_rv = text(&body, "/metadata/resourceVersion");
        if !sent_rv.is_empty() && sent_rv != text(&st.obj, "/metadata/resourceVersion") {
            return status(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                    kind.qualified()
                ),
                Some(details(kind, Some(&name))),
            );
        }
        let managed = managed_part(&body);
        let mut obj = st.obj.clone();
        if kind == Kind::ConfigMap {
            // An update replaces the whole content: keys not sent are gone.
            for k in ["data", "binaryData"] {
                if managed.get(k).is_none() {
                    obj.as_object_mut().expect("an object").remove(k);
                }
            }
        }
        for (k, v) in managed.as_object().into_iter().flatten() {
            if k == "metadata" {
                for f in ["labels", "annotations"] {
                    match v.get(f) {
                        Some(x) => obj["metadata"][f] = x.clone(),
                        None => {
                            if let Some(m) = obj["metadata"].as_object_mut() {
                                m.remove(f);
                            }
                        }
                    }
                }
            } else {
                obj[k] = v.clone();
            }
        }
        default_object(kind, &mut obj);
        if let Some(r) = validate(kind, &obj) {
            return r;
        }
        let mut managers = st.managers.clone();
        let updater = request_manager(req);
        take_ownership(&mut managers, &st.obj, &obj, &managed, &updater, kind);
        self.write_update(kind, &ns, &name, obj, managers, &updater)
    }

    fn write_update(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        mut obj: Value,
        mut managers: Vec<Manager>,
        writer: &str,
    ) -> Reply {
        let old = self.get(kind, ns, name).cloned().unwrap_or(Value::Null);
        if kind.generational() && obj["spec"] != old["spec"] {
            bump_generation(&mut obj);
        }
        let now = now_iso();
        for m in managers.iter_mut().filter(|m| m.name == writer) {
            m.time = now.clone();
        }
        let out = self.put(kind, ns, name, obj, managers);
        if kind == Kind::Deployment {
            self.schedule(OBSERVE_DELAY, Task::Reconcile(ns.into(), name.into()));
        }
        reply(200, &out)
    }

    fn delete(&mut self, t: &Target) -> Reply {
        let kind = t.kind;
        let ns = t.ns.clone().unwrap_or_default();
        let name = t.name.clone().unwrap_or_default();
        let Some(obj) = self.get(kind, &ns, &name).cloned() else {
            return not_found(kind, &name);
        };
        match kind {
            Kind::Namespace => {
                let keys: Vec<Key> = self.objects.keys().filter(|k| k.1 == name).cloned().collect();
                for k in keys {
                    self.remove(k.0, &k.1, &k.2);
                }
                self.rollouts.retain(|k, _| k.0 != name);
            }
            Kind::Deployment => {
                // Garbage collection takes the dependents: ReplicaSets, and their pods.
                let uid = text(&obj, "/metadata/uid");
                for rs in self.owned(Kind::ReplicaSet, &ns, &uid) {
                    let rs_uid = text(&rs, "/metadata/uid");
                    for pod in self.owned(Kind::Pod, &ns, &rs_uid) {
                        self.remove(Kind::Pod, &ns, &text(&pod, "/metadata/name"));
                    }
                    self.remove(Kind::ReplicaSet, &ns, &text(&rs, "/metadata/name"));
                }
                self.rollouts.remove(&(ns.clone(), name.clone()));
            }
            Kind::ReplicaSet => {
                let uid = text(&obj, "/metadata/uid");
                for pod in self.owned(Kind::Pod, &ns, &uid) {
                    self.remove(Kind::Pod, &ns, &text(&pod, "/metadata/name"));
                }
            }
            _ => {}
        }
        self.remove(kind, &ns, &name);
        if kind == Kind::Pod {
            // The ReplicaSet replaces a deleted pod.
            if let Some(rs) = controller_of(&obj) {
                if let Some(dep) = self.get(Kind::ReplicaSet, &ns, &rs).and_then(controller_of) {
                    self.reconcile(&ns, &dep);
                }
            }
        }
        let mut d = details(kind, Some(&name));
        d["uid"] = obj["metadata"]["uid"].clone();
        reply(
            200,
            &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d }),
        )
    }
}

/// The 422 the API server gives for invalid PATCH query options.
fn invalid_patch_options(field: &str, reason: &str, message: &str) -> Reply {
    status(
        422,
        "Invalid",
        &format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {message}"),
        Some(json!({
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [{ "reason": reason, "message": message, "field": field }],
        })),
    )
}

fn method_not_allowed() -> Reply {
    let (reason, message) = reason_for(405);
    status(405, reason, message, Some(json!({})))
}

fn path_not_found() -> Reply {
    let (reason, message) = reason_for(404);
    status(404, reason, message, Some(json!({})))
}

fn version() -> Value {
    let mut v: Value = serde_json::from_str(VERSION).expect("fixtures are JSON");
    // The fixture is a v1.32 server's answer; this fake serves the v1.33 API.
    for (k, x) in [
        ("major", "1"),
        ("minor", "33"),
        ("emulationMajor", "1"),
        ("emulationMinor", "33"),
        ("minCompatibilityMajor", "1"),
        ("minCompatibilityMinor", "32"),
        ("gitVersion", "v1.33.0"),
        ("platform", "linux/amd64"),
    ] {
        v[k] = json!(x);
    }
    v
}

fn parse_body(req: &Request, kind: Kind) -> Result<Value, Reply> {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(b @ Value::Object(_)) => b,
        _ => {
            return Err(bad_request(
                "the body of the request could not be decoded as a JSON object",
            ))
        }
    };
    let api_version = text(&body, "/apiVersion");
    if !api_version.is_empty() && api_version != kind.api_version() {
        return Err(bad_request(&format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            kind.api_version()
        )));
    }
    let k = text(&body, "/kind");
    if !k.is_empty() && k != kind.kind() {
        return Err(bad_request(&format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            kind.kind()
        )));
    }
    Ok(body)
}

fn check_namespace(body: &Value, ns: &str) -> Option<Reply> {
    let body_ns = text(body, "/metadata/namespace");
    (!body_ns.is_empty() && !ns.is_empty() && body_ns != ns).then(|| {
        bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    })
}

/// The field manager of a non-apply write: `fieldManager`, else the client's name from its
/// User-Agent, as the API server derives it.
fn request_manager(req: &Request) -> String {
    if let Some(m) = req.q("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = req.header("user-agent").unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").to_string()
}

fn conflict(conflicts: &[(String, FieldPath)]) -> Reply {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({ "reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": dotted(p) }))
        .collect();
    let message = if let [(m, p)] = conflicts {
        format!("Apply failed with 1 conflict: conflict with {m}: {}", dotted(p))
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (m, p) in conflicts {
            by_manager.entry(m).or_default().push(dotted(p));
        }
        let mut lines = Vec::new();
        for (m, paths) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    status(409, "Conflict", &message, Some(json!({ "causes": causes })))
}

/// A non-apply write takes the fields it set from their former owners.
fn take_ownership(
    managers: &mut Vec<Manager>,
    old: &Value,
    new: &Value,
    sent: &Value,
    updater: &str,
    kind: Kind,
) {
    let paths = leaves_of(sent);
    for p in &paths {
        if get_path(old, p) != get_path(new, p) {
            for m in managers.iter_mut() {
                m.fields.remove(p);
            }
        }
    }
    let kept: BTreeSet<FieldPath> =
        paths.into_iter().filter(|p| get_path(new, p).is_some()).collect();
    for m in managers.iter_mut() {
        m.fields.retain(|p| get_path(new, p).is_some());
    }
    match managers.iter_mut().find(|m| m.is(updater, "Update", None)) {
        Some(m) => m.fields.extend(kept),
        None => managers.push(Manager {
            name: updater.to_string(),
            operation: "Update",
            api_version: kind.api_version().into(),
            subresource: None,
            time: now_iso(),
            fields: kept,
        }),
    }
    managers.retain(|m| !m.fields.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

struct Selector {
    labels: Vec<LabelReq>,
    /// (field, equal?, value)
    fields: Vec<(String, bool, String)>,
}

impl Selector {
    fn from_request(kind: Kind, req: &Request) -> Result<Selector, Reply> {
        let labels = match req.q("labelSelector") {
            Some(s) => parse_labels(s)
                .map_err(|e| bad_request(&format!("unable to parse requirement: {e}")))?,
            None => Vec::new(),
        };
        let fields = match req.q("fieldSelector") {
            Some(s) => parse_fields(kind, s).map_err(|e| bad_request(&e))?,
            None => Vec::new(),
        };
        Ok(Selector { labels, fields })
    }

    fn matches(&self, o: &Value) -> bool {
        let labels = o.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(f, eq, v)| {
                let path = if f == "source" {
                    "/source/component".to_string()
                } else {
                    format!("/{}", f.replace('.', "/"))
                };
                let actual = match o.pointer(&path) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(x) => x.to_string(),
                };
                (actual == *v) == *eq
            })
    }
}

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn parse_labels(s: &str) -> Result<Vec<LabelReq>, String> {
    let set = |v: &str| -> Result<Vec<String>, String> {
        let inner = v
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or(format!("bad set {v:?}"))?;
        Ok(inner.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
    };
    split_top(s)
        .into_iter()
        .map(|p| {
            if let Some((k, v)) = p.split_once("!=") {
                Ok(LabelReq::Ne(k.trim().into(), v.trim().into()))
            } else if let Some((k, v)) = p.split_once("==") {
                Ok(LabelReq::Eq(k.trim().into(), v.trim().into()))
            } else if let Some((k, v)) = p.split_once('=') {
                Ok(LabelReq::Eq(k.trim().into(), v.trim().into()))
            } else if let Some((k, v)) = p.split_once(" notin ") {
                Ok(LabelReq::NotIn(k.trim().into(), set(v)?))
            } else if let Some((k, v)) = p.split_once(" in ") {
                Ok(LabelReq::In(k.trim().into(), set(v)?))
            } else if let Some(k) = p.strip_prefix('!') {
                Ok(LabelReq::NotExists(k.trim().into()))
            } else if p.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                Ok(LabelReq::Exists(p))
            } else {
                Err(format!("{p:?}"))
            }
        })
        .collect()
}

/// The field labels the API server supports per kind.
fn field_labels(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Event => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        Kind::Pod => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        Kind::ReplicaSet => &["status.replicas"],
        Kind::Namespace => &["status.phase"],
        _ => &[],
    }
}

fn parse_fields(kind: Kind, s: &str) -> Result<Vec<(String, bool, String)>, String> {
    split_top(s)
        .into_iter()
        .map(|p| {
            let (f, eq, v) = if let Some((f, v)) = p.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = p.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = p.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{p}'; can't understand '{p}'"));
            };
            let f = f.trim();
            if !["metadata.name", "metadata.namespace"].contains(&f)
                && !field_labels(kind).contains(&f)
            {
                return Err(format!("field label not supported: {f}"));
            }
            Ok((f.to_string(), eq, v.trim().to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------------

struct Watch {
    kind: Kind,
    ns: Option<String>,
    sel: Selector,
    /// The resourceVersion delivered up to.
    last: u64,
    /// Lines to send before any change.
    initial: Vec<String>,
    deadline: Instant,
    bookmarks: bool,
}

fn event_line(kind_of_change: &str, obj: &Value) -> String {
    let mut s = json!({ "type": kind_of_change, "object": obj }).to_string();
    s.push('\n');
    s
}

fn chunk(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(format!("{:x}\r\n", line.len()).as_bytes());
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl State {
    /// The watch's lines for changes after `w.last`, advancing it; `Err` with an ERROR line
    /// when the history no longer reaches back that far.
    fn changes_for(&self, w: &mut Watch) -> Result<Vec<String>, String> {
        if w.last < self.compacted {
            let e = status_body(
                410,
                "Expired",
                &format!("too old resource version: {} ({})", w.last, self.rv),
                None,
            );
            return Err(event_line("ERROR", &e));
        }
        let from = self.history.partition_point(|c| c.rv <= w.last);
        let mut lines = Vec::new();
        for c in self.history.range(from..) {
            w.last = c.rv;
            if c.kind != w.kind || w.ns.as_ref().is_some_and(|ns| *ns != c.ns) {
                continue;
            }
            // An object that stops (starts) matching the selectors is DELETED (ADDED) for
            // this watch, as the watch cache does.
            let now = w.sel.matches(&c.obj);
            let before = c.prev.as_ref().is_some_and(|p| w.sel.matches(p));
            let t = match (c.kind_of_change, before, now) {
                ("DELETED", _, true) => "DELETED",
                ("DELETED", _, false) => continue,
                ("ADDED", _, true) => "ADDED",
                (_, true, true) => "MODIFIED",
                (_, false, true) => "ADDED",
                (_, true, false) => "DELETED",
                _ => continue,
            };
            lines.push(event_line(t, &c.obj));
        }
        Ok(lines)
    }
}

/// Streams a watch as chunked JSON lines, one event a line, pushing each change as it is made
/// until the timeout or stop. Returns whether the connection can serve another request.
fn stream_watch(sh: &Shared, w: &mut TcpStream, mut watch: Watch) -> bool {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut out = head.as_bytes().to_vec();
    for line in std::mem::take(&mut watch.initial) {
        chunk(&mut out, &line);
    }
    if w.write_all(&out).and_then(|_| w.flush()).is_err() {
        return false;
    }
    loop {
        let batch = {
            let mut s = sh.lock();
            loop {
                if s.stopped {
                    return false;
                }
                match s.changes_for(&mut watch) {
                    Err(line) => break Some((vec![line], true)),
                    Ok(lines) if !lines.is_empty() => break Some((lines, false)),
                    Ok(_) => {}
                }
                let now = Instant::now();
                if now >= watch.deadline {
                    break None;
                }
                s = sh
                    .changed
                    .wait_timeout(s, watch.deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        let Some((lines, end)) = batch else { break };
        let mut out = Vec::new();
        for line in &lines {
            chunk(&mut out, line);
        }
        if w.write_all(&out).and_then(|_| w.flush()).is_err() {
            return false;
        }
        if end {
            watch.bookmarks = false;
            break;
        }
    }
    let mut out = Vec::new();
    if watch.bookmarks {
        let line = sh.lock().bookmark(watch.kind, false);
        chunk(&mut out, &line);
    }
    out.extend_from_slice(b"0\r\n\r\n");
    w.write_all(&out).and_then(|_| w.flush()).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

impl State {
    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn suffix(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| ALPHANUMS[(self.random() % ALPHANUMS.len() as u64) as usize] as char)
            .collect()
    }

    fn uid(&mut self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(kind, ns.to_string(), name.to_string())).map(|s| &s.obj)
    }

    /// Objects of a kind, in one namespace or all, ordered by namespace and name.
    fn all(&self, kind: Kind, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.0 == kind && ns.is_none_or(|n| k.1 == n))
            .map(|(_, s)| s.obj.clone())
            .collect()
    }

    /// Objects of a kind in `ns` whose controller is the object with `uid`.
    fn owned(&self, kind: Kind, ns: &str, uid: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.0 == kind && k.1 == ns)
            .map(|(_, s)| &s.obj)
            .filter(|o| {
                o.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(
                    |refs| refs.iter().any(|r| r["uid"] == uid && r["controller"] == true),
                )
            })
            .cloned()
            .collect()
    }

    /// A new object's kind, apiVersion and server-set metadata.
    fn fresh(&mut self, kind: Kind, ns: &str, name: &str) -> Value {
        let mut meta = json!({ "name": name, "uid": self.uid(), "creationTimestamp": now_iso() });
        if kind.namespaced() {
            meta["namespace"] = json!(ns);
        }
        if kind.generational() {
            meta["generation"] = json!(1);
        }
        json!({ "kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": meta })
    }

    /// Stores an object: bumps the resourceVersion, renders managedFields, records the change
    /// for watches. Returns the stored object.
    fn put(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        mut obj: Value,
        managers: Vec<Manager>,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        let meta = obj["metadata"].as_object_mut().expect("objects have metadata");
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if managers.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert(
                "managedFields".into(),
                Value::Array(managers.iter().map(Manager::render).collect()),
            );
        }
        let key = (kind, ns.to_string(), name.to_string());
        let prev = self.objects.get(&key).map(|s| s.obj.clone());
        let kind_of_change = if prev.is_some() { "MODIFIED" } else { "ADDED" };
        self.record(Change {
            rv,
            kind,
            ns: ns.to_string(),
            kind_of_change,
            obj: obj.clone(),
            prev,
        });
        self.objects.insert(key, Stored { obj: obj.clone(), managers });
        obj
    }

    fn remove(&mut self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let st = self.objects.remove(&(kind, ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let mut obj = st.obj;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if kind == Kind::Pod {
            obj["metadata"]["deletionTimestamp"] = json!(now_iso());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        let rv = self.rv;
        self.record(Change {
            rv,
            kind,
            ns: ns.to_string(),
            kind_of_change: "DELETED",
            obj: obj.clone(),
            prev: None,
        });
        Some(obj)
    }

    fn record(&mut self, c: Change) {
        self.history.push_back(c);
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    fn schedule(&mut self, after: Duration, task: Task) {
        let at = Instant::now() + after;
        if let Task::Reconcile(ns, name) = &task {
            let pending = self.tasks.iter().any(|(t, _, x)| {
                *t <= at && matches!(x, Task::Reconcile(n2, m2) if n2 == ns && m2 == name)
            });
            if pending {
                return;
            }
        }
        self.next_task += 1;
        self.tasks.push((at, self.next_task, task));
    }

    fn run(&mut self, task: Task) {
        match task {
            Task::Reconcile(ns, name) => self.reconcile(&ns, &name),
            Task::Container { ns, pod, index } => self.container_progress(&ns, &pod, index),
        }
    }

    fn edit_configmap(&mut self, ns: &str, name: &str, key: &str, value: &str) {
        let st = self.objects.get(&(Kind::ConfigMap, ns.into(), name.into())).expect("it exists");
        let (mut obj, managers) = (st.obj.clone(), st.managers.clone());
        obj["data"][key] = json!(value);
        self.put(Kind::ConfigMap, ns, name, obj, managers);
    }

    fn create_namespace(&mut self, name: &str) -> Value {
        let mut obj = self.fresh(Kind::Namespace, "", name);
        obj["metadata"]["labels"] = json!({ "kubernetes.io/metadata.name": name });
        obj["spec"] = json!({ "finalizers": ["kubernetes"] });
        obj["status"] = json!({ "phase": "Active" });
        let managers = vec![Manager {
            name: "kube-apiserver".into(),
            operation: "Update",
            api_version: "v1".into(),
            subresource: None,
            time: now_iso(),
            fields: [path(&["metadata", "labels", "kubernetes.io/metadata.name"])].into(),
        }];
        self.put(Kind::Namespace, "", name, obj, managers)
    }

    /// Fills what the API server sets on a new object.
    fn default_new(&mut self, kind: Kind, obj: &mut Value) {
        match kind {
            Kind::Deployment => {
                obj["status"] = json!({});
            }
            Kind::Service => {
                let spec = object_at(obj, "spec");
                if !spec.contains_key("clusterIP") {
                    self.next_ip += 1;
                    let ip = format!("10.96.{}.{}", self.next_ip / 250, self.next_ip % 250 + 1);
                    spec.insert("clusterIP".into(), json!(ip));
                }
                let ip = spec["clusterIP"].clone();
                spec.entry("clusterIPs").or_insert_with(|| json!([ip]));
            }
            Kind::Event => {
                let now = now_iso();
                for k in ["firstTimestamp", "lastTimestamp"] {
                    if obj.get(k).is_none() {
                        obj[k] = json!(now);
                    }
                }
                if obj.get("count").is_none() {
                    obj["count"] = json!(1);
                }
                if obj.get("eventTime").is_none() {
                    obj["eventTime"] = Value::Null;
                }
            }
            _ => {}
        }
        default_object(kind, obj);
    }
}

/// Defaults the API server applies on every write, and the status an ingress or gateway
/// controller writes for what it routes.
fn default_object(kind: Kind, obj: &mut Value) {
    match kind {
        Kind::Ingress => {
            // An ingress controller of the class gives it an address.
            let classed = obj["spec"]["ingressClassName"].is_string();
            let lb = &mut obj["status"]["loadBalancer"];
            if classed && lb.get("ingress").is_none() {
                *lb = json!({ "ingress": [{ "ip": "10.96.75.29" }] });
            } else if !lb.is_object() {
                *lb = json!({});
            }
        }
        Kind::HttpRoute => {
            let spec = object_at(obj, "spec");
            for p in spec.get_mut("parentRefs").and_then(Value::as_array_mut).into_iter().flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    p.entry("group").or_insert(json!("gateway.networking.k8s.io"));
                    p.entry("kind").or_insert(json!("Gateway"));
                }
            }
            for rule in spec.get_mut("rules").and_then(Value::as_array_mut).into_iter().flatten() {
                let Some(rule) = rule.as_object_mut() else { continue };
                rule.entry("matches")
                    .or_insert_with(|| json!([{ "path": { "type": "PathPrefix", "value": "/" } }]));
                for b in
                    rule.get_mut("backendRefs").and_then(Value::as_array_mut).into_iter().flatten()
                {
                    if let Some(b) = b.as_object_mut() {
                        b.entry("group").or_insert(json!(""));
                        b.entry("kind").or_insert(json!("Service"));
                        b.entry("weight").or_insert(json!(1));
                    }
                }
            }
            // The gateway controller accepts it for each parent, at this generation.
            let generation = obj["metadata"]["generation"].clone();
            let parents: Vec<Value> = obj["spec"]["parentRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let condition = |t: &str, message: &str| json!({
                        "lastTransitionTime": now_iso(),
                        "message": message,
                        "observedGeneration": generation,
                        "reason": t,
                        "status": "True",
                        "type": t,
                    });
                    json!({
                        "conditions": [condition("Accepted", "Route was valid"), condition("ResolvedRefs", "All references resolved")],
                        "controllerName": "xone.test/fake-gateway-controller",
                        "parentRef": p,
                    })
                })
                .collect();
            obj["status"] = json!({ "parents": parents });
        }
        Kind::Deployment => {
            let spec = object_at(obj, "spec");
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
            if let Some(st) = strategy.as_object_mut() {
                st.entry("type").or_insert(json!("RollingUpdate"));
                if st["type"] == "RollingUpdate" {
                    let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        ru.entry("maxSurge").or_insert(json!("25%"));
                        ru.entry("maxUnavailable").or_insert(json!("25%"));
                    }
                }
            }
            default_template(spec);
        }
        Kind::ReplicaSet => default_template(object_at(obj, "spec")),
        Kind::Pod => default_pod_spec(object_at(obj, "spec")),
        Kind::Service => {
            let spec = object_at(obj, "spec");
            spec.entry("type").or_insert(json!("ClusterIP"));
            spec.entry("sessionAffinity").or_insert(json!("None"));
            spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
            spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
            spec.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert(json!("TCP"));
                    let port = p.get("port").cloned().unwrap_or(Value::Null);
                    p.entry("targetPort").or_insert(port);
                }
            }
            obj.as_object_mut()
                .expect("an object")
                .entry("status")
                .or_insert_with(|| json!({ "loadBalancer": {} }));
        }
        _ => {}
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if !template.is_object() {
        return;
    }
    // v1.33 still serializes the template's unset creationTimestamp as null.
    object_at(template, "metadata").entry("creationTimestamp").or_insert(Value::Null);
    default_pod_spec(object_at(template, "spec"));
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("securityContext").or_insert(json!({}));
    spec.entry("schedulerName").or_insert(json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else { continue };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            c.entry("terminationMessagePath").or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let tag = image.rsplit('/').next().unwrap_or_default();
            let latest = !tag.contains(':') && !image.contains('@') || tag.ends_with(":latest");
            c.entry("imagePullPolicy").or_insert(json!(if latest {
                "Always"
            } else {
                "IfNotPresent"
            }));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert(json!("TCP"));
                }
            }
        }
    }
}

/// The checks the API server's validation makes on a Deployment that the controller relies on.
fn validate(kind: Kind, obj: &Value) -> Option<Reply> {
    if kind != Kind::Deployment {
        return None;
    }
    let mut causes: Vec<(String, String, String)> = Vec::new();
    let selector = obj.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
    let labels = obj.pointer("/spec/template/metadata/labels").and_then(Value::as_object);
    match selector {
        None if obj.pointer("/spec/selector").is_none() => causes.push((
            "FieldValueRequired".into(),
            "Required value".into(),
            "spec.selector".into(),
        )),
        Some(sel) => {
            let matches = sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
            if !matches {
                let shown = labels
                    .map(|l| {
                        l.iter().map(|(k, v)| format!("{k:?}:{v}")).collect::<Vec<_>>().join(", ")
                    })
                    .unwrap_or_default();
                causes.push((
                    "FieldValueInvalid".into(),
                    format!("Invalid value: map[string]string{{{shown}}}: `selector` does not match template `labels`"),
                    "spec.template.metadata.labels".into(),
                ));
            }
        }
        None => {}
    }
    match obj.pointer("/spec/template/spec/containers").and_then(Value::as_array) {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                for f in ["name", "image"] {
                    if text(c, &format!("/{f}")).is_empty() {
                        causes.push((
                            "FieldValueRequired".into(),
                            "Required value".into(),
                            format!("spec.template.spec.containers[{i}].{f}"),
                        ));
                    }
                }
            }
        }
        _ => causes.push((
            "FieldValueRequired".into(),
            "Required value".into(),
            "spec.template.spec.containers".into(),
        )),
    }
    if causes.is_empty() {
        return None;
    }
    let name = text(obj, "/metadata/name");
    let each: Vec<String> = causes.iter().map(|(_, m, f)| format!("{f}: {m}")).collect();
    let listed = if each.len() == 1 { each[0].clone() } else { format!("[{}]", each.join(", ")) };
    Some(status(
        422,
        "Invalid",
        &format!("Deployment.apps {name:?} is invalid: {listed}"),
        Some(json!({
            "name": name,
            "group": "apps",
            "kind": "Deployment",
            "causes": causes.iter().map(|(r, m, f)| json!({ "reason": r, "message": m, "field": f })).collect::<Vec<_>>(),
        })),
    ))
}

// ---------------------------------------------------------------------------------------------
// The Deployment and ReplicaSet controllers, the scheduler and the kubelet.
// ---------------------------------------------------------------------------------------------

/// `deployment.kubernetes.io/*` annotations and kubectl's last applied configuration stay on
/// the Deployment; every other annotation is copied to its new ReplicaSet.
fn copied_annotation(k: &str) -> bool {
    !k.starts_with("deployment.kubernetes.io/")
        && k != "kubectl.kubernetes.io/last-applied-configuration"
}

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";

impl State {
    /// One sync of a Deployment, as kube-controller-manager's deployment controller does it.
    fn reconcile(&mut self, ns: &str, name: &str) {
        let Some(d) = self.get(Kind::Deployment, ns, name).cloned() else { return };
        let uid = text(&d, "/metadata/uid");
        let generation = num(&d, "/metadata/generation");
        let replicas = num(&d, "/spec/replicas");
        let template = d["spec"]["template"].clone();
        let hash = template_hash(&template);
        let recreate = d["spec"]["strategy"]["type"] == "Recreate";
        let surge = if recreate {
            0
        } else {
            scaled(&d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], replicas, true)
        };
        let max_unavailable = if recreate {
            0
        } else {
            scaled(&d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], replicas, false)
        };

        let owned = self.owned(Kind::ReplicaSet, ns, &uid);
        let max_revision = owned.iter().map(revision_of).max().unwrap_or(0);
        let existing = owned
            .iter()
            .find(|rs| rs.pointer(&format!("/metadata/labels/{HASH_LABEL}")) == Some(&json!(hash)));
        let mut created_new = false;
        let new_rs = match existing {
            Some(rs) => text(rs, "/metadata/name"),
            None => {
                created_new = true;
                self.create_replicaset(&d, &hash, max_revision + 1)
            }
        };
        // The new ReplicaSet carries the newest revision; one taken back into use (a rollback)
        // records the numbers it had.
        {
            let key = (Kind::ReplicaSet, ns.to_string(), new_rs.clone());
            let st = self.objects.get(&key).expect("the new ReplicaSet exists");
            let mut rs = st.obj.clone();
            let rev = revision_of(&rs);
            let annotations = object_at(object_at_value(&mut rs, "metadata"), "annotations");
            let mut changed = false;
            if rev < max_revision {
                let mut history: Vec<String> = annotations
                    .get(REVISION_HISTORY)
                    .and_then(Value::as_str)
                    .map(|h| h.split(',').map(str::to_string).filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default();
                history.push(rev.to_string());
                annotations.insert(REVISION_HISTORY.into(), json!(history.join(",")));
                annotations.insert(REVISION.into(), json!((max_revision + 1).to_string()));
                changed = true;
            }
            for (k, v) in d["metadata"]["annotations"].as_object().into_iter().flatten() {
                if copied_annotation(k) && annotations.get(k) != Some(v) {
                    annotations.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
            for (k, v) in [(DESIRED, replicas), (MAX, replicas + surge)] {
                if annotations.get(k) != Some(&json!(v.to_string())) {
                    annotations.insert(k.into(), json!(v.to_string()));
                    changed = true;
                }
            }
            if changed {
                let managers = st.managers.clone();
                self.put(Kind::ReplicaSet, ns, &new_rs, rs, managers);
            }
        }
        let revision = self.get(Kind::ReplicaSet, ns, &new_rs).map(revision_of).unwrap_or(1);

        let olds: Vec<String> = self
            .owned(Kind::ReplicaSet, ns, &uid)
            .iter()
            .map(|rs| text(rs, "/metadata/name"))
            .filter(|n| *n != new_rs)
            .collect();
        if recreate {
            // Recreate: the old pods go first, then the new ones come.
            for old in &olds {
                self.scale(ns, name, old, 0);
            }
            self.scale(ns, name, &new_rs, replicas);
        } else {
            // RollingUpdate: the old ReplicaSets keep their pods until every new pod is ready.
            self.scale(ns, name, &new_rs, replicas);
            let ready = self.ready_pods(ns, &new_rs);
            if ready >= replicas && self.pods_of(ns, &new_rs).len() as i64 == replicas {
                for old in &olds {
                    self.scale(ns, name, old, 0);
                }
            }
        }
        self.cleanup_history(ns, &uid, &new_rs, num(&d, "/spec/revisionHistoryLimit"));

        // Status, as calculateStatus and syncRolloutStatus write it.
        let mut total = 0;
        let mut ready = 0;
        for rs in self.owned(Kind::ReplicaSet, ns, &uid) {
            let rs_name = text(&rs, "/metadata/name");
            total += self.pods_of(ns, &rs_name).len() as i64;
            ready += self.ready_pods(ns, &rs_name);
        }
        let updated = self.pods_of(ns, &new_rs).len() as i64;
        let available = ready;
        let mut status = Map::new();
        status.insert("observedGeneration".into(), json!(generation));
        for (k, v) in [
            ("replicas", total),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", (replicas - available).max(0)),
        ] {
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        let before = &d["status"];
        let was = |k: &str| before.get(k).and_then(Value::as_i64).unwrap_or(0);
        let mut conditions: Vec<Value> =
            before.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        let stamp = now_iso();
        if available >= replicas - max_unavailable {
            let m = "Deployment has minimum availability.";
            set_condition(
                &mut conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                m,
                &stamp,
            );
        } else {
            let m = "Deployment does not have minimum availability.";
            set_condition(
                &mut conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                m,
                &stamp,
            );
        }
        let key = (ns.to_string(), name.to_string());
        let now = Instant::now();
        let deadline = Duration::from_secs(num(&d, "/spec/progressDeadlineSeconds").max(0) as u64);
        let r = self
            .rollouts
            .entry(key.clone())
            .or_insert(Rollout { progress_at: now, completed: None });
        let has_deadline = deadline > Duration::ZERO;
        if created_new && has_deadline {
            let m = format!("Created new replica set {new_rs:?}");
            set_condition(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &m,
                &stamp,
            );
            r.progress_at = now;
        }
        let reason = |conds: &[Value]| {
            conds
                .iter()
                .find(|c| c["type"] == "Progressing")
                .map(|c| text(c, "/reason"))
                .unwrap_or_default()
        };
        let complete = updated == replicas && available == replicas && total == replicas;
        // A Deployment whose pods are all of the newest ReplicaSet and that already showed it
        // available (a scale, a resync) keeps its Progressing condition as it is.
        let settled = total == updated && reason(&conditions) == "NewReplicaSetAvailable";
        if has_deadline && !settled {
            let progressed = updated > was("updatedReplicas")
                || total - updated < was("replicas") - was("updatedReplicas")
                || ready > was("readyReplicas")
                || available > was("availableReplicas");
            let current = reason(&conditions);
            if complete {
                let m = format!("ReplicaSet {new_rs:?} has successfully progressed.");
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &m,
                    &stamp,
                );
            } else if progressed {
                // Progress refreshes lastUpdateTime, from which the deadline counts.
                let m = format!("ReplicaSet {new_rs:?} is progressing.");
                let since = conditions
                    .iter()
                    .find(|c| c["type"] == "Progressing" && c["status"] == "True")
                    .map(|c| c["lastTransitionTime"].clone());
                conditions.retain(|c| c["type"] != "Progressing");
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &m,
                    &stamp,
                );
                if let (Some(since), Some(c)) =
                    (since, conditions.iter_mut().find(|c| c["type"] == "Progressing"))
                {
                    c["lastTransitionTime"] = since;
                }
                r.progress_at = now;
            } else if current == "ProgressDeadlineExceeded"
                || (current != "NewReplicaSetAvailable" && now >= r.progress_at + deadline)
            {
                let m = format!("ReplicaSet {new_rs:?} has timed out progressing.");
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &m,
                    &stamp,
                );
            }
        }
        let progress_at = r.progress_at;
        let waiting = has_deadline
            && !complete
            && !["NewReplicaSetAvailable", "ProgressDeadlineExceeded"]
                .contains(&reason(&conditions).as_str());
        if waiting {
            // Look again when the deadline passes.
            let due = (progress_at + deadline).saturating_duration_since(now);
            self.schedule(due, Task::Reconcile(ns.into(), name.into()));
        }
        status.insert("conditions".into(), Value::Array(conditions));
        let status = Value::Object(status);

        let Some(st) = self.objects.get(&(Kind::Deployment, ns.to_string(), name.to_string()))
        else {
            return;
        };
        let mut obj = st.obj.clone();
        let mut managers = st.managers.clone();
        let annotations = object_at(object_at_value(&mut obj, "metadata"), "annotations");
        let rev_changed = annotations.get(REVISION) != Some(&json!(revision.to_string()));
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        if obj["status"] == status && !rev_changed {
            return;
        }
        obj["status"] = status;
        let revision_field = [path(&["metadata", "annotations", REVISION])].into();
        own(&mut managers, "kube-controller-manager", None, "apps/v1", revision_field);
        let status_fields = leaves_of(&json!({ "status": obj["status"] }));
        own(&mut managers, "kube-controller-manager", Some("status"), "apps/v1", status_fields);
        let stored = self.put(Kind::Deployment, ns, name, obj, managers);
        if rollout_complete(&stored) {
            let r = self.rollouts.get_mut(&key).expect("tracked above");
            if r.completed.is_none_or(|(g, _)| g != generation) {
                r.completed = Some((generation, SystemTime::now()));
            }
        }
    }

    fn create_replicaset(&mut self, d: &Value, hash: &str, revision: i64) -> String {
        let ns = text(d, "/metadata/namespace");
        let dep = text(d, "/metadata/name");
        let name = format!("{dep}-{hash}");
        let mut template = d["spec"]["template"].clone();
        object_at(object_at_value(&mut template, "metadata"), "labels")
            .insert(HASH_LABEL.into(), json!(hash));
        let mut selector = d["spec"]["selector"].clone();
        if let Some(m) = selector.as_object_mut() {
            let ml = m.entry("matchLabels").or_insert_with(|| json!({}));
            if let Some(ml) = ml.as_object_mut() {
                ml.insert(HASH_LABEL.into(), json!(hash));
            }
        }
        let mut annotations: Map<String, Value> = d["metadata"]["annotations"]
            .as_object()
            .map(|a| {
                a.iter()
                    .filter(|(k, _)| copied_annotation(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        let mut obj = self.fresh(Kind::ReplicaSet, &ns, &name);
        obj["metadata"]["labels"] = template["metadata"]["labels"].clone();
        obj["metadata"]["annotations"] = Value::Object(annotations);
        obj["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": dep,
            "uid": d["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
        let mut spec = json!({ "replicas": 0, "selector": selector, "template": template });
        if let Some(m) = d["spec"].get("minReadySeconds") {
            spec["minReadySeconds"] = m.clone();
        }
        obj["spec"] = spec;
        obj["status"] = json!({ "replicas": 0 });
        default_object(Kind::ReplicaSet, &mut obj);
        let mut managers = Vec::new();
        let mut managed = json!({ "metadata": {
            "labels": obj["metadata"]["labels"],
            "annotations": obj["metadata"]["annotations"],
            "ownerReferences": obj["metadata"]["ownerReferences"],
        }, "spec": obj["spec"] });
        strip_nulls(&mut managed);
        own(&mut managers, "kube-controller-manager", None, "apps/v1", leaves_of(&managed));
        own(
            &mut managers,
            "kube-controller-manager",
            Some("status"),
            "apps/v1",
            leaves_of(&json!({ "status": obj["status"] })),
        );
        self.put(Kind::ReplicaSet, &ns, &name, obj, managers);
        name
    }

    /// Sets a ReplicaSet's replicas (recording the Deployment's ScalingReplicaSet event) and
    /// brings its pods to that number.
    fn scale(&mut self, ns: &str, dep: &str, rs: &str, n: i64) {
        let key = (Kind::ReplicaSet, ns.to_string(), rs.to_string());
        let Some(st) = self.objects.get(&key) else { return };
        let from = num(&st.obj, "/spec/replicas");
        if from != n {
            let mut obj = st.obj.clone();
            let managers = st.managers.clone();
            obj["spec"]["replicas"] = json!(n);
            bump_generation(&mut obj);
            self.put(Kind::ReplicaSet, ns, rs, obj, managers);
            if let Some(d) = self.get(Kind::Deployment, ns, dep).cloned() {
                let up = if n > from { "up" } else { "down" };
                self.record_event(
                    &d,
                    None,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!("Scaled {up} replica set {rs} from {from} to {n}"),
                    "deployment-controller",
                    None,
                );
            }
        }
        self.sync_replicaset(ns, rs);
    }

    /// The ReplicaSet controller: as many pods as spec.replicas, and the status.
    fn sync_replicaset(&mut self, ns: &str, rs_name: &str) {
        let Some(rs) = self.get(Kind::ReplicaSet, ns, rs_name).cloned() else { return };
        let want = num(&rs, "/spec/replicas");
        let mut pods = self.pods_of(ns, rs_name);
        while (pods.len() as i64) < want {
            let pod = self.create_pod(&rs);
            pods.push(pod);
        }
        if pods.len() as i64 > want {
            // Not-ready pods go first, then the newest.
            pods.sort_by_key(|p| {
                (pod_ready(p), std::cmp::Reverse(text(p, "/metadata/creationTimestamp")))
            });
            let extra = pods.len() - want as usize;
            for p in pods.drain(..extra) {
                let pod_name = text(&p, "/metadata/name");
                self.remove(Kind::Pod, ns, &pod_name);
                self.record_event(
                    &rs,
                    None,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {pod_name}"),
                    "replicaset-controller",
                    None,
                );
            }
        }
        self.replicaset_status(ns, rs_name);
    }

    fn replicaset_status(&mut self, ns: &str, rs_name: &str) {
        let key = (Kind::ReplicaSet, ns.to_string(), rs_name.to_string());
        let pods = self.pods_of(ns, rs_name);
        let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
        let Some(st) = self.objects.get(&key) else { return };
        let mut status = json!({ "replicas": pods.len() });
        for (k, v) in [
            ("fullyLabeledReplicas", pods.len() as i64),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
        ] {
            if v != 0 {
                status[k] = json!(v);
            }
        }
        status["observedGeneration"] = st.obj["metadata"]["generation"].clone();
        if st.obj["status"] == status {
            return;
        }
        let mut obj = st.obj.clone();
        let mut managers = st.managers.clone();
        obj["status"] = status;
        own(
            &mut managers,
            "kube-controller-manager",
            Some("status"),
            "apps/v1",
            leaves_of(&json!({ "status": obj["status"] })),
        );
        self.put(Kind::ReplicaSet, ns, rs_name, obj, managers);
    }

    /// Deletes the oldest scaled-down ReplicaSets beyond spec.revisionHistoryLimit.
    fn cleanup_history(&mut self, ns: &str, uid: &str, new_rs: &str, limit: i64) {
        let mut old: Vec<(i64, String)> = self
            .owned(Kind::ReplicaSet, ns, uid)
            .iter()
            .filter(|rs| text(rs, "/metadata/name") != new_rs && num(rs, "/spec/replicas") == 0)
            .filter(|rs| self.pods_of(ns, &text(rs, "/metadata/name")).is_empty())
            .map(|rs| (revision_of(rs), text(rs, "/metadata/name")))
            .collect();
        old.sort();
        while old.len() as i64 > limit.max(0) {
            let (_, name) = old.remove(0);
            self.remove(Kind::ReplicaSet, ns, &name);
        }
    }

    fn pods_of(&self, ns: &str, rs: &str) -> Vec<Value> {
        match self.get(Kind::ReplicaSet, ns, rs) {
            Some(r) => self.owned(Kind::Pod, ns, &text(r, "/metadata/uid")),
            None => Vec::new(),
        }
    }

    fn ready_pods(&self, ns: &str, rs: &str) -> i64 {
        self.pods_of(ns, rs).iter().filter(|p| pod_ready(p)).count() as i64
    }

    fn behavior(&self, image: &str) -> PodBehavior {
        self.behaviors
            .iter()
            .find(|(m, _)| image.contains(m.as_str()))
            .map(|(_, b)| b.clone())
            .unwrap_or(PodBehavior::Ready { after: Duration::from_millis(150) })
    }

    /// A pod of a ReplicaSet, scheduled at once to the fake node, its containers being created.
    fn create_pod(&mut self, rs: &Value) -> Value {
        let ns = text(rs, "/metadata/namespace");
        let rs_name = text(rs, "/metadata/name");
        let name = format!("{rs_name}-{}", self.suffix(5));
        let template = &rs["spec"]["template"];
        let mut obj = self.fresh(Kind::Pod, &ns, &name);
        obj["metadata"]["generateName"] = json!(format!("{rs_name}-"));
        obj["metadata"]["labels"] = template["metadata"]["labels"].clone();
        if let Some(a) = template["metadata"].get("annotations") {
            obj["metadata"]["annotations"] = a.clone();
        }
        obj["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs_name,
            "uid": rs["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
        let mut spec = template["spec"].clone();
        let volume = format!("kube-api-access-{}", self.suffix(5));
        {
            let s = spec.as_object_mut().expect("a pod spec");
            s.entry("serviceAccountName").or_insert(json!("default"));
            let sa = s["serviceAccountName"].clone();
            s.insert("serviceAccount".into(), sa);
            // The scheduler honours a required node affinity on the hostname; otherwise every
            // pod goes to the one node.
            let allowed: Vec<String> = s
                .get("affinity")
                .and_then(|a| {
                    a.pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions")
                })
                .and_then(Value::as_array)
                .and_then(|exprs| exprs.iter().find(|e| e["key"] == "kubernetes.io/hostname" && e["operator"] == "In"))
                .and_then(|e| e["values"].as_array())
                .map(|v| v.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let node = match allowed.len() {
                0 => NODE.to_string(),
                n => allowed
                    [name.len().wrapping_add(name.bytes().map(usize::from).sum::<usize>()) % n]
                    .clone(),
            };
            s.insert("nodeName".into(), json!(node));
            s.entry("enableServiceLinks").or_insert(json!(true));
            s.entry("preemptionPolicy").or_insert(json!("PreemptLowerPriority"));
            s.entry("priority").or_insert(json!(0));
            let tolerations = s.entry("tolerations").or_insert_with(|| json!([]));
            if let Some(t) = tolerations.as_array_mut() {
                for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
                    t.push(json!({ "effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300 }));
                }
            }
            let volumes = s.entry("volumes").or_insert_with(|| json!([]));
            if let Some(v) = volumes.as_array_mut() {
                v.push(json!({
                    "name": volume,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                            { "configMap": { "items": [{ "key": "ca.crt", "path": "ca.crt" }], "name": "kube-root-ca.crt" } },
                            { "downwardAPI": { "items": [{ "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" }, "path": "namespace" }] } },
                        ],
                    },
                }));
            }
            if let Some(cs) = s.get_mut("containers").and_then(Value::as_array_mut) {
                for c in cs.iter_mut() {
                    let mounts =
                        object_at(c, "").entry("volumeMounts").or_insert_with(|| json!([]));
                    if let Some(m) = mounts.as_array_mut() {
                        m.push(json!({ "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": volume, "readOnly": true }));
                    }
                }
            }
        }
        default_pod_spec(spec.as_object_mut().expect("a pod spec"));
        self.next_ip += 1;
        let ip = format!("10.244.0.{}", self.next_ip % 250 + 2);
        let now = now_iso();
        let containers: Vec<Value> = spec["containers"].as_array().cloned().unwrap_or_default();
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": false,
                    "restartCount": 0,
                    "started": false,
                    "state": { "waiting": { "reason": "ContainerCreating" } },
                    "lastState": {},
                })
            })
            .collect();
        let names: Vec<String> = containers.iter().map(|c| text(c, "/name")).collect();
        obj["status"] = json!({
            "phase": "Pending",
            "conditions": pod_conditions(&now, false, &names),
            "hostIP": "192.168.49.2",
            "hostIPs": [{ "ip": "192.168.49.2" }],
            "podIP": ip,
            "podIPs": [{ "ip": ip }],
            "startTime": now,
            "containerStatuses": statuses,
            "qosClass": qos_class(&containers),
        });
        obj["spec"] = spec;
        let mut managers = Vec::new();
        let mut managed = json!({ "metadata": {
            "generateName": obj["metadata"]["generateName"],
            "labels": obj["metadata"]["labels"],
            "ownerReferences": obj["metadata"]["ownerReferences"],
        }, "spec": template["spec"] });
        strip_nulls(&mut managed);
        own(&mut managers, "kube-controller-manager", None, "v1", leaves_of(&managed));
        own(
            &mut managers,
            "kubelet",
            Some("status"),
            "v1",
            leaves_of(&json!({ "status": obj["status"] })),
        );
        let stored = self.put(Kind::Pod, &ns, &name, obj, managers);
        self.record_event(
            rs,
            None,
            "Normal",
            "SuccessfulCreate",
            &format!("Created pod: {name}"),
            "replicaset-controller",
            None,
        );
        self.record_event(
            &stored,
            None,
            "Normal",
            "Scheduled",
            &format!("Successfully assigned {ns}/{name} to {}", text(&stored, "/spec/nodeName")),
            "default-scheduler",
            None,
        );
        for (index, c) in containers.iter().enumerate() {
            let after = match self.behavior(&text(c, "/image")) {
                PodBehavior::Ready { after } => after,
                PodBehavior::Waiting { .. } => WAITING_DELAY,
            };
            self.schedule(after, Task::Container { ns: ns.clone(), pod: name.clone(), index });
        }
        stored
    }

    /// The kubelet: a container starts and becomes ready, or gets stuck waiting, as its
    /// image's behavior says.
    fn container_progress(&mut self, ns: &str, pod: &str, index: usize) {
        let key = (Kind::Pod, ns.to_string(), pod.to_string());
        let Some(st) = self.objects.get(&key) else { return };
        let mut obj = st.obj.clone();
        let mut managers = st.managers.clone();
        let Some(c) = obj["spec"]["containers"].get(index).cloned() else { return };
        let cname = text(&c, "/name");
        let image = text(&c, "/image");
        let uid = text(&obj, "/metadata/uid");
        let now = now_iso();
        let mut events: Vec<(&str, &str, String)> = Vec::new();
        let behavior = self.behavior(&image);
        let cs = &mut obj["status"]["containerStatuses"][index];
        match &behavior {
            PodBehavior::Ready { .. } => {
                cs["containerID"] =
                    json!(format!("containerd://{}", hex(&format!("{uid}/{cname}"))));
                cs["imageID"] = json!(image_id(&image));
                cs["ready"] = json!(true);
                cs["started"] = json!(true);
                cs["state"] = json!({ "running": { "startedAt": now } });
                events.push((
                    "Normal",
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                ));
                events.push(("Normal", "Created", format!("Created container: {cname}")));
                events.push(("Normal", "Started", format!("Started container {cname}")));
            }
            PodBehavior::Waiting { reason, message } => {
                cs["state"] = json!({ "waiting": { "reason": reason, "message": message } });
                if reason == "CrashLoopBackOff" {
                    cs["containerID"] =
                        json!(format!("containerd://{}", hex(&format!("{uid}/{cname}"))));
                    cs["imageID"] = json!(image_id(&image));
                    cs["restartCount"] = json!(1);
                    cs["lastState"] = json!({ "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": now,
                        "finishedAt": now,
                        "containerID": cs["containerID"],
                    }});
                    events.push((
                        "Normal",
                        "Pulled",
                        format!("Container image {image:?} already present on machine"),
                    ));
                    events.push(("Normal", "Created", format!("Created container: {cname}")));
                    events.push(("Normal", "Started", format!("Started container {cname}")));
                    events.push((
                        "Warning",
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {cname} in pod {pod}_{ns}({uid})"
                        ),
                    ));
                } else if reason == "ImagePullBackOff" || reason == "ErrImagePull" {
                    events.push(("Normal", "Pulling", format!("Pulling image {image:?}")));
                    events.push((
                        "Warning",
                        "Failed",
                        format!("Failed to pull image {image:?}: {message}"),
                    ));
                    events.push(("Warning", "Failed", "Error: ErrImagePull".to_string()));
                    events.push(("Normal", "BackOff", format!("Back-off pulling image {image:?}")));
                    events.push(("Warning", "Failed", format!("Error: {reason}")));
                } else {
                    events.push(("Warning", "Failed", format!("Error: {message}")));
                }
            }
        }
        let statuses = obj["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
        let all_ready = statuses.iter().all(|s| s["ready"] == true);
        let any_started = statuses.iter().any(|s| s.get("containerID").is_some());
        let names: Vec<String> =
            statuses.iter().filter(|s| s["ready"] != true).map(|s| text(s, "/name")).collect();
        let was = obj["status"]["conditions"].clone();
        obj["status"]["phase"] = json!(if any_started { "Running" } else { "Pending" });
        obj["status"]["conditions"] =
            merge_conditions(&was, &pod_conditions(&now, all_ready, &names));
        own(
            &mut managers,
            "kubelet",
            Some("status"),
            "v1",
            leaves_of(&json!({ "status": obj["status"] })),
        );
        let stored = self.put(Kind::Pod, ns, pod, obj, managers);
        let field_path = format!("spec.containers{{{cname}}}");
        for (t, reason, message) in events {
            self.record_event(
                &stored,
                Some(&field_path),
                t,
                reason,
                &message,
                "kubelet",
                Some(NODE),
            );
        }
        // The owners see it at once.
        if let Some(rs) = controller_of(&stored) {
            self.replicaset_status(ns, &rs);
            if let Some(dep) = self.get(Kind::ReplicaSet, ns, &rs).and_then(controller_of) {
                self.reconcile(ns, &dep);
            }
        }
    }

    /// A core/v1 Event about `about`, as the components record them.
    #[allow(clippy::too_many_arguments)]
    fn record_event(
        &mut self,
        about: &Value,
        field_path: Option<&str>,
        kind_of_event: &str,
        reason: &str,
        message: &str,
        component: &str,
        host: Option<&str>,
    ) {
        let ns = text(about, "/metadata/namespace");
        let involved_name = text(about, "/metadata/name");
        // Named like the API server's: the involved object and the time in hex nanoseconds.
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        self.last_event = nanos.max(self.last_event + 1);
        let name = format!("{involved_name}.{:x}", self.last_event);
        let mut involved = json!({
            "kind": about["kind"],
            "namespace": ns,
            "name": involved_name,
            "uid": about["metadata"]["uid"],
            "apiVersion": about["apiVersion"],
            "resourceVersion": about["metadata"]["resourceVersion"],
        });
        if let Some(f) = field_path {
            involved["fieldPath"] = json!(f);
        }
        let mut source = json!({ "component": component });
        if let Some(h) = host {
            source["host"] = json!(h);
        }
        let now = now_iso();
        let mut obj = self.fresh(Kind::Event, &ns, &name);
        obj["involvedObject"] = involved;
        obj["reason"] = json!(reason);
        obj["message"] = json!(message);
        obj["source"] = source;
        obj["firstTimestamp"] = json!(now);
        obj["lastTimestamp"] = json!(now);
        obj["count"] = json!(1);
        obj["type"] = json!(kind_of_event);
        obj["eventTime"] = Value::Null;
        obj["reportingComponent"] = json!(component);
        obj["reportingInstance"] = json!(host.unwrap_or_default());
        let mut managers = Vec::new();
        let mut managed = obj.clone();
        for k in ["kind", "apiVersion", "eventTime"] {
            managed.as_object_mut().expect("an object").remove(k);
        }
        managed["metadata"] = json!({});
        strip_nulls(&mut managed);
        own(&mut managers, component, None, "v1", leaves_of(&managed));
        self.put(Kind::Event, &ns, &name, obj, managers);
    }
}

fn pod_conditions(now: &str, ready: bool, unready: &[String]) -> Value {
    let cond = |t: &str, ok: bool| {
        let mut c = json!({ "type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now });
        if !ok {
            c["reason"] = json!("ContainersNotReady");
            c["message"] =
                json!(format!("containers with unready status: [{}]", unready.join(" ")));
        }
        c
    };
    json!([
        { "type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": now },
        { "type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now },
        cond("Ready", ready),
        cond("ContainersReady", ready),
        { "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now },
    ])
}

/// New conditions keep the lastTransitionTime of those whose status did not change.
fn merge_conditions(old: &Value, new: &Value) -> Value {
    let mut out = new.as_array().cloned().unwrap_or_default();
    for c in out.iter_mut() {
        if let Some(o) = old.as_array().and_then(|a| a.iter().find(|o| o["type"] == c["type"])) {
            if o["status"] == c["status"] {
                c["lastTransitionTime"] = o["lastTransitionTime"].clone();
            }
        }
    }
    Value::Array(out)
}

fn set_condition(
    conds: &mut Vec<Value>,
    t: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let fresh = json!({
        "type": t,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    });
    // As the controller's SetDeploymentCondition: the same status and reason change nothing.
    match conds.iter_mut().find(|c| c["type"] == t) {
        Some(c) if c["status"] == status && c["reason"] == reason => {}
        Some(c) if c["status"] == status => {
            let since = c["lastTransitionTime"].clone();
            *c = fresh;
            c["lastTransitionTime"] = since;
        }
        Some(c) => *c = fresh,
        None if t == "Available" => conds.insert(0, fresh),
        None => conds.push(fresh),
    }
}

fn qos_class(containers: &[Value]) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let limits = &c["resources"]["limits"];
        let requests = &c["resources"]["requests"];
        any |= limits.as_object().is_some_and(|m| !m.is_empty())
            || requests.as_object().is_some_and(|m| !m.is_empty());
        for r in ["cpu", "memory"] {
            let limit = limits.get(r);
            if limit.is_none() || requests.get(r).is_some_and(|q| Some(q) != limit) {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        _ => "Burstable",
    }
}

fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The name of an object's controlling owner.
fn controller_of(o: &Value) -> Option<String> {
    o.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| text(r, "/name"))
}

fn revision_of(rs: &Value) -> i64 {
    rs.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Whether a Deployment's status shows its current generation rolled out: what
/// `kubectl rollout status` waits for.
fn rollout_complete(d: &Value) -> bool {
    let replicas = num(d, "/spec/replicas");
    let st = &d["status"];
    let n = |k: &str| st.get(k).and_then(Value::as_i64).unwrap_or(0);
    num(d, "/status/observedGeneration") == num(d, "/metadata/generation")
        && n("updatedReplicas") == replicas
        && n("availableReplicas") == replicas
        && n("replicas") == replicas
        && st["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable")
        })
}

/// maxSurge (rounded up) or maxUnavailable (rounded down) of `replicas`.
fn scaled(v: &Value, replicas: i64, up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if up => (p * replicas + 99) / 100,
            Some(p) => p * replicas / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// The pod-template-hash: a stable hash of the template (without that label) written in
/// Kubernetes' name alphabet.
fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(l) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        l.remove(HASH_LABEL);
    }
    let digest = Sha256::digest(canonical(&t).as_bytes());
    digest.as_slice()[..10]
        .iter()
        .map(|b| ALPHANUMS[*b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// JSON with object keys sorted, whatever order the maps keep.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn hex(seed: &str) -> String {
    Sha256::digest(seed.as_bytes()).as_slice().iter().map(|b| format!("{b:02x}")).collect()
}

/// `docker-pullable://REPOSITORY@sha256:...`, as the kubelet reports a pulled image.
fn image_id(image: &str) -> String {
    let repo = match image.split_once('@') {
        Some((r, _)) => r.to_string(),
        None => {
            let slash = image.rfind('/').map_or(0, |i| i + 1);
            match image[slash..].rfind(':') {
                Some(i) => image[..slash + i].to_string(),
                None => image.to_string(),
            }
        }
    };
    format!("docker-pullable://{repo}@sha256:{}", hex(image))
}

// ---------------------------------------------------------------------------------------------
// Field paths, merging, managed fields
// ---------------------------------------------------------------------------------------------

fn path(segs: &[&str]) -> FieldPath {
    segs.iter().map(|s| s.to_string()).collect()
}

fn dotted(p: &FieldPath) -> String {
    format!(".{}", p.join("."))
}

fn get_path<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, seg| cur.as_object()?.get(seg))
}

fn set_path(v: &mut Value, p: &[String], value: Value) {
    let mut cur = v;
    for seg in &p[..p.len().saturating_sub(1)] {
        cur = object_at_value(cur, seg);
    }
    if let Some(last) = p.last() {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur.as_object_mut().expect("made an object").insert(last.clone(), value);
    }
}

/// Removes a field and the maps it leaves empty.
fn remove_path(v: &mut Value, p: &[String]) {
    fn go(v: &mut Value, p: &[String]) -> bool {
        let Some(m) = v.as_object_mut() else { return false };
        match p {
            [] => false,
            [last] => {
                m.remove(last);
                m.is_empty()
            }
            [first, rest @ ..] => {
                let empty = m.get_mut(first).is_some_and(|c| go(c, rest));
                if empty {
                    m.remove(first);
                }
                m.is_empty()
            }
        }
    }
    if p.len() >= 2 {
        let (top, rest) = (&p[0], &p[1..]);
        if let Some(c) = v.get_mut(top) {
            if go(c, rest) && top != "metadata" && top != "spec" {
                v.as_object_mut().expect("an object").remove(top);
            }
        }
    } else if let (Some(m), Some(k)) = (v.as_object_mut(), p.first()) {
        m.remove(k);
    }
}

/// Apply's merge: maps merge key by key, lists and scalars are replaced.
fn merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(k) {
                    Some(dv) if dv.is_object() && v.is_object() => merge(dv, v),
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

/// RFC 7386: null removes, maps merge, anything else replaces. `strategic`: lists whose items
/// all have a name merge by name, as the strategic merge patch does for containers, env,
/// volumes and the like.
fn json_merge_patch(target: &mut Value, patch: &Value, strategic: bool) {
    let named = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(|i| i["name"].is_string()));
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("made an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    json_merge_patch(t.entry(k.clone()).or_insert(Value::Null), v, strategic);
                }
            }
        }
        Value::Array(items) if strategic && named(patch) && named(target) => {
            let t = target.as_array_mut().expect("checked an array");
            for item in items {
                match t.iter_mut().find(|x| x["name"] == item["name"]) {
                    Some(x) => json_merge_patch(x, item, true),
                    None => t.push(item.clone()),
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Drops a strategic merge patch's `$setElementOrder/...`, `$retainKeys` and like directives.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// The part of a request body that field managers own: not kind and apiVersion, not the
/// server-set metadata, not the status.
fn managed_part(body: &Value) -> Value {
    let mut b = body.clone();
    if let Some(m) = b.as_object_mut() {
        for k in ["kind", "apiVersion", "status"] {
            m.remove(k);
        }
    }
    if let Some(meta) = b.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(k);
        }
        if meta.is_empty() {
            b.as_object_mut().expect("an object").remove("metadata");
        }
    }
    strip_nulls(&mut b);
    b
}

fn strip_nulls(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
        for x in m.values_mut() {
            strip_nulls(x);
        }
    }
}

/// The leaf fields of a value: scalars, lists and empty maps.
fn leaves_of(v: &Value) -> BTreeSet<FieldPath> {
    fn go(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, c) in m {
                    prefix.push(k.clone());
                    go(c, prefix, out);
                    prefix.pop();
                }
            }
            _ if !prefix.is_empty() => {
                out.insert(prefix.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// Sets the fields an (Update) manager owns.
fn own(
    managers: &mut Vec<Manager>,
    name: &str,
    subresource: Option<&'static str>,
    api_version: &str,
    fields: BTreeSet<FieldPath>,
) {
    let time = now_iso();
    match managers.iter_mut().find(|m| m.is(name, "Update", subresource)) {
        Some(m) => {
            if m.fields != fields {
                m.fields = fields;
                m.time = time;
            }
        }
        None => managers.push(Manager {
            name: name.to_string(),
            operation: "Update",
            api_version: api_version.to_string(),
            subresource,
            time,
            fields,
        }),
    }
}

fn strip_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn bump_generation(obj: &mut Value) {
    let g = num(obj, "/metadata/generation");
    obj["metadata"]["generation"] = json!(g + 1);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// The map under `key` of an object (made one if it is not); `key` "" is the value itself.
fn object_at<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    let m = v.as_object_mut().expect("made an object");
    if key.is_empty() {
        return m;
    }
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut().expect("made an object")
}

fn object_at_value<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.is_object() {
        *v = json!({});
    }
    if key.is_empty() {
        return v;
    }
    let m = v.as_object_mut().expect("made an object");
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e
}

fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn num(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `2026-11-30T10:00:00Z` from seconds since the epoch.
fn iso(secs: i64) -> String {
    format!("{}Z", wire::date_time(secs))
}

fn now_iso() -> String {
    iso(wire::now_secs())
}
