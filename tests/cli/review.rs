use crate::harness::*;

#[test]
fn comments_resolution_and_the_record_in_the_document() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&[
        "requirement",
        "create",
        "-p",
        "PAY",
        "Refunds",
        "--assign",
        "pm=pat",
        "--assign",
        "qa=quinn",
    ]);
    let id = env
        .ok(&["review", "create", "PAY-1", "--kind", "requirement", "--at", "2026-12-01 14:30"])
        .stdout
        .trim()
        .to_string();
    let rv = env.json(&["review", "show", &id]);
    assert_eq!(
        rv["attendees"],
        serde_json::json!(["pat", "quinn"]),
        "default: the requirement's people"
    );
    assert_eq!(rv["at"], "2026-12-01 14:30");
    assert!(rv["verdict"].is_null());

    let c1 = env
        .ok(&["review", "comment", &id, "Scope misses vouchers", "--section", "Scope"])
        .stdout
        .trim()
        .to_string();
    let c2 =
        env.ok(&["review", "comment", &id, "Metric needs a baseline"]).stdout.trim().to_string();
    env.ok(&["review", "resolve", &id, &c1]);
    env.ok(&["review", "resolve", &id, &c1]).says(&["already resolved"]);
    env.code(3, &["review", "resolve", &id, "999"]);
    let rv = env.json(&["review", "show", &id]);
    assert_eq!(rv["comments"][0]["section"], "Scope");
    assert_eq!(rv["comments"][0]["resolved_by"], "tester");
    assert!(rv["comments"][1]["resolved_at"].is_null());

    env.ok(&["review", "verdict", &id, "approve", "--note", "go"]).says(&["1 open comment"]);
    let rv = env.json(&["review", "show", &id]);
    assert_eq!(rv["verdict"], "approve");
    assert_eq!(rv["doc_version"], 2);
    let doc = env.ok(&["requirement", "doc", "PAY-1", "--print"]).stdout;
    assert!(doc.starts_with("# PAY-1: Refunds"), "the document keeps its text");
    for s in [
        &format!("## Review #{id}: requirement review of PAY-1"),
        "- Held: 2026-12-01 14:30",
        "- Attendees: pat, quinn",
        "- Verdict: approve",
        "- Note: go",
        &format!("{c1}. tester [Scope]: Scope misses vouchers (resolved"),
        &format!("{c2}. tester: Metric needs a baseline (open)"),
    ] {
        assert!(doc.contains(s), "record lacks {s:?}:\n{doc}");
    }
    // A review-record version does not count as editing the requirement document.
    env.code(4, &["requirement", "advance", "PAY-1"]).says(&["unedited template"]);

    env.code(5, &["review", "verdict", &id, "reject"]).says(&["closed with verdict approve"]);
    env.code(5, &["review", "comment", &id, "late"]).says(&["closed"]);
    let list = env.json(&["review", "list", "PAY-1"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["review", "list"]).as_array().unwrap().len(), 1);
    assert!(env.ok(&["review", "list"]).stdout.contains("2 (1 open)"));
}

#[test]
fn bad_reviews() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    env.code(2, &["review", "create", "PAY-1", "--kind", "prototype"])
        .says(&["requirement, tech-design, test-cases"]);
    env.code(4, &["review", "create", "PAY-1", "--kind", "test-cases"])
        .says(&["no test-cases document"]);
    env.code(3, &["review", "create", "PAY-1", "--kind", "requirement", "--attendee", "stranger"])
        .says(&["stranger"]);
    env.code(2, &["review", "create", "PAY-1", "--kind", "requirement", "--at", "tomorrow noon"])
        .says(&["YYYY-MM-DD HH:MM"]);
    let id = env
        .ok(&["review", "create", "PAY-1", "--kind", "requirement", "--attendee", "pat"])
        .stdout
        .trim()
        .to_string();
    assert_eq!(env.json(&["review", "show", &id])["attendees"], serde_json::json!(["pat"]));
    env.code(3, &["review", "show", "42"]).says(&["no review #42"]);
    env.code(2, &["review", "verdict", &id, "maybe"]);
    env.code(2, &["review", "comment", &id, "  "]);
}

#[test]
fn two_verdicts_at_once_cannot_both_land() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    for round in 0..3 {
        let id = env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]).stdout;
        let id = id.trim();
        let racers: Vec<_> = ["approve", "reject"]
            .iter()
            .map(|v| {
                let mut c = env.cmd();
                c.args(["review", "verdict", id, v]).stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        let mut codes: Vec<i32> = racers
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        codes.sort();
        assert_eq!(codes, [0, 5], "round {round}");
        let doc = env.ok(&["requirement", "doc", "PAY-1", "--print"]).stdout;
        assert_eq!(doc.matches(&format!("## Review #{id}:")).count(), 1, "one record per review");
    }
}

#[test]
fn a_note_that_looks_like_a_record_is_still_an_edit() {
    let env = TestEnv::new();
    project(&env);
    let create = ["requirement", "create", "-p", "PAY", "R", "--assign", "pm=pat"];
    env.ok(&[&create[..], &["--start", "today", "--end", "+5"]].concat());
    let doc = write(&env, "r.md", b"# Real\n");
    env.ok(&["requirement", "doc", "PAY-1", "--attach", &doc, "--note", "review #1 fixes"]);
    env.ok(&["requirement", "advance", "PAY-1"]);
}

#[test]
fn a_meeting_day_may_be_relative_and_the_thread_lines_up_its_reviews() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds", "--assign", "pm=pat"]);
    let tomorrow =
        env.ok(&["review", "create", "PAY-1", "--kind", "requirement", "--at", "+1 10:00"]);
    let id = tomorrow.stdout.trim().to_string();
    let at = env.json(&["review", "show", &id])["at"].as_str().unwrap().to_string();
    let start = env.json(&["requirement", "show", "PAY-1"])["created_at"].as_str().unwrap()[..10]
        .to_string();
    assert!(at.ends_with(" 10:00") && at[..10] > start[..], "{at} is a day after {start}");
    let today = env.ok(&["review", "create", "PAY-1", "--kind", "requirement", "--at", "today"]);
    let second = today.stdout.trim().to_string();
    assert_eq!(env.json(&["review", "show", &second])["at"].as_str().unwrap(), &start[..]);
    env.code(2, &["review", "create", "PAY-1", "--kind", "requirement", "--at", "soon"])
        .says(&["invalid date and time 'soon'"]);
    // The kind column keeps its width whatever the verdict.
    env.ok(&["review", "verdict", &id, "approve"]);
    let show = env.ok(&["requirement", "show", "PAY-1"]).stdout;
    assert!(show.contains(&format!("#{id:<4}requirement approve  ")), "{show}");
    assert!(show.contains(&format!("#{second:<4}requirement pending  ")), "{show}");
}
