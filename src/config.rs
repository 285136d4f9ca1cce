//! Layered configuration (SPEC §5), later wins: built-in defaults < the user's
//! `$XDG_CONFIG_HOME/xone/config.toml` < the nearest `.xone.toml` up from the working directory
//! < `XONE_*` environment variables < flags (applied by the commands that take them).

pub mod webhooks;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ui::{Result, XoneError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Str,
    Float,
    Bool,
    Int,
    Duration,
    /// A branch name pattern holding `{env}`.
    EnvPattern,
    /// An http:// or https:// address.
    Url,
}

struct KeyDef {
    key: &'static str,
    ty: Type,
    default: Option<&'static str>,
    doc: &'static str,
}

/// Every key xone reads. `config get|set` refuse others, naming these.
const KEYS: &[KeyDef] = &[
    KeyDef {
        key: "user.name",
        ty: Type::Str,
        default: None,
        doc: "who acts (events, sign-offs); XONE_USER overrides",
    },
    KeyDef {
        key: "gates.coverage",
        ty: Type::Float,
        default: Some("80.0"),
        doc: "minimum line coverage in percent for a build to pass",
    },
    KeyDef {
        key: "gates.tests",
        ty: Type::Bool,
        default: Some("true"),
        doc: "a build's tests must all pass (and be measured)",
    },
    KeyDef {
        key: "gates.pipeline",
        ty: Type::Bool,
        default: Some("true"),
        doc: "a pipeline build's pipeline must succeed",
    },
    KeyDef {
        key: "gates.watch_window",
        ty: Type::Duration,
        default: Some("2h"),
        doc: "how long the post-release watch must run clean",
    },
    KeyDef {
        key: "gates.require_gray",
        ty: Type::Bool,
        default: Some("false"),
        doc: "every app must go through a gray release",
    },
    KeyDef {
        key: "docs.max_bytes",
        ty: Type::Int,
        default: Some("10485760"),
        doc: "largest document or attachment accepted, in bytes",
    },
    KeyDef {
        key: "branch.integration",
        ty: Type::EnvPattern,
        default: Some("release/{env}"),
        doc: "the integration branch of an environment; {env} is its name",
    },
    KeyDef {
        key: "gitlab.url",
        ty: Type::Url,
        default: None,
        doc: "GitLab's address (https://gitlab.example.com); in GitLab CI, CI_SERVER_URL",
    },
    KeyDef {
        key: "jira.url",
        ty: Type::Url,
        default: None,
        doc: "Jira's address (https://jira.example.com, or https://SITE.atlassian.net for Cloud)",
    },
    KeyDef {
        key: "jira.user",
        ty: Type::Str,
        default: None,
        doc: "Jira Cloud: the account's email, sent with its API token; unset for Server/Data Center (a personal access token)",
    },
    KeyDef {
        key: "jira.issue_type",
        ty: Type::Str,
        default: Some("Story"),
        doc: "the Jira issue type requirements are created as",
    },
    KeyDef {
        key: "jira.start_field",
        ty: Type::Str,
        default: None,
        doc: "the Jira field (its name, or its id such as customfield_10015) that holds a requirement's start date; unset: 'Start date' where Jira has it",
    },
    KeyDef {
        key: "jira.end_field",
        ty: Type::Str,
        default: None,
        doc: "the Jira field (its name, or its id such as duedate) that holds a requirement's end date; unset: 'Due date' where Jira has it",
    },
    KeyDef {
        key: "jira.labels",
        ty: Type::Str,
        default: Some("xone"),
        doc: "the labels a requirement's Jira issue carries, comma-separated (empty: none)",
    },
    KeyDef {
        key: "notify.timeout",
        ty: Type::Duration,
        default: Some("2s"),
        doc: "the longest a command waits, in all, for its notifications to be delivered; what is not delivered by then waits for the next command",
    },
    KeyDef {
        key: "gitlab.namespace",
        ty: Type::Str,
        default: None,
        doc: "the GitLab group where `project create --create-repo` makes projects",
    },
    KeyDef {
        key: "build.network",
        ty: Type::Str,
        default: None,
        doc: "the network an image's RUN steps use: none or host (a network's name too with the legacy builder); the engine's default when unset, and an engine without a bridge network needs one of these",
    },
    KeyDef {
        key: "workspace.dir",
        ty: Type::Str,
        default: Some("~/xone"),
        doc: "where `branch checkout` clones GitLab repositories",
    },
    KeyDef {
        key: "remote.timeout",
        ty: Type::Duration,
        default: Some("30s"),
        doc: "how long one request to a remote system may take, connecting included",
    },
    KeyDef {
        key: "remote.retries",
        ty: Type::Int,
        default: Some("3"),
        doc: "extra attempts for a remote request that is safe to repeat (429, 502-504)",
    },
    KeyDef {
        key: "build.start_timeout",
        ty: Type::Duration,
        default: Some("10m"),
        doc: "how long `build --pipeline --wait` waits for a runner to take the pipeline up",
    },
    KeyDef {
        key: "deploy.progress_deadline",
        ty: Type::Duration,
        default: Some("10m"),
        doc: "a rollout that makes no progress this long fails (the Deployment's progressDeadlineSeconds)",
    },
    KeyDef {
        key: "watch.interval",
        ty: Type::Duration,
        default: Some("5s"),
        doc: "how often the post-release watch asks Prometheus",
    },
    KeyDef {
        key: "gray.window",
        ty: Type::Duration,
        default: Some("10m"),
        doc: "how far back a gray release's analyses compare canary with stable",
    },
    KeyDef {
        key: "gray.interval",
        ty: Type::Duration,
        default: Some("1m"),
        doc: "how often `gray watch` evaluates the analyses",
    },
    KeyDef {
        key: "gray.min_samples",
        ty: Type::Int,
        default: Some("10"),
        doc: "the fewest samples of each track an analysis needs to pass or fail (else it holds)",
    },
    KeyDef {
        key: "gray.range",
        ty: Type::Duration,
        default: Some("1m"),
        doc: "the range of rate() in the analyses' PromQL ({range}); at least twice the scrape interval",
    },
    KeyDef {
        key: "gray.pod_label",
        ty: Type::Str,
        default: Some("pod"),
        doc: "the label that names a series' pod on Prometheus",
    },
    KeyDef {
        key: "gray.namespace_label",
        ty: Type::Str,
        default: Some("namespace"),
        doc: "the label that names a series' namespace on Prometheus",
    },
    KeyDef {
        key: "state.busy_timeout",
        ty: Type::Duration,
        default: Some("30s"),
        doc: "how long a command waits for another xone writing the state database",
    },
    KeyDef {
        key: "ui.page_size",
        ty: Type::Int,
        default: Some("50"),
        doc: "rows per page of a listing when stdout is not a terminal",
    },
];

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    User,
    Project,
    Env,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::User => "user",
            Origin::Project => "project",
            Origin::Env => "env",
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub key: &'static str,
    pub value: toml::Value,
    pub origin: Origin,
}

pub struct Config {
    entries: BTreeMap<&'static str, Entry>,
    pub user_file: PathBuf,
    pub project_file: Option<PathBuf>,
    /// The GitLab token `auth login` stored in the user file, read with the rest of it.
    pub stored_gitlab_token: Option<String>,
    /// The Jira token `auth login jira` stored in the user file.
    pub stored_jira_token: Option<String>,
    /// `[jira.status_map]`: stage name → the Jira statuses that stand for it.
    pub jira_status_map: crate::domain::lifecycle::StatusMap,
    /// `[analysis.NAME]` tables of gray analyses: a later layer's table replaces an earlier
    /// one of the same name. Where each came from is kept beside it.
    pub analyses: BTreeMap<String, (toml::Table, PathBuf)>,
    /// `[[notify.webhook]]` of every layer, the user's first.
    pub webhooks: Vec<webhooks::Webhook>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The environment variable that sets `key`: `gates.coverage` is XONE_GATES_COVERAGE (and
/// `user.name` is XONE_USER).
pub fn env_var(key: &str) -> String {
    if key == "user.name" {
        return "XONE_USER".to_string();
    }
    format!("XONE_{}", key.replace('.', "_").to_uppercase())
}

pub fn home_dir() -> PathBuf {
    env_nonempty("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_CONFIG_HOME/xone/config.toml`, else `~/.config/xone/config.toml`.
pub fn user_config_path() -> PathBuf {
    let base = env_nonempty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".config"));
    base.join("xone").join("config.toml")
}

/// Where the state lives: `$XONE_HOME`, else `$XDG_DATA_HOME/xone`, else `~/.local/share/xone`.
pub fn state_dir() -> PathBuf {
    if let Some(h) = env_nonempty("XONE_HOME") {
        return PathBuf::from(h);
    }
    let base = env_nonempty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".local").join("share"));
    base.join("xone")
}

fn find_project_file(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join(".xone.toml")).find(|p| p.is_file())
}

fn def(key: &str) -> Result<&'static KeyDef> {
    if SECRETS.contains(&key) {
        return Err(XoneError::usage(format!("{key} is a secret and is not set through config"))
            .hint("store it with `xone auth login` (kept in the user config, mode 0600) or set XONE_GITLAB_TOKEN"));
    }
    KEYS.iter().find(|d| d.key == key).ok_or_else(|| {
        let known: Vec<&str> = KEYS.iter().map(|d| d.key).collect();
        XoneError::usage(format!("unknown configuration key '{key}'"))
            .hint(format!("known keys: {}", known.join(", ")))
    })
}

/// Checks a duration such as `90s`, `15m`, `2h`, `1h30m`, `7d`; returns seconds.
pub fn parse_duration(s: &str) -> std::result::Result<u64, String> {
    let bad = || {
        format!(
            "invalid duration '{s}': use a number with s, m, h, d or w (e.g. 15m, 2h, 1h30m, 7d)"
        )
    };
    let (mut total, mut num, mut any) = (0u64, String::new(), false);
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(bad());
    }
    // Nothing xone waits for lasts longer; beyond it, times would not add up.
    const LONGEST: u64 = 100 * 365 * 86_400;
    if total > LONGEST {
        return Err(format!("the duration '{s}' is longer than 100 years"));
    }
    Ok(total)
}

/// Checks a server address and drops a trailing slash.
pub fn check_url(raw: &str) -> std::result::Result<String, String> {
    let rest = raw.strip_prefix("https://").or_else(|| raw.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !raw.contains(char::is_whitespace) => {
            Ok(raw.trim_end_matches('/').to_string())
        }
        _ => Err(format!("'{raw}' is not an http:// or https:// address")),
    }
}

/// Names of settings that hold secrets: they live in the user's config (mode 0600) or the
/// environment, never in a `.xone.toml` committed with the code.
const SECRETS: &[&str] = &["gitlab.token", "jira.token"];

/// Turns text (from `config set` or the environment) into a value of the key's type.
fn typed(d: &KeyDef, raw: &str) -> std::result::Result<toml::Value, String> {
    let form = |what: &str| format!("{} takes {what}, not '{raw}'", d.key);
    Ok(match d.ty {
        Type::Str => toml::Value::String(raw.to_string()),
        Type::Float => toml::Value::Float(
            raw.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| form("a number (e.g. 80.0)"))?,
        ),
        Type::Int => toml::Value::Integer(
            raw.parse::<i64>().ok().filter(|i| *i >= 0).ok_or_else(|| form("a whole number"))?,
        ),
        Type::Bool => toml::Value::Boolean(match raw {
            "true" | "yes" | "on" | "1" => true,
            "false" | "no" | "off" | "0" => false,
            _ => return Err(form("true or false")),
        }),
        Type::Duration => {
            parse_duration(raw)?;
            toml::Value::String(raw.to_string())
        }
        Type::EnvPattern => {
            crate::domain::names::integration_branch(raw, "test")?;
            toml::Value::String(raw.to_string())
        }
        Type::Url => toml::Value::String(check_url(raw).map_err(|e| format!("{}: {e}", d.key))?),
    })
}

/// Accepts a value read from a file if it has the key's type.
fn check_file_value(d: &KeyDef, v: &toml::Value) -> std::result::Result<toml::Value, String> {
    match (d.ty, v) {
        (Type::Str, toml::Value::String(_)) | (Type::Bool, toml::Value::Boolean(_)) => {
            Ok(v.clone())
        }
        (Type::Float, toml::Value::Float(_)) => Ok(v.clone()),
        (Type::Float, toml::Value::Integer(i)) => Ok(toml::Value::Float(*i as f64)),
        (Type::Int, toml::Value::Integer(i)) if *i >= 0 => Ok(v.clone()),
        (Type::Duration, toml::Value::String(s)) => parse_duration(s).map(|_| v.clone()),
        (Type::EnvPattern, toml::Value::String(s)) => {
            crate::domain::names::integration_branch(s, "test").map(|_| v.clone())
        }
        (Type::Url, toml::Value::String(s)) => {
            check_url(s).map(toml::Value::String).map_err(|e| format!("{}: {e}", d.key))
        }
        _ => Err(format!("{} has the wrong type ({})", d.key, v.type_str())),
    }
}

/// Reads a TOML file; a syntax error names the file, line and column. A file that is not a
/// readable text file is a usage error naming it, as a syntax error is.
pub fn read_table(path: &Path) -> Result<Option<toml::Table>> {
    let unusable = |what: &str| {
        XoneError::usage(format!("the configuration file {} {what}", path.display()))
            .hint(format!("make {} a TOML text file, or move it aside", path.display()))
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if path.is_dir() => return Err(unusable("is a directory").cause(e)),
        Err(e) => return Err(unusable("cannot be read").cause(e)),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        unusable("is not UTF-8 text").cause(format!("invalid bytes at offset {at}"))
    })?;
    text.parse::<toml::Table>().map(Some).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        XoneError::usage(format!("malformed configuration in {}:{line}:{col}", path.display()))
            .cause(e.message())
            .hint(format!("fix line {line}, column {col} of {}", path.display()))
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

fn lookup<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    let (section, name) = key.split_once('.')?;
    table.get(section)?.as_table()?.get(name)
}

impl Config {
    pub fn load() -> Result<Config> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let user_file = user_config_path();
        let project_file = find_project_file(&cwd);
        let mut entries = BTreeMap::new();
        for d in KEYS {
            if let Some(raw) = d.default {
                let value = typed(d, raw).map_err(XoneError::internal)?;
                entries.insert(d.key, Entry { key: d.key, value, origin: Origin::Default });
            }
        }
        let layers =
            [(Some(user_file.clone()), Origin::User), (project_file.clone(), Origin::Project)];
        let mut stored_gitlab_token = None;
        let mut stored_jira_token = None;
        let mut analyses = BTreeMap::new();
        let mut jira_status_map = crate::domain::lifecycle::StatusMap::new();
        let mut hooks = Vec::new();
        for (path, origin) in layers {
            let Some(path) = path else { continue };
            let Some(table) = read_table(&path)? else {
                continue;
            };
            hooks.extend(webhooks::read(&table, &path, &origin)?);
            if let Some(map) = table.get("jira").and_then(|j| j.get("status_map")) {
                let bad = |what: String| {
                    XoneError::usage(format!("bad setting in {}", path.display()))
                        .cause(what)
                        .hint("[jira.status_map] maps a stage to a Jira status or a list of them: testing = [\"QA\", \"In QA\"]")
                };
                let map =
                    map.as_table().ok_or_else(|| bad("jira.status_map is not a table".into()))?;
                for (stage, names) in map {
                    if !crate::domain::Status::ALL.iter().any(|s| s.as_str() == stage) {
                        return Err(bad(format!("jira.status_map: '{stage}' is not a stage")));
                    }
                    let names: Vec<String> = match names {
                        toml::Value::String(s) => vec![s.clone()],
                        toml::Value::Array(a) => {
                            a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
                        }
                        _ => {
                            return Err(bad(format!(
                                "jira.status_map.{stage} is not a status name"
                            )))
                        }
                    };
                    jira_status_map.insert(stage.clone(), names);
                }
            }
            if let Some(section) = table.get("analysis") {
                let bad = |what: String| {
                    XoneError::usage(format!("bad setting in {}", path.display()))
                        .cause(what)
                        .hint("each analysis is a table: [analysis.NAME] with query = \"PromQL\"")
                };
                let section = section
                    .as_table()
                    .ok_or_else(|| bad("analysis is not a table of analyses".into()))?;
                for (name, t) in section {
                    let t = t
                        .as_table()
                        .ok_or_else(|| bad(format!("analysis.{name} is not a table")))?;
                    analyses.insert(name.clone(), (t.clone(), path.clone()));
                }
            }
            if origin == Origin::User {
                stored_gitlab_token = lookup(&table, "gitlab.token")
                    .and_then(|v| v.as_str())
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                stored_jira_token = lookup(&table, "jira.token")
                    .and_then(|v| v.as_str())
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
            }
            if origin == Origin::Project {
                if let Some(secret) = SECRETS.iter().find(|k| lookup(&table, k).is_some()) {
                    return Err(XoneError::usage(format!(
                        "{} holds {secret}: secrets never live in .xone.toml",
                        path.display()
                    ))
                    .hint("remove it from that file (and from its history if it was committed); use `xone auth login` or XONE_GITLAB_TOKEN"));
                }
            }
            for d in KEYS {
                if let Some(v) = lookup(&table, d.key) {
                    let value = check_file_value(d, v).map_err(|e| {
                        XoneError::usage(format!("bad setting in {}", path.display())).cause(e)
                    })?;
                    entries.insert(d.key, Entry { key: d.key, value, origin: origin.clone() });
                }
            }
        }
        for d in KEYS {
            let var = format!("XONE_{}", d.key.replace('.', "_").to_uppercase());
            let raw = env_nonempty(&var)
                .or_else(|| (d.key == "user.name").then(|| env_nonempty("XONE_USER")).flatten());
            if let Some(raw) = raw {
                let value = typed(d, &raw)
                    .map_err(|e| XoneError::usage(format!("bad value in ${var}")).cause(e))?;
                entries.insert(d.key, Entry { key: d.key, value, origin: Origin::Env });
            }
        }
        // Inside GitLab CI the server is known without configuration.
        if !entries.contains_key("gitlab.url") {
            if let Some(url) = env_nonempty("CI_SERVER_URL").and_then(|u| check_url(&u).ok()) {
                let value = toml::Value::String(url);
                entries
                    .insert("gitlab.url", Entry { key: "gitlab.url", value, origin: Origin::Env });
            }
        }
        Ok(Config {
            entries,
            user_file,
            project_file,
            stored_gitlab_token,
            stored_jira_token,
            jira_status_map,
            analyses,
            webhooks: hooks,
        })
    }

    pub fn get(&self, key: &str) -> Result<Option<&Entry>> {
        let d = def(key)?;
        Ok(self.entries.get(d.key))
    }

    pub fn known_keys() -> impl Iterator<Item = (&'static str, &'static str)> {
        KEYS.iter().map(|d| (d.key, d.doc))
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.entries.get(key).and_then(|e| e.value.as_str())
    }

    /// A duration setting. Values are checked when they are loaded, and every duration key
    /// has a default, so this cannot fail for a key of `KEYS`.
    pub fn duration(&self, key: &str) -> std::time::Duration {
        let secs = self.str(key).and_then(|s| parse_duration(s).ok());
        debug_assert!(secs.is_some(), "{key} is not a duration key");
        std::time::Duration::from_secs(secs.unwrap_or(0))
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.entries.get(key).and_then(|e| e.value.as_integer())
    }

    /// Sets `key` in a TOML file (the user's config, or a project's `.xone.toml`), keeping the
    /// rest of the file. The value is checked first; a malformed file is left as it was.
    pub fn set_in_file(path: &Path, key: &str, raw: &str) -> Result<toml::Value> {
        let d = def(key)?;
        let value = typed(d, raw).map_err(XoneError::usage)?;
        // Checked (and a syntax error reported) the same way as when loading.
        read_table(path)?;
        // Edited in place, so the file's comments, order and layout survive.
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
            XoneError::usage(format!("malformed configuration in {}", path.display())).cause(e)
        })?;
        let (section, name) = d.key.split_once('.').unwrap_or(("", d.key));
        let table = doc.entry(section).or_insert_with(toml_edit::table);
        let Some(table) = table.as_table_like_mut() else {
            return Err(XoneError::usage(format!(
                "{} has '{section}' as a value, not a table",
                path.display()
            ))
            .hint(format!("rename or remove '{section}' in that file")));
        };
        let mut new = match &value {
            toml::Value::String(s) => toml_edit::Value::from(s.as_str()),
            toml::Value::Float(f) => toml_edit::Value::from(*f),
            toml::Value::Integer(i) => toml_edit::Value::from(*i),
            toml::Value::Boolean(b) => toml_edit::Value::from(*b),
            other => return Err(XoneError::internal(format!("unexpected value {other}"))),
        };
        match table.get_mut(name).and_then(|item| item.as_value_mut()) {
            // Keep the comment beside the old value.
            Some(old) => {
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            None => {
                table.insert(name, toml_edit::Item::Value(new));
            }
        }
        write_private(path, doc.to_string().as_bytes())?;
        Ok(value)
    }
}

impl Config {
    /// Removes `key` from the file at `path`, keeping the rest of it; whether it was there.
    pub fn unset_in_file(path: &Path, key: &str) -> Result<bool> {
        let d = def(key)?;
        let (section, name) = d.key.split_once('.').unwrap_or(("", d.key));
        set_secret(path, section, name, None)
    }
}

/// Sets (or with `None` removes) `section.name` in the user's config file, keeping the rest
/// of the file; for secrets, which `set_in_file` refuses. Returns whether anything changed.
pub fn set_secret(path: &Path, section: &str, name: &str, value: Option<&str>) -> Result<bool> {
    read_table(path)?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| {
        XoneError::usage(format!("malformed configuration in {}", path.display())).cause(e)
    })?;
    let changed = match value {
        Some(v) => {
            let table = doc.entry(section).or_insert_with(toml_edit::table);
            let Some(table) = table.as_table_like_mut() else {
                return Err(XoneError::usage(format!(
                    "{} has '{section}' as a value, not a table",
                    path.display()
                )));
            };
            table.insert(name, toml_edit::value(v));
            true
        }
        None => doc
            .get_mut(section)
            .and_then(|t| t.as_table_like_mut())
            .is_some_and(|t| t.remove(name).is_some()),
    };
    if changed {
        write_private(path, doc.to_string().as_bytes())?;
    }
    Ok(changed)
}

/// Writes a file whole or not at all (temporary file, then rename), readable by its owner only:
/// the user config may hold tokens.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| XoneError::internal(format!("cannot create {}", dir.display())).cause(e))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("xone"),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        XoneError::internal(format!("cannot write {}", path.display())).cause(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1w2d"), Ok(9 * 86_400));
        assert!(parse_duration("99999999999999w").is_err());
        assert!(parse_duration("101000000000s").unwrap_err().contains("100 years"));
        for bad in ["", "2", "h", "2x", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_values_explain_the_form() {
        let cov = def("gates.coverage").unwrap();
        assert_eq!(typed(cov, "75").unwrap(), toml::Value::Float(75.0));
        assert!(typed(cov, "lots").unwrap_err().contains("a number"));
        let gray = def("gates.require_gray").unwrap();
        assert_eq!(typed(gray, "true").unwrap(), toml::Value::Boolean(true));
        assert!(def("gates.nope").is_err());
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("a = 1\nb = = 2\n", 10), (2, 5));
    }
}
