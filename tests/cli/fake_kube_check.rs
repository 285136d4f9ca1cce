//! Drives the fake Kubernetes API server with the real kube-rs client, through a kubeconfig,
//! and checks what it serves against the real API server's objects in `fixtures/kubernetes/`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::fake_kube::{FakeKube, PodBehavior, USER};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Config};
use serde_json::{json, Value};

const NS: &str = "pay-test";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fakekube-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client through a kubeconfig the fake wrote; `token` replaces the right one.
async fn make_client(fake: &FakeKube, context: Option<&str>, token: Option<&str>) -> Client {
    let dir = scratch();
    let path = dir.join("config");
    fake.write_kubeconfig(&path, &[("test", NS), ("other", "default")]);
    if let Some(t) = token {
        let text = std::fs::read_to_string(&path).unwrap().replace(&fake.token(), t);
        std::fs::write(&path, text).unwrap();
    }
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let options = KubeConfigOptions { context: context.map(str::to_string), ..Default::default() };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
    // The fake speaks plain http: no CA roots needed (a machine may have none).
    config.root_cert = Some(Vec::new());
    std::fs::remove_dir_all(&dir).ok();
    Client::try_from(config).unwrap()
}

async fn setup() -> (FakeKube, Client) {
    let fake = FakeKube::start();
    fake.add_namespace(NS);
    let c = make_client(&fake, None, None).await;
    (fake, c)
}

fn web(image: &str, replicas: i32) -> Deployment {
    deployment("web", image, replicas, json!({}))
}

fn deployment(name: &str, image: &str, replicas: i32, extra_spec: Value) -> Deployment {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": name, "image": image }] },
            },
        },
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        d["spec"][k] = v.clone();
    }
    serde_json::from_value(d).unwrap()
}

fn apply() -> PatchParams {
    PatchParams::apply("xone")
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn rolled_out(fake: &FakeKube, name: &str) {
    until(&format!("{name} to roll out"), Duration::from_secs(10), || {
        fake.completed_at(NS, name).is_some()
    })
    .await;
}

fn api_error(e: kube::Error) -> kube::error::ErrorResponse {
    match e {
        kube::Error::Api(e) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn complete(d: &Deployment) -> bool {
    let (Some(spec), Some(st)) = (&d.spec, &d.status) else { return false };
    let want = spec.replicas.unwrap_or(1);
    st.observed_generation == d.metadata.generation
        && st.updated_replicas.unwrap_or(0) == want
        && st.available_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
        && st.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        })
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

/// A plain HTTP/1.1 request with the bearer token; the status, headers and (de-chunked) body.
fn raw(
    fake: &FakeKube,
    method: &str,
    target: &str,
    ctype: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let addr = fake.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n",
        fake.token(),
        body.len()
    );
    if let Some(c) = ctype {
        req.push_str(&format!("Content-Type: {c}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, mut rest) = text.split_once("\r\n\r\n").unwrap();
    let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = String::new();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            body.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
    } else {
        body = rest.to_string();
    }
    (code, head.to_string(), body)
}

fn raw_json(fake: &FakeKube, method: &str, target: &str) -> (u16, Value) {
    let (code, _, body) = raw(fake, method, target, None, "");
    (code, serde_json::from_str(&body).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Apply, get, list
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn apply_creates_and_the_controller_rolls_out() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = api
        .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 2)))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert!(d.metadata.uid.is_some() && d.metadata.creation_timestamp.is_some());
    let mf = d.metadata.managed_fields.clone().unwrap();
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("xone"), Some("Apply"))
    );
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));
    // The answer to the PATCH predates the controller's sync.
    assert_eq!(d.status.as_ref().and_then(|s| s.observed_generation), None);
    // Defaults as the API server sets them.
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.strategy.as_ref().unwrap().type_.as_deref(), Some("RollingUpdate"));
    let c = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));

    rolled_out(&fake, "web").await;
    let d = api.get("web").await.unwrap();
    assert!(complete(&d), "{:?}", d.status);
    let st = d.status.clone().unwrap();
    assert_eq!(
        (st.ready_replicas, st.available_replicas, st.observed_generation),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(annotation(&d.metadata, "deployment.kubernetes.io/revision").as_deref(), Some("1"));
    let conds = st.conditions.unwrap();
    let available = conds.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("True", Some("MinimumReplicasAvailable"))
    );

    // Lists and selectors.
    let names = |l: kube::core::ObjectList<Deployment>| {
        l.items.into_iter().map(|d| d.metadata.name.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(names(api.list(&ListParams::default().labels("app=web")).await.unwrap()), ["web"]);
    assert!(names(api.list(&ListParams::default().labels("app=other")).await.unwrap()).is_empty());
    assert!(names(api.list(&ListParams::default().labels("app!=web")).await.unwrap()).is_empty());
    assert_eq!(
        names(api.list(&ListParams::default().labels("app in (api,web)")).await.unwrap()),
        ["web"]
    );
    assert_eq!(
        names(api.list(&ListParams::default().fields("metadata.name=web")).await.unwrap()),
        ["web"]
    );
    let all: Api<Deployment> = Api::all(client.clone());
    assert_eq!(names(all.list(&ListParams::default()).await.unwrap()), ["web"]);

    // The ReplicaSet and its pods.
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let rss = rs_api.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let rs_name = rs.metadata.name.clone().unwrap();
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert!(hash.len() >= 9 && hash.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Deployment", "web", Some(true))
    );
    assert_eq!(owner.uid, d.metadata.uid.clone().unwrap());
    assert_eq!(annotation(&rs.metadata, "deployment.kubernetes.io/revision").as_deref(), Some("1"));
    assert_eq!(
        annotation(&rs.metadata, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("2")
    );
    assert_eq!(
        annotation(&rs.metadata, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("3")
    );
    assert_eq!(rs.status.as_ref().unwrap().ready_replicas, Some(2));
    assert_eq!(
        rs.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap()["pod-template-hash"],
        hash
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items;
    assert_eq!(list.len(), 2);
    for p in &list {
        let name = p.metadata.name.clone().unwrap();
        assert!(
            name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6,
            "{name}"
        );
        let st = p.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        let cs = &st.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert!(
            cs.image_id.starts_with("docker-pullable://registry.example/web@sha256:"),
            "{}",
            cs.image_id
        );
        assert_eq!(p.metadata.owner_references.as_ref().unwrap()[0].name, rs_name);
        assert_eq!(p.metadata.labels.as_ref().unwrap()["pod-template-hash"], hash);
    }
    let running =
        pods.list(&ListParams::default().fields("status.phase=Running")).await.unwrap().items;
    assert_eq!(running.len(), 2);
    assert_eq!(fake.pods(NS).len(), 2);
    assert_eq!(fake.replicasets(NS).len(), 1);

    // Services and namespaces.
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
    }))
    .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let created = services.patch("web", &apply(), &Patch::Apply(&svc)).await.unwrap();
    assert!(created.spec.unwrap().cluster_ip.unwrap().starts_with("10.96."));
    assert!(fake.service(NS, "web").is_some());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get(NS).await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    let again: Namespace = serde_json::from_value(json!({ "metadata": { "name": NS } })).unwrap();
    let e = api_error(namespaces.create(&PostParams::default(), &again).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, format!("namespaces \"{NS}\" already exists"));
    let fresh: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "fresh" } })).unwrap();
    namespaces.create(&PostParams::default(), &fresh).await.unwrap();
    assert!(fake.namespaces().contains(&"fresh".to_string()));

    // Another context of the same kubeconfig defaults to its own namespace.
    let other = make_client(&fake, Some("other"), None).await;
    assert_eq!(other.default_namespace(), "default");

    // A merge patch changes an annotation without a new generation.
    let patched = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "note": "hi" } } })),
        )
        .await
        .unwrap();
    assert_eq!(annotation(&patched.metadata, "note").as_deref(), Some("hi"));
    assert_eq!(patched.metadata.generation, Some(1));

    // Strategic merge patches merge containers by name, as `kubectl set env/image` rely on.
    let containers =
        |v: Value| json!({ "spec": { "template": { "spec": { "containers": [v] } } } });
    let env = json!({ "name": "web", "env": [{ "name": "MODE", "value": "fast" }] });
    api.patch("web", &PatchParams::default(), &Patch::Strategic(containers(env))).await.unwrap();
    let image = json!({ "name": "web", "image": "registry.example/web:1.1" });
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(containers(image)))
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(3));
    let c = &patched.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.example/web:1.1"));
    assert_eq!(c.env.as_ref().unwrap()[0].name, "MODE");
    rolled_out(&fake, "web").await;
}

#[tokio::test]
async fn new_templates_make_revisions_and_an_old_template_is_an_undo() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    api.patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 2))).await.unwrap();
    rolled_out(&fake, "web").await;
    let first =
        rs_api.list(&ListParams::default()).await.unwrap().items[0].metadata.name.clone().unwrap();

    let mut v2 = web("registry.example/web:2.0", 2);
    v2.metadata.annotations =
        Some([("kubernetes.io/change-cause".to_string(), "deploy 2.0".to_string())].into());
    let d = api.patch("web", &apply(), &Patch::Apply(&v2)).await.unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    assert_eq!(fake.completed_at(NS, "web"), None, "a new generation is not rolled out yet");
    rolled_out(&fake, "web").await;
    let d = api.get("web").await.unwrap();
    assert_eq!(annotation(&d.metadata, "deployment.kubernetes.io/revision").as_deref(), Some("2"));
    let rss = rs_api.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rss.len(), 2);
    let second = rss.iter().find(|r| r.metadata.name.as_deref() != Some(&first)).unwrap();
    let second_name = second.metadata.name.clone().unwrap();
    assert_eq!(
        annotation(&second.metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("2")
    );
    assert_eq!(
        annotation(&second.metadata, "kubernetes.io/change-cause").as_deref(),
        Some("deploy 2.0")
    );
    let old = rss.iter().find(|r| r.metadata.name.as_deref() == Some(&first)).unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    let pods = fake.pods(NS);
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| p["metadata"]["name"].as_str().unwrap().starts_with(&second_name)));

    // Re-applying the first template takes its ReplicaSet back as revision 3.
    let d = api
        .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 2)))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(3));
    rolled_out(&fake, "web").await;
    let rss = rs_api.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rss.len(), 2, "the old ReplicaSet is reused");
    let back = rss.iter().find(|r| r.metadata.name.as_deref() == Some(&first)).unwrap();
    assert_eq!(
        annotation(&back.metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&back.metadata, "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(2));
    let d = api.get("web").await.unwrap();
    assert_eq!(annotation(&d.metadata, "deployment.kubernetes.io/revision").as_deref(), Some("3"));
    assert!(fake
        .pods(NS)
        .iter()
        .all(|p| p["metadata"]["name"].as_str().unwrap().starts_with(&first)));

    // Scaling changes the current ReplicaSet only. Meanwhile Progressing keeps saying
    // NewReplicaSetAvailable, as on a real cluster: only the counts tell it is not done.
    let d = api
        .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 3)))
        .await
        .unwrap();
    let generation = json!(d.metadata.generation.unwrap());
    until("the scale to be observed", Duration::from_secs(5), || {
        fake.deployment(NS, "web").is_some_and(|d| d["status"]["observedGeneration"] == generation)
    })
    .await;
    let scaling = fake.deployment(NS, "web").unwrap();
    let progressing = scaling["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    assert_eq!(scaling["status"]["availableReplicas"], 2);
    assert_eq!(fake.completed_at(NS, "web"), None);
    rolled_out(&fake, "web").await;
    assert_eq!(fake.pods(NS).len(), 3);
    assert_eq!(rs_api.list(&ListParams::default()).await.unwrap().items.len(), 2);

    // Recreate: the old pods go before the new ones come.
    let recreate = deployment(
        "api",
        "registry.example/api:1",
        2,
        json!({ "strategy": { "type": "Recreate" } }),
    );
    api.patch("api", &apply(), &Patch::Apply(&recreate)).await.unwrap();
    rolled_out(&fake, "api").await;
    let v2 = deployment(
        "api",
        "registry.example/api:2",
        2,
        json!({ "strategy": { "type": "Recreate" } }),
    );
    api.patch("api", &apply(), &Patch::Apply(&v2)).await.unwrap();
    let api_pods = |fake: &FakeKube| {
        fake.pods(NS)
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "api")
            .collect::<Vec<_>>()
    };
    until("the old pods to go", Duration::from_secs(5), || {
        api_pods(&fake)
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "registry.example/api:2")
    })
    .await;
    rolled_out(&fake, "api").await;
    assert_eq!(api_pods(&fake).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_watcher_sees_the_rollout_complete_within_milliseconds() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watched = api.clone();
    let task = tokio::spawn(async move {
        let cfg = watcher::Config::default().fields("metadata.name=web");
        let mut s = watcher(watched, cfg).applied_objects().boxed();
        while let Some(d) = s.try_next().await.unwrap() {
            if complete(&d) {
                tx.send((SystemTime::now(), d.metadata.generation)).unwrap();
            }
        }
    });
    // The pods' raw watch: ADDED and MODIFIED as they are made.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut pod_events =
        pods.watch(&WatchParams::default().labels("app=web"), &rv).await.unwrap().boxed();
    // Let the watcher list and start watching before anything exists.
    tokio::time::sleep(Duration::from_millis(100)).await;

    for (generation, image) in [(1, "registry.example/web:1.0"), (2, "registry.example/web:2.0")] {
        api.patch("web", &apply(), &Patch::Apply(web(image, 2))).await.unwrap();
        let (seen, g) =
            tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!(g, Some(generation));
        let done = fake.completed_at(NS, "web").expect("complete");
        let lag = seen.duration_since(done).unwrap_or_default();
        assert!(
            lag < Duration::from_millis(50),
            "the watcher saw the completed rollout {lag:?} late"
        );
    }

    let (mut added, mut ready_modified, mut deleted) = (0, 0, 0);
    while deleted < 2 {
        let e = tokio::time::timeout(Duration::from_secs(5), pod_events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match e {
            WatchEvent::Added(p) => {
                assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
                added += 1;
            }
            WatchEvent::Modified(p) => {
                if p.status.unwrap().container_statuses.unwrap()[0].ready {
                    ready_modified += 1;
                }
            }
            WatchEvent::Deleted(_) => deleted += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((added, ready_modified), (4, 4));
    task.abort();

    // What kube's watcher asked for: a list of up to 500, then a watch from its version.
    let requests = fake.requests();
    let list = requests
        .iter()
        .find(|(m, p)| m == "GET" && p.contains("/deployments?") && !p.contains("watch="))
        .unwrap();
    assert!(
        list.1.contains("limit=500") && list.1.contains("fieldSelector=metadata.name%3Dweb"),
        "{list:?}"
    );
    let watch = requests
        .iter()
        .find(|(_, p)| p.contains("/deployments?") && p.contains("watch=true"))
        .unwrap();
    for part in ["timeoutSeconds=290", "allowWatchBookmarks=true", "resourceVersion="] {
        assert!(watch.1.contains(part), "{watch:?} lacks {part}");
    }
}

#[tokio::test]
async fn a_watch_ends_at_its_timeout_with_a_bookmark_and_on_stop() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let wp = WatchParams::default().timeout(1);
    let start = Instant::now();
    let events: Vec<_> = api.watch(&wp, "0").await.unwrap().try_collect().await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(matches!(events.last(), Some(WatchEvent::Bookmark(_))), "{events:?}");

    let mut s = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fake.stop();
        fake
    });
    let end = tokio::time::timeout(Duration::from_secs(5), s.next()).await.unwrap();
    assert!(!matches!(end, Some(Ok(_))), "{end:?}");
    let fake = stopper.await.unwrap();
    assert!(TcpStream::connect(fake.url.trim_start_matches("http://")).is_err());
}

// ---------------------------------------------------------------------------------------------
// Stuck rollouts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pods_stuck_pulling_their_image_get_warning_events() {
    let (fake, client) = setup().await;
    let message = "Back-off pulling image \"registry.example/broken:1\"";
    fake.pod_behavior(
        "broken",
        PodBehavior::Waiting { reason: "ImagePullBackOff".into(), message: message.into() },
    );
    fake.pod_behavior(
        "crash",
        PodBehavior::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 10s restarting failed container".into(),
        },
    );
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.patch("web", &apply(), &Patch::Apply(web("registry.example/broken:1", 1))).await.unwrap();
    api.patch(
        "api",
        &apply(),
        &Patch::Apply(deployment("api", "registry.example/crash:1", 1, json!({}))),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let waiting = |p: &Pod| {
        p.status.as_ref()?.container_statuses.as_ref()?[0]
            .state
            .as_ref()?
            .waiting
            .as_ref()?
            .reason
            .clone()
    };
    let mut stuck = Vec::new();
    let start = Instant::now();
    while stuck.len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "pods never got stuck");
        stuck = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| {
                matches!(waiting(p).as_deref(), Some("ImagePullBackOff" | "CrashLoopBackOff"))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let broken = stuck.iter().find(|p| waiting(p).as_deref() == Some("ImagePullBackOff")).unwrap();
    let st = broken.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let w = st.container_statuses.as_ref().unwrap()[0].state.clone().unwrap().waiting.unwrap();
    assert_eq!(w.message.as_deref(), Some(message));

    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let name = broken.metadata.name.clone().unwrap();
    let about = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap()
        .items;
    let failed: Vec<_> = about.iter().filter(|e| e.reason.as_deref() == Some("Failed")).collect();
    assert!(failed.iter().all(|e| e.type_.as_deref() == Some("Warning")));
    // Events list in the order they were recorded: the pull's failure, then the error.
    let messages: Vec<_> = failed.iter().map(|e| e.message.clone().unwrap()).collect();
    assert!(
        messages[0].starts_with("Failed to pull image \"registry.example/broken:1\": "),
        "{messages:?}"
    );
    assert_eq!(messages[1..], ["Error: ErrImagePull", "Error: ImagePullBackOff"]);
    let failed = failed[0];
    assert_eq!(failed.involved_object.kind.as_deref(), Some("Pod"));
    assert_eq!(failed.involved_object.field_path.as_deref(), Some("spec.containers{web}"));
    assert!(about.iter().all(|e| e.involved_object.name.as_deref() == Some(&name)));

    let crashing =
        stuck.iter().find(|p| waiting(p).as_deref() == Some("CrashLoopBackOff")).unwrap();
    let crash_events = events
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={},type=Warning",
            crashing.metadata.name.clone().unwrap()
        )))
        .await
        .unwrap()
        .items;
    assert!(crash_events.iter().any(|e| e.reason.as_deref() == Some("BackOff")
        && e.message.as_deref().unwrap().starts_with("Back-off restarting failed container")));
    assert_eq!(crashing.status.as_ref().unwrap().phase.as_deref(), Some("Running"));

    let scaling = events
        .list(&ListParams::default().fields("involvedObject.kind=Deployment"))
        .await
        .unwrap()
        .items;
    assert!(scaling.iter().any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")));
    assert_eq!(fake.completed_at(NS, "web"), None);
    let d = api.get("web").await.unwrap();
    let st = d.status.unwrap();
    assert_eq!(st.unavailable_replicas, Some(1));
    let available = st.conditions.unwrap().into_iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("False", Some("MinimumReplicasUnavailable"))
    );
    assert_eq!(
        fake.events(NS).len(),
        events.list(&ListParams::default()).await.unwrap().items.len()
    );
}

#[tokio::test]
async fn a_rollout_past_its_progress_deadline_is_marked_failed() {
    let (fake, client) = setup().await;
    fake.pod_behavior(
        "broken",
        PodBehavior::Waiting { reason: "ErrImagePull".into(), message: "not found".into() },
    );
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let start = Instant::now();
    let d =
        deployment("web", "registry.example/broken:1", 1, json!({ "progressDeadlineSeconds": 1 }));
    api.patch("web", &apply(), &Patch::Apply(&d)).await.unwrap();
    let progressing = |fake: &FakeKube| {
        let d = fake.deployment(NS, "web")?;
        d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Progressing").cloned()
    };
    until("the progress deadline", Duration::from_secs(5), || {
        progressing(&fake).is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
    })
    .await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    let c = progressing(&fake).unwrap();
    assert_eq!(c["status"], "False");
    let rs = fake.replicasets(NS)[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(c["message"], format!("ReplicaSet \"{rs}\" has timed out progressing."));
    let got = api.get("web").await.unwrap();
    assert!(!complete(&got));
}

// ---------------------------------------------------------------------------------------------
// Server-side apply: ownership and conflicts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn applying_a_field_another_manager_owns_conflicts_unless_forced() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let mut d = web("registry.example/web:1.0", 2);
    d.metadata.annotations = Some([("team".to_string(), "pay".to_string())].into());
    api.patch("web", &apply(), &Patch::Apply(&d)).await.unwrap();
    rolled_out(&fake, "web").await;

    // A field left out of the next apply is removed.
    let d = api
        .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 2)))
        .await
        .unwrap();
    assert_eq!(annotation(&d.metadata, "team"), None);
    assert_eq!(d.metadata.generation, Some(1));

    fake.set_field_owner(NS, "web", "kubectl-scale", ".spec.replicas", json!(5));
    rolled_out(&fake, "web").await;
    assert_eq!(fake.pods(NS).len(), 5);

    let err = api
        .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 3)))
        .await
        .unwrap_err();
    let e = api_error(err);
    assert_eq!((e.code, e.reason.as_str(), e.status.as_str()), (409, "Conflict", "Failure"));
    assert_eq!(e.message, "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas");

    // The same value is no conflict: the field is then shared.
    let shared = api
        .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 5)))
        .await
        .unwrap();
    let owners = |d: &Deployment| {
        d.metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|m| {
                m.fields_v1.as_ref().is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
            })
            .map(|m| m.manager.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let mut o = owners(&shared);
    o.sort();
    assert_eq!(o, ["kubectl-scale", "xone"]);

    let forced = api
        .patch("web", &apply().force(), &Patch::Apply(web("registry.example/web:1.0", 3)))
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(owners(&forced), ["xone"]);
    assert!(forced
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .all(|m| m.manager.as_deref() != Some("kubectl-scale")));
    rolled_out(&fake, "web").await;
    assert_eq!(fake.pods(NS).len(), 3);
    // Now xone's to change freely.
    api.patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 2))).await.unwrap();

    // Two conflicting fields, one manager.
    fake.set_field_owner(NS, "web", "hpa", ".spec.replicas", json!(4));
    fake.set_field_owner(NS, "web", "hpa", ".spec.minReadySeconds", json!(1));
    let mut d = web("registry.example/web:1.0", 2);
    d.spec.as_mut().unwrap().min_ready_seconds = Some(0);
    let e = api_error(api.patch("web", &apply(), &Patch::Apply(&d)).await.unwrap_err());
    assert_eq!(
        e.message,
        "Apply failed with 2 conflicts: conflicts with \"hpa\" using apps/v1:\n- .spec.minReadySeconds\n- .spec.replicas"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn errors_are_statuses_kube_parses() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);

    let e = api_error(api.get("nope").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "deployments.apps \"nope\" not found");

    let ghost: Api<Deployment> = Api::namespaced(client.clone(), "ghost");
    let e = api_error(
        ghost
            .patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 1)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "namespaces \"ghost\" not found")
    );
    // Listing a namespace that does not exist is just empty.
    assert!(ghost.list(&ListParams::default()).await.unwrap().items.is_empty());

    let intruder = client_for_token(&fake, "not-the-token").await;
    let e = api_error(
        Api::<Deployment>::namespaced(intruder, NS).list(&ListParams::default()).await.unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );

    fake.refuse("patch", "deployments", NS);
    let e = api_error(
        api.patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 1)))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        format!("deployments.apps \"web\" is forbidden: User \"{USER}\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"{NS}\"")
    );
    fake.refuse("list", "pods", NS);
    let e = api_error(
        Api::<Pod>::namespaced(client.clone(), NS).list(&ListParams::default()).await.unwrap_err(),
    );
    assert_eq!(
        e.message,
        format!("pods is forbidden: User \"{USER}\" cannot list resource \"pods\" in API group \"\" in the namespace \"{NS}\"")
    );
    fake.allow_all();

    let invalid: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "bad" },
        "spec": { "selector": { "matchLabels": { "app": "x" } },
                  "template": { "metadata": { "labels": { "app": "y" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } } },
    }))
    .unwrap();
    let e = api_error(api.patch("bad", &apply(), &Patch::Apply(&invalid)).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.starts_with(
            "Deployment.apps \"bad\" is invalid: spec.template.metadata.labels: Invalid value"
        ),
        "{}",
        e.message
    );

    api.patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 1))).await.unwrap();
    let (code, _, body) = raw(
        &fake,
        "PATCH",
        &format!("/apis/apps/v1/namespaces/{NS}/deployments/web"),
        Some("application/apply-patch+yaml"),
        &serde_json::to_string(&web("registry.example/web:1.0", 1)).unwrap(),
    );
    assert_eq!(code, 422);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    fake.fail("GET", "/deployments/web", 503, 1, Some(1));
    let e = api_error(api.get("web").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"));
    api.get("web").await.unwrap();
    fake.fail("GET", "/api/v1/namespaces/default/pods", 429, 1, Some(3));
    let (code, head, body) = raw(&fake, "GET", "/api/v1/namespaces/default/pods", None, "");
    assert_eq!(code, 429);
    assert!(head.contains("Retry-After: 3"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["reason"].as_str(), body["details"]["retryAfterSeconds"].as_i64()),
        (Some("TooManyRequests"), Some(3))
    );

    // A watch from a version the history no longer holds: 410 Gone, as an ERROR event.
    fake.compact();
    let mut s = api.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    match s.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with("too old resource version: 1 ("), "{}", e.message);
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // kube's watcher starts over with a new list and goes on.
    let mut w = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
    let first =
        tokio::time::timeout(Duration::from_secs(5), w.try_next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("web"));
}

async fn client_for_token(fake: &FakeKube, token: &str) -> Client {
    make_client(fake, None, Some(token)).await
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the real API server's objects
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/kubernetes/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Maps whose keys are the user's content, not the API's shape.
const FREE_FORM: &[&str] =
    &["labels", "annotations", "fieldsV1", "matchLabels", "nodeSelector", "limits", "requests"];

/// Every key the fixture has (recursively) that `actual` lacks; each element of a list must
/// have the keys of one of the fixture's elements.
pub fn missing_keys(fixture: &Value, actual: &Value) -> Vec<String> {
    fn go(f: &Value, a: &Value, path: &str, out: &mut Vec<String>) {
        match (f, a) {
            (Value::Object(f), Value::Object(a)) => {
                for (k, fv) in f {
                    let p = format!("{path}.{k}");
                    match a.get(k) {
                        None => out.push(p),
                        Some(av) if !FREE_FORM.contains(&k.as_str()) => go(fv, av, &p, out),
                        Some(_) => {}
                    }
                }
            }
            (Value::Array(f), Value::Array(a)) => {
                for (i, av) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    let misses = |fv: &Value| {
                        let mut m = Vec::new();
                        go(fv, av, &p, &mut m);
                        m
                    };
                    if !f.is_empty() && f.iter().all(|fv| !misses(fv).is_empty()) {
                        out.extend(misses(f.get(i).unwrap_or(&f[0])));
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(fixture, actual, "", &mut out);
    out
}

fn assert_keys(name: &str, actual: &Value) {
    let missing = missing_keys(&fixture(name), actual);
    assert!(missing.is_empty(), "{name}: the fake's answer lacks {missing:?}\n{actual:#}");
}

/// ConfigMaps (with the resourceVersion precondition a gray release's state relies on) and
/// Nodes, against the real answers.
#[test]
fn configmaps_and_nodes_answer_as_the_real_server_does() {
    let fake = FakeKube::start();
    fake.add_namespace("default");
    fake.add_node("kube-worker-1");
    let real = fixture("configmap.json");
    let body = json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "game-config" }, "data": real["data"] });
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, _, text) = raw(&fake, "POST", path, Some("application/json"), &body.to_string());
    assert_eq!(code, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_keys("configmap.json", &created);
    assert_eq!(created["data"], real["data"]);
    // A second create of the same name: AlreadyExists, as the real server says it.
    let (code, _, text) = raw(&fake, "POST", path, Some("application/json"), &body.to_string());
    assert_eq!(code, 409);
    let exists: Value = serde_json::from_str(&text).unwrap();
    assert_keys("status_409_already_exists.json", &exists);
    assert_eq!(exists["reason"], "AlreadyExists");
    assert_eq!(exists["message"], "configmaps \"game-config\" already exists");
    // A replace at the current resourceVersion succeeds; at an old one it is a Conflict.
    let mut next = created.clone();
    next["data"] = json!({ "lives": "4" });
    let one = format!("{path}/game-config");
    let (code, _, text) = raw(&fake, "PUT", &one, Some("application/json"), &next.to_string());
    assert_eq!(code, 200, "{text}");
    let replaced: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(replaced["data"], json!({ "lives": "4" }), "a replace drops the keys not sent");
    assert_ne!(replaced["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
    let (code, _, text) = raw(&fake, "PUT", &one, Some("application/json"), &next.to_string());
    assert_eq!(code, 409);
    let conflict: Value = serde_json::from_str(&text).unwrap();
    assert_keys("status_409_conflict.json", &conflict);
    let real_conflict = fixture("status_409_conflict.json");
    assert_eq!(
        conflict["message"],
        real_conflict["message"].as_str().unwrap().replace("\"foo\"", "\"game-config\"")
    );
    assert_eq!(conflict["details"]["kind"], "configmaps");

    let (code, nodes) = raw_json(&fake, "GET", "/api/v1/nodes");
    assert_eq!(code, 200);
    assert_eq!(nodes["kind"], "NodeList");
    let mut node = nodes["items"][0].clone();
    node["kind"] = json!("Node");
    node["apiVersion"] = json!("v1");
    assert_keys("node.json", &node);
    let (code, one_node) = raw_json(&fake, "GET", "/api/v1/nodes/kube-worker-1");
    assert_eq!(code, 200);
    assert_eq!(one_node["metadata"]["labels"]["kubernetes.io/hostname"], "kube-worker-1");
    let (code, _) = raw_json(&fake, "GET", "/api/v1/nodes/nope");
    assert_eq!(code, 404);
}

/// Ingresses and Gateway API HTTPRoutes, which a gray release by weight routes through, as
/// a cluster with ingress-nginx and a gateway controller answers them.
#[test]
fn ingresses_and_httproutes_answer_as_the_real_server_does() {
    let fake = FakeKube::start();
    fake.add_namespace("kubescrub-operator-system");
    let real = fixture("ingress.json");
    let body = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": "kubescrub", "labels": real["metadata"]["labels"],
            "ownerReferences": real["metadata"]["ownerReferences"] },
        "spec": real["spec"] });
    let path = "/apis/networking.k8s.io/v1/namespaces/kubescrub-operator-system/ingresses";
    let (code, _, text) = raw(&fake, "POST", path, Some("application/json"), &body.to_string());
    assert_eq!(code, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_keys("ingress.json", &created);
    assert_eq!(created["spec"], real["spec"]);
    assert_eq!(created["metadata"]["generation"], 1);
    let (code, list) = raw_json(&fake, "GET", path);
    assert_eq!((code, list["kind"].as_str()), (200, Some("IngressList")));

    fake.add_namespace("default");
    let real = fixture("httproute.json");
    // What a person writes; the server fills in the rest.
    let body = json!({ "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": "http" },
        "spec": {
            "hostnames": real["spec"]["hostnames"],
            "parentRefs": [{ "name": "demo-gateway", "namespace": "openshift-gateway-api" }],
            "rules": [{ "backendRefs": [{ "name": "hello-microshift", "namespace": "default", "port": 8080 }] }],
        } });
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes";
    let (code, _, text) = raw(&fake, "POST", path, Some("application/json"), &body.to_string());
    assert_eq!(code, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_keys("httproute.json", &created);
    assert_eq!(created["spec"], real["spec"], "the server's defaults, as the real one sets them");
    let conditions = &created["status"]["parents"][0]["conditions"];
    assert_eq!(conditions[0]["type"], "Accepted");
    assert_eq!(conditions[1]["type"], "ResolvedRefs");
}

#[test]
fn fixtures_deserialize_into_the_api_types() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, WatchEvent as MetaWatchEvent};
    use k8s_openapi::apimachinery::pkg::version::Info;
    fn de<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_value(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    let d: k8s_openapi::List<Deployment> = de("deployment_list.json");
    assert_eq!(d.items[0].status.as_ref().unwrap().conditions.as_ref().unwrap().len(), 2);
    let rs: k8s_openapi::List<ReplicaSet> = de("replicaset_list.json");
    assert_eq!(rs.items[0].metadata.owner_references.as_ref().unwrap()[0].kind, "Deployment");
    let ev: k8s_openapi::List<Event> = de("event_list.json");
    assert!(ev.items.iter().any(|e| e.type_.as_deref() == Some("Warning")));
    let _: k8s_openapi::List<Service> = de("service_list.json");
    let pod: Pod = de("pod.json");
    assert!(pod.status.unwrap().container_statuses.unwrap()[0].ready);
    let _: Namespace = de("namespace.json");
    let cm: k8s_openapi::api::core::v1::ConfigMap = de("configmap.json");
    assert!(cm.data.unwrap().contains_key("game.properties"));
    let ing: k8s_openapi::api::networking::v1::Ingress = de("ingress.json");
    assert_eq!(ing.spec.unwrap().ingress_class_name.as_deref(), Some("nginx"));
    let node: k8s_openapi::api::core::v1::Node = de("node.json");
    assert_eq!(node.status.unwrap().node_info.unwrap().kubelet_version, "v1.23.3");
    for s in [
        "status_404_not_found.json",
        "status_403_forbidden.json",
        "status_409_apply_conflict.json",
        "status_409_conflict.json",
        "status_409_already_exists.json",
    ] {
        let st: Status = de(s);
        assert_eq!(st.status.as_deref(), Some("Failure"));
        let e: kube::error::ErrorResponse = de(s);
        assert_eq!(Some(i32::from(e.code)), st.code);
    }
    let conflict: Status = de("status_409_apply_conflict.json");
    assert_eq!(
        conflict.details.unwrap().causes.unwrap()[0].reason.as_deref(),
        Some("FieldManagerConflict")
    );
    let w: MetaWatchEvent<Pod> = de("watch_event_bookmark.json");
    assert!(matches!(w, MetaWatchEvent::Bookmark { .. }));
    let _: Info = de("version.json");
}

#[tokio::test]
async fn the_fake_answers_with_every_key_the_real_server_has() {
    let (fake, client) = setup().await;
    // The coredns Deployment of the fixture, applied as its manifest.
    let real = fixture("deployment_list.json")["items"][0].clone();
    let manifest: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": real["metadata"]["name"], "labels": real["metadata"]["labels"] },
        "spec": real["spec"],
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "kube-system")
        .patch("coredns", &apply(), &Patch::Apply(&manifest))
        .await
        .unwrap();
    // An nginx like the documentation's pod, and a Service.
    let nginx = deployment(
        "nginx",
        "nginx",
        1,
        json!({ "template": { "metadata": { "labels": { "app": "nginx" } }, "spec": { "containers": [{
            "name": "nginx", "image": "nginx", "ports": [{ "containerPort": 80 }],
            "resources": { "limits": { "cpu": "500m", "memory": "128Mi" }, "requests": { "cpu": "500m", "memory": "128Mi" } },
        }] } } }),
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments.patch("nginx", &apply(), &Patch::Apply(&nginx)).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "web", "labels": { "app": "web" } },
        "spec": { "selector": { "app": "web" }, "ports": [{ "name": "https", "port": 443, "targetPort": 8443 }] },
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), NS)
        .patch("web", &apply(), &Patch::Apply(&svc))
        .await
        .unwrap();
    until("coredns", Duration::from_secs(10), || {
        fake.completed_at("kube-system", "coredns").is_some()
    })
    .await;
    rolled_out(&fake, "nginx").await;

    let (_, deployments_json) =
        raw_json(&fake, "GET", "/apis/apps/v1/namespaces/kube-system/deployments");
    assert_keys("deployment_list.json", &deployments_json);
    assert!(deployments_json["items"][0].get("kind").is_none(), "list items carry no kind");
    let (_, rs_json) = raw_json(&fake, "GET", "/apis/apps/v1/namespaces/kube-system/replicasets");
    assert_keys("replicaset_list.json", &rs_json);
    let (_, events_json) = raw_json(&fake, "GET", "/api/v1/namespaces/kube-system/events");
    assert!(events_json["items"].as_array().unwrap().len() > 3);
    assert_keys("event_list.json", &events_json);
    let (_, services_json) = raw_json(&fake, "GET", &format!("/api/v1/namespaces/{NS}/services"));
    assert_keys("service_list.json", &services_json);
    let pod = fake.pods(NS)[0]["metadata"]["name"].as_str().unwrap().to_string();
    let (code, pod_json) = raw_json(&fake, "GET", &format!("/api/v1/namespaces/{NS}/pods/{pod}"));
    assert_eq!(code, 200);
    assert_keys("pod.json", &pod_json);
    assert_eq!(pod_json["status"]["qosClass"], "Guaranteed");
    let (_, ns_json) = raw_json(&fake, "GET", "/api/v1/namespaces/default");
    assert_keys("namespace.json", &ns_json);
    let (_, version_json) = raw_json(&fake, "GET", "/version");
    assert_keys("version.json", &version_json);
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));

    let (code, nf) = raw_json(&fake, "GET", &format!("/api/v1/namespaces/{NS}/pods/grafana"));
    assert_eq!(code, 404);
    assert_keys("status_404_not_found.json", &nf);
    let real_nf = fixture("status_404_not_found.json");
    assert_eq!(nf["message"], real_nf["message"]);
    assert_eq!(nf["details"], real_nf["details"]);

    fake.refuse("get", "namespaces", "default");
    let (code, forbidden) = raw_json(&fake, "GET", "/api/v1/namespaces/default");
    assert_eq!(code, 403);
    assert_keys("status_403_forbidden.json", &forbidden);
    let real_forbidden = fixture("status_403_forbidden.json");
    let expected = real_forbidden["message"]
        .as_str()
        .unwrap()
        .replace("system:serviceaccount:default:pod-sa", USER);
    assert_eq!(forbidden["message"], expected);
    assert_eq!(forbidden["details"], real_forbidden["details"]);
    fake.allow_all();

    fake.set_field_owner(NS, "nginx", "kubectl-client-side-apply", ".spec.replicas", json!(2));
    let mut body = serde_json::to_value(&nginx).unwrap();
    body["spec"]["replicas"] = json!(3);
    let (code, _, text) = raw(
        &fake,
        "PATCH",
        &format!("/apis/apps/v1/namespaces/{NS}/deployments/nginx?fieldManager=xone"),
        Some("application/apply-patch+yaml"),
        &body.to_string(),
    );
    assert_eq!(code, 409);
    let conflict: Value = serde_json::from_str(&text).unwrap();
    assert_keys("status_409_apply_conflict.json", &conflict);
    let real_conflict = fixture("status_409_apply_conflict.json");
    let like_real = |v: &Value| {
        v.to_string()
            .replace("apiextensions.k8s.io/v1", "apps/v1")
            .replace(".spec.versions", ".spec.replicas")
    };
    assert_eq!(like_real(&real_conflict), conflict.to_string());

    let (code, _, stream) = raw(
        &fake,
        "GET",
        &format!("/api/v1/namespaces/{NS}/pods?watch=1&timeoutSeconds=1"),
        None,
        "",
    );
    assert_eq!(code, 200);
    let lines: Vec<Value> = stream.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert_keys("watch_event_bookmark.json", line);
    }
    assert_eq!(lines[0]["type"], "ADDED");
}

#[tokio::test]
async fn replace_delete_and_streaming_lists() {
    let (fake, client) = setup().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.patch("web", &apply(), &Patch::Apply(web("registry.example/web:1.0", 1))).await.unwrap();
    rolled_out(&fake, "web").await;

    // PUT with a stale resourceVersion: optimistic concurrency says no.
    let mut d = api.get("web").await.unwrap();
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "tier": "front" } } })),
    )
    .await
    .unwrap();
    d.spec.as_mut().unwrap().replicas = Some(2);
    let e = api_error(api.replace("web", &PostParams::default(), &d).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut fresh = api.get("web").await.unwrap();
    fresh.spec.as_mut().unwrap().replicas = Some(2);
    let replaced = api.replace("web", &PostParams::default(), &fresh).await.unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    rolled_out(&fake, "web").await;
    assert_eq!(fake.pods(NS).len(), 2);

    // A streaming list: the current objects as ADDED, then a bookmark, then changes.
    let cfg = watcher::Config::default().streaming_lists();
    let mut w = watcher(api.clone(), cfg).applied_objects().boxed();
    let first =
        tokio::time::timeout(Duration::from_secs(5), w.try_next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("web"));
    assert!(fake.requests().iter().any(|(_, p)| p.contains("sendInitialEvents=true")));

    // Deleting a pod: its ReplicaSet makes another.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let victim = fake.pods(NS)[0]["metadata"]["name"].as_str().unwrap().to_string();
    pods.delete(&victim, &Default::default()).await.unwrap();
    until("a replacement pod", Duration::from_secs(5), || {
        let p = fake.pods(NS);
        p.len() == 2 && p.iter().all(|p| p["metadata"]["name"] != victim.as_str())
    })
    .await;

    // Deleting the Deployment takes its ReplicaSets and pods.
    let gone = api.delete("web", &Default::default()).await.unwrap();
    let status = gone.right().expect("a Status");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
    assert!(fake.deployment(NS, "web").is_none());
    assert!(fake.replicasets(NS).is_empty() && fake.pods(NS).is_empty());
    let e = api_error(api.delete("web", &Default::default()).await.unwrap_err());
    assert_eq!(e.code, 404);
}
