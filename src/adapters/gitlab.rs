//! GitLab (REST v4, and git over HTTP for what REST cannot do): projects, branches, compare,
//! merge requests. Integrations and syncs are merged in a local mirror with git2 and pushed
//! back with a lease on the old tip, so a branch on the server is never half-built.

use std::path::{Path, PathBuf};

use git2::{BranchType, Oid, Repository};
use reqwest::Method;
use serde_json::{json, Value};

use super::forge_local::{self, plan_integration, plan_sync, short, LocalForge};
use super::http::{encode, Api, Secret};
use super::{
    BranchState, CommitInfo, Feature, Forge, Integration, MergeRequest, MrSummary, MrText, Outcome,
    RepoInfo,
};
use crate::store::{Repo, RepoKind};
use crate::ui::{Kind, Result, XoneError};

/// Where a token came from, for `auth status` and error hints; the value itself is never shown.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub source: String,
    /// A CI job token: sent as `JOB-TOKEN`, and to git as `gitlab-ci-token`.
    pub job: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token {{ source: {:?}, job: {}, value: [REDACTED] }}", self.source, self.job)
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub url: Option<String>,
    pub token: Option<Token>,
    pub http: super::http::Settings,
    /// Bare mirrors used for integrations and syncs.
    pub mirrors: PathBuf,
    /// Work trees made by `branch checkout`.
    pub workspace: PathBuf,
}

/// The token, from the first source that has one (SPEC §5): `XONE_GITLAB_TOKEN`,
/// `GITLAB_TOKEN`, the user config's `[gitlab] token` (written by `auth login`), then GitLab
/// CI's `CI_JOB_TOKEN`.
pub fn find_token(config: &crate::config::Config) -> Option<Token> {
    let env =
        |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    for var in ["XONE_GITLAB_TOKEN", "GITLAB_TOKEN"] {
        if let Some(value) = env(var) {
            return Some(Token { value, source: var.to_string(), job: false });
        }
    }
    if let Some(value) = config.stored_gitlab_token.clone() {
        let source = format!("{} (xone auth login)", config.user_file.display());
        return Some(Token { value, source, job: false });
    }
    env("CI_JOB_TOKEN").map(|value| Token { value, source: "CI_JOB_TOKEN".to_string(), job: true })
}

/// Whether a repository given on the command line lives on GitLab: `gitlab:PATH`, or an
/// http(s)/ssh URL on the configured server.
pub fn is_gitlab_spec(spec: &str, url: Option<&str>) -> bool {
    spec.starts_with("gitlab:") || url.is_some_and(|u| path_on_server(spec, u).is_some())
}

/// The project path (`group/sub/name`) a repository spelling names on GitLab:
/// `gitlab:group/name`, or a web or clone URL on the configured server at `url`.
pub fn project_path(spec: &str, url: Option<&str>) -> Option<String> {
    if let Some(p) = spec.strip_prefix("gitlab:") {
        let p = p.trim_matches('/').trim_end_matches(".git");
        return (!p.is_empty()).then(|| p.to_string());
    }
    path_on_server(spec, url?)
}

/// `group/sub/name` from a web or clone URL on the server at `base`.
fn path_on_server(spec: &str, base: &str) -> Option<String> {
    let host = base.split("://").nth(1)?.trim_end_matches('/');
    let rest = ["https://", "http://"]
        .iter()
        .find_map(|scheme| spec.strip_prefix(scheme)?.strip_prefix(host)?.strip_prefix('/'))
        .or_else(|| {
            let bare_host = host.split([':', '/']).next()?;
            spec.strip_prefix("git@")?.strip_prefix(bare_host)?.strip_prefix(':')
        })?;
    // A web URL may go on to a page of the project (`/-/tree/main`).
    let path = rest.split("/-/").next()?.trim_end_matches('/').trim_end_matches(".git");
    (!path.is_empty()).then(|| path.to_string())
}

pub struct GitLab {
    pub api: Api,
    pub url: String,
    /// For git over HTTP as for REST: a transfer stalled this long is given up.
    timeout: std::time::Duration,
    token: Option<Token>,
    mirrors: PathBuf,
    workspace: PathBuf,
}

/// GitLab's `detailed_merge_status` values while it is still working mergeability out.
const CHECKING: &[&str] =
    &["checking", "unchecked", "preparing", "approvals_syncing", "cannot_be_merged_recheck"];

/// A merge request's state in xone's words: open (GitLab's opened or locked), merged, closed.
fn mr_state(mr: &Value) -> String {
    match mr.get("state").and_then(Value::as_str).unwrap_or("opened") {
        "opened" | "locked" => "open".to_string(),
        other => other.to_string(),
    }
}

/// Commit fields GitLab puts in branches, compares and commit lists.
fn commit_info(c: &Value) -> CommitInfo {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    CommitInfo {
        sha: s("id"),
        summary: s("title"),
        author: s("author_name"),
        at: c
            .get("authored_date")
            .or_else(|| c.get("created_at"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

fn str_field(v: &Value, k: &str, endpoint: &str) -> Result<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
        XoneError::new(Kind::Remote, format!("GitLab's answer to {endpoint} has no '{k}'"))
            .hint("check that gitlab.url points at a GitLab server")
    })
}

impl GitLab {
    pub fn new(s: &Settings) -> Result<GitLab> {
        let url = s.url.clone().ok_or_else(|| {
            XoneError::gate("no GitLab server is configured")
                .hint("set it with `xone config set gitlab.url https://gitlab.example.com` (or XONE_GITLAB_URL)")
        })?;
        let secret = s.token.as_ref().map(|t| Secret {
            header: if t.job { "JOB-TOKEN" } else { "PRIVATE-TOKEN" },
            value: t.value.clone(),
        });
        let api = Api::new("GitLab", &format!("{url}/api/v4"), secret, s.http.clone())?;
        Ok(GitLab {
            api,
            url,
            timeout: s.http.timeout,
            token: s.token.clone(),
            mirrors: s.mirrors.clone(),
            workspace: s.workspace.clone(),
        })
    }

    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    fn project_path(r: &Repo) -> String {
        let id = r.remote_id.map(|i| i.to_string()).unwrap_or_else(|| encode(&r.location));
        format!("/projects/{id}")
    }

    /// `GET /version`: the server's version, which also proves it is GitLab.
    pub fn version(&self) -> Result<String> {
        let v = self.api.get("/version")?;
        str_field(&v, "version", "GET /version")
    }

    /// `GET /user`: who the token belongs to.
    /// Who the token acts for: `GET /user`, or for a CI job token (which may not read
    /// `/user`) the user of the job it belongs to, `GET /job`.
    pub fn current_user(&self) -> Result<Value> {
        match &self.token {
            None => Err(XoneError::gate("no GitLab token is set").hint(
                "log in with `xone auth login`, or set XONE_GITLAB_TOKEN (inside GitLab CI, CI_JOB_TOKEN is used)",
            )),
            Some(t) if t.job => {
                let job = self.api.get("/job")?;
                let mut user = job.get("user").cloned().unwrap_or_else(|| json!({}));
                if user.get("username").is_none() {
                    let login = std::env::var("GITLAB_USER_LOGIN").unwrap_or_else(|_| "ci-job".into());
                    user = json!({ "username": login });
                }
                Ok(user)
            }
            Some(_) => self.api.get("/user"),
        }
    }

    /// `GET /personal_access_tokens/self`: the token's name, scopes and expiry, where the
    /// token is a personal one (a job token has none of these).
    pub fn token_info(&self) -> Result<Option<Value>> {
        if self.token.as_ref().is_none_or(|t| t.job) {
            return Ok(None);
        }
        let reply = self.api.call(Method::GET, "/personal_access_tokens/self", None, &[404])?;
        if reply.status == 404 {
            return Ok(None);
        }
        reply.json().map(Some)
    }

    fn info(&self, p: &Value, endpoint: &str) -> Result<RepoInfo> {
        let path = str_field(p, "path_with_namespace", endpoint)?;
        let default_branch =
            p.get("default_branch").and_then(Value::as_str).unwrap_or("main").to_string();
        Ok(RepoInfo {
            name: path.rsplit('/').next().unwrap_or(&path).to_string(),
            kind: RepoKind::Gitlab,
            default_branch,
            bare: false,
            remote_id: p.get("id").and_then(Value::as_i64),
            clone_url: Some(str_field(p, "http_url_to_repo", endpoint)?),
            web_url: p.get("web_url").and_then(Value::as_str).map(str::to_string),
            location: path,
        })
    }

    /// Resolves `gitlab:group/sub/name`, a numeric id, or a URL on this server.
    pub fn describe(&self, spec: &str) -> Result<RepoInfo> {
        let path = match spec.strip_prefix("gitlab:") {
            Some(p) => p.trim_matches('/').trim_end_matches(".git").to_string(),
            None => path_on_server(spec, &self.url).ok_or_else(|| {
                XoneError::usage(format!("{spec} is not a project on {}", self.url))
                    .hint("give gitlab:group/name, or the project's URL on that server")
            })?,
        };
        if path.is_empty() {
            return Err(XoneError::usage(format!("'{spec}' names no GitLab project"))
                .hint("give gitlab:group/name"));
        }
        let id =
            if path.bytes().all(|b| b.is_ascii_digit()) { path.clone() } else { encode(&path) };
        let endpoint = format!("/projects/{id}");
        let reply = self.api.call(Method::GET, &endpoint, None, &[404])?;
        if reply.status == 404 {
            return Err(XoneError::not_found(format!(
                "GitLab has no project {path} at {}",
                self.url
            ))
            .hint("check the path (group/sub/name) and that the token may read it"));
        }
        self.info(&reply.json()?, &format!("GET {endpoint}"))
    }

    /// Creates a project named `name` in `namespace` (a group's full path) and describes it.
    pub fn create_project(&self, namespace: &str, name: &str) -> Result<RepoInfo> {
        let valid = !name.is_empty()
            && !name.starts_with(['-', '.'])
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(XoneError::usage(format!("'{name}' cannot be a GitLab project's path"))
                .hint("use letters, digits, '-', '_' and '.', not starting with '-' or '.'"));
        }
        let ns_endpoint = format!("/namespaces/{}", encode(namespace));
        let reply = self.api.call(Method::GET, &ns_endpoint, None, &[404])?;
        if reply.status == 404 {
            return Err(XoneError::not_found(format!("GitLab has no namespace {namespace}"))
                .hint("set an existing group with `xone config set gitlab.namespace GROUP`"));
        }
        let ns_id = reply.json()?.get("id").and_then(Value::as_i64).ok_or_else(|| {
            XoneError::new(Kind::Remote, format!("GitLab's answer to GET {ns_endpoint} has no id"))
        })?;
        let body = json!({
            "name": name,
            "path": name,
            "namespace_id": ns_id,
            "initialize_with_readme": true,
        });
        let reply = self.api.call(Method::POST, "/projects", Some(&body), &[400])?;
        if reply.status == 400 {
            return Err(XoneError::conflict(format!(
                "GitLab did not create {namespace}/{name}: {}",
                reply.message()
            ))
            .hint(format!("link the existing one with --repo gitlab:{namespace}/{name}")));
        }
        self.info(&reply.json()?, "POST /projects")
    }

    fn branch(&self, r: &Repo, branch: &str) -> Result<Option<Value>> {
        let endpoint = format!("{}/repository/branches/{}", Self::project_path(r), encode(branch));
        let reply = self.api.call(Method::GET, &endpoint, None, &[404])?;
        if reply.status == 404 {
            // Tell a missing branch from a missing project.
            if reply.message().contains("Project") {
                return Err(self.project_gone(r));
            }
            return Ok(None);
        }
        reply.json().map(Some)
    }

    fn project_gone(&self, r: &Repo) -> XoneError {
        XoneError::not_found(format!("GitLab project {} ({}) is not there", r.location, r.name))
            .hint("check that it was not moved or deleted and that the token may read it; `xone project repo remove` unlinks it")
    }

    /// The commits of `to` that `from` lacks (GitLab's compare: `from...to`), oldest first.
    fn compare(&self, r: &Repo, from: &str, to: &str) -> Result<Option<Vec<Value>>> {
        let endpoint = format!(
            "{}/repository/compare?from={}&to={}",
            Self::project_path(r),
            encode(from),
            encode(to)
        );
        let reply = self.api.call(Method::GET, &endpoint, None, &[404])?;
        if reply.status == 404 {
            return Ok(None);
        }
        let v = reply.json()?;
        Ok(Some(v.get("commits").and_then(Value::as_array).cloned().unwrap_or_default()))
    }

    /// The merge base of two refs; `None` when they share no history or one is missing.
    fn merge_base(&self, r: &Repo, a: &str, b: &str) -> Result<Option<String>> {
        let endpoint = format!(
            "{}/repository/merge_base?refs[]={}&refs[]={}",
            Self::project_path(r),
            encode(a),
            encode(b)
        );
        let reply = self.api.call(Method::GET, &endpoint, None, &[400, 404])?;
        if reply.status != 200 {
            return Ok(None);
        }
        Ok(reply.json()?.get("id").and_then(Value::as_str).map(str::to_string))
    }

    fn find_mr(&self, r: &Repo, branch: &str, base: &str) -> Result<Option<Value>> {
        let endpoint = format!(
            "{}/merge_requests?source_branch={}&target_branch={}&state=all&with_merge_status_recheck=true",
            Self::project_path(r),
            encode(branch),
            encode(base)
        );
        let mut all = self.api.get_all(&endpoint)?;
        // A fork's merge request may share the branch name: only this project's own count.
        if let Some(id) = r.remote_id {
            all.retain(|m| {
                m.get("source_project_id").and_then(Value::as_i64).is_none_or(|p| p == id)
            });
        }
        // The open one if there is one, else the newest merged (GitLab lists newest first).
        let open = all.iter().find(|m| m.get("state").and_then(Value::as_str) == Some("opened"));
        Ok(open
            .or_else(|| {
                all.iter().find(|m| m.get("state").and_then(Value::as_str) == Some("merged"))
            })
            .cloned())
    }

    // ---- git over HTTP ---------------------------------------------------------------------

    /// The git program for a clone, fetch or push: the user's own git (their proxies, CA
    /// certificates, credential helpers) with the token, if any, in an HTTP header passed
    /// through the environment (never the command line, never a stored config), no prompts,
    /// and a stalled transfer given up after `remote.timeout`.
    fn git(&self) -> std::process::Command {
        use base64::Engine as _;
        let mut c = std::process::Command::new("git");
        c.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_HTTP_LOW_SPEED_LIMIT", "1")
            .env("GIT_HTTP_LOW_SPEED_TIME", self.timeout.as_secs().max(1).to_string())
            .stdin(std::process::Stdio::null());
        if let Some(t) = &self.token {
            let user = if t.job { "gitlab-ci-token" } else { "oauth2" };
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", t.value));
            // Added after any GIT_CONFIG_* settings the user or the CI job already has.
            let n: usize =
                std::env::var("GIT_CONFIG_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            c.env("GIT_CONFIG_COUNT", (n + 1).to_string())
                .env(format!("GIT_CONFIG_KEY_{n}"), "http.extraHeader")
                .env(format!("GIT_CONFIG_VALUE_{n}"), format!("Authorization: Basic {basic}"));
        }
        c
    }

    /// Runs git; a failure is exit 6 with git's own words, the token kept out of them.
    fn run_git(&self, r: &Repo, what: &str, mut c: std::process::Command) -> Result<String> {
        let out = c.output().map_err(|e| {
            XoneError::gate("git cannot be run").cause(e).hint("install git (apt-get install git)")
        })?;
        let stderr = self.api.redact(&String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            return Ok(stderr);
        }
        Err(self.git_error(r, what, &stderr))
    }

    fn git_error(&self, r: &Repo, what: &str, stderr: &str) -> XoneError {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(4)..].join(" / ");
        let auth = ["Authentication failed", "401", "403", "could not read Username", "denied"]
            .iter()
            .any(|w| stderr.contains(w));
        let err = XoneError::new(Kind::Remote, format!("{what} {} over git failed", r.location))
            .cause(tail);
        if auth {
            err.hint("check the token and its scopes (read_repository, write_repository): `xone auth status`")
        } else {
            err.hint(format!("check that {} is reachable and retry", self.url))
        }
    }

    fn clone_url(&self, r: &Repo) -> Result<String> {
        r.clone_url.clone().ok_or_else(|| {
            XoneError::gate(format!("{} has no clone URL recorded", r.name))
                .hint("link it again: `xone project repo remove` then `repo add gitlab:PATH`")
        })
    }

    /// The repository's bare mirror under the state directory, fetched up to date: every
    /// branch of the server as a local branch, pruned.
    /// The mirror is a cache: one left broken (an interrupted fetch's lock files, a damaged
    /// object) is thrown away and fetched anew.
    pub fn mirror(&self, r: &Repo) -> Result<Repository> {
        let host = self.url.split("://").nth(1).unwrap_or("gitlab").replace([':', '/'], "_");
        let dir = self.mirrors.join(host).join(format!("{}.git", r.location));
        match self.fetch_mirror(r, &dir) {
            Ok(repo) => Ok(repo),
            Err((e, network)) if network => Err(e),
            Err(_) => {
                let _ = std::fs::remove_dir_all(&dir);
                self.fetch_mirror(r, &dir).map_err(|(e, _)| e)
            }
        }
    }

    /// Opens (or makes) the mirror and fetches every branch; a failure says whether the
    /// network was at fault (worth reporting) or the mirror (worth rebuilding).
    fn fetch_mirror(
        &self,
        r: &Repo,
        dir: &Path,
    ) -> std::result::Result<Repository, (XoneError, bool)> {
        let local = |e: git2::Error| (XoneError::from(e), false);
        let repo = match Repository::open_bare(dir) {
            Ok(repo) => repo,
            Err(_) => {
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir).map_err(|e| (XoneError::from(e), false))?;
                Repository::init_bare(dir).map_err(local)?
            }
        };
        let url = self.clone_url(r).map_err(|e| (e, true))?;
        let mut c = self.git();
        c.arg("-C").arg(dir).args(["fetch", "--quiet", "--prune", "--no-tags", &url]);
        c.arg("+refs/heads/*:refs/heads/*");
        if let Err(e) = self.run_git(r, "fetching", c) {
            // A mirror git cannot even read is rebuilt; a server that fails is reported.
            let local_fault = e.causes.iter().any(|c| {
                // git's network errors say "unable to access": not the mirror's fault.
                ["not a git repository", "corrupt", ".lock", "bad object", "loose object"]
                    .iter()
                    .any(|w| c.contains(w))
            });
            return Err((e, !local_fault));
        }
        Ok(repo)
    }

    /// Pushes `new` to `branch` only if the server's branch is still `old` (`None`: absent):
    /// git's `--force-with-lease` checks what the server advertises, and the server checks
    /// the old tip again when it takes the update.
    fn push_with_lease(
        &self,
        repo: &Repository,
        r: &Repo,
        branch: &str,
        new: Oid,
        old: Option<Oid>,
    ) -> Result<()> {
        let refname = format!("refs/heads/{branch}");
        let url = self.clone_url(r)?;
        let lease = format!(
            "--force-with-lease={refname}:{}",
            old.map(|o| o.to_string()).unwrap_or_default()
        );
        let mut c = self.git();
        c.arg("-C").arg(repo.path()).args(["push", "--porcelain", &lease, &url]);
        c.arg(format!("{new}:{refname}"));
        let out = c.output().map_err(|e| {
            XoneError::gate("git cannot be run").cause(e).hint("install git (apt-get install git)")
        })?;
        if !out.status.success() {
            let text = self.api.redact(&format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
            // The lease lost (here or on the server): a concurrent change. Anything else (a
            // protected branch, a hook) will refuse again, and says so.
            let stale = ["stale info", "failed to update ref", "cannot lock ref", "fetch first"];
            let rejected = text.lines().find(|l| l.starts_with('!')).map(str::to_string);
            if stale.iter().any(|w| text.contains(w)) {
                return Err(XoneError::conflict(format!(
                    "{branch} in {} moved while xone was working on it",
                    r.name
                ))
                .cause(rejected.unwrap_or_else(|| text.trim().to_string()))
                .hint("run the command again"));
            }
            if let Some(line) = rejected {
                let detail: Vec<&str> = text
                    .lines()
                    .filter(|l| l.starts_with("remote:") || l.starts_with("error:"))
                    .collect();
                return Err(XoneError::new(
                    Kind::Remote,
                    format!("GitLab refused the update of {branch} in {}", r.name),
                )
                .cause(line)
                .cause(detail.join(" / "))
                .hint(format!(
                    "{branch} may be protected against force pushes: allow it for the account of the token, or change branch.integration"
                )));
            }
            return Err(self.git_error(r, "pushing to", &text));
        }
        repo.reference(&refname, new, true, "xone: pushed")?;
        Ok(())
    }

    /// A repository as the local forge sees its mirror.
    fn as_mirror(r: &Repo, repo: &Repository) -> Repo {
        Repo { location: repo.path().to_string_lossy().into_owned(), ..r.clone() }
    }

    fn work_tree(&self, r: &Repo) -> PathBuf {
        self.workspace.join(&r.location)
    }
}

impl Forge for GitLab {
    fn describe(&self, location: &str) -> Result<RepoInfo> {
        GitLab::describe(self, location)
    }

    fn create_branch(&self, r: &Repo, branch: &str, from: &str) -> Result<Outcome> {
        let endpoint = format!("{}/repository/branches", Self::project_path(r));
        let body = json!({ "branch": branch, "ref": from });
        // POST is not repeated blindly: after a failure that may have taken effect, look.
        let mut last_error = None;
        for _ in 0..=1 {
            match self.api.call(Method::POST, &endpoint, Some(&body), &[400, 404]) {
                Ok(reply) if reply.status == 404 => return Err(self.project_gone(r)),
                Ok(reply) if reply.status == 400 => {
                    let message = reply.message();
                    if message.contains("Branch name is invalid") {
                        return Err(XoneError::usage(format!(
                            "GitLab does not accept {branch} as a branch name in {}",
                            r.name
                        ))
                        .cause(message));
                    }
                    if !message.contains("already exists") {
                        return Err(XoneError::not_found(format!(
                            "{} cannot start {branch} from '{from}'",
                            r.name
                        ))
                        .cause(message)
                        .hint("name an existing branch, tag or commit with --from"));
                    }
                    return self.existing_branch(r, branch, from);
                }
                Ok(reply) => {
                    let v = reply.json()?;
                    let sha = v.pointer("/commit/id").and_then(Value::as_str).unwrap_or_default();
                    let at = sha.get(..7).unwrap_or(sha);
                    return Ok(Outcome::Done(format!("created {branch} from {from} at {at}")));
                }
                Err(e) if e.kind == Kind::Remote => {
                    // It may have been made before the answer was lost: look before acting.
                    if let Ok(Some(_)) = self.branch(r, branch) {
                        return match self.existing_branch(r, branch, from)? {
                            Outcome::Already(d) => Ok(Outcome::Done(format!("created: {d}"))),
                            other => Ok(other),
                        };
                    }
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| XoneError::internal("branch create gave no answer")))
    }

    fn branches(&self, r: &Repo, prefix: &str) -> Result<Vec<String>> {
        // `^term` finds the branches that begin with it; pages of 100 to the end.
        let endpoint = format!(
            "{}/repository/branches?search={}",
            Self::project_path(r),
            encode(&format!("^{prefix}"))
        );
        let all = self.api.get_all(&endpoint)?;
        Ok(all
            .iter()
            .filter_map(|b| b["name"].as_str())
            .filter(|n| n.starts_with(prefix))
            .map(str::to_string)
            .collect())
    }

    fn branch_state(&self, r: &Repo, branch: &str, base: &str) -> Result<Option<BranchState>> {
        let Some(b) = self.branch(r, branch)? else {
            return Ok(None);
        };
        let sha = str_field(&b["commit"], "id", "GET branch")?;
        let ahead = self.compare(r, base, branch)?.map(|c| c.len()).unwrap_or(0);
        let behind = self.compare(r, branch, base)?.map(|c| c.len()).unwrap_or(0);
        Ok(Some(BranchState { sha, ahead, behind }))
    }

    fn checkout(&self, r: &Repo, branch: &str) -> Result<Outcome> {
        let dir = self.work_tree(r);
        let url = self.clone_url(r)?;
        let (repo, cloned) = match Repository::open(&dir) {
            Ok(repo) => {
                let mut c = self.git();
                c.arg("-C").arg(&dir).args(["fetch", "--quiet", "origin"]);
                self.run_git(r, "fetching", c)?;
                (repo, false)
            }
            Err(_) => {
                forge_local::ensure_empty(&dir, "move it away, or set workspace.dir elsewhere")?;
                // Cloned beside its place and moved in whole: an interrupted clone leaves
                // nothing the next run trips over.
                let partial = dir.with_file_name(format!(
                    ".{}.xone-partial",
                    dir.file_name().and_then(|n| n.to_str()).unwrap_or("clone")
                ));
                let _ = std::fs::remove_dir_all(&partial);
                if let Some(parent) = partial.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut c = self.git();
                c.args(["clone", "--quiet", &url]).arg(&partial);
                if let Err(e) = self.run_git(r, "cloning", c) {
                    let _ = std::fs::remove_dir_all(&partial);
                    return Err(e);
                }
                let _ = std::fs::remove_dir(&dir);
                std::fs::rename(&partial, &dir)?;
                (Repository::open(&dir)?, true)
            }
        };
        if repo.find_branch(branch, BranchType::Local).is_err() {
            let remote = repo
                .find_branch(&format!("origin/{branch}"), BranchType::Remote)
                .map_err(|_| {
                    XoneError::not_found(format!("{} has no branch {branch} on GitLab", r.name))
                        .hint("create it with `xone branch create KEY`")
                })?;
            let commit = remote.get().peel_to_commit()?;
            let mut local = repo.branch(branch, &commit, false)?;
            local.set_upstream(Some(&format!("origin/{branch}")))?;
        }
        let local = Repo { location: dir.to_string_lossy().into_owned(), ..r.clone() };
        let outcome = LocalForge.checkout(&local, branch)?;
        Ok(match (cloned, outcome) {
            (true, _) => {
                Outcome::Done(format!("cloned into {} and checked out {branch}", dir.display()))
            }
            (false, o) => o,
        })
    }

    fn delete_branch(&self, r: &Repo, branch: &str, base: &str, force: bool) -> Result<Outcome> {
        let Some(b) = self.branch(r, branch)? else {
            return Ok(Outcome::Already(format!("{branch} does not exist")));
        };
        let sha = str_field(&b["commit"], "id", "GET branch")?;
        let ahead = self.compare(r, base, branch)?.map(|c| c.len()).unwrap_or(0);
        if ahead > 0 && !force {
            return Err(XoneError::gate(format!(
                "{branch} in {} has {ahead} commit(s) not merged into {base}",
                r.name
            ))
            .hint("merge them first, or pass --force to delete them"));
        }
        let endpoint = format!("{}/repository/branches/{}", Self::project_path(r), encode(branch));
        let reply = self.api.call(Method::DELETE, &endpoint, None, &[404])?;
        if reply.status == 404 {
            return Ok(Outcome::Already(format!("{branch} does not exist")));
        }
        Ok(Outcome::Done(format!("deleted {branch} (was {})", sha.get(..7).unwrap_or(&sha))))
    }

    fn integrate(
        &self,
        r: &Repo,
        target: &str,
        base: &str,
        features: &[Feature],
    ) -> Result<Integration> {
        let repo = self.mirror(r)?;
        let plan = plan_integration(&repo, &Self::as_mirror(r, &repo), target, base, features)?;
        if plan.integration.moved {
            self.push_with_lease(&repo, r, target, plan.new, plan.old)?;
        }
        Ok(plan.integration)
    }

    fn sync(&self, r: &Repo, branch: &str, base: &str, rebase: bool) -> Result<Outcome> {
        let repo = self.mirror(r)?;
        let Some((old, new)) = plan_sync(&repo, &Self::as_mirror(r, &repo), branch, base, rebase)?
        else {
            return Ok(Outcome::Already(format!("{branch} already has everything in {base}")));
        };
        self.push_with_lease(&repo, r, branch, new, Some(old))?;
        let how = if rebase { "rebased onto" } else { "merged" };
        Ok(Outcome::Done(format!("{how} {base}: {branch} is now at {}", short(new))))
    }

    fn commits(&self, r: &Repo, branch: &str, base: &str, limit: usize) -> Result<Vec<CommitInfo>> {
        let Some(list) = self.compare(r, base, branch)? else {
            return Ok(Vec::new());
        };
        let with_id = list.iter().rev().filter(|c| c.get("id").and_then(Value::as_str).is_some());
        Ok(with_id.take(limit).map(commit_info).collect())
    }

    fn contains(&self, r: &Repo, container: &str, sha: &str) -> Result<bool> {
        Ok(self.merge_base(r, container, sha)?.is_some_and(|b| b == sha))
    }

    fn merge_request(
        &self,
        r: &Repo,
        branch: &str,
        base: &str,
        text: &MrText,
    ) -> Result<MergeRequest> {
        let commits = match self.compare(r, base, branch)? {
            Some(c) => c.len(),
            None => {
                return Err(XoneError::not_found(format!("{} has no branch {branch}", r.name))
                    .hint("create it with `xone branch create KEY`"))
            }
        };
        let existing = self.find_mr(r, branch, base)?;
        // Work pushed after a merge needs a merge request of its own.
        let merged = |m: &Value| m.get("state").and_then(Value::as_str) == Some("merged");
        let existing = existing.filter(|m| !(merged(m) && commits > 0));
        let mr = match existing {
            Some(mr) => mr,
            None if commits == 0 => {
                return Ok(MergeRequest {
                    state: "empty".into(),
                    mergeable: false,
                    conflicts: vec![],
                    commits,
                    url: None,
                    status: None,
                    opened: false,
                })
            }
            None => {
                let mr = self.open_mr(r, branch, base, text)?;
                let mut view = self.view(r, branch, base, &mr, commits)?;
                view.opened = true;
                return Ok(view);
            }
        };
        self.view(r, branch, base, &mr, commits)
    }

    fn find_merge_request(&self, r: &Repo, branch: &str, base: &str) -> Result<Option<MrSummary>> {
        Ok(self.find_mr(r, branch, base)?.map(|mr| MrSummary {
            state: mr_state(&mr),
            url: mr.get("web_url").and_then(Value::as_str).map(str::to_string),
        }))
    }

    fn merge(&self, r: &Repo, branch: &str, base: &str, text: &MrText) -> Result<Outcome> {
        let view = self.merge_request(r, branch, base, text)?;
        match view.state.as_str() {
            "merged" => {
                return Ok(Outcome::Already(format!("{branch} is already merged into {base}")))
            }
            "empty" => {
                return Ok(Outcome::Already(format!(
                    "{branch} has nothing to merge: it has no commits that {base} lacks"
                )))
            }
            _ => {}
        }
        let mut mr = self.find_mr(r, branch, base)?.ok_or_else(|| {
            XoneError::conflict(format!("the merge request of {branch} in {} went away", r.name))
                .hint("run the command again")
        })?;
        let iid = mr.get("iid").and_then(Value::as_i64).unwrap_or_default();
        let mut view = view;
        // GitLab works mergeability out in the background: wait for its answer a little.
        for pause in [200, 400, 800, 1600, 3200] {
            if !matches!(view.status.as_deref(), Some(s) if CHECKING.contains(&s)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(pause));
            let endpoint = format!("{}/merge_requests/{iid}", Self::project_path(r));
            mr = self.api.get(&endpoint)?;
            view = self.view(r, branch, base, &mr, view.commits)?;
        }
        if !view.mergeable {
            let what = format!("!{iid} ({branch} into {base}) in {} cannot be merged", r.name);
            if view.conflicts.is_empty() && mr.get("has_conflicts") != Some(&Value::Bool(true)) {
                let status = view.status.clone().unwrap_or_else(|| "unknown".into());
                return Err(XoneError::gate(format!("{what} yet: GitLab says {status}"))
                    .hint("see the merge request's page for what it waits on (pipeline, approvals, draft, discussions)"));
            }
            let mut err = XoneError::conflict(what);
            if !view.conflicts.is_empty() {
                err = err.cause(format!("conflicting files: {}", view.conflicts.join(", ")));
            }
            return Err(err.hint(format!(
                "bring {base} into the branch (xone branch sync) and resolve first"
            )));
        }
        let sha = mr.get("sha").and_then(Value::as_str).unwrap_or_default();
        let endpoint = format!("{}/merge_requests/{iid}/merge", Self::project_path(r));
        let body = json!({ "sha": sha });
        // Merging may take effect even when the answer is lost: sent once, then checked.
        let sent = self.api.call_once(Method::PUT, &endpoint, Some(&body), &[405, 406, 409, 422]);
        let refused = match sent {
            Ok(reply) if reply.status < 300 => {
                let merged = reply.json()?;
                let at = merged.get("merge_commit_sha").and_then(Value::as_str).unwrap_or("");
                return Ok(Outcome::Done(format!(
                    "merged !{iid} into {base} at {}",
                    at.get(..7).unwrap_or(at)
                )));
            }
            Ok(reply) => Some((reply.status, reply.message())),
            Err(e) if e.kind == Kind::Remote => {
                // Did it happen? Ask before saying anything.
                let now = self.api.get(&format!("{}/merge_requests/{iid}", Self::project_path(r)));
                match now {
                    Ok(m) if m.get("state").and_then(Value::as_str) == Some("merged") => {
                        let at = m.get("merge_commit_sha").and_then(Value::as_str).unwrap_or("");
                        return Ok(Outcome::Done(format!(
                            "merged !{iid} into {base} at {} (confirmed after: {})",
                            at.get(..7).unwrap_or(at),
                            e.message
                        )));
                    }
                    _ => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let (status, message) = refused.unwrap_or_default();
        // GitLab answers 405, 406 or 422 for several reasons: its merge request says which.
        let now = self.api.get(&format!("{}/merge_requests/{iid}", Self::project_path(r)))?;
        if now.get("state").and_then(Value::as_str) == Some("merged") {
            return Ok(Outcome::Already(format!("!{iid} is already merged into {base}")));
        }
        if status == 409 {
            return Err(XoneError::conflict(format!(
                "{branch} in {} moved while xone was merging it",
                r.name
            ))
            .cause(message)
            .hint("run the command again"));
        }
        if now.get("has_conflicts") == Some(&Value::Bool(true)) {
            return Err(XoneError::conflict(format!(
                "!{iid} ({branch} into {base}) in {} has conflicts",
                r.name
            ))
            .cause(message)
            .hint(format!("bring {base} into the branch (xone branch sync) and resolve first")));
        }
        let detail = now.get("detailed_merge_status").and_then(Value::as_str).unwrap_or("unknown");
        Err(XoneError::gate(format!("GitLab will not merge !{iid} in {} yet: {detail}", r.name))
            .cause(format!("{status}: {message}"))
            .hint("see the merge request's page for what it waits on (approvals, pipeline, draft)"))
    }
}

impl GitLab {
    fn open_mr(&self, r: &Repo, branch: &str, base: &str, text: &MrText) -> Result<Value> {
        let endpoint = format!("{}/merge_requests", Self::project_path(r));
        let body = json!({
            "source_branch": branch,
            "target_branch": base,
            "title": text.title,
            "description": text.description,
            "labels": text.labels.join(","),
            "remove_source_branch": false,
        });
        match self.api.call(Method::POST, &endpoint, Some(&body), &[409]) {
            // 409: another run opened it meanwhile.
            Ok(reply) if reply.status == 409 => self.find_mr(r, branch, base)?.ok_or_else(|| {
                XoneError::conflict(format!("GitLab refused a merge request for {branch}"))
                    .cause(reply.message())
            }),
            Ok(reply) => reply.json(),
            // Check, then act: the first POST may have opened it.
            Err(e) if e.kind == Kind::Remote => match self.find_mr(r, branch, base)? {
                Some(mr) => Ok(mr),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    fn view(
        &self,
        r: &Repo,
        branch: &str,
        base: &str,
        mr: &Value,
        commits: usize,
    ) -> Result<MergeRequest> {
        let state = mr_state(mr);
        let detailed = mr.get("detailed_merge_status").and_then(Value::as_str);
        let status = mr.get("merge_status").and_then(Value::as_str);
        let has_conflicts = mr.get("has_conflicts").and_then(Value::as_bool).unwrap_or(false);
        let mergeable = state == "open"
            && !has_conflicts
            && (detailed == Some("mergeable")
                || (detailed.is_none() && status == Some("can_be_merged")));
        // GitLab says that it conflicts, not where: the mirror says where.
        let conflicts = if has_conflicts && state == "open" {
            let repo = self.mirror(r)?;
            forge_local::conflicts_between(&repo, &Self::as_mirror(r, &repo), branch, base)?
        } else {
            Vec::new()
        };
        Ok(MergeRequest {
            state,
            mergeable,
            conflicts,
            commits,
            url: mr.get("web_url").and_then(Value::as_str).map(str::to_string),
            status: detailed.or(status).map(str::to_string),
            opened: false,
        })
    }
}

/// Who the token belongs to, checked when it is stored.
pub fn username(user: &Value) -> String {
    user.get("username").and_then(Value::as_str).unwrap_or("?").to_string()
}

impl GitLab {
    /// The existing branch met by `branch create`: done if it shares history with `from`, a
    /// conflict (exit 5) if not.
    fn existing_branch(&self, r: &Repo, branch: &str, from: &str) -> Result<Outcome> {
        let sha = self
            .branch(r, branch)?
            .and_then(|b| b.pointer("/commit/id").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        match self.merge_base(r, branch, from)? {
            Some(_) => {
                Ok(Outcome::Already(format!("{branch} exists at {}", sha.get(..7).unwrap_or(&sha))))
            }
            None => Err(XoneError::conflict(format!(
                "{} already has a branch {branch} with unrelated history",
                r.name
            ))
            .hint("rename or delete that branch on GitLab, then run this again")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_line_up_by_stage_with_a_retried_job_in_its_stage() {
        let job = |id, stage: &str, name: &str| Job {
            id,
            name: name.into(),
            stage: stage.into(),
            status: "success".into(),
            allow_failure: false,
        };
        let names = |jobs: Vec<Job>| -> Vec<(String, i64)> {
            in_stage_order(jobs).into_iter().map(|j| (j.name, j.id)).collect()
        };
        // As GitLab lists them, newest first, retried attempts included: `unit` (test) ran
        // at 6 and again at 9 after `push` (deploy); `compile`, a stage's only job, ran at 5
        // and again at 10.
        let jobs = vec![
            job(10, "build", "compile"),
            job(9, "test", "unit"),
            job(8, "deploy", "push"),
            job(7, "test", "lint"),
            job(6, "test", "unit"),
            job(5, "build", "compile"),
        ];
        let want = [("compile", 10), ("unit", 9), ("lint", 7), ("push", 8)];
        let want: Vec<(String, i64)> = want.iter().map(|(n, i)| (n.to_string(), *i)).collect();
        assert_eq!(names(jobs), want);
    }

    #[test]
    fn urls_on_the_server() {
        let base = "https://gitlab.example.com";
        assert_eq!(
            path_on_server("https://gitlab.example.com/pay/web", base).as_deref(),
            Some("pay/web")
        );
        assert_eq!(
            path_on_server("https://gitlab.example.com/pay/sub/api.git", base).as_deref(),
            Some("pay/sub/api")
        );
        assert_eq!(
            path_on_server("https://gitlab.example.com/pay/web/-/tree/main", base).as_deref(),
            Some("pay/web")
        );
        assert_eq!(
            path_on_server("git@gitlab.example.com:pay/web.git", base).as_deref(),
            Some("pay/web")
        );
        assert_eq!(path_on_server("https://github.com/pay/web", base), None);
        assert_eq!(path_on_server("/home/me/web", base), None);
        assert!(is_gitlab_spec("gitlab:pay/web", None));
        assert!(!is_gitlab_spec("./web", Some(base)));
    }
}

/// A pipeline's state as GitLab reports it.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub id: i64,
    /// created, waiting_for_resource, preparing, pending, running, success, failed, canceled,
    /// skipped, manual, scheduled
    pub status: String,
    pub sha: String,
    pub web_url: Option<String>,
    /// Percent, as the pipeline's jobs reported it; `None` when none did.
    pub coverage: Option<f64>,
}

/// One job of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub stage: String,
    pub status: String,
    /// A failure that does not fail the pipeline.
    pub allow_failure: bool,
}

impl Pipeline {
    pub fn finished(&self) -> bool {
        // `manual`: it waits for a person to start a job, and xone stops following it.
        matches!(self.status.as_str(), "success" | "failed" | "canceled" | "skipped" | "manual")
    }
    /// Whether a runner has taken it up yet.
    pub fn started(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "created" | "waiting_for_resource" | "preparing" | "pending"
        )
    }
}

/// A pipeline's jobs (every attempt) as its page shows them: by stage, a stage ranking by its
/// oldest attempt of any job; within a stage by each job's first attempt; each job once, by
/// its latest attempt.
fn in_stage_order(mut attempts: Vec<Job>) -> Vec<Job> {
    attempts.sort_by_key(|j| j.id);
    let mut stages: Vec<String> = Vec::new();
    // (stage rank, first attempt's id, latest attempt)
    let mut jobs: Vec<(usize, i64, Job)> = Vec::new();
    for j in attempts {
        let rank = match stages.iter().position(|s| *s == j.stage) {
            Some(r) => r,
            None => {
                stages.push(j.stage.clone());
                stages.len() - 1
            }
        };
        match jobs.iter_mut().find(|(_, _, seen)| seen.name == j.name) {
            Some(slot) => slot.2 = j,
            None => jobs.push((rank, j.id, j)),
        }
    }
    jobs.sort_by_key(|(rank, first, _)| (*rank, *first));
    jobs.into_iter().map(|(_, _, j)| j).collect()
}

fn pipeline_of(v: &Value, endpoint: &str) -> Result<Pipeline> {
    let id = v.get("id").and_then(Value::as_i64).ok_or_else(|| {
        XoneError::new(Kind::Remote, format!("GitLab's answer to {endpoint} has no pipeline id"))
    })?;
    // GitLab sends coverage as a string ("87.50"), sometimes as a number, or null.
    let coverage = match v.get("coverage") {
        Some(Value::String(s)) => s.parse::<f64>().ok(),
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    Ok(Pipeline {
        id,
        status: v.get("status").and_then(Value::as_str).unwrap_or("created").to_string(),
        sha: v.get("sha").and_then(Value::as_str).unwrap_or_default().to_string(),
        web_url: v.get("web_url").and_then(Value::as_str).map(str::to_string),
        coverage,
    })
}

impl GitLab {
    /// The commit a ref of the repository points at on GitLab; a missing ref is exit 3.
    pub fn commit_of(&self, r: &Repo, git_ref: &str) -> Result<String> {
        let endpoint = format!("{}/repository/commits/{}", Self::project_path(r), encode(git_ref));
        let reply = self.api.call(Method::GET, &endpoint, None, &[404])?;
        if reply.status == 404 {
            return Err(XoneError::not_found(format!("{} has no ref {git_ref} on GitLab", r.name))
                .hint("push it first, or name an existing branch, tag or commit"));
        }
        str_field(&reply.json()?, "id", "GET commit")
    }

    /// The newest pipeline of `git_ref`, if any.
    fn newest_pipeline(&self, r: &Repo, git_ref: &str) -> Result<Option<Pipeline>> {
        let endpoint = format!(
            "{}/pipelines?ref={}&order_by=id&sort=desc&per_page=1",
            Self::project_path(r),
            encode(git_ref)
        );
        let list = self.api.get(&endpoint)?;
        match list.as_array().and_then(|a| a.first()) {
            Some(p) => pipeline_of(p, "GET pipelines").map(Some),
            None => Ok(None),
        }
    }

    /// Starts a pipeline on `git_ref`: `POST /pipeline` with a personal token, the trigger
    /// API with a CI job token. A start whose answer was lost is looked for before another.
    pub fn create_pipeline(&self, r: &Repo, git_ref: &str, sha: &str) -> Result<Pipeline> {
        let job = self.token.as_ref().is_some_and(|t| t.job);
        // A job token may trigger but not list pipelines: then there is nothing to compare.
        let before = if job { None } else { self.newest_pipeline(r, git_ref)?.map(|p| p.id) };
        let (endpoint, body) = if job {
            let token = self.token.as_ref().map(|t| t.value.clone()).unwrap_or_default();
            (
                format!("{}/trigger/pipeline", Self::project_path(r)),
                json!({ "ref": git_ref, "token": token }),
            )
        } else {
            (format!("{}/pipeline", Self::project_path(r)), json!({ "ref": git_ref }))
        };
        match self.api.call(Method::POST, &endpoint, Some(&body), &[400]) {
            // The ref was found a moment ago: a refusal now is about the CI configuration.
            Ok(reply) if reply.status == 400 => Err(XoneError::gate(format!(
                "GitLab did not start a pipeline on {git_ref} in {}",
                r.name
            ))
            .cause(reply.message())
            .hint("check the project's .gitlab-ci.yml (and its workflow rules) for this ref")),
            Ok(reply) => pipeline_of(&reply.json()?, "POST pipeline"),
            // Only a new pipeline of this very commit is taken for the one asked for.
            Err(e) if e.kind == Kind::Remote && !job => match self.newest_pipeline(r, git_ref)? {
                Some(p) if Some(p.id) != before && p.sha == sha => Ok(p),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    pub fn pipeline(&self, r: &Repo, id: i64) -> Result<Pipeline> {
        let endpoint = format!("{}/pipelines/{id}", Self::project_path(r));
        pipeline_of(&self.api.get(&endpoint)?, "GET pipeline")
    }

    /// A pipeline's jobs in stage order, as its page shows them, each by its latest attempt.
    /// GitLab lists them newest first (since 13.5) and says nothing of stage order; a
    /// pipeline's jobs are created stage by stage, so a stage ranks by its oldest job,
    /// retried ones included (`include_retried`), and a retried job stays in its stage.
    pub fn jobs(&self, r: &Repo, pipeline: i64) -> Result<Vec<Job>> {
        let endpoint =
            format!("{}/pipelines/{pipeline}/jobs?include_retried=true", Self::project_path(r));
        let s =
            |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let jobs: Vec<Job> = self
            .api
            .get_all(&endpoint)?
            .iter()
            .map(|j| Job {
                id: j.get("id").and_then(Value::as_i64).unwrap_or_default(),
                name: s(j, "name"),
                stage: s(j, "stage"),
                status: s(j, "status"),
                allow_failure: j.get("allow_failure").and_then(Value::as_bool).unwrap_or(false),
            })
            .collect();
        Ok(in_stage_order(jobs))
    }

    /// A job's log (its trace), as text.
    pub fn trace(&self, r: &Repo, job: i64) -> Result<String> {
        let endpoint = format!("{}/jobs/{job}/trace", Self::project_path(r));
        let reply = self.api.call(Method::GET, &endpoint, None, &[])?;
        Ok(String::from_utf8_lossy(&reply.body).into_owned())
    }

    /// The pipeline's unit test report: totals and the names of failing tests.
    pub fn test_report(&self, r: &Repo, pipeline: i64) -> Result<crate::store::Tests> {
        let endpoint = format!("{}/pipelines/{pipeline}/test_report", Self::project_path(r));
        let v = self.api.get(&endpoint)?;
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let mut failures = Vec::new();
        for suite in v.get("test_suites").and_then(Value::as_array).into_iter().flatten() {
            for case in suite.get("test_cases").and_then(Value::as_array).into_iter().flatten() {
                let status = case.get("status").and_then(Value::as_str).unwrap_or_default();
                if matches!(status, "failed" | "error") {
                    let name = case.get("name").and_then(Value::as_str).unwrap_or("?");
                    let class = case.get("classname").and_then(Value::as_str).unwrap_or_default();
                    failures.push(if class.is_empty() {
                        name.to_string()
                    } else {
                        format!("{class}::{name}")
                    });
                }
            }
        }
        Ok(crate::store::Tests {
            total: n("total_count"),
            passed: n("success_count"),
            failed: n("failed_count") + n("error_count"),
            skipped: n("skipped_count"),
            failures,
        })
    }
}
