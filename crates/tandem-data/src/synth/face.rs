//! The latent causes of one face ([`Attributes`], [`FaceParams`]) and its geometry.
//!
//! Geometry lives in a 3-D *face frame* measured in frontal inter-ocular distances (IOD):
//! `x` to the image's right, `y` down, `z` towards the camera, origin at the midpoint of the
//! eyes. Yaw `θ` turns the head about the vertical axis through `(0, ·, −R)`, `R = 1`, and a
//! point is projected orthographically:
//!
//! `u = x·cos θ + (z + R)·sin θ`, `v = y`.
//!
//! The face frame is then mapped to pixels by scale `s` (the frontal IOD in pixels), in-plane
//! rotation `ρ` (roll) and translation, so that the landmark centroid lands at `center`:
//!
//! `p = center + s·Rot(ρ)·((u, v) − ū)`, `ū` = mean of the five projected landmarks.
use super::config::SynthConfig;
use super::raster::Pt;
use crate::{DataError, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Radius of the yaw pivot behind the eyes, in IOD.
pub(crate) const HEAD_RADIUS: f32 = 1.0;
/// Cap of the effective relative scale jitter `scale_jitter · difficulty`.
pub(crate) const MAX_SCALE_JITTER: f32 = 0.75;
/// Depth of the eyes relative to the eye plane, in IOD.
pub(crate) const EYE_Z: f32 = -0.1;
/// Yaw range in degrees of each pose class (left profile, left, frontal, right, right
/// profile). Negative yaw turns the nose towards smaller image `x`. The gaps between the
/// ranges keep the classes unambiguous.
pub const POSE_YAW_DEG: [(f32, f32); 5] = [
    (-50.0, -36.0),
    (-32.0, -15.0),
    (-8.0, 8.0),
    (15.0, 32.0),
    (36.0, 50.0),
];

/// The four labelled attributes, as 0-based MTFL classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// 0 male, 1 female.
    pub gender: u32,
    /// 0 smiling, 1 not smiling.
    pub smile: u32,
    /// 0 wearing glasses, 1 not wearing glasses.
    pub glasses: u32,
    /// 0 left profile, 1 left, 2 frontal, 3 right, 4 right profile.
    pub pose: u32,
}

impl Attributes {
    /// A frontal, non-smiling man without glasses.
    pub const NEUTRAL: Attributes = Attributes {
        gender: 0,
        smile: 1,
        glasses: 1,
        pose: 2,
    };

    /// Whether the face is female.
    pub fn is_female(&self) -> bool {
        self.gender == 1
    }

    /// Whether the face smiles.
    pub fn is_smiling(&self) -> bool {
        self.smile == 0
    }

    /// Whether the face wears glasses.
    pub fn has_glasses(&self) -> bool {
        self.glasses == 0
    }

    /// Checks the class ranges (binary attributes in `{0, 1}`, pose in `0..5`).
    pub fn validate(&self) -> Result<()> {
        if self.gender > 1 || self.smile > 1 || self.glasses > 1 || self.pose > 4 {
            return Err(DataError::Invalid(format!(
                "attributes out of range: {self:?}"
            )));
        }
        Ok(())
    }

    /// Draws attributes from the priors of `cfg`, independently of each other.
    pub(crate) fn sample(cfg: &SynthConfig, rng: &mut ChaCha8Rng) -> Self {
        let gender = u32::from(rng.random::<f32>() < cfg.female_prob);
        let smile = u32::from(rng.random::<f32>() >= cfg.smile_prob);
        let glasses = u32::from(rng.random::<f32>() >= cfg.glasses_prob);
        let total: f32 = cfg.pose_probs.iter().sum();
        let mut u = rng.random::<f32>() * total;
        let mut pose = 4;
        for (k, p) in cfg.pose_probs.iter().enumerate() {
            if u < *p {
                pose = k as u32;
                break;
            }
            u -= p;
        }
        // Rounding can leave `u` just above the last weight: take the last positive class.
        if pose == 4 && cfg.pose_probs[4] <= 0.0 {
            pose = cfg.pose_probs.iter().rposition(|p| *p > 0.0).unwrap_or(2) as u32;
        }
        Self {
            gender,
            smile,
            glasses,
            pose,
        }
    }
}

/// Feature positions of one face in the face frame (IOD units), fixed by the attributes
/// and the identity draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Model {
    /// Nose tip height below the eyes.
    pub nose_y: f32,
    /// Nose tip protrusion.
    pub nose_z: f32,
    /// Mouth-corner height below the eyes.
    pub mouth_y: f32,
    /// Half the mouth width.
    pub mouth_half: f32,
    /// Mouth-corner depth.
    pub mouth_z: f32,
    /// Face outline half-width (upper half).
    pub face_a: f32,
    /// Face outline half-height.
    pub face_b: f32,
    /// Face outline centre height.
    pub face_cy: f32,
    /// Lower-half width factor of the outline.
    pub jaw: f32,
}

impl Model {
    /// The causal model: attributes set the means, `j` (each in `[−1, 1]`) times
    /// `identity` the per-face relative deviations.
    pub(crate) fn new(a: &Attributes, j: &[f32; 5], identity: f32) -> Self {
        let dev = |k: usize| 1.0 + identity * j[k];
        let female = a.is_female();
        let smiling = a.is_smiling();
        let mouth_y = if smiling { 1.00 } else { 1.10 } + if female { -0.03 } else { 0.04 };
        let mouth_half = if smiling { 0.47 } else { 0.40 };
        Self {
            nose_y: 0.60 * dev(0),
            nose_z: 0.50 * dev(1),
            mouth_y: mouth_y * dev(2),
            mouth_half: mouth_half * dev(3),
            mouth_z: if smiling { -0.26 } else { -0.22 },
            face_a: if female { 0.94 } else { 1.02 } * dev(4),
            face_b: if female { 1.40 } else { 1.48 },
            face_cy: if female { 0.36 } else { 0.40 },
            jaw: if female { 0.76 } else { 0.92 },
        }
    }

    /// The five landmarks in 3-D: left eye, right eye, nose tip, left and right mouth
    /// corner ("left" = smaller image `x` for a frontal face).
    pub(crate) fn landmarks3(&self) -> [[f32; 3]; 5] {
        [
            [-0.5, 0.0, EYE_Z],
            [0.5, 0.0, EYE_Z],
            [0.0, self.nose_y, self.nose_z],
            [-self.mouth_half, self.mouth_y, self.mouth_z],
            [self.mouth_half, self.mouth_y, self.mouth_z],
        ]
    }
}

/// The latent causes of one face and its landmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceParams {
    /// The labelled attributes.
    pub attributes: Attributes,
    /// Head yaw in radians (negative: turned towards smaller image `x`).
    pub yaw: f32,
    /// In-plane rotation in radians (positive: clockwise on screen, since `y` points down).
    pub roll: f32,
    /// Frontal inter-ocular distance in pixels (the face scale `s`).
    pub iod: f32,
    /// Landmark centroid in pixels.
    pub center: [f32; 2],
    /// Landmarks in pixels, `[x, y]` each: left eye, right eye, nose, left mouth corner,
    /// right mouth corner.
    pub landmarks: [[f32; 2]; 5],
    pub(crate) model: Model,
    /// Face-frame centroid `ū` of the projected landmarks.
    pub(crate) anchor: [f32; 2],
}

impl FaceParams {
    /// Draws the geometry of a face with attributes `attributes`. The draws from `rng` do not
    /// depend on the attributes, so the same `rng` state gives the same identity, scale,
    /// roll, position and relative place in the pose's yaw range for any attributes.
    pub(crate) fn sample(cfg: &SynthConfig, attributes: Attributes, rng: &mut ChaCha8Rng) -> Self {
        let d = cfg.difficulty;
        let size = cfg.size as f32;
        let yaw_u: f32 = rng.random();
        let mut j = [0.0f32; 5];
        for v in &mut j {
            *v = rng.random_range(-1.0f32..1.0);
        }
        let roll_n: f32 = rng.sample(StandardNormal);
        let scale_u = rng.random_range(-1.0f32..1.0);
        let shift_u = [
            rng.random_range(-1.0f32..1.0),
            rng.random_range(-1.0f32..1.0),
        ];

        let (lo, hi) = POSE_YAW_DEG[attributes.pose.min(4) as usize];
        let yaw = (lo + (hi - lo) * yaw_u).to_radians();
        let roll = (roll_n.clamp(-2.5, 2.5) * cfg.roll_deg * d)
            .clamp(-45.0, 45.0)
            .to_radians();
        let model = Model::new(&attributes, &j, cfg.identity);
        let face: Vec<[f32; 2]> = model
            .landmarks3()
            .iter()
            .map(|p| project(yaw, *p))
            .collect();
        let anchor = [
            face.iter().map(|p| p[0]).sum::<f32>() / 5.0,
            face.iter().map(|p| p[1]).sum::<f32>() / 5.0,
        ];
        let (cs, sn) = (roll.cos(), roll.sin());
        let offsets: Vec<[f32; 2]> = face
            .iter()
            .map(|p| rotate(cs, sn, [p[0] - anchor[0], p[1] - anchor[1]]))
            .collect();
        let (mut mn, mut mx) = ([f32::MAX; 2], [f32::MIN; 2]);
        for o in &offsets {
            for k in 0..2 {
                mn[k] = mn[k].min(o[k]);
                mx[k] = mx[k].max(o[k]);
            }
        }
        // Landmarks stay at least `margin` pixels inside the image: shrink the face if it
        // cannot fit, then keep the centre in the interval where every landmark fits.
        let margin = (0.05 * size).max(1.0);
        let room = size - 2.0 * margin;
        let jitter = (cfg.scale_jitter * d).min(MAX_SCALE_JITTER);
        let mut iod = size * cfg.scale * (1.0 + jitter * scale_u);
        for k in 0..2 {
            iod = iod.min(room / (mx[k] - mn[k]).max(1e-3));
        }
        let mut center = [0.0f32; 2];
        for k in 0..2 {
            let c = 0.5 * size + cfg.shift * d * size * shift_u[k];
            let lo = margin - iod * mn[k];
            let hi = size - margin - iod * mx[k];
            center[k] = c.min(hi).max(lo);
        }
        let mut landmarks = [[0.0f32; 2]; 5];
        for (l, o) in landmarks.iter_mut().zip(&offsets) {
            *l = [center[0] + iod * o[0], center[1] + iod * o[1]];
        }
        Self {
            attributes,
            yaw,
            roll,
            iod,
            center,
            landmarks,
            model,
            anchor,
        }
    }

    /// Maps a face-frame point `(u, v)` (after yaw) to pixels.
    pub(crate) fn to_image(&self, uv: [f32; 2]) -> Pt {
        let o = rotate(
            self.roll.cos(),
            self.roll.sin(),
            [uv[0] - self.anchor[0], uv[1] - self.anchor[1]],
        );
        [
            self.center[0] + self.iod * o[0],
            self.center[1] + self.iod * o[1],
        ]
    }

    /// Maps a pixel position back to the face frame (after yaw).
    #[cfg(test)]
    pub(crate) fn to_face(&self, p: Pt) -> [f32; 2] {
        let d = [
            (p[0] - self.center[0]) / self.iod,
            (p[1] - self.center[1]) / self.iod,
        ];
        let o = rotate(self.roll.cos(), -self.roll.sin(), d);
        [o[0] + self.anchor[0], o[1] + self.anchor[1]]
    }

    /// Projects a 3-D face-frame point under this face's yaw and maps it to pixels.
    pub(crate) fn project(&self, p: [f32; 3]) -> Pt {
        self.to_image(project(self.yaw, p))
    }

    /// The landmarks as a label: `[x1..x5, y1..y5]` divided by the image size.
    pub fn normalized_landmarks(&self, size: usize) -> Vec<f32> {
        let s = size as f32;
        let mut v: Vec<f32> = self.landmarks.iter().map(|p| p[0] / s).collect();
        v.extend(self.landmarks.iter().map(|p| p[1] / s));
        v
    }

    /// Inter-ocular distance of the landmarks in pixels (eye centre to eye centre, as NME
    /// normalises).
    pub fn landmark_iod(&self) -> f32 {
        let [l, r] = [self.landmarks[0], self.landmarks[1]];
        ((r[0] - l[0]).powi(2) + (r[1] - l[1]).powi(2)).sqrt()
    }
}

/// Orthographic projection after yaw `θ` about the axis through `(0, ·, −R)`.
pub(crate) fn project(yaw: f32, p: [f32; 3]) -> [f32; 2] {
    [p[0] * yaw.cos() + (p[2] + HEAD_RADIUS) * yaw.sin(), p[1]]
}

/// Rotates `v` by the angle with cosine `cs` and sine `sn`.
pub(crate) fn rotate(cs: f32, sn: f32, v: [f32; 2]) -> [f32; 2] {
    [cs * v[0] - sn * v[1], sn * v[0] + cs * v[1]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn frame_maps_round_trip_and_landmarks_project() {
        let cfg = SynthConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for pose in 0..5 {
            let a = Attributes {
                pose,
                ..Attributes::NEUTRAL
            };
            let f = FaceParams::sample(&cfg, a, &mut rng);
            for (k, p) in f.model.landmarks3().iter().enumerate() {
                let img = f.project(*p);
                assert!((img[0] - f.landmarks[k][0]).abs() < 1e-3);
                assert!((img[1] - f.landmarks[k][1]).abs() < 1e-3);
                let back = f.to_face(img);
                let uv = project(f.yaw, *p);
                assert!((back[0] - uv[0]).abs() < 1e-4 && (back[1] - uv[1]).abs() < 1e-4);
            }
        }
        assert_eq!(project(0.0, [0.3, 0.7, 0.5]), [0.3, 0.7]);
    }

    #[test]
    fn pose_prior_with_one_class_always_gives_it() {
        let cfg = SynthConfig {
            pose_probs: [0.0, 0.0, 0.0, 1.0, 0.0],
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..200 {
            assert_eq!(Attributes::sample(&cfg, &mut rng).pose, 3);
        }
    }
}
