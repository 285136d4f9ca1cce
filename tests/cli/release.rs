//! The lifecycle from submitted to done, for real: a build on the Docker engine pushed to the
//! registry, deployed by digest to the fake cluster, smoked, signed off, released to prod and
//! watched on the real Prometheus.

use crate::build::{login, services, setup, unique, TESTS_PASS};
use crate::fake_kube::FakeKube;
use crate::gitlab::lab;
use crate::harness::*;
use crate::watch::{traffic, Metrics};

fn status(env: &TestEnv) -> String {
    env.json(&["requirement", "show", "PAY-1"])["status"].as_str().unwrap().to_string()
}

#[test]
fn submitted_to_done_through_the_release_gates() {
    let s = services();
    let (mut env, _web, image) = setup(&s);
    let kube = FakeKube::start();
    let kc = env.root().join("kubeconfig");
    kube.write_kubeconfig(&kc, &[("test-ctx", "default"), ("prod-ctx", "default")]);
    env.set_var("KUBECONFIG", kc.to_str().unwrap());
    kube.add_namespace("life-test");
    kube.add_namespace("life-prod");
    let prometheus = std::env::var("XONE_TEST_PROMETHEUS").expect("scripts/test starts Prometheus");
    env.ok(&["project", "member", "add", "PAY", "quinn", "--role", "qa"]);
    env.ok(&["project", "member", "add", "PAY", "pat", "--role", "pm"]);
    let failing_smoke =
        r#"echo "smoke: $XONE_APP $XONE_ENV $XONE_NAMESPACE"; echo "GET /health 503"; exit 1"#;
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "test-ctx",
        "--namespace",
        "life-test",
        "--smoke",
        failing_smoke,
    ]);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "prod-ctx",
        "--namespace",
        "life-prod",
        "--prometheus",
        &prometheus,
    ]);
    for _ in 0..4 {
        env.ok(&[
            "requirement",
            "advance",
            "PAY-1",
            "--force",
            "--reason",
            "earlier gates are tested elsewhere",
        ]);
    }
    assert_eq!(status(&env), "submitted");

    // submitted -> testing: integration, a measured build, a healthy deploy of its image.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "release/test in web does not hold the tip",
        "no build of web",
        "web is not deployed to test",
    ]);
    env.ok(&["branch", "integrate", "test", "PAY-1"]);
    let b =
        env.json(&["build", "web", "--requirement", "PAY-1", "--test-cmd", TESTS_PASS, "--push"]);
    let id = b["id"].to_string();
    let digest = b["digest"].as_str().expect("a pushed build has a digest").to_string();
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["web is not deployed to test"]);
    // Deployed by a tag that is not the build's: it does not count.
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/other:1"]);
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["runs reg.example.com/other:1, not an image built from a commit that stands"]);
    let d = env.json(&["deploy", "web", "--env", "test", "--build", &id]);
    assert_eq!(d["requirement"], "PAY-1", "the build's requirement: {d}");
    let running = kube.deployment("life-test", "web").unwrap();
    let pinned =
        running["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string();
    assert!(digest.starts_with(&format!("{image}@sha256:")), "{digest}");
    assert_eq!(pinned, digest, "pinned by digest");
    // The smoke check fails: back to developing, its output the reason.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "failed its smoke check",
        "rejected back to developing",
        "GET /health 503",
    ]);
    assert_eq!(status(&env), "developing");
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("smoke: web test life-test"), "the smoke output is the reason: {log}");
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "fixed the health check"]);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--smoke",
        r#"test "$XONE_IMAGE" = "$EXPECTED""#,
    ]);
    let mut with_expected = env.as_user("tester");
    with_expected.set_var("EXPECTED", &pinned);
    with_expected.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env), "testing");

    // testing -> gray: a qa sign-off by the acting user, release and rollback plans.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "no qa sign-off",
        "no release-plan",
        "no rollback-plan",
    ]);
    env.code(4, &["requirement", "signoff", "PAY-1"]).says(&["not a qa member"]);
    env.as_user("quinn").ok(&["requirement", "signoff", "PAY-1", "--note", "all cases pass"]);
    env.ok(&[
        "requirement",
        "doc",
        "PAY-1",
        "release-plan",
        "--attach",
        &write(&env, "rp.md", b"# Release\n"),
    ]);
    env.ok(&[
        "requirement",
        "doc",
        "PAY-1",
        "rollback-plan",
        "--attach",
        &write(&env, "rb.md", b"# Rollback\n"),
    ]);
    env.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env), "gray");

    // gray -> released: the product manager accepted it; prod runs the build's image, healthy.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "web is not deployed to prod",
        "the product manager has not accepted the gray release",
    ]);
    env.as_user("quinn")
        .code(4, &["requirement", "signoff", "PAY-1"])
        .says(&["quinn is not a pm member of PAY"]);
    env.as_user("pat").ok(&[
        "requirement",
        "signoff",
        "PAY-1",
        "--note",
        "the gray users are happy",
    ]);
    // Through a gray release, as the project requires: the build on 1 of 2 instances beside
    // the version before, then promoted with its analyses passing.
    env.ok(&["config", "set", "gates.require_gray", "true"]);
    env.ok(&["project", "app", "set", "PAY", "web", "--replicas", "prod=2"]);
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:before"]);
    env.ok(&["gray", "start", "web", "--env", "prod", "--build", &id, "--analysis", "restarts"]);
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["the gray release of web in prod is still in flight"]);
    let promoted = env.json(&["gray", "promote", "web", "--env", "prod"]);
    assert_eq!(
        (promoted["phase"].as_str(), promoted["passed"].as_bool()),
        (Some("promoted"), Some(true))
    );
    env.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env), "released");

    // released -> done: a passed watch at least gates.watch_window long.
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["no post-release watch of web on prod", "xone deploy watch web --env prod"]);
    let _metrics = Metrics::serve("life-prod", traffic("web", "life-prod", 30.0, 0.0));
    env.ok(&["config", "set", "gates.watch_window", "3s"]);
    env.ok(&["deploy", "watch", "web", "--env", "prod", "--window", "2s", "--interval", "1s"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["at least 3s long"]);
    env.ok(&["deploy", "watch", "web", "--env", "prod", "--window", "3s", "--interval", "1s"]);
    env.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env), "done");
    let show = env.json(&["requirement", "show", "PAY-1"]);
    let deploys: Vec<&str> =
        show["deploys"].as_array().unwrap().iter().map(|d| d["env"].as_str().unwrap()).collect();
    assert_eq!(deploys, ["prod", "test"], "the requirement's deployments, newest first: {show}");
    assert!(show["watches"].as_array().unwrap().iter().any(|w| w["status"] == "passed"), "{show}");
}

/// Tests passed in a GitLab pipeline at the branch tip; the image built here from that same
/// commit, without tests, and deployed to test: the image of a commit that stands for the
/// branch, so the gate opens (SPEC §2).
#[test]
fn a_pipeline_s_tests_and_an_image_built_here_from_the_same_commit_open_the_test_gate() {
    let s = services();
    let (mut env, fake) = lab();
    env.set_var("DOCKER_HOST", &std::env::var("DOCKER_HOST").unwrap());
    let kube = FakeKube::start();
    let kc = env.root().join("kubeconfig");
    kube.write_kubeconfig(&kc, &[("test-ctx", "default")]);
    env.set_var("KUBECONFIG", kc.to_str().unwrap());
    kube.add_namespace("mixed-test");
    env.ok(&["project", "create", "PAY", "--name", "Payments", "--repo", "gitlab:pay/web"]);
    let image = format!("{}/pay/mixed-{}", s.registry, std::process::id() as u64 * 1000 + unique());
    env.ok(&["project", "app", "add", "PAY", "web", "--repo", "web", "--image", &image]);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "test-ctx",
        "--namespace",
        "mixed-test",
        "--smoke",
        "true",
    ]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let dockerfile = format!("FROM {}\nCOPY app.txt /app.txt\n", s.base);
    let branch = "feature/PAY-1-refund-orders";
    let tip = fake.commit(
        "pay/web",
        branch,
        &[("Dockerfile", &dockerfile), ("app.txt", "refunds\n")],
        "PAY-1: refunds",
    );
    login(&env, &s, &s.password);
    for _ in 0..4 {
        env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "earlier gates"]);
    }
    env.ok(&["branch", "integrate", "test", "PAY-1"]);

    // The image, built here from the tip without tests, and deployed.
    let local = env.json(&["build", "web", "--requirement", "PAY-1", "--push"]);
    assert_eq!(local["sha"], tip.as_str(), "{local}");
    assert!(local["tests"].is_null(), "no tests measured here: {local}");
    env.ok(&["deploy", "web", "--env", "test", "--build", &local["id"].to_string()]);
    // No build measured tests at that commit yet: the image stands for nothing.
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["no build of web", "not an image built from a commit that stands for its branch"]);

    // The pipeline measures the tests at the same commit: now the running image counts.
    let p = env.json(&["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    assert_eq!((p["sha"].as_str(), p["status"].as_str()), (Some(tip.as_str()), Some("success")));
    assert!(p["image"].is_null(), "a pipeline build records no image: {p}");
    env.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env), "testing");

    // An image from another commit does not count, whatever build made it.
    env.ok(&["requirement", "reject", "PAY-1", "--reason", "once more"]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "resubmitted"]);
    fake.commit("pay/web", branch, &[("more.txt", "more\n")], "PAY-1: more");
    env.ok(&["branch", "integrate", "test", "PAY-1"]);
    env.ok(&["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "not an image built from a commit that stands for its branch",
        "no image was built from",
    ]);
}

/// An image built from the integration branch holds every requirement integrated there:
/// rolling back one requirement's release takes the others back too, so they are named and
/// the rollback asks first.
#[test]
fn a_requirement_s_rollback_names_those_riding_in_the_same_integrated_image() {
    let s = services();
    let (mut env, web, _image) = setup(&s);
    let kube = FakeKube::start();
    let kc = env.root().join("kubeconfig");
    kube.write_kubeconfig(&kc, &[("prod-ctx", "default")]);
    env.set_var("KUBECONFIG", kc.to_str().unwrap());
    kube.add_namespace("ride-prod");
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "prod-ctx",
        "--namespace",
        "ride-prod",
    ]);
    env.ok(&["requirement", "create", "-p", "PAY", "Coupons"]);
    env.ok(&["branch", "create", "PAY-2"]);
    let repo = git2::Repository::open(&web).unwrap();
    commit(&repo, "coupon.txt", "coupons\n", "PAY-2: coupons", Some("feature/PAY-2-coupons"));
    env.ok(&["branch", "integrate", "prod", "PAY-1", "PAY-2"]);
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:before"]);
    let b = env.json(&["build", "web", "--ref", "release/prod"]);
    assert_eq!(b["status"], "success", "{b}");
    let id = b["id"].as_i64().unwrap().to_string();
    env.ok(&["deploy", "web", "--env", "prod", "--build", &id, "--requirement", "PAY-1"]);
    env.code(4, &["rollback", "--requirement", "PAY-1"]).says(&["also carry PAY-2", "--yes"]);
    env.ok(&["rollback", "--requirement", "PAY-1", "--yes"]);
    let st = env.json(&["deploy", "status", "web", "--env", "prod"]);
    assert_eq!(st["image"], "reg.example.com/web:before");
}
