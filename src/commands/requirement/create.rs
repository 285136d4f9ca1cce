//! `xone requirement create`.

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use super::show;
use crate::clock;
use crate::complete;
use crate::domain::date::DateSpec;
use crate::domain::names::Assignment;
use crate::domain::ProjectKey;
use crate::interrupt;
use crate::ops::docs;
use crate::ops::requirement::{self, NewRequirement};
use crate::store::Store;
use crate::ui::Result;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The project (default: the one whose repository this directory is in, or the only one)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    /// What is asked for, in a line (up to 255 characters)
    pub title: String,
    /// When work starts: YYYY-MM-DD, today, or +N (days from today)
    #[arg(long, value_name = "DATE")]
    pub start: Option<DateSpec>,
    /// When it is due: YYYY-MM-DD, today, or +N (days from today)
    #[arg(long, value_name = "DATE")]
    pub end: Option<DateSpec>,
    /// The requirement document's first edit, from FILE (- for standard input)
    #[arg(long, value_name = "FILE")]
    pub doc: Option<String>,
    /// ROLE=USER; repeat for more people
    #[arg(long = "assign", value_name = "ROLE=USER")]
    pub assign: Vec<Assignment>,
}

pub fn run(cx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let limit = docs::max_bytes(cx.config()?);
    let title = requirement::check_title(&a.title)?;
    let today = clock::today();
    let (start, end) = (a.start.map(|d| d.on(today)), a.end.map(|d| d.on(today)));
    requirement::check_span(start, end)?;
    let first_edit = match &a.doc {
        Some(f) => Some((docs::read_input(f, limit)?, f.clone())),
        None => None,
    };
    let mut store = cx.store()?;
    let here = cx.project_or_here(&store, a.project.as_ref())?;
    let project = crate::ops::project::which_project(&store, here.as_ref(), &[])?;
    let new =
        NewRequirement { project: &project, title, start, end, first_edit, assign: &a.assign };
    // Once it is made, what names it is printed even if Ctrl-C comes: a script that saw
    // nothing would make it twice.
    let _hold = interrupt::hold();
    let key = requirement::create(&mut store, cx.tracker()?.as_ref(), &new, &actor)?;
    warn_unknown_people(cx, &store, &project, &a.assign)?;
    if cx.ui.json {
        show::show(cx, &key)?;
        return cx.ui.flush();
    }
    cx.ui.status(format!(
        "created {key} in draft: fill in its document with `xone requirement doc {key} --edit`"
    ));
    cx.ui.line(&key)?;
    cx.ui.flush()
}

/// People need not be members to be assigned, but a gate that needs a role looks at
/// membership: say so now rather than at the gate.
pub fn warn_unknown_people(
    cx: &Ctx,
    store: &Store,
    project: &ProjectKey,
    assigned: &[Assignment],
) -> Result<()> {
    for a in requirement::unknown_people(store, project, assigned)? {
        cx.ui.warn(format!(
            "{} is not a {} member of {project}: xone project member add {project} {} --role {}",
            a.user, a.role, a.user, a.role
        ));
    }
    Ok(())
}
