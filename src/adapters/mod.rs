//! The systems xone talks to, behind small traits so that the embedded defaults and the real
//! systems swap without the commands noticing.

pub mod cluster;
pub mod docker;
pub mod forge_local;
pub mod gitlab;
pub mod http;
pub mod jira;
pub mod prometheus;
pub mod tracker;
pub mod tracker_jira;
pub mod tracker_local;
pub mod webhook;

use std::sync::OnceLock;

use crate::store::{Repo, RepoKind};
use crate::ui::{Result, XoneError};

/// What a forge reports about a repository when it is linked to a project.
#[derive(Clone, Debug)]
pub struct RepoInfo {
    pub name: String,
    /// Which forge serves it: `local` or `gitlab`.
    pub kind: RepoKind,
    pub location: String,
    pub default_branch: String,
    pub bare: bool,
    pub remote_id: Option<i64>,
    pub clone_url: Option<String>,
    pub web_url: Option<String>,
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

/// A requirement's feature branch, as an integration takes it in.
#[derive(Clone, Debug)]
pub struct Feature {
    pub key: String,
    pub branch: String,
}

/// What an integration built in one repository.
#[derive(Clone, Debug)]
pub struct Integration {
    pub base_sha: String,
    /// The integration branch's new tip.
    pub sha: String,
    /// The features merged, with the commit of each that went in.
    pub merged: Vec<(Feature, String)>,
    /// Features whose branch does not exist in this repository.
    pub absent: Vec<Feature>,
    /// False when the branch already held exactly this and was left as it was.
    pub moved: bool,
}

/// One commit of a feature branch, for the requirement's story.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CommitInfo {
    pub sha: String,
    pub summary: String,
    pub author: String,
    pub at: String,
}

/// A feature branch's merge request as the forge sees it: on the local forge, the branch
/// against its base; on GitLab, the merge request itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MergeRequest {
    /// open (work to merge), merged (taken into the base), empty (no work yet)
    pub state: String,
    /// Whether merging now would succeed without conflicts.
    pub mergeable: bool,
    pub conflicts: Vec<String>,
    /// Commits the branch would bring into its base.
    pub commits: usize,
    /// The merge request's page, where the forge has one.
    pub url: Option<String>,
    /// The forge's own word on mergeability (GitLab's `detailed_merge_status`: mergeable,
    /// conflict, ci_must_pass, not_approved, draft_status, checking, …).
    pub status: Option<String>,
    /// Opened by this call (rather than found).
    #[serde(skip)]
    pub opened: bool,
}

/// A merge request as a listing shows it, without opening one.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MrSummary {
    /// open, merged or closed
    pub state: String,
    pub url: Option<String>,
}

/// What a merge request says about itself.
#[derive(Clone, Debug)]
pub struct MrText {
    pub title: String,
    pub description: String,
    pub labels: Vec<String>,
}

/// Code hosting: the local forge (git repositories on disk) or GitLab. Shared by the threads
/// of a fan-out.
pub trait Forge: Sync {
    /// Checks that `location` is a repository this forge can serve, and describes it.
    fn describe(&self, location: &str) -> Result<RepoInfo>;
    /// Creates `branch` at `from`, or accepts an existing one that shares its history.
    fn create_branch(&self, repo: &Repo, branch: &str, from: &str) -> Result<Outcome>;
    /// The names of the repository's branches that begin with `prefix`.
    fn branches(&self, repo: &Repo, prefix: &str) -> Result<Vec<String>>;
    /// The branch's tip and its distance from `base`; `None` when the branch does not exist.
    fn branch_state(&self, repo: &Repo, branch: &str, base: &str) -> Result<Option<BranchState>>;
    /// Checks the branch out where the repository has a work tree, never losing local changes.
    fn checkout(&self, repo: &Repo, branch: &str) -> Result<Outcome>;
    /// Deletes the branch; work not merged into `base` only with `force`.
    fn delete_branch(&self, repo: &Repo, branch: &str, base: &str, force: bool) -> Result<Outcome>;
    /// Rebuilds `target` from `base` plus each feature, merged in order. Either every merge
    /// succeeds and `target` moves (only if it is still where it was when this began), or a
    /// conflict is reported (exit 5, naming the feature and files) and `target` is untouched.
    fn integrate(
        &self,
        repo: &Repo,
        target: &str,
        base: &str,
        features: &[Feature],
    ) -> Result<Integration>;
    /// Brings `base` into `branch`: a merge, or with `rebase` the branch's own commits
    /// replayed on top of `base`.
    fn sync(&self, repo: &Repo, branch: &str, base: &str, rebase: bool) -> Result<Outcome>;
    /// The commits on `branch` that `base` does not have, newest first, at most `limit`.
    fn commits(
        &self,
        repo: &Repo,
        branch: &str,
        base: &str,
        limit: usize,
    ) -> Result<Vec<CommitInfo>>;
    /// Whether commit `sha` is contained in `container` (a branch); false if either is missing.
    fn contains(&self, repo: &Repo, container: &str, sha: &str) -> Result<bool>;
    /// The merge request of `branch` into `base` (opened where the forge has such things).
    fn merge_request(
        &self,
        repo: &Repo,
        branch: &str,
        base: &str,
        text: &MrText,
    ) -> Result<MergeRequest>;
    /// Merges `branch` into `base` if that succeeds without conflicts; a conflict is exit 5
    /// and leaves `base` as it was.
    fn merge(&self, repo: &Repo, branch: &str, base: &str, text: &MrText) -> Result<Outcome>;
    /// The merge request of `branch` into `base` if one exists, found without opening one;
    /// `None` on forges without merge requests.
    fn find_merge_request(
        &self,
        _repo: &Repo,
        _branch: &str,
        _base: &str,
    ) -> Result<Option<MrSummary>> {
        Ok(None)
    }
}

/// The forges a command may need, each made when a repository first asks for it: a command
/// on local repositories never reads a token or starts an HTTP client.
pub struct Forges {
    gitlab_settings: gitlab::Settings,
    gitlab: OnceLock<Result<gitlab::GitLab>>,
}

impl Forges {
    pub fn new(gitlab_settings: gitlab::Settings) -> Forges {
        Forges { gitlab_settings, gitlab: OnceLock::new() }
    }

    pub fn gitlab_settings(&self) -> &gitlab::Settings {
        &self.gitlab_settings
    }

    /// The GitLab forge, or why there is none (no `gitlab.url`).
    pub fn gitlab(&self) -> Result<&gitlab::GitLab> {
        self.gitlab
            .get_or_init(|| gitlab::GitLab::new(&self.gitlab_settings))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The forge that serves a linked repository.
    pub fn for_repo(&self, repo: &Repo) -> Result<&dyn Forge> {
        match repo.kind {
            RepoKind::Local => Ok(&forge_local::LocalForge),
            RepoKind::Gitlab => Ok(self.gitlab()?),
        }
    }

    /// Reads a repository given on the command line: `gitlab:group/name`, a URL on the
    /// configured GitLab, or the path of a local repository.
    pub fn describe(&self, spec: &str) -> Result<RepoInfo> {
        if gitlab::is_gitlab_spec(spec, self.gitlab_settings.url.as_deref()) {
            return self.gitlab()?.describe(spec);
        }
        forge_local::LocalForge.describe(spec)
    }

    /// The repository's objects on this machine, up to date: a local repository itself, or
    /// the fetched mirror of a GitLab one. Builds export commits from here.
    pub fn objects(&self, repo: &Repo) -> Result<git2::Repository> {
        match repo.kind {
            RepoKind::Local => git2::Repository::open(&repo.location).map_err(|e| {
                XoneError::not_found(format!("repository {} cannot be opened", repo.location))
                    .cause(e.message())
            }),
            RepoKind::Gitlab => self.gitlab()?.mirror(repo),
        }
    }

    /// Where commits to a repository are made: a local repository itself, or the clone of a
    /// GitLab one in the workspace.
    pub fn work_tree(&self, repo: &Repo) -> std::path::PathBuf {
        match repo.kind {
            RepoKind::Local => repo.location.clone().into(),
            RepoKind::Gitlab => self.gitlab_settings.workspace.join(&repo.location),
        }
    }

    /// A branch's state and its merge request; see `current_state`.
    pub fn current_state_and_mr(
        &self,
        repos: &[Repo],
        b: &crate::store::BranchRecord,
    ) -> Result<(Option<BranchState>, Option<MrSummary>)> {
        let state = self.current_state(repos, b)?;
        let Some(repo) = repos.iter().find(|r| r.id == b.repo_id) else {
            return Ok((state, None));
        };
        if state.is_none() {
            return Ok((None, None));
        }
        let mr = self.for_repo(repo)?.find_merge_request(repo, &b.name, &b.base)?;
        Ok((state, mr))
    }

    /// A recorded branch as its forge reports it now; `None` when the branch or its
    /// repository is gone (the caller shows it as missing). A remote system that fails is an
    /// error (exit 6), not a missing branch.
    pub fn current_state(
        &self,
        repos: &[Repo],
        b: &crate::store::BranchRecord,
    ) -> Result<Option<BranchState>> {
        let Some(repo) = repos.iter().find(|r| r.id == b.repo_id) else {
            return Ok(None);
        };
        match self.for_repo(repo).and_then(|f| f.branch_state(repo, &b.name, &b.base)) {
            Ok(state) => Ok(state),
            // Gone (the branch, or a local repository's directory): shown as missing. A
            // remote that fails, or a forge that is not configured, is said as such.
            Err(e) if matches!(e.kind, crate::ui::Kind::NotFound | crate::ui::Kind::Internal) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
