//! A requirement's documents: what a file holds (text or binary, of which kind), the template
//! a document starts from, and each change kept as a new version.

use std::io::Read;

use super::events;
use crate::adapters::tracker::Tracker;
use crate::config::Config;
use crate::domain::{template, DocKind, ProjectKey, RequirementKey};
use crate::store::{self, Event, Store};
use crate::ui::{Kind, Result, XoneError};

/// The largest document or attachment accepted (`docs.max_bytes`).
pub fn max_bytes(config: &Config) -> u64 {
    config.int("docs.max_bytes").unwrap_or(10 << 20) as u64
}

/// Reads FILE, or standard input for `-`, refusing more than `limit` bytes.
pub fn read_input(file: &str, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let too_big = |size: String| {
        XoneError::gate(format!("{file} is {size}; documents are limited to {} (docs.max_bytes)", human_size(limit)))
            .hint("raise the limit with `xone config set docs.max_bytes BYTES`, or link to the file instead")
    };
    if file == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(too_big(format!("more than {}", human_size(limit))));
        }
        return Ok(buf);
    }
    // Looked at before it is opened: opening a FIFO waits for a writer that may never come.
    if let Ok(meta) = std::fs::metadata(file) {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let what = if t.is_dir() {
            Some("a directory")
        } else if t.is_fifo() {
            Some("a FIFO (named pipe)")
        } else if t.is_socket() {
            Some("a socket")
        } else if t.is_char_device() || t.is_block_device() {
            Some("a device")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(XoneError::usage(format!("{file} is {what}, not a file"))
                .hint("attach a regular file, or send it on standard input with `--attach -`"));
        }
    }
    let f = std::fs::File::open(file).map_err(|e| {
        let kind =
            if e.kind() == std::io::ErrorKind::NotFound { Kind::NotFound } else { Kind::Internal };
        XoneError::new(kind, format!("cannot read {file}")).cause(e)
    })?;
    let size = f.metadata()?.len();
    if size > limit {
        return Err(too_big(human_size(size)));
    }
    // The size above is 0 for pipes and devices: count what was read, too.
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(too_big(format!("more than {}", human_size(limit))));
    }
    Ok(buf)
}

pub fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// What a document's bytes are, from their first bytes and the file name.
pub fn media_type(bytes: &[u8], file_name: Option<&str>) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
    ];
    if let Some((_, t)) = MAGIC.iter().find(|(m, _)| bytes.starts_with(m)) {
        return t;
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return "image/webp";
    }
    if std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0) {
        let ext = file_name.and_then(|f| f.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
        return match ext.as_deref() {
            Some("svg") => "image/svg+xml",
            Some("html" | "htm") => "text/html",
            Some("json") => "application/json",
            Some("txt") => "text/plain",
            _ => "text/markdown",
        };
    }
    "application/octet-stream"
}

pub fn is_text(media_type: &str) -> bool {
    media_type.starts_with("text/")
        || media_type == "application/json"
        || media_type == "image/svg+xml"
}

/// The name a file is kept under: its last path component (none for standard input).
pub fn file_name(file: &str) -> Option<String> {
    (file != "-")
        .then(|| std::path::Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten()
}

/// The template a new document of `kind` starts from in `project`.
pub fn template_for(
    c: &rusqlite::Connection,
    project: &ProjectKey,
    kind: DocKind,
) -> Result<Option<String>> {
    Ok(store::template(c, project, kind)?
        .or_else(|| (kind == DocKind::Requirement).then(|| template::REQUIREMENT.to_string())))
}

/// A document version about to be stored.
pub struct NewVersion<'a> {
    pub bytes: &'a [u8],
    pub media_type: &'a str,
    pub file_name: Option<&'a str>,
    /// Where it came from, for the event: a file, standard input, the editor.
    pub source: &'a str,
    /// The version it was made from (0: none); if another was saved meanwhile, nothing is
    /// stored and the command fails with a conflict instead of silently replacing it.
    pub based_on: Option<i64>,
}

/// A file (or standard input) as the next version of a document.
pub fn from_file<'a>(bytes: &'a [u8], name: Option<&'a str>, source: &'a str) -> NewVersion<'a> {
    NewVersion {
        media_type: media_type(bytes, name),
        bytes,
        file_name: name,
        source,
        based_on: None,
    }
}

/// Stores the next version of a requirement's document with its event; `None` when it is the
/// same as the latest (no new version).
pub fn save_version(
    store: &mut Store,
    tracker: &dyn Tracker,
    key: &RequirementKey,
    kind: DocKind,
    note: Option<&str>,
    new: &NewVersion<'_>,
    actor: &str,
) -> Result<Option<i64>> {
    let size = human_size(new.bytes.len() as u64);
    store.write(|tx| {
        let req = store::open_requirement(tx, key)?;
        if let Some(based_on) = new.based_on {
            let latest = store::document(tx, key, kind, None)?.map(|(d, _)| d.version).unwrap_or(0);
            if latest != based_on {
                return Err(XoneError::conflict(format!(
                    "{key} {kind} changed while it was being edited (v{latest} was saved meanwhile)"
                ))
                .hint(format!("look at v{latest} with `xone requirement doc {key} {kind} --print`, then edit again")));
            }
        }
        let v = store::add_document_version(tx, key, kind, new.bytes, new.media_type, new.file_name, actor, note)?;
        if let Some(v) = v {
            let detail = format!("{kind} v{v} from {} ({}, {size})", new.source, new.media_type);
            let e = Event { detail: Some(detail), reason: note.map(str::to_string), ..events::requirement(&req, actor, "doc") };
            store::record(tx, &e)?;
            // The requirement document is its issue's description, in a tracker that has one.
            if kind == DocKind::Requirement && is_text(new.media_type) {
                tracker.describe(tx, key, &String::from_utf8_lossy(new.bytes))?;
            }
        }
        Ok(v)
    })
}

/// What an editor opens for a document: its latest text, or its template; and the version it
/// is based on (0: none yet). A binary document cannot be edited as text; `how` says what to
/// do instead.
pub fn draft(
    store: &Store,
    key: &RequirementKey,
    kind: DocKind,
    how: &str,
) -> Result<(String, i64)> {
    let req = store::open_requirement(store.conn(), key)?;
    match store::document(store.conn(), key, kind, None)? {
        Some((v, _)) if !is_text(&v.media_type) => Err(XoneError::gate(format!(
            "{key} {kind} is binary ({}): it cannot be edited as text",
            v.media_type
        ))
        .hint(how)),
        Some((v, bytes)) => Ok((String::from_utf8_lossy(&bytes).into_owned(), v.version)),
        None => {
            let text = template_for(store.conn(), &key.project, kind)?
                .map(|t| template::render(&t, &key.to_string(), &req.title, key.project.as_str()))
                .unwrap_or_else(|| format!("# {key}: {} ({kind})\n\n", req.title));
            Ok((text, 0))
        }
    }
}
