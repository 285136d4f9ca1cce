//! The target of a release command: an app, the environment it goes to, and the cluster that
//! runs it there.

use k8s_openapi::api::apps::v1::Deployment;

use crate::adapters::cluster::Cluster;
use crate::adapters::http;
use crate::domain::manifest;
use crate::domain::ProjectKey;
use crate::store::{self, App, Env, Store};
use crate::ui::{Result, XoneError};

/// The app (in `project`, or the only project that has one so named) and its environment.
pub fn locate(
    store: &Store,
    app: &str,
    project: Option<&ProjectKey>,
    env: Option<&str>,
) -> Result<(App, Env)> {
    let app = store::app(store.conn(), project, app)?;
    let env_name =
        env.ok_or_else(|| XoneError::usage("which environment? --env ENV is required"))?;
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let env = find_env(store, &project, env_name)?;
    Ok((app, env))
}

pub fn find_env(store: &Store, project: &ProjectKey, name: &str) -> Result<Env> {
    store::envs(store.conn(), project)?.into_iter().find(|e| e.name == name).ok_or_else(|| {
        XoneError::not_found(format!("project {project} has no environment {name}"))
            .hint(format!("xone project env set {project} {name} --context CONTEXT --namespace NS"))
    })
}

/// The environment's cluster, in its namespace.
pub fn connect(env: &Env, remote: http::Settings) -> Result<Cluster> {
    Cluster::connect(&env.context, &env.namespace, remote)
}

/// The Deployment of an app in a namespace: the one its Service sends to when it is released
/// blue-green, else the one named like the app, else the one labelled with its name (an app
/// with its own manifests).
pub fn find_deployment(cl: &Cluster, app: &str) -> Result<Option<Deployment>> {
    // Who may not read Services releases no app blue-green through xone: none is active.
    let active =
        cl.service(app).ok().flatten().and_then(|s| {
            s["metadata"]["annotations"][manifest::ACTIVE].as_str().map(str::to_string)
        });
    if let Some(name) = active {
        if let Some(d) = cl.deployment(&name)? {
            return Ok(Some(d));
        }
    }
    if let Some(d) = cl.deployment(app)? {
        return Ok(Some(d));
    }
    // A gray release's canary carries the app's labels too: it is never the app's Deployment.
    let labelled = cl.deployments(&format!(
        "{}={app},{}!=canary",
        manifest::NAME_LABEL,
        crate::domain::gray::TRACK_LABEL
    ))?;
    Ok(labelled.into_iter().next())
}

pub fn not_deployed(app: &str, env: &Env) -> XoneError {
    XoneError::not_found(format!(
        "{app} is not deployed to {} (no Deployment in namespace {} of context {})",
        env.name, env.namespace, env.context
    ))
    .hint(format!("xone deploy {app} --env {} --build ID", env.name))
}

/// An app in an environment, with the environment's cluster at hand.
pub struct Target {
    pub app: App,
    pub env: Env,
    pub cluster: Cluster,
}

impl Target {
    pub fn connect(app: App, env: Env, remote: http::Settings) -> Result<Target> {
        let cluster = connect(&env, remote)?;
        Ok(Target { app, env, cluster })
    }

    /// The app's Deployment, which must exist.
    pub fn deployment(&self) -> Result<Deployment> {
        find_deployment(&self.cluster, &self.app.name)?
            .ok_or_else(|| not_deployed(&self.app.name, &self.env))
    }
}
