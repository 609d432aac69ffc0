//! The preprocessing cache: reused when valid, rebuilt when stale or corrupt, never written next
//! to the data.
#![allow(clippy::unwrap_used)]
mod common;

use std::path::Path;
use tandem_data::mtfl::{CacheDir, CacheStatus, Mtfl, MtflOptions};

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir);
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p.display().to_string());
    }
    out
}

fn status(m: &Mtfl) -> &CacheStatus {
    &m.train_split().cache
}

#[test]
fn cache_is_reused_and_rebuilt_when_stale_or_corrupt() {
    let data = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    common::write_images(data.path());
    let text = format!(
        "{}\r\n imgs/c.jpg 30 70 50 35 65 20 21 40 55 56 2 1 2 5\r\n",
        common::GOOD
    );
    std::fs::write(data.path().join("training.txt"), text).unwrap();
    let before = listing(data.path());
    let options = MtflOptions {
        cache: CacheDir::At(cache.path().to_path_buf()),
        ..MtflOptions::default()
    };

    let first = Mtfl::open(data.path(), options.clone()).unwrap();
    let CacheStatus::Built(file) = status(&first).clone() else {
        panic!("{:?}", status(&first))
    };
    assert!(file.starts_with(cache.path()));
    let again = Mtfl::open(data.path(), options.clone()).unwrap();
    assert_eq!(status(&again), &CacheStatus::Loaded(file.clone()));
    assert_eq!(again.train_split().table, first.train_split().table);

    // Other options: stale.
    let small = MtflOptions {
        model_size: 20,
        ..options.clone()
    };
    let m = Mtfl::open(data.path(), small).unwrap();
    assert!(
        matches!(status(&m), CacheStatus::Rebuilt(_, r) if r.contains("stale")),
        "{:?}",
        status(&m)
    );
    assert_eq!(m.train_split().table.size, 40);

    // A changed image: stale.
    let m = Mtfl::open(data.path(), options.clone()).unwrap();
    assert!(matches!(status(&m), CacheStatus::Rebuilt(..)));
    let img = data.path().join("imgs/a.png");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&img).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    let m = Mtfl::open(data.path(), options.clone()).unwrap();
    assert!(
        matches!(status(&m), CacheStatus::Rebuilt(_, r) if r.contains("stale")),
        "{:?}",
        status(&m)
    );

    // A flipped byte: corrupt.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let m = Mtfl::open(data.path(), options.clone()).unwrap();
    assert!(
        matches!(status(&m), CacheStatus::Rebuilt(_, r) if r.contains("corrupt")),
        "{:?}",
        status(&m)
    );
    assert_eq!(m.train_split().table, first.train_split().table);

    // A truncated file: rebuilt.
    std::fs::write(&file, &bytes[..10]).unwrap();
    let m = Mtfl::open(data.path(), options.clone()).unwrap();
    assert!(
        matches!(status(&m), CacheStatus::Rebuilt(..)),
        "{:?}",
        status(&m)
    );
    assert_eq!(
        status(&Mtfl::open(data.path(), options).unwrap()),
        &CacheStatus::Loaded(file)
    );

    // Nothing was written next to the data.
    assert_eq!(listing(data.path()), before);
}

#[test]
fn an_unwritable_cache_still_loads() {
    let data = tempfile::tempdir().unwrap();
    common::write_images(data.path());
    std::fs::write(data.path().join("training.txt"), common::GOOD).unwrap();
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let options = MtflOptions {
        cache: CacheDir::At(blocker.path().join("sub")),
        ..MtflOptions::default()
    };
    let m = Mtfl::open(data.path(), options).unwrap();
    assert!(
        matches!(status(&m), CacheStatus::NotWritten(..)),
        "{:?}",
        status(&m)
    );
    assert_eq!(m.train().len(), 1);
}
