//! One module per command group: clap `Args` beside a thin handler that loads, asks the
//! domain, stores and reports.

pub mod app;
pub mod auth;
pub mod branch;
pub mod build;
pub mod complete;
pub mod deploy;
pub mod env;
pub mod hook;
pub mod project;
pub mod quickstart;
pub mod requirement;
pub mod review;
pub mod setup;
pub mod watch;

use crate::adapters::{gitlab, http, Forges, Outcome};
use crate::cli::{Cli, Command};
use crate::config::{self, Config};
use crate::domain::names::check_user;
use crate::store::Store;
use crate::ui::{Kind, Result, Ui, XoneError};

/// What every command may need, each part made only when first asked for: `xone completion`
/// never reads the config, `xone man` never opens the database.
pub struct Ctx {
    pub ui: Ui,
    config: Option<Config>,
    actor: Option<String>,
}

impl Ctx {
    pub fn new(ui: Ui) -> Ctx {
        Ctx { ui, config: None, actor: None }
    }

    pub fn config(&mut self) -> Result<&Config> {
        if self.config.is_none() {
            self.config = Some(Config::load()?);
        }
        Ok(self.config.as_ref().expect("loaded above"))
    }

    /// How every remote system is reached: `remote.timeout`, `remote.retries`, and whether
    /// each request is logged (`--verbose`, `XONE_LOG=debug`).
    pub fn remote(&mut self) -> Result<http::Settings> {
        let verbose = self.ui.verbose
            || std::env::var("XONE_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("debug"));
        let cfg = self.config()?;
        Ok(http::Settings {
            timeout: cfg.duration("remote.timeout").max(std::time::Duration::from_secs(1)),
            retries: cfg.int("remote.retries").unwrap_or(3) as u32,
            verbose,
        })
    }

    /// The forges, configured from the settings: `gitlab.url`, the token (SPEC §5) and the
    /// remote-call limits.
    pub fn forges(&mut self) -> Result<Forges> {
        let http = self.remote()?;
        let cfg = self.config()?;
        let workspace = cfg
            .str("workspace.dir")
            .map(|d| match d.strip_prefix("~/") {
                Some(rest) => config::home_dir().join(rest),
                None => std::path::PathBuf::from(d),
            })
            .unwrap_or_else(|| config::home_dir().join("xone"));
        let settings = gitlab::Settings {
            url: cfg.str("gitlab.url").map(str::to_string),
            token: gitlab::find_token(cfg),
            http,
            mirrors: config::state_dir().join("mirrors"),
            workspace,
        };
        Ok(Forges::new(settings))
    }

    pub fn store(&mut self) -> Result<Store> {
        self.config()?;
        Store::open(&config::state_dir())
    }

    /// Who acts (SPEC §5): XONE_USER or config user.name, else GitLab CI's user, the local
    /// part of git's user.email, $USER. A name set on purpose must be valid; a derived one
    /// that is not (`jane doe`) gives way to the next source.
    pub fn actor(&mut self) -> Result<String> {
        if let Some(a) = &self.actor {
            return Ok(a.clone());
        }
        let configured = self
            .config()?
            .get("user.name")?
            .map(|e| (e.value.as_str().unwrap_or_default().to_string(), e.origin.clone()));
        let actor = match configured {
            Some((name, origin)) => check_user(&name).map_err(|e| {
                let place = match origin {
                    crate::config::Origin::Env => "XONE_USER".to_string(),
                    _ => "user.name in the configuration".to_string(),
                };
                XoneError::usage(format!("the acting user set by {place} is not valid"))
                    .cause(e)
                    .hint("set a short login-like name: xone config set user.name alice")
            })?,
            None => {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let git_email = || {
                    let email = git2::Config::open_default().ok()?.get_string("user.email").ok()?;
                    email.split('@').next().map(str::to_string)
                };
                let derived = [
                    env("GITLAB_CI").and_then(|_| env("GITLAB_USER_LOGIN")),
                    git_email(),
                    env("USER"),
                ];
                derived
                    .into_iter()
                    .flatten()
                    .find(|n| check_user(n).is_ok())
                    .unwrap_or_else(|| "unknown".to_string())
            }
        };
        self.actor = Some(actor.clone());
        Ok(actor)
    }
}

pub fn dispatch(cx: &mut Ctx, cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => setup::init(cx, a),
        Command::Config(c) => setup::config(cx, c),
        Command::Project(c) => project::run(cx, c),
        Command::Requirement(c) => requirement::run(cx, c),
        Command::Review(c) => review::run(cx, c),
        Command::Branch(c) => branch::run(cx, c),
        Command::Hook(c) => hook::run(cx, c),
        Command::Auth(c) => auth::run(cx, c),
        Command::Build(a) => build::run(cx, a),
        Command::Deploy(a) => deploy::run(cx, a),
        Command::Rollback(a) => deploy::rollback(cx, a),
        Command::Doctor(a) => auth::doctor(cx, a),
        Command::Completion(a) => setup::completion(cx, a),
        Command::Man(a) => setup::man(cx, a),
        Command::Quickstart(a) => quickstart::run(cx, a),
    }
}

/// How many repositories are worked on at once: most of the time is spent waiting on a
/// server, so the bound is about politeness to it, not about cores.
const FAN_OUT: usize = 32;

/// Runs `f` on every item at once (at most `FAN_OUT` at a time), keeping the items' order in
/// the results: repositories are independent, so one slow one does not hold up the rest.
pub fn fan_out<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(FAN_OUT) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|item| s.spawn(|| f(item))).collect();
            for h in handles {
                results.push(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
        });
    }
    results
}

/// `fan_out` with progress on stderr: on a terminal one live indicatif line per repository;
/// elsewhere one line per repository as it finishes, so a CI log shows where time goes.
pub fn fan_out_shown<T: Sync, R: Send>(
    ui: &Ui,
    what: &str,
    items: &[T],
    label: impl Fn(&T) -> String + Sync,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let live = ui.stderr_tty && !ui.json;
    let multi = MultiProgress::with_draw_target(if live {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bars: Vec<ProgressBar> = items
        .iter()
        .map(|item| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(label(item));
            bar.set_message(format!("{what}…"));
            if live {
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
            }
            bar
        })
        .collect();
    let finished = AtomicUsize::new(0);
    let indexed: Vec<(usize, &T)> = items.iter().enumerate().collect();
    fan_out(&indexed, |(i, item)| {
        let result = f(item);
        let state = match &result {
            Ok(_) => "finished".to_string(),
            Err(e) => format!("failed: {}", e.message),
        };
        let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
        if live {
            bars[*i].finish_with_message(state);
        } else {
            ui.status(format!("[{n}/{}] {} {what}: {state}", items.len(), label(item)));
        }
        result
    })
}

/// The result of one operation in a fan-out across repositories.
#[derive(serde::Serialize)]
pub struct RepoReport {
    pub repo: String,
    pub status: &'static str,
    pub detail: String,
    #[serde(skip)]
    pub error: Option<XoneError>,
}

impl RepoReport {
    pub fn new(repo: &str, result: Result<Outcome>) -> RepoReport {
        let (status, detail, error) = match result {
            Ok(Outcome::Done(d)) => ("done", d, None),
            Ok(Outcome::Already(d)) => ("unchanged", d, None),
            Ok(Outcome::Skipped(d)) => ("skipped", d, None),
            Err(e) => {
                let mut d = e.message.clone();
                for c in &e.causes {
                    d.push_str(": ");
                    d.push_str(c);
                }
                ("failed", d, Some(e))
            }
        };
        RepoReport { repo: repo.to_string(), status, detail, error }
    }
}

/// Prints one line (or one JSON entry) per repository, then fails with the most telling
/// error if any repository failed; the others' work stands.
pub fn report_repos(cx: &mut Ctx, what: &str, reports: Vec<RepoReport>) -> Result<()> {
    if cx.ui.json {
        cx.ui.print_json(&reports)?;
    } else {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                let status = match r.status {
                    "done" => cx.ui.green(r.status),
                    "failed" => cx.ui.red(r.status),
                    s => cx.ui.dim(s),
                };
                vec![r.repo.clone(), status, r.detail.clone()]
            })
            .collect();
        write!(cx.ui.out(), "{}", crate::ui::table(&rows)).map_err(XoneError::from)?;
    }
    fail_if_any(what, reports)
}

/// Fails with the most telling error if any repository failed (a conflict before the rest);
/// the others' work stands.
pub fn fail_if_any(what: &str, reports: Vec<RepoReport>) -> Result<()> {
    let failed: Vec<&RepoReport> = reports.iter().filter(|r| r.error.is_some()).collect();
    let Some(first) = failed.first() else {
        return Ok(());
    };
    let kind = failed
        .iter()
        .filter_map(|r| r.error.as_ref())
        .map(|e| e.kind)
        .find(|k| *k == Kind::Conflict)
        .unwrap_or(first.error.as_ref().map(|e| e.kind).unwrap_or(Kind::Internal));
    let mut err = XoneError::new(
        kind,
        format!("{what} failed in {} of {} repositories", failed.len(), reports.len()),
    );
    for r in &failed {
        err = err.cause(format!("{}: {}", r.repo, r.detail));
        if let Some(e) = &r.error {
            for h in &e.hints {
                err = err.hint(h.clone());
            }
        }
    }
    Err(err.hint("running the same command again finishes what is left"))
}
