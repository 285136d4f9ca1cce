//! The requirement lifecycle of SPEC §2: its states, the step to the next one, and each step's
//! gate, judged from facts the store and the forge gathered.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::names::{RequirementKey, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Status {
    #[value(name = "draft")]
    Draft,
    #[value(name = "requirement-review")]
    RequirementReview,
    #[value(name = "design")]
    Design,
    #[value(name = "developing")]
    Developing,
    #[value(name = "submitted")]
    Submitted,
    #[value(name = "testing")]
    Testing,
    #[value(name = "gray")]
    Gray,
    #[value(name = "released")]
    Released,
    #[value(name = "done")]
    Done,
    #[value(name = "cancelled")]
    Cancelled,
}

/// Which Jira statuses stand for which stages, as `[jira.status_map]` says (stage name →
/// status names); a stage it does not name goes by `jira_status_is`.
pub type StatusMap = std::collections::BTreeMap<String, Vec<String>>;

fn norm(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Whether a Jira status stands for a stage under `map`.
pub fn jira_status_maps(map: &StatusMap, stage: Status, jira: &str) -> bool {
    match map.get(stage.as_str()) {
        Some(names) => names.iter().any(|n| norm(n) == norm(jira)),
        None => jira_status_is(stage, jira),
    }
}

/// The stage a Jira status stands for under `map`, if one does: a stage the map gives it to
/// first, then one of the same name.
pub fn stage_of_jira_status(map: &StatusMap, jira: &str) -> Option<Status> {
    let mapped = Status::ALL.into_iter().find(|s| {
        map.get(s.as_str()).is_some_and(|names| names.iter().any(|n| norm(n) == norm(jira)))
    });
    mapped.or_else(|| Status::ALL.into_iter().find(|s| jira_status_maps(map, *s, jira)))
}

/// Whether a Jira status stands for a stage: the same name, ignoring case, spaces, hyphens
/// and underscores ("Requirement Review"), or one of the names teams commonly give it ("To
/// Do" or "Backlog" for a draft, "In Development" or "In Progress", "Won't Do").
pub fn jira_status_is(stage: Status, jira: &str) -> bool {
    let name = norm(jira);
    if name == norm(stage.as_str()) {
        return true;
    }
    let also: &[&str] = match stage {
        Status::Draft => &["todo", "backlog"],
        Status::Developing => &["indevelopment", "inprogress"],
        Status::Cancelled => &["wontdo"],
        _ => &[],
    };
    also.contains(&name.as_str())
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Draft,
        Status::RequirementReview,
        Status::Design,
        Status::Developing,
        Status::Submitted,
        Status::Testing,
        Status::Gray,
        Status::Released,
        Status::Done,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::RequirementReview => "requirement-review",
            Status::Design => "design",
            Status::Developing => "developing",
            Status::Submitted => "submitted",
            Status::Testing => "testing",
            Status::Gray => "gray",
            Status::Released => "released",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
        }
    }

    /// The state `advance` moves to, if there is one.
    pub fn next(self) -> Option<Status> {
        use Status::*;
        Some(match self {
            Draft => RequirementReview,
            RequirementReview => Design,
            Design => Developing,
            Developing => Submitted,
            Submitted => Testing,
            Testing => Gray,
            Gray => Released,
            Released => Done,
            Done | Cancelled => return None,
        })
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Status::Done | Status::Cancelled)
    }

    /// `reject` sends work that failed its test back to development (the seed's 打回).
    pub fn can_reject(self) -> bool {
        matches!(self, Status::Submitted | Status::Testing)
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            format!("invalid status '{s}': use one of {}", all.join(", "))
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The states whose requirements an environment's integration takes in when none are named
/// (AoneFlow): work being self-tested for `daily`, submitted and in test for `test`, and so on.
pub fn states_for_env(env: &str) -> Option<&'static [Status]> {
    use Status::*;
    Some(match env {
        "daily" | "dev" => &[Developing, Submitted, Testing],
        "test" => &[Submitted, Testing],
        "gray" | "staging" | "pre" => &[Testing, Gray],
        "prod" | "production" => &[Gray, Released],
        _ => return None,
    })
}

/// The latest review of one kind, as a gate sees it.
#[derive(Clone, Debug, Default)]
pub struct ReviewFact {
    pub id: i64,
    pub verdict: Option<Verdict>,
}

/// A requirement's feature branch in one repository, as the forge reports it now.
#[derive(Clone, Debug)]
pub struct BranchFact {
    pub repo: String,
    pub branch: String,
    /// Commits on the branch that its base does not have; `None` when the branch is gone.
    pub ahead: Option<usize>,
}

/// What the gates look at. Gathered by the caller; judged here.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub requirement_doc_edited: bool,
    pub pm_assigned: bool,
    pub start_date: bool,
    pub end_date: bool,
    pub requirement_review: Option<ReviewFact>,
    pub tech_design_doc: bool,
    pub tech_design_review: Option<ReviewFact>,
    pub branches: Vec<BranchFact>,
    pub test_cases_review: Option<ReviewFact>,
    pub test_submit_date: bool,
    /// For each feature branch: whether the test integration branch holds its tip.
    pub test_integration: Vec<(String, String, bool)>,
    /// That branch's name (`release/test` unless configured otherwise).
    pub test_integration_branch: String,
    /// For each app built from a repository holding the requirement's branch: whether a build
    /// with tests and coverage measured passed its gates at the branch tip or at a commit
    /// that contains it.
    pub app_builds: Vec<(String, bool)>,
    pub qa_signoff: bool,
    /// A pm member signed off while the requirement was in gray: the product manager
    /// accepted the gray release.
    pub pm_acceptance: bool,
    pub release_plan_doc: bool,
    pub rollback_plan_doc: bool,
    /// Whether the clusters were asked (only `advance` asks them).
    pub clusters_checked: bool,
    /// For each app: what is wrong with its deployment to `test` (`None`: healthy, running
    /// an image of a passing build that holds the branch).
    pub test_deploys: Vec<(String, Option<String>)>,
    /// The `test` environment, if the project has one: whether it has a smoke command.
    pub test_env_smoke: Option<bool>,
    /// For each app: what is wrong with what runs in `prod`.
    pub prod_deploys: Vec<(String, Option<String>)>,
    /// `gates.require_gray`, with the apps that went through no promoted gray release.
    pub gray_missing: Vec<String>,
    /// For each app whose gray release in `prod` stands in the way: what is wrong with it
    /// (still in flight, or promoted without its analyses passing).
    pub gray_releases: Vec<(String, Option<String>)>,
    /// For each app: what is missing of a passed post-release watch on `prod`.
    pub watches: Vec<(String, Option<String>)>,
}

/// Pushes one item per app whose fact names a problem.
fn per_app(
    out: &mut Vec<Missing>,
    facts: &[(String, Option<String>)],
    hint: impl Fn(&str) -> String,
) {
    for (app, problem) in facts {
        if let Some(p) = problem {
            out.push(missing(p.clone(), hint(app)));
        }
    }
}

/// One thing a gate wants and did not find, with the command that would provide it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub item: String,
    pub hint: String,
}

fn missing(item: impl Into<String>, hint: impl Into<String>) -> Missing {
    Missing { item: item.into(), hint: hint.into() }
}

fn review_gate(out: &mut Vec<Missing>, key: &RequirementKey, kind: &str, r: &Option<ReviewFact>) {
    match r {
        None => out.push(missing(
            format!("no {kind} review"),
            format!("xone review create {key} --kind {kind}"),
        )),
        Some(ReviewFact { id, verdict: None }) => out.push(missing(
            format!("{kind} review #{id} has no verdict yet"),
            format!("xone review verdict {id} approve"),
        )),
        Some(ReviewFact { id, verdict: Some(v) }) if *v != Verdict::Approve => out.push(missing(
            format!("the latest {kind} review #{id} was not approved ({v})"),
            format!("address the comments, then xone review create {key} --kind {kind}"),
        )),
        Some(_) => {}
    }
}

/// Everything missing for the step out of `from`. Empty means the gate is open.
pub fn gate(from: Status, key: &RequirementKey, f: &Facts) -> Vec<Missing> {
    let mut out = Vec::new();
    match from {
        Status::Draft => {
            if !f.requirement_doc_edited {
                out.push(missing(
                    "the requirement document is still the unedited template",
                    format!("xone requirement doc {key} --edit (or --attach FILE)"),
                ));
            }
            if !f.pm_assigned {
                out.push(missing(
                    "no pm assigned",
                    format!("xone requirement assign {key} pm=USER"),
                ));
            }
            if !f.start_date {
                out.push(missing(
                    "no start date",
                    format!("xone requirement schedule {key} --start YYYY-MM-DD"),
                ));
            }
            if !f.end_date {
                out.push(missing(
                    "no end date",
                    format!("xone requirement schedule {key} --end YYYY-MM-DD"),
                ));
            }
        }
        Status::RequirementReview => {
            review_gate(&mut out, key, "requirement", &f.requirement_review)
        }
        Status::Design => {
            if !f.tech_design_doc {
                out.push(missing(
                    "no tech-design document",
                    format!("xone requirement doc {key} tech-design --attach FILE"),
                ));
            }
            review_gate(&mut out, key, "tech-design", &f.tech_design_review);
        }
        Status::Developing => {
            if f.branches.is_empty() {
                out.push(missing("no feature branch", format!("xone branch create {key}")));
            }
            for b in &f.branches {
                match b.ahead {
                    None => out.push(missing(
                        format!("branch {} is missing in {}", b.branch, b.repo),
                        format!("xone branch create {key} --repo {}", b.repo),
                    )),
                    Some(0) => out.push(missing(
                        format!(
                            "branch {} in {} has no commits ahead of its base",
                            b.branch, b.repo
                        ),
                        format!("commit the work on {} and try again", b.branch),
                    )),
                    Some(_) => {}
                }
            }
            review_gate(&mut out, key, "test-cases", &f.test_cases_review);
            if !f.test_submit_date {
                out.push(missing(
                    "no test-submit date",
                    format!("xone requirement schedule {key} --test-submit YYYY-MM-DD"),
                ));
            }
        }
        Status::Submitted => {
            let target = &f.test_integration_branch;
            if f.test_integration.is_empty() {
                out.push(missing(
                    "no feature branch to integrate",
                    format!("xone branch create {key}"),
                ));
            }
            for (repo, branch, held) in &f.test_integration {
                if !*held {
                    out.push(missing(
                        format!("{target} in {repo} does not hold the tip of {branch}"),
                        format!("xone branch integrate test {key}"),
                    ));
                }
            }
            if f.app_builds.is_empty() {
                out.push(missing(
                    "no app is built from the repositories of its branches",
                    format!("xone project app add {} APP --repo REPO", key.project),
                ));
            }
            for (app, built) in &f.app_builds {
                if !*built {
                    out.push(missing(
                        format!("no build of {app} with tests and coverage measured passed its gates at its branch"),
                        format!("xone build {app} --requirement {key} (with a test command)"),
                    ));
                }
            }
            if !f.clusters_checked {
                out.push(missing(
                    "the deployment to test and its smoke check are not checked yet",
                    format!("xone requirement advance {key} checks them"),
                ));
            } else {
                match f.test_env_smoke {
                    None => out.push(missing(
                        format!("project {} has no test environment", key.project),
                        format!(
                            "xone project env set {} test --context C --namespace NS --smoke CMD",
                            key.project
                        ),
                    )),
                    Some(false) => out.push(missing(
                        "the test environment has no smoke command",
                        format!("xone project env set {} test --smoke CMD", key.project),
                    )),
                    Some(true) => {}
                }
                per_app(&mut out, &f.test_deploys, |app| {
                    format!("xone deploy {app} --env test --build ID")
                });
            }
        }
        Status::Testing => {
            if !f.qa_signoff {
                out.push(missing(
                    "no qa sign-off",
                    format!("xone requirement signoff {key} (as a qa member)"),
                ));
            }
            if !f.release_plan_doc {
                out.push(missing(
                    "no release-plan document",
                    format!("xone requirement doc {key} release-plan --attach FILE"),
                ));
            }
            if !f.rollback_plan_doc {
                out.push(missing(
                    "no rollback-plan document",
                    format!("xone requirement doc {key} rollback-plan --attach FILE"),
                ));
            }
        }
        Status::Gray => {
            if !f.pm_acceptance {
                out.push(missing(
                    "the product manager has not accepted the gray release",
                    format!("xone requirement signoff {key} (as a pm member, while in gray)"),
                ));
            }
            if !f.clusters_checked {
                out.push(missing(
                    "what runs in prod is not checked yet",
                    format!("xone requirement advance {key} checks it"),
                ));
            }
            if f.clusters_checked && f.prod_deploys.is_empty() {
                out.push(missing(
                    "no app to release to prod: none is built from the repositories of its branches",
                    format!("xone project app add {} APP --repo REPO", key.project),
                ));
            }
            per_app(&mut out, &f.prod_deploys, |app| {
                format!("xone deploy {app} --env prod --build ID")
            });
            per_app(&mut out, &f.gray_releases, |app| format!("xone gray status {app} --env prod"));
            for app in &f.gray_missing {
                out.push(missing(
                    format!("gates.require_gray: {app} went through no promoted gray release"),
                    format!("release {app} through a gray release, or xone config set gates.require_gray false"),
                ));
            }
        }
        Status::Released => {
            if f.watches.is_empty() {
                out.push(missing(
                    "no app of the requirement was released to prod, so no post-release watch passed",
                    "xone deploy APP --env prod --build ID",
                ));
            }
            per_app(&mut out, &f.watches, |app| format!("xone deploy watch {app} --env prod"));
        }
        Status::Done | Status::Cancelled => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_statuses_stand_for_stages_by_name() {
        assert!(jira_status_is(Status::RequirementReview, "Requirement Review"));
        assert!(jira_status_is(Status::RequirementReview, "requirement-review"));
        assert!(jira_status_is(Status::Draft, "To Do") && jira_status_is(Status::Draft, "Backlog"));
        assert!(jira_status_is(Status::Developing, "In Progress"));
        assert!(jira_status_is(Status::Cancelled, "Won't Do"));
        assert!(!jira_status_is(Status::Testing, "In Progress"));
        let mut map = StatusMap::new();
        map.insert("testing".into(), vec!["QA".into(), "In QA".into()]);
        assert!(jira_status_maps(&map, Status::Testing, "in qa"));
        assert!(!jira_status_maps(&map, Status::Testing, "Testing"), "the map replaces the name");
        assert_eq!(stage_of_jira_status(&map, "QA"), Some(Status::Testing));
        assert_eq!(stage_of_jira_status(&map, "Gray"), Some(Status::Gray));
        map.insert("developing".into(), vec!["Design".into()]);
        assert_eq!(stage_of_jira_status(&map, "Design"), Some(Status::Developing), "the map first");
    }

    fn key() -> RequirementKey {
        "PAY-1".parse().unwrap()
    }

    fn approved(id: i64) -> Option<ReviewFact> {
        Some(ReviewFact { id, verdict: Some(Verdict::Approve) })
    }

    fn items(from: Status, f: &Facts) -> Vec<String> {
        gate(from, &key(), f).into_iter().map(|m| m.item).collect()
    }

    #[test]
    fn environments_take_their_states() {
        assert_eq!(states_for_env("test"), Some(&[Status::Submitted, Status::Testing][..]));
        assert!(states_for_env("prod").unwrap().contains(&Status::Released));
        assert_eq!(states_for_env("moon"), None);
    }

    #[test]
    fn walk_order() {
        let mut s = Status::Draft;
        let mut seen = vec![s];
        while let Some(n) = s.next() {
            seen.push(n);
            s = n;
        }
        assert_eq!(seen.len(), 9);
        assert_eq!(s, Status::Done);
        assert_eq!(Status::Cancelled.next(), None);
        assert!(Status::Testing.can_reject() && !Status::Gray.can_reject());
    }

    #[test]
    fn draft_gate_names_every_missing_item() {
        let got = items(Status::Draft, &Facts::default());
        assert_eq!(got.len(), 4, "{got:?}");
        let f = Facts {
            requirement_doc_edited: true,
            pm_assigned: true,
            start_date: true,
            end_date: true,
            ..Facts::default()
        };
        assert!(items(Status::Draft, &f).is_empty());
        let f = Facts { end_date: false, ..f };
        assert_eq!(items(Status::Draft, &f), ["no end date"]);
    }

    #[test]
    fn review_gates_take_the_latest_verdict() {
        let mut f = Facts::default();
        assert_eq!(items(Status::RequirementReview, &f), ["no requirement review"]);
        f.requirement_review = Some(ReviewFact { id: 4, verdict: None });
        assert_eq!(
            items(Status::RequirementReview, &f),
            ["requirement review #4 has no verdict yet"]
        );
        f.requirement_review = Some(ReviewFact { id: 5, verdict: Some(Verdict::Reject) });
        assert!(items(Status::RequirementReview, &f)[0].contains("#5 was not approved"));
        f.requirement_review = approved(6);
        assert!(items(Status::RequirementReview, &f).is_empty());
        assert_eq!(items(Status::Design, &f), ["no tech-design document", "no tech-design review"]);
    }

    #[test]
    fn developing_gate_counts_commits_ahead() {
        let mut f =
            Facts { test_cases_review: approved(1), test_submit_date: true, ..Facts::default() };
        assert_eq!(items(Status::Developing, &f), ["no feature branch"]);
        f.branches = vec![
            BranchFact { repo: "web".into(), branch: "feature/PAY-1".into(), ahead: Some(2) },
            BranchFact { repo: "api".into(), branch: "feature/PAY-1".into(), ahead: Some(0) },
            BranchFact { repo: "job".into(), branch: "feature/PAY-1".into(), ahead: None },
        ];
        let got = items(Status::Developing, &f);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("api has no commits ahead"));
        assert!(got[1].contains("missing in job"));
        f.branches.truncate(1);
        assert!(items(Status::Developing, &f).is_empty());
    }

    #[test]
    fn later_gates_name_each_missing_fact() {
        assert_eq!(items(Status::Submitted, &Facts::default()).len(), 3);
        let mut f = Facts { test_integration_branch: "release/test".into(), ..Facts::default() };
        f.test_integration = vec![
            ("web".into(), "feature/PAY-1".into(), true),
            ("api".into(), "feature/PAY-1".into(), false),
        ];
        f.app_builds = vec![("web".into(), true)];
        let got = items(Status::Submitted, &f);
        assert_eq!(got[0], "release/test in api does not hold the tip of feature/PAY-1");
        assert_eq!(got.len(), 2, "the clusters are still unchecked: {got:?}");
        f.test_integration.pop();
        f.clusters_checked = true;
        f.test_deploys = vec![("web".into(), Some("web is not deployed to test".into()))];
        assert_eq!(
            items(Status::Submitted, &f),
            ["project PAY has no test environment", "web is not deployed to test"]
        );
        f.test_env_smoke = Some(false);
        assert_eq!(
            items(Status::Submitted, &f),
            ["the test environment has no smoke command", "web is not deployed to test"]
        );
        f.test_deploys[0].1 = None;
        f.test_env_smoke = Some(true);
        assert!(items(Status::Submitted, &f).is_empty());

        assert_eq!(items(Status::Testing, &Facts::default()).len(), 3);
        let f = Facts {
            qa_signoff: true,
            release_plan_doc: true,
            rollback_plan_doc: true,
            ..Facts::default()
        };
        assert!(items(Status::Testing, &f).is_empty());
        let mut f = Facts { clusters_checked: true, ..f };
        f.prod_deploys = vec![("web".into(), None)];
        assert_eq!(
            items(Status::Gray, &f),
            ["the product manager has not accepted the gray release"]
        );
        f.pm_acceptance = true;
        assert!(items(Status::Gray, &f).is_empty());
        f.gray_missing = vec!["web".into()];
        assert_eq!(items(Status::Gray, &f).len(), 1);
        f.gray_releases = vec![("web".into(), Some("web's gray release is in flight".into()))];
        assert_eq!(items(Status::Gray, &f).len(), 2);
        assert_eq!(
            items(Status::Released, &f),
            ["no app of the requirement was released to prod, so no post-release watch passed"]
        );
        f.watches =
            vec![("web".into(), Some("no passed watch of web".into())), ("api".into(), None)];
        assert_eq!(items(Status::Released, &f), ["no passed watch of web"]);
    }
}
