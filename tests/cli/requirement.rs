use crate::harness::*;

#[test]
fn create_prints_the_key_and_show_carries_the_thread() {
    let env = TestEnv::new();
    project(&env);
    let r = env.ok(&[
        "requirement",
        "create",
        "-p",
        "PAY",
        "Refund cancelled orders",
        "--start",
        "2026-12-01",
        "--end",
        "2026-12-20",
        "--assign",
        "pm=pat",
        "--assign",
        "qa=quinn",
    ]);
    assert_eq!(r.stdout.trim(), "PAY-1");
    let t = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(t["key"], "PAY-1");
    assert_eq!(t["status"], "draft");
    assert_eq!(t["created_by"], "tester");
    assert_eq!(t["dates"]["start"], "2026-12-01");
    assert_eq!(t["dates"]["end"], "2026-12-20");
    assert_eq!(
        t["people"],
        serde_json::json!([{"role": "pm", "user": "pat"}, {"role": "qa", "user": "quinn"}])
    );
    let docs = t["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(
        (docs[0]["kind"].as_str(), docs[0]["version"].as_i64()),
        (Some("requirement"), Some(1))
    );
    assert_eq!(t["events"][0]["action"], "create");
    assert_eq!(t["next"]["status"], "requirement-review");
    for field in ["reviews", "branches", "signoffs"] {
        assert!(t[field].is_array(), "{field}");
    }
    let human = env.ok(&["requirement", "show", "PAY-1"]).stdout;
    for s in
        ["PAY-1  Refund cancelled orders  [draft]", "People", "pm    pat", "Documents", "Events"]
    {
        assert!(human.contains(s), "{s}: {human}");
    }
}

#[test]
fn template_document_has_every_section() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    let doc = env.ok(&["requirement", "doc", "PAY-1", "requirement", "--print"]).stdout;
    for s in [
        "# PAY-1: Refunds",
        "## Background",
        "## Goals",
        "## Scope",
        "## Non-goals",
        "## User stories",
        "## Acceptance criteria",
        "## Metrics",
        "## Prototype",
    ] {
        assert!(doc.contains(s), "{s}");
    }
}

#[test]
fn bad_input_names_the_accepted_form() {
    let env = TestEnv::new();
    project(&env);
    env.code(3, &["requirement", "create", "-p", "NOPE", "x"]).says(&["no project NOPE"]);
    env.code(2, &["requirement", "create", "-p", "PAY", "x", "--start", "2026-02-30"])
        .says(&["YYYY-MM-DD"]);
    env.code(2, &["requirement", "create", "-p", "PAY", "x", "--assign", "boss=pat"])
        .says(&["pm, ui, fe"]);
    env.code(
        2,
        &[
            "requirement",
            "create",
            "-p",
            "PAY",
            "x",
            "--start",
            "2026-12-10",
            "--end",
            "2026-12-01",
        ],
    )
    .says(&["before the start"]);
    env.code(2, &["requirement", "show", "pay1"]).says(&["PROJECT-NUMBER"]);
    env.code(2, &["requirement", "show", "PAY-x"]).says(&["PROJECT-NUMBER"]);
    env.code(3, &["requirement", "show", "PAY-99"]).says(&["no requirement PAY-99"]);
    env.code(2, &["requirement", "list", "--status", "finished"]).says(&["draft"]);
    // Nothing was created by the refusals.
    assert_eq!(env.json(&["requirement", "list", "--all"]).as_array().unwrap().len(), 0);
}

#[test]
fn list_pages_filters_and_mine() {
    let env = TestEnv::new();
    project(&env);
    for i in 1..=7 {
        env.ok(&["requirement", "create", "-p", "PAY", &format!("Item {i}")]);
    }
    env.ok(&["requirement", "assign", "PAY-3", "fe=tester"]);
    env.ok(&["requirement", "cancel", "PAY-2", "--reason", "duplicate"]);

    let page1 = env.run(&["requirement", "list", "--limit", "3", "--json"]);
    let keys: Vec<String> = page1
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["PAY-7", "PAY-6", "PAY-5"]);
    page1.says(&["1-3 of 7", "--page 2", "--all"]);
    let page3 = env.json(&["requirement", "list", "--limit", "3", "--page", "3"]);
    assert_eq!(page3.as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["requirement", "list", "--all"]).as_array().unwrap().len(), 7);
    // Off a terminal the page is ui.page_size rows.
    env.ok(&["config", "set", "ui.page_size", "4"]);
    assert_eq!(env.json(&["requirement", "list"]).as_array().unwrap().len(), 4);

    let cancelled = env.json(&["requirement", "list", "--status", "cancelled"]);
    assert_eq!(cancelled[0]["key"], "PAY-2");
    let mine = env.json(&["requirement", "list", "--mine", "--all"]);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["key"], "PAY-3");
    let text = env.ok(&["requirement", "list", "-p", "PAY", "--all"]).stdout;
    assert!(text.starts_with("KEY"), "{text}");
    assert!(text.contains("PAY-3  draft"), "{text}");
}

#[test]
fn keys_have_no_gaps_or_duplicates_under_concurrency() {
    // A fresh home: the database is created and migrated by the racing processes themselves.
    let env = TestEnv::new();
    let repos = env.repo("web", false);
    let mut setup = env.cmd();
    setup
        .args(["project", "create", "PAY", "--name", "P", "--repo", repos.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut c = env.cmd();
            c.args(["requirement", "create", "-p", "PAY", &format!("Parallel {i}")]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c
        })
        .collect();
    assert!(setup.status().unwrap().success());
    let running: Vec<_> = children.into_iter().map(|mut c| c.spawn().unwrap()).collect();
    let mut keys = Vec::new();
    for child in running {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a concurrent create failed: {stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
        keys.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    keys.sort_by_key(|k| k[4..].parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=16).map(|i| format!("PAY-{i}")).collect();
    assert_eq!(keys, expected);
}

#[test]
fn concurrent_first_use_of_a_fresh_home() {
    let env = TestEnv::new();
    let running: Vec<_> = (0..16)
        .map(|i| {
            let mut c = env.cmd();
            c.args(["project", "create", &format!("P{i}"), "--name", "x"]);
            c.stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in running {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(env.json(&["project", "list"]).as_array().unwrap().len(), 16);
}

#[test]
fn assign_and_schedule() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    let r = env.ok(&["requirement", "assign", "PAY-1", "pm=pat", "be=zed"]);
    r.says(&["zed is not a be member of PAY"]);
    env.ok(&["requirement", "assign", "PAY-1", "be=zed", "--remove"]);
    let t = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(t["people"], serde_json::json!([{"role": "pm", "user": "pat"}]));

    env.ok(&[
        "requirement",
        "schedule",
        "PAY-1",
        "--start",
        "2026-12-01",
        "--dev-end",
        "2026-12-05",
        "--test-submit",
        "2026-12-06",
        "--smoke",
        "2026-12-07",
        "--test-end",
        "2026-12-10",
        "--release",
        "2026-12-12",
        "--end",
        "2026-12-15",
    ]);
    let d = &env.json(&["requirement", "show", "PAY-1"])["dates"];
    assert_eq!(d["dev_end"], "2026-12-05");
    assert_eq!(d["release"], "2026-12-12");
    env.ok(&["requirement", "schedule", "PAY-1", "--smoke", "none"]);
    assert!(env.json(&["requirement", "show", "PAY-1"])["dates"]["smoke"].is_null());
    env.code(2, &["requirement", "schedule", "PAY-1", "--end", "2026-11-01"])
        .says(&["before the start"]);
    env.code(2, &["requirement", "schedule", "PAY-1"]).says(&["no date given"]);
    env.code(2, &["requirement", "schedule", "PAY-1", "--release", "12/12/2026"])
        .says(&["YYYY-MM-DD"]);
}

#[test]
fn documents_are_versioned_by_content() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    let f = write(&env, "req.md", b"# R\n\nReal content.\n");
    env.ok(&["requirement", "doc", "PAY-1", "--attach", &f]);
    env.ok(&["requirement", "doc", "PAY-1", "--attach", &f]).says(&["unchanged"]);
    let r = env.run_with(
        &["requirement", "doc", "PAY-1", "requirement", "--attach", "-", "--note", "from stdin"],
        |c| {
            c.stdin(std::fs::File::open(write(&env, "in.md", b"# R\n\nThird.\n")).unwrap());
        },
    );
    assert_eq!(r.code, 0, "{r:?}");
    let docs = env.json(&["requirement", "show", "PAY-1"])["documents"].clone();
    let versions: Vec<i64> =
        docs.as_array().unwrap().iter().map(|d| d["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(docs[2]["note"], "from stdin");
    assert_eq!(
        env.ok(&["requirement", "doc", "PAY-1", "--print", "--version", "2"]).stdout,
        "# R\n\nReal content.\n"
    );
    assert_eq!(env.ok(&["requirement", "doc", "PAY-1", "--print"]).stdout, "# R\n\nThird.\n");
    let j = env.json(&["requirement", "doc", "PAY-1", "--print", "--version", "2"]);
    assert_eq!(j["version"], 2);
    assert_eq!(j["text"], "# R\n\nReal content.\n");
    env.code(3, &["requirement", "doc", "PAY-1", "--print", "--version", "9"]).says(&["version 9"]);
    env.code(3, &["requirement", "doc", "PAY-1", "api", "--print"]).says(&["no api document"]);
    env.code(3, &["requirement", "doc", "PAY-1", "--attach", "/no/such.md"]);
    env.code(2, &["requirement", "doc", "PAY-1", "--print", "--attach", &f]);
}

#[test]
fn binary_attachments_keep_their_bytes() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..=255u8).cycle().take(4000));
    let f = write(&env, "proto.png", &png);
    env.ok(&["requirement", "doc", "PAY-1", "prototype", "--attach", &f]);
    let out =
        env.cmd().args(["requirement", "doc", "PAY-1", "prototype", "--print"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == png, "the bytes differ");
    let j = env.json(&["requirement", "doc", "PAY-1", "prototype"]);
    assert_eq!(j["media_type"], "image/png");
    assert_eq!(j["file_name"], "proto.png");
    assert_eq!(j["size"], png.len());
    assert!(j["text"].is_null());
    assert_eq!(j["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn oversized_documents_are_refused_whole() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    env.ok(&["config", "set", "docs.max_bytes", "1000"]);
    let f = write(&env, "big.bin", &vec![7u8; 1001]);
    env.code(4, &["requirement", "doc", "PAY-1", "prototype", "--attach", &f]).says(&[
        "big.bin",
        "1000 bytes",
        "docs.max_bytes",
    ]);
    let r = env.run_with(&["requirement", "doc", "PAY-1", "prototype", "--attach", "-"], |c| {
        c.stdin(std::fs::File::open(&f).unwrap());
    });
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(
        env.json(&["requirement", "show", "PAY-1"])["documents"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn edit_needs_a_terminal_and_says_how_to_attach() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    env.code(4, &["requirement", "doc", "PAY-1", "--edit"]).says(&["needs a terminal", "--attach"]);
}

#[test]
fn edit_on_a_terminal_opens_the_editor() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    // The editor appends a line; `script` gives xone a real terminal.
    let editor = env.root().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\necho 'Edited in the editor.' >> \"$1\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let r =
        env.in_terminal("requirement doc PAY-1 --edit", &[("EDITOR", editor.to_str().unwrap())]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc = env.ok(&["requirement", "doc", "PAY-1", "--print"]).stdout;
    assert!(doc.ends_with("Edited in the editor.\n"), "{r:?} {:?}", &doc[doc.len() - 80..]);
    assert!(doc.contains("## Background"), "the editor started from the current text");

    // An editor that is not there is named, and nothing is saved.
    let r = env.in_terminal(
        "requirement doc PAY-1 --edit",
        &[("VISUAL", "no-such-editor --wait"), ("EDITOR", editor.to_str().unwrap())],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("the editor `no-such-editor --wait` cannot be started"), "{r:?}");
    assert!(r.stdout.contains("VISUAL or EDITOR"), "{r:?}");
    assert_eq!(env.ok(&["requirement", "doc", "PAY-1", "--print"]).stdout, doc);
}

#[test]
fn an_edit_does_not_silently_replace_a_version_saved_meanwhile() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    let other = write(&env, "other.md", b"# Saved by someone else\n");
    // This editor lets someone else save a version before it writes its own.
    let editor = env.root().join("racing-editor.sh");
    let body = format!(
        "#!/bin/sh\n{XONE} requirement doc PAY-1 --attach {other} >/dev/null 2>&1\necho mine >> \"$1\"\n"
    );
    std::fs::write(&editor, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let r =
        env.in_terminal("requirement doc PAY-1 --edit", &[("EDITOR", editor.to_str().unwrap())]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("changed while it was being edited"), "{r:?}");
    let now = env.ok(&["requirement", "doc", "PAY-1", "--print"]).stdout;
    assert_eq!(now, "# Saved by someone else\n");
}

#[test]
fn keys_read_in_any_case_statuses_filter_together_and_long_titles_fit_the_terminal() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "pay", "One"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Two"]);
    let long = format!("Three {}", "very ".repeat(40));
    env.ok(&["requirement", "create", "-p", "PAY", long.trim()]);
    assert_eq!(env.json(&["requirement", "show", "pay-1"])["key"], "PAY-1");
    env.ok(&["requirement", "advance", "Pay-2", "--force", "--reason", "ready"]);
    let keys = |status: &str| -> Vec<String> {
        env.json(&["requirement", "list", "--status", status])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys("requirement-review"), ["PAY-2"]);
    assert_eq!(keys("draft,requirement-review"), ["PAY-3", "PAY-2", "PAY-1"]);
    env.code(2, &["requirement", "list", "--status", "draft,nope"]);
    for cols in [60u16, 100] {
        let tty = env.in_terminal_of_width("requirement list", cols);
        let row = tty.stdout.lines().find(|l| l.contains("PAY-3")).unwrap().to_string();
        assert!(row.contains('…') && !row.contains(long.trim()), "cut to the terminal: {row:?}");
        for line in tty.stdout.lines() {
            let shown = without_colour(line.trim_end_matches('\r'));
            assert!(shown.chars().count() <= cols as usize, "wider than {cols}: {shown:?}");
        }
    }
    let piped = env.ok(&["requirement", "list"]).stdout;
    assert!(piped.contains(long.trim()), "whole into a pipe");
}
