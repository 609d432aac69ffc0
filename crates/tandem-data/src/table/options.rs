//! What to read from a table: [`TableOptions`], its tasks ([`TableTask`], [`TableTaskKind`]) and
//! the checks made on them before the file is parsed.
use super::{table_error, NO_COLUMN};
use crate::Result;
use std::path::Path;

/// Which columns of a table are the input and which are labels, and how images are prepared.
///
/// Exactly one input: `features` (numeric columns, a `[D, 1, 1]` input) or `image` (a column of
/// image paths, a `[channels, image_size, image_size]` input).
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    /// Numeric feature columns, in this order (the input of a tabular model); empty when `image`
    /// is set.
    pub features: Vec<String>,
    /// The column holding image paths, relative to the CSV file's folder (an absolute path is
    /// taken as it is); `None` for a feature table.
    pub image: Option<String>,
    /// The tasks, in this order (the order of every sample's labels).
    pub tasks: Vec<TableTask>,
    /// Images are resized to `image_size × image_size` pixels (default 64).
    pub image_size: usize,
    /// Channels of image inputs: 1 (grey, Rec. 709 luma) or 3 (RGB, planar); default 3.
    pub channels: usize,
    /// The column that chooses each row's split (`train`, `val`, `test`) when the header has it
    /// (default `"split"`); an empty name turns the split column off.
    pub split_column: String,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            features: Vec::new(),
            image: None,
            tasks: Vec::new(),
            image_size: 64,
            channels: 3,
            split_column: "split".into(),
        }
    }
}

/// One task of a table: its name, kind and label columns.
#[derive(Debug, Clone, PartialEq)]
pub struct TableTask {
    /// The task name (the key of the sample's labels).
    pub name: String,
    /// What kind of label the columns hold.
    pub kind: TableTaskKind,
    /// The label columns: one for `Class` and `Binary`, one or more for `Regression`, `2n`
    /// (`x1..xn, y1..yn`) for `Points`.
    pub columns: Vec<String>,
}

impl TableTask {
    /// A task named `name` of kind `kind` reading `columns`.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        kind: TableTaskKind,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            name: name.into(),
            kind,
            columns: columns.into_iter().map(Into::into).collect(),
        }
    }
}

/// The kind of a table task's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableTaskKind {
    /// One column of class indices `0..classes` → [`crate::Label::Class`].
    Class {
        /// Number of classes (at least 2).
        classes: usize,
    },
    /// One column of `0` or `1` → [`crate::Label::Binary`].
    Binary,
    /// One or more numeric columns → [`crate::Label::Values`], one value per column.
    Regression,
    /// `2n` numeric columns `x1..xn, y1..yn` → [`crate::Label::Points`]; with an image column
    /// they are pixel coordinates in the original image, divided by its width and height.
    Points,
}

impl TableTaskKind {
    /// The kind's name as a run configuration writes it: `class`, `binary`, `regression`,
    /// `points`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Class { .. } => "class",
            Self::Binary => "binary",
            Self::Regression => "regression",
            Self::Points => "points",
        }
    }
}

/// Largest accepted `image_size` (the decoder's default width limit).
pub(crate) const MAX_IMAGE_SIZE: usize = 8192;

impl TableOptions {
    /// Checks the options alone (before the header is read); errors name `file`, line 1 (the
    /// header) and the column at fault.
    pub(crate) fn check(&self, file: &Path) -> Result<()> {
        let err = |column: &str, reason: String| Err(table_error(file, 1, column, reason));
        match (&self.image, self.features.is_empty()) {
            (Some(image), false) => {
                return err(
                    image,
                    format!(
                        "the options name both features ({}) and an image column; a table's \
                         input is one or the other",
                        self.features.join(", ")
                    ),
                )
            }
            (None, true) => {
                return err(
                    NO_COLUMN,
                    "the options name no input: give `features` (numeric columns) or `image` \
                     (a column of image paths)"
                        .into(),
                )
            }
            (Some(image), true) => {
                if self.channels != 1 && self.channels != 3 {
                    return err(
                        image,
                        format!(
                            "channels = {}: images have 1 (grey) or 3 (RGB) channels",
                            self.channels
                        ),
                    );
                }
                if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
                    return err(
                        image,
                        format!(
                            "image_size = {}: expected 1 to {MAX_IMAGE_SIZE} pixels",
                            self.image_size
                        ),
                    );
                }
            }
            (None, false) => {
                for (i, name) in self.features.iter().enumerate() {
                    if self.features[..i].contains(name) {
                        return err(name, "is listed twice in `features`".into());
                    }
                }
            }
        }
        if self.tasks.is_empty() {
            return err(NO_COLUMN, "the options name no task".into());
        }
        for (i, task) in self.tasks.iter().enumerate() {
            let first = task.columns.first().map_or(NO_COLUMN, String::as_str);
            let what = format!("task `{}` ({})", task.name, task.kind.name());
            if task.name.is_empty() {
                return err(first, "a task has an empty name".into());
            }
            if self.tasks[..i].iter().any(|t| t.name == task.name) {
                return err(first, format!("task name `{}` is used twice", task.name));
            }
            let n = task.columns.len();
            match task.kind {
                TableTaskKind::Class { classes } if classes < 2 => {
                    return err(
                        first,
                        format!("{what}: classes = {classes}, a class task needs at least 2"),
                    );
                }
                TableTaskKind::Class { classes } if u32::try_from(classes).is_err() => {
                    return err(first, format!("{what}: classes = {classes} is too many"));
                }
                TableTaskKind::Class { .. } | TableTaskKind::Binary if n != 1 => {
                    return err(
                        first,
                        format!("{what} names {n} columns; it reads exactly one"),
                    );
                }
                TableTaskKind::Regression if n == 0 => {
                    return err(first, format!("{what} names no column"));
                }
                TableTaskKind::Points if n == 0 || n % 2 != 0 => {
                    return err(
                        first,
                        format!(
                            "{what} names {n} columns; points need an even number, \
                             x1..xn then y1..yn"
                        ),
                    );
                }
                _ => {}
            }
            for (j, column) in task.columns.iter().enumerate() {
                if task.columns[..j].contains(column) {
                    return err(column, format!("{what} lists the column twice"));
                }
            }
        }
        Ok(())
    }
}
