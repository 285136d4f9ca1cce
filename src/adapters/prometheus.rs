//! Prometheus through its HTTP API (`/api/v1/query`): instant queries whose answers are read
//! strictly. An answer that is not a success is an error, never an empty result: a watch must
//! not pass because it could not see.

use serde_json::Value;

use super::http::{encode, Api, Settings};
use crate::ui::{Kind, Result, XoneError};

pub struct Prometheus {
    api: Api,
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
        let s = v.get(1).and_then(Value::as_str).ok_or("a sample without a value")?;
        match s {
            "NaN" => Ok(f64::NAN),
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            _ => s.parse().map_err(|_| format!("'{s}' is not a number")),
        }
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
}
