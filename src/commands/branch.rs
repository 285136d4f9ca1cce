//! `xone branch`: a requirement's feature branch in each of the project's repositories,
//! created, listed, checked out and deleted all at once, reported per repository.

use clap::{Args, Subcommand};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::{report_repos, Ctx};
use crate::complete;
use crate::domain::names::check_env;
use crate::domain::{ProjectKey, RequirementKey};
use crate::ops::branches;
use crate::ops::fan_out::{fail_if_any, RepoReport};
use crate::ops::Work;
use crate::store;
use crate::ui::{safe, short_sha, table, Result};

#[derive(Subcommand, Debug)]
pub enum BranchCommand {
    /// Create feature/KEY-slug in every repository of the project (or those named)
    #[command(
        after_long_help = "Safe to run again: it finishes what a failure left. JSON: [{\"repo\", \"status\": done|unchanged|skipped|failed, \"detail\"}]"
    )]
    Create(CreateArgs),
    /// Feature branches with commits ahead of and behind their base
    #[command(
        after_long_help = "JSON: [{\"requirement\", \"repo\", \"name\", \"base\", \"created_at\", \"exists\", \"sha\", \"ahead\", \"behind\", \"merge_request\": {\"state\", \"url\"} or null}]"
    )]
    List {
        /// Only this requirement's branches
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: Option<RequirementKey>,
        /// Only this project's branches
        #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
        project: Option<ProjectKey>,
    },
    /// Check the feature branch out in every work tree that has no local changes
    #[command(
        after_long_help = "Work trees with local changes are refused (exit 5) and left as they are. JSON: as for create"
    )]
    Checkout(RepoArgs),
    /// Delete the feature branch; unmerged work only with --force
    #[command(after_long_help = "JSON: as for create")]
    Delete {
        #[command(flatten)]
        repos: RepoArgs,
        /// Delete even commits not merged into the base branch
        #[arg(long)]
        force: bool,
    },
    /// The merge request of each feature branch: state, mergeability, conflicts; --merge merges
    #[command(after_long_help = "\
On the local forge a merge request is the branch against its base: open or merged, mergeable \
or conflicting (with the files). --merge merges those that are mergeable into their base and \
reports the rest (exit 5 when any conflicts). \
On GitLab it is the merge request itself, opened when there is work and none exists yet \
(title KEY: title, the requirement's summary, people and documents, labels xone and \
xone::PROJECT); --merge waits briefly while GitLab is still checking mergeability. \
JSON: [{\"repo\", \"branch\", \"base\", \"state\": open|merged|closed|empty, \"mergeable\", \"conflicts\": [FILE], \"commits\", \"url\", \"status\"}]; \
with --merge as for create")]
    Mr {
        #[command(flatten)]
        repos: RepoArgs,
        /// Merge the mergeable ones
        #[arg(long)]
        merge: bool,
    },
    /// Rebuild ENV's integration branch (release/ENV) from each base plus the chosen branches
    #[command(after_long_help = "\
Every repository of the project gets its integration branch rebuilt from its default branch and \
the feature branches of the requirements named, or by default of those in the states that \
belong to ENV (daily: developing to testing; test: submitted, testing; gray: testing, gray; \
prod: gray, released). Merges happen apart from any work tree; a repository's branch moves only \
when all of its merges succeeded and it is still where it was. A conflict names the repository, \
the requirement, the branches and the files (exit 5) and leaves that repository's branch as it \
was; the others are still integrated. The branch name comes from branch.integration. \
JSON: as for create")]
    Integrate(IntegrateArgs),
    /// Bring the base branch into the requirement's feature branches
    #[command(
        after_long_help = "Merges by default; --rebase replays the branch's commits onto the base \
where no other branch holds them yet. JSON: as for create"
    )]
    Sync {
        #[command(flatten)]
        repos: RepoArgs,
        /// Rebase instead of merging
        #[arg(long)]
        rebase: bool,
    },
}

#[derive(Args, Debug)]
pub struct IntegrateArgs {
    /// The environment: test, daily, gray, prod, or another name
    #[arg(value_parser = check_env)]
    pub env: String,
    /// The requirements to integrate (default: those in the states that belong to ENV)
    #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub keys: Vec<RequirementKey>,
    /// The project (default: the requirements', or the only one there is)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The requirement's key, e.g. PAY-1
    #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    /// Only this repository (its name in xone, path, URL or gitlab:GROUP/NAME); repeat for more
    #[arg(long = "repo", value_name = "REPO")]
    pub repos: Vec<String>,
    /// Start from this ref instead of each repository's default branch
    #[arg(long, value_name = "REF")]
    pub from: Option<String>,
}

#[derive(Args, Debug)]
pub struct RepoArgs {
    /// The requirement's key, e.g. PAY-1
    #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    /// Only this repository (its name in xone, path, URL or gitlab:GROUP/NAME); repeat for more
    #[arg(long = "repo", value_name = "REPO")]
    pub repos: Vec<String>,
}

pub fn run(cx: &mut Ctx, cmd: BranchCommand) -> Result<()> {
    match cmd {
        BranchCommand::Create(a) => create(cx, a),
        BranchCommand::List { key, project } => list(cx, key.as_ref(), project.as_ref()),
        BranchCommand::Checkout(a) => checkout(cx, a),
        BranchCommand::Delete { repos, force } => delete(cx, repos, force),
        BranchCommand::Integrate(a) => integrate(cx, a),
        BranchCommand::Sync { repos, rebase } => sync(cx, repos, rebase),
        BranchCommand::Mr { repos, merge } => mr(cx, repos, merge),
    }
}

fn create(cx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    let reports = branches::create(&w, &mut store, &a.key, &a.repos, a.from.as_deref())?;
    report_repos(cx, "branch create", reports)
}

fn integrate(cx: &mut Ctx, a: IntegrateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let target = branches::integration_branch(cx.config()?, &a.env)?;
    let mut store = cx.store()?;
    // Named, or the requirements' own, or the one whose repository we are in.
    let project = match (&a.project, a.keys.is_empty()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => cx.project_or_here(&store, None)?,
        (None, false) => None,
    };
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    let which = branches::Integrate { env: &a.env, target: &target, keys: &a.keys };
    let reports = branches::integrate(&w, &mut store, &which, project.as_ref())?;
    report_repos(cx, "branch integrate", reports)
}

fn sync(cx: &mut Ctx, a: RepoArgs, rebase: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    let reports = branches::sync(&w, &mut store, &a.key, &a.repos, rebase)?;
    report_repos(cx, "branch sync", reports)
}

fn list(cx: &mut Ctx, key: Option<&RequirementKey>, project: Option<&ProjectKey>) -> Result<()> {
    let store = cx.store()?;
    let here = match key {
        Some(_) => None,
        None => cx.project_or_here(&store, project)?,
    };
    let project = here.as_ref();
    let c = store.conn();
    if let Some(k) = key {
        store::requirement(c, k)?;
    }
    if let Some(p) = project {
        store::project(c, p)?;
    }
    let forges = cx.forges()?;
    let rows = branches::views(&forges, c, key, project)?;
    if cx.ui.json {
        return cx.ui.print_json(&rows);
    }
    if rows.is_empty() {
        cx.ui.status("no feature branches: create them with `xone branch create KEY`");
        return Ok(());
    }
    let mut t = vec![vec![
        "REQUIREMENT".into(),
        "REPO".into(),
        "BRANCH".into(),
        "AHEAD".into(),
        "BEHIND".into(),
        "TIP".into(),
    ]];
    let with_mr = rows.iter().any(|r| r.merge_request.is_some());
    if with_mr {
        t[0].push("MR".into());
    }
    for r in &rows {
        let (ahead, behind, tip) = match (&r.sha, r.ahead, r.behind) {
            (Some(sha), Some(a), Some(b)) => {
                (a.to_string(), b.to_string(), safe(short_sha(sha)).into_owned())
            }
            _ => ("-".into(), "-".into(), cx.ui.red("missing")),
        };
        let (repo, name) = (safe(&r.repo).into_owned(), safe(&r.name).into_owned());
        let mut row = vec![r.requirement.clone(), repo, name, ahead, behind, tip];
        if with_mr {
            row.push(match &r.merge_request {
                Some(m) => safe(&format!("{} {}", m.state, m.url.as_deref().unwrap_or_default()))
                    .into_owned(),
                None => "-".into(),
            });
        }
        t.push(row);
    }
    write!(cx.ui.out(), "{}", table(&t))?;
    Ok(())
}

fn checkout(cx: &mut Ctx, a: RepoArgs) -> Result<()> {
    let store = cx.store()?;
    let forges = cx.forges()?;
    let reports = branches::checkout(&cx.ui, &forges, &store, &a.key, &a.repos)?;
    report_repos(cx, "branch checkout", reports)
}

fn delete(cx: &mut Ctx, a: RepoArgs, force: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    store::requirement(store.conn(), &a.key)?;
    let url = forges.gitlab_settings().url.clone();
    let targets = branches::recorded(&store, &a.key, &a.repos, url.as_deref())?;
    let repos = match targets.len() {
        1 => "1 repository".to_string(),
        n => format!("{n} repositories"),
    };
    cx.ui.confirm_or_stop(&format!("Delete {}'s branch in {repos}?", a.key), "nothing deleted")?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    let reports = branches::delete(&w, &mut store, &a.key, &targets, force)?;
    report_repos(cx, "branch delete", reports)
}

fn mr(cx: &mut Ctx, a: RepoArgs, merge: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let tracker = cx.tracker()?;
    let w = Work { ui: &cx.ui, forges: &forges, tracker: tracker.as_ref(), actor: &actor };
    if merge {
        let reports = branches::merge(&w, &mut store, &a.key, &a.repos)?;
        return report_repos(cx, "branch mr --merge", reports);
    }
    let (views, failed) = branches::merge_requests(&w, &mut store, &a.key, &a.repos)?;
    if cx.ui.json {
        cx.ui.print_json(&views)?;
    } else {
        let mut t = vec![vec!["REPO".into(), "BRANCH".into(), "STATE".into(), "MERGE".into()]];
        for v in &views {
            let Some(mr) = &v.mr else {
                let why = safe(v.error.as_deref().unwrap_or_default()).into_owned();
                let (repo, branch) = (safe(&v.repo).into_owned(), safe(&v.branch).into_owned());
                t.push(vec![repo, branch, cx.ui.red("failed"), why]);
                continue;
            };
            let merge = match (mr.state.as_str(), mr.mergeable) {
                ("merged", _) | ("closed", _) => cx.ui.dim("-"),
                ("empty", _) => cx.ui.dim("nothing to merge yet"),
                (_, true) => cx
                    .ui
                    .green(&safe(&format!("mergeable, {} commit(s) into {}", mr.commits, v.base))),
                (_, false) if mr.conflicts.is_empty() => cx.ui.red(&safe(&format!(
                    "not mergeable yet: {}",
                    mr.status.as_deref().unwrap_or("see the merge request")
                ))),
                (_, false) => cx.ui.red(&safe(&format!("conflicts: {}", mr.conflicts.join(", ")))),
            };
            let state = match &mr.url {
                Some(url) => format!("{} {url}", mr.state),
                None => mr.state.clone(),
            };
            let (repo, branch) = (safe(&v.repo).into_owned(), safe(&v.branch).into_owned());
            t.push(vec![repo, branch, safe(&state).into_owned(), merge]);
        }
        write!(cx.ui.out(), "{}", table(&t))?;
    }
    if failed.is_empty() {
        return Ok(());
    }
    // The table is out; the exit code and the reasons follow the failures.
    let mut all: Vec<RepoReport> = failed;
    all.extend(views.iter().filter(|v| v.mr.is_some()).map(|v| RepoReport {
        repo: v.repo.clone(),
        status: "done",
        detail: String::new(),
        error: None,
    }));
    fail_if_any("branch mr", all)
}
