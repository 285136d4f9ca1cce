//! The embedded forge: plain git repositories on disk, through git2. Branches, ahead/behind
//! and checkouts are done locally; nothing leaves the machine.

use std::path::Path;

use git2::{BranchType, Oid, Repository, StatusOptions};

use super::{BranchState, Forge, Outcome, RepoInfo};
use crate::store::Repo;
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

fn short(oid: Oid) -> String {
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
            location: dir.to_string_lossy().trim_end_matches('/').to_string(),
            default_branch,
            bare: repo.is_bare(),
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
        let mut opts = StatusOptions::new();
        opts.include_untracked(false).include_ignored(false);
        let statuses = repo.statuses(Some(&mut opts))?;
        let dirty: Vec<String> = statuses
            .iter()
            .filter(|s| !s.status().is_empty())
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect();
        if !dirty.is_empty() {
            let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
            let more = if dirty.len() > 5 {
                format!(" and {} more", dirty.len() - 5)
            } else {
                String::new()
            };
            return Err(XoneError::conflict(format!(
                "{} has local changes that a checkout would lose: {}{more}",
                r.name,
                shown.join(", ")
            ))
            .hint(format!("commit or stash them in {}, then run this again", r.location)));
        }
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
}
