use crate::harness::*;

#[test]
fn init_is_idempotent_and_reports_paths() {
    let env = TestEnv::new();
    let first = env.json(&["init"]);
    assert_eq!(first["created"].as_array().unwrap().len(), 2, "{first}");
    assert!(env.db().exists());
    let again = env.json(&["init"]);
    assert_eq!(again["created"].as_array().unwrap().len(), 0);
    assert_eq!(again["database"], first["database"]);
}

#[test]
fn layers_resolve_later_wins() {
    let env = TestEnv::new();
    assert_eq!(env.ok(&["config", "get", "gates.coverage"]).stdout.trim(), "80.0");
    env.ok(&["config", "set", "gates.coverage", "85"]);
    let user_file = env.home.join(".config/xone/config.toml");
    assert!(std::fs::read_to_string(&user_file).unwrap().contains("coverage = 85.0"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&user_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(env.ok(&["config", "get", "gates.coverage"]).stdout.trim(), "85.0");

    // A project's .xone.toml, found from a subdirectory, beats the user config.
    std::fs::write(
        env.work.join(".xone.toml"),
        "[gates]\ncoverage = 90.5\nwatch_window = \"15m\"\n",
    )
    .unwrap();
    let sub = env.work.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let r = env.run_with(&["config", "get", "gates.coverage", "--json"], |c| {
        c.current_dir(&sub);
    });
    assert_eq!(r.json()["value"], 90.5);
    assert_eq!(r.json()["origin"], "project");

    // XONE_* beats the files.
    let r = env.run_with(&["config", "get", "gates.coverage"], |c| {
        c.env("XONE_GATES_COVERAGE", "70");
    });
    assert_eq!(r.stdout.trim(), "70.0");

    let list = env.json(&["config", "list"]);
    let row = list.as_array().unwrap().iter().find(|r| r["key"] == "gates.watch_window").unwrap();
    assert_eq!((row["value"].as_str(), row["origin"].as_str()), (Some("15m"), Some("project")));
    let row = list.as_array().unwrap().iter().find(|r| r["key"] == "workspace.dir").unwrap();
    assert_eq!((row["value"].as_str(), row["origin"].as_str()), (Some("~/xone"), Some("default")));

    let paths = env.json(&["config", "path"]);
    assert_eq!(paths["database"], env.db().to_str().unwrap());
    assert_eq!(paths["project_config"], env.work.join(".xone.toml").to_str().unwrap());
    let text = env.ok(&["config", "path"]).stdout;
    let line = |label: &str| {
        text.lines().find(|l| l.starts_with(label)).map(|l| l[label.len()..].trim().to_string())
    };
    assert_eq!(line("config ").as_deref(), user_file.to_str(), "{text}");
    assert_eq!(line("database").as_deref(), env.db().to_str(), "{text}");
    assert_eq!(line("state").as_deref(), env.state.to_str(), "{text}");
    let jq = env.ok(&["config", "path", "--jq", ".database"]).stdout;
    assert_eq!(jq.trim(), env.db().to_str().unwrap());

    env.ok(&["config", "set", "gates.watch_window", "30m", "--project"]);
    assert!(std::fs::read_to_string(env.work.join(".xone.toml"))
        .unwrap()
        .contains("watch_window = \"30m\""));
}

#[test]
fn xone_home_moves_the_state() {
    let env = TestEnv::new();
    let elsewhere = env.root().join("elsewhere");
    let r = env.run_with(&["init"], |c| {
        c.env("XONE_HOME", &elsewhere);
    });
    assert_eq!(r.code, 0, "{r:?}");
    assert!(elsewhere.join("state.db").exists());
    assert!(!env.db().exists());
}

#[test]
fn bad_keys_and_values_are_usage_errors() {
    let env = TestEnv::new();
    env.code(2, &["config", "get", "gates.nope"])
        .says(&["unknown configuration key 'gates.nope'", "gates.coverage"]);
    env.code(2, &["config", "set", "gates.coverage", "lots"]).says(&["a number"]);
    env.code(2, &["config", "set", "gates.watch_window", "soon"]).says(&["15m"]);
    let r = env.run_with(&["config", "get", "user.name"], |c| {
        c.env_remove("XONE_USER");
    });
    // Nothing names anyone: records are signed "unknown", and that is what it says.
    assert_eq!((r.code, r.stdout.trim()), (0, "unknown"), "{r:?}");
    assert_eq!(
        env.ok(&["config", "get", "user.name"]).stdout.trim(),
        "tester",
        "XONE_USER sets user.name"
    );
    assert!(!env.home.join(".config/xone/config.toml").exists(), "nothing may be written");
}

#[test]
fn malformed_files_name_file_line_and_column_and_stay_untouched() {
    let env = TestEnv::new();
    let user_file = env.home.join(".config/xone/config.toml");
    std::fs::create_dir_all(user_file.parent().unwrap()).unwrap();
    let broken = "[gates]\ncoverage = 80\nwatch_window = = \"2h\"\n";
    std::fs::write(&user_file, broken).unwrap();
    let r = env.code(2, &["project", "list"]);
    r.says(&[&format!("{}:3:", user_file.display()), "malformed"]);
    env.code(2, &["config", "set", "gates.coverage", "70"]);
    assert_eq!(std::fs::read_to_string(&user_file).unwrap(), broken);

    std::fs::write(&user_file, "").unwrap();
    std::fs::write(env.work.join(".xone.toml"), "[gates\n").unwrap();
    env.code(2, &["requirement", "list"]).says(&[".xone.toml:1:", "malformed"]);

    std::fs::write(env.work.join(".xone.toml"), "[gates]\ncoverage = \"high\"\n").unwrap();
    env.code(2, &["requirement", "list"])
        .says(&[".xone.toml", "gates.coverage has the wrong type"]);
}

#[test]
fn set_keeps_the_files_comments_and_layout() {
    let env = TestEnv::new();
    let user_file = env.home.join(".config/xone/config.toml");
    std::fs::create_dir_all(user_file.parent().unwrap()).unwrap();
    let before = "# team settings\n[gates]\n# stricter than default\ncoverage = 85.0 # agreed\n\n[ui]\npage_size = 20\n";
    std::fs::write(&user_file, before).unwrap();
    env.ok(&["config", "set", "gates.coverage", "90"]);
    env.ok(&["config", "set", "gates.watch_window", "30m"]);
    let after = std::fs::read_to_string(&user_file).unwrap();
    assert_eq!(
        after,
        "# team settings\n[gates]\n# stricter than default\ncoverage = 90.0 # agreed\nwatch_window = \"30m\"\n\n[ui]\npage_size = 20\n"
    );
}

#[test]
fn the_release_watch_asks_every_five_seconds_by_default() {
    let env = TestEnv::new();
    assert_eq!(env.ok(&["config", "get", "watch.interval"]).stdout.trim(), "5s");
}

#[test]
fn the_acting_user_is_shown_with_where_it_comes_from() {
    let env = TestEnv::new();
    let derived = |args: &[&str]| {
        env.run_with(args, |c| {
            c.env_remove("XONE_USER").env("USER", "jane");
        })
    };
    let r = derived(&["config", "get", "user.name"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "jane"), "{r:?}");
    let r = derived(&["config", "get", "user.name", "--show-origin"]);
    assert_eq!(r.stdout.trim(), "env:USER\tjane");
    let r = derived(&["config", "get", "user.name", "--json"]);
    assert_eq!(r.json()["origin"], "system", "{r:?}");
    let r = derived(&["config", "list", "--json"]);
    let row =
        r.json().as_array().unwrap().iter().find(|k| k["key"] == "user.name").cloned().unwrap();
    assert_eq!((row["value"].as_str(), row["origin"].as_str()), (Some("jane"), Some("system")));
    // Set on purpose: the configuration file, or XONE_USER.
    env.ok(&["config", "set", "user.name", "alice"]);
    let file = env.home.join(".config/xone/config.toml");
    let r = derived(&["config", "get", "user.name", "--show-origin"]);
    assert_eq!(r.stdout.trim(), format!("file:{}\talice", file.display()));
    let r = env.ok(&["config", "get", "user.name", "--show-origin"]);
    assert_eq!(r.stdout.trim(), "env:XONE_USER\ttester");
    let r = env.ok(&["config", "get", "gates.coverage", "--show-origin"]);
    assert_eq!(r.stdout.trim(), "default\t80.0");
}

#[test]
fn a_long_name_in_the_log_does_not_run_into_the_action() {
    let env = TestEnv::new();
    project(&env);
    env.as_user("maximilian.longname").ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("maximilian.longname create"), "{log}");
}
