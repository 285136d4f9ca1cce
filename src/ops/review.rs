//! Review meetings whose record outlives the meeting: opened with their attendees,
//! commented and resolved, and closed with a verdict that is appended to the reviewed
//! document as its next version.

use super::docs::is_text;
use super::events;
use crate::adapters::tracker::Tracker;
use crate::clock;
use crate::domain::remarks::{with_remarks, Remark};
use crate::domain::{RequirementKey, ReviewKind, Verdict};
use crate::store::{self, Event, Review, Store};
use crate::ui::{Result, XoneError};

/// Opens a review of the requirement's document of `kind`, with its attendees (by default
/// everyone assigned to the requirement); returns the review's id and its attendees.
pub fn create(
    store: &mut Store,
    tracker: &dyn Tracker,
    key: &RequirementKey,
    kind: ReviewKind,
    at: Option<&str>,
    attendees: Vec<String>,
    actor: &str,
) -> Result<(i64, Vec<String>)> {
    let c = store.conn();
    let req = store::open_requirement(c, key)?;
    if store::document(c, key, kind.doc_kind(), None)?.is_none() {
        return Err(XoneError::gate(format!(
            "{key} has no {} document to review",
            kind.doc_kind()
        ))
        .hint(format!(
            "attach it first: xone requirement doc {key} {} --attach FILE",
            kind.doc_kind()
        )));
    }
    let people: Vec<String> = store::assignments(c, key)?.into_iter().map(|p| p.user).collect();
    let attendees = if attendees.is_empty() {
        let mut all = people.clone();
        all.sort();
        all.dedup();
        all
    } else {
        for a in &attendees {
            if !people.contains(a) && !store::is_member(c, &key.project, a)? {
                return Err(XoneError::not_found(format!("{a} is neither assigned to {key} nor a member of {}", key.project))
                    .hint(format!("xone project member add {} {a} --role ROLE, or xone requirement assign {key} ROLE={a}", key.project)));
            }
        }
        attendees
    };
    let id = store.write(|tx| {
        let id = store::insert_review(tx, key, kind, at, &attendees, actor)?;
        let detail =
            format!("#{id} {kind} review{}", at.map(|a| format!(" at {a}")).unwrap_or_default());
        let opened = store::review(tx, id)?.created_at;
        let origin = store::review_origin(tx, id)?;
        let remark = Remark::Review { kind, by: actor.to_string(), at: opened, id: origin };
        tracker.comment(tx, key, actor, &with_remarks(&format!("{detail} opened"), &[remark]))?;
        store::record(
            tx,
            &Event { detail: Some(detail), ..events::requirement(&req, actor, "review create") },
        )?;
        Ok(id)
    })?;
    Ok((id, attendees))
}

/// Adds a comment to an open review; returns its id.
pub fn comment(
    store: &mut Store,
    id: i64,
    text: &str,
    section: Option<&str>,
    actor: &str,
) -> Result<i64> {
    if text.trim().is_empty() {
        return Err(XoneError::usage("the comment is empty"));
    }
    // Checked inside the write transaction, so a verdict given meanwhile is seen.
    store.write(|tx| {
        let (_, req) = open_review(tx, id)?;
        let cid = store::insert_comment(tx, id, actor, section, text)?;
        store::record(
            tx,
            &Event {
                detail: Some(format!("#{id} comment {cid}")),
                ..events::requirement(&req, actor, "review comment")
            },
        )?;
        Ok(cid)
    })
}

/// Marks a comment of an open review resolved; false when it already was.
pub fn resolve(store: &mut Store, id: i64, comment_id: i64, actor: &str) -> Result<bool> {
    store.write(|tx| {
        let (_, req) = open_review(tx, id)?;
        let changed = store::resolve_comment(tx, id, comment_id, actor)?;
        if changed {
            store::record(
                tx,
                &Event {
                    detail: Some(format!("#{id} comment {comment_id} resolved")),
                    ..events::requirement(&req, actor, "review resolve")
                },
            )?;
        }
        Ok(changed)
    })
}

/// A review closed with its verdict.
pub struct Closed {
    pub kind: ReviewKind,
    pub key: RequirementKey,
    /// Comments still open when it closed.
    pub open: usize,
    /// The document version its record was appended to; `None` for a binary document.
    pub doc_version: Option<i64>,
}

/// Closes an open review with `v` (approve or reject): the record is appended to the
/// reviewed document as its next version, and the verdict goes to the tracker.
pub fn close(
    store: &mut Store,
    tracker: &dyn Tracker,
    id: i64,
    v: Verdict,
    note: Option<String>,
    actor: &str,
) -> Result<Closed> {
    // One transaction from the check to the record: two verdicts at once cannot both land.
    store.write(|tx| {
        let (r, req) = open_review(tx, id)?;
        let kind = r.kind;
        let key = req.key();
        let open = r.open_comments();
        // The record shows the verdict as it will be stored, so build it from the closed review.
        let closed = Review {
            verdict: Some(v),
            verdict_at: Some(clock::now()),
            verdict_by: Some(actor.to_string()),
            note: note.clone(),
            ..r.clone()
        };
        let doc_version = match store::document(tx, &key, kind.doc_kind(), None)? {
            Some((d, bytes)) if is_text(&d.media_type) => {
                let mut text = String::from_utf8_lossy(&bytes).into_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str("\n---\n\n");
                text.push_str(&record(&closed));
                store::add_document_version(
                    tx,
                    &key,
                    kind.doc_kind(),
                    text.as_bytes(),
                    &d.media_type,
                    d.file_name.as_deref(),
                    actor,
                    Some(&format!("review #{id} record")),
                )?
            }
            _ => None,
        };
        store::set_verdict(tx, id, v, note.as_deref(), actor, doc_version)?;
        let detail = format!(
            "#{id} {kind} review: {v}{}",
            doc_version
                .map(|n| format!(", recorded in {} v{n}", kind.doc_kind()))
                .unwrap_or_default()
        );
        let at = store::review(tx, id)?.verdict_at.unwrap_or_default();
        let review = Some(store::review_origin(tx, id)?).filter(|o| !o.is_empty());
        let remark = Remark::Verdict { kind, verdict: v, by: actor.to_string(), at, review };
        tracker.comment(tx, &key, actor, &with_remarks(&detail, &[remark]))?;
        let fields = serde_json::json!({ "review": id, "kind": kind, "verdict": v, "note": note, "open_comments": open });
        super::notify::on_requirement(tx, &req, "review.verdict", actor, fields)?;
        store::record(
            tx,
            &Event {
                detail: Some(detail),
                reason: note.clone(),
                ..events::requirement(&req, actor, "review verdict")
            },
        )?;
        Ok(Closed { kind, key, open, doc_version })
    })
}

/// The review as a Markdown record: what the meeting decided, kept with the document.
pub fn record(r: &Review) -> String {
    let mut s = format!("## Review #{}: {} review of {}\n\n", r.id, r.kind, r.requirement);
    s.push_str(&format!("- Held: {}\n", r.at.as_deref().unwrap_or("(no time given)")));
    s.push_str(&format!("- Opened: {} by {}\n", r.created_at, r.created_by));
    let attendees =
        if r.attendees.is_empty() { "(none recorded)".to_string() } else { r.attendees.join(", ") };
    s.push_str(&format!("- Attendees: {attendees}\n"));
    match (&r.verdict, &r.verdict_at, &r.verdict_by) {
        (Some(v), Some(at), Some(by)) => {
            s.push_str(&format!("- Verdict: {v} ({at} by {by})\n"));
            if let Some(n) = &r.note {
                s.push_str(&format!("- Note: {n}\n"));
            }
        }
        _ => s.push_str("- Verdict: pending\n"),
    }
    s.push_str("\n### Comments\n\n");
    if r.comments.is_empty() {
        s.push_str("None.\n");
    }
    for c in &r.comments {
        let state = match (&c.resolved_at, &c.resolved_by) {
            (Some(at), Some(by)) => format!("resolved {at} by {by}"),
            _ => "open".into(),
        };
        let section = c.section.as_deref().map(|x| format!(" [{x}]")).unwrap_or_default();
        s.push_str(&format!("{}. {}{section}: {} ({state})\n", c.id, c.author, c.body));
    }
    s
}

fn open_review(c: &rusqlite::Connection, id: i64) -> Result<(Review, store::Requirement)> {
    let r = store::review(c, id)?;
    if let Some(v) = &r.verdict {
        return Err(XoneError::conflict(format!("review #{id} is closed with verdict {v}")).hint(
            format!("open a new review: xone review create {} --kind {}", r.requirement, r.kind),
        ));
    }
    let key: RequirementKey = r.requirement.parse().map_err(XoneError::internal)?;
    let req = store::open_requirement(c, &key)?;
    Ok((r, req))
}
