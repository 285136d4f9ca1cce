//! `xone deploy watch`: the post-release watch. For a window after a release, Prometheus is
//! asked whether an alert carrying the app's labels fired and whether its HTTP error ratio
//! crossed the threshold. The start is recorded, so a watch started again (after a closed
//! terminal) goes on from it; each check looks back over the whole time since the previous
//! one, so a gap between two runs is checked too.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::deploy::{self, Target};
use super::{complete, Ctx};
use crate::adapters::prometheus::Prometheus;
use crate::config;
use crate::domain::rollout;
use crate::store::{self, App, Env, Watch};
use crate::ui::{human_secs, Kind, Result, XoneError};

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
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: String,
    #[command(flatten)]
    pub at: Target,
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

const DEFAULT_LABELS: &str = r#"app="{app}",namespace="{namespace}""#;
const DEFAULT_ERROR_QUERY: &str = r#"sum(rate(http_server_requests_seconds_count{{labels},status=~"5.."}[5m])) / sum(rate(http_server_requests_seconds_count{{labels}}[5m]))"#;

/// The PromQL of the watch: the app's label matchers, its alerts, its error ratio.
pub fn queries(app: &App, env: &Env) -> (String, String) {
    let fill = |s: &str| {
        s.replace("{app}", &app.name)
            .replace("{namespace}", &env.namespace)
            .replace("{env}", &env.name)
    };
    let labels =
        fill(app.alert_labels.as_deref().or(env.alert_labels.as_deref()).unwrap_or(DEFAULT_LABELS));
    let error = app
        .error_query
        .as_deref()
        .or(env.error_query.as_deref())
        .unwrap_or(DEFAULT_ERROR_QUERY)
        .replace("{labels}", &labels);
    (labels, fill(&error))
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn run(cx: &mut Ctx, a: WatchArgs) -> Result<()> {
    let (app, env) = deploy::locate(cx, &a.app, &a.at)?;
    let Some(url) = env.prometheus.clone() else {
        return Err(XoneError::gate(format!(
            "environment {} has no Prometheus to watch with",
            env.name
        ))
        .hint(format!("xone project env set {} {} --prometheus URL", env.project, env.name)));
    };
    let actor = cx.actor()?;
    let interval = match a.interval {
        Some(i) => i,
        None => cx.config()?.duration("watch.interval").as_secs(),
    }
    .max(1);
    let cl = deploy::connect(cx, &env)?;
    let st = deploy::read_status(&cl, &app, &env)?.ok_or_else(|| {
        XoneError::not_found(format!(
            "{} is not deployed to {}: nothing to watch",
            app.name, env.name
        ))
    })?;
    let prom = Prometheus::new(&url, cx.remote()?)?;
    let (labels, error_query) = queries(&app, &env);
    // Go on with an unfinished watch of the same revision, from its recorded start.
    let mut store = cx.store()?;
    let open = store::watches(store.conn(), &app.project, Some(&app.name), Some(&env.name))?
        .into_iter()
        .find(|w| {
            w.status == "watching" && w.revision == st.revision && w.window_secs == a.window as i64
        });
    let watch = match open {
        Some(w) if !a.restart => {
            cx.ui.status(format!("going on with watch #{} started {}", w.id, w.started_at));
            w
        }
        _ => {
            let w = Watch {
                project: app.project.clone(),
                app: app.name.clone(),
                env: env.name.clone(),
                revision: st.revision,
                image: st.image.clone(),
                window_secs: a.window as i64,
                error_rate: a.error_rate,
                started_unix: now_unix(),
                actor: actor.clone(),
                ..Watch::default()
            };
            let id = store.write(|tx| store::start_watch(tx, &w))?;
            Watch { id, ..w }
        }
    };
    let bar = (cx.ui.stderr_tty && !cx.ui.json).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let end = watch.started_unix + watch.window_secs;
    // Each check covers the time since the previous one (since the start on the first), so
    // the gap while no watch ran is checked too. The watch must see the app at least once: a
    // selector that matches nothing would otherwise pass by seeing nothing.
    let mut last = watch.started_unix;
    let mut seen = false;
    let step = interval.clamp(1, 15);
    let verdict: std::result::Result<String, String> = loop {
        let now = now_unix();
        let span = (now - last).max(interval as i64).max(1);
        // One read of the Deployment: still the revision being watched?
        match cl.deployment(&st.deployment).map(|d| d.map(|d| rollout::revision(&d.metadata))) {
            Ok(Some(now)) if now == st.revision => {}
            Ok(Some(now)) => {
                break Err(format!(
                    "the Deployment moved from revision {} to {} during the watch",
                    st.revision.unwrap_or(0),
                    now.unwrap_or(0)
                ))
            }
            Ok(None) => break Err("the Deployment is gone".to_string()),
            Err(e) => break Err(format!("kubernetes: {}", e.message)),
        }
        let asked = (|| -> Result<(Vec<String>, f64, bool)> {
            let alerts = prom.query(&format!(
                r#"max_over_time(ALERTS{{alertstate="firing",{labels}}}[{span}s])"#
            ))?;
            let names = alerts
                .iter()
                .map(|s| {
                    s.labels.get("alertname").and_then(|v| v.as_str()).unwrap_or("?").to_string()
                })
                .collect();
            let ratio = prom
                .query(&format!("max_over_time(({error_query})[{span}s:{step}s])"))?
                .iter()
                .map(|s| s.value)
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max);
            let series = !prom.query(&format!("count({{{labels}}})"))?.is_empty();
            Ok((names, ratio, series))
        })();
        let (alerts, ratio, series) = match asked {
            Ok(a) => a,
            Err(e) => break Err(format!("prometheus: {}", e.message)),
        };
        seen |= series;
        if !alerts.is_empty() {
            break Err(format!("alert firing: {}", alerts.join(", ")));
        }
        if ratio > a.error_rate {
            break Err(format!("error ratio {ratio:.4} above {}", a.error_rate));
        }
        last = now;
        let left = end - now_unix();
        let line = format!(
            "{} in {}: {} left; no alert; error ratio {ratio:.4} (at most {})",
            app.name,
            env.name,
            human_secs(left),
            a.error_rate
        );
        match &bar {
            Some(b) => b.set_message(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
        if left <= 0 && !seen {
            break Err(format!(
                "Prometheus has no series labelled {labels}: the watch saw nothing of the app"
            ));
        }
        if left <= 0 {
            break Ok(format!("clean for {}", human_secs(watch.window_secs)));
        }
        std::thread::sleep(Duration::from_secs((interval as i64).min(left).max(1) as u64));
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match verdict {
        Ok(detail) => {
            store.write(|tx| store::finish_watch(tx, watch.id, "passed", &detail))?;
            cx.ui.status(format!("{} in {}: the watch passed ({detail})", app.name, env.name));
            print(cx, &store, &app, &env, watch.id)
        }
        Err(detail) if detail.starts_with("kubernetes: ") => {
            store.write(|tx| store::finish_watch(tx, watch.id, "failed", &detail))?;
            Err(XoneError::new(
                Kind::Remote,
                format!("the watch of {} in {} cannot read the cluster", app.name, env.name),
            )
            .cause(detail.trim_start_matches("kubernetes: "))
            .hint("the watch did not pass; start it again when the cluster answers"))
        }
        Err(detail) if detail.starts_with("prometheus: ") => {
            store.write(|tx| store::finish_watch(tx, watch.id, "failed", &detail))?;
            Err(XoneError::new(
                Kind::Remote,
                format!("the watch of {} in {} cannot ask Prometheus", app.name, env.name),
            )
            .cause(detail.trim_start_matches("prometheus: "))
            .hint("the watch did not pass; check Prometheus and start it again"))
        }
        Err(detail) => {
            let did = if a.rollback_on_alert {
                let name = st.deployment.clone();
                match super::deploy::rollback_for_watch(cx, &cl, &app, &env, &name) {
                    Ok(line) => line,
                    Err(e) => format!("the rollback failed: {}", e.message),
                }
            } else {
                format!("nothing rolled back: xone rollback {} --env {}", app.name, env.name)
            };
            let full = format!("{detail}; {did}");
            store.write(|tx| store::finish_watch(tx, watch.id, "failed", &full))?;
            if cx.ui.json {
                print(cx, &store, &app, &env, watch.id)?;
            }
            Err(XoneError::new(
                Kind::Rollout,
                format!("the watch of {} in {} failed: {detail}", app.name, env.name),
            )
            .hint(did))
        }
    }
}

fn print(cx: &mut Ctx, store: &store::Store, app: &App, env: &Env, id: i64) -> Result<()> {
    if !cx.ui.json {
        return Ok(());
    }
    let w = store::watches(store.conn(), &app.project, Some(&app.name), Some(&env.name))?
        .into_iter()
        .find(|w| w.id == id);
    cx.ui.print_json(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_queries_select_the_app_in_its_namespace() {
        let app = App { name: "web".into(), ..App::default() };
        let env = Env { name: "prod".into(), namespace: "pay".into(), ..Env::default() };
        let (labels, error) = queries(&app, &env);
        assert_eq!(labels, r#"app="web",namespace="pay""#);
        assert!(
            error.contains(
                r#"http_server_requests_seconds_count{app="web",namespace="pay",status=~"5.."}"#
            ),
            "{error}"
        );
        let env = Env { alert_labels: Some(r#"service="{app}-{env}""#.into()), ..env };
        assert_eq!(queries(&app, &env).0, r#"service="web-prod""#);
    }
}
