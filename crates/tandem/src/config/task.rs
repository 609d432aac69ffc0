//! Tasks declared in a configuration: one `[[task]]` table per task.
//!
//! ```toml
//! [[task]]
//! name = "income"
//! kind = "class"          # class | binary | regression | points
//! columns = ["income"]    # the label columns of a table (default: the task's name)
//! classes = 2             # class only
//! main = true             # the main task; the others are auxiliary unless `main` is set on several
//! loss = "cross_entropy"  # per kind: mse | l1 | smooth_l1 (regression, points), cross_entropy (class), bce (binary)
//! ```
//!
//! | kind | head output | target | loss (default first) | metrics |
//! |---|---|---|---|---|
//! | `class` | `[B, classes]` logits | `[B]` class index | `cross_entropy` | `error`, `accuracy` (%) |
//! | `binary` | `[B, 1]` logit | `[B]` 0 or 1 | `bce` | `error`, `accuracy` (%) |
//! | `regression` | `[B, D]`, one per column | `[B, D]` | `mse`, `l1`, `smooth_l1` | `rmse`, `mae`, `r2` (means over columns) |
//! | `points` | `[B, 2n]`, `x1..xn, y1..yn` | `[B, 2n]` | `mse`, `l1`, `smooth_l1` | `nme`, `failure_rate` (%) |
//!
//! Points are normalised by the distance between the first two points (the eyes of a face).
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tandem_data::table::{TableTask, TableTaskKind};
use tandem_heads::{BinaryTask, ClassTask, LandmarkTask, RegressionLoss, RegressionTask, Task};

/// The kind of a declared task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKindConfig {
    /// `n`-way classification (`classes`), one label column of 0-based class indices.
    Class,
    /// Two classes through one logit, one label column of 0 or 1.
    Binary,
    /// Real values, one per label column.
    Regression,
    /// 2-D points, `2n` label columns `x1..xn, y1..yn`.
    Points,
}

impl TaskKindConfig {
    /// The kind's name in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Self::Class => "class",
            Self::Binary => "binary",
            Self::Regression => "regression",
            Self::Points => "points",
        }
    }
}

/// A task's loss in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskLoss {
    /// Squared error (regression: mean over columns; points: sum over coordinates).
    Mse,
    /// Absolute error.
    L1,
    /// Smooth L1 (Huber with β = 1).
    SmoothL1,
    /// Softmax cross-entropy.
    CrossEntropy,
    /// Binary cross-entropy on a logit.
    Bce,
}

impl TaskLoss {
    fn name(self) -> &'static str {
        match self {
            Self::Mse => "mse",
            Self::L1 => "l1",
            Self::SmoothL1 => "smooth_l1",
            Self::CrossEntropy => "cross_entropy",
            Self::Bce => "bce",
        }
    }

    fn regression(self) -> Option<RegressionLoss> {
        match self {
            Self::Mse => Some(RegressionLoss::Mse),
            Self::L1 => Some(RegressionLoss::L1),
            Self::SmoothL1 => Some(RegressionLoss::SmoothL1),
            Self::CrossEntropy | Self::Bce => None,
        }
    }
}

/// One `[[task]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The task's name: its key in batches, metrics and variable names.
    pub name: String,
    /// What the task predicts.
    pub kind: TaskKindConfig,
    /// The label columns of a table. Default: one column named like the task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Number of classes (`class` only, at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Marks a main task. Without any, the first task is the main one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub main: bool,
    /// The loss; default `mse` for regression and points, `cross_entropy` for class, `bce`
    /// for binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<TaskLoss>,
}

impl TaskConfig {
    /// The label columns: `columns`, or the task's name when none is given.
    pub fn label_columns(&self) -> Vec<String> {
        if self.columns.is_empty() {
            vec![self.name.clone()]
        } else {
            self.columns.clone()
        }
    }

    /// The loss, with the kind's default.
    pub fn loss(&self) -> TaskLoss {
        self.loss.unwrap_or(match self.kind {
            TaskKindConfig::Class => TaskLoss::CrossEntropy,
            TaskKindConfig::Binary => TaskLoss::Bce,
            TaskKindConfig::Regression | TaskKindConfig::Points => TaskLoss::Mse,
        })
    }

    /// Checks the task alone; `key` is its place in the configuration (`task[2]`).
    pub fn validate(&self, key: &str) -> Result<()> {
        let err = |field: &str, reason: String| Error::config(&format!("{key}.{field}"), reason);
        if self.name.is_empty() || self.name.contains(['.', '+']) {
            return Err(err(
                "name",
                format!(
                    "{:?} is not a task name: it must be non-empty, without '.' or '+'",
                    self.name
                ),
            ));
        }
        let columns = self.label_columns();
        if let Some(c) = columns.iter().find(|c| c.is_empty()) {
            return Err(err("columns", format!("holds an empty column name {c:?}")));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(err("columns", format!("names column {c:?} twice")));
            }
        }
        let kind = self.kind.name();
        match (self.kind, self.classes) {
            (TaskKindConfig::Class, None) => {
                return Err(err("classes", "a class task needs `classes`".into()))
            }
            (TaskKindConfig::Class, Some(c)) if c < 2 => {
                return Err(err(
                    "classes",
                    format!("is {c}; a class task needs at least 2"),
                ))
            }
            (TaskKindConfig::Class, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(err(
                    "classes",
                    format!("only a class task has classes; this one is {kind}"),
                ))
            }
        }
        let loss = self.loss();
        let allowed: &[TaskLoss] = match self.kind {
            TaskKindConfig::Class => &[TaskLoss::CrossEntropy],
            TaskKindConfig::Binary => &[TaskLoss::Bce],
            TaskKindConfig::Regression | TaskKindConfig::Points => {
                &[TaskLoss::Mse, TaskLoss::L1, TaskLoss::SmoothL1]
            }
        };
        if !allowed.contains(&loss) {
            return Err(err(
                "loss",
                format!(
                    "{} does not fit a {kind} task; allowed: {}",
                    loss.name(),
                    allowed
                        .iter()
                        .map(|l| l.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Checks the number of label columns against the kind (for tables).
    pub fn validate_columns(&self, key: &str) -> Result<()> {
        let err = |field: &str, reason: String| Error::config(&format!("{key}.{field}"), reason);
        let columns = self.label_columns();
        let kind = self.kind.name();
        match self.kind {
            TaskKindConfig::Class | TaskKindConfig::Binary if columns.len() != 1 => {
                return Err(err(
                    "columns",
                    format!(
                        "a {kind} task reads one label column, not {}",
                        columns.len()
                    ),
                ))
            }
            TaskKindConfig::Points if columns.len() < 4 || !columns.len().is_multiple_of(2) => {
                return Err(err(
                    "columns",
                    format!(
                        "a points task reads 2n columns x1..xn, y1..yn with n ≥ 2, not {}",
                        columns.len()
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// The task's head, loss and metrics; `auxiliary` as the task list decides.
    pub fn build(&self, auxiliary: bool) -> Arc<dyn Task> {
        let loss = self.loss().regression().unwrap_or_default();
        let columns = self.label_columns().len();
        match (self.kind, auxiliary) {
            (TaskKindConfig::Class, a) => {
                let t = ClassTask::new(self.name.clone(), self.classes.unwrap_or(2));
                if a {
                    Arc::new(t.auxiliary())
                } else {
                    Arc::new(t)
                }
            }
            (TaskKindConfig::Binary, a) => {
                let t = BinaryTask::new(self.name.clone());
                if a {
                    Arc::new(t.auxiliary())
                } else {
                    Arc::new(t)
                }
            }
            (TaskKindConfig::Regression, a) => {
                let t = RegressionTask::new(self.name.clone(), columns).with_loss(loss);
                if a {
                    Arc::new(t.auxiliary())
                } else {
                    Arc::new(t)
                }
            }
            (TaskKindConfig::Points, a) => {
                // Face data: MTFL's five landmarks; a table: 2n columns.
                let points = if self.columns.is_empty() {
                    5
                } else {
                    columns / 2
                };
                let t = LandmarkTask::new(self.name.clone(), points).with_loss(loss);
                if a {
                    Arc::new(t.auxiliary())
                } else {
                    Arc::new(t)
                }
            }
        }
    }

    /// The task as a table loader reads it.
    pub fn table_task(&self) -> TableTask {
        TableTask {
            name: self.name.clone(),
            kind: match self.kind {
                TaskKindConfig::Class => TableTaskKind::Class {
                    classes: self.classes.unwrap_or(2),
                },
                TaskKindConfig::Binary => TableTaskKind::Binary,
                TaskKindConfig::Regression => TableTaskKind::Regression,
                TaskKindConfig::Points => TableTaskKind::Points,
            },
            columns: self.label_columns(),
        }
    }
}
