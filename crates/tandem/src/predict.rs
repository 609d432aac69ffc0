//! [`Predictor`]: a trained model loaded from a checkpoint folder, ready to predict.
//!
//! A checkpoint written by a run (`tandem train`, or [`crate::run::train`] followed by
//! [`tandem_tensor::checkpoint::save`] with the [`RunConfig`] as the sidecar's `config`) holds
//! everything needed to rebuild its network: the task list, the trunk, the sharing strategy
//! and the weighting (whose learnable variables, if any, are part of the checkpoint). The
//! predictor rebuilds the network under the same variable names as training did, then loads
//! the tensors into it.
//!
//! Each image is taken as a face crop ([`Predictor::predict`]) or cut out of a larger picture
//! by a [`FaceBox`] ([`Predictor::predict_boxed`]); either way the region is resampled to the
//! model's `input_size × input_size` exactly as MTFL test faces are (box-prefiltered bilinear,
//! [`tandem_data::mtfl::crop::warp`]), and predicted landmarks are mapped back to pixels of
//! the image given.
//!
//! ```no_run
//! use tandem::predict::{read_image, Predictor};
//! use candle_core::Device;
//!
//! # fn main() -> Result<(), tandem::Error> {
//! let predictor = Predictor::load("runs/synth/checkpoint", &Device::Cpu)?;
//! let image = read_image("face.png")?;
//! for p in predictor.predict(&[image])? {
//!     if let Some(points) = &p.landmarks {
//!         println!("left eye at {:?}", points[0]);
//!     }
//!     for (task, c) in p.classes.iter() {
//!         println!("{task}: class {} (p = {:.2})", c.class, c.probabilities[c.class as usize]);
//!     }
//! }
//! # Ok(()) }
//! ```
use crate::{Error, Result, RunConfig};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tandem_data::mtfl::crop::{warp, Frame};
use tandem_data::mtfl::image::{read_gray, DecodeLimits};
use tandem_data::{Batcher, Dataset, GrayImage, Transform};
use tandem_heads::{TaskKind, TaskSet};
use tandem_share::MultiTaskNet;
use tandem_tensor::checkpoint::{self, CheckpointMeta};
use tandem_tensor::TaskMap;
use tandem_train::Evaluation;

/// A face region of an image, in pixels: top-left corner `(x, y)`, `width × height`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    /// Left edge in pixels.
    pub x: f32,
    /// Top edge in pixels.
    pub y: f32,
    /// Width in pixels (positive).
    pub width: f32,
    /// Height in pixels (positive).
    pub height: f32,
}

impl FaceBox {
    /// The crop frame of this box.
    fn frame(&self) -> Frame {
        Frame {
            cx: self.x + self.width / 2.0,
            cy: self.y + self.height / 2.0,
            width: self.width,
            height: self.height,
            angle: 0.0,
        }
    }

    fn check(&self) -> Result<()> {
        let ok = [self.x, self.y, self.width, self.height]
            .iter()
            .all(|v| v.is_finite())
            && self.width > 0.0
            && self.height > 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::Config {
                key: "box".into(),
                reason: format!("{self:?} must have finite coordinates and a positive size"),
            })
        }
    }
}

/// One classification task's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassPrediction {
    /// The most probable class, 0-based (MTFL code − 1 for the face attributes).
    pub class: u32,
    /// Softmax probability of every class.
    pub probabilities: Vec<f32>,
}

/// What the model says about one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The regression (landmark) task's points as `(x, y)` in pixels of the image given
    /// (continuous coordinates: pixel `i` covers `[i, i + 1)`); `None` without such a task.
    pub landmarks: Option<Vec<(f32, f32)>>,
    /// Every classification task's prediction, in task order (a JSON object keyed by task).
    #[serde(with = "as_object")]
    pub classes: TaskMap<ClassPrediction>,
}

/// Serialises a [`TaskMap`] as an object keyed by task name, in task order.
mod as_object {
    use super::{ClassPrediction, TaskMap};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        map: &TaskMap<ClassPrediction>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<TaskMap<ClassPrediction>, D::Error> {
        let m = BTreeMap::<String, ClassPrediction>::deserialize(d)?;
        Ok(m.into_iter().collect())
    }
}

/// A trained network rebuilt from a checkpoint folder.
pub struct Predictor {
    config: RunConfig,
    tasks: TaskSet,
    net: Box<dyn MultiTaskNet>,
    vars: VarMap,
    meta: CheckpointMeta,
    device: Device,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("tasks", &self.tasks)
            .field("sharing", &self.config.sharing)
            .field("step", &self.meta.step)
            .field("epoch", &self.meta.epoch)
            .finish()
    }
}

impl Predictor {
    /// Loads the checkpoint folder `dir` (`model.safetensors` + `meta.json`) onto `device`.
    ///
    /// Fails when the folder or a file is missing, when `meta.json`'s `config` is not a valid
    /// [`RunConfig`], or when the tensors do not match the network that config builds.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let meta = checkpoint::read_meta(dir)?;
        let config: RunConfig =
            serde_json::from_value(meta.config.clone()).map_err(|e| Error::Config {
                key: format!("{}: meta.json config", dir.display()),
                reason: e.to_string(),
            })?;
        config.validate()?;
        Self::from_config(config, dir, device)
    }

    /// Builds the network of `config` and loads the checkpoint in `dir` into it.
    pub fn from_config(config: RunConfig, dir: &Path, device: &Device) -> Result<Self> {
        let tasks = config.task_set();
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, config.train.seed, DType::F32, device);
        let net = config.sharing.build(&config.model, &tasks, vb.clone())?;
        // The weighting may own variables (uncertainty's log-variances); build it so that the
        // checkpoint's names and the network's match.
        let _weighting = config.weighting.build(&tasks, vb)?;
        let meta = checkpoint::load(dir, &vars)?;
        Ok(Self {
            config,
            tasks,
            net,
            vars,
            meta,
            device: device.clone(),
        })
    }

    /// The run configuration the checkpoint was trained with.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The checkpoint's sidecar (step, epoch, seed).
    pub fn meta(&self) -> &CheckpointMeta {
        &self.meta
    }

    /// The tasks, main task first.
    pub fn tasks(&self) -> &TaskSet {
        &self.tasks
    }

    /// The network.
    pub fn net(&self) -> &dyn MultiTaskNet {
        self.net.as_ref()
    }

    /// The loaded variables.
    pub fn vars(&self) -> &VarMap {
        &self.vars
    }

    /// Side of the model's square input in pixels.
    pub fn input_size(&self) -> usize {
        self.config.input_size().unwrap_or(0)
    }

    /// Predicts every image, each taken whole as a face crop.
    pub fn predict(&self, images: &[GrayImage]) -> Result<Vec<Prediction>> {
        let frames: Vec<Frame> = images
            .iter()
            .map(|i| Frame::whole(i.width, i.height))
            .collect();
        let refs: Vec<&GrayImage> = images.iter().collect();
        self.predict_frames(&refs, &frames)
    }

    /// Predicts the face inside `face_box` of each image.
    pub fn predict_boxed(&self, faces: &[(&GrayImage, FaceBox)]) -> Result<Vec<Prediction>> {
        for (_, b) in faces {
            b.check()?;
        }
        let images: Vec<&GrayImage> = faces.iter().map(|(i, _)| *i).collect();
        let frames: Vec<Frame> = faces.iter().map(|(_, b)| b.frame()).collect();
        self.predict_frames(&images, &frames)
    }

    /// The model input for `frame` of `image`: `input_size × input_size`.
    pub fn crop(&self, image: &GrayImage, frame: &Frame) -> GrayImage {
        let s = self.input_size();
        warp(image, frame, s, s)
    }

    fn predict_frames(&self, images: &[&GrayImage], frames: &[Frame]) -> Result<Vec<Prediction>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.input_size();
        let mut pixels = Vec::with_capacity(images.len() * s * s);
        for (image, frame) in images.iter().zip(frames) {
            if image.width == 0 || image.height == 0 {
                return Err(Error::Config {
                    key: "image".into(),
                    reason: "an image has no pixels".into(),
                });
            }
            pixels.extend_from_slice(&self.crop(image, frame).pixels);
        }
        let input = Tensor::from_vec(pixels, (images.len(), 1, s, s), &self.device)?;
        let out = self.net.forward_t(&input, false)?;
        let mut preds: Vec<Prediction> = (0..images.len())
            .map(|_| Prediction {
                landmarks: None,
                classes: TaskMap::new(),
            })
            .collect();
        for task in self.tasks.iter() {
            let Some(y) = out.predictions.get(task.name()) else {
                continue;
            };
            match task.kind() {
                TaskKind::Regression => {
                    let rows = y.to_dtype(DType::F32)?.to_vec2::<f32>()?;
                    for ((p, row), frame) in preds.iter_mut().zip(rows).zip(frames) {
                        let n = row.len() / 2;
                        let points = (0..n)
                            .map(|k| frame.to_source(row[k], row[n + k]))
                            .collect();
                        if p.landmarks.is_none() {
                            p.landmarks = Some(points);
                        }
                    }
                }
                TaskKind::Classification => {
                    let probs = candle_nn::ops::softmax(y, D::Minus1)?
                        .to_dtype(DType::F32)?
                        .to_vec2::<f32>()?;
                    for (p, row) in preds.iter_mut().zip(probs) {
                        let class = row
                            .iter()
                            .enumerate()
                            .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
                                if v > best.1 {
                                    (i, v)
                                } else {
                                    best
                                }
                            })
                            .0 as u32;
                        p.classes.insert(
                            task.name(),
                            ClassPrediction {
                                class,
                                probabilities: row,
                            },
                        );
                    }
                }
            }
        }
        Ok(preds)
    }

    /// Scores the model on `data` (every task's loss and metrics), each sample passed through
    /// `transform` in evaluation mode when given. Never pass a training transform for data
    /// that is already at the model size (MTFL's test faces).
    pub fn evaluate(
        &self,
        data: &dyn Dataset,
        transform: Option<Arc<dyn Transform>>,
    ) -> Result<Evaluation> {
        let mut batcher = Batcher::eval(self.config.train.eval_batch_size);
        if let Some(t) = transform {
            batcher = batcher.with_transform(t);
        }
        Ok(tandem_train::evaluate(
            self.net.as_ref(),
            &self.tasks,
            data,
            &batcher,
            &self.device,
        )?)
    }
}

/// Reads a JPEG or PNG file as a grayscale image with values in `[0, 1]`.
pub fn read_image(path: impl AsRef<Path>) -> Result<GrayImage> {
    let path = path.as_ref();
    read_gray(path, &DecodeLimits::default()).map_err(|reason| Error::Image {
        path: path.to_path_buf(),
        reason,
    })
}
