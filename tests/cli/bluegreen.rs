//! Blue-green releases against the fake Kubernetes API server: the other colour at full size,
//! the Service switched in one write, the colour replaced kept for a switch back.

use serde_json::Value;

use crate::fake_kube::PodBehavior;
use crate::gray::stable;
use crate::harness::*;

fn image(d: &Value) -> &str {
    d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap()
}

/// The images of the pods the app's Service selects.
fn served(kube: &crate::fake_kube::FakeKube, ns: &str) -> Vec<String> {
    let svc = kube.service(ns, "web").unwrap();
    let selector = svc["spec"]["selector"].as_object().unwrap().clone();
    let mut images: Vec<String> = kube
        .pods(ns)
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| selector.iter().all(|(k, v)| p["metadata"]["labels"][k] == *v))
        .map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap().to_string())
        .collect();
    images.sort();
    images.dedup();
    images
}

fn blue_green(env: &TestEnv, image: &str, extra: &[&str]) -> Run {
    let mut args =
        vec!["deploy", "web", "--env", "prod", "--image", image, "--strategy", "blue-green"];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn the_service_switches_to_the_new_colour_and_back() {
    let (mut env, kube) = stable("bg-switch");
    let r = blue_green(&env, "reg.example.com/web:2", &["--keep", "2h"]);
    assert_eq!(r.code, 0, "{r:?}");
    let blue = kube.deployment("bg-switch", "web-blue").expect("the blue colour");
    assert_eq!(
        (image(&blue), blue["spec"]["replicas"].as_i64()),
        ("reg.example.com/web:2", Some(3))
    );
    let svc = kube.service("bg-switch", "web").unwrap();
    assert_eq!(svc["spec"]["selector"]["xone.io/color"], "blue", "{svc}");
    assert_eq!(svc["metadata"]["annotations"]["xone.io/active"], "web-blue");
    // The old version is kept running, and what runs is the new one.
    assert_eq!(image(&kube.deployment("bg-switch", "web").unwrap()), "reg.example.com/web:1");
    let st = env.json(&["deploy", "status", "web", "--env", "prod"]);
    assert_eq!(st["image"], "reg.example.com/web:2", "{st}");
    // A rolling deploy would point the Service at every colour: refused.
    env.code(4, &["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:9"])
        .says(&["released blue-green", "--strategy blue-green"]);
    assert_eq!(served(&kube, "bg-switch"), ["reg.example.com/web:2"]);
    // Rollback switches back at once, to the old pods alone, and again.
    env.ok(&["rollback", "web", "--env", "prod"]);
    let svc = kube.service("bg-switch", "web").unwrap();
    assert!(svc["spec"]["selector"].get("xone.io/color").is_none(), "{svc}");
    assert_eq!(served(&kube, "bg-switch"), ["reg.example.com/web:1"], "the new colour is left out");
    let st = env.json(&["deploy", "status", "web", "--env", "prod"]);
    assert_eq!(st["image"], "reg.example.com/web:1");
    env.ok(&["rollback", "web", "--env", "prod"]);
    assert_eq!(
        env.json(&["deploy", "status", "web", "--env", "prod"])["image"],
        "reg.example.com/web:2"
    );
    // The next release goes to the other colour; the version before the one replaced goes.
    assert_eq!(blue_green(&env, "reg.example.com/web:3", &[]).code, 0);
    let svc = kube.service("bg-switch", "web").unwrap();
    assert_eq!(svc["spec"]["selector"]["xone.io/color"], "green");
    assert!(kube.deployment("bg-switch", "web").is_none(), "the plain one is gone");
    assert!(kube.deployment("bg-switch", "web-blue").is_some(), "blue is kept");
    // Once the keep has passed, the colour kept is removed and there is nothing to go back to.
    env.set_var("XONE_NOW", "2099-01-01T00:00:00Z");
    env.code(4, &["rollback", "web", "--env", "prod"]).says(&["no colour kept"]);
    assert!(kube.deployment("bg-switch", "web-blue").is_none());
}

#[test]
fn a_colour_that_fails_is_removed_and_nothing_is_switched() {
    let (env, kube) = stable("bg-fail");
    kube.pod_behavior(
        "web:bad",
        PodBehavior::Waiting { reason: "ImagePullBackOff".into(), message: "not found".into() },
    );
    env.ok(&["config", "set", "deploy.progress_deadline", "5s"]);
    let r = blue_green(&env, "reg.example.com/web:bad", &[]);
    assert_eq!(r.code, 7, "{r:?}");
    r.says(&["ImagePullBackOff", "nothing was switched"]);
    assert!(kube.deployment("bg-fail", "web-blue").is_none());
    let svc = kube.service("bg-fail", "web").unwrap();
    assert!(svc["spec"]["selector"].get("xone.io/color").is_none());
    env.code(2, &["deploy", "web", "--env", "prod", "--image", "x:1", "--keep", "1h"])
        .says(&["--keep is for --strategy blue-green"]);
}
