//! `xone hook install`: a commit-msg hook in the project's work trees that puts the
//! requirement key of the current feature branch into each commit message.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use clap_complete::ArgValueCandidates;

use super::{report_repos, Ctx};
use crate::adapters::Outcome;
use crate::complete;
use crate::domain::ProjectKey;
use crate::ops::fan_out::RepoReport;
use crate::store::{self, RepoKind};
use crate::ui::{Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Install the commit-msg hook in every work tree of the project
    #[command(after_long_help = "\
On a branch named feature/KEY-slug, a commit message that does not mention KEY gets it in \
front of its first line (\"PAY-12: fix rounding\"), so every commit traces back to its \
requirement. GitLab repositories get it in their clone in the workspace (workspace.dir, made \
by `branch checkout`). Bare repositories have no work tree and are passed over; a commit-msg hook that \
xone did not write is left alone unless --force. JSON: as for branch create")]
    Install {
        /// The project (default: the only one there is)
        #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
        project: Option<ProjectKey>,
        /// Replace a commit-msg hook that xone did not write
        #[arg(long)]
        force: bool,
    },
}

/// Marks the hook as xone's, so that installing again updates it.
const MARK: &str = "# Installed by xone (xone hook install)";

const SCRIPT: &str = r#"#!/bin/sh
# Installed by xone (xone hook install): puts the requirement key of the current feature
# branch (feature/KEY-slug) in front of the commit message when the message lacks it.
branch=$(git symbolic-ref --quiet --short HEAD) || exit 0
key=$(printf '%s\n' "$branch" | sed -n 's|^feature/\([A-Z][A-Z0-9]*-[0-9][0-9]*\).*|\1|p')
[ -n "$key" ] || exit 0
if grep -v '^#' "$1" | grep -Eq "(^|[^A-Z0-9-])$key([^0-9]|\$)"; then
    exit 0
fi
tmp="$1.xone.$$"
{ printf '%s: ' "$key"; cat "$1"; } > "$tmp" && mv "$tmp" "$1"
"#;

pub fn run(cx: &mut Ctx, cmd: HookCommand) -> Result<()> {
    match cmd {
        HookCommand::Install { project, force } => install(cx, project, force),
    }
}

fn hooks_dir(repo: &git2::Repository) -> PathBuf {
    let configured = repo.config().ok().and_then(|c| c.get_path("core.hooksPath").ok());
    match (configured, repo.workdir()) {
        (Some(p), Some(w)) if p.is_relative() => w.join(p),
        (Some(p), _) => p,
        (None, _) => repo.path().join("hooks"),
    }
}

fn install_one(location: &str, force: bool) -> Result<Outcome> {
    let repo = git2::Repository::open(location).map_err(|e| {
        XoneError::not_found(format!("{location} cannot be opened")).cause(e.message())
    })?;
    if repo.is_bare() {
        return Ok(Outcome::Skipped("bare repository: no commits are made here".into()));
    }
    let path = hooks_dir(&repo).join("commit-msg");
    match std::fs::read_to_string(&path) {
        Ok(old) if old == SCRIPT => {
            return Ok(Outcome::Already(format!("{} is current", path.display())))
        }
        Ok(old) if !old.contains(MARK) && !force => {
            return Err(XoneError::conflict(format!(
                "{} already has a commit-msg hook that xone did not write",
                location
            ))
            .hint("keep it, or replace it with --force"));
        }
        _ => {}
    }
    write_executable(&path, SCRIPT)?;
    Ok(Outcome::Done(format!("installed {}", path.display())))
}

fn write_executable(path: &Path, body: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, body)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn install(cx: &mut Ctx, project: Option<ProjectKey>, force: bool) -> Result<()> {
    let store = cx.store()?;
    let project = cx.project_or_here(&store, project.as_ref())?;
    let project = crate::ops::project::which_project(&store, project.as_ref(), &[])?;
    let repos = store::repos(store.conn(), &project)?;
    if repos.is_empty() {
        return Err(XoneError::gate(format!("project {project} has no repositories"))
            .hint(format!("link one with `xone project repo add {project} PATH`")));
    }
    let forges = cx.forges()?;
    let reports = repos
        .iter()
        .map(|r| {
            let dir = forges.work_tree(r);
            let result = if r.kind != RepoKind::Local && !dir.exists() {
                Ok(Outcome::Skipped(format!(
                    "not cloned yet: `xone branch checkout KEY` clones it into {}",
                    dir.display()
                )))
            } else {
                install_one(&dir.to_string_lossy(), force)
            };
            RepoReport::new(&r.name, result)
        })
        .collect();
    report_repos(cx, "hook install", reports)
}
