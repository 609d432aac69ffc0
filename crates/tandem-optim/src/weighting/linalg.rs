//! Small dense linear algebra for gradient aggregators: the Gramian `G = J Jᵀ` of the `T × n`
//! Jacobian, and the small programs most aggregators reduce to.
//!
//! - [`min_norm_simplex`]: `min_w wᵀ G w` s.t. `w ≥ 0, Σ w = 1` — the min-norm point of the
//!   convex hull of the rows (MGDA, Sener & Koltun 2018).
//! - [`balance`]: the positive solution of `G y = y^{−p}` (Nash-MTL, FairGrad), by Newton's
//!   method on a strictly convex potential.
//! - [`nonneg_qp`]: `min_x ½ xᵀ Q x + cᵀ x` s.t. `x ≥ 0` — with `Q = G`, `c = G u` it is the
//!   projection of `Jᵀu` onto the dual cone of the rows (UPGrad, DualProj; Quinton & Rey 2024).
//!
//! Both are solved **exactly** for up to [`EXACT_MAX_TASKS`] tasks by enumerating the supports
//! (`2^T` small linear systems, each solved by a pseudo-inverse through nalgebra's SVD): the
//! optimum of a convex QP with nonnegativity constraints is the unconstrained optimum on its
//! support, so the feasible candidate with the lowest objective is the solution, whatever the
//! conditioning of `G`. Beyond that size, a projected coordinate descent runs to a relative
//! tolerance of 10⁻¹² (at most 100,000 sweeps) and logs when it stops early.
//!
//! Why hand-written: the problems have `T ≤ ~20` variables and simple bound constraints;
//! the Rust QP crates (e.g. `clarabel`, `osqp`) are interior-point or ADMM solvers that
//! return approximate points with tolerances of 10⁻⁸ and pull in sparse-matrix machinery, while
//! enumeration gives the exact vertex in microseconds and is deterministic bit for bit.
//! nalgebra (a kept crate) does the SVD and eigendecompositions.
use nalgebra::{DMatrix, DVector};

/// Up to this many tasks, [`min_norm_simplex`] and [`nonneg_qp`] enumerate supports (exact).
pub const EXACT_MAX_TASKS: usize = 12;

/// The `T × T` Gramian `G_ij = g_i · g_j` of `T` task gradients, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Gramian {
    n: usize,
    data: Vec<f64>,
}

impl Gramian {
    /// From a square row-major matrix (`data.len() == n²`).
    ///
    /// # Panics
    /// When `data.len() != n * n`.
    pub fn from_row_major(n: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            n * n,
            "a Gramian of {n} tasks has {} entries",
            n * n
        );
        Self { n, data }
    }

    /// `G = J Jᵀ` of `rows` (each a task gradient; every row the same length), summed in index
    /// order.
    pub fn of_rows(rows: &[Vec<f64>]) -> Self {
        let n = rows.len();
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let d = dot(&rows[i], &rows[j]);
                data[i * n + j] = d;
                data[j * n + i] = d;
            }
        }
        Self { n, data }
    }

    /// The number of tasks `T`.
    pub fn len(&self) -> usize {
        self.n
    }

    /// `true` for zero tasks.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// `G_ij`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j]
    }

    /// The diagonal: squared norms `‖g_i‖²`.
    pub fn diag(&self) -> Vec<f64> {
        (0..self.n).map(|i| self.get(i, i)).collect()
    }

    /// `true` when every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// As an nalgebra matrix.
    pub fn matrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.n, self.n, &self.data)
    }

    /// `‖Σ_t w_t g_t‖² = wᵀ G w`.
    pub fn quad(&self, w: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..self.n {
            for j in 0..self.n {
                s += w[i] * self.get(i, j) * w[j];
            }
        }
        s
    }

    /// `G w`.
    pub fn mul(&self, w: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| (0..self.n).map(|j| self.get(i, j) * w[j]).sum())
            .collect()
    }
}

/// `a · b`, summed in index order.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `Σ_t w_t rows_t`, summed in task order.
pub fn combine_rows(rows: &[Vec<f64>], w: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; rows.first().map_or(0, Vec::len)];
    for (row, &wi) in rows.iter().zip(w) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += wi * v;
        }
    }
    out
}

/// The Moore–Penrose pseudo-inverse of a symmetric matrix (SVD; singular values below
/// `1e-12 · σ_max` are treated as zero).
pub fn pinv(m: &DMatrix<f64>) -> DMatrix<f64> {
    if m.nrows() == 0 {
        return m.clone();
    }
    let svd = m.clone().svd(true, true);
    let smax = svd.singular_values.iter().cloned().fold(0.0, f64::max);
    let eps = (1e-12 * smax).max(f64::MIN_POSITIVE);
    svd.pseudo_inverse(eps)
        .unwrap_or_else(|_| DMatrix::zeros(m.ncols(), m.nrows()))
}

/// How a QP solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solve {
    /// Exact (support enumeration) or converged.
    Converged,
    /// The iterative fallback hit its sweep limit; the last iterate is returned.
    MaxIterations,
}

/// The min-norm point of the convex hull of the rows: `argmin_w wᵀ G w` s.t. `w ≥ 0`,
/// `Σ_t w_t = 1`. Exact for `T ≤` [`EXACT_MAX_TASKS`]; Frank–Wolfe with exact line search
/// (10⁻¹² gap, 100,000 steps) beyond.
///
/// ```
/// use tandem_optim::weighting::linalg::{min_norm_simplex, Gramian};
/// // g₁ = (1, 0), g₂ = (0, 1): the min-norm point is (½, ½)
/// let g = Gramian::of_rows(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
/// let (w, _) = min_norm_simplex(&g);
/// assert!((w[0] - 0.5).abs() < 1e-12 && (w[1] - 0.5).abs() < 1e-12);
/// ```
pub fn min_norm_simplex(g: &Gramian) -> (Vec<f64>, Solve) {
    let t = g.len();
    if t == 0 {
        return (vec![], Solve::Converged);
    }
    if t == 1 {
        return (vec![1.0], Solve::Converged);
    }
    if t > EXACT_MAX_TASKS {
        return frank_wolfe(g, 1e-12, 100_000);
    }
    let full = g.matrix();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << t) {
        let s: Vec<usize> = (0..t).filter(|i| mask & (1 << i) != 0).collect();
        let k = s.len();
        // KKT on the support: [G_SS 1; 1ᵀ 0] [w; −μ] = [0; 1]
        let mut a = DMatrix::zeros(k + 1, k + 1);
        for (r, &i) in s.iter().enumerate() {
            for (c, &j) in s.iter().enumerate() {
                a[(r, c)] = full[(i, j)];
            }
            a[(r, k)] = 1.0;
            a[(k, r)] = 1.0;
        }
        let mut b = DVector::zeros(k + 1);
        b[k] = 1.0;
        let x = pinv(&a) * b;
        let mut w = vec![0.0; t];
        let mut ok = true;
        for (r, &i) in s.iter().enumerate() {
            if x[r] < -1e-12 {
                ok = false;
                break;
            }
            w[i] = x[r].max(0.0);
        }
        let sum: f64 = w.iter().sum();
        if !ok || (sum - 1.0).abs() > 1e-9 {
            continue;
        }
        w.iter_mut().for_each(|v| *v /= sum);
        let obj = g.quad(&w);
        if best
            .as_ref()
            .is_none_or(|(b, _)| obj < *b - 1e-15 * b.abs().max(1e-300))
        {
            best = Some((obj, w));
        }
    }
    match best {
        Some((_, w)) => (w, Solve::Converged),
        None => frank_wolfe(g, 1e-12, 100_000),
    }
}

/// Frank–Wolfe on the simplex with exact line search, as TorchJD's MGDA: start at `1/T`, step
/// toward the vertex of the smallest `(G w)_i`, stop when the step is below `epsilon` or after
/// `max_iters` steps.
pub fn frank_wolfe(g: &Gramian, epsilon: f64, max_iters: usize) -> (Vec<f64>, Solve) {
    let t = g.len();
    let mut w = vec![1.0 / t as f64; t];
    for _ in 0..max_iters {
        let gw = g.mul(&w);
        let i = argmin(&gw);
        // the direction e_i − w; exact line search on the quadratic
        let a = gw[i]; // wᵀ G e_i
        let b = dot(&w, &gw); // wᵀ G w
        let c = g.get(i, i); // e_iᵀ G e_i
        let gamma = if c <= a {
            1.0
        } else if b <= a {
            0.0
        } else {
            (b - a) / (b + c - 2.0 * a)
        };
        for (k, v) in w.iter_mut().enumerate() {
            *v = (1.0 - gamma) * *v + if k == i { gamma } else { 0.0 };
        }
        if gamma < epsilon {
            return (w, Solve::Converged);
        }
    }
    (w, Solve::MaxIterations)
}

fn argmin(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x < v[best] {
            best = i;
        }
    }
    best
}

/// `argmin_x ½ xᵀ Q x + cᵀ x` s.t. `x ≥ 0`, for a symmetric positive semi-definite `Q`. Exact
/// for `len ≤` [`EXACT_MAX_TASKS`] (support enumeration), projected coordinate descent
/// (10⁻¹² relative change, 100,000 sweeps) beyond.
///
/// ```
/// use tandem_optim::weighting::linalg::{nonneg_qp, Gramian};
/// // Q = I, c = (−1, 2): x = (1, 0)
/// let q = Gramian::from_row_major(2, vec![1.0, 0.0, 0.0, 1.0]);
/// let (x, _) = nonneg_qp(&q, &[-1.0, 2.0]);
/// assert_eq!(x, vec![1.0, 0.0]);
/// ```
pub fn nonneg_qp(q: &Gramian, c: &[f64]) -> (Vec<f64>, Solve) {
    let t = q.len();
    if t == 0 {
        return (vec![], Solve::Converged);
    }
    if t > EXACT_MAX_TASKS {
        return coordinate_descent(q, c);
    }
    let full = q.matrix();
    let objective = |x: &[f64]| 0.5 * q.quad(x) + dot(c, x);
    let mut best: (f64, Vec<f64>) = (0.0, vec![0.0; t]); // x = 0 is feasible
    for mask in 1u32..(1 << t) {
        let s: Vec<usize> = (0..t).filter(|i| mask & (1 << i) != 0).collect();
        let k = s.len();
        let a = DMatrix::from_fn(k, k, |r, col| full[(s[r], s[col])]);
        let b = DVector::from_fn(k, |r, _| -c[s[r]]);
        let xs = pinv(&a) * b;
        if xs.iter().any(|v| *v < -1e-12 || !v.is_finite()) {
            continue;
        }
        let mut x = vec![0.0; t];
        for (r, &i) in s.iter().enumerate() {
            x[i] = xs[r].max(0.0);
        }
        let obj = objective(&x);
        if obj < best.0 - 1e-15 * best.0.abs().max(1e-300) {
            best = (obj, x);
        }
    }
    (best.1, Solve::Converged)
}

fn coordinate_descent(q: &Gramian, c: &[f64]) -> (Vec<f64>, Solve) {
    let t = q.len();
    let mut x = vec![0.0; t];
    for _ in 0..100_000 {
        let mut change: f64 = 0.0;
        let mut size: f64 = 0.0;
        for i in 0..t {
            let qii = q.get(i, i);
            if qii <= 0.0 {
                continue;
            }
            let grad: f64 = (0..t).map(|j| q.get(i, j) * x[j]).sum::<f64>() + c[i];
            let new = (x[i] - grad / qii).max(0.0);
            change = change.max((new - x[i]).abs());
            x[i] = new;
            size = size.max(new.abs());
        }
        if change <= 1e-12 * size.max(1e-300) {
            return (x, Solve::Converged);
        }
    }
    (x, Solve::MaxIterations)
}

/// The positive solution of the balance equations `(G y)_i = y_i^{−p}` for `i = 1..T` (`p > 0`):
/// Nash-MTL's bargaining solution (`p = 1`: `y_i (G y)_i = 1`) and FairGrad's α-fair weights
/// (`p = 1/α`). It is the minimiser of the strictly convex
/// ```text
/// f(y) = ½ yᵀ G y + Σ_i h(y_i),   h(y) = −log y (p = 1),   h(y) = −y^{1−p} / (1 − p) (p ≠ 1)
/// ```
/// on `y > 0`, found by Newton's method (Hessian `G + diag(p·y^{−p−1})`) with a backtracking
/// line search that keeps `y > 0` (Armijo on `f`, or on `‖Gy − y^{−p}‖` where `f`'s rounding
/// hides the decrease), from `start`, to a residual `‖Gy − y^{−p}‖ ≤ 10⁻⁹·‖y^{−p}‖` within
/// 200 steps. A singular `G` may have no solution (`f` unbounded below along a positive
/// null direction); then [`Solve::MaxIterations`] is returned with the last iterate.
///
/// ```
/// use tandem_optim::weighting::linalg::{balance, Gramian, Solve};
/// // G = diag(4, 1), p = 1: y = (½, 1)
/// let g = Gramian::from_row_major(2, vec![4.0, 0.0, 0.0, 1.0]);
/// let (y, s) = balance(&g, 1.0, &[1.0, 1.0]);
/// assert_eq!(s, Solve::Converged);
/// assert!((y[0] - 0.5).abs() < 1e-12 && (y[1] - 1.0).abs() < 1e-12);
/// ```
pub fn balance(g: &Gramian, p: f64, start: &[f64]) -> (Vec<f64>, Solve) {
    let t = g.len();
    let h = |y: f64| {
        if (p - 1.0).abs() < 1e-15 {
            -y.ln()
        } else {
            -y.powf(1.0 - p) / (1.0 - p)
        }
    };
    let f = |y: &[f64]| 0.5 * g.quad(y) + y.iter().map(|v| h(*v)).sum::<f64>();
    let mut y: Vec<f64> = start
        .iter()
        .map(|v| if v.is_finite() && *v > 0.0 { *v } else { 1.0 })
        .collect();
    if y.len() != t {
        y = vec![1.0; t];
    }
    let full = g.matrix();
    let residual = |y: &[f64]| -> (Vec<f64>, f64, f64) {
        let gy = g.mul(y);
        let target: Vec<f64> = y.iter().map(|v| v.powf(-p)).collect();
        let r: Vec<f64> = gy.iter().zip(&target).map(|(a, b)| a - b).collect();
        let (rn, tn) = (dot(&r, &r).sqrt(), dot(&target, &target).sqrt());
        (r, rn, tn)
    };
    for _ in 0..200 {
        let (r, rn, tn) = residual(&y);
        if rn <= 1e-9 * tn {
            return (y, Solve::Converged);
        }
        let hess = DMatrix::from_fn(t, t, |i, j| {
            full[(i, j)] + if i == j { p * y[i].powf(-p - 1.0) } else { 0.0 }
        });
        let Some(step) = hess
            .cholesky()
            .map(|c| c.solve(&DVector::from_column_slice(&r)))
        else {
            return (y, Solve::MaxIterations);
        };
        let f0 = f(&y);
        let slope = -dot(&r, step.as_slice());
        let mut s = 1.0;
        let mut moved = false;
        for _ in 0..60 {
            let cand: Vec<f64> = y.iter().zip(step.iter()).map(|(v, d)| v - s * d).collect();
            // Armijo on f, or (near the optimum, where f's rounding hides the decrease) on the
            // residual's norm.
            if cand.iter().all(|v| *v > 0.0 && v.is_finite())
                && (f(&cand) <= f0 + 1e-4 * s * slope || residual(&cand).1 <= (1.0 - 1e-4 * s) * rn)
            {
                y = cand;
                moved = true;
                break;
            }
            s *= 0.5;
        }
        if !moved {
            return (y, Solve::MaxIterations);
        }
    }
    (y, Solve::MaxIterations)
}

/// The Euclidean projection of `v` onto the probability simplex `{w ≥ 0, Σ w = 1}` (sort-based,
/// Held, Wolfe & Crowder 1974).
pub fn project_simplex(v: &[f64]) -> Vec<f64> {
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut cum = 0.0;
    let mut theta = 0.0;
    for (k, x) in u.iter().enumerate() {
        cum += x;
        let th = (cum - 1.0) / (k + 1) as f64;
        if x - th > 0.0 {
            theta = th;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(t: usize, n: usize, v: &[f64]) -> Vec<Vec<f64>> {
        (0..t).map(|i| v[i * n..(i + 1) * n].to_vec()).collect()
    }

    proptest! {
        /// The exact min-norm point satisfies the KKT conditions: `(G w)_i ≥ wᵀ G w` for every
        /// `i`, with equality where `w_i > 0`; and iterative Frank–Wolfe agrees with it.
        #[test]
        fn min_norm_kkt(t in 2usize..6, v in proptest::collection::vec(-3.0f64..3.0, 40)) {
            let r = rows(t, 6, &v);
            let g = Gramian::of_rows(&r);
            let (w, s) = min_norm_simplex(&g);
            prop_assert_eq!(s, Solve::Converged);
            let lam = g.quad(&w);
            let gw = g.mul(&w);
            let scale = g.diag().iter().cloned().fold(1.0, f64::max);
            for i in 0..t {
                prop_assert!(w[i] >= 0.0);
                prop_assert!(gw[i] >= lam - 1e-9 * scale, "{gw:?} {lam}");
                if w[i] > 1e-9 {
                    prop_assert!((gw[i] - lam).abs() <= 1e-8 * scale);
                }
            }
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let (fw, _) = frank_wolfe(&g, 1e-14, 1_000_000);
            prop_assert!(g.quad(&fw) >= lam - 1e-9 * scale);
        }

        /// The exact NNQP optimum satisfies KKT: `∇ = Qx + c ≥ 0`, `x ≥ 0`, `xᵢ ∇ᵢ = 0`; the
        /// coordinate-descent fallback reaches the same objective.
        #[test]
        fn nonneg_qp_kkt(t in 1usize..6, v in proptest::collection::vec(-3.0f64..3.0, 40), c in proptest::collection::vec(-3.0f64..3.0, 6)) {
            let r = rows(t, 7, &v[..]);
            let mut q = Gramian::of_rows(&r);
            for i in 0..t { q.data[i * t + i] += 1e-3; }
            let (x, _) = nonneg_qp(&q, &c[..t]);
            let grad: Vec<f64> = q.mul(&x).iter().zip(&c).map(|(a, b)| a + b).collect();
            for i in 0..t {
                prop_assert!(x[i] >= 0.0);
                prop_assert!(grad[i] >= -1e-8, "{grad:?}");
                prop_assert!((x[i] * grad[i]).abs() <= 1e-8);
            }
            let (y, _) = coordinate_descent(&q, &c[..t]);
            let f = |z: &[f64]| 0.5 * q.quad(z) + dot(&c[..t], z);
            prop_assert!((f(&y) - f(&x)).abs() <= 1e-6 * (1.0 + f(&x).abs()));
        }
    }

    #[test]
    fn min_norm_of_opposite_rows_is_zero() {
        let g = Gramian::of_rows(&[vec![1.0, 2.0], vec![-1.0, -2.0], vec![3.0, 0.5]]);
        let (w, _) = min_norm_simplex(&g);
        assert!(g.quad(&w) < 1e-20, "{w:?}");
        assert!((w[0] - 0.5).abs() < 1e-12 && w[2] == 0.0);
    }
}
