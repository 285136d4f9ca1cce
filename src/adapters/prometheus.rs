//! Prometheus through its HTTP API: instant queries (`/api/v1/query`) and range queries
//! (`/api/v1/query_range`) whose answers are read strictly. An answer that is not a success is
//! an error, never an empty result: a watch or an analysis must not pass because it could not
//! see. A query Prometheus cannot run (`bad_data`) is the query's fault: exit 4 naming it.

use serde_json::Value;

use reqwest::Method;

use super::http::{encode, Api, Settings};
use crate::ui::{Kind, Result, XoneError};

pub struct Prometheus {
    api: Api,
}

/// One series of a range query: its labels and its values, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: serde_json::Map<String, Value>,
    pub values: Vec<f64>,
}

/// One series of an instant vector: its labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

impl Prometheus {
    pub fn new(url: &str, settings: Settings) -> Result<Prometheus> {
        Ok(Prometheus { api: Api::new("Prometheus", url, None, settings)? })
    }

    /// An instant query; a scalar answer becomes one sample without labels.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let body = self.api.get(&format!("/api/v1/query?query={}", encode(promql)))?;
        parse(&body).map_err(|e| {
            XoneError::new(
                Kind::Remote,
                format!("Prometheus answered the query {promql} with something unreadable"),
            )
            .cause(e)
        })
    }

    /// A range query from `start` to `end` (Unix seconds) every `step` seconds: one series per
    /// label set. A query Prometheus refuses as malformed is a usage error naming it.
    pub fn query_range(
        &self,
        promql: &str,
        start: i64,
        end: i64,
        step: u64,
    ) -> Result<Vec<Series>> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={}",
            encode(promql),
            step.max(1)
        );
        let reply = self.api.call(Method::GET, &path, None, &[400, 422])?;
        let body = reply.json()?;
        if matches!(reply.status, 400 | 422) {
            return Err(XoneError::usage(format!("Prometheus cannot run the query {promql}"))
                .cause(format!(
                    "{}: {}",
                    body["errorType"].as_str().unwrap_or("error"),
                    body["error"].as_str().unwrap_or("no reason given")
                ))
                .hint("fix its PromQL (`[analysis.NAME] query` in the config)"));
        }
        parse_matrix(&body).map_err(|e| {
            XoneError::new(
                Kind::Remote,
                format!("Prometheus answered the range query {promql} with something unreadable"),
            )
            .cause(e)
        })
    }
}

fn number(s: &str) -> std::result::Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| format!("'{s}' is not a number")),
    }
}

fn parse_matrix(body: &Value) -> std::result::Result<Vec<Series>, String> {
    if body["status"] != "success" {
        return Err(format!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or("error"),
            body["error"].as_str().unwrap_or("no status")
        ));
    }
    let data = &body["data"];
    if data["resultType"] != "matrix" {
        return Err(format!("an answer of type {}, not a matrix", data["resultType"]));
    }
    data["result"]
        .as_array()
        .ok_or("a matrix without results")?
        .iter()
        .map(|r| {
            let values = r["values"]
                .as_array()
                .ok_or("a series without values")?
                .iter()
                .map(|v| number(v.get(1).and_then(Value::as_str).ok_or("a point without a value")?))
                .collect::<std::result::Result<Vec<f64>, String>>()?;
            Ok(Series { labels: r["metric"].as_object().cloned().unwrap_or_default(), values })
        })
        .collect()
}

fn parse(body: &Value) -> std::result::Result<Vec<Sample>, String> {
    if body["status"] != "success" {
        return Err(format!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or("error"),
            body["error"].as_str().unwrap_or("no status")
        ));
    }
    let data = &body["data"];
    let value = |v: &Value| -> std::result::Result<f64, String> {
        number(v.get(1).and_then(Value::as_str).ok_or("a sample without a value")?)
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or("a vector without results")?
            .iter()
            .map(|r| {
                Ok(Sample {
                    labels: r["metric"].as_object().cloned().unwrap_or_default(),
                    value: value(&r["value"])?,
                })
            })
            .collect(),
        Some("scalar") => {
            Ok(vec![Sample { labels: Default::default(), value: value(&data["result"])? }])
        }
        other => Err(format!("an answer of type {other:?}, not a vector")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_scalars_and_errors() {
        let v = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"alertname": "HighErrors", "app": "web"}, "value": [1700000000.0, "1"]}]}});
        let got = parse(&v).unwrap();
        assert_eq!(got[0].labels["alertname"], "HighErrors");
        assert_eq!(got[0].value, 1.0);
        let s =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "NaN"]}});
        assert!(parse(&s).unwrap()[0].value.is_nan());
        let e = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        assert_eq!(parse(&e).unwrap_err(), "bad_data: parse error");
        assert!(parse(&json!({"status": "success", "data": {}})).is_err());
    }

    #[test]
    fn matrices_keep_each_series_points_in_order() {
        let m = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"pod": "web-1"}, "values": [[1.0, "0.5"], [2.0, "NaN"], [3.0, "2"]]}]}});
        let got = parse_matrix(&m).unwrap();
        assert_eq!(got[0].labels["pod"], "web-1");
        assert_eq!(got[0].values.len(), 3);
        assert_eq!((got[0].values[0], got[0].values[2]), (0.5, 2.0));
        assert!(got[0].values[1].is_nan());
        let v = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert!(parse_matrix(&v).unwrap_err().contains("not a matrix"));
    }
}
