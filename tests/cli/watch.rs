//! The post-release watch against a real Prometheus (started by scripts/test) scraping a
//! metrics endpoint each test serves, with an alert rule a test can make fire.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::deploy::cluster;
use crate::fake_kube::FakeKube;
use crate::harness::*;

fn prometheus() -> (String, String) {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: the watch tests need a Prometheus; run them through scripts/test, which starts one")
        })
    };
    (var("XONE_TEST_PROMETHEUS"), var("XONE_TEST_PROMETHEUS_TARGETS"))
}

/// A metrics endpoint Prometheus scrapes; its body is made afresh for every scrape.
pub struct Metrics {
    target: std::path::PathBuf,
}

impl Metrics {
    pub fn serve(name: &str, body: impl Fn(f64) -> String + Send + 'static) -> Metrics {
        let (_, targets) = prometheus();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = body;
        let started = Instant::now();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let text = shared(started.elapsed().as_secs_f64());
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        let target =
            std::path::Path::new(&targets).join(format!("{name}-{}.json", std::process::id()));
        std::fs::write(&target, format!(r#"[{{"targets": ["127.0.0.1:{port}"]}}]"#)).unwrap();
        // Scraped at least once before the test goes on.
        let (url, _) = prometheus();
        let query = format!("{url}/api/v1/query?query=up%7Binstance%3D%22127.0.0.1%3A{port}%22%7D");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = local_http()
                .get(&query)
                .send()
                .ok()
                .and_then(|r| r.text().ok())
                .is_some_and(|t| t.contains(r#""value":["#) && t.contains(r#""1"]"#));
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "Prometheus did not scrape 127.0.0.1:{port}");
            std::thread::sleep(Duration::from_millis(200));
        }
        Metrics { target }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.target);
    }
}

/// Traffic as Micrometer counts it: `ok` and `errors` requests per second so far.
pub fn traffic(app: &str, ns: &str, ok: f64, errors: f64) -> impl Fn(f64) -> String + Send {
    let (app, ns) = (app.to_string(), ns.to_string());
    move |t| {
        let t = t + 10.0;
        format!(
            "# TYPE http_server_requests_seconds_count counter\n\
             http_server_requests_seconds_count{{app=\"{app}\",namespace=\"{ns}\",status=\"200\",uri=\"/pay\"}} {}\n\
             http_server_requests_seconds_count{{app=\"{app}\",namespace=\"{ns}\",status=\"503\",uri=\"/pay\"}} {}\n",
            (ok * t).floor(),
            (errors * t).floor()
        )
    }
}

/// PAY's web released twice to a `prod` environment of its own namespace, watched by the
/// test Prometheus.
fn released(ns: &str) -> (TestEnv, FakeKube) {
    let (env, kube) = cluster();
    let (url, _) = prometheus();
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--context",
        "prod-ctx",
        "--namespace",
        ns,
        "--prometheus",
        &url,
    ]);
    kube.add_namespace(ns);
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:1"]);
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:2"]);
    (env, kube)
}

#[test]
fn a_clean_window_passes() {
    let (env, _kube) = released("w-clean");
    let _m = Metrics::serve("w-clean", traffic("web", "w-clean", 50.0, 0.0));
    let started = Instant::now();
    let w = env.json(&[
        "deploy",
        "watch",
        "web",
        "--env",
        "prod",
        "--window",
        "3s",
        "--interval",
        "1s",
    ]);
    // The window is counted in whole seconds from the second the watch started.
    assert!(started.elapsed() >= Duration::from_secs(2), "the whole window is watched");
    assert_eq!(w["status"], "passed", "{w}");
    assert_eq!(w["window_secs"], 3);
    assert_eq!(w["revision"], 2);
}

#[test]
fn a_watch_s_end_is_told() {
    let (mut env, _kube) = released("w-told");
    let r = crate::notify::Receiver::start();
    crate::notify::aim(&mut env, &r, "events = [\"watch\"]");
    let _m = Metrics::serve("w-told", traffic("web", "w-told", 50.0, 0.0));
    env.json(&["deploy", "watch", "web", "--env", "prod", "--window", "2s", "--interval", "1s"]);
    let got = r.got();
    assert_eq!(r.events(), ["watch.finished"], "{got:?}");
    assert_eq!(
        (got[0].body["status"].as_str(), got[0].body["env"].as_str()),
        (Some("passed"), Some("prod"))
    );
}

#[test]
fn a_firing_alert_fails_the_watch_and_can_roll_back() {
    let (env, kube) = released("w-alert");
    let _m = Metrics::serve("w-alert", |_| {
        "xone_test_alert{app=\"web\",namespace=\"w-alert\"} 1\n".to_string()
    });
    env.code(
        7,
        &[
            "deploy",
            "watch",
            "web",
            "--env",
            "prod",
            "--window",
            "60s",
            "--interval",
            "1s",
            "--rollback-on-alert",
        ],
    )
    .says(&["the watch of web in prod failed", "XoneTestAlert", "rolled back"]);
    let d = kube.deployment("w-alert", "web").unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "reg.example.com/web:1");
}

#[test]
fn an_error_ratio_over_the_threshold_fails_the_watch() {
    let (env, kube) = released("w-errors");
    let _m = Metrics::serve("w-errors", traffic("web", "w-errors", 10.0, 10.0));
    env.code(
        7,
        &[
            "deploy",
            "watch",
            "web",
            "--env",
            "prod",
            "--window",
            "60s",
            "--interval",
            "1s",
            "--error-rate",
            "0.05",
        ],
    )
    .says(&["error ratio", "above 0.05", "nothing rolled back"]);
    let d = kube.deployment("w-errors", "web").unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "reg.example.com/web:2");
}

#[test]
fn labels_and_the_ratio_can_be_set_per_environment() {
    let (env, _kube) = released("w-labels");
    env.ok(&["project", "env", "set", "PAY", "prod", "--alert-labels", "service=\"{app}-{env}\""]);
    let _m =
        Metrics::serve("w-labels", |_| "xone_test_alert{service=\"web-prod\"} 1\n".to_string());
    env.code(
        7,
        &["deploy", "watch", "web", "--env", "prod", "--window", "60s", "--interval", "1s"],
    )
    .says(&["XoneTestAlert"]);
    // An app's own ratio query wins over the environment's.
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "prod",
        "--alert-labels",
        "app=\"{app}\",namespace=\"{namespace}\"",
    ]);
    env.ok(&[
        "project",
        "app",
        "add",
        "PAY",
        "api",
        "--repo",
        "api",
        "--error-query",
        "vector(0.5)",
    ]);
    env.ok(&["deploy", "api", "--env", "prod", "--image", "reg.example.com/api:1"]);
    env.code(
        7,
        &["deploy", "watch", "api", "--env", "prod", "--window", "60s", "--interval", "1s"],
    )
    .says(&["error ratio 0.5000"]);
}

#[test]
fn a_watch_started_again_goes_on_from_its_recorded_start() {
    let (env, _kube) = released("w-resume");
    let _m = Metrics::serve("w-resume", traffic("web", "w-resume", 20.0, 0.0));
    let mut child = env
        .cmd()
        .args(["deploy", "watch", "web", "--env", "prod", "--window", "8s", "--interval", "1s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let r =
        env.ok(&["deploy", "watch", "web", "--env", "prod", "--window", "8s", "--interval", "1s"]);
    assert!(r.stderr.contains("going on with watch #1"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(7), "it went on rather than starting over");
    let show = env.json(&[
        "deploy",
        "watch",
        "web",
        "--env",
        "prod",
        "--window",
        "1s",
        "--interval",
        "1s",
    ]);
    assert_eq!(show["id"], 2, "a finished watch is not continued: {show}");
}

#[test]
fn a_watch_that_cannot_ask_prometheus_fails_rather_than_passes() {
    let (env, _kube) = released("w-down");
    env.ok(&["config", "set", "remote.retries", "0"]);
    env.ok(&["project", "env", "set", "PAY", "prod", "--prometheus", "http://127.0.0.1:9"]);
    env.code(6, &["deploy", "watch", "web", "--env", "prod", "--window", "2s", "--interval", "1s"])
        .says(&["cannot ask Prometheus", "did not pass"]);
    // An environment without a Prometheus (test, as cluster() set it): exit 4 saying how to set one.
    env.ok(&["deploy", "web", "--env", "test", "--image", "reg.example.com/web:1"]);
    env.code(4, &["deploy", "watch", "web", "--env", "test"])
        .says(&["no Prometheus", "--prometheus URL"]);
}

#[test]
fn a_watch_that_sees_nothing_of_the_app_does_not_pass() {
    let (env, _kube) = released("w-nothing");
    env.code(7, &["deploy", "watch", "web", "--env", "prod", "--window", "2s", "--interval", "1s"])
        .says(&["no series labelled app=\"web\",namespace=\"w-nothing\"", "saw nothing"]);
}

#[test]
fn a_release_replaced_during_the_watch_fails_it() {
    let (env, _kube) = released("w-moved");
    let _m = Metrics::serve("w-moved", traffic("web", "w-moved", 20.0, 0.0));
    let child = env
        .cmd()
        .args(["deploy", "watch", "web", "--env", "prod", "--window", "30s", "--interval", "1s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    env.ok(&["deploy", "web", "--env", "prod", "--image", "reg.example.com/web:3"]);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("moved from revision 2 to 3"), "{err}");
}

#[test]
fn the_watch_s_result_is_on_the_story_of_the_release_it_watched() {
    let (env, _kube) = released("w-story");
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
    env.ok(&[
        "deploy",
        "web",
        "--env",
        "prod",
        "--image",
        "reg.example.com/web:3",
        "--requirement",
        "PAY-1",
    ]);
    let _m = Metrics::serve("w-story", traffic("web", "w-story", 50.0, 0.0));
    env.ok(&["deploy", "watch", "web", "--env", "prod", "--window", "2s", "--interval", "1s"]);
    let log = env.json(&["requirement", "log", "PAY-1"]);
    let watched =
        log.as_array().unwrap().iter().find(|e| e["action"] == "watch").expect("a watch event");
    assert!(
        watched["detail"].as_str().unwrap().starts_with("web in prod: passed, clean for 2s"),
        "{watched}"
    );
}
