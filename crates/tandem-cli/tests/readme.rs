//! The README's command blocks run as written, with the `tandem` binary under test.
#![allow(clippy::unwrap_used)]
//!
//! Every ```` ```sh ```` block of the workspace README is extracted; `cargo run --release --bin
//! tandem --` becomes this build's `tandem` binary. A block is skipped when a
//! `<!-- no-ci -->` line comes right before it (real data, long runs) or when it runs cargo
//! itself (`cargo test`, `cargo xtask ...`: CI runs those directly). The blocks run in order, in
//! one temporary folder holding a copy of `configs/`, so later blocks see earlier outputs.
//! Every configuration file under `configs/` must also parse and validate.
use std::path::{Path, PathBuf};
use std::process::Command;

const CARGO_RUN: &str = "cargo run --release --bin tandem --";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(runs, text)` of every sh block of `markdown`.
fn sh_blocks(markdown: &str) -> Vec<(bool, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(bool, String)> = None;
    let mut no_ci = false;
    for line in markdown.lines() {
        let t = line.trim();
        if let Some((_, text)) = current.as_mut() {
            if t == "```" {
                blocks.extend(current.take());
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if t == "<!-- no-ci -->" {
            no_ci = true;
        } else if t == "```sh" || t == "```bash" || t == "```shell" {
            current = Some((!no_ci, String::new()));
            no_ci = false;
        } else if !t.is_empty() {
            no_ci = false;
        }
    }
    blocks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn parsing_finds_blocks_and_markers() {
    let md = "x\n```sh\na\n```\n<!-- no-ci -->\n```sh\nb\n```\n```rust\nc\n```\n";
    assert_eq!(
        sh_blocks(md),
        [(true, "a\n".to_string()), (false, "b\n".to_string())]
    );
}

#[test]
fn every_config_file_is_valid() {
    let dir = root().join("configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            if let Err(e) = tandem::RunConfig::from_toml(&text, &p.display().to_string()) {
                panic!("{e}");
            }
            n += 1;
        }
    }
    assert!(n >= 2, "configs/ should hold the example configurations");
}

#[test]
fn the_annotated_example_holds_the_defaults() {
    let p = root().join("configs/example.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let cfg = tandem::RunConfig::from_toml(&text, "example.toml").unwrap();
    // strictly: every key written out, equal to the built-in defaults
    let strict: tandem::RunConfig = toml::from_str(&text).unwrap();
    assert_eq!(
        cfg,
        tandem::RunConfig::default(),
        "configs/example.toml drifted from the defaults"
    );
    assert_eq!(strict, cfg);
}

#[test]
fn readme_commands_run() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let bin = env!("CARGO_BIN_EXE_tandem");
    let work = tempfile::tempdir().unwrap();
    copy_dir(&root().join("configs"), &work.path().join("configs"));
    let mut ran = 0;
    for (runs, block) in sh_blocks(&readme) {
        let script = block.replace(CARGO_RUN, bin);
        if !runs || script.split_whitespace().any(|w| w == "cargo") {
            continue;
        }
        let out = Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(&script)
            .current_dir(work.path())
            .env("RUST_LOG", "warn")
            .env("TANDEM_CACHE_DIR", work.path().join("cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block failed:\n{block}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(
        ran >= 1,
        "the README should have command blocks that run on SynthFaces"
    );
}
