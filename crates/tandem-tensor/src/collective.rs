//! Collective operations between the ranks of a data-parallel run.
//!
//! A data-parallel run has `R` ranks (processes, or threads of one process), each holding the
//! same variables and a contiguous shard of every global batch. They meet in two operations:
//!
//! - [`Collective::sum`]: the element-wise sum of a vector over the ranks, every rank getting
//!   the same result. The sum is formed from every rank's vector **added in rank order**
//!   (`((v₀ + v₁) + v₂) + …`), not in whatever order an all-reduce tree picks, so two runs with
//!   the same seed and `R` give identical bits.
//! - [`Collective::gather`]: every rank's vector (of any length), in rank order.
//!
//! Both are *collective*: every rank must call them in the same order with vectors of the same
//! meaning, or the run hangs. Both use `f64`, so a sum of `f32` gradients loses nothing to the
//! order of its additions beyond the last `f32` rounding.
//!
//! Implementations: [`Solo`] (one rank, the default: nothing travels), [`ThreadGroup`] (ranks
//! as threads of one process, for tests and single-machine use) and, with the `mpi` feature of
//! `tandem-train`, MPI (ranks as processes, on one or several machines).
use std::sync::{Arc, Condvar, Mutex};

/// A failure of a collective operation (a peer that died, a transport error).
#[derive(Debug, thiserror::Error)]
#[error("collective {op} on rank {rank} of {ranks}: {reason}")]
pub struct CollectiveError {
    /// The operation (`sum`, `gather`).
    pub op: &'static str,
    /// The rank that saw the failure.
    pub rank: usize,
    /// The number of ranks.
    pub ranks: usize,
    /// What went wrong.
    pub reason: String,
}

/// The ranks of a data-parallel run (see the module docs).
pub trait Collective: Send + Sync + std::fmt::Debug {
    /// This process's (or thread's) rank, in `0..ranks()`.
    fn rank(&self) -> usize;

    /// The number of ranks `R`.
    fn ranks(&self) -> usize;

    /// Every rank's `values` in rank order (lengths may differ between ranks).
    fn gather(&self, values: &[f64]) -> Result<Vec<Vec<f64>>, CollectiveError>;

    /// Replaces `values` by their element-wise sum over the ranks, added in rank order. Every
    /// rank must pass a vector of the same length.
    fn sum(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
        if self.ranks() <= 1 {
            return Ok(());
        }
        let all = self.gather(values)?;
        sum_in_rank_order(&all, values).map_err(|reason| CollectiveError {
            op: "sum",
            rank: self.rank(),
            ranks: self.ranks(),
            reason,
        })
    }
}

/// `out[i] = ((all[0][i] + all[1][i]) + …)`: the rank-ordered sum [`Collective::sum`] defines.
pub fn sum_in_rank_order(all: &[Vec<f64>], out: &mut [f64]) -> Result<(), String> {
    if let Some((r, v)) = all.iter().enumerate().find(|(_, v)| v.len() != out.len()) {
        return Err(format!(
            "rank {r} sent {} values where {} were expected",
            v.len(),
            out.len()
        ));
    }
    let Some((first, rest)) = all.split_first() else {
        return Ok(());
    };
    out.copy_from_slice(first);
    for v in rest {
        for (o, x) in out.iter_mut().zip(v) {
            *o += x;
        }
    }
    Ok(())
}

/// One rank: a run that is not data-parallel. [`Collective::sum`] leaves its vector as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        1
    }

    fn gather(&self, values: &[f64]) -> Result<Vec<Vec<f64>>, CollectiveError> {
        Ok(vec![values.to_vec()])
    }
}

/// What the ranks of a [`ThreadGroup`] share: one slot per rank and a generation counter.
#[derive(Debug)]
struct Board {
    slots: Vec<Option<Vec<f64>>>,
    /// The gathered vectors of the last completed round, taken by each rank once.
    done: Option<Arc<Vec<Vec<f64>>>>,
    /// Ranks that still have to read `done`.
    readers: usize,
    generation: u64,
    /// Set when a rank's handle was dropped: the group can no longer meet.
    broken: Option<usize>,
}

/// Ranks as threads of one process, meeting at a shared board: for tests of data-parallel
/// training without MPI, and for a multi-core machine where one process per rank is not
/// wanted. [`ThreadGroup::new`] returns one handle per rank; give each to its own thread.
///
/// ```
/// use tandem_tensor::{Collective, ThreadGroup};
/// let handles = ThreadGroup::new(2);
/// let sums: Vec<Vec<f64>> = std::thread::scope(|s| {
///     let jobs: Vec<_> = handles
///         .into_iter()
///         .map(|h| s.spawn(move || {
///             let mut v = vec![h.rank() as f64 + 1.0, 10.0];
///             h.sum(&mut v).unwrap();
///             v
///         }))
///         .collect();
///     jobs.into_iter().map(|j| j.join().unwrap()).collect()
/// });
/// assert_eq!(sums, [vec![3.0, 20.0], vec![3.0, 20.0]]);
/// ```
#[derive(Debug)]
pub struct ThreadGroup {
    rank: usize,
    ranks: usize,
    shared: Arc<(Mutex<Board>, Condvar)>,
}

impl ThreadGroup {
    /// `ranks` handles, rank 0 first.
    pub fn new(ranks: usize) -> Vec<ThreadGroup> {
        let ranks = ranks.max(1);
        let shared = Arc::new((
            Mutex::new(Board {
                slots: vec![None; ranks],
                done: None,
                readers: 0,
                generation: 0,
                broken: None,
            }),
            Condvar::new(),
        ));
        (0..ranks)
            .map(|rank| ThreadGroup {
                rank,
                ranks,
                shared: shared.clone(),
            })
            .collect()
    }

    fn error(&self, reason: String) -> CollectiveError {
        CollectiveError {
            op: "gather",
            rank: self.rank,
            ranks: self.ranks,
            reason,
        }
    }
}

impl Drop for ThreadGroup {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        if let Ok(mut b) = lock.lock() {
            if b.broken.is_none() {
                b.broken = Some(self.rank);
            }
        }
        cv.notify_all();
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn gather(&self, values: &[f64]) -> Result<Vec<Vec<f64>>, CollectiveError> {
        if self.ranks == 1 {
            return Ok(vec![values.to_vec()]);
        }
        let (lock, cv) = &*self.shared;
        let poisoned = |_| self.error("a rank panicked".into());
        let mut b = lock.lock().map_err(poisoned)?;
        // Wait until the previous round has been read by every rank.
        while b.readers > 0 && b.broken.is_none() {
            b = cv.wait(b).map_err(poisoned)?;
        }
        if let Some(r) = b.broken {
            return Err(self.error(format!("rank {r} left the group")));
        }
        b.slots[self.rank] = Some(values.to_vec());
        let generation = b.generation;
        if b.slots.iter().all(Option::is_some) {
            let all: Vec<Vec<f64>> = b.slots.iter_mut().filter_map(Option::take).collect();
            b.done = Some(Arc::new(all));
            b.readers = self.ranks;
            b.generation += 1;
            cv.notify_all();
        } else {
            while b.generation == generation && b.broken.is_none() {
                b = cv.wait(b).map_err(poisoned)?;
            }
            if b.generation == generation {
                let r = b.broken.unwrap_or(self.rank);
                return Err(self.error(format!("rank {r} left the group")));
            }
        }
        let all = b
            .done
            .clone()
            .ok_or_else(|| self.error("no round".into()))?;
        b.readers -= 1;
        if b.readers == 0 {
            b.done = None;
            cv.notify_all();
        }
        Ok(all.as_ref().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T: Send>(ranks: usize, f: impl Fn(ThreadGroup) -> T + Sync) -> Vec<T> {
        let handles = ThreadGroup::new(ranks);
        std::thread::scope(|s| {
            let jobs: Vec<_> = handles
                .into_iter()
                .map(|h| {
                    let f = &f;
                    s.spawn(move || f(h))
                })
                .collect();
            jobs.into_iter().map(|j| j.join().unwrap()).collect()
        })
    }

    #[test]
    fn sums_in_rank_order_every_round() {
        let out = run(3, |h| {
            let mut rounds = Vec::new();
            for round in 0..50 {
                let mut v = vec![(h.rank() * 100 + round) as f64, 1.0];
                h.sum(&mut v).unwrap();
                rounds.push(v);
            }
            rounds
        });
        for rounds in &out {
            for (round, v) in rounds.iter().enumerate() {
                assert_eq!(v, &vec![(300 + 3 * round) as f64, 3.0]);
            }
        }
    }

    #[test]
    fn rank_order_decides_the_rounding() {
        // 1e16 + 1 - 1e16 differs by order: the rank order is the one used on every rank.
        let out = run(3, |h| {
            let mut v = vec![[1e16, 1.0, -1e16][h.rank()]];
            h.sum(&mut v).unwrap();
            v[0]
        });
        let want = (1e16 + 1.0) + -1e16;
        assert!(out.iter().all(|v| *v == want), "{out:?}");
    }

    #[test]
    fn gather_keeps_lengths_and_order() {
        let out = run(2, |h| {
            h.gather(&vec![h.rank() as f64; h.rank() + 1]).unwrap()
        });
        assert_eq!(out[0], vec![vec![0.0], vec![1.0, 1.0]]);
        assert_eq!(out[0], out[1]);
    }

    #[test]
    fn a_rank_that_leaves_is_an_error_not_a_hang() {
        let out = run(2, |h| {
            if h.rank() == 1 {
                drop(h);
                return None;
            }
            Some(h.gather(&[1.0]).unwrap_err().to_string())
        });
        assert!(
            out[0].as_deref().unwrap().contains("rank 1 left"),
            "{out:?}"
        );
    }

    #[test]
    fn a_length_mismatch_is_an_error() {
        let out = run(2, |h| h.sum(&mut vec![0.0; h.rank() + 1]).is_err());
        assert_eq!(out, [true, true]);
    }

    #[test]
    fn solo_is_the_identity() {
        let mut v = vec![1.5, -2.0];
        Solo.sum(&mut v).unwrap();
        assert_eq!(v, [1.5, -2.0]);
        assert_eq!(Solo.gather(&v).unwrap(), vec![v.clone()]);
    }
}
