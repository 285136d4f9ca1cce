//! `xone auth`: the GitLab token, stored in the user's config (mode 0600) or taken from the
//! environment, and `xone doctor`: can xone reach what it is configured to use?

use std::io::Read;
use std::time::Instant;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use crate::adapters::gitlab::{self, GitLab};
use crate::config;
use crate::ui::{table, Kind, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Store a GitLab token in the user config (checked against the server first)
    #[command(after_long_help = "\
On a terminal the token is asked for without echo; elsewhere pass it on stdin with \
--token-stdin. The token is checked with GET /user before it is stored, in the user config \
file with mode 0600. XONE_GITLAB_TOKEN, GITLAB_TOKEN and CI_JOB_TOKEN need no login.")]
    Login(LoginArgs),
    /// Who the token belongs to, where it comes from, its scopes and expiry
    #[command(
        after_long_help = "Exit 4 when no server or token is set, 6 when GitLab refuses the token. JSON: {\"system\", \"url\", \"token_source\", \"user\", \"name\", \"scopes\", \"expires_at\"}"
    )]
    Status,
    /// Remove the stored token from the user config
    Logout,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The GitLab server (stored as gitlab.url in the user config)
    #[arg(long, value_name = "URL", value_parser = config::check_url)]
    pub url: Option<String>,
    /// Read the token from standard input
    #[arg(long)]
    pub token_stdin: bool,
}

pub fn run(cx: &mut Ctx, cmd: AuthCommand) -> Result<()> {
    match cmd {
        AuthCommand::Login(a) => login(cx, a),
        AuthCommand::Status => status(cx),
        AuthCommand::Logout => logout(cx),
    }
}

fn login(cx: &mut Ctx, a: LoginArgs) -> Result<()> {
    let cfg = cx.config()?;
    let user_file = cfg.user_file.clone();
    let url = match a.url.clone().or_else(|| cfg.str("gitlab.url").map(str::to_string)) {
        Some(u) => u,
        None => {
            return Err(XoneError::gate("no GitLab server to log in to")
                .hint("name it: xone auth login --url https://gitlab.example.com"))
        }
    };
    let token = if a.token_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text.trim().to_string()
    } else {
        match cx.ui.ask_secret(&format!("GitLab token for {url} (scope api)"))? {
            Some(t) => t.trim().to_string(),
            None => {
                return Err(XoneError::usage("no token given")
                    .hint("pass it on stdin: xone auth login --token-stdin < token-file"))
            }
        }
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(XoneError::usage("the token is empty or has spaces in it")
            .hint("copy the whole token (GitLab: User settings > Access tokens)"));
    }
    // Checked before it is stored: a wrong token is never saved.
    let mut settings = cx.forges()?.gitlab_settings().clone();
    settings.url = Some(url.clone());
    settings.token =
        Some(gitlab::Token { value: token.clone(), source: "login".into(), job: false });
    let user = GitLab::new(&settings)?.current_user()?;
    if a.url.is_some() {
        config::Config::set_in_file(&user_file, "gitlab.url", &url)?;
    }
    config::set_secret(&user_file, "gitlab", "token", Some(&token))?;
    let who = gitlab::username(&user);
    if cx.ui.json {
        return cx.ui.print_json(&serde_json::json!({ "url": url, "user": who }));
    }
    cx.ui.status(format!("logged in to {url} as {who}; the token is in {}", user_file.display()));
    for var in ["XONE_GITLAB_TOKEN", "GITLAB_TOKEN"] {
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            cx.ui.warn(format!("{var} is set and is used before the stored token"));
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct AuthStatus {
    system: &'static str,
    url: String,
    token_source: String,
    user: String,
    name: Option<String>,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
}

fn status(cx: &mut Ctx) -> Result<()> {
    let forges = cx.forges()?;
    let gl = forges.gitlab()?;
    let token = gl.token().cloned().ok_or_else(|| {
        XoneError::gate(format!("not logged in to {}", gl.url)).hint(
            "log in with `xone auth login`, or set XONE_GITLAB_TOKEN (CI_JOB_TOKEN inside GitLab CI)",
        )
    })?;
    let user = gl.current_user()?;
    let info = gl.token_info()?;
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        Some(v?.as_array()?.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
    };
    let out = AuthStatus {
        system: "gitlab",
        url: gl.url.clone(),
        token_source: token.source.clone(),
        user: gitlab::username(&user),
        name: user.get("name").and_then(Value::as_str).map(str::to_string),
        scopes: strings(info.as_ref().and_then(|i| i.get("scopes"))),
        expires_at: info
            .as_ref()
            .and_then(|i| i.get("expires_at"))
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    if cx.ui.json {
        return cx.ui.print_json(&out);
    }
    let mut rows = vec![
        vec!["server".to_string(), out.url.clone()],
        vec![
            "user".to_string(),
            format!("{} ({})", out.user, out.name.clone().unwrap_or_default()),
        ],
        vec!["token from".to_string(), out.token_source.clone()],
    ];
    if let Some(scopes) = &out.scopes {
        rows.push(vec!["scopes".to_string(), scopes.join(", ")]);
    }
    rows.push(vec![
        "expires".to_string(),
        out.expires_at.clone().unwrap_or_else(|| "never".to_string()),
    ]);
    write!(cx.ui.out(), "{}", table(&rows))?;
    Ok(())
}

fn logout(cx: &mut Ctx) -> Result<()> {
    let user_file = cx.config()?.user_file.clone();
    let removed = config::set_secret(&user_file, "gitlab", "token", None)?;
    if removed {
        cx.ui.status(format!("removed the GitLab token from {}", user_file.display()));
    } else {
        cx.ui.status("no GitLab token was stored; nothing to remove");
    }
    for var in ["XONE_GITLAB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"] {
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            cx.ui.warn(format!("{var} is still set in the environment and is still used"));
        }
    }
    Ok(())
}

/// One line of `xone doctor`.
#[derive(Serialize)]
struct Check {
    system: &'static str,
    target: String,
    /// ok | failed | not configured
    status: &'static str,
    version: Option<String>,
    user: Option<String>,
    latency_ms: Option<u64>,
    detail: String,
}

#[derive(Args, Debug)]
#[command(after_long_help = "\
Checks every configured system: the state database, GitLab (reachability, version, whose \
token, latency), the Docker engine (DOCKER_HOST or the default socket), and each environment's \
Kubernetes context and namespace and Prometheus. Exit 6 when a configured remote system fails. \
JSON: [{\"system\", \"target\", \"status\": ok|failed|not configured, \"version\", \"user\", \"latency_ms\", \"detail\"}]")]
pub struct DoctorArgs {}

pub fn doctor(cx: &mut Ctx, _a: DoctorArgs) -> Result<()> {
    let mut checks = Vec::new();
    let db = config::state_dir().join(crate::store::FILE_NAME);
    checks.push(match cx.store() {
        Ok(_) => Check {
            system: "state",
            target: db.display().to_string(),
            status: "ok",
            version: None,
            user: None,
            latency_ms: None,
            detail: "SQLite, readable and at the current schema".into(),
        },
        Err(e) => Check {
            system: "state",
            target: db.display().to_string(),
            status: "failed",
            version: None,
            user: None,
            latency_ms: None,
            detail: one_line(&e),
        },
    });
    let forges = cx.forges()?;
    checks.push(match forges.gitlab() {
        Err(e) if e.kind == Kind::Gate => Check {
            system: "gitlab",
            target: "-".into(),
            status: "not configured",
            version: None,
            user: None,
            latency_ms: None,
            detail: "the local forge serves local repositories; set gitlab.url for GitLab".into(),
        },
        Err(e) => failed("gitlab", "-".into(), &e),
        Ok(gl) => {
            let started = Instant::now();
            match gl.version() {
                // GitLab answers /version only to a token: answering at all shows it is up.
                Err(e) if gl.token().is_none() && e.is(crate::ui::Tag::Refused) => Check {
                    system: "gitlab",
                    target: gl.url.clone(),
                    status: "failed",
                    version: None,
                    user: None,
                    latency_ms: Some(started.elapsed().as_millis() as u64),
                    detail:
                        "reachable, but no token is set: `xone auth login` or XONE_GITLAB_TOKEN"
                            .into(),
                },
                Err(e) => failed("gitlab", gl.url.clone(), &e),
                Ok(version) => {
                    let latency = started.elapsed().as_millis() as u64;
                    let (user, detail, status) = match gl.current_user() {
                        Ok(u) => {
                            let source = gl.token().map(|t| t.source.clone()).unwrap_or_default();
                            (Some(gitlab::username(&u)), format!("token from {source}"), "ok")
                        }
                        Err(e) => (None, one_line(&e), "failed"),
                    };
                    Check {
                        system: "gitlab",
                        target: gl.url.clone(),
                        status,
                        version: Some(version),
                        user,
                        latency_ms: Some(latency),
                        detail,
                    }
                }
            }
        }
    });
    checks.push(docker_check());
    checks.extend(cluster_checks(cx)?);
    if cx.ui.json {
        cx.ui.print_json(&checks)?;
    } else {
        let mut rows =
            vec![vec!["SYSTEM".into(), "STATUS".into(), "TARGET".into(), "DETAIL".into()]];
        for c in &checks {
            let status = match c.status {
                "ok" => cx.ui.green("ok"),
                "failed" => cx.ui.red("failed"),
                s => cx.ui.dim(s),
            };
            let mut detail = c.detail.clone();
            if let Some(v) = &c.version {
                detail = format!("version {v}, {} ms; {detail}", c.latency_ms.unwrap_or(0));
            }
            if let Some(u) = &c.user {
                detail = format!("{detail}, user {u}");
            }
            rows.push(vec![c.system.into(), status, c.target.clone(), detail]);
        }
        write!(cx.ui.out(), "{}", table(&rows))?;
    }
    let bad: Vec<&Check> = checks.iter().filter(|c| c.status == "failed").collect();
    match bad.first() {
        None => Ok(()),
        Some(first) => {
            let kind = if first.system == "state" { Kind::Internal } else { Kind::Remote };
            Err(XoneError::new(kind, format!("{} of {} checks failed", bad.len(), checks.len()))
                .cause(format!("{}: {}", first.system, first.detail)))
        }
    }
}

/// Each environment's cluster (once per context and namespace) and Prometheus.
fn cluster_checks(cx: &mut Ctx) -> Result<Vec<Check>> {
    let Ok(store) = cx.store() else { return Ok(Vec::new()) };
    let mut envs = Vec::new();
    for p in crate::store::projects(store.conn(), false)? {
        let key: crate::domain::ProjectKey = p.key.parse().map_err(XoneError::internal)?;
        envs.extend(crate::store::envs(store.conn(), &key)?);
    }
    drop(store);
    let mut checks = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for env in &envs {
        if !seen.insert((env.context.clone(), env.namespace.clone())) {
            continue;
        }
        let target = format!("{}/{}", env.context, env.namespace);
        let started = Instant::now();
        let checked = cx.remote().and_then(|remote| {
            let cl = crate::ops::target::connect(env, remote)?;
            let v = cl.version()?;
            let ns = cl.namespace_exists()?;
            Ok((v, ns, cl.server.clone()))
        });
        checks.push(match checked {
            Ok((version, ns, server)) => Check {
                system: "kubernetes",
                target,
                status: "ok",
                version: Some(version),
                user: None,
                latency_ms: Some(started.elapsed().as_millis() as u64),
                detail: if ns {
                    format!("{server}, namespace present ({} {})", env.project, env.name)
                } else {
                    format!(
                        "{server}, namespace missing: deploy --create-namespace ({} {})",
                        env.project, env.name
                    )
                },
            },
            Err(e) => failed("kubernetes", target, &e),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for url in envs.iter().filter_map(|e| e.prometheus.clone()) {
        if !seen.insert(url.clone()) {
            continue;
        }
        let started = Instant::now();
        // A check answers once: a retried failure would only make doctor slower.
        let settings = crate::adapters::http::Settings { retries: 0, ..cx.remote()? };
        let asked = crate::adapters::prometheus::Prometheus::new(&url, settings)
            .and_then(|p| p.query("vector(1)"));
        checks.push(match asked {
            Ok(_) => Check {
                system: "prometheus",
                target: url,
                status: "ok",
                version: None,
                user: None,
                latency_ms: Some(started.elapsed().as_millis() as u64),
                detail: "answers queries".into(),
            },
            Err(e) => failed("prometheus", url, &e),
        });
    }
    Ok(checks)
}

/// The Docker engine builds use: configured when DOCKER_HOST is set or the default socket
/// exists.
fn docker_check() -> Check {
    let host = crate::adapters::docker::engine_address();
    let configured = std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty())
        || std::path::Path::new("/var/run/docker.sock").exists();
    if !configured {
        return Check {
            system: "docker",
            target: host,
            status: "not configured",
            version: None,
            user: None,
            latency_ms: None,
            detail: "no engine at the default socket and no DOCKER_HOST: local builds need one"
                .into(),
        };
    }
    let started = Instant::now();
    match crate::adapters::docker::Engine::connect().and_then(|e| e.version()) {
        Ok(v) => Check {
            system: "docker",
            target: host,
            status: "ok",
            version: Some(v),
            user: None,
            latency_ms: Some(started.elapsed().as_millis() as u64),
            detail: "the engine answers".into(),
        },
        Err(e) => failed("docker", host, &e),
    }
}

fn failed(system: &'static str, target: String, e: &XoneError) -> Check {
    Check {
        system,
        target,
        status: "failed",
        version: None,
        user: None,
        latency_ms: None,
        detail: one_line(e),
    }
}

fn one_line(e: &XoneError) -> String {
    let mut s = e.message.clone();
    for c in &e.causes {
        s.push_str(": ");
        s.push_str(c);
    }
    s
}
