//! Drawing one face from its [`FaceParams`]: background and clutter, hair, neck, face,
//! features, glasses, occluder, lighting, noise (in that order, back to front).
use super::config::SynthConfig;
use super::face::{project, FaceParams, EYE_Z};
use super::raster::{Canvas, Ink, Pt, Shape};
use crate::GrayImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::f32::consts::PI;

/// Cheek roundness: how far the turned-side outline bulges past `A·cos θ`, in IOD.
const CHEEK: f32 = 0.6;

/// Cap of the number of clutter shapes.
const MAX_CLUTTER: f32 = 64.0;

/// Per-face tones and styles (the appearance stream). Drawn in a fixed order, whatever the
/// attributes, so changing an attribute leaves the other draws alone.
struct Look {
    skin: f32,
    hair: f32,
    iris: f32,
    lip: f32,
    eye_open: f32,
    closed_smile: bool,
    frame: f32,
    lens: f32,
    cloth: f32,
    mouth_curve: f32,
    brow_lift: f32,
}

impl Look {
    fn sample(rng: &mut ChaCha8Rng) -> Self {
        let skin = rng.random_range(0.45f32..0.80);
        let dark_hair = rng.random_range(0.04f32..0.28);
        let light_hair = rng.random_range(0.62f32..0.85);
        let light = rng.random::<f32>() < 0.2 && skin < 0.6;
        let iris = rng.random_range(0.03f32..0.20);
        let lip = skin * rng.random_range(0.55f32..0.80);
        let eye_open = rng.random_range(0.8f32..1.15);
        let closed_smile = rng.random::<f32>() < 0.3;
        let frame = rng.random_range(0.02f32..0.30);
        let clear = rng.random_range(0.70f32..0.92);
        let sun = rng.random_range(0.15f32..0.40);
        let sunglasses = rng.random::<f32>() < 0.2;
        let cloth = rng.random_range(0.1f32..0.9);
        let mouth_curve = rng.random_range(-0.04f32..0.03);
        let brow_lift = rng.random_range(-0.05f32..0.05);
        Self {
            skin,
            hair: if light { light_hair } else { dark_hair },
            iris,
            lip,
            eye_open,
            closed_smile,
            frame,
            lens: if sunglasses { sun } else { clear },
            cloth,
            mouth_curve,
            brow_lift,
        }
    }
}

/// Scene-level nuisances (the scene stream): background, lighting, occluder, clutter.
struct Scene {
    bg: f32,
    texture: [f32; 4],
    gain: f32,
    offset: f32,
    gradient: f32,
    gradient_angle: f32,
    occluder: Option<Occluder>,
}

struct Occluder {
    bar: bool,
    at: [f32; 2],
    angle: f32,
    length: f32,
    radius: f32,
    half: [f32; 2],
    value: f32,
    opacity: f32,
}

impl Scene {
    fn sample(cfg: &SynthConfig, rng: &mut ChaCha8Rng) -> Self {
        let d = cfg.difficulty;
        let clutter = cfg.clutter * d;
        let light = (cfg.lighting * d).min(2.0);
        let bg = rng.random_range(0.1f32..0.9);
        let texture = [
            0.12 * clutter * rng.random::<f32>(),
            rng.random_range(1.0f32..6.0),
            rng.random_range(0.0f32..PI),
            rng.random_range(0.0f32..2.0 * PI),
        ];
        let gain = 1.0 + light * rng.random_range(-0.25f32..0.15);
        let offset = 0.1 * light * rng.random_range(-1.0f32..1.0);
        let gradient = 0.5 * light * rng.random::<f32>();
        let gradient_angle = rng.random_range(0.0f32..2.0 * PI);
        let occluded = rng.random::<f32>() < (cfg.occluder_prob * d).min(1.0);
        let occluder = Occluder {
            bar: rng.random::<f32>() < 0.6,
            at: [
                0.9 * rng.random_range(-1.0f32..1.0),
                1.1 * rng.random_range(-1.0f32..1.0),
            ],
            angle: rng.random_range(0.0f32..PI),
            length: rng.random_range(0.8f32..2.5),
            radius: rng.random_range(0.10f32..0.30),
            half: [rng.random_range(0.3f32..0.7), rng.random_range(0.2f32..0.5)],
            value: rng.random(),
            opacity: rng.random_range(0.7f32..1.0),
        };
        Self {
            bg,
            texture,
            gain,
            offset,
            gradient,
            gradient_angle,
            occluder: occluded.then_some(occluder),
        }
    }
}

/// An ellipse in pixels from a face-frame centre and half-axes in IOD.
fn face_ellipse(f: &FaceParams, c: [f32; 2], a: f32, b: f32, jaw: f32) -> Shape {
    Shape::Ellipse {
        c: f.to_image(c),
        a: a * f.iod,
        b: b * f.iod,
        cs: f.roll.cos(),
        sn: f.roll.sin(),
        jaw,
    }
}

/// An ellipse in pixels centred at pixel `c` with half-axes in IOD, aligned with the face.
fn pixel_ellipse(f: &FaceParams, c: Pt, a: f32, b: f32) -> Shape {
    Shape::Ellipse {
        c,
        a: a * f.iod,
        b: b * f.iod,
        cs: f.roll.cos(),
        sn: f.roll.sin(),
        jaw: 1.0,
    }
}

/// Renders the face `f`. `look` and `scene` drive appearance and nuisances, `noise` the
/// pixel noise; each is an independent stream.
pub(crate) fn render(
    cfg: &SynthConfig,
    f: &FaceParams,
    look: &mut ChaCha8Rng,
    scene_rng: &mut ChaCha8Rng,
    noise: &mut ChaCha8Rng,
) -> GrayImage {
    let size = cfg.size;
    let n = size as f32;
    let lk = Look::sample(look);
    let scene = Scene::sample(cfg, scene_rng);
    let mut c = Canvas::new(size, size, scene.bg);

    // Background texture and clutter.
    let [amp, freq, ang, phase] = scene.texture;
    if amp > 0.0 {
        // sin(αx + βy + φ) = sin(αx)·cos(βy + φ) + cos(αx)·sin(βy + φ), tabulated per
        // column and per row.
        let (ca, sa) = (
            2.0 * PI * freq * ang.cos() / n,
            2.0 * PI * freq * ang.sin() / n,
        );
        let cols: Vec<(f32, f32)> = (0..size)
            .map(|x| (ca * (x as f32 + 0.5)).sin_cos())
            .collect();
        let rows: Vec<(f32, f32)> = (0..size)
            .map(|y| (sa * (y as f32 + 0.5) + phase).sin_cos())
            .collect();
        for (y, row) in c.px.chunks_mut(size).enumerate() {
            let (ry, cy) = rows[y];
            for (v, (cx_s, cx_c)) in row.iter_mut().zip(&cols) {
                *v += amp * (cx_s * cy + cx_c * ry);
            }
        }
    }
    draw_clutter(cfg, &mut c, scene_rng, f.iod);

    let a = f.attributes;
    let m = f.model;
    let (sy, cy) = (f.yaw.sin(), f.yaw.cos());
    let cfac = cy.max(0.3);
    let soft = 1.0;

    // Face outline in the face frame: `A cos θ` on each side, bulging by `CHEEK·|sin θ|`
    // on the turned side, then widened until it contains the features.
    let (uc, hw) = outline(f, sy, cy);

    // Shoulders, hair behind the head (long for women), neck.
    let shoulders = face_ellipse(f, [0.0, 3.7], 2.4, 1.3, 1.0);
    c.draw(&shoulders, Ink::Over(lk.cloth), 1.0, soft);
    if a.is_female() {
        let long = face_ellipse(f, [0.0, 0.9], 1.38, 1.95, 0.9);
        c.draw(&long, Ink::Over(lk.hair), 1.0, soft);
    }
    let cap = if a.is_female() {
        face_ellipse(f, [0.0, 0.05], 1.13, 1.45, 1.0)
    } else {
        face_ellipse(f, [0.0, -0.25], 1.08, 1.2, 1.0)
    };
    c.draw(&cap, Ink::Over(lk.hair), 1.0, soft);
    let neck = Shape::Capsule {
        p0: f.to_image([0.0, 1.3]),
        p1: f.to_image([0.0, 3.0]),
        r: if a.is_female() { 0.48 } else { 0.56 } * f.iod,
    };
    c.draw(&neck, Ink::Over(lk.skin * 0.8), 1.0, soft);

    // Face skin, darker towards the turned side.
    let skin_shape = face_ellipse(f, [uc, m.face_cy], hw, m.face_b, m.jaw);
    let side = sy.signum();
    let shade = 0.45 * sy.abs();
    let skin = lk.skin;
    let (rc, rs) = (f.roll.cos(), f.roll.sin());
    c.draw_with(&skin_shape, 1.0, soft, |x, y, _| {
        // Face-frame u of the pixel (the inverse of `FaceParams::to_image`).
        let u = f.anchor[0] + (rc * (x - f.center[0]) + rs * (y - f.center[1])) / f.iod;
        let t = (side * (u - uc) / hw).max(0.0);
        skin * (1.0 - shade * t * t)
    });
    // Hairline.
    let fringe = face_ellipse(
        f,
        [uc, m.face_cy - m.face_b - 0.07],
        hw * 1.02,
        if a.is_female() { 0.48 } else { 0.42 },
        1.0,
    );
    c.draw(&fringe, Ink::Over(lk.hair), 1.0, soft);

    // Eyes: socket shadow, sclera, iris (the landmark is the iris centre).
    let squint = if a.is_smiling() { 0.8 } else { 1.0 };
    for k in 0..2 {
        let e = f.landmarks[k];
        let socket = pixel_ellipse(f, e, 0.30 * cfac, 0.20);
        c.draw(&socket, Ink::Mul(0.82), 1.0, (0.12 * f.iod).max(1.0));
        let sclera = pixel_ellipse(f, e, 0.2 * cfac, 0.085 * lk.eye_open * squint);
        c.draw(&sclera, Ink::Over((skin + 0.18).min(1.0)), 1.0, soft);
        let iris = pixel_ellipse(f, e, 0.085 * cfac, 0.085 * squint.max(0.9));
        c.draw(&iris, Ink::Over(lk.iris), 1.0, soft);
    }
    // Eyebrows: thicker for men.
    let brow_r = (if a.is_female() { 0.045 } else { 0.065 } * f.iod).max(0.5);
    let brow_tone = (lk.hair * 0.7).min(skin * 0.5);
    for sx in [-1.0f32, 1.0] {
        let outer = f.project([sx * 0.76, -0.28 + lk.brow_lift, -0.15]);
        let inner = f.project([sx * 0.26, -0.33 + lk.brow_lift, -0.05]);
        let brow = Shape::Capsule {
            p0: outer,
            p1: inner,
            r: brow_r,
        };
        c.draw(&brow, Ink::Over(brow_tone), 0.9, soft);
    }

    // Nose: ridge shadow, nostrils, highlight at the tip (the landmark).
    let ridge = Shape::Capsule {
        p0: f.project([0.07, 0.15, 0.30]),
        p1: f.project([0.07, m.nose_y - 0.1, m.nose_z - 0.05]),
        r: 0.05 * f.iod,
    };
    c.draw(&ridge, Ink::Mul(0.85), 1.0, (0.08 * f.iod).max(1.0));
    for sx in [-1.0f32, 1.0] {
        let at = f.project([sx * 0.11, m.nose_y + 0.07, m.nose_z - 0.2]);
        let nostril = pixel_ellipse(f, at, 0.06 * cfac, 0.04);
        c.draw(&nostril, Ink::Mul(0.45), 1.0, soft);
    }
    let tip = pixel_ellipse(f, f.landmarks[2], 0.08, 0.08);
    c.draw(
        &tip,
        Ink::Over((skin * 1.15).min(1.0)),
        0.6,
        (0.06 * f.iod).max(1.0),
    );

    // Mouth between the two corner landmarks.
    let (p0, p1) = (f.landmarks[3], f.landmarks[4]);
    let w = ((p1[0] - p0[0]).powi(2) + (p1[1] - p0[1]).powi(2)).sqrt();
    let lip_t = (0.06 * f.iod).max(0.8);
    let crescent = |top0: f32, top1: f32, bot0: f32, bot1: f32| Shape::Crescent {
        p0,
        p1,
        top0,
        top1,
        bot0,
        bot1,
    };
    if a.is_smiling() {
        // Cheek folds from the nose wings to just outside the mouth corners.
        for (sx, corner) in [(-1.0f32, p0), (1.0, p1)] {
            let from = f.project([sx * 0.32, m.nose_y + 0.02, -0.05]);
            let out = f.to_image([0.0, 0.0]);
            let dir = f.to_image([sx, 0.0]);
            let to = [
                corner[0] + 0.12 * (dir[0] - out[0]),
                corner[1] + 0.12 * (dir[1] - out[1]) + 0.03 * f.iod,
            ];
            let fold = Shape::Capsule {
                p0: from,
                p1: to,
                r: 0.03 * f.iod,
            };
            c.draw(&fold, Ink::Mul(0.8), 1.0, (0.06 * f.iod).max(1.0));
        }
        if lk.closed_smile {
            c.draw(
                &crescent(-0.5 * lip_t, 0.12 * w, 0.5 * lip_t, 0.14 * w),
                Ink::Over(lk.lip * 0.5),
                1.0,
                soft,
            );
        } else {
            c.draw(
                &crescent(0.0, 0.06 * w, 0.0, 0.30 * w),
                Ink::Over(lk.lip * 0.3),
                1.0,
                soft,
            );
            let teeth = (skin + 0.25).min(0.95);
            c.draw(
                &crescent(0.0, 0.06 * w, 0.0, 0.15 * w),
                Ink::Over(teeth),
                0.9,
                soft,
            );
            c.draw(
                &crescent(0.0, 0.30 * w, 0.0, 0.38 * w),
                Ink::Over(lk.lip),
                0.8,
                soft,
            );
        }
    } else {
        let k = lk.mouth_curve * w;
        c.draw(
            &crescent(-0.5 * lip_t, k, 0.5 * lip_t, k),
            Ink::Over(lk.lip * 0.6),
            0.95,
            soft,
        );
        c.draw(
            &crescent(0.5 * lip_t, k, 0.5 * lip_t + 0.1 * w, k),
            Ink::Mul(0.88),
            1.0,
            soft,
        );
    }

    // Glasses: tinted lenses over the eyes, frames, bridge and temples.
    if a.has_glasses() {
        let z = EYE_Z + 0.25;
        let t = (0.07 * f.iod).max(0.8);
        for sx in [-1.0f32, 1.0] {
            let lc = f.project([sx * 0.5, 0.03, z]);
            let lens = pixel_ellipse(f, lc, 0.30 * cfac, 0.22);
            c.draw(&lens, Ink::Mul(lk.lens), 1.0, soft);
            let ring = Shape::Ring {
                c: lc,
                a: 0.30 * cfac * f.iod,
                b: 0.22 * f.iod,
                cs: f.roll.cos(),
                sn: f.roll.sin(),
                t,
            };
            c.draw(&ring, Ink::Over(lk.frame), 0.95, soft);
            let temple = Shape::Capsule {
                p0: f.project([sx * 0.8, 0.0, z]),
                p1: f.project([sx * 1.0, -0.03, -0.8]),
                r: 0.45 * t,
            };
            c.draw(&temple, Ink::Over(lk.frame), 0.95, soft);
        }
        let bridge = Shape::Capsule {
            p0: f.project([-0.2, -0.02, z]),
            p1: f.project([0.2, -0.02, z]),
            r: 0.5 * t,
        };
        c.draw(&bridge, Ink::Over(lk.frame), 0.95, soft);
    }

    // Occluder over the face.
    if let Some(o) = &scene.occluder {
        let at = f.to_image([f.anchor[0] + o.at[0], f.anchor[1] + o.at[1]]);
        let shape = if o.bar {
            let (dx, dy) = (
                0.5 * o.length * f.iod * o.angle.cos(),
                0.5 * o.length * f.iod * o.angle.sin(),
            );
            Shape::Capsule {
                p0: [at[0] - dx, at[1] - dy],
                p1: [at[0] + dx, at[1] + dy],
                r: o.radius * f.iod,
            }
        } else {
            Shape::Ellipse {
                c: at,
                a: o.half[0] * f.iod,
                b: o.half[1] * f.iod,
                cs: o.angle.cos(),
                sn: o.angle.sin(),
                jaw: 1.0,
            }
        };
        c.draw(&shape, Ink::Over(o.value), o.opacity, soft);
    }

    // Lighting: gain and offset about mid-grey, then a linear gradient.
    let (gc, gs) = (scene.gradient_angle.cos(), scene.gradient_angle.sin());
    let half = 0.5 * n;
    c.map(|x, y, v| {
        let g = 1.0 + scene.gradient * ((x - half) * gc + (y - half) * gs) / n;
        (((v - 0.5) * scene.gain + 0.5 + scene.offset) * g).clamp(0.0, 1.0)
    });
    // Pixel noise.
    let sigma = cfg.noise * cfg.difficulty;
    if sigma > 0.0 {
        for v in &mut c.px {
            let e: f32 = noise.sample(StandardNormal);
            *v = (*v + sigma * e).clamp(0.0, 1.0);
        }
    }
    GrayImage::gray(size, size, c.px)
}

/// The face outline's centre `u` and half-width (face frame), from the edges
/// `−A cos θ + CHEEK·min(sin θ, 0)` and `A cos θ + CHEEK·max(sin θ, 0)`. An edge then moves
/// out until every feature (eyes, nose tip, nostrils, mouth corners) lies inside the egg
/// shape with a margin, accounting for its narrower lower half: a point `(u, v)` fits when
/// `|u − uc| + margin ≤ hw·w(v)`, `w(v) = jaw^[v > cy]·√(1 − ((v − cy)/b)²)`. Moving an
/// edge out by `δ` moves the centre by `δ/2`, so the smallest fix is
/// `δ = 2(|u − uc| + margin − w·hw)/(1 + w)`.
fn outline(f: &FaceParams, sy: f32, cy: f32) -> (f32, f32) {
    let m = &f.model;
    let mut left = -m.face_a * cy + CHEEK * sy.min(0.0);
    let mut right = m.face_a * cy + CHEEK * sy.max(0.0);
    let l3 = m.landmarks3();
    let features = [
        (l3[0], 0.22),
        (l3[1], 0.22),
        (l3[2], 0.10),
        (l3[3], 0.20),
        (l3[4], 0.20),
        ([-0.11, m.nose_y + 0.07, m.nose_z - 0.2], 0.08),
        ([0.11, m.nose_y + 0.07, m.nose_z - 0.2], 0.08),
    ];
    for _ in 0..3 {
        for (p, margin) in features {
            let [u, v] = project(f.yaw, p);
            let (uc, hw) = (0.5 * (left + right), 0.5 * (right - left));
            let dv = ((v - m.face_cy) / m.face_b).clamp(-0.95, 0.95);
            let jaw = if v > m.face_cy { m.jaw } else { 1.0 };
            let w = jaw * (1.0 - dv * dv).sqrt();
            let need = (u - uc).abs() + margin - w * hw;
            if need > 0.0 {
                let delta = 2.0 * need / (1.0 + w);
                if u < uc {
                    left -= delta;
                } else {
                    right += delta;
                }
            }
        }
    }
    (0.5 * (left + right), 0.5 * (right - left))
}

/// Random shapes behind the face: ellipses, bars, rings and eye-like pairs of dots.
fn draw_clutter(cfg: &SynthConfig, c: &mut Canvas, rng: &mut ChaCha8Rng, iod: f32) {
    let n = cfg.size as f32;
    let max_shapes = (8.0 * cfg.clutter * cfg.difficulty)
        .round()
        .min(MAX_CLUTTER) as usize;
    let count = rng.random_range(0..=max_shapes);
    for _ in 0..count {
        let kind = rng.random_range(0u32..4);
        let at = [rng.random_range(0.0..n), rng.random_range(0.0..n)];
        let r = n * rng.random_range(0.04f32..0.3);
        let r2 = r * rng.random_range(0.2f32..1.0);
        let angle = rng.random_range(0.0f32..PI);
        let value: f32 = rng.random();
        let (cs, sn) = (angle.cos(), angle.sin());
        match kind {
            0 => c.draw(
                &Shape::Ellipse {
                    c: at,
                    a: r,
                    b: r2,
                    cs,
                    sn,
                    jaw: 1.0,
                },
                Ink::Over(value),
                1.0,
                1.0,
            ),
            1 => c.draw(
                &Shape::Capsule {
                    p0: [at[0] - r * cs, at[1] - r * sn],
                    p1: [at[0] + r * cs, at[1] + r * sn],
                    r: 0.15 * r2 + 0.5,
                },
                Ink::Over(value),
                1.0,
                1.0,
            ),
            2 => c.draw(
                &Shape::Ring {
                    c: at,
                    a: r,
                    b: r2,
                    cs,
                    sn,
                    t: (0.1 * r2).max(0.8),
                },
                Ink::Over(value),
                1.0,
                1.0,
            ),
            _ => {
                // Two dark dots one inter-ocular distance apart.
                let dot = (0.09 * iod).max(0.7);
                for s in [-0.5f32, 0.5] {
                    let p = [at[0] + s * iod * cs, at[1] + s * iod * sn];
                    c.draw(
                        &Shape::Ellipse {
                            c: p,
                            a: dot,
                            b: dot,
                            cs: 1.0,
                            sn: 0.0,
                            jaw: 1.0,
                        },
                        Ink::Over(0.5 * value),
                        1.0,
                        1.0,
                    );
                }
            }
        }
    }
}
