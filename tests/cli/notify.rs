//! Notifications against a real HTTP receiver on 127.0.0.1 that checks each signature, driven
//! up, refusing, slow and gone: delivered in order and once, never failing or holding up the
//! command, and the URL never printed.

use std::io::BufReader;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value;

use crate::fake_http::{read_request, write_response, Response};
use crate::harness::*;

const SECRET: &str = "s3cret-signing-key";

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Up,
    /// 500, taking nothing.
    Refusing,
    /// Takes the event, then answers after this long.
    Slow(Duration),
}

/// One request the receiver took.
#[derive(Clone, Debug)]
pub struct Got {
    pub path: String,
    pub event: String,
    pub delivery: String,
    /// Whether the signature was there and right.
    pub signed: bool,
    pub body: Value,
}

#[derive(Clone)]
pub struct Receiver {
    url: String,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let r = Receiver { url, mode: Arc::new(Mutex::new(Mode::Up)), got: Default::default() };
        let me = r.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut w = stream;
                    while let Some(req) = read_request(&mut reader) {
                        let mode = *me.mode.lock().unwrap();
                        if mode == Mode::Refusing {
                            let resp = Response {
                                status: 500,
                                headers: vec![],
                                body: b"receiver down for maintenance".to_vec(),
                            };
                            let _ = write_response(&mut w, &resp);
                            continue;
                        }
                        let signed = req.header("X-Xone-Signature-256").is_some_and(|s| {
                            let mut mac =
                                hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes())
                                    .unwrap();
                            mac.update(&req.body);
                            let hex: String = mac
                                .finalize()
                                .into_bytes()
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect();
                            s == format!("sha256={hex}")
                        });
                        me.got.lock().unwrap().push(Got {
                            path: req.path.clone(),
                            event: req.header("X-Xone-Event").unwrap_or_default().to_string(),
                            delivery: req.header("X-Xone-Delivery").unwrap_or_default().to_string(),
                            signed,
                            body: serde_json::from_slice(&req.body).unwrap_or(Value::Null),
                        });
                        if let Mode::Slow(d) = mode {
                            std::thread::sleep(d);
                        }
                        let resp = Response { status: 204, headers: vec![], body: vec![] };
                        if write_response(&mut w, &resp).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        r
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    pub fn events(&self) -> Vec<String> {
        self.got().into_iter().map(|g| g.event).collect()
    }
}

/// Writes `toml` as `env`'s own config file.
fn configure(env: &mut TestEnv, toml: &str) {
    let dir = env.root().join("xdg").join("xone");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), toml).unwrap();
    env.set_var("XDG_CONFIG_HOME", dir.parent().unwrap().to_str().unwrap());
}

/// Points `env`'s own config at `r`, with `extra` lines in its webhook table.
pub fn aim(env: &mut TestEnv, r: &Receiver, extra: &str) {
    configure(env, &format!("[[notify.webhook]]\nurl = \"{}/hook\"\n{extra}\n", r.url));
}

/// A home with PAY, and a json target (signed) whose URL path holds a token.
fn with_target(extra: &str) -> (TestEnv, Receiver) {
    let mut env = TestEnv::new();
    let r = Receiver::start();
    env.set_var("XONE_NOTIFY_SECRET", SECRET);
    let config = format!(
        "[[notify.webhook]]\nurl = \"{}/hooks/T0K3N-in-the-path\"\nformat = \"json\"\nsecret = \"env:XONE_NOTIFY_SECRET\"\n{extra}",
        r.url
    );
    configure(&mut env, &config);
    project(&env);
    (env, r)
}

#[test]
fn events_are_posted_signed_with_their_fields_and_a_test_reaches_every_target() {
    let (mut env, r) = with_target("");
    env.set_var("CI_PIPELINE_URL", "https://gitlab.example.com/pay/web/-/pipelines/7");
    env.set_var("CI_JOB_NAME", "release");
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "the PM is away"]);
    let got = r.got();
    assert_eq!(r.events(), ["requirement.created", "requirement.advanced"]);
    assert!(got.iter().all(|g| g.signed), "every body signed: {got:?}");
    assert!(got.iter().all(|g| g.path == "/hooks/T0K3N-in-the-path"));
    let created = &got[0].body;
    assert_eq!(
        (created["event"].as_str(), created["key"].as_str()),
        (Some("requirement.created"), Some("PAY-1"))
    );
    assert_eq!(
        (created["title"].as_str(), created["project"].as_str()),
        (Some("Refund orders"), Some("PAY"))
    );
    assert!(created["at"].as_str().unwrap().ends_with('Z'), "{created}");
    assert_eq!(created["ci"]["pipeline_url"], "https://gitlab.example.com/pay/web/-/pipelines/7");
    assert_eq!(created["ci"]["job"], "release");
    let advanced = &got[1].body;
    assert_eq!(
        (advanced["from"].as_str(), advanced["to"].as_str()),
        (Some("draft"), Some("requirement-review"))
    );
    assert_eq!(
        (advanced["forced"].as_bool(), advanced["reason"].as_str()),
        (Some(true), Some("the PM is away"))
    );
    assert_ne!(got[0].delivery, got[1].delivery);
    // A list or a show sends nothing; the test event goes to every target now.
    env.ok(&["requirement", "list"]);
    env.ok(&["requirement", "show", "PAY-1"]);
    assert_eq!(r.got().len(), 2);
    let t = env.json(&["notify", "test"]);
    assert_eq!(t[0]["ok"], true, "{t}");
    assert_eq!(t[0]["target"], format!("{}/***", r.url), "masked: {t}");
    assert_eq!(r.events().last().map(String::as_str), Some("notify.test"));
    let before = r.got().len();
    let checks: Value = serde_json::from_str(&env.run(&["doctor", "--json"]).stdout).unwrap();
    let n = checks.as_array().unwrap().iter().find(|c| c["system"] == "notify").unwrap();
    assert_eq!(n["status"], "ok", "{n}");
    assert_eq!(r.got().len(), before, "the doctor posts nothing");
}

#[test]
fn a_slack_target_reads_one_line_and_filters_take_only_their_events() {
    let mut env = TestEnv::new();
    let (slack, builds) = (Receiver::start(), Receiver::start());
    let config = format!(
        "[[notify.webhook]]\nurl = \"{}/services/T000/B000/XXXX\"\nformat = \"slack\"\nevents = [\"requirement\"]\nprojects = [\"PAY\"]\n\n[[notify.webhook]]\nurl = \"{}/b\"\nevents = [\"build.finished\", \"deploy\"]\n",
        slack.url, builds.url
    );
    configure(&mut env, &config);
    env.set_var("XONE_USER", "pat");
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["requirement", "cancel", "PAY-1", "--reason", "out of scope"]);
    let texts: Vec<String> =
        slack.got().iter().map(|g| g.body["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        texts,
        [
            "PAY-1 Refund orders: created by pat",
            "PAY-1 Refund orders: cancelled: out of scope by pat"
        ]
    );
    assert!(slack.got().iter().all(|g| !g.signed), "no secret, no signature");
    assert!(builds.got().is_empty(), "requirement events are not its events");
    // `config list` shows both, masked.
    let list = env.ok(&["config", "list"]).stdout;
    assert!(list.contains(&format!("{}/***", slack.url)) && !list.contains("XXXX"), "{list}");
}

#[test]
fn a_dead_or_slow_target_never_holds_the_command_up_and_gets_each_event_once_later() {
    let (env, r) = with_target("");
    env.ok(&["config", "set", "notify.timeout", "1s"]);
    // Refusing: the command succeeds, says so without the URL's token, and the event waits.
    r.set(Mode::Refusing);
    let made = env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    assert!(
        made.stderr.contains("not delivered") && made.stderr.contains("500"),
        "{}",
        made.stderr
    );
    assert!(!made.stderr.contains("T0K3N"), "the URL's token is never printed: {}", made.stderr);
    let st = env.json(&["notify", "status"]);
    assert_eq!(st[0]["waiting"].as_array().unwrap().len(), 1, "{st}");
    assert!(st[0]["error"].as_str().unwrap().contains("500"), "{st}");
    // Slow: the receiver takes the event but answers after the timeout: the command returns
    // within it (a wide margin here), and the event waits with its delivery id.
    r.set(Mode::Slow(Duration::from_secs(4)));
    let started = Instant::now();
    let slow = env.ok(&["requirement", "assign", "PAY-1", "pm=pat"]);
    assert!(started.elapsed() < Duration::from_secs(4), "held up for {:?}", started.elapsed());
    assert!(slow.stderr.contains("no answer within"), "{}", slow.stderr);
    let first_try = r.got();
    assert_eq!(first_try.len(), 1, "it took the first event before timing out: {first_try:?}");
    // Up again: the next command that changes something sends what waits, in order, once.
    r.set(Mode::Up);
    std::thread::sleep(Duration::from_secs(3));
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "on"]);
    let got = r.got();
    let events: Vec<&str> = got.iter().map(|g| g.event.as_str()).collect();
    assert_eq!(
        events,
        ["requirement.created", "requirement.created", "requirement.advanced"],
        "the retried event, then the new one: {got:?}"
    );
    assert_eq!(got[0].delivery, got[1].delivery, "a retry keeps its delivery id");
    assert_eq!(env.json(&["notify", "status"])[0]["waiting"], serde_json::json!([]));
    env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "again"]);
    assert_eq!(r.got().len(), 4, "nothing sent twice once taken");
    // Gone altogether: said, and the command succeeds.
    let mut dead = TestEnv::new();
    configure(&mut dead, "[[notify.webhook]]\nurl = \"http://127.0.0.1:9/x/token\"\n");
    project(&dead);
    let r = dead.ok(&["requirement", "create", "-p", "PAY", "Coupons"]);
    assert!(
        r.stderr.contains("could not be reached") && r.stderr.contains("http://127.0.0.1:9/***"),
        "{}",
        r.stderr
    );
    dead.code(6, &["notify", "test"])
        .says(&["1 of 1 notification target(s) did not take the test"]);
    // The doctor names it too, masked, without posting anything.
    let checks: Value = serde_json::from_str(&dead.run(&["doctor", "--json"]).stdout).unwrap();
    let n = checks.as_array().unwrap().iter().find(|c| c["system"] == "notify").unwrap();
    assert_eq!(
        (n["status"].as_str(), n["target"].as_str()),
        (Some("failed"), Some("http://127.0.0.1:9/***"))
    );
}

#[test]
fn a_project_file_names_its_secrets_by_environment_variable_only() {
    let (env, r) = with_target("");
    let web = env.root().join("repos").join("web");
    let in_web = |args: &[&str]| {
        env.run_with(args, |c| {
            c.current_dir(&web);
        })
    };
    // A literal URL in .xone.toml is refused, naming the file; an env: reference works.
    std::fs::write(web.join(".xone.toml"), format!("[[notify.webhook]]\nurl = \"{}/p\"\n", r.url))
        .unwrap();
    let refused = in_web(&["requirement", "list"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    refused.says(&["holds a webhook url in the clear", "env:NAME"]);
    std::fs::write(
        web.join(".xone.toml"),
        "[[notify.webhook]]\nurl = \"env:PAY_HOOK\"\nevents = [\"nonsense\"]\n",
    )
    .unwrap();
    let refused = in_web(&["requirement", "list"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    refused.says(&["'nonsense' names no event"]);
    std::fs::write(
        web.join(".xone.toml"),
        "[[notify.webhook]]\nurl = \"env:PAY_HOOK\"\nevents = [\"requirement.created\"]\n",
    )
    .unwrap();
    // Unset, the target is said when a delivery is due; the user's own target still gets it.
    let made = in_web(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    assert_eq!(made.code, 0, "{made:?}");
    assert!(made.stderr.contains("$PAY_HOOK"), "{}", made.stderr);
    assert_eq!(r.events(), ["requirement.created"]);
    // The same receiver named in both files is one target: each event reaches it once.
    let same = format!("{}/hooks/T0K3N-in-the-path", r.url);
    let once = env.run_with(&["requirement", "create", "-p", "PAY", "Coupons"], |c| {
        c.current_dir(&web).env("PAY_HOOK", &same);
    });
    assert_eq!(once.code, 0, "{once:?}");
    assert_eq!(r.events(), ["requirement.created", "requirement.created"]);
}

/// Deploys, rollbacks and gray steps are told as they end, with how they went.
#[test]
fn deploys_rollbacks_and_gray_steps_are_told() {
    let (mut env, kube) = crate::deploy::cluster();
    let r = Receiver::start();
    aim(&mut env, &r, "events = [\"deploy\", \"rollback\", \"gray\"]");
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&[
        "deploy",
        "web",
        "--env",
        "test",
        "--image",
        "reg.example.com/web:1",
        "--requirement",
        "PAY-1",
    ]);
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:2"]);
    env.ok(&["rollback", "web", "--env", "test"]);
    let got = r.got();
    let events: Vec<&str> = got.iter().map(|g| g.event.as_str()).collect();
    assert_eq!(events, ["deploy.finished", "deploy.finished", "rollback.finished"], "{got:?}");
    let first = &got[0].body;
    assert_eq!(
        (first["status"].as_str(), first["image"].as_str()),
        (Some("succeeded"), Some("reg.example.com/web:1"))
    );
    assert_eq!(
        (first["key"].as_str(), first["title"].as_str(), first["env"].as_str()),
        (Some("PAY-1"), Some("Refund orders"), Some("test"))
    );
    assert_eq!(got[2].body["status"], "succeeded", "{}", got[2].body);
    env.ok(&["project", "app", "set", "PAY", "web", "--replicas", "prod=3"]);
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "prod-ctx",
        "--namespace",
        "n-gray",
    ]);
    kube.add_namespace("n-gray");
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:1"]);
    env.ok(&[
        "gray",
        "start",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:2",
        "--instances",
        "1",
        "--analysis",
        "restarts",
    ]);
    env.ok(&["gray", "pause", "web", "--env", "prod"]);
    env.ok(&["gray", "abort", "web", "--env", "prod", "--reason", "not today"]);
    let tail: Vec<String> = r.got().iter().skip(4).map(|g| g.event.clone()).collect();
    assert_eq!(tail, ["gray.started", "gray.paused", "gray.aborted"]);
    let started = &r.got()[4].body;
    assert_eq!(
        (started["step"].as_i64(), started["steps"].as_i64()),
        (Some(1), Some(2)),
        "{started}"
    );
    assert_eq!(started["canary_image"], "reg.example.com/web:2");
}

/// A build, a review's verdict and a sign-off are told too.
#[test]
fn builds_verdicts_and_sign_offs_are_told() {
    let (mut env, fake) = crate::gitlab::lab();
    let r = Receiver::start();
    aim(&mut env, &r, "events = [\"build\", \"review\", \"requirement.signed_off\"]");
    crate::gitlab::pay(&env, &fake);
    env.ok(&["project", "app", "add", "PAY", "web", "--repo", "web"]);
    env.ok(&["branch", "create", "PAY-1"]);
    let branch = "feature/PAY-1-refund-orders";
    fake.commit("pay/web", branch, &[("refund.txt", "refund\n")], "PAY-1: refunds");
    let b = env.json(&["build", "web", "--requirement", "PAY-1", "--pipeline", "--wait"]);
    let doc = write(&env, "req.md", b"# Refund orders\n\nAll at once.\n");
    env.ok(&["requirement", "doc", "PAY-1", "requirement", "--attach", &doc]);
    env.ok(&["review", "create", "PAY-1", "--kind", "requirement"]);
    env.ok(&["review", "verdict", "1", "reject", "--note", "vouchers?"]);
    for _ in 0..4 {
        env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "on"]);
    }
    env.ok(&["project", "member", "add", "PAY", "tester", "--role", "qa"]);
    env.ok(&["requirement", "signoff", "PAY-1"]);
    let got = r.got();
    let events: Vec<&str> = got.iter().map(|g| g.event.as_str()).collect();
    assert_eq!(events, ["build.finished", "review.verdict", "requirement.signed_off"], "{got:?}");
    let built = &got[0].body;
    assert_eq!(
        (built["status"].as_str(), built["build"].as_i64()),
        (Some("success"), b["id"].as_i64())
    );
    assert_eq!(built["url"], b["pipeline_url"]);
    assert_eq!(built["failed_gates"], serde_json::json!([]));
    let verdict = &got[1].body;
    assert_eq!(
        (verdict["verdict"].as_str(), verdict["kind"].as_str(), verdict["note"].as_str()),
        (Some("reject"), Some("requirement"), Some("vouchers?"))
    );
    assert_eq!(got[2].body["stage"], "submitted");
}
