//! The embedded forge: plain git repositories on disk, through git2. Branches, ahead/behind
//! and checkouts are done locally; nothing leaves the machine.

use std::path::Path;

use git2::{BranchType, Oid, Repository, StatusOptions};

use super::{
    BranchState, CommitInfo, Feature, Forge, Integration, MergeRequest, MrText, Outcome, RepoInfo,
};
use crate::store::{Repo, RepoKind};
use crate::ui::{Result, XoneError};

pub struct LocalForge;

/// Refuses to put something new where something already is.
pub fn ensure_empty(path: &Path, hint: &str) -> Result<()> {
    let occupied =
        path.exists() && std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(true);
    if occupied {
        return Err(XoneError::conflict(format!(
            "{} already exists and is not empty",
            path.display()
        ))
        .hint(hint));
    }
    Ok(())
}

/// Makes a repository with a work tree at `path` (missing or empty), whose `main` has one
/// commit of `files` (none: an empty first commit).
pub fn init_repository(path: &Path, files: &[(&str, &str)]) -> Result<()> {
    ensure_empty(path, "link an existing repository with --repo PATH instead")?;
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = Repository::init_opts(path, &opts)?;
    commit_files(&repo, files, "Initial commit")?;
    Ok(())
}

/// Commits `files` (path, contents) on the branch checked out in a work tree.
pub fn commit_files(repo: &Repository, files: &[(&str, &str)], message: &str) -> Result<Oid> {
    let workdir =
        repo.workdir().ok_or_else(|| XoneError::internal("the repository has no work tree"))?;
    let mut index = repo.index()?;
    for (name, body) in files {
        std::fs::write(workdir.join(name), body)?;
        index.add_path(Path::new(name))?;
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = repo.signature().or_else(|_| git2::Signature::now("xone", "xone@localhost"))?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?)
}

fn open(location: &str) -> Result<Repository> {
    Repository::open(location).map_err(|e| {
        XoneError::not_found(format!("repository {location} cannot be opened"))
            .cause(e.message())
            .hint("check that it still exists, or remove it with `xone project repo remove`")
    })
}

/// Refuses (exit 5) when the work tree has changes that `what` would lose.
fn refuse_local_changes(repo: &Repository, r: &Repo, what: &str) -> Result<()> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    let dirty: Vec<String> = statuses
        .iter()
        .filter(|s| !s.status().is_empty())
        .filter_map(|s| s.path().ok().map(str::to_string))
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
    let more =
        if dirty.len() > 5 { format!(" and {} more", dirty.len() - 5) } else { String::new() };
    Err(XoneError::conflict(format!(
        "{} has local changes that {what} would lose: {}{more}",
        r.name,
        shown.join(", ")
    ))
    .hint(format!("commit or stash them in {}, then run this again", r.location)))
}

fn signature(repo: &Repository) -> Result<git2::Signature<'static>> {
    Ok(repo.signature().or_else(|_| git2::Signature::now("xone", "xone@localhost"))?)
}

/// Whether a work tree has `branch` checked out.
fn checked_out(repo: &Repository, branch: &str) -> bool {
    let head = repo.head().ok().and_then(|h| h.name().ok().map(str::to_string));
    !repo.is_bare() && head.as_deref() == Some(format!("refs/heads/{branch}").as_str())
}

fn conflict_paths(index: &git2::Index) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for c in index.conflicts()? {
        let c = c?;
        if let Some(e) = c.our.or(c.their).or(c.ancestor) {
            paths.push(String::from_utf8_lossy(&e.path).into_owned());
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// Moves `branch` to `new` only if it still points at `old` (or, with `None`, does not exist
/// yet): the local form of a push with a lease.
fn move_branch(
    repo: &Repository,
    r: &Repo,
    branch: &str,
    new: Oid,
    old: Option<Oid>,
) -> Result<()> {
    let name = format!("refs/heads/{branch}");
    let log = "xone";
    let moved = match old {
        Some(old) => repo.reference_matching(&name, new, true, old, log),
        None => repo.reference(&name, new, false, log),
    };
    moved.map(|_| ()).map_err(|e| {
        XoneError::conflict(format!("{branch} in {} changed while xone was working on it", r.name))
            .cause(e.message())
            .hint("run the command again")
    })
}

/// Whether `old` already is an integration of exactly `base` and `merged`: its first-parent
/// chain reaches `base`, every merge on it brought in one of `merged`, and it holds them all.
/// Then a rebuild would only change timestamps, and the branch is left as it is.
/// Merges `theirs` into `ours` in memory and commits the result (parents: ours, theirs),
/// touching no ref and no work tree; a conflict is handed the files to make its error.
fn merge_commit(
    repo: &Repository,
    ours: &git2::Commit<'_>,
    theirs: &git2::Commit<'_>,
    message: &str,
    conflict: impl FnOnce(Vec<String>) -> XoneError,
) -> Result<Oid> {
    let mut index = repo.merge_commits(ours, theirs, None)?;
    if index.has_conflicts() {
        return Err(conflict(conflict_paths(&index)?));
    }
    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
    let sig = signature(repo)?;
    Ok(repo.commit(None, &sig, &sig, message, &tree, &[ours, theirs])?)
}

/// Moves `branch` from `old` to `new`. A work tree that has it checked out must be clean and
/// follows: files first (measured against the old tip, so nothing local is lost), then the
/// branch; should the branch have moved meanwhile, the files go back.
fn advance(
    repo: &Repository,
    r: &Repo,
    branch: &str,
    new: Oid,
    old: &git2::Commit<'_>,
) -> Result<()> {
    if !checked_out(repo, branch) {
        return move_branch(repo, r, branch, new, Some(old.id()));
    }
    refuse_local_changes(repo, r, "updating the branch")?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.safe();
    repo.checkout_tree(repo.find_commit(new)?.as_object(), Some(&mut co)).map_err(|e| {
        XoneError::conflict(format!("updating the work tree of {} would overwrite files", r.name))
            .cause(e.message())
            .hint("move the untracked files in the way, then run this again")
    })?;
    if let Err(e) = move_branch(repo, r, branch, new, Some(old.id())) {
        let mut back = git2::build::CheckoutBuilder::new();
        back.force();
        repo.checkout_tree(old.as_object(), Some(&mut back))?;
        return Err(e);
    }
    Ok(())
}

fn same_integration(repo: &Repository, old: Oid, base: Oid, merged: &[Oid]) -> Result<bool> {
    let mut at = repo.find_commit(old)?;
    for _ in 0..10_000 {
        if at.id() == base {
            for m in merged {
                if *m != old && !repo.graph_descendant_of(old, *m)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        match at.parent_count() {
            1 => {}
            2 if merged.contains(&at.parent_id(1)?) => {}
            _ => return Ok(false),
        }
        at = at.parent(0)?;
    }
    Ok(false)
}

/// The commit a branch points at; a missing branch is not found (exit 3).
fn branch_tip<'r>(repo: &'r Repository, r: &Repo, branch: &str) -> Result<git2::Commit<'r>> {
    let b = repo.find_branch(branch, BranchType::Local).map_err(|_| {
        XoneError::not_found(format!("{} has no branch {branch}", r.name))
            .hint("create it with `xone branch create KEY`")
    })?;
    Ok(b.get().peel_to_commit()?)
}

/// Whether a merge commit on `base`'s first-parent line brought in `tip`.
fn merged_into(repo: &Repository, base: Oid, tip: Oid) -> Result<bool> {
    let mut at = repo.find_commit(base)?;
    for _ in 0..10_000 {
        if at.parent_count() == 2 && at.parent_id(1)? == tip {
            return Ok(true);
        }
        if at.id() == tip || at.parent_count() == 0 {
            return Ok(false);
        }
        at = at.parent(0)?;
    }
    Ok(false)
}

pub fn short(oid: Oid) -> String {
    oid.to_string()[..7].to_string()
}

fn resolve(repo: &Repository, name: &str, rev: &str) -> Result<Oid> {
    let obj = repo.revparse_single(rev).map_err(|_| {
        XoneError::not_found(format!("{name} has no ref '{rev}'"))
            .hint("name an existing branch, tag or commit with --from")
    })?;
    let commit = obj.peel_to_commit().map_err(|e| {
        XoneError::not_found(format!("'{rev}' in {name} is not a commit")).cause(e.message())
    })?;
    Ok(commit.id())
}

/// An integration worked out in a repository's object database, before any ref moves.
pub struct IntegrationPlan {
    pub integration: Integration,
    /// The integration branch's tip when the work began (the lease), and the new one.
    pub old: Option<Oid>,
    pub new: Oid,
}

/// Merges `base` plus each feature in memory: nothing is written to a work tree or a ref. A
/// conflict is exit 5 naming the feature, what it met and the files.
pub fn plan_integration(
    repo: &Repository,
    r: &Repo,
    target: &str,
    base: &str,
    features: &[Feature],
) -> Result<IntegrationPlan> {
    let base_oid = resolve(repo, &r.name, base)?;
    let old = match repo.find_branch(target, BranchType::Local) {
        Ok(b) => Some(b.get().peel_to_commit()?.id()),
        Err(_) => None,
    };
    let mut current = repo.find_commit(base_oid)?;
    let (mut merged, mut absent) = (Vec::new(), Vec::new());
    for f in features {
        let Ok(fb) = repo.find_branch(&f.branch, BranchType::Local) else {
            absent.push(f.clone());
            continue;
        };
        let theirs = fb.get().peel_to_commit()?;
        if theirs.id() == current.id() || repo.graph_descendant_of(current.id(), theirs.id())? {
            merged.push((f.clone(), theirs.id().to_string()));
            continue;
        }
        let message = format!("Integrate {} ({}) into {target}", f.key, f.branch);
        let oid = merge_commit(repo, &current, &theirs, &message, |files| {
            let mut with = vec![base.to_string()];
            with.extend(merged.iter().map(|(m, _): &(Feature, String)| m.key.clone()));
            XoneError::conflict(format!(
                "{} ({}) conflicts in {} with {}",
                f.key,
                f.branch,
                r.name,
                with.join(" + ")
            ))
            .cause(format!("conflicting files: {}", files.join(", ")))
            .hint(format!(
                "bring {base} into it (xone branch sync {}) and resolve, or integrate without {}",
                f.key, f.key
            ))
        })?;
        current = repo.find_commit(oid)?;
        merged.push((f.clone(), theirs.id().to_string()));
    }
    let merged_oids: Vec<Oid> =
        merged.iter().filter_map(|(_, sha)| Oid::from_str(sha).ok()).collect();
    let unchanged = match old {
        Some(old) => old == current.id() || same_integration(repo, old, base_oid, &merged_oids)?,
        None => false,
    };
    let sha = if unchanged { old.unwrap_or(current.id()) } else { current.id() };
    Ok(IntegrationPlan {
        integration: Integration {
            base_sha: base_oid.to_string(),
            sha: sha.to_string(),
            merged,
            absent,
            moved: !unchanged,
        },
        old,
        new: current.id(),
    })
}

/// What bringing `base` into `branch` would make: `None` when the branch already has it all,
/// else the branch's old and new tips. Worked out in the object database; no ref moves.
/// The files on which merging `branch` into `base` would conflict (none: it merges cleanly).
pub fn conflicts_between(
    repo: &Repository,
    r: &Repo,
    branch: &str,
    base: &str,
) -> Result<Vec<String>> {
    let theirs = branch_tip(repo, r, branch)?;
    let ours = repo.find_commit(resolve(repo, &r.name, base)?)?;
    let index = repo.merge_commits(&ours, &theirs, None)?;
    if index.has_conflicts() {
        conflict_paths(&index)
    } else {
        Ok(Vec::new())
    }
}

pub fn plan_sync(
    repo: &Repository,
    r: &Repo,
    branch: &str,
    base: &str,
    rebase: bool,
) -> Result<Option<(Oid, Oid)>> {
    let b = repo.find_branch(branch, BranchType::Local).map_err(|_| {
        XoneError::not_found(format!("{} has no branch {branch}", r.name))
            .hint("create it with `xone branch create KEY`")
    })?;
    let tip = b.get().peel_to_commit()?;
    let base_oid = resolve(repo, &r.name, base)?;
    if tip.id() == base_oid || repo.graph_descendant_of(tip.id(), base_oid)? {
        return Ok(None);
    }
    let new = if rebase {
        // Rewriting commits that another branch already holds would fork the history.
        for other in repo.branches(Some(BranchType::Local))? {
            let (other, _) = other?;
            let name = other.name()?.unwrap_or_default().to_string();
            if name != branch && !name.is_empty() {
                let o = other.get().peel_to_commit()?.id();
                if o == tip.id() || repo.graph_descendant_of(o, tip.id())? {
                    return Err(XoneError::conflict(format!(
                        "{branch} in {} is already shared: {name} holds it",
                        r.name
                    ))
                    .hint("merge instead: run it again without --rebase"));
                }
            }
        }
        let upstream = repo.find_annotated_commit(base_oid)?;
        let ours = repo.find_annotated_commit(tip.id())?;
        let mut opts = git2::RebaseOptions::new();
        opts.inmemory(true);
        let mut rb = repo.rebase(Some(&ours), Some(&upstream), None, Some(&mut opts))?;
        let mut last = base_oid;
        while let Some(op) = rb.next() {
            op?;
            let index = rb.inmemory_index()?;
            if index.has_conflicts() {
                let files = conflict_paths(&index)?;
                rb.abort()?;
                return Err(XoneError::conflict(format!(
                    "rebasing {branch} onto {base} in {} conflicts",
                    r.name
                ))
                .cause(format!("conflicting files: {}", files.join(", ")))
                .hint("merge instead (without --rebase) and resolve the conflict there"));
            }
            last = rb.commit(None, &signature(repo)?, None)?;
        }
        rb.finish(None)?;
        last
    } else {
        let theirs = repo.find_commit(base_oid)?;
        let message = format!("Merge {base} into {branch}");
        merge_commit(repo, &tip, &theirs, &message, |files| {
            XoneError::conflict(format!("merging {base} into {branch} in {} conflicts", r.name))
                .cause(format!("conflicting files: {}", files.join(", ")))
                .hint(format!("merge {base} into {branch} by hand in a work tree and resolve"))
        })?
    };
    Ok(Some((tip.id(), new)))
}

impl Forge for LocalForge {
    fn describe(&self, location: &str) -> Result<RepoInfo> {
        let path = Path::new(location);
        if !path.exists() {
            return Err(XoneError::not_found(format!("{location} does not exist"))
                .hint("give the path of a local git repository, bare or with a work tree"));
        }
        let path = path.canonicalize()?;
        let repo = Repository::open(&path).map_err(|e| {
            XoneError::usage(format!("{} is not a git repository", path.display()))
                .cause(e.message())
                .hint("give the top directory of a git work tree or a bare repository; `git init` makes one")
        })?;
        let head = repo.find_reference("HEAD")?;
        let default_branch = head
            .symbolic_target()
            .ok()
            .flatten()
            .and_then(|t| t.strip_prefix("refs/heads/"))
            .map(str::to_string)
            .ok_or_else(|| {
                XoneError::gate(format!("{} has a detached HEAD", path.display()))
                    .hint("check out its default branch first (git switch main)")
            })?;
        let dir = if repo.is_bare() {
            path.clone()
        } else {
            repo.workdir().unwrap_or(&path).to_path_buf()
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".git").to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "repo".to_string());
        Ok(RepoInfo {
            name,
            kind: RepoKind::Local,
            location: dir.to_string_lossy().trim_end_matches('/').to_string(),
            default_branch,
            bare: repo.is_bare(),
            remote_id: None,
            clone_url: None,
            web_url: None,
        })
    }

    fn create_branch(&self, r: &Repo, branch: &str, from: &str) -> Result<Outcome> {
        let repo = open(&r.location)?;
        let start = resolve(&repo, &r.name, from).map_err(|e| {
            if from == r.default_branch {
                XoneError::gate(format!("{} has no commits on {from} yet", r.name))
                    .hint("commit something to the default branch first")
            } else {
                e
            }
        })?;
        if let Ok(existing) = repo.find_branch(branch, BranchType::Local) {
            let tip = existing.get().peel_to_commit()?.id();
            return match repo.merge_base(tip, start) {
                Ok(_) => Ok(Outcome::Already(format!("{branch} exists at {}", short(tip)))),
                Err(_) => Err(XoneError::conflict(format!(
                    "{} already has a branch {branch} with unrelated history",
                    r.name
                ))
                .hint("rename or delete that branch in the repository, then run this again")),
            };
        }
        let commit = repo.find_commit(start)?;
        repo.branch(branch, &commit, false)?;
        Ok(Outcome::Done(format!("created {branch} from {from} at {}", short(start))))
    }

    fn branches(&self, r: &Repo, prefix: &str) -> Result<Vec<String>> {
        let repo = open(&r.location)?;
        let mut names = Vec::new();
        for b in repo.branches(Some(BranchType::Local))? {
            if let Some(name) = b?.0.name()? {
                if name.starts_with(prefix) {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn branch_state(&self, r: &Repo, branch: &str, base: &str) -> Result<Option<BranchState>> {
        let repo = open(&r.location)?;
        let Ok(b) = repo.find_branch(branch, BranchType::Local) else {
            return Ok(None);
        };
        let tip = b.get().peel_to_commit()?.id();
        let base = resolve(&repo, &r.name, base)?;
        let (ahead, behind) = repo.graph_ahead_behind(tip, base)?;
        Ok(Some(BranchState { sha: tip.to_string(), ahead, behind }))
    }

    fn checkout(&self, r: &Repo, branch: &str) -> Result<Outcome> {
        let repo = open(&r.location)?;
        if repo.is_bare() {
            return Ok(Outcome::Skipped("bare repository: no work tree to check out in".into()));
        }
        let target = repo.find_branch(branch, BranchType::Local).map_err(|_| {
            XoneError::not_found(format!("{} has no branch {branch}", r.name))
                .hint("create it with `xone branch create KEY`")
        })?;
        let refname = target.get().name().unwrap_or_default().to_string();
        if repo.head().ok().and_then(|h| h.name().ok().map(str::to_string)).as_deref()
            == Some(refname.as_str())
        {
            return Ok(Outcome::Already(format!("{branch} is already checked out")));
        }
        refuse_local_changes(&repo, r, "a checkout")?;
        let commit = target.get().peel_to_commit()?;
        let mut co = git2::build::CheckoutBuilder::new();
        co.safe();
        repo.checkout_tree(commit.as_object(), Some(&mut co)).map_err(|e| {
            XoneError::conflict(format!(
                "checking out {branch} in {} would overwrite files",
                r.name
            ))
            .cause(e.message())
            .hint("move the untracked files that the branch also has, then run this again")
        })?;
        repo.set_head(&refname)?;
        Ok(Outcome::Done(format!("checked out {branch} in {}", r.location)))
    }

    fn delete_branch(&self, r: &Repo, branch: &str, base: &str, force: bool) -> Result<Outcome> {
        let repo = open(&r.location)?;
        let Ok(mut b) = repo.find_branch(branch, BranchType::Local) else {
            return Ok(Outcome::Already(format!("{branch} does not exist")));
        };
        if b.is_head() {
            return Err(XoneError::gate(format!("{branch} is checked out in {}", r.location))
                .hint(format!("switch that work tree to {} first", r.default_branch)));
        }
        let tip = b.get().peel_to_commit()?.id();
        let base_oid = resolve(&repo, &r.name, base)?;
        let (ahead, _) = repo.graph_ahead_behind(tip, base_oid)?;
        if ahead > 0 && !force {
            return Err(XoneError::gate(format!(
                "{branch} in {} has {ahead} commit(s) not merged into {base}",
                r.name
            ))
            .hint("merge them first, or pass --force to delete them"));
        }
        b.delete()?;
        Ok(Outcome::Done(format!("deleted {branch} (was {})", short(tip))))
    }

    fn integrate(
        &self,
        r: &Repo,
        target: &str,
        base: &str,
        features: &[Feature],
    ) -> Result<Integration> {
        let repo = open(&r.location)?;
        if checked_out(&repo, target) {
            return Err(XoneError::conflict(format!(
                "{target} is checked out in {}: xone will not rebuild it under a work tree",
                r.location
            ))
            .hint(format!("switch that work tree to {base}")));
        }
        let plan = plan_integration(&repo, r, target, base, features)?;
        if plan.integration.moved {
            move_branch(&repo, r, target, plan.new, plan.old)?;
        }
        Ok(plan.integration)
    }

    fn sync(&self, r: &Repo, branch: &str, base: &str, rebase: bool) -> Result<Outcome> {
        let repo = open(&r.location)?;
        if checked_out(&repo, branch) {
            refuse_local_changes(&repo, r, "updating the branch")?;
        }
        let Some((old, new)) = plan_sync(&repo, r, branch, base, rebase)? else {
            return Ok(Outcome::Already(format!("{branch} already has everything in {base}")));
        };
        advance(&repo, r, branch, new, &repo.find_commit(old)?)?;
        let how = if rebase { "rebased onto" } else { "merged" };
        Ok(Outcome::Done(format!("{how} {base}: {branch} is now at {}", short(new))))
    }

    fn commits(&self, r: &Repo, branch: &str, base: &str, limit: usize) -> Result<Vec<CommitInfo>> {
        let repo = open(&r.location)?;
        let Ok(b) = repo.find_branch(branch, BranchType::Local) else {
            return Ok(Vec::new());
        };
        let mut walk = repo.revwalk()?;
        walk.push(b.get().peel_to_commit()?.id())?;
        if let Ok(base) = resolve(&repo, &r.name, base) {
            walk.hide(base)?;
        }
        let mut out = Vec::new();
        for oid in walk.take(limit) {
            let c = repo.find_commit(oid?)?;
            out.push(CommitInfo {
                sha: c.id().to_string(),
                summary: c.summary().ok().flatten().unwrap_or_default().to_string(),
                author: c.author().name().unwrap_or_default().to_string(),
                at: crate::domain::date::rfc3339(c.time().seconds()),
            });
        }
        Ok(out)
    }

    fn contains(&self, r: &Repo, container: &str, sha: &str) -> Result<bool> {
        let repo = open(&r.location)?;
        let (Ok(b), Ok(oid)) = (repo.find_branch(container, BranchType::Local), Oid::from_str(sha))
        else {
            return Ok(false);
        };
        let tip = b.get().peel_to_commit()?.id();
        Ok(tip == oid || repo.graph_descendant_of(tip, oid).unwrap_or(false))
    }

    fn merge_request(
        &self,
        r: &Repo,
        branch: &str,
        base: &str,
        _text: &MrText,
    ) -> Result<MergeRequest> {
        let repo = open(&r.location)?;
        let theirs = branch_tip(&repo, r, branch)?;
        let ours = repo.find_commit(resolve(&repo, &r.name, base)?)?;
        let (commits, _) = repo.graph_ahead_behind(theirs.id(), ours.id())?;
        if commits == 0 {
            // Nothing to bring in: merged if the base took the branch in a merge commit,
            // otherwise the branch simply has no work yet.
            let state =
                if merged_into(&repo, ours.id(), theirs.id())? { "merged" } else { "empty" };
            return Ok(MergeRequest {
                state: state.into(),
                mergeable: false,
                conflicts: vec![],
                commits,
                url: None,
                status: None,
                opened: false,
            });
        }
        let index = repo.merge_commits(&ours, &theirs, None)?;
        let conflicts = if index.has_conflicts() { conflict_paths(&index)? } else { Vec::new() };
        Ok(MergeRequest {
            state: "open".into(),
            mergeable: conflicts.is_empty(),
            conflicts,
            commits,
            url: None,
            status: None,
            opened: false,
        })
    }

    fn merge(&self, r: &Repo, branch: &str, base: &str, text: &MrText) -> Result<Outcome> {
        let repo = open(&r.location)?;
        let theirs = branch_tip(&repo, r, branch)?;
        let base_ref = repo.find_branch(base, BranchType::Local).map_err(|_| {
            XoneError::not_found(format!("{} has no branch {base} to merge into", r.name))
        })?;
        let ours = base_ref.get().peel_to_commit()?;
        if ours.id() == theirs.id() || repo.graph_descendant_of(ours.id(), theirs.id())? {
            // As `merge_request` tells them apart: taken in by a merge commit, or nothing new.
            return Ok(Outcome::Already(if merged_into(&repo, ours.id(), theirs.id())? {
                format!("{branch} is already merged into {base}")
            } else {
                format!("{branch} has nothing to merge: it has no commits that {base} lacks")
            }));
        }
        let message = format!("Merge {branch} into {base}\n\n{}\n", text.title);
        let new = merge_commit(&repo, &ours, &theirs, &message, |files| {
            XoneError::conflict(format!("{branch} conflicts with {base} in {}", r.name))
                .cause(format!("conflicting files: {}", files.join(", ")))
                .hint(format!("bring {base} into the branch (xone branch sync) and resolve first"))
        })?;
        advance(&repo, r, base, new, &ours)?;
        Ok(Outcome::Done(format!("merged {branch} into {base} at {}", short(new))))
    }
}

/// Writes the tree of `commit` under `sub` (a directory of the repository, `.` for all) as a
/// tar stream: exactly what was committed, never a work tree's uncommitted files. Times are
/// the commit's, so the same commit gives the same stream.
pub fn export_tar(
    repo: &Repository,
    commit: Oid,
    sub: &str,
    w: &mut dyn std::io::Write,
) -> Result<()> {
    export_tar_filtered(repo, commit, sub, w, None)
}

/// What a build leaves out of its context: a `.dockerignore`, and the files it may not take
/// out (the Dockerfile and the ignore file itself, as the Docker CLI keeps them).
pub struct ContextFilter<'a> {
    pub ignore: &'a crate::domain::ignore::Ignore,
    pub keep: &'a [String],
}

/// `export_tar` without what `filter` leaves out.
pub fn export_tar_filtered(
    repo: &Repository,
    commit: Oid,
    sub: &str,
    w: &mut dyn std::io::Write,
    filter: Option<&ContextFilter>,
) -> Result<()> {
    let c = repo.find_commit(commit)?;
    let mtime = c.time().seconds().max(0) as u64;
    let tree = subtree(repo, &c, sub)?;
    let mut builder = tar::Builder::new(w);
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let path = format!("{dir}{}", entry.name().unwrap_or_default());
        if let Some(f) = filter {
            if !f.keep.contains(&path) && f.ignore.excludes(&path) {
                let is_dir = entry.kind() == Some(git2::ObjectType::Tree);
                // An excluded directory is still looked into when a pattern may take back
                // something under it.
                return if is_dir && f.ignore.has_exceptions() {
                    git2::TreeWalkResult::Ok
                } else if is_dir {
                    git2::TreeWalkResult::Skip
                } else {
                    git2::TreeWalkResult::Ok
                };
            }
        }
        let result = (|| -> Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(mtime);
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Some(git2::ObjectType::Blob) => {
                    let blob = repo.find_blob(entry.id())?;
                    if entry.filemode() == 0o120000 {
                        header.set_entry_type(tar::EntryType::Symlink);
                        header.set_size(0);
                        header.set_mode(0o777);
                        let target = String::from_utf8_lossy(blob.content()).into_owned();
                        builder.append_link(&mut header, &path, target)?;
                    } else {
                        header.set_entry_type(tar::EntryType::Regular);
                        header.set_mode(if entry.filemode() == 0o100755 { 0o755 } else { 0o644 });
                        header.set_size(blob.content().len() as u64);
                        builder.append_data(&mut header, &path, blob.content())?;
                    }
                }
                // Submodules (commits) have no content here.
                _ => {}
            }
            Ok(())
        })();
        match result {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    builder.finish()?;
    Ok(())
}

/// The tree of `sub` in `commit`; a directory that is not there is not found (exit 3).
fn subtree<'r>(repo: &'r Repository, c: &git2::Commit<'r>, sub: &str) -> Result<git2::Tree<'r>> {
    let root = c.tree()?;
    let sub = sub.trim_matches('/');
    if sub.is_empty() || sub == "." {
        return Ok(root);
    }
    let entry = root.get_path(Path::new(sub)).map_err(|_| {
        XoneError::not_found(format!("commit {} has no directory {sub}", short(c.id())))
    })?;
    entry.to_object(repo)?.peel_to_tree().map_err(|_| {
        XoneError::not_found(format!("{sub} in commit {} is not a directory", short(c.id())))
    })
}

/// The content of the file at `path` in `commit`, if there is one.
pub fn read_file(repo: &Repository, commit: Oid, path: &str) -> Result<Option<Vec<u8>>> {
    let tree = repo.find_commit(commit)?.tree()?;
    let Ok(entry) = tree.get_path(Path::new(path.trim_start_matches("./"))) else {
        return Ok(None);
    };
    if entry.kind() != Some(git2::ObjectType::Blob) {
        return Ok(None);
    }
    Ok(Some(repo.find_blob(entry.id())?.content().to_vec()))
}

/// Whether `path` (relative to the repository) is a file in `commit`.
pub fn has_file(repo: &Repository, commit: Oid, path: &str) -> Result<bool> {
    let tree = repo.find_commit(commit)?.tree()?;
    let found = tree.get_path(Path::new(path.trim_start_matches("./")));
    Ok(found.is_ok_and(|e| e.kind() == Some(git2::ObjectType::Blob)))
}

/// Writes the files of `commit` into `dir` (made empty beforehand by the caller).
pub fn export_dir(repo: &Repository, commit: Oid, dir: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    export_tar(repo, commit, ".", &mut bytes)?;
    tar::Archive::new(bytes.as_slice()).unpack(dir)?;
    Ok(())
}
