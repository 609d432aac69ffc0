//! A tiny anti-aliased rasteriser over a float buffer.
//!
//! Every shape is given by an (approximate) signed distance `d(p)` in pixels, negative
//! inside. A pixel whose centre is `p = (x + 0.5, y + 0.5)` is covered by
//! `α = clamp(0.5 − d(p) / soft, 0, 1)`: `soft = 1` is one-pixel anti-aliasing, larger values
//! give soft blobs. Painting blends `v ← v + α·o·(ink − v)` (over, opacity `o`) or
//! `v ← v·(1 − α·o·(1 − f))` (multiply by `f`). Each shape only visits the pixels of its
//! bounding box, so small features cost little.

/// A 2-D point in pixels.
pub(crate) type Pt = [f32; 2];

/// A shape with a signed distance in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// A filled ellipse centred at `c` with half-axes `a` (along the rotated x axis) and `b`,
    /// rotated by the angle whose cosine and sine are `cs`, `sn`. Below the centre (local
    /// `y > 0`) the half-width is `a · jaw`, which makes egg-shaped face outlines.
    Ellipse {
        /// Centre.
        c: Pt,
        /// Half-width above the centre.
        a: f32,
        /// Half-height.
        b: f32,
        /// Cosine of the rotation.
        cs: f32,
        /// Sine of the rotation.
        sn: f32,
        /// Half-width factor below the centre.
        jaw: f32,
    },
    /// The outline of an ellipse (as [`Shape::Ellipse`] with `jaw = 1`), `t` pixels thick.
    Ring {
        /// Centre.
        c: Pt,
        /// Half-width.
        a: f32,
        /// Half-height.
        b: f32,
        /// Cosine of the rotation.
        cs: f32,
        /// Sine of the rotation.
        sn: f32,
        /// Line thickness.
        t: f32,
    },
    /// A thick segment from `p0` to `p1` with radius `r`.
    Capsule {
        /// One end.
        p0: Pt,
        /// The other end.
        p1: Pt,
        /// Radius (half the thickness).
        r: f32,
    },
    /// The region between two parabolas spanning the segment `p0 → p1` (a mouth). With
    /// `t` the position along the segment from its midpoint, `h` its half-length,
    /// `f = 1 − (t/h)²` and `s` the offset along the normal (pointing to the image's
    /// "down" for an upright segment), the region is `top0 + top1·f ≤ s ≤ bot0 + bot1·f`,
    /// `|t| ≤ h`.
    Crescent {
        /// Left end.
        p0: Pt,
        /// Right end.
        p1: Pt,
        /// Upper boundary: offset at the ends.
        top0: f32,
        /// Upper boundary: extra offset at the middle.
        top1: f32,
        /// Lower boundary: offset at the ends.
        bot0: f32,
        /// Lower boundary: extra offset at the middle.
        bot1: f32,
    },
}

impl Shape {
    /// Signed distance (pixels, negative inside) at `p`.
    pub(crate) fn sdf(&self, p: Pt) -> f32 {
        match *self {
            Shape::Ellipse {
                c,
                a,
                b,
                cs,
                sn,
                jaw,
            } => {
                let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
                let qx = cs * dx + sn * dy;
                let qy = -sn * dx + cs * dy;
                let a = if qy > 0.0 { a * jaw } else { a };
                ellipse_sdf(qx, qy, a, b)
            }
            Shape::Ring { c, a, b, cs, sn, t } => {
                let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
                let qx = cs * dx + sn * dy;
                let qy = -sn * dx + cs * dy;
                ellipse_sdf(qx, qy, a, b).abs() - 0.5 * t
            }
            Shape::Capsule { p0, p1, r } => segment_distance(p, p0, p1) - r,
            Shape::Crescent {
                p0,
                p1,
                top0,
                top1,
                bot0,
                bot1,
            } => {
                let m = [0.5 * (p0[0] + p1[0]), 0.5 * (p0[1] + p1[1])];
                let (ex, ey) = (p1[0] - p0[0], p1[1] - p0[1]);
                let len = (ex * ex + ey * ey).sqrt().max(1e-3);
                let (ex, ey) = (ex / len, ey / len);
                let (nx, ny) = (-ey, ex);
                let (dx, dy) = (p[0] - m[0], p[1] - m[1]);
                let t = dx * ex + dy * ey;
                let s = dx * nx + dy * ny;
                let h = 0.5 * len;
                let f = (1.0 - (t / h) * (t / h)).max(0.0);
                let top = top0 + top1 * f;
                let bot = bot0 + bot1 * f;
                (top - s).max(s - bot).max(t.abs() - h)
            }
        }
    }

    /// A bounding box `[x0, y0, x1, y1]` in pixels (conservative).
    pub(crate) fn bbox(&self) -> [f32; 4] {
        match *self {
            Shape::Ellipse { c, a, b, .. } => {
                let r = a.max(b);
                [c[0] - r, c[1] - r, c[0] + r, c[1] + r]
            }
            Shape::Ring { c, a, b, t, .. } => {
                let r = a.max(b) + t;
                [c[0] - r, c[1] - r, c[0] + r, c[1] + r]
            }
            Shape::Capsule { p0, p1, r } => [
                p0[0].min(p1[0]) - r,
                p0[1].min(p1[1]) - r,
                p0[0].max(p1[0]) + r,
                p0[1].max(p1[1]) + r,
            ],
            Shape::Crescent {
                p0,
                p1,
                top0,
                top1,
                bot0,
                bot1,
            } => {
                let r = top0
                    .abs()
                    .max((top0 + top1).abs())
                    .max(bot0.abs())
                    .max((bot0 + bot1).abs());
                [
                    p0[0].min(p1[0]) - r,
                    p0[1].min(p1[1]) - r,
                    p0[0].max(p1[0]) + r,
                    p0[1].max(p1[1]) + r,
                ]
            }
        }
    }
}

/// Approximate signed distance to the ellipse `(x/a)² + (y/b)² = 1`:
/// `d ≈ k0 (k0 − 1) / k1` with `k0 = |(x/a, y/b)|`, `k1 = |(x/a², y/b²)|`.
fn ellipse_sdf(x: f32, y: f32, a: f32, b: f32) -> f32 {
    let a = a.max(1e-3);
    let b = b.max(1e-3);
    let k0 = ((x / a) * (x / a) + (y / b) * (y / b)).sqrt();
    let k1 = ((x / (a * a)) * (x / (a * a)) + (y / (b * b)) * (y / (b * b))).sqrt();
    if k1 < 1e-6 {
        -a.min(b)
    } else {
        k0 * (k0 - 1.0) / k1
    }
}

/// Distance from `p` to the segment `a → b`.
fn segment_distance(p: Pt, a: Pt, b: Pt) -> f32 {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let (apx, apy) = (p[0] - a[0], p[1] - a[1]);
    let l2 = abx * abx + aby * aby;
    let t = if l2 > 1e-12 {
        ((apx * abx + apy * aby) / l2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (apx - t * abx, apy - t * aby);
    (dx * dx + dy * dy).sqrt()
}

/// How a shape changes the pixels it covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ink {
    /// Blend towards this value.
    Over(f32),
    /// Multiply by this factor.
    Mul(f32),
}

/// A single-channel float image.
#[derive(Debug, Clone)]
pub(crate) struct Canvas {
    /// Width in pixels.
    pub(crate) w: usize,
    /// Height in pixels.
    pub(crate) h: usize,
    /// Row-major values.
    pub(crate) px: Vec<f32>,
}

impl Canvas {
    /// A canvas filled with `v`.
    pub(crate) fn new(w: usize, h: usize, v: f32) -> Self {
        Self {
            w,
            h,
            px: vec![v; w * h],
        }
    }

    /// The pixel index ranges covered by `bbox` (empty when outside).
    fn ranges(&self, bbox: [f32; 4], soft: f32) -> (usize, usize, usize, usize) {
        let pad = soft + 1.0;
        let clampi = |v: f32, hi: usize| -> usize {
            if v.is_nan() || v <= 0.0 {
                0
            } else {
                (v as usize).min(hi)
            }
        };
        let x0 = clampi((bbox[0] - pad).floor(), self.w);
        let y0 = clampi((bbox[1] - pad).floor(), self.h);
        let x1 = clampi((bbox[2] + pad).ceil() + 1.0, self.w);
        let y1 = clampi((bbox[3] + pad).ceil() + 1.0, self.h);
        (x0, x1, y0, y1)
    }

    /// Paints `shape` with `ink` at opacity `opacity` and edge softness `soft` pixels.
    pub(crate) fn draw(&mut self, shape: &Shape, ink: Ink, opacity: f32, soft: f32) {
        self.draw_with(shape, opacity, soft, |_, _, v| match ink {
            Ink::Over(o) => o,
            Ink::Mul(f) => v * f,
        });
    }

    /// Paints `shape`, blending each covered pixel towards `target(x, y, current)` (pixel
    /// centre coordinates).
    pub(crate) fn draw_with(
        &mut self,
        shape: &Shape,
        opacity: f32,
        soft: f32,
        target: impl Fn(f32, f32, f32) -> f32,
    ) {
        let soft = soft.max(1e-3);
        let (x0, x1, y0, y1) = self.ranges(shape.bbox(), soft);
        for y in y0..y1 {
            let py = y as f32 + 0.5;
            let row = y * self.w;
            for x in x0..x1 {
                let pxc = x as f32 + 0.5;
                let d = shape.sdf([pxc, py]);
                let alpha = (0.5 - d / soft).clamp(0.0, 1.0) * opacity;
                if alpha > 0.0 {
                    let v = &mut self.px[row + x];
                    let t = target(pxc, py, *v);
                    *v += alpha * (t - *v);
                }
            }
        }
    }

    /// Applies `f(x, y, v)` to every pixel (pixel centre coordinates).
    pub(crate) fn map(&mut self, f: impl Fn(f32, f32, f32) -> f32) {
        for y in 0..self.h {
            let py = y as f32 + 0.5;
            for x in 0..self.w {
                let v = &mut self.px[y * self.w + x];
                *v = f(x as f32 + 0.5, py, *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipse_distance_is_exact_on_axes() {
        let e = Shape::Ellipse {
            c: [10.0, 10.0],
            a: 4.0,
            b: 2.0,
            cs: 1.0,
            sn: 0.0,
            jaw: 1.0,
        };
        assert!((e.sdf([16.0, 10.0]) - 2.0).abs() < 1e-4);
        assert!((e.sdf([10.0, 13.0]) - 1.0).abs() < 1e-4);
        assert!(e.sdf([10.0, 10.0]) < 0.0);
    }

    #[test]
    fn coverage_is_area_like() {
        // A large disc covers about its area in pixels.
        let mut c = Canvas::new(40, 40, 0.0);
        let disc = Shape::Ellipse {
            c: [20.0, 20.0],
            a: 10.0,
            b: 10.0,
            cs: 1.0,
            sn: 0.0,
            jaw: 1.0,
        };
        c.draw(&disc, Ink::Over(1.0), 1.0, 1.0);
        let area: f32 = c.px.iter().sum();
        let exact = std::f32::consts::PI * 100.0;
        assert!((area - exact).abs() / exact < 0.02, "{area} vs {exact}");
    }

    #[test]
    fn capsule_and_crescent_cover_their_core() {
        let cap = Shape::Capsule {
            p0: [2.0, 2.0],
            p1: [8.0, 2.0],
            r: 1.0,
        };
        assert!(cap.sdf([5.0, 2.0]) < -0.9);
        assert!((cap.sdf([5.0, 5.0]) - 2.0).abs() < 1e-5);
        let cr = Shape::Crescent {
            p0: [0.0, 0.0],
            p1: [10.0, 0.0],
            top0: 0.0,
            top1: 1.0,
            bot0: 0.0,
            bot1: 3.0,
        };
        // Middle of the mouth, between the two curves (y grows downwards).
        assert!(cr.sdf([5.0, 2.0]) < 0.0);
        assert!(cr.sdf([5.0, -1.0]) > 0.0);
        assert!(cr.sdf([12.0, 0.0]) > 0.0);
    }
}
