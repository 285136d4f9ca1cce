//! The remote-call rules against a GitLab that misbehaves: retries with Retry-After, no blind
//! repeat of a request that may have taken effect, error mapping, garbage, dropped and hung
//! connections, redaction; and the fake checked against GitLab's documented examples.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_gitlab::{FakeGitLab, Fault};
use crate::gitlab::{lab, pay, TOKEN};
use crate::harness::*;

const BRANCH: &str = "feature/PAY-1-refund-orders";

fn count(fake: &FakeGitLab, method: &str, fragment: &str) -> usize {
    fake.requests().iter().filter(|r| r.method == method && r.path.contains(fragment)).count()
}

#[test]
fn unavailable_answers_are_retried_honouring_retry_after() {
    let (env, fake) = lab();
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1"]);
    fake.clear_log();
    fake.fail("repository/branches/", Fault::Status { code: 429, retry_after: Some(1) }, 1);
    fake.fail("repository/compare", Fault::Status { code: 503, retry_after: None }, 1);
    let list = env.json(&["branch", "list", "PAY-1", "--verbose"]);
    assert!(list.as_array().unwrap().iter().all(|b| b["exists"] == true), "{list}");
    let gets: Vec<_> =
        fake.requests().into_iter().filter(|r| r.path.contains("repository/branches/")).collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    // The retry of the refused one came only after the second that Retry-After asked for.
    let first = gets.iter().map(|g| g.at).min().unwrap();
    let last = gets.iter().map(|g| g.at).max().unwrap();
    assert!(last - first >= Duration::from_secs(1), "Retry-After: 1 was honoured");
}

#[test]
fn a_create_that_may_have_happened_is_checked_before_it_is_repeated() {
    let (env, fake) = lab();
    pay(&env, &fake);
    fake.clear_log();
    // 502 on the POST: the branch may or may not exist now. xone looks, then acts again.
    let web_id = env.json(&["project", "show", "PAY"])["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web")
        .unwrap()["remote_id"]
        .as_i64()
        .unwrap();
    let path = format!("/projects/{web_id}/repository/branches");
    fake.fail(&path, Fault::Status { code: 502, retry_after: None }, 1);
    let r = env.json(&["branch", "create", "PAY-1", "--repo", "web"]);
    assert_eq!(r[0]["status"], "done", "{r}");
    let seq: Vec<String> = fake
        .requests()
        .iter()
        .filter(|q| q.path.contains(&path))
        .map(|q| q.method.clone())
        .collect();
    assert_eq!(seq, ["POST", "GET", "POST"], "check, then act");
    assert!(fake.branch_sha("pay/web", BRANCH).is_some());

    // A 429 on a POST was turned away before it did anything: simply sent again.
    env.ok(&["requirement", "create", "-p", "PAY", "Second"]);
    fake.clear_log();
    fake.fail(&path, Fault::Status { code: 429, retry_after: Some(0) }, 1);
    env.ok(&["branch", "create", "PAY-2", "--repo", "web"]);
    let seq: Vec<String> = fake
        .requests()
        .iter()
        .filter(|q| q.path.contains(&path))
        .map(|q| q.method.clone())
        .collect();
    assert_eq!(seq, ["POST", "POST"]);
}

#[test]
fn work_done_behind_a_lost_answer_is_found_not_repeated() {
    let (env, fake) = lab();
    pay(&env, &fake);
    let web_id = env.json(&["project", "show", "PAY"])["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web")
        .unwrap()["remote_id"]
        .as_i64()
        .unwrap();
    // The branch is made, then the answer is a 504: xone looks and finds it.
    let path = format!("/projects/{web_id}/repository/branches");
    fake.fail(&path, Fault::After(504), 1);
    fake.clear_log();
    let r = env.json(&["branch", "create", "PAY-1", "--repo", "web"]);
    assert_eq!(r[0]["status"], "done", "{r}");
    assert_eq!(count(&fake, "POST", &path), 1, "not sent twice: {:?}", fake.requests());

    // The merge happens, then the connection drops: xone asks, finds it merged, records it.
    fake.commit("pay/web", BRANCH, &[("a.txt", "a\n")], "PAY-1: a");
    env.ok(&["branch", "mr", "PAY-1"]);
    fake.fail("/merge_requests/1/merge", Fault::After(0), 1);
    fake.clear_log();
    let r = env.json(&["branch", "mr", "PAY-1", "--merge"]);
    assert_eq!(r[0]["status"], "done", "{r}");
    assert_eq!(count(&fake, "PUT", "/merge"), 1, "a merge is never sent twice");
    let tip = fake.branch_sha("pay/web", BRANCH).unwrap();
    assert!(fake.contains("pay/web", "main", &tip));
    assert!(env.ok(&["requirement", "log", "PAY-1"]).stdout.contains("merged !1"));
}

#[test]
fn server_errors_after_retries_exit_6_and_other_repos_finish() {
    let (mut env, fake) = lab();
    env.set_var("XONE_REMOTE_RETRIES", "2");
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1"]);
    fake.fail("repository/compare", Fault::Status { code: 500, retry_after: None }, 1);
    let r = env.code(6, &["requirement", "show", "PAY-1"]);
    r.says(&["GitLab", "failed with 500", "compare"]);

    fake.fail("repository/branches/", Fault::Status { code: 503, retry_after: Some(0) }, 10);
    let r = env.code(6, &["branch", "delete", "PAY-1", "--yes", "--repo", "web"]);
    r.says(&["unavailable (503)", "gave up after 3 attempts"]);
}

#[test]
fn refused_tokens_exit_6_with_a_hint_and_never_show_the_token() {
    let (mut env, fake) = lab();
    pay(&env, &fake);
    env.set_var("XONE_GITLAB_TOKEN", "glpat-revoked-secret");
    let r = env.code(6, &["branch", "create", "PAY-1", "--verbose"]);
    r.says(&["refused the token (401)", "scopes"]);
    assert!(
        !r.stderr.contains("glpat-revoked-secret") && !r.stdout.contains("glpat-revoked-secret")
    );
    // --verbose logs each request and its timing, and still not the token.
    assert!(r.stderr.contains("POST /api/v4/projects/"), "{}", r.stderr);
    assert!(r.stderr.contains(" ms"), "{}", r.stderr);
    assert!(!r.stderr.contains(TOKEN));
}

#[test]
fn xone_log_debug_logs_requests_without_the_token() {
    let (mut env, fake) = lab();
    env.set_var("XONE_LOG", "debug");
    let r = env.ok(&["project", "create", "PAY", "--name", "P", "--repo", "gitlab:pay/web"]);
    assert!(r.stderr.contains("GitLab GET /api/v4/projects/pay%2Fweb → 200 in"), "{}", r.stderr);
    assert!(!r.stderr.contains(TOKEN));
    drop(fake);
}

#[test]
fn garbage_and_truncated_answers_exit_6_naming_the_endpoint() {
    let (env, fake) = lab();
    fake.fail("/projects/", Fault::Garbage, 1);
    let r = env.code(6, &["project", "create", "PAY", "--name", "P", "--repo", "gitlab:pay/web"]);
    r.says(&["GET /api/v4/projects/pay%2Fweb", "malformed JSON"]);
    fake.fail("/projects/", Fault::Truncated, 4);
    let r = env.code(6, &["project", "create", "PAY", "--name", "P", "--repo", "gitlab:pay/web"]);
    r.says(&["projects/pay%2Fweb"]);
    env.code(3, &["project", "show", "PAY"]);
}

#[test]
fn dropped_connections_are_retried_for_safe_requests() {
    let (env, fake) = lab();
    fake.fail("/projects/", Fault::Drop, 2);
    env.ok(&["project", "create", "PAY", "--name", "P", "--repo", "gitlab:pay/web"]);
    assert_eq!(count(&fake, "GET", "/projects/pay%2Fweb"), 3);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let (mut env, fake) = lab();
    env.set_var("XONE_REMOTE_TIMEOUT", "1s");
    env.set_var("XONE_REMOTE_RETRIES", "0");
    fake.fail("/projects/", Fault::Hang, 1);
    let started = Instant::now();
    let r = env.code(6, &["project", "create", "PAY", "--name", "P", "--repo", "gitlab:pay/web"]);
    r.says(&["timed out"]);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn nothing_listening_is_exit_6_naming_the_server() {
    let mut env = TestEnv::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.set_var("XONE_GITLAB_URL", &format!("http://127.0.0.1:{port}"));
    env.set_var("XONE_GITLAB_TOKEN", TOKEN);
    env.set_var("XONE_REMOTE_RETRIES", "1");
    let r = env.code(6, &["project", "create", "PAY", "--name", "P", "--repo", "gitlab:pay/web"]);
    r.says(&["could not be reached", &format!("127.0.0.1:{port}")]);
    let d = env.run(&["doctor", "--json"]);
    assert_eq!(d.code, 6, "{d:?}");
    let gitlab =
        d.json().as_array().unwrap().iter().find(|c| c["system"] == "gitlab").unwrap().clone();
    assert_eq!(gitlab["status"], "failed");
}

#[test]
fn a_machine_without_ca_certificates_still_speaks_plain_http_and_says_what_https_lacks() {
    let (mut env, fake) = lab();
    // As in a minimal container: no CA bundle where the platform's verifier looks.
    env.set_var("SSL_CERT_FILE", "/nonexistent/ca-certificates.crt");
    env.set_var("SSL_CERT_DIR", "/nonexistent/certs");
    pay(&env, &fake);
    env.ok(&["branch", "create", "PAY-1"]);
    env.set_var("XONE_GITLAB_URL", "https://127.0.0.1:9");
    env.code(2, &["branch", "create", "PAY-1"]).says(&[
        "cannot check GitLab's certificate",
        "ca-certificates",
        "SSL_CERT_FILE",
    ]);
}

#[test]
fn an_empty_500_leaves_no_empty_cause() {
    let mut env = TestEnv::new();
    // A proxy that answers every request with a bare 500.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let _ = std::io::Write::write_all(
                &mut conn,
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    env.set_var("XONE_GITLAB_URL", &format!("http://127.0.0.1:{port}"));
    env.set_var("XONE_GITLAB_TOKEN", TOKEN);
    env.set_var("XONE_REMOTE_RETRIES", "1");
    let r = env.code(6, &["doctor"]);
    r.says(&["1 of", "checks failed", "500"]);
    for line in r.stderr.lines().chain(r.stdout.lines()) {
        assert!(!line.trim_end().ends_with(':'), "a cause left empty: {line:?}\n{r:?}");
    }
}

// ---- the fake against GitLab's documented examples ------------------------------------------

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/gitlab/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every field of the documented example is in the fake's answer with the same JSON type
/// (a `null` on either side stands for a value that may be absent); nested objects and the
/// first element of arrays are checked the same way.
fn same_shape(doc: &Value, fake: &Value, at: &str, problems: &mut Vec<String>) {
    match (doc, fake) {
        (Value::Object(d), Value::Object(f)) => {
            for (k, dv) in d {
                match f.get(k) {
                    None => problems.push(format!("{at}.{k} is missing")),
                    Some(fv) => same_shape(dv, fv, &format!("{at}.{k}"), problems),
                }
            }
        }
        (Value::Array(d), Value::Array(f)) => {
            if let (Some(dv), Some(fv)) = (d.first(), f.first()) {
                same_shape(dv, fv, &format!("{at}[0]"), problems);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        (d, f) => problems.push(format!("{at}: documented {d}, fake answers {f}")),
    }
}

fn get(fake: &FakeGitLab, path: &str) -> Value {
    call(fake, "GET", path, None)
}

fn call(fake: &FakeGitLab, method: &str, path: &str, body: Option<Value>) -> Value {
    let client = local_http();
    let method: reqwest::Method = method.parse().unwrap();
    let mut req = client
        .request(method.clone(), format!("{}/api/v4{path}", fake.url))
        .header("PRIVATE-TOKEN", TOKEN);
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b.to_string());
    }
    let text = req.send().unwrap().text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

#[test]
fn the_fake_answers_with_the_documented_fields_and_types() {
    let (_env, fake) = lab();
    let web = get(&fake, "/projects/pay%2Fweb");
    let id = web["id"].as_i64().unwrap();
    fake.commit("pay/web", "feature/x", &[("x.txt", "x\n")], "x");
    let created = call(
        &fake,
        "POST",
        &format!("/projects/{id}/repository/branches"),
        Some(serde_json::json!({"branch": "feature/y", "ref": "main"})),
    );
    let mr = call(
        &fake,
        "POST",
        &format!("/projects/{id}/merge_requests"),
        Some(
            serde_json::json!({"source_branch": "feature/x", "target_branch": "main", "title": "x"}),
        ),
    );
    let listed = get(&fake, &format!("/projects/{id}/merge_requests?state=opened"));
    let single = get(&fake, &format!("/projects/{id}/merge_requests/1"));
    let started = call(
        &fake,
        "POST",
        &format!("/projects/{id}/pipeline"),
        Some(serde_json::json!({"ref": "main"})),
    );
    let pipeline = started["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let merged = call(&fake, "PUT", &format!("/projects/{id}/merge_requests/1/merge"), None);
    let cases = [
        ("version.json", get(&fake, "/version")),
        ("user.json", get(&fake, "/user")),
        ("personal_access_token_self.json", get(&fake, "/personal_access_tokens/self")),
        ("project.json", web.clone()),
        ("namespace.json", get(&fake, "/namespaces/pay")),
        ("branch.json", get(&fake, &format!("/projects/{id}/repository/branches/main"))),
        ("branches.json", get(&fake, &format!("/projects/{id}/repository/branches"))),
        ("branch_create.json", created),
        (
            "compare.json",
            get(&fake, &format!("/projects/{id}/repository/compare?from=main&to=feature%2Fx")),
        ),
        (
            "merge_base.json",
            get(
                &fake,
                &format!("/projects/{id}/repository/merge_base?refs[]=main&refs[]=feature%2Fx"),
            ),
        ),
        ("merge_request.json", mr),
        ("merge_requests.json", listed),
        ("merge_request_get.json", single),
        ("merge_request_merge.json", merged),
        ("error_404.json", get(&fake, "/projects/nobody%2Fnothing")),
        ("pipeline_create.json", started),
        ("pipeline.json", get(&fake, &format!("/projects/{id}/pipelines/{pipeline}"))),
        ("pipeline_jobs.json", get(&fake, &format!("/projects/{id}/pipelines/{pipeline}/jobs"))),
        (
            "pipeline_test_report.json",
            get(&fake, &format!("/projects/{id}/pipelines/{pipeline}/test_report")),
        ),
    ];
    let mut problems = Vec::new();
    for (name, answer) in &cases {
        same_shape(&fixture(name), answer, name, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "the fake drifted from GitLab's documentation:\n{}",
        problems.join("\n")
    );
    // And the fixtures themselves hold what xone reads.
    let p = fixture("project.json");
    for k in ["id", "path_with_namespace", "default_branch", "http_url_to_repo", "web_url"] {
        assert!(!p[k].is_null(), "project.json has {k}");
    }
    assert!(fixture("merge_requests.json")[0]["has_conflicts"].is_boolean());
    assert!(fixture("branch.json")["commit"]["id"].is_string());
}

#[test]
fn an_error_body_s_control_characters_never_reach_the_terminal() {
    let (env, fake) = lab();
    pay(&env, &fake);
    let hostile = "Forbidden\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J\rall good";
    fake.fail("repository/branches", Fault::Says { code: 403, message: hostile.into() }, 20);
    let out = env.code(6, &["branch", "create", "PAY-1"]);
    let raw: Vec<char> =
        out.stderr.chars().filter(|c| c.is_control() && *c != '\n' && *c != '\t').collect();
    assert!(raw.is_empty(), "{raw:?} reached the terminal: {:?}", out.stderr);
    assert!(
        out.stderr.contains(r"Forbidden\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\rall good"),
        "{}",
        out.stderr
    );
    let table: Vec<char> =
        out.stdout.chars().filter(|c| c.is_control() && *c != '\n' && *c != '\t').collect();
    assert!(table.is_empty(), "{table:?} in the table: {:?}", out.stdout);
}
