//! Runs the real xone binary against an isolated home: its own HOME, XONE_HOME and working
//! directory, the environment cleared, CI set. Git repositories are real, made with git2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const XONE: &str = env!("CARGO_BIN_EXE_xone");

pub struct TestEnv {
    _root: tempfile::TempDir,
    pub home: PathBuf,
    pub state: PathBuf,
    pub work: PathBuf,
    pub user: String,
    /// Variables every run gets (e.g. XONE_GITLAB_URL for a fake server).
    pub vars: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The error text, which must name every fragment given.
    pub fn says(&self, fragments: &[&str]) -> &Self {
        for f in fragments {
            assert!(self.stderr.contains(f), "stderr lacks {f:?}:\n{}", self.stderr);
        }
        assert!(!self.stderr.contains("panicked"), "a panic reached the user: {}", self.stderr);
        self
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let root = tempfile::tempdir().expect("temp dir");
        let home = root.path().join("home");
        let state = root.path().join("state");
        let work = root.path().join("work");
        for d in [&home, &work] {
            std::fs::create_dir_all(d).unwrap();
        }
        TestEnv { home, state, work, user: "tester".into(), vars: Vec::new(), _root: root }
    }

    pub fn root(&self) -> &Path {
        self._root.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(XONE);
        c.env_clear()
            .env("HOME", &self.home)
            .env("XONE_HOME", &self.state)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CI", "1")
            .env("XONE_USER", &self.user)
            .current_dir(&self.work)
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    pub fn set_var(&mut self, key: &str, value: &str) {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.into(), value.into()));
    }

    pub fn run_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        let mut c = self.cmd();
        c.args(args);
        f(&mut c);
        Run::from(c.output().expect("xone runs"))
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, |_| {})
    }

    /// Runs with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut c = self.cmd();
        c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("xone runs");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// Runs and expects exit code `code`.
    pub fn code(&self, code: i32, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "xone {args:?} exited {}, not {code}:\n{}{}",
            r.code, r.stdout, r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "a panic reached the user: {}", r.stderr);
        r
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        self.code(0, args)
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.ok(&a).json()
    }

    /// Runs `xone ARGS` (a shell word list) on a pseudo-terminal, as a person would, through
    /// util-linux `script`; CI is not set there.
    pub fn in_terminal(&self, args: &str, envs: &[(&str, &str)]) -> Run {
        self.answering(args, envs, None)
    }

    /// As `in_terminal`, on a terminal `cols` columns wide.
    pub fn in_terminal_of_width(&self, args: &str, cols: u16) -> Run {
        self.terminal(&format!("stty cols {cols} rows 24; {XONE} {args}"), &[], None)
    }

    /// As `in_terminal`, typing `keys` at the terminal once xone is waiting for them.
    pub fn answering(&self, args: &str, envs: &[(&str, &str)], keys: Option<&str>) -> Run {
        self.terminal(&format!("{XONE} {args}"), envs, keys)
    }

    fn terminal(&self, command: &str, envs: &[(&str, &str)], keys: Option<&str>) -> Run {
        let script = format!("script -qec '{command}' /dev/null");
        let line = match keys {
            Some(k) => format!("(sleep 1; printf '{k}') | {script}"),
            None => format!("{script} < /dev/null"),
        };
        let mut c = Command::new("sh");
        c.args(["-c", &line])
            .env_clear()
            .env("HOME", &self.home)
            .env("XONE_HOME", &self.state)
            .env("XONE_USER", &self.user)
            .env("TERM", "xterm")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(&self.work)
            .stdin(Stdio::null());
        for (k, v) in
            self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(envs.iter().copied())
        {
            c.env(k, v);
        }
        Run::from(c.output().expect("sh and script run"))
    }

    pub fn as_user(&self, user: &str) -> TestEnv {
        TestEnv {
            _root: tempfile::tempdir().unwrap(),
            home: self.home.clone(),
            state: self.state.clone(),
            work: self.work.clone(),
            user: user.into(),
            vars: self.vars.clone(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.state.join("state.db")
    }

    /// A git repository with one commit on `main`; bare repositories get it by a push from a
    /// scratch clone, as a server's would.
    pub fn repo(&self, name: &str, bare: bool) -> PathBuf {
        let path = self.root().join("repos").join(if bare {
            format!("{name}.git")
        } else {
            name.to_string()
        });
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main").bare(bare);
        let repo = git2::Repository::init_opts(&path, &opts).unwrap();
        commit(&repo, "README.md", &format!("# {name}\n"), "Initial commit", None);
        path
    }
}

fn sig() -> git2::Signature<'static> {
    git2::Signature::now("Test", "test@example.invalid").unwrap()
}

/// Commits one file on `branch` (HEAD's branch when `None`), in a work tree or a bare repo.
pub fn commit(
    repo: &git2::Repository,
    file: &str,
    body: &str,
    msg: &str,
    branch: Option<&str>,
) -> git2::Oid {
    let refname = match branch {
        Some(b) => format!("refs/heads/{b}"),
        None => {
            repo.find_reference("HEAD").unwrap().symbolic_target().unwrap().unwrap().to_string()
        }
    };
    let parent = repo.find_reference(&refname).ok().and_then(|r| r.peel_to_commit().ok());
    let mut tb = repo.treebuilder(parent.as_ref().map(|p| p.tree().unwrap()).as_ref()).unwrap();
    let blob = repo.blob(body.as_bytes()).unwrap();
    tb.insert(file, blob, 0o100644).unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo.commit(Some(&refname), &sig(), &sig(), msg, &tree, &parents).unwrap();
    if !repo.is_bare()
        && repo.head().ok().and_then(|h| h.name().ok().map(String::from)).as_deref()
            == Some(refname.as_str())
    {
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force())).unwrap();
    }
    oid
}

/// A project PAY with two repositories (web with a work tree, api bare) and members for the
/// roles the gates look at.
pub fn project(env: &TestEnv) -> (PathBuf, PathBuf) {
    let web = env.repo("web", false);
    let api = env.repo("api", true);
    env.ok(&[
        "project",
        "create",
        "PAY",
        "--name",
        "Payments",
        "--repo",
        web.to_str().unwrap(),
        "--repo",
        api.to_str().unwrap(),
    ]);
    env.ok(&["project", "member", "add", "PAY", "pat", "--role", "pm"]);
    env.ok(&["project", "member", "add", "PAY", "quinn", "--role", "qa"]);
    (web, api)
}

pub fn write(env: &TestEnv, name: &str, body: &[u8]) -> String {
    let p = env.work.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// An HTTP client for the tests' own calls to servers on 127.0.0.1, which speak plain http:
/// it needs no CA certificates, which a fresh machine may not have.
pub fn local_http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().tls_certs_only(Vec::new()).build().unwrap()
}

/// A terminal line as it shows: without its colour codes (`ESC [ … m`).
pub fn without_colour(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for f in chars.by_ref() {
                if f.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
