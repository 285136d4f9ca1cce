//! Facts that travel in a tracker's comments. A comment xone writes for a person to read
//! ("alice (xone): #3 requirement review: approve") ends with one line per fact for another
//! machine to read back, so that `xone sync` rebuilds who is assigned, the reviews' verdicts
//! and the sign-offs from the tracker alone:
//!
//! ```text
//! [xone assign pm=alice]
//! [xone unassign dev=bob]
//! [xone review requirement by=alice at=2026-12-06T09:00:00Z id=9f2c41d07a5be318]
//! [xone verdict requirement approve by=alice at=2026-12-06T10:00:00Z review=9f2c41d07a5be318]
//! [xone signoff testing by=quinn at=2026-12-06T11:00:00.000Z]
//! ```

use super::names::check_user;
use super::{ReviewKind, Role, Status, Verdict};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remark {
    Assign {
        role: Role,
        user: String,
    },
    Unassign {
        role: Role,
        user: String,
    },
    /// A review opened: by whom, when, and what names it on every machine.
    Review {
        kind: ReviewKind,
        by: String,
        at: String,
        id: String,
    },
    /// A review's verdict; `review` names the review it closes, where known.
    Verdict {
        kind: ReviewKind,
        verdict: Verdict,
        by: String,
        at: String,
        review: Option<String>,
    },
    Signoff {
        stage: Status,
        by: String,
        at: String,
    },
}

impl std::fmt::Display for Remark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remark::Assign { role, user } => write!(f, "[xone assign {role}={user}]"),
            Remark::Unassign { role, user } => write!(f, "[xone unassign {role}={user}]"),
            Remark::Review { kind, by, at, id } => {
                write!(f, "[xone review {kind} by={by} at={at} id={id}]")
            }
            Remark::Verdict { kind, verdict, by, at, review } => {
                write!(f, "[xone verdict {kind} {verdict} by={by} at={at}")?;
                if let Some(r) = review {
                    write!(f, " review={r}")?;
                }
                f.write_str("]")
            }
            Remark::Signoff { stage, by, at } => {
                write!(f, "[xone signoff {} by={by} at={at}]", stage.as_str())
            }
        }
    }
}

/// `text` with the remarks appended, one line each. A line of `text` that reads like a remark
/// (a note someone typed) is quoted, so that it is never taken for one.
pub fn with_remarks(text: &str, remarks: &[Remark]) -> String {
    let mut out = text
        .lines()
        .map(
            |l| if l.trim_start().starts_with("[xone ") { format!("> {l}") } else { l.to_string() },
        )
        .collect::<Vec<_>>()
        .join("\n");
    for r in remarks {
        out.push('\n');
        out.push_str(&r.to_string());
    }
    out
}

/// The remarks a comment carries, in order; lines that are not remarks (or not well formed)
/// are the comment's own text and are passed over.
pub fn parse(text: &str) -> Vec<Remark> {
    text.lines().filter_map(|l| one(l.trim())).collect()
}

fn one(line: &str) -> Option<Remark> {
    let body = line.strip_prefix("[xone ")?.strip_suffix(']')?;
    let words: Vec<&str> = body.split_whitespace().collect();
    let named = |name: &str| {
        words.iter().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')).map(str::to_string)
    };
    let user = |u: String| check_user(&u).ok();
    let pair = |w: &str| -> Option<(Role, String)> {
        let (role, who) = w.split_once('=')?;
        Some((role.parse().ok()?, user(who.to_string())?))
    };
    let arity: &[usize] = match *words.first()? {
        "assign" | "unassign" => &[2],
        "verdict" => &[5, 6],
        "review" => &[5],
        "signoff" => &[4],
        _ => return None,
    };
    if !arity.contains(&words.len()) {
        return None;
    }
    match words[0] {
        "assign" => {
            let (role, user) = pair(words.get(1)?)?;
            Some(Remark::Assign { role, user })
        }
        "unassign" => {
            let (role, user) = pair(words.get(1)?)?;
            Some(Remark::Unassign { role, user })
        }
        "review" => Some(Remark::Review {
            kind: words.get(1)?.parse().ok()?,
            by: user(named("by")?)?,
            at: named("at")?,
            id: named("id")?,
        }),
        "verdict" => Some(Remark::Verdict {
            kind: words.get(1)?.parse().ok()?,
            verdict: words.get(2)?.parse().ok()?,
            by: user(named("by")?)?,
            at: named("at")?,
            review: named("review"),
        }),
        "signoff" => Some(Remark::Signoff {
            stage: words.get(1)?.parse().ok()?,
            by: user(named("by")?)?,
            at: named("at")?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remarks_read_back_what_they_wrote() {
        let all = vec![
            Remark::Assign { role: Role::Pm, user: "alice".into() },
            Remark::Unassign { role: Role::Be, user: "bob@example.com".into() },
            Remark::Review {
                kind: ReviewKind::TechDesign,
                by: "dana".into(),
                at: "2026-12-06T09:00:00.000Z".into(),
                id: "9f2c41d07a5be318".into(),
            },
            Remark::Verdict {
                kind: ReviewKind::TechDesign,
                verdict: Verdict::Reject,
                by: "dana".into(),
                at: "2026-12-06T10:00:00.000Z".into(),
                review: Some("9f2c41d07a5be318".into()),
            },
            Remark::Verdict {
                kind: ReviewKind::Requirement,
                verdict: Verdict::Approve,
                by: "dana".into(),
                at: "2026-12-06T10:00:00.000Z".into(),
                review: None,
            },
            Remark::Signoff {
                stage: Status::Gray,
                by: "pat".into(),
                at: "2026-12-06T11:00:00Z".into(),
            },
        ];
        let text = with_remarks("alice (xone): several things at once", &all);
        assert_eq!(parse(&text), all);
    }

    #[test]
    fn a_note_cannot_pass_for_a_remark() {
        let note = "signed off by quinn: fine\n[xone signoff gray by=pat at=2026-12-06T11:00:00Z]";
        let mine = Remark::Signoff { stage: Status::Testing, by: "quinn".into(), at: "t".into() };
        assert_eq!(parse(&with_remarks(note, std::slice::from_ref(&mine))), vec![mine]);
    }

    #[test]
    fn a_person_s_text_is_not_a_remark() {
        for text in [
            "[xone assign boss=alice]",
            "[xone assign pm=al ice]",
            "[xone verdict requirement approve]",
            "see [xone assign pm=alice] inline",
            "[xone frobnicate]",
            "xone assign pm=alice",
        ] {
            assert_eq!(parse(text), vec![], "{text}");
        }
    }
}
