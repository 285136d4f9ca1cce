//! `xone requirement advance|reject|cancel|signoff`: the lifecycle's moves.

use super::super::Ctx;
use crate::domain::RequirementKey;
use crate::ops::lifecycle;
use crate::ops::Work;
use crate::store;
use crate::ui::Result;

/// A reason for a change that needs one: the flag, else a prompt on a terminal.
pub fn advance(
    cx: &mut Ctx,
    key: &RequirementKey,
    force: bool,
    reason: Option<String>,
) -> Result<()> {
    let reason = match (force, reason) {
        (true, r) => Some(cx.reason(r, "force the gate")?),
        (false, r) => r,
    };
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let scope = cx.scope()?;
    let w = Work { ui: scope.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    let t = lifecycle::advance(&scope, &w, &mut store, key, force, reason)?;
    if cx.ui.json {
        return cx.ui.print_json(&t);
    }
    let note = if t.forced { " (gate forced)" } else { "" };
    cx.ui.status(format!("{key}: {} -> {}{note}", t.from, t.to));
    Ok(())
}

pub fn reject(cx: &mut Ctx, key: &RequirementKey, reason: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = lifecycle::check_rejectable(&store, key)?;
    let reason = cx.reason(reason, "reject")?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    lifecycle::reject(&w, &mut store, &req, reason)?;
    cx.ui.status(format!("{key}: {} -> developing (rejected)", req.status));
    Ok(())
}

pub fn cancel(cx: &mut Ctx, key: &RequirementKey, reason: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = store::open_requirement(store.conn(), key)?;
    let reason = cx.reason(reason, "cancel")?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    lifecycle::cancel(&w, &mut store, &req, reason)?;
    cx.ui.status(format!("{key}: {} -> cancelled", req.status));
    Ok(())
}

pub fn signoff(cx: &mut Ctx, key: &RequirementKey, note: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    // With Jira as the tracker, a sign-off is proven by whose Jira token signs it.
    let jira = cx.jira()?;
    crate::ops::project::prove_actor(&store, &jira, &key.project, &actor)?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    lifecycle::signoff(&w, &mut store, key, note)?;
    cx.ui.status(format!("{key}: signed off by {actor}"));
    Ok(())
}
