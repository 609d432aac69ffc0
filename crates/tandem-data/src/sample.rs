//! One sample: an image and its labels.
use tandem_tensor::TaskMap;

/// A single-channel image, row-major, values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height * width` values, row by row.
    pub pixels: Vec<f32>,
}

impl GrayImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![0.0; width * height],
        }
    }

    /// The pixel at column `x`, row `y`.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.pixels[y * self.width + x]
    }
}

/// One task's label of one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// Regression values, e.g. landmarks `[x1..xn, y1..yn]` normalised to the image.
    Points(Vec<f32>),
    /// A class index, 0-based.
    Class(u32),
    /// No label for this task (partial labels); masked out of losses and metrics.
    Missing,
}

/// An image with one label per task, keyed by task name in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The input image.
    pub image: GrayImage,
    /// Labels by task name (`landmarks`, `gender`, `smile`, `glasses`, `pose` for faces).
    pub labels: TaskMap<Label>,
}
