//! `xone deploy`: an app's image rolled out to an environment's cluster; `deploy
//! status|history|watch` read what runs and watch it after a release.

mod history;
mod status;
mod watch;

use clap::{Args, Subcommand, ValueEnum};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::{AtEnv, Ctx};
use crate::complete;
use crate::domain::manifest;
use crate::domain::RequirementKey;
use crate::ops::bluegreen;
use crate::ops::release::{self, Source};
use crate::ops::target;
use crate::ui::{Result, XoneError};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = "\
Renders APP's Deployment (image pinned by digest when the build pushed one, the app's port, \
replicas for ENV, readiness and liveness probes on its health path) and Service, or takes the \
app's own manifests and sets its container's image, and applies them server-side as field \
manager xone. The objects carry app.kubernetes.io/name, app.kubernetes.io/managed-by=xone and \
annotations naming the requirement, build, image and deployer (kubernetes.io/change-cause \
too). It waits by default, everywhere, for the rollout (followed through watches; --no-wait returns once it is applied), and the exit code is the rollout's; a \
rollout that fails (progress deadline, pods in ImagePullBackOff or CrashLoopBackOff) is rolled \
back to the previous revision unless --no-rollback, and xone exits 7 saying what failed and \
what it did. --dry-run prints the manifests as YAML and touches nothing. \
--strategy blue-green brings the other colour (APP-blue or APP-green, pods labelled \
xone.io/color) up at full size, waits until it is Available, switches the Service's selector to \
it, and keeps the colour it replaced for --keep (default 1h): `xone rollback` switches back at \
once. A failed colour is removed and the Service is left as it was. An app released \
blue-green is deployed blue-green (a rolling deploy is refused, exit 4). \
JSON: {\"id\", \"project\", \"app\", \"env\", \"kind\": deploy|rollback, \"requirement\", \"build\", \
\"image\", \"sha\", \"context\", \"namespace\", \"status\": rolling|succeeded|failed|rolled-back|applied|interrupted, \
\"revision\", \"prev_revision\", \"prev_rs\", \"detail\", \"started_at\", \"finished_at\", \"actor\"}; \
with --dry-run, the objects"
)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub cmd: Option<DeployCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Strategy {
    Rolling,
    Recreate,
    /// The other colour at full size, then the Service switched to it
    BlueGreen,
}

#[derive(Args, Debug)]
#[group(id = "what", required = true, multiple = false, args = ["build", "image"])]
pub struct RunArgs {
    /// The app to deploy
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: Option<String>,
    #[command(flatten)]
    pub at: AtEnv,
    /// Deploy the image of this build (pinned by its digest when it was pushed)
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
    /// Deploy this image reference
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The requirement this deployment serves (default: the build's)
    #[arg(long, value_name = "KEY", value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// How pods are replaced
    #[arg(long, value_enum, default_value = "rolling")]
    pub strategy: Strategy,
    /// With blue-green: how long the colour replaced keeps running for `xone rollback`
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub keep: Option<u64>,
    /// Follow the rollout to its end (the default; kept for scripts that say so)
    #[arg(long, conflicts_with = "no_wait")]
    pub wait: bool,
    /// Apply and return without following the rollout
    #[arg(long)]
    pub no_wait: bool,
    /// Print the manifests and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Create the namespace when it does not exist
    #[arg(long)]
    pub create_namespace: bool,
    /// Leave a failed rollout as it is instead of rolling back
    #[arg(long)]
    pub no_rollback: bool,
    /// Take over fields another field manager owns
    #[arg(long)]
    pub force_conflicts: bool,
}

#[derive(Subcommand, Debug)]
pub enum DeployCommand {
    /// What runs now, read from the cluster: revision, image and digest, requirement,
    /// replicas, conditions
    #[command(after_long_help = "\
Settles the local record of a rollout that was interrupted or not waited for. JSON: {\"app\", \
\"env\", \"context\", \"namespace\", \"deployment\", \"revision\", \"image\", \"digest\", \"requirement\", \
\"build\", \"deployed_by\", \"change_cause\", \"rollout\": complete|progressing|failed|pending, \
\"replicas\": {\"desired\", \"updated\", \"ready\", \"available\", \"total\"}, \"conditions\": [{\"type\", \
\"status\", \"reason\", \"message\"}], \"record\": the latest deployment record or null}")]
    Status {
        /// The app's name (`xone project app list KEY` shows them)
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
        #[command(flatten)]
        at: AtEnv,
    },
    /// One row per revision, from the Deployment's ReplicaSets and their annotations
    #[command(after_long_help = "\
JSON: [{\"revision\", \"image\", \"requirement\", \"build\", \"deployed_by\", \"change_cause\", \
\"created\", \"replicas\", \"current\"}], oldest first")]
    History {
        /// The app's name (`xone project app list KEY` shows them)
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
        #[command(flatten)]
        at: AtEnv,
    },
    /// The post-release watch: firing alerts and the HTTP error ratio on Prometheus
    Watch(watch::WatchArgs),
}

pub fn run(cx: &mut Ctx, a: DeployArgs) -> Result<()> {
    match a.cmd {
        Some(DeployCommand::Status { app, at }) => status::run(cx, &app, &at),
        Some(DeployCommand::History { app, at }) => history::run(cx, &app, &at),
        Some(DeployCommand::Watch(w)) => watch::run(cx, w),
        None => deploy(cx, a.run),
    }
}

fn deploy(cx: &mut Ctx, a: RunArgs) -> Result<()> {
    let app_name =
        a.app.clone().ok_or_else(|| XoneError::usage("which app? xone deploy APP --env ENV"))?;
    if !a.dry_run {
        cx.push_queued();
    }
    let mut store = cx.store()?;
    let (app, env) = target::locate(&store, &app_name, a.at.project.as_ref(), a.at.env.as_deref())?;
    let actor = cx.actor()?;
    let source = match (a.build, &a.image) {
        (Some(id), _) => Source::Build(id),
        (None, Some(i)) => Source::Image(i),
        (None, None) => return Err(XoneError::usage("deploy what? --build ID or --image IMAGE")),
    };
    let strategy = match a.strategy {
        Strategy::Rolling => release::Strategy::Rolling,
        Strategy::Recreate => release::Strategy::Recreate,
        Strategy::BlueGreen => release::Strategy::Rolling,
    };
    let blue_green = matches!(a.strategy, Strategy::BlueGreen);
    if a.keep.is_some() && !blue_green {
        return Err(XoneError::usage("--keep is for --strategy blue-green"));
    }
    let forges = cx.forges()?;
    let wait = cx.waits(a.wait, a.no_wait);
    let scope = cx.scope()?;
    let plan = release::plan(
        &scope,
        &store,
        &forges,
        app,
        env,
        source,
        a.requirement.as_ref(),
        strategy,
        &actor,
    )?;
    if a.dry_run {
        if cx.ui.json {
            return cx.ui.print_json(&plan.objects);
        }
        write!(cx.ui.out(), "{}", manifest::to_yaml(&plan.objects))?;
        return Ok(());
    }
    let options = release::Options {
        wait,
        create_namespace: a.create_namespace,
        no_rollback: a.no_rollback,
        force_conflicts: a.force_conflicts,
    };
    let record = if blue_green {
        let keep = a.keep.unwrap_or(3600);
        bluegreen::deploy(&scope, &mut store, &plan, keep, &options, &actor)?
    } else {
        release::deploy(&scope, &mut store, &plan, &options, &actor)?
    };
    cx.link_deploy(&record);
    if cx.ui.json {
        return cx.ui.print_json(&record);
    }
    Ok(())
}
