//! xone against a fake GitLab reached only through `gitlab.url`: repositories resolved
//! through the API, branches, merge requests, integration and sync pushed over git's smart
//! HTTP, checkouts cloned into the workspace, auth and doctor.

use crate::fake_gitlab::FakeGitLab;
use crate::harness::*;

pub const TOKEN: &str = "glpat-tester-secret-0123";

/// A fake GitLab with user `tester`, projects pay/web and pay/sub/api, and an environment
/// pointed at it with a token in XONE_GITLAB_TOKEN.
pub fn lab() -> (TestEnv, FakeGitLab) {
    let mut env = TestEnv::new();
    let fake = FakeGitLab::start(&env.root().join("gitlab"));
    fake.add_user("tester", TOKEN);
    fake.add_project("pay/web");
    fake.add_project("pay/sub/api");
    env.set_var("XONE_GITLAB_URL", &fake.url);
    env.set_var("XONE_GITLAB_TOKEN", TOKEN);
    env.set_var("XONE_WORKSPACE_DIR", &env.root().join("ws").to_string_lossy());
    (env, fake)
}

/// PAY on the two GitLab projects (one by `gitlab:` path, one by clone URL) with PAY-1.
pub fn pay(env: &TestEnv, fake: &FakeGitLab) {
    let api_url = format!("{}/pay/sub/api.git", fake.url);
    env.ok(&[
        "project",
        "create",
        "PAY",
        "--name",
        "Payments",
        "--repo",
        "gitlab:pay/web",
        "--repo",
        &api_url,
    ]);
    env.ok(&["project", "member", "add", "PAY", "pat", "--role", "pm"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders", "--assign", "pm=pat"]);
}

const BRANCH: &str = "feature/PAY-1-refund-orders";

#[test]
fn repositories_are_resolved_through_the_api() {
    let (env, fake) = lab();
    pay(&env, &fake);
    let p = env.json(&["project", "show", "PAY"]);
    let repos = p["repos"].as_array().unwrap();
    assert_eq!(repos.len(), 2, "{p}");
    let api = repos.iter().find(|r| r["name"] == "api").expect("api by its clone URL");
    assert_eq!(api["kind"], "gitlab");
    assert_eq!(api["location"], "pay/sub/api");
    assert_eq!(api["default_branch"], "main");
    assert_eq!(api["clone_url"], format!("{}/pay/sub/api.git", fake.url));
    assert!(api["remote_id"].as_i64().unwrap() > 0);
    // The web URL of a page of the project works too.
    env.ok(&[
        "project",
        "create",
        "WEB",
        "--name",
        "W",
        "--repo",
        &format!("{}/pay/web/-/tree/main", fake.url),
    ]);

    // A project GitLab does not have: exit 3, named, nothing stored.
    env.code(3, &["project", "repo", "add", "PAY", "gitlab:pay/nope"])
        .says(&["pay/nope", "GitLab has no project"]);
    assert_eq!(env.json(&["project", "show", "PAY"])["repos"].as_array().unwrap().len(), 2);
    // Every request identified xone and carried the token in its header, never in the URL.
    let log = fake.requests();
    assert!(log.iter().all(|r| r.user_agent.starts_with("xone/")), "{log:?}");
    assert!(log
        .iter()
        .all(|r| r.auth.as_ref().is_some_and(|(h, v)| h == "private-token" && v == TOKEN)));
    assert!(log.iter().all(|r| !r.path.contains(TOKEN)));
}

#[test]
fn branches_are_created_listed_and_deleted_on_gitlab() {
    let (env, fake) = lab();
    pay(&env, &fake);
    fake.clear_log();
    let r = env.json(&["branch", "create", "PAY-1"]);
    assert!(r.as_array().unwrap().iter().all(|x| x["status"] == "done"), "{r}");
    let main = fake.branch_sha("pay/web", "main").unwrap();
    assert_eq!(fake.branch_sha("pay/web", BRANCH).unwrap(), main);
    assert!(fake.branch_sha("pay/sub/api", BRANCH).is_some());
    // One request per repository: the project ids were stored at `repo add`.
    let posts: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(fake.requests().len(), 2, "{:?}", fake.requests());

    // Again: the branches exist with the expected history, so nothing is done.
    let again = env.json(&["branch", "create", "PAY-1"]);
    assert!(again.as_array().unwrap().iter().all(|x| x["status"] == "unchanged"), "{again}");

    fake.commit("pay/web", BRANCH, &[("refund.txt", "refund\n")], "PAY-1: refunds");
    fake.commit("pay/web", "main", &[("other.txt", "x\n")], "elsewhere");
    let list = env.json(&["branch", "list", "PAY-1"]);
    let web = list.as_array().unwrap().iter().find(|b| b["repo"] == "web").unwrap().clone();
    assert_eq!((web["ahead"].as_u64(), web["behind"].as_u64()), (Some(1), Some(1)), "{list}");
    assert_eq!(web["sha"], fake.branch_sha("pay/web", BRANCH).unwrap());
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert!(show.to_string().contains("PAY-1: refunds"), "commits listed: {show}");

    // Unmerged work is kept unless forced.
    env.code(4, &["branch", "delete", "PAY-1", "--repo", "web", "--yes"]).says(&["not merged"]);
    assert!(fake.branch_sha("pay/web", BRANCH).is_some());
    env.ok(&["branch", "delete", "PAY-1", "--yes", "--force"]);
    assert!(fake.branch_sha("pay/web", BRANCH).is_none());
    assert!(fake.branch_sha("pay/sub/api", BRANCH).is_none());
}

#[test]
fn a_branch_with_unrelated_history_is_a_conflict() {
    let (env, fake) = lab();
    pay(&env, &fake);
    fake.orphan_branch("pay/web", BRANCH);
    let r = env.code(5, &["branch", "create", "PAY-1", "--json"]);
    r.says(&["unrelated history"]);
    let rows = r.json();
    let api = rows.as_array().unwrap().iter().find(|x| x["repo"] == "api").unwrap().clone();
    assert_eq!(api["status"], "done", "the other repository is still served: {rows}");
}

#[test]
fn merge_requests_are_opened_once_shown_and_merged() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1"]);
    // api has no work yet: no merge request is opened for it.
    fake.commit("pay/web", BRANCH, &[("refund.txt", "refund\n")], "PAY-1: refunds");
    let mrs = env.json(&["branch", "mr", "PAY-1"]);
    let rows = mrs.as_array().unwrap();
    let web = rows.iter().find(|m| m["repo"] == "web").unwrap();
    assert_eq!(web["state"], "open", "{mrs}");
    assert_eq!(web["mergeable"], true);
    assert!(web["url"].as_str().unwrap().ends_with("/pay/web/-/merge_requests/1"), "{mrs}");
    let api = rows.iter().find(|m| m["repo"] == "api").unwrap();
    assert_eq!(api["state"], "empty", "{mrs}");
    let opened = fake.merge_requests();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["title"], "PAY-1: Refund orders");
    let description = opened[0]["description"].as_str().unwrap();
    assert!(
        description.contains("pm: pat") && description.contains("requirement"),
        "{description}"
    );
    assert!(opened[0]["labels"].as_array().unwrap().iter().any(|l| l == "xone::PAY"));

    // Shown again, not opened again; listed beside the branch; on the requirement's record.
    env.json(&["branch", "mr", "PAY-1"]);
    assert_eq!(fake.merge_requests().len(), 1);
    let list = env.json(&["branch", "list", "PAY-1"]);
    let row = list.as_array().unwrap().iter().find(|b| b["repo"] == "web").unwrap().clone();
    assert_eq!(row["merge_request"]["state"], "open", "{list}");
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("mr open") && log.contains("merge_requests/1"), "{log}");

    let tip = fake.branch_sha("pay/web", BRANCH).unwrap();
    env.ok(&["branch", "mr", "PAY-1", "--merge"]);
    assert!(fake.contains("pay/web", "main", &tip), "merged into main on GitLab");
    let after = env.json(&["branch", "mr", "PAY-1"]);
    assert_eq!(
        after.as_array().unwrap().iter().find(|m| m["repo"] == "web").unwrap()["state"],
        "merged"
    );
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("merge"), "{log}");
}

#[test]
fn merging_waits_for_gitlab_to_finish_checking_and_respects_its_blockers() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1", "--repo", "web"]);
    fake.commit("pay/web", BRANCH, &[("a.txt", "a\n")], "PAY-1: a");
    // Not approved yet: a gate (exit 4) naming GitLab's reason, not a conflict.
    fake.set_blocker(Some("not_approved"));
    let mrs = env.json(&["branch", "mr", "PAY-1"]);
    assert_eq!(mrs[0]["status"], "not_approved", "{mrs}");
    assert_eq!(mrs[0]["mergeable"], false);
    env.code(4, &["branch", "mr", "PAY-1", "--merge"]).says(&["not_approved"]);
    fake.set_blocker(None);
    // Still checking for the next few answers: xone waits, then merges.
    fake.set_checking(3);
    env.ok(&["branch", "mr", "PAY-1", "--merge"]);
    let tip = fake.branch_sha("pay/web", BRANCH).unwrap();
    assert!(fake.contains("pay/web", "main", &tip));
}

#[test]
fn work_after_a_merge_gets_a_new_merge_request() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1", "--repo", "web"]);
    fake.commit("pay/web", BRANCH, &[("a.txt", "a\n")], "PAY-1: a");
    env.ok(&["branch", "mr", "PAY-1", "--merge"]);
    fake.commit("pay/web", BRANCH, &[("b.txt", "b\n")], "PAY-1: b");
    let mrs = env.json(&["branch", "mr", "PAY-1"]);
    assert_eq!(mrs[0]["state"], "open", "{mrs}");
    assert!(mrs[0]["url"].as_str().unwrap().ends_with("/merge_requests/2"), "{mrs}");
    env.ok(&["branch", "mr", "PAY-1", "--merge"]);
    let tip = fake.branch_sha("pay/web", BRANCH).unwrap();
    assert!(fake.contains("pay/web", "main", &tip));
}

#[test]
fn a_conflicting_merge_request_names_the_files_and_is_not_merged() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1", "--repo", "web"]);
    fake.commit("pay/web", BRANCH, &[("README.md", "ours\n")], "PAY-1: readme");
    fake.commit("pay/web", "main", &[("README.md", "theirs\n")], "readme on main");
    let mrs = env.json(&["branch", "mr", "PAY-1"]);
    let web = &mrs.as_array().unwrap()[0];
    assert_eq!(web["mergeable"], false, "{mrs}");
    assert_eq!(web["conflicts"], serde_json::json!(["README.md"]), "{mrs}");
    let main = fake.branch_sha("pay/web", "main").unwrap();
    env.code(5, &["branch", "mr", "PAY-1", "--merge"]).says(&["cannot be merged", "README.md"]);
    assert_eq!(fake.branch_sha("pay/web", "main").unwrap(), main, "main untouched");
}

#[test]
fn pagination_is_followed_to_the_end() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1", "--repo", "web"]);
    fake.commit("pay/web", BRANCH, &[("a.txt", "a\n")], "PAY-1: a");
    env.ok(&["branch", "mr", "PAY-1"]);
    // A newer, closed one is listed first; one item per page hides the open one on page 2.
    fake.add_mr("pay/web", BRANCH, "main", "closed");
    fake.set_page_cap(1);
    fake.clear_log();
    let mrs = env.json(&["branch", "mr", "PAY-1"]);
    assert!(mrs[0]["url"].as_str().unwrap().ends_with("/merge_requests/1"), "{mrs}");
    assert_eq!(fake.merge_requests().len(), 2, "no third one opened");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path.contains("merge_requests") && r.path.contains("page=2")));
}

/// PAY-1 and PAY-2 submitted, each with a commit in web.
fn two_features(env: &TestEnv, fake: &FakeGitLab) {
    env.ok(&["requirement", "create", "-p", "PAY", "Second"]);
    for (key, branch) in [("PAY-1", BRANCH), ("PAY-2", "feature/PAY-2-second")] {
        env.ok(&["branch", "create", key]);
        fake.commit("pay/web", branch, &[(&format!("{key}.txt"), key)], &format!("{key}: work"));
        for _ in 0..4 {
            env.ok(&["requirement", "advance", key, "--force", "--reason", "setup"]);
        }
    }
}

#[test]
fn integration_is_merged_locally_and_pushed_whole() {
    let (env, fake) = lab();
    pay(&env, &fake);
    two_features(&env, &fake);
    let r = env.json(&["branch", "integrate", "test"]);
    assert!(r.as_array().unwrap().iter().all(|x| x["status"] == "done"), "{r}");
    for b in [BRANCH, "feature/PAY-2-second"] {
        let tip = fake.branch_sha("pay/web", b).unwrap();
        assert!(fake.contains("pay/web", "release/test", &tip), "{b} integrated on GitLab");
    }
    assert!(fake.branch_sha("pay/sub/api", "release/test").is_some());
    // The gate's first fact now holds: the test integration has the branches.
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert!(show["integrations"].to_string().contains("test"), "{show}");

    // Again: nothing to push.
    fake.clear_log();
    let again = env.json(&["branch", "integrate", "test"]);
    assert!(again.as_array().unwrap().iter().all(|x| x["status"] == "unchanged"), "{again}");
    assert!(!fake.requests().iter().any(|r| r.path.ends_with("git-receive-pack")), "no push");
}

#[test]
fn an_integration_conflict_leaves_that_repository_as_it_was() {
    let (env, fake) = lab();
    pay(&env, &fake);
    two_features(&env, &fake);
    fake.commit("pay/web", BRANCH, &[("shared.txt", "one\n")], "PAY-1: shared");
    fake.commit("pay/web", "feature/PAY-2-second", &[("shared.txt", "two\n")], "PAY-2: shared");
    let r = env.code(5, &["branch", "integrate", "test", "--json"]);
    r.says(&["web", "PAY-2", "shared.txt"]);
    assert!(fake.branch_sha("pay/web", "release/test").is_none(), "web not half-built");
    assert!(fake.branch_sha("pay/sub/api", "release/test").is_some(), "api still integrated");
}

/// New work on PAY-1, then release/test moved by hand at `hook` of xone's push: the
/// integration is exit 5 and the hand-made commit stays release/test's tip.
fn integration_racing_a_hotfix_at(hook: &str) -> (TestEnv, FakeGitLab) {
    let (env, fake) = lab();
    pay(&env, &fake);
    two_features(&env, &fake);
    env.ok(&["branch", "integrate", "test"]);
    fake.commit("pay/web", BRANCH, &[("more.txt", "more\n")], "PAY-1: more");
    let other = fake.clone();
    fake.before(hook, move || {
        other.commit("pay/web", "release/test", &[("hotfix.txt", "x\n")], "hotfix by hand");
    });
    env.code(5, &["branch", "integrate", "test"]).says(&["moved while xone was working"]);
    let tip = fake.branch_sha("pay/web", "release/test").unwrap();
    let repo = git2::Repository::open_bare(fake.repo_dir("pay/web")).unwrap();
    let head = repo.find_commit(git2::Oid::from_str(&tip).unwrap()).unwrap();
    assert_eq!(head.summary().unwrap().unwrap(), "hotfix by hand", "the other change survives");
    (env, fake)
}

#[test]
fn a_branch_that_moves_during_an_integration_is_not_overwritten() {
    // Someone moves release/test just as xone is about to push (before the server advertises).
    let (env, fake) =
        integration_racing_a_hotfix_at("pay/web.git/info/refs?service=git-receive-pack");
    // Run again: finishes the job on top of what is there now.
    env.ok(&["branch", "integrate", "test"]);
    let more = fake.branch_sha("pay/web", BRANCH).unwrap();
    assert!(fake.contains("pay/web", "release/test", &more));
}

#[test]
fn a_push_that_loses_the_race_on_the_server_is_refused_there() {
    // The branch moves after the server advertised it and before the push arrives: the
    // server's own check of the old tip refuses the update.
    integration_racing_a_hotfix_at("pay/web.git/git-receive-pack");
}

#[test]
fn a_protected_integration_branch_is_reported_not_retried_forever() {
    let (env, fake) = lab();
    pay(&env, &fake);
    two_features(&env, &fake);
    fake.protect("pay/web", "release/");
    let r = env.code(6, &["branch", "integrate", "test"]);
    r.says(&["refused the update", "protected"]);
    assert!(fake.branch_sha("pay/web", "release/test").is_none());
    assert!(fake.branch_sha("pay/sub/api", "release/test").is_some());
}

#[test]
fn sync_brings_the_base_into_the_branches_on_gitlab() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1"]);
    fake.commit("pay/web", BRANCH, &[("a.txt", "a\n")], "PAY-1: a");
    let main = fake.commit("pay/web", "main", &[("b.txt", "b\n")], "b on main");
    let r = env.json(&["branch", "sync", "PAY-1"]);
    let rows = r.as_array().unwrap();
    assert_eq!(rows.iter().find(|x| x["repo"] == "web").unwrap()["status"], "done", "{r}");
    assert_eq!(rows.iter().find(|x| x["repo"] == "api").unwrap()["status"], "unchanged", "{r}");
    assert!(fake.contains("pay/web", BRANCH, &main));

    // --rebase replays the branch's own commits on the base, pushed with a lease too.
    let main = fake.commit("pay/web", "main", &[("c.txt", "c\n")], "c on main");
    fake.commit("pay/sub/api", BRANCH, &[("d.txt", "d\n")], "PAY-1: d");
    let api_main = fake.commit("pay/sub/api", "main", &[("e.txt", "e\n")], "e on main");
    env.ok(&["branch", "sync", "PAY-1", "--repo", "api", "--rebase"]);
    let tip = fake.branch_sha("pay/sub/api", BRANCH).unwrap();
    let repo = git2::Repository::open_bare(fake.repo_dir("pay/sub/api")).unwrap();
    let head = repo.find_commit(git2::Oid::from_str(&tip).unwrap()).unwrap();
    assert_eq!(head.parent_count(), 1, "rebased, not merged");
    assert_eq!(head.parent_id(0).unwrap().to_string(), api_main);
    assert!(!fake.contains("pay/web", BRANCH, &main), "web was not named");
}

#[test]
fn checkout_clones_into_the_workspace() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1"]);
    let r = env.json(&["branch", "checkout", "PAY-1"]);
    assert!(r.as_array().unwrap().iter().all(|x| x["status"] == "done"), "{r}");
    let web = env.root().join("ws/pay/web");
    let repo = git2::Repository::open(&web).unwrap();
    assert_eq!(repo.head().unwrap().shorthand().unwrap(), BRANCH);
    assert!(web.join("README.md").exists());
    // The token is not written into the clone's configuration.
    let config = std::fs::read_to_string(web.join(".git/config")).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
    let again = env.json(&["branch", "checkout", "PAY-1"]);
    assert!(again.as_array().unwrap().iter().all(|x| x["status"] == "unchanged"), "{again}");
    // The commit-msg hook goes into the clones too.
    env.ok(&["hook", "install", "-p", "PAY"]);
    assert!(web.join(".git/hooks/commit-msg").exists());
}

#[test]
fn auth_login_checks_and_stores_the_token_privately() {
    let (mut env, fake) = lab();
    env.vars.retain(|(k, _)| k != "XONE_GITLAB_TOKEN");
    env.code(4, &["auth", "status"]).says(&["not logged in", "xone auth login"]);
    // A wrong token is refused and not stored.
    let bad = env.run_with(&["auth", "login", "--token-stdin"], |c| {
        c.stdin(std::process::Stdio::piped());
    });
    assert_eq!(bad.code, 2, "empty stdin is no token: {bad:?}");
    let wrong = login(&env, "glpat-wrong");
    assert_eq!(wrong.code, 6, "{wrong:?}");
    assert!(wrong.stderr.contains("token") && !wrong.stderr.contains("glpat-wrong"), "{wrong:?}");
    let cfg = env.home.join(".config/xone/config.toml");
    assert!(!std::fs::read_to_string(&cfg).unwrap_or_default().contains("glpat-wrong"));

    let ok = login(&env, TOKEN);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(!ok.stderr.contains(TOKEN) && !ok.stdout.contains(TOKEN));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);
    let s = env.json(&["auth", "status"]);
    assert_eq!(s["user"], "tester");
    assert!(s["token_source"].as_str().unwrap().contains("config.toml"), "{s}");
    assert!(s["scopes"].as_array().unwrap().iter().any(|x| x == "api"), "{s}");
    assert!(!s.to_string().contains(TOKEN));
    // `config list` does not show it either.
    assert!(!env.ok(&["config", "list"]).stdout.contains(TOKEN));
    env.code(2, &["config", "set", "gitlab.token", "x"]).says(&["secret", "auth login"]);

    env.ok(&["auth", "logout"]);
    assert!(!std::fs::read_to_string(&cfg).unwrap().contains(TOKEN));
    env.code(4, &["auth", "status"]);

    // On a terminal the token is asked for and not echoed.
    let t = env.answering("auth login", &[], Some(&format!("{TOKEN}\\r")));
    assert!(t.stdout.contains("logged in to") && t.stdout.contains("as tester"), "{t:?}");
    assert!(!t.stdout.contains(TOKEN), "the token was echoed: {t:?}");
    assert!(std::fs::read_to_string(&cfg).unwrap().contains(TOKEN));
    drop(fake);
}

fn login(env: &TestEnv, token: &str) -> Run {
    use std::io::Write;
    let mut c = env.cmd();
    c.args(["auth", "login", "--token-stdin"]).stdin(std::process::Stdio::piped());
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{token}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn gitlab_ci_needs_no_configuration() {
    let (mut env, fake) = lab();
    env.vars.retain(|(k, _)| !k.starts_with("XONE_GITLAB"));
    let user = fake.add_user("ci-bot", "glpat-ci-bot");
    fake.add_job_token(user, "job-token-42");
    env.set_var("GITLAB_CI", "true");
    env.set_var("CI_SERVER_URL", &fake.url);
    env.set_var("CI_JOB_TOKEN", "job-token-42");
    // The job token says whose job it is (GET /job; a job token may not read /user).
    let status = env.json(&["auth", "status"]);
    assert_eq!(status["user"], "ci-bot", "{status}");
    assert_eq!(status["token_source"], "CI_JOB_TOKEN");
    pay(&env, &fake);
    let log = fake.requests();
    assert!(log.iter().all(|r| r.auth.as_ref().is_some_and(|(h, _)| h == "job-token")), "{log:?}");
    // A job token reads but does not write: the error says what to give the job instead.
    let r = env.code(6, &["branch", "create", "PAY-1"]);
    r.says(&["CI job token", "XONE_GITLAB_TOKEN"]);
    assert!(!r.stderr.contains("job-token-42"));
    // With an access token in the job's variables, the same job works.
    env.set_var("XONE_GITLAB_TOKEN", "glpat-ci-bot");
    env.ok(&["branch", "create", "PAY-1"]);
    assert!(fake.branch_sha("pay/web", BRANCH).is_some());
}

#[test]
fn doctor_reports_each_configured_system() {
    let (env, fake) = lab();
    let d = env.json(&["doctor"]);
    let gitlab = d.as_array().unwrap().iter().find(|c| c["system"] == "gitlab").unwrap().clone();
    assert_eq!(gitlab["status"], "ok", "{d}");
    assert_eq!(gitlab["version"], "17.5.0");
    assert_eq!(gitlab["user"], "tester");
    assert!(gitlab["latency_ms"].is_u64());
    // A server but no token: reachable, and the fix named; exit 6.
    let mut anonymous = TestEnv::new();
    anonymous.set_var("XONE_GITLAB_URL", &fake.url);
    let r = anonymous.code(6, &["doctor", "--json"]);
    let row =
        r.json().as_array().unwrap().iter().find(|c| c["system"] == "gitlab").unwrap().clone();
    assert!(row["detail"].as_str().unwrap().contains("no token"), "{row}");
    // Not configured is not a failure.
    let plain = TestEnv::new();
    let d = plain.json(&["doctor"]);
    assert_eq!(
        d.as_array().unwrap().iter().find(|c| c["system"] == "gitlab").unwrap()["status"],
        "not configured"
    );
    drop(fake);
}

#[test]
fn secrets_in_a_project_file_are_refused() {
    let (env, _fake) = lab();
    std::fs::write(env.work.join(".xone.toml"), "[gitlab]\ntoken = \"glpat-committed\"\n").unwrap();
    let r = env.code(2, &["config", "list"]);
    r.says(&[".xone.toml", "secrets never live"]);
    assert!(!r.stderr.contains("glpat-committed"));
}

#[test]
fn create_repo_makes_the_gitlab_project_in_the_namespace() {
    let (env, fake) = lab();
    fake.add_namespace("shop");
    env.ok(&["config", "set", "gitlab.namespace", "shop"]);
    env.ok(&["project", "create", "SHOP", "--name", "Shop", "--create-repo", "storefront"]);
    let p = env.json(&["project", "show", "SHOP"]);
    assert_eq!(p["repos"][0]["location"], "shop/storefront", "{p}");
    assert!(fake.branch_sha("shop/storefront", "main").is_some(), "made on GitLab with a README");
    // Taken already: a conflict, and no project stored.
    env.code(5, &["project", "create", "SHOP2", "--name", "Again", "--create-repo", "storefront"]);
    env.code(3, &["project", "show", "SHOP2"]);
}

#[test]
fn an_interrupted_fan_out_is_finished_by_the_next_run() {
    let (env, fake) = lab();
    pay(&env, &fake);
    fake.set_latency(std::time::Duration::from_millis(1500));
    let mut child = env.cmd().args(["branch", "create", "PAY-1"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C is exit 130: {status:?}");
    fake.set_latency(std::time::Duration::ZERO);
    // The server may have made the branches; the state database has not recorded them.
    let again = env.json(&["branch", "create", "PAY-1"]);
    assert!(again.as_array().unwrap().iter().all(|r| r["status"] != "failed"), "{again}");
    let list = env.json(&["branch", "list", "PAY-1"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(list.as_array().unwrap().iter().all(|b| b["exists"] == true), "{list}");
}
