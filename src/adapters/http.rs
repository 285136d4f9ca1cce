//! Calls to remote HTTP APIs with the rules every remote call follows (SPEC §6): timeouts on
//! connect and on the whole request, retries with backoff and jitter on 429, 502, 503, 504
//! and dropped connections for requests that are safe to repeat (honouring `Retry-After`),
//! pagination followed to the end, and errors that name the endpoint but never the token.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::Value;

use crate::ui::{Kind, Result, Tag, XoneError};

/// How a remote system is reached, as read from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The request's whole time, connect included.
    pub timeout: Duration,
    /// Extra attempts after the first for a request that is safe to repeat.
    pub retries: u32,
    /// Log each request and its timing on stderr.
    pub verbose: bool,
}

/// A secret header (`PRIVATE-TOKEN: …`, `JOB-TOKEN: …`): sent, never shown.
#[derive(Clone)]
pub struct Secret {
    pub header: &'static str,
    pub value: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: [REDACTED]", self.header)
    }
}

/// One remote API: a base URL, its authentication and a connection pool shared by every
/// thread of a fan-out.
pub struct Api {
    /// The system's name in messages ("GitLab").
    pub system: &'static str,
    base: String,
    client: Client,
    secret: Option<Secret>,
    settings: Settings,
}

/// A response whose status the caller asked to see: 2xx, or one listed in `expect`.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    next: Option<String>,
    endpoint: String,
}

impl Reply {
    /// The body as JSON; garbage or a truncated body is exit 6 naming the endpoint.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            XoneError::new(Kind::Remote, format!("{} answered with malformed JSON", self.endpoint))
                .cause(e)
                .hint("retry; if it persists, the server or a proxy in between is at fault")
        })
    }

    /// The `message` or `error` field of an error body, if it has one.
    pub fn message(&self) -> String {
        let v: Option<Value> = serde_json::from_slice(&self.body).ok();
        let from_json = v.and_then(|v| {
            // Jira: {"errorMessages": [..], "errors": {field: message}}.
            if let Some(list) = v.get("errorMessages").and_then(Value::as_array) {
                let mut all: Vec<String> =
                    list.iter().filter_map(|m| m.as_str().map(str::to_string)).collect();
                if let Some(fields) = v.get("errors").and_then(Value::as_object) {
                    all.extend(
                        fields
                            .iter()
                            .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or_default())),
                    );
                }
                if !all.is_empty() {
                    return Some(all.join("; "));
                }
            }
            let m = v.get("message").or_else(|| v.get("error"))?;
            Some(match m {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        });
        from_json.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&self.body);
            text.chars().take(200).collect()
        })
    }
}

/// Whether a method may be sent twice without doing twice what it does.
fn idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS)
}

/// A pseudo-random fraction in [0, 1) for jitter; std's hasher keys are random per process.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How long to wait before attempt `n + 1`: `Retry-After` when the server gave one (capped),
/// else exponential backoff from 200 ms with full jitter.
fn backoff(n: u32, retry_after: Option<Duration>) -> Duration {
    const CAP: Duration = Duration::from_secs(30);
    if let Some(d) = retry_after {
        return d.min(CAP);
    }
    let ceiling = Duration::from_millis(200 * 2u64.pow(n.min(6)));
    ceiling.mul_f64(0.5 + jitter() / 2.0)
}

/// `Retry-After` in seconds (the form GitLab sends); an HTTP date is treated as one second.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    Some(v.parse::<u64>().map(Duration::from_secs).unwrap_or(Duration::from_secs(1)))
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// Why one attempt failed, and whether another may be made.
enum Failure {
    /// Worth another attempt after the pause (when the method allows one).
    Transient {
        error: XoneError,
        pause: Option<Duration>,
        sent: bool,
    },
    Final(XoneError),
}

impl Api {
    pub fn new(
        system: &'static str,
        base: &str,
        secret: Option<Secret>,
        settings: Settings,
    ) -> Result<Api> {
        let builder = || {
            Client::builder()
                .user_agent(concat!("xone/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
                .timeout(settings.timeout)
                .pool_max_idle_per_host(32)
                // The token travels in a header: it must not follow a redirect to another
                // host, and a POST must not silently become a GET.
                .redirect(reqwest::redirect::Policy::none())
        };
        let client = match builder().build() {
            Ok(c) => c,
            // The platform's verifier will not start without CA certificates (a minimal
            // container): plain http still works, and https says what is missing.
            Err(e) if !base.starts_with("https:") => {
                builder()
                    .tls_certs_only(Vec::new())
                    .build()
                    .map_err(|_| XoneError::internal("cannot start the HTTP client").cause(e))?
            }
            Err(e) => {
                let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
                if !why.contains("CA certificates") {
                    return Err(XoneError::internal("cannot start the HTTP client").cause(why));
                }
                // This machine's set-up, not the server: as a bad setting is.
                return Err(XoneError::usage(format!(
                    "cannot check {system}'s certificate at {base}"
                ))
                .cause(why)
                .hint("this machine has no CA certificates: install them (apt-get install ca-certificates), or point SSL_CERT_FILE at a bundle"));
            }
        };
        Ok(Api { system, base: base.trim_end_matches('/').to_string(), client, secret, settings })
    }

    /// Hides the token wherever it might appear in a text meant for people.
    pub fn redact(&self, text: &str) -> String {
        match &self.secret {
            // A real token is long; a few characters would only mangle the text around them.
            Some(s) if s.value.len() >= 6 => text.replace(&s.value, "[REDACTED]"),
            _ => text.to_string(),
        }
    }

    fn log(&self, line: &str) {
        if self.settings.verbose {
            let _ = writeln!(std::io::stderr(), "{} {}", self.system, self.redact(line));
        }
    }

    /// Sends one request. Statuses in `expect` (and 2xx) come back as a `Reply`; 401/403 are
    /// exit 6 with a hint about the token, 404 exit 3, anything else exit 6 after retries.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: &[u16],
    ) -> Result<Reply> {
        let repeatable = idempotent(&method);
        self.send(method, path, body, expect, repeatable)
    }

    /// Sends a request that is never repeated once it may have reached the server, whatever
    /// its method (a merge is a PUT, yet not one to send twice): the caller checks, then acts.
    pub fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: &[u16],
    ) -> Result<Reply> {
        self.send(method, path, body, expect, false)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: &[u16],
        repeatable: bool,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        // `GET /api/v4/projects/…`: messages name the system once, beside it.
        let endpoint = format!("{method} {}", self.redact(&strip_base(&url)));
        let mut attempt = 0;
        loop {
            match self.attempt(&method, &url, body, expect, &endpoint) {
                Ok(reply) => return Ok(reply),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient { error, pause, sent }) => {
                    // A request that may have taken effect is not blindly sent again: the
                    // caller checks, then acts.
                    if attempt >= self.settings.retries || (sent && !repeatable) {
                        let tries = attempt + 1;
                        let error = if tries > 1 {
                            error.cause(format!("gave up after {tries} attempts"))
                        } else {
                            error
                        };
                        return Err(error);
                    }
                    let wait = backoff(attempt, pause);
                    self.log(&format!("{endpoint}: retrying in {} ms", wait.as_millis()));
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }

    fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        expect: &[u16],
        endpoint: &str,
    ) -> std::result::Result<Reply, Failure> {
        let mut req = self.client.request(method.clone(), url);
        if let Some(s) = &self.secret {
            let mut value = HeaderValue::from_str(&s.value).map_err(|_| {
                Failure::Final(
                    XoneError::usage(format!(
                        "the {} token has characters a header cannot carry",
                        self.system
                    ))
                    .hint("copy the token again, without spaces or line breaks"),
                )
            })?;
            value.set_sensitive(true);
            req = req.header(s.header, value);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let started = Instant::now();
        let sent = req.send();
        let elapsed = started.elapsed().as_millis();
        let resp: Response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.log(&format!("{endpoint} failed after {elapsed} ms: {}", describe(&e)));
                let error = XoneError::new(
                    Kind::Remote,
                    format!("{} could not be reached ({})", self.system, endpoint),
                )
                .tagged(Tag::Unavailable)
                .cause(self.redact(&describe(&e)))
                .hint(format!(
                    "check that {} is up and the URL is right ({})",
                    self.system, self.base
                ));
                // A refused connection never carried the request.
                return Err(Failure::Transient { error, pause: None, sent: !e.is_connect() });
            }
        };
        let status = resp.status().as_u16();
        let pause = retry_after(resp.headers());
        let next = next_link(resp.headers());
        let bytes = resp.bytes();
        self.log(&format!("{endpoint} → {status} in {elapsed} ms"));
        let body = match bytes {
            Ok(b) => b.to_vec(),
            Err(e) => {
                let error = XoneError::new(
                    Kind::Remote,
                    format!("{} broke off its answer to {endpoint}", self.system),
                )
                .tagged(Tag::Unavailable)
                .cause(self.redact(&describe(&e)))
                .hint("retry; if it persists, the server or a proxy in between is at fault");
                return Err(Failure::Transient { error, pause: None, sent: true });
            }
        };
        let reply = Reply { status, body, next, endpoint: format!("{} {endpoint}", self.system) };
        if (200..300).contains(&status) || expect.contains(&status) {
            return Ok(reply);
        }
        let message = self.redact(&reply.message());
        let job = self.secret.as_ref().is_some_and(|s| s.header == "JOB-TOKEN");
        let error = match status {
            300..=399 => XoneError::new(
                Kind::Remote,
                format!("{} redirected {endpoint} elsewhere ({status})", self.system),
            )
            .hint(format!(
                "set the server's own address (for GitLab, gitlab.url; it is now {}); xone does not follow redirects with a token",
                self.origin()
            )),
            401 | 403 if job => XoneError::new(
                Kind::Remote,
                format!("{} refused the CI job token ({status}) for {endpoint}", self.system),
            )
            .tagged(Tag::Refused)
            .cause(message)
            .hint("a CI job token reaches only a few endpoints (it can trigger a pipeline, not follow one): give the job a project or personal access token with the api scope in a masked variable XONE_GITLAB_TOKEN"),
            401 | 403 => XoneError::new(
                Kind::Remote,
                format!("{} refused the token ({status}) for {endpoint}", self.system),
            )
            .tagged(Tag::Refused)
            .cause(message)
            .hint(
                "check the token and its scopes (GitLab: api; `xone auth status`), or log in again with `xone auth login`",
            ),
            404 => XoneError::not_found(format!("{} has no {endpoint}", self.system)).cause(message),
            429 | 502 | 503 | 504 => {
                let error = XoneError::new(
                    Kind::Remote,
                    format!("{} is unavailable ({status}) for {endpoint}", self.system),
                )
                .tagged(Tag::Unavailable)
                .cause(message)
                .hint("try again later");
                // 429 means the request was turned away before it did anything.
                return Err(Failure::Transient { error, pause, sent: status != 429 });
            }
            _ => {
                let error = XoneError::new(
                    Kind::Remote,
                    format!("{} {endpoint} failed with {status}", self.system),
                )
                .cause(message)
                .hint(format!("retry; if it persists, ask the {} administrators", self.system));
                if status >= 500 {
                    error.tagged(Tag::Unavailable)
                } else {
                    error
                }
            }
        };
        Err(Failure::Final(error))
    }

    /// `GET` a JSON document.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None, &[])?.json()
    }

    /// `GET` every page of a JSON array, following `Link: rel="next"` to the end.
    pub fn get_all(&self, path: &str) -> Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}per_page=100"));
        let mut all = Vec::new();
        while let Some(p) = next.take() {
            let reply = self.call(Method::GET, &p, None, &[])?;
            match reply.json()? {
                Value::Array(items) => all.extend(items),
                _ => {
                    return Err(XoneError::new(
                        Kind::Remote,
                        format!("{} answered with something other than a list", reply.endpoint),
                    ))
                }
            }
            // Only the path and query are taken from the link: the token goes nowhere but the
            // configured server, whatever address the server believes it has.
            next = reply.next.as_deref().map(|n| {
                let path = strip_base(n);
                let prefix = self.base.strip_prefix(&self.origin()).unwrap_or_default();
                path.strip_prefix(prefix).unwrap_or(&path).to_string()
            });
        }
        Ok(all)
    }

    /// `scheme://host[:port]` of the base URL.
    fn origin(&self) -> String {
        match self.base.find("://").and_then(|i| self.base[i + 3..].find('/').map(|j| i + 3 + j)) {
            Some(at) => self.base[..at].to_string(),
            None => self.base.clone(),
        }
    }
}

fn strip_base(url: &str) -> String {
    // Keep the path and query: the host is in the hint, once.
    match url.find("://").and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j)) {
        Some(at) => url[at..].to_string(),
        None => url.to_string(),
    }
}

/// A transport error in words, without reqwest's Debug dump.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// Percent-encodes one path segment or query value (`group/sub/name` → `group%2Fsub%2Fname`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(
                "<https://g.example/api/v4/projects?page=1>; rel=\"prev\", <https://g.example/api/v4/projects?page=3>; rel=\"next\"",
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://g.example/api/v4/projects?page=3"));
        h.insert("link", HeaderValue::from_static("<https://g.example/x?page=1>; rel=\"first\""));
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn backoff_honours_retry_after_and_grows() {
        assert_eq!(backoff(0, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(backoff(0, Some(Duration::from_secs(3600))), Duration::from_secs(30));
        let first = backoff(0, None);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        let later = backoff(3, None);
        assert!(later >= Duration::from_millis(800) && later <= Duration::from_millis(1600));
    }

    #[test]
    fn encoding_and_redaction() {
        assert_eq!(encode("group/sub/name"), "group%2Fsub%2Fname");
        assert_eq!(encode("feature/PAY-1-x"), "feature%2FPAY-1-x");
        let api = Api::new(
            "GitLab",
            "http://127.0.0.1:1/",
            Some(Secret { header: "PRIVATE-TOKEN", value: "glpat-secret".into() }),
            Settings { timeout: Duration::from_secs(1), retries: 0, verbose: false },
        )
        .unwrap();
        assert_eq!(api.redact("url?t=glpat-secret"), "url?t=[REDACTED]");
        assert_eq!(api.base, "http://127.0.0.1:1");
        assert_eq!(format!("{:?}", api.secret), "Some(PRIVATE-TOKEN: [REDACTED])");
    }
}
