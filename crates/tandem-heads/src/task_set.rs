//! [`TaskSet`]: the tasks of one model.
use crate::Task;
use std::sync::Arc;
use tandem_tensor::{TaskInfo, TaskList, TaskMap};

/// The tasks of a model in declaration order. The main task is the first one not marked
/// auxiliary.
#[derive(Clone, Default)]
pub struct TaskSet {
    tasks: TaskMap<Arc<dyn Task>>,
}

impl TaskSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task` (replacing a task of the same name in place).
    pub fn with(mut self, task: impl Task + 'static) -> Self {
        self.push(Arc::new(task));
        self
    }

    /// Adds a shared task.
    pub fn push(&mut self, task: Arc<dyn Task>) {
        self.tasks.insert(task.name().to_string(), task);
    }

    /// The task named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Task>> {
        self.tasks.get(name)
    }

    /// The main task: the first non-auxiliary one.
    pub fn main(&self) -> Option<&Arc<dyn Task>> {
        self.tasks.values().find(|t| !t.is_auxiliary())
    }

    /// Task names in order.
    pub fn names(&self) -> Vec<&str> {
        self.tasks.keys().collect()
    }

    /// Tasks in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Task>> {
        self.tasks.values()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there is no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks as a [`TaskMap`].
    pub fn as_map(&self) -> &TaskMap<Arc<dyn Task>> {
        &self.tasks
    }
}

/// The tasks in order, with their loss kinds and roles: what a loss weighting needs.
impl TaskList for TaskSet {
    fn task_info(&self) -> Vec<TaskInfo> {
        self.iter()
            .map(|t| TaskInfo {
                name: t.name().to_string(),
                kind: t.kind(),
                auxiliary: t.is_auxiliary(),
            })
            .collect()
    }
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tasks.keys()).finish()
    }
}
