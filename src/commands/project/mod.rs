//! `xone project`: projects, their repositories, members, templates, apps and environments.

mod app;
mod env;
mod member;
mod repo;
mod template;

use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;
use serde::Serialize;

use super::Ctx;
use crate::complete;
use crate::domain::ProjectKey;
use crate::interrupt;
use crate::ops::project::{self, NewProject};
use crate::store;
use crate::ui::{safe, safe_table, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project
    Create(CreateArgs),
    /// List projects
    #[command(
        after_long_help = "JSON: [{\"key\", \"name\", \"description\", \"created_at\", \"created_by\", \"archived_at\", \"repos\", \"members\", \"requirements\"}]"
    )]
    List {
        /// Include archived projects
        #[arg(long)]
        all: bool,
    },
    /// Show a project: repositories, members, requirements by status
    #[command(
        after_long_help = "JSON: {\"key\", \"name\", \"description\", \"created_at\", \"created_by\", \"archived_at\", \"tracker\": builtin|jira, \"jira_project\", \"repos\": [{\"name\", \"kind\", \"location\", \"default_branch\", \"bare\"}], \"members\": [{\"user\", \"roles\"}], \"requirements\": {STATUS: count}}"
    )]
    Show {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// Archive a project: it stays readable and takes no new requirements
    #[command(
        after_long_help = "Asks on a terminal; elsewhere needs --yes (exit 4 without it). `project unarchive` undoes it."
    )]
    Archive {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// Choose where the project's requirements live: the built-in tracker, or a Jira project
    #[command(after_long_help = "\
--tracker jira keeps the requirements in the Jira project of the same key (jira.url and a \
token: `xone auth login jira`); the project is checked on Jira first (exit 3 when the user \
cannot see it, 4 when --jira-project names another key). A project that has requirements \
switches only with --migrate, which carries them over. Into Jira: each requirement gets an \
issue (one already there with its key and title is adopted) with its summary, document, \
dates, labels, stage, people, verdicts, sign-offs and branches, and then takes the issue's \
key; the key it had stays an alias that every command takes. Each issue is recorded as it is \
made, so a move that stops (exit 6 when Jira fails, 4 when its workflow has no path to a \
stage) goes on where it stopped when run again, and the keys change all at once at its end. \
Back to the built-in tracker, the requirements keep their keys (changes still waiting for \
Jira must be pushed first: exit 4). JSON: the project, as `project show` prints it, with \
\"carried\": [{\"from\", \"to\", \"adopted\"}] after --migrate")]
    Set {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// Where requirements live
        #[arg(long, value_enum)]
        tracker: Tracker,
        /// The Jira project (its key must be the project's own; the default)
        #[arg(long, value_name = "KEY", requires = "tracker")]
        jira_project: Option<String>,
        /// Carry the project's requirements over to the new tracker
        #[arg(long)]
        migrate: bool,
    },
    /// Take a project out of the archive: it takes new requirements again
    Unarchive {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// Delete xone's records of a project (never its repositories or cluster objects)
    #[command(after_long_help = "\
Deletes the project's requirements, documents, reviews, branch records, builds, deployments, \
watches, apps, environments, repository links and members from the state database; the \
repositories themselves and what runs in the clusters are not touched, and the journal keeps \
the deletion. Exit 4 while the project has requirements that are not done or cancelled, or \
deployments on record, unless --force --reason. Asks on a terminal; elsewhere needs --yes.")]
    Delete {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// Delete even with open requirements or deployments on record
        #[arg(long)]
        force: bool,
        /// Why, for the journal (asked for on a terminal when --force comes without it)
        #[arg(long)]
        reason: Option<String>,
    },
    /// The project's code repositories
    #[command(subcommand)]
    Repo(repo::RepoCommand),
    /// The project's members and their roles
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Print or replace the template a document kind starts from
    Template(template::TemplateArgs),
    /// The project's apps: deployable services built from its repositories
    #[command(subcommand)]
    App(app::AppCommand),
    /// The project's environments: Kubernetes context and namespace, Prometheus, registry
    #[command(subcommand)]
    Env(env::EnvCommand),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Project key: 2 to 10 upper-case letters or digits (e.g. PAY); requirement keys are KEY-N
    #[arg(value_parser = ProjectKey::new_key)]
    pub key: ProjectKey,
    /// Human name
    #[arg(long)]
    pub name: String,
    /// What the project is for
    #[arg(long, default_value = "")]
    pub description: String,
    /// Link a repository: gitlab:GROUP/NAME, its URL on the configured GitLab, or the path of
    /// a local git repository (bare or with a work tree)
    #[arg(long = "repo", value_name = "PATH_OR_URL")]
    pub repos: Vec<String>,
    /// Create a repository and link it: a GitLab project NAME in gitlab.namespace when that is
    /// set (or gitlab:NAME), else a new local repository at the path NAME
    #[arg(long, value_name = "NAME")]
    pub create_repo: Option<String>,
}

/// Where a project's requirements live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tracker {
    /// The state database
    Builtin,
    /// A Jira project of the same key
    Jira,
}

fn set(
    cx: &mut Ctx,
    key: &ProjectKey,
    tracker: Tracker,
    jira_project: Option<&str>,
    migrate: bool,
) -> Result<()> {
    if tracker == Tracker::Builtin && jira_project.is_some() {
        return Err(XoneError::usage("--jira-project goes with --tracker jira"));
    }
    let actor = cx.actor()?;
    let settings = cx.jira()?;
    let mut store = cx.store()?;
    let choice = match tracker {
        Tracker::Builtin => project::TrackerChoice::Builtin,
        Tracker::Jira => {
            project::TrackerChoice::Jira { project: jira_project, settings: &settings }
        }
    };
    let changed = project::set_tracker(&cx.ui, &mut store, key, &choice, migrate, &actor)?;
    // Shared at once, so that a teammate's `xone sync -p KEY` sets the project up.
    if tracker == Tracker::Jira && changed.is_some() {
        match crate::ops::sync::share_definition(&settings, &mut store, key) {
            Ok(t) => t.passed.iter().for_each(|p| cx.ui.warn(format!("{key}: {p}"))),
            Err(e) => {
                cx.ui.warn(format!("{key}: the project is not shared in Jira: {}", e.message))
            }
        }
    }
    let p = store::project(store.conn(), key)?;
    let carried = changed.clone().unwrap_or_default();
    if cx.ui.json {
        let mut v = serde_json::to_value(&p).map_err(|e| XoneError::internal(e.to_string()))?;
        if migrate {
            v["carried"] =
                serde_json::to_value(&carried).map_err(|e| XoneError::internal(e.to_string()))?;
        }
        return cx.ui.print_json(&v);
    }
    for c in carried.iter().filter(|c| c.from != c.to) {
        cx.ui.status(format!("{}: now {} (the old key still works)", c.from, c.to));
    }
    let where_ = match &p.jira_project {
        Some(j) => format!("Jira project {j}"),
        None => "the built-in tracker".to_string(),
    };
    if changed.is_some() {
        cx.ui.status(format!("{key}: requirements live in {where_}"));
    } else {
        cx.ui.status(format!("{key}: requirements already live in {where_}"));
    }
    Ok(())
}

pub fn run(cx: &mut Ctx, cmd: ProjectCommand) -> Result<()> {
    match cmd {
        ProjectCommand::Create(a) => create(cx, a),
        ProjectCommand::List { all } => list(cx, all),
        ProjectCommand::Show { key } => show(cx, &key),
        ProjectCommand::Archive { key } => archive(cx, &key),
        ProjectCommand::Unarchive { key } => unarchive(cx, &key),
        ProjectCommand::Set { key, tracker, jira_project, migrate } => {
            set(cx, &key, tracker, jira_project.as_deref(), migrate)
        }
        ProjectCommand::Delete { key, force, reason } => delete(cx, &key, force, reason),
        ProjectCommand::Repo(c) => repo::run(cx, c),
        ProjectCommand::Member(c) => member::run(cx, c),
        ProjectCommand::Template(a) => template::run(cx, a),
        ProjectCommand::App(c) => app::run(cx, c),
        ProjectCommand::Env(c) => env::run(cx, c),
    }
}

fn create(cx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let namespace = cx.config()?.str("gitlab.namespace").map(str::to_string);
    let new = NewProject {
        key: &a.key,
        name: &a.name,
        description: &a.description,
        repos: &a.repos,
        create_repo: a.create_repo.as_deref(),
        namespace: namespace.as_deref(),
    };
    // Once it is made, what names it is printed even if Ctrl-C comes: a script that saw
    // nothing would make it twice.
    let _hold = interrupt::hold();
    let linked = project::create(&mut store, &forges, &new, &actor)?;
    if cx.ui.json {
        show(cx, &a.key)?;
        return cx.ui.flush();
    }
    cx.ui.status(format!("created project {} ({}) with {linked} repositories", a.key, a.name));
    cx.ui.line(&a.key)?;
    cx.ui.flush()
}

#[derive(Serialize)]
struct ProjectSummary {
    #[serde(flatten)]
    project: store::Project,
    repos: usize,
    members: usize,
    requirements: usize,
}

fn list(cx: &mut Ctx, all: bool) -> Result<()> {
    let store = cx.store()?;
    let c = store.conn();
    let mut rows = Vec::new();
    for p in store::projects(c, all)? {
        let key: ProjectKey = p.key.parse().map_err(XoneError::internal)?;
        let requirements: i64 =
            c.query_row("SELECT count(*) FROM requirement WHERE project = ?1", [&p.key], |r| {
                r.get(0)
            })?;
        rows.push(ProjectSummary {
            repos: store::repos(c, &key)?.len(),
            members: store::members(c, &key)?.len(),
            requirements: requirements as usize,
            project: p,
        });
    }
    if cx.ui.json {
        return cx.ui.print_json(&rows);
    }
    if rows.is_empty() {
        cx.ui.status("no projects yet: create one with `xone project create KEY --name NAME`");
        return Ok(());
    }
    let mut t = vec![vec![
        "KEY".into(),
        "NAME".into(),
        "REPOS".into(),
        "MEMBERS".into(),
        "REQUIREMENTS".into(),
    ]];
    for r in &rows {
        let name = match &r.project.archived_at {
            Some(_) => format!("{} (archived)", r.project.name),
            None => r.project.name.clone(),
        };
        t.push(vec![
            r.project.key.clone(),
            name,
            r.repos.to_string(),
            r.members.to_string(),
            r.requirements.to_string(),
        ]);
    }
    write!(cx.ui.out(), "{}", safe_table(&t))?;
    Ok(())
}

fn show(cx: &mut Ctx, key: &ProjectKey) -> Result<()> {
    let store = cx.store()?;
    let c = store.conn();
    let p = store::project(c, key)?;
    let repos = store::repos(c, key)?;
    let members = store::members(c, key)?;
    let mut st =
        c.prepare("SELECT status, count(*) FROM requirement WHERE project = ?1 GROUP BY status")?;
    let counts: std::collections::BTreeMap<String, i64> = st
        .query_map([key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if cx.ui.json {
        return cx.ui.print_json(&serde_json::json!({
            "key": p.key, "name": p.name, "description": p.description,
            "created_at": p.created_at, "created_by": p.created_by, "archived_at": p.archived_at,
            "tracker": p.tracker, "jira_project": p.jira_project,
            "repos": repos, "members": members, "requirements": counts,
        }));
    }
    let ui = &mut cx.ui;
    let title = format!("{}  {}", p.key, safe(&p.name));
    ui.line(ui.bold(&title))?;
    if !p.description.is_empty() {
        ui.line(safe(&p.description))?;
    }
    ui.line(format!("created {} by {}", ui.when(&p.created_at), p.created_by))?;
    if let Some(j) = &p.jira_project {
        ui.line(format!("requirements in Jira project {j}"))?;
    }
    if let Some(at) = p.archived_at.as_deref().map(|a| ui.when(a)) {
        ui.line(ui.yellow(&format!("archived {at}")))?;
    }
    ui.line(format!("\n{}", ui.bold("Repositories")))?;
    if repos.is_empty() {
        ui.line("  none: xone project repo add KEY PATH")?;
    }
    for r in &repos {
        let bare = if r.bare { ", bare" } else { "" };
        let (name, branch, location) = (safe(&r.name), safe(&r.default_branch), safe(&r.location));
        ui.line(format!("  {name}  {branch} ({}{bare})  {location}", r.kind))?;
    }
    ui.line(format!("\n{}", ui.bold("Members")))?;
    for m in &members {
        ui.line(format!("  {}  {}", m.user, m.roles.join(", ")))?;
    }
    ui.line(format!("\n{}", ui.bold("Requirements")))?;
    for s in crate::domain::Status::ALL {
        if let Some(n) = counts.get(s.as_str()) {
            ui.line(format!("  {s}: {n}"))?;
        }
    }
    Ok(())
}

fn archive(cx: &mut Ctx, key: &ProjectKey) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let p = store::project(store.conn(), key)?;
    if p.archived_at.is_some() {
        cx.ui.status(format!("project {key} is already archived"));
        return Ok(());
    }
    cx.ui.confirm_or_stop(&format!("Archive project {key} ({})?", p.name), "not archived")?;
    project::archive(&mut store, key, &p.name, &actor)?;
    cx.ui.status(format!("archived project {key}"));
    Ok(())
}

fn unarchive(cx: &mut Ctx, key: &ProjectKey) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    if project::unarchive(&mut store, key, &actor)? {
        cx.ui.status(format!("project {key} is out of the archive"));
    } else {
        cx.ui.status(format!("project {key} is not archived"));
    }
    Ok(())
}

fn delete(cx: &mut Ctx, key: &ProjectKey, force: bool, reason: Option<String>) -> Result<()> {
    let reason = match force {
        true => Some(cx.reason(reason, "delete it with work open")?),
        false => reason,
    };
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let blockers = project::delete_blockers(&store, key)?;
    if !blockers.is_empty() && !force {
        let mut err = XoneError::gate(format!("project {key} still has work and deployments"));
        for b in &blockers {
            err = err.cause(b);
        }
        return Err(err
            .hint("finish or cancel its requirements, and roll back or remove what it deployed")
            .hint(format!(
                "or delete it knowingly: xone project delete {key} --force --reason \"…\""
            )));
    }
    cx.ui.confirm_or_stop(
        &format!("Delete every record of project {key}? (its repositories and clusters stay)"),
        "nothing deleted",
    )?;
    let forced = (!blockers.is_empty())
        .then(|| (blockers.as_slice(), reason.as_deref().unwrap_or_default()));
    let n = project::delete(&mut store, key, forced, &actor)?;
    cx.ui.status(format!(
        "deleted project {key} and its {n} requirement(s) from xone's records; its repositories and what runs in its clusters are untouched"
    ));
    Ok(())
}
