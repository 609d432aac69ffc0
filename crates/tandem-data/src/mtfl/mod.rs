//! The MTFL data set (Multi-Task Facial Landmark: 10,000 training and 2,995 test faces, five
//! landmarks and four attributes each), loaded as real copies of it are.
//!
//! A data folder holds `training.txt` (required), `testing.txt` (optional) and the image folders
//! they name (`lfw_5590/`, `net_7876/`, `AFLW/`). [`Mtfl::open`] parses the annotation files
//! ([`parse`]), decodes every image once into a table of preprocessed faces ([`cache`]; read back
//! from the on-disk cache on later runs), and fails on the first flaw with an error naming the
//! file, line and field — before any training starts.
//!
//! - [`Mtfl::train`]: training faces, each a `2S × 2S` crop (S = model size, default 40) around
//!   its landmark box with room for jitter. Feed them through [`Mtfl::train_transform`], which
//!   crops the final `S × S` input (jittered, mirrored and photometrically varied when
//!   `train == true`; the plain centred landmark box when `train == false`, e.g. validation).
//! - [`Mtfl::test`]: test faces, already `S × S` (by default the whole image resized: a test
//!   face is never cropped with its own ground-truth landmarks). Use them without a transform.
//!
//! Labels: `landmarks` (`Points`, `[x1..x5, y1..y5]` normalised to the sample's image),
//! `gender`, `smile`, `glasses`, `pose` (`Class`, 0-based: MTFL code − 1, see
//! [`parse::Attribute`]).
pub mod augment;
pub mod cache;
pub mod crop;
pub mod degrade;
#[cfg(feature = "hub")]
pub mod hub;
pub mod image;
pub mod parse;
pub mod proxy;

pub use augment::{mirror, Augment, FaceTransform};
pub use cache::{CacheDir, CacheStatus, FaceTable, Prep};
pub use crop::{BoxSpread, CropPolicy, Frame, Jitter, DEFAULT_BOX_SCALE};
pub use degrade::Degrade;
#[cfg(feature = "hub")]
pub use hub::{DataSource, HubOptions};
pub use image::DecodeLimits;
pub use parse::{Attribute, ParseOptions, Record};
pub use proxy::{pose_resample, Proxy, ProxyOptions};

use crate::{DataError, Dataset, EvalSet, Label, Result, Sample, Subset, Transform};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem_tensor::TaskMap;

/// The annotation file of the training split.
pub const TRAIN_FILE: &str = "training.txt";
/// The annotation file of the test split.
pub const TEST_FILE: &str = "testing.txt";
/// Task names in label order.
pub const TASKS: [&str; 5] = ["landmarks", "gender", "smile", "glasses", "pose"];

/// Options of [`Mtfl::open`].
#[derive(Debug, Clone, PartialEq)]
pub struct MtflOptions {
    /// Side of the model input in pixels (default 40).
    pub model_size: usize,
    /// Crop of training faces (default `LandmarkBox { scale: 2.85, jitter: Jitter::default() }`).
    pub train_crop: CropPolicy,
    /// Crop of test faces (default `Whole`).
    pub test_crop: CropPolicy,
    /// Spread of the evaluation crops of training-split faces (validation), a fixed draw per
    /// face around the landmark box (default [`BoxSpread::MTFL_TEST`]: *test-like* crops that
    /// stray from the landmarks as MTFL's test images do; [`BoxSpread::NONE`]: the centred
    /// landmark box).
    pub eval_spread: BoxSpread,
    /// Seed of the per-face evaluation draws (default 0).
    pub eval_seed: u64,
    /// The cached training region is the landmark box enlarged by this factor, stored at
    /// `margin × model_size` pixels (default 2). Must cover the jitter's reach
    /// (`margin ≥ 2 · Jitter::reach()`).
    pub cache_margin: f32,
    /// Training augmentation besides the crop jitter.
    pub augment: Augment,
    /// Where the preprocessing cache goes.
    pub cache: CacheDir,
    /// Reject an image path that an earlier line already named (default false).
    pub reject_duplicates: bool,
    /// Accept landmarks outside their image (default false: an error).
    pub allow_landmarks_outside: bool,
    /// Decoder limits.
    pub limits: DecodeLimits,
}

impl Default for MtflOptions {
    fn default() -> Self {
        Self {
            model_size: 40,
            train_crop: CropPolicy::landmark_box(),
            test_crop: CropPolicy::Whole,
            eval_spread: BoxSpread::MTFL_TEST,
            eval_seed: 0,
            cache_margin: 2.0,
            augment: Augment::default(),
            cache: CacheDir::Auto,
            reject_duplicates: false,
            allow_landmarks_outside: false,
            limits: DecodeLimits::default(),
        }
    }
}

impl MtflOptions {
    fn check(&self) -> Result<()> {
        if self.model_size == 0 || self.model_size > 4096 {
            return Err(DataError::Invalid(format!(
                "model size {} is not in 1..=4096",
                self.model_size
            )));
        }
        for (name, crop) in [("train", &self.train_crop), ("test", &self.test_crop)] {
            if let CropPolicy::LandmarkBox { scale, jitter } = crop {
                let ok = scale.is_finite()
                    && *scale > 0.0
                    && [jitter.shift, jitter.scale, jitter.rotation_deg]
                        .iter()
                        .all(|v| v.is_finite() && *v >= 0.0)
                    && jitter.scale < 1.0;
                if !ok {
                    return Err(DataError::Invalid(format!(
                        "{name} crop {crop:?}: scale must be positive, jitter ranges finite and \
                         non-negative, and the scale jitter below 1"
                    )));
                }
            }
        }
        if !self.eval_spread.is_valid() {
            return Err(DataError::Invalid(format!(
                "evaluation spread {:?}: standard deviations must be finite and non-negative, \
                 clip positive",
                self.eval_spread
            )));
        }
        if let CropPolicy::LandmarkBox { jitter, .. } = self.train_crop {
            let need = 2.0 * jitter.reach().max(self.eval_spread.reach());
            if !(self.cache_margin.is_finite()
                && self.cache_margin >= need
                && self.cache_margin <= 8.0)
            {
                return Err(DataError::Invalid(format!(
                    "cache margin {} must be in [{need:.3}, 8] to hold the jittered crops",
                    self.cache_margin
                )));
            }
        }
        Ok(())
    }

    fn train_prep(&self) -> Prep {
        let (margin, size) = match self.train_crop {
            CropPolicy::Whole => (1.0, self.model_size),
            CropPolicy::LandmarkBox { .. } => (
                self.cache_margin,
                (self.cache_margin * self.model_size as f32).round() as usize,
            ),
        };
        Prep {
            crop: self.train_crop,
            margin,
            size,
            allow_outside: self.allow_landmarks_outside,
            limits: self.limits,
        }
    }

    fn test_prep(&self) -> Prep {
        Prep {
            crop: self.test_crop,
            margin: 1.0,
            size: self.model_size,
            allow_outside: self.allow_landmarks_outside,
            limits: self.limits,
        }
    }
}

/// One loaded split: its records, prepared faces and cache outcome.
#[derive(Debug, Clone)]
pub struct Split {
    /// The parsed annotation lines.
    pub records: Vec<Record>,
    /// The prepared faces, in the same order.
    pub table: Arc<FaceTable>,
    /// What happened to the cache.
    pub cache: CacheStatus,
}

/// A loaded MTFL data folder.
#[derive(Debug, Clone)]
pub struct Mtfl {
    dir: PathBuf,
    options: MtflOptions,
    train: Split,
    test: Option<Split>,
}

impl Mtfl {
    /// Opens the data folder `dir`: parses `training.txt` (and `testing.txt` when present),
    /// checks and decodes every image (or reads the valid cache), and returns the first flaw
    /// as an error naming file, line and field.
    pub fn open(dir: impl AsRef<Path>, options: MtflOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        options.check()?;
        if !dir.is_dir() {
            return Err(DataError::Io {
                path: dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "MTFL data folder not found (expected training.txt and image folders in it)",
                ),
            });
        }
        let cache = options.cache.resolve();
        let train = load_split(
            &dir,
            TRAIN_FILE,
            &options,
            &options.train_prep(),
            cache.as_deref(),
        )?;
        let test = if dir.join(TEST_FILE).is_file() {
            Some(load_split(
                &dir,
                TEST_FILE,
                &options,
                &options.test_prep(),
                cache.as_deref(),
            )?)
        } else {
            None
        };
        Ok(Self {
            dir,
            options,
            train,
            test,
        })
    }

    #[cfg(feature = "hub")]
    /// Opens the folder of `source`, fetching and unpacking a hub archive first if needed
    /// ([`DataSource::resolve`]).
    pub fn open_source(
        source: &DataSource,
        hub: &HubOptions,
        options: MtflOptions,
    ) -> Result<Self> {
        Self::open(source.resolve(hub)?, options)
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &MtflOptions {
        &self.options
    }

    /// The training split: records, faces, cache outcome.
    pub fn train_split(&self) -> &Split {
        &self.train
    }

    /// The test split, if `testing.txt` was present.
    pub fn test_split(&self) -> Option<&Split> {
        self.test.as_ref()
    }

    /// All training faces as cached crops (`2S × 2S` by default); use with
    /// [`Mtfl::train_transform`].
    pub fn train(&self) -> Arc<dyn Dataset> {
        Arc::new(Faces {
            table: self.train.table.clone(),
        })
    }

    /// A seeded random train/validation split of the training faces ([`Subset::split`]):
    /// `round(fraction · 10,000)` for training, the rest for validation.
    pub fn split(&self, train_fraction: f64, seed: u64) -> Result<(Subset, Subset)> {
        Subset::split(self.train(), train_fraction, seed)
    }

    /// The test faces, already at the model size (no transform needed), if `testing.txt` exists.
    pub fn test(&self) -> Option<Arc<dyn Dataset>> {
        self.test.as_ref().map(|s| {
            Arc::new(Faces {
                table: s.table.clone(),
            }) as Arc<dyn Dataset>
        })
    }

    /// The transform for training faces: the training crop with jitter, mirror and photometric
    /// augmentation when `train == true`, the plain centred crop when `train == false`; output
    /// `S × S`.
    pub fn train_transform(&self) -> Arc<dyn Transform> {
        Arc::new(self.face_transform())
    }

    /// [`Mtfl::train_transform`] as its concrete type.
    pub fn face_transform(&self) -> FaceTransform {
        FaceTransform {
            crop: self.options.train_crop,
            width: self.options.model_size,
            height: self.options.model_size,
            augment: self.options.augment,
            eval_spread: self.options.eval_spread,
            eval_seed: self.options.eval_seed,
        }
    }

    /// MTFL's evaluation sets of a validation split `val` of [`Mtfl::train`], scored beside it
    /// and never used for selection: `val_centred` (the same faces through `transform` with
    /// no test-like box spread, i.e. the plain centred landmark box) and, when the faces come
    /// from more than one source folder, `val_<folder>` for each folder in name order
    /// (`val_lfw_5590`, `val_net_7876`) through `transform` itself.
    pub fn evaluation_sets(&self, val: &Subset, transform: &FaceTransform) -> Result<Vec<EvalSet>> {
        let centred = FaceTransform {
            eval_spread: BoxSpread::NONE,
            ..*transform
        };
        let shared: Arc<dyn Transform> = Arc::new(*transform);
        let mut sets = vec![EvalSet {
            name: "val_centred".into(),
            data: Arc::new(val.clone()),
            transform: Some(Arc::new(centred)),
            compare_plain: false,
        }];
        let records = &self.train.records;
        let folder = |i: usize| {
            records
                .get(i)
                .and_then(|r| r.path.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        };
        let mut folders: Vec<String> = val.indices().iter().filter_map(|&i| folder(i)).collect();
        folders.sort();
        folders.dedup();
        if folders.len() > 1 {
            for f in folders {
                let idx: Vec<usize> = val
                    .indices()
                    .iter()
                    .copied()
                    .filter(|&i| folder(i).as_deref() == Some(f.as_str()))
                    .collect();
                sets.push(EvalSet {
                    name: format!("val_{f}"),
                    data: Arc::new(Subset::new(self.train(), idx)?),
                    transform: Some(shared.clone()),
                    compare_plain: false,
                });
            }
        }
        Ok(sets)
    }
}

impl Mtfl {
    /// `(index, 0-based pose class)` of every face of `subset` of [`Mtfl::train`], in its
    /// order: the input of [`pose_resample`].
    pub fn poses(&self, subset: &Subset) -> Vec<(usize, u32)> {
        let faces = &self.train.table.faces;
        subset
            .indices()
            .iter()
            .map(|&i| (i, faces.get(i).map_or(proxy::FRONTAL, |f| f.attributes[3])))
            .collect()
    }

    /// The proxy evaluation set of a validation split `val` of [`Mtfl::train`]
    /// ([`proxy`]): its faces resampled to `options.nonfrontal` non-frontal poses, each copy
    /// cropped by `transform` in evaluation mode (test-like) and degraded by a fixed draw of
    /// `options.degrade`; named `val_proxy`, scored without a further transform.
    pub fn proxy_set(
        &self,
        val: &Subset,
        transform: &FaceTransform,
        options: &ProxyOptions,
    ) -> Result<EvalSet> {
        let items = pose_resample(&self.poses(val), options.nonfrontal, options.seed);
        Ok(EvalSet {
            name: "val_proxy".into(),
            data: Arc::new(Proxy::new(self.train(), items, *transform, options)),
            transform: None,
            compare_plain: true,
        })
    }
}

fn load_split(
    dir: &Path,
    name: &str,
    options: &MtflOptions,
    prep: &Prep,
    cache: Option<&Path>,
) -> Result<Split> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    let file = Path::new(name);
    let records = parse::parse_annotations(
        file,
        &bytes,
        ParseOptions {
            reject_duplicates: options.reject_duplicates,
        },
    )?;
    let (table, status) = cache::load_or_build(dir, file, &bytes, &records, prep, cache)?;
    Ok(Split {
        records,
        table: Arc::new(table),
        cache: status,
    })
}

/// A [`Dataset`] over a [`FaceTable`].
#[derive(Debug, Clone)]
pub struct Faces {
    table: Arc<FaceTable>,
}

impl Faces {
    /// The faces of `table`.
    pub fn new(table: Arc<FaceTable>) -> Self {
        Self { table }
    }
}

impl Dataset for Faces {
    fn len(&self) -> usize {
        self.table.faces.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (Some(face), Some(image)) = (self.table.faces.get(index), self.table.image(index))
        else {
            return Err(DataError::Invalid(format!(
                "index {index} out of range for {} MTFL faces",
                self.table.faces.len()
            )));
        };
        let mut labels = TaskMap::new().with(TASKS[0], Label::Points(face.landmarks.to_vec()));
        for (name, class) in TASKS[1..].iter().zip(face.attributes) {
            labels.insert(*name, Label::Class(class));
        }
        Ok(Sample { image, labels })
    }
}
