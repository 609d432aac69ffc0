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
//! the image given. Models of other inputs (colour photos, table rows) take model-ready inputs,
//! such as a data set's samples, through [`Predictor::predict_inputs`].
//!
//! Several checkpoints load as one seed ensemble ([`Predictor::load_ensemble`]), and the
//! configuration's test-time options apply ([`crate::TestTimeConfig`]: with `mirror`, each
//! face is also predicted mirrored and the two averaged; [`Predictor::with_mirror`] overrides
//! it); both go through [`tandem_share::Averaged`], so [`Predictor::net`] is the averaged
//! network and [`Predictor::evaluate`] scores exactly what [`Predictor::predict`] returns.
//!
//! Each task's output is read as its kind says ([`RunConfig::task_kind`]): points as `(x, y)`
//! pairs, class tasks as softmax probabilities and the most probable class, binary tasks as two
//! classes (`1` when the logit is positive, probability `σ(logit)`), regression tasks as their
//! values, one per label column.
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
use crate::{Error, Result, RunConfig, TaskKindConfig};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tandem_data::mtfl::crop::{warp, Frame};
use tandem_data::mtfl::image::{read_gray, DecodeLimits};
use tandem_data::{Batcher, Dataset, GrayImage, Image, Transform};
use tandem_heads::TaskSet;
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

/// What the model says about one input.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Prediction {
    /// The first points task's points (the face landmarks) as `(x, y)`: in pixels of the image
    /// given (continuous coordinates: pixel `i` covers `[i, i + 1)`) for [`Predictor::predict`]
    /// and [`Predictor::predict_boxed`], in the model's normalised coordinates for
    /// [`Predictor::predict_inputs`]; `None` without a points task.
    pub landmarks: Option<Vec<(f32, f32)>>,
    /// Every other points task's points, in task order (a JSON object keyed by task; left out
    /// when empty).
    #[serde(default, with = "as_object", skip_serializing_if = "TaskMap::is_empty")]
    pub points: TaskMap<Vec<(f32, f32)>>,
    /// Every classification and binary task's prediction, in task order (a JSON object keyed
    /// by task). A binary task has two classes, `1` when its logit is positive.
    #[serde(with = "as_object")]
    pub classes: TaskMap<ClassPrediction>,
    /// Every regression task's predicted values, one per label column, in task order (a JSON
    /// object keyed by task; left out when empty).
    #[serde(default, with = "as_object", skip_serializing_if = "TaskMap::is_empty")]
    pub values: TaskMap<Vec<f32>>,
}

/// Serialises a [`TaskMap`] as an object keyed by task name, in task order.
mod as_object {
    use super::TaskMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<T: Serialize, S: Serializer>(
        map: &TaskMap<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(map.iter())
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<TaskMap<T>, D::Error> {
        let m = BTreeMap::<String, T>::deserialize(d)?;
        Ok(m.into_iter().collect())
    }
}

/// A trained network rebuilt from a checkpoint folder — or several (a seed ensemble, whose
/// predictions are averaged), with the test-time options of the configuration
/// ([`crate::TestTimeConfig`]: mirroring) unless [`Predictor::with_mirror`] overrides them.
pub struct Predictor {
    config: RunConfig,
    tasks: TaskSet,
    members: Vec<Arc<dyn MultiTaskNet>>,
    net: Arc<dyn MultiTaskNet>,
    mirror: bool,
    vars: Vec<VarMap>,
    meta: CheckpointMeta,
    device: Device,
    splits: Vec<(u64, f64)>,
}

impl std::fmt::Debug for Predictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("tasks", &self.tasks)
            .field("sharing", &self.config.sharing)
            .field("members", &self.members.len())
            .field("mirror", &self.mirror)
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
        Self::from_config(Self::read_config(dir)?, dir, device)
    }

    /// Loads several checkpoint folders as one model that averages their predictions (a seed
    /// ensemble; [`tandem_share::ensemble`]): points and values are averaged, class
    /// probabilities averaged. Every checkpoint must have the same tasks (names and kinds, in
    /// order) and the same input; the first one's configuration (its test-time options
    /// included) is the ensemble's.
    pub fn load_ensemble(dirs: &[impl AsRef<Path>], device: &Device) -> Result<Self> {
        let Some(first) = dirs.first() else {
            return Err(Error::config("checkpoint", "no checkpoint folder given"));
        };
        let mut predictor = Self::load(first, device)?;
        for dir in &dirs[1..] {
            let dir = dir.as_ref();
            let config = Self::read_config(dir)?;
            let kinds = |c: &RunConfig| {
                c.task_names()
                    .into_iter()
                    .map(|n| (c.task_kind(&n), n))
                    .collect::<Vec<_>>()
            };
            if kinds(&config) != kinds(&predictor.config)
                || config
                    .task_set()
                    .iter()
                    .map(|t| t.out_dim())
                    .collect::<Vec<_>>()
                    != predictor
                        .tasks
                        .iter()
                        .map(|t| t.out_dim())
                        .collect::<Vec<_>>()
            {
                return Err(Error::Config {
                    key: format!("{}: meta.json config", dir.display()),
                    reason: format!(
                        "its tasks {:?} differ from those of {} ({:?}); an ensemble averages \
                         models of the same tasks",
                        config.task_names(),
                        first.as_ref().display(),
                        predictor.config.task_names()
                    ),
                });
            }
            if config.input_size() != predictor.config.input_size() {
                return Err(Error::Config {
                    key: format!("{}: meta.json config", dir.display()),
                    reason: format!(
                        "its input size {:?} differs from {:?} of {}",
                        config.input_size(),
                        predictor.config.input_size(),
                        first.as_ref().display()
                    ),
                });
            }
            let (net, vars, _) = Self::build(&config, dir, device)?;
            predictor.members.push(net);
            predictor.vars.push(vars);
            predictor.splits.push(split_of(&config));
        }
        predictor.rebuild()?;
        Ok(predictor)
    }

    fn read_config(dir: &Path) -> Result<RunConfig> {
        let meta = checkpoint::read_meta(dir)?;
        let config: RunConfig =
            serde_json::from_value(meta.config.clone()).map_err(|e| Error::Config {
                key: format!("{}: meta.json config", dir.display()),
                reason: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    fn build(
        config: &RunConfig,
        dir: &Path,
        device: &Device,
    ) -> Result<(Arc<dyn MultiTaskNet>, VarMap, CheckpointMeta)> {
        let tasks = config.task_set();
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, config.train.seed, DType::F32, device);
        let net = config.sharing.build(&config.model, &tasks, vb.clone())?;
        // The weighting may own variables (uncertainty's log-variances); build it so that the
        // checkpoint's names and the network's match.
        let _weighting = config.weighting.build(&tasks, vb)?;
        let meta = checkpoint::load(dir, &vars)?;
        Ok((Arc::from(net), vars, meta))
    }

    /// Builds the network of `config` and loads the checkpoint in `dir` into it.
    pub fn from_config(config: RunConfig, dir: &Path, device: &Device) -> Result<Self> {
        let tasks = config.task_set();
        let (net, vars, meta) = Self::build(&config, dir, device)?;
        let mirror = config.test_time.mirror;
        let splits = vec![split_of(&config)];
        Ok(Self {
            splits,
            config,
            tasks,
            members: vec![net.clone()],
            net,
            mirror,
            vars: vec![vars],
            meta,
            device: device.clone(),
        })
    }

    /// Turns test-time mirroring on or off (default: the configuration's
    /// `test_time.mirror`): with it, every prediction averages the face and its mirror.
    pub fn with_mirror(mut self, mirror: bool) -> Result<Self> {
        if mirror && self.config.model.as_tcdcn().is_none() {
            return Err(Error::config(
                "test_time.mirror",
                "mirroring needs image inputs (the \"tcdcn\" trunk)",
            ));
        }
        self.mirror = mirror;
        self.rebuild()?;
        Ok(self)
    }

    fn rebuild(&mut self) -> Result<()> {
        self.net = crate::test_time::scorer(&self.config, self.members.clone(), self.mirror)?;
        Ok(())
    }

    /// Whether predictions average each face with its mirror.
    pub fn mirrors(&self) -> bool {
        self.mirror
    }

    /// The number of checkpoints whose predictions are averaged.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Checks that every member was validated on the same split of a real annotation file
    /// (`data.split_seed`, else `train.seed`, and `data.val_fraction`), so that no member has
    /// trained on faces the ensemble is scored on. One member always passes.
    pub fn check_one_split(&self) -> Result<()> {
        match self.splits.iter().position(|s| *s != self.splits[0]) {
            None => Ok(()),
            Some(k) => Err(Error::config(
                "data.split_seed",
                format!(
                    "member {} was validated on the split of seed {} (val_fraction {}), member 1 \
                     on that of seed {} ({}): each member trained on faces the others validate \
                     on; train the members with one `data.split_seed` to score them together \
                     on validation faces",
                    k + 1,
                    self.splits[k].0,
                    self.splits[k].1,
                    self.splits[0].0,
                    self.splits[0].1
                ),
            )),
        }
    }

    /// The run configuration the checkpoint was trained with.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The (first) checkpoint's sidecar (step, epoch, seed).
    pub fn meta(&self) -> &CheckpointMeta {
        &self.meta
    }

    /// The tasks, main task first.
    pub fn tasks(&self) -> &TaskSet {
        &self.tasks
    }

    /// The network that predicts: the checkpoint's, or the average of the ensemble and the
    /// mirrored views.
    pub fn net(&self) -> &dyn MultiTaskNet {
        self.net.as_ref()
    }

    /// The loaded variables (of the first checkpoint in an ensemble).
    pub fn vars(&self) -> &VarMap {
        &self.vars[0]
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

    /// Predicts inputs that are already what the model reads: the samples of the run's data
    /// set ([`tandem_data::Dataset::get`]'s `image`), e.g. the standardised feature rows of a
    /// [`tandem_data::Table`] or its resized photos. Every input must have the shape of the
    /// model's input (`in_channels × input_size × input_size`, or `in_features × 1 × 1` for an
    /// MLP); points are returned in the model's normalised coordinates.
    pub fn predict_inputs(&self, inputs: &[Image]) -> Result<Vec<Prediction>> {
        let Some(first) = inputs.first() else {
            return Ok(Vec::new());
        };
        let shape = (first.channels, first.height, first.width);
        let want = self.input_shape();
        let want = want.unwrap_or(shape);
        if let Some((i, x)) = inputs.iter().enumerate().find(|(_, x)| {
            (x.channels, x.height, x.width) != want
                || x.pixels.len() != x.channels * x.height * x.width
        }) {
            return Err(Error::Config {
                key: format!("input {i}"),
                reason: format!(
                    "shape [{}, {}, {}] with {} values (channels, height, width); the model reads \
                     [{}, {}, {}]",
                    x.channels,
                    x.height,
                    x.width,
                    x.pixels.len(),
                    want.0,
                    want.1,
                    want.2
                ),
            });
        }
        let mut pixels = Vec::with_capacity(inputs.len() * first.pixels.len());
        for x in inputs {
            pixels.extend_from_slice(&x.pixels);
        }
        let input = Tensor::from_vec(pixels, (inputs.len(), want.0, want.1, want.2), &self.device)?;
        self.decode(&input, inputs.len())
    }

    /// `[C, H, W]` of the model's input, when the configuration fixes it.
    fn input_shape(&self) -> Option<(usize, usize, usize)> {
        if let Some(t) = self.config.model.as_tcdcn() {
            return Some((t.in_channels, t.input_size, t.input_size));
        }
        self.config
            .model
            .as_mlp()
            .filter(|m| m.in_features > 0)
            .map(|m| (m.in_features, 1, 1))
    }

    fn predict_frames(&self, images: &[&GrayImage], frames: &[Frame]) -> Result<Vec<Prediction>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        match self.input_shape() {
            Some((1, _, _)) => {}
            other => {
                return Err(Error::Config {
                    key: "model".into(),
                    reason: format!(
                        "predicting from grey face images needs a grey image model (in_channels \
                         = 1); this one reads {}: give it model-ready inputs with \
                         Predictor::predict_inputs",
                        match other {
                            Some((c, 1, 1)) if self.config.model.as_mlp().is_some() =>
                                format!("{c} features"),
                            Some((c, _, _)) => format!("{c} channels"),
                            None => "inputs of a size fixed by its data".into(),
                        }
                    ),
                });
            }
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
        let mut preds = self.decode(&input, images.len())?;
        // Points back to pixels of each image given.
        for (p, frame) in preds.iter_mut().zip(frames) {
            let to_source = |pts: &mut Vec<(f32, f32)>| {
                for q in pts.iter_mut() {
                    *q = frame.to_source(q.0, q.1);
                }
            };
            if let Some(l) = p.landmarks.as_mut() {
                to_source(l);
            }
            for (_, pts) in p.points.iter_mut() {
                to_source(pts);
            }
        }
        Ok(preds)
    }

    /// Runs the network on `input` (`n` samples) and reads every task's output as its kind
    /// says ([`RunConfig::task_kind`]); points stay in the model's normalised coordinates.
    fn decode(&self, input: &Tensor, n: usize) -> Result<Vec<Prediction>> {
        let out = self.net.forward_t(input, false)?;
        let mut preds: Vec<Prediction> = (0..n).map(|_| Prediction::default()).collect();
        for task in self.tasks.iter() {
            let Some(y) = out.predictions.get(task.name()) else {
                continue;
            };
            let kind = self.config.task_kind(task.name());
            let rows = match kind {
                Some(TaskKindConfig::Class) => candle_nn::ops::softmax(y, D::Minus1)?,
                Some(TaskKindConfig::Binary) => candle_nn::ops::sigmoid(y)?,
                _ => y.clone(),
            }
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
            let logits = match kind {
                Some(TaskKindConfig::Binary) => Some(y.to_dtype(DType::F32)?.to_vec2::<f32>()?),
                _ => None,
            };
            for (i, (p, row)) in preds.iter_mut().zip(rows).enumerate() {
                let name = task.name();
                match kind {
                    Some(TaskKindConfig::Points) => {
                        let m = row.len() / 2;
                        let pts = (0..m).map(|k| (row[k], row[m + k])).collect();
                        if p.landmarks.is_none() {
                            p.landmarks = Some(pts);
                        } else {
                            p.points.insert(name, pts);
                        }
                    }
                    Some(TaskKindConfig::Regression) => {
                        p.values.insert(name, row);
                    }
                    Some(TaskKindConfig::Binary) => {
                        let positive = logits.as_ref().is_some_and(|l| l[i][0] > 0.0);
                        let q = row[0];
                        p.classes.insert(
                            name,
                            ClassPrediction {
                                class: u32::from(positive),
                                probabilities: vec![1.0 - q, q],
                            },
                        );
                    }
                    Some(TaskKindConfig::Class) | None => {
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
                            name,
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

/// The train/validation split a run of `config` used: its seed and held-out fraction.
fn split_of(config: &RunConfig) -> (u64, f64) {
    (
        config.data.split_seed_or(config.train.seed),
        config.data.val_fraction,
    )
}
