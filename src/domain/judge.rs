//! Judging a canary against its stable twin over the same window, as Kayenta's judge does: a
//! metric fails when the canary is worse than the stable by more than the analysis allows
//! AND the Mann–Whitney U test says, at 98 % confidence, that the canary's samples are
//! really higher, so that noise never aborts a healthy canary and a real shift is not
//! missed. Too few samples is "hold", never "pass".

use serde::{Deserialize, Serialize};

/// Where an analysis reads its samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A PromQL query giving one series per pod (`sum by ({by}) (…{labels}…)`).
    Query(String),
    /// The containers' restart counts, read from the Kubernetes API.
    Restarts,
}

/// One analysis as a gray release runs it: kept whole in the release's state, so that every
/// machine judges it alike, whatever its own configuration says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub name: String,
    pub source: Source,
    pub allowance: Allowance,
    /// A failure aborts the release (`gray watch`), rather than only holding it.
    pub critical: bool,
    /// A query giving the requests each pod served over the window, and the fewest the canary
    /// must have served for its figures to count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<(String, f64)>,
}

/// What an analysis concludes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "lowercase")]
pub enum Judgement {
    Pass,
    /// The canary is worse: how.
    Fail(String),
    /// Not enough to say: why.
    Hold(String),
}

impl Judgement {
    pub fn word(&self) -> &'static str {
        match self {
            Judgement::Pass => "pass",
            Judgement::Fail(_) => "fail",
            Judgement::Hold(_) => "hold",
        }
    }
}

/// How much worse the canary may be: it fails above `factor × stable + plus`, and, when
/// `points` is set, only when it is also above `stable + points` (an error share, where a
/// factor alone would fail 0.2 % against 0.1 %).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allowance {
    pub factor: f64,
    pub plus: f64,
    pub points: Option<f64>,
}

impl Allowance {
    /// The highest value the canary may show against `stable`.
    pub fn limit(&self, stable: f64) -> f64 {
        let by_factor = self.factor * stable + self.plus;
        match self.points {
            Some(p) => by_factor.max(stable + p),
            None => by_factor,
        }
    }
}

/// The one-sided confidence the judge asks for before calling a canary worse.
pub const CONFIDENCE: f64 = 0.98;

/// Compares the canary's samples with the stable's under `allowance`; `min_samples` each
/// are needed to say anything.
pub fn judge(
    canary: &[f64],
    stable: &[f64],
    allowance: &Allowance,
    min_samples: usize,
) -> Judgement {
    let canary: Vec<f64> = canary.iter().copied().filter(|v| v.is_finite()).collect();
    let stable: Vec<f64> = stable.iter().copied().filter(|v| v.is_finite()).collect();
    if canary.len() < min_samples || stable.len() < min_samples {
        return Judgement::Hold(format!(
            "{} canary and {} stable samples, {min_samples} of each needed",
            canary.len(),
            stable.len()
        ));
    }
    let (c, s) = (median(&canary), median(&stable));
    let limit = allowance.limit(s);
    if c <= limit {
        return Judgement::Pass;
    }
    let p = mann_whitney_greater(&canary, &stable);
    if p < 1.0 - CONFIDENCE {
        Judgement::Fail(format!(
            "canary {} against stable {} (limit {}; Mann-Whitney p = {p:.4})",
            short(c),
            short(s),
            short(limit)
        ))
    } else {
        // Above the limit in the middle, but not beyond noise: not a verdict of failure.
        Judgement::Pass
    }
}

fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() < 0.01 || v.abs() >= 1e6) {
        format!("{v:.3e}")
    } else {
        format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The one-sided p-value of the Mann–Whitney U test that `a`'s values tend to be greater than
/// `b`'s: the normal approximation with the tie correction and a continuity correction,
/// sound from about 8 samples a side, which the judge's minimum asks for.
pub fn mann_whitney_greater(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    // Ranks over both samples, ties sharing their mean rank.
    let mut all: Vec<(f64, bool)> =
        a.iter().map(|&v| (v, true)).chain(b.iter().map(|&v| (v, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum_a += all[i..=j].iter().filter(|(_, from_a)| *from_a).count() as f64 * rank;
        i = j + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    if variance <= 0.0 {
        // Every value the same: nothing tends anywhere.
        return 1.0;
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    1.0 - normal_cdf(z)
}

/// The standard normal distribution function (Abramowitz and Stegun 7.1.26, error < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: Allowance = Allowance { factor: 1.25, plus: 0.0, points: None };

    /// A repeatable noisy series around `centre` (a linear congruential generator: no
    /// randomness between runs).
    fn noisy(centre: f64, spread: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                centre + spread * (2.0 * u - 1.0)
            })
            .collect()
    }

    #[test]
    fn the_normal_distribution_function_matches_its_table() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-2.054) - 0.02).abs() < 1e-4);
    }

    #[test]
    fn mann_whitney_agrees_with_a_worked_example() {
        // Two groups of 8, all of a above all of b: U = 64, z = (64 - 32 - 0.5)/sqrt(90.67).
        let a = [11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0];
        let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let p = mann_whitney_greater(&a, &b);
        let expected = 1.0 - normal_cdf(31.5 / (8.0f64 * 8.0 * 17.0 / 12.0).sqrt());
        assert!((p - expected).abs() < 1e-12, "{p} {expected}");
        assert!(p < 0.001);
        // The other way round it is nowhere near.
        assert!(mann_whitney_greater(&b, &a) > 0.99);
        // Identical samples (all ties) say nothing.
        assert_eq!(mann_whitney_greater(&[1.0; 10], &[1.0; 10]), 1.0);
    }

    #[test]
    fn a_worse_canary_fails_an_equal_one_passes_a_noisy_equal_one_is_not_failed() {
        let stable = noisy(0.40, 0.05, 30, 1);
        assert!(matches!(judge(&noisy(0.80, 0.05, 30, 2), &stable, &CPU, 10), Judgement::Fail(_)));
        assert_eq!(judge(&noisy(0.40, 0.05, 30, 3), &stable, &CPU, 10), Judgement::Pass);
        // Very noisy and equal in the middle: spikes above the limit are not a shift.
        let wild_stable = noisy(0.40, 0.39, 30, 4);
        let wild_canary = noisy(0.40, 0.39, 30, 5);
        assert_eq!(judge(&wild_canary, &wild_stable, &CPU, 10), Judgement::Pass);
    }

    #[test]
    fn too_few_samples_hold_and_never_pass() {
        let j = judge(&[0.1; 3], &[0.1; 30], &CPU, 10);
        assert_eq!(j, Judgement::Hold("3 canary and 30 stable samples, 10 of each needed".into()));
        let j = judge(&[f64::NAN; 30], &[0.1; 30], &CPU, 10);
        assert!(matches!(j, Judgement::Hold(_)), "{j:?}");
    }

    #[test]
    fn an_error_share_must_also_rise_by_points() {
        let errors = Allowance { factor: 1.5, plus: 0.0, points: Some(0.005) };
        // 0.2 % against 0.1 %: twice as many, but within half a point.
        assert_eq!(judge(&[0.002; 20], &[0.001; 20], &errors, 10), Judgement::Pass);
        assert!(matches!(judge(&[0.03; 20], &[0.001; 20], &errors, 10), Judgement::Fail(_)));
        // Latency: 1.2 × stable + 50 ms.
        let latency = Allowance { factor: 1.2, plus: 0.05, points: None };
        assert_eq!(latency.limit(0.2), 0.2 * 1.2 + 0.05);
    }
}
