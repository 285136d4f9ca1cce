//! `xone requirement show` and `log`: the whole thread, and the timeline of events.

use super::super::Ctx;
use crate::domain::{DocKind, RequirementKey, Role, Verdict};
use crate::ops::branches::integration_branch;
use crate::ops::docs::human_size;
use crate::ops::requirement::thread;
use crate::store::{self, Event};
use crate::ui::{safe, short_sha, Result};

pub fn show(cx: &mut Ctx, key: &RequirementKey) -> Result<()> {
    let test_branch = integration_branch(cx.config()?, "test")?;
    let store = cx.store()?;
    let forges = cx.forges()?;
    let t = thread(&forges, &store, key, &test_branch)?;
    if cx.ui.json {
        return cx.ui.print_json(&t);
    }
    let ui = &mut cx.ui;
    let r = &t.requirement;
    let head = format!("{}  {}", r.key, safe(&r.title));
    ui.line(format!("{}  [{}]", ui.bold(&head), r.status))?;
    ui.line(format!(
        "project {}, created {} by {}, updated {}",
        r.project,
        ui.when(&r.created_at),
        r.created_by,
        ui.when(&r.updated_at)
    ))?;
    if !t.aliases.is_empty() {
        ui.line(format!("formerly {}", t.aliases.join(", ")))?;
    }
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
            t.documents.iter().filter(|v| v.kind == *kind).collect();
        if let Some(latest) = versions.last() {
            let name =
                latest.file_name.as_deref().map(|n| format!(" {}", safe(n))).unwrap_or_default();
            ui.line(format!(
                "  {:<14}v{}  {}{name}, {}  {} by {}",
                kind.as_str(),
                latest.version,
                latest.media_type,
                human_size(latest.size as u64),
                ui.when(&latest.created_at),
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
        let verdict = match rv.verdict {
            Some(Verdict::Approve) => ui.green("approve"),
            Some(v) => ui.red(v.as_str()),
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
                let (repo, name, base) = (safe(&b.repo), safe(&b.name), safe(&b.base));
                ui.line(format!("  {repo}  {name}  {a} ahead, {be} behind {base}"))?
            }
            _ => {
                let missing = ui.red("missing");
                ui.line(format!("  {}  {}  {missing}", safe(&b.repo), safe(&b.name)))?
            }
        }
        for rc in t.commits.iter().filter(|rc| rc.repo == b.repo) {
            for c in &rc.commits {
                ui.line(format!(
                    "      {}  {}  ({})",
                    ui.dim(&safe(short_sha(&c.sha))),
                    safe(&c.summary),
                    safe(&c.author)
                ))?;
            }
        }
    }

    if !t.integrations.is_empty() {
        ui.line(format!("\n{}", ui.bold("Integrations")))?;
        for i in &t.integrations {
            let at = i.sha.as_deref().map(short_sha).unwrap_or("-");
            ui.line(format!(
                "  {}  {}  {} in {} at {at} (took {})",
                ui.when(&i.at),
                i.env,
                safe(&i.branch),
                safe(&i.repo),
                safe(short_sha(&i.feature_sha))
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
            let image = safe(&image);
            ui.line(format!(
                "  #{}  {}  {} at {}  {}  {tests}{coverage}  {image}",
                b.id,
                b.app,
                safe(&b.git_ref),
                safe(short_sha(&b.sha)),
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
                d.id,
                d.kind,
                d.app,
                d.env,
                d.status,
                safe(&d.image),
                ui.when(&d.started_at)
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
                safe(w.detail.as_deref().unwrap_or_default())
            ))?;
        }
    }

    if !t.grays.is_empty() {
        ui.line(format!("\n{}", ui.bold("Gray releases")))?;
        for r in &t.grays {
            let g = &r.gray;
            let passed = match g.passed {
                Some(true) => ", analyses passing",
                Some(false) => ", analyses not passing",
                None => "",
            };
            ui.line(format!(
                "  {} in {}  {}{passed}  step {} of {} ({} of {})  {}  started {} by {}",
                g.app,
                r.env,
                g.phase,
                g.step + 1,
                g.steps.len(),
                g.canary_replicas(),
                g.stable_replicas,
                safe(&g.canary_image),
                ui.when(&g.started_at),
                g.started_by
            ))?;
        }
    }

    if !t.signoffs.is_empty() {
        ui.line(format!("\n{}", ui.bold("Sign-offs")))?;
        for s in &t.signoffs {
            ui.line(format!(
                "  {}  {}{}",
                ui.when(&s.at),
                s.user,
                s.note.as_deref().map(|n| format!(": {}", safe(n))).unwrap_or_default()
            ))?;
        }
    }

    if let Some(next) = &t.next {
        ui.line(format!("\n{}", ui.bold(&format!("Next: {}", next.status))))?;
        if next.missing.is_empty() {
            ui.line(format!("  ready: xone requirement advance {key}"))?;
        }
        for m in &next.missing {
            ui.line(format!("  - {}  ({})", safe(&m.item), ui.dim(&safe(&m.hint))))?;
        }
    }

    ui.line(format!("\n{}", ui.bold("Events")))?;
    for e in &t.events {
        ui.line(format!("  {}", event_line(ui, e)))?;
    }
    Ok(())
}

/// One event as a line; what people and systems wrote in it is made safe.
fn event_line(ui: &crate::ui::Ui, e: &Event) -> String {
    // The actor's column is as wide as most names, and a longer one still leaves a space.
    let mut s = format!("{}  {:<10} {}", ui.when(&e.at), e.actor, e.action);
    if let (Some(f), Some(t)) = (&e.from, &e.to) {
        s.push_str(&format!(" {f} -> {t}"));
    }
    if let Some(d) = &e.detail {
        s.push_str(&format!(": {}", safe(d)));
    }
    if e.forced {
        s.push_str(" [forced]");
    }
    if let Some(r) = &e.reason {
        s.push_str(&format!(" (reason: {})", safe(r)));
    }
    s
}

pub fn log(cx: &mut Ctx, key: &RequirementKey) -> Result<()> {
    let store = cx.store()?;
    store::requirement(store.conn(), key)?;
    let events = store::events(store.conn(), key)?;
    if cx.ui.json {
        return cx.ui.print_json(&events);
    }
    for e in &events {
        let line = event_line(&cx.ui, e);
        cx.ui.line(line)?;
    }
    Ok(())
}
