use crate::harness::*;

fn tip(repo: &std::path::Path, branch: &str) -> Option<git2::Oid> {
    let r = git2::Repository::open(repo).unwrap();
    let b = r.find_branch(branch, git2::BranchType::Local).ok()?;
    let id = b.get().peel_to_commit().unwrap().id();
    Some(id)
}

fn holds(repo: &std::path::Path, branch: &str, commit: git2::Oid) -> bool {
    let r = git2::Repository::open(repo).unwrap();
    let t = tip(repo, branch).unwrap();
    t == commit || r.graph_descendant_of(t, commit).unwrap()
}

/// PAY with web (work tree) and api (bare); PAY-1 and PAY-2 submitted with a commit each in
/// both repositories, PAY-3 still developing.
fn two_submitted(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    let (web, api) = project(env);
    for (i, title) in ["One", "Two", "Three"].iter().enumerate() {
        let key = format!("PAY-{}", i + 1);
        env.ok(&["requirement", "create", "-p", "PAY", title]);
        env.ok(&["branch", "create", &key]);
        let branch = format!("feature/{key}-{}", title.to_lowercase());
        for repo in [&web, &api] {
            let r = git2::Repository::open(repo).unwrap();
            commit(&r, &format!("{key}.txt"), title, &format!("{key}: work"), Some(&branch));
        }
        let steps = if i < 2 { 4 } else { 3 };
        for _ in 0..steps {
            env.ok(&["requirement", "advance", &key, "--force", "--reason", "setup"]);
        }
    }
    (web, api)
}

#[test]
fn integrate_rebuilds_release_branches_from_the_chosen_requirements() {
    let env = TestEnv::new();
    let (web, api) = two_submitted(&env);
    let r = env.json(&["branch", "integrate", "test"]);
    let rows = r.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["status"] == "done"), "{r}");
    assert!(rows[0]["detail"].as_str().unwrap().contains("PAY-1, PAY-2"), "{r}");
    for repo in [&web, &api] {
        for b in ["feature/PAY-1-one", "feature/PAY-2-two"] {
            assert!(holds(repo, "release/test", tip(repo, b).unwrap()), "{b} in {repo:?}");
        }
        // PAY-3 is still developing: not in test.
        assert!(!holds(repo, "release/test", tip(repo, "feature/PAY-3-three").unwrap()));
    }
    let before = tip(&web, "release/test").unwrap();
    let again = env.json(&["branch", "integrate", "test"]);
    assert!(again.as_array().unwrap().iter().all(|r| r["status"] == "unchanged"), "{again}");
    assert_eq!(tip(&web, "release/test").unwrap(), before, "nothing changed, nothing moved");

    // Named keys win over the default; daily takes developing work too.
    env.ok(&["branch", "integrate", "daily"]);
    assert!(holds(&api, "release/daily", tip(&api, "feature/PAY-3-three").unwrap()));
    env.ok(&["branch", "integrate", "gray", "PAY-2"]);
    assert!(holds(&web, "release/gray", tip(&web, "feature/PAY-2-two").unwrap()));
    assert!(!holds(&web, "release/gray", tip(&web, "feature/PAY-1-one").unwrap()));

    // Recorded on the requirement and shown in its thread.
    let t = env.json(&["requirement", "show", "PAY-1"]);
    let integrations = t["integrations"].as_array().unwrap();
    assert!(integrations.iter().any(|i| i["env"] == "test" && i["repo"] == "api"), "{t}");
    let log = env.json(&["requirement", "log", "PAY-1"]);
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "integrate"));
    let commits = t["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0]["commits"][0]["summary"], "PAY-1: work");
    let text = env.ok(&["requirement", "show", "PAY-1"]).stdout;
    assert!(text.contains("Integrations") && text.contains("PAY-1: work"), "{text}");
}

#[test]
fn a_conflict_leaves_that_repository_as_it_was_and_integrates_the_others() {
    let env = TestEnv::new();
    let (web, api) = two_submitted(&env);
    env.ok(&["branch", "integrate", "test"]);
    let web_before = tip(&web, "release/test").unwrap();
    // PAY-4 and PAY-5 both rewrite web's README: the second one conflicts.
    for (key, title, text) in [("PAY-4", "Four", "four\n"), ("PAY-5", "Five", "five\n")] {
        env.ok(&["requirement", "create", "-p", "PAY", title]);
        env.ok(&["branch", "create", key]);
        let branch = format!("feature/{key}-{}", title.to_lowercase());
        commit(&git2::Repository::open(&web).unwrap(), "README.md", text, "readme", Some(&branch));
    }
    let r = env.code(5, &["branch", "integrate", "test", "PAY-1", "PAY-4", "PAY-5"]);
    r.says(&["failed in 1 of 2", "PAY-5 (feature/PAY-5-five) conflicts in web", "README.md"]);
    assert!(r.stdout.contains("api") && r.stdout.contains("done"), "{}", r.stdout);
    assert_eq!(tip(&web, "release/test").unwrap(), web_before, "web's branch untouched");
    assert!(holds(&api, "release/test", tip(&api, "feature/PAY-1-one").unwrap()));
    assert!(!holds(&api, "release/test", tip(&api, "feature/PAY-2-two").unwrap()), "rebuilt");
    let log = env.json(&["requirement", "log", "PAY-5"]);
    let conflict = log.as_array().unwrap().iter().find(|e| e["action"] == "integrate conflict");
    assert!(conflict.is_some(), "{log}");
}

#[test]
fn the_submit_gate_checks_the_test_integration() {
    let env = TestEnv::new();
    two_submitted(&env);
    env.code(4, &["requirement", "advance", "PAY-1"])
        .says(&["release/test in web does not hold the tip of feature/PAY-1-one"]);
    env.ok(&["branch", "integrate", "test"]);
    let r = env.code(4, &["requirement", "advance", "PAY-1"]);
    assert!(!r.stderr.contains("does not hold"), "{}", r.stderr);
    r.says(&["2 missing", "no app is built", "no test environment"]);
    // A configured pattern is followed.
    env.ok(&["config", "set", "branch.integration", "int/{env}"]);
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["int/test in web"]);
    env.code(2, &["config", "set", "branch.integration", "static"]).says(&["has no {env}"]);
}

#[test]
fn integrate_needs_a_project_and_valid_names() {
    let env = TestEnv::new();
    env.code(3, &["branch", "integrate", "test"]).says(&["no project"]);
    project(&env);
    env.ok(&["project", "create", "SHOP", "--name", "Shop"]);
    env.code(2, &["branch", "integrate", "test"]).says(&["-p KEY"]);
    env.code(2, &["branch", "integrate", "Test", "-p", "PAY"]).says(&["lower-case"]);
    env.code(2, &["branch", "integrate", "moon", "-p", "PAY"])
        .says(&["xone branch integrate moon KEY"]);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    env.ok(&["requirement", "create", "-p", "SHOP", "S"]);
    env.code(2, &["branch", "integrate", "test", "PAY-1", "SHOP-1"]).says(&["different projects"]);
}

#[test]
fn sync_merges_or_rebases_the_base_into_feature_branches() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Sync me"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let branch = "feature/PAY-1-sync-me";
    for repo in [&web, &api] {
        let r = git2::Repository::open(repo).unwrap();
        commit(&r, "work.txt", "w", "PAY-1: work", Some(branch));
        commit(&r, "main.txt", "m", "main moves", Some("main"));
    }
    env.ok(&["branch", "checkout", "PAY-1", "--repo", "web"]);
    let r = env.json(&["branch", "sync", "PAY-1"]);
    assert!(r.as_array().unwrap().iter().all(|x| x["status"] == "done"), "{r}");
    for row in env.json(&["branch", "list", "PAY-1"]).as_array().unwrap() {
        assert_eq!((row["ahead"].as_u64(), row["behind"].as_u64()), (Some(2), Some(0)), "{row}");
    }
    assert!(web.join("main.txt").exists(), "the checked-out work tree follows the branch");
    let again = env.json(&["branch", "sync", "PAY-1"]);
    assert!(again.as_array().unwrap().iter().all(|x| x["status"] == "unchanged"), "{again}");

    // Rebase: the branch's own commits on top of the base, no merge commit.
    commit(&git2::Repository::open(&api).unwrap(), "more.txt", "m2", "main again", Some("main"));
    env.ok(&["branch", "sync", "PAY-1", "--repo", "api", "--rebase"]);
    let repo = git2::Repository::open(&api).unwrap();
    let t = repo.find_commit(tip(&api, branch).unwrap()).unwrap();
    assert_eq!(t.parent_count(), 1);
    assert!(repo.graph_descendant_of(t.id(), tip(&api, "main").unwrap()).unwrap());

    // Once an integration holds the branch, rebasing it would fork history.
    env.ok(&["branch", "integrate", "test", "PAY-1"]);
    commit(&git2::Repository::open(&api).unwrap(), "m3.txt", "m3", "main 3", Some("main"));
    env.code(5, &["branch", "sync", "PAY-1", "--repo", "api", "--rebase"])
        .says(&["already shared", "release/test"]);

    // A conflicting merge is refused and the branch stays.
    let before = tip(&api, branch).unwrap();
    commit(&git2::Repository::open(&api).unwrap(), "work.txt", "other", "clash", Some("main"));
    env.code(5, &["branch", "sync", "PAY-1", "--repo", "api"]).says(&["conflicts", "work.txt"]);
    assert_eq!(tip(&api, branch).unwrap(), before);
}

#[test]
fn the_commit_msg_hook_puts_the_key_in() {
    let env = TestEnv::new();
    let (web, _) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Hooked"]);
    env.ok(&["branch", "create", "PAY-1"]);
    env.ok(&["branch", "checkout", "PAY-1"]);
    let r = env.json(&["hook", "install"]);
    let status: Vec<&str> =
        r.as_array().unwrap().iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["skipped", "done"], "bare api skipped: {r}");
    let git_commit = |msg: &str| {
        std::fs::write(web.join("f.txt"), msg).unwrap();
        let ok = std::process::Command::new("git")
            .args([
                "-C",
                web.to_str().unwrap(),
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@e.invalid",
            ])
            .args(["commit", "-q", "-a", "--allow-empty", "-m", msg])
            .env("HOME", &env.home)
            .status()
            .unwrap();
        assert!(ok.success());
        let repo = git2::Repository::open(&web).unwrap();
        let head = repo.head().unwrap().peel_to_commit().unwrap();
        head.message().unwrap().trim_end().to_string()
    };
    std::process::Command::new("git")
        .args(["-C", web.to_str().unwrap(), "add", "-A"])
        .status()
        .unwrap();
    assert_eq!(git_commit("fix rounding"), "PAY-1: fix rounding");
    assert_eq!(git_commit("PAY-1 already named"), "PAY-1 already named");
    assert_eq!(git_commit("mentions PAY-12 only"), "PAY-1: mentions PAY-12 only");
    let again = env.json(&["hook", "install"]);
    assert_eq!(again[1]["status"], "unchanged");
    // Someone else's hook is kept unless --force.
    std::fs::write(web.join(".git/hooks/commit-msg"), "#!/bin/sh\nexit 0\n").unwrap();
    env.code(5, &["hook", "install"]).says(&["did not write", "--force"]);
    env.ok(&["hook", "install", "--force"]);
}

#[test]
fn merge_requests_on_the_local_forge() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Merge me"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let fresh = env.json(&["branch", "mr", "PAY-1"]);
    assert!(fresh.as_array().unwrap().iter().all(|v| v["state"] == "empty"), "{fresh}");
    let branch = "feature/PAY-1-merge-me";
    for repo in [&web, &api] {
        let r = git2::Repository::open(repo).unwrap();
        commit(&r, "feature.txt", "new", "PAY-1: feature", Some(branch));
    }
    let view = env.json(&["branch", "mr", "PAY-1"]);
    for v in view.as_array().unwrap() {
        assert_eq!(
            (v["state"].as_str(), v["mergeable"].as_bool()),
            (Some("open"), Some(true)),
            "{v}"
        );
        assert_eq!(v["commits"], 1);
    }
    // main changes the same file in api: that one conflicts.
    commit(&git2::Repository::open(&api).unwrap(), "feature.txt", "other", "clash", Some("main"));
    let view = env.json(&["branch", "mr", "PAY-1"]);
    let api_view = view.as_array().unwrap().iter().find(|v| v["repo"] == "api").unwrap().clone();
    assert_eq!(api_view["mergeable"], false);
    assert_eq!(api_view["conflicts"], serde_json::json!(["feature.txt"]));
    assert!(env.ok(&["branch", "mr", "PAY-1"]).stdout.contains("conflicts: feature.txt"));

    let r = env.code(5, &["branch", "mr", "PAY-1", "--merge"]);
    r.says(&["1 of 2", "conflicts with main in api", "feature.txt"]);
    assert!(holds(&web, "main", tip(&web, branch).unwrap()), "web merged");
    assert_eq!(
        std::fs::read_to_string(web.join("feature.txt")).unwrap(),
        "new",
        "work tree follows"
    );
    assert!(!holds(&api, "main", tip(&api, branch).unwrap()), "api left as it was");
    let view = env.json(&["branch", "mr", "PAY-1", "--repo", "web"]);
    assert_eq!(view[0]["state"], "merged");
    let again = env.json(&["branch", "mr", "PAY-1", "--merge", "--repo", "web"]);
    assert_eq!(again[0]["status"], "unchanged");
    let log = env.json(&["requirement", "log", "PAY-1"]);
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "merge"), "{log}");
}
