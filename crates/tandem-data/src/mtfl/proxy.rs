//! The proxy evaluation set: validation faces made to look like MTFL's test split, from
//! training data only.
//!
//! Test-like crops ([`super::BoxSpread::MTFL_TEST`]) give validation faces the test split's
//! geometry, but the test faces (AFLW: Flickr photos, many photographers and cameras) also
//! differ in two ways a crop cannot show:
//!
//! - **Pose mix**: 39 % of test faces are non-frontal against about 20 % in `training.txt`
//!   (docs/data.md). [`pose_resample`] repeats the validation faces of the rarer group (by
//!   default the non-frontal ones, pose class ≠ 2) until they make the target share: each face
//!   of that group gets `⌊r⌋` copies and one more with probability `r − ⌊r⌋`, where
//!   `r = t·F / ((1 − t)·N)` for `F` frontal and `N` non-frontal faces and target share `t`
//!   (the draws come from a seeded RNG, one per face in order).
//! - **Image quality**: in-the-wild photos are more often blurred, underexposed, noisy and
//!   compressed. Every copy is degraded by a draw of [`Degrade`] fixed per face and copy
//!   ([`Degrade::IN_THE_WILD`] by default).
//!
//! Each copy also gets its own test-like crop: copy 0 is the crop of `val` itself, copy `c > 0`
//! draws its box with the evaluation seed mixed with `c`. So the set is the validation split,
//! test-like, re-weighted to the test's pose mix and degraded — deterministic, the same in
//! every epoch, run and order, and built from nothing but the training split.
use super::augment::FaceTransform;
use super::degrade::Degrade;
use crate::{Dataset, Result, Sample, Transform};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// The 0-based pose class of a frontal face (MTFL code 3).
pub const FRONTAL: u32 = 2;

/// Options of the proxy evaluation set (TOML: `[data.proxy]` of a run).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyOptions {
    /// Share of non-frontal faces the set is resampled to (default 0.39, MTFL's test split;
    /// 0 keeps the validation split's mix).
    pub nonfrontal: f64,
    /// Degradations, a fixed draw per face and copy (default [`Degrade::IN_THE_WILD`]).
    pub degrade: Degrade,
    /// Seed of the resampling and of the per-face draws (default 0).
    pub seed: u64,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            nonfrontal: 0.39,
            degrade: Degrade::IN_THE_WILD,
            seed: 0,
        }
    }
}

impl ProxyOptions {
    /// Whether the options are usable: `nonfrontal` in `[0, 1)`, the degradation valid.
    pub fn is_valid(&self) -> bool {
        self.nonfrontal.is_finite()
            && (0.0..1.0).contains(&self.nonfrontal)
            && self.degrade.is_valid()
    }
}

/// Resamples faces to a share `nonfrontal` of non-frontal poses (module docs): `faces` holds
/// `(index, pose class)` pairs; the result lists `(index, copy)` for every copy, faces in the
/// order given, copies `0..c` of a face together. Every face keeps at least its copy 0. A
/// target of 0, or a group without faces, keeps each face once.
pub fn pose_resample(faces: &[(usize, u32)], nonfrontal: f64, seed: u64) -> Vec<(usize, u32)> {
    let n = faces.iter().filter(|(_, p)| *p != FRONTAL).count() as f64;
    let f = faces.len() as f64 - n;
    let once = || faces.iter().map(|&(i, _)| (i, 0)).collect();
    if !(nonfrontal > 0.0 && nonfrontal < 1.0) || n == 0.0 || f == 0.0 {
        return once();
    }
    let r = nonfrontal * f / ((1.0 - nonfrontal) * n);
    // the group that is short of its share is repeated
    let (rate, repeat_nonfrontal) = if r >= 1.0 {
        (r, true)
    } else {
        (1.0 / r, false)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(tandem_tensor::hash_seed(seed, "proxy-resample"));
    let mut out = Vec::with_capacity((faces.len() as f64 * rate) as usize);
    for &(i, pose) in faces {
        let extra = rng.random::<f64>() < rate.fract();
        let repeated = (pose != FRONTAL) == repeat_nonfrontal;
        let copies = if repeated {
            rate.floor() as u32 + u32::from(extra)
        } else {
            1
        };
        out.extend((0..copies.max(1)).map(|c| (i, c)));
    }
    out
}

/// The proxy evaluation set over a data set of cached training faces (module docs): its
/// samples are final model inputs, so it is scored without a transform.
#[derive(Clone)]
pub struct Proxy {
    base: Arc<dyn Dataset>,
    items: Vec<(usize, u32)>,
    transform: FaceTransform,
    degrade: Degrade,
    seed: u64,
}

impl Proxy {
    /// The faces `items` (`(index into base, copy)`, e.g. from [`pose_resample`]) of `base`,
    /// cropped by `transform` in evaluation mode (its test-like spread; copy `c > 0` with the
    /// evaluation seed mixed with `c`) and degraded by `options.degrade`.
    pub fn new(
        base: Arc<dyn Dataset>,
        items: Vec<(usize, u32)>,
        transform: FaceTransform,
        options: &ProxyOptions,
    ) -> Self {
        Self {
            base,
            items,
            transform,
            degrade: options.degrade,
            seed: options.seed,
        }
    }

    /// `(index into the base data set, copy)` of every sample.
    pub fn items(&self) -> &[(usize, u32)] {
        &self.items
    }
}

impl Dataset for Proxy {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let Some(&(i, copy)) = self.items.get(index) else {
            return Err(crate::DataError::Invalid(format!(
                "index {index} out of range for a proxy set of {}",
                self.items.len()
            )));
        };
        let transform = FaceTransform {
            eval_seed: if copy == 0 {
                self.transform.eval_seed
            } else {
                tandem_tensor::hash_seed(self.transform.eval_seed, &format!("copy-{copy}"))
            },
            ..self.transform
        };
        let mut rng = ChaCha8Rng::seed_from_u64(tandem_tensor::hash_seed(
            self.seed,
            &format!("proxy-degrade-{i}-{copy}"),
        ));
        let mut sample = transform.apply(self.base.get(i)?, &mut rng, false)?;
        self.degrade.apply(&mut sample.image, &mut rng);
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(items: &[(usize, u32)], faces: &[(usize, u32)]) -> f64 {
        let nf = items
            .iter()
            .filter(|(i, _)| faces.iter().any(|(j, p)| j == i && *p != FRONTAL))
            .count();
        nf as f64 / items.len() as f64
    }

    #[test]
    fn resampling_reaches_the_target_share() {
        // 20 % non-frontal
        let faces: Vec<(usize, u32)> = (0..1000)
            .map(|i| (i, if i % 5 == 0 { (i % 4) as u32 } else { FRONTAL }))
            .map(|(i, p)| (i, if i % 5 == 0 && p == FRONTAL { 0 } else { p }))
            .collect();
        assert!(
            (share(
                &faces.iter().map(|&(i, _)| (i, 0)).collect::<Vec<_>>(),
                &faces
            ) - 0.2)
                .abs()
                < 1e-9
        );
        let items = pose_resample(&faces, 0.39, 1);
        let s = share(&items, &faces);
        assert!((s - 0.39).abs() < 0.02, "{s}");
        // every face is there, copies in order
        for &(i, _) in &faces {
            assert!(items.contains(&(i, 0)));
        }
        assert_eq!(items, pose_resample(&faces, 0.39, 1));
        // above the target: frontal faces are repeated instead
        let items = pose_resample(&faces, 0.1, 1);
        assert!((share(&items, &faces) - 0.1).abs() < 0.02);
        // off
        assert_eq!(pose_resample(&faces, 0.0, 1).len(), faces.len());
    }
}
