//! `xone requirement`: a requirement's people, dates, documents and lifecycle.

use std::io::Read;

use clap::{Args, Subcommand};
use clap_complete::{ArgValueCandidates, ArgValueCompleter};
use serde::Serialize;

use super::branch::BranchView;
use super::{complete, Ctx};
use crate::adapters::Forges;
use crate::domain::date::Date;
use crate::domain::lifecycle::{self, BranchFact, ReviewFact};
use crate::domain::names::Assignment;
use crate::domain::{template, DocKind, Facts, ProjectKey, RequirementKey, Role, Status};
use crate::store::{self, Event, Requirement, Store};
use crate::ui::{table, Kind, Result, XoneError};

#[derive(Subcommand, Debug)]
pub enum RequirementCommand {
    /// Create a requirement; prints its key (PROJECT-N)
    Create(CreateArgs),
    /// List requirements, newest first, one page at a time
    #[command(
        after_long_help = "JSON: [{\"key\", \"project\", \"title\", \"status\", \"updated_at\", \"end\"}] (the page asked for; --all for every row)"
    )]
    List(ListArgs),
    /// The whole thread: people, dates, documents, reviews, branches, sign-offs, events
    #[command(
        after_long_help = "JSON: {\"key\", \"project\", \"title\", \"status\", \"branch\", \"created_at\", \"created_by\", \"updated_at\", \
\"dates\": {\"start\", \"end\", \"dev_end\", \"test_submit\", \"smoke\", \"test_end\", \"release\"}, \
\"people\": [{\"role\", \"user\"}], \
\"documents\": [{\"kind\", \"version\", \"sha256\", \"size\", \"media_type\", \"file_name\", \"created_at\", \"created_by\", \"note\"}] (every version), \
\"reviews\": [{\"id\", \"kind\", \"at\", \"verdict\", \"verdict_at\", \"verdict_by\", \"note\", \"doc_version\", \"attendees\", \"comments\": [{\"id\", \"author\", \"section\", \"body\", \"resolved_at\", \"resolved_by\"}]}], \
\"branches\": [{\"repo\", \"name\", \"base\", \"created_at\", \"exists\", \"sha\", \"ahead\", \"behind\"}], \
\"signoffs\": [{\"user\", \"at\", \"note\"}], \
\"events\": [{\"id\", \"at\", \"actor\", \"action\", \"from\", \"to\", \"detail\", \"reason\", \"forced\"}], \
\"next\": {\"status\", \"missing\": [{\"item\", \"hint\"}]} or null"
    )]
    Show {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
    },
    /// Give people roles on the requirement: ROLE=USER (pm=alice qa=quinn)
    Assign {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        #[arg(value_name = "ROLE=USER", required = true)]
        assignments: Vec<Assignment>,
        /// Take these assignments away instead
        #[arg(long)]
        remove: bool,
    },
    /// Print, attach or edit a document; every change is a new version
    Doc(DocArgs),
    /// Set the requirement's dates (YYYY-MM-DD, today, or +N days; "none" clears)
    Schedule(ScheduleArgs),
    /// Move one step on in the lifecycle, checking that step's gate
    #[command(
        after_long_help = "A failed gate exits 4 and names everything missing. JSON: {\"key\", \"from\", \"to\", \"forced\", \"missing\": [{\"item\", \"hint\"}]}"
    )]
    Advance {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        /// Pass a failed gate; recorded as forced, with the reason
        #[arg(long, requires = "reason")]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send a submitted or testing requirement back to developing
    Reject {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Record QA's sign-off by the acting user, who must be a qa member
    Signoff {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        #[arg(long)]
        note: Option<String>,
    },
    /// Cancel a requirement that is not done
    Cancel {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The requirement's timeline: every change, who made it, when and why
    #[command(
        after_long_help = "JSON: [{\"id\", \"project\", \"requirement\", \"at\", \"actor\", \"action\", \"from\", \"to\", \"detail\", \"reason\", \"forced\"}]"
    )]
    Log {
        #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
        key: RequirementKey,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The project
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: ProjectKey,
    pub title: String,
    #[arg(long, value_name = "DATE")]
    pub start: Option<Date>,
    #[arg(long, value_name = "DATE")]
    pub end: Option<Date>,
    /// The requirement document's first edit, from FILE (- for standard input)
    #[arg(long, value_name = "FILE")]
    pub doc: Option<String>,
    /// ROLE=USER; repeat for more people
    #[arg(long = "assign", value_name = "ROLE=USER")]
    pub assign: Vec<Assignment>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long = "project", value_name = "KEY", add = ArgValueCandidates::new(complete::project_keys))]
    pub project: Option<ProjectKey>,
    #[arg(long)]
    pub status: Option<Status>,
    /// Only requirements the acting user is assigned to
    #[arg(long)]
    pub mine: bool,
    /// Every row, not one page
    #[arg(long, conflicts_with = "page")]
    pub all: bool,
    /// Which page (from 1)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Rows per page (default: the terminal's height, or ui.page_size)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Args, Debug)]
#[command(
    disable_version_flag = true,
    after_long_help = "\
Without --attach or --edit, prints the document (the latest version, or --version N).
Binary documents (images, PDFs) print only into a pipe or file.
JSON with --print: {\"kind\", \"version\", \"sha256\", \"size\", \"media_type\", \"file_name\", \"created_at\", \"created_by\", \"note\", \"text\" (null when binary)}"
)]
pub struct DocArgs {
    #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    #[arg(default_value = "requirement")]
    pub kind: DocKind,
    /// Open the document in $VISUAL or $EDITOR (needs a terminal)
    #[arg(long, group = "action")]
    pub edit: bool,
    /// Make FILE the next version (text or binary; - reads standard input)
    #[arg(long, value_name = "FILE", group = "action")]
    pub attach: Option<String>,
    /// Print the document
    #[arg(long, group = "action")]
    pub print: bool,
    /// With --print: this version instead of the latest
    #[arg(long, value_name = "N", conflicts_with_all = ["edit", "attach"])]
    pub version: Option<i64>,
    /// Why this version: recorded with it
    #[arg(long)]
    pub note: Option<String>,
}

/// A date flag's value: a date, or `none` to clear it.
#[derive(Clone, Debug)]
pub struct DateOrNone(Option<Date>);

impl std::str::FromStr for DateOrNone {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "none" {
            Ok(DateOrNone(None))
        } else {
            s.parse().map(|d| DateOrNone(Some(d)))
        }
    }
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    #[arg(add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    #[arg(long, value_name = "DATE")]
    pub start: Option<DateOrNone>,
    #[arg(long, value_name = "DATE")]
    pub end: Option<DateOrNone>,
    #[arg(long, value_name = "DATE")]
    pub dev_end: Option<DateOrNone>,
    #[arg(long, value_name = "DATE")]
    pub test_submit: Option<DateOrNone>,
    #[arg(long, value_name = "DATE")]
    pub smoke: Option<DateOrNone>,
    #[arg(long, value_name = "DATE")]
    pub test_end: Option<DateOrNone>,
    #[arg(long, value_name = "DATE")]
    pub release: Option<DateOrNone>,
}

pub fn run(cx: &mut Ctx, cmd: RequirementCommand) -> Result<()> {
    match cmd {
        RequirementCommand::Create(a) => create(cx, a),
        RequirementCommand::List(a) => list(cx, a),
        RequirementCommand::Show { key } => show(cx, &key),
        RequirementCommand::Assign { key, assignments, remove } => {
            assign(cx, &key, &assignments, remove)
        }
        RequirementCommand::Doc(a) => doc(cx, a),
        RequirementCommand::Schedule(a) => schedule(cx, a),
        RequirementCommand::Advance { key, force, reason } => advance(cx, &key, force, reason),
        RequirementCommand::Reject { key, reason } => reject(cx, &key, reason),
        RequirementCommand::Signoff { key, note } => signoff(cx, &key, note),
        RequirementCommand::Cancel { key, reason } => cancel(cx, &key, reason),
        RequirementCommand::Log { key } => log(cx, &key),
    }
}

pub fn event(req: &Requirement, actor: &str, action: &str) -> Event {
    Event {
        project: req.project.clone(),
        requirement: Some(req.key.clone()),
        actor: actor.to_string(),
        action: action.to_string(),
        ..Event::default()
    }
}

/// A requirement that may still change: it exists and is neither done nor cancelled.
pub fn open_requirement(c: &rusqlite::Connection, key: &RequirementKey) -> Result<Requirement> {
    let req = store::requirement(c, key)?;
    if req.status.is_closed() {
        return Err(XoneError::gate(format!("{key} is {} and can no longer change", req.status))
            .hint("create a new requirement for further work"));
    }
    Ok(req)
}

/// Reads FILE, or standard input for `-`, refusing more than `limit` bytes.
pub fn read_input(file: &str, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let too_big = |size: String| {
        XoneError::gate(format!("{file} is {size}; documents are limited to {} (docs.max_bytes)", human_size(limit)))
            .hint("raise the limit with `xone config set docs.max_bytes BYTES`, or link to the file instead")
    };
    if file == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(too_big(format!("more than {}", human_size(limit))));
        }
        return Ok(buf);
    }
    let f = std::fs::File::open(file).map_err(|e| {
        let kind =
            if e.kind() == std::io::ErrorKind::NotFound { Kind::NotFound } else { Kind::Internal };
        XoneError::new(kind, format!("cannot read {file}")).cause(e)
    })?;
    let size = f.metadata()?.len();
    if size > limit {
        return Err(too_big(human_size(size)));
    }
    // The size above is 0 for pipes and devices: count what was read, too.
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(too_big(format!("more than {}", human_size(limit))));
    }
    Ok(buf)
}

pub fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// What a document's bytes are, from their first bytes and the file name.
fn media_type(bytes: &[u8], file_name: Option<&str>) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
    ];
    if let Some((_, t)) = MAGIC.iter().find(|(m, _)| bytes.starts_with(m)) {
        return t;
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return "image/webp";
    }
    if std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0) {
        let ext = file_name.and_then(|f| f.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
        return match ext.as_deref() {
            Some("svg") => "image/svg+xml",
            Some("html" | "htm") => "text/html",
            Some("json") => "application/json",
            Some("txt") => "text/plain",
            _ => "text/markdown",
        };
    }
    "application/octet-stream"
}

pub fn is_text(media_type: &str) -> bool {
    media_type.starts_with("text/")
        || media_type == "application/json"
        || media_type == "image/svg+xml"
}

fn max_bytes(cx: &mut Ctx) -> Result<u64> {
    Ok(cx.config()?.int("docs.max_bytes").unwrap_or(10 << 20) as u64)
}

fn create(cx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let limit = max_bytes(cx)?;
    let title = a.title.trim();
    if title.is_empty() {
        return Err(
            XoneError::usage("the title is empty").hint("give the requirement a title in quotes")
        );
    }
    check_span(a.start, a.end)?;
    let first_edit = match &a.doc {
        Some(f) => Some((read_input(f, limit)?, f.clone())),
        None => None,
    };
    let mut store = cx.store()?;
    store::active_project(store.conn(), &a.project)?;
    let tpl = super::project::template_for(store.conn(), &a.project, DocKind::Requirement)?
        .unwrap_or_else(|| template::REQUIREMENT.to_string());
    let key = store.write(|tx| {
        let key = store::insert_requirement(tx, &a.project, title, &actor)?;
        let req = store::requirement(tx, &key)?;
        store::record(
            tx,
            &Event {
                detail: Some(title.to_string()),
                to: Some("draft".into()),
                ..event(&req, &actor, "create")
            },
        )?;
        let body = template::render(&tpl, &key.to_string(), title, a.project.as_str());
        store::add_document_version(
            tx,
            &key,
            DocKind::Requirement,
            body.as_bytes(),
            "text/markdown",
            None,
            &actor,
            Some("generated from the template"),
        )?;
        if let Some((bytes, file)) = &first_edit {
            let name = file_name(file);
            let v = store::add_document_version(
                tx,
                &key,
                DocKind::Requirement,
                bytes,
                media_type(bytes, name.as_deref()),
                name.as_deref(),
                &actor,
                None,
            )?;
            if let Some(v) = v {
                store::record(
                    tx,
                    &Event {
                        detail: Some(format!("requirement v{v} from {file}")),
                        ..event(&req, &actor, "doc")
                    },
                )?;
            }
        }
        for (col, d) in [("start_date", a.start), ("end_date", a.end)] {
            if let Some(d) = d {
                store::set_date(tx, &key, col, Some(&d.to_string()))?;
            }
        }
        for asg in &a.assign {
            store::assign(tx, &key, asg.role, &asg.user)?;
            store::record(
                tx,
                &Event {
                    detail: Some(format!("{}={}", asg.role, asg.user)),
                    ..event(&req, &actor, "assign")
                },
            )?;
        }
        Ok(key)
    })?;
    warn_unknown_people(cx, &store, &a.project, &a.assign)?;
    if cx.ui.json {
        return show(cx, &key);
    }
    cx.ui.status(format!(
        "created {key} in draft: fill in its document with `xone requirement doc {key} --edit`"
    ));
    cx.ui.line(&key)
}

/// A requirement cannot end before it starts.
fn check_span(start: Option<Date>, end: Option<Date>) -> Result<()> {
    match (start, end) {
        (Some(s), Some(e)) if e < s => {
            Err(XoneError::usage(format!("the end date {e} is before the start date {s}")))
        }
        _ => Ok(()),
    }
}

fn file_name(file: &str) -> Option<String> {
    (file != "-")
        .then(|| std::path::Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten()
}

/// People need not be members to be assigned, but a gate that needs a role looks at
/// membership: say so now rather than at the gate.
fn warn_unknown_people(
    cx: &Ctx,
    store: &Store,
    project: &ProjectKey,
    assigned: &[Assignment],
) -> Result<()> {
    for a in assigned {
        if !store::has_role(store.conn(), project, &a.user, a.role)? {
            cx.ui.warn(format!(
                "{} is not a {} member of {project}: xone project member add {project} {} --role {}",
                a.user, a.role, a.user, a.role
            ));
        }
    }
    Ok(())
}

fn list(cx: &mut Ctx, a: ListArgs) -> Result<()> {
    let fallback = cx.config()?.int("ui.page_size").unwrap_or(50).max(1) as usize;
    let user = if a.mine { Some(cx.actor()?) } else { None };
    let store = cx.store()?;
    if let Some(p) = &a.project {
        store::project(store.conn(), p)?;
    }
    let filter = store::ListFilter { project: a.project.clone(), status: a.status, user };
    let per_page = a.limit.map(|l| l as usize).unwrap_or_else(|| cx.ui.page_rows(fallback));
    let (limit, offset) =
        if a.all { (None, 0) } else { (Some(per_page), (a.page as usize - 1) * per_page) };
    let (rows, total) = store::list_requirements(store.conn(), &filter, limit, offset)?;
    if cx.ui.json {
        cx.ui.print_json(&rows)?;
    } else if !rows.is_empty() {
        let mut t = vec![vec!["KEY".to_string(), "STATUS".into(), "END".into(), "TITLE".into()]];
        for r in &rows {
            t.push(vec![
                r.key.clone(),
                r.status.to_string(),
                r.end.clone().unwrap_or_default(),
                r.title.clone(),
            ]);
        }
        let mut text = table(&t);
        if cx.ui.stdout_tty {
            if let Some((head, rest)) = text.split_once('\n') {
                text = format!("{}\n{rest}", cx.ui.bold(head));
            }
        }
        cx.ui.out().write_all(text.as_bytes())?;
    }
    if total == 0 {
        cx.ui.status("no requirements match");
    } else if rows.len() < total {
        let last = offset + rows.len();
        if rows.is_empty() {
            cx.ui.status(format!("page {} is past the end: {total} requirements match", a.page));
        } else {
            let more =
                if last < total { format!("; next: --page {}", a.page + 1) } else { String::new() };
            cx.ui.status(format!("{}-{last} of {total}{more}; --all for every row", offset + 1));
        }
    }
    Ok(())
}

/// For each app of the requirement (built from a repository that holds its branch): the
/// builds that stand for it. `at_tip`: builds that measured tests and coverage, passed (or
/// were forced through) their gates, and were made at the branch tip or at a test
/// integration commit containing it. Otherwise (for prod): passing builds of any commit that
/// contains the tip.
fn app_builds(
    forges: &Forges,
    store: &Store,
    key: &RequirementKey,
    repos: &[store::Repo],
    branches: &[BranchView],
    test_branch: &str,
    at_tip: bool,
) -> Result<Vec<(store::App, Vec<store::Build>)>> {
    let c = store.conn();
    let apps = store::apps(c, &key.project)?;
    let builds = store::builds(c, None, None)?;
    let mut out = Vec::new();
    for b in branches {
        let Some(repo) = repos.iter().find(|r| r.name == b.repo) else { continue };
        for app in apps.iter().filter(|a| a.repo_id == repo.id) {
            let Some(tip) = b.sha.as_deref() else {
                out.push((app.clone(), Vec::new()));
                continue;
            };
            let candidates: Vec<&store::Build> = builds
                .iter()
                .filter(|x| x.app == app.name && x.project == app.project && x.status == "success")
                .filter(|x| !at_tip || (x.tests.is_some() && x.coverage.is_some()))
                .filter(|x| x.gates.iter().all(|g| g.passed || g.forced))
                .collect();
            // At the tip, or (for test) a build of the test integration that holds the tip;
            // another requirement's branch built on top of this one does not stand for it.
            let mut ok: Vec<store::Build> =
                candidates.iter().filter(|x| x.sha == tip).map(|x| (*x).clone()).collect();
            let wider: Vec<&&store::Build> = candidates
                .iter()
                .filter(|x| x.sha != tip && (!at_tip || x.git_ref == test_branch))
                .collect();
            if !wider.is_empty() {
                let objects = forges.objects(repo)?;
                let tip = git2::Oid::from_str(tip)?;
                ok.extend(
                    wider
                        .into_iter()
                        .filter(|x| {
                            git2::Oid::from_str(&x.sha)
                                .is_ok_and(|s| objects.graph_descendant_of(s, tip).unwrap_or(false))
                        })
                        .map(|x| (**x).clone()),
                );
            }
            out.push((app.clone(), ok));
        }
    }
    Ok(out)
}

/// What a gate finds of an app's deployment to an environment.
enum Found {
    /// Not there, not healthy, or not running the image of a build that stands for it.
    Problem(String),
    /// The project has no such environment.
    NoEnv,
    Healthy {
        env: Box<store::Env>,
        image: String,
    },
}

/// An app's deployment to an environment, read from the cluster, against the builds that
/// stand for the requirement's branch.
fn deployment_problem(
    cx: &mut Ctx,
    store: &Store,
    app: &store::App,
    env_name: &str,
    builds: &[store::Build],
) -> Result<Found> {
    let project: ProjectKey = app.project.parse().map_err(XoneError::internal)?;
    let Ok(env) = super::deploy::find_env(store, &project, env_name) else {
        return Ok(Found::NoEnv);
    };
    // A cluster that cannot be read is a missing fact, which --force can pass.
    let read =
        super::deploy::connect(cx, &env).and_then(|cl| super::deploy::read_status(&cl, app, &env));
    let st = match read {
        Ok(st) => st,
        Err(e) => {
            return Ok(Found::Problem(format!(
                "{} in {env_name} cannot be read: {}",
                app.name, e.message
            )))
        }
    };
    let Some(st) = st else {
        return Ok(Found::Problem(format!("{} is not deployed to {env_name}", app.name)));
    };
    let image = st.image.clone().unwrap_or_default();
    if st.rollout != "complete" {
        return Ok(Found::Problem(format!(
            "{} in {env_name} is not healthy: its rollout is {} ({})",
            app.name, st.rollout, st.replicas
        )));
    }
    // By what runs, not by the annotation's build number: that is this machine's record,
    // and another machine's build of the same commit has another.
    let runs_it = builds.iter().any(|b| match &b.digest {
        Some(d) => {
            let digest = d.rsplit('@').next().unwrap_or(d);
            image.ends_with(digest) || st.digest.as_deref() == Some(digest)
        }
        None => b.image.as_deref() == Some(image.as_str()),
    });
    if !runs_it {
        let which = if builds.is_empty() {
            "no build stands for its branch".to_string()
        } else {
            let ids: Vec<String> = builds.iter().map(|b| format!("#{}", b.id)).collect();
            format!("builds standing for its branch: {}", ids.join(", "))
        };
        return Ok(Found::Problem(format!(
            "{} in {env_name} runs {image}, not the image of such a build ({which})",
            app.name
        )));
    }
    Ok(Found::Healthy { env: Box::new(env), image })
}

/// The facts only the clusters and the release records tell, for the step out of
/// `submitted`, `gray` or `released`. Returns the smoke checks to run when the gate is
/// otherwise open: (app, environment, image).
fn release_facts(
    cx: &mut Ctx,
    forges: &Forges,
    store: &Store,
    req: &Requirement,
    branches: &[BranchView],
    test_branch: &str,
    facts: &mut Facts,
) -> Result<Vec<(store::App, store::Env, String)>> {
    let key = req.key();
    let repos = store::repos(store.conn(), &key.project)?;
    let mut smoke = Vec::new();
    match req.status {
        Status::Submitted => {
            facts.clusters_checked = true;
            facts.test_env_smoke = super::deploy::find_env(store, &key.project, "test")
                .ok()
                .map(|e| e.smoke.is_some());
            for (app, builds) in
                app_builds(forges, store, &key, &repos, branches, test_branch, true)?
            {
                let problem = match deployment_problem(cx, store, &app, "test", &builds)? {
                    Found::Problem(p) => Some(p),
                    Found::Healthy { env, image } => {
                        smoke.push((app.clone(), *env, image));
                        None
                    }
                    // The environment's absence is one item of its own.
                    Found::NoEnv => None,
                };
                facts.test_deploys.push((app.name.clone(), problem));
            }
        }
        Status::Gray => {
            facts.clusters_checked = true;
            let require_gray = cx
                .config()?
                .get("gates.require_gray")?
                .and_then(|e| e.value.as_bool())
                .unwrap_or(false);
            for (app, builds) in
                app_builds(forges, store, &key, &repos, branches, test_branch, false)?
            {
                let problem = match deployment_problem(cx, store, &app, "prod", &builds)? {
                    Found::Problem(p) => Some(p),
                    Found::NoEnv => {
                        Some(format!("project {} has no prod environment", key.project))
                    }
                    Found::Healthy { .. } => None,
                };
                facts.prod_deploys.push((app.name.clone(), problem));
                if require_gray {
                    facts.gray_missing.push(app.name.clone());
                }
            }
        }
        Status::Released => {
            let window = cx.config()?.duration("gates.watch_window").as_secs() as i64;
            let apps = app_builds(forges, store, &key, &repos, branches, test_branch, false)?;
            for (app, _) in apps {
                let released = store::deploys(
                    store.conn(),
                    Some(&app.project),
                    Some(&app.name),
                    Some("prod"),
                    Some(key.to_string().as_str()),
                )?
                .into_iter()
                .find(|d| d.kind == "deploy" && d.status == "succeeded");
                let problem = match released {
                    None => Some(format!(
                        "{} was not released to prod by {key} (a deployment that rolled out)",
                        app.name
                    )),
                    Some(d) => {
                        let passed = store::watches(
                            store.conn(),
                            &app.project,
                            Some(&app.name),
                            Some("prod"),
                        )?
                        .into_iter()
                        .any(|w| {
                            w.status == "passed"
                                && w.window_secs >= window
                                && w.started_at >= d.started_at
                        });
                        (!passed).then(|| {
                            format!(
                                "no post-release watch of {} on prod at least {} long passed since its release (gates.watch_window)",
                                app.name,
                                crate::ui::human_secs(window)
                            )
                        })
                    }
                };
                facts.watches.push((app.name.clone(), problem));
            }
        }
        _ => {}
    }
    Ok(smoke)
}

/// Runs the test environment's smoke command for each app; the first failure's output.
fn run_smoke(cx: &Ctx, runs: &[(store::App, store::Env, String)]) -> Result<Option<String>> {
    for (app, env, image) in runs {
        let Some(cmd) = &env.smoke else { continue };
        cx.ui.status(format!("smoke check of {} on {}: {cmd}", app.name, env.name));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("XONE_APP", &app.name)
            .env("XONE_ENV", &env.name)
            .env("XONE_NAMESPACE", &env.namespace)
            .env("XONE_IMAGE", image)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| XoneError::internal("cannot run the smoke command with sh").cause(e))?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            let code =
                out.status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
            return Ok(Some(format!(
                "smoke check of {} on {} failed (exit {code}): {}",
                app.name,
                env.name,
                tail.trim()
            )));
        }
    }
    Ok(None)
}

/// Gathers what the gates look at: documents, people, dates, reviews, sign-offs, and the
/// feature branches as their forge reports them now (`branches`, measured by the caller).
pub fn gather_facts(
    forges: &Forges,
    store: &Store,
    req: &Requirement,
    branches: &[BranchView],
    test_branch: &str,
) -> Result<Facts> {
    let c = store.conn();
    let key = req.key();
    let docs = store::documents(c, &key)?;
    let has_doc = |k: DocKind| docs.iter().any(|d| d.kind == k.as_str());
    let first_sha =
        docs.iter().find(|d| d.kind == "requirement" && d.version == 1).map(|d| d.sha256.clone());
    // Versions that only carry a review's record are not the authors' edits.
    let records: Vec<i64> = store::reviews(c, Some(&key))?
        .into_iter()
        .filter(|r| r.kind == "requirement")
        .filter_map(|r| r.doc_version)
        .collect();
    let latest_own = docs
        .iter()
        .filter(|d| d.kind == "requirement" && !records.contains(&d.version))
        .max_by_key(|d| d.version);
    let review = |k: &str| -> Result<Option<ReviewFact>> {
        Ok(store::latest_review(c, &key, k)?.map(|(id, verdict)| ReviewFact { id, verdict }))
    };
    let people = store::assignments(c, &key)?;
    let project: ProjectKey = req.project.parse().map_err(XoneError::internal)?;
    let repos = store::repos(c, &project)?;
    let mut test_integration = Vec::new();
    for b in branches {
        let repo = repos.iter().find(|r| r.name == b.repo);
        let held = match (repo, &b.sha) {
            (Some(r), Some(sha)) => forges.for_repo(r)?.contains(r, test_branch, sha)?,
            _ => false,
        };
        test_integration.push((b.repo.clone(), b.name.clone(), held));
    }
    let app_builds = app_builds(forges, store, &key, &repos, branches, test_branch, true)?
        .into_iter()
        .map(|(app, builds)| (app.name, !builds.is_empty()))
        .collect();
    let branches = branches
        .iter()
        .map(|b| BranchFact { repo: b.repo.clone(), branch: b.name.clone(), ahead: b.ahead })
        .collect();
    let mut qa_signoff = false;
    for s in store::signoffs(c, &key)? {
        qa_signoff |= store::has_role(c, &project, &s.user, Role::Qa)?;
    }
    Ok(Facts {
        app_builds,
        test_integration,
        test_integration_branch: test_branch.to_string(),
        requirement_doc_edited: matches!((latest_own, &first_sha), (Some(d), Some(first)) if d.sha256 != *first),
        pm_assigned: people.iter().any(|p| p.role == Role::Pm),
        start_date: req.dates.start.is_some(),
        end_date: req.dates.end.is_some(),
        requirement_review: review("requirement")?,
        tech_design_doc: has_doc(DocKind::TechDesign),
        tech_design_review: review("tech-design")?,
        branches,
        test_cases_review: review("test-cases")?,
        test_submit_date: req.dates.test_submit.is_some(),
        qa_signoff,
        release_plan_doc: has_doc(DocKind::ReleasePlan),
        rollback_plan_doc: has_doc(DocKind::RollbackPlan),
        ..Facts::default()
    })
}

#[derive(Serialize)]
struct NextStep {
    status: Status,
    missing: Vec<lifecycle::Missing>,
}

#[derive(Serialize)]
struct Thread {
    #[serde(flatten)]
    requirement: Requirement,
    people: Vec<store::Person>,
    documents: Vec<store::DocVersion>,
    reviews: Vec<store::Review>,
    branches: Vec<super::branch::BranchView>,
    /// Per repository, the commits on the requirement's branch that its base lacks.
    commits: Vec<RepoCommits>,
    integrations: Vec<store::IntegrationRecord>,
    builds: Vec<store::Build>,
    /// Deployments and rollbacks made for it, newest first.
    deploys: Vec<store::Deploy>,
    watches: Vec<store::Watch>,
    signoffs: Vec<store::Signoff>,
    events: Vec<Event>,
    next: Option<NextStep>,
}

#[derive(Serialize)]
struct RepoCommits {
    repo: String,
    branch: String,
    commits: Vec<crate::adapters::CommitInfo>,
}

/// How many of a branch's commits `requirement show` lists per repository.
const COMMITS_SHOWN: usize = 20;

fn thread(
    forges: &Forges,
    store: &Store,
    key: &RequirementKey,
    test_branch: &str,
) -> Result<Thread> {
    let c = store.conn();
    let req = store::requirement(c, key)?;
    let branches = super::branch::views(forges, c, Some(key), None)?;
    let repos = store::repos(c, &key.project)?;
    let mut commits = Vec::new();
    for b in branches.iter().filter(|b| b.exists) {
        if let Some(r) = repos.iter().find(|r| r.name == b.repo) {
            let list = forges.for_repo(r)?.commits(r, &b.name, &b.base, COMMITS_SHOWN)?;
            commits.push(RepoCommits {
                repo: b.repo.clone(),
                branch: b.name.clone(),
                commits: list,
            });
        }
    }
    let next = match req.status.next() {
        Some(status) => Some(NextStep {
            status,
            missing: lifecycle::gate(
                req.status,
                key,
                &gather_facts(forges, store, &req, &branches, test_branch)?,
            ),
        }),
        None => None,
    };
    Ok(Thread {
        people: store::assignments(c, key)?,
        documents: store::documents(c, key)?,
        reviews: store::reviews(c, Some(key))?,
        branches,
        commits,
        integrations: store::integrations_of(c, key)?,
        builds: store::builds(c, None, Some(key))?,
        deploys: store::deploys(
            c,
            Some(key.project.as_str()),
            None,
            None,
            Some(key.to_string().as_str()),
        )?,
        watches: {
            let deployed: Vec<(String, String)> = store::deploys(
                c,
                Some(key.project.as_str()),
                None,
                None,
                Some(key.to_string().as_str()),
            )?
            .into_iter()
            .map(|d| (d.app, d.env))
            .collect();
            store::watches(c, key.project.as_str(), None, None)?
                .into_iter()
                .filter(|w| deployed.contains(&(w.app.clone(), w.env.clone())))
                .collect()
        },
        signoffs: store::signoffs(c, key)?,
        events: store::events(c, key)?,
        next,
        requirement: req,
    })
}

pub fn show(cx: &mut Ctx, key: &RequirementKey) -> Result<()> {
    let test_branch = super::branch::integration_branch(cx, "test")?;
    let store = cx.store()?;
    let forges = cx.forges()?;
    let t = thread(&forges, &store, key, &test_branch)?;
    if cx.ui.json {
        return cx.ui.print_json(&t);
    }
    let ui = &mut cx.ui;
    let r = &t.requirement;
    let head = format!("{}  {}", r.key, r.title);
    ui.line(format!("{}  [{}]", ui.bold(&head), r.status))?;
    ui.line(format!(
        "project {}, created {} by {}, updated {}",
        r.project, r.created_at, r.created_by, r.updated_at
    ))?;
    if let Some(b) = &r.branch {
        ui.line(format!("branch {b}"))?;
    }

    ui.line(format!("\n{}", ui.bold("People")))?;
    if t.people.is_empty() {
        ui.line(format!("  none: xone requirement assign {key} pm=USER"))?;
    }
    for role in Role::ALL {
        let users: Vec<&str> =
            t.people.iter().filter(|p| p.role == *role).map(|p| p.user.as_str()).collect();
        if !users.is_empty() {
            ui.line(format!("  {:<6}{}", role.as_str(), users.join(", ")))?;
        }
    }

    ui.line(format!("\n{}", ui.bold("Dates")))?;
    let d = &r.dates;
    for ((_, label), v) in store::DATE_COLUMNS.iter().zip(d.in_column_order()) {
        if let Some(v) = v {
            ui.line(format!("  {label:<12}{v}"))?;
        }
    }

    ui.line(format!("\n{}", ui.bold("Documents")))?;
    for kind in DocKind::ALL {
        let versions: Vec<&store::DocVersion> =
            t.documents.iter().filter(|v| v.kind == kind.as_str()).collect();
        if let Some(latest) = versions.last() {
            let name = latest.file_name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
            ui.line(format!(
                "  {:<14}v{}  {}{name}, {}  {} by {}",
                kind.as_str(),
                latest.version,
                latest.media_type,
                human_size(latest.size as u64),
                latest.created_at,
                latest.created_by
            ))?;
        }
    }

    ui.line(format!("\n{}", ui.bold("Reviews")))?;
    if t.reviews.is_empty() {
        ui.line("  none")?;
    }
    for rv in &t.reviews {
        let open = rv.open_comments();
        let verdict = match rv.verdict.as_deref() {
            Some("approve") => ui.green("approve"),
            Some(v) => ui.red(v),
            None => ui.yellow("pending"),
        };
        ui.line(format!(
            "  #{:<4}{:<12}{}  {} comment(s), {open} open  attendees: {}",
            rv.id,
            rv.kind,
            verdict,
            rv.comments.len(),
            rv.attendees.join(", ")
        ))?;
    }

    ui.line(format!("\n{}", ui.bold("Branches")))?;
    if t.branches.is_empty() {
        ui.line(format!("  none: xone branch create {key}"))?;
    }
    for b in &t.branches {
        match (b.ahead, b.behind) {
            (Some(a), Some(be)) => {
                ui.line(format!("  {}  {}  {a} ahead, {be} behind {}", b.repo, b.name, b.base))?
            }
            _ => ui.line(format!("  {}  {}  {}", b.repo, b.name, ui.red("missing")))?,
        }
        for rc in t.commits.iter().filter(|rc| rc.repo == b.repo) {
            for c in &rc.commits {
                ui.line(format!(
                    "      {}  {}  ({})",
                    ui.dim(crate::ui::short_sha(&c.sha)),
                    c.summary,
                    c.author
                ))?;
            }
        }
    }

    if !t.integrations.is_empty() {
        ui.line(format!("\n{}", ui.bold("Integrations")))?;
        for i in &t.integrations {
            let at = i.sha.as_deref().map(crate::ui::short_sha).unwrap_or("-");
            ui.line(format!(
                "  {}  {}  {} in {} at {at} (took {})",
                i.at,
                i.env,
                i.branch,
                i.repo,
                crate::ui::short_sha(&i.feature_sha)
            ))?;
        }
    }
    if !t.builds.is_empty() {
        ui.line(format!("\n{}", ui.bold("Builds")))?;
        for b in &t.builds {
            let tests = b
                .tests
                .as_ref()
                .map(|x| format!("{}/{} tests", x.passed, x.total))
                .unwrap_or_else(|| "no tests".into());
            let coverage = b.coverage.map(|c| format!(", {c:.1} %")).unwrap_or_default();
            let image = b.digest.clone().or(b.image.clone()).unwrap_or_else(|| "-".into());
            ui.line(format!(
                "  #{}  {}  {} at {}  {}  {tests}{coverage}  {image}",
                b.id,
                b.app,
                b.git_ref,
                crate::ui::short_sha(&b.sha),
                b.status
            ))?;
        }
    }
    if !t.deploys.is_empty() {
        ui.line(format!("\n{}", ui.bold("Deployments")))?;
        for d in &t.deploys {
            let revision =
                d.revision.map(|r| format!("revision {r}")).unwrap_or_else(|| "-".into());
            ui.line(format!(
                "  #{}  {} {} to {}  {}  {revision}  {}  {}",
                d.id, d.kind, d.app, d.env, d.status, d.image, d.started_at
            ))?;
        }
    }
    if !t.watches.is_empty() {
        ui.line(format!("\n{}", ui.bold("Release watches")))?;
        for w in &t.watches {
            ui.line(format!(
                "  #{}  {} in {}  {}  {} window  {}",
                w.id,
                w.app,
                w.env,
                w.status,
                crate::ui::human_secs(w.window_secs),
                w.detail.clone().unwrap_or_default()
            ))?;
        }
    }

    if !t.signoffs.is_empty() {
        ui.line(format!("\n{}", ui.bold("Sign-offs")))?;
        for s in &t.signoffs {
            ui.line(format!(
                "  {}  {}{}",
                s.at,
                s.user,
                s.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
            ))?;
        }
    }

    if let Some(next) = &t.next {
        ui.line(format!("\n{}", ui.bold(&format!("Next: {}", next.status))))?;
        if next.missing.is_empty() {
            ui.line(format!("  ready: xone requirement advance {key}"))?;
        }
        for m in &next.missing {
            ui.line(format!("  - {}  ({})", m.item, ui.dim(&m.hint)))?;
        }
    }

    ui.line(format!("\n{}", ui.bold("Events")))?;
    for e in &t.events {
        ui.line(format!("  {}", event_line(e)))?;
    }
    Ok(())
}

fn event_line(e: &Event) -> String {
    let mut s = format!("{}  {:<10}{}", e.at, e.actor, e.action);
    if let (Some(f), Some(t)) = (&e.from, &e.to) {
        s.push_str(&format!(" {f} -> {t}"));
    }
    if let Some(d) = &e.detail {
        s.push_str(&format!(": {d}"));
    }
    if e.forced {
        s.push_str(" [forced]");
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!(" (reason: {r})"));
    }
    s
}

fn assign(cx: &mut Ctx, key: &RequirementKey, list: &[Assignment], remove: bool) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = open_requirement(store.conn(), key)?;
    let changed = store.write(|tx| {
        let mut changed = Vec::new();
        for a in list {
            let did = if remove {
                store::unassign(tx, key, a.role, &a.user)?
            } else {
                store::assign(tx, key, a.role, &a.user)?
            };
            if did {
                let action = if remove { "unassign" } else { "assign" };
                store::record(
                    tx,
                    &Event {
                        detail: Some(format!("{}={}", a.role, a.user)),
                        ..event(&req, &actor, action)
                    },
                )?;
                changed.push(format!("{}={}", a.role, a.user));
            }
        }
        Ok(changed)
    })?;
    if !remove {
        warn_unknown_people(cx, &store, &key.project, list)?;
    }
    if changed.is_empty() {
        cx.ui.status(format!("{key}: nothing changed"));
    } else {
        let verb = if remove { "unassigned" } else { "assigned" };
        cx.ui.status(format!("{key}: {verb} {}", changed.join(" ")));
    }
    Ok(())
}

fn doc(cx: &mut Ctx, a: DocArgs) -> Result<()> {
    if let Some(file) = &a.attach {
        return attach(cx, &a, file);
    }
    if a.edit {
        return edit(cx, &a);
    }
    let store = cx.store()?;
    store::requirement(store.conn(), &a.key)?;
    let Some((v, bytes)) = store::document(store.conn(), &a.key, a.kind, a.version)? else {
        let what = match a.version {
            Some(n) => format!("{} has no {} document version {n}", a.key, a.kind),
            None => format!("{} has no {} document", a.key, a.kind),
        };
        return Err(XoneError::not_found(what).hint(format!(
            "attach one with `xone requirement doc {} {} --attach FILE`",
            a.key, a.kind
        )));
    };
    if cx.ui.json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            version: &'a store::DocVersion,
            text: Option<&'a str>,
        }
        let text = if is_text(&v.media_type) { std::str::from_utf8(&bytes).ok() } else { None };
        return cx.ui.print_json(&Out { version: &v, text });
    }
    if !is_text(&v.media_type) && cx.ui.stdout_tty {
        return Err(XoneError::gate(format!(
            "{} {} v{} is binary ({}, {})",
            a.key,
            a.kind,
            v.version,
            v.media_type,
            human_size(v.size as u64)
        ))
        .hint(format!(
            "redirect it to a file: xone requirement doc {} {} --print > {}",
            a.key,
            a.kind,
            v.file_name.as_deref().unwrap_or("FILE")
        )));
    }
    cx.ui.out().write_all(&bytes)?;
    Ok(())
}

fn attach(cx: &mut Ctx, a: &DocArgs, file: &str) -> Result<()> {
    let limit = max_bytes(cx)?;
    let bytes = read_input(file, limit)?;
    let name = file_name(file);
    let version = NewVersion {
        media_type: media_type(&bytes, name.as_deref()),
        bytes: &bytes,
        file_name: name.as_deref(),
        source: file,
        based_on: None,
    };
    save_version(cx, a, version)
}

/// A document version about to be stored.
struct NewVersion<'a> {
    bytes: &'a [u8],
    media_type: &'a str,
    file_name: Option<&'a str>,
    /// Where it came from, for the event: a file, standard input, the editor.
    source: &'a str,
    /// The version it was made from (0: none); if another was saved meanwhile, nothing is
    /// stored and the command fails with a conflict instead of silently replacing it.
    based_on: Option<i64>,
}

fn save_version(cx: &mut Ctx, a: &DocArgs, new: NewVersion<'_>) -> Result<()> {
    let actor = cx.actor()?;
    let (key, kind, note) = (&a.key, a.kind, a.note.as_deref());
    let size = human_size(new.bytes.len() as u64);
    let mut store = cx.store()?;
    let v = store.write(|tx| {
        let req = open_requirement(tx, key)?;
        if let Some(based_on) = new.based_on {
            let latest = store::document(tx, key, kind, None)?.map(|(d, _)| d.version).unwrap_or(0);
            if latest != based_on {
                return Err(XoneError::conflict(format!(
                    "{key} {kind} changed while it was being edited (v{latest} was saved meanwhile)"
                ))
                .hint(format!("look at v{latest} with `xone requirement doc {key} {kind} --print`, then edit again")));
            }
        }
        let v = store::add_document_version(tx, key, kind, new.bytes, new.media_type, new.file_name, &actor, note)?;
        if let Some(v) = v {
            let detail = format!("{kind} v{v} from {} ({}, {size})", new.source, new.media_type);
            let e = Event { detail: Some(detail), reason: note.map(str::to_string), ..event(&req, &actor, "doc") };
            store::record(tx, &e)?;
        }
        Ok(v)
    })?;
    match v {
        Some(v) => cx.ui.status(format!("{key} {kind} v{v} saved ({}, {size})", new.media_type)),
        None => cx.ui.status(format!("{key} {kind}: unchanged, no new version")),
    }
    Ok(())
}

fn edit(cx: &mut Ctx, a: &DocArgs) -> Result<()> {
    let how = format!(
        "write it to a file and run `xone requirement doc {} {} --attach FILE` (or --attach - to read standard input)",
        a.key, a.kind
    );
    if !(cx.ui.stdin_tty && cx.ui.stderr_tty) {
        return Err(XoneError::gate("--edit needs a terminal to open an editor in").hint(how));
    }
    let (current, based_on) = {
        let store = cx.store()?;
        let req = open_requirement(store.conn(), &a.key)?;
        match store::document(store.conn(), &a.key, a.kind, None)? {
            Some((v, _)) if !is_text(&v.media_type) => {
                return Err(XoneError::gate(format!(
                    "{} {} is binary ({}): it cannot be edited as text",
                    a.key, a.kind, v.media_type
                ))
                .hint(how));
            }
            Some((v, bytes)) => (String::from_utf8_lossy(&bytes).into_owned(), v.version),
            None => {
                let text = super::project::template_for(store.conn(), &a.key.project, a.kind)?
                    .map(|t| {
                        template::render(&t, &a.key.to_string(), &req.title, a.key.project.as_str())
                    })
                    .unwrap_or_else(|| format!("# {}: {} ({})\n\n", a.key, req.title, a.kind));
                (text, 0)
            }
        }
    };
    let edited = dialoguer::Editor::new()
        .extension(".md")
        .require_save(false)
        .trim_newlines(false)
        .edit(&current)
        .map_err(|e| XoneError::internal("the editor failed").cause(e).hint(how.clone()))?;
    // An unchanged text makes no new version: the store compares contents, not timestamps.
    let Some(text) = edited else {
        cx.ui.status("the editor failed or was aborted: no new version");
        return Ok(());
    };
    let version = NewVersion {
        bytes: text.as_bytes(),
        media_type: "text/markdown",
        file_name: None,
        source: "the editor",
        based_on: Some(based_on),
    };
    save_version(cx, a, version)
}

fn schedule(cx: &mut Ctx, a: ScheduleArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = open_requirement(store.conn(), &a.key)?;
    let given = [&a.start, &a.end, &a.dev_end, &a.test_submit, &a.smoke, &a.test_end, &a.release];
    if given.iter().all(|g| g.is_none()) {
        return Err(XoneError::usage("no date given")
            .hint("e.g. xone requirement schedule KEY --start 2026-12-01 --end 2026-12-20"));
    }
    let start = a
        .start
        .as_ref()
        .map(|d| d.0)
        .unwrap_or_else(|| req.dates.start.as_deref().and_then(|s| s.parse().ok()));
    let end = a
        .end
        .as_ref()
        .map(|d| d.0)
        .unwrap_or_else(|| req.dates.end.as_deref().and_then(|s| s.parse().ok()));
    check_span(start, end)?;
    let changes: Vec<(&str, &str, Option<String>)> = store::DATE_COLUMNS
        .iter()
        .zip(given)
        .filter_map(|((col, flag), v)| {
            v.as_ref().map(|d| (*col, *flag, d.0.map(|d| d.to_string())))
        })
        .collect();
    store.write(|tx| {
        for (col, flag, value) in &changes {
            store::set_date(tx, &a.key, col, value.as_deref())?;
            let detail = format!("{flag} {}", value.as_deref().unwrap_or("cleared"));
            store::record(tx, &Event { detail: Some(detail), ..event(&req, &actor, "schedule") })?;
        }
        Ok(())
    })?;
    let summary: Vec<String> = changes
        .iter()
        .map(|(_, f, v)| format!("{f} {}", v.as_deref().unwrap_or("cleared")))
        .collect();
    cx.ui.status(format!("{}: {}", a.key, summary.join(", ")));
    Ok(())
}

/// A reason for a change that needs one: the flag, else a prompt on a terminal.
fn need_reason(cx: &Ctx, reason: Option<String>, what: &str) -> Result<String> {
    let reason = match reason {
        Some(r) => Some(r),
        None => cx.ui.ask(&format!("Why {what}?"))?,
    };
    match reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()) {
        Some(r) => Ok(r),
        None => Err(XoneError::usage(format!("{what} needs a reason")).hint("pass --reason \"…\"")),
    }
}

#[derive(Serialize)]
struct Transition<'a> {
    key: String,
    from: Status,
    to: Status,
    forced: bool,
    missing: &'a [lifecycle::Missing],
}

/// Moves the requirement to `to` in one transaction, refusing if someone else moved it
/// since `from` was read.
fn transition(store: &mut Store, req: &Requirement, to: Status, e: Event) -> Result<()> {
    let key = req.key();
    store.write(|tx| {
        let now = store::requirement(tx, &key)?;
        if now.status != req.status {
            return Err(XoneError::conflict(format!(
                "{key} changed from {} to {} while this command ran",
                req.status, now.status
            ))
            .hint("look at it again with `xone requirement show`"));
        }
        store::set_status(tx, &key, to)?;
        store::record(
            tx,
            &Event { from: Some(req.status.to_string()), to: Some(to.to_string()), ..e },
        )
    })
}

fn advance(cx: &mut Ctx, key: &RequirementKey, force: bool, reason: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = store::requirement(store.conn(), key)?;
    let Some(to) = req.status.next() else {
        return Err(XoneError::gate(format!("{key} is {}: there is no next step", req.status)));
    };
    let forges = cx.forges()?;
    let branches = super::branch::views(&forges, store.conn(), Some(key), None)?;
    let test_branch = super::branch::integration_branch(cx, "test")?;
    let mut facts = gather_facts(&forges, &store, &req, &branches, &test_branch)?;
    let smoke = release_facts(cx, &forges, &store, &req, &branches, &test_branch, &mut facts)?;
    let missing = lifecycle::gate(req.status, key, &facts);
    // The smoke check runs last, on a deployment the gate found right: only its failure
    // sends the requirement back to development.
    if missing.is_empty() && req.status == Status::Submitted {
        if let Some(output) = run_smoke(cx, &smoke)? {
            transition(
                &mut store,
                &req,
                Status::Developing,
                Event { reason: Some(output.clone()), ..event(&req, &actor, "reject") },
            )?;
            return Err(XoneError::gate(format!(
                "{key} failed its smoke check: rejected back to developing"
            ))
            .cause(output)
            .hint(format!(
                "fix it, deploy again and advance: xone requirement log {key} has the output"
            )));
        }
    }
    if !missing.is_empty() && !force {
        let mut err =
            XoneError::gate(format!("{key} cannot enter {to}: {} missing", missing.len()));
        for m in &missing {
            err = err.cause(&m.item);
        }
        for m in &missing {
            err = err.hint(m.hint.clone());
        }
        return Err(err.hint(format!(
            "or pass the gate knowingly: xone requirement advance {key} --force --reason \"…\""
        )));
    }
    let forced = !missing.is_empty();
    let detail = forced.then(|| {
        let items: Vec<&str> = missing.iter().map(|m| m.item.as_str()).collect();
        format!("gate forced past: {}", items.join("; "))
    });
    let e = Event { detail, reason: reason.clone(), forced, ..event(&req, &actor, "advance") };
    transition(&mut store, &req, to, e)?;
    if cx.ui.json {
        return cx.ui.print_json(&Transition {
            key: key.to_string(),
            from: req.status,
            to,
            forced,
            missing: &missing,
        });
    }
    let note = if forced { " (gate forced)" } else { "" };
    cx.ui.status(format!("{key}: {} -> {to}{note}", req.status));
    Ok(())
}

fn reject(cx: &mut Ctx, key: &RequirementKey, reason: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = store::requirement(store.conn(), key)?;
    if !req.status.can_reject() {
        return Err(XoneError::gate(format!(
            "{key} is {}: only submitted or testing work can be rejected",
            req.status
        ))
        .hint("cancel it instead with `xone requirement cancel`"));
    }
    let reason = need_reason(cx, reason, "reject")?;
    transition(
        &mut store,
        &req,
        Status::Developing,
        Event { reason: Some(reason), ..event(&req, &actor, "reject") },
    )?;
    cx.ui.status(format!("{key}: {} -> developing (rejected)", req.status));
    Ok(())
}

fn cancel(cx: &mut Ctx, key: &RequirementKey, reason: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = open_requirement(store.conn(), key)?;
    let reason = need_reason(cx, reason, "cancel")?;
    transition(
        &mut store,
        &req,
        Status::Cancelled,
        Event { reason: Some(reason), ..event(&req, &actor, "cancel") },
    )?;
    cx.ui.status(format!("{key}: {} -> cancelled", req.status));
    Ok(())
}

fn signoff(cx: &mut Ctx, key: &RequirementKey, note: Option<String>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let req = open_requirement(store.conn(), key)?;
    if !store::has_role(store.conn(), &key.project, &actor, Role::Qa)? {
        return Err(XoneError::gate(format!(
            "{actor} is not a qa member of {}: only QA signs off",
            key.project
        ))
        .hint(format!(
            "xone project member add {} {actor} --role qa, or act as a qa member (XONE_USER)",
            key.project
        )));
    }
    if !matches!(req.status, Status::Submitted | Status::Testing) {
        return Err(XoneError::gate(format!(
            "{key} is {}: QA signs off on work in submitted or testing",
            req.status
        )));
    }
    store.write(|tx| {
        store::insert_signoff(tx, key, &actor, note.as_deref())?;
        store::record(tx, &Event { detail: note.clone(), ..event(&req, &actor, "signoff") })
    })?;
    cx.ui.status(format!("{key}: signed off by {actor}"));
    Ok(())
}

fn log(cx: &mut Ctx, key: &RequirementKey) -> Result<()> {
    let store = cx.store()?;
    store::requirement(store.conn(), key)?;
    let events = store::events(store.conn(), key)?;
    if cx.ui.json {
        return cx.ui.print_json(&events);
    }
    for e in &events {
        cx.ui.line(event_line(e))?;
    }
    Ok(())
}
