//! Apps and local builds against a real Docker engine and a real registry with basic auth,
//! both started by scripts/test (and so by .ci/run).

use crate::harness::*;

/// The services scripts/test started; a run without them fails saying how to get them.
pub struct Services {
    pub registry: String,
    user: String,
    pub password: String,
    pub base: String,
}

pub fn services() -> Services {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: the build tests need a Docker engine and a registry; run them through scripts/test, which starts both")
        })
    };
    let _ = var("DOCKER_HOST");
    Services {
        registry: var("XONE_TEST_REGISTRY"),
        user: var("XONE_TEST_REGISTRY_USER"),
        password: var("XONE_TEST_REGISTRY_PASSWORD"),
        base: var("XONE_TEST_BASE_IMAGE"),
    }
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// PAY with a repository `web` holding a Dockerfile, an app `web` pushing to the test
/// registry, and PAY-1 with its feature branch and one commit. `docker login` credentials
/// are in the test home's ~/.docker/config.json.
pub fn setup(s: &Services) -> (TestEnv, std::path::PathBuf, String) {
    let mut env = TestEnv::new();
    env.set_var("DOCKER_HOST", &std::env::var("DOCKER_HOST").unwrap());
    // The test engine runs without a bridge network (no iptables here): RUN steps get none.
    env.set_var("XONE_BUILD_NETWORK", "none");
    let web = env.repo("web", false);
    let repo = git2::Repository::open(&web).unwrap();
    let dockerfile = format!("FROM {}\nCOPY app.txt /app.txt\nRUN cat /app.txt\n", s.base);
    commit(&repo, "Dockerfile", &dockerfile, "Dockerfile", None);
    commit(&repo, "app.txt", "committed content\n", "app", None);
    env.ok(&["project", "create", "PAY", "--name", "Payments", "--repo", web.to_str().unwrap()]);
    // A unique image name per test: tests share the engine and the registry.
    let image = format!("{}/pay/web-{}", s.registry, std::process::id() as u64 * 1000 + unique());
    env.ok(&[
        "project", "app", "add", "PAY", "web", "--repo", "web", "--image", &image, "--port", "8080",
    ]);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund orders"]);
    env.ok(&["branch", "create", "PAY-1"]);
    commit(&repo, "refund.txt", "refund\n", "PAY-1: refunds", Some("feature/PAY-1-refund-orders"));
    login(&env, s, &s.password);
    (env, web, image)
}

pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

pub fn login(env: &TestEnv, s: &Services, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", s.user));
    let config = serde_json::json!({ "auths": { &s.registry: { "auth": auth } } });
    std::fs::create_dir_all(env.home.join(".docker")).unwrap();
    std::fs::write(env.home.join(".docker/config.json"), config.to_string()).unwrap();
}

pub const TESTS_PASS: &str = r#"printf '<testsuite><testcase classname="pay" name="refund"/><testcase classname="pay" name="void"/></testsuite>' > junit.xml; printf '<coverage line-rate="0.9"/>' > coverage.xml"#;

#[test]
fn apps_are_added_listed_and_shown() {
    let env = TestEnv::new();
    let web = env.repo("web", false);
    env.ok(&["project", "create", "PAY", "--name", "P", "--repo", web.to_str().unwrap()]);
    let a = env.json(&[
        "project",
        "app",
        "add",
        "PAY",
        "web",
        "--repo",
        "web",
        "--image",
        "registry.example.com/pay/web",
        "--port",
        "8080",
        "--health",
        "/healthz",
        "--replicas",
        "prod=3",
        "--replicas",
        "test=1",
        "--test-cmd",
        "make test",
    ]);
    assert_eq!(a["repo"], "web");
    assert_eq!(a["replicas"]["prod"], 3);
    let list = env.json(&["project", "app", "list", "PAY"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["project", "app", "show", "PAY", "web"])["health"], "/healthz");
    env.code(5, &["project", "app", "add", "PAY", "web", "--repo", "web"])
        .says(&["already has an app web"]);
    env.code(3, &["project", "app", "add", "PAY", "api", "--repo", "nope"])
        .says(&["no repository nope", "web"]);
    env.code(2, &["project", "app", "add", "PAY", "Web", "--repo", "web"])
        .says(&["invalid app name"]);
    env.code(2, &["project", "app", "add", "PAY", "list", "--repo", "web"]).says(&["xone build"]);
    env.code(
        2,
        &["project", "app", "add", "PAY", "api", "--repo", "web", "--image", "r.example.com/a:1"],
    )
    .says(&["no tag"]);
    // Docker refuses capitals in a repository path (the registry's own name may have them).
    env.code(
        2,
        &[
            "project",
            "app",
            "add",
            "PAY",
            "api",
            "--repo",
            "web",
            "--image",
            "r.example.com/Pay/api",
        ],
    );
    env.ok(&[
        "project",
        "app",
        "add",
        "PAY",
        "api2",
        "--repo",
        "web",
        "--image",
        "Registry.Example.com:5000/pay/api",
    ]);
    env.code(
        2,
        &["project", "app", "add", "PAY", "api", "--repo", "web", "--replicas", "prod=lots"],
    );
    env.code(3, &["project", "app", "show", "PAY", "api"]);
    // App names complete from the state database.
    let r = env.run_with(&["--", "xone", "build", "w"], |c| {
        c.env("COMPLETE", "fish");
    });
    assert!(r.stdout.contains("web"), "{r:?}");
}

#[test]
fn a_local_build_is_made_from_the_commit_tagged_labelled_and_pushed() {
    let s = services();
    let (env, web, image) = setup(&s);
    // Uncommitted changes in the work tree never reach the image.
    std::fs::write(web.join("app.txt"), "dirty, uncommitted\n").unwrap();
    let sha = git2::Repository::open(&web)
        .unwrap()
        .revparse_single("feature/PAY-1-refund-orders")
        .unwrap()
        .id()
        .to_string();
    let b = env.json(&[
        "build",
        "web",
        "--requirement",
        "PAY-1",
        "--local",
        "--push",
        "--test-cmd",
        TESTS_PASS,
    ]);
    assert_eq!(b["status"], "success", "{b}");
    assert_eq!(b["kind"], "local");
    assert_eq!(b["sha"], sha);
    assert_eq!(b["ref"], "feature/PAY-1-refund-orders");
    assert_eq!(b["tests"]["total"], 2);
    assert_eq!(b["tests"]["passed"], 2);
    assert_eq!(b["coverage"], 90.0);
    let gates = b["gates"].as_array().unwrap();
    assert!(gates.iter().all(|g| g["passed"] == true && g["forced"] == false), "{b}");
    assert_eq!(gates.iter().find(|g| g["name"] == "coverage").unwrap()["threshold"], 80.0);
    let short = &sha[..7];
    assert_eq!(b["image"], format!("{image}:PAY-1-{short}"));
    let digest = b["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with(&format!("{image}@sha256:")), "{digest}");

    // Both tags, with the labels, on the engine.
    for tag in [format!("{image}:PAY-1-{short}"), format!("{image}:{short}")] {
        let labels = docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", &tag]);
        let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
        assert_eq!(labels["org.opencontainers.image.revision"], sha);
        assert_eq!(labels["xone.requirement"], "PAY-1");
        assert!(labels["org.opencontainers.image.created"].is_string());
        assert!(labels["org.opencontainers.image.source"].as_str().unwrap().ends_with("web"));
    }
    // The registry has exactly that digest under the tag.
    let path = image.split_once('/').unwrap().1;
    let resp = local_http()
        .head(format!("http://{}/v2/{path}/manifests/PAY-1-{short}", s.registry))
        .basic_auth(&s.user, Some(&s.password))
        .header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let served = resp.headers()["docker-content-digest"].to_str().unwrap().to_string();
    assert_eq!(digest.split('@').nth(1).unwrap(), served);

    // The image holds the committed file, not the work tree's change.
    let tag = format!("{image}:{short}");
    let inside = docker(&["run", "--rm", "--network", "none", &tag, "cat", "/app.txt"]);
    assert_eq!(inside, "committed content\n");
    // The build's log holds the engine's steps.
    let id = b["id"].as_i64().unwrap().to_string();
    let log = env.ok(&["build", "log", &id]).stdout;
    assert!(log.contains("COPY app.txt /app.txt") && !log.contains("dirty"), "{log}");
    // Listed, shown, and on the requirement's story.
    let list = env.json(&["build", "list", "web"]);
    assert_eq!(list[0]["id"], b["id"]);
    assert_eq!(env.json(&["build", "show", &id])["digest"], digest);
    assert!(env.ok(&["requirement", "log", "PAY-1"]).stdout.contains("web build"));
}

#[test]
fn a_build_without_tests_passes_on_the_image_alone_and_says_so() {
    let s = services();
    let (env, _web, _image) = setup(&s);
    let r = env.ok(&["build", "web", "--requirement", "PAY-1", "--json"]);
    assert!(r.stderr.contains("measures no tests or coverage"), "{}", r.stderr);
    let b = r.json();
    assert_eq!(b["status"], "success");
    assert!(b["tests"].is_null() && b["coverage"].is_null(), "{b}");
    assert!(b["digest"].is_null(), "not pushed");
}

#[test]
fn failed_gates_exit_4_naming_each_and_force_passes_them_on_the_record() {
    let s = services();
    let (env, _web, _image) = setup(&s);
    let failing = r#"printf '<testsuite><testcase classname="pay" name="refund"><failure/></testcase><testcase name="void"/></testsuite>' > junit.xml; printf '<coverage line-rate="0.5"/>' > coverage.xml; exit 1"#;
    let r = env.code(4, &["build", "web", "--requirement", "PAY-1", "--test-cmd", failing]);
    r.says(&["failed its gates: tests, coverage", "coverage: 50", "threshold 80", "pay::refund"]);
    let list = env.json(&["build", "list"]);
    assert_eq!(list[0]["status"], "failed");
    assert!(list[0]["image"].is_null(), "no image after a failed gate: {list}");
    assert_eq!(list[0]["tests"]["failed"], 1);

    // A lower threshold from the configuration lets the coverage through; the tests still fail.
    env.ok(&["config", "set", "gates.coverage", "40"]);
    let r = env.code(4, &["build", "web", "--requirement", "PAY-1", "--test-cmd", failing]);
    r.says(&["failed its gates: tests"]);
    assert!(!r.stderr.contains("gates: tests, coverage"));

    let b = env.json(&[
        "build",
        "web",
        "--requirement",
        "PAY-1",
        "--test-cmd",
        failing,
        "--force",
        "--reason",
        "flaky, tracked",
    ]);
    assert_eq!(b["status"], "success");
    let tests =
        b["gates"].as_array().unwrap().iter().find(|g| g["name"] == "tests").unwrap().clone();
    assert_eq!((tests["passed"].clone(), tests["forced"].clone()), (false.into(), true.into()));
    let log = env.ok(&["requirement", "log", "PAY-1"]).stdout;
    assert!(log.contains("flaky, tracked"), "{log}");
}

#[test]
fn a_failing_dockerfile_step_is_named_with_its_output() {
    let s = services();
    let (env, web, _image) = setup(&s);
    let repo = git2::Repository::open(&web).unwrap();
    let broken = format!("FROM {}\nRUN echo preparing && echo 'no such tool' && false\n", s.base);
    commit(&repo, "Dockerfile", &broken, "break it", Some("feature/PAY-1-refund-orders"));
    // BuildKit names the step as `[2/2] RUN …`; the legacy builder as `Step 2/2 : RUN …`.
    let r = env.code(4, &["build", "web", "--requirement", "PAY-1"]);
    r.says(&["the image build failed at [2/2] RUN echo preparing", "no such tool", "exit code"]);
    assert_eq!(env.json(&["build", "list"])[0]["status"], "failed");
    let r = env.run_with(&["build", "web", "--requirement", "PAY-1"], |c| {
        c.env("DOCKER_BUILDKIT", "0");
    });
    assert_eq!(r.code, 4, "{r:?}");
    r.says(&["the image build failed at Step 2/", "RUN echo preparing", "no such tool"]);
}

/// A Dockerfile only BuildKit builds: an unused stage that would fail, a cache mount kept
/// between builds, an optional secret mount, a bind mount of the context.
const BUILDKIT_DOCKERFILE: &str = "\
FROM BASE AS broken
RUN echo 'this stage is not needed' && false

FROM BASE AS deps
COPY app.txt /app.txt
RUN --mount=type=cache,target=/cache echo warm >> /cache/runs && wc -l < /cache/runs > /deps.txt

FROM BASE
RUN --mount=type=secret,id=token cat /run/secrets/token 2>/dev/null || echo 'no token secret'
RUN --mount=type=bind,source=app.txt,target=/mnt/app.txt cp /mnt/app.txt /bound.txt
COPY --from=deps /deps.txt /deps.txt
";

#[test]
fn buildkit_dockerfiles_build_through_the_engine_s_buildkit() {
    let s = services();
    let (env, web, image) = setup(&s);
    let repo = git2::Repository::open(&web).unwrap();
    let dockerfile = BUILDKIT_DOCKERFILE.replace("BASE", &s.base);
    commit(&repo, "Dockerfile", &dockerfile, "BuildKit", Some("feature/PAY-1-refund-orders"));
    let b = env.json(&["build", "web", "--requirement", "PAY-1"]);
    assert_eq!(b["status"], "success", "{b}");
    let tag = b["image"].as_str().unwrap().to_string();
    assert!(tag.starts_with(&image), "{tag}");
    let inside = docker(&["run", "--rm", "--network", "none", &tag, "cat", "/bound.txt"]);
    assert_eq!(inside, "committed content\n", "the bind mount read the committed context");
    let id = b["id"].as_i64().unwrap().to_string();
    let log = env.ok(&["build", "log", &id]).stdout;
    assert!(log.contains("through the engine's BuildKit"), "{log}");
    assert!(log.contains("no token secret"), "the optional secret was absent: {log}");
    assert!(!log.contains("this stage is not needed"), "the unused stage was skipped: {log}");

    // The cache mount outlives the build: the next build's step finds the first one's run.
    let runs = |tag: &str| -> u32 {
        let out = docker(&["run", "--rm", "--network", "none", tag, "cat", "/deps.txt"]);
        out.trim().parse().unwrap()
    };
    let before = runs(&tag);
    commit(&repo, "app.txt", "changed content\n", "change", Some("feature/PAY-1-refund-orders"));
    let again = env.json(&["build", "web", "--requirement", "PAY-1"]);
    assert_eq!(again["status"], "success", "{again}");
    assert_eq!(runs(again["image"].as_str().unwrap()), before + 1);

    // The legacy builder cannot read it, and says where.
    let r = env.run_with(&["build", "web", "--requirement", "PAY-1"], |c| {
        c.env("DOCKER_BUILDKIT", "0");
    });
    assert_eq!(r.code, 4, "{r:?}");
    r.says(&["the image build failed"]);
    let last = env.json(&["build", "list"])[0]["id"].to_string();
    let log = env.ok(&["build", "log", &last]).stdout;
    assert!(log.contains("through the engine's legacy builder"), "{log}");
}

#[test]
fn an_engine_without_a_bridge_network_is_named_with_the_setting_that_helps() {
    let s = services();
    let (mut env, _web, _image) = setup(&s);
    env.set_var("XONE_BUILD_NETWORK", "");
    let r = env.code(4, &["build", "web", "--requirement", "PAY-1"]);
    r.says(&["RUN cat /app.txt", "network bridge not found", "xone config set build.network none"]);
    // BuildKit takes none, host or default: a network's name is refused before anything runs.
    let builds = env.json(&["build", "list"]).as_array().unwrap().len();
    env.set_var("XONE_BUILD_NETWORK", "my-net");
    env.code(2, &["build", "web", "--requirement", "PAY-1"])
        .says(&["build.network is 'my-net'", "none, host or default"]);
    assert_eq!(env.json(&["build", "list"]).as_array().unwrap().len(), builds);
}

#[test]
fn nothing_is_recorded_when_the_build_cannot_start() {
    let s = services();
    let (mut env, web, _image) = setup(&s);
    // No Dockerfile at the commit.
    let repo = git2::Repository::open(&web).unwrap();
    env.ok(&[
        "project",
        "app",
        "add",
        "PAY",
        "api",
        "--repo",
        "web",
        "--dockerfile",
        "api/Dockerfile",
    ]);
    env.code(4, &["build", "api", "--requirement", "PAY-1"])
        .says(&["has no api/Dockerfile", "xone project app set PAY api --dockerfile PATH"]);
    // A ref that is not there.
    env.code(3, &["build", "web", "--ref", "release/nope"]).says(&["has no ref release/nope"]);
    // Neither a requirement nor a ref; an unknown app.
    env.code(2, &["build", "web"]).says(&["--requirement KEY or --ref REF"]);
    env.code(3, &["build", "nope", "--ref", "main"]);
    // No engine where DOCKER_HOST points.
    env.set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    env.code(6, &["build", "web", "--requirement", "PAY-1"])
        .says(&["unix:///nonexistent/docker.sock", "DOCKER_HOST"]);
    assert_eq!(env.json(&["build", "list"]), serde_json::json!([]));
    drop(repo);
}

#[test]
fn a_registry_that_refuses_the_credentials_is_exit_6_without_the_secret() {
    let s = services();
    let (env, _web, _image) = setup(&s);
    login(&env, &s, "wrong-password-123");
    let r = env.code(6, &["build", "web", "--requirement", "PAY-1", "--push"]);
    r.says(&["refused the credentials", "docker login"]);
    assert!(!r.stderr.contains("wrong-password-123") && !r.stdout.contains("wrong-password-123"));
    assert_eq!(env.json(&["build", "list"])[0]["status"], "failed");
}

#[test]
fn an_interrupted_build_is_recorded_as_interrupted() {
    let s = services();
    let (env, _web, _image) = setup(&s);
    let mut child = env
        .cmd()
        .args(["build", "web", "--requirement", "PAY-1", "--test-cmd", "sleep 20"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    let b = env.json(&["build", "show", "1"]);
    assert_eq!(b["status"], "interrupted", "{b}");
}

#[test]
fn the_testing_gate_counts_only_builds_that_measured_and_passed_at_the_branch() {
    let s = services();
    let (env, web, _image) = setup(&s);
    for _ in 0..4 {
        env.ok(&["requirement", "advance", "PAY-1", "--force", "--reason", "setup"]);
    }
    let wants_build = |env: &TestEnv| {
        let show = env.json(&["requirement", "show", "PAY-1"]);
        show["next"].to_string().contains("no build of web")
    };
    assert!(wants_build(&env));
    env.ok(&["build", "web", "--requirement", "PAY-1"]);
    assert!(wants_build(&env), "a build without tests does not count");
    env.ok(&["build", "web", "--requirement", "PAY-1", "--test-cmd", TESTS_PASS]);
    assert!(!wants_build(&env), "a measured, passing build at the tip counts");
    let show = env.json(&["requirement", "show", "PAY-1"]);
    assert_eq!(show["builds"].as_array().unwrap().len(), 2, "{show}");
    // New work on the branch: the build no longer stands for it.
    let repo = git2::Repository::open(&web).unwrap();
    commit(&repo, "more.txt", "more\n", "PAY-1: more", Some("feature/PAY-1-refund-orders"));
    assert!(wants_build(&env));
    // An integration build that contains the new tip counts again.
    env.ok(&["branch", "integrate", "test", "PAY-1"]);
    env.ok(&["build", "web", "--ref", "release/test", "--test-cmd", TESTS_PASS]);
    assert!(!wants_build(&env));
}

#[test]
fn a_credential_helper_supplies_the_registry_password() {
    let s = services();
    let (mut env, _web, image) = setup(&s);
    // `docker login` with a credsStore keeps nothing in config.json but the helper's name.
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-xonetest");
    let script = format!(
        "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = \"{}\" ] || exit 1\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$host\"\n",
        s.registry, s.user, s.password
    );
    std::fs::write(&helper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        env.home.join(".docker/config.json"),
        r#"{"auths": {}, "credsStore": "xonetest"}"#,
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    env.set_var("PATH", &path);
    let b = env.json(&["build", "web", "--requirement", "PAY-1", "--push"]);
    assert!(b["digest"].as_str().unwrap().starts_with(&format!("{image}@sha256:")), "{b}");
    // DOCKER_CONFIG points elsewhere: no credentials there, and the registry says no.
    let elsewhere = env.root().join("docker-config");
    std::fs::create_dir_all(&elsewhere).unwrap();
    env.set_var("DOCKER_CONFIG", &elsewhere.to_string_lossy());
    env.code(6, &["build", "web", "--requirement", "PAY-1", "--push"])
        .says(&["refused the credentials"]);
}

#[test]
fn the_context_leaves_out_what_dockerignore_names() {
    let s = services();
    let (env, web, image) = setup(&s);
    std::fs::write(web.join("Dockerfile"), format!("FROM {}\nCOPY . /ctx\n", s.base)).unwrap();
    std::fs::write(web.join(".dockerignore"), "secret.txt\nlogs/\n!logs/keep.txt\n").unwrap();
    std::fs::write(web.join("secret.txt"), "do not ship\n").unwrap();
    std::fs::create_dir_all(web.join("logs")).unwrap();
    std::fs::write(web.join("logs/a.log"), "noise\n").unwrap();
    std::fs::write(web.join("logs/keep.txt"), "keep\n").unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args([
                "-C",
                web.to_str().unwrap(),
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
            ])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["add", "-A"]);
    git(&["commit", "-qm", "context with ignores"]);
    let b = env.json(&["build", "web", "--ref", "main"]);
    let sha = b["sha"].as_str().unwrap();
    let tag = format!("{image}:{}", &sha[..7]);
    let files =
        docker(&["run", "--rm", "--network", "none", &tag, "sh", "-c", "cd /ctx && ls -a . logs"]);
    assert!(
        files.contains("app.txt") && files.contains("keep.txt") && files.contains("Dockerfile"),
        "{files}"
    );
    assert!(!files.contains("secret.txt") && !files.contains("a.log"), "{files}");
}

#[test]
fn an_app_without_an_image_is_pushed_to_its_environment_registry() {
    let s = services();
    let (env, _web, _image) = setup(&s);
    env.ok(&["project", "app", "add", "PAY", "api", "--repo", "web"]);
    env.code(4, &["build", "api", "--requirement", "PAY-1", "--push"])
        .says(&["no image name", "--registry"]);
    let registry = format!("{}/envs{}", s.registry, unique());
    env.ok(&[
        "project",
        "env",
        "set",
        "PAY",
        "test",
        "--context",
        "c",
        "--namespace",
        "pay",
        "--registry",
        &registry,
    ]);
    let b = env.json(&["build", "api", "--requirement", "PAY-1", "--push"]);
    assert!(b["digest"].as_str().unwrap().starts_with(&format!("{registry}/api@sha256:")), "{b}");
}

#[test]
fn doctor_reports_the_docker_engine() {
    let _s = services();
    let mut env = TestEnv::new();
    env.set_var("DOCKER_HOST", &std::env::var("DOCKER_HOST").unwrap());
    let d = env.json(&["doctor"]);
    let docker = d.as_array().unwrap().iter().find(|c| c["system"] == "docker").unwrap().clone();
    assert_eq!(docker["status"], "ok", "{d}");
    assert!(docker["version"].as_str().unwrap().starts_with(|c: char| c.is_ascii_digit()), "{d}");
    assert!(docker["detail"].as_str().unwrap().contains("build with BuildKit"), "{d}");
    env.set_var("DOCKER_BUILDKIT", "0");
    let d = env.json(&["doctor"]);
    let docker = d.as_array().unwrap().iter().find(|c| c["system"] == "docker").unwrap().clone();
    assert!(docker["detail"].as_str().unwrap().contains("legacy builder"), "{d}");
    env.set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let r = env.run(&["doctor", "--json"]);
    assert_eq!(r.code, 6, "{r:?}");
    let row =
        r.json().as_array().unwrap().iter().find(|c| c["system"] == "docker").unwrap().clone();
    assert_eq!(row["status"], "failed");
    assert!(row["detail"].as_str().unwrap().contains("cannot be reached"), "{row}");
}
