//! Jira through its REST API: Server and Data Center (REST v2, a personal access token sent as
//! a bearer token) and Cloud (REST v3, the account's email and an API token sent as basic
//! authentication). Which one is meant follows from the settings: `jira.user` (an email) is
//! Cloud's way to log in, and without it xone speaks to a Server.
//!
//! Calls go through `http::Api` (timeouts, retries of what is safe to repeat, `Retry-After`);
//! a refused token is said in Jira's terms, naming the user and the deployment, never the
//! token.

use serde::Serialize;
use serde_json::Value;

use super::http::{Api, Secret, Settings as Http};
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
        }
    }
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
        );
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
}
