//! Document templates: data, with `{key}`, `{title}` and `{project}` filled in. A project can
//! replace the built-in one (`xone project template set`).

pub const REQUIREMENT: &str = "\
# {key}: {title}

Project: {project}

## Background

<!-- Why this matters now: the problem, who has it, what it costs. -->

## Goals

<!-- What is true when this is done. -->

## Scope

<!-- What this requirement changes. -->

## Non-goals

<!-- What it deliberately leaves alone. -->

## User stories

<!-- As a <role>, I want <capability>, so that <benefit>. -->

## Acceptance criteria

<!-- Given / when / then, one per line; testers write test cases from these. -->

## Metrics

<!-- How we will know it worked after release: the numbers and where they come from. -->

## Prototype

<!-- Link, or attach one: xone requirement doc {key} prototype --attach FILE -->
";

pub fn render(template: &str, key: &str, title: &str, project: &str) -> String {
    template.replace("{key}", key).replace("{title}", title).replace("{project}", project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_and_keeps_sections() {
        let doc = render(REQUIREMENT, "PAY-1", "Refunds", "PAY");
        assert!(doc.starts_with("# PAY-1: Refunds\n"));
        for section in [
            "Background",
            "Goals",
            "Non-goals",
            "User stories",
            "Acceptance criteria",
            "Metrics",
            "Prototype",
        ] {
            assert!(doc.contains(&format!("## {section}")), "{section}");
        }
        assert!(!doc.contains("{key}"));
    }
}
