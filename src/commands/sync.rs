//! `xone sync`: this machine's view rebuilt from the shared systems.

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::{complete, Ctx};
use crate::domain::ProjectKey;
use crate::ops::sync;
use crate::ui::{safe, table, Result};

#[derive(Args, Debug)]
#[command(after_long_help = "\
For each project whose requirements live in Jira (or the one named), reads its issues: all of \
them the first time on this machine, then those changed since the last sync (JQL updated >=, \
pages of 100 followed to the end: startAt on Server, nextPageToken on Cloud). Each \
requirement's title and stage are taken from Jira, which is the truth for status; a stage moved \
in Jira is recorded on the requirement's log as a move that did not go through xone's gates, \
and a status that stands for no stage is reported. Exit 4 when no project keeps its \
requirements in Jira, 6 when Jira fails. JSON: [{\"project\", \"kind\": full|incremental, \
\"requests\", \"issues\", \"created\", \"retitled\", \"moved\": [{\"key\", \"from\", \"to\"}], \
\"unmapped\": [[KEY, STATUS]]}]")]
pub struct SyncArgs {
    /// Only this project
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
}

pub fn run(cx: &mut Ctx, a: SyncArgs) -> Result<()> {
    let actor = cx.actor()?;
    let settings = cx.jira()?;
    let mut store = cx.store()?;
    let done = sync::sync(&cx.ui, &mut store, &settings, a.project.as_ref(), &actor)?;
    if cx.ui.json {
        return cx.ui.print_json(&done);
    }
    let mut rows =
        vec![["PROJECT", "SYNC", "ISSUES", "REQUESTS", "NEW", "MOVED"].map(String::from).to_vec()];
    for s in &done {
        rows.push(vec![
            s.project.clone(),
            s.kind.to_string(),
            s.issues.to_string(),
            s.requests.to_string(),
            s.created.len().to_string(),
            s.moved
                .iter()
                .map(|m| format!("{} {}→{}", m.key, m.from, m.to))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    write!(cx.ui.out(), "{}", safe(&table(&rows)))?;
    for s in &done {
        for (key, status) in &s.unmapped {
            cx.ui.warn(format!("{key}: the Jira status \"{status}\" stands for no stage; its stage here is unchanged"));
        }
    }
    Ok(())
}
