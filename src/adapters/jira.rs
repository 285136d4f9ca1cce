//! Jira through its REST API: Server and Data Center (REST v2, a personal access token sent as
//! a bearer token) and Cloud (REST v3, the account's email and an API token sent as basic
//! authentication). Which one is meant follows from the settings: `jira.user` (an email) is
//! Cloud's way to log in, and without it xone speaks to a Server.
//!
//! Calls go through `http::Api` (timeouts, retries of what is safe to repeat, `Retry-After`);
//! a refused token is said in Jira's terms, naming the user and the deployment, never the
//! token.

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::http::{encode, Api, Secret, Settings as Http};
use crate::config::Config;
use crate::ui::{Kind, Result, Tag, XoneError};

/// Where the token comes from, for `auth status`.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: String,
    pub source: String,
}

/// How to reach Jira, as the settings say.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: Option<String>,
    /// Cloud's login email; `None` for a Server.
    pub user: Option<String>,
    pub token: Option<Token>,
    pub http: Http,
    /// `[jira.status_map]`: the Jira statuses that stand for each stage.
    pub status_map: crate::domain::lifecycle::StatusMap,
    /// `jira.issue_type`: what requirements are created as.
    pub issue_type: String,
    /// `jira.start_field` and `jira.end_field`: the fields of the dates, by name or id, when
    /// set (unset: "Start date" and "Due date", where Jira has them).
    pub start_field: Option<String>,
    pub end_field: Option<String>,
    /// `jira.labels`: the labels every requirement's issue carries.
    pub labels: Vec<String>,
}

impl Settings {
    /// The settings of `config`: `jira.url`, `jira.user`, and the token from
    /// `XONE_JIRA_TOKEN`, else the user config's `[jira] token` (written by `auth login jira`).
    pub fn from(config: &Config, http: Http) -> Settings {
        let env = std::env::var("XONE_JIRA_TOKEN").ok().filter(|t| !t.trim().is_empty());
        let token = match env {
            Some(value) => Some(Token {
                value: value.trim().to_string(),
                source: "env:XONE_JIRA_TOKEN".into(),
            }),
            None => config.stored_jira_token.clone().map(|value| Token {
                value,
                source: format!("file:{}", config.user_file.display()),
            }),
        };
        Settings {
            url: config.str("jira.url").map(str::to_string),
            user: config.str("jira.user").map(str::to_string),
            token,
            http,
            status_map: config.jira_status_map.clone(),
            issue_type: config.str("jira.issue_type").unwrap_or("Story").to_string(),
            start_field: config.str("jira.start_field").map(str::to_string),
            end_field: config.str("jira.end_field").map(str::to_string),
            labels: config
                .str("jira.labels")
                .unwrap_or("xone")
                .split(',')
                .map(|l| l.trim().replace(char::is_whitespace, "-"))
                .filter(|l| !l.is_empty())
                .collect(),
        }
    }
}

/// The text of a field as either API version gives it: a string on v2; on v3 a document (ADF),
/// whose text runs are joined: each block (a paragraph, a heading, a list item, a code block, a
/// quote) on lines of its own, a hard break as a newline, a heading marked as in Markdown.
pub fn plain_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Object(m) => {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or_default();
                let block = matches!(
                    kind,
                    "paragraph" | "heading" | "listItem" | "codeBlock" | "blockquote" | "rule"
                );
                // A list item's paragraph goes on the item's own line.
                if block && !out.is_empty() && !out.ends_with('\n') && !out.ends_with("- ") {
                    out.push('\n');
                }
                match kind {
                    "hardBreak" => out.push('\n'),
                    "heading" => {
                        let level = m["attrs"]["level"].as_u64().unwrap_or(1).clamp(1, 6) as usize;
                        out.push_str(&"#".repeat(level));
                        out.push(' ');
                    }
                    "listItem" => out.push_str("- "),
                    "rule" => out.push_str("---"),
                    _ => {}
                }
                if let Some(Value::String(t)) = m.get("text") {
                    out.push_str(t);
                }
                if let Some(c) = m.get("content") {
                    walk(c, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

/// The ids of the start and end date fields among `fields` (as `Jira::fields` lists them).
/// A field set in the config that Jira does not have is exit 4; an unset one is the default
/// name's field where Jira has one, else `None` (that date is not written).
pub fn date_fields(
    s: &Settings,
    fields: &[(String, String)],
) -> Result<(Option<String>, Option<String>)> {
    let one = |set: &Option<String>, default: &str, setting: &str| match set {
        Some(name) => field_id(fields, name, setting).map(Some),
        None => Ok(field_id(fields, default, setting).ok()),
    };
    Ok((
        one(&s.start_field, "Start date", "jira.start_field")?,
        one(&s.end_field, "Due date", "jira.end_field")?,
    ))
}

/// The id of the field `wanted` names (by its id, or its name ignoring case) among `fields`;
/// none is exit 4 naming it, the setting it came from, and the nearest names there are.
pub fn field_id(fields: &[(String, String)], wanted: &str, setting: &str) -> Result<String> {
    let w = wanted.trim();
    if let Some((id, _)) = fields.iter().find(|(id, name)| id == w || name.eq_ignore_ascii_case(w))
    {
        return Ok(id.clone());
    }
    let lower = w.to_lowercase();
    let mut near: Vec<(f64, &str)> = fields
        .iter()
        .map(|(_, name)| (strsim::jaro_winkler(&lower, &name.to_lowercase()), name.as_str()))
        .filter(|(score, _)| *score >= 0.75)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    let near: Vec<&str> = near.into_iter().take(5).map(|(_, n)| n).collect();
    let err = XoneError::gate(format!("Jira has no field named '{w}' ({setting})"));
    let err = if near.is_empty() {
        err.cause("no field's name is near it")
    } else {
        err.cause(format!("near names: {}", near.join(", ")))
    };
    Err(err.hint(format!("xone config set {setting} 'NAME' with a field Jira has")))
}

/// The two kinds of Jira xone speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Deployment {
    Server,
    Cloud,
}

impl Deployment {
    fn api(self) -> &'static str {
        match self {
            Deployment::Server => "/rest/api/2",
            Deployment::Cloud => "/rest/api/3",
        }
    }
}

impl std::fmt::Display for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Deployment::Server => "Jira Server/Data Center",
            Deployment::Cloud => "Jira Cloud",
        })
    }
}

/// Who the token belongs to.
#[derive(Clone, Debug, Serialize)]
pub struct Account {
    /// Server: the user name; Cloud: the account id.
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

impl Account {
    /// The author of a comment (or any user object in an answer): its account id on Cloud,
    /// its name (or key) on Server.
    pub fn of(v: &Value) -> Option<Account> {
        let text = |k: &str| {
            v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
        };
        Some(Account {
            id: text("accountId").or_else(|| text("name")).or_else(|| text("key"))?,
            display_name: text("displayName"),
            email: text("emailAddress"),
        })
    }
}

/// Jira's own account of itself.
#[derive(Clone, Debug, Serialize)]
pub struct ServerInfo {
    pub version: Option<String>,
    /// `Server`, `DataCenter` or `Cloud`, as Jira says it.
    pub deployment_type: Option<String>,
    pub title: Option<String>,
}

pub struct Jira {
    pub url: String,
    pub deployment: Deployment,
    /// Who logs in (Cloud's email), for messages.
    login: Option<String>,
    api: Api,
}

impl Jira {
    /// A client for the settings; no server or no token is exit 4 saying how to set them.
    pub fn new(s: &Settings) -> Result<Jira> {
        let url = s.url.clone().ok_or_else(|| {
            XoneError::gate("no Jira server is configured")
                .hint("xone config set jira.url https://jira.example.com")
        })?;
        let token = s.token.clone().ok_or_else(|| {
            XoneError::gate(format!("not logged in to Jira at {url}"))
                .hint("xone auth login jira, or set XONE_JIRA_TOKEN")
        })?;
        let (deployment, secret) = match &s.user {
            Some(email) => {
                use base64::Engine as _;
                let pair = format!("{email}:{}", token.value);
                let value =
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
                (Deployment::Cloud, Secret { header: "Authorization", value })
            }
            None => (
                Deployment::Server,
                Secret { header: "Authorization", value: format!("Bearer {}", token.value) },
            ),
        };
        let api = Api::new("Jira", &url, Some(secret), s.http.clone())?;
        Ok(Jira { url, deployment, login: s.user.clone(), api })
    }

    /// A refused token in Jira's terms: who, which deployment, what to do; never the token.
    fn explain(&self, e: XoneError) -> XoneError {
        if e.tag != Some(Tag::Refused) {
            return e;
        }
        let who = match &self.login {
            Some(email) => format!("the API token of {email}"),
            None => "the personal access token".to_string(),
        };
        let mut out = XoneError::new(
            Kind::Remote,
            format!("{} at {} refused {who}", self.deployment, self.url),
        )
        .tagged(Tag::Refused);
        for c in &e.causes {
            out = out.cause(c);
        }
        out.hint(match self.deployment {
            Deployment::Cloud => "make a new API token (id.atlassian.com > Security > API tokens), then xone auth login jira; jira.user must be its account's email",
            Deployment::Server => "make a new personal access token (Profile > Personal Access Tokens), then xone auth login jira",
        })
    }

    fn get(&self, path: &str) -> Result<Value> {
        self.api.get(&format!("{}{path}", self.deployment.api())).map_err(|e| self.explain(e))
    }

    /// Who the token belongs to (`/myself`).
    pub fn myself(&self) -> Result<Account> {
        let me = self.get("/myself")?;
        let text = |k: &str| me.get(k).and_then(Value::as_str).map(str::to_string);
        let id = match self.deployment {
            Deployment::Cloud => text("accountId"),
            Deployment::Server => text("name").or_else(|| text("key")),
        }
        .ok_or_else(|| {
            XoneError::new(
                Kind::Remote,
                format!("Jira at {} did not say who the token is", self.url),
            )
            .hint("check that jira.url is the Jira server itself")
        })?;
        Ok(Account { id, display_name: text("displayName"), email: text("emailAddress") })
    }

    /// Jira's version and deployment type (`/serverInfo`).
    pub fn server_info(&self) -> Result<ServerInfo> {
        let info = self.get("/serverInfo")?;
        let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(ServerInfo {
            version: text("version"),
            deployment_type: text("deploymentType"),
            title: text("serverTitle"),
        })
    }

    /// Text as the API version takes it: a plain string on v2, a document (ADF) on v3.
    fn text(&self, text: &str) -> Value {
        match self.deployment {
            Deployment::Server => json!(text),
            Deployment::Cloud => json!({
                "type": "doc",
                "version": 1,
                "content": [{ "type": "paragraph", "content": [{ "type": "text", "text": text }] }],
            }),
        }
    }

    fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        let path = format!("{}{path}", self.deployment.api());
        // Creating an issue or a comment is not repeated blindly: a lost answer could make two.
        let reply = match method {
            Method::POST => self.api.call_once(method, &path, Some(body), &[]),
            _ => self.api.call(method, &path, Some(body), &[]),
        }
        .map_err(|e| self.explain(e))?;
        if reply.body.is_empty() {
            return Ok(Value::Null);
        }
        reply.json()
    }

    /// Creates an issue of `issue_type` in `project`; returns its key.
    pub fn create_issue(&self, project: &str, issue_type: &str, summary: &str) -> Result<String> {
        let body = json!({ "fields": {
            "project": { "key": project },
            "issuetype": { "name": issue_type },
            "summary": summary,
        }});
        let created = self.send(Method::POST, "/issue", &body)?;
        created["key"].as_str().map(str::to_string).ok_or_else(|| {
            XoneError::new(
                Kind::Remote,
                format!("Jira at {} made an issue without a key", self.url),
            )
        })
    }

    /// An issue that is not there any more, said as such.
    fn gone(&self, key: &str, e: XoneError) -> XoneError {
        if e.kind != Kind::NotFound {
            return e;
        }
        XoneError::not_found(format!(
            "the Jira issue {key} is gone from {} (deleted, moved, or no longer visible to this user)",
            self.url
        ))
        .hint(format!("look for it in Jira; `xone requirement show {key}` keeps what xone knew"))
    }

    pub fn set_summary(&self, key: &str, summary: &str) -> Result<()> {
        let body = json!({ "fields": { "summary": summary } });
        self.send(Method::PUT, &format!("/issue/{}", encode(key)), &body)
            .map(|_| ())
            .map_err(|e| self.gone(key, e))
    }

    /// Sets the issue's description: text on Server, a document on Cloud.
    pub fn set_description(&self, key: &str, text: &str) -> Result<()> {
        let body = json!({ "fields": { "description": self.text(text) } });
        self.send(Method::PUT, &format!("/issue/{}", encode(key)), &body)
            .map(|_| ())
            .map_err(|e| self.gone(key, e))
    }

    /// Every field the issues of this Jira can have: (id, name).
    pub fn fields(&self) -> Result<Vec<(String, String)>> {
        let v = self.get("/field")?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["id"].as_str()?.to_string(), f["name"].as_str()?.to_string())))
            .collect())
    }

    /// Sets the issue's start and end dates (`YYYY-MM-DD`; `None` clears one) in the fields
    /// `ids` names (see `date_fields`; one Jira lacks is left out), and adds `labels` beside
    /// those the issue has. Nothing to set is no request.
    pub fn set_dates(
        &self,
        key: &str,
        (start_id, end_id): &(Option<String>, Option<String>),
        start: Option<&str>,
        end: Option<&str>,
        labels: &[String],
    ) -> Result<()> {
        let mut fields = serde_json::Map::new();
        for (id, value) in [(start_id, start), (end_id, end)] {
            if let Some(id) = id {
                fields.insert(id.clone(), json!(value));
            }
        }
        if fields.is_empty() && labels.is_empty() {
            return Ok(());
        }
        let mut body = json!({ "fields": fields });
        if !labels.is_empty() {
            let add: Vec<Value> = labels.iter().map(|l| json!({ "add": l })).collect();
            body["update"] = json!({ "labels": add });
        }
        self.send(Method::PUT, &format!("/issue/{}", encode(key)), &body)
            .map(|_| ())
            .map_err(|e| self.gone(key, e))
    }

    /// The transitions the issue's workflow offers now: (id, name, the status it reaches).
    pub fn transitions(&self, key: &str) -> Result<Vec<(String, String, String)>> {
        let v = self
            .get(&format!("/issue/{}/transitions", encode(key)))
            .map_err(|e| self.gone(key, e))?;
        Ok(v["transitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (s(&t["id"]), s(&t["name"]), s(&t["to"]["name"]))
            })
            .collect())
    }

    pub fn transition(&self, key: &str, id: &str) -> Result<()> {
        let body = json!({ "transition": { "id": id } });
        self.send(Method::POST, &format!("/issue/{}/transitions", encode(key)), &body)
            .map(|_| ())
            .map_err(|e| self.gone(key, e))
    }

    pub fn comment(&self, key: &str, text: &str) -> Result<()> {
        let body = json!({ "body": self.text(text) });
        self.send(Method::POST, &format!("/issue/{}/comment", encode(key)), &body)
            .map(|_| ())
            .map_err(|e| self.gone(key, e))
    }

    /// Links work to the issue under `global_id`: made again, the link is updated, not doubled.
    pub fn remote_link(&self, key: &str, global_id: &str, title: &str, url: &str) -> Result<()> {
        let body = json!({ "globalId": global_id, "object": { "url": url, "title": title } });
        // Jira updates the link with that globalId: safe to send again.
        let path = format!("{}/issue/{}/remotelink", self.deployment.api(), encode(key));
        self.api
            .call(Method::POST, &path, Some(&body), &[])
            .map_err(|e| self.gone(key, self.explain(e)))?;
        Ok(())
    }

    /// An issue's summary and status name; `None` when Jira has no such issue (or the user may
    /// not see it).
    pub fn issue(&self, key: &str) -> Result<Option<(String, String)>> {
        match self.get(&format!("/issue/{}?fields=summary,status", encode(key))) {
            Ok(v) => Ok(Some((
                v["fields"]["summary"].as_str().unwrap_or_default().to_string(),
                v["fields"]["status"]["name"].as_str().unwrap_or_default().to_string(),
            ))),
            Err(e) if e.kind == Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The comments of an issue, as text (a document's text runs joined).
    pub fn comments(&self, key: &str) -> Result<Vec<String>> {
        let v =
            self.get(&format!("/issue/{}/comment", encode(key))).map_err(|e| self.gone(key, e))?;
        Ok(v["comments"].as_array().into_iter().flatten().map(|c| plain_text(&c["body"])).collect())
    }

    /// Every issue a JQL query selects, page by page to the end, with `fields`: Server's
    /// `/search` by `startAt`, Cloud's `/search/jql` by `nextPageToken` (its old `/search` is
    /// gone). Returns the issues and how many requests it took.
    pub fn search(&self, jql: &str, fields: &str) -> Result<(Vec<Value>, usize)> {
        const PAGE: usize = 100;
        let (mut issues, mut requests) = (Vec::new(), 0);
        match self.deployment {
            Deployment::Server => loop {
                let page = self.get(&format!(
                    "/search?jql={}&fields={fields}&startAt={}&maxResults={PAGE}",
                    encode(jql),
                    issues.len()
                ))?;
                requests += 1;
                let got = page["issues"].as_array().cloned().unwrap_or_default();
                let total = page["total"].as_u64().unwrap_or(0) as usize;
                let empty = got.is_empty();
                issues.extend(got);
                if empty || issues.len() >= total {
                    break;
                }
            },
            Deployment::Cloud => {
                let mut token: Option<String> = None;
                loop {
                    let mut path = format!(
                        "/search/jql?jql={}&fields={fields}&maxResults={PAGE}",
                        encode(jql)
                    );
                    if let Some(t) = &token {
                        path.push_str(&format!("&nextPageToken={}", encode(t)));
                    }
                    let page = self.get(&path)?;
                    requests += 1;
                    issues.extend(page["issues"].as_array().cloned().unwrap_or_default());
                    token = page["nextPageToken"].as_str().map(str::to_string);
                    if page["isLast"].as_bool().unwrap_or(true) || token.is_none() {
                        break;
                    }
                }
            }
        }
        Ok((issues, requests))
    }

    /// A property of a project (`/project/KEY/properties/NAME`): its value, `None` when unset.
    pub fn project_property(&self, key: &str, name: &str) -> Result<Option<Value>> {
        let path = format!(
            "{}/project/{}/properties/{}",
            self.deployment.api(),
            encode(key),
            encode(name)
        );
        let reply = self.api.call(Method::GET, &path, None, &[404]).map_err(|e| self.explain(e))?;
        if reply.status == 404 {
            return Ok(None);
        }
        Ok(Some(reply.json()?["value"].clone()))
    }

    /// Sets a property of a project to `value` (safe to send again).
    pub fn set_project_property(&self, key: &str, name: &str, value: &Value) -> Result<()> {
        let path = format!(
            "{}/project/{}/properties/{}",
            self.deployment.api(),
            encode(key),
            encode(name)
        );
        self.api.call(Method::PUT, &path, Some(value), &[]).map_err(|e| self.explain(e))?;
        Ok(())
    }

    /// A project by its key; one the user cannot see (or that does not exist) is exit 3.
    pub fn project(&self, key: &str) -> Result<Value> {
        self.get(&format!("/project/{}", encode(key))).map_err(|e| {
            if e.kind == Kind::NotFound {
                XoneError::not_found(format!(
                    "{} at {} has no project {key} that this user can see",
                    self.deployment, self.url
                ))
                .hint("check the key, and that the token's user may browse the project")
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_document_reads_as_the_text_it_shows() {
        // As Jira Cloud's editor writes a heading, two lines of a paragraph and a list.
        let doc = json!({ "type": "doc", "version": 1, "content": [
            { "type": "heading", "attrs": { "level": 2 }, "content": [{ "type": "text", "text": "Scope" }] },
            { "type": "paragraph", "content": [
                { "type": "text", "text": "Refund whole orders." },
                { "type": "hardBreak" },
                { "type": "text", "text": "Not vouchers." },
            ]},
            { "type": "bulletList", "content": [
                { "type": "listItem", "content": [{ "type": "paragraph", "content": [{ "type": "text", "text": "cards" }] }] },
                { "type": "listItem", "content": [{ "type": "paragraph", "content": [{ "type": "text", "text": "wallets" }] }] },
            ]},
        ]});
        assert_eq!(
            super::plain_text(&doc),
            "## Scope\nRefund whole orders.\nNot vouchers.\n- cards\n- wallets"
        );
        // What xone writes (one paragraph holding the text) reads back as it was.
        let mine = json!({ "type": "doc", "version": 1, "content": [
            { "type": "paragraph", "content": [{ "type": "text", "text": "# A\n\nB\n" }] },
        ]});
        assert_eq!(super::plain_text(&mine), "# A\n\nB\n");
        assert_eq!(super::plain_text(&json!("plain v2 text")), "plain v2 text");
    }
}
