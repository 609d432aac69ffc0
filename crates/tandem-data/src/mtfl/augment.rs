//! The MTFL face transform: crop, training augmentation, resize.
//!
//! [`FaceTransform`] turns a face sample (any size, landmarks normalised to it) into a model
//! input of `width × height` in one resampling step:
//!
//! 1. The crop frame of its [`CropPolicy`] (whole image, or the landmark box).
//! 2. In training: the policy's [`crate::mtfl::Jitter`] (shift, scale, rotation), then a
//!    horizontal mirror with probability ½, then brightness/contrast:
//!    `p' = clamp((p − mean) · c + mean + b, 0, 1)` with `c ∈ [1 − contrast, 1 + contrast]` and
//!    `b ∈ [−brightness, brightness]` drawn uniformly; then, when configured, the in-the-wild
//!    degradations of [`Degrade`] (blur, low light, noise, JPEG).
//! 3. Landmarks go through the same map, so they stay on the face.
//!
//! In evaluation (`train == false`) nothing random happens: the unjittered crop, no mirror, no
//! photometric change.
//!
//! The mirror ([`mirror`]) flips the image left to right, maps `x → 1 − x`, swaps the left and
//! right eye (points 1 ↔ 2) and mouth corners (4 ↔ 5), and swaps the head pose left ↔ right
//! (codes 1 ↔ 5 and 2 ↔ 4, i.e. classes `c → 4 − c`). Mirroring twice is the identity.
use crate::mtfl::crop::{warp, BoxSpread, CropPolicy};
use crate::mtfl::degrade::Degrade;
use crate::{DataError, GrayImage, Label, Result, Sample, Transform};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Training-only augmentation besides the crop jitter (TOML: `[data.augment]` of a run).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Mirror half of the samples (default true).
    pub mirror: bool,
    /// Largest brightness offset (default 0.1, on the `[0, 1]` scale).
    pub brightness: f32,
    /// Largest relative contrast change (default 0.2).
    pub contrast: f32,
    /// In-the-wild degradations (blur, low light, noise, JPEG), after the other changes
    /// (default off; [`Degrade`]).
    #[serde(skip_serializing_if = "Degrade::is_off")]
    pub degrade: Degrade,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        mirror: false,
        brightness: 0.0,
        contrast: 0.0,
        degrade: Degrade::OFF,
    };

    /// Whether the ranges are usable: `brightness` and `contrast` finite and in `[0, 1]`, the
    /// degradation's as [`Degrade::is_valid`] says.
    pub fn is_valid(&self) -> bool {
        [self.brightness, self.contrast]
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v))
            && self.degrade.is_valid()
    }
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            mirror: true,
            brightness: 0.1,
            contrast: 0.2,
            degrade: Degrade::OFF,
        }
    }
}

/// Crop + augmentation + resize for face samples (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceTransform {
    /// The crop policy.
    pub crop: CropPolicy,
    /// Output width in pixels.
    pub width: usize,
    /// Output height in pixels.
    pub height: usize,
    /// Training augmentation.
    pub augment: Augment,
    /// The spread of evaluation crops around the policy's frame ([`BoxSpread::NONE`]: the
    /// centred landmark box).
    pub eval_spread: BoxSpread,
    /// Seed of the per-face evaluation draws.
    pub eval_seed: u64,
}

/// The name of the landmark task.
pub const LANDMARKS: &str = "landmarks";
/// The name of the head-pose task.
pub const POSE: &str = "pose";

impl Transform for FaceTransform {
    fn apply(&self, sample: Sample, rng: &mut ChaCha8Rng, train: bool) -> Result<Sample> {
        let Sample { image, mut labels } = sample;
        let (w, h) = (image.width, image.height);
        if w == 0 || h == 0 || image.pixels.len() != w * h {
            return Err(DataError::Invalid(format!(
                "face transform: image of {w}x{h} with {} pixels",
                image.pixels.len()
            )));
        }
        let points: Option<Vec<f32>> = match labels.get(LANDMARKS) {
            Some(Label::Points(p)) => Some(to_pixels(p, w, h)),
            _ => None,
        };
        let frame = self.crop.frame(w, h, points.as_deref()).ok_or_else(|| {
            DataError::Invalid(
                "face transform: the landmark box needs landmarks that span more than one point"
                    .into(),
            )
        })?;
        let frame = match (train, &points) {
            (true, _) => frame.jittered(&self.crop.jitter(), rng),
            (false, Some(p)) if !self.eval_spread.is_none() => {
                let mut face_rng = ChaCha8Rng::seed_from_u64(face_seed(self.eval_seed, p));
                self.eval_spread.perturb(&frame, &mut face_rng)
            }
            (false, _) => frame,
        };
        let image = warp(&image, &frame, self.width, self.height);
        if let (Some(p), Some(Label::Points(l))) = (points, labels.get_mut(LANDMARKS)) {
            *l = frame.map_points(&p);
        }
        let mut sample = Sample { image, labels };
        if train {
            if self.augment.mirror && rng.random_bool(0.5) {
                sample = mirror(sample);
            }
            photometric(&mut sample.image, &self.augment, rng);
            self.augment.degrade.apply(&mut sample.image, rng);
        }
        Ok(sample)
    }
}

/// A seed fixed by the face: FNV-1a over `seed` and the bits of its landmark coordinates.
fn face_seed(seed: u64, points: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for v in points {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn to_pixels(p: &[f32], w: usize, h: usize) -> Vec<f32> {
    let n = p.len() / 2;
    p.iter()
        .enumerate()
        .map(|(i, &v)| if i < n { v * w as f32 } else { v * h as f32 })
        .collect()
}

fn photometric(image: &mut GrayImage, augment: &Augment, rng: &mut ChaCha8Rng) {
    if augment.brightness <= 0.0 && augment.contrast <= 0.0 {
        return;
    }
    let c = if augment.contrast > 0.0 {
        1.0 + rng.random_range(-augment.contrast..=augment.contrast)
    } else {
        1.0
    };
    let b = if augment.brightness > 0.0 {
        rng.random_range(-augment.brightness..=augment.brightness)
    } else {
        0.0
    };
    let n = image.pixels.len().max(1) as f32;
    let mean = image.pixels.iter().sum::<f32>() / n;
    for p in &mut image.pixels {
        *p = ((*p - mean) * c + mean + b).clamp(0.0, 1.0);
    }
}

/// Mirrors a face left to right (see the module docs): the image, the `landmarks` label
/// (`[x1..x5, y1..y5]`, normalised) and the `pose` label. Other labels are unchanged.
pub fn mirror(sample: Sample) -> Sample {
    let Sample {
        mut image,
        mut labels,
    } = sample;
    let w = image.width;
    if w > 0 {
        for row in image.pixels.chunks_mut(w) {
            row.reverse();
        }
    }
    if let Some(Label::Points(p)) = labels.get_mut(LANDMARKS) {
        *p = mirror_points(p);
    }
    if let Some(Label::Class(c)) = labels.get_mut(POSE) {
        *c = mirror_pose(*c);
    }
    Sample { image, labels }
}

/// Mirrors normalised `[x1..xn, y1..yn]`: `x → 1 − x`; for MTFL's five points also swaps the
/// eyes (1 ↔ 2) and the mouth corners (4 ↔ 5).
pub fn mirror_points(p: &[f32]) -> Vec<f32> {
    let n = p.len() / 2;
    let mut out: Vec<f32> = p
        .iter()
        .enumerate()
        .map(|(i, &v)| if i < n { 1.0 - v } else { v })
        .collect();
    if n == 5 {
        for (a, b) in [(0, 1), (3, 4)] {
            out.swap(a, b);
            out.swap(n + a, n + b);
        }
    }
    out
}

/// Mirrors a 0-based head-pose class: left profile ↔ right profile, left ↔ right
/// (`c → 4 − c`); a class outside `0..5` is returned unchanged.
pub fn mirror_pose(class: u32) -> u32 {
    if class < 5 {
        4 - class
    } else {
        class
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtfl::crop::Jitter;
    use tandem_tensor::TaskMap;

    fn face() -> Sample {
        let mut image = GrayImage::new(100, 80);
        for (i, p) in image.pixels.iter_mut().enumerate() {
            *p = (i % 97) as f32 / 97.0;
        }
        let labels = TaskMap::new()
            .with(
                LANDMARKS,
                Label::Points(vec![0.3, 0.6, 0.45, 0.35, 0.55, 0.4, 0.4, 0.55, 0.7, 0.7]),
            )
            .with("gender", Label::Class(1))
            .with(POSE, Label::Class(1));
        Sample { image, labels }
    }

    #[test]
    fn mirror_swaps_sides_and_pose() {
        let m = mirror(face());
        let Some(Label::Points(p)) = m.labels.get(LANDMARKS) else {
            panic!("no landmarks")
        };
        let expect = [0.4, 0.7, 0.55, 0.45, 0.65, 0.4, 0.4, 0.55, 0.7, 0.7];
        for (a, b) in p.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{p:?}");
        }
        assert_eq!(m.labels.get(POSE), Some(&Label::Class(3)));
        assert_eq!(m.image.get(0, 0), face().image.get(99, 0));
        let twice = mirror(m);
        assert_eq!(twice.image, face().image);
        assert_eq!(twice.labels.get(POSE), Some(&Label::Class(1)));
    }

    #[test]
    fn evaluation_crop_is_deterministic_and_centred() -> Result<()> {
        let t = FaceTransform {
            crop: CropPolicy::landmark_box(),
            width: 40,
            height: 40,
            augment: Augment::default(),
            eval_spread: BoxSpread::NONE,
            eval_seed: 0,
        };
        let a = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(1), false)?;
        let b = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(2), false)?;
        assert_eq!(a, b);
        let Some(Label::Points(p)) = a.labels.get(LANDMARKS) else {
            panic!("no landmarks")
        };
        let cx = p[..5].iter().sum::<f32>() / 5.0;
        let cy = p[5..].iter().sum::<f32>() / 5.0;
        assert!((cx - 0.5).abs() < 1e-5 && (cy - 0.5).abs() < 1e-5);
        Ok(())
    }

    #[test]
    fn test_like_evaluation_crops_are_fixed_per_face() -> Result<()> {
        let t = FaceTransform {
            crop: CropPolicy::landmark_box(),
            width: 40,
            height: 40,
            augment: Augment::default(),
            eval_spread: BoxSpread::MTFL_TEST,
            eval_seed: 3,
        };
        // The same face gives the same crop whatever the caller's RNG ...
        let a = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(1), false)?;
        let b = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(2), false)?;
        assert_eq!(a, b);
        // ... which is not the centred crop ...
        let centred = FaceTransform {
            eval_spread: BoxSpread::NONE,
            ..t
        };
        let c = centred.apply(face(), &mut ChaCha8Rng::seed_from_u64(1), false)?;
        assert_ne!(a.image, c.image);
        // ... and another evaluation seed gives another draw.
        let other = FaceTransform { eval_seed: 4, ..t };
        let d = other.apply(face(), &mut ChaCha8Rng::seed_from_u64(1), false)?;
        assert_ne!(a.image, d.image);
        Ok(())
    }

    #[test]
    fn training_is_seeded() -> Result<()> {
        let t = FaceTransform {
            crop: CropPolicy::LandmarkBox {
                scale: 2.85,
                jitter: Jitter::default(),
            },
            width: 40,
            height: 40,
            augment: Augment::default(),
            eval_spread: BoxSpread::NONE,
            eval_seed: 0,
        };
        let a = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(5), true)?;
        let b = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(5), true)?;
        let c = t.apply(face(), &mut ChaCha8Rng::seed_from_u64(6), true)?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        Ok(())
    }
}
