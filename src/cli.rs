//! The command tree. Doc comments are the help text and the man pages.

use clap::{Args, Parser, Subcommand};

use crate::commands::{
    auth, branch, build, deploy, doctor, gray, hook, notify, project, quickstart, requirement,
    review, rollback, setup, sync, Ctx,
};
use crate::ui::{Result, XoneError};

/// Carry a requirement from the first draft to a watched release, and back out again.
///
/// xone keeps each requirement's whole story in one place: people, documents, reviews,
/// feature branches, builds, deployments and every gate it passed. State lives in an SQLite
/// file under $XONE_HOME (default ~/.local/share/xone); configuration in
/// ~/.config/xone/config.toml and the nearest .xone.toml.
///
/// Exit codes: 0 success; 1 unexpected failure; 2 usage error; 3 not found; 4 gate or
/// precondition failed; 5 conflict; 6 a remote system failed or refused; 7 rollout or
/// analysis failed; 130 interrupted.
#[derive(Parser, Debug)]
#[command(name = "xone", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Filter the JSON document with a jq expression (implies --json; strings print raw)
    #[arg(long, global = true, value_name = "EXPR")]
    pub jq: Option<String>,
    /// Never ask: take the command line as the answer (also when CI is set)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Say more about what happens, on stderr
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the configuration file and the state database (safe to run again)
    Init(setup::InitArgs),
    /// Read and change settings (defaults < user config < .xone.toml < XONE_* < flags)
    #[command(subcommand)]
    Config(setup::ConfigCommand),
    /// Projects: their repositories, members and templates
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Requirements and their lifecycle, from draft to done
    #[command(subcommand, alias = "req")]
    Requirement(requirement::RequirementCommand),
    /// Review meetings whose record outlives the meeting
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// A requirement's feature branches across the project's repositories
    #[command(subcommand)]
    Branch(branch::BranchCommand),
    /// Build an app at a commit: tests, gates, image, push; and the builds' records
    Build(build::BuildArgs),
    /// Deploy an app's image to an environment's cluster, follow the rollout, and read what runs
    Deploy(deploy::DeployArgs),
    /// Gray releases: a new version on some instances, judged against the stable, widened or pulled back
    #[command(subcommand)]
    Gray(gray::GrayCommand),
    /// Roll an app back to an earlier revision, or everything a requirement deployed
    Rollback(rollback::RollbackArgs),
    /// Rebuild this machine's view of its projects from Jira, GitLab and the clusters
    Sync(sync::SyncArgs),
    /// The webhooks that hear about gates, builds, deploys, rollbacks, gray steps and watches
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Log in to GitLab (or Jira), see who the tokens belong to, log out
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Check that every configured system can be reached, and how fast
    Doctor(doctor::DoctorArgs),
    /// Git hooks that keep commits traceable to their requirement
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish)
    Completion(setup::CompletionArgs),
    /// Show a manual page (man on a terminal, roff elsewhere), or write them all
    Man(setup::ManArgs),
    /// Walk a sandbox requirement from draft to submitted on the embedded defaults
    Quickstart(quickstart::QuickstartArgs),
}

/// Runs the command the line asked for.
pub fn dispatch(cx: &mut Ctx, cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => setup::init(cx, a),
        Command::Config(c) => setup::config(cx, c),
        Command::Project(c) => project::run(cx, c),
        Command::Requirement(c) => requirement::run(cx, c),
        Command::Review(c) => review::run(cx, c),
        Command::Branch(c) => branch::run(cx, c),
        Command::Hook(c) => hook::run(cx, c),
        Command::Auth(c) => auth::run(cx, c),
        Command::Build(a) => build::run(cx, a),
        Command::Deploy(a) => deploy::run(cx, a),
        Command::Gray(c) => gray::run(cx, c),
        Command::Rollback(a) => rollback::run(cx, a),
        Command::Sync(a) => sync::run(cx, a),
        Command::Notify(c) => notify::run(cx, c),
        Command::Doctor(a) => doctor::run(cx, a),
        Command::Completion(a) => setup::completion(cx, a),
        Command::Man(a) => setup::man(cx, a),
        Command::Quickstart(a) => quickstart::run(cx, a),
    }
}

/// Runs one xone command line (`argv` without the program's name) in this process.
pub fn run_line(cx: &mut Ctx, argv: &[&str]) -> Result<()> {
    let cli = Cli::try_parse_from(std::iter::once("xone").chain(argv.iter().copied()))
        .map_err(|e| XoneError::internal(format!("quickstart step does not parse: {e}")))?;
    dispatch(cx, cli)
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_tree_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// Every argument and command says what it is for in `--help`, the man pages and
    /// completion descriptions.
    #[test]
    fn every_argument_has_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut cmd = super::Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "xone", &mut missing);
        assert!(missing.is_empty(), "no help for:\n{}", missing.join("\n"));
    }
}
