//! Notifications waiting to be delivered: each written in the transaction of the change it
//! tells of, with a delivery id that stays the same however often it is sent again; and, for
//! each target, the last one it took, so that each takes them in order, once. A process
//! delivering to a target holds it (a lease) so that two never send the same events.

use std::sync::atomic::{AtomicI64, Ordering};

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

/// The first notification this process wrote (0: none yet).
static FIRST: AtomicI64 = AtomicI64::new(0);

/// The id of the first notification this process wrote, if it wrote one.
pub fn first_notice_written() -> Option<i64> {
    Some(FIRST.load(Ordering::Relaxed)).filter(|id| *id > 0)
}

/// Keeps a notification for delivery; returns its id.
pub fn add_notice(c: &Connection, event: &str, project: Option<&str>, body: &Value) -> Result<i64> {
    let text = serde_json::to_string(body).map_err(|e| XoneError::internal(e.to_string()))?;
    c.execute(
        "INSERT INTO notice (delivery, event, project, body, at)
         VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, ?4)",
        params![event, project, text, clock::now()],
    )?;
    let id = c.last_insert_rowid();
    let _ = FIRST.compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed);
    Ok(id)
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

/// Takes a target to deliver to until `until` (unix seconds), unless another process holds
/// it; returns its position (`start` for a target seen for the first time).
pub fn claim_target(c: &Connection, target: &str, start: i64, until: i64) -> Result<Option<i64>> {
    c.execute(
        "INSERT INTO notice_target (target, delivered) VALUES (?1, ?2) ON CONFLICT (target) DO NOTHING",
        params![target, start],
    )?;
    let (at, lease): (i64, Option<i64>) = c.query_row(
        "SELECT delivered, lease FROM notice_target WHERE target = ?1",
        [target],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if lease.is_some_and(|l| l > clock::unix_now()) {
        return Ok(None);
    }
    c.execute("UPDATE notice_target SET lease = ?2 WHERE target = ?1", params![target, until])?;
    Ok(Some(at))
}

/// Gives a target back: how far it took the notifications (never backwards), and the failure
/// that stopped it.
pub fn release_target(
    c: &Connection,
    target: &str,
    delivered: i64,
    error: Option<&str>,
) -> Result<()> {
    c.execute(
        "UPDATE notice_target SET delivered = max(delivered, ?2), error = ?3, tried_at = ?4,
             tried_unix = ?5, lease = NULL
         WHERE target = ?1",
        params![target, delivered, error, clock::now(), clock::unix_now()],
    )?;
    Ok(())
}

/// How long a target that is not tried any more (no longer configured anywhere) keeps the
/// notifications it has not taken.
const FORGOTTEN_AFTER_SECS: i64 = 30 * 86_400;

/// Forgets the notifications every known target has taken (all of them when no target was
/// ever seen: nobody is to hear of them), and targets not tried for 30 days.
pub fn prune_notices(c: &Connection) -> Result<()> {
    c.execute(
        "DELETE FROM notice_target WHERE coalesce(tried_unix, 0) < ?1 AND lease IS NULL",
        [clock::unix_now() - FORGOTTEN_AFTER_SECS],
    )?;
    let least: Option<i64> =
        c.query_row("SELECT min(delivered) FROM notice_target", [], |r| r.get(0))?;
    let least = match least {
        Some(l) => l,
        None => last_notice(c)?,
    };
    c.execute("DELETE FROM notice WHERE id <= ?1", [least])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_held_target_is_left_alone_and_positions_never_go_back_or_vanish_with_a_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::store::Store::open(dir.path()).unwrap();
        let until = clock::unix_now() + 60;
        s.write(|c| {
            for n in 0..3 {
                add_notice(c, "requirement.created", Some("PAY"), &json!({ "n": n }))?;
            }
            // A first sight starts where it is told; a second process finds it held.
            assert_eq!(claim_target(c, "a", 0, until)?, Some(0));
            assert_eq!(claim_target(c, "a", 0, until)?, None);
            release_target(c, "a", 3, None)?;
            // A late writer with an older position does not take it back.
            assert_eq!(claim_target(c, "a", 0, until)?, Some(3));
            release_target(c, "a", 1, Some("answered 500"))?;
            assert_eq!(target_position(c, "a")?, Some((3, Some("answered 500".into()))));
            // Another target, of another project's file, still wants 2 and 3.
            assert_eq!(claim_target(c, "b", 1, until)?, Some(1));
            release_target(c, "b", 1, Some("could not be reached"))?;
            prune_notices(c)?;
            let left: Vec<i64> = notices_after(c, 0)?.iter().map(|n| n.id).collect();
            assert_eq!(left, [2, 3]);
            assert_eq!(last_notice(c)?, 3);
            Ok(())
        })
        .unwrap();
    }
}
