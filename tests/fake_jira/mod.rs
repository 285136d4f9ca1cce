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
const PROJECT: &str = include_str!("../../fixtures/jira/project.json");
const CREATED: &str = include_str!("../../fixtures/jira/issue_create.json");
const TRANSITIONS: &str = include_str!("../../fixtures/jira/transitions.json");
const COMMENT: &str = include_str!("../../fixtures/jira/comment.json");
const SEARCH_410: &str = include_str!("../../fixtures/jira/search_410.json");

/// The statuses of the default workflow, every one reachable from any other (as global
/// transitions named after their status).
pub const STATUSES: [&str; 10] = [
    "To Do",
    "Requirement Review",
    "Design",
    "In Development",
    "Submitted",
    "Testing",
    "Gray",
    "Released",
    "Done",
    "Won't Do",
];

/// An issue as the fake keeps it.
#[derive(Clone, Debug)]
pub struct Issue {
    pub id: u64,
    pub key: String,
    pub project: String,
    pub summary: String,
    /// As sent: text on v2, a document on v3.
    pub description: Value,
    pub issue_type: String,
    pub status: String,
    /// (author, body as sent: a string on v2, a document on v3)
    pub comments: Vec<(String, Value)>,
    /// (globalId, url, title)
    pub links: Vec<(String, String, String)>,
    /// Its other fields by id (labels, dates, custom fields), as set.
    pub fields: std::collections::BTreeMap<String, Value>,
    /// When it last changed, in seconds since the epoch.
    pub updated: i64,
}

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

/// A field issues can have: (id, name, schema type, custom).
type Field = (String, String, &'static str, bool);

/// The fields of a fresh Jira Cloud software project that xone meets: the system fields, the
/// due date, and the custom Start date.
fn default_fields() -> Vec<Field> {
    [
        ("summary", "Summary", "string", false),
        ("description", "Description", "string", false),
        ("status", "Status", "status", false),
        ("labels", "Labels", "array", false),
        ("duedate", "Due date", "date", false),
        ("customfield_10015", "Start date", "date", true),
        ("customfield_10016", "Story point estimate", "number", true),
        ("customfield_10020", "Sprint", "array", true),
    ]
    .into_iter()
    .map(|(id, name, ty, custom)| (id.to_string(), name.to_string(), ty, custom))
    .collect()
}

#[derive(Default)]
struct State {
    users: Vec<User>,
    fields: Vec<Field>,
    /// The user's time zone, in seconds east of UTC: JQL's absolute times are read in it.
    zone_offset: i64,
    /// Writing project properties takes a project administrator this user is not.
    properties_refused: bool,
    /// Project properties: (project key, property key) → value.
    properties: std::collections::BTreeMap<(String, String), Value>,
    /// (id, key, name)
    projects: Vec<(u64, String, String)>,
    issues: Vec<Issue>,
    /// Statuses the workflow cannot reach (to test a workflow without a path).
    unreachable: Vec<String>,
    next_id: u64,
    /// The most results a search page holds (Jira's own cap is 100 on Cloud's new search).
    page_cap: usize,
    /// Each project's issue counter: numbers are never used twice, deleted issues' included.
    counters: std::collections::HashMap<String, u64>,
    /// (path part, status, times, Retry-After)
    faults: Vec<(String, u16, usize, Option<u64>)>,
    /// Requests carried out whose answer is then lost (a 502 from a proxy): (method, path
    /// part, times).
    lost: Vec<(String, String, usize)>,
    log: Vec<(String, String)>,
}

impl State {
    fn next_number(&mut self, project: &str) -> u64 {
        let n = self.counters.entry(project.to_string()).or_insert(0);
        *n += 1;
        *n
    }
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
        let state = State { page_cap: 100, fields: default_fields(), ..State::default() };
        let fake = FakeJira { url, flavour, state: Arc::new(Mutex::new(state)) };
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

    /// A project the users may browse.
    pub fn add_project(&self, key: &str, name: &str) {
        let mut s = self.state.lock().unwrap();
        let id = 10_000 + s.projects.len() as u64;
        s.projects.push((id, key.into(), name.into()));
    }

    /// An issue, by key.
    pub fn issue(&self, key: &str) -> Option<Issue> {
        self.state.lock().unwrap().issues.iter().find(|i| i.key == key).cloned()
    }

    /// Moves an issue to a status, as a person in Jira's web UI would.
    pub fn set_status(&self, key: &str, status: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s.issues.iter_mut().find(|i| i.key == key) {
            i.status = status.into();
            i.updated = wire::now_secs();
        }
    }

    /// Makes `n` issues in `project` as people would in Jira's web UI, `updated` seconds ago.
    pub fn add_issues(&self, project: &str, n: usize, status: &str, ago: i64) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.next_id += 1;
            let seq = s.next_number(project);
            let issue = Issue {
                id: 10_000 + s.next_id,
                key: format!("{project}-{seq}"),
                project: project.into(),
                summary: format!("Issue {seq} made in Jira"),
                description: Value::Null,
                issue_type: "Story".into(),
                status: status.into(),
                comments: Vec::new(),
                links: Vec::new(),
                fields: Default::default(),
                updated: wire::now_secs() - ago,
            };
            s.issues.push(issue);
        }
    }

    /// Puts the user in a time zone `secs` east of UTC (negative: west).
    pub fn time_zone(&self, secs: i64) {
        self.state.lock().unwrap().zone_offset = secs;
    }

    /// Renames a field (as an admin would), or removes it when `to` is `None`.
    pub fn rename_field(&self, name: &str, to: Option<&str>) {
        let mut s = self.state.lock().unwrap();
        match to {
            Some(t) => s.fields.iter_mut().filter(|f| f.1 == name).for_each(|f| f.1 = t.into()),
            None => s.fields.retain(|f| f.1 != name),
        }
    }

    /// Sets a field of an issue as a person does in Jira's web UI.
    pub fn set_field(&self, key: &str, id: &str, value: Value) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s.issues.iter_mut().find(|i| i.key == key) {
            i.fields.insert(id.into(), value);
            i.updated = wire::now_secs();
        }
    }

    /// The most issues one search page holds.
    pub fn page_cap(&self, n: usize) {
        self.state.lock().unwrap().page_cap = n;
    }

    /// Deletes an issue, as a person in Jira's web UI would.
    pub fn delete_issue(&self, key: &str) {
        self.state.lock().unwrap().issues.retain(|i| i.key != key);
    }

    /// Takes every transition to `status` out of the workflow.
    /// Adds a comment as `author` would in Jira's web UI.
    pub fn add_comment(&self, key: &str, author: &str, body: Value) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s.issues.iter_mut().find(|i| i.key == key) {
            i.comments.push((author.into(), body));
            i.updated = wire::now_secs();
        }
    }

    /// Every issue, in the order they were made.
    pub fn issues(&self) -> Vec<Issue> {
        self.state.lock().unwrap().issues.clone()
    }

    /// Lets the workflow reach every status again.
    pub fn reach_all(&self) {
        self.state.lock().unwrap().unreachable.clear();
    }

    pub fn make_unreachable(&self, status: &str) {
        self.state.lock().unwrap().unreachable.push(status.into());
    }

    /// Answers the next `times` requests whose path contains `path` with `status`.
    pub fn fail(&self, path: &str, status: u16, times: usize, retry_after: Option<u64>) {
        self.state.lock().unwrap().faults.push((path.into(), status, times, retry_after));
    }

    /// Carries out the next `times` requests whose path contains `path`, then answers 502 as
    /// a proxy that lost the answer would.
    pub fn lose_answers(&self, method: &str, path: &str, times: usize) {
        self.state.lock().unwrap().lost.push((method.into(), path.into(), times));
    }

    /// Every request so far: (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().log.clone()
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        while let Some(req) = wire::read_request(&mut reader) {
            let mut resp = self.answer(&req);
            let lost = {
                let mut s = self.state.lock().unwrap();
                let i = s
                    .lost
                    .iter()
                    .position(|l| l.2 > 0 && l.0 == req.method && req.path.contains(l.1.as_str()));
                if let Some(i) = i {
                    s.lost[i].2 -= 1;
                }
                i.is_some()
            };
            if lost {
                resp = errors(502, "Bad Gateway");
            }
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
        let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["myself"]) => self.myself(&user),
            ("GET", ["field"]) => self.fields(),
            ("GET", ["project", key]) => self.project(&wire::decode(key)),
            ("GET", ["project", key, "properties", name]) => {
                self.property(&wire::decode(key), &wire::decode(name), None)
            }
            ("PUT", ["project", key, "properties", name]) => {
                self.property(&wire::decode(key), &wire::decode(name), Self::body(req))
            }
            ("POST", ["issue"]) => self.create_issue(req),
            ("GET", ["issue", key]) => self.get_issue(&wire::decode(key)),
            ("PUT", ["issue", key]) => self.edit_issue(&wire::decode(key), req),
            ("GET", ["issue", key, "transitions"]) => self.transitions(&wire::decode(key)),
            ("POST", ["issue", key, "transitions"]) => self.transition(&wire::decode(key), req),
            ("POST", ["issue", key, "comment"]) => self.comment(&wire::decode(key), req, &user),
            ("GET", ["issue", key, "comment"]) => self.list_comments(&wire::decode(key)),
            ("POST", ["issue", key, "remotelink"]) => self.remote_link(&wire::decode(key), req),
            ("GET", ["search"])
                if self.flavour == Flavour::Cloud && req.path.starts_with("/rest/api/3") =>
            {
                // Removed on Cloud: the new search is /search/jql.
                Response { status: 410, ..ok(&serde_json::from_str(SEARCH_410).unwrap()) }
            }
            ("GET", ["search"]) => self.search_v2(req),
            ("GET", ["search", "jql"]) if self.flavour == Flavour::Cloud => self.search_jql(req),
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

    fn project(&self, key: &str) -> Response {
        let s = self.state.lock().unwrap();
        let Some((id, key, name)) = s.projects.iter().find(|p| p.1 == key).cloned() else {
            return errors(404, &format!("No project could be found with key '{key}'."));
        };
        let mut v: Value = serde_json::from_str(PROJECT).unwrap();
        v["id"] = json!(id.to_string());
        v["key"] = json!(key);
        v["name"] = json!(name);
        v["self"] = json!(format!("{}/rest/api/2/project/{id}", self.url));
        ok(&v)
    }

    fn body(req: &Request) -> Option<Value> {
        serde_json::from_slice(&req.body).ok()
    }

    fn create_issue(&self, req: &Request) -> Response {
        let Some(b) = Self::body(req) else { return errors(400, "Unexpected body") };
        let f = &b["fields"];
        let mut s = self.state.lock().unwrap();
        let project = f["project"]["key"].as_str().unwrap_or_default().to_string();
        if !s.projects.iter().any(|p| p.1 == project) {
            return field_errors(400, "project", "valid project is required");
        }
        if f["issuetype"]["name"].as_str().is_none_or(str::is_empty) {
            return field_errors(400, "issuetype", "issue type is required");
        }
        let Some(summary) = f["summary"].as_str().filter(|t| !t.is_empty()) else {
            return field_errors(400, "summary", "You must specify a summary of the issue.");
        };
        s.next_id += 1;
        let n = s.next_number(&project);
        let issue = Issue {
            id: 10_000 + s.next_id,
            key: format!("{project}-{n}"),
            project,
            summary: summary.to_string(),
            description: f["description"].clone(),
            issue_type: f["issuetype"]["name"].as_str().unwrap_or_default().to_string(),
            status: STATUSES[0].into(),
            comments: Vec::new(),
            links: Vec::new(),
            fields: Default::default(),
            updated: wire::now_secs(),
        };
        let mut v: Value = serde_json::from_str(CREATED).unwrap();
        v["id"] = json!(issue.id.to_string());
        v["key"] = json!(issue.key);
        v["self"] = json!(format!("{}{}/issue/{}", self.url, self.api(), issue.id));
        if let Some(m) = v.as_object_mut() {
            // Only when a transition was asked for with the creation.
            m.remove("transition");
        }
        s.issues.push(issue);
        with_status(201, &v)
    }

    fn api(&self) -> &'static str {
        match self.flavour {
            Flavour::Server => "/rest/api/2",
            Flavour::Cloud => "/rest/api/3",
        }
    }

    fn get_issue(&self, key: &str) -> Response {
        let s = self.state.lock().unwrap();
        let Some(i) = s.issues.iter().find(|i| i.key == key) else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        ok(&json!({
            "id": i.id.to_string(),
            "key": i.key,
            "self": format!("{}{}/issue/{}", self.url, self.api(), i.id),
            "fields": { "summary": i.summary, "status": status_object(&i.status, &self.url) },
        }))
    }

    fn edit_issue(&self, key: &str, req: &Request) -> Response {
        let Some(b) = Self::body(req) else { return errors(400, "Unexpected body") };
        let mut s = self.state.lock().unwrap();
        let known = s.fields.clone();
        let Some(i) = s.issues.iter_mut().find(|i| i.key == key) else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        if let Some(t) = b["fields"]["summary"].as_str() {
            i.summary = t.to_string();
            i.updated = wire::now_secs();
        }
        // Any other field must exist, and take a value of its type; labels are also added
        // through `update`.
        let others = b["fields"].as_object().cloned().unwrap_or_default();
        for (id, value) in &others {
            if matches!(id.as_str(), "summary" | "description") {
                continue;
            }
            let Some(f) = known.iter().find(|f| f.0 == *id) else {
                return field_errors(
                    400,
                    id,
                    &format!("Field '{id}' cannot be set. It is not on the appropriate screen, or unknown."),
                );
            };
            let fits = match f.2 {
                "date" => {
                    value.is_null()
                        || value.as_str().is_some_and(|d| {
                            d.len() == 10
                                && d.bytes().enumerate().all(|(n, b)| {
                                    if n == 4 || n == 7 {
                                        b == b'-'
                                    } else {
                                        b.is_ascii_digit()
                                    }
                                })
                        })
                }
                "array" => value.is_array(),
                "number" => value.is_number() || value.is_null(),
                _ => value.is_string() || value.is_null(),
            };
            if !fits {
                return field_errors(400, id, "Field value is invalid for its type.");
            }
            i.fields.insert(id.clone(), value.clone());
            i.updated = wire::now_secs();
        }
        for op in b["update"]["labels"].as_array().into_iter().flatten() {
            let Some(label) = op["add"].as_str() else { continue };
            if label.contains(char::is_whitespace) {
                return field_errors(400, "labels", "The label must not contain spaces.");
            }
            let labels = i.fields.entry("labels".into()).or_insert_with(|| json!([]));
            if let Some(list) = labels.as_array_mut() {
                if !list.iter().any(|l| l == label) {
                    list.push(json!(label));
                }
            }
            i.updated = wire::now_secs();
        }
        if let Some(d) = b["fields"].get("description") {
            // v2 takes text, v3 a document.
            let valid = match self.flavour {
                Flavour::Server => d.is_string(),
                Flavour::Cloud => d["type"] == "doc",
            };
            if !valid {
                return field_errors(400, "description", "Operation value must be a string");
            }
            i.description = d.clone();
            i.updated = wire::now_secs();
        }
        no_content()
    }

    /// The transitions offered from the issue's status: one to every other status the
    /// workflow reaches.
    fn offered(&self, s: &State, i: &Issue) -> Vec<(String, String)> {
        STATUSES
            .iter()
            .enumerate()
            .filter(|(_, st)| **st != i.status && !s.unreachable.iter().any(|u| u == *st))
            .map(|(n, st)| ((11 + n * 10).to_string(), st.to_string()))
            .collect()
    }

    fn transitions(&self, key: &str) -> Response {
        let s = self.state.lock().unwrap();
        let Some(i) = s.issues.iter().find(|i| i.key == key) else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        let example: Value = serde_json::from_str(TRANSITIONS).unwrap();
        let base = example["transitions"][0].clone();
        let list: Vec<Value> = self
            .offered(&s, i)
            .into_iter()
            .map(|(id, to)| {
                let mut t = base.clone();
                t["id"] = json!(id);
                t["name"] = json!(to);
                t["isGlobal"] = json!(true);
                t["to"] = status_object(&to, &self.url);
                t
            })
            .collect();
        ok(&json!({ "expand": "transitions", "transitions": list }))
    }

    fn transition(&self, key: &str, req: &Request) -> Response {
        let Some(b) = Self::body(req) else { return errors(400, "Unexpected body") };
        let mut s = self.state.lock().unwrap();
        let Some(i) = s.issues.iter().find(|i| i.key == key).cloned() else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        let id = b["transition"]["id"].as_str().unwrap_or_default().to_string();
        let Some((_, to)) = self.offered(&s, &i).into_iter().find(|(t, _)| *t == id) else {
            return errors(400, &format!("Transition id '{id}' is not valid for this issue."));
        };
        if let Some(i) = s.issues.iter_mut().find(|i| i.key == key) {
            i.status = to;
            i.updated = wire::now_secs();
        }
        no_content()
    }

    fn comment(&self, key: &str, req: &Request, user: &User) -> Response {
        let Some(b) = Self::body(req) else { return errors(400, "Unexpected body") };
        // v2 takes the body as text, v3 as a document.
        let valid = match self.flavour {
            Flavour::Server => b["body"].is_string(),
            Flavour::Cloud => b["body"]["type"] == "doc",
        };
        if !valid {
            return field_errors(400, "comment", "Comment body is not valid!");
        }
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = 10_000 + s.next_id;
        let Some(i) = s.issues.iter_mut().find(|i| i.key == key) else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        i.comments.push((user.id.clone(), b["body"].clone()));
        i.updated = wire::now_secs();
        let mut v: Value = serde_json::from_str(COMMENT).unwrap();
        v["id"] = json!(id.to_string());
        v["body"] = b["body"].clone();
        v["author"]["displayName"] = json!(user.display_name);
        v["self"] = json!(format!("{}{}/issue/{}/comment/{id}", self.url, self.api(), i.id));
        with_status(201, &v)
    }

    fn list_comments(&self, key: &str) -> Response {
        let s = self.state.lock().unwrap();
        let Some(i) = s.issues.iter().find(|i| i.key == key) else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        let list = self.comment_list(i, &s.users);
        ok(&json!({ "startAt": 0, "maxResults": 5000, "total": list.len(), "comments": list }))
    }

    fn remote_link(&self, key: &str, req: &Request) -> Response {
        let Some(b) = Self::body(req) else { return errors(400, "Unexpected body") };
        let (Some(url), Some(title)) = (b["object"]["url"].as_str(), b["object"]["title"].as_str())
        else {
            return field_errors(400, "title", "'title' is required.");
        };
        let global = b["globalId"].as_str().unwrap_or_default().to_string();
        let mut s = self.state.lock().unwrap();
        let Some(i) = s.issues.iter_mut().find(|i| i.key == key) else {
            return errors(404, "Issue does not exist or you do not have permission to see it.");
        };
        // The same globalId updates the link it names.
        let existing = i.links.iter().position(|l| !global.is_empty() && l.0 == global);
        let (code, n) = match existing {
            Some(n) => {
                i.links[n] = (global, url.into(), title.into());
                (200, n)
            }
            None => {
                i.links.push((global, url.into(), title.into()));
                (201, i.links.len() - 1)
            }
        };
        let id = 10_000 + n as u64;
        with_status(
            code,
            &json!({ "id": id, "self": format!("{}/rest/api/issue/{key}/remotelink/{id}", self.url) }),
        )
    }

    /// The issues a JQL query of the subset xone sends selects, oldest change first:
    /// `project = KEY [AND updated >= "yyyy/MM/dd HH:mm"] [ORDER BY updated ASC]`.
    fn select(&self, s: &State, jql: &str) -> Result<Vec<Issue>, Response> {
        let lower = jql.to_ascii_lowercase();
        let project = jql
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(3)
            .find(|w| w[0].eq_ignore_ascii_case("project") && w[1] == "=")
            .map(|w| w[2].trim_matches('"').to_string())
            .ok_or_else(|| errors(400, &format!("Error in the JQL Query: {jql}")))?;
        let since = match lower.find("updated >=") {
            Some(at) => {
                let rest = &jql[at + "updated >=".len()..];
                let text = rest.trim().trim_start_matches('"');
                let text: String = text.chars().take_while(|c| *c != '"').collect();
                Some(parse_jql_time(&text, s.zone_offset).ok_or_else(|| {
                    errors(400, &format!("Date value '{text}' for field 'updated' is invalid."))
                })?)
            }
            None => None,
        };
        let mut out: Vec<Issue> = s
            .issues
            .iter()
            .filter(|i| i.project == project && since.is_none_or(|t| i.updated >= t))
            .cloned()
            .collect();
        out.sort_by_key(|i| (i.updated, i.id));
        Ok(out)
    }

    /// An issue in a search's answer, with the `fields` asked for (a comma list).
    fn issue_json(&self, i: &Issue, fields: &str, users: &[User]) -> Value {
        let mut v = json!({
            "expand": "",
            "id": i.id.to_string(),
            "key": i.key,
            "self": format!("{}{}/issue/{}", self.url, self.api(), i.id),
            "fields": {
                "summary": i.summary,
                "status": status_object(&i.status, &self.url),
                "updated": wire::date_time(i.updated),
            },
        });
        let asked = |f: &str| fields.split(',').any(|x| x.trim() == f || x.trim() == "*all");
        if asked("description") {
            v["fields"]["description"] = i.description.clone();
        }
        for f in fields.split(',').map(str::trim) {
            if !matches!(f, "summary" | "status" | "updated" | "description" | "comment") {
                v["fields"][f] = i.fields.get(f).cloned().unwrap_or(Value::Null);
            }
        }
        if asked("comment") {
            let list = self.comment_list(i, users);
            v["fields"]["comment"] = json!({ "startAt": 0, "maxResults": list.len(), "total": list.len(), "comments": list });
        }
        v
    }

    /// An issue's comments as Jira gives them.
    fn comment_list(&self, i: &Issue, users: &[User]) -> Vec<Value> {
        let base: Value = serde_json::from_str(COMMENT).unwrap();
        i.comments
            .iter()
            .enumerate()
            .map(|(n, (author, body))| {
                let mut c = base.clone();
                c["id"] = json!((10_000 + n).to_string());
                c["body"] = body.clone();
                c["author"] = self.user_json(users.iter().find(|u| u.id == *author), author);
                c
            })
            .collect()
    }

    /// A user as Jira names one in an answer: the name and key on Server, the account id on
    /// Cloud, with the display name and email.
    fn user_json(&self, u: Option<&User>, id: &str) -> Value {
        let (name, email) = match u {
            Some(u) => (u.display_name.clone(), u.email.clone()),
            None => (id.to_string(), String::new()),
        };
        let mut v = json!({ "displayName": name, "emailAddress": email, "active": true });
        match self.flavour {
            Flavour::Server => {
                v["name"] = json!(id);
                v["key"] = json!(id);
                v["self"] = json!(format!("{}/rest/api/2/user?username={id}", self.url));
            }
            Flavour::Cloud => {
                v["accountId"] = json!(id);
                v["self"] = json!(format!("{}/rest/api/3/user?accountId={id}", self.url));
            }
        }
        v
    }

    /// Server's search: `startAt` and `maxResults`, with the total.
    fn search_v2(&self, req: &Request) -> Response {
        let s = self.state.lock().unwrap();
        let jql = req.q("jql").unwrap_or_default().to_string();
        let fields = req.q("fields").unwrap_or_default().to_string();
        let all = match self.select(&s, &jql) {
            Ok(a) => a,
            Err(r) => return r,
        };
        let start: usize = req.q("startAt").and_then(|v| v.parse().ok()).unwrap_or(0);
        let max: usize =
            req.q("maxResults").and_then(|v| v.parse().ok()).unwrap_or(50).min(s.page_cap);
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(max)
            .map(|i| self.issue_json(i, &fields, &s.users))
            .collect();
        ok(&json!({
            "expand": "schema,names",
            "startAt": start,
            "maxResults": max,
            "total": all.len(),
            "warningMessages": [],
            "issues": page,
        }))
    }

    /// Cloud's search: a `nextPageToken` to the next page, `isLast` on the last.
    fn search_jql(&self, req: &Request) -> Response {
        let s = self.state.lock().unwrap();
        let jql = req.q("jql").unwrap_or_default().to_string();
        let fields = req.q("fields").unwrap_or_default().to_string();
        let all = match self.select(&s, &jql) {
            Ok(a) => a,
            Err(r) => return r,
        };
        let start: usize = req
            .q("nextPageToken")
            .and_then(|t| t.strip_prefix("page-"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let max: usize =
            req.q("maxResults").and_then(|v| v.parse().ok()).unwrap_or(50).min(s.page_cap);
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(max)
            .map(|i| self.issue_json(i, &fields, &s.users))
            .collect();
        let last = start + max >= all.len();
        let mut v = json!({ "isLast": last, "issues": page });
        if !last {
            v["nextPageToken"] = json!(format!("page-{}", start + max));
        }
        ok(&v)
    }

    /// A project's property: read (`value` None), or set (201 made, 200 replaced).
    fn property(&self, project: &str, name: &str, value: Option<Value>) -> Response {
        let mut s = self.state.lock().unwrap();
        if !s.projects.iter().any(|p| p.1 == project) {
            return errors(404, &format!("No project could be found with key '{project}'."));
        }
        let at = (project.to_string(), name.to_string());
        match value {
            None => match s.properties.get(&at) {
                Some(v) => ok(&json!({ "key": name, "value": v })),
                None => errors(404, &format!("The property with key '{name}' does not exist.")),
            },
            Some(_) if s.properties_refused => {
                errors(403, "The user does not have permission to edit project properties.")
            }
            Some(v) => {
                let code = if s.properties.insert(at, v).is_some() { 200 } else { 201 };
                with_status(code, &json!({}))
            }
        }
    }

    /// Refuses to write project properties (403), as Jira does for a user who does not
    /// administer the project.
    pub fn refuse_property_writes(&self) {
        self.state.lock().unwrap().properties_refused = true;
    }

    /// A project's property as set, for the tests.
    pub fn project_property(&self, project: &str, name: &str) -> Option<Value> {
        let s = self.state.lock().unwrap();
        s.properties.get(&(project.to_string(), name.to_string())).cloned()
    }

    /// Every field, as `GET /field` lists them.
    fn fields(&self) -> Response {
        let s = self.state.lock().unwrap();
        let list: Vec<Value> = s
            .fields
            .iter()
            .map(|(id, name, ty, custom)| {
                let mut schema = json!({ "type": ty });
                if *custom {
                    let n: u64 = id.trim_start_matches("customfield_").parse().unwrap_or(0);
                    schema["custom"] =
                        json!(format!("com.atlassian.jira.plugin.system.customfieldtypes:{ty}"));
                    schema["customId"] = json!(n);
                } else {
                    schema["system"] = json!(id);
                }
                let clause = if *custom {
                    format!("cf[{}]", id.trim_start_matches("customfield_"))
                } else {
                    id.clone()
                };
                json!({
                    "id": id,
                    "key": id,
                    "name": name,
                    "custom": custom,
                    "orderable": true,
                    "navigable": true,
                    "searchable": true,
                    "clauseNames": [clause, name],
                    "schema": schema,
                    "untranslatedName": name,
                })
            })
            .collect();
        ok(&Value::Array(list))
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

/// JQL's `"yyyy/MM/dd HH:mm"` (or with `-`), in UTC, to seconds since the epoch.
/// A JQL time: relative to now (`-15m`, `-2h`, `-1d`, `-1w`), or a date and time in the
/// user's time zone (`offset` seconds east of UTC).
fn parse_jql_time(text: &str, offset: i64) -> Option<i64> {
    if let Some(rel) = text.strip_prefix('-') {
        let (n, unit) = rel.split_at(rel.len().checked_sub(1)?);
        let n: i64 = n.parse().ok()?;
        let unit = match unit {
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return None,
        };
        return Some(wire::now_secs() - n * unit);
    }
    let t = text.replace('-', "/");
    let (date, time) = t.split_once(' ').unwrap_or((t.as_str(), "00:00"));
    let d: Vec<i64> = date.split('/').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let hm: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (y, m, day) = (*d.first()?, *d.get(1)?, *d.get(2)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hm.first()? * 3600 + hm.get(1).copied().unwrap_or(0) * 60 - offset)
}

fn with_status(status: u16, v: &Value) -> Response {
    Response { status, ..ok(v) }
}

fn no_content() -> Response {
    Response { status: 204, headers: Vec::new(), body: Vec::new() }
}

/// A status as issues and transitions carry it.
fn status_object(name: &str, url: &str) -> Value {
    let n = STATUSES.iter().position(|s| *s == name).unwrap_or(0);
    let category = match n {
        0 => ("new", "To Do", 2, "blue-gray"),
        8 | 9 => ("done", "Done", 3, "green"),
        _ => ("indeterminate", "In Progress", 4, "yellow"),
    };
    json!({
        "description": "",
        "iconUrl": format!("{url}/images/icons/statuses/generic.png"),
        "id": (10_000 + n).to_string(),
        "name": name,
        "self": format!("{url}/rest/api/2/status/{}", 10_000 + n),
        "statusCategory": {
            "colorName": category.3,
            "id": category.2,
            "key": category.0,
            "name": category.1,
            "self": format!("{url}/rest/api/2/statuscategory/{}", category.2),
        },
    })
}

/// Jira's error body for a field: `{"errorMessages": [], "errors": {field: message}}`.
fn field_errors(status: u16, field: &str, message: &str) -> Response {
    let body = json!({ "errorMessages": [], "errors": { field: message } });
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/json;charset=UTF-8".into())],
        body: body.to_string().into_bytes(),
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
