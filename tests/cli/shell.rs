use std::path::{Path, PathBuf};

use crate::harness::*;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn seeded() -> TestEnv {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["requirement", "create", "-p", "PAY", "Refund cancelled orders"]);
    env.ok(&["requirement", "create", "-p", "PAY", "支付宝 QR"]);
    env
}

/// PATH with the xone under test first, as the registration scripts call `xone`.
fn path_with_xone() -> String {
    let dir = Path::new(XONE).parent().unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn checked_in_completions_match_the_binary() {
    let env = TestEnv::new();
    for (shell, file) in [
        ("bash", "xone.bash"),
        ("zsh", "_xone"),
        ("fish", "xone.fish"),
        ("powershell", "_xone.ps1"),
        ("elvish", "xone.elv"),
    ] {
        let out = env.ok(&["completion", shell]).stdout;
        let checked_in =
            std::fs::read_to_string(repo_file(&format!("completions/{file}"))).unwrap_or_default();
        assert!(out == checked_in, "completions/{file} is stale: run scripts/regen");
        assert!(out.contains("COMPLETE"), "{shell} registration calls back into xone");
    }
}

#[test]
fn checked_in_man_pages_match_the_binary() {
    let env = TestEnv::new();
    let out = env.root().join("man");
    env.ok(&["man", "--out", out.to_str().unwrap()]);
    let mut generated: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    generated.sort();
    for page in [
        "xone.1",
        "xone-requirement.1",
        "xone-requirement-create.1",
        "xone-project-member-add.1",
        "xone-review-verdict.1",
        "xone-branch-create.1",
    ] {
        assert!(generated.contains(&page.to_string()), "{page} missing");
    }
    let mut checked_in: Vec<String> = std::fs::read_dir(repo_file("man"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    checked_in.sort();
    assert_eq!(generated, checked_in, "man/ is stale: run scripts/regen");
    for page in &generated {
        assert!(
            std::fs::read(out.join(page)).unwrap()
                == std::fs::read(repo_file(&format!("man/{page}"))).unwrap(),
            "man/{page} is stale: run scripts/regen"
        );
    }
    let show = std::fs::read_to_string(out.join("xone-requirement-show.1")).unwrap();
    assert!(show.contains("JSON") && show.contains("test_submit"), "JSON fields are documented");
    assert!(env.ok(&["man"]).stdout.starts_with(".ie"), "xone.1 on stdout");
}

#[test]
fn man_opens_a_command_s_page_on_a_terminal_and_prints_roff_elsewhere() {
    let env = TestEnv::new();
    let roff = env.ok(&["man", "requirement", "list"]).stdout;
    assert!(roff.contains(".TH xone-requirement-list 1"), "{roff}");
    assert_eq!(env.ok(&["man", "req", "list"]).stdout, roff, "aliases name the same page");
    env.code(2, &["man", "requirement", "lst"]).says(&["has no command lst", "list, show"]);
    env.code(2, &["man", "requirement", "list", "x"]).says(&["xone man requirement list"]);
    env.code(2, &["man", "requirement", "--out", "d"]).says(&["cannot be used with"]);

    // On a terminal man(1) formats it: no roff reaches the person.
    let shown = env.in_terminal("man requirement list", &[("MANPAGER", "cat")]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.stdout.contains("xone-requirement-list(1)"), "{}", shown.stdout);
    assert!(!shown.stdout.contains(".TH") && !shown.stdout.contains(".SH"), "{}", shown.stdout);

    // Where there is no man, the command's help stands in, and says so.
    let bin = env.root().join("bin-without-man");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["sh", "script"] {
        let found = ["/bin", "/usr/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let fallback = env.in_terminal("man requirement list", &[("PATH", bin.to_str().unwrap())]);
    assert_eq!(fallback.code, 0, "{fallback:?}");
    assert!(fallback.stdout.contains("man is not installed"), "{}", fallback.stdout);
    assert!(fallback.stdout.contains("--status"), "{}", fallback.stdout);
}

#[test]
fn dynamic_completion_reads_the_database() {
    let env = seeded();
    let r = env.run_with(&["--", "xone", "requirement", "show", ""], |c| {
        c.env("COMPLETE", "fish");
    });
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("PAY-1\tRefund cancelled orders"), "{}", r.stdout);
    assert!(r.stdout.contains("PAY-2\t支付宝 QR"), "{}", r.stdout);

    let r = env.run_with(&["--", "xone", "project", "show", ""], |c| {
        c.env("COMPLETE", "fish");
    });
    assert!(r.stdout.contains("PAY\tPayments"), "{}", r.stdout);
    let r = env.run_with(
        &["--", "xone", "project", "member", "add", "PAY", "bob", "--role", ""],
        |c| {
            c.env("COMPLETE", "fish");
        },
    );
    for role in ["pm", "ui", "fe", "be", "qa", "data", "ops", "owner"] {
        assert!(r.stdout.lines().any(|l| l.starts_with(role)), "{role}: {}", r.stdout);
    }
    let r = env.run_with(&["--", "xone", "requirement", "doc", "PAY-1", ""], |c| {
        c.env("COMPLETE", "fish");
    });
    assert!(r.stdout.contains("tech-design") && r.stdout.contains("rollback-plan"), "{}", r.stdout);
    let r = env.run_with(&["--", "xone", "requirement", "list", "--status", ""], |c| {
        c.env("COMPLETE", "fish");
    });
    assert!(
        r.stdout.contains("requirement-review") && r.stdout.contains("cancelled"),
        "{}",
        r.stdout
    );
    // Completion never creates a database.
    let fresh = TestEnv::new();
    let r = fresh.run_with(&["--", "xone", "requirement", "show", ""], |c| {
        c.env("COMPLETE", "fish");
    });
    assert_eq!(r.code, 0);
    assert!(!fresh.db().exists());
}

#[test]
fn config_keys_complete_and_the_alias_stays_out_of_the_way() {
    let env = TestEnv::new();
    for verb in ["get", "set", "unset"] {
        let r = env.run_with(&["--", "xone", "config", verb, "gates."], |c| {
            c.env("COMPLETE", "fish");
        });
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.lines().any(|l| l.starts_with("gates.coverage\t")),
            "{verb}: {}",
            r.stdout
        );
        assert!(r.stdout.lines().all(|l| l.starts_with("gates.")), "{verb}: {}", r.stdout);
    }
    // No database is needed, or made, for keys.
    assert!(!env.db().exists());

    let r = env.run_with(&["--", "xone", "re"], |c| {
        c.env("COMPLETE", "fish");
    });
    let words: Vec<&str> = r.stdout.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert!(words.contains(&"requirement") && words.contains(&"review"), "{words:?}");
    assert!(!words.contains(&"req"), "the alias is not offered: {words:?}");
    // It still works when typed.
    env.ok(&["req", "list"]);
}

#[test]
fn requirement_keys_complete_by_prefix_in_number_order() {
    let env = TestEnv::new();
    project(&env);
    env.ok(&["project", "create", "PX", "--name", "Other"]);
    for i in 1..=12 {
        env.ok(&["requirement", "create", "-p", "PAY", &format!("R{i}")]);
    }
    env.ok(&["requirement", "create", "-p", "PX", "Elsewhere"]);
    let complete = |word: &str| -> Vec<String> {
        let r = env.run_with(&["--", "xone", "requirement", "show", word], |c| {
            c.env("COMPLETE", "fish");
        });
        assert_eq!(r.code, 0, "{r:?}");
        // Flags are offered too when nothing is typed; only the keys matter here.
        r.stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .filter(|v| !v.starts_with('-'))
            .collect()
    };
    assert_eq!(complete("PAY-1"), ["PAY-1", "PAY-10", "PAY-11", "PAY-12"]);
    assert_eq!(complete("PAY-").len(), 12);
    assert_eq!(complete("PAY-").last().unwrap(), "PAY-12");
    assert_eq!(complete("P").len(), 13);
    assert_eq!(complete("P")[12], "PX-1");
    // Keys read in any case, and complete so.
    assert_eq!(complete("pay-1"), ["PAY-1", "PAY-10", "PAY-11", "PAY-12"]);
    assert!(complete("PAY-x").is_empty());
    assert_eq!(complete("").len(), 13);
}

#[test]
fn bash_completes_through_the_checked_in_script() {
    let env = seeded();
    let script = format!(
        "source {}\nCOMP_WORDS=(xone requirement show PAY-)\nCOMP_CWORD=3\nCOMP_LINE='xone requirement show PAY-'\nCOMP_POINT=${{#COMP_LINE}}\n_clap_complete_xone xone PAY- show\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        repo_file("completions/xone.bash").display()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &script])
        .env_clear()
        .env("HOME", &env.home)
        .env("XONE_HOME", &env.state)
        .env("PATH", path_with_xone())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(got, ["PAY-1", "PAY-2"], "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fish_completes_through_the_checked_in_script() {
    let env = seeded();
    let out = std::process::Command::new("fish")
        .args([
            "--no-config",
            "-c",
            &format!(
                "source {}; complete -C 'xone requirement show PAY-'",
                repo_file("completions/xone.fish").display()
            ),
        ])
        .env_clear()
        .env("HOME", &env.home)
        .env("XONE_HOME", &env.state)
        .env("PATH", path_with_xone())
        .output()
        .expect("fish is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PAY-1\tRefund cancelled orders"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zsh_completes_through_the_checked_in_script() {
    let env = seeded();
    // Without a line editor, stand in for the two completion-system functions the script
    // uses: compdef (registration) and _describe (which prints the candidates here).
    let script = format!(
        "compdef() {{ :; }}\n_describe() {{ shift 2; local name=$1; print -rl -- \"${{(@P)name}}\"; }}\nsource {}\nwords=(xone requirement show PAY-)\nCURRENT=4\n_clap_dynamic_completer_xone\n",
        repo_file("completions/_xone").display()
    );
    let out = std::process::Command::new("zsh")
        .args(["-f", "-c", &script])
        .env_clear()
        .env("HOME", &env.home)
        .env("XONE_HOME", &env.state)
        .env("PATH", path_with_xone())
        .output()
        .expect("zsh is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        got,
        ["PAY-1:Refund cancelled orders", "PAY-2:支付宝 QR"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
