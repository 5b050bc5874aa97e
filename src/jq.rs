//! `--jq EXPR`: the JSON output filtered in-process, as `jq -r` would print
//! it, so a script needs no `jq` installed. The language is jaq's
//! implementation of jq (with its standard library).

use std::io::Write;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::Deserialize;

use crate::error::{Error, Result};

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

/// A compiled `--jq` expression.
pub struct Jq {
    expr: String,
    filter: Filter,
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Jq").field(&self.expr).finish()
    }
}

impl Jq {
    /// Compiles `expr`; an expression that does not parse or names an
    /// unknown function is a usage error (exit 2) quoting it.
    pub fn compile(expr: &str) -> Result<Jq> {
        let bad = |why: String| {
            Error::usage(format!("invalid --jq expression {expr:?}: {why}"))
                .with_hint("the expression is jq's language, e.g. --jq '.[] | .instance_id'")
        };
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let program = File {
            code: expr,
            path: (),
        };
        let modules = loader
            .load(&arena, program)
            .map_err(|_| bad("it does not parse".into()))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let names: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, es)| es.iter().map(|(name, _)| format!("`{name}`")))
                    .collect();
                bad(format!("unknown name {}", names.join(", ")))
            })?;
        Ok(Jq {
            expr: expr.to_owned(),
            filter,
        })
    }

    /// Runs the filter on `value` and writes each result on its own line:
    /// a string as its raw text (`jq -r`), anything else as indented JSON.
    /// A runtime error (say, `.[]` of a number) is a usage error naming
    /// the expression.
    pub fn write(&self, out: &mut impl Write, value: serde_json::Value) -> Result<()> {
        let input = Val::deserialize(value)
            .map_err(|e| Error::internal(format!("cannot hand the output to --jq: {e}")))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let pretty = jaq_json::write::Pp {
            indent: Some("  ".to_owned()),
            sep_space: true,
            ..Default::default()
        };
        for result in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            let v = result.map_err(|e| {
                Error::usage(format!("--jq expression {:?} failed: {e}", self.expr))
            })?;
            match &v {
                Val::TStr(bytes) => out.write_all(bytes)?,
                other => jaq_json::write::write(out, &pretty, 0, other)?,
            }
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expr: &str, input: serde_json::Value) -> String {
        let mut out = Vec::new();
        Jq::compile(expr).unwrap().write(&mut out, input).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_raw_others_json() {
        let v = serde_json::json!([{"id": "a", "n": 1}, {"id": "b", "n": 2}]);
        assert_eq!(run(".[].id", v.clone()), "a\nb\n");
        assert_eq!(run(".[0].n", v.clone()), "1\n");
        assert_eq!(run("[.[] | .n]", v.clone()), "[\n  1,\n  2\n]\n");
        assert_eq!(run("map(select(.n > 1)) | length", v), "1\n");
    }

    #[test]
    fn bad_expressions_are_usage_errors_naming_them() {
        for bad in [".[", "nosuchfn(1)", "| |"] {
            let e = Jq::compile(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Usage, "{bad}");
            assert!(e.message.contains(bad), "{bad}: {}", e.message);
        }
        let mut out = Vec::new();
        let e = Jq::compile(".[]")
            .unwrap()
            .write(&mut out, serde_json::json!(3))
            .unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Usage);
    }
}
