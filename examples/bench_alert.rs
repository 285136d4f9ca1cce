//! SPEC §7: acting on a firing alert in the release watch, the rollback started within 5 s of
//! the alert firing. A release of `web` is watched with `xone deploy watch --rollback-on-alert`
//! (the default `watch.interval`) against a real Prometheus, which scrapes a metrics endpoint
//! served here and fires XoneTestAlert when `xone_test_alert` goes above 0; the tests' fake
//! Kubernetes API server runs the app. For each run the alert is made to fire at a random
//! moment; the delay is from the alert's `activeAt` (Prometheus's own evaluation time) to the
//! rollback's first request to the API server.
//!
//!   benches/alert.sh            # root: starts Prometheus through scripts/services
//!
//! XONE (default target/release/xone) picks the binary; XONE_TEST_PROMETHEUS and
//! XONE_TEST_PROMETHEUS_TARGETS (set by scripts/services) name the Prometheus and where its
//! scrape targets are written.

#![allow(clippy::print_stdout)] // a benchmark: its table is its output

#[path = "../tests/fake_http/mod.rs"]
mod fake_http;
#[path = "../tests/fake_kube/mod.rs"]
mod fake_kube;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_kube::FakeKube;

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let xone = std::env::var("XONE").unwrap_or_else(|_| "target/release/xone".into());
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k}: run benches/alert.sh"));
    let (prometheus, targets) = (var("XONE_TEST_PROMETHEUS"), var("XONE_TEST_PROMETHEUS_TARGETS"));
    let scratch = std::env::temp_dir().join(format!("xone-bench-alert-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("home")).unwrap();

    // The app's metrics, with the alert's series at 0 until a run makes it fire.
    let firing = Arc::new(AtomicBool::new(false));
    let port = serve_metrics(firing.clone());
    let target =
        std::path::Path::new(&targets).join(format!("bench-alert-{}.json", std::process::id()));
    std::fs::write(&target, format!(r#"[{{"targets": ["127.0.0.1:{port}"]}}]"#)).unwrap();

    let kube = FakeKube::start();
    let kubeconfig = scratch.join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig, &[("bench", "bench")]);
    kube.add_namespace("bench");
    let repo = scratch.join("web");
    let r = git2::Repository::init(&repo).unwrap();
    let sig = git2::Signature::now("Bench", "bench@example.invalid").unwrap();
    let tree = r.find_tree(r.index().unwrap().write_tree().unwrap()).unwrap();
    r.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[]).unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(&xone);
        c.args(args)
            .env("HOME", scratch.join("home"))
            .env("XONE_HOME", scratch.join("state"))
            .env("XONE_USER", "bench")
            .env("KUBECONFIG", &kubeconfig)
            .env("CI", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    };
    let ok = |args: &[&str]| {
        let out = run(args).stderr(Stdio::piped()).output().expect("xone runs");
        assert!(out.status.success(), "xone {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&["project", "create", "BENCH", "--name", "Bench", "--repo", repo.to_str().unwrap()]);
    ok(&["project", "app", "add", "BENCH", "web", "--repo", "web"]);
    ok(&[
        "project",
        "env",
        "set",
        "BENCH",
        "bench",
        "--context",
        "bench",
        "--namespace",
        "bench",
        "--prometheus",
        &prometheus,
    ]);
    wait_until_scraped(&prometheus, port);

    println!("| run | alert fired (Prometheus) to rollback's first request (ms) |");
    println!("|---:|---:|");
    let mut delays = Vec::new();
    let mut rng = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
    for i in 0..runs {
        ok(&["deploy", "web", "--env", "bench", "--image", &format!("reg.example.com/web:{i}a")]);
        ok(&["deploy", "web", "--env", "bench", "--image", &format!("reg.example.com/web:{i}b")]);
        let mut watch = run(&["deploy", "watch", "web", "--env", "bench", "--window", "10m"])
            .arg("--rollback-on-alert")
            .stderr(Stdio::null())
            .spawn()
            .expect("xone runs");
        // The watch is under way; the alert fires at a random moment of the next interval.
        std::thread::sleep(Duration::from_millis(1500));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 5000));
        kube.clear_requests();
        firing.store(true, Ordering::SeqCst);
        let fired = alert_fired_at(&prometheus);
        let started = Instant::now();
        let rolled = loop {
            if let Some(at) = kube.first_request_at("PATCH", "/deployments/web") {
                break at;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no rollback within 60 s");
            std::thread::sleep(Duration::from_millis(5));
        };
        let status = watch.wait().unwrap();
        assert_eq!(status.code(), Some(7), "the watch fails on the alert");
        let delay = rolled.duration_since(fired).unwrap_or_default().as_secs_f64() * 1000.0;
        println!("| {i} | {delay:.0} |");
        delays.push(delay);
        // Quiet again, and long enough that the next watch's first look back misses it.
        firing.store(false, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(8));
    }
    let _ = std::fs::remove_file(&target);
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (median, max) = (delays[delays.len() / 2], delays[delays.len() - 1]);
    println!();
    println!(
        "median {median:.0} ms, max {max:.0} ms from the alert firing to the rollback starting; budget 5000 ms: {}",
        if max <= 5000.0 { "within" } else { "OVER" }
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Serves the app's metrics: some traffic, and the alert's series.
fn serve_metrics(firing: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let started = Instant::now();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let alert = if firing.load(Ordering::SeqCst) { 1 } else { 0 };
            let requests = 100.0 * started.elapsed().as_secs_f64() + 1000.0;
            let text = format!(
                "xone_test_alert{{app=\"web\",namespace=\"bench\"}} {alert}\n\
                 http_server_requests_seconds_count{{app=\"web\",namespace=\"bench\",status=\"200\"}} {requests}\n"
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    port
}

/// A plain-http GET to the local Prometheus (no CA certificates needed).
fn get(url: &str) -> String {
    reqwest::blocking::Client::builder()
        .tls_certs_only(Vec::new())
        .build()
        .and_then(|c| c.get(url).send())
        .and_then(|r| r.text())
        .unwrap_or_default()
}

fn wait_until_scraped(prometheus: &str, port: u16) {
    let query =
        format!("{prometheus}/api/v1/query?query=up%7Binstance%3D%22127.0.0.1%3A{port}%22%7D");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get(&query).contains(r#""1"]"#) {
        assert!(Instant::now() < deadline, "Prometheus did not scrape 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// When Prometheus made the app's alert fire: its `activeAt` (the alert has `for: 0s`).
fn alert_fired_at(prometheus: &str) -> SystemTime {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value =
            serde_json::from_str(&get(&format!("{prometheus}/api/v1/alerts"))).unwrap_or_default();
        let ours = body["data"]["alerts"].as_array().into_iter().flatten().find(|a| {
            a["state"] == "firing"
                && a["labels"]["app"] == "web"
                && a["labels"]["namespace"] == "bench"
        });
        if let Some(at) = ours.and_then(|a| a["activeAt"].as_str()) {
            return rfc3339(at);
        }
        assert!(Instant::now() < deadline, "the alert never fired");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `2026-12-06T16:50:01.123456789Z` as a moment.
fn rfc3339(s: &str) -> SystemTime {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss) = (n(11, 13), n(14, 16), n(17, 19));
    let frac: f64 = s[19..].trim_end_matches('Z').parse().unwrap_or(0.0);
    // Days from the civil calendar (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_secs_f64(frac)
}
