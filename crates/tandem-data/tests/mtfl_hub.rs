//! Fetching MTFL from a hub, against local HTTP servers on 127.0.0.1 and pre-seeded caches; no
//! test needs the internet.
#![cfg(feature = "hub")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_data::mtfl::{CacheDir, DataSource, HubOptions, Mtfl, MtflOptions};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What the server does with a request path.
#[derive(Clone)]
enum Reply {
    /// 200 with the hub's headers and this body.
    File(Vec<u8>),
    /// 302 to this path, with the hub's headers.
    Redirect(String),
    /// 404.
    Missing,
    /// Accept and never answer.
    Silent,
}

/// A small HTTP/1.1 server on 127.0.0.1 that stops by itself after 30 s.
struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

fn serve(route: impl Fn(&str) -> Reply + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut held: Vec<TcpStream> = Vec::new();
        while Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n")
                && stream.read(&mut byte).map(|n| n == 1).unwrap_or(false)
            {
                head.push(byte[0]);
            }
            count.fetch_add(1, Ordering::SeqCst);
            let text = String::from_utf8_lossy(&head).to_string();
            let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
            let hub = format!("x-repo-commit: {COMMIT}\r\netag: \"e7a9\"\r\n");
            let reply = match route(&path) {
                Reply::File(body) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\n{hub}content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
                Reply::Redirect(to) => format!(
                    "HTTP/1.1 302 Found\r\n{hub}location: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .into_bytes(),
                Reply::Missing => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                Reply::Silent => {
                    held.push(stream);
                    continue;
                }
            };
            let _ = stream.write_all(&reply);
        }
    });
    Server { base, requests }
}

/// A `.tar.gz` of a one-face MTFL folder (under `MTFL/`) and its sha256.
fn archive() -> (Vec<u8>, String) {
    let src = tempfile::tempdir().unwrap();
    common::write_images(src.path());
    std::fs::write(
        src.path().join("training.txt"),
        format!("{}\r\n", common::GOOD),
    )
    .unwrap();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("MTFL", src.path()).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let sha = format!("{:x}", Sha256::digest(&bytes));
    (bytes, sha)
}

const RESOLVE: &str = "/datasets/owner/mtfl/resolve/main/mtfl.tar.gz";

fn source(sha: &str) -> DataSource {
    DataSource::Hub {
        repo: "owner/mtfl".into(),
        revision: "main".into(),
        archive: "mtfl.tar.gz".into(),
        sha256: sha.into(),
    }
}

fn options(base: &str, root: &Path, unpack: &str) -> HubOptions {
    HubOptions {
        endpoint: base.to_string(),
        hub_cache: Some(root.join("hf")),
        unpack_dir: Some(root.join(unpack)),
        offline: false,
        stall_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
        token: None,
        max_bytes: 1 << 30,
    }
}

fn cached(root: &Path) -> Option<PathBuf> {
    hf_hub::Cache::new(root.join("hf"))
        .repo(hf_hub::Repo::with_revision(
            "owner/mtfl".into(),
            hf_hub::RepoType::Dataset,
            "main".into(),
        ))
        .get("mtfl.tar.gz")
}

#[test]
fn downloads_once_into_the_hub_layout_then_uses_the_caches() {
    let (bytes, sha) = archive();
    let server = serve(move |p| {
        if p == RESOLVE {
            Reply::File(bytes.clone())
        } else {
            Reply::Missing
        }
    });
    let root = tempfile::tempdir().unwrap();
    let opts = options(&server.base, root.path(), "unpack");
    let dir = source(&sha).resolve(&opts).unwrap();
    assert!(dir.join("training.txt").is_file() && dir.ends_with("MTFL"));
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    assert!(
        cached(root.path()).is_some(),
        "the archive is in the hub cache layout"
    );
    // Unpacked before: no request.
    assert_eq!(source(&sha).resolve(&opts).unwrap(), dir);
    // Unpacked elsewhere: from the hub cache, no request.
    let other = options(&server.base, root.path(), "unpack2");
    assert!(source(&sha)
        .resolve(&other)
        .unwrap()
        .join("training.txt")
        .is_file());
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    let m = Mtfl::open_source(
        &source(&sha),
        &opts,
        MtflOptions {
            cache: CacheDir::Off,
            ..MtflOptions::default()
        },
    )
    .unwrap();
    assert_eq!(m.train().len(), 1);
}

#[test]
fn a_redirect_to_a_file_store_is_followed() {
    let (bytes, sha) = archive();
    let server = serve(move |p| match p {
        RESOLVE => Reply::Redirect("/store/blob".into()),
        "/store/blob" => Reply::File(bytes.clone()),
        _ => Reply::Missing,
    });
    let root = tempfile::tempdir().unwrap();
    let dir = source(&sha)
        .resolve(&options(&server.base, root.path(), "u"))
        .unwrap();
    assert!(dir.join("training.txt").is_file());
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn a_wrong_sha256_is_rejected_and_not_cached() {
    let (bytes, _) = archive();
    let server = serve(move |p| {
        if p == RESOLVE {
            Reply::File(bytes.clone())
        } else {
            Reply::Missing
        }
    });
    let root = tempfile::tempdir().unwrap();
    let e = source(&"ab".repeat(32))
        .resolve(&options(&server.base, root.path(), "u"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sha256") && e.contains("owner/mtfl"), "{e}");
    assert!(cached(root.path()).is_none());
    assert!(!root
        .path()
        .join("u")
        .join(format!("mtfl-{}", "ab".repeat(32)))
        .exists());
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = serve(|_| Reply::Silent);
    let root = tempfile::tempdir().unwrap();
    let opts = HubOptions {
        stall_timeout: Duration::from_secs(1),
        ..options(&server.base, root.path(), "u")
    };
    let t = Instant::now();
    let e = source(&"cd".repeat(32))
        .resolve(&opts)
        .unwrap_err()
        .to_string();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.contains("timed out"), "{e}");
}

#[test]
fn missing_files_and_bad_names_are_clear() {
    let server = serve(|_| Reply::Missing);
    let root = tempfile::tempdir().unwrap();
    let opts = options(&server.base, root.path(), "u");
    let e = source(&"ef".repeat(32))
        .resolve(&opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 404"), "{e}");
    let e = source("xyz").resolve(&opts).unwrap_err().to_string();
    assert!(e.contains("64 hex digits"), "{e}");
    let bad = DataSource::Hub {
        repo: "owner/mtfl".into(),
        revision: "main".into(),
        archive: "../mtfl.tar.gz".into(),
        sha256: "ef".repeat(32),
    };
    assert!(bad
        .resolve(&opts)
        .unwrap_err()
        .to_string()
        .contains("archive"));
}

#[test]
fn offline_uses_a_pre_seeded_cache_and_fails_at_once_without_one() {
    let (bytes, sha) = archive();
    let server = serve(|_| Reply::Silent);
    let root = tempfile::tempdir().unwrap();
    let opts = HubOptions {
        offline: true,
        ..options(&server.base, root.path(), "u")
    };
    let t = Instant::now();
    let e = source(&sha).resolve(&opts).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        e.contains("offline") && e.contains("not in the hub cache"),
        "{e}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);

    // Seed the hub cache layout by hand: refs/main -> snapshot with the archive.
    let repo = root.path().join("hf").join("datasets--owner--mtfl");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(COMMIT)).unwrap();
    std::fs::write(
        repo.join("snapshots").join(COMMIT).join("mtfl.tar.gz"),
        &bytes,
    )
    .unwrap();
    let dir = source(&sha).resolve(&opts).unwrap();
    assert!(dir.join("training.txt").is_file());
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn a_stale_cached_archive_is_fetched_again() {
    let (bytes, sha) = archive();
    let served = bytes.clone();
    let server = serve(move |p| {
        if p == RESOLVE {
            Reply::File(served.clone())
        } else {
            Reply::Missing
        }
    });
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("hf").join("datasets--owner--mtfl");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "old").unwrap();
    std::fs::create_dir_all(repo.join("snapshots/old")).unwrap();
    std::fs::write(repo.join("snapshots/old/mtfl.tar.gz"), b"an older archive").unwrap();
    let dir = source(&sha)
        .resolve(&options(&server.base, root.path(), "u"))
        .unwrap();
    assert!(dir.join("training.txt").is_file());
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
    assert_eq!(std::fs::read(cached(root.path()).unwrap()).unwrap(), bytes);
}
