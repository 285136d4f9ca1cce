//! Dynamic completion: candidates read from the state database, opened read-only and never
//! created or migrated, so a completion costs one small query.

use clap_complete::CompletionCandidate;

use crate::config;
use crate::store::{self, Store};

/// The environment variable that turns a run of xone into a completion request.
pub const VAR: &str = "COMPLETE";

fn with_store(f: impl FnOnce(&Store) -> Vec<CompletionCandidate>) -> Vec<CompletionCandidate> {
    Store::open_read_only(&config::state_dir())
        .map(|s| f(&s))
        .unwrap_or_default()
}

fn candidates(rows: Vec<(String, String)>) -> Vec<CompletionCandidate> {
    rows.into_iter()
        .map(|(value, help)| CompletionCandidate::new(value).help(Some(help.into())))
        .collect()
}

pub fn project_keys() -> Vec<CompletionCandidate> {
    with_store(|s| candidates(store::project_keys(s.conn()).unwrap_or_default()))
}

pub fn requirement_keys() -> Vec<CompletionCandidate> {
    with_store(|s| candidates(store::requirement_keys(s.conn()).unwrap_or_default()))
}

pub fn review_ids() -> Vec<CompletionCandidate> {
    with_store(|s| {
        let rows = store::reviews(s.conn(), None).unwrap_or_default();
        candidates(
            rows.into_iter()
                .filter(|r| r.verdict.is_none())
                .map(|r| {
                    (
                        r.id.to_string(),
                        format!("{} {} review", r.requirement, r.kind),
                    )
                })
                .collect(),
        )
    })
}
