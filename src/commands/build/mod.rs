//! `xone build`: an app built at one commit, by the Docker engine here or by a GitLab CI
//! pipeline, held to the project's gates; `build list|show|log` read the records.

mod records;

use clap::{Args, Subcommand};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::Ctx;
use crate::complete;
use crate::domain::{ProjectKey, RequirementKey};
use crate::ops::build::{self, Policy, Request};
use crate::ops::pipeline::{self, Pipeline};
use crate::ui::{Result, XoneError};

#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = "\
Builds APP at the requirement's feature branch (or --ref) from a clean export of that commit, \
never a work tree's uncommitted files. With a test command (--test-cmd or the app's), the tests \
run first in another export and their JUnit and Cobertura reports meet the gates (all tests \
pass; coverage at least gates.coverage); a failed gate exits 4 naming each gate, its value and \
threshold, and the failing tests; --force --reason passes it on the record. The image is built \
through the Docker engine at DOCKER_HOST, tagged IMAGE:KEY-<shortsha> and IMAGE:<shortsha>, \
labelled with its source, revision, creation time and requirement, and with --push pushed with \
the credentials of ~/.docker/config.json; the digest is recorded. JSON: as for build show"
)]
pub struct BuildArgs {
    #[command(subcommand)]
    pub cmd: Option<BuildCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The app to build
    #[arg(add = ArgValueCandidates::new(complete::app_names))]
    pub app: Option<String>,
    /// The app's project (default: the requirement's, or the only one with such an app)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    /// Build the requirement's feature branch
    #[arg(long, value_name = "KEY", conflicts_with = "git_ref", value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub requirement: Option<RequirementKey>,
    /// Build this ref instead: a branch (e.g. release/test), tag or commit
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Build locally through the Docker engine (the default)
    #[arg(long, conflicts_with = "pipeline")]
    pub local: bool,
    /// Run the project's GitLab CI pipeline instead
    #[arg(long)]
    pub pipeline: bool,
    /// Push the image to its registry and record the digest
    #[arg(long, conflicts_with = "pipeline")]
    pub push: bool,
    /// Follow a pipeline to its end (local builds always finish before returning)
    #[arg(long)]
    pub wait: bool,
    /// Run these tests instead of the app's test command (sh -c, in a clean export)
    #[arg(long, value_name = "CMD", conflicts_with = "pipeline")]
    pub test_cmd: Option<String>,
    /// Pass failed gates, on the record
    #[arg(long)]
    pub force: bool,
    /// Why the gates are forced (asked for on a terminal when --force comes without it)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum BuildCommand {
    /// Builds, newest first
    #[command(after_long_help = "JSON: [as for show]")]
    List {
        /// Only this app's builds
        #[arg(add = ArgValueCandidates::new(complete::app_names))]
        app: Option<String>,
        /// Only this project's builds
        #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
        project: Option<ProjectKey>,
        /// Only this requirement's builds
        #[arg(long, value_name = "KEY", value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        requirement: Option<RequirementKey>,
    },
    /// One build: its commit, status, tests, coverage, gates, image and digest
    #[command(after_long_help = "\
JSON: {\"id\", \"app\", \"project\", \"requirement\", \"ref\", \"sha\", \"kind\": pipeline|local, \
\"status\": running|success|failed|canceled|interrupted, \"pipeline_url\", \"tests\": {\"total\", \
\"passed\", \"failed\", \"skipped\"} or null, \"coverage\": percent or null, \"gates\": [{\"name\", \
\"passed\", \"actual\", \"threshold\", \"forced\"}], \"image\", \"digest\", \"detail\", \"started_at\", \
\"finished_at\", \"actor\"}")]
    Show {
        /// The build's number (`xone build list` shows them)
        id: i64,
    },
    /// The build's output: each pipeline job's log under its name, in stage order, or a local
    /// build's test command and engine output as kept on disk
    Log {
        /// The build's number (`xone build list` shows them)
        id: i64,
        /// Only this pipeline job's log (pipeline builds)
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
    },
}

pub fn run(cx: &mut Ctx, a: BuildArgs) -> Result<()> {
    match a.cmd {
        Some(BuildCommand::List { app, project, requirement }) => {
            records::list(cx, app, project, requirement)
        }
        Some(BuildCommand::Show { id }) => records::show(cx, id),
        Some(BuildCommand::Log { id, job }) => records::log(cx, id, job),
        None => run_build(cx, a.run),
    }
}

/// A build for a requirement is linked in its tracker, one link per app and commit.
fn link(cx: &mut Ctx, b: &crate::store::Build) {
    let id = format!("xone:build:{}:{}:{}", b.project, b.app, b.sha);
    let title =
        format!("build {} of {} at {}: {}", b.id, b.app, crate::ui::short_sha(&b.sha), b.status);
    cx.link_work(b.requirement.as_deref(), &id, &title, b.pipeline_url.as_deref());
}

fn run_build(cx: &mut Ctx, a: RunArgs) -> Result<()> {
    let Some(app_name) = a.app.clone() else {
        return Err(XoneError::usage("name the app to build: xone build APP --requirement KEY")
            .hint("see the apps with `xone project app list KEY`"));
    };
    cx.push_queued();
    let actor = cx.actor()?;
    let policy = Policy::read(cx.config()?)?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let subject = build::subject(
        &store,
        &app_name,
        a.project.as_ref(),
        a.requirement.as_ref(),
        a.git_ref.as_deref(),
    )?;
    let forced = match a.force {
        true => Some(cx.reason(a.reason.clone(), "force the gates")?),
        false => None,
    };
    if a.pipeline {
        let scope = cx.scope()?;
        let ended =
            pipeline::run(&scope, &mut store, &forges, &subject, forced, a.wait, &policy, &actor)?;
        return match ended {
            Pipeline::Started(b) => {
                link(cx, &b);
                if cx.ui.json {
                    return cx.ui.print_json(&b);
                }
                let (id, url) = (b.id, b.pipeline_url.clone().unwrap_or_default());
                let number = b.pipeline_id.unwrap_or_default();
                cx.ui.line(format!("build {id} started: pipeline {number} {url}"))?;
                cx.ui
                    .status(format!("follow it with `xone build show {id}`, or build with --wait"));
                Ok(())
            }
            Pipeline::Finished(b) => {
                link(cx, &b);
                if cx.ui.json {
                    return cx.ui.print_json(&b);
                }
                cx.ui.line(format!(
                    "build {} {}: pipeline {}",
                    b.id,
                    b.status,
                    b.pipeline_url.unwrap_or_default()
                ))
            }
        };
    }
    let network = cx.config()?.str("build.network").map(str::to_string);
    let request = Request { push: a.push, test_cmd: a.test_cmd.clone(), forced, network };
    let b = build::local(&cx.ui, &mut store, &forges, &subject, &request, &policy, &actor)?;
    link(cx, &b);
    if cx.ui.json {
        return cx.ui.print_json(&b);
    }
    let made = b.digest.clone().or(b.image.clone()).unwrap_or_default();
    cx.ui.line(format!("build {} succeeded: {made}", b.id))
}
