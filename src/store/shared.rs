//! A project's definition as its team shares it: its repositories, members (with their Jira
//! accounts), templates, environments and apps, as one JSON document that a shared system
//! keeps (a Jira project property), so that a teammate's fresh machine sets the project up from
//! it. Taking a definition in only adds what this machine lacks; what it has stays as it is.

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Map, Value};

use crate::domain::ProjectKey;
use crate::ui::{Result, XoneError};

/// The parts of a definition: each table, and the columns that name a row within a project.
const PARTS: &[(&str, &[&str])] = &[
    ("repo", &["name"]),
    ("member", &["user", "role"]),
    ("member_account", &["user"]),
    ("template", &["kind"]),
    ("env", &["name"]),
    ("app", &["name"]),
];

/// The project's definition: `{"name", "description", "repo": [ROW], "member": [ROW], ...}`;
/// rows carry their columns but the local ids (an app names its repository by name).
pub fn project_definition(c: &Connection, key: &ProjectKey) -> Result<Value> {
    let (name, description): (String, String) =
        c.query_row("SELECT name, description FROM project WHERE key = ?1", [key.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut out = json!({ "name": name, "description": description });
    for (table, _) in PARTS {
        let sql = match *table {
            "app" => "SELECT a.*, r.name AS repo_name FROM app a JOIN repo r ON r.id = a.repo \
                      WHERE a.project = ?1 ORDER BY a.name"
                .to_string(),
            t => format!("SELECT * FROM {t} WHERE project = ?1 ORDER BY rowid"),
        };
        let mut st = c.prepare(&sql)?;
        let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
        let mut rows = st.query([key.as_str()])?;
        let mut list = Vec::new();
        while let Some(r) = rows.next()? {
            let mut m = Map::new();
            for (i, n) in names.iter().enumerate() {
                if matches!(n.as_str(), "id" | "project" | "repo") {
                    continue;
                }
                m.insert(n.clone(), as_json(r.get_ref(i)?));
            }
            list.push(Value::Object(m));
        }
        out[*table] = Value::Array(list);
    }
    Ok(out)
}

/// `theirs` with the rows of `ours` it lacks (by the columns that name a row): what one machine
/// added joins the shared definition, and nothing in it is changed or dropped.
pub fn merge_definitions(theirs: &Value, ours: &Value) -> Value {
    let mut out = theirs.clone();
    for (table, naming) in PARTS {
        let name_of = |row: &Value| -> Vec<String> {
            naming.iter().map(|n| row[*n].as_str().unwrap_or_default().to_string()).collect()
        };
        let mut rows = theirs[*table].as_array().cloned().unwrap_or_default();
        let have: Vec<Vec<String>> = rows.iter().map(name_of).collect();
        for row in ours[*table].as_array().into_iter().flatten() {
            if !have.contains(&name_of(row)) {
                rows.push(row.clone());
            }
        }
        out[*table] = Value::Array(rows);
    }
    out
}

fn as_json(v: ValueRef) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(String::from_utf8_lossy(b)),
    }
}

/// Columns that hold commands this machine would run (a smoke check, a test command): never
/// taken from a shared definition, which whoever may edit the Jira project can change.
const COMMANDS: &[(&str, &str)] = &[("env", "smoke"), ("app", "test_cmd")];

/// What taking a definition did: rows added (`TABLE NAME`), and what was passed over, with why.
#[derive(Debug, Default)]
pub struct Taken {
    pub added: Vec<String>,
    pub passed: Vec<String>,
}

/// Adds to the project what `def` has and this machine lacks (a row is known by the columns
/// that name it). A row that clashes with one here (another name for the same repository) and
/// the commands a row holds are passed over and said.
pub fn take_definition(c: &Connection, key: &ProjectKey, def: &Value) -> Result<Taken> {
    let mut taken = Taken::default();
    for (table, naming) in PARTS {
        let columns: Vec<String> = {
            let st = c.prepare(&format!("SELECT * FROM {table} LIMIT 0"))?;
            st.column_names().map(|s| s.to_string()).collect()
        };
        for row in def[*table].as_array().into_iter().flatten() {
            let Some(row) = row.as_object() else { continue };
            let ids: Vec<String> = naming
                .iter()
                .map(|n| row.get(*n).and_then(Value::as_str).unwrap_or("").to_string())
                .collect();
            if ids.iter().any(String::is_empty) {
                continue;
            }
            let cond: Vec<String> =
                naming.iter().enumerate().map(|(i, n)| format!("{n} = ?{}", i + 2)).collect();
            let mut args: Vec<Sql> = vec![Sql::Text(key.to_string())];
            args.extend(ids.iter().map(|s| Sql::Text(s.clone())));
            let there: bool = c.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {table} WHERE project = ?1 AND {})",
                    cond.join(" AND ")
                ),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            if there {
                continue;
            }
            let mut cols = vec!["project".to_string()];
            let mut vals = vec![Sql::Text(key.to_string())];
            if *table == "app" {
                let repo = row.get("repo_name").and_then(Value::as_str).unwrap_or_default();
                let id: Option<i64> = c
                    .query_row(
                        "SELECT id FROM repo WHERE project = ?1 AND name = ?2",
                        [key.as_str(), repo],
                        |r| r.get(0),
                    )
                    .ok();
                let Some(id) = id else { continue };
                cols.push("repo".into());
                vals.push(Sql::Integer(id));
            }
            for col in columns.iter().filter(|c| !matches!(c.as_str(), "id" | "project" | "repo")) {
                let Some(v) = row.get(col) else { continue };
                if COMMANDS.contains(&(*table, col.as_str())) {
                    if !v.is_null() {
                        taken.passed.push(format!(
                            "{table} {}: its {col} command (commands are set on each machine)",
                            ids.join(" ")
                        ));
                    }
                    continue;
                }
                cols.push(col.clone());
                vals.push(match v {
                    Value::Null => Sql::Null,
                    Value::Bool(b) => Sql::Integer(*b as i64),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => Sql::Integer(i),
                        None => Sql::Real(n.as_f64().unwrap_or_default()),
                    },
                    Value::String(s) => Sql::Text(s.clone()),
                    other => Sql::Text(other.to_string()),
                });
            }
            let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let sql =
                format!("INSERT INTO {table} ({}) VALUES ({})", cols.join(", "), marks.join(", "));
            match c.execute(&sql, params_from_iter(vals.iter())) {
                Ok(_) => taken.added.push(format!("{table} {}", ids.join(" "))),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    taken.passed.push(format!(
                        "{table} {}: it clashes with one here (the same thing under another name)",
                        ids.join(" ")
                    ));
                }
                Err(e) => {
                    return Err(XoneError::internal(format!(
                        "the shared definition of {key}: {table} {}",
                        ids.join(" ")
                    ))
                    .cause(e))
                }
            }
        }
    }
    Ok(taken)
}
