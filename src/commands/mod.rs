//! One module per command (a folder for a large group): its clap `Args` beside a thin handler
//! that opens what the work needs, hands it to `ops`, and reports what comes back.

pub mod auth;
pub mod branch;
pub mod build;
pub mod deploy;
pub mod doctor;
pub mod gray;
pub mod hook;
pub mod notify;
pub mod project;
pub mod quickstart;
pub mod requirement;
pub mod review;
pub mod rollback;
pub mod setup;
pub mod sync;

use clap::Args;
use clap_complete::ArgValueCandidates;

use crate::complete;

use crate::adapters::tracker::Tracker;
use crate::adapters::tracker_jira::Routed;
use crate::adapters::{gitlab, http, Forges};
use crate::config::{self, Config};
use crate::domain::names::check_user;
use crate::domain::ProjectKey;
use crate::ops::fan_out::{fail_if_any, RepoReport};
use crate::ops::Scope;
use crate::store::Store;
use crate::ui::{safe, Result, Ui, XoneError};

/// What every command may need, each part made only when first asked for: `xone completion`
/// never reads the config, `xone man` never opens the database.
pub struct Ctx {
    pub ui: Ui,
    /// The whole command tree, for completion scripts and manual pages.
    pub tree: fn() -> clap::Command,
    /// Runs one xone command line in this process (quickstart's steps).
    pub run_line: fn(&mut Ctx, &[&str]) -> Result<()>,
    config: Option<Config>,
    actor: Option<Identity>,
    queued: std::rc::Rc<std::cell::Cell<usize>>,
    /// Whether the command talks to remote systems (and so delivers what waits).
    remote_work: bool,
    /// A show or a list: it delivers nothing, whatever it settled on the way.
    read_only: bool,
}

impl Ctx {
    pub fn new(
        ui: Ui,
        tree: fn() -> clap::Command,
        run_line: fn(&mut Ctx, &[&str]) -> Result<()>,
    ) -> Ctx {
        Ctx {
            ui,
            tree,
            run_line,
            config: None,
            actor: None,
            queued: Default::default(),
            remote_work: false,
            read_only: false,
        }
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

    /// How Jira is reached: `jira.url`, `jira.user` and the token (`XONE_JIRA_TOKEN`, else
    /// the one `auth login jira` stored).
    pub fn jira(&mut self) -> Result<crate::adapters::jira::Settings> {
        let http = self.remote()?;
        Ok(crate::adapters::jira::Settings::from(self.config()?, http))
    }

    /// What an operation is lent: the settings, the remote-call limits and the `Ui`.
    pub fn scope(&mut self) -> Result<Scope<'_>> {
        let remote = self.remote()?;
        self.config()?;
        let config = self.config.as_ref().expect("loaded above");
        Ok(Scope { config, remote, ui: &self.ui })
    }

    /// Whether to follow a rollout: always, unless `--no-wait` (SPEC §6: a cron job or a
    /// script that forgot CI still gets the rollout's exit code and its automatic rollback).
    pub fn waits(&self, wait: bool, no_wait: bool) -> bool {
        wait || !no_wait
    }

    /// The reason `--reason` gave, else asked for on a terminal (`what` is asked: "Why
    /// {what}?"); elsewhere a missing or blank reason is exit 2.
    pub fn reason(&self, reason: Option<String>, what: &str) -> Result<String> {
        let reason = match reason {
            Some(r) => Some(r),
            None => self.ui.ask(&format!("Why {what}?"))?,
        };
        match reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()) {
            Some(r) => Ok(r),
            None => {
                Err(XoneError::usage(format!("{what} needs a reason")).hint("pass --reason \"…\""))
            }
        }
    }

    /// The project `-p` names, else the one whose repository the working directory is in.
    pub fn project_or_here(
        &mut self,
        store: &Store,
        named: Option<&ProjectKey>,
    ) -> Result<Option<ProjectKey>> {
        if let Some(p) = named {
            return Ok(Some(p.clone()));
        }
        let url = self.config()?.str("gitlab.url").map(str::to_string);
        let cwd = std::env::current_dir().unwrap_or_default();
        crate::ops::project::here(store, &cwd, url.as_deref())
    }

    /// The tracker requirements live in: per project, the built-in one (the state database
    /// itself) or Jira.
    /// Changes waiting for Jira are pushed first, in order: a command that changes
    /// requirements starts from what the team sees.
    pub fn tracker(&mut self) -> Result<Box<dyn Tracker>> {
        self.remote_work = true;
        let routed = Routed::new(self.jira()?, self.queued.clone());
        let mut store = self.store()?;
        let pushed = routed.push(&mut store)?;
        if pushed.pushed > 0 {
            self.ui.status(format!("pushed {} queued change(s) to Jira", pushed.pushed));
        }
        Ok(Box::new(routed))
    }

    /// Pushes the changes waiting for Jira, for a command that talks to remote systems but
    /// changes no requirement (a deploy, a build): what Jira will not take is said, and the
    /// command goes on.
    pub fn push_queued(&mut self) {
        if let Err(e) = self.tracker() {
            self.ui.warn(format!("changes waiting for Jira: {}", e.message));
        }
    }

    /// Links work done for a requirement (a build, a deployment, a gray release) in its
    /// tracker under `id`, which names that work on every machine, so that linking it again
    /// updates the link. Never fails the command: what the tracker will not take is said.
    pub fn link_work(
        &mut self,
        requirement: Option<&str>,
        id: &str,
        title: &str,
        url: Option<&str>,
    ) {
        let Some(Ok(key)) = requirement.map(str::parse::<crate::domain::RequirementKey>) else {
            return;
        };
        let made = (|| -> Result<()> {
            let routed = Routed::new(self.jira()?, self.queued.clone());
            let mut store = self.store()?;
            // A key from a cluster's record may be one from before the project moved to Jira.
            let Some(key) = crate::store::key_as_of(store.conn(), &key.to_string(), None)? else {
                return Ok(());
            };
            store.write(|tx| routed.link(tx, &key, id, title, url))
        })();
        if let Err(e) = made {
            self.ui.warn(format!("{key}: {title} is not linked in its tracker: {}", e.message));
        }
    }

    /// A deployment or rollback for a requirement, linked in its tracker: one link per app,
    /// environment and image, its title saying how it went.
    pub fn link_deploy(&mut self, d: &crate::store::Deploy) {
        let id = format!("xone:deploy:{}:{}:{}:{}", d.namespace, d.app, d.env, d.image);
        let title = format!(
            "{} of {} to {}: {} ({}{})",
            d.kind,
            d.app,
            d.env,
            d.image,
            d.status,
            d.revision.map(|r| format!(", revision {r}")).unwrap_or_default()
        );
        self.link_work(d.requirement.as_deref(), &id, &title, None);
    }

    /// How many changes this command queued for Jira because it could not be reached.
    pub fn queued(&self) -> usize {
        self.queued.get()
    }

    pub fn store(&mut self) -> Result<Store> {
        let busy = self.config()?.duration("state.busy_timeout");
        Store::open_waiting(&config::state_dir(), busy)
    }

    /// Marks the command as one that only shows: it delivers no notification.
    pub fn read_only(&mut self) {
        self.read_only = true;
    }

    /// Delivers the notifications this command made, and those waiting from before when it
    /// changed something or talked to a remote system; within `notify.timeout`, never
    /// failing: a target that did not take them is said, and they wait for the next command.
    /// A list, a show or a completion delivers nothing.
    pub fn deliver_notices(&mut self) {
        let first = crate::store::first_notice_written();
        if self.read_only || (first.is_none() && !self.remote_work) {
            return;
        }
        let done = (|| -> Result<Option<crate::ops::notify::Delivered>> {
            let cfg = self.config()?;
            let timeout = cfg.duration("notify.timeout");
            let hooks = cfg.webhooks.clone();
            // Another xone writing the database does not hold this one up past the timeout.
            let mut store = Store::open_waiting(&config::state_dir(), timeout)?;
            // A target seen for the first time starts with this command's own events.
            let mark = match first {
                Some(id) => id - 1,
                None => crate::store::last_notice(store.conn())?,
            };
            crate::ops::notify::deliver(&hooks, &mut store, mark, timeout).map(Some)
        })();
        match done {
            Ok(Some(d)) => {
                for f in d.failed {
                    self.ui.warn(format!(
                        "notification to {} not delivered ({}): {} event(s) wait for the next command; `xone notify status` lists them",
                        f.target, f.why, f.waiting
                    ));
                }
            }
            Ok(None) => {}
            Err(e) => self.ui.warn(format!("notifications not delivered: {}", e.message)),
        }
    }

    /// Who acts (SPEC §5): XONE_USER or config user.name, else GitLab CI's user, the local
    /// part of git's user.email, $USER. A name set on purpose must be valid; a derived one
    /// that is not (`jane doe`) gives way to the next source.
    pub fn actor(&mut self) -> Result<String> {
        Ok(self.identity()?.name)
    }

    /// Who acts, and where the name comes from.
    pub fn identity(&mut self) -> Result<Identity> {
        if let Some(a) = &self.actor {
            return Ok(a.clone());
        }
        let cfg = self.config()?;
        let configured = cfg
            .get("user.name")?
            .map(|e| (e.value.as_str().unwrap_or_default().to_string(), e.origin.clone()));
        let identity = match configured {
            Some((name, origin)) => {
                let (origin, place) = match origin {
                    crate::config::Origin::Env => ("env", "env:XONE_USER".to_string()),
                    crate::config::Origin::Project => (
                        "project",
                        format!("file:{}", cfg.project_file.clone().unwrap_or_default().display()),
                    ),
                    _ => ("user", format!("file:{}", cfg.user_file.display())),
                };
                let name = check_user(&name).map_err(|e| {
                    let by = if origin == "env" {
                        "XONE_USER"
                    } else {
                        "user.name in the configuration"
                    };
                    XoneError::usage(format!("the acting user set by {by} is not valid"))
                        .cause(e)
                        .hint("set a short login-like name: xone config set user.name alice")
                })?;
                Identity { name, origin, place }
            }
            None => {
                let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
                let git_email = || {
                    let email = git2::Config::open_default().ok()?.get_string("user.email").ok()?;
                    email.split('@').next().map(str::to_string)
                };
                let derived = [
                    (
                        env("GITLAB_CI").and_then(|_| env("GITLAB_USER_LOGIN")),
                        "gitlab-ci",
                        "env:GITLAB_USER_LOGIN",
                    ),
                    (git_email(), "git", "git:user.email"),
                    (env("USER"), "system", "env:USER"),
                ];
                derived
                    .into_iter()
                    .find_map(|(n, origin, place)| {
                        n.filter(|n| check_user(n).is_ok()).map(|name| Identity {
                            name,
                            origin,
                            place: place.to_string(),
                        })
                    })
                    .unwrap_or_else(|| Identity {
                        name: "unknown".to_string(),
                        origin: "unknown",
                        place: "none".to_string(),
                    })
            }
        };
        self.actor = Some(identity.clone());
        Ok(identity)
    }
}

/// The acting user and where the name comes from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Identity {
    #[serde(rename = "value")]
    pub name: String,
    /// env, user, project (set on purpose), gitlab-ci, git, system (derived), unknown
    pub origin: &'static str,
    /// As `git config --show-origin` says it: `env:XONE_USER`, `file:PATH`, `git:user.email`.
    #[serde(skip)]
    pub place: String,
}

/// Where: the environment, and the project when the app's name is not enough.
#[derive(Args, Debug, Clone)]
pub struct AtEnv {
    /// The environment (daily, test, gray, prod, …)
    #[arg(long, value_name = "ENV", add = ArgValueCandidates::new(complete::env_names))]
    pub env: Option<String>,
    /// The app's project (default: the only one with such an app)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
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
                vec![safe(&r.repo).into(), status, safe(&r.detail).into()]
            })
            .collect();
        write!(cx.ui.out(), "{}", crate::ui::table(&rows)).map_err(XoneError::from)?;
    }
    fail_if_any(what, reports)
}
