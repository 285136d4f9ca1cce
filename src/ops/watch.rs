//! The post-release watch. For a window after a release, Prometheus is asked whether an
//! alert carrying the app's labels fired and whether its HTTP error ratio crossed the
//! threshold. The start is recorded, so a watch started again (after a closed terminal) goes
//! on from it; each check looks back over the whole time since the previous one, so a gap
//! between two runs is checked too.

use std::time::{Duration, Instant};

use super::revisions::{self, Status};
use super::rollback;
use super::target::Target;
use super::{events, notify, Actor, Scope};
use crate::adapters::prometheus::Prometheus;
use crate::clock;
use crate::domain::rollout;
use crate::store::{self, App, Env, Store, Watch, WatchStatus};
use crate::ui::{human_secs, Result, XoneError};

/// What a watch is asked to do.
pub struct Request {
    /// How long the release must stay clean, in seconds.
    pub window: u64,
    /// The highest HTTP error ratio allowed.
    pub error_rate: f64,
    /// Roll the app back to its previous revision when the watch fails.
    pub rollback_on_alert: bool,
    /// How often to ask, in seconds (default: `watch.interval`).
    pub interval: Option<u64>,
    /// Start a new watch even when one of this revision is under way.
    pub restart: bool,
}

/// A system the watch could not ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Kubernetes,
    Prometheus,
}

impl System {
    fn as_str(self) -> &'static str {
        match self {
            System::Kubernetes => "kubernetes",
            System::Prometheus => "prometheus",
        }
    }
}

/// How a watch ended.
pub enum Verdict {
    /// The window passed clean; the text says so.
    Passed(String),
    /// The release failed the watch: why, and what xone did about it.
    Failed { reason: String, did: String },
    /// A system could not be asked: the watch did not pass.
    Unreachable { system: System, error: XoneError },
}

/// A finished watch: its record and its verdict.
pub struct Outcome {
    pub watch: Watch,
    pub verdict: Verdict,
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

/// Watches the app in its environment until the window passes or something fails, and
/// records the outcome. With `rollback_on_alert`, a failed release is rolled back first.
pub fn watch(
    scope: &Scope,
    store: &mut Store,
    app: App,
    env: Env,
    req: &Request,
    actor: &Actor,
) -> Result<Outcome> {
    let Some(url) = env.prometheus.clone() else {
        return Err(XoneError::gate(format!(
            "environment {} has no Prometheus to watch with",
            env.name
        ))
        .hint(format!("xone project env set {} {} --prometheus URL", env.project, env.name)));
    };
    let actor = actor.clone()?;
    let actor = actor.as_str();
    let interval = match req.interval {
        Some(i) => i,
        None => scope.config.duration("watch.interval").as_secs(),
    }
    .max(1);
    let t = Target::connect(app, env, scope.remote.clone())?;
    let st = revisions::read_status(&t.cluster, &t.app, &t.env)?.ok_or_else(|| {
        XoneError::not_found(format!(
            "{} is not deployed to {}: nothing to watch",
            t.app.name, t.env.name
        ))
    })?;
    let prom = Prometheus::new(&url, scope.remote.clone())?;
    let (app, env) = (&t.app, &t.env);
    // Go on with an unfinished watch of the same revision, from its recorded start.
    let open = store::watches(store.conn(), &app.project, Some(&app.name), Some(&env.name))?
        .into_iter()
        .find(|w| {
            w.status == WatchStatus::Watching
                && w.revision == st.revision
                && w.window_secs == req.window as i64
        });
    let watch = match open {
        Some(w) if !req.restart => {
            scope.ui.status(format!("going on with watch #{} started {}", w.id, w.started_at));
            w
        }
        _ => {
            let w = Watch {
                project: app.project.clone(),
                app: app.name.clone(),
                env: env.name.clone(),
                revision: st.revision,
                image: st.image.clone(),
                window_secs: req.window as i64,
                error_rate: req.error_rate,
                started_unix: clock::unix_now(),
                actor: actor.to_string(),
                ..Watch::default()
            };
            let id = store.write(|tx| store::start_watch(tx, &w))?;
            Watch { id, ..w }
        }
    };
    let checks = Checks { t: &t, st: &st, prom: &prom, req, interval };
    let verdict = checks.run(scope, &watch);
    // The watch's result goes on the story of the requirement whose release it watched.
    let story = st.requirement.as_deref();
    let on = format!("{} in {}", app.name, env.name);
    let verdict = match verdict {
        Verdict::Passed(detail) => {
            store.write(|tx| {
                notify::finish_watch(actor, tx, &watch, story, WatchStatus::Passed, &detail)?;
                events::on_requirement(tx, story, actor, "watch", format!("{on}: passed, {detail}"))
            })?;
            Verdict::Passed(detail)
        }
        Verdict::Unreachable { system, error } => {
            let detail = format!("{}: {}", system.as_str(), error.message);
            store.write(|tx| {
                notify::finish_watch(actor, tx, &watch, story, WatchStatus::Failed, &detail)?;
                let text = format!("{on}: did not pass, {detail}");
                events::on_requirement(tx, story, actor, "watch", text)
            })?;
            Verdict::Unreachable { system, error }
        }
        Verdict::Failed { reason, .. } => {
            let did = if req.rollback_on_alert {
                match rollback::rollback_after_watch(scope, store, &t, &st.deployment, actor) {
                    Ok(line) => line,
                    Err(e) => format!("the rollback failed: {}", e.message),
                }
            } else {
                format!("nothing rolled back: xone rollback {} --env {}", app.name, env.name)
            };
            let full = format!("{reason}; {did}");
            store.write(|tx| {
                notify::finish_watch(actor, tx, &watch, story, WatchStatus::Failed, &full)?;
                events::on_requirement(tx, story, actor, "watch", format!("{on}: failed, {full}"))
            })?;
            Verdict::Failed { reason, did }
        }
    };
    let watch = store::watches(store.conn(), &app.project, Some(&app.name), Some(&env.name))?
        .into_iter()
        .find(|w| w.id == watch.id)
        .unwrap_or(watch);
    Ok(Outcome { watch, verdict })
}

/// One watch's checks, asked every interval until the window ends.
struct Checks<'a> {
    t: &'a Target,
    st: &'a Status,
    prom: &'a Prometheus,
    req: &'a Request,
    interval: u64,
}

impl Checks<'_> {
    fn run(&self, scope: &Scope, watch: &Watch) -> Verdict {
        let (app, env, st, prom) = (&self.t.app, &self.t.env, self.st, self.prom);
        let (labels, error_query) = queries(app, env);
        let progress = scope.ui.progress(Duration::from_millis(200));
        let end = watch.started_unix + watch.window_secs;
        let interval = self.interval;
        // Each check covers the time since the previous one (since the start on the first),
        // so the gap while no watch ran is checked too. The watch must see the app at least
        // once: a selector that matches nothing would otherwise pass by seeing nothing.
        let mut last = watch.started_unix;
        let mut seen = false;
        // Checks start every `interval`, however long one takes: a firing alert is acted on
        // within one interval of its firing.
        let mut next = Instant::now();
        let step = interval.clamp(1, 15);
        let failed = |reason: String| Verdict::Failed { reason, did: String::new() };
        loop {
            let now = clock::unix_now();
            let span = (now - last).max(interval as i64).max(1);
            // One read of the Deployment: still the revision being watched?
            let read = self.t.cluster.deployment(&st.deployment);
            match read.map(|d| d.map(|d| rollout::revision(&d.metadata))) {
                Ok(Some(now)) if now == st.revision => {}
                Ok(Some(now)) => {
                    return failed(format!(
                        "the Deployment moved from revision {} to {} during the watch",
                        st.revision.unwrap_or(0),
                        now.unwrap_or(0)
                    ))
                }
                Ok(None) => return failed("the Deployment is gone".to_string()),
                Err(error) => return Verdict::Unreachable { system: System::Kubernetes, error },
            }
            let asked = (|| -> Result<(Vec<String>, f64, bool)> {
                let alerts = prom.query(&format!(
                    r#"max_over_time(ALERTS{{alertstate="firing",{labels}}}[{span}s])"#
                ))?;
                let names = alerts
                    .iter()
                    .map(|s| {
                        s.labels
                            .get("alertname")
                            .and_then(|v| v.as_str())
                            .unwrap_or("?")
                            .to_string()
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
                Err(error) => return Verdict::Unreachable { system: System::Prometheus, error },
            };
            seen |= series;
            if !alerts.is_empty() {
                return failed(format!("alert firing: {}", alerts.join(", ")));
            }
            if ratio > self.req.error_rate {
                return failed(format!("error ratio {ratio:.4} above {}", self.req.error_rate));
            }
            last = now;
            let left = end - clock::unix_now();
            progress.say(format!(
                "{} in {}: {} left; no alert; error ratio {ratio:.4} (at most {})",
                app.name,
                env.name,
                human_secs(left),
                self.req.error_rate
            ));
            if left <= 0 && !seen {
                return failed(format!(
                    "Prometheus has no series labelled {labels}: the watch saw nothing of the app"
                ));
            }
            if left <= 0 {
                return Verdict::Passed(format!("clean for {}", human_secs(watch.window_secs)));
            }
            next += Duration::from_secs(interval);
            let until_next = next.saturating_duration_since(Instant::now());
            std::thread::sleep(until_next.min(Duration::from_secs(left as u64)));
        }
    }
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
