//! A gray release by instances, with no controller in the cluster: the new version runs as a
//! canary Deployment `APP-canary` beside the stable `APP`, both behind the app's Service, and
//! is widened step by step (`--steps 1,2,3` or `33%,66%,100%`) until it is all of them, or
//! pulled back. Its whole state is one document, kept in the cluster (a ConfigMap) so that any
//! machine can carry it on; this module is that document and the rules it moves by.

use serde::{Deserialize, Serialize};

/// The label that tells a gray release's two tracks apart.
pub const TRACK_LABEL: &str = "xone.io/track";
/// The ConfigMap key that holds the state.
pub const STATE_KEY: &str = "state.json";

/// The canary Deployment's name.
pub fn canary_name(app: &str) -> String {
    format!("{app}-canary")
}

/// The ConfigMap that holds an app's gray release.
pub fn state_name(app: &str) -> String {
    format!("xone-gray-{app}")
}

/// A step as asked for: a number of instances, or a share of the app's replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Count(u32),
    Percent(u32),
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Step, String> {
        let s = s.trim();
        let bad = || {
            format!("invalid step '{s}': an instance count (2) or a share of the replicas (33%)")
        };
        match s.strip_suffix('%') {
            Some(p) => match p.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => Ok(Step::Percent(n)),
                _ => Err(bad()),
            },
            None => match s.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Step::Count(n)),
                _ => Err(bad()),
            },
        }
    }
}

impl Step {
    /// Instances at this step of an app of `replicas`: a share rounded up, at least one.
    pub fn instances(self, replicas: u32) -> u32 {
        match self {
            Step::Count(n) => n,
            Step::Percent(p) => (replicas * p).div_ceil(100).max(1),
        }
    }
}

/// The canary's instance count at each step, the last being every replica (full promotion).
/// Without steps: `instances` (default 1), then all. A step that is not below the next, or
/// that asks for more than the app has, is refused with what the app has.
pub fn plan(steps: &[Step], instances: Option<u32>, replicas: u32) -> Result<Vec<u32>, String> {
    if replicas < 2 {
        return Err(format!(
            "the app runs {replicas} instance(s): a gray release puts the new version on some of them, so it needs at least 2"
        ));
    }
    let mut counts: Vec<u32> = if steps.is_empty() {
        vec![instances.unwrap_or(1)]
    } else {
        steps.iter().map(|s| s.instances(replicas)).collect()
    };
    if counts.last() != Some(&replicas) {
        counts.push(replicas);
    }
    for w in counts.windows(2) {
        if w[0] >= w[1] {
            return Err(format!(
                "the steps {} do not widen: each must be more instances than the one before, up to the app's {replicas}",
                counts.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            ));
        }
    }
    if counts[0] >= replicas {
        return Err(format!(
            "{} instance(s) is all of the app's {replicas}: a gray release starts on fewer",
            counts[0]
        ));
    }
    Ok(counts)
}

/// The canary's traffic weight (a percentage) at each step, the last being 100 (full
/// promotion). Without steps: `weight`, then 100. Steps are shares (`10%,50%`); counts of
/// instances mean nothing here and are refused.
pub fn plan_weights(steps: &[Step], weight: u32) -> Result<Vec<u32>, String> {
    let mut weights: Vec<u32> = Vec::new();
    for s in steps {
        match s {
            Step::Percent(p) => weights.push(*p),
            Step::Count(n) => {
                return Err(format!(
                    "a gray release by weight takes its steps as shares of the traffic (10%,50%), not {n}"
                ))
            }
        }
    }
    if weights.is_empty() {
        weights.push(weight);
    }
    if weights.last() != Some(&100) {
        weights.push(100);
    }
    if weights.windows(2).any(|w| w[0] >= w[1]) || weights[0] >= 100 {
        return Err(format!(
            "the weights {} do not widen: each must be more than the one before, below 100 but the last",
            weights.iter().map(|w| format!("{w}%")).collect::<Vec<_>>().join(",")
        ));
    }
    Ok(weights)
}

/// Where a gray release by weight splits the traffic: the app's Service, and the router in
/// front of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Router {
    /// `Ingress` (ingress-nginx, through a canary Ingress) or `HTTPRoute` (Gateway API,
    /// through weighted backends).
    pub kind: String,
    pub name: String,
    pub service: String,
    /// An HTTPRoute's rules before the release: what promotion and abort put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
}

/// Where a gray release stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// At a step, waiting for its pause and its analyses.
    Progressing,
    /// Held by a person: no step is taken until it is resumed.
    Paused,
    /// Being promoted: the next `gray promote` (or `gray watch`) finishes it.
    Promoting,
    /// Being pulled back: the next `gray abort` (or `gray watch`) finishes it.
    Aborting,
    /// The stable took the canary's image: done.
    Promoted,
    /// Pulled back: the stable runs as before.
    Aborted,
}

impl Phase {
    pub fn in_flight(self) -> bool {
        !matches!(self, Phase::Promoted | Phase::Aborted)
    }

    /// Where a release goes back to when a promotion or an abort under way is given up.
    pub fn steady(self) -> Phase {
        match self {
            Phase::Promoting | Phase::Aborting => Phase::Progressing,
            p => p,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Promoting => "promoting",
            Phase::Aborting => "aborting",
            Phase::Promoted => "promoted",
            Phase::Aborted => "aborted",
        })
    }
}

/// One thing that happened to a gray release, for its story.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub at: String,
    pub actor: String,
    /// `start`, `step`, `pause`, `resume`, `promote`, `abort`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// A gray release: everything needed to carry it on from any machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gray {
    pub app: String,
    pub namespace: String,
    pub canary_image: String,
    /// The canary's image by digest, as its pods run it (once they have reported it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_digest: Option<String>,
    /// The stable's image and replicas when the release started: what an abort restores.
    pub stable_image: String,
    pub stable_replicas: u32,
    /// The canary's instances at each step; the last is every replica.
    pub steps: Vec<u32>,
    /// The step the release is at (an index of `steps`).
    pub step: usize,
    /// When that step was reached (RFC 3339).
    pub step_started_at: String,
    /// How long each step runs before the next may be taken; none: a person steps it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_secs: Option<u64>,
    /// The analyses it is judged by, whole (queries and limits as they were at the start).
    pub analyses: Vec<crate::domain::judge::Analysis>,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<i64>,
    /// By weight: the router that splits the traffic, and `steps` are weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Router>,
    /// Node names the canary's pods are kept on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    pub started_at: String,
    pub started_by: String,
    /// Whether the analyses passed when it was promoted (a forced promotion, or one whose
    /// analyses held or failed, did not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    #[serde(default)]
    pub marks: Vec<Mark>,
}

impl Gray {
    /// Canary instances at the current step; by weight, its share of the stable's, at least
    /// one.
    pub fn canary_replicas(&self) -> u32 {
        let step = self.steps.get(self.step).copied().unwrap_or(0);
        match self.router {
            Some(_) => (self.stable_replicas * step).div_ceil(100).max(1),
            None => step,
        }
    }

    /// The canary's share of the traffic at the current step, by weight.
    pub fn weight(&self) -> Option<u32> {
        self.router.as_ref().map(|_| self.steps.get(self.step).copied().unwrap_or(0))
    }

    /// Stable instances at the current step: what the canary does not run (by weight the
    /// stable keeps them all).
    pub fn stable_replicas_now(&self) -> u32 {
        match self.router {
            Some(_) => self.stable_replicas,
            None => self.stable_replicas.saturating_sub(self.canary_replicas()),
        }
    }

    /// Seconds of the current step's pause still to run at `now` (unix seconds), given when
    /// the step started; `None` when there is no pause.
    pub fn pause_left(&self, started: i64, now: i64) -> Option<u64> {
        let pause = i64::try_from(self.pause_secs?).unwrap_or(i64::MAX);
        Some(started.saturating_add(pause).saturating_sub(now).max(0) as u64)
    }

    pub fn mark(
        &mut self,
        at: &str,
        actor: &str,
        action: &str,
        detail: Option<String>,
        forced: bool,
    ) {
        self.marks.push(Mark {
            at: at.to_string(),
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
            forced,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(s: &str) -> Vec<Step> {
        s.split(',').map(|x| x.parse().unwrap()).collect()
    }

    #[test]
    fn steps_read_as_counts_or_shares() {
        assert_eq!("2".parse::<Step>(), Ok(Step::Count(2)));
        assert_eq!("33%".parse::<Step>(), Ok(Step::Percent(33)));
        for bad in ["0", "0%", "101%", "x", "-1", "1.5", ""] {
            assert!(bad.parse::<Step>().is_err(), "{bad}");
        }
        assert_eq!(Step::Percent(33).instances(3), 1);
        assert_eq!(Step::Percent(34).instances(3), 2, "rounded up");
        assert_eq!(Step::Percent(1).instances(3), 1, "at least one");
    }

    #[test]
    fn a_plan_widens_to_every_replica() {
        // The seed's: the new version on 2 of 3, then all.
        assert_eq!(plan(&[], Some(2), 3), Ok(vec![2, 3]));
        assert_eq!(plan(&[], None, 3), Ok(vec![1, 3]));
        assert_eq!(plan(&steps("1,2,3"), None, 3), Ok(vec![1, 2, 3]));
        assert_eq!(plan(&steps("33%,66%,100%"), None, 3), Ok(vec![1, 2, 3]));
        assert_eq!(plan(&steps("10%,50%"), None, 10), Ok(vec![1, 5, 10]));
        let e = plan(&[], Some(3), 3).unwrap_err();
        assert!(e.contains("all of the app's 3"), "{e}");
        let e = plan(&steps("2,1"), None, 3).unwrap_err();
        assert!(e.contains("do not widen"), "{e}");
        let e = plan(&steps("4"), None, 3).unwrap_err();
        assert!(e.contains("do not widen") || e.contains("all of"), "{e}");
        assert!(plan(&[], None, 1).unwrap_err().contains("at least 2"));
    }

    #[test]
    fn weights_are_shares_up_to_all_of_the_traffic() {
        assert_eq!(plan_weights(&[], 10), Ok(vec![10, 100]));
        assert_eq!(plan_weights(&steps("5%,25%,50%"), 10), Ok(vec![5, 25, 50, 100]));
        assert!(plan_weights(&steps("2"), 10).unwrap_err().contains("shares of the traffic"));
        assert!(plan_weights(&steps("50%,20%"), 10).unwrap_err().contains("do not widen"));
    }

    #[test]
    fn the_state_reads_back_as_written_and_counts_its_tracks() {
        let mut g = Gray {
            app: "web".into(),
            namespace: "pay-prod".into(),
            canary_image: "reg/web@sha256:1".into(),
            canary_digest: None,
            stable_image: "reg/web@sha256:0".into(),
            stable_replicas: 3,
            steps: vec![2, 3],
            step: 0,
            step_started_at: "2026-12-06T10:00:00Z".into(),
            pause_secs: Some(7 * 86_400),
            analyses: vec![],
            phase: Phase::Progressing,
            requirement: Some("PAY-1".into()),
            build: None,
            nodes: vec![],
            router: None,
            started_at: "2026-12-06T10:00:00Z".into(),
            started_by: "pat".into(),
            passed: None,
            marks: vec![],
        };
        g.mark("2026-12-06T10:00:00Z", "pat", "start", None, false);
        let text = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Gray>(&text).unwrap(), g);
        assert_eq!((g.canary_replicas(), g.stable_replicas_now()), (2, 1));
        assert_eq!(g.pause_left(1000, 1000 + 86_400), Some(6 * 86_400));
        assert_eq!(g.pause_left(1000, 1000 + 8 * 86_400), Some(0));
        g.step = 1;
        assert_eq!((g.canary_replicas(), g.stable_replicas_now()), (3, 0));
    }
}
