//! `xone doctor`: whether every configured system can be reached, and how fast.

use clap::Args;

use super::Ctx;
use crate::ops::doctor::{self, Check};
use crate::ui::{safe, table, Kind, Result, XoneError};

#[derive(Args, Debug)]
#[command(after_long_help = "\
Checks every configured system: the state database, GitLab (reachability, version, whose \
token, latency), Jira (version, deployment, whose token), the Docker engine (DOCKER_HOST or the default socket), and each environment's \
Kubernetes context and namespace and Prometheus, and each notification target (its host takes \
a connection; nothing is posted). Exit 6 when a configured remote system fails. \
JSON: [{\"system\", \"target\", \"status\": ok|failed|not configured, \"version\", \"user\", \"latency_ms\", \"detail\"}]")]
pub struct DoctorArgs {}

pub fn run(cx: &mut Ctx, _a: DoctorArgs) -> Result<()> {
    let store = cx.store();
    let forges = cx.forges()?;
    let remote = cx.remote()?;
    let jira = cx.jira()?;
    let mut checks = doctor::checks(store.as_ref().map_err(Clone::clone), &forges, &jira, &remote)?;
    checks.extend(doctor::notify_checks(&cx.config()?.webhooks.clone()));
    if cx.ui.json {
        cx.ui.print_json(&checks)?;
    } else {
        let mut rows =
            vec![vec!["SYSTEM".into(), "STATUS".into(), "TARGET".into(), "DETAIL".into()]];
        for c in &checks {
            let status = match c.status {
                "ok" => cx.ui.green("ok"),
                "failed" => cx.ui.red("failed"),
                s => cx.ui.dim(s),
            };
            let mut detail = c.detail.clone();
            if let Some(v) = &c.version {
                detail = format!("version {v}, {} ms; {detail}", c.latency_ms.unwrap_or(0));
            }
            if let Some(u) = &c.user {
                detail = format!("{detail}, user {u}");
            }
            rows.push(vec![c.system.into(), status, safe(&c.target).into(), safe(&detail).into()]);
        }
        write!(cx.ui.out(), "{}", table(&rows))?;
    }
    let bad: Vec<&Check> = checks.iter().filter(|c| c.status == "failed").collect();
    match bad.first() {
        None => Ok(()),
        Some(first) => {
            let kind = if first.system == "state" { Kind::Internal } else { Kind::Remote };
            Err(XoneError::new(kind, format!("{} of {} checks failed", bad.len(), checks.len()))
                .cause(format!("{}: {}", first.system, first.detail)))
        }
    }
}
