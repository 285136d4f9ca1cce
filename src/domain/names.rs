//! The names of things, each parsed once at the edge with a message that shows the accepted form.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A project key: `PAY`, `SHOP2`. Upper-case letters and digits, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ProjectKey(String);

impl ProjectKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ProjectKey {
    /// A new project's key, as it will be written: upper-case already. (A key that names an
    /// existing project is read case-insensitively: `pay-1` is PAY-1.)
    pub fn new_key(s: &str) -> Result<ProjectKey, String> {
        if s.chars().any(|c| c.is_ascii_lowercase()) {
            // The upper-case spelling, when that is a key; else an example.
            let upper = s.parse::<ProjectKey>().map(|k| k.0).unwrap_or_else(|_| "PAY".into());
            return Err(format!(
                "invalid project key '{s}': use 2 to 10 upper-case letters or digits, starting with a letter (e.g. {upper})"
            ));
        }
        s.parse()
    }
}

impl FromStr for ProjectKey {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let upper = raw.to_ascii_uppercase();
        let s = upper.as_str();
        let ok = (2..=10).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok {
            Ok(ProjectKey(s.to_string()))
        } else {
            Err(format!(
                "invalid project key '{raw}': use 2 to 10 upper-case letters or digits, starting with a letter (e.g. PAY)"
            ))
        }
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A requirement key: `PAY-12`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct RequirementKey {
    pub project: ProjectKey,
    pub seq: i64,
}

impl RequirementKey {
    pub fn new(project: ProjectKey, seq: i64) -> Self {
        RequirementKey { project, seq }
    }
}

impl From<RequirementKey> for String {
    fn from(k: RequirementKey) -> String {
        k.to_string()
    }
}

impl FromStr for RequirementKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid requirement key '{s}': use PROJECT-NUMBER (e.g. PAY-12)");
        let (p, n) = s.rsplit_once('-').ok_or_else(bad)?;
        let project = p.parse::<ProjectKey>().map_err(|_| bad())?;
        let seq = match n.parse::<i64>() {
            Ok(seq) if seq > 0 && !n.starts_with('0') && !n.starts_with('+') => seq,
            _ => return Err(bad()),
        };
        Ok(RequirementKey { project, seq })
    }
}

impl fmt::Display for RequirementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.project, self.seq)
    }
}

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
        pub enum $name { $($(#[$vm])* #[value(name = $s)] $v),+ }

        impl $name {
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(format!(
                        "invalid {} '{}': use one of {}",
                        stringify!($name).to_lowercase(),
                        s,
                        [$($s),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so that widths (`{:<12}`) apply as they do to text.
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

/// The same for other enums kept as words (the store's kinds and statuses).
pub(crate) use word_enum;

word_enum! {
    /// A member's role on a project (SPEC §1).
    Role {
        /// product manager
        Pm = "pm",
        /// user-interface designer
        Ui = "ui",
        /// front-end developer
        Fe = "fe",
        /// back-end developer
        Be = "be",
        /// tester
        Qa = "qa",
        /// data engineer
        Data = "data",
        /// operations
        Ops = "ops",
        /// project owner
        Owner = "owner",
    }
}

word_enum! {
    /// The kinds of document a requirement carries.
    DocKind {
        Requirement = "requirement",
        Prototype = "prototype",
        TechDesign = "tech-design",
        Api = "api",
        TestCases = "test-cases",
        ReleasePlan = "release-plan",
        RollbackPlan = "rollback-plan",
    }
}

word_enum! {
    /// What a review looks at; each kind reviews the document of the same name.
    ReviewKind {
        Requirement = "requirement",
        TechDesign = "tech-design",
        TestCases = "test-cases",
    }
}

word_enum! {
    /// A review's verdict.
    Verdict {
        Approve = "approve",
        Reject = "reject",
    }
}

impl ReviewKind {
    pub fn doc_kind(self) -> DocKind {
        match self {
            ReviewKind::Requirement => DocKind::Requirement,
            ReviewKind::TechDesign => DocKind::TechDesign,
            ReviewKind::TestCases => DocKind::TestCases,
        }
    }
}

/// A user name as xone records it: no spaces, no `=`; what `ROLE=USER` and events carry.
pub fn check_user(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("invalid user name '{s}': use letters, digits, '.', '_', '-', '+' or '@'"))
    }
}

/// `ROLE=USER`, as `--assign` and `requirement assign` take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub role: Role,
    pub user: String,
}

impl FromStr for Assignment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (r, u) = s
            .split_once('=')
            .ok_or_else(|| format!("invalid assignment '{s}': use ROLE=USER (e.g. pm=alice)"))?;
        Ok(Assignment { role: r.parse()?, user: check_user(u)? })
    }
}

/// The branch slug of a title: lower-case ASCII words joined by '-', at most 40 characters.
/// Titles in other scripts give an empty slug and the branch is just `feature/KEY`.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for word in title.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_lowercase();
        let extra = if out.is_empty() { word.len() } else { word.len() + 1 };
        if out.len() + extra > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word);
    }
    out
}

/// An environment's name as integration branches carry it: lower-case letters, digits and
/// '-' (`test`, `prod-2026-11-24`).
pub fn check_env(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid environment '{s}': use lower-case letters, digits and '-' (e.g. test, prod-2026-11-24)"
        ))
    }
}

/// The integration branch of `env`: `pattern` with `{env}` filled in (`release/{env}`).
pub fn integration_branch(pattern: &str, env: &str) -> Result<String, String> {
    if !pattern.contains("{env}") {
        return Err(format!(
            "branch.integration '{pattern}' has no {{env}}: every environment would share one branch"
        ));
    }
    Ok(pattern.replace("{env}", env))
}

pub fn feature_branch(key: &RequirementKey, title: &str) -> String {
    match slug(title) {
        s if s.is_empty() => format!("feature/{key}"),
        s => format!("feature/{key}-{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_refuse() {
        let k: RequirementKey = "PAY-12".parse().unwrap();
        assert_eq!(k.project.as_str(), "PAY");
        assert_eq!(k.seq, 12);
        assert_eq!(k.to_string(), "PAY-12");
        assert_eq!("pay-12".parse::<RequirementKey>().unwrap(), k, "keys read in any case");
        let e = ProjectKey::new_key("shop").unwrap_err();
        assert!(e.contains("e.g. SHOP"), "the upper-case spelling is suggested: {e}");
        let e = ProjectKey::new_key("1pay").unwrap_err();
        assert!(e.contains("e.g. PAY") && !e.contains("1PAY"), "only a valid key is: {e}");
        for bad in ["PAY", "PAY-0", "PAY-01", "PAY-x", "P-1", "PAY--1", "1PAY-2", "PAY-+3"] {
            assert!(bad.parse::<RequirementKey>().is_err(), "{bad} accepted");
        }
        assert!("pay-0".parse::<RequirementKey>().is_err());
        assert!("SHOP2".parse::<ProjectKey>().is_ok());
        assert!("TOOLONGKEY1".parse::<ProjectKey>().is_err());
    }

    #[test]
    fn enums_round_trip_and_explain() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
        }
        let e = "boss".parse::<Role>().unwrap_err();
        assert!(e.contains("pm, ui, fe, be, qa, data, ops, owner"), "{e}");
        assert_eq!("tech-design".parse::<DocKind>().unwrap(), DocKind::TechDesign);
    }

    #[test]
    fn assignments() {
        let a: Assignment = "qa=quinn".parse().unwrap();
        assert_eq!((a.role, a.user.as_str()), (Role::Qa, "quinn"));
        assert!("qa".parse::<Assignment>().is_err());
        assert!("qa=".parse::<Assignment>().is_err());
        assert!("chef=bob".parse::<Assignment>().is_err());
        assert!("qa=a b".parse::<Assignment>().is_err());
    }

    #[test]
    fn environments_and_integration_branches() {
        assert!(check_env("test").is_ok() && check_env("prod-2026-11-24").is_ok());
        assert!(check_env("Test").is_err() && check_env("-x").is_err() && check_env("").is_err());
        assert_eq!(integration_branch("release/{env}", "test").unwrap(), "release/test");
        assert!(integration_branch("release", "test").is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Refund cancelled orders!"), "refund-cancelled-orders");
        assert_eq!(slug("退款 v2"), "v2");
        assert_eq!(slug("支付"), "");
        let long = slug("one two three four five six seven eight nine ten eleven");
        assert!(long.len() <= 40 && !long.ends_with('-'), "{long}");
        let k: RequirementKey = "PAY-3".parse().unwrap();
        assert_eq!(feature_branch(&k, "支付"), "feature/PAY-3");
        assert_eq!(feature_branch(&k, "Add Alipay"), "feature/PAY-3-add-alipay");
    }
}
