use crate::harness::*;

#[test]
fn create_list_show_archive() {
    let env = TestEnv::new();
    let (web, _api) = project(&env);
    let list = env.json(&["project", "list"]);
    assert_eq!(list[0]["key"], "PAY");
    assert_eq!(list[0]["repos"], 2);
    assert_eq!(list[0]["members"], 2);

    let show = env.json(&["project", "show", "PAY"]);
    let repos = show["repos"].as_array().unwrap();
    assert_eq!(repos.len(), 2);
    let api = repos.iter().find(|r| r["name"] == "api").unwrap();
    assert_eq!((api["bare"].as_bool(), api["default_branch"].as_str()), (Some(true), Some("main")));
    let web_row = repos.iter().find(|r| r["name"] == "web").unwrap();
    assert_eq!(web_row["location"], web.canonicalize().unwrap().to_str().unwrap());

    env.ok(&["requirement", "create", "-p", "PAY", "Before archiving"]);
    // Hard to undo: off a terminal only --yes confirms it.
    env.code(4, &["project", "archive", "PAY"]).says(&["not confirmed: not archived", "--yes"]);
    assert_eq!(env.json(&["project", "list"]).as_array().unwrap().len(), 1);
    env.ok(&["project", "archive", "PAY", "--yes"]);
    assert_eq!(env.json(&["project", "list"]).as_array().unwrap().len(), 0);
    assert_eq!(env.json(&["project", "list", "--all"]).as_array().unwrap().len(), 1);
    env.code(4, &["requirement", "create", "-p", "PAY", "After"]).says(&["archived"]);
    // Still readable.
    env.ok(&["requirement", "show", "PAY-1"]);
    // And undone.
    env.ok(&["project", "unarchive", "PAY"]).says(&["out of the archive"]);
    env.ok(&["project", "unarchive", "PAY"]).says(&["is not archived"]);
    env.ok(&["requirement", "create", "-p", "PAY", "After"]);
    let no = env.answering("project archive PAY", &[], Some("n"));
    assert_eq!(no.code, 4, "{no:?}");
    assert_eq!(env.json(&["project", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn delete_removes_xone_s_records_only_and_refuses_open_work_unless_forced() {
    let env = TestEnv::new();
    let (web, api) = project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let doc = env.root().join("refunds.md");
    std::fs::write(&doc, "# Refunds\n\nall of them\n").unwrap();
    env.ok(&["requirement", "doc", "PAY-1", "--attach", doc.to_str().unwrap()]);
    env.code(4, &["project", "delete", "PAY", "--yes"]).says(&[
        "project PAY still has work",
        "1 open requirement(s): PAY-1",
        "--force --reason",
    ]);
    env.code(2, &["project", "delete", "PAY", "--force", "--yes"]).says(&["--reason"]);
    env.code(4, &["project", "delete", "PAY", "--force", "--reason", "a trial"])
        .says(&["not confirmed: nothing deleted"]);
    env.ok(&["project", "show", "PAY"]);
    env.ok(&["project", "delete", "PAY", "--force", "--reason", "a trial", "--yes"]).says(&[
        "deleted project PAY and its 1 requirement(s)",
        "repositories",
        "untouched",
    ]);
    env.code(3, &["project", "show", "PAY"]);
    env.code(3, &["requirement", "show", "PAY-1"]);
    assert!(git2::Repository::open(&web).is_ok() && git2::Repository::open(&api).is_ok());
    // The key is free again, and the new project's story starts afresh.
    env.ok(&["project", "create", "PAY", "--name", "Payments again"]);
    env.ok(&["requirement", "create", "-p", "PAY", "New work"]);
    let log = env.json(&["requirement", "log", "PAY-1"]);
    assert!(log.as_array().unwrap().iter().all(|e| e["detail"] != "Refunds"), "{log}");
    // Nothing left behind: no orphan rows.
    let c = rusqlite::Connection::open(env.db()).unwrap();
    let fk: i64 =
        c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0);
    let journal: i64 = c
        .query_row(
            "SELECT count(*) FROM event WHERE action = 'project delete' AND forced = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(journal, 1, "the journal keeps the deletion");
}

#[test]
fn keys_are_checked_and_unique() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "PAY", "--name", "Payments"]);
    env.code(5, &["project", "create", "PAY", "--name", "Again"]).says(&["PAY already exists"]);
    env.code(2, &["project", "create", "pay", "--name", "Lower"])
        .says(&["invalid project key", "e.g. PAY"]);
    env.code(3, &["project", "show", "NOPE"]).says(&["no project NOPE"]);
    env.code(2, &["project", "create", "X", "--name", "Short"]);
}

#[test]
fn repositories_must_be_git() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "PAY", "--name", "Payments"]);
    let plain = env.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    env.code(2, &["project", "repo", "add", "PAY", plain.to_str().unwrap()])
        .says(&["is not a git repository"]);
    env.code(3, &["project", "repo", "add", "PAY", "/no/such/dir"]).says(&["does not exist"]);
    // Nothing half-written: a bad --repo refuses the whole project.
    let good = env.repo("good", false);
    env.code(
        2,
        &[
            "project",
            "create",
            "SHOP",
            "--name",
            "Shop",
            "--repo",
            good.to_str().unwrap(),
            "--repo",
            plain.to_str().unwrap(),
        ],
    );
    env.code(3, &["project", "show", "SHOP"]);

    env.ok(&["project", "repo", "add", "PAY", good.to_str().unwrap()]);
    env.code(5, &["project", "repo", "add", "PAY", good.to_str().unwrap()])
        .says(&["already has repository good"]);
    let bare = env.repo("svc", true);
    env.ok(&["project", "repo", "add", "PAY", bare.to_str().unwrap(), "--name", "service"]);
    let names: Vec<String> = env
        .json(&["project", "repo", "list", "PAY"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["good", "service"]);
    env.ok(&["project", "repo", "remove", "PAY", "good"]);
    env.code(3, &["project", "repo", "remove", "PAY", "good"]);
    assert_eq!(env.json(&["project", "repo", "list", "PAY"]).as_array().unwrap().len(), 1);
    assert!(good.join("README.md").exists(), "the repository itself is untouched");
}

#[test]
fn create_repo_makes_a_local_repository() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "NEW", "--name", "New", "--create-repo", "fresh"]);
    let repos = env.json(&["project", "repo", "list", "NEW"]);
    assert_eq!(repos[0]["name"], "fresh");
    assert!(git2::Repository::open(env.work.join("fresh")).unwrap().head().is_ok());
}

#[test]
fn members_and_roles() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "PAY", "--name", "Payments"]);
    env.ok(&["project", "member", "add", "PAY", "alice", "--role", "pm", "--role", "owner"]);
    env.ok(&["project", "member", "add", "PAY", "bob", "--role", "be,qa"]);
    env.code(2, &["project", "member", "add", "PAY", "carol", "--role", "boss"])
        .says(&["pm, ui, fe, be, qa, data, ops, owner"]);
    let m = env.json(&["project", "member", "list", "PAY"]);
    assert_eq!(m[0]["user"], "alice");
    assert_eq!(m[0]["roles"], serde_json::json!(["pm", "owner"]));
    assert_eq!(m[1]["roles"], serde_json::json!(["be", "qa"]));
    env.ok(&["project", "member", "remove", "PAY", "bob", "--role", "qa"]);
    assert_eq!(
        env.json(&["project", "member", "list", "PAY"])[1]["roles"],
        serde_json::json!(["be"])
    );
    env.ok(&["project", "member", "remove", "PAY", "bob"]);
    env.code(3, &["project", "member", "remove", "PAY", "bob"]);
    env.code(3, &["project", "member", "list", "NOPE"]);
}

#[test]
fn templates_are_data_per_project() {
    let env = TestEnv::new();
    env.ok(&["project", "create", "PAY", "--name", "Payments"]);
    assert!(env.ok(&["project", "template", "PAY"]).stdout.contains("## Acceptance criteria"));
    let t = write(&env, "tpl.md", b"# {key} {title}\n\nOur own sections for {project}.\n");
    env.ok(&["project", "template", "PAY", "--set", &t]);
    let key = env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]).stdout.trim().to_string();
    assert_eq!(
        env.ok(&["requirement", "doc", &key, "--print"]).stdout,
        "# PAY-1 Refunds\n\nOur own sections for PAY.\n"
    );
    env.ok(&["project", "template", "PAY", "--reset"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Second"]);
    assert!(env.ok(&["requirement", "doc", "PAY-2", "--print"]).stdout.contains("## User stories"));
}

#[test]
fn requirements_apps_environments_and_settings_can_be_changed_and_removed() {
    let env = TestEnv::new();
    let (web, _api) = project(&env);
    // A requirement's title.
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&["requirement", "edit", "PAY-1", "--title", "Refund cancelled orders"])
        .says(&["PAY-1: title changed"]);
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["title"], "Refund cancelled orders");
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("edit: title: Refunds -> Refund cancelled orders"), "{log}");
    env.ok(&["requirement", "edit", "PAY-1", "--title", "Refund cancelled orders"])
        .says(&["has that title already"]);
    env.code(2, &["requirement", "edit", "PAY-1", "--title", &"x".repeat(256)])
        .says(&["at most 255"]);
    env.code(2, &["requirement", "edit", "PAY-1"]);

    // An app, added by its repository's path, changed, and removed.
    env.ok(&[
        "project",
        "app",
        "add",
        "PAY",
        "web",
        "--repo",
        web.to_str().unwrap(),
        "--image",
        "reg.example.com/pay/web",
    ]);
    assert_eq!(env.json(&["project", "app", "show", "PAY", "web"])["repo"], "web");
    let a = env.json(&[
        "project",
        "app",
        "set",
        "PAY",
        "web",
        "--port",
        "8080",
        "--replicas",
        "prod=3",
        "--image",
        "",
    ]);
    assert_eq!(a["port"], 8080);
    assert_eq!(a["replicas"]["prod"], 3);
    assert!(a["image"].is_null(), "'' clears it: {a}");
    env.ok(&["project", "app", "set", "PAY", "web", "--replicas", "test=2"]);
    let a = env.json(&["project", "app", "show", "PAY", "web"]);
    assert_eq!(
        (a["replicas"]["prod"].as_i64(), a["replicas"]["test"].as_i64()),
        (Some(3), Some(2))
    );
    env.code(2, &["project", "app", "set", "PAY", "web", "--image", "reg.example.com/Pay:1"]);
    env.code(3, &["project", "app", "set", "PAY", "nope", "--port", "1"]);
    env.code(3, &["project", "app", "set", "PAY", "web", "--repo", "/no/such/repo"])
        .says(&["has no repository /no/such/repo", "api, web"]);
    env.code(4, &["project", "app", "remove", "PAY", "web"]).says(&["not confirmed"]);
    env.ok(&["project", "app", "remove", "PAY", "web", "--yes"]).says(&["removed app web"]);
    env.code(3, &["project", "app", "show", "PAY", "web"]);

    // An environment.
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "in-cluster",
        "--namespace",
        "pay-test",
    ]);
    env.code(4, &["project", "env", "remove", "PAY", "test"]).says(&["not confirmed"]);
    env.ok(&["project", "env", "remove", "PAY", "test", "--yes"])
        .says(&["removed environment test"]);
    assert_eq!(env.json(&["project", "env", "list", "PAY"]).as_array().unwrap().len(), 0);
    env.code(3, &["project", "env", "remove", "PAY", "test", "--yes"]);

    // A setting.
    env.ok(&["config", "set", "gates.coverage", "50"]);
    assert_eq!(env.ok(&["config", "get", "gates.coverage"]).stdout.trim(), "50.0");
    env.ok(&["config", "unset", "gates.coverage"]).says(&["gates.coverage removed"]);
    assert_eq!(env.ok(&["config", "get", "gates.coverage"]).stdout.trim(), "80.0");
    env.ok(&["config", "unset", "gates.coverage"]).says(&["was not set"]);
    env.code(2, &["config", "unset", "gates.nope"]);

    // Repositories by any spelling.
    env.ok(&["branch", "create", "PAY-1", "--repo", web.to_str().unwrap()]);
    let branches = env.json(&["branch", "list", "PAY-1"]);
    assert_eq!(branches.as_array().unwrap().len(), 1, "{branches}");
    env.ok(&["project", "repo", "remove", "PAY", web.to_str().unwrap()]).says(&["unlinked web"]);
}

#[test]
fn inside_a_linked_repository_the_project_is_known() {
    let env = TestEnv::new();
    let (web, _api) = project(&env);
    let shop = env.repo("shop", false);
    env.ok(&["project", "create", "SHOP", "--name", "Shop", "--repo", shop.to_str().unwrap()]);
    let sub = web.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let at = |dir: &std::path::Path, args: &[&str]| {
        let dir = dir.to_path_buf();
        env.run_with(args, move |c| {
            c.current_dir(&dir);
        })
    };
    let made = at(&sub, &["requirement", "create", "Refunds"]);
    assert_eq!((made.code, made.stdout.trim()), (0, "PAY-1"), "{made:?}");
    let made = at(&shop, &["requirement", "create", "Carts"]);
    assert_eq!(made.stdout.trim(), "SHOP-1", "{made:?}");
    let listed = at(&shop, &["requirement", "list", "--json"]).json();
    let keys: Vec<&str> =
        listed.as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["SHOP-1"], "inside SHOP's repository, SHOP's requirements");
    // Elsewhere, with several projects, it asks which, naming them.
    env.code(2, &["requirement", "create", "Vouchers"])
        .says(&["which project? there are several: PAY, SHOP", "-p KEY"]);
    assert_eq!(env.json(&["requirement", "list"]).as_array().unwrap().len(), 2);
    // -p still wins.
    let made = at(&shop, &["requirement", "create", "-p", "PAY", "Vouchers"]);
    assert_eq!(made.stdout.trim(), "PAY-2", "{made:?}");
}
