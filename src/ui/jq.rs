//! `--jq EXPR`: a jq filter over the one JSON document a command prints, as gh has it (the
//! jaq implementation of jq). Each result goes on a line of its own; a string prints raw.

use std::io::Write;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Filter, Native, RcIter};
use jaq_json::Val;

use super::{Result, XoneError};

pub struct Jq {
    filter: Filter<Native<Val>>,
}

impl Jq {
    /// Compiles `code`; a filter that does not parse, or names what does not exist, is a
    /// usage error saying where.
    pub fn compile(code: &str) -> Result<Jq> {
        let bad = |what: String| {
            XoneError::usage(format!("the --jq expression '{code}' {what}"))
                .hint("e.g. --jq '.[].key' or --jq '.status'; see https://jqlang.org/manual")
        };
        let loader = Loader::new(jaq_std::defs().chain(jaq_json::defs()));
        let arena = Arena::default();
        let modules = loader.load(&arena, File { code, path: () }).map_err(|errs| {
            let mut said = Vec::new();
            for (_, e) in errs {
                match e {
                    jaq_core::load::Error::Io(io) => {
                        said.extend(io.into_iter().map(|(_, m)| m));
                    }
                    jaq_core::load::Error::Lex(lex) => said.extend(
                        lex.into_iter()
                            .map(|(expect, at)| format!("expected {} at '{at}'", expect.as_str())),
                    ),
                    jaq_core::load::Error::Parse(parse) => said.extend(
                        parse
                            .into_iter()
                            .map(|(expect, at)| format!("expected {} at '{at}'", expect.as_str())),
                    ),
                }
            }
            bad(format!("does not parse: {}", said.join("; ")))
        })?;
        let filter = Compiler::default()
            .with_funs(jaq_std::funs().chain(jaq_json::funs()))
            .compile(modules)
            .map_err(|errs| {
                let said: Vec<String> = errs
                    .into_iter()
                    .flat_map(|(_, es)| es)
                    .map(|(name, what)| format!("no {} {name}", what.as_str()))
                    .collect();
                bad(format!("names what does not exist: {}", said.join("; ")))
            })?;
        Ok(Jq { filter })
    }

    /// Runs the filter over `input`, writing each result on a line: strings raw, the rest as
    /// compact JSON. An error of the filter (`.foo` of a list) is a usage error.
    pub fn run(&self, input: serde_json::Value, out: &mut dyn Write) -> Result<()> {
        let inputs = RcIter::new(core::iter::empty());
        for v in self.filter.run((Ctx::new([], &inputs), Val::from(input))) {
            let v = v.map_err(|e| XoneError::usage("the --jq expression failed").cause(e))?;
            match serde_json::Value::from(v) {
                serde_json::Value::String(s) => writeln!(out, "{s}")?,
                other => writeln!(out, "{other}")?,
            }
        }
        Ok(())
    }
}
