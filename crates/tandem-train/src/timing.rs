//! Where the time of a training run goes: [`FitTiming`], and the transform wrapper that
//! measures augmentation.
//!
//! Timings are kept apart from the results ([`crate::History`], [`crate::Report`]): they differ
//! between runs, results must not.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tandem_data::Transform;

/// Where the wall-clock time of [`Trainer::fit`](crate::Trainer::fit) went, in seconds (see
/// [`Trainer::timing`](crate::Trainer::timing)).
/// Never part of a [`Report`](crate::Report): timings differ between runs, reports must not.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitTiming {
    /// Assembling training batches: reading (or generating) samples, augmenting and stacking
    /// them (wall-clock).
    pub batch_seconds: f64,
    /// Of which augmentation: CPU time in the transform
    /// ([`Trainer::transform`](crate::Trainer::transform)) of training
    /// samples, summed over the threads that assemble a batch in parallel (so it may exceed
    /// `batch_seconds` on several cores).
    pub augment_seconds: f64,
    /// Training steps: forward, losses, weighting and backward, optimizer update.
    pub step_seconds: f64,
    /// Evaluation on the validation split after every epoch (transforms included).
    pub eval_seconds: f64,
    /// Writing checkpoints.
    pub checkpoint_seconds: f64,
}

/// A transform that adds the time it spends in training mode to a counter.
struct TimedTransform {
    inner: Arc<dyn Transform>,
    nanos: Arc<AtomicU64>,
}

impl Transform for TimedTransform {
    fn apply(
        &self,
        sample: tandem_data::Sample,
        rng: &mut rand_chacha::ChaCha8Rng,
        train: bool,
    ) -> tandem_data::Result<tandem_data::Sample> {
        if !train {
            return self.inner.apply(sample, rng, train);
        }
        let t = Instant::now();
        let out = self.inner.apply(sample, rng, train);
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        out
    }
}

/// The CPU time training-mode transforms spend, summed over the threads that run them.
#[derive(Debug, Clone, Default)]
pub(crate) struct AugmentClock(Arc<AtomicU64>);

impl AugmentClock {
    /// `inner`, timed by this clock in training mode.
    pub(crate) fn wrap(&self, inner: Arc<dyn Transform>) -> Arc<dyn Transform> {
        Arc::new(TimedTransform {
            inner,
            nanos: self.0.clone(),
        })
    }

    /// Starts again from zero.
    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// The time measured so far, in seconds.
    pub(crate) fn seconds(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 * 1e-9
    }
}

/// Adds the seconds since `start` to `slot`.
pub(crate) fn add_since(slot: &mut f64, start: Instant) {
    *slot += start.elapsed().as_secs_f64();
}
