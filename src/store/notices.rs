//! Notifications waiting to be delivered: each written in the transaction of the change it
//! tells of, with a delivery id that stays the same however often it is sent again; and, for
//! each target, the last one it took, so that each takes them in order, once.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::clock;
use crate::ui::{Result, XoneError};

#[derive(Clone, Debug, Serialize)]
pub struct Notice {
    pub id: i64,
    pub delivery: String,
    pub event: String,
    pub project: Option<String>,
    pub body: Value,
    pub at: String,
}

/// Keeps a notification for delivery; returns its id.
pub fn add_notice(c: &Connection, event: &str, project: Option<&str>, body: &Value) -> Result<i64> {
    let text = serde_json::to_string(body).map_err(|e| XoneError::internal(e.to_string()))?;
    c.execute(
        "INSERT INTO notice (delivery, event, project, body, at)
         VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, ?4)",
        params![event, project, text, clock::now()],
    )?;
    Ok(c.last_insert_rowid())
}

/// The newest notification's id, delivered and forgotten ones included (0 before the first):
/// ids are never used twice.
pub fn last_notice(c: &Connection) -> Result<i64> {
    Ok(c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'notice'", [], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The notifications after `id`, oldest first.
pub fn notices_after(c: &Connection, id: i64) -> Result<Vec<Notice>> {
    let mut st = c.prepare(
        "SELECT id, delivery, event, project, body, at FROM notice WHERE id > ?1 ORDER BY id",
    )?;
    let rows = st.query_map([id], |r| {
        let body: String = r.get(4)?;
        Ok(Notice {
            id: r.get(0)?,
            delivery: r.get(1)?,
            event: r.get(2)?,
            project: r.get(3)?,
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
            at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How far a target has taken the notifications: the last id, and why the last try failed.
pub fn target_position(c: &Connection, target: &str) -> Result<Option<(i64, Option<String>)>> {
    Ok(c.query_row("SELECT delivered, error FROM notice_target WHERE target = ?1", [target], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()?)
}

/// Records how far a target has taken the notifications, and the failure that stopped it.
pub fn set_target_position(
    c: &Connection,
    target: &str,
    delivered: i64,
    error: Option<&str>,
) -> Result<()> {
    c.execute(
        "INSERT INTO notice_target (target, delivered, error, tried_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (target) DO UPDATE SET delivered = excluded.delivered,
             error = excluded.error, tried_at = excluded.tried_at",
        params![target, delivered, error, clock::now()],
    )?;
    Ok(())
}

/// Forgets the notifications every current target has taken (all of them when there is no
/// target), and the positions of targets no longer configured.
pub fn prune_notices(c: &Connection, targets: &[String]) -> Result<()> {
    let mut least = i64::MAX;
    for t in targets {
        let at = target_position(c, t)?.map(|p| p.0).unwrap_or(0);
        least = least.min(at);
    }
    if targets.is_empty() {
        least = last_notice(c)?;
    }
    c.execute("DELETE FROM notice WHERE id <= ?1", [least])?;
    let keep: Vec<String> = targets.iter().map(|t| format!("'{}'", t.replace('\'', ""))).collect();
    if keep.is_empty() {
        c.execute("DELETE FROM notice_target", [])?;
    } else {
        c.execute(
            &format!("DELETE FROM notice_target WHERE target NOT IN ({})", keep.join(", ")),
            [],
        )?;
    }
    Ok(())
}
