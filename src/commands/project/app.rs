//! `xone project app`: the deployable services of a project, each built from one of its
//! repositories.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use crate::complete;
use crate::domain::names::check_env;
use crate::domain::ProjectKey;
use crate::ops::{events, project};
use crate::store::{self, App};
use crate::ui::{safe_table, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Add an app: a service built from one of the project's repositories
    #[command(after_long_help = "\
The image defaults to the environment's registry and the app's name when it is deployed; \
--image REGISTRY/NAME fixes it (no tag: builds tag it KEY-<shortsha> and <shortsha>). The \
Dockerfile and the test reports are paths inside the context and the repository.")]
    Add(Box<AddArgs>),
    /// Change an app's settings: the flags of add, each given replacing its value
    #[command(after_long_help = "\
Settings not given keep their value; --replicas ENV=N sets that environment's count and keeps \
the others. An empty value (--image '', --health '', --test-cmd '', --manifests '', \
--alert-labels '', --error-query '') clears the setting. JSON: as one entry of list")]
    Set(Box<SetArgs>),
    /// Remove an app and its builds' records (deployment records stay; nothing in a cluster
    /// or a registry is touched)
    #[command(after_long_help = "Asks on a terminal; elsewhere needs --yes (exit 4 without it).")]
    Remove {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The app's name (`xone project app list KEY` shows them)
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
    },
    /// The project's apps
    #[command(
        after_long_help = "JSON: [{\"project\", \"name\", \"repo\", \"image\", \"dockerfile\", \"context\", \"port\", \"health\", \"replicas\": {ENV: N}, \"test_cmd\", \"junit\", \"cobertura\", \"manifests\", \"alert_labels\", \"error_query\", \"added_at\"}]"
    )]
    List {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// One app's settings
    #[command(after_long_help = "JSON: as one entry of list")]
    Show {
        /// The project's key, e.g. PAY
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        /// The app's name (`xone project app list KEY` shows them)
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The project's key, e.g. PAY
    #[arg(add = ArgValueCandidates::new(complete::project_keys))]
    pub key: ProjectKey,
    /// The app's name: lower-case letters, digits and '-' (it names images and Kubernetes objects)
    #[arg(value_parser = check_app_name)]
    pub app: String,
    /// The repository it is built from: its name in xone, path, URL or gitlab:GROUP/NAME
    #[arg(long, value_name = "REPO")]
    pub repo: String,
    /// REGISTRY/NAME of its image, without a tag
    #[arg(long, value_name = "REGISTRY/NAME")]
    pub image: Option<String>,
    /// The Dockerfile, inside the context
    #[arg(long, default_value = "Dockerfile")]
    pub dockerfile: String,
    /// The build context, a directory of the repository
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub context: String,
    /// The port it serves on
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The HTTP path of its health check (readiness and liveness)
    #[arg(long, value_name = "PATH")]
    pub health: Option<String>,
    /// Replicas in an environment, e.g. prod=3; repeat for more
    #[arg(long = "replicas", value_name = "ENV=N", value_parser = parse_replicas)]
    pub replicas: Vec<(String, i64)>,
    /// The command that runs its tests in a clean export of the commit (sh -c)
    #[arg(long, value_name = "CMD")]
    pub test_cmd: Option<String>,
    /// Where the test command writes its JUnit XML report
    #[arg(long, value_name = "PATH", default_value = "junit.xml")]
    pub junit: String,
    /// Where the test command writes its Cobertura XML coverage report
    #[arg(long, value_name = "PATH", default_value = "coverage.xml")]
    pub cobertura: String,
    /// A directory of the repository holding its own Kubernetes manifests (YAML); xone sets
    /// the app container's image in its Deployment instead of rendering one
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<String>,
    /// PromQL label matchers of its alerts and series for the release watch, overriding the
    /// environment's ({app}, {namespace}, {env} are filled in)
    #[arg(long, value_name = "MATCHERS")]
    pub alert_labels: Option<String>,
    /// PromQL of its HTTP error ratio for the release watch, overriding the environment's
    #[arg(long, value_name = "PROMQL")]
    pub error_query: Option<String>,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// The project's key, e.g. PAY
    #[arg(add = ArgValueCandidates::new(complete::project_keys))]
    pub key: ProjectKey,
    /// The app's name (`xone project app list KEY` shows them)
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: String,
    /// The repository it is built from: its name in xone, path, URL or gitlab:GROUP/NAME
    #[arg(long, value_name = "REPO")]
    pub repo: Option<String>,
    /// REGISTRY/NAME of its image, without a tag ('' for the environment's registry)
    #[arg(long, value_name = "REGISTRY/NAME")]
    pub image: Option<String>,
    /// The Dockerfile, inside the context
    #[arg(long)]
    pub dockerfile: Option<String>,
    /// The build context, a directory of the repository
    #[arg(long, value_name = "DIR")]
    pub context: Option<String>,
    /// The port it serves on
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The HTTP path of its health check ('' for none)
    #[arg(long, value_name = "PATH")]
    pub health: Option<String>,
    /// Replicas in an environment, e.g. prod=3; repeat for more
    #[arg(long = "replicas", value_name = "ENV=N", value_parser = parse_replicas)]
    pub replicas: Vec<(String, i64)>,
    /// The command that runs its tests ('' for none)
    #[arg(long, value_name = "CMD")]
    pub test_cmd: Option<String>,
    /// Where the test command writes its JUnit XML report
    #[arg(long, value_name = "PATH")]
    pub junit: Option<String>,
    /// Where the test command writes its Cobertura XML coverage report
    #[arg(long, value_name = "PATH")]
    pub cobertura: Option<String>,
    /// A directory of its own Kubernetes manifests ('' to render them again)
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<String>,
    /// PromQL label matchers of its alerts and series ('' for the environment's)
    #[arg(long, value_name = "MATCHERS")]
    pub alert_labels: Option<String>,
    /// PromQL of its HTTP error ratio ('' for the environment's)
    #[arg(long, value_name = "PROMQL")]
    pub error_query: Option<String>,
}

/// Words that `xone build` and `xone deploy` take as their own subcommands.
const RESERVED: &[&str] = &["list", "show", "log", "help", "status", "history", "watch"];

pub fn check_app_name(s: &str) -> std::result::Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(format!(
            "invalid app name '{s}': use lower-case letters, digits and '-', starting with a letter (e.g. web, pay-api)"
        ));
    }
    if RESERVED.contains(&s) {
        return Err(format!(
            "'{s}' is a word of `xone build` or `xone deploy`; pick another app name"
        ));
    }
    Ok(s.to_string())
}

fn parse_replicas(s: &str) -> std::result::Result<(String, i64), String> {
    let (env, n) = s.split_once('=').ok_or_else(|| format!("'{s}' is not ENV=N (e.g. prod=3)"))?;
    let env = check_env(env)?;
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| (0..=1000).contains(n))
        .ok_or_else(|| format!("'{n}' is not a number of replicas (0 to 1000)"))?;
    Ok((env, n))
}

pub fn run(cx: &mut Ctx, cmd: AppCommand) -> Result<()> {
    match cmd {
        AppCommand::Add(a) => add(cx, *a),
        AppCommand::Set(a) => set(cx, *a),
        AppCommand::Remove { key, app } => remove(cx, &key, &app),
        AppCommand::List { key } => {
            let store = cx.store()?;
            store::project(store.conn(), &key)?;
            let apps = store::apps(store.conn(), &key)?;
            if cx.ui.json {
                return cx.ui.print_json(&apps);
            }
            if apps.is_empty() {
                cx.ui.status(format!(
                    "{key} has no apps: add one with `xone project app add {key} APP --repo REPO`"
                ));
                return Ok(());
            }
            let mut t = vec![vec![
                "APP".into(),
                "REPO".into(),
                "IMAGE".into(),
                "PORT".into(),
                "TESTS".into(),
            ]];
            for a in &apps {
                t.push(vec![
                    a.name.clone(),
                    a.repo.clone(),
                    a.image.clone().unwrap_or_else(|| "(registry of the environment)".into()),
                    a.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    a.test_cmd.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            write!(cx.ui.out(), "{}", safe_table(&t))?;
            Ok(())
        }
        AppCommand::Show { key, app } => {
            let store = cx.store()?;
            store::project(store.conn(), &key)?;
            let a = store::app(store.conn(), Some(&key), &app)?;
            if cx.ui.json {
                return cx.ui.print_json(&a);
            }
            let replicas: Vec<String> =
                a.replicas.iter().map(|(e, n)| format!("{e}={n}")).collect();
            let rows = vec![
                vec!["app".to_string(), format!("{} ({})", a.name, a.project)],
                vec!["repo".to_string(), a.repo.clone()],
                vec![
                    "image".to_string(),
                    a.image
                        .clone()
                        .unwrap_or_else(|| "(registry of the environment)/".to_string() + &a.name),
                ],
                vec!["dockerfile".to_string(), format!("{} in {}", a.dockerfile, a.context)],
                vec![
                    "port".to_string(),
                    a.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                ],
                vec!["health".to_string(), a.health.clone().unwrap_or_else(|| "-".into())],
                vec![
                    "replicas".to_string(),
                    if replicas.is_empty() { "1 everywhere".into() } else { replicas.join(", ") },
                ],
                vec![
                    "tests".to_string(),
                    a.test_cmd.clone().unwrap_or_else(|| "none (builds measure no tests)".into()),
                ],
                vec!["reports".to_string(), format!("{}, {}", a.junit, a.cobertura)],
            ];
            write!(cx.ui.out(), "{}", safe_table(&rows))?;
            Ok(())
        }
    }
}

/// The repository an app is built from, however it is spelled (name, path, URL,
/// `gitlab:GROUP/NAME`).
fn repo_of(
    cx: &mut Ctx,
    store: &store::Store,
    key: &ProjectKey,
    spec: &str,
) -> Result<store::Repo> {
    let url = cx.config()?.str("gitlab.url").map(str::to_string);
    let repos = store::repos(store.conn(), key)?;
    project::find_repo(&repos, spec, url.as_deref())
        .cloned()
        .ok_or_else(|| project::no_such_repo(key, spec, &repos))
}

/// An image is REGISTRY/NAME, without a tag: builds tag it.
fn check_image(image: &str) -> Result<()> {
    // The registry part may have a port and capitals; the repository path may not.
    let path = match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => image,
    };
    let bad = image.is_empty()
        || image.contains(char::is_whitespace)
        || image.contains('@')
        || path.contains(':')
        || path
            .chars()
            .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c)));
    if bad {
        return Err(XoneError::usage(format!("--image {image} is not REGISTRY/NAME"))
            .hint("lower-case letters, digits, '.', '_', '-' and '/' after the registry, and no tag: builds tag images themselves (e.g. registry.example.com/pay/web)"));
    }
    Ok(())
}

fn add(cx: &mut Ctx, a: AddArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::active_project(store.conn(), &a.key)?;
    let repo = repo_of(cx, &store, &a.key, &a.repo)?;
    if let Some(image) = &a.image {
        check_image(image)?;
    }
    let app = App {
        id: 0,
        project: a.key.to_string(),
        name: a.app.clone(),
        repo: repo.name.clone(),
        repo_id: repo.id,
        image: a.image.clone(),
        dockerfile: a.dockerfile.clone(),
        context: a.context.clone(),
        port: a.port.map(i64::from),
        health: a.health.clone(),
        replicas: a.replicas.iter().cloned().collect::<BTreeMap<_, _>>(),
        test_cmd: a.test_cmd.clone(),
        junit: a.junit.clone(),
        cobertura: a.cobertura.clone(),
        manifests: a.manifests.clone(),
        alert_labels: a.alert_labels.clone(),
        error_query: a.error_query.clone(),
        added_at: String::new(),
    };
    store.write(|tx| {
        store::insert_app(tx, &app)?;
        store::record(
            tx,
            &events::project(&a.key, &actor, "app add", format!("{} from {}", app.name, app.repo)),
        )
    })?;
    if cx.ui.json {
        let stored = store::app(store.conn(), Some(&a.key), &a.app)?;
        return cx.ui.print_json(&stored);
    }
    cx.ui.status(format!("added app {} to {} (built from {})", a.app, a.key, repo.name));
    Ok(())
}

fn set(cx: &mut Ctx, a: SetArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::active_project(store.conn(), &a.key)?;
    let old = store::app(store.conn(), Some(&a.key), &a.app)?;
    let mut app = old.clone();
    let mut changed = Vec::new();
    // '' clears an optional setting.
    let optional = |v: &Option<String>| v.as_ref().map(|s| (!s.is_empty()).then(|| s.clone()));
    if let Some(spec) = &a.repo {
        let repo = repo_of(cx, &store, &a.key, spec)?;
        app.repo = repo.name;
        app.repo_id = repo.id;
    }
    if let Some(image) = optional(&a.image) {
        if let Some(i) = &image {
            check_image(i)?;
        }
        app.image = image;
    }
    if let Some(d) = &a.dockerfile {
        app.dockerfile = d.clone();
    }
    if let Some(c) = &a.context {
        app.context = c.clone();
    }
    if let Some(p) = a.port {
        app.port = Some(i64::from(p));
    }
    if let Some(h) = optional(&a.health) {
        app.health = h;
    }
    for (env, n) in &a.replicas {
        app.replicas.insert(env.clone(), *n);
    }
    if let Some(t) = optional(&a.test_cmd) {
        app.test_cmd = t;
    }
    if let Some(j) = &a.junit {
        app.junit = j.clone();
    }
    if let Some(c) = &a.cobertura {
        app.cobertura = c.clone();
    }
    if let Some(m) = optional(&a.manifests) {
        app.manifests = m;
    }
    if let Some(l) = optional(&a.alert_labels) {
        app.alert_labels = l;
    }
    if let Some(q) = optional(&a.error_query) {
        app.error_query = q;
    }
    let (before, after) = (serde_json::to_value(&old)?, serde_json::to_value(&app)?);
    for (k, v) in after.as_object().into_iter().flatten() {
        if before.get(k) != Some(v) {
            changed.push(format!("{k} {v}"));
        }
    }
    if !changed.is_empty() {
        store.write(|tx| {
            store::update_app(tx, &app)?;
            let detail = format!("{}: {}", app.name, changed.join(", "));
            store::record(tx, &events::project(&a.key, &actor, "app set", detail))
        })?;
    }
    if cx.ui.json {
        let stored = store::app(store.conn(), Some(&a.key), &a.app)?;
        return cx.ui.print_json(&stored);
    }
    match changed.is_empty() {
        true => cx.ui.status(format!("app {} of {}: nothing changed", a.app, a.key)),
        false => cx.ui.status(format!("app {} of {}: {}", a.app, a.key, changed.join(", "))),
    }
    Ok(())
}

fn remove(cx: &mut Ctx, key: &ProjectKey, name: &str) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::project(store.conn(), key)?;
    let app = store::app(store.conn(), Some(key), name)?;
    cx.ui.confirm_or_stop(
        &format!("Remove app {name} of {key} and its builds' records?"),
        "nothing removed",
    )?;
    let builds = store.write(|tx| {
        let n = store::delete_app(tx, &app)?;
        let detail = format!("{name} ({n} build records)");
        store::record(tx, &events::project(key, &actor, "app remove", detail))?;
        Ok(n)
    })?;
    cx.ui.status(format!(
        "removed app {name} of {key} and {builds} build record(s); what runs in the clusters and the images in the registry are untouched"
    ));
    Ok(())
}
