//! Drawing predicted landmarks over an image.
//!
//! The image is enlarged by an integer factor `k` (nearest neighbour, so a small 40×40 face
//! stays readable) and each landmark `(x, y)` (continuous pixel coordinates of the original
//! image: pixel `i` covers `[i, i + 1)`) becomes a filled disc of its own colour centred at
//! `(k·x, k·y)` in the output. The picture stays gray, so every coloured pixel is a mark.
use image::{Rgb, RgbImage};
use tandem::data::GrayImage;

/// Colours of the five landmarks: left eye, right eye, nose, left and right mouth corner.
pub const COLORS: [[u8; 3]; 5] = [
    [255, 0, 0],
    [0, 200, 0],
    [0, 80, 255],
    [255, 200, 0],
    [255, 0, 255],
];

/// The enlargement factor that makes the longer side at least 320 pixels (at most 16).
pub fn scale_for(image: &GrayImage) -> u32 {
    let side = image.width.max(image.height).max(1) as u32;
    320u32.div_ceil(side).clamp(1, 16)
}

/// Radius of a mark, in output pixels, for enlargement `k`.
pub fn radius_for(k: u32, width: u32, height: u32) -> f32 {
    (width.max(height) as f32 / 120.0)
        .max(k as f32 * 0.6)
        .max(2.0)
}

/// `image` enlarged `k` times with `points` drawn as coloured discs.
pub fn draw(image: &GrayImage, points: &[(f32, f32)], k: u32) -> RgbImage {
    let (w, h) = (image.width as u32 * k, image.height as u32 * k);
    let mut out = RgbImage::from_fn(w, h, |x, y| {
        let v = image.get((x / k) as usize, (y / k) as usize);
        let g = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        Rgb([g, g, g])
    });
    let r = radius_for(k, w, h);
    for (i, &(px, py)) in points.iter().enumerate() {
        let color = Rgb(COLORS[i % COLORS.len()]);
        let (cx, cy) = (px * k as f32, py * k as f32);
        if !(cx.is_finite() && cy.is_finite()) {
            continue;
        }
        let x0 = (cx - r).floor().max(0.0) as u32;
        let y0 = (cy - r).floor().max(0.0) as u32;
        let x1 = ((cx + r).ceil().max(0.0) as u32).min(w);
        let y1 = ((cy + r).ceil().max(0.0) as u32).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                // Distance from the output pixel's centre.
                let dx = x as f32 + 0.5 - cx;
                let dy = y as f32 + 0.5 - cy;
                if dx * dx + dy * dy <= r * r {
                    out.put_pixel(x, y, color);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem::data::{Dataset, Label, SynthConfig, SynthFaces};

    /// Centroid (in output pixels) of the pixels of each mark colour.
    pub fn mark_centroids(img: &RgbImage) -> Vec<Option<(f32, f32)>> {
        COLORS
            .iter()
            .map(|c| {
                let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0.0f64);
                for (x, y, p) in img.enumerate_pixels() {
                    if p.0 == *c {
                        sx += f64::from(x) + 0.5;
                        sy += f64::from(y) + 0.5;
                        n += 1.0;
                    }
                }
                (n > 0.0).then(|| ((sx / n) as f32, (sy / n) as f32))
            })
            .collect()
    }

    #[test]
    fn marks_sit_on_the_synthfaces_landmarks() {
        let faces = SynthFaces::new(
            SynthConfig {
                len: 3,
                ..Default::default()
            },
            11,
        );
        for i in 0..3 {
            let s = faces.get(i).unwrap();
            let Label::Points(p) = &s.labels["landmarks"] else {
                panic!("no landmarks")
            };
            let (w, h) = (s.image.width as f32, s.image.height as f32);
            let points: Vec<(f32, f32)> = (0..5).map(|j| (p[j] * w, p[5 + j] * h)).collect();
            let k = scale_for(&s.image);
            assert_eq!(k, 8);
            let img = draw(&s.image, &points, k);
            assert_eq!(img.dimensions(), (320, 320));
            // Every coloured pixel is a mark, and each mark is centred on its landmark.
            for (j, c) in mark_centroids(&img).into_iter().enumerate() {
                let (cx, cy) = c.unwrap();
                let (ex, ey) = (points[j].0 * k as f32, points[j].1 * k as f32);
                assert!(
                    (cx - ex).abs() < 1.0 && (cy - ey).abs() < 1.0,
                    "face {i} mark {j} at ({cx}, {cy}), landmark at ({ex}, {ey})"
                );
                let px = img.get_pixel(ex as u32, ey as u32);
                assert_eq!(px.0, COLORS[j], "face {i} mark {j}");
            }
        }
    }
}
