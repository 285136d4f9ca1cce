//! Test and coverage reports as test tools write them: JUnit XML (`<testsuites>` or one
//! `<testsuite>` of `<testcase>`s, each possibly with `<failure>`, `<error>` or `<skipped>`)
//! and Cobertura XML (`<coverage line-rate="0.85">`).

use serde::{Deserialize, Serialize};

/// Test results as a build measured them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tests {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Names of failing tests, in report order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// Reads a JUnit XML report.
pub fn junit(xml: &str) -> Result<Tests, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(format!(
            "the root element is <{}>, not <testsuites> or <testsuite>",
            root.tag_name().name()
        ));
    }
    let mut t = Tests::default();
    for case in root.descendants().filter(|n| n.has_tag_name("testcase")) {
        t.total += 1;
        let child = |name: &str| case.children().any(|c| c.has_tag_name(name));
        if child("failure") || child("error") {
            t.failed += 1;
            let class = case.attribute("classname").unwrap_or_default();
            let name = case.attribute("name").unwrap_or("?");
            t.failures.push(if class.is_empty() {
                name.to_string()
            } else {
                format!("{class}::{name}")
            });
        } else if child("skipped") {
            t.skipped += 1;
        } else {
            t.passed += 1;
        }
    }
    Ok(t)
}

/// Reads a Cobertura XML report: the line coverage in percent.
pub fn cobertura(xml: &str) -> Result<f64, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name("coverage") {
        return Err(format!("the root element is <{}>, not <coverage>", root.tag_name().name()));
    }
    let rate = root
        .attribute("line-rate")
        .ok_or("<coverage> has no line-rate attribute")?
        .parse::<f64>()
        .map_err(|_| "line-rate is not a number".to_string())?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("line-rate {rate} is not between 0 and 1"));
    }
    Ok((rate * 10_000.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_counts_passes_failures_errors_and_skips() {
        let xml = r#"<?xml version="1.0"?>
<testsuites>
  <testsuite name="a" tests="3">
    <testcase classname="pay.Refund" name="full"/>
    <testcase classname="pay.Refund" name="partial"><failure message="off by one">x</failure></testcase>
    <testcase name="slow"><skipped/></testcase>
  </testsuite>
  <testsuite name="b"><testcase name="boom"><error type="E"/></testcase></testsuite>
</testsuites>"#;
        let t = junit(xml).unwrap();
        assert_eq!((t.total, t.passed, t.failed, t.skipped), (4, 1, 2, 1));
        assert_eq!(t.failures, vec!["pay.Refund::partial", "boom"]);
        // One bare <testsuite> is a report too.
        let one = junit(r#"<testsuite><testcase name="x"/></testsuite>"#).unwrap();
        assert_eq!((one.total, one.passed), (1, 1));
    }

    #[test]
    fn bad_reports_say_why() {
        assert!(junit("<html/>").unwrap_err().contains("<html>"));
        assert!(junit("<testsuite>").unwrap_err().contains("not XML"));
        assert!(cobertura("<coverage/>").unwrap_err().contains("line-rate"));
        assert!(cobertura(r#"<coverage line-rate="1.5"/>"#).is_err());
    }

    #[test]
    fn cobertura_line_rate_in_percent() {
        let xml = r#"<?xml version="1.0"?><coverage line-rate="0.8567" branch-rate="0.5" version="1"><packages/></coverage>"#;
        assert_eq!(cobertura(xml).unwrap(), 85.67);
    }
}
