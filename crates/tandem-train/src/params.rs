//! Which variables train: the network's parameter groups resolved against the `VarMap`.
//!
//! [`ParamGroups`] name variables by `VarBuilder` path prefix. The trainer resolves them once
//! per run: the shared and last shared variables (what gradient-based weightings look at), the
//! owner of every task-specific variable (to name the task of a non-finite gradient), and the
//! trainable variables — every variable except those of tasks that have stopped. All lists are
//! in sorted-name order.
use crate::History;
use candle_core::Var;
use candle_nn::VarMap;
use std::collections::BTreeMap;
use tandem_share::ParamGroups;
use tandem_tensor::{is_buffer, parameter_vars, select_vars};

/// `vars` without the buffers (batch-norm running statistics), which no gradient reaches.
fn parameters(vars: Vec<(String, Var)>) -> Vec<(String, Var)> {
    vars.into_iter().filter(|(n, _)| !is_buffer(n)).collect()
}

/// The variables of one run, grouped.
pub(crate) struct Params {
    groups: ParamGroups,
    /// Shared variables.
    pub(crate) shared: Vec<(String, Var)>,
    /// The last shared layer's variables (GradNorm's `W`).
    pub(crate) last_shared: Vec<(String, Var)>,
    /// Every variable the optimizer updates: all but those of stopped tasks.
    pub(crate) trainable: Vec<(String, Var)>,
    /// The task that owns each task-specific variable.
    owners: BTreeMap<String, String>,
}

impl Params {
    /// Resolves `groups` against `vars`; the tasks stopped in `history` do not train.
    pub(crate) fn new(vars: &VarMap, groups: ParamGroups, history: &History) -> Self {
        let mut owners = BTreeMap::new();
        for (task, prefixes) in groups.tasks.iter() {
            for (n, _) in select_vars(vars, prefixes) {
                owners.insert(n, task.to_string());
            }
        }
        let mut params = Self {
            shared: parameters(select_vars(vars, &groups.shared)),
            last_shared: parameters(select_vars(vars, &groups.last_shared)),
            trainable: parameter_vars(vars),
            owners,
            groups,
        };
        for (name, _) in history.stops.iter() {
            params.freeze(vars, name);
        }
        params
    }

    /// The task that owns the variable `name`, if it is task-specific.
    pub(crate) fn owner(&self, name: &str) -> Option<&str> {
        self.owners.get(name).map(String::as_str)
    }

    /// Removes the variables that only `task` owns from the trainable ones and returns their
    /// names.
    pub(crate) fn freeze(&mut self, vars: &VarMap, task: &str) -> Vec<String> {
        let frozen: Vec<String> = self
            .groups
            .tasks
            .get(task)
            .map(|prefixes| {
                select_vars(vars, prefixes)
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect()
            })
            .unwrap_or_default();
        self.trainable.retain(|(n, _)| !frozen.contains(n));
        frozen
    }
}
