//! One configuration schema for a training run, shared by the `tandem` command line and the
//! `cargo xtask reproduce` experiments.
//!
//! ```toml
//! tasks = ["landmarks", "smile", "pose"]      # the first is the main task
//! sharing = { kind = "hard" }
//! weighting = { kind = "static", weights = { smile = 0.02, pose = 0.02 } }
//!
//! [model]            # tandem_layers::TcdcnConfig
//! input_size = 40
//!
//! [train]            # tandem_train::TrainConfig
//! epochs = 30
//! batch_size = 64
//! seed = 7
//!
//! [data]
//! train_size = 8000
//! val_size = 1000
//! ```
//! Unknown keys and wrong types are errors naming the key; impossible values are caught by
//! [`RunConfig::validate`] before any training starts.
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tandem_data::mtfl::{BoxSpread, Jitter, DEFAULT_BOX_SCALE};
use tandem_data::SynthConfig;
use tandem_heads::{ClassTask, LandmarkTask, Task, TaskSet};
use tandem_layers::TcdcnConfig;
use tandem_share::Sharing;
use tandem_train::{
    AdamWConfig, LrSchedule, OptimizerConfig, StopperConfig, TrainConfig, WeightingConfig,
};

/// The face tasks tandem knows by name, with their number of classes (0 for landmarks).
pub const FACE_TASKS: [(&str, usize); 5] = [
    ("landmarks", 0),
    ("gender", 2),
    ("smile", 2),
    ("glasses", 2),
    ("pose", 5),
];

/// Where the data of a run comes from and how much of it is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Training faces (synthetic data; for real data, at most this many, 0 = all).
    pub train_size: usize,
    /// Validation faces (synthetic data).
    pub val_size: usize,
    /// Fraction of a real annotation file held out for validation.
    pub val_fraction: f64,
    /// The synthetic face generator.
    pub synth: SynthConfig,
    /// How real faces are cropped (MTFL).
    pub crop: CropConfig,
}

/// Refitting the heads of auxiliary tasks that a stopper took out of training.
///
/// A stopped task leaves the objective and its head freezes, but the shared trunk goes on
/// learning for the main task, so the frozen head drifts away from the features it reads (its
/// error climbs back towards the majority class). After training, with the selected epoch's
/// variables, each stopped task's own parameters are trained for `epochs` epochs on the
/// training data with everything else frozen (AdamW at `lr`, no weight decay); the main task's
/// predictions do not change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefitConfig {
    /// Epochs of refitting (0: keep the frozen heads). Default 3.
    pub epochs: usize,
    /// Learning rate. Default 0.01.
    pub lr: f64,
}

impl Default for RefitConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            lr: 0.01,
        }
    }
}

/// How real (MTFL) faces become model inputs: every training-split face is cropped from a box
/// derived from its landmarks — a square centred on their centroid, `box_scale` times their
/// larger extent — jittered in training and spread by a fixed per-face draw in validation, so
/// that validation crops stray from the landmarks as MTFL's test crops do (see
/// [`tandem_data::mtfl::BoxSpread`]). Test faces are the whole image, as the data set defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropConfig {
    /// Side of the face box over the landmarks' larger extent (default 2.85).
    pub box_scale: f32,
    /// Training jitter of the box (uniform draws).
    pub jitter: Jitter,
    /// Spread of the validation crops ([`BoxSpread::MTFL_TEST`] by default: test-like crops;
    /// all zeros: the centred landmark box).
    pub eval_spread: BoxSpread,
    /// Seed of the per-face validation draws (the same validation crops for every run seed).
    pub eval_seed: u64,
}

impl Default for CropConfig {
    fn default() -> Self {
        Self {
            box_scale: DEFAULT_BOX_SCALE,
            jitter: Jitter::default(),
            eval_spread: BoxSpread::MTFL_TEST,
            eval_seed: 0,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train_size: 8000,
            val_size: 1000,
            val_fraction: 0.1,
            synth: SynthConfig::default(),
            crop: CropConfig::default(),
        }
    }
}

/// Everything a training run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Task names from [`FACE_TASKS`]; the first is the main task, the rest auxiliary.
    pub tasks: Vec<String>,
    /// The trunk.
    pub model: TcdcnConfig,
    /// The sharing strategy.
    pub sharing: Sharing,
    /// The loss weighting.
    pub weighting: WeightingConfig,
    /// Task-wise early stopping of auxiliary tasks.
    pub stopper: StopperConfig,
    /// Refitting the heads of stopped tasks after training.
    pub refit: RefitConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// Data.
    pub data: DataConfig,
}

/// The defaults: a configuration that works with any task list (see docs/strategy.md):
/// landmarks helped by the four attributes through one shared trunk (hard sharing) with
/// `tanh` activations; each auxiliary loss weighed 0.01 (an L2 loss on `[0, 1]` coordinates
/// is ~100× smaller than a cross-entropy); TCDCN's task-wise early stopping (`k = 3`,
/// `ε = 1`); AdamW at lr 0.002 with weight decay 10⁻⁴ and a cosine schedule (half an epoch of
/// warm-up, down to 2 % of the rate); 30 epochs of 64-face batches; seed 7.
///
/// The recommended model for the five face tasks on real MTFL is `configs/mtfl.toml`: two
/// cross-stitch columns (landmarks; the four attributes), attribute losses weighed 0.002, no
/// task stopping, 80 epochs and test-like crops. Its column groups name the five tasks, so it is not the default of a
/// schema that also serves other task lists.
impl Default for RunConfig {
    fn default() -> Self {
        Self {
            tasks: FACE_TASKS.iter().map(|(n, _)| n.to_string()).collect(),
            model: TcdcnConfig {
                activation: tandem_layers::Activation::Tanh,
                ..TcdcnConfig::default()
            },
            sharing: Sharing::Hard,
            weighting: WeightingConfig::Static {
                weights: Default::default(),
                aux: Some(0.01),
            },
            stopper: StopperConfig::Tcdcn { k: 3, epsilon: 1.0 },
            refit: RefitConfig::default(),
            train: TrainConfig {
                seed: 7,
                optimizer: OptimizerConfig::AdamW(AdamWConfig {
                    lr: 0.002,
                    ..AdamWConfig::default()
                }),
                schedule: LrSchedule::Cosine {
                    warmup_epochs: 0.5,
                    min_factor: 0.02,
                },
                ..TrainConfig::default()
            },
            data: DataConfig::default(),
        }
    }
}

impl RunConfig {
    /// Parses TOML, naming the file in errors. Every key the text leaves out takes its value
    /// from [`RunConfig::default`], at any depth: `[train]\nepochs = 10` keeps the default
    /// optimizer and schedule. A table with a `kind` (a tagged choice such as
    /// `weighting = { kind = "equal" }` or `[train.optimizer] kind = "sgd"`) replaces the
    /// default whole, its own missing fields taking that kind's defaults.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let err = |e: &dyn std::fmt::Display| Error::Config {
            key: origin.to_string(),
            reason: e.to_string(),
        };
        // Strict parse first: its errors name the line and the key.
        let _: Self = toml::from_str(text).map_err(|e| err(&e))?;
        let over: toml::Table = toml::from_str(text).map_err(|e| err(&e))?;
        let mut merged = toml::Table::try_from(Self::default()).map_err(|e| err(&e))?;
        merge_toml(&mut merged, over);
        let cfg: Self = toml::Value::Table(merged).try_into().map_err(|e| err(&e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Config {
            key: "config".into(),
            reason: e.to_string(),
        })
    }

    /// Checks every value, naming the offending key and what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.tasks.is_empty() {
            return Err(Error::config("tasks", "name at least one task"));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if !FACE_TASKS.iter().any(|(n, _)| n == t) {
                return Err(Error::config(
                    &format!("tasks[{i}]"),
                    format!(
                        "unknown task {t:?}; allowed: {}",
                        FACE_TASKS.map(|(n, _)| n).join(", ")
                    ),
                ));
            }
            if self.tasks[..i].contains(t) {
                return Err(Error::config(
                    &format!("tasks[{i}]"),
                    format!("{t:?} is listed twice"),
                ));
            }
        }
        let names: Vec<&str> = self.tasks.iter().map(String::as_str).collect();
        self.sharing
            .validate(&names)
            .map_err(|e| Error::config("sharing.groups", e.to_string()))?;
        self.weighting
            .validate(&self.task_set())
            .map_err(|e| Error::config("weighting", e.to_string()))?;
        self.stopper
            .validate()
            .map_err(|e| Error::config("stopper", e.to_string()))?;
        self.model
            .spatial_sizes()
            .map_err(|e| Error::config("model", e.to_string()))?;
        self.train
            .validate()
            .map_err(|e| Error::config("train", e.to_string()))?;
        if self.data.synth.size != self.model.input_size {
            return Err(Error::config(
                "data.synth.size",
                format!(
                    "is {} but model.input_size is {}; they must match",
                    self.data.synth.size, self.model.input_size
                ),
            ));
        }
        if !(self.data.val_fraction > 0.0 && self.data.val_fraction < 1.0) {
            return Err(Error::config("data.val_fraction", "must be in (0, 1)"));
        }
        let crop = &self.data.crop;
        if !(crop.box_scale.is_finite() && crop.box_scale > 0.0) {
            return Err(Error::config("data.crop.box_scale", "must be positive"));
        }
        let j = &crop.jitter;
        if ![j.shift, j.scale, j.rotation_deg]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
            || j.scale >= 1.0
        {
            return Err(Error::config(
                "data.crop.jitter",
                "ranges must be finite and non-negative, the scale below 1",
            ));
        }
        if !(self.refit.lr.is_finite() && self.refit.lr > 0.0) {
            return Err(Error::config("refit.lr", "must be positive"));
        }
        if !crop.eval_spread.is_valid() {
            return Err(Error::config(
                "data.crop.eval_spread",
                "standard deviations must be finite and non-negative, clip positive",
            ));
        }
        // The cached region of a face is twice its box (tandem_data::mtfl::MtflOptions).
        let reach = j.reach().max(crop.eval_spread.reach());
        if 2.0 * reach > 2.0 {
            return Err(Error::config(
                "data.crop",
                format!(
                    "jitter or eval_spread reach {reach:.3} box sides from the centre; the cached \
                     region holds 1.0"
                ),
            ));
        }
        Ok(())
    }

    /// The task set: landmarks as the main task when listed first, every other task auxiliary.
    pub fn task_set(&self) -> TaskSet {
        let mut set = TaskSet::new();
        for (i, name) in self.tasks.iter().enumerate() {
            let classes = FACE_TASKS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| *c)
                .unwrap_or(2);
            let task: Arc<dyn Task> = match (classes, i == 0) {
                (0, true) => Arc::new(LandmarkTask::new(name.clone(), 5)),
                (0, false) => Arc::new(LandmarkTask::new(name.clone(), 5).auxiliary()),
                (c, true) => Arc::new(ClassTask::new(name.clone(), c)),
                (c, false) => Arc::new(ClassTask::new(name.clone(), c).auxiliary()),
            };
            set.push(task);
        }
        set
    }
}

/// Deep merge of `over` onto `base`, the rule [`RunConfig::from_toml`] applies to a file over
/// the defaults: tables merge key by key, except that a table with a `kind` key (a tagged
/// choice such as a weighting) replaces the base table whole; anything else is replaced.
pub fn merge_toml(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if !o.contains_key("kind") => {
                merge_toml(b, o)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let e = |s: &str| {
            RunConfig::from_toml(s, "x.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(e("tasks = [\"landmarks\", \"age\"]").contains("tasks[1]"));
        assert!(e("bogus = 1").contains("bogus"));
        assert!(e("[train]\nepochs = \"ten\"").contains("epochs"));
        assert!(e("[train.optimizer]\nkind = \"adamw\"\nlr = -1.0").contains("lr"));
        assert!(e(
            "tasks = [\"landmarks\"]\nweighting = { kind = \"static\", weights = { smile = 1.0 } }"
        )
        .contains("weighting.weights.smile"));
        assert!(e("[model]\ninput_size = 16\n[data.synth]\nsize = 16").contains("too small"));
        let groups = |g: &str| {
            e(&format!(
                "tasks = [\"landmarks\", \"smile\"]\nsharing = {{ kind = \"cross_stitch\", groups = {g} }}"
            ))
        };
        assert!(groups("[[\"smile\", \"pose\"]]").contains("sharing.groups"));
        assert!(groups("[[\"smile\", \"pose\"]]").contains("\"pose\""));
        assert!(groups("[[\"smile\"], [\"smile\"]]").contains("two column groups"));
        assert!(groups("[[]]").contains("no task"));
        assert_eq!(groups("[[\"landmarks\"], [\"smile\"]]"), "");
    }

    #[test]
    fn missing_keys_take_the_defaults() {
        let d = RunConfig::default();
        let cfg =
            RunConfig::from_toml("[train]\nepochs = 10\n[model]\ninput_size = 40", "t").unwrap();
        assert_eq!(cfg.train.epochs, 10);
        assert_eq!(cfg.train.schedule, d.train.schedule);
        assert_eq!(cfg.train.optimizer, d.train.optimizer);
        assert_eq!(cfg.model.activation, d.model.activation);
        assert_eq!(cfg.weighting, d.weighting);
        // a tagged choice replaces the default whole
        let cfg = RunConfig::from_toml(
            "weighting = { kind = \"equal\" }\n[train.optimizer]\nkind = \"sgd\"",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.weighting, WeightingConfig::Equal);
        assert_eq!(
            cfg.train.optimizer.lr(),
            tandem_train::SgdConfig::default().lr
        );
        // the default static weighting adapts to the task list
        assert!(RunConfig::from_toml("tasks = [\"landmarks\", \"pose\"]", "t").is_ok());
    }

    #[test]
    fn round_trips_through_toml() {
        let cfg = RunConfig::default();
        let back = RunConfig::from_toml(&cfg.to_toml().unwrap(), "t").unwrap();
        assert_eq!(cfg, back);
        assert_eq!(
            cfg.task_set().main().map(|t| t.name().to_string()),
            Some("landmarks".into())
        );
    }
}
