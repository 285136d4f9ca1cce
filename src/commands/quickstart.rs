//! `xone quickstart`: a sandbox project walked from draft to submitted. Every step is an
//! ordinary xone command line, parsed and run exactly as if typed, and printed as it runs.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::adapters::forge_local::{commit_files, ensure_empty, init_repository};
use crate::domain::{ProjectKey, ReviewKind};
use crate::store;
use crate::ui::{Result, XoneError};

#[derive(Args, Debug)]
#[command(
    after_long_help = "Creates DIR (default ./xone-quickstart) with two git repositories and a few documents, \
a project DEMO (or DEMO2, … when taken) with a member for every role, and one requirement, which it \
walks through its reviews, branches and gates to submitted. Nothing outside DIR and the state database is touched."
)]
pub struct QuickstartArgs {
    /// Where the sandbox repositories and documents go
    #[arg(default_value = "xone-quickstart")]
    pub dir: PathBuf,
}

const PEOPLE: &[(&str, &str)] = &[
    ("pat", "pm"),
    ("uma", "ui"),
    ("fred", "fe"),
    ("bea", "be"),
    ("quinn", "qa"),
    ("dana", "data"),
    ("otto", "ops"),
];

const REQUIREMENT_DOC: &str = "# Refund cancelled orders\n\n## Background\n\nCustomers who cancel an order wait days for their money; support handles each refund by hand.\n\n\
## Goals\n\nA cancelled, paid order is refunded automatically within one minute.\n\n## Scope\n\nOrder cancellation in the shop front end and the payment API.\n\n\
## Non-goals\n\nPartial refunds; refunds of shipped orders.\n\n## User stories\n\nAs a customer, I want my money back when I cancel, so that I can trust the shop.\n\n\
## Acceptance criteria\n\nGiven a paid order, when the customer cancels it, then a refund is issued and the order shows \"refunded\".\n\n\
## Metrics\n\nRefund tickets to support drop by 90 %.\n\n## Prototype\n\nhttps://example.invalid/prototype/refunds\n";

const TECH_DESIGN: &str = "# Refunds: technical design\n\nThe API gains POST /orders/{id}/refund, idempotent on the order id; the front end calls it on cancel.\n";
const TEST_CASES: &str = "# Refunds: test cases\n\n1. Cancel a paid order: refund issued, status refunded.\n2. Cancel twice: one refund.\n3. Cancel an unpaid order: no refund.\n";

/// Runs one xone command line in this process, printing it first.
fn step(cx: &mut Ctx, line: &[&str]) -> Result<()> {
    let shown: Vec<String> = line
        .iter()
        .map(|w| if w.contains(' ') || w.is_empty() { format!("'{w}'") } else { w.to_string() })
        .collect();
    cx.ui.status(format!("\n$ xone {}", shown.join(" ")));
    let run_line = cx.run_line;
    run_line(cx, line)?;
    cx.ui.flush()
}

fn free_key(cx: &mut Ctx) -> Result<ProjectKey> {
    let store = cx.store()?;
    for n in 1.. {
        let key: ProjectKey = if n == 1 { "DEMO".parse() } else { format!("DEMO{n}").parse() }
            .map_err(XoneError::internal)?;
        if store::find_project(store.conn(), &key)?.is_none() {
            return Ok(key);
        }
    }
    unreachable!("some DEMO key is free")
}

pub fn run(cx: &mut Ctx, a: QuickstartArgs) -> Result<()> {
    let dir = &a.dir;
    ensure_empty(dir, "give quickstart a new directory: xone quickstart DIR")?;
    std::fs::create_dir_all(dir.join("docs"))?;
    let dir = dir.canonicalize()?;
    let me = cx.actor()?;
    // The sandbox keeps its own state inside it: the user's state database is never touched,
    // and removing the folder removes everything quickstart made.
    let state = dir.join(".xone");
    std::env::set_var("XONE_HOME", &state);
    let key = free_key(cx)?;
    let p = key.as_str();
    let req = format!("{p}-1");
    let path = |sub: &str| dir.join(sub).to_string_lossy().into_owned();
    cx.ui.status(format!(
        "Sandbox in {}, with its own state in {}; acting user {me}.",
        dir.display(),
        state.display()
    ));

    init_repository(&dir.join("web"), &[("README.md", "# web\n\nThe shop's front end.\n")])?;
    init_repository(&dir.join("api"), &[("README.md", "# api\n\nThe payment API.\n")])?;
    for (name, body) in [
        ("requirement.md", REQUIREMENT_DOC),
        ("tech-design.md", TECH_DESIGN),
        ("test-cases.md", TEST_CASES),
    ] {
        std::fs::write(dir.join("docs").join(name), body)?;
    }
    let (web, api) = (path("web"), path("api"));
    let (req_doc, design_doc, cases_doc) =
        (path("docs/requirement.md"), path("docs/tech-design.md"), path("docs/test-cases.md"));
    let today = crate::clock::today();
    let (start, end, submit) =
        (today.to_string(), today.plus_days(14).to_string(), today.plus_days(10).to_string());

    step(
        cx,
        &[
            "project",
            "create",
            p,
            "--name",
            "Demo shop",
            "--description",
            "A sandbox made by xone quickstart",
            "--repo",
            &web,
            "--repo",
            &api,
        ],
    )?;
    for (user, role) in PEOPLE {
        step(cx, &["project", "member", "add", p, user, "--role", role])?;
    }
    step(cx, &["project", "member", "add", p, &me, "--role", "owner"])?;
    step(
        cx,
        &[
            "requirement",
            "create",
            "-p",
            p,
            "Refund cancelled orders",
            "--assign",
            "pm=pat",
            "--assign",
            "ui=uma",
            "--assign",
            "fe=fred",
            "--assign",
            "be=bea",
            "--assign",
            "qa=quinn",
        ],
    )?;
    step(cx, &["requirement", "doc", &req, "requirement", "--attach", &req_doc])?;
    step(cx, &["requirement", "schedule", &req, "--start", &start, "--end", &end])?;
    step(cx, &["requirement", "advance", &req])?;

    step(
        cx,
        &["review", "create", &req, "--kind", "requirement", "--at", &format!("{start} 10:00")],
    )?;
    let review = |cx: &mut Ctx, kind: ReviewKind| -> Result<String> {
        let store = cx.store()?;
        let k = req.parse().map_err(XoneError::internal)?;
        let id = store::latest_review(store.conn(), &k, kind)?
            .map(|(id, _)| id)
            .ok_or_else(|| XoneError::internal("the review just opened is gone"))?;
        Ok(id.to_string())
    };
    let r1 = review(cx, ReviewKind::Requirement)?;
    step(
        cx,
        &["review", "comment", &r1, "What about orders paid by voucher?", "--section", "Scope"],
    )?;
    let c1 = {
        let store = cx.store()?;
        store::review(store.conn(), r1.parse().unwrap_or_default())?
            .comments
            .last()
            .map(|c| c.id.to_string())
            .unwrap_or_default()
    };
    step(cx, &["review", "resolve", &r1, &c1])?;
    step(
        cx,
        &["review", "verdict", &r1, "approve", "--note", "Vouchers are refunded as vouchers"],
    )?;
    step(cx, &["requirement", "advance", &req])?;

    step(cx, &["requirement", "doc", &req, "tech-design", "--attach", &design_doc])?;
    step(cx, &["review", "create", &req, "--kind", "tech-design"])?;
    let r2 = review(cx, ReviewKind::TechDesign)?;
    step(cx, &["review", "verdict", &r2, "approve"])?;
    step(cx, &["requirement", "advance", &req])?;

    step(cx, &["branch", "create", &req])?;
    step(cx, &["branch", "checkout", &req])?;
    cx.ui.status("\n(the developers commit their work on the feature branches)");
    for (repo, file, body) in [(&web, "refund.js", "export const refund = (order) => fetch(`/orders/${order}/refund`, { method: 'POST' });\n"), (&api, "refund.py", "def refund(order_id):\n    return {'order': order_id, 'status': 'refunded'}\n")] {
        let r = git2::Repository::open(repo)?;
        commit_files(&r, &[(file, body)], &format!("{req}: refund cancelled orders"))?;
    }
    step(cx, &["branch", "list", &req])?;

    step(cx, &["requirement", "doc", &req, "test-cases", "--attach", &cases_doc])?;
    step(cx, &["review", "create", &req, "--kind", "test-cases"])?;
    let r3 = review(cx, ReviewKind::TestCases)?;
    step(cx, &["review", "verdict", &r3, "approve"])?;
    step(cx, &["requirement", "schedule", &req, "--test-submit", &submit])?;
    step(cx, &["requirement", "advance", &req])?;
    step(cx, &["branch", "integrate", "test", "-p", p])?;
    step(cx, &["requirement", "show", &req])?;
    cx.ui.status(format!(
        "\n{req} is submitted, in the sandbox's own state (yours was not touched). Explore it:\n\n    export XONE_HOME={}\n    xone requirement log {req}\n    xone requirement advance {req}    # the next gate\n\nRemove {} to forget it all.",
        state.display(),
        dir.display()
    ));
    Ok(())
}
