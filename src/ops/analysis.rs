//! A gray release's analyses: each compares the canary's pods with the stable's over the same
//! window on Prometheus, series by series selected by the pods' `namespace` and `pod` labels
//! (the names Prometheus's Kubernetes discovery gives; `gray.namespace_label` and
//! `gray.pod_label` set others), and the judge (`domain::judge`) decides. Seven come built in,
//! for Micrometer (Spring) and generic HTTP services; `[analysis.NAME]` in the config replaces
//! any of them or adds others.

use serde::Serialize;

use crate::adapters::prometheus::{Prometheus, Series};
use crate::config::Config;
use crate::domain::judge::{self, Allowance, Judgement};
pub use crate::domain::judge::{Analysis, Source};
use crate::ui::{Kind, Result, XoneError};

/// The built-in analyses, in the order they are shown.
pub const BUILT_IN: [&str; 7] =
    ["error-rate", "latency", "cpu", "memory", "gc-time", "gc-count", "restarts"];

const ERROR_RATE: &str = "100 * ((sum by ({by}) (rate(http_server_requests_seconds_count{{labels},status=~\"5..\"}[{range}])) or sum by ({by}) (rate(http_server_requests_seconds_count{{labels}}[{range}])) * 0) / sum by ({by}) (rate(http_server_requests_seconds_count{{labels}}[{range}]))) or 100 * ((sum by ({by}) (rate(http_requests_total{{labels},code=~\"5..\"}[{range}])) or sum by ({by}) (rate(http_requests_total{{labels}}[{range}])) * 0) / sum by ({by}) (rate(http_requests_total{{labels}}[{range}])))";
const ERROR_VOLUME: &str = "sum by ({by}) (increase(http_server_requests_seconds_count{{labels}}[{window}])) or sum by ({by}) (increase(http_requests_total{{labels}}[{window}]))";
const LATENCY: &str = "histogram_quantile(0.99, sum by ({by}, le) (rate(http_server_requests_seconds_bucket{{labels}}[{range}]))) or sum by ({by}) (rate(http_server_requests_seconds_sum{{labels}}[{range}])) / sum by ({by}) (rate(http_server_requests_seconds_count{{labels}}[{range}]))";
const CPU: &str = "sum by ({by}) (rate(process_cpu_seconds_total{{labels}}[{range}])) or sum by ({by}) (process_cpu_usage{{labels}})";
const MEMORY: &str = "sum by ({by}) (jvm_memory_used_bytes{{labels},area=\"heap\"}) or sum by ({by}) (container_memory_working_set_bytes{{labels},container!=\"\"})";
const GC_TIME: &str = "sum by ({by}) (rate(jvm_gc_pause_seconds_sum{{labels}}[{range}]))";
const GC_COUNT: &str = "sum by ({by}) (rate(jvm_gc_pause_seconds_count{{labels}}[{range}]))";

fn built_in(name: &str) -> Option<Analysis> {
    let a =
        |source: Source, factor: f64, plus: f64, points: Option<f64>, critical: bool| Analysis {
            name: name.to_string(),
            source,
            allowance: Allowance { factor, plus, points },
            critical,
            volume: None,
        };
    let q = |s: &str| Source::Query(s.to_string());
    Some(match name {
        "error-rate" => Analysis {
            volume: Some((ERROR_VOLUME.to_string(), 100.0)),
            ..a(q(ERROR_RATE), 1.5, 0.0, Some(0.5), true)
        },
        "latency" => a(q(LATENCY), 1.2, 0.05, None, false),
        "cpu" => a(q(CPU), 1.25, 0.0, None, false),
        "memory" => a(q(MEMORY), 1.25, 0.0, None, false),
        "gc-time" => a(q(GC_TIME), 1.3, 0.0, None, false),
        "gc-count" => a(q(GC_COUNT), 1.3, 0.0, None, false),
        "restarts" => a(Source::Restarts, 1.0, 0.0, None, true),
        _ => return None,
    })
}

/// The fields an `[analysis.NAME]` table may set.
const FIELDS: [&str; 7] = ["query", "factor", "plus", "points", "critical", "volume", "min_volume"];

/// The analyses called `names` (every built-in one when none is named), each as the config
/// makes it. An unknown name, or a table that cannot be read, is exit 4 naming it.
pub fn resolve(config: &Config, names: &[String]) -> Result<Vec<Analysis>> {
    let names: Vec<String> = if names.is_empty() {
        BUILT_IN.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    let mut out: Vec<Analysis> = Vec::new();
    for name in &names {
        if out.iter().any(|a| &a.name == name) {
            continue;
        }
        out.push(one(config, name)?);
    }
    Ok(out)
}

fn one(config: &Config, name: &str) -> Result<Analysis> {
    let configured = config.analyses.get(name);
    let mut a = match (built_in(name), configured) {
        (Some(a), _) => a,
        (None, Some(_)) => Analysis {
            name: name.to_string(),
            source: Source::Query(String::new()),
            allowance: Allowance { factor: 1.25, plus: 0.0, points: None },
            critical: false,
            volume: None,
        },
        (None, None) => {
            let mut known: Vec<String> = BUILT_IN.iter().map(|s| s.to_string()).collect();
            known.extend(config.analyses.keys().filter(|k| built_in(k).is_none()).cloned());
            return Err(XoneError::gate(format!("there is no analysis '{name}'"))
                .cause(format!("the analyses: {}", known.join(", ")))
                .hint(format!("add it to the config: [analysis.{name}] query = \"PromQL\"")));
        }
    };
    let Some((table, file)) = configured else { return Ok(a) };
    let bad = |what: String| {
        XoneError::gate(format!("the analysis {name} in {} cannot be used", file.display()))
            .cause(what)
            .hint(format!("its fields: {}", FIELDS.join(", ")))
    };
    for key in table.keys() {
        if !FIELDS.contains(&key.as_str()) {
            return Err(bad(format!("unknown field '{key}'")));
        }
    }
    let number = |key: &str| -> Result<Option<f64>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Float(f)) => Ok(Some(*f)),
            Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(_) => Err(bad(format!("{key} is not a number"))),
        }
    };
    let text = |key: &str| -> Result<Option<String>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{key} is not a PromQL text"))),
        }
    };
    if let Some(q) = text("query")? {
        if a.source == Source::Restarts {
            return Err(bad("restarts are read from Kubernetes, not a query".into()));
        }
        a.source = Source::Query(q);
    }
    if a.source == Source::Query(String::new()) {
        return Err(bad("it has no query".into()));
    }
    if let Some(f) = number("factor")? {
        a.allowance.factor = f;
    }
    if let Some(p) = number("plus")? {
        a.allowance.plus = p;
    }
    if let Some(p) = number("points")? {
        a.allowance.points = Some(p);
    }
    match table.get("critical") {
        None => {}
        Some(toml::Value::Boolean(b)) => a.critical = *b,
        Some(_) => return Err(bad("critical is not true or false".into())),
    }
    match (text("volume")?, number("min_volume")?) {
        (Some(q), m) => a.volume = Some((q, m.unwrap_or(1.0))),
        (None, Some(m)) => match &mut a.volume {
            Some(v) => v.1 = m,
            None => return Err(bad("min_volume needs a volume query".into())),
        },
        (None, None) => {}
    }
    Ok(a)
}

/// A pod of one track, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PodInfo {
    pub name: String,
    pub image: String,
    /// The digest the pod's container runs, when its runtime reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub ready: bool,
    pub restarts: i64,
    pub node: Option<String>,
}

/// What the analyses look at.
pub struct Scene<'a> {
    pub namespace: &'a str,
    pub canary: &'a [PodInfo],
    pub stable: &'a [PodInfo],
    /// How far back, in seconds (the window, or less when the step is younger).
    pub window: u64,
    pub min_samples: usize,
    pub range: u64,
    pub pod_label: &'a str,
    pub namespace_label: &'a str,
}

/// One analysis's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    pub critical: bool,
    #[serde(flatten)]
    pub judgement: Judgement,
    /// The medians compared.
    pub canary: Option<f64>,
    pub stable: Option<f64>,
    pub canary_samples: usize,
    pub stable_samples: usize,
}

/// Every analysis's outcome, and the error that kept Prometheus from being asked, if one did
/// (then the analyses it would have answered hold).
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub unreachable: Option<XoneError>,
}

impl Report {
    pub fn failed(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| matches!(o.judgement, Judgement::Fail(_))).collect()
    }
    pub fn holding(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| matches!(o.judgement, Judgement::Hold(_))).collect()
    }
}

/// Runs the analyses: the queries all at once, then the judge. `prom` is `None` when the
/// environment has no Prometheus (the queries then hold). A query Prometheus refuses as
/// malformed is an error (exit 4 naming it).
pub fn evaluate(
    prom: Option<&Prometheus>,
    analyses: &[Analysis],
    scene: &Scene,
    now: i64,
) -> Result<Report> {
    let step = (scene.window / 30).max(1);
    let start = now - scene.window as i64;
    let pods: Vec<&str> =
        scene.canary.iter().chain(scene.stable).map(|p| p.name.as_str()).collect();
    let fill = |q: &str| {
        let labels = format!(
            "{}=\"{}\",{}=~\"{}\"",
            scene.namespace_label,
            scene.namespace,
            scene.pod_label,
            pods.iter().map(|p| regex_escape(p)).collect::<Vec<_>>().join("|")
        );
        q.replace("{labels}", &labels)
            .replace("{by}", scene.pod_label)
            .replace("{range}", &format!("{}s", scene.range))
            .replace("{window}", &format!("{}s", scene.window.max(1)))
    };
    type Asked = Result<(Vec<Series>, Option<Vec<Series>>)>;
    let asked: Vec<Option<Asked>> = std::thread::scope(|s| {
        let handles: Vec<_> = analyses
            .iter()
            .map(|a| {
                let (Source::Query(q), Some(prom), false) = (&a.source, prom, pods.is_empty())
                else {
                    return None;
                };
                let (q, volume) = (fill(q), a.volume.as_ref().map(|(v, _)| fill(v)));
                Some(s.spawn(move || -> Asked {
                    let series = prom.query_range(&q, start, now, step)?;
                    let volume = match volume {
                        Some(v) => Some(prom.query_range(&v, now, now, 1)?),
                        None => None,
                    };
                    Ok((series, volume))
                }))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(XoneError::internal("an analysis query's thread failed"))
                    })
                })
            })
            .collect()
    });
    let mut report = Report { outcomes: Vec::new(), unreachable: None };
    for (a, asked) in analyses.iter().zip(asked) {
        let outcome = match (&a.source, asked) {
            (Source::Restarts, _) => restarts(a, scene),
            (Source::Query(_), None) => {
                let why = if pods.is_empty() {
                    "no pods to compare".to_string()
                } else {
                    "the environment has no Prometheus".to_string()
                };
                held(a, why)
            }
            (Source::Query(_), Some(Err(e))) if e.kind == Kind::Usage => {
                return Err(XoneError::gate(format!("the analysis {} cannot run", a.name))
                    .cause(e.message.clone())
                    .cause(e.causes.join("; "))
                    .hint(format!("fix [analysis.{}] query in the config", a.name)));
            }
            (Source::Query(_), Some(Err(e))) => {
                let why = format!("cannot ask Prometheus: {}", e.message);
                report.unreachable.get_or_insert(e);
                held(a, why)
            }
            (Source::Query(_), Some(Ok((series, volume)))) => judged(a, scene, &series, volume),
        };
        report.outcomes.push(outcome);
    }
    Ok(report)
}

fn held(a: &Analysis, why: String) -> Outcome {
    Outcome {
        name: a.name.clone(),
        critical: a.critical,
        judgement: Judgement::Hold(why),
        canary: None,
        stable: None,
        canary_samples: 0,
        stable_samples: 0,
    }
}

/// The samples of the pods of one track: every finite point of each of their series.
fn samples(series: &[Series], pods: &[PodInfo], label: &str) -> Vec<f64> {
    series
        .iter()
        .filter(|s| {
            let pod = s.labels.get(label).and_then(|v| v.as_str()).unwrap_or_default();
            pods.iter().any(|p| p.name == pod)
        })
        .flat_map(|s| s.values.iter().copied().filter(|v| v.is_finite()))
        .collect()
}

fn judged(a: &Analysis, scene: &Scene, series: &[Series], volume: Option<Vec<Series>>) -> Outcome {
    let canary = samples(series, scene.canary, scene.pod_label);
    let stable = samples(series, scene.stable, scene.pod_label);
    let median = |v: &[f64]| (!v.is_empty()).then(|| judge::median(v));
    let mut out = Outcome {
        name: a.name.clone(),
        critical: a.critical,
        judgement: judge::judge(&canary, &stable, &a.allowance, scene.min_samples),
        canary: median(&canary),
        stable: median(&stable),
        canary_samples: canary.len(),
        stable_samples: stable.len(),
    };
    if let (Some((_, least)), Some(volume)) = (&a.volume, volume) {
        let served: f64 = samples(&volume, scene.canary, scene.pod_label).iter().sum();
        if served < *least && !matches!(out.judgement, Judgement::Hold(_)) {
            out.judgement = Judgement::Hold(format!(
                "the canary served {} requests in the window, {least} needed",
                served.floor()
            ));
        }
    }
    out
}

/// Restarts: the canary's pods are new, so any restart of theirs is growth; the stable's are
/// shown beside them.
fn restarts(a: &Analysis, scene: &Scene) -> Outcome {
    let canary: i64 = scene.canary.iter().map(|p| p.restarts).sum();
    let stable: i64 = scene.stable.iter().map(|p| p.restarts).sum();
    let judgement = if scene.canary.is_empty() {
        Judgement::Hold("no canary pods".into())
    } else if canary > 0 {
        Judgement::Fail(format!("the canary's containers restarted {canary} time(s)"))
    } else {
        Judgement::Pass
    };
    Outcome {
        name: a.name.clone(),
        critical: a.critical,
        judgement,
        canary: Some(canary as f64),
        stable: Some(stable as f64),
        canary_samples: scene.canary.len(),
        stable_samples: scene.stable.len(),
    }
}

/// A pod name inside a PromQL regular expression: its dots are literal.
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\' => {
                vec!['\\', '\\', c]
            }
            _ => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_built_in_analyses_exist_and_two_are_critical() {
        let critical: Vec<&str> = BUILT_IN
            .iter()
            .map(|n| built_in(n).unwrap())
            .filter(|a| a.critical)
            .map(|a| BUILT_IN.iter().find(|n| **n == a.name).copied().unwrap())
            .collect();
        assert_eq!(critical, ["error-rate", "restarts"]);
        let e = built_in("error-rate").unwrap();
        // 0.5 points over a stable at 0.1 %, or 1.5 × a stable at 2 %.
        assert!((e.allowance.limit(0.1) - 0.6).abs() < 1e-9);
        assert!((e.allowance.limit(2.0) - 3.0).abs() < 1e-9);
        assert_eq!(e.volume.as_ref().map(|v| v.1), Some(100.0));
        let l = built_in("latency").unwrap();
        assert!((l.allowance.limit(0.2) - 0.29).abs() < 1e-9, "1.2 × stable + 50 ms");
    }

    #[test]
    fn pod_names_are_literal_in_a_selector() {
        assert_eq!(regex_escape("web-7d4.x"), "web-7d4\\\\.x");
    }

    #[test]
    fn samples_are_the_points_of_a_track_s_pods() {
        let pod = |n: &str| PodInfo {
            name: n.into(),
            image: String::new(),
            digest: None,
            ready: true,
            restarts: 0,
            node: None,
        };
        let series = |p: &str, v: &[f64]| Series {
            labels: serde_json::json!({ "pod": p }).as_object().cloned().unwrap(),
            values: v.to_vec(),
        };
        let all = [series("a", &[1.0, f64::NAN, 2.0]), series("b", &[5.0]), series("c", &[9.0])];
        assert_eq!(samples(&all, &[pod("a"), pod("b")], "pod"), vec![1.0, 2.0, 5.0]);
        assert!(samples(&all, &[pod("z")], "pod").is_empty());
    }
}
