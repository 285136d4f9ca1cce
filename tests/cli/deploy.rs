//! Deployments against the fake Kubernetes API server, reached through a kubeconfig as a real
//! cluster would be: server-side apply, watched rollouts, revisions, rollbacks and faults.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_kube::{FakeKube, PodBehavior};
use crate::harness::*;

/// PAY with an app `web` (port, health path, 2 replicas in test), an environment `test` on
/// the fake's context `test-ctx`, namespace `pay-test`, and a kubeconfig with two contexts.
pub fn cluster() -> (TestEnv, FakeKube) {
    let mut env = TestEnv::new();
    let kube = FakeKube::start();
    let kc = env.root().join("kubeconfig");
    kube.write_kubeconfig(&kc, &[("test-ctx", "default"), ("prod-ctx", "default")]);
    env.set_var("KUBECONFIG", kc.to_str().unwrap());
    project(&env);
    env.ok(&[
        "project",
        "app",
        "add",
        "PAY",
        "web",
        "--repo",
        "web",
        "--port",
        "8080",
        "--health",
        "/health",
        "--replicas",
        "test=2",
    ]);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "test-ctx",
        "--namespace",
        "pay-test",
    ]);
    kube.add_namespace("pay-test");
    (env, kube)
}

pub fn deploy(env: &TestEnv, image: &str, extra: &[&str]) -> Value {
    let mut args = vec!["deploy", "web", "--env", "test", "--image", image];
    args.extend_from_slice(extra);
    env.json(&args)
}

fn image_of(d: &Value) -> String {
    d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_deploy_is_applied_server_side_followed_and_recorded() {
    let (env, kube) = cluster();
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let r = deploy(&env, "registry.example.com/pay/web:1", &["--requirement", "PAY-1"]);
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["revision"], 1);
    assert_eq!(r["requirement"], "PAY-1");
    let d = kube.deployment("pay-test", "web").expect("the Deployment exists");
    assert_eq!(image_of(&d), "registry.example.com/pay/web:1");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "xone");
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/name"], "web");
    let ann = &d["metadata"]["annotations"];
    assert_eq!(ann["xone.dev/requirement"], "PAY-1");
    assert_eq!(ann["xone.dev/deployed-by"], "tester");
    assert!(ann["kubernetes.io/change-cause"].as_str().unwrap().contains("PAY-1"), "{ann}");
    let probe = &d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"];
    assert_eq!(probe["httpGet"]["path"], "/health");
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"xone"), "applied as field manager xone: {managers:?}");
    let svc = kube.service("pay-test", "web").expect("the Service exists");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    // The rollout was watched, not polled: one watch per kind, few plain reads.
    let reqs = kube.requests();
    assert!(
        reqs.iter().any(|(m, p)| m == "GET" && p.contains("/deployments") && p.contains("watch=")),
        "{reqs:?}"
    );
    assert!(
        reqs.iter().any(|(m, p)| m == "GET" && p.contains("/pods") && p.contains("watch=")),
        "{reqs:?}"
    );
    let gets = reqs.iter().filter(|(m, p)| m == "GET" && p.ends_with("/deployments/web")).count();
    assert!(gets <= 2, "the Deployment was polled {gets} times: {reqs:?}");
    // The requirement's story has the deployment.
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["deploys"][0]["image"], "registry.example.com/pay/web:1", "{show}");
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("deploy"), "{log}");
    // Deploying the same image again changes nothing: same revision.
    let again = deploy(&env, "registry.example.com/pay/web:1", &[]);
    assert_eq!(again["revision"], 1, "{again}");
}

#[test]
fn a_machine_without_ca_certificates_reaches_a_plain_http_cluster() {
    let (mut env, _kube) = cluster();
    // As in a minimal container: no CA bundle where the TLS stack looks for one.
    env.set_var("SSL_CERT_FILE", "/nonexistent/ca-certificates.crt");
    env.set_var("SSL_CERT_DIR", "/nonexistent/certs");
    let r = deploy(&env, "registry.example.com/pay/web:1", &[]);
    assert_eq!(r["status"], "succeeded", "{r}");
    // An https cluster with no certificate-authority in the kubeconfig cannot be checked.
    let kc = env.root().join("kubeconfig");
    let text = std::fs::read_to_string(&kc).unwrap().replace("http://", "https://");
    std::fs::write(&kc, text).unwrap();
    env.code(2, &["deploy", "status", "web", "--env", "test"])
        .says(&["cannot make a client for context 'test-ctx'", "install ca-certificates"]);
}

#[test]
fn status_history_and_rollback_read_the_cluster() {
    let (env, kube) = cluster();
    deploy(&env, "reg.example.com/web:1", &[]);
    deploy(&env, "reg.example.com/web:2", &[]);
    let st = env.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(st["revision"], 2, "{st}");
    assert_eq!(st["image"], "reg.example.com/web:2");
    assert_eq!(st["rollout"], "complete");
    assert_eq!(st["replicas"]["available"], 2);
    assert!(
        st["digest"].as_str().unwrap_or_default().starts_with("sha256:"),
        "the digest the pods run: {st}"
    );
    assert!(st["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Progressing"));
    let h = env.json(&["deploy", "history", "web", "--env", "test"]);
    let rows: Vec<(i64, String, bool)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["image"].as_str().unwrap().into(),
                r["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (1, "reg.example.com/web:1".to_string(), false),
            (2, "reg.example.com/web:2".to_string(), true)
        ]
    );
    // As `kubectl rollout undo`: revision 1's template becomes revision 3.
    let rb = env.json(&["rollback", "web", "--env", "test"]);
    assert_eq!(rb[0]["status"], "succeeded", "{rb}");
    assert_eq!(rb[0]["revision"], 3);
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:1");
    let h = env.json(&["deploy", "history", "web", "--env", "test"]);
    let revs: Vec<i64> =
        h.as_array().unwrap().iter().map(|r| r["revision"].as_i64().unwrap()).collect();
    assert_eq!(revs, [2, 3], "the reused ReplicaSet moved to revision 3: {h}");
    let d = kube.deployment("pay-test", "web").unwrap();
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/name"], "web", "labels kept: {d}");
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "xone");
    assert!(
        d["metadata"]["annotations"]["kubernetes.io/change-cause"]
            .as_str()
            .unwrap()
            .starts_with("xone rollback web --env test"),
        "{d}"
    );
    // Back to a chosen revision, and a revision that does not exist.
    let rb = env.json(&["rollback", "web", "--env", "test", "--to-revision", "2"]);
    assert_eq!(rb[0]["image"], "reg.example.com/web:2");
    let r = env.ok(&["rollback", "web", "--env", "test", "--to-revision", "4"]);
    assert!(r.stderr.contains("skipped, it already runs revision 4"), "{r:?}");
    env.code(3, &["rollback", "web", "--env", "test", "--to-revision", "9"])
        .says(&["no revision 9", "3, 4"]);
    // The human forms.
    let text = env.ok(&["deploy", "history", "web", "--env", "test"]).stdout;
    assert!(text.contains("REVISION") && text.contains("4*"), "{text}");
    let text = env.ok(&["deploy", "status", "web", "--env", "test"]).stdout;
    assert!(text.contains("reg.example.com/web:2") && text.contains("complete"), "{text}");
}

#[test]
fn another_machine_reads_the_same_story_from_the_cluster() {
    let (env, kube) = cluster();
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    deploy(&env, "reg.example.com/web:0", &[]);
    deploy(&env, "reg.example.com/web:1", &["--requirement", "PAY-1"]);
    // A colleague with a fresh home: the same project set up, no local records.
    let mut other = TestEnv::new();
    other.user = "olga".into();
    for (k, v) in &env.vars {
        other.set_var(k, v);
    }
    project(&other);
    other.ok(&["project", "app", "add", "PAY", "web", "--repo", "web"]);
    other.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "test-ctx",
        "--namespace",
        "pay-test",
    ]);
    let h = other.json(&["deploy", "history", "web", "--env", "test"]);
    assert_eq!(h[1]["requirement"], "PAY-1", "{h}");
    assert_eq!(h[1]["deployed_by"], "tester");
    assert!(h[1]["change_cause"].as_str().unwrap().contains("xone deploy web"), "{h}");
    let st = other.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(st["deployed_by"], "tester");
    assert_eq!(st["record"], Value::Null, "no local record on this machine");
    // Everything PAY-1 deployed is found in the cluster and rolled back from here too.
    let r = other.ok(&["rollback", "--requirement", "PAY-1"]);
    assert!(r.stderr.contains("web in test: ok"), "{r:?}");
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:0");
    other.code(3, &["rollback", "--requirement", "PAY-7"]).says(&["PAY-7 deployed nothing"]);

    // A cluster that cannot be read is not a cluster where nothing was deployed.
    let dead = FakeKube::start();
    let dead_kc = other.root().join("dead-kubeconfig");
    dead.write_kubeconfig(&dead_kc, &[("dead-ctx", "default")]);
    let both = format!("{}:{}", env.root().join("kubeconfig").display(), dead_kc.display());
    other.set_var("KUBECONFIG", &both);
    other.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "dead-ctx",
        "--namespace",
        "pay",
    ]);
    dead.stop();
    other.set_var("XONE_REMOTE_RETRIES", "0");
    other.set_var("XONE_REMOTE_TIMEOUT", "2s");
    other.code(6, &["rollback", "--requirement", "PAY-7"]).says(&[
        "cannot tell what PAY-7 deployed",
        "prod (dead-ctx/pay)",
        "xone doctor",
    ]);
    env.ok(&["requirement", "create", "-p", "PAY", "Vouchers"]);
    deploy(&env, "reg.example.com/web:2", &["--requirement", "PAY-2"]);
    other.code(6, &["rollback", "--requirement", "PAY-2"]).says(&[
        "web in test: ok",
        "the rollback of PAY-2 may be incomplete",
        "prod (dead-ctx/pay)",
    ]);
}

#[test]
fn a_failed_rollout_is_rolled_back_and_exits_7_saying_what_failed() {
    let (env, kube) = cluster();
    kube.pod_behavior(
        "web:broken",
        PodBehavior::Waiting {
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"reg.example.com/web:broken\"".into(),
        },
    );
    kube.pod_behavior(
        "web:crash",
        PodBehavior::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 10s restarting failed container".into(),
        },
    );
    // The first deploy has nothing to go back to.
    env.code(7, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:broken"])
        .says(&["ImagePullBackOff", "on pod web-", "no earlier revision"]);
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    let r =
        env.code(7, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:broken"]);
    r.says(&[
        "the rollout of web to test failed",
        "ImagePullBackOff",
        "Failed to pull image",
        "rolled back",
    ]);
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:1");
    let st = env.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(st["rollout"], "complete", "healthy again: {st}");
    let records = env.json(&["deploy", "status", "web", "--env", "test"])["record"].clone();
    assert_eq!(records["status"], "rolled-back", "{records}");
    // A crash loop, left as it is on request.
    env.code(
        7,
        &[
            "deploy",
            "web",
            "--env",
            "test",
            "--image",
            "reg.example.com/web:crash",
            "--no-rollback",
        ],
    )
    .says(&["CrashLoopBackOff", "--no-rollback", "xone rollback web --env test"]);
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:crash");
    env.ok(&["rollback", "web", "--env", "test"]);
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:1");
}

#[test]
fn a_rollout_past_its_progress_deadline_fails() {
    let (env, kube) = cluster();
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    kube.pod_behavior("web:slow", PodBehavior::Ready { after: Duration::from_secs(120) });
    env.ok(&["config", "set", "deploy.progress_deadline", "2s"]);
    env.code(7, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:slow"])
        .says(&["ProgressDeadlineExceeded", "rolled back"]);
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:1");
}

#[test]
fn dry_run_prints_the_manifests_and_touches_nothing() {
    let (env, kube) = cluster();
    let before = kube.requests().len();
    let out = env
        .ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1", "--dry-run"])
        .stdout;
    assert!(out.contains("kind: Deployment") && out.contains("kind: Service"), "{out}");
    assert!(
        out.contains("image: reg.example.com/web:1") && out.contains("namespace: pay-test"),
        "{out}"
    );
    assert_eq!(kube.requests().len(), before, "a dry run sends nothing");
    let objs = env.json(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "reg.example.com/web:1",
        "--dry-run",
    ]);
    assert_eq!(objs[0]["spec"]["strategy"]["type"], "RollingUpdate");
    let objs = env.json(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "x:1",
        "--dry-run",
        "--strategy",
        "recreate",
    ]);
    assert_eq!(objs[0]["spec"]["strategy"]["type"], "Recreate");
    // Without a kubeconfig at all, a dry run still renders.
    let mut bare = TestEnv::new();
    bare.set_var("KUBECONFIG", "/nonexistent/kubeconfig");
    project(&bare);
    bare.ok(&["project", "app", "add", "PAY", "web", "--repo", "web"]);
    bare.run(&["project", "env", "set", "PAY", "test", "--context", "c", "--namespace", "n"])
        .says(&["not checked"]);
    bare.ok(&["deploy", "web", "--env", "test", "--image", "x:1", "--dry-run"]);
}

#[test]
fn contexts_namespaces_and_refusals_get_clear_errors() {
    let (env, kube) = cluster();
    // A context the kubeconfig lacks: exit 4 listing those it has.
    env.code(
        4,
        &["project", "env", "set", "PAY", "prod", "--context", "nope", "--namespace", "pay"],
    )
    .says(&["no Kubernetes context 'nope'", "test-ctx", "prod-ctx"]);
    // KUBECONFIG with several files is merged as kubectl merges it.
    let extra = env.root().join("extra-kubeconfig");
    let other = FakeKube::start();
    other.write_kubeconfig(&extra, &[("prod-east", "default")]);
    let merged = format!(
        "{}:{}",
        env.vars.iter().find(|(k, _)| k == "KUBECONFIG").unwrap().1,
        extra.display()
    );
    let mut env = env;
    env.set_var("KUBECONFIG", &merged);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "prod-east",
        "--namespace",
        "pay",
    ]);
    other.add_namespace("pay");
    kube.add_namespace("pay");
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:1"]);
    assert!(other.deployment("pay", "web").is_some(), "prod is another cluster");
    assert!(kube.deployment("pay", "web").is_none());
    // A missing namespace: exit 4 suggesting --create-namespace, which creates it.
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "daily",
        "--context",
        "test-ctx",
        "--namespace",
        "pay-daily",
    ]);
    env.code(4, &["deploy", "web", "--env", "daily", "--image", "reg.example.com/web:1"])
        .says(&["namespace pay-daily does not exist", "--create-namespace"]);
    env.ok(&[
        "deploy",
        "web",
        "--env",
        "daily",
        "--image",
        "reg.example.com/web:1",
        "--create-namespace",
    ]);
    assert!(kube.deployment("pay-daily", "web").is_some());
    // A deployer that may not read namespaces still deploys: the apply tells a missing one.
    kube.refuse("get", "namespaces", "pay-daily");
    env.ok(&["deploy", "web", "--env", "daily", "--image", "reg.example.com/web:2"]);
    // RBAC refusal: exit 6 naming the verb, the resource and the namespace.
    kube.refuse("patch", "deployments", "pay-test");
    env.code(6, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"])
        .says(&["patch deployments/web in namespace pay-test", "403"]);
    let st = env.json(&["deploy", "status", "web", "--env", "daily"]);
    assert_eq!(st["rollout"], "complete");
    // Not deployed: exit 3.
    env.code(3, &["deploy", "status", "web", "--env", "test"]).says(&["not deployed to test"]);
    env.code(3, &["deploy", "status", "web", "--env", "gray"]).says(&["no environment gray"]);
}

#[test]
fn server_errors_are_retried_and_conflicts_named() {
    let (env, kube) = cluster();
    // 503 then 429 with Retry-After: retried, and the deploy goes through.
    kube.fail("PATCH", "/deployments/web", 503, 1, None);
    kube.fail("PATCH", "/deployments/web", 429, 1, Some(1));
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    // A server that keeps failing: exit 6 after the retries, the record says failed.
    env.ok(&["config", "set", "remote.retries", "1"]);
    kube.fail("PATCH", "/deployments/web", 500, 2, None);
    env.code(6, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:2"])
        .says(&["failed to patch deployments/web", "after 2 attempts"]);
    let st = env.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(st["image"], "reg.example.com/web:1");
    assert_eq!(st["record"]["status"], "failed", "{st}");
    // A field another manager owns: exit 5 naming it; --force-conflicts takes it.
    kube.set_field_owner("pay-test", "web", "kubectl-scale", ".spec.replicas", json!(5));
    env.code(5, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:2"])
        .says(&["deployments/web is also managed by kubectl-scale", "--force-conflicts"]);
    // Several fields: the API server words it in the plural.
    kube.set_field_owner("pay-test", "web", "kubectl-edit", ".spec.revisionHistoryLimit", json!(3));
    env.code(5, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:2"])
        .says(&["also managed by kubectl-edit, kubectl-scale", "2 conflicts"]);
    env.ok(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "reg.example.com/web:2",
        "--force-conflicts",
    ]);
    let d = kube.deployment("pay-test", "web").unwrap();
    assert_eq!(
        (d["spec"]["replicas"].as_i64(), image_of(&d).as_str()),
        (Some(2), "reg.example.com/web:2")
    );
    // The API server gone: exit 6 naming the context.
    kube.stop();
    env.code(6, &["deploy", "status", "web", "--env", "test"]).says(&["cannot reach", "test-ctx"]);
}

#[test]
fn rollback_of_a_requirement_undoes_each_app_it_deployed() {
    let (env, kube) = cluster();
    env.ok(&["project", "app", "add", "PAY", "api", "--repo", "api", "--replicas", "test=1"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Vouchers"]);
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    env.ok(&["deploy", "api", "--env", "test", "--image", "reg.example.com/api:1"]);
    env.ok(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "reg.example.com/web:2",
        "--requirement",
        "PAY-1",
    ]);
    env.ok(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "reg.example.com/web:3",
        "--requirement",
        "PAY-1",
    ]);
    env.ok(&[
        "deploy",
        "api",
        "--env",
        "test",
        "--image",
        "reg.example.com/api:2",
        "--requirement",
        "PAY-1",
    ]);
    let r = env.ok(&["rollback", "--requirement", "PAY-1"]);
    assert!(r.stderr.contains("api in test: ok") && r.stderr.contains("web in test: ok"), "{r:?}");
    assert!(
        r.stderr.find("api in test").unwrap() < r.stderr.find("web in test").unwrap(),
        "newest first: {r:?}"
    );
    assert_eq!(image_of(&kube.deployment("pay-test", "web").unwrap()), "reg.example.com/web:1");
    assert_eq!(image_of(&kube.deployment("pay-test", "api").unwrap()), "reg.example.com/api:1");
    // A requirement whose first deploy had nothing before it: exit 7, the line says so.
    env.ok(&["project", "app", "add", "PAY", "job", "--repo", "api"]);
    env.ok(&[
        "deploy",
        "job",
        "--env",
        "test",
        "--image",
        "reg.example.com/job:1",
        "--requirement",
        "PAY-2",
    ]);
    env.code(7, &["rollback", "--requirement", "PAY-2"])
        .says(&["job in test: failed", "no revision before PAY-2"]);
    env.code(3, &["rollback", "--requirement", "PAY-9"]);
}

#[test]
fn an_interrupted_rollout_is_recorded_and_settled_by_status() {
    let (env, kube) = cluster();
    kube.pod_behavior("web:slow", PodBehavior::Ready { after: Duration::from_secs(3) });
    let child = env
        .cmd()
        .args(["deploy", "web", "--env", "test", "--image", "reg.example.com/web:slow"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    unsafe_sigint(child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keeps rolling"), "{err}");
    let st = env.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(st["record"]["status"], "interrupted", "still rolling: {st}");
    std::thread::sleep(Duration::from_secs(3));
    let st = env.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(st["rollout"], "complete");
    assert_eq!(st["record"]["status"], "succeeded", "settled: {st}");
}

fn unsafe_sigint(pid: u32) {
    let ok = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn an_app_with_its_own_manifests_gets_its_image_set() {
    let (env, kube) = cluster();
    let web = env.root().join("repos").join("web");
    std::fs::create_dir_all(web.join("k8s")).unwrap();
    std::fs::write(
        web.join("k8s/deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: shop\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: shop\n    spec:\n      containers:\n      - name: proxy\n        image: envoy:1\n      - name: shop\n        image: placeholder\n",
    )
    .unwrap();
    std::fs::write(web.join("k8s/notes.txt"), "not a manifest\n").unwrap();
    let repo = git2::Repository::open(&web).unwrap();
    let mut index = repo.index().unwrap();
    index.add_all(["k8s"], git2::IndexAddOption::DEFAULT, None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = git2::Signature::now("Test", "test@example.invalid").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "manifests", &tree, &[&head]).unwrap();
    env.ok(&["project", "app", "add", "PAY", "shop", "--repo", "web", "--manifests", "k8s"]);
    env.ok(&["deploy", "shop", "--env", "test", "--image", "reg.example.com/shop:7"]);
    let d = kube.deployment("pay-test", "shop").unwrap();
    let images: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["envoy:1", "reg.example.com/shop:7"]);
    // History, status and rollback take the app's container, not the sidecar listed first.
    env.ok(&["deploy", "shop", "--env", "test", "--image", "reg.example.com/shop:8"]);
    let h = env.json(&["deploy", "history", "shop", "--env", "test"]);
    assert_eq!(h[1]["image"], "reg.example.com/shop:8", "{h}");
    let rb = env.json(&["rollback", "shop", "--env", "test"]);
    assert_eq!(
        (rb[0]["status"].as_str(), rb[0]["image"].as_str()),
        (Some("succeeded"), Some("reg.example.com/shop:7")),
        "{rb}"
    );
    let st = env.json(&["deploy", "status", "shop", "--env", "test"]);
    assert_eq!(st["image"], "reg.example.com/shop:7");
    assert_eq!(st["deployment"], "shop");
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "xone");
    env.ok(&["project", "app", "add", "PAY", "bad", "--repo", "web", "--manifests", "nowhere"]);
    env.code(3, &["deploy", "bad", "--env", "test", "--image", "x:1"])
        .says(&["no directory nowhere"]);
}

#[test]
fn doctor_checks_each_environment_cluster_and_a_bad_token_is_refused() {
    let (mut env, kube) = cluster();
    let checks = env.json(&["doctor"]);
    let k8s: Vec<&Value> =
        checks.as_array().unwrap().iter().filter(|c| c["system"] == "kubernetes").collect();
    assert_eq!(k8s.len(), 1, "{checks}");
    assert_eq!(k8s[0]["status"], "ok", "{checks}");
    assert_eq!(k8s[0]["target"], "test-ctx/pay-test");
    assert!(k8s[0]["version"].as_str().unwrap().starts_with('v'), "{checks}");
    // A kubeconfig whose token the server does not know: exit 6 naming the context.
    let kc = env.root().join("kubeconfig");
    let text = std::fs::read_to_string(&kc).unwrap().replace(&kube.token(), "not-the-token");
    let bad = env.root().join("bad-kubeconfig");
    std::fs::write(&bad, text).unwrap();
    env.set_var("KUBECONFIG", bad.to_str().unwrap());
    env.code(6, &["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"])
        .says(&["refused the credentials of context test-ctx (401)"]);
    env.code(6, &["doctor"]).says(&["kubernetes"]);
}

/// kubectl, run against the same cluster as xone (`.ci/run` installs one where none is).
fn kubectl(env: &TestEnv, args: &[&str]) -> String {
    kubectl_in(env, "pay-test", "test-ctx", args)
}

/// kubectl in a namespace and context of the test's kubeconfig.
pub fn kubectl_in(env: &TestEnv, ns: &str, context: &str, args: &[&str]) -> String {
    let kc = env.vars.iter().find(|(k, _)| k == "KUBECONFIG").unwrap().1.clone();
    let out = std::process::Command::new("kubectl")
        .args(args)
        .args(["--namespace", ns, "--context", context])
        .env_clear()
        .env("KUBECONFIG", kc)
        .env("HOME", &env.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("kubectl is installed (apt-get install kubernetes-client)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn kubectl_and_xone_tell_the_same_rollouts() {
    let (env, kube) = cluster();
    // kubectl sends no bearer token over plain HTTP.
    kube.allow_anonymous();
    deploy(&env, "reg.example.com/web:1", &[]);
    deploy(&env, "reg.example.com/web:2", &[]);
    let status = kubectl(&env, &["rollout", "status", "deployment/web", "--timeout=20s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let history = kubectl(&env, &["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("xone deploy web --env test: reg.example.com/web:2 by tester"),
        "{history}"
    );
    // kubectl's undo is seen by xone as revision 3 running the first image...
    kubectl(&env, &["rollout", "undo", "deployment/web"]);
    kubectl(&env, &["rollout", "status", "deployment/web", "--timeout=20s"]);
    let st = env.json(&["deploy", "status", "web", "--env", "test"]);
    assert_eq!(
        (st["revision"].as_i64(), st["image"].as_str()),
        (Some(3), Some("reg.example.com/web:1")),
        "{st}"
    );
    // ...and xone's rollback is seen by kubectl as revision 4.
    env.ok(&["rollback", "web", "--env", "test"]);
    let history = kubectl(&env, &["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["3", "4"], "{history}");
    let detail = kubectl(&env, &["rollout", "history", "deployment/web", "--revision=4"]);
    assert!(detail.contains("reg.example.com/web:2"), "{detail}");
}

/// Every change of state is on the requirement's story: rollbacks by revision, by
/// requirement and after a failed rollout, and the failed rollout itself.
#[test]
fn rollbacks_and_failed_rollouts_are_on_the_requirement_s_log() {
    let (env, kube) = cluster();
    kube.pod_behavior(
        "web:broken",
        PodBehavior::Waiting { reason: "ImagePullBackOff".into(), message: "no such image".into() },
    );
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let actions = || -> Vec<String> {
        let log = env.json(&["requirement", "log", "PAY-1"]);
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!("{}: {}", e["action"].as_str().unwrap(), e["detail"].as_str().unwrap_or(""))
            })
            .collect()
    };
    deploy(&env, "reg.example.com/web:1", &[]);
    deploy(&env, "reg.example.com/web:2", &["--requirement", "PAY-1"]);
    env.ok(&["rollback", "web", "--env", "test"]);
    let log = actions();
    assert!(
        log.iter().any(|a| a.starts_with("rollback: web in test: back to revision 1")),
        "a rollback by revision is on the story of the release it undid: {log:#?}"
    );
    deploy(&env, "reg.example.com/web:3", &["--requirement", "PAY-1"]);
    env.ok(&["rollback", "--requirement", "PAY-1"]);
    assert_eq!(
        actions().iter().filter(|a| a.starts_with("rollback:")).count(),
        2,
        "{:#?}",
        actions()
    );
    env.code(
        7,
        &[
            "deploy",
            "web",
            "--env",
            "test",
            "--image",
            "reg.example.com/web:broken",
            "--requirement",
            "PAY-1",
        ],
    );
    let log = actions();
    assert!(
        log.iter().any(|a| a.starts_with("deploy failed: web to test: ImagePullBackOff")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|a| a.starts_with("rollback: web in test: automatic, after the failed rollout")),
        "{log:#?}"
    );
    let text = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(text.contains("rollback: web in test"), "{text}");
}

/// A cron job or a script that forgot CI: deploy still waits, and the exit code is the
/// rollout's; --no-wait opts out.
#[test]
fn deploy_waits_for_its_rollout_everywhere_unless_told_not_to() {
    let (env, kube) = cluster();
    kube.pod_behavior(
        "web:broken",
        PodBehavior::Waiting { reason: "ImagePullBackOff".into(), message: "no such image".into() },
    );
    let no_ci = |args: &[&str]| {
        env.run_with(args, |c| {
            c.env_remove("CI");
        })
    };
    let r =
        no_ci(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], "succeeded", "followed to its end: {r:?}");
    let r = no_ci(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:broken"]);
    assert_eq!(r.code, 7, "the rollout's exit code: {r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    let r = no_ci(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "reg.example.com/web:2",
        "--no-wait",
        "--json",
    ]);
    assert_eq!(r.json()["status"], "applied", "{r:?}");
    let r = no_ci(&["rollback", "web", "--env", "test", "--json"]);
    assert_eq!(r.json()[0]["status"], "succeeded", "{r:?}");
}
