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
    // The sandbox keeps its state inside it; the user's is never touched.
    assert!(!env.db().exists(), "quickstart wrote the user's state database");
    let sandbox = env.work.join("sandbox").canonicalize().unwrap().join(".xone");
    r.says(&[&format!("export XONE_HOME={}", sandbox.display())]);
    let mut env = env;
    env.set_var("XONE_HOME", sandbox.to_str().unwrap());
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
    // Again: a refusal to reuse a full directory; another one is a sandbox of its own.
    env.code(5, &["quickstart", "sandbox"]).says(&["not empty"]);
    env.ok(&["quickstart", "sandbox2"]);
    let second = env.work.join("sandbox2").canonicalize().unwrap().join(".xone");
    env.set_var("XONE_HOME", second.to_str().unwrap());
    assert_eq!(env.json(&["requirement", "show", "DEMO-1"])["status"], "submitted");
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

/// Control sequences someone could put into text xone prints: OSC 52 (writes the
/// clipboard), OSC 0 (the window's title), clearing the screen, a carriage return.
const HOSTILE: &str =
    "Refunds\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}]0;owned\u{7}\u{1b}[2J\roverwritten\u{9b}31m";

fn no_raw_controls(text: &str) {
    let raw: Vec<char> =
        text.chars().filter(|c| c.is_control() && *c != '\n' && *c != '\t').collect();
    assert!(raw.is_empty(), "control characters reached the terminal: {raw:?} in {text:?}");
}

#[test]
fn text_others_wrote_reaches_the_terminal_with_its_control_characters_escaped() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", HOSTILE]);
    for args in [
        &["requirement", "list"][..],
        &["requirement", "show", "PAY-1"],
        &["requirement", "log", "PAY-1"],
    ] {
        let out = env.ok(args);
        no_raw_controls(&out.stdout);
        no_raw_controls(&out.stderr);
        assert!(out.stdout.contains(r"Refunds\x1b]52;c;cm0gLXJmIH4=\x07"), "{}", out.stdout);
        assert!(out.stdout.contains(r"\x1b[2J\roverwritten\x9b31m"), "{}", out.stdout);
    }
    // JSON keeps the text as it is, escaped by JSON itself.
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["title"], HOSTILE);

    // A review comment and its section, in the review's record.
    let id =
        env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]).stdout.trim().to_string();
    env.ok(&["review", "comment", &id, HOSTILE, "--section", "\u{1b}[2JScope"]);
    let record = env.ok(&["review", "show", &id]);
    no_raw_controls(&record.stdout);
    assert!(record.stdout.contains(r"[\x1b[2JScope]"), "{}", record.stdout);

    // An error that quotes what someone wrote: the status line and the error itself.
    let out = env.code(4, &["requirement", "advance", "PAY-1"]);
    no_raw_controls(&out.stderr);
}

#[test]
fn a_document_goes_out_as_it_is_into_a_pipe_and_escaped_on_a_terminal() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let doc = env.root().join("doc.md");
    std::fs::write(&doc, format!("# {HOSTILE}\n")).unwrap();
    env.ok(&["requirement", "doc", "PAY-1", "--attach", doc.to_str().unwrap()]);
    let out = env.ok(&["requirement", "doc", "PAY-1", "--print"]);
    assert_eq!(out.stdout, format!("# {HOSTILE}\n"), "a pipe gets the bytes that were attached");
    let tty = env.in_terminal("requirement doc PAY-1 --print", &[]);
    // The terminal itself turns each newline into CR LF; nothing else may act on it.
    let shown = tty.stdout.replace("\r\n", "\n");
    no_raw_controls(&shown);
    assert!(shown.contains(r"\x1b]0;owned\x07"), "{shown:?}");
}

#[test]
fn titles_have_a_limit_and_attachments_must_be_files() {
    let env = TestEnv::new();
    project(&env);
    let long = "x".repeat(256);
    env.code(2, &["requirement", "create", "-p", "PAY", &long])
        .says(&["the title is 256 characters long", "at most 255"]);
    let max = "é".repeat(255);
    env.ok(&["requirement", "create", "-p", "PAY", &max]);
    let dir = env.root().join("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    env.code(2, &["requirement", "doc", "PAY-1", "--attach", dir.to_str().unwrap()])
        .says(&["a-directory is a directory, not a file", "--attach -"]);
    let fifo = env.root().join("a-fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Refused at once, not waiting for a writer that never comes.
    let started = std::time::Instant::now();
    env.code(2, &["requirement", "doc", "PAY-1", "--attach", fifo.to_str().unwrap()])
        .says(&["a-fifo is a FIFO (named pipe), not a file"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    env.code(
        2,
        &["requirement", "create", "-p", "PAY", "Another", "--doc", fifo.to_str().unwrap()],
    )
    .says(&["is a FIFO"]);
}

#[test]
fn times_read_as_people_read_them_on_a_terminal_and_stay_rfc3339_elsewhere() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let tty = env.in_terminal("requirement show PAY-1", &[]);
    assert!(tty.stdout.contains("created just now by tester"), "{}", tty.stdout);
    let log = env.in_terminal("requirement log PAY-1", &[]);
    assert!(log.stdout.starts_with("just now  tester"), "{}", log.stdout);
    let piped = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    let first = piped.split_whitespace().next().unwrap();
    assert!(first.len() == 20 && first.ends_with('Z') && first.as_bytes()[10] == b'T', "{piped}");
    let json = env.json(&["requirement", "show", "PAY-1"]);
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn jq_filters_the_json_and_strings_print_raw() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "One"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Two"]);
    assert_eq!(env.ok(&["requirement", "list", "--jq", ".[].key"]).stdout, "PAY-2\nPAY-1\n");
    assert_eq!(env.ok(&["requirement", "show", "PAY-1", "--jq", ".status"]).stdout, "draft\n");
    let objects = env.ok(&["requirement", "list", "--jq", ".[] | {key, title}"]).stdout;
    assert_eq!(
        objects,
        "{\"key\":\"PAY-2\",\"title\":\"Two\"}\n{\"key\":\"PAY-1\",\"title\":\"One\"}\n"
    );
    assert_eq!(env.ok(&["project", "list", "--jq", "length"]).stdout, "1\n");
    env.code(2, &["requirement", "list", "--jq", ".["]).says(&["does not parse"]);
    env.code(2, &["requirement", "list", "--jq", "nosuch"]).says(&["no filter nosuch"]);
    env.code(2, &["requirement", "show", "PAY-1", "--jq", ".title | .[0]"])
        .says(&["--jq expression failed"]);
}
