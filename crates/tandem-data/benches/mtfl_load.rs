//! Loading the real MTFL training set: the first load (decode and crop 10,000 JPEGs, write the
//! cache) and a cached reload. Uses `$TANDEM_MTFL_DIR` or `shared/data/mtfl-train` three folders
//! above this crate; prints a reason and measures nothing when the data is absent.
//!
//! Run with `cargo bench -p tandem-data --bench mtfl_load`.
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_data::mtfl::{CacheDir, Mtfl, MtflOptions};

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TANDEM_MTFL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mtfl-train")
        });
    dir.join("training.txt").is_file().then_some(dir)
}

fn bench(c: &mut Criterion) {
    let Some(dir) = data_dir() else {
        println!("mtfl_load: no MTFL data (set TANDEM_MTFL_DIR); nothing measured");
        return;
    };
    let cache = std::env::temp_dir().join(format!("tandem-mtfl-bench-{}", std::process::id()));
    let mut group = c.benchmark_group("mtfl_load");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group.bench_function("first_load_10000", |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(&cache);
            let options = MtflOptions {
                cache: CacheDir::At(cache.clone()),
                ..MtflOptions::default()
            };
            match Mtfl::open(&dir, options) {
                Ok(m) => m.train().len(),
                Err(e) => panic!("{e}"),
            }
        })
    });
    group.bench_function("cached_reload_10000", |b| {
        let options = MtflOptions {
            cache: CacheDir::At(cache.clone()),
            ..MtflOptions::default()
        };
        if let Err(e) = Mtfl::open(&dir, options.clone()) {
            panic!("{e}");
        }
        b.iter(|| match Mtfl::open(&dir, options.clone()) {
            Ok(m) => m.train().len(),
            Err(e) => panic!("{e}"),
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&cache);
}

criterion_group!(benches, bench);
criterion_main!(benches);
