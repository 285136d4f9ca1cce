//! `xone review`: review meetings whose record outlives the meeting. A verdict appends the
//! record to the reviewed document as its next version.

use clap::Subcommand;
use clap_complete::{ArgValueCandidates, ArgValueCompleter};

use super::Ctx;
use crate::clock;
use crate::complete;
use crate::domain::date;
use crate::domain::names::check_user;
use crate::domain::{RequirementKey, ReviewKind, Verdict};
use crate::interrupt;
use crate::ops::review;
use crate::store;
use crate::ui::{safe, safe_table, Result, XoneError};

/// A meeting time, its date possibly relative to today.
fn parse_at(s: &str) -> std::result::Result<String, String> {
    date::parse_datetime(s, clock::today())
}

const REVIEW_JSON: &str = "JSON: {\"id\", \"requirement\", \"kind\", \"at\", \"created_at\", \"created_by\", \"verdict\" (approve|reject|null), \"verdict_at\", \"verdict_by\", \"note\", \"doc_version\", \"attendees\": [USER], \"comments\": [{\"id\", \"author\", \"created_at\", \"section\", \"body\", \"resolved_at\", \"resolved_by\"}]}";

#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// Open a review of the requirement's document of that kind; prints the review's id
    #[command(after_long_help = REVIEW_JSON)]
    Create {
        /// The requirement's key, e.g. PAY-1
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// What is reviewed: which document, or the code
        #[arg(long)]
        kind: ReviewKind,
        /// When the meeting is held: YYYY-MM-DD HH:MM
        #[arg(long, value_name = "DATETIME", value_parser = parse_at)]
        at: Option<String>,
        /// Who attends (default: everyone assigned to the requirement); repeat for more
        #[arg(long = "attendee", value_name = "USER", value_parser = check_user)]
        attendees: Vec<String>,
    },
    /// List reviews, of one requirement or all
    #[command(after_long_help = "JSON: [review] as in `xone review show`")]
    List {
        /// Only this requirement's reviews
        #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
        key: Option<RequirementKey>,
    },
    /// Show a review with its comments
    #[command(after_long_help = REVIEW_JSON)]
    Show {
        /// The review's number (`xone review list` shows them)
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
    },
    /// Add a comment; prints the comment's id
    Comment {
        /// The review's number
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
        /// What is said
        text: String,
        /// The document section it is about
        #[arg(long)]
        section: Option<String>,
    },
    /// Mark a comment as resolved
    Resolve {
        /// The review's number
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
        /// The comment's number (`xone review show ID` shows them)
        comment_id: i64,
    },
    /// Close the review with a verdict; the record is appended to the reviewed document
    Verdict {
        /// The review's number
        #[arg(add = ArgValueCandidates::new(complete::review_ids))]
        id: i64,
        /// What the review decided
        verdict: Verdict,
        /// Why, or what must change, for the record
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
    let tracker = cx.tracker()?;
    let mut store = cx.store()?;
    // Once it is made, what names it is printed even if Ctrl-C comes: a script that saw
    // nothing would make it twice.
    let _hold = interrupt::hold();
    let (id, attendees) =
        review::create(&mut store, tracker.as_ref(), key, kind, at.as_deref(), attendees, &actor)?;
    if cx.ui.json {
        show(cx, id)?;
        return cx.ui.flush();
    }
    cx.ui.status(format!(
        "review #{id} of {key}'s {kind} opened; attendees: {}",
        if attendees.is_empty() { "none yet".into() } else { attendees.join(", ") }
    ));
    cx.ui.line(id)?;
    cx.ui.flush()
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
            r.kind.to_string(),
            r.at.clone().unwrap_or_default(),
            r.verdict.map(|v| v.to_string()).unwrap_or_else(|| "pending".into()),
            format!("{} ({open} open)", r.comments.len()),
        ]);
    }
    write!(cx.ui.out(), "{}", safe_table(&t))?;
    Ok(())
}

fn show(cx: &mut Ctx, id: i64) -> Result<()> {
    let store = cx.store()?;
    let r = store::review(store.conn(), id)?;
    if cx.ui.json {
        return cx.ui.print_json(&r);
    }
    write!(cx.ui.out(), "{}", safe(&review::record(&r)))?;
    Ok(())
}

fn comment(cx: &mut Ctx, id: i64, text: &str, section: Option<&str>) -> Result<()> {
    let actor = cx.actor()?;
    if text.trim().is_empty() {
        return Err(XoneError::usage("the comment is empty"));
    }
    let mut store = cx.store()?;
    // Once it is made, what names it is printed even if Ctrl-C comes: a script that saw
    // nothing would make it twice.
    let _hold = interrupt::hold();
    let cid = review::comment(&mut store, id, text, section, &actor)?;
    cx.ui.status(format!("comment {cid} added to review #{id}"));
    cx.ui.line(cid)?;
    cx.ui.flush()
}

fn resolve(cx: &mut Ctx, id: i64, comment_id: i64) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let changed = review::resolve(&mut store, id, comment_id, &actor)?;
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
    // With Jira as the tracker, a verdict is proven by whose Jira token gives it.
    if let Ok(req) = store::review(store.conn(), id)?.requirement.parse::<RequirementKey>() {
        let jira = cx.jira()?;
        crate::ops::project::prove_actor(&store, &jira, &req.project, &actor)?;
    }
    let review::Closed { kind, key, open, doc_version } =
        review::close(&mut store, cx.tracker()?.as_ref(), id, verdict, note, &actor)?;
    if open > 0 {
        cx.ui.warn(format!(
            "review #{id} closed with {open} open comment(s); they are in the record"
        ));
    }
    match doc_version {
        Some(n) => cx.ui.status(format!(
            "review #{id}: {verdict}; record appended to {key} {} v{n}",
            kind.doc_kind()
        )),
        None => cx.ui.status(format!(
            "review #{id}: {verdict}; the {} document is binary, so the record stays with the review",
            kind.doc_kind()
        )),
    }
    Ok(())
}
