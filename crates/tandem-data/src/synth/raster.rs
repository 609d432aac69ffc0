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

    /// Quick classification of `p` for edge softness `soft`: `Some(true)` when the pixel is
    /// certainly fully covered (`d ≤ −soft/2`), `Some(false)` when certainly uncovered
    /// (`d ≥ soft/2`), `None` when the distance must be computed. For ellipses this uses
    /// `k0 = |(x/a, y/b)|`: a point at `k0` lies at least `|k0 − 1|·min(a, b)` from the
    /// outline, since `k0·E` contains `E` grown by a disc of that radius (and conversely).
    fn classify(&self, p: Pt, soft: f32) -> Option<bool> {
        let (c, a, b, cs, sn, jaw, band) = match *self {
            Shape::Ellipse {
                c,
                a,
                b,
                cs,
                sn,
                jaw,
            } => (c, a, b, cs, sn, jaw, None),
            Shape::Ring { c, a, b, cs, sn, t } => (c, a, b, cs, sn, 1.0, Some(t)),
            _ => return None,
        };
        let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
        let qx = cs * dx + sn * dy;
        let qy = -sn * dx + cs * dy;
        let a = if qy > 0.0 { a * jaw } else { a }.max(1e-3);
        let b = b.max(1e-3);
        let k2 = (qx / a) * (qx / a) + (qy / b) * (qy / b);
        let m = a.min(b);
        match band {
            None => {
                let inner = 1.0 - 0.5 * soft / m;
                let outer = 1.0 + 0.5 * soft / m;
                if inner > 0.0 && k2 <= inner * inner {
                    Some(true)
                } else if k2 >= outer * outer {
                    Some(false)
                } else {
                    None
                }
            }
            Some(t) => {
                let r = 0.5 * (t + soft) / m;
                let outer = 1.0 + r;
                let inner = 1.0 - r;
                if k2 >= outer * outer || (inner > 0.0 && k2 <= inner * inner) {
                    Some(false)
                } else {
                    None
                }
            }
        }
    }

    /// For an ellipse or ring and the pixel row whose centres have `y = py`: the offsets
    /// `dx` from the centre between which a pixel may be covered (`outer`), and between
    /// which it is certainly fully covered (ellipse) or certainly uncovered (the ring's hole)
    /// (`inner`, empty when `lo > hi`). Both come from the thresholds of
    /// [`Shape::classify`] taken conservatively over the two halves of a jawed ellipse,
    /// solving the quadratic `k0²(dx) = r²`. `None` for other shapes.
    fn spans(&self, py: f32, soft: f32) -> Option<([f32; 2], [f32; 2])> {
        let (c, a, b, cs, sn, jaw, band) = match *self {
            Shape::Ellipse {
                c,
                a,
                b,
                cs,
                sn,
                jaw,
            } => (c, a, b, cs, sn, jaw, 0.0),
            Shape::Ring { c, a, b, cs, sn, t } => (c, a, b, cs, sn, 1.0, t),
            _ => return None,
        };
        let b = b.max(1e-3);
        let a_big = a.max(a * jaw).max(1e-3);
        let a_small = a.min(a * jaw).max(1e-3);
        let m = a_small.min(b);
        let r = 0.5 * (band + soft) / m;
        let dy = py - c[1];
        let span = |a: f32, r: f32| -> [f32; 2] {
            if r <= 0.0 {
                return [1.0, -1.0];
            }
            let (ia, ib) = (1.0 / (a * a), 1.0 / (b * b));
            let al = cs * cs * ia + sn * sn * ib;
            let be = dy * cs * sn * (ia - ib);
            let ga = dy * dy * (sn * sn * ia + cs * cs * ib) - r * r;
            let disc = be * be - al * ga;
            if disc < 0.0 {
                [1.0, -1.0]
            } else {
                let sq = disc.sqrt();
                [(-be - sq) / al, (-be + sq) / al]
            }
        };
        Some((span(a_big, 1.0 + r), span(a_small, 1.0 - r)))
    }

    /// A bounding box `[x0, y0, x1, y1]` in pixels (conservative).
    pub(crate) fn bbox(&self) -> [f32; 4] {
        match *self {
            Shape::Ellipse {
                c, a, b, cs, sn, ..
            } => {
                let (rx, ry) = ellipse_extent(a, b, cs, sn);
                [c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry]
            }
            Shape::Ring {
                c, a, b, cs, sn, t, ..
            } => {
                let (rx, ry) = ellipse_extent(a, b, cs, sn);
                [c[0] - rx - t, c[1] - ry - t, c[0] + rx + t, c[1] + ry + t]
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

/// Half-extents along x and y of an ellipse with half-axes `a`, `b` rotated by (`cs`, `sn`):
/// `√(a²cos² + b²sin²)`, `√(a²sin² + b²cos²)`.
fn ellipse_extent(a: f32, b: f32, cs: f32, sn: f32) -> (f32, f32) {
    (
        (a * a * cs * cs + b * b * sn * sn).sqrt(),
        (a * a * sn * sn + b * b * cs * cs).sqrt(),
    )
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
        // Pixel columns whose centres `x + 0.5` have `dx = x + 0.5 − cx` in `[lo, hi]`.
        let cols = |cx: f32, s: [f32; 2]| -> (usize, usize) {
            if s[0] > s[1] {
                return (x0, x0);
            }
            let first = (cx + s[0] - 0.5).ceil();
            let last = (cx + s[1] - 0.5).floor() + 1.0;
            let lo = if first.is_nan() || first <= x0 as f32 {
                x0
            } else {
                (first as usize).min(x1)
            };
            let hi = if last.is_nan() || last <= lo as f32 {
                lo
            } else {
                (last as usize).min(x1)
            };
            (lo, hi)
        };
        let centre = match *shape {
            Shape::Ellipse { c, .. } | Shape::Ring { c, .. } => c[0],
            _ => 0.0,
        };
        let ring = matches!(shape, Shape::Ring { .. });
        for y in y0..y1 {
            let py = y as f32 + 0.5;
            let row = y * self.w;
            let (xa, xb, ia, ib) = match shape.spans(py, soft) {
                Some((outer, inner)) => {
                    let (xa, xb) = cols(centre, outer);
                    let (ia, ib) = cols(centre, inner);
                    (xa, xb, ia.max(xa), ib.min(xb).max(ia.max(xa)))
                }
                None => (x0, x1, x0, x0),
            };
            for x in (xa..ia).chain(ib..xb) {
                let pxc = x as f32 + 0.5;
                let cover = match shape.classify([pxc, py], soft) {
                    Some(true) => 1.0,
                    Some(false) => continue,
                    None => (0.5 - shape.sdf([pxc, py]) / soft).clamp(0.0, 1.0),
                };
                let alpha = cover * opacity;
                if alpha > 0.0 {
                    let v = &mut self.px[row + x];
                    let t = target(pxc, py, *v);
                    *v += alpha * (t - *v);
                }
            }
            if !ring {
                for x in ia..ib {
                    let v = &mut self.px[row + x];
                    let t = target(x as f32 + 0.5, py, *v);
                    *v += opacity * (t - *v);
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

    /// Reference rasterisation: per-pixel distance over the whole canvas, no shortcuts.
    fn brute(shape: &Shape, w: usize, soft: f32) -> Vec<f32> {
        let mut px = vec![0.0; w * w];
        for y in 0..w {
            for x in 0..w {
                let d = shape.sdf([x as f32 + 0.5, y as f32 + 0.5]);
                px[y * w + x] = (0.5 - d / soft).clamp(0.0, 1.0);
            }
        }
        px
    }

    #[test]
    fn spans_and_quick_tests_match_per_pixel_coverage() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for case in 0..300 {
            let angle = rng.random_range(0.0f32..3.2);
            let c = [
                rng.random_range(-5.0f32..45.0),
                rng.random_range(-5.0f32..45.0),
            ];
            let a = rng.random_range(0.3f32..25.0);
            // Aspect ratios up to 5, as the generator uses (the distance approximation
            // degrades for needle-thin ellipses).
            let b = a * rng.random_range(0.2f32..5.0);
            let soft = rng.random_range(1.0f32..3.0);
            let shape = if case % 2 == 0 {
                Shape::Ellipse {
                    c,
                    a,
                    b,
                    cs: angle.cos(),
                    sn: angle.sin(),
                    jaw: rng.random_range(0.6f32..1.0),
                }
            } else {
                Shape::Ring {
                    c,
                    a,
                    b,
                    cs: angle.cos(),
                    sn: angle.sin(),
                    t: rng.random_range(0.5f32..3.0).min(a.min(b)),
                }
            };
            let mut canvas = Canvas::new(40, 40, 0.0);
            canvas.draw(&shape, Ink::Over(1.0), 1.0, soft);
            let want = brute(&shape, 40, soft);
            for (k, (g, w)) in canvas.px.iter().zip(&want).enumerate() {
                // The shortcuts only decide pixels that are certainly in or out; the
                // approximate distance may disagree slightly near thin shapes.
                assert!(
                    (g - w).abs() < 0.35,
                    "case {case} pixel {k}: {g} vs {w}, {shape:?}"
                );
            }
            let total: f32 = canvas.px.iter().sum();
            let want_total: f32 = want.iter().sum();
            assert!(
                (total - want_total).abs() <= 0.02 * want_total + 2.0,
                "case {case}"
            );
        }
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
