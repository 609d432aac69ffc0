//! Splitting a table into train / val / test views, and standardising its features with the
//! training rows' statistics ([`FeatureStats`]).
use super::parse::RowSplit;
use super::{table_error, Input, Table};
use crate::sample::Image;
use crate::{DataError, Dataset, Label, Result, Sample, Subset};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tandem_tensor::TaskMap;

/// The splits of a [`Table`] ([`Table::splits`]), views sharing the table's rows.
#[derive(Clone)]
pub struct TableSplits {
    /// Training rows, in file order.
    pub train: Arc<dyn Dataset>,
    /// Validation rows, in file order.
    pub val: Arc<dyn Dataset>,
    /// Test rows, in file order: `Some` only when the split column names at least one `test`
    /// row.
    pub test: Option<Arc<dyn Dataset>>,
    /// The statistics the features were standardised with (training rows only); `None` for an
    /// image table.
    pub stats: Option<FeatureStats>,
}

impl std::fmt::Debug for TableSplits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSplits")
            .field("train", &self.train.len())
            .field("val", &self.val.len())
            .field("test", &self.test.as_ref().map(|t| t.len()))
            .field("stats", &self.stats)
            .finish()
    }
}

/// Per-feature mean and standard deviation of the training rows; a feature `x` becomes
/// `(x − mean) / std`.
///
/// Over the `n` training rows, in file order with `f64` sums: `mean = Σ x / n`,
/// `std = sqrt(Σ (x − mean)² / n)` (population standard deviation); a constant column
/// (`std = 0`) gets `std = 1`, so it becomes all zeros.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FeatureStats {
    /// Mean of each feature column, in the order of [`super::TableOptions::features`].
    pub mean: Vec<f64>,
    /// Population standard deviation of each feature column (1 for a constant column).
    pub std: Vec<f64>,
}

impl FeatureStats {
    /// The statistics of `rows` (each a slice of `D` values), in the given order.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a [f64]>, features: usize) -> Self {
        let rows: Vec<&[f64]> = rows.into_iter().collect();
        let n = rows.len() as f64;
        let mut mean = vec![0.0; features];
        for row in &rows {
            for (m, x) in mean.iter_mut().zip(row.iter()) {
                *m += x;
            }
        }
        for m in &mut mean {
            *m /= n;
        }
        let mut std = vec![0.0; features];
        for row in &rows {
            for ((s, m), x) in std.iter_mut().zip(&mean).zip(row.iter()) {
                *s += (x - m) * (x - m);
            }
        }
        for s in &mut std {
            *s = (*s / n).sqrt();
            if !(s.is_finite() && *s > 0.0) {
                *s = 1.0;
            }
        }
        Self { mean, std }
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }

    /// `(x − mean) / std` of one row of raw features, as `f32` (an error if the length differs
    /// or a result is not finite).
    pub fn standardise(&self, values: &[f64]) -> Result<Vec<f32>> {
        if values.len() != self.len() || self.std.len() != self.len() {
            return Err(DataError::Invalid(format!(
                "{} feature values for statistics of {} features",
                values.len(),
                self.len()
            )));
        }
        values
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .enumerate()
            .map(|(j, (x, (m, s)))| {
                let z = ((x - m) / s) as f32;
                if z.is_finite() {
                    Ok(z)
                } else {
                    Err(DataError::Invalid(format!(
                        "feature {j}: ({x} − {m}) / {s} is not a finite f32"
                    )))
                }
            })
            .collect()
    }
}

/// Only a length: lets [`Subset::split`] draw a random split, so a table and any other data
/// set of the same length split alike under one seed.
struct Count(usize);

impl Dataset for Count {
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, index: usize) -> Result<Sample> {
        Err(DataError::Invalid(format!(
            "row {index}: a count has no samples"
        )))
    }
}

/// The inputs a view reads: standardised features or decoded images.
enum ViewInput {
    /// `n × D` standardised values, row-major.
    Features { dims: usize, values: Vec<f32> },
    /// One `[C, S, S]` image per row.
    Images(Arc<Vec<Image>>),
}

/// Some rows of a table, in the given order.
struct TableView {
    input: Arc<ViewInput>,
    labels: Arc<Vec<TaskMap<Label>>>,
    indices: Vec<usize>,
}

impl Dataset for TableView {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let row = *self.indices.get(index).ok_or_else(|| {
            DataError::Invalid(format!(
                "index {index} out of range for a table split of {} rows",
                self.indices.len()
            ))
        })?;
        let image = match &*self.input {
            ViewInput::Features { dims, values } => {
                Image::features(values[row * dims..(row + 1) * dims].to_vec())
            }
            ViewInput::Images(images) => images[row].clone(),
        };
        Ok(Sample {
            image,
            labels: self.labels[row].clone(),
        })
    }
}

impl Table {
    /// The train / val / (test) splits.
    ///
    /// With a split column in the header, each row goes where its cell says (`val_fraction` and
    /// `seed` are unused) and `test` holds the `test` rows if there are any. Without one,
    /// `Subset::split(rows, 1 − val_fraction, seed)` draws the split (ChaCha8 seeded by
    /// `hash_seed(seed, "split")`, a shuffle, `round((1 − val_fraction) · n)` training rows,
    /// both parts in file order) and there is no test split.
    ///
    /// Features are standardised with [`FeatureStats`] of the training rows, applied to every
    /// split. Errors: `val_fraction` outside `(0, 1)` (random split), or no training or no
    /// validation row.
    pub fn splits(&self, val_fraction: f64, seed: u64) -> Result<TableSplits> {
        let n = self.len();
        let (train, val, test) = match &self.splits {
            Some((column, cells)) => {
                let rows = |which: RowSplit| -> Vec<usize> {
                    (0..n).filter(|&i| cells[i] == which).collect()
                };
                let (train, val, test) = (
                    rows(RowSplit::Train),
                    rows(RowSplit::Val),
                    rows(RowSplit::Test),
                );
                for (part, name) in [(&train, "train"), (&val, "val")] {
                    if part.is_empty() {
                        return Err(table_error(
                            &self.path,
                            self.header_line,
                            column,
                            format!("no row is in the `{name}` split; name some `{name}` rows"),
                        ));
                    }
                }
                (train, val, (!test.is_empty()).then_some(test))
            }
            None => {
                if !(val_fraction > 0.0 && val_fraction < 1.0) {
                    return Err(DataError::Invalid(format!(
                        "{}: val_fraction = {val_fraction} is not in (0, 1)",
                        self.path.display()
                    )));
                }
                let (train, val) = Subset::split(Arc::new(Count(n)), 1.0 - val_fraction, seed)?;
                let (train, val) = (train.indices().to_vec(), val.indices().to_vec());
                if train.is_empty() || val.is_empty() {
                    return Err(DataError::Invalid(format!(
                        "{}: val_fraction = {val_fraction} of {n} rows leaves {} training and \
                         {} validation rows; both need at least one",
                        self.path.display(),
                        train.len(),
                        val.len()
                    )));
                }
                (train, val, None)
            }
        };
        let (input, stats) = match &self.input {
            Input::Features { names, values } => {
                let dims = names.len();
                let row = |i: usize| &values[i * dims..(i + 1) * dims];
                let stats = FeatureStats::of(train.iter().map(|&i| row(i)), dims);
                let mut z = Vec::with_capacity(values.len());
                for i in 0..n {
                    for (j, &x) in row(i).iter().enumerate() {
                        let (m, s) = (stats.mean[j], stats.std[j]);
                        let v = ((x - m) / s) as f32;
                        if !v.is_finite() {
                            return Err(table_error(
                                &self.path,
                                self.lines[i],
                                &names[j],
                                format!(
                                    "{x} standardised with the training mean {m} and std {s} \
                                     is not a finite f32"
                                ),
                            ));
                        }
                        z.push(v);
                    }
                }
                (ViewInput::Features { dims, values: z }, Some(stats))
            }
            Input::Images { images, .. } => (ViewInput::Images(images.clone()), None),
        };
        let input = Arc::new(input);
        let view = |indices: Vec<usize>| -> Arc<dyn Dataset> {
            Arc::new(TableView {
                input: input.clone(),
                labels: self.labels.clone(),
                indices,
            })
        };
        Ok(TableSplits {
            train: view(train),
            val: view(val),
            test: test.map(view),
            stats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_population_and_constant_columns_get_one() {
        let rows = [[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]];
        let s = FeatureStats::of(rows.iter().map(|r| &r[..]), 2);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.std, vec![(2.0f64 / 3.0).sqrt(), 1.0]);
        let z = s.standardise(&[3.0, 5.0]).unwrap();
        assert_eq!(z, vec![(1.0 / (2.0f64 / 3.0).sqrt()) as f32, 0.0]);
        assert!(s.standardise(&[1.0]).is_err());
    }
}
