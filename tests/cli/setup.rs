//! scripts/setup, which scripts/test runs first, on a machine without the packages: a PATH
//! with none of the tools, and stand-ins for `id` and `apt-get`.

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: [&str; 12] = [
    "git",
    "bsdutils",
    "fish",
    "zsh",
    "docker.io",
    "docker-registry",
    "busybox-static",
    "apache2-utils",
    "prometheus",
    "python3",
    "man-db",
    "kubernetes-client",
];

/// The benchmarks' tools, installed as root beside the tests' (never required).
const BENCH_PACKAGES: [&str; 2] = [
    "hyperfine",
    // `time` is asked for by its path, /usr/bin/time, which this machine may have.
    "time",
];

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A bin folder with bash and the stand-ins only; `uid` is what `id -u` says.
fn bare_machine(root: &Path, uid: u32) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let bash = ["/bin/bash", "/usr/bin/bash"].iter().find(|p| Path::new(p).exists()).unwrap();
    std::os::unix::fs::symlink(bash, bin.join("bash")).unwrap();
    script(&bin, "id", &format!("echo {uid}"));
    script(&bin, "apt-get", &format!("echo \"$*\" >> {}", root.join("apt.log").display()));
    bin
}

fn run_setup(bin: &Path) -> std::process::Output {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup");
    Command::new(bin.join("bash")).arg(setup).env_clear().env("PATH", bin).output().unwrap()
}

fn bench_packages() -> Vec<&'static str> {
    let has_time = Path::new("/usr/bin/time").exists();
    BENCH_PACKAGES.iter().copied().filter(|p| *p != "time" || !has_time).collect()
}

#[test]
fn without_root_setup_names_the_one_command_that_installs_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let bin = bare_machine(root.path(), 1000);
    let out = run_setup(&bin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = format!(
        "sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends {}'",
        PACKAGES.join(" ")
    );
    assert!(stderr.contains(&line), "{line}\nnot in:\n{stderr}");
    assert!(!root.path().join("apt.log").exists(), "nothing is installed without root");
}

#[test]
fn as_root_setup_installs_what_is_missing_and_says_what_still_is() {
    let root = tempfile::tempdir().unwrap();
    let bin = bare_machine(root.path(), 0);
    let out = run_setup(&bin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(root.path().join("apt.log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    let all: Vec<&str> = PACKAGES.iter().copied().chain(bench_packages()).collect();
    let install = format!("install -y -qq --no-install-recommends {}", all.join(" "));
    assert_eq!(calls, ["update -qq", install.as_str()], "{stderr}");
    // The stand-in installed nothing: that is said, and the tests do not start.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("still missing after apt-get install: git bsdutils"), "{stderr}");
}

#[test]
fn on_this_machine_nothing_is_missing() {
    // scripts/test ran setup before these tests: every command is here now. Only listed:
    // a plain `cargo test` as root installs nothing.
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup");
    let out = Command::new("bash")
        .args(["-c", &format!(". {}; xone_packages_missing tests", setup.display())])
        .env("XONE_SETUP_LIST_ONLY", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "missing after setup");
}
