//! [`Checkpointer`]: when the trainer writes checkpoints, where it resumes from, and whether a
//! checkpoint belongs to the run at hand.
use super::best::BestEpoch;
use super::{files, list_checkpoints, read_trainer_state, CheckpointConfig, TrainerState};
use super::{SUMS_FILE, TRAINER_FILE};
use crate::{Result, TrainConfig};
use candle_nn::VarMap;
use std::path::{Path, PathBuf};
use tandem_heads::TaskSet;
use tandem_optim::{Optimizer, TaskStopper, Weighting};
use tandem_tensor::{sorted_vars, TaskMap};

/// Where a run resumes from.
#[derive(Debug, Clone, Default)]
pub(crate) enum Resume {
    /// Nowhere: a fresh run.
    #[default]
    No,
    /// The newest valid checkpoint of the checkpoint folder, if there is one.
    Latest,
    /// A checkpoint folder, or a folder of them; none is an error.
    From(PathBuf),
}

/// What a checkpoint must match to belong to a run.
#[derive(Clone, Copy)]
pub(crate) struct RunShape<'a> {
    /// The run's configuration.
    pub(crate) config: &'a TrainConfig,
    /// The run's tasks.
    pub(crate) tasks: &'a TaskSet,
    /// Training samples.
    pub(crate) train_len: usize,
    /// Batches per epoch.
    pub(crate) batches_per_epoch: usize,
    /// Ranks of the run (1 without data parallelism).
    pub(crate) ranks: usize,
}

/// The trainer's stateful parts that a checkpoint restores besides the variables.
pub(crate) struct Parts<'a> {
    /// The optimizer.
    pub(crate) optimizer: &'a mut dyn Optimizer,
    /// The weighting.
    pub(crate) weighting: &'a mut dyn Weighting,
    /// The auxiliary tasks' stoppers.
    pub(crate) stoppers: &'a mut TaskMap<Box<dyn TaskStopper>>,
}

/// The trainer's checkpoint policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Checkpointer {
    /// Where and how often to write checkpoints (`None`: never).
    pub(crate) config: Option<CheckpointConfig>,
    /// Where to resume from.
    pub(crate) resume: Resume,
    /// Whether this process writes and deletes checkpoints: rank 0 of a data-parallel run
    /// writes, the other ranks only read.
    pub(crate) reader_only: bool,
}

impl Checkpointer {
    /// Checks the configuration.
    pub(crate) fn validate(&self) -> Result<()> {
        self.config
            .as_ref()
            .map_or(Ok(()), CheckpointConfig::validate)
    }

    /// Whether checkpoints are written.
    pub(crate) fn is_on(&self) -> bool {
        self.config.is_some()
    }

    /// Whether a checkpoint is due after optimizer step `step` (the `every_steps` cadence).
    pub(crate) fn due(&self, step: u64) -> bool {
        self.config
            .as_ref()
            .and_then(|c| c.every_steps)
            .is_some_and(|n| step.is_multiple_of(n))
    }

    /// Starts a run: restores the newest valid checkpoint into `vars` and `parts` when resuming
    /// and one is found (returning its state); otherwise deletes what the checkpoint folder
    /// holds, so that the run starts afresh.
    pub(crate) fn start(
        &self,
        vars: &VarMap,
        shape: RunShape,
        parts: Parts,
    ) -> Result<Option<TrainerState>> {
        let restored = match self.resume_source() {
            Some((source, strict)) => self.restore(&source, strict, vars, shape, parts)?,
            None => None,
        };
        if restored.is_none() {
            self.clear()?;
        }
        Ok(restored)
    }

    /// Writes a checkpoint of `state` and `vars` (nothing without a configuration).
    pub(crate) fn save(&self, vars: &VarMap, state: &TrainerState) -> Result<()> {
        if let (Some(c), false) = (&self.config, self.reader_only) {
            files::write(c, vars, state)?;
        }
        Ok(())
    }

    /// Where the best epoch's variables are kept: `DIR/best`.
    fn best_dir(&self) -> Option<PathBuf> {
        self.config.as_ref().map(|c| c.dir.join("best"))
    }

    /// Writes the best epoch's variables (the current values of `vars`) to `DIR/best`.
    pub(crate) fn save_best(&self, vars: &VarMap, best: &BestEpoch) -> Result<()> {
        match (&self.config, self.best_dir()) {
            (Some(c), Some(dir)) if !self.reader_only => best.save(&dir, vars, &c.model_config),
            _ => Ok(()),
        }
    }

    /// The best epoch written to `DIR/best` by this run before it was interrupted, if any.
    pub(crate) fn load_best(&self, vars: &VarMap) -> Result<Option<BestEpoch>> {
        match (&self.config, self.best_dir()) {
            (Some(c), Some(dir)) => BestEpoch::read(&dir, vars, &c.model_config),
            _ => Ok(None),
        }
    }

    /// Where to resume from, and whether a missing checkpoint is an error.
    fn resume_source(&self) -> Option<(PathBuf, bool)> {
        match &self.resume {
            Resume::No => None,
            Resume::Latest => self.config.as_ref().map(|c| (c.dir.clone(), false)),
            Resume::From(p) => Some((p.clone(), true)),
        }
    }

    /// Deletes the checkpoints and the best epoch in the checkpoint folder (a fresh run).
    fn clear(&self) -> Result<()> {
        let (Some(c), false) = (&self.config, self.reader_only) else {
            return Ok(());
        };
        let best = self.best_dir().filter(|d| d.exists());
        for p in list_checkpoints(&c.dir).into_iter().chain(best) {
            std::fs::remove_dir_all(&p).map_err(|e| files::io(&p, e))?;
        }
        Ok(())
    }

    /// Restores the newest valid checkpoint of `source` (a checkpoint folder, or a folder of
    /// them) into `vars` and `parts`.
    fn restore(
        &self,
        source: &Path,
        strict: bool,
        vars: &VarMap,
        shape: RunShape,
        mut parts: Parts,
    ) -> Result<Option<TrainerState>> {
        let single = source.join(TRAINER_FILE).exists() || source.join(SUMS_FILE).exists();
        let mut candidates = if single {
            vec![source.to_path_buf()]
        } else {
            list_checkpoints(source)
        };
        candidates.reverse();
        if candidates.is_empty() {
            if strict {
                return Err(files::ckpt(
                    source,
                    "no checkpoint (step-* folder) to resume from",
                ));
            }
            return Ok(None);
        }
        let fallback = self.config.as_ref().is_some_and(|c| c.fallback_to_previous);
        let mut failures = Vec::new();
        for path in &candidates {
            match restore_one(path, vars, shape, &mut parts) {
                Ok(state) => {
                    self.drop_newer(state.position(), &failures)?;
                    return Ok(Some(state));
                }
                Err(e) if fallback => failures.push((path.clone(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Err(files::ckpt(
            source,
            format!(
                "no valid checkpoint: {}",
                failures
                    .iter()
                    .map(|(p, e)| format!("{}: {e}", p.display()))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }

    /// After resuming at `position`: checkpoints that failed to load are renamed
    /// `invalid-step-…` (kept for inspection), newer ones are deleted (the run re-creates them).
    fn drop_newer(&self, position: u64, failed: &[(PathBuf, String)]) -> Result<()> {
        let (Some(c), false) = (&self.config, self.reader_only) else {
            return Ok(());
        };
        for p in list_checkpoints(&c.dir) {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let pos = name
                .strip_prefix("step-")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            let io = |e: std::io::Error| files::io(&p, e);
            if failed.iter().any(|(f, _)| f == &p) {
                std::fs::rename(&p, c.dir.join(format!("invalid-{name}"))).map_err(io)?;
            } else if pos > position {
                std::fs::remove_dir_all(&p).map_err(io)?;
            }
        }
        Ok(())
    }
}

/// Restores the checkpoint folder `path` into `vars` and `parts`, after checking that it fits.
fn restore_one(
    path: &Path,
    vars: &VarMap,
    shape: RunShape,
    parts: &mut Parts,
) -> Result<TrainerState> {
    let state = read_trainer_state(path)?;
    check_fits(path, &state, shape, parts.stoppers)?;
    files::load_model(path, vars)?;
    parts
        .optimizer
        .load_state(&state.optimizer, &sorted_vars(vars))?;
    parts.weighting.load_state(&state.weighting)?;
    for (name, s) in state.stoppers.iter() {
        if let Some(stopper) = parts.stoppers.get_mut(name) {
            stopper.load_state(s)?;
        }
    }
    Ok(state)
}

/// Checks that a checkpoint's state belongs to this run.
fn check_fits(
    path: &Path,
    state: &TrainerState,
    shape: RunShape,
    stoppers: &TaskMap<Box<dyn TaskStopper>>,
) -> Result<()> {
    let (config, run) = (shape.config, &state.run);
    let mut wrong = Vec::new();
    if &state.config != config {
        wrong.push(format!(
            "the run's configuration differs: {}",
            config_diff(&state.config, config).join(", ")
        ));
    }
    if state.train_len != shape.train_len || state.batches_per_epoch != shape.batches_per_epoch {
        wrong.push(format!(
            "written for {} training samples in {} batches per epoch, this run has {} in {}",
            state.train_len, state.batches_per_epoch, shape.train_len, shape.batches_per_epoch
        ));
    }
    if state.ranks != shape.ranks {
        wrong.push(format!(
            "written by a data-parallel run of {} rank(s), this run has {}: resume with the same \
             number of ranks (mpirun -np {})",
            state.ranks, shape.ranks, state.ranks
        ));
    }
    if run.epoch > config.epochs || (run.batch != 0 && run.batch >= shape.batches_per_epoch) {
        wrong.push(format!(
            "position epoch {} batch {} is outside the run",
            run.epoch, run.batch
        ));
    }
    for a in &run.active {
        if shape.tasks.get(a).is_none() {
            wrong.push(format!("active task {a:?} is not one of this run's tasks"));
        }
    }
    let saved: Vec<&str> = state.stoppers.keys().collect();
    let ours: Vec<&str> = stoppers.keys().collect();
    if saved != ours {
        wrong.push(format!(
            "stoppers for tasks {saved:?}, this run has stoppers for {ours:?}"
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(files::ckpt(path, wrong.join("; ")))
    }
}

/// The keys in which two configurations differ, as `train.<key> (checkpoint …, now …)`.
fn config_diff(saved: &TrainConfig, now: &TrainConfig) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(saved).unwrap_or_default(),
        serde_json::to_value(now).unwrap_or_default(),
    );
    let show = |v: Option<&serde_json::Value>| v.map_or_else(|| "unset".into(), |v| v.to_string());
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                format!(
                    "train.{k} (checkpoint {}, now {})",
                    show(a.get(k)),
                    show(b.get(k))
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        _ => vec!["train".into()],
    }
}
