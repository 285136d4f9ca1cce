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
