//! `doctor`'s checks: every configured system asked once, how it answered and how fast.

use std::time::Instant;

use serde::Serialize;

use super::target;
use crate::adapters::prometheus::Prometheus;
use crate::adapters::{docker, gitlab, http, jira, Forges};
use crate::config;
use crate::domain::ProjectKey;
use crate::store::{self, Store};
use crate::ui::{Kind, Result, Tag, XoneError};

/// One line of `xone doctor`.
#[derive(Serialize)]
pub struct Check {
    pub system: &'static str,
    pub target: String,
    /// ok | failed | not configured
    pub status: &'static str,
    pub version: Option<String>,
    pub user: Option<String>,
    pub latency_ms: Option<u64>,
    pub detail: String,
}

/// Checks the state database (`store`, as it opened), GitLab, the Docker engine, and each
/// environment's cluster, namespace and Prometheus.
pub fn checks(
    store: Result<&Store>,
    forges: &Forges,
    jira: &jira::Settings,
    remote: &http::Settings,
) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let db = config::state_dir().join(store::FILE_NAME);
    checks.push(match &store {
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
            detail: one_line(e),
        },
    });
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
                Err(e) if gl.token().is_none() && e.is(Tag::Refused) => Check {
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
    checks.push(jira_check(jira));
    checks.push(docker_check());
    if let Ok(store) = store {
        checks.extend(cluster_checks(store, remote)?);
    }
    Ok(checks)
}

/// Each environment's cluster (once per context and namespace) and Prometheus.
/// Each notification target: whether its host takes a connection (nothing is posted).
pub fn notify_checks(hooks: &[crate::config::webhooks::Webhook]) -> Vec<Check> {
    hooks
        .iter()
        .map(|h| {
            let started = Instant::now();
            let asked = h.resolve_url().map_err(|e| e.message).and_then(|url| {
                crate::adapters::webhook::reachable(&url, std::time::Duration::from_secs(3))
            });
            let format = h.format;
            match asked {
                Ok(()) => Check {
                    system: "notify",
                    target: h.shown(),
                    status: "ok",
                    version: None,
                    user: None,
                    latency_ms: Some(started.elapsed().as_millis() as u64),
                    detail: format!(
                        "{format} target, reachable; `xone notify test` sends it a test event"
                    ),
                },
                Err(why) => Check {
                    system: "notify",
                    target: h.shown(),
                    status: "failed",
                    version: None,
                    user: None,
                    latency_ms: None,
                    detail: format!("{format} target: {why}"),
                },
            }
        })
        .collect()
}

fn cluster_checks(store: &Store, remote: &http::Settings) -> Result<Vec<Check>> {
    let mut envs = Vec::new();
    for p in store::projects(store.conn(), false)? {
        let key: ProjectKey = p.key.parse().map_err(XoneError::internal)?;
        envs.extend(store::envs(store.conn(), &key)?);
    }
    let mut checks = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for env in &envs {
        if !seen.insert((env.context.clone(), env.namespace.clone())) {
            continue;
        }
        let target = format!("{}/{}", env.context, env.namespace);
        let started = Instant::now();
        let checked = target::connect(env, remote.clone()).and_then(|cl| {
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
        let settings = http::Settings { retries: 0, ..remote.clone() };
        let asked = Prometheus::new(&url, settings).and_then(|p| p.query("vector(1)"));
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
/// Jira, when `jira.url` is set: reachable, its version and deployment, whose token.
fn jira_check(s: &jira::Settings) -> Check {
    let check = |status, target: String, detail: String| Check {
        system: "jira",
        target,
        status,
        version: None,
        user: None,
        latency_ms: None,
        detail,
    };
    let Some(url) = s.url.clone() else {
        return check(
            "not configured",
            "-".into(),
            "the built-in tracker keeps requirements; set jira.url for Jira".into(),
        );
    };
    let client = match jira::Jira::new(s) {
        Ok(c) => c,
        Err(e) => return check("failed", url, one_line(&e)),
    };
    let started = Instant::now();
    let info = match client.server_info() {
        Ok(i) => i,
        Err(e) => return failed("jira", url, &e),
    };
    let latency = started.elapsed().as_millis() as u64;
    let (user, status, detail) = match client.myself() {
        Ok(me) => (
            Some(me.id),
            "ok",
            format!(
                "{}, token from {}",
                client.deployment,
                s.token.as_ref().map(|t| t.source.as_str()).unwrap_or("-")
            ),
        ),
        Err(e) => (None, "failed", one_line(&e)),
    };
    Check {
        system: "jira",
        target: url,
        status,
        version: info.version,
        user,
        latency_ms: Some(latency),
        detail,
    }
}

fn docker_check() -> Check {
    let host = docker::engine_address();
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
    let engine = docker::Engine::connect();
    match engine.and_then(|e| Ok((e.version()?, e.builder()?))) {
        Ok((v, builder)) => Check {
            system: "docker",
            target: host,
            status: "ok",
            version: Some(v),
            user: None,
            latency_ms: Some(started.elapsed().as_millis() as u64),
            detail: match builder {
                docker::Builder::BuildKit => "the engine answers; images build with BuildKit",
                docker::Builder::Legacy => {
                    "the engine answers; images build with its legacy builder"
                }
            }
            .into(),
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
