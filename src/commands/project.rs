//! `xone project`: projects, their repositories, members and document templates.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;
use serde::Serialize;

use super::{complete, Ctx};
use crate::adapters::forge_local::init_repository;
use crate::adapters::{Forges, RepoInfo};
use crate::domain::names::check_user;
use crate::domain::{DocKind, ProjectKey, Role};
use crate::store::{self, Event, Repo};
use crate::ui::{table, Result, XoneError};

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
        after_long_help = "JSON: {\"key\", \"name\", \"description\", \"created_at\", \"created_by\", \"archived_at\", \"repos\": [{\"name\", \"kind\", \"location\", \"default_branch\", \"bare\"}], \"members\": [{\"user\", \"roles\"}], \"requirements\": {STATUS: count}}"
    )]
    Show {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// Archive a project: it stays readable and takes no new requirements
    Archive {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// The project's code repositories
    #[command(subcommand)]
    Repo(RepoCommand),
    /// The project's members and their roles
    #[command(subcommand)]
    Member(MemberCommand),
    /// Print or replace the template a document kind starts from
    Template(TemplateArgs),
    /// The project's apps: deployable services built from its repositories
    #[command(subcommand)]
    App(super::app::AppCommand),
    /// The project's environments: Kubernetes context and namespace, Prometheus, registry
    #[command(subcommand)]
    Env(super::env::EnvCommand),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Project key: 2 to 10 upper-case letters or digits (e.g. PAY); requirement keys are KEY-N
    pub key: ProjectKey,
    /// Human name
    #[arg(long)]
    pub name: String,
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

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Link a repository to the project
    Add {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// gitlab:GROUP/NAME, its URL on the configured GitLab, or a local repository's path
        #[arg(value_name = "PATH_OR_URL")]
        repo: String,
        /// The name xone uses for it (default: the directory name)
        #[arg(long)]
        name: Option<String>,
    },
    /// Unlink a repository (the repository itself is not touched)
    Remove {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The repository's name in xone
        repo: String,
    },
    /// List the project's repositories
    #[command(
        after_long_help = "JSON: [{\"name\", \"kind\", \"location\", \"default_branch\", \"bare\"}]"
    )]
    List {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Give a user one or more roles on the project
    Add {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        #[arg(value_parser = check_user)]
        user: String,
        /// pm, ui, fe, be, qa, data, ops or owner; repeat or separate with commas
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// Take roles from a user (all of them without --role)
    Remove {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        #[arg(value_parser = check_user)]
        user: String,
        #[arg(long = "role", value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// List members and their roles
    #[command(after_long_help = "JSON: [{\"user\", \"roles\": [ROLE]}]")]
    List {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
}

#[derive(Args, Debug)]
#[command(
    after_long_help = "Placeholders {key}, {title} and {project} are filled in when a requirement is created."
)]
pub struct TemplateArgs {
    #[arg(add = ArgValueCandidates::new(complete::project_keys))]
    pub key: ProjectKey,
    #[arg(long, default_value = "requirement")]
    pub kind: DocKind,
    /// Use the contents of FILE (- for standard input) from now on
    #[arg(long, value_name = "FILE", conflicts_with = "reset")]
    pub set: Option<String>,
    /// Go back to the built-in template
    #[arg(long)]
    pub reset: bool,
}

pub fn run(cx: &mut Ctx, cmd: ProjectCommand) -> Result<()> {
    match cmd {
        ProjectCommand::Create(a) => create(cx, a),
        ProjectCommand::List { all } => list(cx, all),
        ProjectCommand::Show { key } => show(cx, &key),
        ProjectCommand::Archive { key } => archive(cx, &key),
        ProjectCommand::Repo(c) => repo(cx, c),
        ProjectCommand::Member(c) => member(cx, c),
        ProjectCommand::Template(a) => template_cmd(cx, a),
        ProjectCommand::App(c) => super::app::run(cx, c),
        ProjectCommand::Env(c) => super::env::run(cx, c),
    }
}

fn project_event(project: &ProjectKey, actor: &str, action: &str, detail: String) -> Event {
    Event {
        project: project.to_string(),
        actor: actor.to_string(),
        action: action.to_string(),
        detail: Some(detail),
        ..Event::default()
    }
}

/// Checks a repository before anything is written, and says what xone will call it.
fn describe_repo(forges: &Forges, location: &str, name: Option<&str>) -> Result<Repo> {
    Ok(as_repo(forges.describe(location)?, name))
}

fn as_repo(info: RepoInfo, name: Option<&str>) -> Repo {
    Repo {
        id: 0,
        name: name.map(str::to_string).unwrap_or(info.name),
        kind: info.kind.into(),
        location: info.location,
        default_branch: info.default_branch,
        bare: info.bare,
        remote_id: info.remote_id,
        clone_url: info.clone_url,
        web_url: info.web_url,
    }
}

fn create(cx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    // Everything is checked before anything is made; a repository made for a project that
    // then cannot be stored is taken away again.
    store::ensure_new_project(store.conn(), &a.key)?;
    let forges = cx.forges()?;
    let mut repos =
        a.repos.iter().map(|r| describe_repo(&forges, r, None)).collect::<Result<Vec<_>>>()?;
    let namespace = cx.config()?.str("gitlab.namespace").map(str::to_string);
    let mut local_made = None;
    let mut remote_made = None;
    if let Some(name) = &a.create_repo {
        let on_gitlab =
            name.strip_prefix("gitlab:").or(namespace.is_some().then_some(name.as_str()));
        match on_gitlab {
            Some(name) => {
                let namespace = namespace.as_deref().ok_or_else(|| {
                    XoneError::gate("no GitLab namespace is set for new projects")
                        .hint("set it: xone config set gitlab.namespace GROUP")
                })?;
                let info = forges.gitlab()?.create_project(namespace, name)?;
                remote_made = Some(info.location.clone());
                repos.push(as_repo(info, None));
            }
            None => {
                let path = PathBuf::from(name);
                init_repository(&path, &[])?;
                local_made = Some(path.clone());
                repos.push(describe_repo(&forges, &path.to_string_lossy(), None)?);
            }
        }
    }
    let stored = store.write(|tx| {
        store::insert_project(tx, &a.key, &a.name, &a.description, &actor)?;
        for r in &repos {
            store::insert_repo(tx, &a.key, r)?;
        }
        store::record(tx, &project_event(&a.key, &actor, "project create", a.name.clone()))
    });
    if let (Err(_), Some(path)) = (&stored, &local_made) {
        let _ = std::fs::remove_dir_all(path);
    }
    if let (Err(e), Some(path)) = (stored.as_ref(), &remote_made) {
        // A GitLab project is not deleted behind the user's back: say where it is.
        return Err(e.clone().hint(format!(
            "GitLab project {path} was created; link it with `xone project repo add {} gitlab:{path}`",
            a.key
        )));
    }
    stored?;
    if cx.ui.json {
        return show(cx, &a.key);
    }
    cx.ui.status(format!(
        "created project {} ({}) with {} repositories",
        a.key,
        a.name,
        repos.len()
    ));
    cx.ui.line(&a.key)
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
    write!(cx.ui.out(), "{}", table(&t))?;
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
            "repos": repos, "members": members, "requirements": counts,
        }));
    }
    let ui = &mut cx.ui;
    let title = format!("{}  {}", p.key, p.name);
    ui.line(ui.bold(&title))?;
    if !p.description.is_empty() {
        ui.line(&p.description)?;
    }
    ui.line(format!("created {} by {}", p.created_at, p.created_by))?;
    if let Some(at) = &p.archived_at {
        ui.line(ui.yellow(&format!("archived {at}")))?;
    }
    ui.line(format!("\n{}", ui.bold("Repositories")))?;
    if repos.is_empty() {
        ui.line("  none: xone project repo add KEY PATH")?;
    }
    for r in &repos {
        let bare = if r.bare { ", bare" } else { "" };
        ui.line(format!("  {}  {} ({}{bare})  {}", r.name, r.default_branch, r.kind, r.location))?;
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
    store.write(|tx| {
        store::archive_project(tx, key)?;
        store::record(tx, &project_event(key, &actor, "project archive", p.name.clone()))
    })?;
    cx.ui.status(format!("archived project {key}"));
    Ok(())
}

fn repo(cx: &mut Ctx, cmd: RepoCommand) -> Result<()> {
    match cmd {
        RepoCommand::Add { key, repo, name } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            store::active_project(store.conn(), &key)?;
            let r = describe_repo(&cx.forges()?, &repo, name.as_deref())?;
            store.write(|tx| {
                store::insert_repo(tx, &key, &r)?;
                store::record(
                    tx,
                    &project_event(&key, &actor, "repo add", format!("{} {}", r.name, r.location)),
                )
            })?;
            cx.ui.status(format!(
                "linked {} ({}, default branch {}) to {key}",
                r.name, r.location, r.default_branch
            ));
            Ok(())
        }
        RepoCommand::Remove { key, repo } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            store::project(store.conn(), &key)?;
            store.write(|tx| {
                store::delete_repo(tx, &key, &repo)?;
                store::record(tx, &project_event(&key, &actor, "repo remove", repo.clone()))
            })?;
            cx.ui.status(format!("unlinked {repo} from {key}; the repository itself is untouched"));
            Ok(())
        }
        RepoCommand::List { key } => {
            let store = cx.store()?;
            store::project(store.conn(), &key)?;
            let repos = store::repos(store.conn(), &key)?;
            if cx.ui.json {
                return cx.ui.print_json(&repos);
            }
            let mut t =
                vec![vec!["NAME".into(), "KIND".into(), "DEFAULT".into(), "LOCATION".into()]];
            t.extend(repos.iter().map(|r| {
                let kind = if r.bare { format!("{} (bare)", r.kind) } else { r.kind.clone() };
                vec![r.name.clone(), kind, r.default_branch.clone(), r.location.clone()]
            }));
            write!(cx.ui.out(), "{}", table(&t))?;
            Ok(())
        }
    }
}

fn member(cx: &mut Ctx, cmd: MemberCommand) -> Result<()> {
    match cmd {
        MemberCommand::Add { key, user, roles } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            store::active_project(store.conn(), &key)?;
            let added = store.write(|tx| {
                let added = store::add_member(tx, &key, &user, &roles)?;
                if !added.is_empty() {
                    let names: Vec<&str> = added.iter().map(|r| r.as_str()).collect();
                    store::record(
                        tx,
                        &project_event(
                            &key,
                            &actor,
                            "member add",
                            format!("{user}: {}", names.join(", ")),
                        ),
                    )?;
                }
                Ok(added)
            })?;
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            if added.is_empty() {
                cx.ui.status(format!("{user} already has {} on {key}", names.join(", ")));
            } else {
                cx.ui.status(format!("{user} is {} on {key}", names.join(", ")));
            }
            Ok(())
        }
        MemberCommand::Remove { key, user, roles } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            store::project(store.conn(), &key)?;
            store.write(|tx| {
                store::remove_member(tx, &key, &user, &roles)?;
                let what = if roles.is_empty() {
                    "all roles".to_string()
                } else {
                    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                };
                store::record(
                    tx,
                    &project_event(&key, &actor, "member remove", format!("{user}: {what}")),
                )
            })?;
            cx.ui.status(format!("removed {user}'s roles on {key}"));
            Ok(())
        }
        MemberCommand::List { key } => {
            let store = cx.store()?;
            store::project(store.conn(), &key)?;
            let members = store::members(store.conn(), &key)?;
            if cx.ui.json {
                return cx.ui.print_json(&members);
            }
            let mut t = vec![vec!["USER".into(), "ROLES".into()]];
            t.extend(members.iter().map(|m| vec![m.user.clone(), m.roles.join(", ")]));
            write!(cx.ui.out(), "{}", table(&t))?;
            Ok(())
        }
    }
}

fn template_cmd(cx: &mut Ctx, a: TemplateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::project(store.conn(), &a.key)?;
    if a.set.is_none() && !a.reset {
        let body = crate::ops::docs::template_for(store.conn(), &a.key, a.kind)?;
        return match body {
            Some(b) if cx.ui.json => {
                cx.ui.print_json(&serde_json::json!({"kind": a.kind, "body": b}))
            }
            Some(b) => {
                write!(cx.ui.out(), "{b}")?;
                Ok(())
            }
            None => Err(XoneError::not_found(format!("no {} template in {}", a.kind, a.key)).hint(
                format!(
                    "set one with `xone project template {} --kind {} --set FILE`",
                    a.key, a.kind
                ),
            )),
        };
    }
    let body = match &a.set {
        Some(file) => {
            Some(String::from_utf8(crate::ops::docs::read_input(file, 1 << 20)?).map_err(|_| {
                XoneError::usage(format!("{file} is not UTF-8 text"))
                    .hint("a template is a text file")
            })?)
        }
        None => None,
    };
    store.write(|tx| {
        store::set_template(tx, &a.key, a.kind, body.as_deref())?;
        let what = if body.is_some() { "set" } else { "reset to the built-in one" };
        store::record(
            tx,
            &project_event(&a.key, &actor, "template", format!("{} template {what}", a.kind)),
        )
    })?;
    cx.ui.status(format!(
        "{} template of {} {}",
        a.kind,
        a.key,
        if a.reset { "reset" } else { "set" }
    ));
    Ok(())
}
