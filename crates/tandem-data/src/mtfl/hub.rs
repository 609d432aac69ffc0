//! Where an MTFL folder comes from: a local folder, or a data set repository on a Hugging Face
//! style hub holding the folder as one archive.
//!
//! [`DataSource::Hub`] names a data set repository, a revision, the archive's path in it
//! (`.tar`, `.tar.gz` or `.tgz`) and the archive's SHA-256. [`DataSource::resolve`] returns a
//! local folder holding `training.txt`:
//!
//! 1. Cache first: an archive unpacked before (`<unpack dir>/mtfl-<sha256>/`, finished by a
//!    `.complete` marker) is used as it is, with no network access.
//! 2. Else the archive is looked up in the hub cache (`hf_hub::Cache` layout:
//!    `datasets--owner--name/{refs,snapshots,blobs}`; default `$HF_HOME/hub` or
//!    `~/.cache/huggingface/hub`), so a copy fetched by other tools is reused.
//! 3. Else, unless offline ([`HubOptions::offline`] or `HF_HUB_OFFLINE=1`, which fail at once
//!    with a clear message), it is downloaded from `<endpoint>/datasets/<repo>/resolve/<revision>/<archive>`
//!    into that same cache layout. hf-hub's own client has no request timeout (a half-open
//!    connection hangs it forever), so the download uses ureq with a connect, first-byte and
//!    per-read limit ([`HubOptions::stall_timeout`]) and an overall limit
//!    ([`HubOptions::timeout`]). The commit and etag come from the `x-repo-commit` and
//!    `x-linked-etag`/`etag` headers of the resolve response (a redirect is followed once).
//! 4. The archive's SHA-256 is checked: a cached copy that does not match is replaced by a fresh
//!    download (offline: an error), a download that does not match is deleted and reported. Then
//!    it is unpacked into a temporary folder that is renamed into place. Entries
//!    must be plain files or folders inside the archive root; the unpacked size is bounded.
use crate::{DataError, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the MTFL folder comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A local folder holding `training.txt` and the images.
    Local(PathBuf),
    /// A data set repository holding the MTFL folder as one archive.
    Hub {
        /// The repository, `owner/name`.
        repo: String,
        /// Branch, tag or commit (e.g. `main`).
        revision: String,
        /// The archive's path in the repository (`.tar`, `.tar.gz` or `.tgz`).
        archive: String,
        /// The archive's SHA-256, 64 hex digits.
        sha256: String,
    },
}

/// How [`DataSource::Hub`] is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// The hub's base address (default `$HF_ENDPOINT`, else `https://huggingface.co`).
    pub endpoint: String,
    /// The hub cache folder (default: hf-hub's, `$HF_HOME/hub` or `~/.cache/huggingface/hub`).
    pub hub_cache: Option<PathBuf>,
    /// Where archives are unpacked (default: the tandem cache folder's `hub/`, see
    /// [`crate::mtfl::CacheDir::Auto`]).
    pub unpack_dir: Option<PathBuf>,
    /// Use the caches only; fail at once when something is missing. Also set by
    /// `HF_HUB_OFFLINE=1`.
    pub offline: bool,
    /// Limit on connecting, on waiting for the response, and on each read of the body
    /// (default 30 s): a connection that stops answering fails after this long.
    pub stall_timeout: Duration,
    /// Limit on a whole download (default 1 hour).
    pub timeout: Duration,
    /// Access token (default `$HF_TOKEN`, else the hub cache's `token` file).
    pub token: Option<String>,
    /// Largest accepted archive and unpacked size in bytes (default 8 GiB).
    pub max_bytes: u64,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            endpoint: std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "https://huggingface.co".into()),
            hub_cache: None,
            unpack_dir: None,
            offline: false,
            stall_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(3600),
            token: std::env::var("HF_TOKEN").ok().filter(|s| !s.is_empty()),
            max_bytes: 8 << 30,
        }
    }
}

/// Whether `HF_HUB_OFFLINE` asks for offline use (`1`, `true`, `yes`, `on`).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

impl DataSource {
    /// The local data folder of this source, fetching and unpacking a hub archive if needed
    /// (see the module docs).
    pub fn resolve(&self, options: &HubOptions) -> Result<PathBuf> {
        match self {
            DataSource::Local(dir) => Ok(dir.clone()),
            DataSource::Hub {
                repo,
                revision,
                archive,
                sha256,
            } => resolve_hub(repo, revision, archive, sha256, options),
        }
    }
}

fn hub_error(repo: &str, reason: impl Into<String>) -> DataError {
    DataError::Hub {
        repo: repo.to_string(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn safe_path(s: &str) -> bool {
    !s.is_empty() && s.split('/').all(safe_name)
}

fn resolve_hub(
    repo: &str,
    revision: &str,
    archive: &str,
    sha256: &str,
    options: &HubOptions,
) -> Result<PathBuf> {
    let sha = sha256.to_ascii_lowercase();
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(hub_error(
            repo,
            format!("sha256 `{sha256}` is not 64 hex digits"),
        ));
    }
    if repo.split('/').count() != 2 || !safe_path(repo) {
        return Err(hub_error(repo, "the repository must be `owner/name`"));
    }
    if !safe_path(revision) {
        return Err(hub_error(
            repo,
            format!("revision `{revision}` is not a plain name"),
        ));
    }
    if !safe_path(archive) {
        return Err(hub_error(
            repo,
            format!("archive `{archive}` is not a plain relative path"),
        ));
    }
    let unpack_root = match &options.unpack_dir {
        Some(d) => d.clone(),
        None => crate::mtfl::CacheDir::Auto
            .resolve()
            .map(|d| d.join("hub"))
            .ok_or_else(|| {
                hub_error(
                    repo,
                    "no folder to unpack into: set TANDEM_CACHE_DIR or HOME",
                )
            })?,
    };
    let unpacked = unpack_root.join(format!("mtfl-{sha}"));
    if unpacked.join(".complete").is_file() {
        return find_data_folder(repo, &unpacked);
    }

    let cache = match &options.hub_cache {
        Some(d) => hf_hub::Cache::new(d.clone()),
        None => hf_hub::Cache::from_env(),
    };
    let hub_repo = hf_hub::Repo::with_revision(
        repo.to_string(),
        hf_hub::RepoType::Dataset,
        revision.to_string(),
    );
    let cache_repo = cache.repo(hub_repo.clone());
    let offline = options.offline || offline_from_env();
    let mut stale = None;
    if let Some(path) = cache_repo.get(archive) {
        let actual = file_sha256(&path)?;
        if actual == sha {
            unpack(repo, &path, archive, &unpacked, options.max_bytes)?;
            return find_data_folder(repo, &unpacked);
        }
        stale = Some(format!(
            "the cached {} has sha256 {actual}, expected {sha}",
            path.display()
        ));
    }
    if offline {
        let why = stale.unwrap_or_else(|| {
            format!(
                "{archive} at revision {revision} is not in the hub cache {}",
                cache.path().display()
            )
        });
        return Err(hub_error(
            repo,
            format!("offline (HF_HUB_OFFLINE or the offline option) and {why}"),
        ));
    }
    let path = download(repo, revision, archive, &sha, &cache, &hub_repo, options)?;
    unpack(repo, &path, archive, &unpacked, options.max_bytes)?;
    find_data_folder(repo, &unpacked)
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(io_error(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn agent(options: &HubOptions, redirects: u32) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .timeout_connect(Some(options.stall_timeout))
        .timeout_recv_response(Some(options.stall_timeout))
        .timeout_per_read(Some(options.stall_timeout))
        .max_redirects(redirects)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .user_agent(concat!("tandem-data/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

fn call(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    repo: &str,
    options: &HubOptions,
) -> Result<ureq::http::Response<ureq::Body>> {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.call().map_err(|e| match e {
        ureq::Error::Timeout(t) => hub_error(
            repo,
            format!(
                "{url}: timed out ({t}; limits: {:?} per stall, {:?} in all)",
                options.stall_timeout, options.timeout
            ),
        ),
        e => hub_error(repo, format!("{url}: {e}")),
    })
}

#[allow(clippy::too_many_arguments)]
fn download(
    repo: &str,
    revision: &str,
    archive: &str,
    sha: &str,
    cache: &hf_hub::Cache,
    hub_repo: &hf_hub::Repo,
    options: &HubOptions,
) -> Result<PathBuf> {
    let endpoint = options.endpoint.trim_end_matches('/');
    let url = format!("{endpoint}/datasets/{repo}/resolve/{revision}/{archive}");
    let token = options.token.clone().or_else(|| cache.token());
    let first = call(&agent(options, 0), &url, token.as_deref(), repo, options)?;
    let status = first.status();
    if !(status.is_success() || status.is_redirection()) {
        let hint = match status.as_u16() {
            401 | 403 => " (a private or gated repository needs a token: HF_TOKEN)",
            404 => " (check the repository, revision and archive path)",
            _ => "",
        };
        return Err(hub_error(repo, format!("{url}: HTTP {status}{hint}")));
    }
    let commit = header(&first, "x-repo-commit")
        .ok_or_else(|| hub_error(repo, format!("{url}: no x-repo-commit header")))?;
    let etag = header(&first, "x-linked-etag")
        .or_else(|| header(&first, "etag"))
        .map(|e| e.trim_start_matches("W/").replace('"', ""))
        .ok_or_else(|| hub_error(repo, format!("{url}: no etag header")))?;
    if !safe_name(&commit) || !safe_name(&etag) {
        return Err(hub_error(
            repo,
            format!("{url}: malformed commit or etag header"),
        ));
    }
    let response = if status.is_redirection() {
        let location = header(&first, "location")
            .ok_or_else(|| hub_error(repo, format!("{url}: redirect without a location")))?;
        let target = if location.starts_with('/') {
            format!("{endpoint}{location}")
        } else {
            location
        };
        drop(first);
        // The redirect target (a file store) gets no token.
        let r = call(&agent(options, 5), &target, None, repo, options)?;
        if !r.status().is_success() {
            return Err(hub_error(repo, format!("{target}: HTTP {}", r.status())));
        }
        r
    } else {
        first
    };

    let cache_repo = cache.repo(hub_repo.clone());
    let blob = cache_repo.blob_path(&etag);
    let blobs = blob
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cache.path().clone());
    std::fs::create_dir_all(&blobs).map_err(io_error(&blobs))?;
    let part = blob.with_extension(format!("part{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut out = std::fs::File::create(&part).map_err(io_error(&part))?;
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(options.max_bytes)
            .reader();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) => return Err(hub_error(repo, format!("{url}: download failed: {e}"))),
            };
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            std::io::Write::write_all(&mut out, &buf[..n]).map_err(io_error(&part))?;
        }
        out.sync_all().map_err(io_error(&part))?;
        let got = hex(&h.finalize());
        if got != sha {
            return Err(hub_error(
                repo,
                format!("{url}: sha256 of the download is {got}, expected {sha}"),
            ));
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &blob).map_err(io_error(&blob))?;

    let pointer = cache_repo.pointer_path(&commit).join(archive);
    if let Some(parent) = pointer.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    if !pointer.exists() {
        let _ = std::fs::remove_file(&pointer);
        link_or_copy(&blob, &pointer, archive.split('/').count() + 1)?;
    }
    cache_repo
        .create_ref(&commit)
        .map_err(io_error(cache.path()))?;
    Ok(pointer)
}

/// Points `pointer` at `blob` with a relative link `depth` folders up (as the hub cache does),
/// or copies where links are not available.
fn link_or_copy(blob: &Path, pointer: &Path, depth: usize) -> Result<()> {
    #[cfg(unix)]
    {
        let mut rel = PathBuf::new();
        for _ in 0..depth {
            rel.push("..");
        }
        rel.push("blobs");
        if let Some(name) = blob.file_name() {
            rel.push(name);
        }
        std::os::unix::fs::symlink(&rel, pointer).map_err(io_error(pointer))
    }
    #[cfg(not(unix))]
    {
        let _ = depth;
        std::fs::copy(blob, pointer)
            .map(|_| ())
            .map_err(io_error(pointer))
    }
}

/// Unpacks a `.tar`, `.tar.gz` or `.tgz` archive into `dest` through a temporary folder.
fn unpack(repo: &str, archive_path: &Path, name: &str, dest: &Path, max_bytes: u64) -> Result<()> {
    let gz = name.ends_with(".tar.gz") || name.ends_with(".tgz");
    if !gz && !name.ends_with(".tar") {
        return Err(hub_error(
            repo,
            format!("archive {name}: only .tar, .tar.gz and .tgz are supported"),
        ));
    }
    let parent = dest.parent().unwrap_or(dest);
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
    let result = (|| -> Result<()> {
        let file = std::fs::File::open(archive_path).map_err(io_error(archive_path))?;
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
        } else {
            Box::new(std::io::BufReader::new(file))
        };
        let bad = |reason: String| hub_error(repo, format!("archive {name}: {reason}"));
        let mut tar = tar::Archive::new(reader);
        let mut total = 0u64;
        let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let kind = entry.header().entry_type();
            let path = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if !(kind.is_file() || kind.is_dir()) {
                return Err(bad(format!("entry {path} is not a plain file or folder")));
            }
            total = total.saturating_add(entry.size());
            if total > max_bytes {
                return Err(bad(format!("unpacks to more than {max_bytes} bytes")));
            }
            let inside = entry
                .unpack_in(&tmp)
                .map_err(|e| bad(format!("entry {path}: {e}")))?;
            if !inside {
                return Err(bad(format!("entry {path} lies outside the archive root")));
            }
        }
        std::fs::write(tmp.join(".complete"), name).map_err(io_error(&tmp))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dest.exists() {
        let _ = std::fs::remove_dir_all(dest);
    }
    std::fs::rename(&tmp, dest).map_err(io_error(dest))
}

/// The folder holding `training.txt`: `root` itself or a folder at most two levels below it
/// (the first in name order).
fn find_data_folder(repo: &str, root: &Path) -> Result<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for dir in &level {
            if dir.join(crate::mtfl::TRAIN_FILE).is_file() {
                return Ok(dir.clone());
            }
            if let Ok(rd) = std::fs::read_dir(dir) {
                let mut subs: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect();
                subs.sort();
                next.extend(subs);
            }
        }
        level = next;
    }
    Err(hub_error(
        repo,
        format!(
            "the archive unpacked in {} holds no training.txt",
            root.display()
        ),
    ))
}
