//! The systems xone talks to, behind small traits so that the embedded defaults and the real
//! systems swap without the commands noticing.

pub mod forge_local;

use crate::store::Repo;
use crate::ui::Result;

/// What a forge reports about a repository when it is linked to a project.
#[derive(Clone, Debug)]
pub struct RepoInfo {
    pub name: String,
    pub location: String,
    pub default_branch: String,
    pub bare: bool,
}

/// A branch as the forge sees it now, against its base.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BranchState {
    pub sha: String,
    pub ahead: usize,
    pub behind: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The forge changed something; the text says what.
    Done(String),
    /// Nothing needed doing; the text says why.
    Already(String),
    /// The repository was passed over; the text says why.
    Skipped(String),
}

/// Code hosting: the local forge (git repositories on disk) now, GitLab next.
pub trait Forge {
    /// Checks that `location` is a repository this forge can serve, and describes it.
    fn describe(&self, location: &str) -> Result<RepoInfo>;
    /// Creates `branch` at `from`, or accepts an existing one that shares its history.
    fn create_branch(&self, repo: &Repo, branch: &str, from: &str) -> Result<Outcome>;
    /// The branch's tip and its distance from `base`; `None` when the branch does not exist.
    fn branch_state(&self, repo: &Repo, branch: &str, base: &str) -> Result<Option<BranchState>>;
    /// Checks the branch out where the repository has a work tree, never losing local changes.
    fn checkout(&self, repo: &Repo, branch: &str) -> Result<Outcome>;
    /// Deletes the branch; work not merged into `base` only with `force`.
    fn delete_branch(&self, repo: &Repo, branch: &str, base: &str, force: bool) -> Result<Outcome>;
}

/// The forge that serves a linked repository.
pub fn forge_for(repo: &Repo) -> Result<Box<dyn Forge>> {
    match repo.kind.as_str() {
        "local" => Ok(Box::new(forge_local::LocalForge)),
        other => Err(crate::ui::XoneError::gate(format!(
            "repository {} is hosted on '{other}', which this xone does not know",
            repo.name
        ))
        .hint("upgrade xone")),
    }
}

/// A recorded branch as its forge reports it now; `None` when it is gone or its repository
/// cannot be reached (the caller shows it as missing).
pub fn current_state(repos: &[Repo], b: &crate::store::BranchRecord) -> Option<BranchState> {
    let repo = repos.iter().find(|r| r.id == b.repo_id)?;
    forge_for(repo).and_then(|f| f.branch_state(repo, &b.name, &b.base)).ok().flatten()
}
