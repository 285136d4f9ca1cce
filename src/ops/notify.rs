//! Notifications: each event of a requirement's thread (a gate passed, a build, a deploy, a
//! rollback, a gray step, a watch) is kept in the state database in the transaction of the
//! change it tells of, and delivered to the configured webhooks at the end of the command that
//! made it, or of the next one that changes something or talks to a remote system, in order
//! and once per target. Delivery never fails the command and never keeps it waiting longer
//! than `notify.timeout` in all: what is not delivered waits, with its delivery id, for the
//! next command.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::adapters::webhook;
use crate::clock;
use crate::config::webhooks::{Format, Webhook};
use crate::domain::notice::{self, mask_in};
use crate::store::{self, Notice, Store};
use crate::ui::Result;

/// An event's common fields: its name, when (RFC 3339 UTC), who, the project and the
/// requirement's key where there is one; and, in a GitLab CI job, the pipeline and the job.
pub fn event(name: &str, actor: &str, project: &str, key: Option<&str>) -> Value {
    let mut v = json!({ "event": name, "at": clock::now(), "actor": actor, "project": project });
    if let Some(k) = key {
        v["key"] = json!(k);
    }
    let ci = |var: &str| std::env::var(var).ok().filter(|s| !s.is_empty());
    if let Some(url) = ci("CI_PIPELINE_URL") {
        v["ci"] = json!({
            "pipeline_url": url,
            "job": ci("CI_JOB_NAME"),
            "job_url": ci("CI_JOB_URL"),
        });
    }
    v
}

/// Keeps an event for delivery, in the caller's transaction: `fields` are the event's own.
pub fn emit(c: &rusqlite::Connection, mut base: Value, fields: Value) -> Result<()> {
    if let (Some(b), Value::Object(f)) = (base.as_object_mut(), fields) {
        b.extend(f);
    }
    let event = base["event"].as_str().unwrap_or_default().to_string();
    let project = base["project"].as_str().map(str::to_string);
    store::add_notice(c, &event, project.as_deref(), &base).map(|_| ())
}

/// An event of a requirement's story, with its key and title.
pub fn on_requirement(
    c: &rusqlite::Connection,
    req: &store::Requirement,
    name: &str,
    actor: &str,
    fields: Value,
) -> Result<()> {
    let mut base = event(name, actor, &req.project, Some(&req.key));
    base["title"] = json!(req.title);
    emit(c, base, fields)
}

/// The body a target is sent for an event.
fn body(format: Format, n: &Value) -> Vec<u8> {
    let v = match format {
        Format::Json => n.clone(),
        Format::Slack => json!({ "text": notice::summary(n) }),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

fn send(hook: &Webhook, n: &Notice, deadline: Instant) -> std::result::Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(10) {
        return Err("notify.timeout ran out before its turn".into());
    }
    let url = hook.resolve_url().map_err(|e| e.message)?;
    let payload = body(hook.format, &n.body);
    let mut headers =
        vec![("X-Xone-Event", n.event.clone()), ("X-Xone-Delivery", n.delivery.clone())];
    if let Some(key) = hook.resolve_secret().map_err(|e| e.message)? {
        headers.push(("X-Xone-Signature-256", webhook::sign(&key, &payload)));
    }
    webhook::post(&url, payload, &headers, left).map_err(|e| mask_in(&e, &[&url]))
}

/// A target that did not take what was sent to it.
#[derive(Clone, Debug, Serialize)]
pub struct Failed {
    pub target: String,
    pub why: String,
    /// Notifications that wait for it.
    pub waiting: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Delivered {
    pub sent: usize,
    pub failed: Vec<Failed>,
}

/// Delivers what waits, to every target at once, each in order, all within `timeout`. A
/// target seen for the first time starts after `mark` (what was there before this command is
/// not its history); one that another process is delivering to is left to it. A sender still
/// waiting when the time is up is left behind: what it was sending waits, with its delivery
/// id, for the next command. Failures are returned, never raised.
pub fn deliver(
    hooks: &[Webhook],
    store: &mut Store,
    mark: i64,
    timeout: Duration,
) -> Result<Delivered> {
    let deadline = Instant::now() + timeout;
    // A hold a little past the deadline: a sender left behind finishes within it.
    let until = clock::unix_now() + timeout.as_secs() as i64 + 5;
    let mut work = Vec::new();
    for h in unique(hooks) {
        let id = h.id();
        let Some(at) = store.write(|tx| store::claim_target(tx, &id, mark, until))? else {
            continue;
        };
        // What is written after this is for the next delivery.
        let last = store::last_notice(store.conn())?;
        let waiting: Vec<Notice> = store::notices_after(store.conn(), at)?
            .into_iter()
            .filter(|n| n.id <= last && h.takes(&n.event, n.project.as_deref()))
            .collect();
        work.push((h.clone(), id, at, last, waiting));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    for (n, (h, _, at, last, waiting)) in work.iter().enumerate() {
        let (h, at, last, waiting, tx) = (h.clone(), *at, *last, waiting.clone(), tx.clone());
        // Detached: a sender stuck past the deadline (a name that does not resolve) never
        // keeps the command waiting.
        std::thread::spawn(move || {
            let (mut upto, mut sent) = (at, 0);
            for e in &waiting {
                if let Err(why) = send(&h, e, deadline) {
                    let _ = tx.send((n, upto, sent, Some(why)));
                    return;
                }
                upto = e.id;
                sent += 1;
            }
            // Everything after the last it was to take is not for it.
            let _ = tx.send((n, last.max(upto), sent, None));
        });
    }
    drop(tx);
    let mut results: Vec<Option<(i64, usize, Option<String>)>> = vec![None; work.len()];
    while results.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok((n, upto, sent, why)) => results[n] = Some((upto, sent, why)),
            Err(_) => break,
        }
    }
    let mut out = Delivered::default();
    store.write(|tx| {
        for ((h, id, at, _, waiting), done) in work.iter().zip(&results) {
            let (upto, sent, why) = done.clone().unwrap_or_else(|| {
                (*at, 0, Some(format!("no answer within {:.1}s", timeout.as_secs_f64())))
            });
            store::release_target(tx, id, upto, why.as_deref())?;
            out.sent += sent;
            if let Some(why) = why {
                let left = waiting.iter().filter(|n| n.id > upto).count();
                out.failed.push(Failed { target: h.shown(), why, waiting: left });
            }
        }
        store::prune_notices(tx)
    })?;
    Ok(out)
}

/// The targets, each once: the same URL (as resolved) and format configured twice is one
/// target, the first.
fn unique(hooks: &[Webhook]) -> Vec<&Webhook> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for h in hooks {
        let key = (h.resolve_url().unwrap_or_else(|_| h.url.clone()), h.format);
        if !seen.contains(&key) {
            seen.push(key);
            out.push(h);
        }
    }
    out
}

/// What `notify test` found of one target.
#[derive(Debug, Serialize)]
pub struct Tried {
    pub target: String,
    pub format: Format,
    pub file: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// Sends a `notify.test` event to every target, now, each within `timeout`.
pub fn test(hooks: &[Webhook], actor: &str, timeout: Duration) -> Vec<Tried> {
    let n = Notice {
        id: 0,
        delivery: format!("test-{}", clock::now()),
        event: "notify.test".into(),
        project: None,
        body: event("notify.test", actor, "", None),
        at: clock::now(),
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = hooks
            .iter()
            .map(|h| {
                let n = &n;
                s.spawn(move || send(h, n, Instant::now() + timeout))
            })
            .collect();
        hooks
            .iter()
            .zip(handles)
            .map(|(h, t)| {
                let r = t.join().unwrap_or_else(|_| Err("the sender failed".into()));
                Tried {
                    target: h.shown(),
                    format: h.format,
                    file: h.file.display().to_string(),
                    ok: r.is_ok(),
                    error: r.err(),
                }
            })
            .collect()
    })
}

/// What waits for one target, for `notify status`.
#[derive(Debug, Serialize)]
pub struct Waiting {
    pub target: String,
    pub format: Format,
    pub file: String,
    /// The events that wait, oldest first: (id, event, key, at).
    pub waiting: Vec<Value>,
    /// Why its last delivery failed.
    pub error: Option<String>,
}

pub fn status(hooks: &[Webhook], store: &Store) -> Result<Vec<Waiting>> {
    let c = store.conn();
    let mut out = Vec::new();
    for h in hooks {
        let pos = store::target_position(c, &h.id())?;
        let (at, error) = match pos {
            Some((at, e)) => (at, e),
            // Never delivered to: it starts with the next event.
            None => (store::last_notice(c)?, None),
        };
        let waiting = store::notices_after(c, at)?
            .into_iter()
            .filter(|n| h.takes(&n.event, n.project.as_deref()))
            .map(|n| {
                json!({ "id": n.id, "event": n.event, "key": n.body["key"], "at": n.at, "delivery": n.delivery })
            })
            .collect();
        out.push(Waiting {
            target: h.shown(),
            format: h.format,
            file: h.file.display().to_string(),
            waiting,
            error,
        });
    }
    Ok(out)
}

/// Settles a deployment's or rollback's record (see `store::finish_deploy`) and keeps the
/// event that tells of it: `deploy.finished` or `rollback.finished`, with how it went.
pub fn finish_deploy(
    actor: &str,
    c: &rusqlite::Connection,
    id: i64,
    status: store::DeployStatus,
    revision: Option<i64>,
    detail: Option<&str>,
) -> Result<()> {
    store::finish_deploy(c, id, status, revision, detail)?;
    let d = store::deploy(c, id)?;
    let name = match d.kind {
        store::DeployKind::Rollback => "rollback.finished",
        _ => "deploy.finished",
    };
    let mut base = event(name, actor, &d.project, d.requirement.as_deref());
    if let Some(Ok(k)) = d.requirement.as_deref().map(str::parse) {
        if let Some(r) = store::find_requirement(c, &k)? {
            base["title"] = json!(r.title);
        }
    }
    let fields = json!({
        "app": d.app, "env": d.env, "namespace": d.namespace, "image": d.image,
        "status": d.status, "revision": d.revision, "detail": d.detail, "deploy": d.id,
    });
    emit(c, base, fields)
}

/// Settles a release watch (see `store::finish_watch`) and keeps `watch.finished`: passed or
/// failed, and why.
pub fn finish_watch(
    actor: &str,
    c: &rusqlite::Connection,
    w: &store::Watch,
    requirement: Option<&str>,
    status: store::WatchStatus,
    detail: &str,
) -> Result<()> {
    store::finish_watch(c, w.id, status, detail)?;
    let base = event("watch.finished", actor, &w.project, requirement);
    let fields = json!({
        "app": w.app, "env": w.env, "status": status, "detail": detail,
        "revision": w.revision, "image": w.image, "window_secs": w.window_secs,
    });
    emit(c, base, fields)
}

/// Keeps the event of a gray release's move (`gray.started`, `gray.stepped`, ...), from the
/// journal's action (`gray stepped (forced)`).
pub fn gray(
    c: &rusqlite::Connection,
    project: &str,
    env: &str,
    g: &crate::domain::gray::Gray,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<()> {
    let forced = action.ends_with("(forced)");
    let verb = action.trim_end_matches(" (forced)").trim_start_matches("gray ");
    let base = event(&format!("gray.{verb}"), actor, project, g.requirement.as_deref());
    let fields = json!({
        "app": g.app, "env": env, "namespace": g.namespace, "phase": g.phase,
        "step": g.step + 1, "steps": g.steps.len(), "instances": g.steps,
        "canary_image": g.canary_image, "stable_image": g.stable_image,
        "forced": forced, "detail": detail, "started_at": g.started_at,
    });
    emit(c, base, fields)
}
