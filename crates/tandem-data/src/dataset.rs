//! The [`Dataset`] trait, [`Subset`] views and named [`EvalSet`]s.
use crate::{DataError, Result, Sample};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// An indexable collection of samples. `get` must be deterministic: the same index always
/// gives the same sample (randomness belongs in a [`crate::Transform`]).
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sample at `index` (`index < len()`).
    fn get(&self, index: usize) -> Result<Sample>;
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        (**self).get(index)
    }
}

/// A named evaluation set: samples scored with a trained model and never used to select it,
/// each passed through `transform` (in evaluation mode) when there is one.
#[derive(Clone)]
pub struct EvalSet {
    /// Its name in reports (`val_centred`, `val_net_7876`, ...).
    pub name: String,
    /// The samples.
    pub data: Arc<dyn Dataset>,
    /// The transform, if any.
    pub transform: Option<Arc<dyn crate::Transform>>,
    /// Also score this set without test-time averaging, so that a report shows what the
    /// averaging adds (`tandem` reports it as `<name>_no_mirror` when mirroring is on).
    pub compare_plain: bool,
}

/// A view of some indices of another data set.
#[derive(Clone)]
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Subset {
    /// The samples of `inner` at `indices`, in that order.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(DataError::Invalid(format!(
                "subset index {bad} out of range for a data set of {}",
                inner.len()
            )));
        }
        Ok(Self { inner, indices })
    }

    /// Every sample of `inner`.
    pub fn all(inner: Arc<dyn Dataset>) -> Self {
        let indices = (0..inner.len()).collect();
        Self { inner, indices }
    }

    /// A seeded random split: `round(train_fraction · len)` samples for training, the rest for
    /// validation, both in ascending index order. The same seed gives the same split.
    pub fn split(inner: Arc<dyn Dataset>, train_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(0.0..=1.0).contains(&train_fraction) {
            return Err(DataError::Invalid(format!(
                "train fraction {train_fraction} is not in [0, 1]"
            )));
        }
        let n = inner.len();
        let mut idx: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(tandem_tensor::hash_seed(seed, "split"));
        idx.shuffle(&mut rng);
        let n_train = (train_fraction * n as f64).round() as usize;
        let mut train = idx[..n_train].to_vec();
        let mut val = idx[n_train..].to_vec();
        train.sort_unstable();
        val.sort_unstable();
        Ok((
            Self {
                inner: inner.clone(),
                indices: train,
            },
            Self {
                inner,
                indices: val,
            },
        ))
    }

    /// The first `n` samples of this view (all if `n >= len`).
    pub fn take(&self, n: usize) -> Self {
        Self {
            inner: self.inner.clone(),
            indices: self.indices.iter().copied().take(n).collect(),
        }
    }

    /// Indices into the underlying data set.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        match self.indices.get(index) {
            Some(&i) => self.inner.get(i),
            None => Err(DataError::Invalid(format!(
                "index {index} out of range for a subset of {}",
                self.indices.len()
            ))),
        }
    }
}
