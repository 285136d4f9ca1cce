//! Builds on GitLab CI, against the fake GitLab's pipelines: started on the ref, followed to
//! their end, their test report and coverage held to the gates; and picked up again later.

use std::time::Duration;

use crate::fake_gitlab::{Ci, FakeGitLab, Fault};
use crate::gitlab::{lab, pay};
use crate::harness::*;

const BRANCH: &str = "feature/PAY-1-refund-orders";

fn with_app() -> (TestEnv, FakeGitLab) {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["project", "app", "add", "PAY", "web", "--repo", "web"]);
    env.ok(&["branch", "create", "PAY-1"]);
    fake.commit("pay/web", BRANCH, &[("refund.txt", "refund\n")], "PAY-1: refunds");
    (env, fake)
}

fn failing_ci() -> Ci {
    Ci {
        jobs: vec![
            ("build".into(), "compile".into(), true, "ok\n".into()),
            (
                "test".into(),
                "unit".into(),
                false,
                "running 2 tests\nassertion failed: refund amount\n".into(),
            ),
            ("deploy".into(), "package".into(), true, "".into()),
        ],
        coverage: Some(61.0),
        tests: vec![
            ("pay".into(), "refund".into(), "failed".into()),
            ("pay".into(), "void".into(), "success".into()),
        ],
        ..Ci::default()
    }
}

#[test]
fn a_pipeline_is_followed_to_its_end_and_held_to_the_gates() {
    let (env, fake) = with_app();
    let r = env.ok(&["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait", "--json"]);
    let b = r.json();
    assert_eq!(b["kind"], "pipeline");
    assert_eq!(b["status"], "success", "{b}");
    assert_eq!(b["sha"], fake.branch_sha("pay/web", BRANCH).unwrap());
    assert_eq!(b["ref"], BRANCH);
    assert!(b["pipeline_url"].as_str().unwrap().contains("/pay/web/-/pipelines/"), "{b}");
    assert_eq!(b["tests"]["total"], 2);
    assert_eq!(b["coverage"], 85.5);
    let gates = b["gates"].as_array().unwrap();
    let names: Vec<&str> = gates.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pipeline", "tests", "coverage"]);
    assert!(gates.iter().all(|g| g["passed"] == true), "{b}");
    // One line per job state change, off a terminal.
    assert!(
        r.stderr.contains("job compile (build): success")
            && r.stderr.contains("job unit (test): success"),
        "{}",
        r.stderr
    );
    // In stage order, though GitLab lists a pipeline's jobs newest first.
    let first = |s: &str| r.stderr.find(s).unwrap_or_else(|| panic!("{s}: {}", r.stderr));
    assert!(first("job compile (build)") < first("job unit (test)"), "{}", r.stderr);
    assert_eq!(fake.pipeline_count(), 1);
    // The job's own log.
    let id = b["id"].as_i64().unwrap().to_string();
    assert!(env.ok(&["build", "log", &id, "--job", "unit"]).stdout.contains("running 2 tests"));
    env.code(3, &["build", "log", &id, "--job", "nope"]).says(&["compile, unit"]);
}

#[test]
fn a_failing_pipeline_names_the_job_its_log_and_the_failing_tests() {
    let (env, fake) = with_app();
    fake.set_ci("pay/web", BRANCH, failing_ci());
    let r = env.code(4, &["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    r.says(&[
        "failed its gates: pipeline, tests, coverage",
        "unit (test)",
        "assertion failed: refund amount",
        "pay::refund",
        "coverage: 61",
    ]);
    let b = env.json(&["build", "show", "1"]);
    assert_eq!(b["status"], "failed");
    assert_eq!(b["tests"]["failed"], 1);
    // Every job's log under its name, in stage order.
    let log = env.ok(&["build", "log", "1"]).stdout;
    let at = |s: &str| log.find(s).unwrap_or_else(|| panic!("{s} not in {log}"));
    assert!(at("==> compile (build): success <==\nok\n") < at("==> unit (test): failed <=="));
    assert!(at("==> unit (test): failed <==") < at("running 2 tests\nassertion failed"));
    assert!(at("assertion failed") < at("==> package (deploy): skipped <==\n(no log"), "{log}");
    // A log GitLab will not give is that job's gap, not the whole answer's.
    fake.fail("/trace", Fault::Says { code: 403, message: "403 Forbidden".into() }, 1);
    let log = env.ok(&["build", "log", "1"]).stdout;
    assert!(log.contains("==> compile (build): success <==\n(log unavailable: "), "{log}");
    assert!(log.contains("running 2 tests\nassertion failed"), "{log}");
    assert!(r.stderr.contains("job package (deploy): skipped"), "{}", r.stderr);
    // The failing job's log tail came as the job failed, before the verdict.
    let tail = r.stderr.find("  | assertion failed: refund amount").expect("the tail streamed");
    assert!(tail < r.stderr.find("Error:").unwrap(), "{}", r.stderr);
}

#[test]
fn gates_turned_off_in_the_configuration_are_not_applied() {
    let (env, fake) = with_app();
    fake.set_ci("pay/web", BRANCH, failing_ci());
    std::fs::write(
        env.work.join(".xone.toml"),
        "[gates]\ntests = false\npipeline = false\ncoverage = 0\n",
    )
    .unwrap();
    let b = env.json(&["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    assert_eq!(b["gates"], serde_json::json!([]), "{b}");
    assert_eq!(b["status"], "success");
    assert_eq!(b["tests"]["failed"], 1, "still measured and recorded");
}

#[test]
fn without_wait_the_build_returns_and_show_picks_it_up() {
    let (env, fake) = with_app();
    let b = env.json(&["build", "web", "--ref", "main", "--pipeline"]);
    assert_eq!(b["status"], "running", "{b}");
    assert!(b["requirement"].is_null());
    std::thread::sleep(Duration::from_millis(900));
    let later = env.json(&["build", "show", "1"]);
    assert_eq!(later["status"], "success", "{later}");
    assert_eq!(later["coverage"], 85.5);
    drop(fake);
}

#[test]
fn a_pipeline_that_never_starts_is_given_up_on_but_not_lost() {
    let (mut env, fake) = with_app();
    fake.set_ci("pay/web", BRANCH, Ci { start_after: None, ..Ci::default() });
    env.set_var("XONE_BUILD_START_TIMEOUT", "1s");
    let r = env.code(6, &["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    r.says(&["has not started", "runners", "xone build show 1"]);
    assert_eq!(env.json(&["build", "show", "1"])["status"], "running");
}

#[test]
fn an_interrupted_wait_leaves_the_pipeline_running_and_show_picks_it_up() {
    let (env, fake) = with_app();
    fake.set_ci("pay/web", BRANCH, Ci { job_time: Duration::from_millis(700), ..Ci::default() });
    let mut child = env
        .cmd()
        .args(["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    let listed = env.json(&["build", "list"]);
    assert_eq!(listed[0]["status"], "interrupted", "{listed}");
    std::thread::sleep(Duration::from_millis(1500));
    let b = env.json(&["build", "show", "1"]);
    assert_eq!(b["status"], "success", "{b}");
    assert_eq!(fake.pipeline_count(), 1, "the pipeline went on; none started again");
}

#[test]
fn flags_that_mean_nothing_for_a_pipeline_are_refused() {
    let (env, fake) = with_app();
    env.code(2, &["build", "web", "--ref", "main", "--pipeline", "--push"]);
    env.code(2, &["build", "web", "--ref", "main", "--pipeline", "--test-cmd", "true"]);
    env.code(2, &["build", "web", "--ref", "main", "--pipeline", "--force", "--reason", "x"])
        .says(&["--wait"]);
    assert_eq!(fake.pipeline_count(), 0);
}

#[test]
fn pipelines_need_gitlab_and_an_existing_ref() {
    let (env, fake) = with_app();
    env.code(3, &["build", "web", "--ref", "release/nope", "--pipeline"])
        .says(&["has no ref release/nope on GitLab"]);
    let local = env.repo("local", false);
    env.ok(&["project", "repo", "add", "PAY", local.to_str().unwrap()]);
    env.ok(&["project", "app", "add", "PAY", "tool", "--repo", "local"]);
    env.code(4, &["build", "tool", "--ref", "main", "--pipeline"])
        .says(&["not on GitLab", "--local"]);
    assert_eq!(env.json(&["build", "list"]), serde_json::json!([]));
    assert_eq!(fake.pipeline_count(), 0);
}

#[test]
fn inside_gitlab_ci_the_job_token_triggers_the_pipeline() {
    let (mut env, fake) = with_app();
    env.vars.retain(|(k, _)| !k.starts_with("XONE_GITLAB"));
    let user = fake.add_user("ci-bot", "glpat-unused");
    fake.add_job_token(user, "job-token-7");
    env.set_var("GITLAB_CI", "true");
    env.set_var("CI_SERVER_URL", &fake.url);
    env.set_var("CI_JOB_TOKEN", "job-token-7");
    let b = env.json(&["build", "web", "--ref", "main", "--pipeline"]);
    assert_eq!(b["status"], "running", "{b}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/trigger/pipeline")));
    // Following it needs more than a job token may read: the error says what to give the job.
    let r = env.code(6, &["build", "web", "--ref", "main", "--pipeline", "--wait"]);
    r.says(&["CI job token", "XONE_GITLAB_TOKEN"]);
}

#[test]
fn on_a_terminal_each_job_has_its_live_line() {
    let (env, _fake) = with_app();
    let t = env.in_terminal("build web --requirement PAY-1 --pipeline --wait", &[]);
    assert_eq!(t.code, 0, "{t:?}");
    assert!(t.stdout.contains("compile (build)") && t.stdout.contains("unit (test)"), "{t:?}");
    assert!(t.stdout.contains("build 1 success"), "{t:?}");
}
