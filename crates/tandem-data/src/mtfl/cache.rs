//! Preprocessed faces and their on-disk cache.
//!
//! Decoding 10,000 JPEGs on every run is waste, so each face is decoded once into a
//! [`FaceTable`] row: a `size × size` grayscale crop (u8) of a [`Prep`] region, with its
//! landmarks normalised to that crop and its attribute classes. For the training crop the region
//! is the landmark box enlarged by `margin` (default 2, at 2× the model size): the widest jitter
//! of the default [`crate::mtfl::Jitter`] reaches 0.69 of the box side from the centre
//! ([`crate::mtfl::Jitter::reach`]), inside the cached 1.0, so augmentation can work from the
//! cache at the resolution of the final crop. Parts of the region outside the image are filled
//! by edge replication.
//!
//! Faces are decoded in parallel (rayon) and collected in file order, so the table and the first
//! error reported do not depend on the number of threads.
//!
//! ## The cache file
//!
//! One file per data folder and annotation file, `mtfl-<16 hex>.bin` (the hex is a hash of the
//! folder's canonical path and the file name) in the cache folder: `TANDEM_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/tandem`, else `~/.cache/tandem` (or one given in the options). Never next to
//! the data. Layout, little-endian:
//!
//! ```text
//! magic "TMTFLC01" | key [32] | n u64 | size u64
//! n × (line u64, landmarks 10 × f32, attributes 4 × u32) | n × size × size pixels u8
//! sha256 of everything before [32]
//! ```
//!
//! The key is the SHA-256 of a format tag, the preprocessing code's version ([`PREP_VERSION`]), the annotation file's bytes, the [`Prep`] options,
//! and every image's path, size and modification time. A file whose checksum, magic, key or
//! length does not match is reported ([`CacheStatus`]) and rebuilt, never trusted. Writing goes
//! to a temporary file that is renamed into place, so a crash leaves no half-written cache.
use crate::mtfl::crop::{warp, CropPolicy};
use crate::mtfl::image::{read_gray, DecodeLimits};
use crate::mtfl::parse::{Record, FIELD_NAMES};
use crate::{DataError, GrayImage, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TMTFLC01";
const FACE_BYTES: usize = 8 + 10 * 4 + 4 * 4;
/// Version of the preprocessing (decoding, cropping, resampling) code; part of the cache key, so
/// a change to how faces are prepared invalidates old caches. Bump it with any such change.
pub const PREP_VERSION: u32 = 2;

/// How each face is prepared for the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prep {
    /// The region: `Whole` or `LandmarkBox { scale, .. }` (its jitter is ignored here).
    pub crop: CropPolicy,
    /// The landmark box is enlarged by this factor (ignored for `Whole`).
    pub margin: f32,
    /// Side of the stored square crop in pixels.
    pub size: usize,
    /// Accept landmarks outside the image (default: an error).
    pub allow_outside: bool,
    /// Decoder limits.
    pub limits: DecodeLimits,
}

impl Prep {
    fn describe(&self) -> String {
        let crop = match self.crop {
            CropPolicy::Whole => "whole".to_string(),
            CropPolicy::LandmarkBox { scale, .. } => {
                format!("box {scale:?} margin {:?}", self.margin)
            }
        };
        format!(
            "{crop} size {} outside {} limits {:?}",
            self.size, self.allow_outside, self.limits
        )
    }
}

/// One prepared face (its pixels live in [`FaceTable::pixels`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    /// 1-based line in the annotation file.
    pub line: usize,
    /// `[x1..x5, y1..y5]` normalised to the stored crop.
    pub landmarks: [f32; 10],
    /// 0-based classes: gender, smile, glasses, pose.
    pub attributes: [u32; 4],
}

/// Prepared faces: `faces.len()` crops of `size × size` u8 pixels, row-major, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceTable {
    /// Side of each crop.
    pub size: usize,
    /// The faces, in annotation order.
    pub faces: Vec<Face>,
    /// `faces.len() * size * size` pixels.
    pub pixels: Vec<u8>,
}

impl FaceTable {
    /// The crop of face `i` as a [`GrayImage`] with values in `[0, 1]`.
    pub fn image(&self, i: usize) -> Option<GrayImage> {
        let n = self.size * self.size;
        let px = self.pixels.get(i * n..(i + 1) * n)?;
        Some(GrayImage::gray(
            self.size,
            self.size,
            px.iter().map(|&p| f32::from(p) / 255.0).collect(),
        ))
    }
}

/// What happened to the cache when a table was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// Caching is off (no cache folder); faces were decoded.
    Disabled,
    /// A valid cache was read.
    Loaded(PathBuf),
    /// No cache existed; faces were decoded and the cache written.
    Built(PathBuf),
    /// The cache did not match (stale or corrupt, the reason given) and was rebuilt.
    Rebuilt(PathBuf, String),
    /// Faces were decoded but the cache could not be written (reason given).
    NotWritten(PathBuf, String),
}

/// Where caches go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheDir {
    /// `TANDEM_CACHE_DIR`, else `$XDG_CACHE_HOME/tandem`, else `$HOME/.cache/tandem`; off if none
    /// is set.
    #[default]
    Auto,
    /// This folder.
    At(PathBuf),
    /// No cache: decode every time.
    Off,
}

impl CacheDir {
    /// The folder this resolves to, if any.
    pub fn resolve(&self) -> Option<PathBuf> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match self {
            CacheDir::Off => None,
            CacheDir::At(p) => Some(p.clone()),
            CacheDir::Auto => env("TANDEM_CACHE_DIR")
                .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("tandem")))
                .or_else(|| env("HOME").map(|p| p.join(".cache").join("tandem"))),
        }
    }
}

/// The cache key of an annotation file and its images (see the module docs). A missing image
/// is an error naming its annotation line.
pub fn cache_key(
    dir: &Path,
    file: &Path,
    annotation_bytes: &[u8],
    records: &[Record],
    prep: &Prep,
) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(PREP_VERSION.to_le_bytes());
    h.update((annotation_bytes.len() as u64).to_le_bytes());
    h.update(annotation_bytes);
    h.update(prep.describe().as_bytes());
    for r in records {
        let meta = std::fs::metadata(dir.join(&r.path)).map_err(|e| image_error(file, r, &e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| (d.as_secs(), d.subsec_nanos()))
            .unwrap_or((0, 0));
        h.update(r.path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(meta.len().to_le_bytes());
        h.update(mtime.0.to_le_bytes());
        h.update(mtime.1.to_le_bytes());
    }
    Ok(h.finalize().into())
}

fn image_error(file: &Path, r: &Record, e: &std::io::Error) -> DataError {
    let reason = if e.kind() == std::io::ErrorKind::NotFound {
        "is missing".to_string()
    } else {
        format!("cannot be read: {e}")
    };
    DataError::Image {
        file: file.to_path_buf(),
        line: r.line,
        image: r.path.clone(),
        reason,
    }
}

/// The cache file for annotation file `file` of data folder `dir` inside cache folder `cache`.
pub fn cache_path(cache: &Path, dir: &Path, file: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut h = Sha256::new();
    h.update(canonical.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(file.to_string_lossy().as_bytes());
    let d = h.finalize();
    cache.join(format!("mtfl-{}.bin", hex(&d[..8])))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes and prepares every face of `records` (images under `dir`; `file` names the
/// annotation file in errors), in parallel, in file order.
pub fn build_table(dir: &Path, file: &Path, records: &[Record], prep: &Prep) -> Result<FaceTable> {
    let rows: Vec<Result<(Face, Vec<u8>)>> = records
        .par_iter()
        .map(|r| prepare_face(dir, file, r, prep))
        .collect();
    let mut faces = Vec::with_capacity(rows.len());
    let mut pixels = Vec::with_capacity(rows.len() * prep.size * prep.size);
    for row in rows {
        let (face, px) = row?;
        faces.push(face);
        pixels.extend_from_slice(&px);
    }
    Ok(FaceTable {
        size: prep.size,
        faces,
        pixels,
    })
}

/// Decodes one face and crops it as `prep` says.
pub fn prepare_face(dir: &Path, file: &Path, r: &Record, prep: &Prep) -> Result<(Face, Vec<u8>)> {
    let img = read_gray(&dir.join(&r.path), &prep.limits).map_err(|reason| DataError::Image {
        file: file.to_path_buf(),
        line: r.line,
        image: r.path.clone(),
        reason,
    })?;
    let (w, h) = (img.width as f32, img.height as f32);
    if !prep.allow_outside {
        for (k, &v) in r.landmarks.iter().enumerate() {
            let limit = if k < 5 { w } else { h };
            if !(0.0..=limit).contains(&v) {
                return Err(DataError::Annotation {
                    file: file.to_path_buf(),
                    line: r.line,
                    field: FIELD_NAMES[1 + k].to_string(),
                    reason: format!(
                        "{v} lies outside the {}x{} image {}",
                        img.width,
                        img.height,
                        r.path.display()
                    ),
                });
            }
        }
    }
    let frame = prep
        .crop
        .frame(img.width, img.height, Some(&r.landmarks))
        .ok_or_else(|| DataError::Annotation {
            file: file.to_path_buf(),
            line: r.line,
            field: "landmarks".into(),
            reason: "the five points span no area, so there is no face box".into(),
        })?;
    let frame = match prep.crop {
        CropPolicy::Whole => frame,
        CropPolicy::LandmarkBox { .. } => frame.scaled(prep.margin),
    };
    let crop = warp(&img, &frame, prep.size, prep.size);
    let px = crop
        .pixels
        .iter()
        .map(|&p| (p * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    let mapped = frame.map_points(&r.landmarks);
    let mut landmarks = [0.0f32; 10];
    landmarks.copy_from_slice(&mapped[..10]);
    Ok((
        Face {
            line: r.line,
            landmarks,
            attributes: r.attributes,
        },
        px,
    ))
}

/// Serialises a table with its key (the module docs give the layout).
pub fn encode(table: &FaceTable, key: &[u8; 32]) -> Vec<u8> {
    let n = table.faces.len();
    let mut out = Vec::with_capacity(8 + 32 + 16 + n * FACE_BYTES + table.pixels.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&(table.size as u64).to_le_bytes());
    for f in &table.faces {
        out.extend_from_slice(&(f.line as u64).to_le_bytes());
        for v in f.landmarks {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for a in f.attributes {
            out.extend_from_slice(&a.to_le_bytes());
        }
    }
    out.extend_from_slice(&table.pixels);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Reads back what [`encode`] wrote, if its checksum, magic and key match; otherwise the reason
/// it cannot be trusted.
pub fn decode(bytes: &[u8], key: &[u8; 32]) -> std::result::Result<FaceTable, String> {
    const HEAD: usize = 8 + 32 + 16;
    if bytes.len() < HEAD + 32 {
        return Err(format!("cache is truncated ({} bytes)", bytes.len()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err("cache checksum does not match (corrupt)".into());
    }
    if &body[..8] != MAGIC {
        return Err("cache has an unknown format".into());
    }
    if &body[8..40] != key {
        return Err("cache is stale (annotations, images or options changed)".into());
    }
    let u64_at = |o: usize| -> std::result::Result<u64, String> {
        body.get(o..o + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| "cache is truncated".to_string())
    };
    let n = usize::try_from(u64_at(40)?).map_err(|e| e.to_string())?;
    let size = usize::try_from(u64_at(48)?).map_err(|e| e.to_string())?;
    let expected = n
        .checked_mul(FACE_BYTES)
        .and_then(|a| size.checked_mul(size)?.checked_mul(n)?.checked_add(a))
        .and_then(|a| a.checked_add(HEAD));
    if expected != Some(body.len()) {
        return Err("cache length does not match its header".into());
    }
    let f32_at = |o: usize| f32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
    let u32_at = |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
    let mut faces = Vec::with_capacity(n);
    for i in 0..n {
        let o = HEAD + i * FACE_BYTES;
        let line = usize::try_from(u64_at(o)?).map_err(|e| e.to_string())?;
        let mut landmarks = [0.0f32; 10];
        for (k, v) in landmarks.iter_mut().enumerate() {
            *v = f32_at(o + 8 + 4 * k);
        }
        let mut attributes = [0u32; 4];
        for (k, a) in attributes.iter_mut().enumerate() {
            *a = u32_at(o + 48 + 4 * k);
        }
        faces.push(Face {
            line,
            landmarks,
            attributes,
        });
    }
    let pixels = body[HEAD + n * FACE_BYTES..].to_vec();
    Ok(FaceTable {
        size,
        faces,
        pixels,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Loads the table for `records` from the cache at `cache` when valid, else builds it (and
/// writes the cache when `cache` is given).
pub fn load_or_build(
    dir: &Path,
    file: &Path,
    annotation_bytes: &[u8],
    records: &[Record],
    prep: &Prep,
    cache: Option<&Path>,
) -> Result<(FaceTable, CacheStatus)> {
    let key = cache_key(dir, file, annotation_bytes, records, prep)?;
    let Some(cache) = cache else {
        return Ok((
            build_table(dir, file, records, prep)?,
            CacheStatus::Disabled,
        ));
    };
    let path = cache_path(cache, dir, file);
    let stale = match std::fs::read(&path) {
        Ok(bytes) => match decode(&bytes, &key) {
            Ok(t) if t.faces.len() == records.len() && t.size == prep.size => {
                return Ok((t, CacheStatus::Loaded(path)))
            }
            Ok(_) => Some("cache does not match the annotations".to_string()),
            Err(reason) => Some(reason),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!("cache cannot be read: {e}")),
    };
    let table = build_table(dir, file, records, prep)?;
    let status = match write_atomic(&path, &encode(&table, &key)) {
        Err(e) => CacheStatus::NotWritten(path, e.to_string()),
        Ok(()) => match stale {
            Some(reason) => CacheStatus::Rebuilt(path, reason),
            None => CacheStatus::Built(path),
        },
    };
    Ok((table, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FaceTable {
        FaceTable {
            size: 2,
            faces: vec![Face {
                line: 3,
                landmarks: [0.5; 10],
                attributes: [0, 1, 1, 4],
            }],
            pixels: vec![1, 2, 3, 4],
        }
    }

    #[test]
    fn encode_decode_round_trip_and_detects_damage() {
        let key = [7u8; 32];
        let bytes = encode(&table(), &key);
        assert_eq!(decode(&bytes, &key).unwrap(), table());
        assert!(decode(&bytes, &[8u8; 32]).unwrap_err().contains("stale"));
        let mut bad = bytes.clone();
        bad[60] ^= 1;
        assert!(decode(&bad, &key).unwrap_err().contains("corrupt"));
        assert!(decode(&bytes[..bytes.len() - 1], &key).is_err());
        assert!(decode(&[], &key).is_err());
    }
}
