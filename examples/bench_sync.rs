//! SPEC §7: `xone sync` from Jira, the first sync of 1,000 issues in pages of at least 100 and
//! an incremental sync of 10 changed issues in at most 3 requests, against the tests' fake Jira
//! (Server and Cloud). Prints the requests and the wall time of each.
//!
//!   benches/sync.sh
//!
//! XONE (default target/release/xone) picks the binary.

#![allow(clippy::print_stdout)] // a benchmark: its table is its output

#[path = "../tests/fake_http/mod.rs"]
mod fake_http;
#[path = "../tests/fake_jira/mod.rs"]
mod fake_jira;

use std::process::{Command, Stdio};
use std::time::Instant;

use fake_jira::{FakeJira, Flavour};

fn main() {
    let xone = std::env::var("XONE").unwrap_or_else(|_| "target/release/xone".into());
    println!("| Jira | sync | issues read | requests | wall ms | budget |");
    println!("|---|---|---:|---:|---:|---|");
    for flavour in [Flavour::Server, Flavour::Cloud] {
        let scratch = std::env::temp_dir()
            .join(format!("xone-bench-sync-{}-{flavour:?}", std::process::id()));
        std::fs::create_dir_all(scratch.join("home")).unwrap();
        let jira = FakeJira::start(flavour);
        jira.add_user("bench", "bench@example.com", "Bench", "bench-token-1234");
        jira.add_project("BENCH", "Bench");
        jira.add_issues("BENCH", 1000, "In Progress", 3600);
        let run = |args: &[&str]| {
            let out = Command::new(&xone)
                .args(args)
                .env("HOME", scratch.join("home"))
                .env("XONE_HOME", scratch.join("state"))
                .env("XONE_USER", "bench")
                .env("XONE_JIRA_URL", &jira.url)
                .env("XONE_JIRA_TOKEN", "bench-token-1234")
                .env("CI", "1")
                .envs(if flavour == Flavour::Cloud {
                    vec![("XONE_JIRA_USER", "bench@example.com")]
                } else {
                    vec![]
                })
                .stdin(Stdio::null())
                .output()
                .expect("xone runs");
            assert!(
                out.status.success(),
                "xone {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        run(&["project", "create", "BENCH", "--name", "Bench"]);
        run(&["project", "set", "BENCH", "--tracker", "jira"]);
        for (kind, budget) in [("first", "pages of >= 100"), ("incremental", "<= 3 requests")] {
            if kind == "incremental" {
                for n in 1..=10 {
                    jira.set_status(&format!("BENCH-{n}"), "Testing");
                }
            }
            let started = Instant::now();
            let out = run(&["sync", "--json"]);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let (issues, requests) =
                (v[0]["issues"].as_i64().unwrap(), v[0]["requests"].as_i64().unwrap());
            let within = match kind {
                "first" => {
                    let pages = v[0]["pages"].as_i64().unwrap();
                    issues / pages.max(1) >= 100 || issues < 100
                }
                _ => requests <= 3,
            };
            println!(
                "| {flavour:?} | {kind} | {issues} | {requests} | {ms:.0} | {budget}: {} |",
                if within { "within" } else { "OVER" }
            );
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
