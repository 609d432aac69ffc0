//! What code that weighs tasks needs to know of them: [`TaskKind`], [`TaskInfo`], [`TaskList`].
//!
//! Loss weightings (uncertainty weighting scales regression and classification losses
//! differently) and static weights for auxiliary tasks need each task's name, the kind of its
//! loss and whether it is auxiliary — nothing of heads, metrics or data. [`TaskList`] is that
//! view: `tandem_heads::TaskSet` implements it, and so does a plain list of [`TaskInfo`] for a
//! model of one's own.

/// The statistical kind of a task's loss; uncertainty weighting scales regression and
/// classification losses differently (Kendall et al. 2018).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// A Gaussian likelihood (L2 loss).
    Regression,
    /// A softmax likelihood (cross-entropy).
    Classification,
}

/// One task as a loss weighting sees it.
///
/// ```
/// use tandem_tensor::{TaskInfo, TaskKind, TaskList};
/// let tasks = [TaskInfo::regression("depth"), TaskInfo::classification("seg").auxiliary()];
/// assert_eq!(tasks.task_info()[1].kind, TaskKind::Classification);
/// assert!(tasks.task_info()[1].auxiliary);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's name (its key in loss maps and variable names).
    pub name: String,
    /// The kind of the task's loss.
    pub kind: TaskKind,
    /// Whether the task is trained only to help the others.
    pub auxiliary: bool,
}

impl TaskInfo {
    /// A main task named `name` whose loss is of `kind`.
    pub fn new(name: impl Into<String>, kind: TaskKind) -> Self {
        Self {
            name: name.into(),
            kind,
            auxiliary: false,
        }
    }

    /// A main regression task.
    pub fn regression(name: impl Into<String>) -> Self {
        Self::new(name, TaskKind::Regression)
    }

    /// A main classification task.
    pub fn classification(name: impl Into<String>) -> Self {
        Self::new(name, TaskKind::Classification)
    }

    /// Marks the task auxiliary.
    pub fn auxiliary(mut self) -> Self {
        self.auxiliary = true;
        self
    }
}

/// The tasks of a model, in order, as loss weightings see them.
pub trait TaskList {
    /// Every task, in the model's task order.
    fn task_info(&self) -> Vec<TaskInfo>;

    /// The task names, in order.
    fn task_names(&self) -> Vec<String> {
        self.task_info().into_iter().map(|t| t.name).collect()
    }
}

impl TaskList for [TaskInfo] {
    fn task_info(&self) -> Vec<TaskInfo> {
        self.to_vec()
    }
}

impl<const N: usize> TaskList for [TaskInfo; N] {
    fn task_info(&self) -> Vec<TaskInfo> {
        self.to_vec()
    }
}

impl TaskList for Vec<TaskInfo> {
    fn task_info(&self) -> Vec<TaskInfo> {
        self.clone()
    }
}
