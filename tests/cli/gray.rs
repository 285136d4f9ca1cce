//! Gray releases against the fake Kubernetes API server: the canary beside the stable, steps,
//! pauses on a clock the test moves, promotion, abort, and the state kept in the cluster so
//! that another machine (another home) carries it on.

use serde_json::Value;

use crate::deploy::cluster;
use crate::fake_kube::{FakeKube, PodBehavior};
use crate::harness::*;

/// PAY's web with 3 replicas in a `prod` environment of namespace `ns`, deployed once.
pub fn stable(ns: &str) -> (TestEnv, FakeKube) {
    let (env, kube) = cluster();
    env.ok(&["project", "app", "set", "PAY", "web", "--replicas", "prod=3"]);
    env.ok(&["project", "env", "set", "PAY", "prod", "--context", "prod-ctx", "--namespace", ns]);
    kube.add_namespace(ns);
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:1"]);
    (env, kube)
}

/// A teammate's fresh home, with PAY's web and prod (namespace `ns`) set up as on `env`'s
/// machine, on the same cluster; its own state database.
fn teammate(env: &TestEnv, ns: &str) -> TestEnv {
    let mut o = TestEnv::new();
    for (k, v) in &env.vars {
        o.set_var(k, v);
    }
    project(&o);
    o.ok(&["project", "app", "add", "PAY", "web", "--repo", "web", "--port", "8080"]);
    o.ok(&["project", "env", "set", "PAY", "prod", "--context", "prod-ctx", "--namespace", ns]);
    o
}

fn image(d: &Value) -> &str {
    d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap()
}

fn replicas(d: &Value) -> i64 {
    d["spec"]["replicas"].as_i64().unwrap()
}

fn start(env: &TestEnv, extra: &[&str]) -> Value {
    let mut args = vec![
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--analysis",
        "restarts",
    ];
    args.extend_from_slice(extra);
    env.json(&args)
}

#[test]
fn two_of_three_then_all_of_them() {
    let (env, kube) = stable("g-two");
    let st = start(&env, &["--instances", "2"]);
    assert_eq!(st["phase"], "progressing", "{st}");
    assert_eq!((st["step"].as_i64(), st["steps"].as_i64()), (Some(1), Some(2)));
    assert_eq!(st["instances"], serde_json::json!([2, 3]));
    // The canary beside the stable: 2 and 1, each track labelled, both selected by the Service.
    let canary = kube.deployment("g-two", "web-canary").expect("a canary Deployment");
    assert_eq!(image(&canary), "reg.example.com/web:2");
    assert_eq!(replicas(&canary), 2);
    assert_eq!(canary["spec"]["selector"]["matchLabels"]["xone.io/track"], "canary");
    let stable = kube.deployment("g-two", "web").unwrap();
    assert_eq!((image(&stable), replicas(&stable)), ("reg.example.com/web:1", 1));
    assert_eq!(stable["spec"]["template"]["metadata"]["labels"]["xone.io/track"], "stable");
    let service = kube.service("g-two", "web").unwrap();
    let pods = kube.pods("g-two");
    let selected = |p: &&&Value| {
        service["spec"]["selector"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| p["metadata"]["labels"][k] == *v)
    };
    let live: Vec<&Value> =
        pods.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
    assert_eq!(live.iter().filter(selected).count(), 3, "the Service selects both tracks");
    assert_eq!(st["canary"]["pods"].as_array().unwrap().len(), 2, "{st}");
    assert_eq!(st["stable"]["pods"].as_array().unwrap().len(), 1, "{st}");
    // The whole state is in the cluster.
    let cm = kube.configmap("g-two", "xone-gray-web").expect("the state ConfigMap");
    let state: Value = serde_json::from_str(cm["data"]["state.json"].as_str().unwrap()).unwrap();
    assert_eq!(state["stable_image"], "reg.example.com/web:1");
    let digest = state["canary_digest"].as_str().unwrap_or_else(|| panic!("a digest: {state}"));
    assert!(digest.starts_with("reg.example.com/web@sha256:"), "{digest}");
    assert_eq!(st["canary_digest"], digest);
    assert_eq!(state["stable_replicas"], 3);

    // Deploying around it, or starting a second one, is a conflict naming the one in flight.
    env.code(5, &["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:9"]).says(&[
        "gray release in flight",
        "reg.example.com/web:2",
        "xone gray promote|abort",
    ]);
    env.code(5, &["gray", "start", "web", "--env", "prod", "--image", "reg.example.com/web:3"])
        .says(&["gray release in flight"]);

    // The last step is promotion: the stable takes the canary's image at all its replicas.
    let st = env.json(&["gray", "step", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "promoted", "{st}");
    let stable = kube.deployment("g-two", "web").unwrap();
    assert!(image(&stable).starts_with("reg.example.com/web@sha256:"), "by digest: {stable}");
    assert_eq!(replicas(&stable), 3);
    assert!(kube.deployment("g-two", "web-canary").is_none(), "the canary is gone");
    let list = env.json(&["gray", "list"]);
    assert_eq!(list, serde_json::json!([]), "nothing in flight");
    // Promoted, the app deploys again.
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:3"]);
}

#[test]
fn a_week_s_pause_is_counted_on_the_clock() {
    let (mut env, kube) = stable("g-pause");
    env.set_var("XONE_NOW", "2026-12-01T10:00:00Z");
    start(&env, &["--steps", "1,2", "--pause", "7d"]);
    env.set_var("XONE_NOW", "2026-12-04T10:00:00Z");
    env.code(4, &["gray", "step", "web", "--env", "prod"]).says(&["pauses for 4d00h more"]);
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!(st["pause_left_secs"], 4 * 86_400);
    // A person may force it, with a reason that is recorded.
    env.code(2, &["gray", "step", "web", "--env", "prod", "--force"]).says(&["needs a reason"]);
    env.set_var("XONE_NOW", "2026-12-08T10:00:01Z");
    let st = env.json(&["gray", "step", "web", "--env", "prod"]);
    assert_eq!((st["step"].as_i64(), st["phase"].as_str()), (Some(2), Some("progressing")));
    assert_eq!(replicas(&kube.deployment("g-pause", "web-canary").unwrap()), 2);
    assert_eq!(replicas(&kube.deployment("g-pause", "web").unwrap()), 1);
    // The next step's pause starts afresh.
    env.code(4, &["gray", "step", "web", "--env", "prod"]).says(&["pauses for 7d00h more"]);
    let st = env.json(&[
        "gray",
        "step",
        "web",
        "--env",
        "prod",
        "--force",
        "--reason",
        "the PM accepted early",
    ]);
    assert_eq!(st["phase"], "promoted");
    let mark = st["marks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(mark["forced"], true, "{mark}");
    assert!(mark["detail"].as_str().unwrap().contains("the PM accepted early"), "{mark}");
}

#[test]
fn paused_by_a_person_it_holds_until_resumed() {
    let (env, _kube) = stable("g-hold");
    start(&env, &[]);
    let st = env.json(&["gray", "pause", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "paused");
    env.code(4, &["gray", "step", "web", "--env", "prod"]).says(&["is paused", "gray resume"]);
    let st = env.json(&["gray", "resume", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "progressing");
}

#[test]
fn an_abort_puts_the_stable_back() {
    let (env, kube) = stable("g-abort");
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    start(&env, &["--instances", "2", "--requirement", "PAY-1"]);
    let st = env.json(&["gray", "abort", "web", "--env", "prod", "--reason", "not today"]);
    assert_eq!(st["phase"], "aborted");
    let stable = kube.deployment("g-abort", "web").unwrap();
    assert_eq!((image(&stable), replicas(&stable)), ("reg.example.com/web:1", 3));
    assert!(kube.deployment("g-abort", "web-canary").is_none());
    // On the requirement's story, and in `requirement show`.
    let log = env.json(&["requirement", "log", "PAY-1"]);
    let actions: Vec<&str> =
        log.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"gray started") && actions.contains(&"gray aborted"), "{log}");
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["grays"][0]["phase"], "aborted", "{show}");
    // Ended, it cannot be stepped; a new one may start.
    env.code(4, &["gray", "step", "web", "--env", "prod"]).says(&["was aborted by tester"]);
    start(&env, &[]);
}

#[test]
fn another_machine_carries_it_on_from_the_cluster() {
    let (env, kube) = stable("g-other");
    start(&env, &["--instances", "2"]);
    // A teammate's fresh home with the same project set up (its own database, no copy).
    let other = teammate(&env, "g-other");
    let st = other.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!(
        (st["phase"].as_str(), st["started_by"].as_str()),
        (Some("progressing"), Some("tester"))
    );
    let list = other.json(&["gray", "list", "-p", "PAY"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let st = other.json(&["gray", "promote", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "promoted");
    assert_eq!(replicas(&kube.deployment("g-other", "web").unwrap()), 3);
    // The first machine sees it ended.
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "promoted");
}

#[test]
fn a_change_from_elsewhere_is_never_overwritten() {
    let (env, kube) = stable("g-race");
    start(&env, &[]);
    // Another machine writes the state between this one's read and write.
    kube.edit_configmap_after_next_read("g-race", "xone-gray-web", "note", "from another machine");
    env.code(5, &["gray", "pause", "web", "--env", "prod"])
        .says(&["changed from elsewhere", "nothing was overwritten"]);
    let cm = kube.configmap("g-race", "xone-gray-web").unwrap();
    assert_eq!(cm["data"]["phase"], "progressing");
    assert_eq!(cm["data"]["note"], "from another machine", "the other write stands");
    // Read afresh, the next command goes through.
    env.ok(&["gray", "pause", "web", "--env", "prod"]);
}

#[test]
fn bad_starts_are_refused_before_anything_changes() {
    let (env, kube) = stable("g-bad");
    let gray = |extra: &[&str]| {
        let mut a =
            vec!["gray", "start", "web", "--env", "prod", "--image", "reg.example.com/web:2"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |code: i32, extra: &[&str], says: &[&str]| {
        let args = gray(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.code(code, &args).says(says);
    };
    run(4, &["--instances", "3"], &["all of the app's 3"]);
    run(4, &["--steps", "2,1"], &["do not widen"]);
    run(2, &["--steps", "0"], &["invalid step"]);
    run(4, &["--analysis", "nope"], &["no analysis 'nope'", "error-rate"]);
    run(4, &["--weight", "10"], &["--weight needs a router", "--instances N"]);
    kube.add_node("node-a");
    run(4, &["--on-nodes", "node-z"], &["no node node-z", "node-a"]);
    assert!(kube.configmap("g-bad", "xone-gray-web").is_none(), "nothing was written");
    assert!(kube.deployment("g-bad", "web-canary").is_none());
    // Never deployed there: deploy it first.
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "gray",
        "--context",
        "prod-ctx",
        "--namespace",
        "g-none",
    ]);
    kube.add_namespace("g-none");
    env.code(4, &["gray", "start", "web", "--env", "gray", "--image", "reg.example.com/web:2"])
        .says(&["not deployed to gray", "deploy it first"]);
    env.code(3, &["gray", "status", "web", "--env", "gray"]).says(&["no gray release"]);
}

#[test]
fn the_canary_goes_on_the_nodes_the_product_manager_picked() {
    let (env, kube) = stable("g-nodes");
    kube.add_node("node-a");
    kube.add_node("node-b");
    let st = start(&env, &["--instances", "2", "--on-nodes", "node-b"]);
    for p in st["canary"]["pods"].as_array().unwrap() {
        assert_eq!(p["node"], "node-b", "{st}");
    }
}

#[test]
fn a_canary_whose_pods_fail_is_aborted() {
    let (env, kube) = stable("g-crash");
    kube.pod_behavior(
        "web:bad",
        PodBehavior::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off restarting".into(),
        },
    );
    env.ok(&["config", "set", "deploy.progress_deadline", "5s"]);
    env.code(
        7,
        &[
            "gray",
            "start",
            "web",
            "--env",
            "prod",
            "--image",
            "reg.example.com/web:bad",
            "--analysis",
            "restarts",
        ],
    )
    .says(&["the canary of web in prod failed", "CrashLoopBackOff", "aborted"]);
    let stable = kube.deployment("g-crash", "web").unwrap();
    assert_eq!((image(&stable), replicas(&stable)), ("reg.example.com/web:1", 3));
    assert!(kube.deployment("g-crash", "web-canary").is_none());
    let cm = kube.configmap("g-crash", "xone-gray-web").unwrap();
    assert_eq!(cm["data"]["phase"], "aborted");
}

/// Traffic and heap as Micrometer exposes them for one pod: `ok` and `errors` requests a
/// second, with `noise` (a share) drawn afresh at every scrape.
struct Profile {
    ok: f64,
    errors: f64,
    heap: f64,
    noise: f64,
    /// After this many seconds, `errors` becomes the second figure: the test changes the pod
    /// while xone watches it.
    later: Option<(f64, f64)>,
}

fn serve_pod(ns: &str, pod: &str, p: Profile) -> crate::watch::Metrics {
    use std::sync::Mutex;
    let (ns, pod_name) = (ns.to_string(), pod.to_string());
    // Counters so far, the time of the last scrape, and a random state.
    let state = Mutex::new((0.0f64, 0.0f64, 0.0f64, pod.len() as u64 * 2_654_435_761 + 1));
    crate::watch::Metrics::serve(&format!("gray-{pod}"), move |t| {
        let mut s = state.lock().unwrap();
        let dt = (t - s.2).max(0.0);
        s.2 = t;
        let mut draw = || {
            s.3 =
                s.3.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s.3 >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        };
        let (n1, n2) = (1.0 + p.noise * draw(), 1.0 + p.noise * draw());
        let errors = match p.later {
            Some((after, e)) if t >= after => e,
            _ => p.errors,
        };
        s.0 += p.ok * dt * n1;
        s.1 += errors * dt * n2;
        let labels = format!("namespace=\"{ns}\",pod=\"{pod_name}\"");
        let ok = s.0.floor();
        // Latency: 90 % under 100 ms, 99 % under 250 ms; CPU, GC time and count grow evenly.
        let mut text = String::new();
        for (le, share) in [("0.1", 0.9), ("0.25", 0.99), ("+Inf", 1.0)] {
            text.push_str(&format!(
                "http_server_requests_seconds_bucket{{{labels},status=\"200\",uri=\"/pay\",le=\"{le}\"}} {}\n",
                (ok * share).floor()
            ));
        }
        text.push_str(&format!(
            "http_server_requests_seconds_count{{{labels},status=\"200\",uri=\"/pay\"}} {ok}\n\
             http_server_requests_seconds_sum{{{labels},status=\"200\",uri=\"/pay\"}} {}\n\
             http_server_requests_seconds_count{{{labels},status=\"503\",uri=\"/pay\"}} {}\n\
             jvm_memory_used_bytes{{{labels},area=\"heap\",id=\"G1 Eden Space\"}} {}\n\
             process_cpu_seconds_total{{{labels}}} {}\n\
             jvm_gc_pause_seconds_sum{{{labels},action=\"end of minor GC\"}} {}\n\
             jvm_gc_pause_seconds_count{{{labels},action=\"end of minor GC\"}} {}\n",
            ok * 0.05,
            s.1.floor(),
            p.heap,
            0.2 * t,
            0.01 * t,
            (0.5 * t).floor()
        ));
        text
    })
}

/// A release watched on the test Prometheus: short windows and a fast interval.
fn analysed(ns: &str) -> (TestEnv, FakeKube) {
    let (env, kube) = stable(ns);
    let url = std::env::var("XONE_TEST_PROMETHEUS")
        .expect("the gray analysis tests need a Prometheus; run them through scripts/test");
    env.ok(&["project", "env", "set", "PAY", "prod", "--prometheus", &url]);
    for (k, v) in [("gray.window", "15s"), ("gray.range", "4s"), ("gray.interval", "1s")] {
        env.ok(&["config", "set", k, v]);
    }
    (env, kube)
}

/// Serves every pod of both tracks, the canary's with `canary` and the stable's with `stable`.
fn serve_tracks(
    st: &Value,
    ns: &str,
    canary: impl Fn() -> Profile,
    stable: impl Fn() -> Profile,
) -> Vec<crate::watch::Metrics> {
    let mut served = Vec::new();
    for (track, profile) in [("canary", &canary as &dyn Fn() -> Profile), ("stable", &stable)] {
        for p in st[track]["pods"].as_array().unwrap() {
            served.push(serve_pod(ns, p["name"].as_str().unwrap(), profile()));
        }
    }
    served
}

fn watch_auto(env: &TestEnv) -> Run {
    env.run(&["gray", "watch", "web", "--env", "prod", "--auto", "--interval", "1s"])
}

#[test]
fn a_canary_made_worse_while_it_is_watched_is_aborted() {
    let (env, kube) = analysed("ga-worse");
    // A day's pause keeps the watch from stepping on while the canary is fine.
    let st = env.json(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--analysis",
        "error-rate",
        "--analysis",
        "memory",
        "--pause",
        "1d",
    ]);
    let started = std::time::Instant::now();
    let _m = serve_tracks(
        &st,
        "ga-worse",
        || Profile { ok: 99.8, errors: 0.2, heap: 2e8, noise: 0.05, later: Some((12.0, 10.0)) },
        || Profile { ok: 99.8, errors: 0.2, heap: 2e8, noise: 0.05, later: None },
    );
    let r = watch_auto(&env);
    assert!(started.elapsed().as_secs() >= 12, "it ran healthy until the canary got worse");
    assert_eq!(r.code, 7, "{r:?}");
    r.says(&["failed: error-rate", "aborted"]);
    let stable = kube.deployment("ga-worse", "web").unwrap();
    assert_eq!((image(&stable), replicas(&stable)), ("reg.example.com/web:1", 3));
    assert!(kube.deployment("ga-worse", "web-canary").is_none());
}

#[test]
fn an_equal_canary_passes_all_seven_analyses_and_is_promoted() {
    let (env, kube) = analysed("ga-equal");
    let st =
        env.json(&["gray", "start", "web", "--env", "prod", "--image", "reg.example.com/web:2"]);
    let _m = serve_tracks(
        &st,
        "ga-equal",
        || Profile { ok: 99.5, errors: 0.5, heap: 3e8, noise: 0.0, later: None },
        || Profile { ok: 99.5, errors: 0.5, heap: 3e8, noise: 0.0, later: None },
    );
    // Too early to tell: the analyses hold, and a step is refused saying so.
    env.code(4, &["gray", "step", "web", "--env", "prod"]).says(&["hold for want of samples"]);
    let r = watch_auto(&env);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(replicas(&kube.deployment("ga-equal", "web").unwrap()), 3);
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!((st["phase"].as_str(), st["passed"].as_bool()), (Some("promoted"), Some(true)));
}

#[test]
fn a_noisy_equal_canary_is_not_aborted() {
    let (env, _kube) = analysed("ga-noisy");
    let st = env.json(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--analysis",
        "error-rate",
    ]);
    let _m = serve_tracks(
        &st,
        "ga-noisy",
        || Profile { ok: 98.0, errors: 2.0, heap: 3e8, noise: 0.6, later: None },
        || Profile { ok: 98.0, errors: 2.0, heap: 3e8, noise: 0.6, later: None },
    );
    let r = watch_auto(&env);
    assert_eq!(r.code, 0, "a noisy but equal canary goes through: {r:?}");
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "promoted");
}

#[test]
fn status_shows_each_analysis_and_never_passes_without_data() {
    let (env, _kube) = analysed("ga-status");
    env.json(&["gray", "start", "web", "--env", "prod", "--image", "reg.example.com/web:2"]);
    // No metrics at all: all seven are there, and none passes but restarts (from the API).
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    let names: Vec<&str> =
        st["analyses"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["error-rate", "latency", "cpu", "memory", "gc-time", "gc-count", "restarts"]
    );
    for a in st["analyses"].as_array().unwrap() {
        let want = if a["name"] == "restarts" { "pass" } else { "hold" };
        assert_eq!(a["verdict"], want, "{a}");
    }
    // Prometheus down: status says so in each analysis; a step is exit 6.
    env.ok(&["config", "set", "remote.retries", "0"]);
    env.ok(&["project", "env", "set", "PAY", "prod", "--prometheus", "http://127.0.0.1:9"]);
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert!(st["analyses"][0]["why"].as_str().unwrap().contains("cannot ask Prometheus"), "{st}");
    env.code(6, &["gray", "step", "web", "--env", "prod"]).says(&["cannot ask Prometheus"]);
}

#[test]
fn analyses_come_from_the_config_and_bad_promql_is_refused() {
    let (env, kube) = analysed("ga-config");
    let dir = env.home.join(".config/xone");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str(
        "\n[analysis.broken]\nquery = \"sum by ({by}) (rate(x{{labels}}[{range}])\"\n\n\
         [analysis.queue]\nquery = \"sum by ({by}) (queue_depth{{labels}})\"\nfactor = 2.0\ncritical = true\n",
    );
    std::fs::write(&file, text).unwrap();
    env.code(
        4,
        &[
            "gray",
            "start",
            "web",
            "--env",
            "prod",
            "--image",
            "reg.example.com/web:2",
            "--analysis",
            "broken",
        ],
    )
    .says(&["the analysis broken cannot run", "Prometheus cannot run the query"]);
    assert!(kube.configmap("ga-config", "xone-gray-web").is_none(), "nothing was started");
    let st = env.json(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--analysis",
        "queue",
    ]);
    assert_eq!(st["analyses"][0]["name"], "queue");
    assert_eq!(st["analyses"][0]["critical"], true);
}

/// The product manager accepts the gray release, and `gray -> released` wants that and each
/// gray release of the requirement promoted with its analyses passing.
#[test]
fn releasing_wants_the_pm_s_acceptance_and_a_promoted_gray_release() {
    let (env, _kube) = stable("g-life");
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["branch", "create", "PAY-1"]);
    for _ in 0..6 {
        env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "walked on"]);
    }
    let status = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(status["status"], "gray", "{status}");
    // Every analysis, and no Prometheus to answer them: they hold.
    env.json(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--requirement",
        "PAY-1",
    ]);
    env.ok(&["config", "set", "gates.require_gray", "true"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "the product manager has not accepted the gray release",
        "the gray release of web in prod is still in flight (step 1 of 2)",
    ]);
    // QA does not accept a gray release; the product manager does.
    env.as_user("quinn").code(4, &["requirement", "signoff", "PAY-1"]).says(&["not a pm member"]);
    env.as_user("pat").ok(&["requirement", "signoff", "PAY-1"]);
    // Promoted without passing analyses (forced past them) does not count.
    env.ok(&["gray", "step", "web", "--env", "prod", "--force", "--reason", "no metrics here"]);
    let r = env.code(4, &["requirement", "advance", "PAY-1"]);
    r.says(&["was promoted without its analyses passing"]);
    assert!(!r.stderr.contains("product manager"), "{}", r.stderr);
    let show = env.json(&["requirement", "show", "PAY-1"]);
    let mark = &show["grays"][0]["marks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((mark["action"].as_str(), mark["forced"].as_bool()), (Some("promote"), Some(true)));
}

#[test]
fn rolling_back_a_requirement_pulls_its_gray_releases_back() {
    let (env, kube) = stable("g-rollback");
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    start(&env, &["--instances", "2", "--requirement", "PAY-1"]);
    let r = env.ok(&["rollback", "--requirement", "PAY-1"]);
    assert!(r.stderr.contains("web in prod") && r.stderr.contains("gray release aborted"), "{r:?}");
    let stable = kube.deployment("g-rollback", "web").unwrap();
    assert_eq!((image(&stable), replicas(&stable)), ("reg.example.com/web:1", 3));
    assert!(kube.deployment("g-rollback", "web-canary").is_none());
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "aborted");
    assert!(st["marks"][1]["detail"].as_str().unwrap().contains("rollback of PAY-1"), "{st}");
}

#[test]
fn a_requirement_s_rollback_names_the_others_that_ride_along_and_asks() {
    let (env, kube) = stable("g-riders");
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Coupons"]);
    let deploy = |image: &str, key: &str| {
        env.ok(&["deploy", "web", "--env", "prod", "--image", image, "--requirement", key]);
    };
    deploy("reg.example.com/web:2", "PAY-1");
    deploy("reg.example.com/web:3", "PAY-2");
    // PAY-2's revision came after PAY-1's: going back before PAY-1 takes PAY-2 back too.
    env.code(4, &["rollback", "--requirement", "PAY-1"]).says(&[
        "also carry PAY-2",
        "not confirmed",
        "--yes",
    ]);
    let d = kube.deployment("g-riders", "web").unwrap();
    assert_eq!(image(&d), "reg.example.com/web:3", "nothing was rolled back");
    env.ok(&["rollback", "--requirement", "PAY-1", "--yes"]);
    let d = kube.deployment("g-riders", "web").unwrap();
    assert_eq!(image(&d), "reg.example.com/web:1");
    // PAY-2 alone takes nobody else along: no question.
    deploy("reg.example.com/web:3", "PAY-2");
    env.ok(&["rollback", "--requirement", "PAY-2"]);
}

fn ingress(ns: &str) -> Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": "pay", "namespace": ns },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{ "host": "pay.example.com", "http": { "paths": [
                { "path": "/", "pathType": "Prefix",
                  "backend": { "service": { "name": "web", "port": { "number": 8080 } } } },
                { "path": "/static", "pathType": "Prefix",
                  "backend": { "service": { "name": "cdn", "port": { "number": 80 } } } },
            ]}}],
        },
    })
}

#[test]
fn by_weight_through_an_ingress_nginx_canary_ingress() {
    let (env, kube) = stable("gw-ingress");
    kube.add_object(ingress("gw-ingress"));
    let st = start(&env, &["--weight", "10"]);
    assert_eq!(
        (st["weight"].as_i64(), st["instances"].clone()),
        (Some(10), serde_json::json!([10, 100]))
    );
    assert_eq!(st["router"]["kind"], "Ingress", "{st}");
    // A canary Ingress beside the app's, for the app's path only, at 10 %.
    let canary = kube.object("ingresses", "gw-ingress", "pay-canary").expect("a canary Ingress");
    let notes = &canary["metadata"]["annotations"];
    assert_eq!(notes["nginx.ingress.kubernetes.io/canary"], "true");
    assert_eq!(notes["nginx.ingress.kubernetes.io/canary-weight"], "10");
    let paths = canary["spec"]["rules"][0]["http"]["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1, "{canary}");
    assert_eq!(paths[0]["backend"]["service"]["name"], "web-canary");
    // The app's Service keeps to the stable's pods; the canary's has its own.
    let svc = kube.service("gw-ingress", "web").unwrap();
    assert_eq!(svc["spec"]["selector"]["xone.io/track"], "stable", "{svc}");
    let csvc = kube.service("gw-ingress", "web-canary").expect("the canary's Service");
    assert_eq!(csvc["spec"]["selector"]["xone.io/track"], "canary");
    // By weight, the stable keeps every instance; the canary runs its share, at least one.
    assert_eq!(replicas(&kube.deployment("gw-ingress", "web").unwrap()), 3);
    assert_eq!(replicas(&kube.deployment("gw-ingress", "web-canary").unwrap()), 1);
    let st = env.json(&["gray", "promote", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "promoted");
    assert!(kube.object("ingresses", "gw-ingress", "pay-canary").is_none());
    assert!(kube.service("gw-ingress", "web-canary").is_none());
    let svc = kube.service("gw-ingress", "web").unwrap();
    assert!(svc["spec"]["selector"].get("xone.io/track").is_none(), "{svc}");
    assert!(image(&kube.deployment("gw-ingress", "web").unwrap()).contains("@sha256:"));
}

#[test]
fn by_weight_through_a_gateway_api_httproute() {
    let (env, kube) = stable("gw-route");
    let rules = serde_json::json!([{ "backendRefs": [{ "name": "web", "port": 8080 }] }]);
    kube.add_object(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": { "name": "pay", "namespace": "gw-route" },
        "spec": { "parentRefs": [{ "name": "edge" }], "rules": rules },
    }));
    let before = kube.object("httproutes", "gw-route", "pay").unwrap()["spec"]["rules"].clone();
    start(&env, &["--weight", "20", "--steps", "20%,50%"]);
    let weights = |kube: &FakeKube| -> Vec<(String, i64)> {
        let route = kube.object("httproutes", "gw-route", "pay").unwrap();
        route["spec"]["rules"][0]["backendRefs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["name"].as_str().unwrap().to_string(), b["weight"].as_i64().unwrap()))
            .collect()
    };
    assert_eq!(weights(&kube), [("web".to_string(), 80), ("web-canary".to_string(), 20)]);
    let st = env.json(&["gray", "step", "web", "--env", "prod"]);
    assert_eq!(st["weight"], 50, "{st}");
    assert_eq!(weights(&kube), [("web".to_string(), 50), ("web-canary".to_string(), 50)]);
    env.json(&["gray", "abort", "web", "--env", "prod"]);
    let after = kube.object("httproutes", "gw-route", "pay").unwrap()["spec"]["rules"].clone();
    assert_eq!(after, before, "the route is as it was");
    assert!(kube.service("gw-route", "web-canary").is_none());
    env.code(
        4,
        &[
            "gray",
            "start",
            "web",
            "--env",
            "prod",
            "--image",
            "reg.example.com/web:2",
            "--weight",
            "10",
            "--steps",
            "2",
        ],
    )
    .says(&["shares of the traffic"]);
}

/// What xone keeps in the cluster reads the same with kubectl: the state, the tracks, the
/// canary Ingress; and a change made with kubectl meanwhile is taken, not overwritten.
#[test]
fn kubectl_sees_the_gray_release_as_xone_does() {
    let (env, kube) = stable("g-kubectl");
    kube.allow_anonymous();
    kube.add_object(ingress("g-kubectl"));
    start(&env, &["--weight", "10"]);
    let k = |args: &[&str]| crate::deploy::kubectl_in(&env, "g-kubectl", "prod-ctx", args);
    assert_eq!(
        k(&["get", "configmap", "xone-gray-web", "-o", "jsonpath={.data.phase}"]),
        "progressing"
    );
    let canary = k(&["get", "deployments", "-l", "xone.io/track=canary", "-o", "name"]);
    assert_eq!(canary.trim(), "deployment.apps/web-canary");
    let weight = k(&[
        "get",
        "ingress",
        "pay-canary",
        "-o",
        "jsonpath={.metadata.annotations.nginx\\.ingress\\.kubernetes\\.io/canary-weight}",
    ]);
    assert_eq!(weight, "10");
    // Someone labels the state with kubectl; xone's next write starts from that version.
    k(&["label", "configmap", "xone-gray-web", "team=pay"]);
    let st = env.json(&["gray", "pause", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "paused");
    assert_eq!(k(&["get", "configmap", "xone-gray-web", "-o", "jsonpath={.data.phase}"]), "paused");
    let label = k(&["get", "configmap", "xone-gray-web", "-o", "jsonpath={.metadata.labels.team}"]);
    assert_eq!(label, "pay", "the label put on with kubectl is kept");
}

#[test]
fn a_release_in_flight_is_rolled_back_with_gray_abort_and_a_promoted_one_with_rollback() {
    let (env, kube) = stable("g-undo");
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    start(&env, &["--instances", "2", "--requirement", "PAY-1"]);
    env.code(5, &["rollback", "web", "--env", "prod"])
        .says(&["gray release in flight", "xone gray abort web --env prod"]);
    env.json(&["gray", "promote", "web", "--env", "prod"]);
    // The release watch started with the promotion; `deploy watch` goes on with it.
    let show = env.json(&["requirement", "show", "PAY-1"]);
    let w = &show["watches"][0];
    assert_eq!(
        (w["status"].as_str(), w["window_secs"].as_i64()),
        (Some("watching"), Some(7200)),
        "{show}"
    );
    // Promoted, the requirement's rollback takes the stable back to before its gray release.
    env.ok(&["rollback", "--requirement", "PAY-1"]);
    let d = kube.deployment("g-undo", "web").unwrap();
    assert_eq!((image(&d), replicas(&d)), ("reg.example.com/web:1", 3));
}

#[test]
fn by_weight_an_abort_takes_the_traffic_back_before_the_canary_goes() {
    let (env, kube) = stable("gw-abort");
    kube.add_object(ingress("gw-abort"));
    start(&env, &["--weight", "10"]);
    kube.clear_requests();
    let st = env.json(&["gray", "abort", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "aborted");
    assert!(kube.object("ingresses", "gw-abort", "pay-canary").is_none());
    assert!(kube.deployment("gw-abort", "web-canary").is_none());
    assert!(kube.service("gw-abort", "web-canary").is_none());
    let svc = kube.service("gw-abort", "web").unwrap();
    assert!(svc["spec"]["selector"].get("xone.io/track").is_none(), "{svc}");
    // In that order: the canary Ingress, the canary, then the Service's selector.
    let log = kube.requests();
    let at = |method: &str, part: &str| {
        log.iter()
            .position(|(m, p)| m == method && p.contains(part))
            .unwrap_or_else(|| panic!("no {method} {part} in {log:?}"))
    };
    assert!(at("DELETE", "ingresses/pay-canary") < at("DELETE", "deployments/web-canary"));
    assert!(at("DELETE", "deployments/web-canary") < at("PATCH", "services/web?"));
}

#[test]
fn a_fresh_home_judges_by_the_analyses_the_release_started_with() {
    let (env, kube) = stable("g-defs");
    let dir = env.home.join(".config/xone");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str(
        "\n[analysis.queue]\nquery = \"sum by ({by}) (queue_depth{{labels}})\"\ncritical = true\n",
    );
    std::fs::write(&file, text).unwrap();
    start(&env, &["--analysis", "queue"]);
    let other = teammate(&env, "g-defs");
    let st = other.json(&["gray", "status", "web", "--env", "prod"]);
    let queue = st["analyses"].as_array().unwrap().iter().find(|a| a["name"] == "queue");
    let queue = queue.unwrap_or_else(|| panic!("the queue analysis, from the state: {st}"));
    assert_eq!(queue["critical"], true);
    let state = kube.configmap("g-defs", "xone-gray-web").unwrap();
    assert!(state["data"]["state.json"].as_str().unwrap().contains("queue_depth"));
}

#[test]
fn a_failing_analysis_that_is_not_critical_holds_the_step_and_aborts_nothing() {
    let (env, kube) = analysed("ga-heap");
    let st = env.json(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--analysis",
        "memory",
    ]);
    let _m = serve_tracks(
        &st,
        "ga-heap",
        || Profile { ok: 50.0, errors: 0.0, heap: 6e8, noise: 0.0, later: None },
        || Profile { ok: 50.0, errors: 0.0, heap: 3e8, noise: 0.0, later: None },
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let r = loop {
        let r = env.run(&["gray", "step", "web", "--env", "prod"]);
        if !r.stderr.contains("hold for want of samples") {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never enough samples: {r:?}");
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    assert_eq!(r.code, 4, "{r:?}");
    r.says(&["analyses fail: memory"]);
    let st = env.json(&["gray", "status", "web", "--env", "prod"]);
    assert_eq!((st["phase"].as_str(), st["step"].as_i64()), (Some("progressing"), Some(1)));
    assert_eq!(st["analyses"][0]["verdict"], "fail", "{st}");
    assert!(kube.deployment("ga-heap", "web-canary").is_some(), "nothing was aborted");
}

#[test]
fn a_write_whose_answer_was_lost_is_found_done_not_taken_for_another_s() {
    let (env, kube) = stable("g-lost");
    start(&env, &[]);
    // The pause is written, and the answer lost: xone sends it again, is told of a conflict,
    // reads the state back and finds its own write there.
    kube.lose_answers("PUT", "configmaps/xone-gray-web", 1);
    let st = env.json(&["gray", "pause", "web", "--env", "prod"]);
    assert_eq!(st["phase"], "paused");
    let puts = kube
        .requests()
        .iter()
        .filter(|(m, p)| m == "PUT" && p.contains("configmaps/xone-gray-web"))
        .count();
    assert!(puts >= 2, "the write was sent again ({puts})");
}
