//! Your own data as a table: a CSV file of numeric features or image paths, with one or more
//! label columns per task.
//!
//! ```no_run
//! use std::path::Path;
//! use tandem_data::table::{Table, TableOptions, TableTask, TableTaskKind};
//!
//! let options = TableOptions {
//!     features: vec!["age".into(), "income".into()],
//!     tasks: vec![
//!         TableTask::new("churn", TableTaskKind::Binary, ["churned"]),
//!         TableTask::new("plan", TableTaskKind::Class { classes: 3 }, ["plan"]),
//!     ],
//!     ..TableOptions::default()
//! };
//! let table = Table::open(Path::new("customers.csv"), &options)?; // parse + check every cell
//! let splits = table.splits(0.2, 7)?;  // train / val (/ test), standardised features
//! # Ok::<(), tandem_data::DataError>(())
//! ```
//!
//! # Format
//!
//! A header row names the columns; each further line is one sample. Cells are separated by
//! commas, may be quoted (`"a, b"`), and are trimmed of surrounding spaces; blank lines are
//! skipped and a UTF-8 byte order mark is ignored. Columns that no option names (an `id`, a
//! note) are ignored. Every row has as many cells as the header.
//!
//! - **Input**, one of: `features`, numeric columns (finite, within `f32` range, never empty),
//!   or `image`, a column of JPEG/PNG paths relative to the CSV file's folder.
//! - **Labels**, per [`TableTask`]: `Class { classes }` one column of integers
//!   `0..classes` → [`Label::Class`]; `Binary` one column of `0`/`1` → [`Label::Binary`];
//!   `Regression` one or more numeric columns → [`Label::Values`] (one value per column);
//!   `Points` `2n` numeric columns `x1..xn, y1..yn` → [`Label::Points`]. An empty label cell
//!   is [`Label::Missing`]; a task of several columns is all empty (missing) or all given.
//! - **Split** (optional): a column named [`TableOptions::split_column`] (default `split`) whose
//!   cells, `train`, `val` or `test`, choose each row's split; without it [`Table::splits`]
//!   draws a seeded random split.
//!
//! # Shapes
//!
//! A feature row is a `[D, 1, 1]` [`Image`] (`D` features, `Image::features`), a batch
//! `[B, D, 1, 1]`. An image row is `[C, S, S]` (`C` = [`TableOptions::channels`], 1 grey or 3
//! RGB planar, `S` = [`TableOptions::image_size`]), values `byte / 255`. Points with an image
//! column are pixel coordinates in the *original* image and become `x / width`, `y / height`
//! (as MTFL landmarks); without an image they are kept as given.
//!
//! # Formulas
//!
//! Features are standardised per column with the training rows' statistics
//! ([`FeatureStats`]): `z = (x − mean) / std`, `mean = Σ x / n`, `std = sqrt(Σ (x − mean)² / n)`
//! over the `n` training rows (population standard deviation, `f64` sums in file order), and
//! `std = 1` for a constant column. Images are resized with a triangle filter (see
//! [`images`](self#images)).
//!
//! # Images
//!
//! Each image is decoded once, at [`Table::open`] (in parallel, results in row order), checked
//! against the MTFL decoder limits ([`crate::mtfl::DecodeLimits`]), converted (Rec. 709 luma for
//! grey) and resized to `S × S` by a separable triangle filter (bilinear when enlarging, a
//! triangle `f` source pixels wide when shrinking by `f`); the resized images stay in memory, so
//! [`Dataset::get`] only copies.
//!
//! # Errors
//!
//! [`Table::open`] checks everything before returning, and every flaw of the file or the options
//! is a [`DataError::Table`] naming the file, the line (the header is line 1) and the column (a
//! file that cannot be opened is a [`DataError::Io`] naming it):
//!
//! ```text
//! data.csv: line 4, column x1: `seven` is not a number
//! data.csv: line 6, column size: `inf` is not a finite number
//! data.csv: line 3, column plan: class 3 is out of range: expected an integer from 0 to 2 (classes = 3)
//! data.csv: line 5, column x2: the row has 2 cells, the header has 4 (missing cell)
//! data.csv: line 1, column weight: feature column `weight` is not in the header (it has: id, x1, x2, plan)
//! data.csv: line 2, column photo: image `img/a.png` does not exist (looked for data/img/a.png)
//! ```
//!
//! Cell errors are reported first, in file order, then image errors, in file order.
//!
//! [`Dataset::get`]: crate::Dataset::get
//! [`Label::Class`]: crate::Label::Class
//! [`Label::Binary`]: crate::Label::Binary
//! [`Label::Values`]: crate::Label::Values
//! [`Label::Points`]: crate::Label::Points
//! [`Label::Missing`]: crate::Label::Missing
//! [`Image`]: crate::GrayImage
//! [`DataError::Table`]: crate::DataError::Table
//! [`DataError::Io`]: crate::DataError::Io
mod images;
mod options;
mod parse;
mod split;

pub use options::{TableOptions, TableTask, TableTaskKind};
pub use split::{FeatureStats, TableSplits};

use crate::mtfl::DecodeLimits;
use crate::sample::Image;
use crate::{DataError, Label, Result};
use parse::RowSplit;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem_tensor::TaskMap;

/// The column of an error that concerns no single column (not shown in the message).
pub(crate) const NO_COLUMN: &str = "";

/// `", column NAME"`, or nothing for [`NO_COLUMN`]: the column part of [`DataError::Table`]'s
/// message.
pub(crate) fn at_column(column: &str) -> String {
    if column.is_empty() {
        String::new()
    } else {
        format!(", column {column}")
    }
}

/// A [`DataError::Table`].
pub(crate) fn table_error(
    file: &Path,
    line: usize,
    column: &str,
    reason: impl Into<String>,
) -> DataError {
    DataError::Table {
        file: file.to_path_buf(),
        line,
        column: column.to_string(),
        reason: reason.into(),
    }
}

/// The input columns of every row.
enum Input {
    /// Raw feature values, `n × D` row-major, before standardisation.
    Features {
        /// The feature columns.
        names: Vec<String>,
        /// `n × D` values.
        values: Vec<f64>,
    },
    /// Decoded, resized images, one per row.
    Images {
        /// The image column.
        column: String,
        /// `[C, S, S]` images.
        images: Arc<Vec<Image>>,
    },
}

/// A parsed, checked table: every row's input and labels, held in memory.
pub struct Table {
    path: PathBuf,
    header_line: usize,
    /// The file line of each row.
    lines: Vec<usize>,
    labels: Arc<Vec<TaskMap<Label>>>,
    input: Input,
    /// The split column's name and each row's split, when the header has the column.
    splits: Option<(String, Vec<RowSplit>)>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("rows", &self.len())
            .field("input_shape", &self.input_shape())
            .field("split_column", &self.splits.as_ref().map(|s| &s.0))
            .finish()
    }
}

/// The display name of header column `index`.
fn column_name(names: &[String], index: usize) -> String {
    match names.get(index) {
        Some(name) if !name.is_empty() => name.clone(),
        _ => format!("#{} (unnamed)", index + 1),
    }
}

/// Line numbers from byte offsets: the csv crate's own line count drifts on `\r\n` files, so
/// a record's line is `1 +` the number of `\n` bytes before its first byte.
struct LineIndex(Vec<u64>);

impl LineIndex {
    fn new(bytes: &[u8]) -> Self {
        Self(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i as u64)
                .collect(),
        )
    }

    /// The 1-based line of the record at `p`. After a `\r\n` record end csv places the next
    /// record at the `\n`; that `\n` still belongs to the line before, hence `≤`.
    fn of(&self, p: &csv::Position) -> usize {
        1 + self.0.partition_point(|&nl| nl <= p.byte())
    }
}

/// A csv error as a [`DataError`], naming the line and column where csv knows them.
fn csv_error(file: &Path, names: &[String], lines: &LineIndex, error: csv::Error) -> DataError {
    let line = error.position().map_or(1, |p| lines.of(p));
    match error.into_kind() {
        csv::ErrorKind::Io(source) => DataError::Io {
            path: file.to_path_buf(),
            source,
        },
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let line = pos.map_or(line, |p| lines.of(&p));
            let (column, what) = if len < expected_len {
                (column_name(names, len as usize), "missing")
            } else {
                (format!("#{} (past the header)", expected_len + 1), "extra")
            };
            table_error(
                file,
                line,
                &column,
                format!("the row has {len} cells, the header has {expected_len} ({what} cell)"),
            )
        }
        csv::ErrorKind::Utf8 { pos, err } => table_error(
            file,
            pos.map_or(line, |p| lines.of(&p)),
            &column_name(names, err.field()),
            "the cell is not valid UTF-8 text",
        ),
        other => table_error(file, line, NO_COLUMN, format!("{other:?}")),
    }
}

/// The index of header column `name`, or an error on the header line listing the header.
fn find(file: &Path, line: usize, names: &[String], name: &str, role: &str) -> Result<usize> {
    names.iter().position(|n| n == name).ok_or_else(|| {
        table_error(
            file,
            line,
            name,
            format!(
                "{role} `{name}` is not in the header (it has: {})",
                names.join(", ")
            ),
        )
    })
}

/// A task's column indices.
struct TaskColumns {
    name: String,
    kind: TableTaskKind,
    columns: Vec<usize>,
}

impl Table {
    /// Reads and checks the table at `path`: the header, every cell of every row, and (for an
    /// image table) every image, decoded and resized once. Any flaw is an error naming the file,
    /// the line and the column (see the [module documentation](self#errors)); nothing is
    /// skipped.
    pub fn open(path: &Path, options: &TableOptions) -> Result<Table> {
        options.check(path)?;
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let lines_of = LineIndex::new(&bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(&bytes[..]);
        let header = reader
            .headers()
            .map_err(|e| csv_error(path, &[], &lines_of, e))?
            .clone();
        let header_line = header.position().map_or(1, |p| lines_of.of(p));
        let names: Vec<String> = header.iter().map(str::to_string).collect();
        if names.is_empty() {
            return Err(table_error(
                path,
                1,
                NO_COLUMN,
                "the file is empty: expected a header row naming the columns",
            ));
        }
        for (i, name) in names.iter().enumerate() {
            if let Some(j) = names[..i].iter().position(|n| n == name) {
                return Err(table_error(
                    path,
                    header_line,
                    &column_name(&names, i),
                    format!(
                        "the header names this column twice (columns {} and {})",
                        j + 1,
                        i + 1
                    ),
                ));
            }
        }
        let at = |name: &str, role: &str| find(path, header_line, &names, name, role);
        let features = options
            .features
            .iter()
            .map(|f| at(f, "feature column"))
            .collect::<Result<Vec<_>>>()?;
        let image = match &options.image {
            Some(column) => Some(at(column, "image column")?),
            None => None,
        };
        let tasks = options
            .tasks
            .iter()
            .map(|t| {
                let role = format!("task `{}` ({}) column", t.name, t.kind.name());
                Ok(TaskColumns {
                    name: t.name.clone(),
                    kind: t.kind,
                    columns: t
                        .columns
                        .iter()
                        .map(|c| at(c, &role))
                        .collect::<Result<Vec<_>>>()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let split_column = match options.split_column.as_str() {
            "" => None,
            name => names.iter().position(|n| n == name),
        };

        let mut lines = Vec::new();
        let mut labels = Vec::new();
        let mut values = Vec::new();
        let mut image_paths = Vec::new();
        let mut row_splits = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, &names, &lines_of, e))?;
            let line = record
                .position()
                .map_or(header_line + lines.len() + 1, |p| lines_of.of(p));
            let cell = |i: usize| record.get(i).unwrap_or("");
            let err = |i: usize, reason: String| table_error(path, line, &names[i], reason);
            for &i in &features {
                values.push(parse::feature(cell(i)).map_err(|r| err(i, r))?);
            }
            if let Some(i) = image {
                if cell(i).is_empty() {
                    return Err(err(i, "empty image cell: every row needs an image".into()));
                }
                image_paths.push(cell(i).to_string());
            }
            let mut row = TaskMap::new();
            for task in &tasks {
                let cells: Vec<&str> = task.columns.iter().map(|&i| cell(i)).collect();
                let label = parse::label(task.kind, &task.name, &cells)
                    .map_err(|(k, r)| err(task.columns[k], r))?;
                row.insert(task.name.clone(), label);
            }
            if let Some(i) = split_column {
                row_splits.push(parse::split(cell(i)).map_err(|r| err(i, r))?);
            }
            labels.push(row);
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(table_error(
                path,
                header_line,
                NO_COLUMN,
                "the table has no data rows after the header",
            ));
        }

        let input = match (image, &options.image) {
            (Some(i), Some(column)) => {
                let dir = path.parent().unwrap_or(Path::new(""));
                let limits = DecodeLimits::default();
                let loaded: Vec<_> = image_paths
                    .par_iter()
                    .map(|rel| {
                        let full = dir.join(rel);
                        images::load(&full, options.channels, options.image_size, &limits)
                            .map_err(|reason| (full, reason))
                    })
                    .collect();
                let mut images = Vec::with_capacity(loaded.len());
                for (row, result) in loaded.into_iter().enumerate() {
                    let loaded = result.map_err(|(full, reason)| {
                        let looked = match reason == images::NOT_FOUND {
                            true => format!(" (looked for {})", full.display()),
                            false => String::new(),
                        };
                        let rel = &image_paths[row];
                        let reason = format!("image `{rel}` {reason}{looked}");
                        table_error(path, lines[row], &names[i], reason)
                    })?;
                    for task in &tasks {
                        if task.kind != TableTaskKind::Points {
                            continue;
                        }
                        if let Some(Label::Points(p)) = labels[row].get_mut(&task.name) {
                            let n = p.len() / 2;
                            for x in &mut p[..n] {
                                *x /= loaded.width as f32;
                            }
                            for y in &mut p[n..] {
                                *y /= loaded.height as f32;
                            }
                        }
                    }
                    images.push(loaded.image);
                }
                Input::Images {
                    column: column.clone(),
                    images: Arc::new(images),
                }
            }
            _ => Input::Features {
                names: options.features.clone(),
                values,
            },
        };
        Ok(Table {
            path: path.to_path_buf(),
            header_line,
            lines,
            labels: Arc::new(labels),
            input,
            splits: split_column.map(|i| (names[i].clone(), row_splits)),
        })
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the table has no rows (never true for an opened table).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The file, as given to [`Table::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shape of one sample's input, `[C, H, W]`: `[D, 1, 1]` for `D` features,
    /// `[channels, image_size, image_size]` for images.
    pub fn input_shape(&self) -> [usize; 3] {
        match &self.input {
            Input::Features { names, .. } => [names.len(), 1, 1],
            Input::Images { images, .. } => images
                .first()
                .map_or([0, 0, 0], |im| [im.channels, im.height, im.width]),
        }
    }

    /// The name of the split column when the header has it (rows then choose their split).
    pub fn split_column(&self) -> Option<&str> {
        self.splits.as_ref().map(|(name, _)| name.as_str())
    }

    /// The input columns: the feature columns, or the image column.
    pub fn input_columns(&self) -> Vec<&str> {
        match &self.input {
            Input::Features { names, .. } => names.iter().map(String::as_str).collect(),
            Input::Images { column, .. } => vec![column.as_str()],
        }
    }
}
