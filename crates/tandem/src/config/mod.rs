//! One configuration schema for a training run, shared by the `tandem` command line and the
//! `cargo xtask reproduce` experiments.
//!
//! ```toml
//! tasks = ["landmarks", "smile", "pose"]      # the first is the main task
//! sharing = { kind = "hard" }
//! weighting = { kind = "static", weights = { smile = 0.02, pose = 0.02 } }
//!
//! [model]            # tandem_layers::TrunkConfig (kind = "tcdcn" when left out)
//! input_size = 40
//!
//! [train]            # tandem_train::TrainConfig
//! epochs = 30
//! batch_size = 64
//! seed = 7
//!
//! [data]             # DataConfig
//! train_size = 8000
//! val_size = 1000
//! ```
//!
//! Any other problem declares its tasks, one `[[task]]` table each ([`TaskConfig`]), and
//! reads a CSV table ([`DataConfig`], `kind = "table"`):
//!
//! ```toml
//! [[task]]
//! name = "income"
//! kind = "regression"
//! columns = ["income"]
//! main = true
//! [[task]]
//! name = "churn"
//! kind = "binary"
//!
//! [model]
//! kind = "mlp"
//! hidden = [64, 64]
//!
//! [data]
//! kind = "table"
//! features = ["age", "hours"]
//! ```
//! With `[[task]]` tables the defaults are hard sharing, equal weighting, no task stopping and
//! no refit ([`RunConfig::declared_tasks`]).
//!
//! Unknown keys and wrong types are errors naming the key; impossible values are caught by
//! [`RunConfig::validate`] before any training starts.
mod data;
mod task;

pub use data::{CropConfig, DataConfig, DataKind};
pub use task::{TaskConfig, TaskKindConfig, TaskLoss};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tandem_heads::{ClassTask, LandmarkTask, Task, TaskSet};
use tandem_layers::{TcdcnConfig, TrunkConfig};
use tandem_optim::{AdamWConfig, LrSchedule, OptimizerConfig, StopperConfig, WeightingConfig};
use tandem_share::SharingConfig;
use tandem_train::{RefitConfig, TrainConfig};

/// The face tasks tandem knows by name, with their number of classes (0 for landmarks).
pub const FACE_TASKS: [(&str, usize); 5] = [
    ("landmarks", 0),
    ("gender", 2),
    ("smile", 2),
    ("glasses", 2),
    ("pose", 5),
];

/// Everything a training run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The face preset: task names from [`FACE_TASKS`]; the first is the main task, the rest
    /// auxiliary. Empty when the tasks are declared in `task`.
    pub tasks: Vec<String>,
    /// Tasks declared one `[[task]]` table each ([`TaskConfig`]); they replace the face
    /// preset (`tasks` and `[[task]]` together are an error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub task: Vec<TaskConfig>,
    /// The trunk: `kind = "tcdcn"` (the default, also without `kind`) or `"mlp"`.
    pub model: TrunkConfig,
    /// The sharing strategy.
    pub sharing: SharingConfig,
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
    /// How the trained model is scored and run: test-time mirroring (off by default).
    #[serde(skip_serializing_if = "TestTimeConfig::is_off")]
    pub test_time: TestTimeConfig,
}

/// Test-time options (TOML: `[test_time]` or `test_time = { mirror = true }`): they apply to
/// every scoring of the trained model — a run's `test` split and extra evaluation sets, `tandem
/// eval` and `tandem predict` — but not to the validation passes that select the epoch.
///
/// `mirror`: average the prediction of each face with that of its left-right mirror mapped
/// back (points `x → 1 − x` with the eyes and mouth corners swapped, head pose left ↔ right;
/// [`tandem_share::ensemble`]). It needs an image trunk (`tcdcn`) and doubles inference time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestTimeConfig {
    /// Average each prediction with that of the mirrored input (default false).
    pub mirror: bool,
}

impl TestTimeConfig {
    /// Whether every option is off (the default).
    pub fn is_off(&self) -> bool {
        !self.mirror
    }
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
/// task stopping, 60 × 60 faces on a wider trunk (24-64-96-96 channels, a 200-wide feature
/// layer) for 40 epochs, pose-balanced epochs, in-the-wild degradations, test-like
/// validation crops and test-time mirroring. Its column groups name the five tasks, so it is
/// not the default of a schema that also serves other task lists.
impl Default for RunConfig {
    fn default() -> Self {
        Self {
            tasks: FACE_TASKS.iter().map(|(n, _)| n.to_string()).collect(),
            task: Vec::new(),
            model: TrunkConfig::Tcdcn(TcdcnConfig {
                activation: tandem_layers::Activation::Tanh,
                ..TcdcnConfig::default()
            }),
            sharing: SharingConfig::Hard,
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
            test_time: TestTimeConfig::default(),
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
        Self::from_toml_with(text, origin, toml::Table::new())
    }

    /// [`RunConfig::from_toml`] with `overrides` laid over the text (as a later file would
    /// be: `train.epochs` set from the command line keeps the rest of `[train]`), validated
    /// once, after the overrides.
    pub fn from_toml_with(text: &str, origin: &str, overrides: toml::Table) -> Result<Self> {
        let err = |e: &dyn std::fmt::Display| Error::Config {
            key: origin.to_string(),
            reason: e.to_string(),
        };
        // Strict parse first: its errors name the line and the key.
        let _: Self = toml::from_str(text).map_err(|e| err(&e))?;
        let mut over: toml::Table = toml::from_str(text).map_err(|e| err(&e))?;
        let declared = over
            .get("task")
            .and_then(|t| t.as_array())
            .is_some_and(|a| !a.is_empty());
        let base = if declared {
            Self::declared_tasks()
        } else {
            Self::default()
        };
        let mut merged = toml::Table::try_from(base).map_err(|e| err(&e))?;
        // A `[model]` of the base's own kind adds to the base trunk key by key (`kind =
        // "tcdcn"` means what leaving `kind` out means); another kind replaces it whole.
        if let (Some(toml::Value::Table(m)), Some(toml::Value::Table(b))) =
            (over.get_mut("model"), merged.get("model"))
        {
            if m.get("kind").is_some() && m.get("kind") == b.get("kind") {
                m.remove("kind");
            }
        }
        merge_toml(&mut merged, over);
        merge_toml(&mut merged, overrides);
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
        self.validate_tasks()?;
        let names = self.task_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.sharing.validate(&names).map_err(|e| match e {
            tandem_share::ShareError::Key { key, reason } => {
                Error::config(&format!("sharing.{key}"), reason)
            }
            e => Error::config("sharing", e.to_string()),
        })?;
        self.weighting
            .validate(&self.task_set())
            .map_err(|e| Error::config("weighting", e.to_string()))?;
        self.stopper
            .validate()
            .map_err(|e| Error::config("stopper", e.to_string()))?;
        self.model
            .validate()
            .map_err(|e| Error::config("model", e.to_string()))?;
        if self.model.regularisers().norm == tandem_layers::NormKind::Batch
            && self.train.batch_size < 2
        {
            return Err(Error::config(
                "model.norm",
                format!(
                    "\"batch\" needs at least 2 samples per training batch, and train.batch_size is {}",
                    self.train.batch_size
                ),
            ));
        }
        if self.test_time.mirror && self.model.as_tcdcn().is_none() {
            return Err(Error::config(
                "test_time.mirror",
                "mirroring needs image inputs (the \"tcdcn\" trunk); an MLP reads feature rows",
            ));
        }
        self.validate_data()?;
        self.train
            .validate()
            .map_err(|e| Error::config("train", e.to_string()))?;
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
        self.refit.validate()?;
        if !self.data.augment.is_valid() {
            return Err(Error::config(
                "data.augment",
                "brightness and contrast must be finite and in [0, 1]; degrade: p in [0, 1], \
                 blur_sigma in [0, 5], gamma in [1, 5], noise_sd in [0, 0.5], jpeg_quality in \
                 1..=100",
            ));
        }
        if !self.data.proxy.is_valid() {
            return Err(Error::config(
                "data.proxy",
                "nonfrontal must be in [0, 1); degrade: p in [0, 1], blur_sigma in [0, 5], \
                 gamma in [1, 5], noise_sd in [0, 0.5], jpeg_quality in 1..=100",
            ));
        }
        if !(self.data.pose_balance.is_finite() && (0.0..1.0).contains(&self.data.pose_balance)) {
            return Err(Error::config(
                "data.pose_balance",
                format!("{} must be in [0, 1) (0 = off)", self.data.pose_balance),
            ));
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

    /// The task list: the face preset or `[[task]]` tables, not both, names unique.
    fn validate_tasks(&self) -> Result<()> {
        if !self.task.is_empty() {
            if !self.tasks.is_empty() {
                return Err(Error::config(
                    "tasks",
                    "`tasks = [...]` and `[[task]]` tables cannot be used together; \
                     declare every task in a `[[task]]` table (or set `tasks = []`)",
                ));
            }
            for (i, t) in self.task.iter().enumerate() {
                let key = format!("task[{i}]");
                t.validate(&key)?;
                if self.task[..i].iter().any(|o| o.name == t.name) {
                    return Err(Error::config(
                        &format!("{key}.name"),
                        format!("{:?} is declared twice", t.name),
                    ));
                }
            }
            return Ok(());
        }
        if self.tasks.is_empty() {
            return Err(Error::config(
                "tasks",
                "name at least one task (or declare them in [[task]] tables)",
            ));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if !FACE_TASKS.iter().any(|(n, _)| n == t) {
                return Err(Error::config(
                    &format!("tasks[{i}]"),
                    format!(
                        "unknown task {t:?}; allowed: {} (other tasks are declared in \
                         [[task]] tables)",
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
        Ok(())
    }

    /// The data section against the tasks and the trunk.
    fn validate_data(&self) -> Result<()> {
        let data = &self.data;
        match data.kind {
            DataKind::Synth | DataKind::Mtfl => {
                let Some(tcdcn) = self.model.as_tcdcn() else {
                    return Err(Error::config(
                        "model.kind",
                        "face data (data.kind = \"synth\" or \"mtfl\") needs the \"tcdcn\" trunk",
                    ));
                };
                if data.kind == DataKind::Synth && data.synth.size != tcdcn.input_size {
                    return Err(Error::config(
                        "data.synth.size",
                        format!(
                            "is {} but model.input_size is {}; they must match",
                            data.synth.size, tcdcn.input_size
                        ),
                    ));
                }
                for (i, t) in self.task.iter().enumerate() {
                    let face = FACE_TASKS.iter().find(|(n, _)| *n == t.name);
                    let fits = match face {
                        Some((_, 0)) => t.kind == TaskKindConfig::Points && t.columns.is_empty(),
                        Some((_, c)) => t.kind == TaskKindConfig::Class && t.classes == Some(*c),
                        None => false,
                    };
                    if !fits {
                        return Err(Error::config(
                            &format!("task[{i}]"),
                            format!(
                                "{:?} is not a face task of this data set (landmarks: points \
                                 without columns; gender, smile, glasses: class with 2 classes; \
                                 pose: class with 5); a table of your own needs data.kind = \
                                 \"table\"",
                                t.name
                            ),
                        ));
                    }
                }
            }
            DataKind::Table => {
                if self.task.is_empty() {
                    return Err(Error::config(
                        "task",
                        "a table run declares its tasks in [[task]] tables",
                    ));
                }
                for (i, t) in self.task.iter().enumerate() {
                    t.validate_columns(&format!("task[{i}]"))?;
                }
                match (data.features.is_empty(), &data.image) {
                    (true, None) => {
                        return Err(Error::config(
                            "data.features",
                            "a table needs its input: `features = [...]` (numeric columns) or \
                             `image = \"COLUMN\"` (image paths)",
                        ))
                    }
                    (false, Some(_)) => {
                        return Err(Error::config(
                            "data.image",
                            "give either `features` or `image`, not both",
                        ))
                    }
                    (false, None) if self.model.as_mlp().is_none() => {
                        return Err(Error::config(
                            "model.kind",
                            "numeric features need the \"mlp\" trunk",
                        ))
                    }
                    (true, Some(_)) if self.model.as_tcdcn().is_none() => {
                        return Err(Error::config(
                            "model.kind",
                            "an image table needs the \"tcdcn\" trunk (its input_size and \
                             in_channels set the image size and colour)",
                        ))
                    }
                    _ => {}
                }
                if let Some(tcdcn) = self.model.as_tcdcn() {
                    if !matches!(tcdcn.in_channels, 1 | 3) {
                        return Err(Error::config(
                            "model.in_channels",
                            format!(
                                "is {}; images are read grey (1) or colour (3)",
                                tcdcn.in_channels
                            ),
                        ));
                    }
                }
            }
        }
        if !(data.val_fraction > 0.0 && data.val_fraction < 1.0) {
            return Err(Error::config("data.val_fraction", "must be in (0, 1)"));
        }
        Ok(())
    }

    /// Side of the square input image of the trunk (TCDCN's `input_size`), if it has one.
    pub fn input_size(&self) -> Option<usize> {
        self.model.as_tcdcn().map(|t| t.input_size)
    }

    /// The base of a configuration whose tasks are declared in `[[task]]` tables: the
    /// defaults with no face task, hard sharing, equal weighting, no task stopping and no
    /// refit (the face defaults stay for `tasks = [...]`).
    pub fn declared_tasks() -> Self {
        Self {
            tasks: Vec::new(),
            sharing: SharingConfig::Hard,
            weighting: WeightingConfig::Equal,
            stopper: StopperConfig::Off,
            refit: RefitConfig {
                epochs: 0,
                ..RefitConfig::default()
            },
            ..Self::default()
        }
    }

    /// The task names in order, declared or from the face preset.
    pub fn task_names(&self) -> Vec<String> {
        if self.task.is_empty() {
            self.tasks.clone()
        } else {
            self.task.iter().map(|t| t.name.clone()).collect()
        }
    }

    /// The kind of task `name`: its `[[task]]` kind, or for the face preset `points` for the
    /// landmarks and `class` for the attributes; `None` for a name the configuration lacks.
    pub fn task_kind(&self, name: &str) -> Option<TaskKindConfig> {
        if !self.task.is_empty() {
            return self.task.iter().find(|t| t.name == name).map(|t| t.kind);
        }
        self.tasks.iter().find(|t| *t == name)?;
        let classes = FACE_TASKS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
        Some(match classes {
            Some(0) => TaskKindConfig::Points,
            _ => TaskKindConfig::Class,
        })
    }

    /// The task set. Declared tasks: those marked `main` are main tasks, the others
    /// auxiliary; without any mark the first is the main task. Face preset: the first task is
    /// the main task, every other auxiliary.
    pub fn task_set(&self) -> TaskSet {
        let mut set = TaskSet::new();
        if !self.task.is_empty() {
            let any_main = self.task.iter().any(|t| t.main);
            for (i, t) in self.task.iter().enumerate() {
                let main = if any_main { t.main } else { i == 0 };
                set.push(t.build(!main));
            }
            return set;
        }
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
        assert_eq!(cfg.model, d.model);
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
            tandem_optim::SgdConfig::default().lr
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

    const TABLE: &str = "[[task]]\nname = \"y\"\nkind = \"regression\"\ncolumns = [\"a\", \"b\"]\n\
        [[task]]\nname = \"c\"\nkind = \"class\"\nclasses = 3\nmain = true\n\
        [model]\nkind = \"mlp\"\nhidden = [8]\n[data]\nkind = \"table\"\nfeatures = [\"x\"]\n";

    #[test]
    fn declared_tasks_take_their_own_defaults_and_round_trip() {
        let cfg = RunConfig::from_toml(TABLE, "t").unwrap();
        assert_eq!(cfg.sharing, SharingConfig::Hard);
        assert_eq!(cfg.weighting, WeightingConfig::Equal);
        assert_eq!(cfg.stopper, StopperConfig::Off);
        assert_eq!(cfg.refit.epochs, 0);
        assert!(cfg.tasks.is_empty());
        let set = cfg.task_set();
        assert_eq!(set.names(), ["y", "c"]);
        // `main` marks the class task; the other is auxiliary
        assert_eq!(set.main().map(|t| t.name().to_string()), Some("c".into()));
        assert_eq!(set.get("y").map(|t| t.out_dim()), Some(2));
        let back = RunConfig::from_toml(&cfg.to_toml().unwrap(), "t").unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn overrides_lie_over_the_file_and_are_validated_with_it() {
        let over = |t: &str| -> toml::Table { toml::from_str(t).unwrap() };
        let text = "[train]\nepochs = 10\nbatch_size = 32";
        let cfg =
            RunConfig::from_toml_with(text, "x.toml", over("train = { epochs = 3 }")).unwrap();
        assert_eq!(cfg.train.epochs, 3);
        // the rest of the file's [train] stays
        assert_eq!(cfg.train.batch_size, 32);
        let e = RunConfig::from_toml_with(text, "x.toml", over("train = { epochs = 0 }"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("train") && e.contains("epochs"), "{e}");
    }

    #[test]
    fn a_model_of_the_base_kind_merges_key_by_key() {
        let cfg = RunConfig::from_toml("[model]\nkind = \"tcdcn\"\nin_channels = 3", "t").unwrap();
        let d = RunConfig::default();
        let (Some(a), Some(b)) = (cfg.model.as_tcdcn(), d.model.as_tcdcn()) else {
            panic!("tcdcn expected");
        };
        assert_eq!(a.activation, b.activation);
        assert_eq!(a.in_channels, 3);
    }

    #[test]
    fn declared_task_errors_name_the_key() {
        let e = |s: &str| {
            RunConfig::from_toml(s, "x.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(e(&format!("tasks = [\"landmarks\"]\n{TABLE}")).contains("tasks"));
        assert!(e(&TABLE.replace("classes = 3", "classes = 1")).contains("task[1].classes"));
        assert!(e(&TABLE.replace("main = true", "loss = \"mse\"")).contains("task[1].loss"));
        assert!(e(&TABLE.replace("name = \"c\"", "name = \"y\"")).contains("task[1].name"));
        assert!(e(&TABLE.replace("features = [\"x\"]", "")).contains("data.features"));
        assert!(e(&TABLE.replace("kind = \"mlp\"\nhidden = [8]", "")).contains("model.kind"));
        assert!(e(&TABLE.replace("kind = \"table\"", "kind = \"synth\"")).contains("model.kind"));
        assert!(e(&TABLE.replace("kind = \"class\"", "kind = \"ordinal\"")).contains("ordinal"));
    }
}
