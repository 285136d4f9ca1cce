//! `xone requirement edit`, `assign` and `schedule`: the title, people by role, and dates.

use clap::Args;
use clap_complete::ArgValueCompleter;

use super::super::Ctx;
use super::create::warn_unknown_people;
use crate::clock;
use crate::complete;
use crate::domain::date::DateSpec;
use crate::domain::names::Assignment;
use crate::domain::RequirementKey;
use crate::ops::requirement;
use crate::store;
use crate::ui::{Result, XoneError};

/// A date flag's value: a date, or `none` to clear it.
#[derive(Clone, Debug)]
pub struct DateOrNone(Option<DateSpec>);

impl std::str::FromStr for DateOrNone {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "none" {
            Ok(DateOrNone(None))
        } else {
            s.parse().map(|d| DateOrNone(Some(d)))
        }
    }
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// The requirement's key, e.g. PAY-1
    #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    /// When work starts
    #[arg(long, value_name = "DATE")]
    pub start: Option<DateOrNone>,
    /// When it is due
    #[arg(long, value_name = "DATE")]
    pub end: Option<DateOrNone>,
    /// When development ends
    #[arg(long, value_name = "DATE")]
    pub dev_end: Option<DateOrNone>,
    /// When it is handed to QA
    #[arg(long, value_name = "DATE")]
    pub test_submit: Option<DateOrNone>,
    /// When the smoke test is
    #[arg(long, value_name = "DATE")]
    pub smoke: Option<DateOrNone>,
    /// When testing ends
    #[arg(long, value_name = "DATE")]
    pub test_end: Option<DateOrNone>,
    /// When it is released
    #[arg(long, value_name = "DATE")]
    pub release: Option<DateOrNone>,
}

pub fn assign(cx: &mut Ctx, key: &RequirementKey, list: &[Assignment], remove: bool) -> Result<()> {
    let actor = cx.actor()?;
    let tracker = cx.tracker()?;
    let mut store = cx.store()?;
    let changed = requirement::assign(&mut store, tracker.as_ref(), key, list, remove, &actor)?;
    if !remove {
        warn_unknown_people(cx, &store, &key.project, list)?;
    }
    if changed.is_empty() {
        cx.ui.status(format!("{key}: nothing changed"));
    } else {
        let verb = if remove { "unassigned" } else { "assigned" };
        cx.ui.status(format!("{key}: {verb} {}", changed.join(" ")));
    }
    Ok(())
}

pub fn schedule(cx: &mut Ctx, a: ScheduleArgs) -> Result<()> {
    let actor = cx.actor()?;
    let tracker = cx.tracker()?;
    let mut store = cx.store()?;
    let req = store::open_requirement(store.conn(), &a.key)?;
    let today = clock::today();
    let on = |d: &DateOrNone| d.0.map(|d| d.on(today));
    let given = [&a.start, &a.end, &a.dev_end, &a.test_submit, &a.smoke, &a.test_end, &a.release];
    if given.iter().all(|g| g.is_none()) {
        return Err(XoneError::usage("no date given")
            .hint("e.g. xone requirement schedule KEY --start 2026-12-01 --end 2026-12-20"));
    }
    let start = a
        .start
        .as_ref()
        .map(on)
        .unwrap_or_else(|| req.dates.start.as_deref().and_then(|s| s.parse().ok()));
    let end = a
        .end
        .as_ref()
        .map(on)
        .unwrap_or_else(|| req.dates.end.as_deref().and_then(|s| s.parse().ok()));
    requirement::check_span(start, end)?;
    let changes: Vec<(&str, &str, Option<String>)> = store::DATE_COLUMNS
        .iter()
        .zip(given)
        .filter_map(|((col, flag), v)| {
            v.as_ref().map(|d| (*col, *flag, on(d).map(|d| d.to_string())))
        })
        .collect();
    requirement::schedule(&mut store, tracker.as_ref(), &req, &changes, &actor)?;
    let summary: Vec<String> = changes
        .iter()
        .map(|(_, f, v)| format!("{f} {}", v.as_deref().unwrap_or("cleared")))
        .collect();
    cx.ui.status(format!("{}: {}", a.key, summary.join(", ")));
    Ok(())
}

pub fn edit(cx: &mut Ctx, key: &RequirementKey, title: Option<&str>) -> Result<()> {
    let actor = cx.actor()?;
    let Some(title) = title else {
        return Err(
            XoneError::usage("nothing to edit").hint("e.g. --title \"Refund cancelled orders\"")
        );
    };
    let mut store = cx.store()?;
    if requirement::retitle(&mut store, cx.tracker()?.as_ref(), key, title, &actor)? {
        cx.ui.status(format!("{key}: title changed"));
    } else {
        cx.ui.status(format!("{key}: it has that title already"));
    }
    Ok(())
}
