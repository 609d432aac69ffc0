//! Crop policies and the resampling that turns an image region into a model input.
//!
//! A crop is a [`Frame`]: a rectangle of the source image with centre `(cx, cy)`, size
//! `width × height` (source pixels) and rotation `angle` (radians). Output pixel `(u, v)` of an
//! `S_w × S_h` output has normalised position `a = (u + ½) / S_w`, `b = (v + ½) / S_h` and
//! samples the source at
//!
//! ```text
//! (x, y) = (cx, cy) + R(angle) · ((a − ½) · width, (b − ½) · height)
//! ```
//!
//! with bilinear interpolation; points outside the image take the value of the nearest edge
//! pixel (edge replication). When the frame shrinks the image by a factor `f ≥ 2`, the image is
//! first averaged over `d × d` blocks, `d = ⌊f⌋` (a box prefilter, one pass over the image), and
//! the remaining factor `f / d < 2` is handled by averaging `2 × 2` bilinear samples spread over
//! each output pixel's footprint; together they stand in for an area filter and keep small
//! faces free of aliasing at a cost independent of the source size.
//!
//! Landmarks go through the inverse map: `(a, b) = R(−angle) · (p − c) / (width, height) + ½`,
//! so a point keeps its place on the face whatever the crop. Image coordinates are continuous:
//! the image covers `[0, W] × [0, H]` and pixel `i` covers `[i, i + 1)`; landmarks in a
//! [`crate::Sample`] are normalised by the image size (`x / W`, `y / H`).
//!
//! Policies ([`CropPolicy`]):
//! - `Whole`: the image as given (the frame is the whole image; a non-square image is stretched
//!   to the square output, and landmarks follow).
//! - `LandmarkBox { scale, jitter }`: a square centred on the landmark centroid (the mean of the
//!   five points), side `scale × max(x extent, y extent)` of the landmarks. The default scale
//!   2.85 makes a training face look like MTFL's tight 150×150 test crops (inter-ocular
//!   distance ≈ 0.30 of the width, centroid at the centre). In training, [`Jitter`] moves the
//!   centre by up to `±shift × side` per axis, scales the side by up to `±scale` and rotates by up
//!   to `±rotation_deg` degrees, all drawn uniformly from the sample's RNG.
//!
//! One crop function serves every split: a face box becomes a [`Frame`] and [`warp`] resamples
//! it. Training boxes are landmark boxes with [`Jitter`]; validation boxes are landmark boxes
//! moved by a fixed per-face [`BoxSpread`] draw (*test-like*: they stray from the landmarks as
//! face-detector crops do); test boxes are the whole image, as MTFL's test split defines them;
//! [`tandem`'s `Predictor`] takes a caller's box.
//!
//! [`tandem`'s `Predictor`]: https://docs.rs/tandem
use crate::GrayImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Random perturbation of a crop during training: uniform draws of a centre shift, a scale
/// factor and a rotation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Jitter {
    /// Largest shift of the centre, as a fraction of the crop side, per axis (default 0.10).
    pub shift: f32,
    /// Largest relative change of the side (default 0.25: side × [0.75, 1.25]).
    pub scale: f32,
    /// Largest rotation in degrees, either way (default 20).
    pub rotation_deg: f32,
}

impl Jitter {
    /// No jitter.
    pub const NONE: Jitter = Jitter {
        shift: 0.0,
        scale: 0.0,
        rotation_deg: 0.0,
    };

    /// Whether this jitter moves nothing.
    pub fn is_none(&self) -> bool {
        self.shift == 0.0 && self.scale == 0.0 && self.rotation_deg == 0.0
    }

    /// The half-extent of the largest jittered square, as a multiple of the unjittered side:
    /// `(1 + scale) / 2 · (|cos θ| + |sin θ|) + shift`. A cached region must be at least twice
    /// this (see [`super::cache`]).
    pub fn reach(&self) -> f32 {
        let t = self.rotation_deg.abs().min(45.0).to_radians();
        (1.0 + self.scale.abs()) / 2.0 * (t.cos() + t.sin()) + self.shift.abs()
    }
}

impl Default for Jitter {
    /// Shift ±0.10, scale ±25 %, rotation ±20°: wider than the spread of MTFL's test crops
    /// ([`BoxSpread::MTFL_TEST`]: 0.043, 9.6 %, 7° one standard deviation), so that a model
    /// trained on landmark boxes has seen every test-crop offset it will meet. With the old
    /// ±0.05 / ±10 % / ±10° the test-like validation NME was 8.7 % (40 epochs), with these
    /// 6.3 % (80 epochs; docs/experiments.md).
    fn default() -> Self {
        Self {
            shift: 0.10,
            scale: 0.25,
            rotation_deg: 20.0,
        }
    }
}

/// The spread of face boxes around the landmark box: how far the crops a face detector gives
/// (such as MTFL's test images, where the whole image is the face box) stray from the box the
/// landmarks define. Used for *test-like* evaluation crops of faces that have landmarks: the
/// landmark box, then a fixed draw per face of
///
/// ```text
/// dx, dy ~ N(0, shift_sd²) · side,   side ← side · exp(N(0, log_scale_sd²)),   angle ~ N(0, rotation_sd²)
/// ```
///
/// each truncated at `±clip` standard deviations.
///
/// [`BoxSpread::MTFL_TEST`] holds the geometry of MTFL's 2,995 test crops measured against
/// their own annotation (150 × 150 images): landmark centroid off the image centre by
/// 0.043 of the side (s.d., per axis), `ln(side / landmark extent)` 1.042 ± 0.096, and an
/// eye-line roll of 10.5° s.d. against 6.7–8.1° in the training folders (so 7° of extra
/// rotation). Only this geometry was read from the test annotation; no model is ever scored on
/// it to choose a setting.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoxSpread {
    /// Standard deviation of the centre shift per axis, as a fraction of the side.
    pub shift_sd: f32,
    /// Standard deviation of the natural log of the side's scale factor.
    pub log_scale_sd: f32,
    /// Standard deviation of the rotation in degrees.
    pub rotation_sd_deg: f32,
    /// Draws are truncated at this many standard deviations.
    pub clip: f32,
}

impl BoxSpread {
    /// No spread: the landmark box itself.
    pub const NONE: BoxSpread = BoxSpread {
        shift_sd: 0.0,
        log_scale_sd: 0.0,
        rotation_sd_deg: 0.0,
        clip: 2.5,
    };

    /// The spread of MTFL's test crops (see the type docs).
    pub const MTFL_TEST: BoxSpread = BoxSpread {
        shift_sd: 0.043,
        log_scale_sd: 0.096,
        rotation_sd_deg: 7.0,
        clip: 2.5,
    };

    /// Whether this spread moves nothing.
    pub fn is_none(&self) -> bool {
        self.shift_sd == 0.0 && self.log_scale_sd == 0.0 && self.rotation_sd_deg == 0.0
    }

    /// Whether every field is finite and non-negative (and `clip` positive).
    pub fn is_valid(&self) -> bool {
        [self.shift_sd, self.log_scale_sd, self.rotation_sd_deg]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
            && self.clip.is_finite()
            && self.clip > 0.0
    }

    /// The half-extent of the largest spread square, as a multiple of the unperturbed side (as
    /// [`Jitter::reach`]).
    pub fn reach(&self) -> f32 {
        let t = (self.clip * self.rotation_sd_deg)
            .abs()
            .min(45.0)
            .to_radians();
        (self.clip * self.log_scale_sd).exp() / 2.0 * (t.cos() + t.sin())
            + self.clip * self.shift_sd
    }

    /// `frame` perturbed by one draw from `rng`, in a fixed order: shift x, shift y, scale,
    /// rotation (four standard normal draws, each truncated at `±clip`).
    pub fn perturb(&self, frame: &Frame, rng: &mut ChaCha8Rng) -> Frame {
        let clip = self.clip;
        let mut z = || {
            let v: f32 = rng.sample(rand_distr::StandardNormal);
            v.clamp(-clip, clip)
        };
        let (zx, zy, zs, za) = (z(), z(), z(), z());
        let k = (zs * self.log_scale_sd).exp();
        Frame {
            cx: frame.cx + zx * self.shift_sd * frame.width,
            cy: frame.cy + zy * self.shift_sd * frame.height,
            width: frame.width * k,
            height: frame.height * k,
            angle: frame.angle + (za * self.rotation_sd_deg).to_radians(),
        }
    }
}

impl Default for BoxSpread {
    fn default() -> Self {
        Self::MTFL_TEST
    }
}

/// Which part of an image becomes the model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropPolicy {
    /// The image as given, resized to the model size.
    Whole,
    /// A square around the landmarks: centred on their centroid, side `scale ×` their larger
    /// extent; `jitter` applies in training only.
    LandmarkBox {
        /// Side of the square over the landmarks' larger extent (default 2.85).
        scale: f32,
        /// Random perturbation during training.
        jitter: Jitter,
    },
}

impl CropPolicy {
    /// The default training crop: `LandmarkBox { scale: 2.85, jitter: Jitter::default() }`.
    pub fn landmark_box() -> Self {
        CropPolicy::LandmarkBox {
            scale: DEFAULT_BOX_SCALE,
            jitter: Jitter::default(),
        }
    }

    /// The frame of this policy for an image of `width × height` with landmarks `points`
    /// (`[x1..xn, y1..yn]` in pixels), without jitter. `None` when the landmark box is empty
    /// (all points on one spot, or no points).
    pub fn frame(&self, width: usize, height: usize, points: Option<&[f32]>) -> Option<Frame> {
        match *self {
            CropPolicy::Whole => Some(Frame::whole(width, height)),
            CropPolicy::LandmarkBox { scale, .. } => {
                let (cx, cy, extent) = landmark_box(points?)?;
                let side = scale * extent;
                (side.is_finite() && side > 0.0).then_some(Frame {
                    cx,
                    cy,
                    width: side,
                    height: side,
                    angle: 0.0,
                })
            }
        }
    }

    /// The jitter of this policy (none for `Whole`).
    pub fn jitter(&self) -> Jitter {
        match *self {
            CropPolicy::Whole => Jitter::NONE,
            CropPolicy::LandmarkBox { jitter, .. } => jitter,
        }
    }
}

/// The default side of a landmark box over the landmarks' larger extent.
pub const DEFAULT_BOX_SCALE: f32 = 2.85;

/// The centroid `(cx, cy)` of `[x1..xn, y1..yn]` and the larger of the x- and y-extents; `None`
/// when there are no points or the extent is zero or not finite.
pub fn landmark_box(points: &[f32]) -> Option<(f32, f32, f32)> {
    let n = points.len() / 2;
    if n == 0 || !points.len().is_multiple_of(2) {
        return None;
    }
    let (xs, ys) = points.split_at(n);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / n as f32;
    let extent = |v: &[f32]| {
        let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        hi - lo
    };
    let e = extent(xs).max(extent(ys));
    (e.is_finite() && e > 0.0).then(|| (mean(xs), mean(ys), e))
}

/// A rotated rectangle of a source image (see the module docs for the mapping).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Centre x in source pixels.
    pub cx: f32,
    /// Centre y in source pixels.
    pub cy: f32,
    /// Width in source pixels.
    pub width: f32,
    /// Height in source pixels.
    pub height: f32,
    /// Rotation in radians (positive turns the frame's x axis towards the image's y axis).
    pub angle: f32,
}

impl Frame {
    /// The whole `width × height` image.
    pub fn whole(width: usize, height: usize) -> Self {
        Self {
            cx: width as f32 / 2.0,
            cy: height as f32 / 2.0,
            width: width as f32,
            height: height as f32,
            angle: 0.0,
        }
    }

    /// This frame with its size multiplied by `factor` (same centre and angle).
    pub fn scaled(&self, factor: f32) -> Self {
        Self {
            width: self.width * factor,
            height: self.height * factor,
            ..*self
        }
    }

    /// This frame perturbed by `jitter` with draws from `rng`, in a fixed order: shift x, shift y,
    /// scale, rotation. Draws nothing for a zero range.
    pub fn jittered(&self, jitter: &Jitter, rng: &mut ChaCha8Rng) -> Self {
        let mut u = |r: f32| {
            if r > 0.0 {
                rng.random_range(-r..=r)
            } else {
                0.0
            }
        };
        let dx = u(jitter.shift);
        let dy = u(jitter.shift);
        let ds = u(jitter.scale);
        let da = u(jitter.rotation_deg);
        Self {
            cx: self.cx + dx * self.width,
            cy: self.cy + dy * self.height,
            width: self.width * (1.0 + ds),
            height: self.height * (1.0 + ds),
            angle: self.angle + da.to_radians(),
        }
    }

    /// The source point (pixels) of normalised output position `(a, b)`.
    pub fn to_source(&self, a: f32, b: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let px = (a - 0.5) * self.width;
        let py = (b - 0.5) * self.height;
        (self.cx + c * px - s * py, self.cy + s * px + c * py)
    }

    /// The normalised output position `(a, b)` of source point `(x, y)` (pixels).
    pub fn to_output(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.cx, y - self.cy);
        let qx = c * dx + s * dy;
        let qy = -s * dx + c * dy;
        (qx / self.width + 0.5, qy / self.height + 0.5)
    }

    /// Maps `[x1..xn, y1..yn]` in source pixels to normalised output positions.
    pub fn map_points(&self, points: &[f32]) -> Vec<f32> {
        let n = points.len() / 2;
        let mut out = vec![0.0; 2 * n];
        for i in 0..n {
            let (a, b) = self.to_output(points[i], points[n + i]);
            out[i] = a;
            out[n + i] = b;
        }
        out
    }
}

/// Resamples `frame` of `src` into an `out_w × out_h` image (bilinear, edge replication,
/// box-prefiltered and supersampled when shrinking; see the module docs).
pub fn warp(src: &GrayImage, frame: &Frame, out_w: usize, out_h: usize) -> GrayImage {
    if out_w == 0 || out_h == 0 || src.width == 0 || src.height == 0 {
        return GrayImage::new(out_w, out_h);
    }
    let f = shrink_factor(frame, out_w, out_h);
    let d = if f.is_finite() {
        f.floor().max(1.0) as usize
    } else {
        1
    };
    let d = d.min(src.width).min(src.height).min(64);
    if d >= 2 {
        let small = box_downsample(src, d);
        let scale = 1.0 / d as f32;
        let frame = Frame {
            cx: frame.cx * scale,
            cy: frame.cy * scale,
            width: frame.width * scale,
            height: frame.height * scale,
            angle: frame.angle,
        };
        warp_bilinear(&small, &frame, out_w, out_h)
    } else {
        warp_bilinear(src, frame, out_w, out_h)
    }
}

fn shrink_factor(frame: &Frame, out_w: usize, out_h: usize) -> f32 {
    (frame.width / out_w as f32)
        .abs()
        .max((frame.height / out_h as f32).abs())
}

/// Averages `d × d` blocks (partial blocks at the right and bottom edges average the pixels
/// they have). Pixel `i` of the result covers source pixels `[i·d, (i + 1)·d)`, so a source
/// position `x` becomes `x / d`.
fn box_downsample(src: &GrayImage, d: usize) -> GrayImage {
    let w = src.width.div_ceil(d);
    let h = src.height.div_ceil(d);
    let mut sums = vec![0.0f32; w * h];
    let mut counts = vec![0u32; w * h];
    for y in 0..src.height {
        let row = &src.pixels[y * src.width..(y + 1) * src.width];
        let base = (y / d) * w;
        for (x, &p) in row.iter().enumerate() {
            sums[base + x / d] += p;
            counts[base + x / d] += 1;
        }
    }
    let pixels = sums
        .iter()
        .zip(&counts)
        .map(|(&s, &c)| s / c.max(1) as f32)
        .collect();
    GrayImage::gray(w, h, pixels)
}

/// Bilinear resampling with `⌈f⌉ × ⌈f⌉` supersampling for a shrink factor `f` (at most 8 × 8).
fn warp_bilinear(src: &GrayImage, frame: &Frame, out_w: usize, out_h: usize) -> GrayImage {
    let mut out = GrayImage::new(out_w, out_h);
    let f = shrink_factor(frame, out_w, out_h);
    let k = if f.is_finite() {
        f.ceil().clamp(1.0, 8.0) as usize
    } else {
        1
    };
    let inv = 1.0 / (k * k) as f32;
    let (s, c) = frame.angle.sin_cos();
    for v in 0..out_h {
        for u in 0..out_w {
            let mut acc = 0.0;
            for j in 0..k {
                let b = (v as f32 + (j as f32 + 0.5) / k as f32) / out_h as f32;
                let py = (b - 0.5) * frame.height;
                for i in 0..k {
                    let a = (u as f32 + (i as f32 + 0.5) / k as f32) / out_w as f32;
                    let px = (a - 0.5) * frame.width;
                    let x = frame.cx + c * px - s * py;
                    let y = frame.cy + s * px + c * py;
                    acc += bilinear(src, x, y);
                }
            }
            out.pixels[v * out_w + u] = acc * inv;
        }
    }
    out
}

/// The value at continuous position `(x, y)` (pixel `i` is centred on `i + ½`), replicating the
/// edge outside the image.
fn bilinear(src: &GrayImage, x: f32, y: f32) -> f32 {
    let max_x = (src.width - 1) as f32;
    let max_y = (src.height - 1) as f32;
    let fx = if x.is_finite() {
        (x - 0.5).clamp(0.0, max_x)
    } else {
        0.0
    };
    let fy = if y.is_finite() {
        (y - 0.5).clamp(0.0, max_y)
    } else {
        0.0
    };
    // Both are clamped to >= 0, where truncation is the floor.
    let x0 = fx as usize;
    let y0 = fy as usize;
    let x1 = (x0 + 1).min(src.width - 1);
    let y1 = (y0 + 1).min(src.height - 1);
    let tx = fx - x0 as f32;
    let ty = fy - y0 as f32;
    let row0 = y0 * src.width;
    let row1 = y1 * src.width;
    let p = &src.pixels;
    let top = p[row0 + x0] * (1.0 - tx) + p[row0 + x1] * tx;
    let bottom = p[row1 + x0] * (1.0 - tx) + p[row1 + x1] * tx;
    top * (1.0 - ty) + bottom * ty
}

#[cfg(test)]
mod tests {
    #[test]
    fn box_spread_draws_have_the_stated_spread() {
        use rand::SeedableRng;
        let spread = BoxSpread::MTFL_TEST;
        let frame = Frame {
            cx: 50.0,
            cy: 60.0,
            width: 100.0,
            height: 100.0,
            angle: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = 20_000;
        let (mut sx, mut sxx, mut ss, mut sss, mut sa) = (0.0f64, 0.0, 0.0, 0.0, 0.0f64);
        for _ in 0..n {
            let f = spread.perturb(&frame, &mut rng);
            let dx = f64::from((f.cx - frame.cx) / frame.width);
            let ls = f64::from((f.width / frame.width).ln());
            let a = f64::from(f.angle.to_degrees());
            assert!(dx.abs() <= f64::from(spread.clip * spread.shift_sd) + 1e-6);
            assert!((f.width - f.height).abs() < 1e-3);
            sx += dx;
            sxx += dx * dx;
            ss += ls;
            sss += ls * ls;
            sa += a * a;
        }
        let n = n as f64;
        let sd = |s: f64, ss: f64| (ss / n - (s / n).powi(2)).sqrt();
        // A normal truncated at 2.5 s.d. keeps 97 % of its s.d.
        let near = |got: f64, want: f32| (got / f64::from(want) - 0.97).abs() < 0.03;
        assert!(
            near(sd(sx, sxx), spread.shift_sd),
            "shift sd {}",
            sd(sx, sxx)
        );
        assert!(
            near(sd(ss, sss), spread.log_scale_sd),
            "scale sd {}",
            sd(ss, sss)
        );
        assert!(near((sa / n).sqrt(), spread.rotation_sd_deg), "rotation sd");
        assert!((sx / n).abs() < 0.002 && (ss / n).abs() < 0.003);
        // The cached region (twice the box) holds every draw.
        assert!(2.0 * spread.reach() <= 2.0);
        assert_eq!(BoxSpread::NONE.perturb(&frame, &mut rng), frame);
    }

    use super::*;
    use rand::SeedableRng;

    fn ramp(w: usize, h: usize) -> GrayImage {
        let mut g = GrayImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                g.pixels[y * w + x] = (x + 10 * y) as f32 / 100.0;
            }
        }
        g
    }

    #[test]
    fn whole_frame_at_same_size_is_the_identity() {
        let g = ramp(6, 4);
        let out = warp(&g, &Frame::whole(6, 4), 6, 4);
        for (a, b) in out.pixels.iter().zip(&g.pixels) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn points_round_trip_through_a_rotated_frame() {
        let f = Frame {
            cx: 30.0,
            cy: 40.0,
            width: 50.0,
            height: 50.0,
            angle: 0.3,
        };
        let (x, y) = f.to_source(0.2, 0.7);
        let (a, b) = f.to_output(x, y);
        assert!((a - 0.2).abs() < 1e-5 && (b - 0.7).abs() < 1e-5);
    }

    #[test]
    fn landmark_box_is_centroid_and_larger_extent() {
        let p = [0.0, 10.0, 5.0, 0.0, 10.0, 0.0, 0.0, 4.0, 20.0, 20.0];
        assert_eq!(landmark_box(&p), Some((5.0, 8.8, 20.0)));
        assert_eq!(landmark_box(&[1.0; 10]), None);
    }

    #[test]
    fn jitter_stays_in_range_and_reach_covers_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let base = Frame {
            cx: 0.0,
            cy: 0.0,
            width: 1.0,
            height: 1.0,
            angle: 0.0,
        };
        let j = Jitter::default();
        for _ in 0..200 {
            let f = base.jittered(&j, &mut rng);
            assert!(f.cx.abs() <= j.shift + 1e-6 && (f.width - 1.0).abs() <= j.scale + 1e-6);
            for (a, b) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
                let (x, y) = f.to_source(a, b);
                assert!(x.abs() <= j.reach() + 1e-5 && y.abs() <= j.reach() + 1e-5);
            }
        }
    }

    #[test]
    fn shrinking_averages_areas() {
        // A 2-pixel checkerboard shrunk 8x is flat gray; a ramp keeps its mean.
        let mut g = GrayImage::new(64, 64);
        for y in 0..64 {
            for x in 0..64 {
                g.pixels[y * 64 + x] = ((x / 2 + y / 2) % 2) as f32;
            }
        }
        let out = warp(&g, &Frame::whole(64, 64), 8, 8);
        assert!(
            out.pixels.iter().all(|p| (p - 0.5).abs() < 1e-5),
            "{:?}",
            out.pixels
        );
        let r = ramp(40, 40);
        let out = warp(&r, &Frame::whole(40, 40), 10, 10);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&out.pixels) - mean(&r.pixels)).abs() < 1e-4);
    }

    #[test]
    fn edge_replication_outside_the_image() {
        let g = ramp(4, 4);
        assert_eq!(bilinear(&g, -5.0, -5.0), g.get(0, 0));
        assert_eq!(bilinear(&g, 50.0, 50.0), g.get(3, 3));
    }
}
