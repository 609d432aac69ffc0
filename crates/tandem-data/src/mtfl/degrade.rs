//! Photometric degradations of in-the-wild photos: blur, low light, sensor noise and JPEG
//! compression, applied to a model input (`S × S`, values in `[0, 1]`).
//!
//! Faces photographed in the wild (MTFL's AFLW test faces come from Flickr, taken by many
//! photographers and cameras) are more often out of focus, underexposed, noisy and
//! compressed than the celebrity and web photos of the training folders. [`Degrade`] draws
//! each degradation independently with probability `p`, in this order (the order a camera
//! and an uploader apply them):
//!
//! 1. **Blur**: a Gaussian of `σ ~ U[0, blur_sigma]` pixels of the model input, separable,
//!    kernel radius `⌈3σ⌉`, edge pixels replicated.
//! 2. **Low light**: `v ← v^γ · k` with `γ ~ U[1, gamma]` (shadows crushed) and exposure
//!    `k ~ U[1/gamma, 1]`.
//! 3. **Noise**: `v ← v + N(0, s²)` with `s ~ U[0, noise_sd]`, clamped to `[0, 1]`.
//! 4. **JPEG**: quantised to 8 bits, encoded at quality `q ~ U{jpeg_quality, …, 95}` and
//!    decoded (the `image` crate's baseline encoder and decoder).
//!
//! Every draw comes from the caller's seeded RNG, so a degradation is reproducible: training
//! draws it from the batch RNG, the proxy evaluation set ([`super::proxy`]) from a seed fixed
//! per face. [`Degrade::OFF`] (the default of the training augmentation) changes nothing and
//! draws nothing.
use crate::GrayImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Ranges of the photometric degradations (TOML: `[data.augment.degrade]` for training).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Degrade {
    /// Probability of each degradation (default 0: off).
    pub p: f32,
    /// Largest Gaussian blur σ in pixels of the model input (default 1.0).
    pub blur_sigma: f32,
    /// Largest gamma of the low-light curve (default 2.0; 1 turns it off).
    pub gamma: f32,
    /// Largest standard deviation of the added noise (default 0.03, on the `[0, 1]` scale).
    pub noise_sd: f32,
    /// Lowest JPEG quality (default 40; 95 or more turns it off).
    pub jpeg_quality: u8,
}

impl Degrade {
    /// Nothing degraded.
    pub const OFF: Degrade = Degrade {
        p: 0.0,
        blur_sigma: 1.0,
        gamma: 2.0,
        noise_sd: 0.03,
        jpeg_quality: 40,
    };

    /// The degradation of the proxy evaluation set: each of the four with probability ½ and
    /// the default ranges.
    pub const IN_THE_WILD: Degrade = Degrade {
        p: 0.5,
        ..Degrade::OFF
    };

    /// Whether nothing is ever degraded (`p = 0`).
    pub fn is_off(&self) -> bool {
        self.p <= 0.0
    }

    /// Whether the ranges are usable: `p` in `[0, 1]`, `blur_sigma` in `[0, 5]`, `gamma` in
    /// `[1, 5]`, `noise_sd` in `[0, 0.5]`, `jpeg_quality` in `1..=100`.
    pub fn is_valid(&self) -> bool {
        let finite = [self.p, self.blur_sigma, self.gamma, self.noise_sd]
            .iter()
            .all(|v| v.is_finite());
        finite
            && (0.0..=1.0).contains(&self.p)
            && (0.0..=5.0).contains(&self.blur_sigma)
            && (1.0..=5.0).contains(&self.gamma)
            && (0.0..=0.5).contains(&self.noise_sd)
            && (1..=100).contains(&self.jpeg_quality)
    }

    /// Degrades `image` in place with draws from `rng` (module docs). Draws nothing when off.
    pub fn apply(&self, image: &mut GrayImage, rng: &mut ChaCha8Rng) {
        if self.is_off() || image.pixels.is_empty() {
            return;
        }
        let p = f64::from(self.p.min(1.0));
        // Every draw is made whether or not it is used, so one degradation's outcome does not
        // shift the others' random streams.
        let (blur_on, sigma) = (rng.random_bool(p), rng.random::<f32>() * self.blur_sigma);
        let (dark_on, g, k) = (rng.random_bool(p), rng.random::<f32>(), rng.random::<f32>());
        let (noise_on, s, noise_seed) = (
            rng.random_bool(p),
            rng.random::<f32>() * self.noise_sd,
            rng.random::<u64>(),
        );
        let (jpeg_on, q) = (rng.random_bool(p), rng.random::<f32>());
        if blur_on && sigma > 0.05 {
            gaussian_blur(image, sigma);
        }
        if dark_on && self.gamma > 1.0 {
            let gamma = 1.0 + g * (self.gamma - 1.0);
            let lo = 1.0 / self.gamma;
            let exposure = lo + k * (1.0 - lo);
            for v in &mut image.pixels {
                *v = v.clamp(0.0, 1.0).powf(gamma) * exposure;
            }
        }
        if noise_on && s > 0.0 {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Normal};
            let mut nrng = ChaCha8Rng::seed_from_u64(noise_seed);
            if let Ok(normal) = Normal::new(0.0f32, s) {
                for v in &mut image.pixels {
                    *v = (*v + normal.sample(&mut nrng)).clamp(0.0, 1.0);
                }
            }
        }
        if jpeg_on && self.jpeg_quality < 95 {
            let lo = f32::from(self.jpeg_quality);
            let quality = (lo + q * (95.0 - lo)).floor().clamp(1.0, 95.0) as u8;
            jpeg_roundtrip(image, quality);
        }
    }
}

impl Default for Degrade {
    fn default() -> Self {
        Self::OFF
    }
}

/// Blurs `image` with a separable Gaussian of standard deviation `sigma` pixels (radius
/// `⌈3σ⌉`, weights normalised to sum 1, edge pixels replicated).
pub fn gaussian_blur(image: &mut GrayImage, sigma: f32) {
    let (w, h) = (image.width, image.height);
    if sigma <= 0.0 || w == 0 || h == 0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    for k in &mut kernel {
        *k /= total;
    }
    let clampi = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let src = image.pixels.clone();
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, k) in kernel.iter().enumerate() {
                acc += k * src[y * w + clampi(x as isize + j as isize - r, w)];
            }
            tmp[y * w + x] = acc;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (j, k) in kernel.iter().enumerate() {
                acc += k * tmp[clampi(y as isize + j as isize - r, h) * w + x];
            }
            image.pixels[y * w + x] = acc;
        }
    }
}

/// Encodes `image` as an 8-bit grey JPEG of `quality` and decodes it back in place. On the
/// (unexpected) failure of the codec the image is left as it is.
pub fn jpeg_roundtrip(image: &mut GrayImage, quality: u8) {
    let (w, h) = (image.width, image.height);
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut buf = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    let (Ok(wu), Ok(hu)) = (u32::try_from(w), u32::try_from(h)) else {
        return;
    };
    if image::ImageEncoder::write_image(encoder, &bytes, wu, hu, image::ExtendedColorType::L8)
        .is_err()
    {
        return;
    }
    let Ok(decoded) = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) else {
        return;
    };
    let luma = decoded.to_luma8();
    if luma.width() == wu && luma.height() == hu {
        for (v, p) in image.pixels.iter_mut().zip(luma.as_raw()) {
            *v = f32::from(*p) / 255.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp() -> GrayImage {
        let mut image = GrayImage::new(24, 24);
        for (i, p) in image.pixels.iter_mut().enumerate() {
            *p = ((i % 24) as f32 / 23.0 + if (i / 24) % 4 == 0 { 0.2 } else { 0.0 }).min(1.0);
        }
        image
    }

    #[test]
    fn off_changes_nothing_and_draws_nothing() {
        let mut a = ramp();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        Degrade::OFF.apply(&mut a, &mut rng);
        assert_eq!(a, ramp());
        assert_eq!(
            rng.random::<u64>(),
            ChaCha8Rng::seed_from_u64(1).random::<u64>()
        );
    }

    #[test]
    fn blur_keeps_the_mean_of_a_constant_and_smooths_an_edge() {
        let mut flat = GrayImage::new(9, 9);
        flat.pixels.iter_mut().for_each(|p| *p = 0.4);
        gaussian_blur(&mut flat, 1.2);
        assert!(flat.pixels.iter().all(|p| (p - 0.4).abs() < 1e-6));
        let mut edge = GrayImage::new(10, 1);
        for (i, p) in edge.pixels.iter_mut().enumerate() {
            *p = if i < 5 { 0.0 } else { 1.0 };
        }
        gaussian_blur(&mut edge, 1.0);
        assert!(
            edge.pixels[4] > 0.2 && edge.pixels[4] < 0.5,
            "{:?}",
            edge.pixels
        );
        assert!(
            edge.pixels[5] > 0.5 && edge.pixels[5] < 0.8,
            "{:?}",
            edge.pixels
        );
        assert!((edge.pixels[4] + edge.pixels[5] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn degradations_are_seeded_and_stay_in_range() {
        let d = Degrade {
            p: 1.0,
            ..Degrade::IN_THE_WILD
        };
        let run = |seed| {
            let mut image = ramp();
            d.apply(&mut image, &mut ChaCha8Rng::seed_from_u64(seed));
            image
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert_ne!(run(3), ramp());
        assert!(run(5).pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn jpeg_roundtrip_is_close_at_high_quality() {
        let mut image = ramp();
        jpeg_roundtrip(&mut image, 95);
        let err = image
            .pixels
            .iter()
            .zip(&ramp().pixels)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err > 0.0 && err < 0.1, "{err}");
    }

    #[test]
    fn low_light_darkens() {
        let d = Degrade {
            p: 1.0,
            blur_sigma: 0.0,
            noise_sd: 0.0,
            jpeg_quality: 100,
            gamma: 3.0,
        };
        let mut image = ramp();
        d.apply(&mut image, &mut ChaCha8Rng::seed_from_u64(9));
        let mean = |i: &GrayImage| i.pixels.iter().sum::<f32>() / i.pixels.len() as f32;
        assert!(mean(&image) < mean(&ramp()));
    }
}
