//! `xone project repo`: the project's code repositories.

use clap::Subcommand;
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use crate::complete;
use crate::domain::ProjectKey;
use crate::ops::project;
use crate::store;
use crate::ui::{safe_table, Result};

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Link a repository to the project
    Add {
        /// The project's key, e.g. PAY
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
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The repository: its name in xone, path, URL or gitlab:GROUP/NAME
        repo: String,
    },
    /// List the project's repositories
    #[command(
        after_long_help = "JSON: [{\"name\", \"kind\", \"location\", \"default_branch\", \"bare\"}]"
    )]
    List {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
}

pub fn run(cx: &mut Ctx, cmd: RepoCommand) -> Result<()> {
    match cmd {
        RepoCommand::Add { key, repo, name } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            let forges = cx.forges()?;
            let r = project::add_repo(&mut store, &forges, &key, &repo, name.as_deref(), &actor)?;
            cx.ui.status(format!(
                "linked {} ({}, default branch {}) to {key}",
                r.name, r.location, r.default_branch
            ));
            Ok(())
        }
        RepoCommand::Remove { key, repo } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            let url = cx.config()?.str("gitlab.url").map(str::to_string);
            let repos = store::repos(store.conn(), &key)?;
            // Any spelling of it; one that names none is said as store's own "no repository".
            let name = project::find_repo(&repos, &repo, url.as_deref())
                .map(|r| r.name.clone())
                .unwrap_or(repo);
            project::remove_repo(&mut store, &key, &name, &actor)?;
            cx.ui.status(format!("unlinked {name} from {key}; the repository itself is untouched"));
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
                let kind = if r.bare { format!("{} (bare)", r.kind) } else { r.kind.to_string() };
                vec![r.name.clone(), kind, r.default_branch.clone(), r.location.clone()]
            }));
            write!(cx.ui.out(), "{}", safe_table(&t))?;
            Ok(())
        }
    }
}
