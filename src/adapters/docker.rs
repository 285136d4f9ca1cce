//! The Docker Engine API (bollard): image builds from a streamed tar context, through the
//! engine's BuildKit (with a session, as `DOCKER_BUILDKIT=1 docker build` runs them) where the
//! engine has it and its legacy builder where not, tags, pushes with the user's registry
//! credentials (`~/.docker/config.json`, `DOCKER_CONFIG`), and the pushed digest. bollard is
//! async; xone drives it from one small runtime here, so the commands stay synchronous.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::moby::buildkit::v1::StatusResponse;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use bollard::Docker;
use futures_util::StreamExt;

use crate::ui::{Kind, Result, XoneError};

pub struct Engine {
    docker: Docker,
    rt: tokio::runtime::Runtime,
}

/// Where the engine is: `DOCKER_HOST`, else the default socket.
pub fn engine_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

fn unreachable(host: &str, cause: impl std::fmt::Display) -> XoneError {
    XoneError::new(Kind::Remote, format!("the Docker engine at {host} cannot be reached"))
        .cause(cause)
        .hint("start one (`sudo systemctl start docker`, or dockerd) or point DOCKER_HOST at it (e.g. unix:///run/user/1000/docker.sock)")
}

/// What an image is built from and called.
pub struct BuildSpec {
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    /// Full references (`REGISTRY/NAME:TAG`); the first is built, the others tagged.
    pub tags: Vec<String>,
    pub labels: HashMap<String, String>,
    /// The network `RUN` steps use (`none`, `host`, a network's name); the engine's default
    /// without it.
    pub network: Option<String>,
}

/// The engine's builder a build goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builder {
    BuildKit,
    Legacy,
}

/// BuildKit where the engine has it: a Linux engine of API 1.39 (Engine 18.09) or later.
/// `DOCKER_BUILDKIT`, read as the docker CLI reads it, decides when it is set: `0` or `false`
/// for the legacy builder, `1` or `true` for BuildKit.
pub fn choose_builder(docker_buildkit: Option<&str>, os: &str, api: &str) -> Builder {
    match docker_buildkit.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("0" | "false") => return Builder::Legacy,
        Some("1" | "true") => return Builder::BuildKit,
        _ => {}
    }
    let version: Vec<u32> = api.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    let recent = (version.first().copied(), version.get(1).copied()) >= (Some(1), Some(39));
    if os.eq_ignore_ascii_case("linux") && recent {
        Builder::BuildKit
    } else {
        Builder::Legacy
    }
}

/// `NAME` and `TAG` of `NAME:TAG` (a registry port is not a tag).
pub fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => (&reference[..i], &reference[i + 1..]),
        _ => (reference, "latest"),
    }
}

/// The registry an image reference lives on (`docker.io` when it names none).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

impl Engine {
    /// Connects and agrees on the API version (the engine may be older than bollard).
    pub fn connect() -> Result<Engine> {
        let host = engine_address();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| XoneError::internal("cannot start the I/O runtime").cause(e))?;
        // Builds and pushes of big images take long: bollard's 2-minute default would cut them.
        let docker = Docker::connect_with_defaults()
            .map_err(|e| unreachable(&host, e))?
            .with_timeout(std::time::Duration::from_secs(3600));
        // Asking for the version is the reachability check too.
        let docker = rt.block_on(docker.negotiate_version());
        let docker = docker.map_err(|e| unreachable(&host, e))?;
        Ok(Engine { docker, rt })
    }

    /// The engine's version, as `docker version` gives it.
    pub fn version(&self) -> Result<String> {
        let v = self
            .rt
            .block_on(self.docker.version())
            .map_err(|e| unreachable(&engine_address(), e))?;
        Ok(v.version.unwrap_or_default())
    }

    /// The builder this engine builds with (see `choose_builder`).
    pub fn builder(&self) -> Result<Builder> {
        let v = self
            .rt
            .block_on(self.docker.version())
            .map_err(|e| unreachable(&engine_address(), e))?;
        let setting = std::env::var("DOCKER_BUILDKIT").ok();
        Ok(choose_builder(
            setting.as_deref(),
            v.os.as_deref().unwrap_or_default(),
            v.api_version.as_deref().unwrap_or_default(),
        ))
    }

    /// Builds from a tar context fed by `feed` (written on another thread and streamed to the
    /// engine, never held whole) with `builder`, reporting each line of output to `line`
    /// (with `true` for a step's header: `Step 2/5 : RUN …`, `[2/5] RUN …`); returns the first
    /// tag. A step that fails is exit 4 naming the step and its last lines.
    pub fn build(
        &self,
        spec: &BuildSpec,
        builder: Builder,
        feed: impl FnOnce(&mut dyn Write) -> Result<()> + Send + 'static,
        line: &mut dyn FnMut(&str, bool),
    ) -> Result<String> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
        let producer = std::thread::spawn(move || {
            let mut w = ChunkWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
            let result = feed(&mut w).and_then(|_| w.flush().map_err(XoneError::from));
            if let Err(e) = &result {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.message.clone())));
            }
            result
        });
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let first = spec.tags.first().cloned().unwrap_or_default();
        let mut options = BuildImageOptionsBuilder::new()
            .dockerfile(&spec.dockerfile)
            .t(&first)
            .labels(&spec.labels)
            .rm(true)
            .forcerm(true);
        if let Some(network) = &spec.network {
            options = options.networkmode(network);
        }
        if builder == Builder::BuildKit {
            // The session serves the registry credentials BuildKit asks for while it builds.
            options = options.version(BuilderVersion::BuilderBuildKit).session(&session_id());
        }
        // Every registry `docker login` knows, for private base images, as the CLI sends them.
        let credentials = Some(build_credentials());
        let mut said = Transcript::default();
        let failure = self.rt.block_on(async {
            let mut stream = self.docker.build_image(
                options.build(),
                credentials,
                Some(bollard::body_try_stream(body)),
            );
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                            said.legacy(text, line);
                        }
                        if let Some(BuildInfoAux::BuildKit(status)) = &info.aux {
                            said.buildkit(status, line);
                        }
                        if let Some(err) = info.error.or(info.error_detail.and_then(|d| d.message))
                        {
                            return Some(Failed::Step(err));
                        }
                    }
                    // The engine's JSON error on the build stream is a step that failed.
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        return Some(Failed::Step(error))
                    }
                    Err(e) => return Some(Failed::Engine(e.to_string())),
                }
            }
            None
        });
        let fed = producer
            .join()
            .unwrap_or_else(|_| Err(XoneError::internal("the context writer panicked")));
        // The engine's own account comes first: when it stops reading the context, that is
        // only the writer's view of the same failure.
        match failure {
            Some(Failed::Step(err)) => {
                let step = said.failed_step.clone().unwrap_or(said.step.clone());
                let mut e = XoneError::gate(if step.is_empty() {
                    "the image build failed".to_string()
                } else {
                    format!("the image build failed at {step}")
                })
                .cause(err.trim());
                for l in said.recent.iter().rev().take(8).rev() {
                    e = e.cause(format!("| {l}"));
                }
                return Err(if err.contains("network bridge not found") {
                    e.hint("this engine has no bridge network for RUN steps: `xone config set build.network none` (or host)")
                } else {
                    e.hint("fix the Dockerfile or the code it builds, commit, and build again")
                });
            }
            Some(Failed::Engine(err)) => {
                return Err(XoneError::new(
                    Kind::Remote,
                    format!("the Docker engine at {} broke off the build", engine_address()),
                )
                .cause(err)
                .hint("check the engine (docker info) and build again"));
            }
            None => fed?,
        }
        for extra in spec.tags.iter().skip(1) {
            let (repo, tag) = split_tag(extra);
            #[allow(deprecated)]
            let opts =
                bollard::image::TagImageOptions { repo: repo.to_string(), tag: tag.to_string() };
            self.rt.block_on(self.docker.tag_image(&first, Some(opts))).map_err(|e| {
                XoneError::new(Kind::Remote, format!("tagging {extra} failed")).cause(e)
            })?;
        }
        Ok(first)
    }

    /// Pushes `reference` with the user's credentials for its registry and returns the digest
    /// the registry gave it (`NAME@sha256:…`).
    pub fn push(&self, reference: &str, line: &mut dyn FnMut(&str, bool)) -> Result<String> {
        let (name, tag) = split_tag(reference);
        let registry = registry_of(name);
        let credentials = registry_credentials(registry)?;
        #[allow(deprecated)]
        let opts = bollard::image::PushImageOptions { tag: tag.to_string() };
        let failure = self.rt.block_on(async {
            let mut stream = self.docker.push_image(name, Some(opts), credentials);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(s) = &info.status {
                            line(s, false);
                        }
                        if let Some(err) = info.error.or(info.error_detail.and_then(|d| d.message))
                        {
                            return Some(err);
                        }
                    }
                    Err(e) => return Some(e.to_string()),
                }
            }
            None
        });
        if let Some(err) = failure {
            let refused = ["unauthorized", "authentication required", "denied", "no basic auth"]
                .iter()
                .any(|w| err.to_lowercase().contains(w));
            let e =
                XoneError::new(Kind::Remote, format!("pushing {reference} to {registry} failed"))
                    .cause(err.trim());
            return Err(if refused {
                e.hint(format!(
                    "the registry refused the credentials: `docker login {registry}` stores new ones in ~/.docker/config.json"
                ))
            } else {
                e.hint(format!("check that {registry} is up, then build again with --push"))
            });
        }
        let image = self.rt.block_on(self.docker.inspect_image(reference)).map_err(|e| {
            XoneError::new(Kind::Remote, format!("the engine lost {reference}")).cause(e)
        })?;
        let digests = image.repo_digests.unwrap_or_default();
        digests.into_iter().find(|d| d.split('@').next() == Some(name)).ok_or_else(|| {
            XoneError::new(Kind::Remote, format!("{registry} gave {reference} no digest"))
                .hint("push again; if it persists, the registry is at fault")
        })
    }
}

/// A name for a BuildKit session, unique on this machine.
fn session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("xone-{}-{nanos:x}", std::process::id())
}

/// A build's output as lines: the legacy builder's stream as it comes, BuildKit's status
/// messages as `docker build --progress=plain` tells them (each step's name once it starts,
/// `(cached)` when the cache served it, its output line by line, its error).
#[derive(Default)]
struct Transcript {
    /// The step running last, and the one that failed.
    step: String,
    failed_step: Option<String>,
    /// The last lines, for an error.
    recent: Vec<String>,
    /// BuildKit's steps seen starting, and those seen failing, by digest.
    started: std::collections::HashSet<String>,
    errored: std::collections::HashSet<String>,
    /// Output of a step that has not ended its line yet.
    partial: HashMap<String, String>,
}

impl Transcript {
    fn say(&mut self, l: &str, header: bool, line: &mut dyn FnMut(&str, bool)) {
        self.recent.push(l.to_string());
        if self.recent.len() > 12 {
            self.recent.remove(0);
        }
        line(l, header);
    }

    fn legacy(&mut self, text: &str, line: &mut dyn FnMut(&str, bool)) {
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let header = l.starts_with("Step ");
            if header {
                self.step = l.to_string();
            }
            self.say(l, header || l.starts_with("Successfully"), line);
        }
    }

    fn buildkit(&mut self, s: &StatusResponse, line: &mut dyn FnMut(&str, bool)) {
        for v in &s.vertexes {
            if (v.started.is_some() || v.cached) && self.started.insert(v.digest.clone()) {
                self.step = v.name.clone();
                let shown = if v.cached { format!("{} (cached)", v.name) } else { v.name.clone() };
                self.say(&shown, true, line);
            }
        }
        for log in &s.logs {
            let text = String::from_utf8_lossy(&log.msg);
            let mut pending = self.partial.remove(&log.vertex).unwrap_or_default();
            pending.push_str(&text);
            let mut lines: Vec<&str> = pending.split('\n').collect();
            let rest = lines.pop().unwrap_or_default().to_string();
            for l in lines {
                let l = l.trim_end_matches('\r');
                if !l.trim().is_empty() {
                    self.say(l, false, line);
                }
            }
            if !rest.is_empty() {
                self.partial.insert(log.vertex.clone(), rest);
            }
        }
        for v in &s.vertexes {
            if v.completed.is_some() {
                if let Some(rest) = self.partial.remove(&v.digest) {
                    self.say(rest.trim_end_matches('\r'), false, line);
                }
            }
            if !v.error.is_empty() && self.errored.insert(v.digest.clone()) {
                // Steps running beside the one that failed are cancelled: not the cause.
                if !v.error.contains("context canceled") && v.error != "canceled" {
                    self.failed_step.get_or_insert_with(|| v.name.clone());
                }
                self.say(&format!("ERROR: {}", v.error), false, line);
            }
        }
    }
}

/// Why a build stream ended early: a build step that failed, or the engine itself.
enum Failed {
    Step(String),
    Engine(String),
}

const CHUNK: usize = 64 * 1024;

/// Sends what is written in chunks to the engine's request body.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            // Not BrokenPipe: that would read as a closed stdout and be taken for success.
            std::io::Error::other("the engine stopped reading the build context")
        })
    }
}

/// The docker client's configuration directory: `DOCKER_CONFIG`, else `~/.docker`.
fn docker_config_dir() -> PathBuf {
    match std::env::var("DOCKER_CONFIG") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::config::home_dir().join(".docker"),
    }
}

/// The user's credentials for `registry`, as `docker login` stored them: a credential helper
/// (`credHelpers`, `credsStore`) or an `auths` entry. `None`: push anonymously.
pub fn registry_credentials(registry: &str) -> Result<Option<DockerCredentials>> {
    let path = docker_config_dir().join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    let bad = |why: String| {
        XoneError::usage(format!("{} cannot be read: {why}", path.display()))
            .hint("fix it, or log in again with `docker login`")
    };
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut keys =
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == "docker.io" {
        // `docker login` keeps Docker Hub's under its old index address.
        keys.insert(0, "https://index.docker.io/v1/".to_string());
        keys.push("index.docker.io".to_string());
    }
    let helper = keys
        .iter()
        .find_map(|k| config.pointer(&format!("/credHelpers/{}", k.replace('/', "~1"))))
        .or_else(|| config.get("credsStore"))
        .and_then(|h| h.as_str());
    if let Some(helper) = helper {
        if let Some(c) = from_helper(helper, registry)? {
            return Ok(Some(c));
        }
    }
    let Some(entry) = keys.iter().find_map(|k| config.get("auths")?.get(k)) else {
        return Ok(None);
    };
    let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let (username, password) = match field("auth") {
        Some(auth) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(format!("the auth entry of {registry} is not base64")))?;
            let text = String::from_utf8(raw)
                .map_err(|_| bad(format!("the auth entry of {registry} is not text")))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad(format!("the auth entry of {registry} is not user:password")))?;
            (Some(u.to_string()), Some(p.to_string()))
        }
        None => (field("username"), field("password")),
    };
    Ok(Some(DockerCredentials {
        username,
        password,
        identitytoken: field("identitytoken"),
        serveraddress: Some(keys[0].clone()),
        ..Default::default()
    }))
}

/// The registries of the user's docker configuration (`auths` and `credHelpers`) with their
/// credentials, keyed as the engine's builders look them up: Docker Hub under `docker.io`,
/// BuildKit's `registry-1.docker.io` and the legacy builder's `https://index.docker.io/v1/`.
/// A registry whose credentials cannot be had is left out: its pulls go anonymous, and the
/// engine's error names it.
pub fn build_credentials() -> HashMap<String, DockerCredentials> {
    let text = std::fs::read_to_string(docker_config_dir().join("config.json")).unwrap_or_default();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    credentials_by_host(&config, |host| registry_credentials(host).ok().flatten())
}

fn credentials_by_host(
    config: &serde_json::Value,
    lookup: impl Fn(&str) -> Option<DockerCredentials>,
) -> HashMap<String, DockerCredentials> {
    let mut hosts: Vec<String> = Vec::new();
    for section in ["auths", "credHelpers"] {
        for key in
            config.get(section).and_then(|s| s.as_object()).into_iter().flat_map(|m| m.keys())
        {
            let host = key.trim_start_matches("https://").trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or_default();
            let host = if host == "index.docker.io" { "docker.io" } else { host };
            if !host.is_empty() && !hosts.iter().any(|h| h == host) {
                hosts.push(host.to_string());
            }
        }
    }
    let mut out = HashMap::new();
    for host in hosts {
        let Some(c) = lookup(&host) else { continue };
        if host == "docker.io" {
            for alias in ["registry-1.docker.io", "https://index.docker.io/v1/"] {
                out.insert(alias.to_string(), c.clone());
            }
        }
        out.insert(host, c);
    }
    out
}

/// Asks `docker-credential-HELPER get` for `registry`'s credentials.
fn from_helper(helper: &str, registry: &str) -> Result<Option<DockerCredentials>> {
    let program = format!("docker-credential-{helper}");
    let child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Err(XoneError::gate(format!("the credential helper {program} is not installed"))
            .hint("install it, or remove credsStore/credHelpers from ~/.docker/config.json"));
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        XoneError::new(Kind::Remote, format!("{program} answered with something other than JSON"))
    })?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let username = s("Username");
    Ok(Some(match username.as_deref() {
        // Helpers give identity tokens this way.
        Some("<token>") => DockerCredentials { identitytoken: s("Secret"), ..Default::default() },
        _ => DockerCredentials { username, password: s("Secret"), ..Default::default() },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_credentials_are_keyed_as_both_builders_look_them_up() {
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": "x"},
                "registry.example.com:5000": {"auth": "y"},
                "http://old.example.com/v2/": {"auth": "z"},
            },
            "credHelpers": {"gcr.io": "gcloud", "registry.example.com:5000": "pass"},
        });
        let by_host = credentials_by_host(&config, |host| {
            (host != "gcr.io").then(|| DockerCredentials {
                username: Some(host.to_string()),
                ..Default::default()
            })
        });
        let mut keys: Vec<&str> = by_host.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "docker.io",
                "https://index.docker.io/v1/",
                "old.example.com",
                "registry-1.docker.io",
                "registry.example.com:5000"
            ]
        );
        assert_eq!(by_host["registry-1.docker.io"].username.as_deref(), Some("docker.io"));
    }

    #[test]
    fn buildkit_where_the_engine_has_it_unless_docker_buildkit_says_otherwise() {
        assert_eq!(choose_builder(None, "linux", "1.41"), Builder::BuildKit);
        assert_eq!(choose_builder(None, "linux", "1.39"), Builder::BuildKit);
        assert_eq!(choose_builder(None, "linux", "1.38"), Builder::Legacy);
        assert_eq!(choose_builder(None, "windows", "1.41"), Builder::Legacy);
        assert_eq!(choose_builder(None, "linux", ""), Builder::Legacy);
        assert_eq!(choose_builder(Some("0"), "linux", "1.41"), Builder::Legacy);
        assert_eq!(choose_builder(Some("false"), "linux", "1.41"), Builder::Legacy);
        assert_eq!(choose_builder(Some("1"), "windows", "1.38"), Builder::BuildKit);
        assert_eq!(choose_builder(Some(""), "linux", "1.41"), Builder::BuildKit);
    }

    #[test]
    fn buildkit_status_reads_as_lines_with_the_failed_step_named() {
        use bollard::moby::buildkit::v1::{Vertex, VertexLog};
        let at = Some(Default::default());
        let vertex = |d: &str, name: &str| Vertex {
            digest: d.into(),
            name: name.into(),
            started: at,
            ..Default::default()
        };
        let log = |d: &str, msg: &str| VertexLog {
            vertex: d.into(),
            msg: msg.as_bytes().to_vec(),
            ..Default::default()
        };
        let mut t = Transcript::default();
        let mut lines = Vec::new();
        let mut say =
            |l: &str, header: bool| lines.push(format!("{}{l}", if header { "# " } else { "" }));
        t.buildkit(
            &StatusResponse {
                vertexes: vec![
                    Vertex { cached: true, ..vertex("a", "[1/2] FROM base") },
                    vertex("b", "[2/2] RUN make"),
                ],
                logs: vec![log("b", "compiling\nlinking"), log("b", " done\n")],
                ..Default::default()
            },
            &mut say,
        );
        // Seen again, now failed: named once, with its error.
        let failed =
            Vertex { error: "exit code: 2".into(), completed: at, ..vertex("b", "[2/2] RUN make") };
        t.buildkit(
            &StatusResponse { vertexes: vec![failed.clone()], ..Default::default() },
            &mut say,
        );
        t.buildkit(&StatusResponse { vertexes: vec![failed], ..Default::default() }, &mut say);
        assert_eq!(
            lines,
            [
                "# [1/2] FROM base (cached)",
                "# [2/2] RUN make",
                "compiling",
                "linking done",
                "ERROR: exit code: 2"
            ]
        );
        assert_eq!(t.failed_step.as_deref(), Some("[2/2] RUN make"));

        // A step cancelled because another failed is not the one named.
        let mut t = Transcript::default();
        let cancelled =
            Vertex { error: "context canceled".into(), ..vertex("c", "[deps 2/3] RUN fetch") };
        let failed = Vertex { error: "exit code: 1".into(), ..vertex("d", "[3/4] RUN test") };
        let status = StatusResponse { vertexes: vec![cancelled, failed], ..Default::default() };
        t.buildkit(&status, &mut |_, _| {});
        assert_eq!(t.failed_step.as_deref(), Some("[3/4] RUN test"));
    }

    #[test]
    fn references() {
        assert_eq!(
            split_tag("127.0.0.1:5000/pay/web:PAY-1-abc1234"),
            ("127.0.0.1:5000/pay/web", "PAY-1-abc1234")
        );
        assert_eq!(split_tag("127.0.0.1:5000/pay/web"), ("127.0.0.1:5000/pay/web", "latest"));
        assert_eq!(registry_of("127.0.0.1:5000/pay/web"), "127.0.0.1:5000");
        assert_eq!(registry_of("registry.example.com/pay/web"), "registry.example.com");
        assert_eq!(registry_of("library/busybox"), "docker.io");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }
}
