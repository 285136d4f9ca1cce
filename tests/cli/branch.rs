use crate::harness::*;

fn branch_rows(env: &TestEnv, key: &str) -> Vec<serde_json::Value> {
    env.json(&["branch", "list", key]).as_array().unwrap().clone()
}

#[test]
fn create_is_idempotent_and_reports_per_repository() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Add Alipay: QR codes!"]);
    let first = env.json(&["branch", "create", "PAY-1"]);
    let statuses: Vec<(&str, &str)> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["repo"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, [("api", "done"), ("web", "done")]);
    let name = "feature/PAY-1-add-alipay-qr-codes";
    for p in [&web, &api] {
        assert!(git2::Repository::open(p)
            .unwrap()
            .find_branch(name, git2::BranchType::Local)
            .is_ok());
    }
    let again = env.json(&["branch", "create", "PAY-1"]);
    assert!(again.as_array().unwrap().iter().all(|r| r["status"] == "unchanged"), "{again}");

    let rows = branch_rows(&env, "PAY-1");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["ahead"].as_u64(), rows[0]["behind"].as_u64()), (Some(0), Some(0)));
    assert_eq!(rows[0]["base"], "main");
    assert_eq!(rows[0]["name"], name);

    // Ahead and behind are measured, not stored.
    commit(&git2::Repository::open(&web).unwrap(), "f.txt", "1", "work", Some(name));
    commit(&git2::Repository::open(&web).unwrap(), "g.txt", "2", "more", Some(name));
    commit(&git2::Repository::open(&web).unwrap(), "m.txt", "3", "main moves", Some("main"));
    let web_row = branch_rows(&env, "PAY-1").into_iter().find(|r| r["repo"] == "web").unwrap();
    assert_eq!((web_row["ahead"].as_u64(), web_row["behind"].as_u64()), (Some(2), Some(1)));
    assert!(env.ok(&["branch", "list"]).stdout.contains("PAY-1"));
    assert_eq!(env.json(&["branch", "list", "-p", "PAY"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_failure_in_one_repository_leaves_the_others_done_and_a_rerun_finishes() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    // An unrelated branch of the same name in api: a conflict there, exit 5.
    let api_repo = git2::Repository::open(&api).unwrap();
    let sig = git2::Signature::now("x", "x@example.invalid").unwrap();
    let tree = api_repo.find_tree(api_repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
    let orphan = api_repo.commit(None, &sig, &sig, "orphan", &tree, &[]).unwrap();
    api_repo
        .branch("feature/PAY-1-refunds", &api_repo.find_commit(orphan).unwrap(), false)
        .unwrap();
    let r = env.code(5, &["branch", "create", "PAY-1"]);
    r.says(&["branch create failed in 1 of 2 repositories", "api", "unrelated history"]);
    assert!(r.stdout.contains("web") && r.stdout.contains("done"), "{}", r.stdout);
    assert!(git2::Repository::open(&web)
        .unwrap()
        .find_branch("feature/PAY-1-refunds", git2::BranchType::Local)
        .is_ok());

    api_repo
        .find_branch("feature/PAY-1-refunds", git2::BranchType::Local)
        .unwrap()
        .delete()
        .unwrap();
    let again = env.json(&["branch", "create", "PAY-1"]);
    let by_repo: std::collections::HashMap<&str, &str> = again
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["repo"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(by_repo["api"], "done");
    assert_eq!(by_repo["web"], "unchanged");
}

#[test]
fn repo_filter_and_from() {
    let env = TestEnv::new();
    let (web, _) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.code(3, &["branch", "create", "PAY-1", "--repo", "nope"])
        .says(&["no repository nope", "api, web"]);
    let tag_from = commit(&git2::Repository::open(&web).unwrap(), "x", "x", "second", None);
    let first =
        git2::Repository::open(&web).unwrap().find_commit(tag_from).unwrap().parent_id(0).unwrap();
    env.ok(&["branch", "create", "PAY-1", "--repo", "web", "--from", &first.to_string()]);
    let rows = branch_rows(&env, "PAY-1");
    assert_eq!(rows.len(), 1);
    // The base is where the branch started, so what --from brought along is not "work".
    assert_eq!(rows[0]["base"], first.to_string());
    assert_eq!((rows[0]["ahead"].as_u64(), rows[0]["behind"].as_u64()), (Some(0), Some(0)));
    commit(&git2::Repository::open(&web).unwrap(), "w", "w", "work", Some("feature/PAY-1-refunds"));
    assert_eq!(branch_rows(&env, "PAY-1")[0]["ahead"], 1);
    // A repository named with --repo that has no branch of the requirement is not found.
    env.code(3, &["branch", "checkout", "PAY-1", "--repo", "api"])
        .says(&["api has no branch of PAY-1"]);
    env.code(3, &["branch", "create", "PAY-1", "--repo", "api", "--from", "no-such-ref"])
        .says(&["no ref 'no-such-ref'"]);
}

#[test]
fn checkout_refuses_to_lose_local_changes() {
    let env = TestEnv::new();
    let (web, _) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["branch", "create", "PAY-1"]);
    std::fs::write(web.join("README.md"), "local edit\n").unwrap();
    let r = env.code(5, &["branch", "checkout", "PAY-1"]);
    r.says(&["local changes", "README.md"]);
    assert!(
        r.stdout.contains("api") && r.stdout.contains("skipped"),
        "the bare repository is passed over: {}",
        r.stdout
    );
    let repo = git2::Repository::open(&web).unwrap();
    assert_eq!(repo.head().unwrap().shorthand().unwrap(), "main");
    assert_eq!(std::fs::read_to_string(web.join("README.md")).unwrap(), "local edit\n");

    std::fs::write(web.join("README.md"), "# web\n").unwrap();
    std::fs::write(web.join("untracked.txt"), "mine\n").unwrap();
    env.ok(&["branch", "checkout", "PAY-1"]);
    assert_eq!(repo.head().unwrap().shorthand().unwrap(), "feature/PAY-1-refunds");
    assert!(web.join("untracked.txt").exists());
    assert!(env.ok(&["branch", "checkout", "PAY-1"]).stdout.contains("already checked out"));
}

#[test]
fn delete_refuses_unmerged_work_without_force() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.code(3, &["branch", "delete", "PAY-1", "--yes"]).says(&["no feature branches"]);
    env.ok(&["branch", "create", "PAY-1"]);
    commit(
        &git2::Repository::open(&api).unwrap(),
        "w.txt",
        "w",
        "work",
        Some("feature/PAY-1-refunds"),
    );
    env.code(4, &["branch", "delete", "PAY-1"]).says(&["not confirmed: nothing deleted", "--yes"]);
    let r = env.code(4, &["branch", "delete", "PAY-1", "--yes"]);
    r.says(&["1 commit(s) not merged into main", "--force"]);
    assert!(
        git2::Repository::open(&web)
            .unwrap()
            .find_branch("feature/PAY-1-refunds", git2::BranchType::Local)
            .is_err(),
        "merged web branch deleted"
    );
    assert!(git2::Repository::open(&api)
        .unwrap()
        .find_branch("feature/PAY-1-refunds", git2::BranchType::Local)
        .is_ok());
    env.ok(&["branch", "delete", "PAY-1", "--force", "--yes"]);
    assert!(git2::Repository::open(&api)
        .unwrap()
        .find_branch("feature/PAY-1-refunds", git2::BranchType::Local)
        .is_err());
    assert!(branch_rows(&env, "PAY-1").is_empty());
    let log = env.json(&["requirement", "log", "PAY-1"]);
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "branch delete" && e["forced"] == true));
}

#[test]
fn merging_a_branch_without_work_says_there_is_nothing_to_merge() {
    let env = TestEnv::new();
    let (_web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let r = env.ok(&["branch", "mr", "PAY-1", "--merge"]).stdout;
    assert!(r.contains("nothing to merge: it has no commits that main lacks"), "{r}");
    assert!(!r.contains("already merged"), "{r}");

    commit(
        &git2::Repository::open(&api).unwrap(),
        "w.txt",
        "w",
        "work",
        Some("feature/PAY-1-refunds"),
    );
    let r = env.ok(&["branch", "mr", "PAY-1", "--merge"]).stdout;
    assert!(r.contains("merged feature/PAY-1-refunds into main"), "{r}");
    let again = env.ok(&["branch", "mr", "PAY-1", "--merge"]).stdout;
    assert!(again.contains("already merged into main"), "{again}");
    assert!(again.contains("nothing to merge"), "{again}");
}

#[test]
fn delete_asks_on_a_terminal_and_never_in_ci() {
    let env = TestEnv::new();
    let (web, _) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let exists = || {
        git2::Repository::open(&web)
            .unwrap()
            .find_branch("feature/PAY-1-refunds", git2::BranchType::Local)
            .is_ok()
    };
    let no = env.answering("branch delete PAY-1", &[], Some("n"));
    assert_eq!(no.code, 4, "{no:?}");
    assert!(no.stdout.contains("Delete PAY-1's branch in 2 repositories?"), "{no:?}");
    assert!(exists(), "declined: nothing deleted");
    let yes = env.answering("branch delete PAY-1", &[], Some("y"));
    assert_eq!(yes.code, 0, "{yes:?}");
    assert!(!exists());
    // --yes answers for the terminal; nothing is asked.
    env.ok(&["branch", "create", "PAY-1"]);
    let r = env.in_terminal("branch delete PAY-1 --yes", &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("Delete"), "{r:?}");
    assert!(!exists());
}

#[test]
fn no_repositories_is_a_precondition() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "EMPTY", "--name", "No repos"]);
    env.ok(&["requirement", "create", "-p", "EMPTY", "R"]);
    env.code(4, &["branch", "create", "EMPTY-1"])
        .says(&["has no repositories", "project repo add"]);
}
