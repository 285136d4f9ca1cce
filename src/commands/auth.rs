//! `xone auth`: the GitLab token, stored in the user's config (mode 0600) or taken from the
//! environment, and `xone doctor`: can xone reach what it is configured to use?

use std::io::Read;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use crate::adapters::gitlab::{self, GitLab};
use crate::adapters::jira;
use crate::config;
use crate::ui::{safe_table, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Store a GitLab token (or with `jira`, a Jira token) in the user config, checked first
    #[command(after_long_help = "\
On a terminal the token is asked for without echo; elsewhere pass it on stdin with \
--token-stdin. A GitLab token is checked with GET /user before it is stored, a Jira token with \
GET /myself (jira.url names the server; for Jira Cloud, jira.user is the account's email and \
the token an API token; for Server and Data Center, a personal access token). Tokens are kept \
in the user config file with mode 0600. XONE_GITLAB_TOKEN, GITLAB_TOKEN, CI_JOB_TOKEN and \
XONE_JIRA_TOKEN need no login.")]
    Login(LoginArgs),
    /// Who the tokens belong to, where they come from, their scopes and expiry
    #[command(
        after_long_help = "Exit 4 when no server or token is set, 6 when GitLab or Jira refuses the token. Shows GitLab's user, Jira's (with its deployment and version) when jira.url is set, and xone's acting user (which signs events and sign-offs). JSON: {\"system\", \"url\", \"token_source\", \"user\", \"name\", \"scopes\", \"expires_at\", \"actor\", \"actor_origin\", \"jira\": {\"system\", \"url\", \"deployment\": server|cloud, \"version\", \"deployment_type\", \"user\", \"name\", \"email\", \"token_source\"} or null}; with Jira alone, the jira object"
    )]
    Status,
    /// Remove the stored token (GitLab's, or with `jira`, Jira's) from the user config
    Logout {
        /// Which system's token
        #[arg(value_enum, default_value = "gitlab")]
        system: System,
    },
}

/// A system xone logs in to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    Gitlab,
    Jira,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Which system to log in to
    #[arg(value_enum, default_value = "gitlab")]
    pub system: System,
    /// The server (stored as gitlab.url, or jira.url, in the user config)
    #[arg(long, value_name = "URL", value_parser = config::check_url)]
    pub url: Option<String>,
    /// Read the token from standard input
    #[arg(long)]
    pub token_stdin: bool,
}

pub fn run(cx: &mut Ctx, cmd: AuthCommand) -> Result<()> {
    match cmd {
        AuthCommand::Login(a) if a.system == System::Jira => login_jira(cx, a),
        AuthCommand::Login(a) => login(cx, a),
        AuthCommand::Status => status(cx),
        AuthCommand::Logout { system: System::Jira } => logout_jira(cx),
        AuthCommand::Logout { system: System::Gitlab } => logout(cx),
    }
}

/// The token `auth login` was given: on stdin, else asked for without echo.
fn read_token(cx: &Ctx, a: &LoginArgs, prompt: &str) -> Result<String> {
    let token = if a.token_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text.trim().to_string()
    } else {
        match cx.ui.ask_secret(prompt)? {
            Some(t) => t.trim().to_string(),
            None => {
                return Err(XoneError::usage("no token given")
                    .hint("pass it on stdin: xone auth login --token-stdin < token-file"))
            }
        }
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(XoneError::usage("the token is empty or has spaces in it")
            .hint("copy the whole token, without spaces or line breaks"));
    }
    Ok(token)
}

fn login_jira(cx: &mut Ctx, a: LoginArgs) -> Result<()> {
    let mut settings = cx.jira()?;
    let user_file = cx.config()?.user_file.clone();
    let url = a.url.clone().or_else(|| settings.url.clone()).ok_or_else(|| {
        XoneError::gate("no Jira server to log in to")
            .hint("name it: xone auth login jira --url https://jira.example.com")
    })?;
    let kind = if settings.user.is_some() { "API token" } else { "personal access token" };
    let token = read_token(cx, &a, &format!("Jira {kind} for {url}"))?;
    // Checked before it is stored: a wrong token is never saved.
    settings.url = Some(url.clone());
    settings.token = Some(jira::Token { value: token.clone(), source: "login".into() });
    let client = jira::Jira::new(&settings)?;
    let me = client.myself()?;
    if a.url.is_some() {
        config::Config::set_in_file(&user_file, "jira.url", &url)?;
    }
    config::set_secret(&user_file, "jira", "token", Some(&token))?;
    if cx.ui.json {
        return cx.ui.print_json(&serde_json::json!({
            "url": url, "user": me.id, "deployment": client.deployment,
        }));
    }
    cx.ui.status(format!(
        "logged in to {} at {url} as {}; the token is in {}",
        client.deployment,
        me.id,
        user_file.display()
    ));
    if std::env::var("XONE_JIRA_TOKEN").is_ok_and(|v| !v.is_empty()) {
        cx.ui.warn("XONE_JIRA_TOKEN is set and is used before the stored token");
    }
    Ok(())
}

fn logout_jira(cx: &mut Ctx) -> Result<()> {
    let user_file = cx.config()?.user_file.clone();
    if config::set_secret(&user_file, "jira", "token", None)? {
        cx.ui.status(format!("removed the Jira token from {}", user_file.display()));
    } else {
        cx.ui.status("no Jira token was stored; nothing to remove");
    }
    if std::env::var("XONE_JIRA_TOKEN").is_ok_and(|v| !v.is_empty()) {
        cx.ui.warn("XONE_JIRA_TOKEN is still set in the environment and is still used");
    }
    Ok(())
}

/// Jira's part of `auth status`.
#[derive(Serialize)]
struct JiraStatus {
    system: &'static str,
    url: String,
    deployment: jira::Deployment,
    version: Option<String>,
    deployment_type: Option<String>,
    user: String,
    name: Option<String>,
    email: Option<String>,
    token_source: String,
}

fn jira_status(s: &jira::Settings) -> Result<JiraStatus> {
    let client = jira::Jira::new(s)?;
    let info = client.server_info()?;
    let me = client.myself()?;
    Ok(JiraStatus {
        system: "jira",
        url: client.url.clone(),
        deployment: client.deployment,
        version: info.version,
        deployment_type: info.deployment_type,
        user: me.id,
        name: me.display_name,
        email: me.email,
        token_source: s.token.as_ref().map(|t| t.source.clone()).unwrap_or_default(),
    })
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
    let token = read_token(cx, &a, &format!("GitLab token for {url} (scope api)"))?;
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
    /// Who xone signs records with on this machine, and where the name comes from.
    actor: String,
    actor_origin: &'static str,
    jira: Option<JiraStatus>,
}

fn status(cx: &mut Ctx) -> Result<()> {
    let who = cx.identity()?;
    let jira_settings = cx.jira()?;
    let forges = cx.forges()?;
    let gl = match forges.gitlab() {
        Ok(gl) => gl,
        // Jira alone.
        Err(e) if e.kind == crate::ui::Kind::Gate && jira_settings.url.is_some() => {
            let j = jira_status(&jira_settings)?;
            if cx.ui.json {
                return cx.ui.print_json(&j);
            }
            let mut rows = jira_rows(&j);
            rows.push(vec![
                "acting user".to_string(),
                format!("{} (from {})", who.name, who.place),
            ]);
            write!(cx.ui.out(), "{}", safe_table(&rows))?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
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
        actor: who.name.clone(),
        actor_origin: who.origin,
        jira: match jira_settings.url {
            Some(_) => Some(jira_status(&jira_settings)?),
            None => None,
        },
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
    if let Some(j) = &out.jira {
        rows.extend(jira_rows(j));
    }
    rows.push(vec!["acting user".to_string(), format!("{} (from {})", who.name, who.place)]);
    write!(cx.ui.out(), "{}", safe_table(&rows))?;
    Ok(())
}

fn jira_rows(j: &JiraStatus) -> Vec<Vec<String>> {
    let version = j.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    vec![
        vec!["jira".to_string(), format!("{} ({}{version})", j.url, j.deployment)],
        vec![
            "jira user".to_string(),
            format!("{} ({})", j.user, j.name.clone().unwrap_or_default()),
        ],
        vec!["jira token from".to_string(), j.token_source.clone()],
    ]
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
