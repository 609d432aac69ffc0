//! A small synthetic MTFL folder for tests: images of every flaw the loader must report.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
use std::io::Cursor;
use std::path::Path;

/// A valid line for `imgs/a.png` (100×100).
pub const GOOD: &str = "imgs\\a.png 30.5 70 50 35 65 40 41 55 70 71 1 2 2 3";

fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// Writes the fixture images under `dir/imgs/`.
pub fn write_images(dir: &Path) {
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(imgs.join("dir")).unwrap();
    let gray = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(100, 100, |x, y| {
        image::Luma([((x * 2 + y) % 256) as u8])
    }));
    let colour = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(120, 80, |x, y| {
        image::Rgb([x as u8, y as u8, 128])
    }));
    let png = encode(&gray, image::ImageFormat::Png);
    std::fs::write(imgs.join("a.png"), &png).unwrap();
    std::fs::write(
        imgs.join("c.jpg"),
        encode(&colour, image::ImageFormat::Jpeg),
    )
    .unwrap();
    std::fs::write(imgs.join("trunc.png"), &png[..png.len() / 2]).unwrap();
    std::fs::write(imgs.join("text.jpg"), b"this is not an image\n").unwrap();
    std::fs::write(imgs.join("empty.png"), b"").unwrap();
    // A JPEG whose frame header claims 60000×60000 pixels.
    let mut huge = encode(&colour, image::ImageFormat::Jpeg);
    let sof = huge
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline JPEG has an SOF0 marker");
    huge[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    std::fs::write(imgs.join("huge.jpg"), huge).unwrap();
}
