//! `xone branch`: a requirement's feature branch in each of the project's repositories,
//! created, listed, checked out and deleted all at once, reported per repository.

use clap::{Args, Subcommand};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};
use serde::Serialize;

use super::requirement::{event, open_requirement};
use super::{complete, fan_out, fan_out_shown, report_repos, Ctx, RepoReport};
use crate::adapters::{Feature, Forges, MrText, Outcome};
use crate::domain::lifecycle::states_for_env;
use crate::domain::names::{self, check_env, feature_branch};
use crate::domain::{ProjectKey, RequirementKey, Status};
use crate::store::{self, Event, Repo, Store};
use crate::ui::{table, Result, XoneError};

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
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
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
    #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
    pub keys: Vec<RequirementKey>,
    /// The project (default: the requirements', or the only one there is)
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    /// Only this repository (by its name in xone); repeat for more
    #[arg(long = "repo", value_name = "REPO")]
    pub repos: Vec<String>,
    /// Start from this ref instead of each repository's default branch
    #[arg(long, value_name = "REF")]
    pub from: Option<String>,
}

#[derive(Args, Debug)]
pub struct RepoArgs {
    #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    /// Only this repository (by its name in xone); repeat for more
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

/// The integration branch of `env`, from `branch.integration` (`release/{env}`).
pub fn integration_branch(cx: &mut Ctx, env: &str) -> Result<String> {
    let pattern = cx.config()?.str("branch.integration").unwrap_or("release/{env}").to_string();
    names::integration_branch(&pattern, env)
        .map_err(|e| XoneError::usage(e).hint("xone config set branch.integration 'release/{env}'"))
}

/// The project a command without a requirement key works on: the one named, the keys' own,
/// or the only one there is.
pub fn which_project(
    store: &Store,
    named: Option<&ProjectKey>,
    keys: &[RequirementKey],
) -> Result<ProjectKey> {
    if let Some(p) = named {
        store::active_project(store.conn(), p)?;
        if let Some(k) = keys.iter().find(|k| &k.project != p) {
            return Err(XoneError::usage(format!("{k} is not in project {p}")));
        }
        return Ok(p.clone());
    }
    if let Some(first) = keys.first() {
        if let Some(k) = keys.iter().find(|k| k.project != first.project) {
            return Err(XoneError::usage(format!(
                "{first} and {k} are in different projects: integrate one project at a time"
            )));
        }
        store::active_project(store.conn(), &first.project)?;
        return Ok(first.project.clone());
    }
    let all = store::project_keys(store.conn())?;
    match all.as_slice() {
        [(only, _)] => only.parse().map_err(XoneError::internal),
        [] => Err(XoneError::not_found("there is no project yet")
            .hint("create one with `xone project create KEY --name NAME`")),
        _ => Err(XoneError::usage("which project? there are several").hint("name it with -p KEY")),
    }
}

fn integrate(cx: &mut Ctx, a: IntegrateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let target = integration_branch(cx, &a.env)?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let project = which_project(&store, a.project.as_ref(), &a.keys)?;
    let repos = pick_repos(&store, &project, &[])?;
    let reqs = if a.keys.is_empty() {
        let states = states_for_env(&a.env).ok_or_else(|| {
            XoneError::usage(format!("environment {} has no default requirements", a.env))
                .hint(format!("name them: xone branch integrate {} KEY...", a.env))
        })?;
        store::requirements_in(store.conn(), &project, states)?
    } else {
        let mut reqs = Vec::new();
        for k in &a.keys {
            let r = store::requirement(store.conn(), k)?;
            if r.status == Status::Cancelled {
                return Err(XoneError::gate(format!(
                    "{k} is cancelled: its work is not integrated"
                )));
            }
            reqs.push(r);
        }
        reqs
    };
    if reqs.is_empty() {
        cx.ui.warn(format!(
            "no requirement belongs to {}: {target} is rebuilt from the bases alone",
            a.env
        ));
    }
    let records = store::branches(store.conn(), None, Some(&project))?;
    let work: Vec<(&Repo, Vec<Feature>)> = repos
        .iter()
        .map(|repo| {
            let features = reqs
                .iter()
                .filter_map(|r| {
                    let b =
                        records.iter().find(|b| b.requirement == r.key && b.repo_id == repo.id)?;
                    Some(Feature { key: r.key.clone(), branch: b.name.clone() })
                })
                .collect();
            (repo, features)
        })
        .collect();
    let results = fan_out_shown(
        &cx.ui,
        "integrate",
        &work,
        |(r, _)| r.name.clone(),
        |(repo, features)| {
            forges.for_repo(repo)?.integrate(repo, &target, &repo.default_branch, features)
        },
    );
    let mut reports = Vec::new();
    for ((repo, features), result) in work.iter().zip(results) {
        let base = &repo.default_branch;
        // What went in is recorded on every requirement it contains, conflicts too.
        store.write(|tx| {
            let mut new = store::NewIntegration {
                project: &project,
                env: &a.env,
                repo_id: repo.id,
                branch: &target,
                base,
                base_sha: "",
                sha: None,
                status: "conflict",
                detail: None,
                actor: &actor,
            };
            match &result {
                Ok(i) => {
                    new.base_sha = &i.base_sha;
                    new.sha = Some(&i.sha);
                    new.status = if i.moved { "done" } else { "unchanged" };
                    let id = store::insert_integration(tx, &new)?;
                    for (f, sha) in &i.merged {
                        store::insert_integration_item(tx, id, &f.key, &f.branch, sha)?;
                        let Some(req) = reqs.iter().find(|r| r.key == f.key) else { continue };
                        let detail = format!(
                            "{target} in {} at {}: took {} at {}",
                            repo.name,
                            crate::ui::short_sha(&i.sha),
                            f.branch,
                            crate::ui::short_sha(sha)
                        );
                        store::record(
                            tx,
                            &Event { detail: Some(detail), ..event(req, &actor, "integrate") },
                        )?;
                    }
                }
                Err(e) if e.kind == crate::ui::Kind::Conflict => {
                    let mut detail = e.message.clone();
                    for c in &e.causes {
                        detail.push_str("; ");
                        detail.push_str(c);
                    }
                    new.detail = Some(&detail);
                    store::insert_integration(tx, &new)?;
                    for f in features.iter() {
                        let Some(req) = reqs.iter().find(|r| r.key == f.key) else { continue };
                        let e = Event {
                            detail: Some(detail.clone()),
                            ..event(req, &actor, "integrate conflict")
                        };
                        store::record(tx, &e)?;
                    }
                }
                Err(_) => {}
            }
            Ok(())
        })?;
        let outcome = result.map(|i| {
            let mut took: Vec<String> = i.merged.iter().map(|(f, _)| f.key.clone()).collect();
            if took.is_empty() {
                took.push(format!("{base} only"));
            }
            let absent: Vec<&str> = i.absent.iter().map(|f| f.key.as_str()).collect();
            let mut text =
                format!("{target} at {}: {}", crate::ui::short_sha(&i.sha), took.join(", "));
            if !absent.is_empty() {
                text.push_str(&format!(" ({} not here)", absent.join(", ")));
            }
            if i.moved {
                Outcome::Done(text)
            } else {
                Outcome::Already(format!("{text}, unchanged"))
            }
        });
        reports.push(RepoReport::new(&repo.name, outcome));
    }
    report_repos(cx, "branch integrate", reports)
}

fn sync(cx: &mut Ctx, a: RepoArgs, rebase: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let req = open_requirement(store.conn(), &a.key)?;
    let targets = recorded(&store, &a)?;
    let results = fan_out_shown(
        &cx.ui,
        "sync",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            forges.for_repo(repo)?.sync(repo, &b.name, &repo.default_branch, rebase)
        },
    );
    let mut reports = Vec::new();
    for ((repo, _), result) in targets.iter().zip(results) {
        if let Ok(Outcome::Done(d)) = &result {
            let detail = format!("{}: {d}", repo.name);
            store.write(|tx| {
                store::record(
                    tx,
                    &Event { detail: Some(detail), ..event(&req, &actor, "branch sync") },
                )
            })?;
        }
        reports.push(RepoReport::new(&repo.name, result));
    }
    report_repos(cx, "branch sync", reports)
}

/// The project's repositories, or the named ones; an unknown name is refused before any work.
fn pick_repos(store: &Store, project: &ProjectKey, names: &[String]) -> Result<Vec<Repo>> {
    let all = store::repos(store.conn(), project)?;
    if all.is_empty() {
        return Err(XoneError::gate(format!("project {project} has no repositories"))
            .hint(format!("link one with `xone project repo add {project} PATH`")));
    }
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|r| &r.name == n).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
                XoneError::not_found(format!("project {project} has no repository {n}"))
                    .hint(format!("its repositories: {}", known.join(", ")))
            })
        })
        .collect()
}

fn create(cx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let req = open_requirement(store.conn(), &a.key)?;
    let repos = pick_repos(&store, &a.key.project, &a.repos)?;
    // The name is fixed the first time, so a later title change does not fork the branches.
    let name = req.branch.clone().unwrap_or_else(|| feature_branch(&a.key, &req.title));
    if req.branch.is_none() {
        store.write(|tx| store::set_branch_name(tx, &a.key, &name))?;
    }
    // The base is where the branch starts: commits ahead of it are the requirement's work.
    let from = |repo: &Repo| a.from.clone().unwrap_or_else(|| repo.default_branch.clone());
    let results = fan_out_shown(
        &cx.ui,
        "create",
        &repos,
        |r| r.name.clone(),
        |repo| forges.for_repo(repo).and_then(|f| f.create_branch(repo, &name, &from(repo))),
    );
    // A branch made but not recorded (an interrupted run) is found and recorded next time.
    // One transaction records them all.
    store.write(|tx| {
        for (repo, result) in repos.iter().zip(&results) {
            let Ok(outcome) = result else { continue };
            store::record_branch(tx, &a.key, repo.id, &name, &from(repo))?;
            if let Outcome::Done(d) = outcome {
                let e = Event {
                    detail: Some(format!("{}: {d}", repo.name)),
                    ..event(&req, &actor, "branch create")
                };
                store::record(tx, &e)?;
            }
        }
        Ok(())
    })?;
    let reports =
        repos.iter().zip(results).map(|(repo, r)| RepoReport::new(&repo.name, r)).collect();
    report_repos(cx, "branch create", reports)
}

/// A recorded feature branch and what its forge reports about it now.
#[derive(Serialize)]
pub struct BranchView {
    pub requirement: String,
    pub repo: String,
    pub name: String,
    pub base: String,
    pub created_at: String,
    pub exists: bool,
    pub sha: Option<String>,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    /// The branch's merge request on GitLab (state and page); null on the local forge.
    pub merge_request: Option<crate::adapters::MrSummary>,
}

/// The recorded branches (of one requirement, one project, or all), each measured now.
pub fn views(
    forges: &Forges,
    c: &rusqlite::Connection,
    key: Option<&RequirementKey>,
    project: Option<&ProjectKey>,
) -> Result<Vec<BranchView>> {
    let mut repo_cache: std::collections::HashMap<String, Vec<Repo>> = Default::default();
    let records = store::branches(c, key, project)?;
    for b in &records {
        let rk: RequirementKey = b.requirement.parse().map_err(XoneError::internal)?;
        if !repo_cache.contains_key(rk.project.as_str()) {
            repo_cache.insert(rk.project.to_string(), store::repos(c, &rk.project)?);
        }
    }
    // Measured at once: on GitLab each branch costs requests.
    let states = fan_out(&records, |b| {
        let project = b.requirement.split('-').next().unwrap_or_default();
        match repo_cache.get(project) {
            Some(repos) => forges.current_state_and_mr(repos, b),
            None => Ok((None, None)),
        }
    });
    let mut rows = Vec::new();
    for (b, found) in records.into_iter().zip(states) {
        let (state, merge_request) = found?;
        rows.push(BranchView {
            merge_request,
            exists: state.is_some(),
            sha: state.as_ref().map(|s| s.sha.clone()),
            ahead: state.as_ref().map(|s| s.ahead),
            behind: state.as_ref().map(|s| s.behind),
            requirement: b.requirement,
            repo: b.repo,
            name: b.name,
            base: b.base,
            created_at: b.created_at,
        });
    }
    Ok(rows)
}

fn list(cx: &mut Ctx, key: Option<&RequirementKey>, project: Option<&ProjectKey>) -> Result<()> {
    let store = cx.store()?;
    let c = store.conn();
    if let Some(k) = key {
        store::requirement(c, k)?;
    }
    if let Some(p) = project {
        store::project(c, p)?;
    }
    let forges = cx.forges()?;
    let rows = views(&forges, c, key, project)?;
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
                (a.to_string(), b.to_string(), crate::ui::short_sha(sha).to_string())
            }
            _ => ("-".into(), "-".into(), cx.ui.red("missing")),
        };
        let mut row =
            vec![r.requirement.clone(), r.repo.clone(), r.name.clone(), ahead, behind, tip];
        if with_mr {
            row.push(match &r.merge_request {
                Some(m) => format!("{} {}", m.state, m.url.clone().unwrap_or_default()),
                None => "-".into(),
            });
        }
        t.push(row);
    }
    write!(cx.ui.out(), "{}", table(&t))?;
    Ok(())
}

/// The chosen repositories and the requirement's branch recorded in each. A repository named
/// with --repo that has none is reported as not found; others without one are passed over.
fn recorded(store: &Store, a: &RepoArgs) -> Result<Vec<(Repo, Result<store::BranchRecord>)>> {
    let repos = pick_repos(store, &a.key.project, &a.repos)?;
    let records = store::branches(store.conn(), Some(&a.key), None)?;
    if records.is_empty() {
        return Err(XoneError::not_found(format!("{} has no feature branches", a.key))
            .hint(format!("create them with `xone branch create {}`", a.key)));
    }
    Ok(repos
        .into_iter()
        .filter_map(|r| {
            let found = records.iter().find(|b| b.repo_id == r.id).cloned();
            match found {
                Some(b) => Some((r, Ok(b))),
                None if !a.repos.is_empty() => {
                    let err =
                        XoneError::not_found(format!("{} has no branch of {}", r.name, a.key))
                            .hint(format!(
                                "create it with `xone branch create {} --repo {}`",
                                a.key, r.name
                            ));
                    Some((r, Err(err)))
                }
                None => None,
            }
        })
        .collect())
}

fn checkout(cx: &mut Ctx, a: RepoArgs) -> Result<()> {
    let store = cx.store()?;
    let forges = cx.forges()?;
    store::requirement(store.conn(), &a.key)?;
    let targets = recorded(&store, &a)?;
    let results = fan_out_shown(
        &cx.ui,
        "checkout",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            forges.for_repo(repo)?.checkout(repo, &b.name)
        },
    );
    let reports =
        targets.iter().zip(results).map(|((repo, _), r)| RepoReport::new(&repo.name, r)).collect();
    report_repos(cx, "branch checkout", reports)
}

fn delete(cx: &mut Ctx, a: RepoArgs, force: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let req = store::requirement(store.conn(), &a.key)?;
    let targets = recorded(&store, &a)?;
    let repos = match targets.len() {
        1 => "1 repository".to_string(),
        n => format!("{n} repositories"),
    };
    cx.ui.confirm_or_stop(&format!("Delete {}'s branch in {repos}?", a.key), "nothing deleted")?;
    let results = fan_out_shown(
        &cx.ui,
        "delete",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            forges.for_repo(repo)?.delete_branch(repo, &b.name, &b.base, force)
        },
    );
    let mut reports = Vec::new();
    for ((repo, _), result) in targets.iter().zip(results) {
        if result.is_ok() {
            store.write(|tx| {
                store::forget_branch(tx, &a.key, repo.id)?;
                if let Ok(Outcome::Done(d)) = &result {
                    let e = Event {
                        detail: Some(format!("{}: {d}", repo.name)),
                        forced: force,
                        ..event(&req, &actor, "branch delete")
                    };
                    store::record(tx, &e)?;
                }
                Ok(())
            })?;
        }
        reports.push(RepoReport::new(&repo.name, result));
    }
    report_repos(cx, "branch delete", reports)
}

#[derive(Serialize)]
struct MrView {
    repo: String,
    branch: String,
    base: String,
    #[serde(flatten)]
    mr: Option<crate::adapters::MergeRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A merge request's title (`KEY: title`), its description (the requirement's summary, its
/// documents and people) and labels (the project and the requirement's status).
fn mr_text(store: &Store, req: &store::Requirement) -> Result<MrText> {
    let c = store.conn();
    let key = req.key();
    let mut d = format!("Requirement **{key}**: {}\n\nStatus: {}", req.title, req.status);
    if let (Some(s), Some(e)) = (&req.dates.start, &req.dates.end) {
        d.push_str(&format!(", planned {s} to {e}"));
    }
    let people = store::assignments(c, &key)?;
    if !people.is_empty() {
        d.push_str("\n\nPeople:\n");
        for p in &people {
            d.push_str(&format!("- {}: {}\n", p.role, p.user));
        }
    }
    let docs = store::documents(c, &key)?;
    let mut kinds: Vec<(&str, i64)> = Vec::new();
    for doc in &docs {
        match kinds.iter_mut().find(|(k, _)| *k == doc.kind) {
            Some(entry) => entry.1 = entry.1.max(doc.version),
            None => kinds.push((&doc.kind, doc.version)),
        }
    }
    if !kinds.is_empty() {
        d.push_str("\nDocuments:\n");
        for (k, v) in kinds {
            d.push_str(&format!("- {k} (version {v}): `xone requirement doc {key} {k} --print`\n"));
        }
    }
    d.push_str(&format!("\nThe whole thread: `xone requirement show {key}`\n"));
    Ok(MrText {
        title: format!("{key}: {}", req.title),
        description: d,
        labels: vec!["xone".into(), format!("xone::{}", req.project)],
    })
}

fn mr(cx: &mut Ctx, a: RepoArgs, merge: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let forges = cx.forges()?;
    let req = store::requirement(store.conn(), &a.key)?;
    let text = mr_text(&store, &req)?;
    let targets = recorded(&store, &a)?;
    if merge {
        let mut reports = Vec::new();
        for (repo, b) in targets {
            let repo = &repo;
            let result = b.and_then(|b| {
                let outcome = forges.for_repo(repo)?.merge(repo, &b.name, &b.base, &text)?;
                if let Outcome::Done(d) = &outcome {
                    let e = Event {
                        detail: Some(format!("{}: {d}", repo.name)),
                        ..event(&req, &actor, "merge")
                    };
                    store.write(|tx| store::record(tx, &e))?;
                }
                Ok(outcome)
            });
            reports.push(RepoReport::new(&repo.name, result));
        }
        return report_repos(cx, "branch mr --merge", reports);
    }
    // Every repository at once; one that fails is reported and does not stop the others.
    let results = fan_out_shown(
        &cx.ui,
        "merge request",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            forges.for_repo(repo)?.merge_request(repo, &b.name, &b.base, &text)
        },
    );
    let mut views = Vec::new();
    let mut failed = Vec::new();
    for ((repo, b), result) in targets.iter().zip(results) {
        let (branch, base) = match b {
            Ok(b) => (b.name.clone(), b.base.clone()),
            Err(_) => (String::new(), repo.default_branch.clone()),
        };
        match result {
            Ok(mr) => {
                if mr.opened {
                    let opened = mr.url.clone().unwrap_or_else(|| branch.clone());
                    let e = Event {
                        detail: Some(format!("{}: opened {opened}", repo.name)),
                        ..event(&req, &actor, "mr open")
                    };
                    store.write(|tx| store::record(tx, &e))?;
                }
                views.push(MrView {
                    repo: repo.name.clone(),
                    branch,
                    base,
                    mr: Some(mr),
                    error: None,
                });
            }
            Err(e) => {
                let report = RepoReport::new(&repo.name, Err(e));
                views.push(MrView {
                    repo: repo.name.clone(),
                    branch,
                    base,
                    mr: None,
                    error: Some(report.detail.clone()),
                });
                failed.push(report);
            }
        }
    }
    if cx.ui.json {
        cx.ui.print_json(&views)?;
    } else {
        let mut t = vec![vec!["REPO".into(), "BRANCH".into(), "STATE".into(), "MERGE".into()]];
        for v in &views {
            let Some(mr) = &v.mr else {
                let why = v.error.clone().unwrap_or_default();
                t.push(vec![v.repo.clone(), v.branch.clone(), cx.ui.red("failed"), why]);
                continue;
            };
            let merge = match (mr.state.as_str(), mr.mergeable) {
                ("merged", _) | ("closed", _) => cx.ui.dim("-"),
                ("empty", _) => cx.ui.dim("nothing to merge yet"),
                (_, true) => {
                    cx.ui.green(&format!("mergeable, {} commit(s) into {}", mr.commits, v.base))
                }
                (_, false) if mr.conflicts.is_empty() => cx.ui.red(&format!(
                    "not mergeable yet: {}",
                    mr.status.as_deref().unwrap_or("see the merge request")
                )),
                (_, false) => cx.ui.red(&format!("conflicts: {}", mr.conflicts.join(", "))),
            };
            let state = match &mr.url {
                Some(url) => format!("{} {url}", mr.state),
                None => mr.state.clone(),
            };
            t.push(vec![v.repo.clone(), v.branch.clone(), state, merge]);
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
    super::fail_if_any("branch mr", all)
}
