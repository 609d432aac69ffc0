//! Test-time averaging: several trained networks (a seed ensemble) and mirrored inputs, behind
//! the one [`MultiTaskNet`] trait, so evaluation and prediction need not know about either.
//!
//! [`Averaged`] runs every member network on the input `x` (`[B, C, H, W]`) and, with
//! `mirror`, also on its left-right mirror `x̃` (columns reversed: `x̃[.., w] = x[.., W − 1 −
//! w]`). A prediction on `x̃` is mapped back to `x`'s frame by the task's [`Mirror`], and the
//! `V = members × views` predictions are averaged per task according to its [`OutputKind`]:
//!
//! | kind | averaged | returned (`[B, D]`) |
//! |---|---|---|
//! | points `[x₁..xₙ, y₁..yₙ]` (normalised to the image) | the coordinates | `(1/V) Σ yᵥ` |
//! | regression | the values | `(1/V) Σ yᵥ` |
//! | class (logits over `K`) | the softmax probabilities | `ln((1/V) Σ softmax(yᵥ))` |
//! | binary (one logit) | the probabilities | `logit((1/V) Σ σ(yᵥ))`, `p` clamped to `[10⁻⁷, 1 − 10⁻⁷]` |
//!
//! Log-probabilities are logits of the averaged distribution, so a cross-entropy loss, an
//! argmax or a softmax read the averaged prediction unchanged. Sums run in a fixed order
//! (members in the order given, the plain view before the mirrored one), so the result is
//! deterministic. One member without `mirror` returns that member's output unchanged, bit for
//! bit.
//!
//! Mirroring a prediction back ([`Mirror`]): a points task maps `x → 1 − x` (the image covers
//! `[0, 1]` in normalised coordinates) and swaps the points of each mirrored pair (MTFL: left
//! and right eye, left and right mouth corner); a class task permutes its logits (MTFL's head
//! pose: left profile ↔ right profile, left ↔ right); other tasks are mirror-invariant (gender,
//! smile, glasses). This is the map the training augmentation applies to labels when it
//! mirrors a face, so a model trained with mirrored faces predicts the mirror of a face
//! consistently.
//!
//! Test-time mirroring is common practice in landmark detection (e.g. the flip test of
//! stacked hourglass networks, Newell et al., ECCV 2016); averaging the members of a seed
//! ensemble is Lakshminarayanan et al.'s deep ensembles (NeurIPS 2017) without their
//! adversarial training.
use crate::{MultiTaskNet, NetOutput, ParamGroups, SplitOutput};
use candle_core::{DType, Result, Tensor, D};
use std::sync::Arc;
use tandem_tensor::TaskMap;

/// How a task's output is averaged (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Points `[x₁..xₙ, y₁..yₙ]` in normalised image coordinates: mean of the coordinates.
    Points,
    /// Class logits: log of the mean softmax probabilities.
    Class,
    /// One binary logit: logit of the mean probability.
    Binary,
    /// Regression values: their mean.
    Regression,
}

/// How a prediction on the mirrored input maps back to the input's frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mirror {
    /// The output does not change under a mirror (gender, smile, ...).
    #[default]
    Invariant,
    /// Points `[x₁..xₙ, y₁..yₙ]`: `x → 1 − x`, and the points of each pair swap places.
    Points {
        /// 0-based point indices that trade places (MTFL: `(0, 1)` eyes, `(3, 4)` mouth).
        pairs: Vec<(usize, usize)>,
    },
    /// Class logits: output `c` of the mirrored input is class `classes[c]` of the input
    /// (a permutation; MTFL's pose: `[4, 3, 2, 1, 0]`).
    Classes(Vec<usize>),
}

/// How one task's output is averaged and mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutput {
    /// How predictions are averaged.
    pub kind: OutputKind,
    /// How a prediction on the mirrored input maps back.
    pub mirror: Mirror,
}

/// A network that averages its members' predictions, optionally over mirrored inputs too (see
/// the module docs). Its parameter groups, gates and task names are the first member's.
pub struct Averaged {
    members: Vec<Arc<dyn MultiTaskNet>>,
    outputs: TaskMap<TaskOutput>,
    mirror: bool,
}

impl std::fmt::Debug for Averaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Averaged")
            .field("members", &self.members.len())
            .field("outputs", &self.outputs)
            .field("mirror", &self.mirror)
            .finish()
    }
}

impl Averaged {
    /// Averages `members` (at least one) with the output rules of `outputs` (a task without an
    /// entry is averaged as regression and taken as mirror-invariant); `mirror` adds the
    /// mirrored view of every input.
    pub fn new(
        members: Vec<Arc<dyn MultiTaskNet>>,
        outputs: TaskMap<TaskOutput>,
        mirror: bool,
    ) -> Result<Self> {
        if members.is_empty() {
            candle_core::bail!("an averaged network needs at least one member");
        }
        for (task, out) in outputs.iter() {
            match &out.mirror {
                Mirror::Classes(perm) => {
                    let mut seen = vec![false; perm.len()];
                    for &c in perm {
                        if c >= perm.len() || std::mem::replace(&mut seen[c], true) {
                            candle_core::bail!(
                                "task {task}: mirror classes {perm:?} are not a permutation"
                            );
                        }
                    }
                }
                Mirror::Points { pairs } => {
                    if pairs.iter().any(|(a, b)| a == b) {
                        candle_core::bail!(
                            "task {task}: a mirrored point pair {pairs:?} names one point twice"
                        );
                    }
                }
                Mirror::Invariant => {}
            }
        }
        Ok(Self {
            members,
            outputs,
            mirror,
        })
    }

    /// The number of member networks.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Whether mirrored inputs are averaged in.
    pub fn mirrors(&self) -> bool {
        self.mirror
    }

    fn output(&self, task: &str) -> TaskOutput {
        self.outputs.get(task).cloned().unwrap_or(TaskOutput {
            kind: OutputKind::Regression,
            mirror: Mirror::Invariant,
        })
    }
}

/// The left-right mirror of `[B, C, H, W]` images (the last axis reversed).
pub fn mirror_images(x: &Tensor) -> Result<Tensor> {
    let w = x.dim(D::Minus1)?;
    let idx: Vec<u32> = (0..w as u32).rev().collect();
    let idx = Tensor::from_vec(idx, w, x.device())?;
    x.index_select(&idx, x.rank() - 1)
}

/// Maps a prediction `y` (`[B, D]`) on a mirrored input back to the input's frame.
pub fn unmirror(y: &Tensor, mirror: &Mirror) -> Result<Tensor> {
    match mirror {
        Mirror::Invariant => Ok(y.clone()),
        Mirror::Classes(perm) => {
            let idx: Vec<u32> = perm.iter().map(|&c| c as u32).collect();
            let n = idx.len();
            y.index_select(&Tensor::from_vec(idx, n, y.device())?, 1)
        }
        Mirror::Points { pairs } => {
            let d = y.dim(1)?;
            let n = d / 2;
            let mut src: Vec<u32> = (0..d as u32).collect();
            for &(a, b) in pairs {
                if a < n && b < n {
                    src.swap(a, b);
                    src.swap(n + a, n + b);
                }
            }
            let sign: Vec<f32> = (0..d).map(|i| if i < n { -1.0 } else { 1.0 }).collect();
            let offset: Vec<f32> = (0..d).map(|i| if i < n { 1.0 } else { 0.0 }).collect();
            let dev = y.device();
            let y = y.index_select(&Tensor::from_vec(src, d, dev)?, 1)?;
            let sign = Tensor::from_vec(sign, (1, d), dev)?.to_dtype(y.dtype())?;
            let offset = Tensor::from_vec(offset, (1, d), dev)?.to_dtype(y.dtype())?;
            y.broadcast_mul(&sign)?.broadcast_add(&offset)
        }
    }
}

/// Averages the views `ys` (each `[B, D]`) of one task as `kind` says (module docs).
pub fn average(ys: &[Tensor], kind: OutputKind) -> Result<Tensor> {
    let Some(first) = ys.first() else {
        candle_core::bail!("nothing to average");
    };
    if ys.len() == 1 {
        return Ok(first.clone());
    }
    let v = ys.len() as f64;
    let dtype = first.dtype();
    let to_prob = |y: &Tensor| -> Result<Tensor> {
        let y = y.to_dtype(DType::F32)?;
        match kind {
            OutputKind::Class => candle_nn::ops::softmax(&y, D::Minus1),
            OutputKind::Binary => candle_nn::ops::sigmoid(&y),
            OutputKind::Points | OutputKind::Regression => Ok(y),
        }
    };
    let mut sum = to_prob(first)?;
    for y in &ys[1..] {
        sum = (sum + to_prob(y)?)?;
    }
    let mean = (sum / v)?;
    match kind {
        OutputKind::Class => mean.clamp(1e-30f32, 1.0f32)?.log()?.to_dtype(dtype),
        OutputKind::Binary => {
            let p = mean.clamp(1e-7f32, 1.0f32 - 1e-7)?;
            let q = p.affine(-1.0, 1.0)?;
            (p.log()? - q.log()?)?.to_dtype(dtype)
        }
        OutputKind::Points | OutputKind::Regression => mean.to_dtype(dtype),
    }
}

impl MultiTaskNet for Averaged {
    fn forward_t(&self, input: &Tensor, train: bool) -> Result<NetOutput> {
        if self.members.len() == 1 && !self.mirror {
            return self.members[0].forward_t(input, train);
        }
        let mirrored = if self.mirror {
            Some(mirror_images(input)?)
        } else {
            None
        };
        let mut views: Vec<(NetOutput, bool)> = Vec::new();
        for m in &self.members {
            views.push((m.forward_t(input, train)?, false));
            if let Some(x) = &mirrored {
                views.push((m.forward_t(x, train)?, true));
            }
        }
        let mut predictions = TaskMap::new();
        for task in self.members[0].task_names() {
            let out = self.output(&task);
            let mut ys = Vec::with_capacity(views.len());
            for (view, flipped) in &views {
                let Some(y) = view.predictions.get(&task) else {
                    candle_core::bail!("a member network has no output for task {task}");
                };
                ys.push(if *flipped {
                    unmirror(y, &out.mirror)?
                } else {
                    y.clone()
                });
            }
            predictions.insert(task.as_str(), average(&ys, out.kind)?);
        }
        Ok(NetOutput {
            predictions,
            penalty: None,
        })
    }

    fn param_groups(&self) -> ParamGroups {
        self.members[0].param_groups()
    }

    fn forward_split(&self, input: &Tensor, train: bool) -> Result<Option<SplitOutput>> {
        if self.members.len() == 1 && !self.mirror {
            return self.members[0].forward_split(input, train);
        }
        Ok(None)
    }

    fn gates(&self, input: &Tensor) -> Result<Option<TaskMap<Vec<Tensor>>>> {
        self.members[0].gates(input)
    }

    fn task_names(&self) -> Vec<String> {
        self.members[0].task_names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], d: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (v.len() / d, d), &Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn points_map_back() -> Result<()> {
        // two points: (0.2, 0.3) and (0.7, 0.4), swapped by the mirror
        let y = t(&[0.2, 0.7, 0.3, 0.4], 4);
        let back = unmirror(
            &y,
            &Mirror::Points {
                pairs: vec![(0, 1)],
            },
        )?;
        let v = back.flatten_all()?.to_vec1::<f32>()?;
        let want = [0.3, 0.8, 0.4, 0.3];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
        Ok(())
    }

    #[test]
    fn class_average_is_the_log_of_the_mean_probability() -> Result<()> {
        let a = t(&[0.0, 0.0], 2);
        let b = t(&[(3.0f32).ln(), 0.0], 2);
        let m = average(&[a, b], OutputKind::Class)?;
        let p = m.exp()?.flatten_all()?.to_vec1::<f32>()?;
        // (0.5 + 0.75) / 2 and (0.5 + 0.25) / 2
        assert!(
            (p[0] - 0.625).abs() < 1e-6 && (p[1] - 0.375).abs() < 1e-6,
            "{p:?}"
        );
        let bin = average(&[t(&[0.0], 1), t(&[(3.0f32).ln()], 1)], OutputKind::Binary)?;
        let l = bin.flatten_all()?.to_vec1::<f32>()?[0];
        assert!((l - (0.625f32 / 0.375).ln()).abs() < 1e-5, "{l}");
        Ok(())
    }

    #[test]
    fn image_mirror_reverses_columns() -> Result<()> {
        let x = Tensor::arange(0f32, 6.0, &Device::Cpu)?.reshape((1, 1, 2, 3))?;
        let m = mirror_images(&x)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(m, vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        Ok(())
    }
}
