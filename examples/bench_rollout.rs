//! SPEC §7: xone must notice that a rollout completed within 100 ms of the API server
//! reporting it, by watching rather than polling. Runs `xone deploy --wait` against the tests'
//! fake Kubernetes API server, which records the instant its status first showed the
//! rollout complete; xone's "rolled out" line is timestamped as it arrives on stderr. Also
//! counts the API requests each rollout cost.
//!
//!   cargo build --release && cargo run --release --example bench_rollout [-- RUNS]
//!
//! XONE (default target/release/xone) picks the binary.

#![allow(clippy::print_stdout)] // a benchmark: its table is its output

#[path = "../tests/fake_http/mod.rs"]
mod fake_http;
#[path = "../tests/fake_kube/mod.rs"]
mod fake_kube;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use fake_kube::{FakeKube, PodBehavior};

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let xone = std::env::var("XONE").unwrap_or_else(|_| "target/release/xone".into());
    let scratch = std::env::temp_dir().join(format!("xone-bench-rollout-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("home")).unwrap();
    let kube = FakeKube::start();
    // Pods take a while, as real ones do: the rollout is waited for, not found done.
    kube.pod_behavior("bench/web", PodBehavior::Ready { after: Duration::from_millis(400) });
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
    let setup: [&[&str]; 3] = [
        &["project", "create", "BENCH", "--name", "Bench", "--repo", repo.to_str().unwrap()],
        &["project", "app", "add", "BENCH", "web", "--repo", "web", "--replicas", "bench=3"],
        &["project", "env", "set", "BENCH", "bench", "--context", "bench", "--namespace", "bench"],
    ];
    for args in setup {
        let out = run(args).output().expect("xone runs");
        assert!(out.status.success(), "xone {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    println!("| run | noticed after the API server (ms) | requests | of them watches | plain reads of the Deployment |");
    println!("|---:|---:|---:|---:|---:|");
    let mut delays = Vec::new();
    for i in 0..runs {
        kube.clear_requests();
        let image = format!("registry.example.com/bench/web:{i}");
        let mut child = run(&["deploy", "web", "--env", "bench", "--image", &image])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("xone runs");
        let mut seen = None;
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap_or_default();
            if line.contains("rolled out to") {
                seen = Some(SystemTime::now());
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "deploy {i} failed");
        let completed = kube.completed_at("bench", "web").expect("the fake saw it complete");
        let seen = seen.expect("xone said it rolled out");
        let delay = seen.duration_since(completed).unwrap_or_default().as_secs_f64() * 1000.0;
        let reqs = kube.requests();
        let watches = reqs.iter().filter(|(_, p)| p.contains("watch=")).count();
        let reads =
            reqs.iter().filter(|(m, p)| m == "GET" && p.ends_with("/deployments/web")).count();
        println!("| {i} | {delay:.1} | {} | {watches} | {reads} |", reqs.len());
        delays.push(delay);
    }
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = delays[delays.len() / 2];
    let max = delays[delays.len() - 1];
    println!();
    println!(
        "median {median:.1} ms, max {max:.1} ms after the API server reported the rollout complete; budget 100 ms: {}",
        if max <= 100.0 { "within" } else { "OVER" }
    );
    println!("(a client polling every 1-2 s notices 500-1000 ms late on average)");
    let _ = std::fs::remove_dir_all(&scratch);
}
