//! Decoding MTFL images: JPEG or PNG, gray or colour, to a grayscale [`GrayImage`].
//!
//! Colour images become gray with the `image` crate's luma weights (Rec. 709:
//! `0.2126 R + 0.7152 G + 0.0722 B`); values are scaled from `0..=255` to `[0, 1]`.
//!
//! Decoding is bounded by [`DecodeLimits`]: the file size is checked before reading, and the
//! decoder itself is given the maximum width, height and allocation, so a hostile header that
//! claims a 60000×60000 image is rejected before any pixel buffer is allocated. The format is
//! recognised from the file's first bytes, not from its name.
use crate::GrayImage;
use image::ImageFormat;
use std::io::Cursor;
use std::path::Path;

/// Bounds on what the decoder may read and allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels (default 8192).
    pub max_width: u32,
    /// Largest accepted height in pixels (default 8192).
    pub max_height: u32,
    /// Most bytes the decoder may allocate at once (default 256 MiB).
    pub max_alloc: u64,
    /// Largest accepted file in bytes (default 64 MiB).
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_width: 8192,
            max_height: 8192,
            max_alloc: 256 << 20,
            max_file_bytes: 64 << 20,
        }
    }
}

/// Reads and decodes the image at `path`. The error is a reason in words, without the path
/// (the caller names the annotation line).
pub fn read_gray(path: &Path, limits: &DecodeLimits) -> std::result::Result<GrayImage, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
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
    decode_gray(&bytes, limits)
}

/// Decodes JPEG or PNG bytes within `limits` (MTFL faces and image tables alike); the error
/// says what is wrong with the bytes (the caller names the file).
pub fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> std::result::Result<image::DynamicImage, String> {
    if bytes.is_empty() {
        return Err("is empty".into());
    }
    let reader = || {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot be read: {e}"))
    };
    let mut decoder = reader()?;
    match decoder.format() {
        Some(ImageFormat::Jpeg) | Some(ImageFormat::Png) => {}
        Some(other) => return Err(format!("is {other:?}, not a JPEG or PNG image")),
        None => return Err("is not a JPEG or PNG image".into()),
    }
    if let Ok((w, h)) = reader()?.into_dimensions() {
        if w > limits.max_width || h > limits.max_height {
            return Err(format!(
                "claims {w}x{h} pixels, more than the limit of {}x{}",
                limits.max_width, limits.max_height
            ));
        }
    }
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc);
    decoder.limits(l);
    decoder
        .decode()
        .map_err(|e| format!("cannot be decoded: {e}"))
}

/// Decodes JPEG or PNG bytes to a grayscale image with values in `[0, 1]`.
pub fn decode_gray(bytes: &[u8], limits: &DecodeLimits) -> std::result::Result<GrayImage, String> {
    let decoded = decode(bytes, limits)?;
    let luma = decoded.into_luma8();
    let (width, height) = (luma.width() as usize, luma.height() as usize);
    if width == 0 || height == 0 {
        return Err("has no pixels".into());
    }
    let pixels = luma
        .into_raw()
        .into_iter()
        .map(|p| f32::from(p) / 255.0)
        .collect();
    Ok(GrayImage::gray(width, height, pixels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img =
            image::GrayImage::from_fn(width, height, |x, y| image::Luma([(x * 10 + y) as u8]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn decodes_png_to_unit_range() {
        let g = decode_gray(&png(3, 2), &DecodeLimits::default()).unwrap();
        assert_eq!((g.width, g.height), (3, 2));
        assert_eq!(g.get(2, 1), 21.0 / 255.0);
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        let l = DecodeLimits::default();
        assert!(decode_gray(b"", &l).unwrap_err().contains("empty"));
        assert!(decode_gray(b"hello world", &l)
            .unwrap_err()
            .contains("not a JPEG or PNG"));
        let p = png(8, 8);
        assert!(decode_gray(&p[..p.len() / 2], &l)
            .unwrap_err()
            .contains("decoded"));
    }

    #[test]
    fn limits_reject_large_images() {
        let l = DecodeLimits {
            max_width: 4,
            ..DecodeLimits::default()
        };
        assert!(decode_gray(&png(5, 2), &l).is_err());
    }
}
