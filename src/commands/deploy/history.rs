//! `xone deploy history`: one row per revision, from the Deployment's ReplicaSets.

use super::super::{AtEnv, Ctx};
use crate::ops::revisions;
use crate::ops::target::{self, Target};
use crate::ui::{safe_table, Result};

pub fn run(cx: &mut Ctx, app_name: &str, at: &AtEnv) -> Result<()> {
    let store = cx.store()?;
    let (app, env) = target::locate(&store, app_name, at.project.as_ref(), at.env.as_deref())?;
    let t = Target::connect(app, env, cx.remote()?)?;
    let rows = revisions::history(&t)?;
    if cx.ui.json {
        return cx.ui.print_json(&rows);
    }
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut t = vec![vec![
        "REVISION".into(),
        "IMAGE".into(),
        "REQUIREMENT".into(),
        "BUILD".into(),
        "BY".into(),
        "CHANGE-CAUSE".into(),
    ]];
    for r in &rows {
        let mark = if r.current { "*" } else { "" };
        t.push(vec![
            format!("{}{mark}", r.revision.map(|n| n.to_string()).unwrap_or_else(|| "-".into())),
            dash(&r.image),
            dash(&r.requirement),
            r.build.map(|b| format!("#{b}")).unwrap_or_else(|| "-".into()),
            dash(&r.deployed_by),
            dash(&r.change_cause),
        ]);
    }
    write!(cx.ui.out(), "{}", safe_table(&t))?;
    Ok(())
}
