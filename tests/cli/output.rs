use crate::harness::*;

#[test]
fn quickstart_walks_a_sandbox_to_submitted() {
    let env = TestEnv::new();
    let r = env.ok(&["quickstart", "sandbox"]);
    r.says(&[
        "$ xone project create DEMO",
        "$ xone requirement advance DEMO-1",
        "$ xone requirement show DEMO-1",
    ]);
    assert!(r.stdout.contains("DEMO-1  Refund cancelled orders  [submitted]"), "{}", r.stdout);
    let t = env.json(&["requirement", "show", "DEMO-1"]);
    assert_eq!(t["status"], "submitted");
    assert_eq!(t["branches"].as_array().unwrap().len(), 2);
    assert!(t["branches"].as_array().unwrap().iter().all(|b| b["ahead"] == 1));
    let members = env.json(&["project", "member", "list", "DEMO"]);
    let roles: std::collections::BTreeSet<String> = members
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(roles.len(), 8, "a member for every role: {roles:?}");
    // Again: a new project key, and a refusal to reuse a full directory.
    env.code(5, &["quickstart", "sandbox"]).says(&["not empty"]);
    env.ok(&["quickstart", "sandbox2"]);
    assert_eq!(env.json(&["requirement", "show", "DEMO2-1"])["status"], "submitted");
}

#[test]
fn no_colour_off_a_terminal_and_none_with_no_color() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    let plain = env.ok(&["requirement", "show", "PAY-1"]);
    assert!(!plain.stdout.contains('\x1b') && !plain.stderr.contains('\x1b'));
    let tty = env.in_terminal("requirement show PAY-1", &[]);
    assert!(tty.stdout.contains("\x1b[1m"), "bold on a terminal: {:?}", tty.stdout);
    let no_color = env.in_terminal("requirement show PAY-1", &[("NO_COLOR", "1")]);
    assert_eq!(no_color.code, 0);
    assert!(!no_color.stdout.contains('\x1b'), "{:?}", no_color.stdout);
}

#[test]
fn data_on_stdout_everything_else_on_stderr() {
    let env = TestEnv::new();
    project(&env);
    let r = env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    assert_eq!(r.stdout, "PAY-1\n");
    assert!(r.stderr.contains("created PAY-1"));
    let r = env.code(3, &["requirement", "show", "PAY-7"]);
    assert!(r.stdout.is_empty());
    r.says(&["Error: no requirement PAY-7", "Hint:"]);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let env = TestEnv::new();
    env.code(2, &["requirement"]);
    env.code(2, &["frobnicate"]);
    env.code(2, &["project", "create", "PAY"]).says(&["--name"]);
    assert!(env.ok(&["--help"]).stdout.contains("requirement"));
    assert!(env.ok(&["--version"]).stdout.starts_with("xone "));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    // Far more than a pipe holds, so xone is still writing when `head` goes away.
    let big = write(&env, "big.md", &vec![b'x'; 4 << 20]);
    env.ok(&["requirement", "doc", "PAY-1", "--attach", &big]);
    let line = format!("{XONE} requirement doc PAY-1 --print | head -c 10 >/dev/null");
    let out = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &line])
        .env("HOME", &env.home)
        .env("XONE_HOME", &env.state)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xone failed on a closed pipe: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_acting_user_is_checked_where_it_is_set() {
    let env = TestEnv::new();
    project(&env);
    let r = env.run_with(&["requirement", "create", "-p", "PAY", "R"], |c| {
        c.env("XONE_USER", "Jane Doe");
    });
    assert_eq!(r.code, 2, "{r:?}");
    r.says(&["XONE_USER", "invalid user name 'Jane Doe'"]);
    // Derived from git's user.email when nothing is set; '+' is fine.
    let gitconfig = "[user]\n\temail = jane+work@example.invalid\n";
    std::fs::write(env.home.join(".gitconfig"), gitconfig).unwrap();
    let r = env.run_with(&["requirement", "create", "-p", "PAY", "R", "--json"], |c| {
        c.env_remove("XONE_USER").env("USER", "fallback");
    });
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["created_by"], "jane+work");
}
