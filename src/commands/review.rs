//! `xone review`: review meetings whose record outlives the meeting. A verdict appends the
//! record to the reviewed document as its next version.

use clap::{Subcommand, ValueEnum};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::{complete, Ctx};
use crate::domain::date::{self, parse_datetime};
use crate::domain::names::check_user;
use crate::domain::{RequirementKey, ReviewKind};
use crate::ops::docs::is_text;
use crate::ops::events::requirement as event;
use crate::ops::requirement::open_requirement;
use crate::store::{self, Event, Review};
use crate::ui::{table, Result, XoneError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Verdict {
    Approve,
    Reject,
}

const REVIEW_JSON: &str = "JSON: {\"id\", \"requirement\", \"kind\", \"at\", \"created_at\", \"created_by\", \"verdict\" (approve|reject|null), \"verdict_at\", \"verdict_by\", \"note\", \"doc_version\", \"attendees\": [USER], \"comments\": [{\"id\", \"author\", \"created_at\", \"section\", \"body\", \"resolved_at\", \"resolved_by\"}]}";

#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// Open a review of the requirement's document of that kind; prints the review's id
    #[command(after_long_help = REVIEW_JSON)]
    Create {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        #[arg(long)]
        kind: ReviewKind,
        /// When the meeting is held: YYYY-MM-DD HH:MM
        #[arg(long, value_name = "DATETIME", value_parser = parse_datetime)]
        at: Option<String>,
        /// Who attends (default: everyone assigned to the requirement); repeat for more
        #[arg(long = "attendee", value_name = "USER", value_parser = check_user)]
        attendees: Vec<String>,
    },
    /// List reviews, of one requirement or all
    #[command(after_long_help = "JSON: [review] as in `xone review show`")]
    List {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: Option<RequirementKey>,
    },
    /// Show a review with its comments
    #[command(after_long_help = REVIEW_JSON)]
    Show {
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
    },
    /// Add a comment; prints the comment's id
    Comment {
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
        text: String,
        /// The document section it is about
        #[arg(long)]
        section: Option<String>,
    },
    /// Mark a comment as resolved
    Resolve {
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
        comment_id: i64,
    },
    /// Close the review with a verdict; the record is appended to the reviewed document
    Verdict {
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
        verdict: Verdict,
        #[arg(long)]
        note: Option<String>,
    },
}

pub fn run(cx: &mut Ctx, cmd: ReviewCommand) -> Result<()> {
    match cmd {
        ReviewCommand::Create { key, kind, at, attendees } => create(cx, &key, kind, at, attendees),
        ReviewCommand::List { key } => list(cx, key.as_ref()),
        ReviewCommand::Show { id } => show(cx, id),
        ReviewCommand::Comment { id, text, section } => comment(cx, id, &text, section.as_deref()),
        ReviewCommand::Resolve { id, comment_id } => resolve(cx, id, comment_id),
        ReviewCommand::Verdict { id, verdict, note } => close(cx, id, verdict, note),
    }
}

fn create(
    cx: &mut Ctx,
    key: &RequirementKey,
    kind: ReviewKind,
    at: Option<String>,
    attendees: Vec<String>,
) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let c = store.conn();
    let req = open_requirement(c, key)?;
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
        let id = store::insert_review(tx, key, kind.as_str(), at.as_deref(), &attendees, &actor)?;
        let detail = format!(
            "#{id} {kind} review{}",
            at.as_deref().map(|a| format!(" at {a}")).unwrap_or_default()
        );
        store::record(tx, &Event { detail: Some(detail), ..event(&req, &actor, "review create") })?;
        Ok(id)
    })?;
    if cx.ui.json {
        return show(cx, id);
    }
    cx.ui.status(format!(
        "review #{id} of {key}'s {kind} opened; attendees: {}",
        if attendees.is_empty() { "none yet".into() } else { attendees.join(", ") }
    ));
    cx.ui.line(id)
}

fn list(cx: &mut Ctx, key: Option<&RequirementKey>) -> Result<()> {
    let store = cx.store()?;
    if let Some(k) = key {
        store::requirement(store.conn(), k)?;
    }
    let reviews = store::reviews(store.conn(), key)?;
    if cx.ui.json {
        return cx.ui.print_json(&reviews);
    }
    let mut t = vec![vec![
        "ID".into(),
        "REQUIREMENT".into(),
        "KIND".into(),
        "AT".into(),
        "VERDICT".into(),
        "COMMENTS".into(),
    ]];
    for r in &reviews {
        let open = r.open_comments();
        t.push(vec![
            r.id.to_string(),
            r.requirement.clone(),
            r.kind.clone(),
            r.at.clone().unwrap_or_default(),
            r.verdict.clone().unwrap_or_else(|| "pending".into()),
            format!("{} ({open} open)", r.comments.len()),
        ]);
    }
    write!(cx.ui.out(), "{}", table(&t))?;
    Ok(())
}

fn show(cx: &mut Ctx, id: i64) -> Result<()> {
    let store = cx.store()?;
    let r = store::review(store.conn(), id)?;
    if cx.ui.json {
        return cx.ui.print_json(&r);
    }
    write!(cx.ui.out(), "{}", record(&r))?;
    Ok(())
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
    let req = open_requirement(c, &key)?;
    Ok((r, req))
}

fn comment(cx: &mut Ctx, id: i64, text: &str, section: Option<&str>) -> Result<()> {
    let actor = cx.actor()?;
    if text.trim().is_empty() {
        return Err(XoneError::usage("the comment is empty"));
    }
    let mut store = cx.store()?;
    // Checked inside the write transaction, so a verdict given meanwhile is seen.
    let cid = store.write(|tx| {
        let (_, req) = open_review(tx, id)?;
        let cid = store::insert_comment(tx, id, &actor, section, text)?;
        store::record(
            tx,
            &Event {
                detail: Some(format!("#{id} comment {cid}")),
                ..event(&req, &actor, "review comment")
            },
        )?;
        Ok(cid)
    })?;
    cx.ui.status(format!("comment {cid} added to review #{id}"));
    cx.ui.line(cid)
}

fn resolve(cx: &mut Ctx, id: i64, comment_id: i64) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let changed = store.write(|tx| {
        let (_, req) = open_review(tx, id)?;
        let changed = store::resolve_comment(tx, id, comment_id, &actor)?;
        if changed {
            store::record(
                tx,
                &Event {
                    detail: Some(format!("#{id} comment {comment_id} resolved")),
                    ..event(&req, &actor, "review resolve")
                },
            )?;
        }
        Ok(changed)
    })?;
    if changed {
        cx.ui.status(format!("comment {comment_id} of review #{id} resolved"));
    } else {
        cx.ui.status(format!("comment {comment_id} of review #{id} was already resolved"));
    }
    Ok(())
}

fn close(cx: &mut Ctx, id: i64, verdict: Verdict, note: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let v = if verdict == Verdict::Approve { "approve" } else { "reject" };
    // One transaction from the check to the record: two verdicts at once cannot both land.
    let (kind, key, open, doc_version) = store.write(|tx| {
        let (r, req) = open_review(tx, id)?;
        let kind: ReviewKind = r.kind.parse().map_err(XoneError::internal)?;
        let key = req.key();
        let open = r.open_comments();
        // The record shows the verdict as it will be stored, so build it from the closed review.
        let closed = Review {
            verdict: Some(v.to_string()),
            verdict_at: Some(date::now()),
            verdict_by: Some(actor.clone()),
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
                    &actor,
                    Some(&format!("review #{id} record")),
                )?
            }
            _ => None,
        };
        store::set_verdict(tx, id, v, note.as_deref(), &actor, doc_version)?;
        let detail = format!(
            "#{id} {kind} review: {v}{}",
            doc_version
                .map(|n| format!(", recorded in {} v{n}", kind.doc_kind()))
                .unwrap_or_default()
        );
        store::record(
            tx,
            &Event {
                detail: Some(detail),
                reason: note.clone(),
                ..event(&req, &actor, "review verdict")
            },
        )?;
        Ok((kind, key, open, doc_version))
    })?;
    if open > 0 {
        cx.ui.warn(format!(
            "review #{id} closed with {open} open comment(s); they are in the record"
        ));
    }
    match doc_version {
        Some(n) => cx.ui.status(format!(
            "review #{id}: {v}; record appended to {key} {} v{n}",
            kind.doc_kind()
        )),
        None => cx.ui.status(format!(
            "review #{id}: {v}; the {} document is binary, so the record stays with the review",
            kind.doc_kind()
        )),
    }
    Ok(())
}
