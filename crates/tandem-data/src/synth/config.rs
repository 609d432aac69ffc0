//! [`SynthConfig`]: size, length, attribute priors and difficulty knobs of [`super::SynthFaces`].
use crate::{DataError, Result};
use serde::{Deserialize, Serialize};

/// Configuration of [`super::SynthFaces`].
///
/// The nuisance knobs (`noise`, `clutter`, `occluder_prob`, `lighting`, `roll_deg`,
/// `scale_jitter`, `shift`) are amplitudes at `difficulty = 1`; each is multiplied by
/// `difficulty`, so one number makes the whole data set easier (`0` = clean, centred,
/// upright faces on a flat background) or harder. Attribute effects and the per-face
/// identity variation do not depend on `difficulty`: they are the signal.
///
/// ```
/// use tandem_data::SynthConfig;
/// let cfg = SynthConfig { size: 64, difficulty: 0.5, ..Default::default() };
/// assert_eq!(cfg.len, 10_000);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Side of the square image in pixels (default 40, at least 8).
    pub size: usize,
    /// Number of faces in the data set (default 10 000).
    pub len: usize,
    /// Master multiplier of every nuisance amplitude below (default 1.0, in `[0, 10]`).
    pub difficulty: f32,
    /// Standard deviation of the additive Gaussian pixel noise, image range `[0, 1]`
    /// (default 0.04).
    pub noise: f32,
    /// Background clutter strength: up to `round(8·clutter)` random shapes behind the face
    /// (ellipses, bars, rings, eye-like dot pairs) and a stripe texture of amplitude
    /// `0.12·clutter` (default 0.6; at most 64 shapes).
    pub clutter: f32,
    /// Probability that a random bar or blob is drawn over the face (default 0.2; the
    /// effective probability `occluder_prob · difficulty` is capped at 1).
    pub occluder_prob: f32,
    /// Lighting variation `L` (capped at 2 after scaling): gain in `[1 − 0.25L, 1 + 0.15L]`,
    /// offset in `±0.1L`, and a linear gradient across the image of up to `±0.25L`
    /// (default 1.0).
    pub lighting: f32,
    /// Standard deviation of the in-plane rotation in degrees, truncated at 2.5σ and at 45°
    /// (default 8.0).
    pub roll_deg: f32,
    /// Mean inter-ocular distance of a frontal face as a fraction of `size` (default 0.30,
    /// as MTFL's test crops).
    pub scale: f32,
    /// Relative half-range of the face scale: the frontal inter-ocular distance is
    /// `scale · size · (1 ± scale_jitter)` (default 0.12; `scale_jitter · difficulty` is
    /// capped at 0.75).
    pub scale_jitter: f32,
    /// Half-range of the landmark centroid's offset from the image centre as a fraction of
    /// `size` (default 0.06).
    pub shift: f32,
    /// Relative half-range of the per-face identity variation of nose length, nose depth,
    /// mouth height, mouth width and face width (default 0.06). Not scaled by `difficulty`.
    pub identity: f32,
    /// Prior probability of a female face (default 0.42, as MTFL training).
    pub female_prob: f32,
    /// Prior probability of a smiling face (default 0.56, as MTFL training).
    pub smile_prob: f32,
    /// Prior probability of glasses (default 0.14, as MTFL training).
    pub glasses_prob: f32,
    /// Prior weights of the poses left profile, left, frontal, right, right profile
    /// (default `[0.04, 0.13, 0.66, 0.13, 0.04]`; normalised by their sum).
    pub pose_probs: [f32; 5],
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            size: 40,
            len: 10_000,
            difficulty: 1.0,
            noise: 0.04,
            clutter: 0.6,
            occluder_prob: 0.2,
            lighting: 1.0,
            roll_deg: 8.0,
            scale: 0.30,
            scale_jitter: 0.12,
            shift: 0.06,
            identity: 0.06,
            female_prob: 0.42,
            smile_prob: 0.56,
            glasses_prob: 0.14,
            pose_probs: [0.04, 0.13, 0.66, 0.13, 0.04],
        }
    }
}

impl SynthConfig {
    /// Checks that every field is in range (finite, non-negative, probabilities in `[0, 1]`,
    /// `size ≥ 8`, `difficulty ≤ 10`, `0 < scale ≤ 0.5`, `scale_jitter < 1`,
    /// `identity ≤ 0.5`, a positive pose weight).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(DataError::Invalid(format!("SynthConfig: {what}")));
        if self.size < 8 {
            return bad(&format!("size {} is below 8", self.size));
        }
        let non_negative = [
            ("difficulty", self.difficulty),
            ("noise", self.noise),
            ("clutter", self.clutter),
            ("occluder_prob", self.occluder_prob),
            ("lighting", self.lighting),
            ("roll_deg", self.roll_deg),
            ("scale_jitter", self.scale_jitter),
            ("shift", self.shift),
            ("identity", self.identity),
        ];
        for (name, v) in non_negative {
            if !v.is_finite() || v < 0.0 {
                return bad(&format!("{name} = {v} must be finite and non-negative"));
            }
        }
        for (name, v) in [
            ("female_prob", self.female_prob),
            ("smile_prob", self.smile_prob),
            ("glasses_prob", self.glasses_prob),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(&format!("{name} = {v} is not in [0, 1]"));
            }
        }
        if self.difficulty > 10.0 {
            return bad(&format!("difficulty = {} is above 10", self.difficulty));
        }
        if !(self.scale > 0.0 && self.scale <= 0.5) {
            return bad(&format!("scale = {} is not in (0, 0.5]", self.scale));
        }
        if self.scale_jitter >= 1.0 {
            return bad(&format!(
                "scale_jitter = {} must be below 1",
                self.scale_jitter
            ));
        }
        if self.identity > 0.5 {
            return bad(&format!("identity = {} must be at most 0.5", self.identity));
        }
        if self.pose_probs.iter().any(|p| !p.is_finite() || *p < 0.0)
            || self.pose_probs.iter().sum::<f32>() <= 0.0
        {
            return bad(&format!(
                "pose_probs {:?} must be non-negative with a positive sum",
                self.pose_probs
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_caught() {
        assert!(SynthConfig::default().validate().is_ok());
        for cfg in [
            SynthConfig {
                size: 4,
                ..Default::default()
            },
            SynthConfig {
                noise: f32::NAN,
                ..Default::default()
            },
            SynthConfig {
                smile_prob: 1.5,
                ..Default::default()
            },
            SynthConfig {
                scale: 0.0,
                ..Default::default()
            },
            SynthConfig {
                pose_probs: [0.0; 5],
                ..Default::default()
            },
        ] {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
    }
}
