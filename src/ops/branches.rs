//! A requirement's feature branch in each of its project's repositories: made, measured,
//! checked out, synced, merged and deleted all at once, and gathered into an environment's
//! integration branch; each repository reported on its own.

use serde::Serialize;

use super::fan_out::{fan_out, fan_out_shown, RepoReport};
use super::{events, Work};
use crate::adapters::{Feature, Forges, MergeRequest, MrSummary, MrText, Outcome};
use crate::config::Config;
use crate::domain::lifecycle::states_for_env;
use crate::domain::names::{self, feature_branch};
use crate::domain::{DocKind, ProjectKey, RequirementKey, Status};
use crate::store::{self, BranchRecord, Event, IntegrationStatus, Repo, Requirement, Store};
use crate::ui::{short_sha, Kind, Result, Ui, XoneError};

/// A feature branch as a tracker links it: the id that names it everywhere, and its title.
pub fn branch_link(repo: &str, branch: &str) -> (String, String) {
    (format!("xone:branch:{repo}:{branch}"), format!("branch {branch} in {repo}"))
}

/// The integration branch of `env`, from `branch.integration` (`release/{env}`).
pub fn integration_branch(config: &Config, env: &str) -> Result<String> {
    let pattern = config.str("branch.integration").unwrap_or("release/{env}");
    names::integration_branch(pattern, env)
        .map_err(|e| XoneError::usage(e).hint("xone config set branch.integration 'release/{env}'"))
}

/// The project's repositories, or the named ones (by name, path, URL or
/// `gitlab:GROUP/NAME`); one that names none is refused before any work.
pub fn pick_repos(
    store: &Store,
    project: &ProjectKey,
    names: &[String],
    gitlab_url: Option<&str>,
) -> Result<Vec<Repo>> {
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
            super::project::find_repo(&all, n, gitlab_url)
                .cloned()
                .ok_or_else(|| super::project::no_such_repo(project, n, &all))
        })
        .collect()
}

/// The chosen repositories and the requirement's branch recorded in each. A repository named
/// in `names` that has none is reported as not found; others without one are passed over.
pub fn recorded(
    store: &Store,
    key: &RequirementKey,
    names: &[String],
    gitlab_url: Option<&str>,
) -> Result<Vec<(Repo, Result<BranchRecord>)>> {
    let repos = pick_repos(store, &key.project, names, gitlab_url)?;
    let records = store::branches(store.conn(), Some(key), None)?;
    if records.is_empty() {
        return Err(XoneError::not_found(format!("{key} has no feature branches"))
            .hint(format!("create them with `xone branch create {key}`")));
    }
    Ok(repos
        .into_iter()
        .filter_map(|r| {
            let found = records.iter().find(|b| b.repo_id == r.id).cloned();
            match found {
                Some(b) => Some((r, Ok(b))),
                None if !names.is_empty() => {
                    let err =
                        XoneError::not_found(format!("{} has no branch of {key}", r.name)).hint(
                            format!("create it with `xone branch create {key} --repo {}`", r.name),
                        );
                    Some((r, Err(err)))
                }
                None => None,
            }
        })
        .collect())
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
    pub merge_request: Option<MrSummary>,
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

/// Creates the requirement's feature branch (named once, from its title) in each repository,
/// from `from` or each repository's default branch, and records it.
pub fn create(
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    names: &[String],
    from: Option<&str>,
) -> Result<Vec<RepoReport>> {
    let req = store::open_requirement(store.conn(), key)?;
    let repos = pick_repos(store, &key.project, names, w.forges.gitlab_settings().url.as_deref())?;
    // The name is fixed the first time, so a later title change does not fork the branches.
    let name = req.branch.clone().unwrap_or_else(|| feature_branch(key, &req.title));
    if req.branch.is_none() {
        store.write(|tx| store::set_branch_name(tx, key, &name))?;
    }
    // The base is where the branch starts: commits ahead of it are the requirement's work.
    let from =
        |repo: &Repo| from.map(str::to_string).unwrap_or_else(|| repo.default_branch.clone());
    let results = fan_out_shown(
        w.ui,
        "create",
        &repos,
        |r| r.name.clone(),
        |repo| w.forges.for_repo(repo).and_then(|f| f.create_branch(repo, &name, &from(repo))),
    );
    // A branch made but not recorded (an interrupted run) is found and recorded next time.
    // One transaction records them all.
    store.write(|tx| {
        for (repo, result) in repos.iter().zip(&results) {
            let Ok(outcome) = result else { continue };
            store::record_branch(tx, key, repo.id, &name, &from(repo))?;
            let (id, title) = branch_link(&repo.name, &name);
            w.tracker.link(tx, key, &id, &title, repo.web_url.as_deref())?;
            if let Outcome::Done(d) = outcome {
                let e = Event {
                    detail: Some(format!("{}: {d}", repo.name)),
                    ..events::requirement(&req, w.actor, "branch create")
                };
                store::record(tx, &e)?;
            }
        }
        Ok(())
    })?;
    Ok(repos.iter().zip(results).map(|(repo, r)| RepoReport::new(&repo.name, r)).collect())
}

/// Brings each repository's default branch into the requirement's feature branch.
pub fn sync(
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    names: &[String],
    rebase: bool,
) -> Result<Vec<RepoReport>> {
    let req = store::open_requirement(store.conn(), key)?;
    let targets = recorded(store, key, names, w.forges.gitlab_settings().url.as_deref())?;
    let results = fan_out_shown(
        w.ui,
        "sync",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            w.forges.for_repo(repo)?.sync(repo, &b.name, &repo.default_branch, rebase)
        },
    );
    let mut reports = Vec::new();
    for ((repo, _), result) in targets.iter().zip(results) {
        if let Ok(Outcome::Done(d)) = &result {
            let detail = format!("{}: {d}", repo.name);
            let e =
                Event { detail: Some(detail), ..events::requirement(&req, w.actor, "branch sync") };
            store.write(|tx| store::record(tx, &e))?;
        }
        reports.push(RepoReport::new(&repo.name, result));
    }
    Ok(reports)
}

/// Checks the feature branch out in every work tree without local changes.
pub fn checkout(
    ui: &Ui,
    forges: &Forges,
    store: &Store,
    key: &RequirementKey,
    names: &[String],
) -> Result<Vec<RepoReport>> {
    store::requirement(store.conn(), key)?;
    let targets = recorded(store, key, names, forges.gitlab_settings().url.as_deref())?;
    let results = fan_out_shown(
        ui,
        "checkout",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            forges.for_repo(repo)?.checkout(repo, &b.name)
        },
    );
    Ok(targets.iter().zip(results).map(|((repo, _), r)| RepoReport::new(&repo.name, r)).collect())
}

/// Deletes the feature branch in the chosen repositories (`targets`, from `recorded`);
/// unmerged work only with `force`.
pub fn delete(
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    targets: &[(Repo, Result<BranchRecord>)],
    force: bool,
) -> Result<Vec<RepoReport>> {
    let req = store::requirement(store.conn(), key)?;
    let results = fan_out_shown(
        w.ui,
        "delete",
        targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            w.forges.for_repo(repo)?.delete_branch(repo, &b.name, &b.base, force)
        },
    );
    let mut reports = Vec::new();
    for ((repo, _), result) in targets.iter().zip(results) {
        if result.is_ok() {
            store.write(|tx| {
                store::forget_branch(tx, key, repo.id)?;
                if let Ok(Outcome::Done(d)) = &result {
                    let e = Event {
                        detail: Some(format!("{}: {d}", repo.name)),
                        forced: force,
                        ..events::requirement(&req, w.actor, "branch delete")
                    };
                    store::record(tx, &e)?;
                }
                Ok(())
            })?;
        }
        reports.push(RepoReport::new(&repo.name, result));
    }
    Ok(reports)
}

/// Which integration to rebuild: `env`'s, on its branch `target`, from the requirements
/// `keys` (none: those in the states that belong to `env`).
pub struct Integrate<'a> {
    pub env: &'a str,
    pub target: &'a str,
    pub keys: &'a [RequirementKey],
}

/// Rebuilds an environment's integration branch in every repository of the project from its
/// default branch and the requirements' feature branches. What went in is recorded on every
/// requirement it holds, conflicts too.
pub fn integrate(
    w: &Work,
    store: &mut Store,
    which: &Integrate,
    project: Option<&ProjectKey>,
) -> Result<Vec<RepoReport>> {
    let Integrate { env, target, keys } = *which;
    let project = super::project::which_project(store, project, keys)?;
    let repos = pick_repos(store, &project, &[], None)?;
    let reqs = if keys.is_empty() {
        let states = states_for_env(env).ok_or_else(|| {
            XoneError::usage(format!("environment {env} has no default requirements"))
                .hint(format!("name them: xone branch integrate {env} KEY..."))
        })?;
        store::requirements_in(store.conn(), &project, states)?
    } else {
        let mut reqs = Vec::new();
        for k in keys {
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
        w.ui.warn(format!(
            "no requirement belongs to {env}: {target} is rebuilt from the bases alone"
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
        w.ui,
        "integrate",
        &work,
        |(r, _)| r.name.clone(),
        |(repo, features)| {
            w.forges.for_repo(repo)?.integrate(repo, target, &repo.default_branch, features)
        },
    );
    let mut reports = Vec::new();
    for ((repo, features), result) in work.iter().zip(results) {
        let base = &repo.default_branch;
        // What went in is recorded on every requirement it contains, conflicts too.
        store.write(|tx| {
            let mut new = store::NewIntegration {
                project: &project,
                env,
                repo_id: repo.id,
                branch: target,
                base,
                base_sha: "",
                sha: None,
                status: IntegrationStatus::Conflict,
                detail: None,
                actor: w.actor,
            };
            match &result {
                Ok(i) => {
                    new.base_sha = &i.base_sha;
                    new.sha = Some(&i.sha);
                    new.status = if i.moved {
                        IntegrationStatus::Done
                    } else {
                        IntegrationStatus::Unchanged
                    };
                    let id = store::insert_integration(tx, &new)?;
                    for (f, sha) in &i.merged {
                        store::insert_integration_item(tx, id, &f.key, &f.branch, sha)?;
                        let Some(req) = reqs.iter().find(|r| r.key == f.key) else { continue };
                        let detail = format!(
                            "{target} in {} at {}: took {} at {}",
                            repo.name,
                            short_sha(&i.sha),
                            f.branch,
                            short_sha(sha)
                        );
                        store::record(
                            tx,
                            &Event {
                                detail: Some(detail),
                                ..events::requirement(req, w.actor, "integrate")
                            },
                        )?;
                    }
                }
                Err(e) if e.kind == Kind::Conflict => {
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
                            ..events::requirement(req, w.actor, "integrate conflict")
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
            let mut text = format!("{target} at {}: {}", short_sha(&i.sha), took.join(", "));
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
    Ok(reports)
}

/// A merge request's title (`KEY: title`), its description (the requirement's summary, its
/// documents and people) and labels (the project and the requirement's status).
fn mr_text(store: &Store, req: &Requirement) -> Result<MrText> {
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
    let mut kinds: Vec<(DocKind, i64)> = Vec::new();
    for doc in &docs {
        match kinds.iter_mut().find(|(k, _)| *k == doc.kind) {
            Some(entry) => entry.1 = entry.1.max(doc.version),
            None => kinds.push((doc.kind, doc.version)),
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

/// Merges each feature branch that merges cleanly into its base, one repository at a time.
pub fn merge(
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    names: &[String],
) -> Result<Vec<RepoReport>> {
    let req = store::requirement(store.conn(), key)?;
    let text = mr_text(store, &req)?;
    let targets = recorded(store, key, names, w.forges.gitlab_settings().url.as_deref())?;
    let mut reports = Vec::new();
    for (repo, b) in targets {
        let repo = &repo;
        let result = b.and_then(|b| {
            let outcome = w.forges.for_repo(repo)?.merge(repo, &b.name, &b.base, &text)?;
            if let Outcome::Done(d) = &outcome {
                let e = Event {
                    detail: Some(format!("{}: {d}", repo.name)),
                    ..events::requirement(&req, w.actor, "merge")
                };
                store.write(|tx| store::record(tx, &e))?;
            }
            Ok(outcome)
        });
        reports.push(RepoReport::new(&repo.name, result));
    }
    Ok(reports)
}

/// A feature branch's merge request, or why it could not be had.
#[derive(Serialize)]
pub struct MrView {
    pub repo: String,
    pub branch: String,
    pub base: String,
    #[serde(flatten)]
    pub mr: Option<MergeRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Opens or shows the merge request of each feature branch, every repository at once; one
/// that fails is reported (the second list) and does not stop the others.
pub fn merge_requests(
    w: &Work,
    store: &mut Store,
    key: &RequirementKey,
    names: &[String],
) -> Result<(Vec<MrView>, Vec<RepoReport>)> {
    let req = store::requirement(store.conn(), key)?;
    let text = mr_text(store, &req)?;
    let targets = recorded(store, key, names, w.forges.gitlab_settings().url.as_deref())?;
    let results = fan_out_shown(
        w.ui,
        "merge request",
        &targets,
        |(r, _)| r.name.clone(),
        |(repo, b)| {
            let b = b.clone()?;
            w.forges.for_repo(repo)?.merge_request(repo, &b.name, &b.base, &text)
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
                        ..events::requirement(&req, w.actor, "mr open")
                    };
                    store.write(|tx| {
                        w.tracker.link(
                            tx,
                            key,
                            &format!("xone:mr:{}:{branch}", repo.name),
                            &format!("merge request of {branch} in {}", repo.name),
                            mr.url.as_deref(),
                        )?;
                        store::record(tx, &e)
                    })?;
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
    Ok((views, failed))
}
