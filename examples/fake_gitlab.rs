//! The tests' fake GitLab as a program, for benchmarks and for trying xone by hand:
//!
//!   cargo run --example fake_gitlab -- --projects 20 --latency-ms 50 --token glpat-bench
//!
//! Prints its URL on the first line of stdout, then serves until killed. Projects are
//! `bench/r1` … `bench/rN`, each with one commit on `main`; user `bench` owns the token.

#[path = "../tests/fake_gitlab/mod.rs"]
mod fake_gitlab;
#[path = "../tests/fake_http/mod.rs"]
mod fake_http;

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut projects, mut latency, mut token, mut root) =
        (20, 0u64, "glpat-bench".to_string(), None);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--projects" => projects = value().parse().unwrap_or_else(|_| usage("--projects N")),
            "--latency-ms" => latency = value().parse().unwrap_or_else(|_| usage("--latency-ms N")),
            "--token" => token = value(),
            "--root" => root = Some(std::path::PathBuf::from(value())),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let root = root.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("fake-gitlab-{}", std::process::id()))
    });
    let fake = fake_gitlab::FakeGitLab::start(&root);
    fake.add_user("bench", &token);
    for i in 1..=projects {
        fake.add_project(&format!("bench/r{i}"));
    }
    fake.set_latency(std::time::Duration::from_millis(latency));
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", fake.url);
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}

fn usage(problem: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "fake_gitlab: {problem}\nusage: fake_gitlab [--projects N] [--latency-ms MS] [--token T] [--root DIR]"
    );
    std::process::exit(2)
}
