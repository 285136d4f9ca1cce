//! `xone rollback`: an app back to an earlier revision, or everything a requirement deployed.

use clap::Args;
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::{AtEnv, Ctx};
use crate::complete;
use crate::domain::RequirementKey;
use crate::ops::rollback::{self, Rollback};
use crate::ops::target::{self, Target};
use crate::store::{Deploy, DeployStatus};
use crate::ui::{Kind, Result, XoneError};

#[derive(Args, Debug)]
#[command(after_long_help = "\
APP --env ENV: as `kubectl rollout undo`, the pod template of the previous revision (or \
--to-revision N) is applied again and becomes the newest revision. --requirement KEY: every \
app and environment that requirement deployed to, newest first, back to the revision before \
its first deploy there; its gray releases in flight are aborted first. When the revisions \
rolled back also carry other requirements (deployed after it), they are named and it asks \
(--yes in scripts). One line per app, exit 7 if any failed. JSON: [the rollback records]")]
pub struct RollbackArgs {
    /// The app to roll back
    #[arg(add = ArgValueCandidates::new(complete::app_names), required_unless_present = "requirement", conflicts_with = "requirement")]
    pub app: Option<String>,
    #[command(flatten)]
    pub at: AtEnv,
    /// The revision to go back to (default: the one before the current)
    #[arg(long, value_name = "N")]
    pub to_revision: Option<i64>,
    /// Roll back everything this requirement deployed
    #[arg(long, value_name = "KEY", value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// Follow the rollback's rollout (the default; kept for scripts that say so)
    #[arg(long, conflicts_with = "no_wait")]
    pub wait: bool,
    /// Return once the old revision is applied
    #[arg(long)]
    pub no_wait: bool,
}

pub fn run(cx: &mut Ctx, a: RollbackArgs) -> Result<()> {
    let wait = cx.waits(a.wait, a.no_wait);
    cx.push_queued();
    if let Some(key) = &a.requirement {
        return requirement(cx, key, &a.at, wait);
    }
    let app_name = a.app.clone().expect("clap requires app or --requirement");
    let mut store = cx.store()?;
    let (app, env) = target::locate(&store, &app_name, a.at.project.as_ref(), a.at.env.as_deref())?;
    let t = Target::connect(app, env, cx.remote()?)?;
    let actor = cx.actor();
    let scope = cx.scope()?;
    let done = rollback::rollback(&scope, &mut store, &t, a.to_revision, wait, &actor)?;
    let record = match done {
        Rollback::Skipped { revision } => {
            // As kubectl: nothing to do is not a failure.
            cx.ui.status(format!(
                "{} in {}: skipped, it already runs revision {revision}",
                t.app.name, t.env.name
            ));
            return if cx.ui.json { cx.ui.print_json(&Vec::<Deploy>::new()) } else { Ok(()) };
        }
        Rollback::Done(record) => record,
    };
    cx.link_deploy(&record);
    if cx.ui.json {
        cx.ui.print_json(&vec![&record])?;
    }
    if record.status == DeployStatus::Failed {
        return Err(XoneError::new(
            Kind::Rollout,
            format!("the rollback of {} in {} failed", t.app.name, t.env.name),
        )
        .cause(record.detail.unwrap_or_default()));
    }
    Ok(())
}

fn requirement(cx: &mut Ctx, key: &RequirementKey, at: &AtEnv, wait: bool) -> Result<()> {
    let mut store = cx.store()?;
    let actor = cx.actor();
    let forges = cx.forges()?;
    let scope = cx.scope()?;
    let done = rollback::rollback_requirement(
        &scope,
        &forges,
        &mut store,
        key,
        at.env.as_deref(),
        wait,
        &actor,
    )?;
    for r in &done.records {
        cx.link_deploy(r);
    }
    if cx.ui.json {
        cx.ui.print_json(&done.records)?;
    }
    if done.failed > 0 {
        return Err(XoneError::new(
            Kind::Rollout,
            format!("{} of {} rollbacks of {key} failed", done.failed, done.tried),
        )
        .hint("see each line above; `xone deploy status APP --env ENV` shows what runs"));
    }
    if !done.unreadable.is_empty() {
        let mut err = XoneError::new(
            Kind::Remote,
            format!("the rollback of {key} may be incomplete: some clusters cannot be read"),
        );
        for u in &done.unreadable {
            err = err.cause(u);
        }
        return Err(err.hint("check them with `xone doctor`, then run this again"));
    }
    Ok(())
}
