//! Jira, Server and Cloud, against the fake Jira: logging in, who the token is, the doctor.

use crate::fake_jira::{FakeJira, Flavour};
use crate::harness::*;

const PAT: &str = "NjM5OTk1NzI0OTY5OklyT2hG";
const API_TOKEN: &str = "ATATT3xFfGF0Z8mGcT2";

fn with_jira(flavour: Flavour) -> (TestEnv, FakeJira) {
    let env = TestEnv::new();
    let jira = FakeJira::start(flavour);
    match flavour {
        Flavour::Server => {
            jira.add_user("pat", "pat@example.com", "Pat Product", PAT);
        }
        Flavour::Cloud => {
            jira.add_user("5b10a2844c20165700ede21g", "pat@example.com", "Pat Product", API_TOKEN);
            env.ok(&["config", "set", "jira.user", "pat@example.com"]);
        }
    }
    env.ok(&["config", "set", "jira.url", &jira.url]);
    (env, jira)
}

#[test]
fn a_server_token_is_checked_stored_privately_and_named_in_auth_status() {
    let (env, jira) = with_jira(Flavour::Server);
    env.code(4, &["auth", "status"]).says(&["not logged in to Jira", "xone auth login jira"]);
    // A wrong token is refused, named by what it is, never printed, and not stored.
    let wrong = env.run_stdin(&["auth", "login", "jira", "--token-stdin"], "wrong-token-123\n");
    assert_eq!(wrong.code, 6, "{wrong:?}");
    wrong.says(&["Jira Server/Data Center", "refused the personal access token"]);
    assert!(!wrong.stderr.contains("wrong-token-123"), "{wrong:?}");
    let cfg = env.home.join(".config/xone/config.toml");
    assert!(!std::fs::read_to_string(&cfg).unwrap_or_default().contains("wrong-token-123"));

    let ok = env.run_stdin(&["auth", "login", "jira", "--token-stdin"], &format!("{PAT}\n"));
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stderr.contains("as pat"), "{ok:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600);
    let st = env.json(&["auth", "status"]);
    assert_eq!(st["system"], "jira", "Jira alone: {st}");
    assert_eq!(
        (st["deployment"].as_str(), st["version"].as_str()),
        (Some("server"), Some("9.12.2"))
    );
    assert_eq!((st["user"].as_str(), st["name"].as_str()), (Some("pat"), Some("Pat Product")));
    assert!(st["token_source"].as_str().unwrap().starts_with("file:"), "{st}");
    // A bearer token, as Server's personal access tokens are sent.
    assert!(jira.requests().iter().any(|(_, p)| p.starts_with("/rest/api/2/myself")));
    let doctor = env.run(&["doctor", "--json"]);
    let checks: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let j = checks.as_array().unwrap().iter().find(|c| c["system"] == "jira").unwrap().clone();
    assert_eq!((j["status"].as_str(), j["user"].as_str()), (Some("ok"), Some("pat")), "{j}");
    assert_eq!(j["version"], "9.12.2");
    // Logged out, the stored token is gone.
    env.ok(&["auth", "logout", "jira"]);
    assert!(!std::fs::read_to_string(&cfg).unwrap().contains(PAT));
}

#[test]
fn cloud_takes_an_email_and_an_api_token_over_rest_v3() {
    let (mut env, jira) = with_jira(Flavour::Cloud);
    env.set_var("XONE_JIRA_TOKEN", API_TOKEN);
    let st = env.json(&["auth", "status"]);
    assert_eq!(st["deployment"], "cloud", "{st}");
    assert_eq!(st["user"], "5b10a2844c20165700ede21g");
    assert_eq!(st["email"], "pat@example.com");
    assert_eq!(st["token_source"], "env:XONE_JIRA_TOKEN");
    assert!(jira.requests().iter().any(|(_, p)| p.starts_with("/rest/api/3/myself")), "REST v3");
    // The wrong email for the token: refused, naming whose token and what to do.
    env.ok(&["config", "set", "jira.user", "someone@example.com"]);
    env.code(6, &["auth", "status"]).says(&[
        "Jira Cloud",
        "refused the API token of someone@example.com",
        "id.atlassian.com",
    ]);
}

#[test]
fn jira_busy_or_down_is_retried_then_said() {
    let (mut env, jira) = with_jira(Flavour::Server);
    env.set_var("XONE_JIRA_TOKEN", PAT);
    // 429 with Retry-After: asked again, and answered.
    jira.fail("/myself", 429, 1, Some(1));
    let st = env.json(&["auth", "status"]);
    assert_eq!(st["user"], "pat");
    // Down: exit 6 naming Jira, from auth status and from the doctor.
    env.ok(&["config", "set", "remote.retries", "0"]);
    env.ok(&["config", "set", "jira.url", "http://127.0.0.1:9"]);
    env.code(6, &["auth", "status"]).says(&["Jira could not be reached"]);
    let doctor = env.run(&["doctor", "--json"]);
    let checks: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let j = checks.as_array().unwrap().iter().find(|c| c["system"] == "jira").unwrap().clone();
    assert_eq!(j["status"], "failed", "{j}");
}

/// What the fake answers has every key of Atlassian's documented examples.
#[test]
fn the_fake_answers_with_the_documented_keys() {
    let fixture = |name: &str| -> serde_json::Value {
        let path = format!("{}/fixtures/jira/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    for (flavour, me, auth) in [
        (Flavour::Server, "myself_server.json", format!("Bearer {PAT}")),
        (Flavour::Cloud, "myself_cloud.json", {
            use base64::Engine as _;
            let pair = format!("pat@example.com:{API_TOKEN}");
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        }),
    ] {
        let (_env, jira) = with_jira(flavour);
        let api = if flavour == Flavour::Server { "2" } else { "3" };
        let get = |path: &str, auth: Option<&str>| {
            let mut r = local_http().get(format!("{}/rest/api/{api}{path}", jira.url));
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            let resp = r.send().unwrap();
            let code = resp.status().as_u16();
            (code, serde_json::from_str::<serde_json::Value>(&resp.text().unwrap()).unwrap())
        };
        let (code, body) = get("/myself", Some(&auth));
        assert_eq!(code, 200, "{body}");
        let missing = crate::fake_kube_check::missing_keys(&fixture(me), &body);
        assert!(missing.is_empty(), "{me}: lacks {missing:?}");
        let (code, info) = get("/serverInfo", None);
        assert_eq!(code, 200);
        let missing = crate::fake_kube_check::missing_keys(&fixture("serverinfo.json"), &info);
        assert!(missing.is_empty(), "serverInfo lacks {missing:?}");
        // Unauthenticated, as Jira says it.
        let (code, err) = get("/myself", None);
        assert_eq!(code, 401);
        let missing = crate::fake_kube_check::missing_keys(&fixture("error_400.json"), &err);
        assert!(missing.is_empty(), "an error lacks {missing:?}");
    }
}

#[test]
fn a_project_moves_to_the_jira_project_of_its_key() {
    let (mut env, jira) = with_jira(Flavour::Server);
    env.set_var("XONE_JIRA_TOKEN", PAT);
    project(&env);
    // The key must be the same everywhere, and the user must see the project.
    env.code(4, &["project", "set", "PAY", "--tracker", "jira", "--jira-project", "PAYMENTS"])
        .says(&["the Jira project PAYMENTS is not PAY", "keys must be equal"]);
    env.code(3, &["project", "set", "PAY", "--tracker", "jira"])
        .says(&["has no project PAY that this user can see"]);
    jira.add_project("PAY", "Payments");
    let p = env.json(&["project", "set", "PAY", "--tracker", "jira"]);
    assert_eq!((p["tracker"].as_str(), p["jira_project"].as_str()), (Some("jira"), Some("PAY")));
    let show = env.json(&["project", "show", "PAY"]);
    assert_eq!(show["tracker"], "jira", "{show}");
    // And back; a project with requirements stays where they are.
    env.ok(&["project", "set", "PAY", "--tracker", "builtin"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.code(4, &["project", "set", "PAY", "--tracker", "jira"])
        .says(&["has 1 requirement(s) in the builtin tracker"]);
    // Without a Jira server or token: exit 4 saying how to set them.
    let fresh = TestEnv::new();
    project(&fresh);
    fresh
        .code(4, &["project", "set", "PAY", "--tracker", "jira"])
        .says(&["no Jira server is configured", "jira.url"]);
}

/// PAY on a Jira of `flavour`, its requirements kept there, logged in by token.
fn tracked(flavour: Flavour) -> (TestEnv, FakeJira) {
    let (mut env, jira) = with_jira(flavour);
    env.set_var("XONE_JIRA_TOKEN", if flavour == Flavour::Server { PAT } else { API_TOKEN });
    project(&env);
    jira.add_project("PAY", "Payments");
    env.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    (env, jira)
}

#[test]
fn a_requirement_is_a_jira_issue_moved_along_its_workflow() {
    let (env, jira) = tracked(Flavour::Server);
    let r = env.json(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    assert_eq!(r["key"], "PAY-1", "the issue's key is the requirement's: {r}");
    let issue = jira.issue("PAY-1").expect("the Jira issue");
    assert_eq!((issue.summary.as_str(), issue.status.as_str()), ("Refund orders", "To Do"));
    assert_eq!(issue.issue_type, "Story", "jira.issue_type's default");
    // Its description is the requirement document, from the template and from each version.
    assert!(
        issue.description.as_str().unwrap().contains("Refund orders"),
        "{:?}",
        issue.description
    );
    let doc = write(&env, "req.md", b"# Refund orders\n\nRefund a whole order at once.\n");
    env.ok(&["requirement", "doc", "PAY-1", "requirement", "--attach", &doc]);
    let described = jira.issue("PAY-1").unwrap().description;
    assert_eq!(described.as_str().unwrap(), "# Refund orders\n\nRefund a whole order at once.\n");
    env.ok(&["config", "set", "jira.issue_type", "Requirement"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Coupons"]);
    assert_eq!(jira.issue("PAY-2").unwrap().issue_type, "Requirement");
    env.ok(&["requirement", "edit", "PAY-1", "--title", "Refund whole orders"]);
    assert_eq!(jira.issue("PAY-1").unwrap().summary, "Refund whole orders");
    // A stage moves the issue by the transition that reaches the status of its name; a
    // forced gate is a comment.
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "the PM is away"]);
    let issue = jira.issue("PAY-1").unwrap();
    assert_eq!(issue.status, "Requirement Review");
    assert!(
        issue.comments.iter().any(|(_, b)| b.as_str().unwrap().contains("the PM is away")),
        "{issue:?}"
    );
    // A workflow with no path to the next stage: exit 4 listing what it offers; nothing moves.
    jira.make_unreachable("Design");
    env.code(4, &["requirement", "advance", "PAY-1", "--force", "--reason", "again"]).says(&[
        "no transition to the status of design",
        "it offers:",
        "In Development",
    ]);
    assert_eq!(jira.issue("PAY-1").unwrap().status, "Requirement Review");
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["status"], "requirement-review");
    // A branch is a remote link, made once however often it is made again.
    env.ok(&["branch", "create", "PAY-1"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let links = jira.issue("PAY-1").unwrap().links;
    assert_eq!(links.len(), 2, "one per repository: {links:?}");
    assert!(links.iter().all(|l| l.0.starts_with("xone:branch:")), "{links:?}");
}

#[test]
fn on_cloud_comments_are_documents_and_a_dead_jira_makes_nothing() {
    let (mut env, jira) = tracked(Flavour::Cloud);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    let described = jira.issue("PAY-1").unwrap().description;
    assert_eq!(described["type"], "doc", "Cloud takes a description as a document: {described}");
    env.ok(&["requirement", "cancel", "PAY-1", "--reason", "out of scope"]);
    let issue = jira.issue("PAY-1").unwrap();
    assert_eq!(issue.status, "Won't Do");
    let (_, body) = issue.comments.last().expect("the reason, as a comment");
    assert_eq!(body["type"], "doc", "Cloud takes comments as documents: {body}");
    assert!(body.to_string().contains("out of scope"));
    // Jira unreachable: exit 6, and no requirement is made here either.
    env.ok(&["config", "set", "remote.retries", "0"]);
    env.set_var("XONE_JIRA_URL", "http://127.0.0.1:9");
    env.code(6, &["requirement", "create", "-p", "PAY", "Coupons"])
        .says(&["Jira could not be reached"]);
    let list = env.json(&["requirement", "list", "-p", "PAY", "--all"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn a_fresh_home_rebuilds_its_requirements_from_jira_then_syncs_only_what_changed() {
    let (env, jira) = tracked(Flavour::Server);
    jira.add_issues("PAY", 180, "In Progress", 3600);
    jira.add_issues("PAY", 70, "Testing", 3600);
    let first = env.json(&["sync"]);
    let s = &first[0];
    assert_eq!((s["kind"].as_str(), s["issues"].as_i64()), (Some("full"), Some(250)), "{s}");
    assert_eq!(
        s["requests"], 5,
        "the shared project (shared when the project moved to Jira), the fields, then pages of 100 to the end"
    );
    assert_eq!(s["created"].as_array().unwrap().len(), 250);
    let list = env.json(&["requirement", "list", "-p", "PAY", "--all"]);
    assert_eq!(list.as_array().unwrap().len(), 250);
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["status"], "developing");
    assert_eq!(env.json(&["requirement", "show", "PAY-200"])["status"], "testing");
    // Moved in Jira's web UI: the next sync reads only that, takes it, and says which of
    // xone's gates would have refused it.
    // The Jira user's time zone is ten hours behind UTC: the incremental sync still sees it.
    jira.time_zone(-10 * 3600);
    jira.set_status("PAY-7", "Released");
    let again = env.json(&["sync", "-p", "PAY"]);
    let s = &again[0];
    assert_eq!((s["kind"].as_str(), s["issues"].as_i64()), (Some("incremental"), Some(1)), "{s}");
    assert!(s["requests"].as_i64().unwrap() <= 3, "{s}");
    assert_eq!(s["moved"][0]["key"], "PAY-7");
    assert_eq!(
        (s["moved"][0]["from"].as_str(), s["moved"][0]["to"].as_str()),
        (Some("developing"), Some("released"))
    );
    let gates: Vec<&str> =
        s["moved"][0]["gates"].as_array().unwrap().iter().filter_map(|g| g.as_str()).collect();
    for want in ["no feature branch to integrate", "no qa sign-off", "no release-plan document"] {
        assert!(gates.contains(&want), "{want} in {gates:?}");
    }
    let log = env.json(&["requirement", "log", "PAY-7"]);
    let sync =
        log.as_array().unwrap().iter().rev().find(|e| e["action"] == "sync").unwrap().clone();
    assert!(sync["detail"].as_str().unwrap().contains("which would have refused"), "{sync}");
    assert_eq!(sync["forced"], true, "{sync}");
    assert_eq!(env.json(&["requirement", "show", "PAY-7"])["status"], "released");
    // A status that stands for no stage is said, and changes nothing.
    jira.set_status("PAY-8", "Blocked");
    let r = env.ok(&["sync"]);
    assert!(r.stderr.contains("PAY-8: the Jira status \"Blocked\" stands for no stage"), "{r:?}");
    assert_eq!(env.json(&["requirement", "show", "PAY-8"])["status"], "developing");
}

#[test]
fn cloud_pages_by_token_and_never_asks_the_removed_search() {
    let (env, jira) = tracked(Flavour::Cloud);
    jira.add_issues("PAY", 150, "To Do", 600);
    let first = env.json(&["sync"]);
    assert_eq!((first[0]["issues"].as_i64(), first[0]["requests"].as_i64()), (Some(150), Some(4)));
    assert!(
        jira.requests().iter().all(|(_, p)| !p.starts_with("/rest/api/3/search?")),
        "the old search is gone on Cloud"
    );
    assert!(jira.requests().iter().any(|(_, p)| p.contains("nextPageToken=")));
    // Nothing to sync without a Jira project.
    let plain = TestEnv::new();
    project(&plain);
    plain.code(4, &["sync"]).says(&["no project keeps its requirements in Jira"]);
}

#[test]
fn an_issue_is_adopted_and_one_deleted_under_xone_is_said() {
    let (env, jira) = tracked(Flavour::Server);
    jira.add_issues("PAY", 3, "In Development", 60);
    let r = env.json(&["requirement", "adopt", "PAY-2"]);
    assert_eq!(
        (r["key"].as_str(), r["status"].as_str()),
        (Some("PAY-2"), Some("developing")),
        "{r}"
    );
    assert_eq!(r["title"], "Issue 2 made in Jira");
    env.code(5, &["requirement", "adopt", "PAY-2"]).says(&["PAY-2 is a requirement here already"]);
    env.code(3, &["requirement", "adopt", "PAY-9"]).says(&["has no issue PAY-9"]);
    // Deleted in Jira: the next move says so, and nothing changes here.
    jira.delete_issue("PAY-2");
    env.code(3, &["requirement", "advance", "PAY-2", "--force", "--reason", "on"])
        .says(&["the Jira issue PAY-2 is gone"]);
    assert_eq!(env.json(&["requirement", "show", "PAY-2"])["status"], "developing");
    // A new requirement takes the next free number in Jira, not one already used there.
    let made = env.json(&["requirement", "create", "-p", "PAY", "Coupons"]);
    assert_eq!(made["key"], "PAY-4", "{made}");
}

#[test]
fn a_status_map_names_the_jira_statuses_of_the_stages() {
    let (env, jira) = tracked(Flavour::Server);
    let dir = env.home.join(".config/xone");
    let file = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str("\n[jira.status_map]\nrequirement-review = [\"Design\"]\n");
    std::fs::write(&file, text).unwrap();
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "mapped"]);
    assert_eq!(jira.issue("PAY-1").unwrap().status, "Design", "the mapped status");
    jira.add_issues("PAY", 1, "Design", 3600);
    env.ok(&["sync"]);
    assert_eq!(env.json(&["requirement", "show", "PAY-2"])["status"], "requirement-review");
    // A map that names no stage is refused, naming the file.
    std::fs::write(&file, "[jira.status_map]\nreviewing = \"Design\"\n").unwrap();
    env.code(2, &["sync"]).says(&["'reviewing' is not a stage", "config.toml"]);
}

/// With Jira as the tracker, a role-gated step is proven by whose Jira token takes it.
#[test]
fn a_sign_off_is_proven_by_whose_jira_token_signs_it() {
    let (mut env, jira) = tracked(Flavour::Server);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    for _ in 0..5 {
        env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "on"]);
    }
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["status"], "testing");
    // The token is pat's (a pm); xone is told it acts as quinn (the qa member): refused.
    env.set_var("XONE_USER", "quinn");
    env.code(4, &["requirement", "signoff", "PAY-1"])
        .says(&["xone would act as quinn, but the Jira token is pat's"]);
    // quinn's own token, mapped to quinn by account: signed, as a comment by that account.
    jira.add_user("qa-quinn", "q.a@example.com", "Quinn QA", "quinn-token-5678");
    env.set_var("XONE_JIRA_TOKEN", "quinn-token-5678");
    env.code(4, &["requirement", "signoff", "PAY-1"]).says(&[
        "qa-quinn (Quinn QA)",
        "is no member of PAY",
        "--jira-account qa-quinn",
    ]);
    env.ok(&[
        "project",
        "member",
        "add",
        "PAY",
        "quinn",
        "--role",
        "qa",
        "--jira-account",
        "qa-quinn",
    ]);
    env.ok(&["requirement", "signoff", "PAY-1", "--note", "all cases pass"]);
    let issue = jira.issue("PAY-1").unwrap();
    let (author, body) = issue.comments.last().unwrap();
    assert_eq!(author, "qa-quinn");
    assert!(body.as_str().unwrap().contains("all cases pass"), "{body}");
}

/// Jira down: changes succeed here, are queued, and are pushed in order, once each, by the
/// next command that changes something; never by a list.
#[test]
fn offline_changes_are_queued_and_pushed_in_order_once_each() {
    let (mut env, jira) = tracked(Flavour::Server);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["config", "set", "remote.retries", "0"]);
    let up = jira.url.clone();
    env.set_var("XONE_JIRA_URL", "http://127.0.0.1:9");
    let r = env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "first"]);
    assert!(r.stderr.contains("Jira could not be reached: 2 change(s) are kept here"), "{r:?}");
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["status"], "requirement-review");
    let queued = env.json(&["sync", "--status"]);
    let ops: Vec<&str> =
        queued.as_array().unwrap().iter().map(|q| q["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["transition", "comment"]);
    // Back up: a list pushes nothing; the next change pushes the queue first, then itself.
    env.set_var("XONE_JIRA_URL", &up);
    env.ok(&["requirement", "list", "-p", "PAY"]);
    assert_eq!(jira.issue("PAY-1").unwrap().status, "To Do", "a list never talks to Jira");
    let r = env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "second"]);
    assert!(r.stderr.contains("pushed 2 queued change(s) to Jira"), "{r:?}");
    let issue = jira.issue("PAY-1").unwrap();
    assert_eq!(issue.status, "Design");
    let texts: Vec<String> =
        issue.comments.iter().map(|(_, b)| b.as_str().unwrap().to_string()).collect();
    assert!(texts[0].contains("first") && texts[1].contains("second"), "in order: {texts:?}");
    assert_eq!(env.json(&["sync", "--status"]), serde_json::json!([]));

    // A move Jira took but whose answer was lost is read back, not made twice.
    jira.lose_answers("POST", "/transitions", 1);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "third"]);
    let posts = |jira: &FakeJira| {
        jira.requests().iter().filter(|(m, p)| m == "POST" && p.ends_with("/transitions")).count()
    };
    let before = posts(&jira);
    env.ok(&["requirement", "edit", "PAY-1", "--title", "Refund whole orders"]);
    assert_eq!(posts(&jira), before, "the move was found done in Jira, not sent again");
    assert_eq!(jira.issue("PAY-1").unwrap().status, "In Development");
    assert_eq!(env.json(&["sync", "--status"]), serde_json::json!([]));

    // Queued while down, then no longer allowed by the workflow: said (exit 4), kept here.
    env.set_var("XONE_JIRA_URL", "http://127.0.0.1:9");
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "fourth"]);
    env.set_var("XONE_JIRA_URL", &up);
    jira.make_unreachable("Submitted");
    env.code(4, &["sync"]).says(&[
        "the queued move to submitted is not one Jira's workflow allows now",
        "stays here only",
    ]);
    let status = env.json(&["sync", "--status"]);
    let refused =
        status.as_array().unwrap().iter().find(|q| q["state"] == "refused").unwrap().clone();
    let id = refused["id"].as_i64().unwrap().to_string();
    env.ok(&["sync", "--drop", &id]);
    env.code(3, &["sync", "--drop", &id]).says(&["nothing waits for Jira under id"]);
}

/// A deploy talks to remote systems: it pushes what waits for Jira first.
#[test]
fn a_deploy_pushes_what_waits_for_jira() {
    let (mut env, _kube) = crate::deploy::cluster();
    let jira = FakeJira::start(Flavour::Server);
    jira.add_user("pat", "pat@example.com", "Pat Product", PAT);
    jira.add_project("PAY", "Payments");
    env.ok(&["config", "set", "jira.url", &jira.url]);
    env.set_var("XONE_JIRA_TOKEN", PAT);
    env.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["config", "set", "remote.retries", "0"]);
    env.set_var("XONE_JIRA_URL", "http://127.0.0.1:9");
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "queued"]);
    env.set_var("XONE_JIRA_URL", &jira.url);
    let r = env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    assert!(r.stderr.contains("pushed 2 queued change(s) to Jira"), "{r:?}");
    assert_eq!(jira.issue("PAY-1").unwrap().status, "Requirement Review");
}

/// A second machine, as a teammate's: the same Jira, the same repositories, its own home.
fn teammate(jira: &FakeJira, first: &TestEnv) -> TestEnv {
    let mut env = TestEnv::new();
    env.set_var("XONE_JIRA_TOKEN", PAT);
    env.set_var("XONE_USER", "pat");
    env.ok(&["config", "set", "jira.url", &jira.url]);
    let repos = first.root().join("repos");
    let (web, api) = (repos.join("web"), repos.join("api.git"));
    env.ok(&[
        "project",
        "create",
        "PAY",
        "--name",
        "Payments",
        "--repo",
        web.to_str().unwrap(),
        "--repo",
        api.to_str().unwrap(),
    ]);
    env.ok(&["project", "member", "add", "PAY", "pat", "--role", "pm"]);
    env.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    env
}

/// People, reviews, sign-offs and the document travel in the issue's comments and
/// description: a teammate's sync rebuilds them, and its gates see them.
#[test]
fn a_teammate_s_sync_rebuilds_people_reviews_sign_offs_and_the_document() {
    let (mut env, jira) = tracked(Flavour::Server);
    env.set_var("XONE_USER", "pat");
    env.ok(&[
        "requirement",
        "create",
        "-p",
        "PAY",
        "Refund orders",
        "--assign",
        "pm=pat",
        "--assign",
        "be=bob",
    ]);
    env.ok(&["requirement", "assign", "PAY-1", "qa=quinn"]);
    env.ok(&["requirement", "assign", "PAY-1", "be=bob", "--remove"]);
    let doc = write(&env, "req.md", b"# Refund orders\n\nRefund a whole order at once.\n");
    env.ok(&["requirement", "doc", "PAY-1", "requirement", "--attach", &doc]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "dates later"]);
    env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]);
    env.ok(&["review", "verdict", "1", "approve", "--note", "clear"]);

    let mate = teammate(&jira, &env);
    let synced = mate.json(&["sync"]);
    let s = &synced[0];
    assert_eq!(s["created"][0], "PAY-1", "{s}");
    // The review opened, then closed: two facts about one review.
    assert_eq!((s["reviews"].as_i64(), s["documents"].as_i64()), (Some(2), Some(1)), "{s}");
    let show = mate.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["status"], "requirement-review");
    let mut people: Vec<String> = show["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}={}", p["role"].as_str().unwrap(), p["user"].as_str().unwrap()))
        .collect();
    people.sort();
    assert_eq!(people, ["pm=pat", "qa=quinn"], "bob was assigned, then removed");
    let review = &show["reviews"][0];
    assert_eq!(
        (review["kind"].as_str(), review["verdict"].as_str()),
        (Some("requirement"), Some("approve"))
    );
    assert_eq!(review["verdict_by"], "pat");
    let printed = mate.ok(&["requirement", "doc", "PAY-1", "--print"]);
    assert_eq!(printed.stdout, "# Refund orders\n\nRefund a whole order at once.\n");
    // The teammate's gate sees the approved review: the step to design needs nothing more.
    mate.ok(&["requirement", "advance", "PAY-1"]);
    assert_eq!(jira.issue("PAY-1").unwrap().status, "Design");
    // Syncing again, on either machine, takes nothing twice.
    let again = mate.json(&["sync"]);
    assert_eq!(
        (again[0]["reviews"].as_i64(), again[0]["people"].as_array().map(Vec::len)),
        (Some(0), Some(0)),
        "{}",
        again[0]
    );
    let mine = env.json(&["sync"]);
    assert_eq!(mine[0]["reviews"], 0, "{}", mine[0]);
    assert_eq!(mine[0]["moved"][0]["to"], "design", "{}", mine[0]);
    // Branches are found on the forge: the teammate's sync records them once.
    env.ok(&["branch", "create", "PAY-1"]);
    let found = mate.json(&["sync"]);
    let mut branches: Vec<&str> =
        found[0]["branches"].as_array().unwrap().iter().filter_map(|b| b.as_str()).collect();
    branches.sort();
    assert_eq!(
        branches,
        ["PAY-1 api feature/PAY-1-refund-orders", "PAY-1 web feature/PAY-1-refund-orders"]
    );
    let listed = mate.json(&["branch", "list", "PAY-1"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(mate.json(&["sync"])[0]["branches"], serde_json::json!([]));
    // The product manager's acceptance in gray travels too.
    for _ in 0..4 {
        mate.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "on"]);
    }
    mate.ok(&["requirement", "signoff", "PAY-1", "--note", "looks right"]);
    let mine = env.json(&["sync"]);
    assert_eq!(mine[0]["signoffs"], 1, "{}", mine[0]);
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["status"], "gray");
    assert_eq!(show["signoffs"].as_array().unwrap().len(), 1, "{show}");
    // A sign-off typed into a comment by someone else is passed over, and said.
    jira.add_user("mallory", "m@example.com", "Mallory", "mallory-token-1234");
    let forged = "looks done\n[xone signoff gray by=pat at=2026-12-06T11:00:00.000Z]";
    jira.add_comment("PAY-1", "mallory", serde_json::json!(forged));
    let s = env.json(&["sync"]);
    assert_eq!(s[0]["signoffs"], 0, "{}", s[0]);
    let unproven = s[0]["unproven"].to_string();
    assert!(unproven.contains("by=pat") && unproven.contains("written by mallory"), "{unproven}");
    // A review opened and not yet decided is there too, and the teammate's gate sees it open.
    env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]);
    let s = mate.json(&["sync"]);
    assert_eq!(s[0]["reviews"], 1, "{}", s[0]);
    let reviews = mate.json(&["review", "list", "PAY-1"]);
    let open: Vec<&serde_json::Value> =
        reviews.as_array().unwrap().iter().filter(|r| r["verdict"].is_null()).collect();
    assert_eq!(open.len(), 1, "{reviews}");
    assert_eq!(open[0]["created_by"], "pat");
}

/// On GitLab, a teammate's sync finds the feature branches through GitLab's branch search (one
/// listing per repository), and their merge requests with them.
#[test]
fn on_gitlab_a_teammate_s_sync_finds_the_branches_by_search() {
    let (mut env, fake) = crate::gitlab::lab();
    let jira = FakeJira::start(Flavour::Server);
    jira.add_user("pat", "pat@example.com", "Pat Product", PAT);
    jira.add_project("PAY", "Payments");
    let api_url = format!("{}/pay/sub/api.git", fake.url);
    let setup = |e: &TestEnv| {
        e.ok(&["config", "set", "jira.url", &jira.url]);
        e.ok(&[
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
        e.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    };
    env.set_var("XONE_JIRA_TOKEN", PAT);
    setup(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Coupons"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let branch = "feature/PAY-1-refund-orders";
    fake.commit("pay/web", branch, &[("refund.txt", "refund\n")], "PAY-1: refunds");
    env.ok(&["branch", "mr", "PAY-1"]);

    let mut mate = TestEnv::new();
    for (k, v) in [
        ("XONE_GITLAB_URL", fake.url.as_str()),
        ("XONE_GITLAB_TOKEN", crate::gitlab::TOKEN),
        ("XONE_JIRA_TOKEN", PAT),
    ] {
        mate.set_var(k, v);
    }
    setup(&mate);
    fake.clear_log();
    let synced = mate.json(&["sync"]);
    assert_eq!(synced[0]["branches"].as_array().unwrap().len(), 2, "{}", synced[0]);
    let searches: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/repository/branches"))
        .map(|r| r.path)
        .collect();
    assert_eq!(searches.len(), 2, "one listing per repository: {searches:?}");
    assert!(searches.iter().all(|p| p.contains("search=%5Efeature%2FPAY-")), "{searches:?}");
    let show = mate.json(&["requirement", "show", "PAY-1"]);
    let web = show["branches"].as_array().unwrap().iter().find(|b| b["repo"] == "web").unwrap();
    assert!(web["merge_request"]["url"].as_str().unwrap().contains("/merge_requests/"), "{web}");
    assert_eq!(web["ahead"], 1);
    assert_eq!(mate.json(&["requirement", "show", "PAY-2"])["branches"], serde_json::json!([]));
}

/// Deploys and gray releases live in the clusters: a teammate's sync records the revisions
/// and gray releases made for the requirements it knows, once.
#[test]
fn a_teammate_s_sync_reads_the_deploy_and_gray_history_from_the_clusters() {
    let (mut env, kube) = crate::deploy::cluster();
    let jira = FakeJira::start(Flavour::Server);
    jira.add_user("pat", "pat@example.com", "Pat Product", PAT);
    jira.add_project("PAY", "Payments");
    env.set_var("XONE_JIRA_TOKEN", PAT);
    env.set_var("XONE_JIRA_URL", &jira.url);
    env.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    let prod = ["project", "env", "set", "PAY", "prod", "--context", "prod-ctx", "--namespace"];
    env.ok(&[&prod[..], &["s-hist"]].concat());
    env.ok(&["project", "app", "set", "PAY", "web", "--replicas", "prod=3"]);
    kube.add_namespace("s-hist");
    for tag in ["1", "2"] {
        let image = format!("reg.example.com/web:{tag}");
        env.ok(&["deploy", "web", "--env", "prod", "--image", &image, "--requirement", "PAY-1"]);
    }
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:0"]);
    env.ok(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:3",
        "--instances",
        "1",
        "--analysis",
        "restarts",
        "--requirement",
        "PAY-1",
    ]);
    // Each deployment and the gray release are remote links of the issue, one per image and
    // one per release, whose title follows it.
    let links = jira.issue("PAY-1").unwrap().links;
    let ids: Vec<&str> = links.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("xone:deploy:s-hist:web:prod:")).count(),
        2,
        "{ids:?}"
    );
    let gray = links
        .iter()
        .find(|l| l.0.starts_with("xone:gray:s-hist:web:prod:"))
        .expect("the gray release's link");
    assert!(gray.2.contains("progressing, step 1 of 2"), "{gray:?}");
    env.ok(&["gray", "pause", "web", "--env", "prod"]);
    let links = jira.issue("PAY-1").unwrap().links;
    let gray = links.iter().filter(|l| l.0.starts_with("xone:gray:")).collect::<Vec<_>>();
    assert_eq!(gray.len(), 1, "updated, not doubled: {gray:?}");
    assert!(gray[0].2.contains("paused"), "{gray:?}");
    env.ok(&["gray", "resume", "web", "--env", "prod"]);

    let mut mate = TestEnv::new();
    for (k, v) in &env.vars {
        mate.set_var(k, v);
    }
    project(&mate);
    mate.ok(&["project", "app", "add", "PAY", "web", "--repo", "web", "--port", "8080"]);
    mate.ok(&[&prod[..], &["s-hist"]].concat());
    mate.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "test-ctx",
        "--namespace",
        "default",
    ]);
    mate.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    let synced = mate.json(&["sync"]);
    let s = &synced[0];
    let deploys: Vec<&str> =
        s["deploys"].as_array().unwrap().iter().filter_map(|d| d.as_str()).collect();
    assert_eq!(deploys.len(), 2, "the two of PAY-1, not the test deploy of no requirement: {s}");
    assert!(
        deploys.iter().any(|d| d.starts_with("web prod r2 (current) reg.example.com/web:2")),
        "{deploys:?}"
    );
    assert_eq!(s["grays"], serde_json::json!(["web prod progressing"]), "{s}");
    let show = mate.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["deploys"].as_array().unwrap().len(), 2, "{show}");
    assert_eq!(show["deploys"][0]["status"], "applied");
    assert!(show["deploys"][0]["started_at"].as_str().unwrap().ends_with('Z'), "{show}");
    assert_eq!(show["grays"][0]["phase"], "progressing", "{show}");
    // Read again: nothing twice.
    let again = mate.json(&["sync"]);
    assert_eq!(again[0]["deploys"], serde_json::json!([]), "{}", again[0]);
    // A cluster that refuses is said; the rest is synced.
    kube.refuse("list", "configmaps", "default");
    let r = mate.ok(&["sync"]);
    assert!(r.stderr.contains("the cluster of test"), "{}", r.stderr);
}

/// The dates go to the fields named by `jira.start_field` and `jira.end_field` (found through
/// `/field`), the labels are added beside Jira's own, and a sync reads the dates back.
#[test]
fn dates_and_labels_are_written_to_fields_found_by_name_and_read_back() {
    let (env, jira) = tracked(Flavour::Cloud);
    let answer = local_http()
        .get(format!("{}/rest/api/3/field", jira.url))
        .basic_auth("pat@example.com", Some(API_TOKEN))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let fields: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let fixture = |name: &str| -> serde_json::Value {
        let path = format!("{}/fixtures/jira/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let system = &fields.as_array().unwrap()[0];
    let missing = crate::fake_kube_check::missing_keys(&fixture("fields.json")[1], system);
    assert!(missing.is_empty(), "a system field lacks {missing:?}");
    let custom = fields.as_array().unwrap().iter().find(|f| f["custom"] == true).unwrap();
    let missing =
        crate::fake_kube_check::missing_keys(&fixture("field_custom_create.json"), custom);
    assert!(missing.is_empty(), "a custom field lacks {missing:?}");

    env.ok(&[
        "requirement",
        "create",
        "-p",
        "PAY",
        "Refund orders",
        "--start",
        "2026-12-07",
        "--end",
        "2026-12-20",
    ]);
    let issue = jira.issue("PAY-1").unwrap();
    assert_eq!(issue.fields["customfield_10015"], "2026-12-07", "Start date: {:?}", issue.fields);
    assert_eq!(issue.fields["duedate"], "2026-12-20");
    assert_eq!(issue.fields["labels"], serde_json::json!(["xone"]));
    // A label given in Jira stays; a new end date replaces the old.
    jira.set_field("PAY-1", "labels", serde_json::json!(["team-a"]));
    env.ok(&["requirement", "schedule", "PAY-1", "--end", "2026-12-24"]);
    let issue = jira.issue("PAY-1").unwrap();
    assert_eq!(issue.fields["duedate"], "2026-12-24");
    assert_eq!(issue.fields["labels"], serde_json::json!(["team-a", "xone"]));
    // Moved in Jira: the sync takes it.
    env.ok(&["sync"]);
    jira.set_field("PAY-1", "duedate", serde_json::json!("2027-01-08"));
    let s = env.json(&["sync"]);
    assert_eq!(s[0]["dates"], serde_json::json!(["PAY-1 end 2027-01-08"]), "{}", s[0]);
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["dates"]["end"], "2027-01-08");
    // A field named in the config that Jira lacks: exit 4 with the near names; nothing made.
    env.ok(&["config", "set", "jira.start_field", "Start Dte"]);
    env.code(4, &["requirement", "create", "-p", "PAY", "Coupons"]).says(&[
        "Jira has no field named 'Start Dte' (jira.start_field)",
        "near names: Start date",
        "xone config set jira.start_field",
    ]);
    assert!(jira.issue("PAY-2").is_none(), "nothing made in Jira");
    env.code(4, &["sync"]).says(&["Start Dte"]);
    // By its id it is found however it is named; left unset, a Jira without the default
    // field gets no start date, and the rest is written.
    env.ok(&["config", "set", "jira.start_field", "customfield_10015"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Coupons", "--start", "2026-12-08"]);
    assert_eq!(jira.issue("PAY-2").unwrap().fields["customfield_10015"], "2026-12-08");
    env.ok(&["config", "unset", "jira.start_field"]);
    jira.rename_field("Start date", None);
    env.ok(&[
        "requirement",
        "create",
        "-p",
        "PAY",
        "Vouchers",
        "--start",
        "2026-12-09",
        "--end",
        "2026-12-31",
    ]);
    let issue = jira.issue("PAY-3").unwrap();
    assert_eq!(
        (issue.fields.get("customfield_10015"), issue.fields["duedate"].as_str()),
        (None, Some("2026-12-31"))
    );
}

/// A project with requirements moves to Jira only with --migrate: each gets an issue (or
/// adopts the one with its key and title), takes its key, and keeps its old key as an alias;
/// a move that stops goes on where it stopped.
#[test]
fn migrate_carries_requirements_into_jira_under_new_keys_with_aliases() {
    let (mut env, jira) = with_jira(Flavour::Server);
    env.set_var("XONE_JIRA_TOKEN", PAT);
    env.set_var("XONE_USER", "pat");
    project(&env);
    jira.add_project("PAY", "Payments");
    jira.add_issues("PAY", 3, "To Do", 60);
    let create = |title: &str| {
        env.ok(&[
            "requirement",
            "create",
            "-p",
            "PAY",
            title,
            "--start",
            "2026-12-07",
            "--end",
            "2026-12-20",
        ]);
    };
    for title in ["Refund orders", "Coupons", "Issue 3 made in Jira", "Vouchers"] {
        create(title);
    }
    env.ok(&["requirement", "assign", "PAY-1", "pm=pat"]);
    let doc = write(&env, "req.md", b"# Refund orders\n\nAll at once.\n");
    env.ok(&["requirement", "doc", "PAY-1", "requirement", "--attach", &doc]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "early"]);
    env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]);
    env.ok(&["review", "verdict", "1", "approve"]);
    env.ok(&["branch", "create", "PAY-1"]);

    env.code(4, &["project", "set", "PAY", "--tracker", "jira"])
        .says(&["has 4 requirement(s)", "--migrate"]);
    // Jira fails right after making PAY-1's issue: the move stops, and it knows that issue.
    env.ok(&["config", "set", "remote.retries", "0"]);
    jira.fail("/issue/PAY-4", 500, 1, None);
    env.code(6, &["project", "set", "PAY", "--tracker", "jira", "--migrate"]);
    assert_eq!(jira.issues().len(), 4, "one issue made");
    // The workflow cannot reach PAY-1's stage: the move stops again, making nothing twice.
    jira.make_unreachable("Requirement Review");
    env.code(4, &["project", "set", "PAY", "--tracker", "jira", "--migrate"])
        .says(&["no transition to the status of requirement-review"]);
    assert_eq!(jira.issues().len(), 4, "one issue made");
    assert_eq!(env.json(&["project", "show", "PAY"])["tracker"], "builtin", "nothing switched");
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["title"], "Refund orders");
    jira.reach_all();
    let p = env.json(&["project", "set", "PAY", "--tracker", "jira", "--migrate"]);
    assert_eq!(p["tracker"], "jira");
    let carried: Vec<(String, String, bool)> = p["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["from"].as_str().unwrap().into(),
                c["to"].as_str().unwrap().into(),
                c["adopted"] == true,
            )
        })
        .collect();
    assert_eq!(
        carried,
        [
            ("PAY-1".into(), "PAY-4".into(), false),
            ("PAY-2".into(), "PAY-5".into(), false),
            ("PAY-3".into(), "PAY-3".into(), true),
            ("PAY-4".into(), "PAY-6".into(), false),
        ],
        "PAY-4 trades its key for PAY-6 while PAY-1 takes it"
    );
    assert_eq!(jira.issues().len(), 6, "nothing made twice");
    // The issue has what the requirement had.
    let issue = jira.issue("PAY-4").unwrap();
    assert_eq!(
        (issue.summary.as_str(), issue.status.as_str()),
        ("Refund orders", "Requirement Review")
    );
    assert_eq!(issue.description, "# Refund orders\n\nAll at once.\n");
    assert_eq!(
        (issue.fields["customfield_10015"].as_str(), issue.fields["duedate"].as_str()),
        (Some("2026-12-07"), Some("2026-12-20"))
    );
    let remarks = issue.comments.last().unwrap().1.as_str().unwrap().to_string();
    assert!(
        remarks.contains("[xone assign pm=pat]")
            && remarks.contains("[xone verdict requirement approve by=pat"),
        "{remarks}"
    );
    assert!(issue.links.iter().any(|l| l.0.starts_with("xone:branch:web:")), "{:?}", issue.links);
    // The requirement is PAY-4 now, everywhere; PAY-1 still names it; PAY-4 names no other.
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(
        (show["key"].as_str(), show["title"].as_str()),
        (Some("PAY-4"), Some("Refund orders"))
    );
    assert_eq!(show["aliases"], serde_json::json!(["PAY-1"]));
    assert_eq!(show["reviews"][0]["verdict"], "approve");
    assert_eq!(show["branches"].as_array().unwrap().len(), 2, "{show}");
    assert!(
        show["events"].as_array().unwrap().iter().any(|e| e["action"] == "create"),
        "the story moved with it"
    );
    // PAY-4 names the requirement that took it, so it is no alias of Vouchers.
    assert_eq!(env.json(&["requirement", "show", "PAY-6"])["aliases"], serde_json::json!([]));
    assert_eq!(env.json(&["requirement", "show", "PAY-6"])["title"], "Vouchers");
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "by its old key"]);
    assert_eq!(jira.issue("PAY-4").unwrap().status, "Design");
    // Jira's own PAY-1 comes in by a sync: the key is its own now; the old requirement keeps
    // its branches, which carry the old key in their names.
    let s = env.json(&["sync"]);
    assert_eq!(s[0]["created"], serde_json::json!(["PAY-1", "PAY-2"]), "{}", s[0]);
    assert_eq!(s[0]["branches"], serde_json::json!([]), "{}", s[0]);
    assert_eq!(env.json(&["requirement", "show", "PAY-1"])["title"], "Issue 1 made in Jira");
    assert_eq!(
        env.json(&["requirement", "show", "PAY-4"])["branches"].as_array().unwrap().len(),
        2
    );
    assert_eq!(env.json(&["branch", "list", "PAY-1"]), serde_json::json!([]));
    // And back: the keys stay, the built-in tracker numbers on after them.
    env.ok(&["project", "set", "PAY", "--tracker", "builtin", "--migrate"]);
    assert_eq!(env.json(&["requirement", "create", "-p", "PAY", "Gift cards"])["key"], "PAY-7");
}

/// A fresh machine sets a project up from Jira: `sync -p KEY` reads the definition the team
/// shares on the Jira project (repositories, members, environments, apps), then its
/// requirements; what one machine adds reaches the others by their next sync.
#[test]
fn a_fresh_home_sets_the_project_up_from_jira() {
    let (env, jira) = tracked(Flavour::Server);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "prod-ctx",
        "--namespace",
        "pay",
        "--smoke",
        "curl -f http://pay/health",
    ]);
    // A repository whose folder is gone on this machine: its branches cannot be listed.
    let gone = env.repo("gone", true);
    env.ok(&["project", "repo", "add", "PAY", gone.to_str().unwrap()]);
    std::fs::remove_dir_all(&gone).unwrap();
    env.ok(&["project", "app", "add", "PAY", "web", "--repo", "web", "--port", "8080"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders", "--assign", "pm=pat"]);
    // A Jira project nobody shared: a fresh machine is told where to start.
    let mut fresh = TestEnv::new();
    fresh.set_var("XONE_JIRA_TOKEN", PAT);
    fresh.set_var("XONE_JIRA_URL", &jira.url);
    jira.add_project("OPS", "Operations");
    fresh
        .code(3, &["sync", "-p", "OPS"])
        .says(&["carries no xone project yet", "xone sync -p OPS"]);
    fresh.code(4, &["sync"]).says(&["xone sync -p KEY"]);
    let r = env.ok(&["sync"]);
    assert!(r.stderr.contains("the branches of gone:"), "said, and the rest synced: {}", r.stderr);
    let shared = jira.project_property("PAY", "xone.project").expect("the shared definition");
    assert_eq!(shared["repo"].as_array().unwrap().len(), 3, "{shared}");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/fixtures/jira/project_property.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let answer = local_http()
        .get(format!("{}/rest/api/2/project/PAY/properties/xone.project", jira.url))
        .bearer_auth(PAT)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    // The documented answer's keys (its value is the property's own).
    for k in fixture.as_object().unwrap().keys() {
        assert!(answer.get(k).is_some(), "{k} in {answer}");
    }
    assert_eq!(answer["value"]["name"], "Payments");

    let s = fresh.json(&["sync", "-p", "PAY"]);
    assert_eq!(s[0]["created"], serde_json::json!(["PAY-1"]), "{}", s[0]);
    assert_eq!(s[0]["unread_repos"].as_array().unwrap().len(), 1, "{}", s[0]);
    let p = fresh.json(&["project", "show", "PAY"]);
    assert_eq!((p["tracker"].as_str(), p["name"].as_str()), (Some("jira"), Some("Payments")));
    assert_eq!(p["repos"].as_array().unwrap().len(), 3, "{p}");
    let mut members: Vec<&str> =
        p["members"].as_array().unwrap().iter().filter_map(|m| m["user"].as_str()).collect();
    members.sort();
    assert_eq!(members, ["pat", "quinn"]);
    let apps = fresh.json(&["project", "app", "list", "PAY"]);
    assert_eq!(
        (apps[0]["name"].as_str(), apps[0]["repo"].as_str(), apps[0]["port"].as_i64()),
        (Some("web"), Some("web"), Some(8080)),
        "{apps}"
    );
    let envs = fresh.json(&["project", "env", "list", "PAY"]);
    assert_eq!(
        (envs[0]["name"].as_str(), envs[0]["namespace"].as_str()),
        (Some("prod"), Some("pay")),
        "{envs}"
    );
    // A command from Jira is never run here: the smoke check is set on each machine.
    assert!(envs[0]["smoke"].is_null(), "{envs}");
    let passed = s[0]["project_passed"].to_string();
    assert!(passed.contains("env prod: its smoke command"), "{passed}");
    assert_eq!(fresh.json(&["requirement", "show", "PAY-1"])["people"][0]["user"], "pat");
    // Added on the fresh machine: shared by its sync, taken by the first machine's.
    fresh.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "test-ctx",
        "--namespace",
        "pay-test",
    ]);
    let s = fresh.json(&["sync"]);
    assert!(s[0]["requests"].as_i64().unwrap() <= 4, "{}", s[0]);
    let s = env.json(&["sync"]);
    assert_eq!(s[0]["project_added"], serde_json::json!(["env test"]), "{}", s[0]);
    assert_eq!(s[0]["requests"], 3, "nothing new to share: the definition, the fields, one page");
    assert_eq!(env.json(&["project", "env", "list", "PAY"]).as_array().unwrap().len(), 2);
    // A user who may not write the project's properties syncs all the same, told so.
    jira.refuse_property_writes();
    fresh.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "staging",
        "--context",
        "s-ctx",
        "--namespace",
        "s",
    ]);
    let r = fresh.ok(&["sync"]);
    assert!(r.stderr.contains("is not shared: Jira refused"), "{}", r.stderr);
}

/// A build for a requirement is a remote link of its issue, to its pipeline.
#[test]
fn a_pipeline_build_is_linked_to_its_pipeline() {
    let (mut env, fake) = crate::gitlab::lab();
    let jira = FakeJira::start(Flavour::Server);
    jira.add_user("pat", "pat@example.com", "Pat Product", PAT);
    jira.add_project("PAY", "Payments");
    env.set_var("XONE_JIRA_TOKEN", PAT);
    env.ok(&["config", "set", "jira.url", &jira.url]);
    env.ok(&["project", "create", "PAY", "--name", "Payments", "--repo", "gitlab:pay/web"]);
    env.ok(&["project", "set", "PAY", "--tracker", "jira"]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["project", "app", "add", "PAY", "web", "--repo", "web"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let branch = "feature/PAY-1-refund-orders";
    fake.commit("pay/web", branch, &[("refund.txt", "refund\n")], "PAY-1: refunds");
    let b = env.json(&["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    let sha = b["sha"].as_str().unwrap();
    let links = jira.issue("PAY-1").unwrap().links;
    let link = links
        .iter()
        .find(|l| l.0 == format!("xone:build:PAY:web:{sha}"))
        .unwrap_or_else(|| panic!("the build's link in {links:?}"));
    assert_eq!(link.1, b["pipeline_url"].as_str().unwrap(), "to its pipeline");
    assert!(link.2.contains("success"), "{link:?}");
}
