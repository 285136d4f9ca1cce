//! `xone gray`: gray (canary) releases by instances, with the whole state in the cluster.

use clap::{Args, Subcommand};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::{AtEnv, Ctx};
use crate::complete;
use crate::config;
use crate::domain::gray::{Phase, Step};
use crate::domain::judge::Judgement;
use crate::domain::{ProjectKey, RequirementKey};
use crate::ops::gray::{self, Forced, Start, Status, Watched};
use crate::ops::release::Source;
use crate::ops::target;
use crate::store;
use crate::ui::{human_secs, safe, table, Kind, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum GrayCommand {
    /// Put a new version on some of an app's instances, beside the stable version
    Start(StartArgs),
    /// Where a gray release stands, recomputed from the cluster and Prometheus
    #[command(after_long_help = STATUS_JSON)]
    Status(At),
    /// Every gray release in flight, in every environment of the project (or one)
    #[command(after_long_help = "\
Reads each environment's cluster. JSON: [{\"project\", \"env\", \"app\", \"phase\", \"canary_image\", \
\"stable_image\", \"stable_replicas\", \"steps\", \"step\" (counted from 0), \"step_started_at\", \
\"pause_secs\", \"analyses\", \"requirement\", \"build\", \"nodes\", \"started_at\", \"started_by\", \
\"passed\", \"marks\"}]")]
    List(ListArgs),
    /// Widen to the next step once the pause has passed and the analyses pass (the last step promotes)
    #[command(after_long_help = "\
Exits 4 saying why when the release pauses, an analysis fails, or an analysis holds for want \
of samples; --force --reason takes the step anyway and records it. JSON: as `gray status`")]
    Step(StepArgs),
    /// Hold a gray release where it is: no step is taken until it is resumed
    #[command(after_long_help = "JSON: as `gray status`")]
    Pause(At),
    /// Let a paused gray release go on
    #[command(after_long_help = "JSON: as `gray status`")]
    Resume(At),
    /// Put the canary's image on every instance now, and remove the canary
    #[command(after_long_help = "\
The stable Deployment takes the canary's image (by digest where its pods report one) at all its \
replicas, rolled out and followed as deploy follows it (rolled back if it fails, the release \
going on where it was); then the canary goes, and the release watch starts: `xone deploy watch \
APP --env ENV` goes on with it for gates.watch_window. Whether the analyses passed is recorded. \
A promotion cut short is finished by running it again. JSON: as `gray status`")]
    Promote(At),
    /// Pull a gray release back: the stable returns to its replicas and image, the canary goes
    #[command(after_long_help = "JSON: as `gray status`")]
    Abort(AbortArgs),
    /// Evaluate a gray release every interval; with --auto, step it on when due
    #[command(after_long_help = "\
Runs until the release is promoted or aborted. A critical analysis that fails (error-rate, \
restarts) or a canary whose pods fail aborts it, and xone exits 7 saying what failed. Killed \
and started again, anywhere, it goes on from the cluster's state. JSON: as `gray status`, at \
the end")]
    Watch(WatchArgs),
}

const STATUS_JSON: &str = "\
JSON: {\"app\", \"env\", \"namespace\", \"phase\": progressing|paused|promoted|aborted, \"step\" \
(from 1), \"steps\", \"instances\" (the canary's at each step; by weight, its share in %), \"weight\", \"router\": {\"kind\", \"name\", \"service\"} or null, \"canary_image\", \"canary_digest\", \"stable_image\", \
\"requirement\", \"build\", \"step_started_at\", \"pause_secs\", \"pause_left_secs\", \"nodes\", \
\"canary\" and \"stable\": {\"deployment\", \"image\", \"replicas\", \"ready\", \"pods\": [{\"name\", \
\"image\", \"digest\", \"ready\", \"restarts\", \"node\"}]}, \"analyses\": [{\"name\", \"critical\", \
\"verdict\": pass|fail|hold, \"why\", \"canary\", \"stable\", \"canary_samples\", \
\"stable_samples\"}], \"started_at\", \"started_by\", \"passed\", \"marks\": [{\"at\", \"actor\", \
\"action\", \"detail\", \"forced\"}]}";

/// The app and where.
#[derive(Args, Debug)]
pub struct At {
    /// The app's name (`xone project app list KEY` shows them)
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: String,
    #[command(flatten)]
    pub at: AtEnv,
}

#[derive(Args, Debug)]
#[group(id = "what", required = true, multiple = false, args = ["build", "image"])]
#[command(after_long_help = "\
The canary is a Deployment APP-canary made from the stable's, its pods labelled \
xone.io/track: canary, so that the app's Service sends them their share. At each step the \
canary grows and becomes Available before the stable shrinks by as many: \"2 of 3\" is 2 canary \
pods and 1 stable. The state (images, replicas, steps, pause, analyses, who) is kept in the \
ConfigMap xone-gray-APP in the namespace, so any machine carries it on. An app with a gray \
release in flight cannot be deployed (exit 5) until it is promoted or aborted. Analyses \
compare canary and stable pods on Prometheus over gray.window: error-rate and restarts \
(critical), latency, cpu, memory, gc-time, gc-count; [analysis.NAME] in the config changes or \
adds them. With --weight, the canary takes that share of the traffic instead, through a canary \
Ingress of ingress-nginx or the weighted backends of a Gateway API HTTPRoute, and a Service of \
its own; the stable keeps all its instances. JSON: as `gray status`")]
pub struct StartArgs {
    /// The app to release
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: String,
    #[command(flatten)]
    pub at: AtEnv,
    /// Release the image of this build (pinned by its digest when it was pushed)
    #[arg(long, value_name = "ID")]
    pub build: Option<i64>,
    /// Release this image reference
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Instances the canary starts on (default 1); then all of them
    #[arg(long, value_name = "N", conflicts_with_all = ["weight", "steps"], value_parser = clap::value_parser!(u32).range(1..))]
    pub instances: Option<u32>,
    /// A share of the traffic instead (1-99), where a router splits it: an ingress-nginx Ingress or a Gateway API HTTPRoute in front of the app's Service
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(1..100))]
    pub weight: Option<u32>,
    /// The canary's instances at each step, counts (1,2,3) or shares of the replicas (33%,66%,100%); the last is full promotion
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_step)]
    pub steps: Vec<Step>,
    /// How long each step runs before the next may be taken (s m h d w: 7d); without it a person steps it on
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub pause: Option<u64>,
    /// An analysis to judge the canary by (repeat; default: all seven built-in ones)
    #[arg(long = "analysis", value_name = "NAME")]
    pub analyses: Vec<String>,
    /// Keep the canary's pods on these nodes (names as `kubectl get nodes` shows them)
    #[arg(long, value_name = "NODE,...", value_delimiter = ',')]
    pub on_nodes: Vec<String>,
    /// The requirement this release serves (default: the build's)
    #[arg(long, value_name = "KEY", value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// Return once the canary is applied; the next gray command shrinks the stable
    #[arg(long)]
    pub no_wait: bool,
}

fn parse_step(s: &str) -> std::result::Result<Step, String> {
    s.parse()
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this environment
    #[arg(long, value_name = "ENV", add = ArgValueCandidates::new(complete::env_names))]
    pub env: Option<String>,
    /// Only this project (default: the one of the working directory, else every project)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    /// Show promoted and aborted ones too
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct StepArgs {
    #[command(flatten)]
    pub at: At,
    /// Take the step though the pause or the analyses would not let it (needs --reason)
    #[arg(long)]
    pub force: bool,
    /// Why the step is forced (recorded)
    #[arg(long, value_name = "TEXT", requires = "force")]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct AbortArgs {
    #[command(flatten)]
    pub at: At,
    /// Why it is pulled back (recorded)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub at: At,
    /// Step on whenever the pause has passed and every analysis passes
    #[arg(long)]
    pub auto: bool,
    /// How often to evaluate (default: gray.interval)
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub interval: Option<u64>,
}

pub fn run(cx: &mut Ctx, c: GrayCommand) -> Result<()> {
    // A command that changes a release talks to remote systems: what waits for Jira goes first.
    if !matches!(c, GrayCommand::Status(_) | GrayCommand::List(_)) {
        cx.push_queued();
    }
    match c {
        GrayCommand::Start(a) => start(cx, a),
        GrayCommand::Status(a) => {
            let store = cx.store()?;
            let (app, env) = locate(&store, &a)?;
            let actor = cx.actor()?;
            let scope = cx.scope()?;
            let st = gray::status(&scope, app, env, &actor)?;
            show(cx, &st)
        }
        GrayCommand::List(a) => list(cx, a),
        GrayCommand::Step(a) => {
            let mut store = cx.store()?;
            let (app, env) = locate(&store, &a.at)?;
            let reason = if a.force { Some(cx.reason(a.reason, "force this step")?) } else { None };
            let actor = cx.actor()?;
            let scope = cx.scope()?;
            let forced = reason.as_deref().map(|reason| Forced { reason });
            let st = gray::step(&scope, &mut store, app, env, forced, &actor)?;
            link(cx, &st);
            show(cx, &st)
        }
        GrayCommand::Pause(a) => pause(cx, a, true),
        GrayCommand::Resume(a) => pause(cx, a, false),
        GrayCommand::Promote(a) => {
            let mut store = cx.store()?;
            let (app, env) = locate(&store, &a)?;
            let actor = cx.actor()?;
            let scope = cx.scope()?;
            let st = gray::promote(&scope, &mut store, app, env, &actor)?;
            link(cx, &st);
            show(cx, &st)
        }
        GrayCommand::Abort(a) => {
            let mut store = cx.store()?;
            let (app, env) = locate(&store, &a.at)?;
            let actor = cx.actor()?;
            let scope = cx.scope()?;
            let st = gray::abort(&scope, &mut store, app, env, a.reason.as_deref(), &actor)?;
            link(cx, &st);
            show(cx, &st)
        }
        GrayCommand::Watch(a) => watch(cx, a),
    }
}

fn locate(store: &store::Store, a: &At) -> Result<(store::App, store::Env)> {
    target::locate(store, &a.app, a.at.project.as_ref(), a.at.env.as_deref())
}

fn start(cx: &mut Ctx, a: StartArgs) -> Result<()> {
    let mut store = cx.store()?;
    let at = At { app: a.app.clone(), at: a.at.clone() };
    let (app, env) = locate(&store, &at)?;
    let actor = cx.actor()?;
    let source = match (a.build, &a.image) {
        (Some(id), _) => Source::Build(id),
        (None, Some(i)) => Source::Image(i),
        (None, None) => {
            return Err(XoneError::usage("gray-release what? --build ID or --image IMAGE"))
        }
    };
    let wait = cx.waits(false, a.no_wait);
    let s = Start {
        source,
        requirement: a.requirement.as_ref(),
        instances: a.instances,
        weight: a.weight,
        steps: a.steps,
        pause: a.pause,
        analyses: a.analyses,
        nodes: a.on_nodes,
        wait,
    };
    let scope = cx.scope()?;
    let st = gray::start(&scope, &mut store, app, env, &s, &actor)?;
    link(cx, &st);
    show(cx, &st)
}

fn pause(cx: &mut Ctx, a: At, hold: bool) -> Result<()> {
    let mut store = cx.store()?;
    let (app, env) = locate(&store, &a)?;
    let actor = cx.actor()?;
    let scope = cx.scope()?;
    let st = gray::pause(&scope, &mut store, app, env, hold, &actor)?;
    link(cx, &st);
    show(cx, &st)
}

fn list(cx: &mut Ctx, a: ListArgs) -> Result<()> {
    let store = cx.store()?;
    let project = cx.project_or_here(&store, a.project.as_ref())?;
    let projects: Vec<ProjectKey> = match project {
        Some(p) => vec![p],
        None => store::projects(store.conn(), false)?
            .into_iter()
            .filter_map(|p| p.key.parse().ok())
            .collect(),
    };
    let mut envs = Vec::new();
    for p in &projects {
        envs.extend(
            store::envs(store.conn(), p)?
                .into_iter()
                .filter(|e| a.env.as_ref().is_none_or(|n| &e.name == n)),
        );
    }
    if let (Some(name), true) = (&a.env, envs.is_empty()) {
        return Err(XoneError::not_found(format!("no project has an environment {name}"))
            .hint("xone project env list KEY shows them"));
    }
    let scope = cx.scope()?;
    let (rows, unreadable) = gray::list(&scope, &envs, a.all)?;
    let unread = || -> Result<()> {
        if unreadable.is_empty() {
            return Ok(());
        }
        Err(XoneError::new(
            Kind::Remote,
            format!(
                "the clusters of {} cannot be read: the list may miss some",
                unreadable.join(", ")
            ),
        )
        .hint("`xone doctor` checks them"))
    };
    if cx.ui.json {
        cx.ui.print_json(&rows)?;
        return unread();
    }
    if rows.is_empty() {
        cx.ui.status("no gray release in flight");
        return unread();
    }
    let mut lines = vec![["APP", "ENV", "PHASE", "STEP", "CANARY", "STABLE", "BY", "STARTED"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let g = &r.gray;
        lines.push(vec![
            g.app.clone(),
            r.env.clone(),
            g.phase.to_string(),
            match g.weight() {
                Some(w) => format!("{}/{} ({w}%)", g.step + 1, g.steps.len()),
                None => format!(
                    "{}/{} ({} of {})",
                    g.step + 1,
                    g.steps.len(),
                    g.canary_replicas(),
                    g.stable_replicas
                ),
            },
            g.canary_image.clone(),
            g.stable_image.clone(),
            g.started_by.clone(),
            cx.ui.when(&g.started_at),
        ]);
    }
    write!(cx.ui.out(), "{}", safe(&table(&lines)))?;
    unread()
}

fn watch(cx: &mut Ctx, a: WatchArgs) -> Result<()> {
    let mut store = cx.store()?;
    let (app, env) = locate(&store, &a.at)?;
    let actor = cx.actor()?;
    let scope = cx.scope()?;
    let done = gray::watch(&scope, &mut store, app, env, a.auto, a.interval, &actor)?;
    match done {
        Watched::Promoted(st) => {
            link(cx, &st);
            cx.ui.status(format!("{} in {}: promoted", st.app, st.env));
            if cx.ui.json {
                cx.ui.print_json(&st)?;
            }
            Ok(())
        }
        Watched::AbortedElsewhere(st) => {
            if cx.ui.json {
                cx.ui.print_json(&st)?;
            }
            let by = st
                .marks
                .last()
                .map(|m| format!("{} ({})", m.actor, m.detail.clone().unwrap_or_default()));
            Err(XoneError::new(
                Kind::Rollout,
                format!("the gray release of {} in {} was aborted", st.app, st.env),
            )
            .cause(by.unwrap_or_default()))
        }
        Watched::Aborted { status, why } => {
            link(cx, &status);
            if cx.ui.json {
                cx.ui.print_json(&status)?;
            }
            Err(XoneError::new(
                Kind::Rollout,
                format!("the gray release of {} in {} failed: {why}", status.app, status.env),
            )
            .hint("aborted: the canary is gone and the stable runs as before"))
        }
    }
}

fn number(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 1e6 => format!("{:.3e}", v),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// A gray release for a requirement is linked in its tracker, its title saying where it is.
fn link(cx: &mut Ctx, st: &Status) {
    let id = format!("xone:gray:{}:{}:{}:{}", st.namespace, st.app, st.env, st.started_at);
    let title = format!(
        "gray release of {} in {}: {}, step {} of {}",
        st.app, st.env, st.phase, st.step, st.steps
    );
    cx.link_work(st.requirement.as_deref(), &id, &title, None);
}

fn show(cx: &mut Ctx, st: &Status) -> Result<()> {
    if cx.ui.json {
        return cx.ui.print_json(st);
    }
    let now = st.instances.get(st.step - 1).copied().unwrap_or(0);
    let share = match (&st.router, st.weight) {
        (Some(r), Some(w)) => {
            format!("{w}% of the traffic on the canary, through {} {}", r.kind, r.name)
        }
        _ => format!(
            "{now} of {} instances on the canary",
            st.instances.last().copied().unwrap_or(0)
        ),
    };
    let mut out = format!(
        "{} in {} ({}): {}, step {} of {} ({share})\n",
        st.app, st.env, st.namespace, st.phase, st.step, st.steps
    );
    for (label, t) in [("canary", &st.canary), ("stable", &st.stable)] {
        let pods: Vec<String> = t
            .pods
            .iter()
            .map(|p| {
                let node = p.node.as_deref().map(|n| format!(" on {n}")).unwrap_or_default();
                let restarts = if p.restarts > 0 {
                    format!(", {} restarts", p.restarts)
                } else {
                    String::new()
                };
                format!("{}{node}{}{restarts}", p.name, if p.ready { "" } else { " (not ready)" })
            })
            .collect();
        out.push_str(&format!(
            "  {label:<12}{} ({} of {} ready){}\n",
            t.image.as_deref().unwrap_or("-"),
            t.ready,
            t.replicas,
            if pods.is_empty() { String::new() } else { format!(": {}", pods.join(", ")) }
        ));
    }
    match (st.pause_secs, st.pause_left_secs) {
        (Some(p), Some(left)) if st.phase == Phase::Progressing || st.phase == Phase::Paused => {
            out.push_str(&format!(
                "  {:<12}{} left of {}\n",
                "pause",
                human_secs(left as i64),
                human_secs(p as i64)
            ));
        }
        _ => {}
    }
    if let Some(r) = &st.requirement {
        out.push_str(&format!("  {:<12}{r}\n", "requirement"));
    }
    if let Some(b) = st.build {
        out.push_str(&format!("  {:<12}#{b}\n", "build"));
    }
    out.push_str(&format!(
        "  {:<12}{} by {}\n",
        "started",
        cx.ui.when(&st.started_at),
        st.started_by
    ));
    if !st.analyses.is_empty() {
        let mut rows = vec![["ANALYSIS", "VERDICT", "CANARY", "STABLE", "SAMPLES", "WHY"]
            .map(String::from)
            .to_vec()];
        for o in &st.analyses {
            let why = match &o.judgement {
                Judgement::Pass => String::new(),
                Judgement::Fail(w) | Judgement::Hold(w) => w.clone(),
            };
            let name = if o.critical { format!("{} (critical)", o.name) } else { o.name.clone() };
            rows.push(vec![
                name,
                o.judgement.word().to_string(),
                number(o.canary),
                number(o.stable),
                format!("{}/{}", o.canary_samples, o.stable_samples),
                why,
            ]);
        }
        out.push('\n');
        out.push_str(&table(&rows));
    }
    write!(cx.ui.out(), "{}", safe(&out))?;
    Ok(())
}
