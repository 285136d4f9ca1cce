//! `xone auth`: the GitLab token, stored in the user's config (mode 0600) or taken from the
//! environment, and `xone doctor`: can xone reach what it is configured to use?

use std::io::Read;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use crate::adapters::gitlab::{self, GitLab};
use crate::config;
use crate::ui::{safe_table, Result, XoneError};

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
        after_long_help = "Exit 4 when no server or token is set, 6 when GitLab refuses the token. Shows GitLab's user and xone's acting user (which signs events and sign-offs). JSON: {\"system\", \"url\", \"token_source\", \"user\", \"name\", \"scopes\", \"expires_at\", \"actor\", \"actor_origin\"}"
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
    /// Who xone signs records with on this machine, and where the name comes from.
    actor: String,
    actor_origin: &'static str,
}

fn status(cx: &mut Ctx) -> Result<()> {
    let who = cx.identity()?;
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
        actor: who.name.clone(),
        actor_origin: who.origin,
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
    rows.push(vec!["acting user".to_string(), format!("{} (from {})", who.name, who.place)]);
    write!(cx.ui.out(), "{}", safe_table(&rows))?;
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
