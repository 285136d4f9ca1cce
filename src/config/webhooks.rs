//! `[[notify.webhook]]`: where notifications go. Unlike other settings, the targets of every
//! layer add up (the user's own and a project's `.xone.toml`). A webhook URL is itself a
//! secret, so in a `.xone.toml`, which is committed with the code, the URL and the signing key
//! must be `env:NAME` references; a literal there is refused, as tokens are.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{check_url, Origin};
use crate::domain::notice::{check_filter, mask_url};
use crate::ui::{Result, XoneError};

/// What a target is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Slack's incoming-webhook JSON (`{"text": …}`), also Mattermost's and Rocket.Chat's.
    Slack,
    /// One JSON object per event.
    Json,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Slack => "slack",
            Format::Json => "json",
        })
    }
}

/// One target, as configured.
#[derive(Clone, Debug, Serialize)]
pub struct Webhook {
    /// As written: a URL (only in the user's config) or `env:NAME`.
    #[serde(skip)]
    pub url: String,
    pub format: Format,
    /// Event names or their first parts; empty: every event.
    pub events: Vec<String>,
    /// Project keys; empty: every project.
    pub projects: Vec<String>,
    /// Where the signing key comes from (`env:NAME`; a literal only in the user's config).
    #[serde(skip)]
    pub secret: Option<String>,
    /// The file that configures it.
    pub file: PathBuf,
}

const KEYS: &[&str] = &["url", "format", "events", "projects", "secret"];

impl Webhook {
    /// The URL to post to: the literal, or the environment variable it names.
    pub fn resolve_url(&self) -> Result<String> {
        let url = resolve(&self.url, "url", &self.file)?;
        check_url(&url).map_err(|e| {
            XoneError::usage(format!("a notify.webhook of {} has a bad url", self.file.display()))
                .cause(e.replace(&url, &mask_url(&url)))
        })
    }

    /// The signing key, if there is one.
    pub fn resolve_secret(&self) -> Result<Option<String>> {
        self.secret.as_deref().map(|s| resolve(s, "secret", &self.file)).transpose()
    }

    /// How the target is named where people read: its masked URL, or the variable that holds
    /// it.
    pub fn shown(&self) -> String {
        match self.url.strip_prefix("env:") {
            Some(var) => format!("${var}"),
            None => mask_url(&self.url),
        }
    }

    /// What names the target across commands (its delivery position is kept under it): the
    /// file that configures it, its URL as written and its format, hashed, so no secret is
    /// stored (`env:HOOK` in two projects' files is two targets).
    pub fn id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!(
            "{}\n{}\n{:?}",
            self.file.display(),
            self.url,
            self.format
        ));
        digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether the target takes this event of this project.
    pub fn takes(&self, event: &str, project: Option<&str>) -> bool {
        crate::domain::notice::wanted(&self.events, event)
            && (self.projects.is_empty()
                || project.is_some_and(|p| self.projects.iter().any(|q| q == p)))
    }
}

fn resolve(spec: &str, what: &str, file: &Path) -> Result<String> {
    let Some(var) = spec.strip_prefix("env:") else { return Ok(spec.to_string()) };
    std::env::var(var).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        XoneError::usage(format!(
            "the notify.webhook {what} of {} comes from ${var}, which is not set",
            file.display()
        ))
        .hint(format!("export {var}=…, or remove that webhook"))
    })
}

/// The webhooks a configuration file's table declares.
pub fn read(table: &toml::Table, file: &Path, origin: &Origin) -> Result<Vec<Webhook>> {
    let Some(list) = table.get("notify").and_then(|n| n.get("webhook")) else {
        return Ok(Vec::new());
    };
    let bad = |what: String| {
        XoneError::usage(format!("bad notify.webhook in {}", file.display())).cause(what).hint(
            "each [[notify.webhook]] has url = \"https://…\" (in a .xone.toml: \"env:NAME\"), and may have format = \"slack\"|\"json\", events = [\"deploy\", …], projects = [\"PAY\"], secret = \"env:NAME\"",
        )
    };
    let list = list.as_array().ok_or_else(|| {
        bad("notify.webhook is not a list of tables: write [[notify.webhook]]".into())
    })?;
    let mut out = Vec::new();
    for (n, t) in list.iter().enumerate() {
        let at = format!("notify.webhook #{}", n + 1);
        let t = t.as_table().ok_or_else(|| bad(format!("{at} is not a table")))?;
        if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(bad(format!("{at} has an unknown key '{k}' (known: {})", KEYS.join(", "))));
        }
        let text = |k: &str| -> Result<Option<String>> {
            match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("{at}: {k} is not text"))),
            }
        };
        let list_of = |k: &str| -> Result<Vec<String>> {
            match t.get(k) {
                None => Ok(Vec::new()),
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            bad(format!("{at}: {k} holds something other than text"))
                        })
                    })
                    .collect(),
                Some(_) => Err(bad(format!("{at}: {k} is not a list"))),
            }
        };
        let url = text("url")?.ok_or_else(|| bad(format!("{at} has no url")))?;
        let secret = text("secret")?;
        for (what, value) in [("url", Some(&url)), ("secret", secret.as_ref())] {
            let Some(value) = value else { continue };
            match value.strip_prefix("env:") {
                Some(var)
                    if var.is_empty()
                        || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    return Err(bad(format!(
                        "{at}: {what} names no environment variable ('{value}')"
                    )));
                }
                Some(_) => {}
                None if *origin == Origin::Project => {
                    return Err(XoneError::usage(format!(
                        "{} holds a webhook {what} in the clear: a .xone.toml is committed with the code, so it never holds secrets",
                        file.display()
                    ))
                    .hint(format!("write {what} = \"env:NAME\" there and export NAME, or move the webhook to your own config ({})", super::user_config_path().display())));
                }
                None if what == "url" => {
                    check_url(value).map_err(|e| {
                        bad(format!("{at}: {}", e.replace(value.as_str(), &mask_url(value))))
                    })?;
                }
                None => {}
            }
        }
        let format = match text("format")?.as_deref() {
            None | Some("json") => Format::Json,
            Some("slack") => Format::Slack,
            Some(other) => {
                return Err(bad(format!("{at}: format '{other}' is neither slack nor json")))
            }
        };
        let events = list_of("events")?;
        for e in &events {
            check_filter(e).map_err(|why| bad(format!("{at}: {why}")))?;
        }
        let projects = list_of("projects")?;
        for p in &projects {
            p.parse::<crate::domain::ProjectKey>().map_err(|why| bad(format!("{at}: {why}")))?;
        }
        out.push(Webhook { url, format, events, projects, secret, file: file.to_path_buf() });
    }
    Ok(out)
}
