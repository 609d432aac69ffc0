//! Batching: seeded shuffle, per-sample transforms, stacking.
//!
//! A [`Batch`] holds `input: [B, C, H, W]` f32 (a table's features: `[B, D, 1, 1]`) and one
//! [`Target`] per task: `Points` and `Values` labels become `[B, D]` f32 values, `Class` labels
//! `[B]` u32, `Binary` labels `[B]` f32 (0 or 1); when any sample of the batch lacks a task's
//! label, that task's target gets a `[B]` f32 mask (1 = labelled).
//!
//! The order of epoch `e` is a Fisher–Yates shuffle seeded by `(seed, e)`; the transform of
//! sample `i` in epoch `e` gets its own RNG seeded by `(seed, e, i)` ([`sample_rng`]). Batch `k`
//! of epoch `e` can therefore be rebuilt alone ([`Batcher::batch`]), which is what exact resume
//! needs, and samples are prepared in parallel without changing any value.
use crate::{DataError, Dataset, Label, Result, Sample};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::sync::Arc;
use tandem_tensor::{hash_seed, Target, TaskMap};

/// A per-sample transformation, e.g. augmentation or cropping. Must be a pure function of its
/// arguments (all randomness from `rng`).
pub trait Transform: Send + Sync {
    /// Transforms one sample. `train` is false for evaluation, where a transform must be
    /// deterministic (no jitter, no mirroring).
    fn apply(&self, sample: Sample, rng: &mut ChaCha8Rng, train: bool) -> Result<Sample>;
}

/// The RNG for sample `index` of epoch `epoch` under `seed`.
pub fn sample_rng(seed: u64, epoch: usize, index: usize) -> ChaCha8Rng {
    let s = hash_seed(seed, "sample") ^ hash_seed(epoch as u64, "epoch").rotate_left(17);
    ChaCha8Rng::seed_from_u64(hash_seed(s, &index.to_string()))
}

/// A stacked batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, C, H, W]` f32 images (`[B, D, 1, 1]` for table features).
    pub input: Tensor,
    /// One target per task, in the samples' label order.
    pub targets: TaskMap<Target>,
    /// The data set indices of the samples, in batch order.
    pub indices: Vec<usize>,
}

/// Turns a [`Dataset`] into batches.
#[derive(Clone)]
pub struct Batcher {
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
    train: bool,
    transform: Option<Arc<dyn Transform>>,
}

impl Batcher {
    /// Training batches: shuffled every epoch, last partial batch dropped, transforms in
    /// training mode.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size: batch_size.max(1),
            seed,
            shuffle: true,
            drop_last: true,
            train: true,
            transform: None,
        }
    }

    /// Evaluation batches: dataset order, every sample, transforms in evaluation mode.
    pub fn eval(batch_size: usize) -> Self {
        Self {
            batch_size: batch_size.max(1),
            seed: 0,
            shuffle: false,
            drop_last: false,
            train: false,
            transform: None,
        }
    }

    /// Applies `transform` to every sample.
    pub fn with_transform(mut self, transform: Arc<dyn Transform>) -> Self {
        self.transform = Some(transform);
        self
    }

    /// Keeps (`false`) or drops (`true`) the last partial batch.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches an epoch over `len` samples yields.
    pub fn num_batches(&self, len: usize) -> usize {
        if self.drop_last && len >= self.batch_size {
            len / self.batch_size
        } else {
            len.div_ceil(self.batch_size)
        }
    }

    /// The sample order of epoch `epoch` over `len` samples.
    pub fn order(&self, len: usize, epoch: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..len).collect();
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(hash_seed(
                self.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                "shuffle",
            ));
            idx.shuffle(&mut rng);
        }
        idx
    }

    /// Batch number `k` of epoch `epoch`.
    pub fn batch(
        &self,
        ds: &dyn Dataset,
        epoch: usize,
        k: usize,
        device: &Device,
    ) -> Result<Batch> {
        let order = self.order(ds.len(), epoch);
        self.batch_from_order(ds, &order, epoch, k, device)
    }

    /// The sample indices of batch `k` of epoch `epoch` over `len` samples, in batch order.
    pub fn batch_indices(&self, len: usize, epoch: usize, k: usize) -> Result<Vec<usize>> {
        let order = self.order(len, epoch);
        self.indices_from_order(&order, k)
    }

    fn indices_from_order(&self, order: &[usize], k: usize) -> Result<Vec<usize>> {
        let start = k * self.batch_size;
        if start >= order.len() {
            return Err(DataError::Invalid(format!(
                "batch {k} out of range for {} samples",
                order.len()
            )));
        }
        let end = (start + self.batch_size).min(order.len());
        Ok(order[start..end].to_vec())
    }

    /// The batch of the samples `indices` (in that order), transformed as batch samples of
    /// epoch `epoch` are: each with the RNG of its own index ([`sample_rng`]), so any part of a
    /// batch — a data-parallel rank's shard — holds exactly the samples the whole batch holds.
    pub fn batch_of(
        &self,
        ds: &dyn Dataset,
        indices: Vec<usize>,
        epoch: usize,
        device: &Device,
    ) -> Result<Batch> {
        if let Some(&i) = indices.iter().find(|&&i| i >= ds.len()) {
            return Err(DataError::Invalid(format!(
                "sample {i} out of range for {} samples",
                ds.len()
            )));
        }
        if indices.is_empty() {
            return Err(DataError::Invalid("a batch of no samples".into()));
        }
        let samples: Vec<Sample> = indices
            .par_iter()
            .map(|&i| {
                let s = ds.get(i)?;
                match &self.transform {
                    Some(t) => t.apply(s, &mut sample_rng(self.seed, epoch, i), self.train),
                    None => Ok(s),
                }
            })
            .collect::<Result<_>>()?;
        let (input, targets) = stack(&samples, device)?;
        Ok(Batch {
            input,
            targets,
            indices,
        })
    }

    fn batch_from_order(
        &self,
        ds: &dyn Dataset,
        order: &[usize],
        epoch: usize,
        k: usize,
        device: &Device,
    ) -> Result<Batch> {
        let indices = self.indices_from_order(order, k)?;
        self.batch_of(ds, indices, epoch, device)
    }

    /// All batches of epoch `epoch`, built lazily.
    pub fn iter<'a>(
        &'a self,
        ds: &'a dyn Dataset,
        epoch: usize,
        device: &'a Device,
    ) -> impl Iterator<Item = Result<Batch>> + 'a {
        let order = self.order(ds.len(), epoch);
        (0..self.num_batches(ds.len()))
            .map(move |k| self.batch_from_order(ds, &order, epoch, k, device))
    }
}

/// Stacks samples into `[B, C, H, W]` inputs and per-task targets.
pub fn stack(samples: &[Sample], device: &Device) -> Result<(Tensor, TaskMap<Target>)> {
    let first = samples
        .first()
        .ok_or_else(|| DataError::Invalid("cannot stack an empty batch".into()))?;
    let (c, h, w) = (first.image.channels, first.image.height, first.image.width);
    let mut pixels = Vec::with_capacity(samples.len() * c * h * w);
    for (i, s) in samples.iter().enumerate() {
        let img = &s.image;
        if (img.channels, img.height, img.width) != (c, h, w) || img.pixels.len() != c * h * w {
            return Err(DataError::Invalid(format!(
                "sample {i} of the batch is {}x{}x{}, the first is {c}x{w}x{h}",
                img.channels, img.width, img.height
            )));
        }
        pixels.extend_from_slice(&img.pixels);
    }
    let input = Tensor::from_vec(pixels, (samples.len(), c, h, w), device)?;
    let mut targets = TaskMap::new();
    for (task, _) in first.labels.iter() {
        targets.insert(task, stack_task(samples, task, device)?);
    }
    Ok((input, targets))
}

/// What the labelled samples of a task hold, decided by the first labelled one.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// `[B, D]` f32 (points or values).
    Real(usize),
    /// `[B]` u32.
    Class,
    /// `[B]` f32 in {0, 1}.
    Binary,
}

fn stack_task(samples: &[Sample], task: &str, device: &Device) -> Result<Target> {
    let b = samples.len();
    let labels: Vec<&Label> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.labels
                .get(task)
                .ok_or_else(|| DataError::Invalid(format!("sample {i} has no label for {task}")))
        })
        .collect::<Result<_>>()?;
    let shape = labels
        .iter()
        .find_map(|l| match l {
            Label::Points(p) | Label::Values(p) => Some(Shape::Real(p.len())),
            Label::Class(_) => Some(Shape::Class),
            Label::Binary(_) => Some(Shape::Binary),
            Label::Missing => None,
        })
        .unwrap_or(Shape::Class);
    let mismatch = |i: usize| {
        DataError::Invalid(format!(
            "sample {i}: label {task} is not of the kind of the batch's first labelled sample"
        ))
    };
    let mask: Vec<f32> = labels
        .iter()
        .map(|l| {
            if matches!(l, Label::Missing) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let values = match shape {
        Shape::Real(d) => {
            let mut v = Vec::with_capacity(b * d);
            for (i, l) in labels.iter().enumerate() {
                match l {
                    Label::Points(p) | Label::Values(p) if p.len() == d => v.extend_from_slice(p),
                    Label::Missing => v.resize(v.len() + d, 0.0),
                    Label::Points(_) | Label::Values(_) => {
                        return Err(DataError::Invalid(format!(
                            "sample {i}: label {task} does not match the batch's {d} values"
                        )))
                    }
                    _ => return Err(mismatch(i)),
                }
            }
            Tensor::from_vec(v, (b, d), device)?
        }
        Shape::Class => {
            let mut v = Vec::with_capacity(b);
            for (i, l) in labels.iter().enumerate() {
                match l {
                    Label::Class(c) => v.push(*c),
                    Label::Missing => v.push(0),
                    _ => return Err(mismatch(i)),
                }
            }
            Tensor::from_vec(v, b, device)?
        }
        Shape::Binary => {
            let mut v = Vec::with_capacity(b);
            for (i, l) in labels.iter().enumerate() {
                match l {
                    Label::Binary(y) => v.push(if *y { 1f32 } else { 0.0 }),
                    Label::Missing => v.push(0.0),
                    _ => return Err(mismatch(i)),
                }
            }
            Tensor::from_vec(v, b, device)?
        }
    };
    if mask.iter().all(|&m| m == 1.0) {
        Ok(Target::new(values))
    } else {
        Ok(Target::masked(values, Tensor::from_vec(mask, b, device)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GrayImage;

    struct Toy(usize);
    impl Dataset for Toy {
        fn len(&self) -> usize {
            self.0
        }
        fn get(&self, i: usize) -> Result<Sample> {
            let mut image = GrayImage::new(2, 2);
            image.pixels[0] = i as f32;
            let labels = TaskMap::new()
                .with("pts", Label::Points(vec![i as f32, 0.5]))
                .with(
                    "cls",
                    if i.is_multiple_of(3) {
                        Label::Missing
                    } else {
                        Label::Class(i as u32 % 2)
                    },
                );
            Ok(Sample { image, labels })
        }
    }

    #[test]
    fn epochs_shuffle_differently_and_reproducibly() {
        let b = Batcher::train(4, 9);
        assert_eq!(b.order(10, 0), b.order(10, 0));
        assert_ne!(b.order(10, 0), b.order(10, 1));
        let mut o = b.order(10, 3);
        o.sort_unstable();
        assert_eq!(o, (0..10).collect::<Vec<_>>());
        assert_eq!(b.num_batches(10), 2);
        assert_eq!(Batcher::eval(4).num_batches(10), 3);
    }

    #[test]
    fn stacks_targets_and_masks() -> Result<()> {
        let b = Batcher::eval(4);
        let batches: Vec<Batch> = b.iter(&Toy(6), 0, &Device::Cpu).collect::<Result<_>>()?;
        assert_eq!(batches.len(), 2);
        let first = &batches[0];
        assert_eq!(first.input.dims(), &[4, 1, 2, 2]);
        assert_eq!(
            first.targets["pts"].values.to_vec2::<f32>()?[3],
            vec![3.0, 0.5]
        );
        assert_eq!(
            first.targets["cls"].values.to_vec1::<u32>()?,
            vec![0, 1, 0, 0]
        );
        let mask = first.targets["cls"]
            .mask
            .as_ref()
            .map(|m| m.to_vec1::<f32>());
        assert_eq!(mask.transpose()?, Some(vec![0.0, 1.0, 1.0, 0.0]));
        assert_eq!(batches[1].indices, vec![4, 5]);
        Ok(())
    }

    #[test]
    fn a_batch_can_be_rebuilt_alone() -> Result<()> {
        let b = Batcher::train(3, 5);
        let all: Vec<Batch> = b.iter(&Toy(10), 2, &Device::Cpu).collect::<Result<_>>()?;
        let again = b.batch(&Toy(10), 2, 1, &Device::Cpu)?;
        assert_eq!(all[1].indices, again.indices);
        Ok(())
    }
}
