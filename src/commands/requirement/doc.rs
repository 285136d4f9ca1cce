//! `xone requirement doc`: print, attach or edit a document; every change is a new version.

use clap::Args;
use clap_complete::ArgValueCompleter;
use serde::Serialize;

use super::super::Ctx;
use crate::complete;
use crate::domain::{DocKind, RequirementKey};
use crate::ops::docs::{self, human_size, is_text, NewVersion};
use crate::store;
use crate::ui::{safe, Result, XoneError};

#[derive(Args, Debug)]
#[command(
    disable_version_flag = true,
    after_long_help = "\
Without --attach or --edit, prints the document (the latest version, or --version N).
Binary documents (images, PDFs) print only into a pipe or file.
JSON with --print: {\"kind\", \"version\", \"sha256\", \"size\", \"media_type\", \"file_name\", \"created_at\", \"created_by\", \"note\", \"text\" (null when binary)}"
)]
pub struct DocArgs {
    /// The requirement's key, e.g. PAY-1
    #[arg(value_parser = complete::requirement_key, add = ArgValueCompleter::new(complete::requirement_keys))]
    pub key: RequirementKey,
    /// The document's kind
    #[arg(default_value = "requirement")]
    pub kind: DocKind,
    /// Open the document in $VISUAL or $EDITOR (needs a terminal)
    #[arg(long, group = "action")]
    pub edit: bool,
    /// Make FILE the next version (text or binary; - reads standard input)
    #[arg(long, value_name = "FILE", group = "action")]
    pub attach: Option<String>,
    /// Print the document
    #[arg(long, group = "action")]
    pub print: bool,
    /// With --print: this version instead of the latest
    #[arg(long, value_name = "N", conflicts_with_all = ["edit", "attach"])]
    pub version: Option<i64>,
    /// Why this version: recorded with it
    #[arg(long)]
    pub note: Option<String>,
}

pub fn run(cx: &mut Ctx, a: DocArgs) -> Result<()> {
    if let Some(file) = &a.attach {
        return attach(cx, &a, file);
    }
    if a.edit {
        return edit(cx, &a);
    }
    let store = cx.store()?;
    store::requirement(store.conn(), &a.key)?;
    let Some((v, bytes)) = store::document(store.conn(), &a.key, a.kind, a.version)? else {
        let what = match a.version {
            Some(n) => format!("{} has no {} document version {n}", a.key, a.kind),
            None => format!("{} has no {} document", a.key, a.kind),
        };
        return Err(XoneError::not_found(what).hint(format!(
            "attach one with `xone requirement doc {} {} --attach FILE`",
            a.key, a.kind
        )));
    };
    if cx.ui.json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            version: &'a store::DocVersion,
            text: Option<&'a str>,
        }
        let text = if is_text(&v.media_type) { std::str::from_utf8(&bytes).ok() } else { None };
        return cx.ui.print_json(&Out { version: &v, text });
    }
    if !is_text(&v.media_type) && cx.ui.stdout_tty {
        return Err(XoneError::gate(format!(
            "{} {} v{} is binary ({}, {})",
            a.key,
            a.kind,
            v.version,
            v.media_type,
            human_size(v.size as u64)
        ))
        .hint(format!(
            "redirect it to a file: xone requirement doc {} {} --print > {}",
            a.key,
            a.kind,
            v.file_name.as_deref().unwrap_or("FILE")
        )));
    }
    // Into a file or a pipe the document goes as it is; on a terminal, its control
    // characters cannot act.
    if cx.ui.stdout_tty {
        let text = String::from_utf8_lossy(&bytes);
        cx.ui.out().write_all(safe(&text).as_bytes())?;
    } else {
        cx.ui.out().write_all(&bytes)?;
    }
    Ok(())
}

fn attach(cx: &mut Ctx, a: &DocArgs, file: &str) -> Result<()> {
    let limit = docs::max_bytes(cx.config()?);
    let bytes = docs::read_input(file, limit)?;
    let name = docs::file_name(file);
    save(cx, a, docs::from_file(&bytes, name.as_deref(), file))
}

fn save(cx: &mut Ctx, a: &DocArgs, new: NewVersion<'_>) -> Result<()> {
    let actor = cx.actor()?;
    let mut store = cx.store()?;
    let tracker = cx.tracker()?;
    let v = docs::save_version(
        &mut store,
        tracker.as_ref(),
        &a.key,
        a.kind,
        a.note.as_deref(),
        &new,
        &actor,
    )?;
    let (key, kind) = (&a.key, a.kind);
    let size = human_size(new.bytes.len() as u64);
    match v {
        Some(v) => cx.ui.status(format!("{key} {kind} v{v} saved ({}, {size})", new.media_type)),
        None => cx.ui.status(format!("{key} {kind}: unchanged, no new version")),
    }
    Ok(())
}

fn edit(cx: &mut Ctx, a: &DocArgs) -> Result<()> {
    let how = format!(
        "write it to a file and run `xone requirement doc {} {} --attach FILE` (or --attach - to read standard input)",
        a.key, a.kind
    );
    if !(cx.ui.stdin_tty && cx.ui.stderr_tty) {
        return Err(XoneError::gate("--edit needs a terminal to open an editor in").hint(how));
    }
    let (current, based_on) = docs::draft(&cx.store()?, &a.key, a.kind, &how)?;
    // Chosen here as dialoguer would choose it ($VISUAL, $EDITOR, vi), so that an editor
    // that cannot be started is named.
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let edited = dialoguer::Editor::new()
        .executable(&editor)
        .extension(".md")
        .require_save(false)
        .trim_newlines(false)
        .edit(&current)
        .map_err(|e| {
            let dialoguer::Error::IO(e) = e;
            let not_found = e.kind() == std::io::ErrorKind::NotFound;
            let err = if not_found {
                XoneError::usage(format!("the editor `{}` cannot be started", safe(&editor)))
                    .hint(format!("set VISUAL or EDITOR to an installed editor, or {how}"))
            } else {
                XoneError::internal(format!("the editor `{}` failed", safe(&editor)))
                    .hint(how.clone())
            };
            err.cause(e)
        })?;
    // An unchanged text makes no new version: the store compares contents, not timestamps.
    let Some(text) = edited else {
        cx.ui.status("the editor failed or was aborted: no new version");
        return Ok(());
    };
    let version = NewVersion {
        bytes: text.as_bytes(),
        media_type: "text/markdown",
        file_name: None,
        source: "the editor",
        based_on: Some(based_on),
    };
    save(cx, a, version)
}
