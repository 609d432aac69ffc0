//! Experiment definitions: `xtask/experiments/<name>.toml`.
//!
//! ```toml
//! name = "aux_vs_single"
//! title = "..."
//! claim = "..."
//! [base]                     # a tandem::RunConfig, shared by every variant
//! tasks = ["landmarks", "gender", "smile", "glasses", "pose"]
//! [base.train]
//! epochs = { quick = 6, full = 30, real = 40 }   # a value per budget
//! [[variant]]
//! key = "single"
//! tasks = ["landmarks"]      # overrides merged over [base]
//! ```
//! A variant may name the budgets it runs in, `budgets = ["full", "real"]` (default: every
//! budget), so the quick suite can run a representative subset, and its own number of seeds,
//! `seeds = { real = 3 }` (default: the file's `seeds`).
//!
//! A table whose keys are all budget names (`quick`, `full`, `real`, `real_quick`) is replaced
//! by the value for the budget being run. The merged table must be a valid `RunConfig`:
//! unknown keys are errors naming the key.
use anyhow::{bail, Context, Result};
use std::path::Path;
use tandem::config::merge_toml;
use tandem::RunConfig;
use toml::{Table, Value};

/// Which budget to resolve `{ quick = .., full = .. }` values to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Small budgets on SynthFaces.
    Quick,
    /// Full budgets on SynthFaces.
    Full,
    /// Real MTFL, quick.
    RealQuick,
    /// Real MTFL, full.
    Real,
}

impl Budget {
    /// The budget's name in experiment files (`quick`, `full`, `real_quick`, `real`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
            Self::RealQuick => "real_quick",
            Self::Real => "real",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Quick => &["quick", "full"],
            Self::Full => &["full", "quick"],
            Self::RealQuick => &["real_quick", "quick", "real", "full"],
            Self::Real => &["real", "full", "quick"],
        }
    }
}

const BUDGET_KEYS: [&str; 4] = ["quick", "full", "real", "real_quick"];

/// One variant, resolved.
pub struct Variant {
    pub key: String,
    pub config: RunConfig,
    /// Seeds this variant runs with, when it sets its own (else the experiment's).
    pub seeds: Option<u64>,
}

/// One experiment, resolved.
pub struct Experiment {
    pub name: String,
    pub title: String,
    pub claim: String,
    /// Seeds every variant runs with (the file's `seeds`, resolved for the budget; default 1).
    pub seeds: u64,
    pub variants: Vec<Variant>,
}

/// The experiments in run order.
pub const ALL: [&str; 8] = [
    "aux_vs_single",
    "aux_methods",
    "aux_methods_hard",
    "baxter",
    "sharing",
    "weighting",
    "early_stopping",
    "regularisers",
];

/// Loads `dir/<name>.toml` resolved for `budget`.
pub fn load(dir: &Path, name: &str, budget: Budget) -> Result<Experiment> {
    let path = dir.join(format!("{name}.toml"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &path.display().to_string(), budget)
}

/// Parses an experiment file's text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str, budget: Budget) -> Result<Experiment> {
    let mut doc: Table = toml::from_str(text).with_context(|| format!("{origin}: invalid TOML"))?;
    let str_field = |doc: &mut Table, k: &str| -> Result<String> {
        match doc.remove(k) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => bail!("{origin}: key {k}: expected a string"),
            None => bail!("{origin}: key {k} is missing"),
        }
    };
    let name = str_field(&mut doc, "name")?;
    let title = str_field(&mut doc, "title")?;
    let claim = str_field(&mut doc, "claim")?;
    let base = match doc.remove("base") {
        Some(Value::Table(t)) => t,
        None => Table::new(),
        Some(_) => bail!("{origin}: key base: expected a table"),
    };
    let variants = match doc.remove("variant") {
        Some(Value::Array(a)) => a,
        _ => bail!("{origin}: no [[variant]] tables"),
    };
    let seeds = match doc.remove("seeds").map(|v| resolve(v, budget)) {
        None | Some(Value::Table(_)) => 1,
        Some(Value::Integer(n)) if n >= 1 => n as u64,
        Some(_) => bail!("{origin}: key seeds: expected a positive integer or budget table"),
    };
    if let Some(k) = doc.keys().next() {
        bail!("{origin}: unknown key {k:?}; allowed: name, title, claim, seeds, base, variant");
    }
    let mut out = Vec::new();
    for (i, v) in variants.into_iter().enumerate() {
        let Value::Table(mut v) = v else {
            bail!("{origin}: variant[{i}] is not a table");
        };
        let key = match v.remove("key") {
            Some(Value::String(s)) => s,
            _ => bail!("{origin}: variant[{i}]: key `key` (a string) is missing"),
        };
        if out.iter().any(|o: &Variant| o.key == key) {
            bail!("{origin}: variant key {key:?} is used twice");
        }
        let seeds = match v.remove("seeds").map(|v| resolve(v, budget)) {
            None | Some(Value::Table(_)) => None,
            Some(Value::Integer(n)) if n >= 1 => Some(n as u64),
            Some(_) => {
                bail!("{origin}: variant {key}: seeds: expected a positive integer or budget table")
            }
        };
        match v.remove("budgets") {
            None => {}
            Some(Value::Array(names)) => {
                let mut runs = false;
                for n in &names {
                    let Some(n) = n.as_str().filter(|n| BUDGET_KEYS.contains(n)) else {
                        bail!(
                            "{origin}: variant {key}: budgets: {n} is not one of {BUDGET_KEYS:?}"
                        );
                    };
                    runs |= budget.name() == n;
                }
                if !runs {
                    continue;
                }
            }
            Some(_) => bail!("{origin}: variant {key}: budgets: expected a list of budget names"),
        }
        // Budgets resolve first (they are leaves), then the variant merges onto the base by
        // the same rule a run configuration merges onto the defaults.
        let Value::Table(mut merged) = resolve(Value::Table(base.clone()), budget) else {
            bail!("{origin}: base is not a table");
        };
        let Value::Table(v) = resolve(Value::Table(v), budget) else {
            bail!("{origin}: variant {key} is not a table");
        };
        merge_toml(&mut merged, v);
        let text = toml::to_string(&merged).context("re-serialising a variant")?;
        let config = RunConfig::from_toml(&text, &format!("{origin}: variant {key}"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        out.push(Variant { key, config, seeds });
    }
    Ok(Experiment {
        name,
        title,
        claim,
        seeds,
        variants: out,
    })
}

fn is_budget(t: &Table) -> bool {
    !t.is_empty() && t.keys().all(|k| BUDGET_KEYS.contains(&k.as_str()))
}

fn resolve(v: Value, budget: Budget) -> Value {
    match v {
        Value::Table(t) if is_budget(&t) => {
            let pick = budget.keys().iter().find_map(|k| t.get(*k).cloned());
            pick.map(|p| resolve(p, budget)).unwrap_or(Value::Table(t))
        }
        Value::Table(t) => Value::Table(
            t.into_iter()
                .map(|(k, v)| (k, resolve(v, budget)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| resolve(v, budget)).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_run_in_their_budgets_only() {
        let doc = r#"
name = "t"
title = "T"
claim = "C"
[[variant]]
key = "always"
[[variant]]
key = "full_only"
budgets = ["full", "real"]
"#;
        let keys = |b| -> Vec<String> {
            parse(doc, "t.toml", b)
                .unwrap()
                .variants
                .into_iter()
                .map(|v| v.key)
                .collect()
        };
        assert_eq!(keys(Budget::Quick), ["always"]);
        assert_eq!(keys(Budget::Full), ["always", "full_only"]);
        let bad = doc.replace(r#"["full", "real"]"#, r#"["fast"]"#);
        let err = parse(&bad, "t.toml", Budget::Full)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("budgets") && err.contains("fast"), "{err}");
    }

    const DOC: &str = r#"
name = "t"
title = "T"
claim = "C"
[base]
tasks = ["landmarks", "smile"]
[base.train]
epochs = { quick = 2, full = 9 }
[[variant]]
key = "a"
[[variant]]
key = "b"
tasks = ["landmarks"]
[variant.train]
batch_size = 8
"#;

    #[test]
    fn merges_and_resolves_budgets() {
        let e = parse(DOC, "t.toml", Budget::Quick).unwrap();
        assert_eq!(e.variants[0].config.train.epochs, 2);
        assert_eq!(e.variants[1].config.tasks, ["landmarks"]);
        assert_eq!(e.variants[1].config.train.batch_size, 8);
        assert_eq!(e.variants[1].config.train.epochs, 2);
        let f = parse(DOC, "t.toml", Budget::Full).unwrap();
        assert_eq!(f.variants[0].config.train.epochs, 9);
    }

    #[test]
    fn seeds_resolve_per_budget() {
        let doc = DOC.replace("claim = \"C\"", "claim = \"C\"\nseeds = { real = 3 }");
        assert_eq!(parse(&doc, "t.toml", Budget::Real).unwrap().seeds, 3);
        assert_eq!(parse(&doc, "t.toml", Budget::Quick).unwrap().seeds, 1);
        assert_eq!(parse(DOC, "t.toml", Budget::Real).unwrap().seeds, 1);
        let doc = DOC.replacen("key = \"a\"", "key = \"a\"\nseeds = { real = 2 }", 1);
        let e = parse(&doc, "t.toml", Budget::Real).unwrap();
        assert_eq!(e.variants[0].seeds, Some(2));
        assert_eq!(e.variants[1].seeds, None);
        assert_eq!(
            parse(&doc, "t.toml", Budget::Quick).unwrap().variants[0].seeds,
            None
        );
        let bad = DOC.replacen("key = \"a\"", "key = \"a\"\nseeds = 0", 1);
        let err = parse(&bad, "t.toml", Budget::Real)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("variant a: seeds"), "{err}");
        let bad = DOC.replace("claim = \"C\"", "claim = \"C\"\nseeds = 0");
        assert!(parse(&bad, "t.toml", Budget::Real).is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let bad = DOC.replace("batch_size = 8", "batch_sise = 8");
        let e = parse(&bad, "t.toml", Budget::Quick)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("variant b") && e.contains("batch_sise"), "{e}");
    }
}
