//! [`SynthFaces`]: seeded procedural grayscale faces whose attributes cause their geometry
//! and appearance.
//!
//! Each face is drawn from a small causal model (details and ranges in `docs/data.md`,
//! section "SynthFaces"):
//!
//! 1. **Attributes** (independent, priors from [`SynthConfig`]): gender, smile, glasses,
//!    pose (one of five yaw ranges, [`POSE_YAW_DEG`]).
//! 2. **Geometry** in a 3-D face frame (unit = frontal inter-ocular distance, IOD; eyes at
//!    `(∓0.5, 0, −0.1)`): the nose tip at `(0, 0.60, 0.50)`, the mouth corners at
//!    `(∓h, y_m, z_m)` with `h = 0.47` smiling / `0.40` not, `y_m = 1.00` smiling / `1.10`
//!    not, `+0.04` male / `−0.03` female, each times `1 ± identity`. Yaw `θ` projects a point
//!    to `u = x cos θ + (z + 1) sin θ`, so a turned head compresses the eyes and mouth and
//!    moves the nose (which sticks out most) furthest towards the turned side.
//! 3. **Placement**: scale `s` (frontal IOD in pixels), roll `ρ`, and the landmark centroid
//!    position; the pixel position of a face-frame point is
//!    `center + s·Rot(ρ)·((u, v) − ū)`. The centroid is clamped so that every landmark lies
//!    at least `max(1, 0.05·size)` pixels inside the image, shrinking `s` first if needed.
//! 4. **Appearance**: face outline (wider, squarer jaw for men), hair (long for women), eyes,
//!    brows (thicker for men), nose shading, mouth (open crescent with teeth or closed curve
//!    when smiling, straight lips otherwise, cheek folds when smiling), glasses (tinted lenses
//!    and frames over the eyes), the turned side of the face darker.
//! 5. **Nuisances** scaled by `difficulty`: clutter, occluder, lighting, pixel noise.
//!
//! Face `i` of a data set is a pure function of `(config, seed, i)`: its random draws come
//! from ChaCha8 streams seeded by `hash_seed(hash_seed(seed, "synth/{i}"), stream)` for the
//! streams `attributes`, `geometry`, `appearance`, `scene` and `noise`. The streams are
//! independent, so [`SynthFaces::face_with`] can change the attributes of a face and keep
//! everything else (identity draws, scale, roll, position, tones, background).
//!
//! Labels follow MTFL (0-based class = MTFL code − 1), in this order: `landmarks`
//! (`[x1..x5, y1..y5]` divided by the image size; left eye, right eye, nose, left and right
//! mouth corner, "left" being the smaller image `x` of a frontal face; pixel `j` spans
//! `[j, j + 1)`), `gender` (0 male, 1 female), `smile` (0 smiling, 1 not), `glasses`
//! (0 wearing, 1 not), `pose` (0 left profile, 1 left, 2 frontal, 3 right, 4 right profile;
//! "left" = nose towards smaller `x`).
//!
//! ```
//! use tandem_data::{Dataset, Label, SynthConfig, SynthFaces};
//! let faces = SynthFaces::new(SynthConfig { len: 4, ..Default::default() }, 7);
//! let s = faces.get(0)?;
//! assert_eq!((s.image.width, s.image.height), (40, 40));
//! let keys: Vec<&str> = s.labels.keys().collect();
//! assert_eq!(keys, ["landmarks", "gender", "smile", "glasses", "pose"]);
//! assert!(matches!(&s.labels["landmarks"], Label::Points(p) if p.len() == 10));
//! assert_eq!(faces.get(0)?, s);
//! # Ok::<(), tandem_data::DataError>(())
//! ```
mod config;
mod face;
mod raster;
mod render;

pub use config::SynthConfig;
pub use face::{Attributes, FaceParams, POSE_YAW_DEG};

use crate::{DataError, Dataset, Label, Result, Sample};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tandem_tensor::{hash_seed, TaskMap};

/// The seeded synthetic face data set. Faces are rendered on demand by [`Dataset::get`]
/// (about tens of microseconds for a 40×40 face in an optimised build).
#[derive(Debug, Clone)]
pub struct SynthFaces {
    cfg: SynthConfig,
    seed: u64,
    invalid: Option<String>,
}

impl SynthFaces {
    /// A data set of `cfg.len` faces under `seed`. An invalid configuration is reported by
    /// every [`Dataset::get`] (use [`SynthFaces::try_new`] to catch it here).
    pub fn new(cfg: SynthConfig, seed: u64) -> Self {
        let invalid = cfg.validate().err().map(|e| e.to_string());
        Self { cfg, seed, invalid }
    }

    /// As [`SynthFaces::new`], failing on an invalid configuration.
    pub fn try_new(cfg: SynthConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        Ok(Self::new(cfg, seed))
    }

    /// The configuration.
    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn check(&self, index: usize) -> Result<()> {
        if let Some(e) = &self.invalid {
            return Err(DataError::Invalid(e.clone()));
        }
        if index >= self.cfg.len {
            return Err(DataError::Invalid(format!(
                "face {index} out of range for {} faces",
                self.cfg.len
            )));
        }
        Ok(())
    }

    fn stream(&self, index: usize, name: &str) -> ChaCha8Rng {
        let face = hash_seed(self.seed, &format!("synth/{index}"));
        ChaCha8Rng::seed_from_u64(hash_seed(face, name))
    }

    /// The attributes of face `index`.
    pub fn attributes(&self, index: usize) -> Result<Attributes> {
        self.check(index)?;
        Ok(Attributes::sample(
            &self.cfg,
            &mut self.stream(index, "attributes"),
        ))
    }

    /// The latent causes and landmarks of face `index`, without rendering it.
    pub fn params(&self, index: usize) -> Result<FaceParams> {
        let a = self.attributes(index)?;
        Ok(self.params_with(index, a))
    }

    fn params_with(&self, index: usize, attributes: Attributes) -> FaceParams {
        FaceParams::sample(&self.cfg, attributes, &mut self.stream(index, "geometry"))
    }

    /// Face `index` with its latent causes.
    pub fn face(&self, index: usize) -> Result<(Sample, FaceParams)> {
        let a = self.attributes(index)?;
        self.face_with(index, a)
    }

    /// Face `index` as it would look with `attributes` instead of its own: the identity,
    /// placement, tones, background and nuisances stay those of face `index` (the
    /// counterfactual that tests of attribute effects need).
    pub fn face_with(&self, index: usize, attributes: Attributes) -> Result<(Sample, FaceParams)> {
        self.check(index)?;
        attributes.validate()?;
        let p = self.params_with(index, attributes);
        let image = render::render(
            &self.cfg,
            &p,
            &mut self.stream(index, "appearance"),
            &mut self.stream(index, "scene"),
            &mut self.stream(index, "noise"),
        );
        let a = p.attributes;
        let labels = TaskMap::new()
            .with(
                "landmarks",
                Label::Points(p.normalized_landmarks(self.cfg.size)),
            )
            .with("gender", Label::Class(a.gender))
            .with("smile", Label::Class(a.smile))
            .with("glasses", Label::Class(a.glasses))
            .with("pose", Label::Class(a.pose));
        Ok((Sample { image, labels }, p))
    }
}

impl Dataset for SynthFaces {
    fn len(&self) -> usize {
        self.cfg.len
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.face(index).map(|(s, _)| s)
    }
}
