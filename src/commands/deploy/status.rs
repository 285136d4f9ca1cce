//! `xone deploy status`: what runs now, read from the cluster.

use super::super::{AtEnv, Ctx};
use crate::ops::revisions;
use crate::ops::target::{self, Target};
use crate::ui::{safe, Result};

pub fn run(cx: &mut Ctx, app_name: &str, at: &AtEnv) -> Result<()> {
    let mut store = cx.store()?;
    let (app, env) = target::locate(&store, app_name, at.project.as_ref(), at.env.as_deref())?;
    let t = Target::connect(app, env, cx.remote()?)?;
    let st = revisions::status(&mut store, &t)?;
    if cx.ui.json {
        return cx.ui.print_json(&st);
    }
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut rows = vec![
        ("revision", dash(st.revision.map(|r| r.to_string()))),
        ("image", dash(st.image.clone())),
        ("digest", dash(st.digest.clone())),
        ("requirement", dash(st.requirement.clone())),
        ("build", dash(st.build.map(|b| format!("#{b}")))),
        ("deployed by", dash(st.deployed_by.clone())),
        ("rollout", format!("{} ({})", st.rollout, st.replicas)),
    ];
    for c in &st.conditions {
        let text = [Some(c.status.clone()), c.reason.clone(), c.message.clone()];
        rows.push((c.kind.as_str(), text.into_iter().flatten().collect::<Vec<_>>().join(" ")));
    }
    if let Some(r) = &st.record {
        rows.push(("last record", format!("#{} {} {} by {}", r.id, r.kind, r.status, r.actor)));
    }
    let mut out = format!("{} in {} ({}/{})\n", st.app, st.env, st.context, st.namespace);
    for (label, value) in rows {
        out.push_str(&format!("  {label:<12}{value}\n"));
    }
    write!(cx.ui.out(), "{}", safe(&out))?;
    Ok(())
}
