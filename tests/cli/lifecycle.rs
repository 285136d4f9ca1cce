use crate::harness::*;

fn status(env: &TestEnv, key: &str) -> String {
    env.json(&["requirement", "show", key])["status"].as_str().unwrap().to_string()
}

fn approve(env: &TestEnv, key: &str, kind: &str) {
    let id = env.ok(&["review", "create", key, "--kind", kind]).stdout.trim().to_string();
    env.ok(&["review", "verdict", &id, "approve"]);
}

#[test]
fn forcing_a_gate_on_a_terminal_asks_why() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    // Off a terminal a reason must be given.
    env.code(2, &["requirement", "advance", "PAY-1", "--force"])
        .says(&["force the gate needs a reason", "--reason"]);
    let r = env.answering("requirement advance PAY-1 --force", &[], Some("pm is on leave\\r"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Why force the gate?"), "{r:?}");
    assert_eq!(status(&env, "PAY-1"), "requirement-review");
    let log = env.json(&["requirement", "log", "PAY-1"]);
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["forced"].as_bool(), last["reason"].as_str()),
        (Some(true), Some("pm is on leave"))
    );
}

/// The whole walk from draft to submitted, with every gate first refused and then passed.
#[test]
fn draft_to_submitted_through_every_gate() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);

    // draft -> requirement-review: every missing item named, exit 4, nothing changed.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "PAY-1 cannot enter requirement-review: 4 missing",
        "unedited template",
        "no pm assigned",
        "no start date",
        "no end date",
        "Hint: xone requirement assign PAY-1 pm=USER",
    ]);
    assert_eq!(status(&env, "PAY-1"), "draft");
    let doc = write(&env, "req.md", b"# Refunds\n\nReal requirement text.\n");
    env.ok(&["requirement", "doc", "PAY-1", "--attach", &doc]);
    env.ok(&["requirement", "assign", "PAY-1", "pm=pat", "qa=quinn"]);
    env.ok(&["requirement", "schedule", "PAY-1", "--start", "2026-12-01"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["1 missing", "no end date"]);
    env.ok(&["requirement", "schedule", "PAY-1", "--end", "2026-12-20"]);
    let j = env.json(&["requirement", "advance", "PAY-1"]);
    assert_eq!(
        (j["from"].as_str(), j["to"].as_str(), j["forced"].as_bool()),
        (Some("draft"), Some("requirement-review"), Some(false))
    );

    // requirement-review -> design: the latest review's verdict counts.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["no requirement review"]);
    let r1 =
        env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]).stdout.trim().to_string();
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&[&format!("review #{r1} has no verdict")]);
    env.ok(&["review", "verdict", &r1, "reject", "--note", "scope unclear"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["was not approved (reject)"]);
    approve(&env, "PAY-1", "requirement");
    env.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env, "PAY-1"), "design");

    // design -> developing
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["no tech-design document", "no tech-design review"]);
    env.code(4, &["review", "create", "PAY-1", "--kind", "tech-design"])
        .says(&["no tech-design document to review"]);
    env.ok(&[
        "requirement",
        "doc",
        "PAY-1",
        "tech-design",
        "--attach",
        &write(&env, "td.md", b"# Design\n"),
    ]);
    approve(&env, "PAY-1", "tech-design");
    env.ok(&["requirement", "advance", "PAY-1"]);

    // developing -> submitted: branches with commits ahead in every repository.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "no feature branch",
        "no test-cases review",
        "no test-submit date",
    ]);
    env.ok(&["branch", "create", "PAY-1"]);
    env.ok(&[
        "requirement",
        "doc",
        "PAY-1",
        "test-cases",
        "--attach",
        &write(&env, "tc.md", b"# Cases\n"),
    ]);
    approve(&env, "PAY-1", "test-cases");
    env.ok(&["requirement", "schedule", "PAY-1", "--test-submit", "2026-12-10"]);
    let r = env.code(4, &["requirement", "advance", "PAY-1"]);
    r.says(&["2 missing", "in api has no commits ahead", "in web has no commits ahead"]);
    let branch =
        env.json(&["requirement", "show", "PAY-1"])["branch"].as_str().unwrap().to_string();
    assert_eq!(branch, "feature/PAY-1-refunds");
    commit(&git2::Repository::open(&web).unwrap(), "a.txt", "a", "PAY-1: work", Some(&branch));
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["1 missing", "in api has no commits ahead"]);
    commit(&git2::Repository::open(&api).unwrap(), "b.txt", "b", "PAY-1: work", Some(&branch));
    env.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(status(&env, "PAY-1"), "submitted");

    // submitted -> testing needs the integration, builds, a test deployment and its smoke.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "cannot enter testing",
        "release/test in web does not hold the tip",
        "no app is built",
        "project PAY has no test environment",
    ]);
    env.code(2, &["requirement", "advance", "PAY-1", "--force"]).says(&["--reason"]);
    let j = env.json(&[
        "requirement",
        "advance",
        "PAY-1",
        "--force",
        "--reason",
        "tested by hand on staging",
    ]);
    assert_eq!(j["forced"], true);
    assert_eq!(
        j["missing"].as_array().unwrap().len(),
        4,
        "two repositories to integrate, an app to build, a test environment"
    );

    // testing -> gray: QA's sign-off, by a qa member only, and the plans.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&[
        "no qa sign-off",
        "no release-plan document",
        "no rollback-plan document",
    ]);
    env.code(4, &["requirement", "signoff", "PAY-1"]).says(&["tester is not a qa member of PAY"]);
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
    assert_eq!(status(&env, "PAY-1"), "gray");

    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["prod"]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "released by hand"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["post-release watch"]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "watched by hand"]);
    assert_eq!(status(&env, "PAY-1"), "done");
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["no next step"]);
    env.code(4, &["requirement", "cancel", "PAY-1", "--reason", "late"])
        .says(&["can no longer change"]);

    // Every state change is an event: who, when, what, why, forced.
    let log = env.json(&["requirement", "log", "PAY-1"]);
    let moves: Vec<(String, String, bool)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"].is_string() && e["from"].is_string())
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
                e["forced"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(moves.len(), 8);
    assert_eq!(moves[4], ("submitted".into(), "testing".into(), true));
    assert_eq!(moves[3], ("developing".into(), "submitted".into(), false));
    let forced = log.as_array().unwrap().iter().find(|e| e["forced"] == true).unwrap();
    assert_eq!(forced["reason"], "tested by hand on staging");
    assert_eq!(forced["actor"], "tester");
    assert!(forced["detail"].as_str().unwrap().contains("no test environment"));
    assert!(forced["at"].as_str().unwrap().ends_with('Z'));
    let signoff = log.as_array().unwrap().iter().find(|e| e["action"] == "signoff").unwrap();
    assert_eq!(signoff["actor"], "quinn");
    let text = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(
        text.contains("advance submitted -> testing: gate forced past")
            && text.contains("[forced] (reason: tested by hand on staging)"),
        "{text}"
    );
}

#[test]
fn reject_and_cancel() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    env.code(4, &["requirement", "reject", "PAY-1", "--reason", "bad"])
        .says(&["only submitted or testing"]);
    for _ in 0..4 {
        env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "skip"]);
    }
    assert_eq!(status(&env, "PAY-1"), "submitted");
    env.code(2, &["requirement", "reject", "PAY-1"]).says(&["needs a reason"]);
    env.ok(&["requirement", "reject", "PAY-1", "--reason", "smoke test fails on login"]);
    assert_eq!(status(&env, "PAY-1"), "developing");
    let log = env.json(&["requirement", "log", "PAY-1"]);
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["from"].as_str(), last["to"].as_str()),
        (Some("reject"), Some("submitted"), Some("developing"))
    );
    assert_eq!(last["reason"], "smoke test fails on login");

    env.code(2, &["requirement", "cancel", "PAY-1"]).says(&["needs a reason"]);
    env.ok(&["requirement", "cancel", "PAY-1", "--reason", "superseded by PAY-2"]);
    assert_eq!(status(&env, "PAY-1"), "cancelled");
    env.code(4, &["requirement", "advance", "PAY-1", "--force", "--reason", "x"]);
    env.code(4, &["requirement", "assign", "PAY-1", "pm=pat"]).says(&["cancelled"]);
    env.code(3, &["requirement", "log", "PAY-9"]);
}
