//! Test-time averaging of a run's model: the mirrored view of every face and the members of a
//! seed ensemble ([`tandem_share::Averaged`]), as a configuration's tasks say.
//!
//! The mirror map of each task follows the training augmentation
//! ([`tandem_data::mtfl::mirror`]): a points task maps `x → 1 − x` and, with MTFL's five
//! landmarks, swaps the eyes and the mouth corners; the five-class `pose` task swaps left and
//! right (`c → 4 − c`); every other task is mirror-invariant.
use crate::{Result, RunConfig, TaskKindConfig};
use std::sync::Arc;
use tandem_data::mtfl::augment::{LANDMARKS, POSE};
use tandem_share::{Averaged, Mirror, MultiTaskNet, OutputKind, TaskOutput};
use tandem_tensor::TaskMap;

/// How each task of `cfg` is averaged and mirrored (module docs).
pub fn outputs(cfg: &RunConfig) -> TaskMap<TaskOutput> {
    let tasks = cfg.task_set();
    let mut out = TaskMap::new();
    for task in tasks.iter() {
        let name = task.name();
        let dim = task.out_dim();
        let (kind, mirror) = match cfg.task_kind(name) {
            Some(TaskKindConfig::Points) => {
                let pairs = if dim == 10 && name == LANDMARKS {
                    vec![(0, 1), (3, 4)]
                } else {
                    Vec::new()
                };
                (OutputKind::Points, Mirror::Points { pairs })
            }
            Some(TaskKindConfig::Binary) => (OutputKind::Binary, Mirror::Invariant),
            Some(TaskKindConfig::Regression) => (OutputKind::Regression, Mirror::Invariant),
            Some(TaskKindConfig::Class) | None => {
                let mirror = if name == POSE && dim == 5 {
                    Mirror::Classes((0..5).rev().collect())
                } else {
                    Mirror::Invariant
                };
                (OutputKind::Class, mirror)
            }
        };
        out.insert(name, TaskOutput { kind, mirror });
    }
    out
}

/// The network that scores a trained model: `members` (one, or a seed ensemble of networks of
/// `cfg`'s tasks) averaged, with the mirrored view when `mirror` is set. One member without
/// `mirror` is that member itself.
pub fn scorer(
    cfg: &RunConfig,
    members: Vec<Arc<dyn MultiTaskNet>>,
    mirror: bool,
) -> Result<Arc<dyn MultiTaskNet>> {
    if let ([m], false) = (members.as_slice(), mirror) {
        return Ok(m.clone());
    }
    Ok(Arc::new(Averaged::new(members, outputs(cfg), mirror)?))
}
