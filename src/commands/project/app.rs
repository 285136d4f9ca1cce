//! `xone project app`: the deployable services of a project, each built from one of its
//! repositories.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use clap_complete::ArgValueCandidates;

use super::super::{complete, Ctx};
use crate::domain::names::check_env;
use crate::domain::ProjectKey;
use crate::ops::events;
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
    /// The project's apps
    #[command(
        after_long_help = "JSON: [{\"project\", \"name\", \"repo\", \"image\", \"dockerfile\", \"context\", \"port\", \"health\", \"replicas\": {ENV: N}, \"test_cmd\", \"junit\", \"cobertura\", \"manifests\", \"alert_labels\", \"error_query\", \"added_at\"}]"
    )]
    List {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
    },
    /// One app's settings
    #[command(after_long_help = "JSON: as one entry of list")]
    Show {
        #[arg(add = ArgValueCandidates::new(complete::project_keys))]
        key: ProjectKey,
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: String,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[arg(add = ArgValueCandidates::new(complete::project_keys))]
    pub key: ProjectKey,
    /// The app's name: lower-case letters, digits and '-' (it names images and Kubernetes objects)
    #[arg(value_parser = check_app_name)]
    pub app: String,
    /// The repository it is built from (its name in xone)
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

fn add(cx: &mut Ctx, a: AddArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::active_project(store.conn(), &a.key)?;
    let repos = store::repos(store.conn(), &a.key)?;
    let repo = repos.iter().find(|r| r.name == a.repo).ok_or_else(|| {
        let known: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        XoneError::not_found(format!("project {} has no repository {}", a.key, a.repo)).hint(
            if known.is_empty() {
                format!("link one first with `xone project repo add {} PATH`", a.key)
            } else {
                format!("its repositories: {}", known.join(", "))
            },
        )
    })?;
    if let Some(image) = &a.image {
        // The registry part may have a port and capitals; the repository path may not.
        let path = match image.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
            _ => image.as_str(),
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
