//! Writes a grid of SynthFaces to a PNG file, to look at them.
//!
//! ```text
//! cargo run -p tandem-data --release --example synth_grid -- [out.png] [size] [difficulty] [seed] [cols] [rows] [marks] [zoom] [grid|sweep]
//! ```
//!
//! Defaults: `synth_grid.png 40 1.0 7 10 6 1 1`; `zoom` enlarges the picture by pixel
//! replication. `sweep` shows one face per row: poses 0..4 with the face's other attributes,
//! then the face with smile, glasses and gender flipped (everything else unchanged). With `marks = 1` the landmarks are drawn as
//! coloured dots (eyes red, nose green, mouth blue), and a strip under each face shows its
//! attributes: four cells for gender (white = female), smile (white = smiling), glasses
//! (white = wearing) and pose (grey level = class / 4).
use std::io::Write;
use tandem_data::{SynthConfig, SynthFaces};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let out = arg(0, "synth_grid.png");
    let size: usize = arg(1, "40").parse()?;
    let difficulty: f32 = arg(2, "1.0").parse()?;
    let seed: u64 = arg(3, "7").parse()?;
    let cols: usize = arg(4, "10").parse()?;
    let rows: usize = arg(5, "6").parse()?;
    let marks = arg(6, "1") == "1";
    let zoom: usize = arg(7, "1").parse::<usize>()?.max(1);
    let sweep = arg(8, "grid") == "sweep";
    let cols = if sweep { 8 } else { cols };
    let cfg = SynthConfig {
        size,
        len: cols * rows,
        difficulty,
        ..Default::default()
    };
    let faces = SynthFaces::try_new(cfg, seed)?;
    let gap = 2;
    let strip = if marks { (size / 8).max(3) } else { 0 };
    let (cw, ch) = (size + gap, size + strip + gap);
    let (w, h) = (cols * cw + gap, rows * ch + gap);
    let mut rgb = vec![40u8; w * h * 3];
    for i in 0..cols * rows {
        let (s, p) = if sweep {
            // Row r shows face r with pose 0..4, then with smile, glasses and gender flipped.
            let (r, k) = (i / cols, i % cols);
            let mut a = faces.attributes(r)?;
            match k {
                0..=4 => a.pose = k as u32,
                5 => a.smile = 1 - a.smile,
                6 => a.glasses = 1 - a.glasses,
                7 => a.gender = 1 - a.gender,
                _ => {}
            }
            faces.face_with(r, a)?
        } else {
            faces.face(i)?
        };
        let (ox, oy) = (gap + (i % cols) * cw, gap + (i / cols) * ch);
        for y in 0..size {
            for x in 0..size {
                let v = (s.image.get(x, y) * 255.0).round() as u8;
                let k = ((oy + y) * w + ox + x) * 3;
                rgb[k..k + 3].copy_from_slice(&[v, v, v]);
            }
        }
        if marks {
            let colours = [
                [255, 0, 0],
                [255, 0, 0],
                [0, 255, 0],
                [0, 128, 255],
                [0, 128, 255],
            ];
            for (l, c) in p.landmarks.iter().zip(colours) {
                let (x, y) = (l[0].floor() as usize, l[1].floor() as usize);
                let k = ((oy + y) * w + ox + x) * 3;
                rgb[k..k + 3].copy_from_slice(&c);
            }
            let a = p.attributes;
            let cells = [
                if a.is_female() { 255 } else { 0 },
                if a.is_smiling() { 255 } else { 0 },
                if a.has_glasses() { 255 } else { 0 },
                (a.pose * 255 / 4) as u8,
            ];
            let cell = size / 4;
            for (j, v) in cells.iter().enumerate() {
                for y in size..size + strip {
                    for x in j * cell + 1..(j + 1) * cell {
                        let k = ((oy + y) * w + ox + x) * 3;
                        rgb[k..k + 3].copy_from_slice(&[*v, *v, *v]);
                    }
                }
            }
        }
    }
    let (zw, zh) = (w * zoom, h * zoom);
    let mut big = vec![0u8; zw * zh * 3];
    for y in 0..zh {
        for x in 0..zw {
            let (k, j) = ((y * zw + x) * 3, ((y / zoom) * w + x / zoom) * 3);
            big[k..k + 3].copy_from_slice(&rgb[j..j + 3]);
        }
    }
    let (w, h, rgb) = (zw, zh, big);
    let png = encode_png(w, h, &rgb);
    std::fs::File::create(&out)?.write_all(&png)?;
    println!("wrote {out} ({w}x{h})");
    Ok(())
}

/// A minimal RGB PNG encoder (zlib "stored" blocks, no compression).
fn encode_png(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(h * (w * 3 + 1));
    for row in rgb.chunks(w * 3) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", z), (b"IEND", Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &x in data {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}
