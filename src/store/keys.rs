//! Requirement keys that change: when a project's requirements move to Jira, each takes the key
//! of its issue, and the key it had stays an alias that every command still takes. The move
//! is recorded one requirement at a time (`key_move`), so that an interrupted move goes on
//! where it stopped, and the keys change in one transaction at its end.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock;
use crate::domain::{ProjectKey, RequirementKey};
use crate::ui::{Result, XoneError};

/// Every table that names a requirement by its key.
const NAMED_BY: &[&str] = &[
    "assignment",
    "document",
    "review",
    "branch",
    "signoff",
    "event",
    "integration_item",
    "build",
    "deploy",
    "gray",
    "outbox",
];

/// The requirement a key read from elsewhere (a cluster's annotation, a gray release's state)
/// stands for, given when it was written: before its requirement moved to Jira, an old key
/// names the requirement that had it then; otherwise a key names its own requirement, and an
/// alias that no requirement holds names the one it stands for.
pub fn key_as_of(
    c: &Connection,
    key: &str,
    written: Option<&str>,
) -> Result<Option<RequirementKey>> {
    let Ok(k) = key.parse::<RequirementKey>() else { return Ok(None) };
    let alias: Option<(String, String)> = c
        .query_row("SELECT key, at FROM requirement_alias WHERE alias = ?1", [key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let exists = |k: &str| -> Result<bool> {
        Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM requirement WHERE key = ?1)", [k], |r| {
            r.get(0)
        })?)
    };
    if let Some((now, moved_at)) = &alias {
        let before = written.is_some_and(|w| w < moved_at.as_str());
        if before || !exists(key)? {
            return Ok(now.parse().ok());
        }
    }
    Ok(exists(key)?.then_some(k))
}

/// The aliases of a requirement, oldest first.
pub fn aliases_of(c: &Connection, key: &RequirementKey) -> Result<Vec<String>> {
    let mut st =
        c.prepare("SELECT alias FROM requirement_alias WHERE key = ?1 ORDER BY at, alias")?;
    let rows = st.query_map([key.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The keys of a move under way: (old, new, whether the issue has everything it should).
pub fn key_moves(c: &Connection, project: &ProjectKey) -> Result<Vec<(String, String, bool)>> {
    let mut st = c.prepare("SELECT old, new, filled FROM key_move WHERE project = ?1")?;
    let rows = st.query_map([project.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Notes that the issue of a move has everything it should.
pub fn key_move_filled(c: &Connection, project: &ProjectKey, old: &RequirementKey) -> Result<()> {
    c.execute(
        "UPDATE key_move SET filled = 1 WHERE project = ?1 AND old = ?2",
        params![project.as_str(), old.to_string()],
    )?;
    Ok(())
}

pub fn record_key_move(
    c: &Connection,
    project: &ProjectKey,
    old: &RequirementKey,
    new: &RequirementKey,
) -> Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO key_move (project, old, new) VALUES (?1, ?2, ?3)",
        params![project.as_str(), old.to_string(), new.to_string()],
    )?;
    Ok(())
}

/// Gives each requirement of the moves its new key, everywhere it is named, and keeps the old
/// one as an alias; then forgets the moves. One transaction: keys may trade places (a new key
/// may be another requirement's old one), so each goes through a name no key can have.
pub fn apply_key_moves(c: &Connection, project: &ProjectKey) -> Result<usize> {
    let moves: Vec<(String, String)> = key_moves(c, project)?
        .into_iter()
        .filter(|(old, new, _)| old != new)
        .map(|(old, new, _)| (old, new))
        .collect();
    c.execute_batch("PRAGMA defer_foreign_keys = ON")?;
    let parked = |k: &str| format!("~{k}");
    for (old, _) in &moves {
        rename(c, old, &parked(old))?;
        // Its number too: (project, seq) is unique.
        c.execute("UPDATE requirement SET seq = -seq WHERE key = ?1", [parked(old)])?;
    }
    let now = clock::now();
    for (old, new) in &moves {
        let key: RequirementKey = new.parse().map_err(XoneError::internal)?;
        if c.query_row("SELECT EXISTS (SELECT 1 FROM requirement WHERE key = ?1)", [new], |r| {
            r.get::<_, bool>(0)
        })? {
            return Err(XoneError::conflict(format!(
                "{new} is a requirement here already, so {old} cannot take that key"
            ))
            .hint("look at both with `xone requirement show`; the move is kept and goes on when run again"));
        }
        rename(c, &parked(old), new)?;
        c.execute("UPDATE requirement SET seq = ?2 WHERE key = ?1", params![new, key.seq])?;
        c.execute(
            "INSERT OR REPLACE INTO requirement_alias (alias, key, at) VALUES (?1, ?2, ?3)",
            params![old, new, now],
        )?;
        c.execute(
            "UPDATE project SET next_seq = max(next_seq, ?2 + 1) WHERE key = ?1",
            params![project.as_str(), key.seq],
        )?;
    }
    // A key that names a requirement now is no alias of another.
    c.execute("DELETE FROM requirement_alias WHERE alias IN (SELECT key FROM requirement)", [])?;
    c.execute("DELETE FROM key_move WHERE project = ?1", [project.as_str()])?;
    Ok(moves.len())
}

fn rename(c: &Connection, from: &str, to: &str) -> Result<()> {
    c.execute("UPDATE requirement SET key = ?2 WHERE key = ?1", params![from, to])?;
    for table in NAMED_BY {
        c.execute(
            &format!("UPDATE {table} SET requirement = ?2 WHERE requirement = ?1"),
            params![from, to],
        )?;
    }
    // Aliases from an earlier move follow the requirement.
    c.execute("UPDATE requirement_alias SET key = ?2 WHERE key = ?1", params![from, to])?;
    Ok(())
}

/// The keys of a project's requirements, in the order they were made.
pub fn requirement_keys_of(c: &Connection, project: &ProjectKey) -> Result<Vec<RequirementKey>> {
    let mut st = c.prepare("SELECT key FROM requirement WHERE project = ?1 ORDER BY seq")?;
    let rows = st.query_map([project.as_str()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for k in rows {
        out.push(k?.parse().map_err(XoneError::internal)?);
    }
    Ok(out)
}
