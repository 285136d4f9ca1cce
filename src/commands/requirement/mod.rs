//! `xone requirement`: a requirement's people, dates, documents and lifecycle.

mod create;
mod doc;
mod lifecycle;
mod list;
mod people;
mod show;

use clap::Subcommand;
use clap_complete::ArgValueCompleter;

use super::Ctx;
use crate::complete;
use crate::domain::names::Assignment;
use crate::domain::RequirementKey;
use crate::ui::Result;

#[derive(Subcommand, Debug)]
pub enum RequirementCommand {
    /// Create a requirement; prints its key (PROJECT-N)
    Create(create::CreateArgs),
    /// Make an existing Jira issue a requirement of its project (which keeps them in Jira)
    #[command(after_long_help = "\
The issue's key, summary and stage (from its status) become the requirement's. Exit 3 when \
Jira has no such issue (or the user may not see it), 4 when the project keeps its requirements \
in the built-in tracker, 5 when the requirement is here already. JSON: the requirement")]
    Adopt {
        /// The Jira issue's key, e.g. PAY-123
        key: RequirementKey,
    },
    /// List requirements, newest first, one page at a time
    #[command(
        after_long_help = "JSON: [{\"key\", \"project\", \"title\", \"status\", \"updated_at\", \"end\"}] (the page asked for; --all for every row)"
    )]
    List(list::ListArgs),
    /// The whole thread: people, dates, documents, reviews, branches, sign-offs, events
    #[command(
        after_long_help = "JSON: {\"key\", \"project\", \"title\", \"status\", \"branch\", \"created_at\", \"created_by\", \"updated_at\", \
\"dates\": {\"start\", \"end\", \"dev_end\", \"test_submit\", \"smoke\", \"test_end\", \"release\"}, \
\"people\": [{\"role\", \"user\"}], \
\"documents\": [{\"kind\", \"version\", \"sha256\", \"size\", \"media_type\", \"file_name\", \"created_at\", \"created_by\", \"note\"}] (every version), \
\"reviews\": [{\"id\", \"kind\", \"at\", \"verdict\", \"verdict_at\", \"verdict_by\", \"note\", \"doc_version\", \"attendees\", \"comments\": [{\"id\", \"author\", \"section\", \"body\", \"resolved_at\", \"resolved_by\"}]}], \
\"branches\": [{\"repo\", \"name\", \"base\", \"created_at\", \"exists\", \"sha\", \"ahead\", \"behind\"}], \
\"signoffs\": [{\"user\", \"at\", \"note\", \"stage\"}], \
\"deploys\", \"watches\", \"grays\": [{\"project\", \"env\", \"app\", \"phase\", \"canary_image\", \"stable_image\", \"steps\", \"step\", \"passed\", \"marks\", …}] (as `gray list`), \
\"events\": [{\"id\", \"at\", \"actor\", \"action\", \"from\", \"to\", \"detail\", \"reason\", \"forced\"}], \
\"next\": {\"status\", \"missing\": [{\"item\", \"hint\"}]} or null"
    )]
    Show {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
    },
    /// Change the requirement's title (dates are set with `schedule`)
    #[command(
        after_long_help = "The feature branch keeps the name it was first given. Exit 2 for an empty title or one over 255 characters."
    )]
    Edit {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// The new title
        #[arg(long, required = true)]
        title: Option<String>,
    },
    /// Give people roles on the requirement: ROLE=USER (pm=alice qa=quinn)
    Assign {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// ROLE=USER pairs; the roles are pm, ui, fe, be, qa, data, ops and owner
        #[arg(value_name = "ROLE=USER", required = true)]
        assignments: Vec<Assignment>,
        /// Take these assignments away instead
        #[arg(long)]
        remove: bool,
    },
    /// Print, attach or edit a document; every change is a new version
    Doc(doc::DocArgs),
    /// Set the requirement's dates (YYYY-MM-DD, today, or +N days; "none" clears)
    Schedule(people::ScheduleArgs),
    /// Move one step on in the lifecycle, checking that step's gate
    #[command(
        after_long_help = "A failed gate exits 4 and names everything missing. JSON: {\"key\", \"from\", \"to\", \"forced\", \"missing\": [{\"item\", \"hint\"}]}"
    )]
    Advance {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// Pass a failed gate; recorded as forced, with the reason
        #[arg(long)]
        force: bool,
        /// Why the gate is passed (asked for on a terminal when --force comes without it)
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send a submitted or testing requirement back to developing
    Reject {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// What is wrong, for the log and the developers
        #[arg(long)]
        reason: Option<String>,
    },
    /// Sign off as the acting user: QA in submitted or testing (a qa member), the product manager accepting the gray release in gray (a pm member)
    Signoff {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// A note for the log (what was tested, what was not)
        #[arg(long)]
        note: Option<String>,
    },
    /// Cancel a requirement that is not done
    Cancel {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// Why, for the log
        #[arg(long)]
        reason: Option<String>,
    },
    /// The requirement's timeline: every change, who made it, when and why
    #[command(
        after_long_help = "JSON: [{\"id\", \"project\", \"requirement\", \"at\", \"actor\", \"action\", \"from\", \"to\", \"detail\", \"reason\", \"forced\"}]"
    )]
    Log {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
    },
}

pub fn run(cx: &mut Ctx, cmd: RequirementCommand) -> Result<()> {
    match cmd {
        RequirementCommand::Create(a) => create::run(cx, a),
        RequirementCommand::Adopt { key } => {
            let actor = cx.actor()?;
            let settings = cx.jira()?;
            let mut store = cx.store()?;
            let req = crate::ops::sync::adopt(&mut store, &settings, &key, &actor)?;
            if cx.ui.json {
                return cx.ui.print_json(&req);
            }
            cx.ui.status(format!("{}: adopted from Jira, {}", req.key, req.status));
            Ok(())
        }
        RequirementCommand::List(a) => list::run(cx, a),
        RequirementCommand::Show { key } => show::show(cx, &key),
        RequirementCommand::Edit { key, title } => people::edit(cx, &key, title.as_deref()),
        RequirementCommand::Assign { key, assignments, remove } => {
            people::assign(cx, &key, &assignments, remove)
        }
        RequirementCommand::Doc(a) => doc::run(cx, a),
        RequirementCommand::Schedule(a) => people::schedule(cx, a),
        RequirementCommand::Advance { key, force, reason } => {
            lifecycle::advance(cx, &key, force, reason)
        }
        RequirementCommand::Reject { key, reason } => lifecycle::reject(cx, &key, reason),
        RequirementCommand::Signoff { key, note } => lifecycle::signoff(cx, &key, note),
        RequirementCommand::Cancel { key, reason } => lifecycle::cancel(cx, &key, reason),
        RequirementCommand::Log { key } => show::log(cx, &key),
    }
}
