//! Image inputs of a table: decoding (bounded, JPEG or PNG) and resizing to the model size.
//!
//! A file is read with the limits of [`DecodeLimits::default`] (8192×8192 pixels, 256 MiB of
//! decoder allocation, 64 MiB files), its format recognised from its first bytes. Colour
//! becomes grey with Rec. 709 luma weights (`0.2126 R + 0.7152 G + 0.0722 B`, the `image`
//! crate's, as for MTFL) when `channels = 1`; grey becomes RGB by repeating it when
//! `channels = 3`; alpha is dropped. Bytes `0..=255` become `v / 255`.
//!
//! Resizing to `S × S` (a non-square image is stretched) is a separable triangle filter
//! (`image::imageops::FilterType::Triangle`) on the `f32` values: bilinear interpolation when
//! enlarging, and when shrinking by a factor `f` a triangle of radius `f` source pixels, so
//! every source pixel contributes (no aliasing). An image already `S × S` is kept as it is.
use crate::mtfl::image::decode;
use crate::mtfl::DecodeLimits;
use crate::sample::Image;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma, Rgb};
use std::path::Path;

/// The reason [`load`] gives for a file that does not exist.
pub(crate) const NOT_FOUND: &str = "does not exist";

/// A decoded, resized image and the size of the original.
pub(crate) struct Loaded {
    /// `[channels, size, size]`, values in `[0, 1]`.
    pub image: Image,
    /// Width of the original image in pixels.
    pub width: usize,
    /// Height of the original image in pixels.
    pub height: usize,
}

/// Reads the image at `path`, converts it to `channels` (1 or 3) and resizes it to
/// `size × size`. The error is a reason in words; `path` is named by the caller.
pub(crate) fn load(
    path: &Path,
    channels: usize,
    size: usize,
    limits: &DecodeLimits,
) -> Result<Loaded, String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(NOT_FOUND.into()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    if meta.is_dir() {
        return Err("is a directory, not an image file".into());
    }
    if meta.len() > limits.max_file_bytes {
        return Err(format!(
            "is {} bytes, more than the limit of {}",
            meta.len(),
            limits.max_file_bytes
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let decoded = decode(&bytes, limits)?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    if width == 0 || height == 0 {
        return Err("has no pixels".into());
    }
    let image = resize(decoded, channels, size)?;
    Ok(Loaded {
        image,
        width,
        height,
    })
}

/// Converts to `channels` and resizes to `size × size`, planar `[C, H, W]`.
fn resize(decoded: DynamicImage, channels: usize, size: usize) -> Result<Image, String> {
    let (w, h) = (decoded.width(), decoded.height());
    let s = u32::try_from(size).map_err(|_| format!("image size {size} is too large"))?;
    let unit =
        |raw: Vec<u8>| -> Vec<f32> { raw.into_iter().map(|p| f32::from(p) / 255.0).collect() };
    let bad_buffer = || "has a pixel buffer of the wrong length".to_string();
    let planes = if channels == 1 {
        let buf: ImageBuffer<Luma<f32>, Vec<f32>> =
            ImageBuffer::from_raw(w, h, unit(decoded.into_luma8().into_raw()))
                .ok_or_else(bad_buffer)?;
        imageops::resize(&buf, s, s, FilterType::Triangle).into_raw()
    } else {
        let buf: ImageBuffer<Rgb<f32>, Vec<f32>> =
            ImageBuffer::from_raw(w, h, unit(decoded.into_rgb8().into_raw()))
                .ok_or_else(bad_buffer)?;
        let interleaved = imageops::resize(&buf, s, s, FilterType::Triangle).into_raw();
        let plane = size * size;
        let mut planar = vec![0.0; 3 * plane];
        for (i, px) in interleaved.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                planar[c * plane + i] = v;
            }
        }
        planar
    };
    Ok(Image {
        channels,
        width: size,
        height: size,
        pixels: planes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(img: DynamicImage) -> Vec<u8> {
        use image::ImageFormat;
        use std::io::Cursor;
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn grey_and_colour_are_resized_planar() {
        let rgb = image::RgbImage::from_pixel(5, 3, Rgb([255, 0, 51]));
        let bytes = png(DynamicImage::ImageRgb8(rgb));
        let decoded = decode(&bytes, &DecodeLimits::default()).unwrap();
        let img = resize(decoded.clone(), 3, 4).unwrap();
        assert_eq!((img.channels, img.width, img.height), (3, 4, 4));
        for (c, want) in [1.0, 0.0, 0.2].into_iter().enumerate() {
            for &v in &img.pixels[c * 16..(c + 1) * 16] {
                assert!((v - want).abs() < 1e-5, "{c}: {v}");
            }
        }
        let grey = resize(decoded, 1, 2).unwrap();
        let luma = (0.2126 * 255.0 + 0.0722 * 51.0_f32).round() / 255.0;
        assert_eq!(grey.pixels.len(), 4);
        assert!(grey.pixels.iter().all(|v| (v - luma).abs() < 1.5 / 255.0));
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        let l = DecodeLimits::default();
        assert!(decode(b"", &l).is_err_and(|e| e.contains("empty")));
        assert!(decode(b"hello", &l).is_err_and(|e| e.contains("not a JPEG or PNG")));
        let small = DecodeLimits { max_width: 2, ..l };
        let bytes = png(DynamicImage::ImageLuma8(image::GrayImage::new(3, 1)));
        assert!(decode(&bytes, &small).is_err_and(|e| e.contains("limit")));
    }
}
