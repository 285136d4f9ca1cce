//! Projects: made with their repositories (checked, or created, before anything is
//! written), archived, and their repositories, members and templates changed, each with its
//! event.

use std::path::PathBuf;

use super::events;
use crate::adapters::forge_local::init_repository;
use crate::adapters::{gitlab, jira, Forges, RepoInfo};
use crate::domain::{DocKind, ProjectKey, RequirementKey, Role};
use crate::store::{self, Repo, RepoKind, Store};
use crate::ui::{Result, Ui, XoneError};

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
        _ => {
            let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
            Err(XoneError::usage(format!("which project? there are several: {}", keys.join(", ")))
                .hint("name it with -p KEY, or run this inside one of its repositories"))
        }
    }
}

/// The project whose repository holds `dir` (as gh infers the repository from the directory):
/// a local repository by its path, a GitLab one by the remote a clone of it has. `None`
/// outside any linked repository, or inside one that several projects link.
pub fn here(
    store: &Store,
    dir: &std::path::Path,
    gitlab_url: Option<&str>,
) -> Result<Option<ProjectKey>> {
    let Ok(repo) = git2::Repository::discover(dir) else { return Ok(None) };
    let canonical = |p: &std::path::Path| p.canonicalize().ok();
    let mut paths: Vec<std::path::PathBuf> =
        repo.workdir().and_then(canonical).into_iter().collect();
    paths.extend(canonical(repo.path()));
    let remotes: Vec<String> = repo
        .remotes()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.ok().flatten())
                .filter_map(|n| repo.find_remote(n).ok()?.url().ok().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut found: Vec<ProjectKey> = Vec::new();
    for p in store::projects(store.conn(), false)? {
        let key: ProjectKey = p.key.parse().map_err(XoneError::internal)?;
        let holds = store::repos(store.conn(), &key)?.iter().any(|r| match r.kind {
            RepoKind::Local => {
                std::path::Path::new(&r.location).canonicalize().is_ok_and(|l| paths.contains(&l))
            }
            RepoKind::Gitlab => remotes.iter().any(|u| {
                gitlab::project_path(u, gitlab_url).as_deref() == Some(r.location.trim_matches('/'))
                    || r.clone_url.as_deref() == Some(u.as_str())
            }),
        });
        if holds {
            found.push(key);
        }
    }
    Ok((found.len() == 1).then(|| found.remove(0)))
}

/// The project's repository a command-line spelling names, as `project create` takes them: its
/// name in xone, `gitlab:group/name`, its web or clone URL, or the path of a local repository.
pub fn find_repo<'a>(repos: &'a [Repo], spec: &str, gitlab_url: Option<&str>) -> Option<&'a Repo> {
    if let Some(r) = repos.iter().find(|r| r.name == spec) {
        return Some(r);
    }
    if let Some(path) = gitlab::project_path(spec, gitlab_url) {
        return repos
            .iter()
            .find(|r| r.kind == RepoKind::Gitlab && r.location.trim_matches('/') == path);
    }
    let url = spec.trim_end_matches('/');
    if let Some(r) = repos.iter().find(|r| {
        [&r.web_url, &r.clone_url]
            .iter()
            .any(|u| u.as_deref().map(|u| u.trim_end_matches('/')) == Some(url))
    }) {
        return Some(r);
    }
    let path = std::path::Path::new(spec).canonicalize().ok()?;
    repos.iter().find(|r| {
        r.kind == RepoKind::Local
            && std::path::Path::new(&r.location).canonicalize().ok().as_deref() == Some(&path)
    })
}

/// The error for a spelling that names none of the project's repositories.
pub fn no_such_repo(project: &ProjectKey, spec: &str, repos: &[Repo]) -> XoneError {
    let known: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    XoneError::not_found(format!("project {project} has no repository {spec}")).hint(
        if known.is_empty() {
            format!("link one first with `xone project repo add {project} PATH`")
        } else {
            format!(
                "its repositories: {} (or a repository's path, URL or gitlab:GROUP/NAME)",
                known.join(", ")
            )
        },
    )
}

/// Checks a repository before anything is written, and says what xone will call it.
pub fn describe_repo(forges: &Forges, location: &str, name: Option<&str>) -> Result<Repo> {
    Ok(as_repo(forges.describe(location)?, name))
}

fn as_repo(info: RepoInfo, name: Option<&str>) -> Repo {
    Repo {
        id: 0,
        name: name.map(str::to_string).unwrap_or(info.name),
        kind: info.kind,
        location: info.location,
        default_branch: info.default_branch,
        bare: info.bare,
        remote_id: info.remote_id,
        clone_url: info.clone_url,
        web_url: info.web_url,
    }
}

/// A project to create.
pub struct NewProject<'a> {
    pub key: &'a ProjectKey,
    pub name: &'a str,
    pub description: &'a str,
    /// Repositories to link: paths or GitLab references.
    pub repos: &'a [String],
    /// A repository to create and link: on GitLab in `namespace` (or `gitlab:NAME`), else a
    /// local one at the path.
    pub create_repo: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

/// Creates the project with its repositories; returns how many were linked. Everything is
/// checked before anything is made; a repository made for a project that then cannot be
/// stored is taken away again.
pub fn create(store: &mut Store, forges: &Forges, new: &NewProject, actor: &str) -> Result<usize> {
    let key = new.key;
    store::ensure_new_project(store.conn(), key)?;
    let mut repos =
        new.repos.iter().map(|r| describe_repo(forges, r, None)).collect::<Result<Vec<_>>>()?;
    let mut local_made = None;
    let mut remote_made = None;
    if let Some(name) = new.create_repo {
        let on_gitlab = name.strip_prefix("gitlab:").or(new.namespace.is_some().then_some(name));
        match on_gitlab {
            Some(name) => {
                let namespace = new.namespace.ok_or_else(|| {
                    XoneError::gate("no GitLab namespace is set for new projects")
                        .hint("set it: xone config set gitlab.namespace GROUP")
                })?;
                let info = forges.gitlab()?.create_project(namespace, name)?;
                remote_made = Some(info.location.clone());
                repos.push(as_repo(info, None));
            }
            None => {
                let path = PathBuf::from(name);
                init_repository(&path, &[])?;
                local_made = Some(path.clone());
                repos.push(describe_repo(forges, &path.to_string_lossy(), None)?);
            }
        }
    }
    let stored = store.write(|tx| {
        store::insert_project(tx, key, new.name, new.description, actor)?;
        for r in &repos {
            store::insert_repo(tx, key, r)?;
        }
        store::record(tx, &events::project(key, actor, "project create", new.name.to_string()))
    });
    if let (Err(_), Some(path)) = (&stored, &local_made) {
        let _ = std::fs::remove_dir_all(path);
    }
    if let (Err(e), Some(path)) = (stored.as_ref(), &remote_made) {
        // A GitLab project is not deleted behind the user's back: say where it is.
        return Err(e.clone().hint(format!(
            "GitLab project {path} was created; link it with `xone project repo add {key} gitlab:{path}`"
        )));
    }
    stored?;
    Ok(repos.len())
}

/// Archives the project: it stays readable and takes no new requirements.
pub fn archive(store: &mut Store, key: &ProjectKey, name: &str, actor: &str) -> Result<()> {
    store.write(|tx| {
        store::archive_project(tx, key)?;
        store::record(tx, &events::project(key, actor, "project archive", name.to_string()))
    })
}

/// The member a Jira account is: the one added with it (`--jira-account`), else a member named
/// like the account or like its email's local part.
pub fn member_of_account(
    c: &rusqlite::Connection,
    key: &ProjectKey,
    account: &jira::Account,
) -> Result<Option<String>> {
    let accounts = store::member_accounts(c, key)?;
    let members = store::members(c, key)?;
    let by_email = account.email.as_deref().and_then(|e| e.split('@').next()).unwrap_or_default();
    Ok(accounts.iter().find(|(_, a)| *a == account.id).map(|(u, _)| u.clone()).or_else(|| {
        members
            .iter()
            .find(|m| m.user == account.id || (!by_email.is_empty() && m.user == by_email))
            .map(|m| m.user.clone())
    }))
}

/// Proves who acts on a project whose requirements live in Jira: the Jira token's account
/// must be a member's (its `--jira-account`, else a member named like the account or its
/// email), and that member must be the one xone acts as. Elsewhere who acts stays
/// self-declared. Returns the member the token proves, if it proved one.
pub fn prove_actor(
    store: &Store,
    settings: &jira::Settings,
    key: &ProjectKey,
    actor: &str,
) -> Result<Option<String>> {
    let p = store::project(store.conn(), key)?;
    if p.tracker != "jira" {
        return Ok(None);
    }
    let me = jira::Jira::new(settings)?.myself()?;
    let member = member_of_account(store.conn(), key, &me)?;
    let who = match &me.display_name {
        Some(n) => format!("{} ({n})", me.id),
        None => me.id.clone(),
    };
    let Some(member) = member else {
        return Err(XoneError::gate(format!(
            "the Jira account {who} whose token xone uses is no member of {key}"
        ))
        .hint(format!("xone project member add {key} USER --role ROLE --jira-account {}", me.id)));
    };
    if member != actor {
        return Err(XoneError::gate(format!(
            "xone would act as {actor}, but the Jira token is {member}'s ({who})"
        ))
        .hint(format!("act as {member} (XONE_USER={member}), or log in to Jira as {actor}: xone auth login jira")));
    }
    Ok(Some(member))
}

/// Where a project's requirements are to live.
pub enum TrackerChoice<'a> {
    Builtin,
    /// A Jira project, by its key (the xone project's own by default).
    Jira {
        project: Option<&'a str>,
        settings: &'a jira::Settings,
    },
}

/// Moves a project to a tracker. Jira must know the project under the same key (one key
/// everywhere: exit 4 naming both otherwise) and the user must see it (exit 3). A project
/// that already has requirements moves only with `migrate`, which carries them over (see
/// `migrate`). Returns what was carried over, or `None` when nothing changed.
pub fn set_tracker(
    ui: &Ui,
    store: &mut Store,
    key: &ProjectKey,
    choice: &TrackerChoice,
    migrate: bool,
    actor: &str,
) -> Result<Option<Vec<super::migrate::Carried>>> {
    let p = store::active_project(store.conn(), key)?;
    let (tracker, jira_project) = match choice {
        TrackerChoice::Builtin => ("builtin", None),
        TrackerChoice::Jira { project, settings } => {
            let jira_key = project.unwrap_or(key.as_str()).to_string();
            if jira_key != key.as_str() {
                return Err(XoneError::gate(format!(
                    "the Jira project {jira_key} is not {key}: a requirement keeps one key everywhere, so the keys must be equal"
                ))
                .hint(format!("use a Jira project whose key is {key}, or create the xone project as {jira_key}")));
            }
            let client = jira::Jira::new(settings)?;
            client.project(&jira_key)?;
            ("jira", Some(jira_key))
        }
    };
    if p.tracker == tracker && p.jira_project == jira_project {
        return Ok(None);
    }
    let count = store::requirement_count(store.conn(), key)?;
    if count > 0 && !migrate {
        return Err(XoneError::gate(format!(
            "project {key} has {count} requirement(s) in the {} tracker: they would be left behind",
            p.tracker
        ))
        .hint(format!("carry them over: xone project set {key} --tracker {tracker} --migrate")));
    }
    if count > 0 && tracker == "jira" {
        let (TrackerChoice::Jira { settings, .. }, Some(j)) = (choice, &jira_project) else {
            return Err(XoneError::internal("a move into Jira without its settings"));
        };
        let carried = super::migrate::into_jira(ui, store, settings, key, j)?;
        super::migrate::finish_into_jira(store, key, j, &carried, actor)?;
        return Ok(Some(carried));
    }
    let waiting = store::outbox(store.conn(), false)?
        .into_iter()
        .filter(|q| q.requirement.starts_with(&format!("{key}-")))
        .count();
    if waiting > 0 {
        return Err(XoneError::gate(format!(
            "{waiting} change(s) of {key}'s requirements still wait for Jira"
        ))
        .hint("push them first with `xone sync` (or drop them: xone sync --status, --drop ID)"));
    }
    let detail = match &jira_project {
        Some(j) => format!("requirements live in Jira project {j}"),
        None => "requirements live in the built-in tracker".to_string(),
    };
    store.write(|tx| {
        store::set_tracker(tx, key, tracker, jira_project.as_deref())?;
        store::record(tx, &events::project(key, actor, "project tracker", detail.clone()))
    })?;
    Ok(Some(Vec::new()))
}

/// Takes a project out of the archive: it takes new requirements again.
pub fn unarchive(store: &mut Store, key: &ProjectKey, actor: &str) -> Result<bool> {
    let p = store::project(store.conn(), key)?;
    if p.archived_at.is_none() {
        return Ok(false);
    }
    store.write(|tx| {
        store::unarchive_project(tx, key)?;
        store::record(tx, &events::project(key, actor, "project unarchive", p.name.clone()))
    })?;
    Ok(true)
}

/// What stands in the way of deleting a project: requirements still open, deployments made.
pub fn delete_blockers(store: &Store, key: &ProjectKey) -> Result<Vec<String>> {
    store::project(store.conn(), key)?;
    let (open, deploys) = store::open_work(store.conn(), key)?;
    let mut blockers = Vec::new();
    if !open.is_empty() {
        let shown: Vec<&str> = open.iter().take(5).map(String::as_str).collect();
        let more = open.len().saturating_sub(5);
        let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
        blockers.push(format!("{} open requirement(s): {}{tail}", open.len(), shown.join(", ")));
    }
    if deploys > 0 {
        blockers.push(format!("{deploys} deployment(s) on record: its apps may still run"));
    }
    Ok(blockers)
}

/// Deletes every record xone keeps of a project (its repositories and cluster objects are not
/// touched); `forced` names what stood in the way, for the journal. Returns how many
/// requirements went with it.
pub fn delete(
    store: &mut Store,
    key: &ProjectKey,
    forced: Option<(&[String], &str)>,
    actor: &str,
) -> Result<usize> {
    let p = store::project(store.conn(), key)?;
    store.write(|tx| {
        let n = store::delete_project(tx, key)?;
        let mut e =
            events::project(key, actor, "project delete", format!("{} ({n} requirements)", p.name));
        if let Some((blockers, reason)) = forced {
            e.forced = true;
            e.reason = Some(reason.to_string());
            e.detail = Some(format!(
                "{} ({n} requirements); forced past: {}",
                p.name,
                blockers.join("; ")
            ));
        }
        store::record(tx, &e)?;
        Ok(n)
    })
}

/// Links a repository (checked first) to the project.
pub fn add_repo(
    store: &mut Store,
    forges: &Forges,
    key: &ProjectKey,
    location: &str,
    name: Option<&str>,
    actor: &str,
) -> Result<Repo> {
    store::active_project(store.conn(), key)?;
    let r = describe_repo(forges, location, name)?;
    store.write(|tx| {
        store::insert_repo(tx, key, &r)?;
        let detail = format!("{} {}", r.name, r.location);
        store::record(tx, &events::project(key, actor, "repo add", detail))
    })?;
    Ok(r)
}

/// Unlinks a repository; the repository itself is not touched.
pub fn remove_repo(store: &mut Store, key: &ProjectKey, repo: &str, actor: &str) -> Result<()> {
    store::project(store.conn(), key)?;
    store.write(|tx| {
        store::delete_repo(tx, key, repo)?;
        store::record(tx, &events::project(key, actor, "repo remove", repo.to_string()))
    })
}

/// Gives a user roles on the project; returns the roles that are new.
pub fn add_member(
    store: &mut Store,
    key: &ProjectKey,
    user: &str,
    roles: &[Role],
    jira_account: Option<&str>,
    actor: &str,
) -> Result<Vec<Role>> {
    store::active_project(store.conn(), key)?;
    store.write(|tx| {
        let added = store::add_member(tx, key, user, roles)?;
        if let Some(account) = jira_account {
            store::set_member_account(tx, key, user, account)?;
            let detail = format!("{user} acts as the Jira account {account}");
            store::record(tx, &events::project(key, actor, "member account", detail))?;
        }
        if !added.is_empty() {
            let names: Vec<&str> = added.iter().map(|r| r.as_str()).collect();
            let detail = format!("{user}: {}", names.join(", "));
            store::record(tx, &events::project(key, actor, "member add", detail))?;
        }
        Ok(added)
    })
}

/// Takes roles (all of them when `roles` is empty) from a user.
pub fn remove_member(
    store: &mut Store,
    key: &ProjectKey,
    user: &str,
    roles: &[Role],
    actor: &str,
) -> Result<()> {
    store::project(store.conn(), key)?;
    store.write(|tx| {
        store::remove_member(tx, key, user, roles)?;
        let what = if roles.is_empty() {
            "all roles".to_string()
        } else {
            roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        };
        store::record(tx, &events::project(key, actor, "member remove", format!("{user}: {what}")))
    })
}

/// Sets the template a document kind starts from, or (`None`) goes back to the built-in one.
pub fn set_template(
    store: &mut Store,
    key: &ProjectKey,
    kind: DocKind,
    body: Option<&str>,
    actor: &str,
) -> Result<()> {
    store.write(|tx| {
        store::set_template(tx, key, kind, body)?;
        let what = if body.is_some() { "set" } else { "reset to the built-in one" };
        let detail = format!("{kind} template {what}");
        store::record(tx, &events::project(key, actor, "template", detail))
    })
}
