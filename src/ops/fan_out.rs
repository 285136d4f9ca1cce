//! The same work on many repositories at once, each reported on its own: one slow or failing
//! repository neither holds up nor undoes the others, and running the work again finishes
//! what a failure left.

use serde::Serialize;

use crate::adapters::Outcome;
use crate::ui::{Kind, Result, Ui, XoneError};

/// How many repositories are worked on at once: most of the time is spent waiting on a
/// server, so the bound is about politeness to it, not about cores.
const FAN_OUT: usize = 32;

/// Runs `f` on every item at once (at most `FAN_OUT` at a time), keeping the items' order in
/// the results.
pub fn fan_out<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(FAN_OUT) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|item| s.spawn(|| f(item))).collect();
            for h in handles {
                results.push(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
        });
    }
    results
}

/// `fan_out` with its progress shown through `ui`, one line per item.
pub fn fan_out_shown<T: Sync, R: Send>(
    ui: &Ui,
    what: &str,
    items: &[T],
    label: impl Fn(&T) -> String + Sync,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let progress = ui.fan_out(what, items.iter().map(&label).collect());
    let indexed: Vec<(usize, &T)> = items.iter().enumerate().collect();
    fan_out(&indexed, |(i, item)| {
        let result = f(item);
        let state = match &result {
            Ok(_) => "finished".to_string(),
            Err(e) => format!("failed: {}", e.message),
        };
        progress.finished(*i, state);
        result
    })
}

/// The result of one operation in a fan-out across repositories.
#[derive(Serialize)]
pub struct RepoReport {
    pub repo: String,
    pub status: &'static str,
    pub detail: String,
    #[serde(skip)]
    pub error: Option<XoneError>,
}

impl RepoReport {
    pub fn new(repo: &str, result: Result<Outcome>) -> RepoReport {
        let (status, detail, error) = match result {
            Ok(Outcome::Done(d)) => ("done", d, None),
            Ok(Outcome::Already(d)) => ("unchanged", d, None),
            Ok(Outcome::Skipped(d)) => ("skipped", d, None),
            Err(e) => {
                let mut d = e.message.clone();
                for c in &e.causes {
                    d.push_str(": ");
                    d.push_str(c);
                }
                ("failed", d, Some(e))
            }
        };
        RepoReport { repo: repo.to_string(), status, detail, error }
    }
}

/// Fails with the most telling error if any repository failed (a conflict before the rest);
/// the others' work stands.
pub fn fail_if_any(what: &str, reports: Vec<RepoReport>) -> Result<()> {
    let failed: Vec<&RepoReport> = reports.iter().filter(|r| r.error.is_some()).collect();
    let Some(first) = failed.first() else {
        return Ok(());
    };
    let kind = failed
        .iter()
        .filter_map(|r| r.error.as_ref())
        .map(|e| e.kind)
        .find(|k| *k == Kind::Conflict)
        .unwrap_or(first.error.as_ref().map(|e| e.kind).unwrap_or(Kind::Internal));
    let mut err = XoneError::new(
        kind,
        format!("{what} failed in {} of {} repositories", failed.len(), reports.len()),
    );
    for r in &failed {
        err = err.cause(format!("{}: {}", r.repo, r.detail));
        if let Some(e) = &r.error {
            for h in &e.hints {
                err = err.hint(h.clone());
            }
        }
    }
    Err(err.hint("running the same command again finishes what is left"))
}
