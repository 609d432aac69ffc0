//! No `unwrap`/`expect` on anything in library code: the workspace denies clippy's
//! `unwrap_used` (and warns on `expect_used`, an error under `-D warnings`), every crate opts
//! into the workspace lints, and, as a second line, a scan of every library crate's `src/`
//! (test modules and comments excepted) finds no `.unwrap()` or `.expect(`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn the_workspace_denies_unwrap_and_every_crate_uses_its_lints() {
    let ws: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let clippy = &ws["workspace"]["lints"]["clippy"];
    assert_eq!(clippy["unwrap_used"].as_str(), Some("deny"));
    assert!(matches!(
        clippy["expect_used"].as_str(),
        Some("warn" | "deny")
    ));
    for c in crates() {
        let manifest: toml::Table = std::fs::read_to_string(c.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let uses = manifest
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(|w| w.as_bool());
        assert_eq!(
            uses,
            Some(true),
            "{} does not use the workspace lints",
            c.display()
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn library_sources_hold_no_unwrap_or_expect() {
    let mut found = Vec::new();
    for c in crates() {
        let mut files = Vec::new();
        rust_files(&c.join("src"), &mut files);
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let t = line.trim_start();
                // Test modules sit at the end of a file.
                if t.starts_with("#[cfg(test)]") {
                    break;
                }
                if t.starts_with("//") {
                    continue;
                }
                if t.contains(".unwrap()") || t.contains(".expect(") {
                    found.push(format!("{}:{}: {}", f.display(), i + 1, t));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
