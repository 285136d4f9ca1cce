//! The tests' fake Kubernetes API server as a program, for trying xone by hand:
//!
//!   cargo run --example fake_kube -- --kubeconfig /tmp/fake.kubeconfig --namespace pay-test
//!   KUBECONFIG=/tmp/fake.kubeconfig xone project env set PAY test --context fake --namespace pay-test
//!
//! Writes a kubeconfig with context `fake`, creates the namespaces named, prints its URL on
//! the first line of stdout, then serves until killed. Pods become ready after 400 ms.
//! `--anonymous` lets requests without credentials in, for kubectl, which sends no bearer
//! token over plain HTTP.

#[path = "../tests/fake_http/mod.rs"]
mod fake_http;
#[path = "../tests/fake_kube/mod.rs"]
mod fake_kube;

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut namespaces, mut anonymous) = (None, Vec::new(), false);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--kubeconfig" => kubeconfig = Some(std::path::PathBuf::from(value())),
            "--namespace" => namespaces.push(value()),
            "--anonymous" => anonymous = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let kubeconfig = kubeconfig.unwrap_or_else(|| usage("--kubeconfig PATH is needed"));
    let fake = fake_kube::FakeKube::start();
    fake.pod_behavior(
        "",
        fake_kube::PodBehavior::Ready { after: std::time::Duration::from_millis(400) },
    );
    fake.write_kubeconfig(&kubeconfig, &[("fake", "default")]);
    if anonymous {
        fake.allow_anonymous();
    }
    for ns in &namespaces {
        fake.add_namespace(ns);
    }
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
        "fake_kube: {problem}\nusage: fake_kube --kubeconfig PATH [--namespace NS]... [--anonymous]"
    );
    std::process::exit(2)
}
