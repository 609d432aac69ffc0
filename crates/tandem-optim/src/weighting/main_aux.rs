//! What the methods for a main task with auxiliary tasks share ([`gcs`](super::gcs),
//! [`ol_aux`](super::ol_aux), [`aux_project`](super::aux_project)): which rows are main and
//! the main gradient `g_m` as a combination of the rows.
//!
//! The main tasks are those not marked auxiliary (`main = true` in a `[[task]]` table, the
//! first task of the face preset); when no task is marked auxiliary (every task a main one, as
//! for plain rows), the first task is the main task and the others are auxiliary. With several
//! main tasks, `g_m = Σ_{m ∈ M} g_m` and every main task keeps weight 1.
//!
//! On the Gramian: with `e_M` the indicator of the main rows, `g_a · g_m = Σ_{m∈M} G_am` and
//! `‖g_m‖² = Σ_{m,m'∈M} G_mm'`.
use super::linalg::Gramian;
use super::AggregatorInput;
use crate::{OptimError, Result};
use tandem_tensor::TaskInfo;

/// The default auxiliary weight `λ` of `gcs` and `aux_project` (the plain sum of main and
/// auxiliary losses, as in the papers).
pub fn default_aux() -> f64 {
    1.0
}

/// Checks a weight-like parameter under `key`: finite and non-negative.
pub fn validate_aux(key: &str, aux: f64) -> Result<()> {
    if !(aux.is_finite() && aux >= 0.0) {
        return Err(OptimError::config(key, "must be finite and non-negative"));
    }
    Ok(())
}

/// The names of the main tasks of `tasks` (see the module doc).
pub fn main_tasks(tasks: &[TaskInfo]) -> Vec<String> {
    let main: Vec<String> = tasks
        .iter()
        .filter(|t| !t.auxiliary)
        .map(|t| t.name.clone())
        .collect();
    if main.len() == tasks.len() {
        tasks
            .first()
            .map(|t| vec![t.name.clone()])
            .unwrap_or_default()
    } else {
        main
    }
}

/// The rows of one step split into main and auxiliary, with the inner products the methods
/// need.
#[derive(Debug, Clone, PartialEq)]
pub struct MainAux {
    /// `true` for a main row.
    pub is_main: Vec<bool>,
    /// `‖g_m‖²`.
    pub main_sq: f64,
    /// `g_t · g_m` for every row `t`.
    pub dot_main: Vec<f64>,
}

impl MainAux {
    /// Splits the rows named `names` (in order) by `main`; `None` when no main task is among
    /// them (it was stopped).
    pub fn new(g: &Gramian, names: &[String], main: &[String]) -> Option<Self> {
        let is_main: Vec<bool> = names.iter().map(|n| main.contains(n)).collect();
        if !is_main.iter().any(|&m| m) {
            return None;
        }
        let t = g.len();
        let dot_main: Vec<f64> = (0..t)
            .map(|i| (0..t).filter(|&m| is_main[m]).map(|m| g.get(i, m)).sum())
            .collect();
        let main_sq = (0..t).filter(|&m| is_main[m]).map(|m| dot_main[m]).sum();
        Some(Self {
            is_main,
            main_sq,
            dot_main,
        })
    }

    /// `cos(g_a, g_m)` of row `a` (0 when either gradient is zero).
    pub fn cosine(&self, g: &Gramian, a: usize) -> f64 {
        let den = (g.get(a, a).max(0.0) * self.main_sq.max(0.0)).sqrt();
        if den > 0.0 {
            self.dot_main[a] / den
        } else {
            0.0
        }
    }

    /// [`MainAux::new`] on one step's rows; when no main task is among them, logs that
    /// `method` falls back (`fallback` says to what) and returns `None`.
    pub fn of_step(
        input: &AggregatorInput,
        main: &[String],
        method: &str,
        fallback: &str,
    ) -> Option<Self> {
        let split = Self::new(input.gramian, input.tasks, main);
        if split.is_none() {
            tracing::warn!(step = input.step, "{method}: no main task left; {fallback}");
        }
        split
    }

    /// The auxiliary rows' indices.
    pub fn aux(&self) -> impl Iterator<Item = usize> + '_ {
        self.is_main
            .iter()
            .enumerate()
            .filter(|(_, &m)| !m)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_tasks_follow_the_marks_else_the_first() {
        let marked = [
            TaskInfo::regression("a").auxiliary(),
            TaskInfo::regression("b"),
            TaskInfo::regression("c"),
            TaskInfo::regression("d").auxiliary(),
        ];
        assert_eq!(main_tasks(&marked), ["b", "c"]);
        let plain = [TaskInfo::regression("x"), TaskInfo::regression("y")];
        assert_eq!(main_tasks(&plain), ["x"]);
    }

    #[test]
    fn inner_products_with_the_main_sum() {
        // rows: m1 = (1, 0), a = (1, 1), m2 = (0, 2); g_m = (1, 2)
        let rows = vec![vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 2.0]];
        let g = Gramian::of_rows(&rows);
        let names: Vec<String> = ["m1", "a", "m2"].map(String::from).to_vec();
        let s = MainAux::new(&g, &names, &["m1".into(), "m2".into()]).unwrap();
        assert_eq!(s.main_sq, 5.0);
        assert_eq!(s.dot_main, vec![1.0, 3.0, 4.0]);
        assert!((s.cosine(&g, 1) - 3.0 / (2f64.sqrt() * 5f64.sqrt())).abs() < 1e-12);
        assert_eq!(s.aux().collect::<Vec<_>>(), vec![1]);
        assert!(MainAux::new(&g, &names, &["z".into()]).is_none());
    }
}
