use crate::harness::*;

fn seeded() -> TestEnv {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "R"]);
    env
}

#[test]
fn a_corrupt_file_is_refused_and_left_byte_for_byte() {
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.state).unwrap();
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(env.db(), &garbage).unwrap();
    for args in
        [&["requirement", "list"][..], &["init"], &["project", "create", "PAY", "--name", "x"]]
    {
        env.code(4, args).says(&[env.db().to_str().unwrap(), "is not an SQLite database", "mv"]);
    }
    assert!(std::fs::read(env.db()).unwrap() == garbage, "the file changed");
    let names: Vec<String> = std::fs::read_dir(&env.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["state.db"], "no -wal or -shm files beside it");
}

#[test]
fn a_damaged_database_is_refused_untouched() {
    let env = seeded();
    let mut bytes = std::fs::read(env.db()).unwrap();
    // Keep the header, wreck the schema page.
    for b in bytes.iter_mut().skip(100).take(3000) {
        *b = 0xA5;
    }
    std::fs::write(env.db(), &bytes).unwrap();
    let _ = std::fs::remove_file(env.state.join("state.db-wal"));
    let _ = std::fs::remove_file(env.state.join("state.db-shm"));
    let r = env.run(&["requirement", "list"]);
    assert_eq!(r.code, 4, "{r:?}");
    r.says(&[env.db().to_str().unwrap(), "is corrupt", "mv "]);
    assert!(std::fs::read(env.db()).unwrap() == bytes, "the file changed");
}

#[test]
fn a_foreign_sqlite_file_is_refused() {
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.state).unwrap();
    {
        let c = rusqlite::Connection::open(env.db()).unwrap();
        c.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT); INSERT INTO photos (path) VALUES ('a.jpg');").unwrap();
    }
    let before = std::fs::read(env.db()).unwrap();
    env.code(4, &["project", "list"]).says(&["belongs to another program"]);
    assert!(std::fs::read(env.db()).unwrap() == before, "the file changed");
}

#[test]
fn a_newer_schema_is_refused() {
    let env = seeded();
    {
        let c = rusqlite::Connection::open(env.db()).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(env.db()).unwrap();
    env.code(4, &["requirement", "list"])
        .says(&["written by a newer xone (schema 99", "upgrade xone"]);
    env.code(4, &["requirement", "create", "-p", "PAY", "x"]);
    assert!(std::fs::read(env.db()).unwrap() == before, "the file changed");
}

#[test]
fn kill_9_or_ctrl_c_mid_write_leaves_a_consistent_database() {
    let env = seeded();
    let doc = write(&env, "big.md", &vec![b'x'; 2 << 20]);
    let mut interrupted = 0;
    for round in 0..6 {
        let mut children: Vec<std::process::Child> = (0..4)
            .map(|i| {
                let mut c = env.cmd();
                if i % 2 == 0 {
                    c.args(["requirement", "create", "-p", "PAY", &format!("round {round}")]);
                } else {
                    c.args(["requirement", "doc", "PAY-1", "api", "--attach", &doc]);
                }
                c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
                c.spawn().unwrap()
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(3 + round * 4));
        for (i, c) in children.iter_mut().enumerate() {
            if i % 2 == 0 {
                let _ = c.kill();
            } else {
                // Ctrl-C: outside a transaction xone exits at once; inside one it finishes it.
                let _ =
                    std::process::Command::new("kill").args(["-INT", &c.id().to_string()]).status();
            }
        }
        for mut c in children {
            use std::os::unix::process::ExitStatusExt;
            let status = c.wait().unwrap();
            interrupted += usize::from(status.signal().is_some() || status.code() == Some(130));
        }
    }
    assert!(interrupted > 0, "no process was caught mid-command: the test proved nothing");
    let c = rusqlite::Connection::open(env.db()).unwrap();
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let fk: i64 =
        c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0);
    // Keys stay gap-free: every allocated number has its requirement.
    let (n, max): (i64, i64) = c
        .query_row("SELECT count(*), max(seq) FROM requirement", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(n, max);
    drop(c);
    let key = env
        .ok(&["requirement", "create", "-p", "PAY", "after the storm"])
        .stdout
        .trim()
        .to_string();
    assert_eq!(key, format!("PAY-{}", n + 1));
}

#[test]
fn readers_are_not_blocked_by_a_long_writer() {
    let env = seeded();
    let c = rusqlite::Connection::open(env.db()).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c.execute_batch("BEGIN IMMEDIATE; UPDATE project SET description = 'held' WHERE key = 'PAY';")
        .unwrap();
    // WAL: a reader goes on while another connection holds the write lock.
    env.ok(&["requirement", "list"]);
    env.ok(&["requirement", "show", "PAY-1"]);
    c.execute_batch("COMMIT").unwrap();
}

/// Ctrl-C at any moment of `requirement create`: every requirement that was made had its key
/// printed, so a script that retries on a missing key never makes one twice.
#[test]
fn ctrl_c_never_leaves_a_requirement_made_without_its_key_printed() {
    let env = TestEnv::new();
    project(&env);
    let mut printed = 0;
    let mut interrupted = 0;
    for round in 0..40u64 {
        let child = env
            .cmd()
            .args(["requirement", "create", "-p", "PAY", &format!("round {round}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(500 + round * 750 % 25_000));
        let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        use std::os::unix::process::ExitStatusExt;
        match out.status.code() {
            Some(0) => printed += usize::from(stdout.trim().starts_with("PAY-")),
            Some(130) => {
                interrupted += 1;
                printed += usize::from(stdout.trim().starts_with("PAY-"));
                assert!(stderr.contains("interrupted"), "says so: {stderr}");
            }
            None => assert_eq!(out.status.signal(), Some(2), "only before xone took over SIGINT"),
            Some(c) => panic!("exit {c}: {stderr}"),
        }
    }
    assert!(interrupted > 0, "no run was interrupted: the test proved nothing");
    let made = env.json(&["requirement", "list", "--all"]).as_array().unwrap().len();
    assert_eq!(made, printed, "{made} made, {printed} keys printed");
}

#[test]
fn a_configuration_file_that_is_not_text_is_a_usage_error_naming_it() {
    let env = TestEnv::new();
    let file = env.home.join(".config/xone/config.toml");
    std::fs::create_dir_all(&file).unwrap();
    env.code(2, &["requirement", "list"])
        .says(&[&format!("the configuration file {} is a directory", file.display())]);
    std::fs::remove_dir(&file).unwrap();
    std::fs::write(&file, b"[gates]\ncoverage = 80.0 # \xff\xfe\n").unwrap();
    env.code(2, &["requirement", "list"]).says(&["config.toml is not UTF-8 text", "offset 26"]);
}

#[test]
fn a_state_database_that_is_a_directory_is_named() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.state.join("state.db")).unwrap();
    env.code(4, &["project", "list"]).says(&[&format!(
        "the state database {} is a directory",
        env.state.join("state.db").display()
    )]);
}

#[test]
fn a_writer_that_holds_the_lock_past_the_busy_timeout_is_a_conflict() {
    let mut env = TestEnv::new();
    project(&env);
    let c = rusqlite::Connection::open(env.db()).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    env.set_var("XONE_STATE_BUSY_TIMEOUT", "1s");
    let started = std::time::Instant::now();
    env.code(5, &["requirement", "create", "-p", "PAY", "Refunds"]).says(&[
        &format!("another xone is writing the state database {}", env.db().display()),
        "state.busy_timeout",
    ]);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "it waited first");
    // Readers are not held up by a writer.
    env.ok(&["project", "list"]);
    c.execute_batch("ROLLBACK").unwrap();
    env.ok(&["requirement", "create", "-p", "PAY", "Refunds"]);
}

#[test]
fn the_state_database_and_its_folder_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("umask 000; exec {XONE} init")])
        .env_clear()
        .env("HOME", &env.home)
        .env("XONE_HOME", &env.state)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XONE_USER", "tester")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    project(&env);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.state), 0o700);
    for entry in std::fs::read_dir(&env.state).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("state.db") {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

/// Runs xone as the unprivileged user `nobody` (tests run as root, whom no permission stops).
fn as_nobody(env: &TestEnv, args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", XONE])
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("XONE_HOME", &env.state)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XONE_USER", "tester")
        .env("CI", "1")
        .current_dir(&env.work)
        .output()
        .expect("setpriv runs (util-linux)")
}

#[test]
fn in_a_read_only_home_reading_commands_work_and_changes_name_the_database() {
    let env = TestEnv::new();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534", env.root().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    for args in [
        &["project", "create", "PAY", "--name", "Payments"][..],
        &["requirement", "create", "-p", "PAY", "Refunds"],
    ] {
        let out = as_nobody(&env, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let chmod = |mode: &str, p: &std::path::Path| {
        assert!(std::process::Command::new("chmod")
            .args([mode, p.to_str().unwrap()])
            .status()
            .unwrap()
            .success())
    };
    chmod("555", &env.state);
    chmod("444", &env.db());
    let before = std::fs::read(env.db()).unwrap();
    let list = as_nobody(&env, &["requirement", "list"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).contains("PAY-1"));
    let show = as_nobody(&env, &["requirement", "show", "PAY-1", "--json"]);
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    let create = as_nobody(&env, &["requirement", "create", "-p", "PAY", "Another"]);
    assert_eq!(create.status.code(), Some(4));
    let err = String::from_utf8_lossy(&create.stderr);
    assert!(
        err.contains(&format!("the state database {} is read-only", env.db().display())),
        "{err}"
    );
    assert!(err.contains("commands that only read still work"), "{err}");
    assert_eq!(std::fs::read(env.db()).unwrap(), before, "nothing written");
    chmod("755", &env.state);
}
