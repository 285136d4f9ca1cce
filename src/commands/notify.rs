//! `xone notify`: the webhooks that hear about a requirement's thread.

use clap::Subcommand;

use super::Ctx;
use crate::ops::notify;
use crate::ui::{safe, table, Kind, Result, XoneError};

/// Events and what each carries, for the manual page.
const EVENTS_HELP: &str = "\
Targets are [[notify.webhook]] tables; those of the user's config and of the project's \
.xone.toml add up. Each has url (in a .xone.toml only as \"env:NAME\"), format = \"slack\" \
(Slack's incoming-webhook JSON {\"text\": …}, also Mattermost and Rocket.Chat) or \"json\" (the \
default), events (names, or their first part such as \"deploy\"; default every event), \
projects (default every project) and secret (\"env:NAME\"; a literal only in the user's \
config). Events are delivered at the end of the command that made them, or of the next one \
that changes something or talks to a remote system (never a list, a show or a completion), \
or `xone sync`: in order, once per target, within notify.timeout (default 2s) in all; a \
target that does not take them is said on stderr and they wait.

A json target is posted one object per event, with the headers X-Xone-Event (its name), \
X-Xone-Delivery (an id that stays the same when the event is sent again) and, with a secret, \
X-Xone-Signature-256: sha256=HEX (HMAC-SHA256 of the body, as GitHub signs its webhooks). \
Every object has event, at (RFC 3339 UTC), actor, project, key and title (where there is a \
requirement), and in a GitLab CI job ci: {pipeline_url, job, job_url}. The events and their \
own fields:
  requirement.created
  requirement.advanced     from, to, forced, reason, detail
  requirement.rejected     from, to, reason
  requirement.cancelled    from, reason
  requirement.signed_off   stage, note
  review.verdict           review, kind, verdict, note, open_comments
  build.finished           build, app, ref, sha, status, failed_gates, forced, coverage, tests, image, url
  deploy.finished          deploy, app, env, namespace, image, status (succeeded, failed, rolled-back, applied, interrupted), revision, detail
  rollback.finished        the same as deploy.finished
  gray.started|stepped|paused|resumed|promoted|aborted
                           app, env, namespace, phase, step, steps, instances, canary_image, stable_image, forced, detail, started_at
  watch.finished           app, env, status (passed, failed), detail, revision, image, window_secs
  notify.test              (sent by `xone notify test` only)";

#[derive(Subcommand, Debug)]
#[command(after_long_help = EVENTS_HELP)]
pub enum NotifyCommand {
    /// Send a notify.test event to every target now, and say how each took it
    #[command(after_long_help = "\
Exit 6 if any target did not take it (each is named, its URL masked), 4 when no target is \
configured. JSON: [{\"target\", \"format\", \"file\", \"ok\", \"error\"}]")]
    Test,
    /// List the targets and the events that wait for each
    #[command(after_long_help = "\
Reads the state database only. JSON: [{\"target\", \"format\", \"file\", \"waiting\": [{\"id\", \
\"event\", \"key\", \"at\", \"delivery\"}], \"error\"}], the error being why the last delivery \
failed.")]
    Status,
}

pub fn run(cx: &mut Ctx, c: NotifyCommand) -> Result<()> {
    match c {
        NotifyCommand::Test => {
            let actor = cx.actor()?;
            let cfg = cx.config()?;
            let hooks = cfg.webhooks.clone();
            let timeout = cfg.duration("notify.timeout");
            if hooks.is_empty() {
                return Err(no_targets());
            }
            let tried = notify::test(&hooks, &actor, timeout);
            if cx.ui.json {
                cx.ui.print_json(&tried)?;
            } else {
                for t in &tried {
                    match &t.error {
                        None => cx.ui.line(format!("{} ({}): ok", t.target, t.format))?,
                        Some(e) => {
                            cx.ui.line(format!("{} ({}): failed, {e}", t.target, t.format))?
                        }
                    }
                }
            }
            let failed: Vec<&notify::Tried> = tried.iter().filter(|t| !t.ok).collect();
            if failed.is_empty() {
                return Ok(());
            }
            let mut e = XoneError::new(
                Kind::Remote,
                format!(
                    "{} of {} notification target(s) did not take the test",
                    failed.len(),
                    tried.len()
                ),
            );
            for t in failed {
                e = e.cause(format!("{}: {}", t.target, t.error.clone().unwrap_or_default()));
            }
            Err(e.hint("check the URL (and its env: variable), and that the receiver is up"))
        }
        NotifyCommand::Status => {
            let hooks = cx.config()?.webhooks.clone();
            let store = cx.store()?;
            let list = notify::status(&hooks, &store)?;
            if cx.ui.json {
                return cx.ui.print_json(&list);
            }
            if list.is_empty() {
                cx.ui.status("no notification target is configured");
                return Ok(());
            }
            let mut rows =
                vec![["TARGET", "FORMAT", "WAITING", "LAST ERROR"].map(String::from).to_vec()];
            for w in &list {
                rows.push(vec![
                    w.target.clone(),
                    w.format.to_string(),
                    w.waiting.len().to_string(),
                    w.error.clone().unwrap_or_default(),
                ]);
            }
            write!(cx.ui.out(), "{}", safe(&table(&rows)))?;
            Ok(())
        }
    }
}

fn no_targets() -> XoneError {
    XoneError::gate("no notification target is configured").hint(
        "add one to your config: [[notify.webhook]] with url = \"https://…\" (see xone notify --help)",
    )
}
