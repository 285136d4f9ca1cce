//! A stateful fake Jira: a real HTTP/1.1 server on 127.0.0.1 in either flavour, Server/Data
//! Center (REST v2, personal access tokens as bearer tokens) or Cloud (REST v3, an account's
//! email and API token as basic authentication). xone reaches it only through `jira.url`.
//!
//! Answers carry every field of Atlassian's documented examples (`fixtures/jira/`): the fields
//! the fake models (who the user is, the server's version and deployment) come from its state,
//! the rest keep the example's values. Knobs inject faults: statuses with `Retry-After`.

#![allow(dead_code)]

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::fake_http as wire;
use wire::{Request, Response};

const MYSELF_SERVER: &str = include_str!("../../fixtures/jira/myself_server.json");
const MYSELF_CLOUD: &str = include_str!("../../fixtures/jira/myself_cloud.json");
const SERVER_INFO: &str = include_str!("../../fixtures/jira/serverinfo.json");

/// Which Jira it plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Server,
    Cloud,
}

/// A person with an account, and the token that logs them in.
#[derive(Clone, Debug)]
pub struct User {
    /// Server: the user name; Cloud: the account id.
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub token: String,
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    /// (path part, status, times, Retry-After)
    faults: Vec<(String, u16, usize, Option<u64>)>,
    log: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct FakeJira {
    pub url: String,
    pub flavour: Flavour,
    state: Arc<Mutex<State>>,
}

impl FakeJira {
    pub fn start(flavour: Flavour) -> FakeJira {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeJira { url, flavour, state: Arc::new(Mutex::new(State::default())) };
        let server = fake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let server = server.clone();
                std::thread::spawn(move || server.serve(stream));
            }
        });
        fake
    }

    /// Adds a user who logs in with `token`; returns it.
    pub fn add_user(&self, id: &str, email: &str, display_name: &str, token: &str) -> User {
        let u = User {
            id: id.into(),
            email: email.into(),
            display_name: display_name.into(),
            token: token.into(),
        };
        self.state.lock().unwrap().users.push(u.clone());
        u
    }

    /// Answers the next `times` requests whose path contains `path` with `status`.
    pub fn fail(&self, path: &str, status: u16, times: usize, retry_after: Option<u64>) {
        self.state.lock().unwrap().faults.push((path.into(), status, times, retry_after));
    }

    /// Every request so far: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().log.clone()
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        while let Some(req) = wire::read_request(&mut reader) {
            let resp = self.answer(&req);
            if wire::write_response(&mut writer, &resp).is_err() {
                return;
            }
        }
    }

    fn answer(&self, req: &Request) -> Response {
        let fault = {
            let mut s = self.state.lock().unwrap();
            s.log.push((req.method.clone(), req.target.clone()));
            let i = s.faults.iter().position(|f| f.2 > 0 && req.path.contains(f.0.as_str()));
            i.map(|i| {
                s.faults[i].2 -= 1;
                (s.faults[i].1, s.faults[i].3)
            })
        };
        if let Some((code, after)) = fault {
            let mut r = errors(code, &format!("fault {code}"));
            if let Some(a) = after {
                r.headers.push(("Retry-After".into(), a.to_string()));
            }
            return r;
        }
        let api = match self.flavour {
            Flavour::Server => "/rest/api/2",
            Flavour::Cloud => "/rest/api/3",
        };
        // Both flavours answer REST v2; only Cloud answers v3.
        let rest = req
            .path
            .strip_prefix(api)
            .or_else(|| req.path.strip_prefix("/rest/api/2"))
            .map(str::to_string);
        let Some(rest) = rest else {
            return errors(404, "not found");
        };
        if rest == "/serverInfo" && req.method == "GET" {
            return self.server_info();
        }
        let Some(user) = self.user_of(req) else {
            // As Jira answers a bad or missing credential on the REST API.
            return errors(
                401,
                "You are not authenticated. Authentication required to perform this operation.",
            );
        };
        match (req.method.as_str(), rest.as_str()) {
            ("GET", "/myself") => self.myself(&user),
            _ => errors(404, "The requested resource was not found."),
        }
    }

    fn user_of(&self, req: &Request) -> Option<User> {
        let auth = req.header("authorization")?;
        let s = self.state.lock().unwrap();
        match self.flavour {
            Flavour::Server => {
                let token = auth.strip_prefix("Bearer ")?.trim();
                s.users.iter().find(|u| u.token == token).cloned()
            }
            Flavour::Cloud => {
                use base64::Engine as _;
                let raw = auth.strip_prefix("Basic ")?.trim();
                let text = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
                let text = String::from_utf8(text).ok()?;
                let (email, token) = text.split_once(':')?;
                s.users.iter().find(|u| u.email == email && u.token == token).cloned()
            }
        }
    }

    fn server_info(&self) -> Response {
        let mut v: Value = serde_json::from_str(SERVER_INFO).unwrap();
        v["baseUrl"] = json!(self.url);
        match self.flavour {
            Flavour::Server => {
                v["deploymentType"] = json!("Server");
                v["version"] = json!("9.12.2");
                v["versionNumbers"] = json!([9, 12, 2]);
            }
            Flavour::Cloud => {
                v["deploymentType"] = json!("Cloud");
                v["version"] = json!("1001.0.0-SNAPSHOT");
                v["versionNumbers"] = json!([1001, 0, 0]);
            }
        }
        ok(&v)
    }

    fn myself(&self, u: &User) -> Response {
        let mut v: Value = match self.flavour {
            Flavour::Server => {
                let mut v: Value = serde_json::from_str(MYSELF_SERVER).unwrap();
                v["name"] = json!(u.id);
                v["key"] = json!(u.id);
                v
            }
            Flavour::Cloud => {
                let mut v: Value = serde_json::from_str(MYSELF_CLOUD).unwrap();
                v["accountId"] = json!(u.id);
                v
            }
        };
        v["emailAddress"] = json!(u.email);
        v["displayName"] = json!(u.display_name);
        v["self"] = json!(format!("{}/rest/api/2/user?username={}", self.url, u.id));
        ok(&v)
    }
}

fn ok(v: &Value) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json;charset=UTF-8".into())],
        body: v.to_string().into_bytes(),
    }
}

/// Jira's error body: `{"errorMessages": [...], "errors": {}}`.
fn errors(status: u16, message: &str) -> Response {
    let body = json!({ "errorMessages": [message], "errors": {} });
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/json;charset=UTF-8".into())],
        body: body.to_string().into_bytes(),
    }
}
