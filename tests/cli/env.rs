//! Environments: where a project's apps run, what watches them, where their images go.

use crate::harness::*;

#[test]
fn environments_are_set_listed_and_updated() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "PAY", "--name", "Payments"]);
    env.code(2, &["project", "env", "set", "PAY", "test", "--context", "kind-test"])
        .says(&["needs --namespace"]);
    let e = env.json(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "kind-test",
        "--namespace",
        "pay-test",
        "--registry",
        "registry.example.com/pay",
        "--prometheus",
        "http://prometheus:9090",
        "--smoke",
        "curl -f http://web/healthz",
    ]);
    assert_eq!(e["registry"], "registry.example.com/pay");
    env.ok(&["project", "env", "set", "PAY", "prod", "--context", "prod", "--namespace", "pay"]);
    // An update keeps what it does not name.
    env.ok(&["project", "env", "set", "PAY", "test", "--namespace", "pay-test-2"]);
    let list = env.json(&["project", "env", "list", "PAY"]);
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["test", "prod"], "daily, test, gray, prod order: {list}");
    assert_eq!(list[0]["namespace"], "pay-test-2");
    assert_eq!(list[0]["context"], "kind-test");
    assert_eq!(list[0]["smoke"], "curl -f http://web/healthz");
    // Bad values name the form.
    env.code(
        2,
        &["project", "env", "set", "PAY", "gray", "--context", "c", "--namespace", "Pay_Gray"],
    )
    .says(&["invalid namespace"]);
    env.code(
        2,
        &[
            "project",
            "env",
            "set",
            "PAY",
            "gray",
            "--context",
            "c",
            "--namespace",
            "g",
            "--registry",
            "https://r.example.com",
        ],
    )
    .says(&["scheme"]);
    env.code(
        2,
        &[
            "project",
            "env",
            "set",
            "PAY",
            "gray",
            "--context",
            "c",
            "--namespace",
            "g",
            "--prometheus",
            "prometheus:9090",
        ],
    );
    env.code(3, &["project", "env", "list", "NOPE"]);
    // Environment names complete from the state database.
    let r = env.run_with(&["--", "xone", "project", "env", "set", "PAY", "pr"], |c| {
        c.env("COMPLETE", "fish");
    });
    assert!(r.stdout.contains("prod"), "{r:?}");
}
