//! One sample: an input and its labels.
//!
//! The input of every sample is an [`Image`]: a planar `[C, H, W]` array of `f32`. Face images
//! are grey (`C = 1`), photos of an image table grey or colour (`C = 3`, RGB), and a row of
//! numeric features is a `1 × 1` image with one channel per feature (`[D, 1, 1]`, the layout of
//! a `[B, D]` batch once flattened), so one batching path serves images and tables alike.
use tandem_tensor::TaskMap;

/// A planar image, channel by channel, each row by row; values in `[0, 1]` for pictures,
/// any finite value for feature rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Channels (1 grey, 3 RGB, or the number of features of a table row).
    pub channels: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `channels * height * width` values, channel by channel, each row by row.
    pub pixels: Vec<f32>,
}

/// A single-channel image: what the face code (SynthFaces, MTFL crops) produces and reads.
pub type GrayImage = Image;

impl Image {
    /// A black grey image.
    pub fn new(width: usize, height: usize) -> Self {
        Self::gray(width, height, vec![0.0; width * height])
    }

    /// A grey image from `height * width` values.
    pub fn gray(width: usize, height: usize, pixels: Vec<f32>) -> Self {
        Self {
            channels: 1,
            width,
            height,
            pixels,
        }
    }

    /// A row of numeric features as a `[D, 1, 1]` image.
    pub fn features(values: Vec<f32>) -> Self {
        Self {
            channels: values.len(),
            width: 1,
            height: 1,
            pixels: values,
        }
    }

    /// The pixel at column `x`, row `y` of the first channel.
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.pixels[y * self.width + x]
    }
}

/// One task's label of one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// Landmarks `[x1..xn, y1..yn]` normalised to the image.
    Points(Vec<f32>),
    /// Regression values (one per label column of the task).
    Values(Vec<f32>),
    /// A class index, 0-based.
    Class(u32),
    /// A binary label.
    Binary(bool),
    /// No label for this task (partial labels); masked out of losses and metrics.
    Missing,
}

/// An input with one label per task, keyed by task name in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The input: an image, or a table row's features as a `[D, 1, 1]` image.
    pub image: Image,
    /// Labels by task name (`landmarks`, `gender`, `smile`, `glasses`, `pose` for faces).
    pub labels: TaskMap<Label>,
}
