//! Notifications: the events a team hears about, by stable name; which targets take which
//! (a prefix such as `deploy`, or a full name); the one-line summary a chat shows; and a
//! webhook URL as it may be printed (its path and query can hold a token, so they never are).

use serde_json::Value;

/// Every event xone sends, by name.
pub const EVENTS: &[&str] = &[
    "requirement.created",
    "requirement.advanced",
    "requirement.rejected",
    "requirement.cancelled",
    "requirement.signed_off",
    "review.verdict",
    "build.finished",
    "deploy.finished",
    "rollback.finished",
    "gray.started",
    "gray.stepped",
    "gray.paused",
    "gray.resumed",
    "gray.promoted",
    "gray.aborted",
    "watch.finished",
    "notify.test",
];

/// Whether `filter` (an event's full name, or the part before its dot) names any event.
pub fn check_filter(filter: &str) -> Result<(), String> {
    if EVENTS.iter().any(|e| names(filter, e)) {
        return Ok(());
    }
    let mut groups: Vec<&str> = EVENTS.iter().filter_map(|e| e.split('.').next()).collect();
    groups.dedup();
    Err(format!(
        "'{filter}' names no event: use one of {}, or a full name such as deploy.finished",
        groups.join(", ")
    ))
}

fn names(filter: &str, event: &str) -> bool {
    event == filter || event.strip_prefix(filter).is_some_and(|rest| rest.starts_with('.'))
}

/// Whether a target with these filters takes `event` (no filters: every event).
pub fn wanted(filters: &[String], event: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| names(f, event))
}

/// A webhook URL as it may be shown: its scheme and host; the rest (where tokens live) and
/// any credentials are masked.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "***".to_string(),
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    let host = host.rsplit_once('@').map(|(_, h)| h).unwrap_or(host);
    if host_end == rest.len() || rest[host_end..] == *"/" {
        return format!("{scheme}://{host}/");
    }
    format!("{scheme}://{host}/***")
}

/// Replaces every occurrence of each URL in `text` by its masked form: for error messages
/// whose causes might quote a URL.
pub fn mask_in(text: &str, urls: &[&str]) -> String {
    let mut out = text.to_string();
    for u in urls.iter().filter(|u| u.len() > 8) {
        out = out.replace(u, &mask_url(u));
    }
    out
}

/// The one line a person reads in a chat: key and title, what happened, who, and the link
/// where there is one.
pub fn summary(n: &Value) -> String {
    let s = |k: &str| n[k].as_str().unwrap_or_default();
    let event = s("event");
    let head = match (n["key"].as_str(), n["title"].as_str()) {
        (Some(k), Some(t)) => format!("{k} {t}: "),
        (Some(k), None) => format!("{k}: "),
        _ => match n["project"].as_str() {
            Some(p) if !p.is_empty() => format!("{p}: "),
            _ => String::new(),
        },
    };
    let what = match event {
        "requirement.created" => "created".to_string(),
        "requirement.advanced" => {
            let forced = if n["forced"] == true { " (gate forced)" } else { "" };
            format!("{} → {}{forced}", s("from"), s("to"))
        }
        "requirement.rejected" => format!("rejected back to developing: {}", s("reason")),
        "requirement.cancelled" => format!("cancelled: {}", s("reason")),
        "requirement.signed_off" => format!("signed off in {}", s("stage")),
        "review.verdict" => format!("{} review #{}: {}", s("kind"), n["review"], s("verdict")),
        "build.finished" => {
            let gates = n["failed_gates"].as_array().map(|g| g.len()).unwrap_or(0);
            let failed =
                if gates > 0 { format!(", {gates} gate(s) failed") } else { String::new() };
            format!("build #{} of {} {}{failed}", n["build"], s("app"), s("status"))
        }
        "deploy.finished" | "rollback.finished" => {
            let kind = if event == "deploy.finished" { "deploy" } else { "rollback" };
            format!("{kind} of {} to {} {}: {}", s("app"), s("env"), s("status"), s("image"))
        }
        e if e.starts_with("gray.") => format!(
            "gray release of {} in {} {} (step {} of {})",
            s("app"),
            s("env"),
            &e["gray.".len()..],
            n["step"],
            n["steps"]
        ),
        "watch.finished" => {
            let why = n["detail"].as_str().map(|d| format!(": {d}")).unwrap_or_default();
            format!("release watch of {} in {} {}{why}", s("app"), s("env"), s("status"))
        }
        "notify.test" => "a test notification from xone".to_string(),
        other => other.to_string(),
    };
    let who = match s("actor") {
        "" => String::new(),
        a => format!(" by {a}"),
    };
    let link = n["url"]
        .as_str()
        .or(n["ci"]["pipeline_url"].as_str())
        .map(|u| format!(" <{u}>"))
        .unwrap_or_default();
    format!("{head}{what}{who}{link}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_are_names_or_their_first_part() {
        assert!(check_filter("deploy").is_ok() && check_filter("gray.promoted").is_ok());
        let e = check_filter("deploys").unwrap_err();
        assert!(e.contains("'deploys' names no event") && e.contains("requirement"), "{e}");
        assert!(check_filter("gray.prom").is_err(), "a prefix must end at a dot");
        let f = vec!["requirement".to_string(), "deploy.finished".to_string()];
        assert!(wanted(&f, "requirement.advanced") && wanted(&f, "deploy.finished"));
        assert!(!wanted(&f, "rollback.finished") && wanted(&[], "rollback.finished"));
    }

    #[test]
    fn a_url_shows_its_host_only() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/***"
        );
        assert_eq!(
            mask_url("http://user:pw@127.0.0.1:8080/h?token=1"),
            "http://127.0.0.1:8080/***"
        );
        assert_eq!(mask_url("https://ci.example.com"), "https://ci.example.com/");
        let said = mask_in(
            "POST https://x.example/secret/path failed",
            &["https://x.example/secret/path"],
        );
        assert_eq!(said, "POST https://x.example/*** failed");
    }

    #[test]
    fn a_summary_reads_at_a_glance() {
        let n = json!({
            "event": "requirement.advanced", "key": "PAY-1", "title": "Refund orders",
            "from": "testing", "to": "gray", "forced": true, "actor": "alice",
            "ci": { "pipeline_url": "https://gitlab.example.com/pay/web/-/pipelines/7" },
        });
        assert_eq!(
            summary(&n),
            "PAY-1 Refund orders: testing → gray (gate forced) by alice <https://gitlab.example.com/pay/web/-/pipelines/7>"
        );
        let d = json!({
            "event": "deploy.finished", "project": "PAY", "app": "web", "env": "prod",
            "status": "rolled-back", "image": "reg/web:2", "actor": "bob",
        });
        assert_eq!(summary(&d), "PAY: deploy of web to prod rolled-back: reg/web:2 by bob");
    }
}
