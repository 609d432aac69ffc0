//! Fuzzing the checkpoint loaders as properties: random edits (byte changes, insertions,
//! deletions, truncation) of any file of a real trainer checkpoint never make loading panic, and
//! any edit that changes a checked file's bytes is refused. `PROPTEST_CASES=N` runs longer.
#![allow(clippy::unwrap_used)]
mod common;

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tandem_train::checkpoint::{latest_checkpoint, load_checkpoint};
use tandem_train::{CheckpointConfig, TrainConfig, Trainer};

const FILES: [&str; 4] = [
    "model.safetensors",
    "meta.json",
    "trainer.json",
    "SHA256SUMS",
];

/// One real checkpoint, written once.
fn original() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let s = common::setup(1, 48, |i| i % 2 == 0);
        Trainer::new(TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..Default::default()
        })
        .checkpoints(CheckpointConfig::new(tmp.path().join("ck")))
        .fit(&s.net, &s.tasks, &s.vars, &s.train, &s.val)
        .unwrap();
        let ck = latest_checkpoint(&tmp.path().join("ck")).unwrap();
        (tmp, ck)
    })
    .1
}

/// 256 cases, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let n = bytes.len().max(1);
    match *edit {
        Edit::Set(i, b) if !bytes.is_empty() => bytes[i % n] = b,
        Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Edit::Delete(i) if !bytes.is_empty() => {
            bytes.remove(i % n);
        }
        Edit::Truncate(i) => bytes.truncate(i % n),
        _ => {}
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn edited_checkpoints_never_panic_and_changes_are_refused(
        file in 0..FILES.len(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let src = original();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("step-0000000003");
        std::fs::create_dir_all(&dir).unwrap();
        for f in FILES {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let path = dir.join(FILES[file]);
        let before = std::fs::read(&path).unwrap();
        let mut bytes = before.clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        std::fs::write(&path, &bytes).unwrap();
        let s = common::setup(1, 48, |i| i % 2 == 0);
        let result = load_checkpoint(&dir, &s.vars);
        if bytes != before && FILES[file] != "SHA256SUMS" {
            prop_assert!(result.is_err(), "an edit of {} was accepted", FILES[file]);
        }
    }
}
