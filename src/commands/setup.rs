//! `init`, `config`, `completion` and `man`: setting xone up.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;
use serde::Serialize;

use super::Ctx;
use crate::complete;
use crate::config::{self, Config};
use crate::store::{self, Store};
use crate::ui::{safe, Result, XoneError};

#[derive(Args, Debug)]
#[command(
    after_long_help = "JSON: {\"config\": path, \"database\": path, \"created\": [paths created by this run]}"
)]
pub struct InitArgs {}

pub fn init(cx: &mut Ctx, _args: InitArgs) -> Result<()> {
    let cfg = cx.config()?;
    let user_file = cfg.user_file.clone();
    let db = config::state_dir().join(store::FILE_NAME);
    let mut created = Vec::new();
    if !user_file.exists() {
        config::write_private(
            &user_file,
            b"# xone configuration: see `xone config list` for every key and where its value comes from.\n",
        )?;
        created.push(user_file.clone());
    }
    let db_existed = db.exists();
    Store::open(&config::state_dir())?;
    if !db_existed {
        created.push(db.clone());
    }
    if cx.ui.json {
        #[derive(Serialize)]
        struct Out<'a> {
            config: &'a PathBuf,
            database: &'a PathBuf,
            created: &'a [PathBuf],
        }
        return cx.ui.print_json(&Out { config: &user_file, database: &db, created: &created });
    }
    for (label, path) in [("config", &user_file), ("database", &db)] {
        let state = if created.contains(path) { "created" } else { "exists" };
        cx.ui.status(format!("{label:<9} {} ({state})", path.display()));
    }
    Ok(())
}

/// Configuration keys are dotted (`gates.coverage`); `xone config list` shows them all.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the value of KEY, as the layers resolve it
    #[command(after_long_help = "\
user.name prints the acting user xone will sign with, even when it is derived (GitLab CI's \
user, git's user.email, $USER). --show-origin puts where the value comes from before it, as \
`git config --show-origin` does: file:PATH, env:VAR, git:user.email or default. \
JSON: {\"key\", \"value\", \"origin\": default|user|project|env|gitlab-ci|git|system|unknown}")]
    Get {
        /// A dotted key, e.g. gates.coverage (`xone config list` shows them all)
        #[arg(add = ArgValueCandidates::new(complete::config_keys))]
        key: String,
        /// Put where the value comes from before it (file:PATH, env:VAR, …)
        #[arg(long)]
        show_origin: bool,
    },
    /// Set KEY to VALUE in the user config (or the project's .xone.toml with --project)
    Set {
        /// A dotted key, e.g. gates.coverage
        #[arg(add = ArgValueCandidates::new(complete::config_keys))]
        key: String,
        /// The value; numbers, true/false and durations (30s) are checked against the key
        value: String,
        /// Write the nearest .xone.toml (or ./.xone.toml) instead of the user config
        #[arg(long)]
        project: bool,
    },
    /// Remove KEY from the user config (or the project's .xone.toml with --project)
    Unset {
        /// A dotted key, e.g. gates.coverage
        #[arg(add = ArgValueCandidates::new(complete::config_keys))]
        key: String,
        /// Edit the nearest .xone.toml instead of the user config
        #[arg(long)]
        project: bool,
    },
    /// Every key, its value and the layer it comes from
    #[command(
        after_long_help = "JSON: [{\"key\", \"value\", \"origin\": default|user|project|env|unset, \"doc\"}]"
    )]
    List,
    /// Where the configuration and the state live
    #[command(
        after_long_help = "One line each: the user config file, the nearest .xone.toml (or none), the state directory \
and the database (`--jq .database` prints one path). JSON: {\"config\", \"project_config\" (or null), \"state_dir\", \"database\"}"
    )]
    Path,
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn config(cx: &mut Ctx, cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Get { key, show_origin } => {
            let entry = cx.config()?.get(&key)?.cloned();
            // Who acts is known even when nobody set it: say the name records are signed with.
            if entry.as_ref().is_some_and(|e| e.key == "user.name") || key == "user.name" {
                let who = cx.identity()?;
                if cx.ui.json {
                    return cx.ui.print_json(&serde_json::json!({
                        "key": "user.name", "value": who.name, "origin": who.origin,
                    }));
                }
                return match show_origin {
                    true => cx.ui.line(safe(&format!("{}\t{}", who.place, who.name))),
                    false => cx.ui.line(safe(&who.name)),
                };
            }
            match entry {
                None => Err(XoneError::not_found(format!("{key} is not set"))
                    .hint(format!("set it with `xone config set {key} VALUE`"))),
                Some(e) if cx.ui.json => cx.ui.print_json(&e),
                Some(e) if show_origin => {
                    let cfg = cx.config()?;
                    let place = match e.origin {
                        config::Origin::Default => "default".to_string(),
                        config::Origin::User => format!("file:{}", cfg.user_file.display()),
                        config::Origin::Project => format!(
                            "file:{}",
                            cfg.project_file.clone().unwrap_or_default().display()
                        ),
                        config::Origin::Env => format!("env:{}", config::env_var(e.key)),
                    };
                    cx.ui.line(safe(&format!("{place}\t{}", value_text(&e.value))))
                }
                Some(e) => cx.ui.line(safe(&value_text(&e.value))),
            }
        }
        ConfigCommand::Set { key, value, project } => {
            let path = if project {
                let cfg = cx.config()?;
                cfg.project_file.clone().unwrap_or_else(|| PathBuf::from(".xone.toml"))
            } else {
                config::user_config_path()
            };
            let v = Config::set_in_file(&path, &key, &value)?;
            cx.ui.status(format!("{key} = {} in {}", value_text(&v), path.display()));
            Ok(())
        }
        ConfigCommand::Unset { key, project } => {
            let path = if project {
                let cfg = cx.config()?;
                cfg.project_file.clone().unwrap_or_else(|| PathBuf::from(".xone.toml"))
            } else {
                config::user_config_path()
            };
            if Config::unset_in_file(&path, &key)? {
                cx.ui.status(format!("{key} removed from {}", path.display()));
            } else {
                cx.ui.status(format!("{key} was not set in {}", path.display()));
            }
            Ok(())
        }
        ConfigCommand::List => {
            #[derive(Serialize)]
            struct Row {
                key: &'static str,
                value: Option<toml::Value>,
                origin: String,
                doc: &'static str,
            }
            let who = cx.identity()?;
            let cfg = cx.config()?;
            let mut rows: Vec<Row> = Config::known_keys()
                .map(|(key, doc)| {
                    if key == "user.name" {
                        let value = Some(toml::Value::String(who.name.clone()));
                        return Row { key, value, origin: who.origin.to_string(), doc };
                    }
                    let e = cfg.get(key).ok().flatten();
                    Row {
                        key,
                        value: e.map(|e| e.value.clone()),
                        origin: e.map(|e| e.origin.to_string()).unwrap_or_else(|| "unset".into()),
                        doc,
                    }
                })
                .collect();
            // The notification targets of every layer, their URLs masked (they hold tokens).
            for h in &cfg.webhooks {
                let mut text = format!("{} ({}", h.shown(), h.format);
                if !h.events.is_empty() {
                    text.push_str(&format!("; events {}", h.events.join(",")));
                }
                if !h.projects.is_empty() {
                    text.push_str(&format!("; projects {}", h.projects.join(",")));
                }
                if h.secret.is_some() {
                    text.push_str("; signed");
                }
                text.push(')');
                rows.push(Row {
                    key: "notify.webhook",
                    value: Some(toml::Value::String(text)),
                    origin: format!("file:{}", h.file.display()),
                    doc: "where notifications go",
                });
            }
            if cx.ui.json {
                return cx.ui.print_json(&rows);
            }
            let mut table = vec![vec!["KEY".into(), "VALUE".into(), "FROM".into()]];
            table.extend(rows.iter().map(|r| {
                vec![
                    r.key.to_string(),
                    r.value.as_ref().map(value_text).unwrap_or_default(),
                    r.origin.clone(),
                ]
            }));
            write!(cx.ui.out(), "{}", crate::ui::safe_table(&table))?;
            Ok(())
        }
        ConfigCommand::Path => {
            let cfg = cx.config()?;
            let (user, project) = (cfg.user_file.clone(), cfg.project_file.clone());
            let dir = config::state_dir();
            if cx.ui.json {
                return cx.ui.print_json(&serde_json::json!({
                    "config": user,
                    "project_config": project,
                    "state_dir": dir,
                    "database": dir.join(store::FILE_NAME),
                }));
            }
            let shown = |p: Option<&std::path::Path>| {
                p.map(|p| p.display().to_string()).unwrap_or_else(|| "none".into())
            };
            let rows = vec![
                vec!["config".to_string(), shown(Some(&user))],
                vec!["project config".to_string(), shown(project.as_deref())],
                vec!["state".to_string(), shown(Some(&dir))],
                vec!["database".to_string(), shown(Some(&dir.join(store::FILE_NAME)))],
            ];
            write!(cx.ui.out(), "{}", crate::ui::safe_table(&rows))?;
            Ok(())
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

/// Completion asks xone itself for candidates (COMPLETE=SHELL xone -- WORDS), so project
/// keys, requirement keys, roles, document kinds and statuses come from the state database.
#[derive(Args, Debug)]
#[command(after_long_help = "\
Install:
  bash:        xone completion bash > ~/.local/share/bash-completion/completions/xone
  zsh:         xone completion zsh > \"${fpath[1]}/_xone\"
  fish:        xone completion fish > ~/.config/fish/completions/xone.fish
  powershell:  xone completion powershell >> $PROFILE
  elvish:      xone completion elvish >> ~/.config/elvish/rc.elv")]
pub struct CompletionArgs {
    /// The shell whose script to print
    pub shell: Shell,
}

pub fn write_completion(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Powershell => &Powershell,
        Shell::Elvish => &Elvish,
    };
    completer.write_registration(crate::complete::VAR, "xone", "xone", "xone", out)
}

pub fn completion(cx: &mut Ctx, args: CompletionArgs) -> Result<()> {
    write_completion(args.shell, cx.ui.out())?;
    Ok(())
}

#[derive(Args, Debug)]
#[command(after_long_help = "\
On a terminal the page opens in man(1), as `git help -m` opens one; elsewhere its roff is \
printed. Examples: `xone man`, `xone man requirement list`, `xone man --out ~/.local/share/man/man1`.")]
pub struct ManArgs {
    /// The command whose page to show, e.g. `requirement list`; xone's own page without it
    #[arg(value_name = "COMMAND", conflicts_with = "out")]
    pub command: Vec<String>,
    /// Write one page per command and subcommand (xone.1, xone-requirement-create.1, …) here
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// One command's page, named as man expects (`xone-requirement-create`).
fn man_page(cmd: &clap::Command, name: &str) -> Vec<u8> {
    let page_cmd = cmd.clone().name(name.to_string()).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page_cmd).render(&mut buf).expect("rendering to memory cannot fail");
    buf
}

/// Every page, named as man expects: `xone-requirement-create.1`.
pub fn man_pages(mut cmd: clap::Command) -> Vec<(String, Vec<u8>)> {
    fn walk(cmd: &clap::Command, prefix: &str, pages: &mut Vec<(String, Vec<u8>)>) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        pages.push((format!("{name}.1"), man_page(cmd, &name)));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            walk(sub, &name, pages);
        }
    }
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, "", &mut pages);
    pages
}

/// The command `words` name (aliases too), and its page's name.
fn find_page(mut cmd: clap::Command, words: &[String]) -> Result<(clap::Command, String)> {
    cmd.build();
    let mut name = cmd.get_name().to_string();
    for word in words {
        let Some(sub) = cmd.find_subcommand(word).filter(|s| !s.is_hide_set()) else {
            let subs: Vec<&str> = cmd
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .map(|s| s.get_name())
                .collect();
            let err = XoneError::usage(format!(
                "`{}` has no command {}",
                name.replace('-', " "),
                safe(word)
            ));
            return Err(if subs.is_empty() {
                err.hint(format!("its page is `xone man {}`", words_before(words, word)))
            } else {
                err.hint(format!("its commands: {}", subs.join(", ")))
            });
        };
        name = format!("{name}-{}", sub.get_name());
        cmd = sub.clone();
    }
    Ok((cmd, name))
}

fn words_before(words: &[String], word: &String) -> String {
    words.iter().take_while(|w| *w != word).cloned().collect::<Vec<_>>().join(" ")
}

pub fn man(cx: &mut Ctx, args: ManArgs) -> Result<()> {
    let Some(dir) = args.out else {
        let (mut cmd, name) = find_page((cx.tree)(), &args.command)?;
        let roff = man_page(&cmd, &name);
        if !cx.ui.stdout_tty {
            cx.ui.out().write_all(&roff)?;
            return Ok(());
        }
        if !crate::ui::manual::show(&format!("{name}.1"), &roff)? {
            cx.ui.warn("man is not installed here; this is the command's --help");
            let help = cmd.render_long_help().to_string();
            cx.ui.out().write_all(help.as_bytes())?;
        }
        return Ok(());
    };
    let pages = man_pages((cx.tree)());
    std::fs::create_dir_all(&dir)
        .map_err(|e| XoneError::internal(format!("cannot create {}", dir.display())).cause(e))?;
    for (name, body) in &pages {
        std::fs::write(dir.join(name), body).map_err(|e| {
            XoneError::internal(format!("cannot write {}", dir.join(name).display())).cause(e)
        })?;
    }
    cx.ui.status(format!("wrote {} pages to {}", pages.len(), dir.display()));
    Ok(())
}
