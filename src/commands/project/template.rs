//! `xone project template`: the template a document kind starts from.

use clap::Args;
use clap_complete::ArgValueCandidates;

use super::super::Ctx;
use crate::complete;
use crate::domain::{DocKind, ProjectKey};
use crate::ops::{docs, project};
use crate::store;
use crate::ui::{safe, Result, XoneError};

#[derive(Args, Debug)]
#[command(
    after_long_help = "Placeholders {key}, {title} and {project} are filled in when a requirement is created."
)]
pub struct TemplateArgs {
    /// The project's key, e.g. PAY
    #[arg(add = ArgValueCandidates::new(complete::project_keys))]
    pub key: ProjectKey,
    /// The document kind whose template it is
    #[arg(long, default_value = "requirement")]
    pub kind: DocKind,
    /// Use the contents of FILE (- for standard input) from now on
    #[arg(long, value_name = "FILE", conflicts_with = "reset")]
    pub set: Option<String>,
    /// Go back to the built-in template
    #[arg(long)]
    pub reset: bool,
}

pub fn run(cx: &mut Ctx, a: TemplateArgs) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    store::project(store.conn(), &a.key)?;
    if a.set.is_none() && !a.reset {
        let body = docs::template_for(store.conn(), &a.key, a.kind)?;
        return match body {
            Some(b) if cx.ui.json => {
                cx.ui.print_json(&serde_json::json!({"kind": a.kind, "body": b}))
            }
            Some(b) => {
                let b = if cx.ui.stdout_tty { safe(&b) } else { b.as_str().into() };
                write!(cx.ui.out(), "{b}")?;
                Ok(())
            }
            None => Err(XoneError::not_found(format!("no {} template in {}", a.kind, a.key)).hint(
                format!(
                    "set one with `xone project template {} --kind {} --set FILE`",
                    a.key, a.kind
                ),
            )),
        };
    }
    let body = match &a.set {
        Some(file) => Some(String::from_utf8(docs::read_input(file, 1 << 20)?).map_err(|_| {
            XoneError::usage(format!("{file} is not UTF-8 text")).hint("a template is a text file")
        })?),
        None => None,
    };
    project::set_template(&mut store, &a.key, a.kind, body.as_deref(), &actor)?;
    cx.ui.status(format!(
        "{} template of {} {}",
        a.kind,
        a.key,
        if a.reset { "reset" } else { "set" }
    ));
    Ok(())
}
