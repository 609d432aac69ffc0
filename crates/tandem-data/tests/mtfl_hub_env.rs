//! `HF_HUB_OFFLINE=1` makes a hub source use the caches only (its own test binary, since it
//! sets a process-wide variable).
#![cfg(feature = "hub")]
#![allow(clippy::unwrap_used)]
use std::time::Duration;
use tandem_data::mtfl::{DataSource, HubOptions};

#[test]
fn hf_hub_offline_fails_at_once_when_the_archive_is_missing() {
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let root = tempfile::tempdir().unwrap();
    let options = HubOptions {
        // Nothing listens on port 9 here; offline must not even try.
        endpoint: "http://127.0.0.1:9".into(),
        hub_cache: Some(root.path().join("hf")),
        unpack_dir: Some(root.path().join("u")),
        stall_timeout: Duration::from_secs(1),
        ..HubOptions::default()
    };
    let source = DataSource::Hub {
        repo: "owner/mtfl".into(),
        revision: "main".into(),
        archive: "mtfl.tar.gz".into(),
        sha256: "00".repeat(32),
    };
    let e = source.resolve(&options).unwrap_err().to_string();
    assert!(e.contains("offline") && e.contains("mtfl.tar.gz"), "{e}");
}
