//! SPEC §7: `xone gray status` with the seven built-in analyses, at most 300 ms against a
//! local Prometheus. A gray release of `web` (1 of 3 instances) runs on the tests' fake
//! Kubernetes API server; the real Prometheus that scripts/services starts scrapes one metrics
//! endpoint per pod, served here with every series the built-in analyses read (Micrometer's
//! HTTP histogram, CPU, heap, GC). Prints each run's wall time and, for one run, the requests
//! it made to each system.
//!
//!   benches/gray.sh             # root: starts Prometheus through scripts/services
//!
//! XONE (default target/release/xone) picks the binary; XONE_TEST_PROMETHEUS and
//! XONE_TEST_PROMETHEUS_TARGETS (set by scripts/services) name the Prometheus and where its
//! scrape targets are written.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark: its table is its output

#[path = "../tests/fake_http/mod.rs"]
mod fake_http;
#[path = "../tests/fake_kube/mod.rs"]
mod fake_kube;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_kube::FakeKube;

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let xone = std::env::var("XONE").unwrap_or_else(|_| "target/release/xone".into());
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k}: run benches/gray.sh"));
    let (prometheus, targets) = (var("XONE_TEST_PROMETHEUS"), var("XONE_TEST_PROMETHEUS_TARGETS"));
    let scratch = std::env::temp_dir().join(format!("xone-bench-gray-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("home")).unwrap();

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
            .stdin(Stdio::null());
        c
    };
    let ok = |args: &[&str]| -> std::process::Output {
        let out = run(args).stderr(Stdio::piped()).stdout(Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "xone {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    ok(&["project", "create", "BENCH", "--name", "Bench", "--repo", repo.to_str().unwrap()]);
    ok(&["project", "app", "add", "BENCH", "web", "--repo", "web", "--replicas", "bench=3"]);
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
    ok(&["config", "set", "gray.window", "1m"]);
    ok(&["config", "set", "gray.range", "5s"]);
    ok(&["deploy", "web", "--env", "bench", "--image", "reg.example.com/web:1"]);
    let st = ok(&[
        "gray",
        "start",
        "web",
        "--env",
        "bench",
        "--image",
        "reg.example.com/web:2",
        "--json",
    ]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let mut files = Vec::new();
    for track in ["canary", "stable"] {
        for p in st[track]["pods"].as_array().unwrap() {
            let pod = p["name"].as_str().unwrap().to_string();
            let port = serve(pod.clone());
            let f = std::path::Path::new(&targets).join(format!("bench-gray-{pod}.json"));
            std::fs::write(&f, format!(r#"[{{"targets": ["127.0.0.1:{port}"]}}]"#)).unwrap();
            files.push(f);
        }
    }
    // Enough samples for every analysis: a minute of scrapes.
    eprintln!("letting Prometheus gather a minute of samples ...");
    std::thread::sleep(Duration::from_secs(62));

    let status = ["gray", "status", "web", "--env", "bench", "--json"];
    let out = ok(&status);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("| analysis | verdict | canary samples | stable samples |");
    println!("|---|---|---:|---:|");
    for a in body["analyses"].as_array().unwrap() {
        println!(
            "| {} | {} | {} | {} |",
            a["name"], a["verdict"], a["canary_samples"], a["stable_samples"]
        );
    }
    // The requests of one run, as --verbose logs them.
    let verbose = run(&["gray", "status", "web", "--env", "bench", "--json", "--verbose"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&verbose.stderr);
    let count =
        |system: &str| log.lines().filter(|l| l.starts_with(system) && l.contains('→')).count();
    println!();
    println!(
        "requests of one `gray status`: {} to Kubernetes, {} to Prometheus (the analyses' queries run at once)",
        count("Kubernetes"),
        count("Prometheus")
    );
    println!();
    println!("| run | wall ms |");
    println!("|---:|---:|");
    let mut times = Vec::new();
    for i in 0..runs {
        let started = Instant::now();
        ok(&status);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        println!("| {i} | {ms:.1} |");
        times.push(ms);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
    println!();
    println!(
        "gray status with the seven built-in analyses: median {median:.1} ms, max {max:.1} ms; budget 300 ms: {}",
        if median <= 300.0 { "within" } else { "OVER" }
    );
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// One pod's metrics, as Micrometer exposes a Spring service's.
fn serve(pod: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let started = Instant::now();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let t = started.elapsed().as_secs_f64() + 100.0;
            let l = format!("namespace=\"bench\",pod=\"{pod}\"");
            let mut text = String::new();
            for (le, share) in [("0.05", 0.5), ("0.1", 0.8), ("0.5", 0.99), ("+Inf", 1.0)] {
                text.push_str(&format!(
                    "http_server_requests_seconds_bucket{{{l},status=\"200\",le=\"{le}\"}} {}\n",
                    (100.0 * t * share).floor()
                ));
            }
            text.push_str(&format!(
                "http_server_requests_seconds_count{{{l},status=\"200\"}} {}\n\
                 http_server_requests_seconds_count{{{l},status=\"500\"}} {}\n\
                 http_server_requests_seconds_sum{{{l},status=\"200\"}} {}\n\
                 process_cpu_seconds_total{{{l}}} {}\n\
                 jvm_memory_used_bytes{{{l},area=\"heap\",id=\"G1 Eden Space\"}} 200000000\n\
                 jvm_gc_pause_seconds_sum{{{l},action=\"end of minor GC\"}} {}\n\
                 jvm_gc_pause_seconds_count{{{l},action=\"end of minor GC\"}} {}\n",
                (100.0 * t).floor(),
                (0.1 * t).floor(),
                5.0 * t,
                0.3 * t,
                0.01 * t,
                (0.5 * t).floor()
            ));
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    port
}
