//! `xone sync`: this machine's view rebuilt from the shared systems.

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::Ctx;
use crate::complete;
use crate::domain::ProjectKey;
use crate::ops::sync;
use crate::store;
use crate::ui::{safe, table, Result, XoneError};

#[derive(Args, Debug)]
#[command(after_long_help = "\
For each project whose requirements live in Jira (or the one named; a project this machine does \
not have yet is set up from the definition its team shares on the Jira project: repositories, \
members, templates, environments, apps), shares what this machine adds to that definition, \
and reads its issues: all of \
them the first time on this machine, then those changed since the last sync (JQL updated >=, \
pages of 100 followed to the end: startAt on Server, nextPageToken on Cloud). Each \
requirement's title and stage are taken from Jira, which is the truth for status; a stage moved \
in Jira is taken and recorded on the requirement's log as a move that did not go through \
xone's gates, naming what they would have refused (said on stderr too), and a status that stands for no stage is reported. The issue's description is the \
requirement document (an edit made in Jira becomes its next version), its date fields \
hold the start and end dates (jira.start_field, jira.end_field, found by name through /field: one \
more request), and the comments xone \
wrote carry who is assigned, the reviews' verdicts and the sign-offs, which are taken once \
each. The feature branches of its requirements are found on the forges (one listing per \
repository: GitLab's branch search for feature/KEY-) and recorded, with their merge requests. \
Each environment's cluster is read for the apps' Deployment revisions and gray releases made \
for requirements this machine knows; those it lacks are recorded (a deploy read back is \
`applied`: another machine followed it), and a cluster that cannot be read is said on stderr. Exit 4 when no project keeps its \
requirements in Jira, 6 when Jira fails. JSON: [{\"project\", \"kind\": full|incremental, \
\"requests\", \"pages\", \"issues\", \"created\", \"retitled\", \"moved\": [{\"key\", \"from\", \"to\", \"gates\": [ITEM]}], \
\"unmapped\": [[KEY, STATUS]], \"people\": [\"KEY role=user\" | \"KEY -role=user\"], \
\"reviews\", \"signoffs\", \"documents\", \"dates\": [\"KEY start|end DATE\"], \"branches\": [\"KEY REPO BRANCH\"], \
\"deploys\": [\"APP ENV rN IMAGE\"], \"grays\": [\"APP ENV PHASE\"], \"unreachable\": [\"ENV: WHY\"], \"project_added\": [\"TABLE NAME\"]}]. Changes made while Jira could not be reached are pushed \
first, in order; --status lists them (JSON: [{\"id\", \"requirement\", \"op\", \"payload\", \"actor\", \
\"queued_at\", \"state\": queued|refused, \"detail\"}]) and --drop ID forgets one.")]
pub struct SyncArgs {
    /// Only this project
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    /// List the changes waiting for Jira (and those it refused), and do nothing else
    #[arg(long, conflicts_with = "drop")]
    pub status: bool,
    /// Forget a change waiting for Jira (its id from --status); it stays here only
    #[arg(long, value_name = "ID")]
    pub drop: Option<i64>,
}

pub fn run(cx: &mut Ctx, a: SyncArgs) -> Result<()> {
    if a.status {
        let store = cx.store()?;
        let queued = store::outbox(store.conn(), true)?;
        if cx.ui.json {
            return cx.ui.print_json(&queued);
        }
        if queued.is_empty() {
            cx.ui.status("nothing waits for Jira");
            return Ok(());
        }
        let mut rows = vec![["ID", "REQUIREMENT", "CHANGE", "STATE", "QUEUED", "DETAIL"]
            .map(String::from)
            .to_vec()];
        for q in &queued {
            rows.push(vec![
                q.id.to_string(),
                q.requirement.clone(),
                format!("{} {}", q.op, q.payload),
                q.state.clone(),
                cx.ui.when(&q.queued_at),
                q.detail.clone().unwrap_or_default(),
            ]);
        }
        write!(cx.ui.out(), "{}", safe(&table(&rows)))?;
        return Ok(());
    }
    if let Some(id) = a.drop {
        let mut store = cx.store()?;
        if !store.write(|tx| store::unqueue(tx, id))? {
            return Err(XoneError::not_found(format!("nothing waits for Jira under id {id}"))
                .hint("xone sync --status lists what does"));
        }
        cx.ui.status(format!("dropped change {id}: it stays here only"));
        return Ok(());
    }
    let actor = cx.actor()?;
    let settings = cx.jira()?;
    // What waits for Jira goes first.
    cx.tracker()?;
    let forges = cx.forges()?;
    let mut store = cx.store()?;
    let scope = cx.scope()?;
    let done = sync::sync(&scope, &forges, &mut store, &settings, a.project.as_ref(), &actor)?;
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
        for m in s.moved.iter().filter(|m| !m.gates.is_empty()) {
            cx.ui.warn(format!(
                "{} moved in Jira from {} to {} past xone's gates, which would have refused: {}",
                m.key,
                m.from,
                m.to,
                m.gates.join("; ")
            ));
        }
        for u in &s.unproven {
            cx.ui.warn(format!("passed over, not proven by its author: {u}"));
        }
        for p in &s.project_passed {
            cx.ui.warn(format!("{}: from the shared project, not taken: {p}", s.project));
        }
        for why in &s.unread_repos {
            cx.ui.warn(format!("{}: the branches of {why}; they are not synced", s.project));
        }
        for why in &s.clusters.unreachable {
            cx.ui.warn(format!("{}: the cluster of {why}; its history is not synced", s.project));
        }
        for (key, status) in &s.unmapped {
            cx.ui.warn(format!("{key}: the Jira status \"{status}\" stands for no stage; its stage here is unchanged"));
        }
    }
    Ok(())
}
