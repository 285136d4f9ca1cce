//! `xone project env`: a project's environments (daily, test, gray, prod, …): the Kubernetes
//! context and namespace its apps run in, the Prometheus that watches them, the registry
//! their images go to, and the smoke check of a deployment.

use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use crate::complete;
use crate::domain::names::check_env;
use crate::domain::ProjectKey;
use crate::ops::events;
use crate::store::{self, Env};
use crate::ui::{safe_table, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Set an environment (settings not given keep their value)
    #[command(after_long_help = "\
A new environment needs --context (a context of the kubeconfig; KUBECONFIG honoured) and \
--namespace. --registry is where images for it go (REGISTRY[/PATH], no scheme); an app without \
its own --image is built as REGISTRY/APP. --smoke is run by the submitted -> testing gate on the \
test deployment, with XONE_APP, XONE_ENV, \
XONE_NAMESPACE and XONE_IMAGE set. JSON: as one entry of list")]
    Set(SetArgs),
    /// Remove an environment's settings (what was deployed to it stays on record; nothing in a
    /// cluster is touched)
    #[command(after_long_help = "Asks on a terminal; elsewhere needs --yes (exit 4 without it).")]
    Remove {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The environment's name, e.g. staging
        #[arg(add = ArgValueCandidates::new(complete::env_names))]
        env: String,
    },
    /// The project's environments
    #[command(
        after_long_help = "JSON: [{\"project\", \"name\", \"context\", \"namespace\", \"prometheus\", \"registry\", \"smoke\", \"alert_labels\", \"error_query\", \"set_at\"}]"
    )]
    List {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// The project's key, e.g. PAY
    #[arg(add = ArgValueCandidates::new(complete::project_keys))]
    pub key: ProjectKey,
    /// daily, test, gray, prod, or another name
    #[arg(value_parser = check_env, add = ArgValueCandidates::new(complete::env_names))]
    pub env: String,
    /// The kubeconfig context
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// The Kubernetes namespace
    #[arg(long, value_name = "NS", value_parser = check_namespace)]
    pub namespace: Option<String>,
    /// Prometheus's address (http://prometheus:9090)
    #[arg(long, value_name = "URL", value_parser = crate::config::check_url)]
    pub prometheus: Option<String>,
    /// The image registry, REGISTRY[/PATH] without a scheme
    #[arg(long, value_name = "REGISTRY", value_parser = check_registry)]
    pub registry: Option<String>,
    /// The smoke check of a deployment, run by the release gate (sh -c)
    #[arg(long, value_name = "CMD")]
    pub smoke: Option<String>,
    /// PromQL label matchers of an app's alerts and series for the release watch
    /// (default app="{app}",namespace="{namespace}"; {app}, {namespace}, {env} are filled in)
    #[arg(long, value_name = "MATCHERS")]
    pub alert_labels: Option<String>,
    /// PromQL of an app's HTTP error ratio (default: Micrometer's
    /// http_server_requests_seconds_count with a 5xx status over all of it, rate over 5m)
    #[arg(long, value_name = "PROMQL")]
    pub error_query: Option<String>,
}

/// A Kubernetes namespace: a DNS-1123 label.
fn check_namespace(s: &str) -> std::result::Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("invalid namespace '{s}': lower-case letters, digits and '-', at most 63, not starting or ending with '-'"))
    }
}

fn check_registry(s: &str) -> std::result::Result<String, String> {
    if s.contains("://") {
        return Err(format!("'{s}' has a scheme: give the registry as host[:port][/path]"));
    }
    let s = s.trim_end_matches('/');
    if s.is_empty() || s.contains(char::is_whitespace) || s.contains('@') {
        return Err(format!("'{s}' is not a registry: host[:port][/path]"));
    }
    Ok(s.to_string())
}

pub fn run(cx: &mut Ctx, cmd: EnvCommand) -> Result<()> {
    match cmd {
        EnvCommand::Set(a) => set(cx, a),
        EnvCommand::Remove { key, env } => remove(cx, &key, &env),
        EnvCommand::List { key } => {
            let store = cx.store()?;
            store::project(store.conn(), &key)?;
            let envs = store::envs(store.conn(), &key)?;
            if cx.ui.json {
                return cx.ui.print_json(&envs);
            }
            if envs.is_empty() {
                cx.ui.status(format!(
                    "{key} has no environments: xone project env set {key} test --context C --namespace NS"
                ));
                return Ok(());
            }
            let mut t = vec![vec![
                "ENV".into(),
                "CONTEXT".into(),
                "NAMESPACE".into(),
                "REGISTRY".into(),
                "PROMETHEUS".into(),
                "SMOKE".into(),
            ]];
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            for e in &envs {
                t.push(vec![
                    e.name.clone(),
                    e.context.clone(),
                    e.namespace.clone(),
                    dash(&e.registry),
                    dash(&e.prometheus),
                    dash(&e.smoke),
                ]);
            }
            write!(cx.ui.out(), "{}", safe_table(&t))?;
            Ok(())
        }
    }
}

fn set(cx: &mut Ctx, a: SetArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::active_project(store.conn(), &a.key)?;
    let old = store::envs(store.conn(), &a.key)?.into_iter().find(|e| e.name == a.env);
    let needs = |what: &str| {
        XoneError::usage(format!("environment {} of {} is new: it needs --{what}", a.env, a.key))
            .hint(format!(
                "xone project env set {} {} --context CONTEXT --namespace NS",
                a.key, a.env
            ))
    };
    let context = match (&a.context, &old) {
        (Some(c), _) => c.clone(),
        (None, Some(o)) => o.context.clone(),
        (None, None) => return Err(needs("context")),
    };
    // A context is checked against the kubeconfig in effect; on a machine without one (a
    // laptop setting up what CI deploys with) it is taken as given, with a warning.
    if a.context.is_some() {
        let found = crate::adapters::cluster::kubeconfig()?.is_some();
        if context == crate::adapters::cluster::IN_CLUSTER {
            // Set up on a laptop for the jobs that deploy from inside the cluster.
        } else if found {
            crate::adapters::cluster::check_context(&context)?;
        } else {
            cx.ui.warn(format!(
                "no kubeconfig here (KUBECONFIG, ~/.kube/config): context {context} is not checked"
            ));
        }
    }
    let namespace = match (&a.namespace, &old) {
        (Some(n), _) => n.clone(),
        (None, Some(o)) => o.namespace.clone(),
        (None, None) => return Err(needs("namespace")),
    };
    let keep = |new: &Option<String>, old: Option<&Option<String>>| {
        new.clone().or_else(|| old.cloned().flatten())
    };
    let env = Env {
        project: a.key.to_string(),
        name: a.env.clone(),
        context,
        namespace,
        prometheus: keep(&a.prometheus, old.as_ref().map(|o| &o.prometheus)),
        registry: keep(&a.registry, old.as_ref().map(|o| &o.registry)),
        smoke: keep(&a.smoke, old.as_ref().map(|o| &o.smoke)),
        alert_labels: keep(&a.alert_labels, old.as_ref().map(|o| &o.alert_labels)),
        error_query: keep(&a.error_query, old.as_ref().map(|o| &o.error_query)),
        set_at: String::new(),
    };
    store.write(|tx| {
        store::set_env(tx, &env)?;
        store::record(
            tx,
            &events::project(
                &a.key,
                &actor,
                "env set",
                format!("{}: {} / {}", env.name, env.context, env.namespace),
            ),
        )
    })?;
    let stored = store::envs(store.conn(), &a.key)?.into_iter().find(|e| e.name == a.env);
    if cx.ui.json {
        return cx.ui.print_json(&stored);
    }
    cx.ui.status(format!(
        "{} of {}: context {}, namespace {}",
        env.name, a.key, env.context, env.namespace
    ));
    Ok(())
}

fn remove(cx: &mut Ctx, key: &ProjectKey, name: &str) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::project(store.conn(), key)?;
    let env = crate::ops::target::find_env(&store, key, name)?;
    cx.ui.confirm_or_stop(&format!("Remove environment {name} of {key}?"), "nothing removed")?;
    store.write(|tx| {
        store::delete_env(tx, key, name)?;
        let detail = format!("{name}: {} / {}", env.context, env.namespace);
        store::record(tx, &events::project(key, &actor, "env remove", detail))
    })?;
    cx.ui.status(format!(
        "removed environment {name} of {key}; namespace {} of {} and what runs there are untouched",
        env.namespace, env.context
    ));
    Ok(())
}
