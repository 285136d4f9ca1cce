//! A stateful fake GitLab: a real HTTP/1.1 server on 127.0.0.1 speaking REST v4 (users,
//! namespaces, projects, branches, compare, merge base, merge requests with real merges and
//! honest conflict detection) and git's smart HTTP protocol through `git http-backend`, backed
//! by real bare repositories. xone reaches it only through `gitlab.url`.
//!
//! Responses carry every field of GitLab's documented examples (`fixtures/gitlab/`): the
//! fields the fake models are computed from its state; the rest keep the example's values.
//! Knobs inject faults: statuses with `Retry-After`, latency, dropped connections, garbage
//! bodies and requests that never get an answer.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git2::{BranchType, Oid, Repository};
use serde_json::{json, Value};

use crate::fake_http as wire;
use wire::{decode, Request, Response};

const PROJECT: &str = include_str!("../../fixtures/gitlab/project.json");
const USER: &str = include_str!("../../fixtures/gitlab/user.json");
const NAMESPACE: &str = include_str!("../../fixtures/gitlab/namespace.json");
const TOKEN: &str = include_str!("../../fixtures/gitlab/personal_access_token_self.json");
const MR: &str = include_str!("../../fixtures/gitlab/merge_request.json");
const MR_LISTED: &str = include_str!("../../fixtures/gitlab/merge_requests.json");
const MR_SINGLE: &str = include_str!("../../fixtures/gitlab/merge_request_get.json");
const VERSION: &str = include_str!("../../fixtures/gitlab/version.json");
const PIPELINE: &str = include_str!("../../fixtures/gitlab/pipeline.json");
const PIPELINE_CREATED: &str = include_str!("../../fixtures/gitlab/pipeline_create.json");
const JOBS: &str = include_str!("../../fixtures/gitlab/pipeline_jobs.json");
const TEST_REPORT: &str = include_str!("../../fixtures/gitlab/pipeline_test_report.json");

/// What a pipeline does once a runner takes it: its jobs in order (each runs `job_time`; a
/// failed job skips those after it), the coverage it reports, its test cases.
#[derive(Clone, Debug)]
pub struct Ci {
    /// (stage, name, passes, log)
    pub jobs: Vec<(String, String, bool, String)>,
    pub coverage: Option<f64>,
    /// (classname, name, status: success | failed | skipped | error)
    pub tests: Vec<(String, String, String)>,
    /// When a runner takes it up; `None`: never.
    pub start_after: Option<Duration>,
    pub job_time: Duration,
}

impl Default for Ci {
    fn default() -> Ci {
        Ci {
            jobs: vec![
                ("build".into(), "compile".into(), true, "compiling\nok\n".into()),
                ("test".into(), "unit".into(), true, "running 2 tests\nok\n".into()),
            ],
            coverage: Some(85.5),
            tests: vec![
                ("pay".into(), "refund".into(), "success".into()),
                ("pay".into(), "void".into(), "success".into()),
            ],
            start_after: Some(Duration::from_millis(100)),
            job_time: Duration::from_millis(150),
        }
    }
}

struct Pipeline {
    id: i64,
    iid: i64,
    project: i64,
    git_ref: String,
    sha: String,
    created: std::time::Instant,
    created_at: String,
    ci: Ci,
    job_ids: Vec<i64>,
}

impl Pipeline {
    /// Each job's status now, and the pipeline's.
    fn statuses(&self) -> (Vec<&'static str>, &'static str) {
        let t = self.created.elapsed();
        let Some(start) = self.ci.start_after.filter(|s| t >= *s) else {
            let jobs = self
                .ci
                .jobs
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "pending" } else { "created" })
                .collect();
            return (jobs, "pending");
        };
        let run = t - start;
        let mut jobs = Vec::new();
        let mut broken = false;
        for (i, (_, _, passes, _)) in self.ci.jobs.iter().enumerate() {
            let begins = self.ci.job_time * i as u32;
            let status = if broken {
                "skipped"
            } else if run < begins {
                "created"
            } else if run < begins + self.ci.job_time {
                "running"
            } else if *passes {
                "success"
            } else {
                broken = true;
                "failed"
            };
            jobs.push(status);
        }
        let overall = if jobs.iter().any(|j| *j == "running" || *j == "created") {
            "running"
        } else if jobs.contains(&"failed") {
            "failed"
        } else {
            "success"
        };
        (jobs, overall)
    }
}

/// A fault served instead of the real answer, to the next request whose path contains `path`.
#[derive(Clone, Debug)]
pub enum Fault {
    Status {
        code: u16,
        retry_after: Option<u64>,
    },
    /// Close the connection without answering.
    Drop,
    /// 200 with a body that is not JSON.
    Garbage,
    /// A body cut off before its declared length.
    Truncated,
    /// Never answer (until the client gives up).
    Hang,
    /// Do what was asked, then answer with this status as if it had failed (a proxy's 502
    /// or 504 after the work was done), or with 0 drop the connection.
    After(u16),
    /// An error with this status and this message, as GitLab words its errors.
    Says {
        code: u16,
        message: String,
    },
}

pub type Hook = Box<dyn FnOnce() + Send>;

#[derive(Clone, Debug)]
pub struct Logged {
    pub at: std::time::Instant,
    pub method: String,
    pub path: String,
    pub user_agent: String,
    pub auth: Option<(String, String)>,
    pub body: String,
}

struct User {
    id: i64,
    username: String,
    name: String,
}

struct Project {
    id: i64,
    path: String,
}

struct Mr {
    id: i64,
    iid: i64,
    project: i64,
    title: String,
    description: String,
    labels: Vec<String>,
    source: String,
    target: String,
    state: String,
    author: i64,
    created_at: String,
    merged_at: Option<String>,
    merge_commit: Option<String>,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    /// token → (user id, is a job token)
    tokens: BTreeMap<String, (i64, bool)>,
    projects: Vec<Project>,
    namespaces: Vec<String>,
    mrs: Vec<Mr>,
    faults: VecDeque<(String, Fault)>,
    latency: Duration,
    /// The most items a page holds, whatever `per_page` asks for (GitLab's is 100).
    page_cap: usize,
    /// While above zero, merge requests say GitLab is still checking them (one per answer).
    checking: usize,
    /// What blocks every merge (e.g. `not_approved`), as GitLab's detailed status says it.
    blocker: Option<String>,
    /// Run before serving the next request whose path contains the key.
    hooks: Vec<(String, Hook)>,
    pipelines: Vec<Pipeline>,
    /// What pipelines of (project path, ref) do; others do `Ci::default()`.
    ci: Vec<(String, String, Ci)>,
    log: Vec<Logged>,
    next_id: i64,
}

#[derive(Clone)]
pub struct FakeGitLab {
    pub url: String,
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

/// GitLab takes a parameter from the query or from a JSON body.
impl Request {
    fn param(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.query.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        match body.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
    fn params(&self, name: &str) -> Vec<String> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
}

fn reply(status: u16, body: Value) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn message(status: u16, text: &str) -> Response {
    reply(status, json!({ "message": text }))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        buf = buf << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// `2026-11-30T10:00:00.000Z` from seconds since the epoch.
fn iso(secs: i64) -> String {
    format!("{}.000Z", wire::date_time(secs))
}

fn now() -> String {
    iso(wire::now_secs())
}

fn template(text: &str) -> Value {
    serde_json::from_str(text).expect("fixtures are JSON")
}

fn set(v: &mut Value, key: &str, value: Value) {
    v.as_object_mut().expect("an object").insert(key.into(), value);
}

impl FakeGitLab {
    /// Starts the server; repositories live under `root`.
    pub fn start(root: &Path) -> FakeGitLab {
        std::fs::create_dir_all(root).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = State { next_id: 1, page_cap: 100, ..State::default() };
        let fake = FakeGitLab { url, root: root.to_path_buf(), state: Arc::new(Mutex::new(state)) };
        let server = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        fake
    }

    fn id(&self) -> i64 {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        s.next_id
    }

    /// A user and a personal access token for them.
    pub fn add_user(&self, username: &str, token: &str) -> i64 {
        let id = self.id();
        let mut s = self.state.lock().unwrap();
        s.users.push(User { id, username: username.into(), name: format!("{username} (fake)") });
        s.tokens.insert(token.into(), (id, false));
        id
    }

    /// A CI job token acting for `user`.
    pub fn add_job_token(&self, user: i64, token: &str) {
        self.state.lock().unwrap().tokens.insert(token.into(), (user, true));
    }

    pub fn add_namespace(&self, path: &str) {
        self.state.lock().unwrap().namespaces.push(path.into());
    }

    pub fn repo_dir(&self, path: &str) -> PathBuf {
        self.root.join(format!("{path}.git"))
    }

    /// A project at `path` (`group/sub/name`) whose `main` has one commit.
    pub fn add_project(&self, path: &str) -> i64 {
        let dir = self.repo_dir(path);
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main").bare(true);
        let repo = Repository::init_opts(&dir, &opts).unwrap();
        let name = path.rsplit('/').next().unwrap();
        commit_to(&repo, "main", &[("README.md", &format!("# {name}\n"))], "Initial commit");
        let id = self.id();
        let mut s = self.state.lock().unwrap();
        s.projects.push(Project { id, path: path.into() });
        if let Some((ns, _)) = path.rsplit_once('/') {
            if !s.namespaces.iter().any(|n| n == ns) {
                s.namespaces.push(ns.into());
            }
        }
        id
    }

    /// Commits files on `branch` (made from `main` if missing) of a project.
    pub fn commit(&self, path: &str, branch: &str, files: &[(&str, &str)], msg: &str) -> String {
        let repo = Repository::open_bare(self.repo_dir(path)).unwrap();
        if repo.find_branch(branch, BranchType::Local).is_err() {
            let main = repo.find_branch("main", BranchType::Local).unwrap();
            repo.branch(branch, &main.get().peel_to_commit().unwrap(), false).unwrap();
        }
        commit_to(&repo, branch, files, msg).to_string()
    }

    pub fn branch_sha(&self, path: &str, branch: &str) -> Option<String> {
        let repo = Repository::open_bare(self.repo_dir(path)).ok()?;
        let b = repo.find_branch(branch, BranchType::Local).ok()?;
        let id = b.get().peel_to_commit().ok()?.id();
        Some(id.to_string())
    }

    /// Whether `container` holds commit `sha`.
    pub fn contains(&self, path: &str, container: &str, sha: &str) -> bool {
        let repo = Repository::open_bare(self.repo_dir(path)).unwrap();
        let tip = match repo.find_branch(container, BranchType::Local) {
            Ok(b) => b.get().peel_to_commit().unwrap().id(),
            Err(_) => return false,
        };
        let oid = Oid::from_str(sha).unwrap();
        tip == oid || repo.graph_descendant_of(tip, oid).unwrap_or(false)
    }

    pub fn set_latency(&self, d: Duration) {
        self.state.lock().unwrap().latency = d;
    }

    /// Serves `fault` to the next request whose path contains `path`, `times` times.
    pub fn fail(&self, path: &str, fault: Fault, times: usize) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..times {
            s.faults.push_back((path.into(), fault.clone()));
        }
    }

    /// Runs `hook` just before serving the next request whose path contains `path`.
    pub fn before(&self, path: &str, hook: impl FnOnce() + Send + 'static) {
        self.state.lock().unwrap().hooks.push((path.into(), Box::new(hook)));
    }

    /// The next `n` answers carrying a merge request say mergeability is still being checked.
    pub fn set_checking(&self, n: usize) {
        self.state.lock().unwrap().checking = n;
    }

    /// Every open merge request is blocked for `reason` (GitLab's detailed merge status).
    pub fn set_blocker(&self, reason: Option<&str>) {
        self.state.lock().unwrap().blocker = reason.map(str::to_string);
    }

    /// Refuses every push to branches starting with `prefix`, the way a protected branch's
    /// pre-receive check does.
    pub fn protect(&self, path: &str, prefix: &str) {
        let hook = self.repo_dir(path).join("hooks/pre-receive");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        let script = format!(
            "#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in refs/heads/{prefix}*) echo \"GitLab: You are not allowed to force push code to a protected branch on this project.\" >&2; exit 1;; esac\ndone\n"
        );
        std::fs::write(&hook, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What the pipelines of `path` on `git_ref` do from now on.
    pub fn set_ci(&self, path: &str, git_ref: &str, ci: Ci) {
        let mut s = self.state.lock().unwrap();
        s.ci.retain(|(p, r, _)| !(p == path && r == git_ref));
        s.ci.push((path.into(), git_ref.into(), ci));
    }

    pub fn pipeline_count(&self) -> usize {
        self.state.lock().unwrap().pipelines.len()
    }

    pub fn set_page_cap(&self, n: usize) {
        self.state.lock().unwrap().page_cap = n;
    }

    /// A branch whose one commit shares no history with the rest of the project.
    pub fn orphan_branch(&self, path: &str, branch: &str) -> String {
        let repo = Repository::open_bare(self.repo_dir(path)).unwrap();
        commit_to(&repo, branch, &[("other.txt", "unrelated\n")], "Unrelated").to_string()
    }

    /// A merge request in `state` (e.g. closed), made the way a person on the web would.
    pub fn add_mr(&self, path: &str, source: &str, target: &str, state: &str) -> i64 {
        let (pid, _) = self.project_by(path).expect("a known project");
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = s.next_id;
        let iid = s.mrs.iter().filter(|m| m.project == pid).count() as i64 + 1;
        let author = s.users.first().map(|u| u.id).unwrap_or(0);
        s.mrs.push(Mr {
            id,
            iid,
            project: pid,
            title: format!("made by hand: {source}"),
            description: String::new(),
            labels: vec![],
            source: source.into(),
            target: target.into(),
            state: state.into(),
            author,
            created_at: now(),
            merged_at: None,
            merge_commit: None,
        });
        iid
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn merge_requests(&self) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.mrs.iter().map(|m| json!({"iid": m.iid, "state": m.state, "title": m.title, "description": m.description, "labels": m.labels, "source_branch": m.source})).collect()
    }

    // ---- HTTP ----------------------------------------------------------------------------

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        loop {
            let Some(req) = wire::read_request(&mut reader) else {
                return;
            };
            let close = req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
            let (fault, latency) = {
                let mut s = self.state.lock().unwrap();
                s.log.push(Logged {
                    at: std::time::Instant::now(),
                    method: req.method.clone(),
                    path: if req.query.is_empty() {
                        req.path.clone()
                    } else {
                        format!("{}?{}", req.path, query_string(&req.query))
                    },
                    user_agent: req.header("user-agent").unwrap_or_default().to_string(),
                    auth: ["private-token", "job-token", "authorization"]
                        .iter()
                        .find_map(|h| req.header(h).map(|v| (h.to_string(), v.to_string()))),
                    body: String::from_utf8_lossy(&req.body).into_owned(),
                });
                let at = s.faults.iter().position(|(p, _)| req.path.contains(p.as_str()));
                let fault = at.and_then(|i| s.faults.remove(i)).map(|(_, f)| f);
                let target = format!("{}?{}", req.path, query_string(&req.query));
                let hook = s.hooks.iter().position(|(p, _)| target.contains(p.as_str()));
                let hook = hook.map(|i| s.hooks.remove(i).1);
                drop(s);
                if let Some(h) = hook {
                    h();
                }
                let s = self.state.lock().unwrap();
                (fault, s.latency)
            };
            if !latency.is_zero() {
                std::thread::sleep(latency);
            }
            let resp = match fault {
                Some(Fault::Drop) => {
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Hang) => {
                    std::thread::sleep(Duration::from_secs(30));
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Truncated) => {
                    let _ = writer.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"id\": 1, \"na",
                    );
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                Some(Fault::Garbage) => Response {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: b"<html>502 Bad Gateway</html>".to_vec(),
                },
                Some(Fault::Status { code, retry_after }) => {
                    let mut r = message(code, &format!("{code} fault"));
                    if let Some(s) = retry_after {
                        r.headers.push(("Retry-After".into(), s.to_string()));
                    }
                    r
                }
                Some(Fault::After(code)) => {
                    self.route(&req);
                    if code == 0 {
                        let _ = writer.shutdown(Shutdown::Both);
                        return;
                    }
                    message(code, &format!("{code} after the work was done"))
                }
                Some(Fault::Says { code, message: text }) => message(code, &text),
                None => self.route(&req),
            };
            if wire::write_response(&mut writer, &resp).is_err() || close {
                return;
            }
        }
    }

    fn user_of(&self, req: &Request) -> Option<(i64, bool)> {
        let s = self.state.lock().unwrap();
        let token = req
            .header("private-token")
            .or_else(|| req.header("job-token"))
            .map(str::to_string)
            .or_else(|| {
                let basic = req.header("authorization")?.strip_prefix("Basic ")?;
                let text = String::from_utf8(base64_decode(basic.trim())?).ok()?;
                Some(text.split_once(':')?.1.to_string())
            })
            .or_else(|| {
                let bearer = req.header("authorization")?.strip_prefix("Bearer ")?;
                Some(bearer.to_string())
            })?;
        s.tokens.get(&token).copied()
    }

    fn route(&self, req: &Request) -> Response {
        if let Some(rest) = req.path.strip_prefix("/api/v4") {
            let Some((user, job)) = self.user_of(req) else {
                return message(401, "401 Unauthorized");
            };
            return self.api(req, rest, user, job);
        }
        if req.path.contains(".git/") {
            return self.git(req);
        }
        message(404, "404 Not Found")
    }

    // ---- git smart HTTP ------------------------------------------------------------------

    fn git(&self, req: &Request) -> Response {
        let Some((user, _)) = self.user_of(req) else {
            return Response {
                status: 401,
                headers: vec![("WWW-Authenticate".into(), "Basic realm=\"GitLab\"".into())],
                body: b"HTTP Basic: Access denied".to_vec(),
            };
        };
        let pushing = req.path.ends_with("git-receive-pack")
            || req.query.iter().any(|(_, v)| v == "git-receive-pack");
        if pushing && self.user_of(req).is_some_and(|(_, job)| job) {
            return message(403, "You are not allowed to push code to this project.");
        }
        let username = {
            let s = self.state.lock().unwrap();
            s.users.iter().find(|u| u.id == user).map(|u| u.username.clone()).unwrap_or_default()
        };
        let mut child = std::process::Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", &req.path)
            .env("QUERY_STRING", query_string(&req.query))
            .env("REQUEST_METHOD", &req.method)
            .env("CONTENT_TYPE", req.header("content-type").unwrap_or_default())
            .env("CONTENT_LENGTH", req.body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", req.header("content-encoding").unwrap_or_default())
            .env("GIT_PROTOCOL", req.header("git-protocol").unwrap_or_default())
            .env("REMOTE_USER", username)
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git http-backend runs");
        let mut stdin = child.stdin.take().unwrap();
        let body = req.body.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let out = child.wait_with_output().expect("git http-backend finishes");
        let _ = feeder.join();
        let raw = out.stdout;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let Some((at, sep)) = split else {
            return message(500, "git http-backend answered nothing");
        };
        let head = String::from_utf8_lossy(&raw[..at]).into_owned();
        let mut status = 200;
        let mut headers = Vec::new();
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            if k.eq_ignore_ascii_case("status") {
                status = v.trim().split(' ').next().and_then(|c| c.parse().ok()).unwrap_or(500);
            } else {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Response { status, headers, body: raw[at + sep..].to_vec() }
    }

    // ---- REST ----------------------------------------------------------------------------

    fn project_by(&self, id: &str) -> Option<(i64, String)> {
        let s = self.state.lock().unwrap();
        let id = decode(id);
        s.projects
            .iter()
            .find(|p| p.id.to_string() == id || p.path == id)
            .map(|p| (p.id, p.path.clone()))
    }

    fn user_json(&self, id: i64) -> Value {
        let s = self.state.lock().unwrap();
        let u = s.users.iter().find(|u| u.id == id).expect("known user");
        let mut v = template(USER);
        set(&mut v, "id", json!(u.id));
        set(&mut v, "username", json!(u.username));
        set(&mut v, "name", json!(u.name));
        set(&mut v, "email", json!(format!("{}@example.invalid", u.username)));
        set(&mut v, "web_url", json!(format!("{}/{}", self.url, u.username)));
        v
    }

    fn project_json(&self, id: i64, path: &str) -> Value {
        let repo = Repository::open_bare(self.repo_dir(path)).unwrap();
        let default = default_branch(&repo).unwrap_or_else(|| "main".into());
        let (ns, name) = path.rsplit_once('/').unwrap_or(("", path));
        let mut v = template(PROJECT);
        set(&mut v, "id", json!(id));
        set(&mut v, "name", json!(name));
        set(&mut v, "path", json!(name));
        set(&mut v, "path_with_namespace", json!(path));
        set(&mut v, "name_with_namespace", json!(path.replace('/', " / ")));
        set(&mut v, "default_branch", json!(default));
        set(&mut v, "http_url_to_repo", json!(format!("{}/{path}.git", self.url)));
        set(&mut v, "ssh_url_to_repo", json!(format!("git@127.0.0.1:{path}.git")));
        set(&mut v, "web_url", json!(format!("{}/{path}", self.url)));
        set(&mut v, "readme_url", json!(format!("{}/{path}/-/blob/{default}/README.md", self.url)));
        if let Some(n) = v.get_mut("namespace").and_then(Value::as_object_mut) {
            n.insert("full_path".into(), json!(ns));
            n.insert("path".into(), json!(ns.rsplit('/').next().unwrap_or(ns)));
            n.insert("name".into(), json!(ns));
        }
        v
    }

    fn commit_json(&self, path: &str, c: &git2::Commit) -> Value {
        let when = |t: git2::Time| iso(t.seconds());
        let message = c.message().unwrap_or_default().to_string();
        json!({
            "id": c.id().to_string(),
            "short_id": c.id().to_string()[..8].to_string(),
            "created_at": when(c.committer().when()),
            "parent_ids": c.parent_ids().map(|p| p.to_string()).collect::<Vec<_>>(),
            "title": c.summary().ok().flatten().unwrap_or_default(),
            "message": message,
            "author_name": c.author().name().ok().unwrap_or_default(),
            "author_email": c.author().email().unwrap_or_default(),
            "authored_date": when(c.author().when()),
            "committer_name": c.committer().name().unwrap_or_default(),
            "committer_email": c.committer().email().unwrap_or_default(),
            "committed_date": when(c.committer().when()),
            "trailers": {},
            "extended_trailers": {},
            "web_url": format!("{}/{path}/-/commit/{}", self.url, c.id()),
        })
    }

    fn branch_json(&self, path: &str, repo: &Repository, name: &str) -> Option<Value> {
        let b = repo.find_branch(name, BranchType::Local).ok()?;
        let c = b.get().peel_to_commit().ok()?;
        let default = default_branch(repo).unwrap_or_default();
        let merged = name != default
            && repo
                .find_branch(&default, BranchType::Local)
                .ok()
                .and_then(|d| d.get().target())
                .is_some_and(|d| {
                    d == c.id() || repo.graph_descendant_of(d, c.id()).unwrap_or(false)
                });
        Some(json!({
            "name": name,
            "merged": merged,
            "protected": name == default,
            "default": name == default,
            "developers_can_push": false,
            "developers_can_merge": false,
            "can_push": true,
            "web_url": format!("{}/{path}/-/tree/{name}", self.url),
            "commit": self.commit_json(path, &c),
        }))
    }

    fn api(&self, req: &Request, rest: &str, user: i64, job: bool) -> Response {
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let m = req.method.as_str();
        // A CI job token reads; it does not write through the REST API.
        if job && m != "GET" && !rest.ends_with("/trigger/pipeline") {
            return message(403, "403 Forbidden");
        }
        // Nor may it follow pipelines and jobs (GitLab lets it trigger one, not read it).
        if job && (rest.contains("/pipelines") || rest.contains("/jobs/")) {
            return message(403, "403 Forbidden");
        }
        match (m, parts.as_slice()) {
            ("GET", ["job"]) => {
                if !job {
                    return message(401, "401 Unauthorized");
                }
                let u = self.user_json(user);
                reply(
                    200,
                    json!({"id": 42, "status": "running", "name": "test", "ref": "main", "user": u}),
                )
            }
            ("GET", ["version"]) => {
                let mut v = template(VERSION);
                set(&mut v, "version", json!("17.5.0"));
                reply(200, v)
            }
            ("GET", ["user"]) => {
                if job {
                    return message(403, "403 Forbidden");
                }
                reply(200, self.user_json(user))
            }
            ("GET", ["personal_access_tokens", "self"]) => {
                let mut v = template(TOKEN);
                set(&mut v, "user_id", json!(user));
                set(&mut v, "scopes", json!(["api", "read_repository", "write_repository"]));
                reply(200, v)
            }
            ("GET", ["namespaces", id]) => {
                let id = decode(id);
                let s = self.state.lock().unwrap();
                match s.namespaces.iter().position(|n| *n == id) {
                    None => message(404, "404 Namespace Not Found"),
                    Some(i) => {
                        let mut v = template(NAMESPACE);
                        set(&mut v, "id", json!(1000 + i as i64));
                        set(&mut v, "full_path", json!(id));
                        set(&mut v, "path", json!(id.rsplit('/').next().unwrap_or(&id)));
                        set(&mut v, "name", json!(id));
                        set(&mut v, "kind", json!("group"));
                        set(&mut v, "web_url", json!(format!("{}/groups/{id}", self.url)));
                        reply(200, v)
                    }
                }
            }
            ("POST", ["projects"]) => {
                let (Some(name), Some(ns)) =
                    (req.param("path").or(req.param("name")), req.param("namespace_id"))
                else {
                    return message(400, "name is missing");
                };
                let ns = {
                    let s = self.state.lock().unwrap();
                    ns.parse::<usize>()
                        .ok()
                        .and_then(|i| s.namespaces.get(i.wrapping_sub(1000)).cloned())
                };
                let Some(ns) = ns else {
                    return message(404, "404 Namespace Not Found");
                };
                let path = format!("{ns}/{name}");
                if self.project_by(&path).is_some() {
                    return reply(
                        400,
                        json!({"message": {"path": ["has already been taken"], "name": ["has already been taken"]}}),
                    );
                }
                let id = self.add_project(&path);
                reply(201, self.project_json(id, &path))
            }
            ("GET", ["projects", id]) => match self.project_by(id) {
                Some((id, path)) => reply(200, self.project_json(id, &path)),
                None => message(404, "404 Project Not Found"),
            },
            (_, ["projects", id, tail @ ..]) => {
                let Some((pid, path)) = self.project_by(id) else {
                    return message(404, "404 Project Not Found");
                };
                let repo = Repository::open_bare(self.repo_dir(&path)).unwrap();
                self.project_api(req, m, tail, pid, &path, &repo, user)
            }
            _ => message(404, "404 Not Found"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn project_api(
        &self,
        req: &Request,
        m: &str,
        tail: &[&str],
        pid: i64,
        path: &str,
        repo: &Repository,
        user: i64,
    ) -> Response {
        let resolve = |r: &str| -> Option<Oid> {
            repo.revparse_single(r).ok()?.peel_to_commit().ok().map(|c| c.id())
        };
        match (m, tail) {
            ("GET", ["repository", "branches"]) => {
                let mut names: Vec<String> = repo
                    .branches(Some(BranchType::Local))
                    .unwrap()
                    .flatten()
                    .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
                    .collect();
                // `search`: containing the term; `^term` begins with it, `term$` ends with it.
                if let Some(term) = req.param("search") {
                    names.retain(|n| match (term.strip_prefix('^'), term.strip_suffix('$')) {
                        (Some(t), _) => n.starts_with(t),
                        (_, Some(t)) => n.ends_with(t),
                        _ => n.contains(term.as_str()),
                    });
                }
                names.sort();
                let all: Vec<Value> =
                    names.iter().filter_map(|n| self.branch_json(path, repo, n)).collect();
                self.page(req, all)
            }
            ("GET", ["repository", "branches", name @ ..]) => {
                match self.branch_json(path, repo, &decode(&name.join("/"))) {
                    Some(b) => reply(200, b),
                    None => message(404, "404 Branch Not Found"),
                }
            }
            ("POST", ["repository", "branches"]) => {
                let (Some(name), Some(from)) = (req.param("branch"), req.param("ref")) else {
                    return message(400, "branch is missing, ref is missing");
                };
                if repo.find_branch(&name, BranchType::Local).is_ok() {
                    return message(400, "Branch already exists");
                }
                let Some(start) = resolve(&from) else {
                    return message(400, &format!("Invalid reference name: {from}"));
                };
                if git2::Reference::is_valid_name(&format!("refs/heads/{name}")) {
                    repo.branch(&name, &repo.find_commit(start).unwrap(), false).unwrap();
                    reply(201, self.branch_json(path, repo, &name).unwrap())
                } else {
                    message(400, &format!("Branch name is invalid: {name}"))
                }
            }
            ("DELETE", ["repository", "branches", name @ ..]) => {
                let name = decode(&name.join("/"));
                match repo.find_branch(&name, BranchType::Local) {
                    Ok(mut b) => {
                        b.delete().unwrap();
                        Response { status: 204, headers: vec![], body: vec![] }
                    }
                    Err(_) => message(404, "404 Branch Not Found"),
                }
            }
            ("GET", ["repository", "compare"]) => {
                let (Some(from), Some(to)) = (req.param("from"), req.param("to")) else {
                    return message(400, "from is missing, to is missing");
                };
                let (Some(f), Some(t)) = (resolve(&from), resolve(&to)) else {
                    return message(404, "404 Ref Not Found");
                };
                let mut walk = repo.revwalk().unwrap();
                walk.push(t).unwrap();
                walk.hide(f).unwrap();
                walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE).unwrap();
                let commits: Vec<Value> = walk
                    .flatten()
                    .map(|o| self.commit_json(path, &repo.find_commit(o).unwrap()))
                    .collect();
                let base = repo.merge_base(f, t).ok();
                let mut diffs = Vec::new();
                if let Some(b) = base {
                    let old = repo.find_commit(b).unwrap().tree().unwrap();
                    let new = repo.find_commit(t).unwrap().tree().unwrap();
                    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None).unwrap();
                    for d in diff.deltas() {
                        let p =
                            |f: git2::DiffFile| f.path().map(|p| p.to_string_lossy().into_owned());
                        diffs.push(json!({
                            "old_path": p(d.old_file()),
                            "new_path": p(d.new_file()),
                            "a_mode": format!("{:o}", u32::from(d.old_file().mode())),
                            "b_mode": format!("{:o}", u32::from(d.new_file().mode())),
                            "diff": "",
                            "new_file": d.status() == git2::Delta::Added,
                            "renamed_file": d.status() == git2::Delta::Renamed,
                            "deleted_file": d.status() == git2::Delta::Deleted,
                        }));
                    }
                }
                reply(
                    200,
                    json!({
                        "commit": commits.last().cloned(),
                        "commits": commits,
                        "diffs": diffs,
                        "compare_timeout": false,
                        "compare_same_ref": from == to,
                        "web_url": format!("{}/{path}/-/compare/{f}...{t}", self.url),
                    }),
                )
            }
            ("GET", ["repository", "merge_base"]) => {
                let refs = req.params("refs[]");
                if refs.len() < 2 {
                    return message(400, "Provide at least 2 refs");
                }
                let oids: Vec<Option<Oid>> = refs.iter().map(|r| resolve(r)).collect();
                if let Some(i) = oids.iter().position(Option::is_none) {
                    return message(404, &format!("Could not find ref: {}", refs[i]));
                }
                let oids: Vec<Oid> = oids.into_iter().flatten().collect();
                match repo.merge_base_many(&oids) {
                    Ok(b) => reply(200, self.commit_json(path, &repo.find_commit(b).unwrap())),
                    Err(_) => message(404, "404 Merge Base Not Found"),
                }
            }
            ("GET", ["repository", "commits", r @ ..]) => match resolve(&decode(&r.join("/"))) {
                Some(oid) => reply(200, self.commit_json(path, &repo.find_commit(oid).unwrap())),
                None => message(404, "404 Commit Not Found"),
            },
            ("POST", ["pipeline"]) | ("POST", ["trigger", "pipeline"]) => {
                let Some(git_ref) = req.param("ref") else {
                    return message(400, "ref is missing");
                };
                let Some(oid) = repo
                    .find_branch(&git_ref, BranchType::Local)
                    .ok()
                    .and_then(|b| b.get().target())
                    .or_else(|| resolve(&git_ref))
                else {
                    return reply(400, json!({"message": {"base": ["Reference not found"]}}));
                };
                let mut s = self.state.lock().unwrap();
                let ci =
                    s.ci.iter()
                        .find(|(p, r, _)| p == path && *r == git_ref)
                        .map(|(_, _, c)| c.clone())
                        .unwrap_or_default();
                s.next_id += 1;
                let id = s.next_id;
                let mut job_ids = Vec::new();
                for _ in &ci.jobs {
                    s.next_id += 1;
                    job_ids.push(s.next_id);
                }
                let iid = s.pipelines.iter().filter(|p| p.project == pid).count() as i64 + 1;
                s.pipelines.push(Pipeline {
                    id,
                    iid,
                    project: pid,
                    git_ref,
                    sha: oid.to_string(),
                    created: std::time::Instant::now(),
                    created_at: now(),
                    ci,
                    job_ids,
                });
                let v = self.pipeline_json(s.pipelines.last().unwrap(), path, PIPELINE_CREATED);
                reply(201, v)
            }
            ("GET", ["pipelines"]) => {
                let s = self.state.lock().unwrap();
                let mut list: Vec<&Pipeline> = s
                    .pipelines
                    .iter()
                    .filter(|p| p.project == pid)
                    .filter(|p| req.param("ref").is_none_or(|r| r == p.git_ref))
                    .collect();
                list.reverse();
                let all: Vec<Value> =
                    list.iter().map(|p| self.pipeline_json(p, path, PIPELINE)).collect();
                drop(s);
                self.page(req, all)
            }
            ("GET", ["pipelines", id, tail @ ..]) => {
                let s = self.state.lock().unwrap();
                let Some(p) =
                    s.pipelines.iter().find(|p| p.project == pid && p.id.to_string() == *id)
                else {
                    return message(404, "404 Not found");
                };
                match tail {
                    [] => reply(200, self.pipeline_json(p, path, PIPELINE)),
                    ["jobs"] => {
                        let all = self.jobs_json(p, path);
                        drop(s);
                        self.page(req, all)
                    }
                    ["test_report"] => reply(200, self.test_report_json(p)),
                    _ => message(404, "404 Not Found"),
                }
            }
            ("GET", ["jobs", id, "trace"]) => {
                let s = self.state.lock().unwrap();
                let found = s.pipelines.iter().filter(|p| p.project == pid).find_map(|p| {
                    let i = p.job_ids.iter().position(|j| j.to_string() == *id)?;
                    let (jobs, _) = p.statuses();
                    Some((jobs[i], p.ci.jobs[i].3.clone()))
                });
                match found {
                    Some((status, log)) => {
                        let text = if matches!(status, "created" | "pending") {
                            String::new()
                        } else {
                            log
                        };
                        Response {
                            status: 200,
                            headers: vec![("Content-Type".into(), "text/plain".into())],
                            body: text.into_bytes(),
                        }
                    }
                    None => message(404, "404 Not found"),
                }
            }
            ("GET", ["merge_requests"]) => {
                let s = self.state.lock().unwrap();
                let state = req.param("state").unwrap_or_else(|| "all".into());
                let mut mrs: Vec<&Mr> = s
                    .mrs
                    .iter()
                    .filter(|m| m.project == pid)
                    .filter(|m| req.param("source_branch").is_none_or(|b| b == m.source))
                    .filter(|m| req.param("target_branch").is_none_or(|b| b == m.target))
                    .filter(|m| state == "all" || state == m.state)
                    .collect();
                mrs.reverse();
                let all: Vec<Value> =
                    mrs.iter().map(|m| self.mr_json(m, path, repo, &s, true)).collect();
                drop(s);
                self.checked_once();
                self.page(req, all)
            }
            ("POST", ["merge_requests"]) => {
                let (Some(source), Some(target), Some(title)) =
                    (req.param("source_branch"), req.param("target_branch"), req.param("title"))
                else {
                    return message(400, "source_branch, target_branch, title are missing");
                };
                if repo.find_branch(&source, BranchType::Local).is_err() {
                    return reply(422, json!({"message": ["Source branch does not exist"]}));
                }
                let mut s = self.state.lock().unwrap();
                if let Some(open) = s.mrs.iter().find(|m| {
                    m.project == pid
                        && m.source == source
                        && m.target == target
                        && m.state == "opened"
                }) {
                    return reply(
                        409,
                        json!({"message": [format!("Another open merge request already exists for this source branch: !{}", open.iid)]}),
                    );
                }
                s.next_id += 1;
                let id = s.next_id;
                let iid = s.mrs.iter().filter(|m| m.project == pid).count() as i64 + 1;
                let labels = req
                    .param("labels")
                    .map(|l| l.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default();
                s.mrs.push(Mr {
                    id,
                    iid,
                    project: pid,
                    title,
                    description: req.param("description").unwrap_or_default(),
                    labels,
                    source,
                    target,
                    state: "opened".into(),
                    author: user,
                    created_at: now(),
                    merged_at: None,
                    merge_commit: None,
                });
                let v = self.mr_json(s.mrs.last().unwrap(), path, repo, &s, false);
                drop(s);
                self.checked_once();
                reply(201, v)
            }
            ("GET", ["merge_requests", iid]) => {
                let s = self.state.lock().unwrap();
                let found = s.mrs.iter().find(|m| m.project == pid && m.iid.to_string() == *iid);
                let answer = match found {
                    Some(mr) => reply(200, self.mr_json_from(MR_SINGLE, mr, path, repo, &s)),
                    None => message(404, "404 Not found"),
                };
                drop(s);
                self.checked_once();
                answer
            }
            ("PUT", ["merge_requests", iid, "merge"]) => {
                let mut s = self.state.lock().unwrap();
                let Some(at) =
                    s.mrs.iter().position(|m| m.project == pid && m.iid.to_string() == *iid)
                else {
                    return message(404, "404 Not found");
                };
                if s.mrs[at].state != "opened" || s.blocker.is_some() {
                    return message(405, "405 Method Not Allowed");
                }
                let (source, target) = (s.mrs[at].source.clone(), s.mrs[at].target.clone());
                let (Some(theirs), Some(ours)) = (resolve(&source), resolve(&target)) else {
                    return message(406, "Branch cannot be merged");
                };
                if let Some(sha) = req.param("sha") {
                    if sha != theirs.to_string() {
                        return message(409, "SHA does not match HEAD of source branch");
                    }
                }
                let ours_c = repo.find_commit(ours).unwrap();
                let theirs_c = repo.find_commit(theirs).unwrap();
                let mut index = repo.merge_commits(&ours_c, &theirs_c, None).unwrap();
                if index.has_conflicts() {
                    return message(406, "Branch cannot be merged");
                }
                let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
                let sig = git2::Signature::now("GitLab", "gitlab@example.invalid").unwrap();
                let msg = format!("Merge branch '{source}' into '{target}'\n\n{}", s.mrs[at].title);
                let new =
                    repo.commit(None, &sig, &sig, &msg, &tree, &[&ours_c, &theirs_c]).unwrap();
                if repo
                    .reference_matching(&format!("refs/heads/{target}"), new, true, ours, "merge")
                    .is_err()
                {
                    return message(409, "the target branch moved");
                }
                s.mrs[at].state = "merged".into();
                s.mrs[at].merged_at = Some(now());
                s.mrs[at].merge_commit = Some(new.to_string());
                let v = self.mr_json(&s.mrs[at], path, repo, &s, false);
                reply(200, v)
            }
            _ => message(404, "404 Not Found"),
        }
    }

    fn pipeline_json(&self, p: &Pipeline, path: &str, doc: &str) -> Value {
        let (_, status) = p.statuses();
        let finished = matches!(status, "success" | "failed");
        let mut v = template(doc);
        let fields = [
            ("id", json!(p.id)),
            ("iid", json!(p.iid)),
            ("project_id", json!(p.project)),
            ("sha", json!(p.sha)),
            ("ref", json!(p.git_ref)),
            ("status", json!(status)),
            ("created_at", json!(p.created_at)),
            ("updated_at", json!(now())),
            ("web_url", json!(format!("{}/{path}/-/pipelines/{}", self.url, p.id))),
            ("finished_at", if finished { json!(now()) } else { Value::Null }),
            // GitLab reports coverage as a string, once the jobs have reported it.
            (
                "coverage",
                match (finished, p.ci.coverage) {
                    (true, Some(c)) => json!(format!("{c:.2}")),
                    _ => Value::Null,
                },
            ),
        ];
        for (k, val) in fields {
            set(&mut v, k, val);
        }
        v
    }

    /// A pipeline's jobs, newest first, as GitLab lists them since 13.5.
    fn jobs_json(&self, p: &Pipeline, path: &str) -> Vec<Value> {
        let (statuses, _) = p.statuses();
        let doc = template(JOBS);
        let example = doc.as_array().and_then(|a| a.first()).cloned().expect("an example job");
        let mut all: Vec<Value> =
            p.ci.jobs
                .iter()
                .zip(&p.job_ids)
                .zip(statuses)
                .map(|(((stage, name, _, _), id), status)| {
                    let mut v = example.clone();
                    let fields = [
                        ("id", json!(id)),
                        ("name", json!(name)),
                        ("stage", json!(stage)),
                        ("status", json!(status)),
                        ("ref", json!(p.git_ref)),
                        ("web_url", json!(format!("{}/{path}/-/jobs/{id}", self.url))),
                        (
                            "failure_reason",
                            if status == "failed" { json!("script_failure") } else { Value::Null },
                        ),
                    ];
                    for (k, val) in fields {
                        set(&mut v, k, val);
                    }
                    if let Some(pl) = v.get_mut("pipeline").and_then(Value::as_object_mut) {
                        pl.insert("id".into(), json!(p.id));
                        pl.insert("status".into(), json!(status));
                        pl.insert("sha".into(), json!(p.sha));
                        pl.insert("ref".into(), json!(p.git_ref));
                    }
                    v
                })
                .collect();
        all.reverse();
        all
    }

    /// The test report once the pipeline is done (empty before, as GitLab's is).
    fn test_report_json(&self, p: &Pipeline) -> Value {
        let (_, status) = p.statuses();
        let done = matches!(status, "success" | "failed");
        let cases: Vec<&(String, String, String)> =
            if done { p.ci.tests.iter().collect() } else { Vec::new() };
        let count = |st: &str| cases.iter().filter(|c| c.2 == st).count();
        let mut v = template(TEST_REPORT);
        let example_suite = v["test_suites"][0].clone();
        let example_case = example_suite["test_cases"][0].clone();
        let test_cases: Vec<Value> = cases
            .iter()
            .map(|(class, name, st)| {
                let mut c = example_case.clone();
                set(&mut c, "classname", json!(class));
                set(&mut c, "name", json!(name));
                set(&mut c, "status", json!(st));
                c
            })
            .collect();
        let totals = [
            ("total_count", json!(cases.len())),
            ("success_count", json!(count("success"))),
            ("failed_count", json!(count("failed"))),
            ("skipped_count", json!(count("skipped"))),
            ("error_count", json!(count("error"))),
        ];
        let mut suite = example_suite;
        for (k, val) in &totals {
            set(&mut suite, k, val.clone());
            set(&mut v, k, val.clone());
        }
        set(&mut suite, "test_cases", json!(test_cases));
        set(&mut v, "test_suites", if cases.is_empty() { json!([]) } else { json!([suite]) });
        v
    }

    fn checked_once(&self) {
        let mut s = self.state.lock().unwrap();
        s.checking = s.checking.saturating_sub(1);
    }

    fn mr_json(&self, mr: &Mr, path: &str, repo: &Repository, s: &State, listed: bool) -> Value {
        self.mr_json_from(if listed { MR_LISTED } else { MR }, mr, path, repo, s)
    }

    /// A merge request in the shape of the documented example `doc` (an array's first item
    /// for the listing).
    fn mr_json_from(&self, doc: &str, mr: &Mr, path: &str, repo: &Repository, s: &State) -> Value {
        let tip = |b: &str| repo.find_branch(b, BranchType::Local).ok()?.get().target();
        let (source, target) = (tip(&mr.source), tip(&mr.target));
        let conflicts = match (mr.state.as_str(), source, target) {
            ("opened", Some(s), Some(t)) => {
                let (sc, tc) = (repo.find_commit(s).unwrap(), repo.find_commit(t).unwrap());
                repo.merge_commits(&tc, &sc, None).map(|i| i.has_conflicts()).unwrap_or(true)
            }
            _ => false,
        };
        let author = s.users.iter().find(|u| u.id == mr.author);
        let mut v = template(doc);
        if let Some(first) = v.as_array().and_then(|a| a.first()).cloned() {
            v = first;
        }
        let sha = source.map(|o| o.to_string());
        let fields = [
            ("id", json!(mr.id)),
            ("iid", json!(mr.iid)),
            ("project_id", json!(mr.project)),
            ("source_project_id", json!(mr.project)),
            ("target_project_id", json!(mr.project)),
            ("title", json!(mr.title)),
            ("description", json!(mr.description)),
            ("state", json!(mr.state)),
            ("labels", json!(mr.labels)),
            ("source_branch", json!(mr.source)),
            ("target_branch", json!(mr.target)),
            ("created_at", json!(mr.created_at)),
            ("updated_at", json!(mr.merged_at.clone().unwrap_or(mr.created_at.clone()))),
            ("merged_at", json!(mr.merged_at)),
            ("merge_commit_sha", json!(mr.merge_commit)),
            ("sha", json!(sha)),
            ("has_conflicts", json!(conflicts)),
            ("draft", json!(false)),
            ("work_in_progress", json!(false)),
            ("merge_status", json!(if conflicts { "cannot_be_merged" } else { "can_be_merged" })),
            (
                "detailed_merge_status",
                json!(match (mr.state.as_str(), conflicts) {
                    ("opened", _) if s.checking > 0 => "checking".to_string(),
                    ("opened", _) if s.blocker.is_some() => s.blocker.clone().unwrap_or_default(),
                    ("opened", true) => "conflict".to_string(),
                    ("opened", false) => "mergeable".to_string(),
                    _ => "not_open".to_string(),
                }),
            ),
            ("web_url", json!(format!("{}/{path}/-/merge_requests/{}", self.url, mr.iid))),
            ("assignees", json!([])),
            ("reviewers", json!([])),
        ];
        for (k, val) in fields {
            set(&mut v, k, val);
        }
        if let (Some(a), Some(obj)) = (author, v.get_mut("author").and_then(Value::as_object_mut)) {
            obj.insert("id".into(), json!(a.id));
            obj.insert("username".into(), json!(a.username));
            obj.insert("name".into(), json!(a.name));
        }
        if let Some(refs) = v.get_mut("references").and_then(Value::as_object_mut) {
            refs.insert("short".into(), json!(format!("!{}", mr.iid)));
            refs.insert("relative".into(), json!(format!("!{}", mr.iid)));
            refs.insert("full".into(), json!(format!("{path}!{}", mr.iid)));
        }
        if mr.state != "merged" {
            for k in ["merged_by", "merge_user", "merged_at"] {
                if v.get(k).is_some() {
                    set(&mut v, k, Value::Null);
                }
            }
        }
        v
    }

    /// One page of `all`, with GitLab's pagination headers (`Link`, `X-Next-Page`, …).
    fn page(&self, req: &Request, all: Vec<Value>) -> Response {
        let cap = self.state.lock().unwrap().page_cap;
        let per: usize =
            req.param("per_page").and_then(|p| p.parse().ok()).unwrap_or(20).clamp(1, cap);
        let page: usize = req.param("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
        let pages = all.len().div_ceil(per).max(1);
        let items: Vec<Value> = all.iter().skip((page - 1) * per).take(per).cloned().collect();
        let mut resp = reply(200, Value::Array(items));
        let link = |p: usize, rel: &str| {
            let mut q: Vec<(String, String)> =
                req.query.iter().filter(|(k, _)| k != "page").cloned().collect();
            q.push(("page".into(), p.to_string()));
            format!(
                "<{}/api/v4{}?{}>; rel=\"{rel}\"",
                self.url,
                req.path.trim_start_matches("/api/v4"),
                query_string(&q)
            )
        };
        let mut links = vec![link(1, "first"), link(pages, "last")];
        if page < pages {
            links.insert(0, link(page + 1, "next"));
        }
        let next = if page < pages { (page + 1).to_string() } else { String::new() };
        resp.headers.extend([
            ("Link".to_string(), links.join(", ")),
            ("X-Page".to_string(), page.to_string()),
            ("X-Per-Page".to_string(), per.to_string()),
            ("X-Next-Page".to_string(), next),
            ("X-Total".to_string(), all.len().to_string()),
            ("X-Total-Pages".to_string(), pages.to_string()),
        ]);
        resp
    }
}

fn query_string(q: &[(String, String)]) -> String {
    q.iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z'
                        | b'a'..=b'z'
                        | b'0'..=b'9'
                        | b'-'
                        | b'_'
                        | b'.'
                        | b'~'
                        | b'['
                        | b']' => (b as char).to_string(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The branch HEAD names.
fn default_branch(repo: &Repository) -> Option<String> {
    let head = repo.find_reference("HEAD").ok()?;
    let target = head.symbolic_target().ok().flatten()?;
    Some(target.trim_start_matches("refs/heads/").to_string())
}

/// Commits `files` on `branch` of a bare repository.
pub fn commit_to(repo: &Repository, branch: &str, files: &[(&str, &str)], msg: &str) -> Oid {
    let refname = format!("refs/heads/{branch}");
    let parent = repo.find_reference(&refname).ok().and_then(|r| r.peel_to_commit().ok());
    let mut tb = repo.treebuilder(parent.as_ref().map(|p| p.tree().unwrap()).as_ref()).unwrap();
    for (name, body) in files {
        let blob = repo.blob(body.as_bytes()).unwrap();
        tb.insert(name, blob, 0o100644).unwrap();
    }
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.invalid").unwrap();
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some(&refname), &sig, &sig, msg, &tree, &parents).unwrap()
}
