//! Dynamic completion: the candidates the commands' arguments offer, read from the state
//! database, opened read-only and never created or migrated, so a completion costs one small
//! query. And the requirement keys the command line takes: a key a requirement had before its
//! project moved to Jira stands for the key it has now. It sits beside the commands, not among
//! them: every command uses it.

use std::ffi::OsStr;
use std::sync::OnceLock;

use clap_complete::CompletionCandidate;

use crate::config;
use crate::store::{self, Store};

/// The environment variable that turns a run of xone into a completion request.
pub const VAR: &str = "COMPLETE";

static SHELL: OnceLock<String> = OnceLock::new();

/// Notes which shell asks, before clap_complete takes the variable out of the environment:
/// bash shows no descriptions, so it is spared the cost of making them.
pub fn remember_shell() {
    if let Ok(shell) = std::env::var(VAR) {
        let _ = SHELL.set(shell);
    }
}

fn with_descriptions() -> bool {
    SHELL.get().is_none_or(|s| s != "bash")
}

fn with_store(f: impl FnOnce(&Store) -> Vec<CompletionCandidate>) -> Vec<CompletionCandidate> {
    Store::open_read_only(&config::state_dir()).map(|s| f(&s)).unwrap_or_default()
}

/// Candidates with their descriptions, tagged once here: left untagged, clap_complete formats
/// the argument's name again for every candidate, which is most of the cost of 10 000 keys.
fn candidates(tag: &'static str, rows: Vec<(String, String)>) -> Vec<CompletionCandidate> {
    let tag = clap::builder::StyledStr::from(tag);
    let describe = with_descriptions();
    rows.into_iter()
        .map(|(value, help)| {
            CompletionCandidate::new(value)
                .help(describe.then(|| help.into()))
                .tag(Some(tag.clone()))
        })
        .collect()
}

/// A requirement key as an argument: checked, and an alias (a key from before the project
/// moved to Jira) taken as the key it stands for now, unless a requirement has that key now.
pub fn requirement_key(s: &str) -> Result<crate::domain::RequirementKey, String> {
    let key: crate::domain::RequirementKey = s.parse()?;
    let now = Store::open_read_only(&config::state_dir())
        .and_then(|st| store::key_as_of(st.conn(), &key.to_string(), None).ok().flatten());
    Ok(now.unwrap_or(key))
}

pub fn project_keys() -> Vec<CompletionCandidate> {
    with_store(|s| candidates("project", store::project_keys(s.conn()).unwrap_or_default()))
}

/// Requirement keys starting with what was typed, chosen by the database (an index range),
/// so that `PAY-12<TAB>` reads a dozen rows, not every requirement.
pub fn requirement_keys(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = current.to_str() else {
        return Vec::new();
    };
    with_store(|s| {
        candidates(
            "requirement",
            store::requirement_keys(s.conn(), prefix, with_descriptions()).unwrap_or_default(),
        )
    })
}

/// The configuration's keys, with what each is for: they need no database.
pub fn config_keys() -> Vec<CompletionCandidate> {
    candidates(
        "key",
        config::Config::known_keys().map(|(k, doc)| (k.to_string(), doc.to_string())).collect(),
    )
}

pub fn review_ids() -> Vec<CompletionCandidate> {
    with_store(|s| {
        let rows = store::reviews(s.conn(), None).unwrap_or_default();
        candidates(
            "review",
            rows.into_iter()
                .filter(|r| r.verdict.is_none())
                .map(|r| (r.id.to_string(), format!("{} {} review", r.requirement, r.kind)))
                .collect(),
        )
    })
}

pub fn app_names() -> Vec<CompletionCandidate> {
    with_store(|s| {
        let rows = store::app_names(s.conn()).unwrap_or_default();
        candidates("app", rows.into_iter().map(|(n, p)| (n, format!("app of {p}"))).collect())
    })
}

pub fn env_names() -> Vec<CompletionCandidate> {
    with_store(|s| {
        let rows = store::env_names(s.conn()).unwrap_or_default();
        candidates(
            "environment",
            rows.into_iter().map(|(n, p)| (n, format!("environment of {p}"))).collect(),
        )
    })
}
