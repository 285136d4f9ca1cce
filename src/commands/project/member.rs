//! `xone project member`: the project's members and their roles.

use clap::Subcommand;
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use crate::complete;
use crate::domain::names::check_user;
use crate::domain::{ProjectKey, Role};
use crate::ops::project;
use crate::store;
use crate::ui::{safe_table, Result};

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Give a user one or more roles on the project
    Add {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The user's name, as xone signs it (see `xone auth status`)
        #[arg(value_parser = check_user)]
        user: String,
        /// pm, ui, fe, be, qa, data, ops or owner; repeat or separate with commas
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<Role>,
        /// The Jira account the user acts as (Server: the user name; Cloud: the account id)
        #[arg(long, value_name = "ID")]
        jira_account: Option<String>,
    },
    /// Take roles from a user (all of them without --role)
    Remove {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The user's name
        #[arg(value_parser = check_user)]
        user: String,
        /// Only these roles (repeat, or separate with commas); all of them without it
        #[arg(long = "role", value_delimiter = ',')]
        roles: Vec<Role>,
    },
    /// List members and their roles
    #[command(after_long_help = "JSON: [{\"user\", \"roles\": [ROLE]}]")]
    List {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
}

pub fn run(cx: &mut Ctx, cmd: MemberCommand) -> Result<()> {
    match cmd {
        MemberCommand::Add { key, user, roles, jira_account } => {
            let actor = cx.actor()?;
            let mut store = cx.store()?;
            let added = project::add_member(
                &mut store,
                &key,
                &user,
                &roles,
                jira_account.as_deref(),
                &actor,
            )?;
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
            project::remove_member(&mut store, &key, &user, &roles, &actor)?;
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
            write!(cx.ui.out(), "{}", safe_table(&t))?;
            Ok(())
        }
    }
}
