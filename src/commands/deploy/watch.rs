//! `xone deploy watch`: the post-release watch, on Prometheus.

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::super::{AtEnv, Ctx};
use crate::complete;
use crate::config;
use crate::ops::target;
use crate::ops::watch::{self, System, Verdict};
use crate::ui::{Kind, Result, XoneError};

#[derive(Args, Debug)]
#[command(after_long_help = "\
Asks Prometheus every watch.interval for firing alerts labelled with the app (ALERTS with the \
environment's or app's --alert-labels, by default app=\"APP\",namespace=\"NS\") and for its \
HTTP error ratio (by default Micrometer's http_server_requests_seconds_count with a 5xx status \
over all of it, rate over 5m). Exits 0 when the window passes clean; 7 when an alert fires or \
the ratio crosses --error-rate (rolling back first with --rollback-on-alert), when the \
Deployment moves to another revision, or when Prometheus has no series with the app's labels \
at all; 6 when Prometheus or the cluster cannot be asked. Each check covers the time since the \
previous one. Started again, a watch of the same revision goes on from its recorded start. \
JSON: {\"id\", \"project\", \"app\", \"env\", \"revision\", \"image\", \"window_secs\", \"error_rate\", \
\"status\": watching|passed|failed, \"detail\", \"started_at\", \"finished_at\", \"actor\"}")]
pub struct WatchArgs {
    /// The app's name (`xone project app list KEY` shows them)
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: String,
    #[command(flatten)]
    pub at: AtEnv,
    /// How long the release must stay clean
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_secs)]
    pub window: u64,
    /// The highest HTTP error ratio allowed (0.01 = 1 %)
    #[arg(long, value_name = "RATIO", default_value = "0.01", value_parser = parse_ratio)]
    pub error_rate: f64,
    /// Roll the app back to its previous revision when the watch fails
    #[arg(long)]
    pub rollback_on_alert: bool,
    /// How often to ask (default: watch.interval)
    #[arg(long, value_name = "DURATION", value_parser = parse_secs)]
    pub interval: Option<u64>,
    /// Start a new watch even when one of this revision is under way
    #[arg(long)]
    pub restart: bool,
}

fn parse_secs(s: &str) -> std::result::Result<u64, String> {
    config::parse_duration(s)
}

fn parse_ratio(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("'{s}' is not a ratio between 0 and 1 (e.g. 0.01 for 1 %)"))
}

pub fn run(cx: &mut Ctx, a: WatchArgs) -> Result<()> {
    let mut store = cx.store()?;
    let (app, env) = target::locate(&store, &a.app, a.at.project.as_ref(), a.at.env.as_deref())?;
    let actor = cx.actor();
    let request = watch::Request {
        window: a.window,
        error_rate: a.error_rate,
        rollback_on_alert: a.rollback_on_alert,
        interval: a.interval,
        restart: a.restart,
    };
    let scope = cx.scope()?;
    let done = watch::watch(&scope, &mut store, app, env, &request, &actor)?;
    let (app, env) = (&done.watch.app, &done.watch.env);
    match done.verdict {
        Verdict::Passed(detail) => {
            cx.ui.status(format!("{app} in {env}: the watch passed ({detail})"));
            if cx.ui.json {
                cx.ui.print_json(&done.watch)?;
            }
            Ok(())
        }
        Verdict::Unreachable { system, error } => {
            let (what, hint) = match system {
                System::Kubernetes => (
                    "cannot read the cluster",
                    "the watch did not pass; start it again when the cluster answers",
                ),
                System::Prometheus => (
                    "cannot ask Prometheus",
                    "the watch did not pass; check Prometheus and start it again",
                ),
            };
            Err(XoneError::new(Kind::Remote, format!("the watch of {app} in {env} {what}"))
                .cause(error.message)
                .hint(hint))
        }
        Verdict::Failed { reason, did } => {
            if cx.ui.json {
                cx.ui.print_json(&done.watch)?;
            }
            Err(XoneError::new(
                Kind::Rollout,
                format!("the watch of {app} in {env} failed: {reason}"),
            )
            .hint(did))
        }
    }
}
