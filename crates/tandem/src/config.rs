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
use tandem_data::SynthConfig;
use tandem_heads::{ClassTask, LandmarkTask, Task, TaskSet};
use tandem_layers::TcdcnConfig;
use tandem_share::Sharing;
use tandem_train::{StopperConfig, TrainConfig, WeightingConfig};

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
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train_size: 8000,
            val_size: 1000,
            val_fraction: 0.1,
            synth: SynthConfig::default(),
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
    /// Optimisation.
    pub train: TrainConfig,
    /// Data.
    pub data: DataConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            tasks: FACE_TASKS.iter().map(|(n, _)| n.to_string()).collect(),
            model: TcdcnConfig::default(),
            sharing: Sharing::default(),
            weighting: WeightingConfig::default(),
            stopper: StopperConfig::default(),
            train: TrainConfig::default(),
            data: DataConfig::default(),
        }
    }
}

impl RunConfig {
    /// Parses TOML, naming the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| Error::Config {
            key: origin.to_string(),
            reason: e.to_string(),
        })?;
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
