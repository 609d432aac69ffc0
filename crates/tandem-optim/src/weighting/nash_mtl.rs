//! Nash-MTL: multi-task learning as a bargaining game (Navon, Shamsian, Achituve, Maron,
//! Kawaguchi, Chechik and Fetaya, ICML 2022, "Multi-Task Learning as a Bargaining Game";
//! TorchJD's `NashMTL`, LibMTL's `Nash_MTL`, both from the paper's official code).
//!
//! The update is `d = Jᵀα` (`J`: the `T × n` task gradients, `G = J Jᵀ` their `T × T` Gramian)
//! with `α` the Nash bargaining solution, where every task's utility `g_t · d` balances its
//! weight:
//! ```text
//! α_t (G α)_t = 1  for every t,   α > 0,          then   α ← α · min(1, max_norm / ‖Jᵀα‖)
//! ```
//!
//! # Solvers (`solver`)
//! **`ccp` (default)**: the paper's Algorithm 1 as TorchJD 0.18 and LibMTL run it, a sequential
//! convex procedure (concave-convex procedure) that only enforces `α_t (Gα)_t ≥ 1` and whose
//! fixed point is often *not* the exact solution — tandem reproduces TorchJD's update, not the
//! equations. With `nf = ‖G‖_F`, `Ĝ = G / nf` and `α⁰` the previous call's `α` (all ones at
//! first), up to `optim_niter` (20) rounds solve
//! ```text
//! α⁺ = argmin_α  1ᵀĜα + cᵀ(α − αᵏ) / nf     s.t.  α ≥ 0,  log(α_t · nf) + log((Ĝα)_t) ≥ 0  ∀t
//! c  = 1/αᵏ + Ĝᵀ (1 / (Ĝ αᵏ))               (elementwise reciprocals)
//! ```
//! (`c` is the gradient of `φ(α) = Σ_t log α_t + Σ_t log (Ĝα)_t` at `αᵏ`: the concave part of
//! the paper's objective, linearized). After each solve the round stops, *keeping `αᵏ`*, when
//! `‖Ĝαᵏ − 1/(αᵏ + 10⁻¹⁰)‖ < 10⁻³` or `‖α⁺ − αᵏ‖ < 10⁻⁶`; otherwise `αᵏ⁺¹ = α⁺`. A subproblem
//! without a solution (infeasible: no `α ≥ 0` with `Ĝα > 0`, e.g. opposed gradients; unbounded;
//! non-finite `c`) gives `α⁺ = αᵏ`, which stops the rounds, as TorchJD does when cvxpy/ECOS fails
//! (a warning is logged). The last `αᵏ` is remembered for the next call.
//!
//! Each subproblem (a linear objective over a convex set with `T` logarithmic constraints) is
//! solved here by a hand-written log-barrier interior-point method in `f64`, in the variables
//! `β = α √nf` (so that the constraints read `β_t (Ĝβ)_t ≥ 1`): minimise
//! `τ b̂ᵀβ − Σ_t log h_t(β)`, `h_t = log β_t + log (Ĝβ)_t`, `b̂ = b / ‖b‖`,
//! `b = Ĝᵀ1 + c / nf`, by damped Newton steps (Cholesky of the `T × T` Hessian, backtracking
//! line search) for `τ = 1, 10, 100, …` until the duality gap `T/τ` is below
//! `10⁻¹¹ (1 + |b̂ᵀβ|)`. A strictly feasible start is `αᵏ √nf` or the ones vector when they have
//! `Ĝβ > 0` (then scaled up, as the feasible set is closed under scaling by `s ≥ 1`), else a
//! phase-I linear program `min s` s.t. `x ≥ 0`, `Σx = 1`, `Ĝx + s ≥ 0` (feasible iff its
//! optimum is negative). When `Ĝαᵏ > 0` fails, the subproblem may be unbounded; a second small
//! linear program `min b̂ᵀx` over `x ≥ 0`, `Σx = 1`, `Ĝx ≥ 0` (a recession direction with
//! negative slope) decides it. Why hand-written: the subproblems have `T ≤ ~20` variables, the
//! Rust crates for exponential-cone programs (`clarabel`, not a dependency here) bring a sparse
//! conic framework for what is a few dozen `T × T` Cholesky solves, and ECOS itself (TorchJD's
//! solver) stops at a 10⁻⁸ gap, which the barrier method beats, deterministically bit for bit.
//! Where ECOS returns an inaccurate point (cvxpy's `optimal_inaccurate`, on badly conditioned
//! Gramians) TorchJD's rounds can end elsewhere; tandem follows the exact subproblems.
//!
//! **`exact`**: solves the equations themselves with Newton's method on a strictly convex
//! potential ([`balance`] with `p = 1`, on `Ĝ`, then rescaled), to 10⁻¹². Where no solution
//! exists (a singular `G` with a positive null direction) or Newton stops early, the previous
//! step's `α` is kept (all ones at the first step) and a warning is logged.
//!
//! Weights are recomputed every `update_weights_every` steps and reused in between. Defaults
//! (TorchJD's and LibMTL's): `solver = "ccp"`, `optim_niter = 20`, `max_norm = 1.0` (0 turns
//! the clipping off), `update_weights_every = 1`. Cost: `T` backward passes (parameters) or `T`
//! head passes and one trunk pass (representation), then at most `optim_niter` barrier solves
//! of `O(T³)` each (microseconds for `T ≤ 20`); extra memory `O(T²)`. State: the last `α`
//! (before clipping) and the step counter, saved and restored exactly.
//!
//! ```toml
//! weighting = { kind = "nash_mtl" }
//! weighting = { kind = "nash_mtl", max_norm = 0.0, update_weights_every = 10 }
//! weighting = { kind = "nash_mtl", solver = "exact" }
//! ```
use super::config::MethodConfig;
use super::linalg::{balance, Gramian, Solve};
use super::{Aggregation, Aggregator, AggregatorInput, GradientWeighting, On, Weighting};
use crate::{state, OptimError, Result};
use candle_nn::VarBuilder;
use nalgebra::{DMatrix, DVector};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tandem_tensor::TaskInfo;

const STATE: &str = "weighting state (nash_mtl)";

/// How Nash-MTL finds its weights (config key `solver`; see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NashSolver {
    /// The paper's sequence of convex programs, as TorchJD and LibMTL run it (default).
    #[default]
    Ccp,
    /// The equations `α_t (Gα)_t = 1` solved exactly by Newton's method.
    Exact,
}

/// Nash-MTL (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct NashMtl {
    max_norm: f64,
    every: u64,
    solver: NashSolver,
    optim_niter: u64,
    state: NashState,
}

/// What Nash-MTL remembers: the last weights before clipping and the calls so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct NashState {
    alpha: Vec<f64>,
    calls: u64,
}

impl NashMtl {
    /// Nash-MTL clipping the update's norm to `max_norm` (0: no clipping), solving every
    /// `update_weights_every` steps, with the default solver (`ccp`, 20 rounds).
    pub fn new(max_norm: f64, update_weights_every: u64) -> Self {
        Self {
            max_norm,
            every: update_weights_every.max(1),
            solver: NashSolver::Ccp,
            optim_niter: default_optim_niter(),
            state: NashState::default(),
        }
    }

    /// The same with `solver`, and at most `optim_niter` (≥ 1) convex rounds for `ccp`.
    pub fn with_solver(mut self, solver: NashSolver, optim_niter: u64) -> Self {
        self.solver = solver;
        self.optim_niter = optim_niter.max(1);
        self
    }

    fn solve(&mut self, g: &Gramian) -> Vec<f64> {
        let t = g.len();
        let previous = if self.state.alpha.len() == t {
            self.state.alpha.clone()
        } else {
            vec![1.0; t]
        };
        match self.solver {
            NashSolver::Ccp => ccp(g, &previous, self.optim_niter),
            NashSolver::Exact => exact(g, previous),
        }
    }
}

/// `‖G‖_F`, summed in index order.
fn frobenius(g: &Gramian) -> f64 {
    let t = g.len();
    (0..t * t)
        .map(|k| g.get(k / t, k % t).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The exact solver: `α (Gα) = 1` by Newton, or `previous` where that fails.
fn exact(g: &Gramian, previous: Vec<f64>) -> Vec<f64> {
    let t = g.len();
    let fro = frobenius(g);
    if !(fro > 0.0 && fro.is_finite()) {
        return previous;
    }
    let scaled =
        Gramian::from_row_major(t, (0..t * t).map(|k| g.get(k / t, k % t) / fro).collect());
    // α = β / √‖G‖ solves α (Gα) = 1 when β solves β (Ĝβ) = 1.
    let start: Vec<f64> = previous.iter().map(|a| a * fro.sqrt()).collect();
    match balance(&scaled, 1.0, &start) {
        (beta, Solve::Converged) => beta.iter().map(|b| b / fro.sqrt()).collect(),
        (_, Solve::MaxIterations) => {
            tracing::warn!("nash_mtl: no bargaining solution found; keeping the previous weights");
            previous
        }
    }
}

/// The paper's sequential convex procedure from `start`, at most `niter` rounds (module doc).
fn ccp(g: &Gramian, start: &[f64], niter: u64) -> Vec<f64> {
    let t = g.len();
    let nf = frobenius(g);
    if !(nf > 0.0 && nf.is_finite()) {
        return start.to_vec();
    }
    let gh = DMatrix::from_fn(t, t, |i, j| g.get(i, j) / nf);
    let mut alpha = DVector::from_column_slice(start);
    for round in 0..niter {
        let next = match subproblem(&gh, nf, &alpha) {
            Ok(next) => next,
            Err(why) => {
                tracing::warn!(
                    "nash_mtl: convex subproblem {round} has no solution ({why}); keeping the \
                     previous weights"
                );
                alpha.clone()
            }
        };
        let residual = (&gh * &alpha - alpha.map(|a| 1.0 / (a + 1e-10))).norm();
        if residual < 1e-3 || (&next - &alpha).norm() < 1e-6 {
            break;
        }
        alpha = next;
    }
    alpha.as_slice().to_vec()
}

/// Why a convex subproblem gave no point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoSolution {
    NonFinite,
    Infeasible,
    Unbounded,
    Stalled,
}

impl std::fmt::Display for NoSolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoSolution::NonFinite => "non-finite linearization",
            NoSolution::Infeasible => "infeasible",
            NoSolution::Unbounded => "unbounded",
            NoSolution::Stalled => "interior-point method stalled",
        })
    }
}

/// `true` when `v > 0` and `Ĝ v > 0`, elementwise.
fn strictly_positive(gh: &DMatrix<f64>, v: &DVector<f64>) -> bool {
    v.iter().all(|x| *x > 0.0) && (gh * v).iter().all(|x| *x > 0.0)
}

/// One CCP round: `argmin 1ᵀĜα + cᵀ(α − αᵏ)/nf` s.t. `log(α_t nf) + log((Ĝα)_t) ≥ 0`.
fn subproblem(
    gh: &DMatrix<f64>,
    nf: f64,
    alpha: &DVector<f64>,
) -> std::result::Result<DVector<f64>, NoSolution> {
    let t = gh.nrows();
    let ght = gh.transpose();
    let c = alpha.map(|a| 1.0 / a) + &ght * (gh * alpha).map(|v| 1.0 / v);
    let b = &ght * DVector::from_element(t, 1.0) + c / nf;
    let norm = b.norm();
    if !(b.iter().all(|v| v.is_finite()) && norm > 0.0 && norm.is_finite()) {
        return Err(NoSolution::NonFinite);
    }
    let b = b / norm;
    let root = nf.sqrt();
    let scaled = alpha * root;
    let ones = DVector::from_element(t, 1.0);
    let bounded = strictly_positive(gh, alpha);
    let start = if bounded {
        scaled
    } else if strictly_positive(gh, &ones) {
        ones
    } else {
        phase_one(gh).ok_or(NoSolution::Infeasible)?
    };
    // With α > 0 and Ĝα > 0, every term of bᵀd is ≥ 0 on the recession cone {d ≥ 0, Ĝd ≥ 0}
    // (and > 0 for d ≠ 0): bounded. Otherwise look for a descent direction in that cone.
    if !bounded && unbounded(gh, &b, &start) {
        return Err(NoSolution::Unbounded);
    }
    Ok(barrier(gh, &b, start)? / root)
}

/// `(Ĝβ, h)` with `h_t = log β_t + log (Ĝβ)_t`, or `None` outside `β > 0, Ĝβ > 0, h > 0`.
fn slacks(gh: &DMatrix<f64>, beta: &DVector<f64>) -> Option<(DVector<f64>, DVector<f64>)> {
    let q = gh * beta;
    if !(beta.iter().all(|v| *v > 0.0) && q.iter().all(|v| *v > 0.0)) {
        return None;
    }
    let h = DVector::from_fn(beta.len(), |i, _| beta[i].ln() + q[i].ln());
    h.iter().all(|v| *v > 0.0).then_some((q, h))
}

/// `min b̂ᵀβ` s.t. `log β_t + log (Ĝβ)_t ≥ 0` by the log-barrier method from `start`
/// (`β > 0`, `Ĝβ > 0`).
fn barrier(
    gh: &DMatrix<f64>,
    b: &DVector<f64>,
    start: DVector<f64>,
) -> std::result::Result<DVector<f64>, NoSolution> {
    let t = gh.nrows();
    let m = t as f64;
    let mut beta = start;
    // Into the interior: scaling by s multiplies β_t (Ĝβ)_t by s², adding 2 log s to every h_t.
    let q = gh * &beta;
    let hmin = (0..t)
        .map(|i| beta[i].ln() + q[i].ln())
        .fold(f64::INFINITY, f64::min);
    if !hmin.is_finite() {
        return Err(NoSolution::NonFinite);
    }
    if hmin < 1.0 {
        beta *= ((1.0 - hmin) / 2.0).exp();
    }
    let mut tau = 1.0;
    for _ in 0..100 {
        for _ in 0..100 {
            let Some((q, h)) = slacks(gh, &beta) else {
                return Err(NoSolution::Stalled);
            };
            // ∇h_t = e_t / β_t + Ĝ_t / q_t (Ĝ_t: row t).
            let mut grad = b * tau;
            let mut hess = DMatrix::<f64>::zeros(t, t);
            for i in 0..t {
                let mut dh = gh.row(i).transpose() / q[i];
                dh[i] += 1.0 / beta[i];
                grad -= &dh / h[i];
                hess += &dh * dh.transpose() / (h[i] * h[i]);
                hess += gh.row(i).transpose() * gh.row(i) / (q[i] * q[i] * h[i]);
                hess[(i, i)] += 1.0 / (beta[i] * beta[i] * h[i]);
            }
            if !grad.iter().all(|v| v.is_finite()) {
                return Err(NoSolution::Stalled);
            }
            let Some(chol) = hess.cholesky() else {
                // Ill-conditioned near the optimum: accept a point already well centred.
                if m / tau < 1e-6 * (1.0 + b.dot(&beta).abs()) {
                    return Ok(beta);
                }
                return Err(NoSolution::Stalled);
            };
            let d = -chol.solve(&grad);
            let slope = grad.dot(&d);
            if -slope < 1e-14 {
                break;
            }
            let Some(next) = line_search(slope, |s| {
                let cand = &beta + &d * s;
                let (_, hn) = slacks(gh, &cand)?;
                let dec = (0..t).map(|i| (hn[i] / h[i]).ln()).sum::<f64>();
                Some((tau * s * b.dot(&d) - dec, cand))
            }) else {
                break;
            };
            beta = next;
        }
        if beta.amax() > 1e15 {
            return Err(NoSolution::Unbounded);
        }
        if m / tau < 1e-11 * (1.0 + b.dot(&beta).abs()) {
            return Ok(beta);
        }
        tau *= 10.0;
    }
    Ok(beta)
}

/// Backtracking (Armijo, factor ¼, halving) on `step(s) = Some((F(x + s d) − F(x), x + s d))`
/// (`None` outside the domain); `None` when no step above 10⁻¹⁴ decreases `F`.
fn line_search(
    slope: f64,
    mut step: impl FnMut(f64) -> Option<(f64, DVector<f64>)>,
) -> Option<DVector<f64>> {
    let mut s = 1.0;
    while s >= 1e-14 {
        if let Some((change, cand)) = step(s) {
            if change <= 0.25 * s * slope {
                return Some(cand);
            }
        }
        s *= 0.5;
    }
    None
}

/// `min cᵀz` s.t. `M z > 0`, `aᵀz = 1` by the log-barrier method from a strictly feasible `z`;
/// after each centring, `decide(z, gap)` (`gap`: the duality-gap bound) may end it. After 60
/// centrings, `decide(z, 0)`.
fn lp_barrier<R>(
    c: &DVector<f64>,
    mat: &DMatrix<f64>,
    a: &DVector<f64>,
    mut z: DVector<f64>,
    mut decide: impl FnMut(&DVector<f64>, f64) -> Option<R>,
) -> Option<R> {
    let rows = mat.nrows() as f64;
    let mut tau = 1.0;
    for _ in 0..60 {
        for _ in 0..100 {
            let r = mat * &z;
            let inv = r.map(|v| 1.0 / v);
            let grad = c * tau - mat.transpose() * &inv;
            let weighted = DMatrix::from_fn(mat.nrows(), mat.ncols(), |i, j| {
                mat[(i, j)] * inv[i] * inv[i]
            });
            let hess = mat.transpose() * weighted;
            let Some(chol) = hess.cholesky() else {
                break;
            };
            // Newton step on the plane aᵀd = 0: d = −H⁻¹(g + w a), aᵀd = 0.
            let u = chol.solve(&grad);
            let v = chol.solve(a);
            let w = -a.dot(&u) / a.dot(&v);
            let d = -(u + v * w);
            let slope = grad.dot(&d);
            if !slope.is_finite() || -slope < 1e-14 {
                break;
            }
            let Some(next) = line_search(slope, |s| {
                let cand = &z + &d * s;
                let rn = mat * &cand;
                if !rn.iter().all(|v| *v > 0.0) {
                    return None;
                }
                let dec = (0..r.len()).map(|i| (rn[i] / r[i]).ln()).sum::<f64>();
                Some((tau * s * c.dot(&d) - dec, cand))
            }) else {
                break;
            };
            z = next;
        }
        if let Some(out) = decide(&z, rows / tau) {
            return Some(out);
        }
        tau *= 10.0;
    }
    decide(&z, 0.0)
}

/// A point `x ≥ 0`, `Σx = 1` with `Ĝx > 0`, or `None` where there is none (phase I:
/// `min s` s.t. `Ĝx + s ≥ 0`).
fn phase_one(gh: &DMatrix<f64>) -> Option<DVector<f64>> {
    let t = gh.nrows();
    let mat = DMatrix::from_fn(2 * t, t + 1, |i, j| match (i < t, j < t) {
        (true, true) => f64::from(u8::from(i == j)),
        (true, false) => 0.0,
        (false, true) => gh[(i - t, j)],
        (false, false) => 1.0,
    });
    let a = DVector::from_fn(t + 1, |i, _| f64::from(u8::from(i < t)));
    let c = DVector::from_fn(t + 1, |i, _| f64::from(u8::from(i == t)));
    let x = DVector::from_element(t, 1.0 / t as f64);
    let s = (gh * &x).iter().fold(0.0f64, |m, v| m.max(-v)) + 1.0;
    let z = DVector::from_fn(t + 1, |i, _| if i < t { x[i] } else { s });
    lp_barrier(&c, &mat, &a, z, |z, gap| {
        let s = z[t];
        if s < 0.0 && gap < -s / 2.0 {
            Some(Some(z.rows(0, t).into_owned()))
        } else if s - gap > 0.0 || gap < 1e-12 {
            Some(None)
        } else {
            None
        }
    })
    .flatten()
}

/// `true` when some `x ≥ 0`, `Σx = 1`, `Ĝx ≥ 0` has `b̂ᵀx < 0`: a direction along which the
/// subproblem's objective decreases without bound. `start` is strictly feasible.
fn unbounded(gh: &DMatrix<f64>, b: &DVector<f64>, start: &DVector<f64>) -> bool {
    let t = gh.nrows();
    let mat = DMatrix::from_fn(2 * t, t, |i, j| {
        if i < t {
            f64::from(u8::from(i == j))
        } else {
            gh[(i - t, j)]
        }
    });
    let ones = DVector::from_element(t, 1.0);
    let z = start / start.sum();
    lp_barrier(b, &mat, &ones, z, |z, gap| {
        let v = b.dot(z);
        if v < -1e-9 {
            Some(true)
        } else if v - gap >= -1e-9 {
            Some(false)
        } else {
            None
        }
    })
    .unwrap_or(false)
}

impl Default for NashMtl {
    fn default() -> Self {
        Self::new(1.0, 1)
    }
}

impl Aggregator for NashMtl {
    fn name(&self) -> &str {
        "nash_mtl"
    }

    fn aggregate(&mut self, input: &AggregatorInput, _rng: &mut ChaCha8Rng) -> Result<Aggregation> {
        let g = input.gramian;
        let alpha =
            if self.state.calls.is_multiple_of(self.every) || self.state.alpha.len() != g.len() {
                self.solve(g)
            } else {
                self.state.alpha.clone()
            };
        self.state.calls += 1;
        self.state.alpha = alpha.clone();
        let norm = g.quad(&alpha).max(0.0).sqrt();
        let w = if self.max_norm > 0.0 && norm > self.max_norm {
            alpha.iter().map(|a| a / norm * self.max_norm).collect()
        } else {
            alpha
        };
        Ok(Aggregation::weights(w))
    }

    fn state(&self) -> Result<serde_json::Value> {
        state::to_json(STATE, &self.state)
    }

    fn load_state(&mut self, value: &serde_json::Value) -> Result<()> {
        self.state = state::from_json(STATE, value)?;
        Ok(())
    }
}

/// Nash-MTL's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NashMtlConfig {
    /// The update's norm is clipped to this (default 1.0; 0 turns clipping off).
    #[serde(default = "default_max_norm")]
    pub max_norm: f64,
    /// Solve for new weights every this many steps (default 1).
    #[serde(default = "default_every")]
    pub update_weights_every: u64,
    /// How the weights are found (default `ccp`, TorchJD's and LibMTL's procedure).
    #[serde(default)]
    pub solver: NashSolver,
    /// The most convex rounds per solve for `ccp` (default 20, ≥ 1).
    #[serde(default = "default_optim_niter")]
    pub optim_niter: u64,
    /// Where the gradients are taken (default `parameters`).
    #[serde(default, skip_serializing_if = "On::is_default")]
    pub on: On,
}

fn default_max_norm() -> f64 {
    1.0
}
fn default_every() -> u64 {
    1
}
fn default_optim_niter() -> u64 {
    20
}

impl Default for NashMtlConfig {
    fn default() -> Self {
        Self {
            max_norm: default_max_norm(),
            update_weights_every: default_every(),
            solver: NashSolver::Ccp,
            optim_niter: default_optim_niter(),
            on: On::Parameters,
        }
    }
}

impl MethodConfig for NashMtlConfig {
    fn validate(&self) -> Result<()> {
        if !(self.max_norm.is_finite() && self.max_norm >= 0.0) {
            return Err(OptimError::config("weighting.max_norm", "must be ≥ 0"));
        }
        if self.update_weights_every == 0 {
            return Err(OptimError::config(
                "weighting.update_weights_every",
                "must be ≥ 1",
            ));
        }
        if self.optim_niter == 0 {
            return Err(OptimError::config("weighting.optim_niter", "must be ≥ 1"));
        }
        Ok(())
    }

    fn build(&self, _tasks: &[TaskInfo], _vb: VarBuilder) -> Result<Box<dyn Weighting>> {
        Ok(Box::new(GradientWeighting::new(
            NashMtl::new(self.max_norm, self.update_weights_every)
                .with_solver(self.solver, self.optim_niter),
            self.on,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::aggregate_rows;
    use rand::SeedableRng;

    fn max_rel(got: &[f64], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale
    }

    #[test]
    fn bargaining_solution_by_hand_and_clipping() -> Result<()> {
        // Orthogonal g1 = (2, 0), g2 = (0, 1): α_t ‖g_t‖² α_t = 1, α = (½, 1), d = (1, 1),
        // ‖d‖ = √2 > 1: clipped to d = (1, 1)/√2.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let rows = [vec![2.0, 0.0], vec![0.0, 1.0]];
        let exact = |max_norm| NashMtl::new(max_norm, 1).with_solver(NashSolver::Exact, 20);
        let (a, d) = aggregate_rows(&mut exact(0.0), &rows, &[1.0; 2], &mut rng)?;
        assert!((a.weights[0] - 0.5).abs() < 1e-12 && (a.weights[1] - 1.0).abs() < 1e-12);
        assert!((d[0] - 1.0).abs() < 1e-12);
        let (_, d) = aggregate_rows(&mut exact(1.0), &rows, &[1.0; 2], &mut rng)?;
        let s = 0.5f64.sqrt();
        assert!((d[0] - s).abs() < 1e-12 && (d[1] - s).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn ccp_matches_torchjd_where_it_stops_short_of_the_equations() -> Result<()> {
        // TorchJD 0.18 (cvxpy 1.9.3, ECOS 2.0.14; every subproblem "optimal", 13 rounds):
        //   python3 -c "import torch; from torchjd.aggregation import NashMTL;
        //     torch.set_default_dtype(torch.float64); a=NashMTL(n_tasks=3);
        //     print(a(torch.tensor(ROWS)).tolist(), a.weighting.prvs_alpha.tolist())"
        // with ROWS the rows below. Its α leaves ‖Gα − 1/α‖ / ‖1/α‖ = 0.40: not the exact
        // solution, which the exact solver finds instead.
        let rows = [
            vec![1.7, 0.5, 1.1, -0.9],
            vec![0.3, -0.4, -0.3, -1.2],
            vec![-29.0, -8.9, -20.4, -17.7],
        ];
        let torchjd_d = [
            0.3281296838400325,
            0.0580098197928052,
            0.14696978285811418,
            -0.9313246771761636,
        ];
        let torchjd_alpha = [2.004538623640847, 0.23411519234243433, 0.07785588469844452];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut ccp = NashMtl::default();
        let (_, d) = aggregate_rows(&mut ccp, &rows, &[1.0; 3], &mut rng)?;
        assert!(max_rel(&d, &torchjd_d) < 1e-4, "{d:?}");
        assert!(max_rel(&ccp.state.alpha, &torchjd_alpha) < 1e-4);
        let mut exact = NashMtl::default().with_solver(NashSolver::Exact, 20);
        let (_, d) = aggregate_rows(&mut exact, &rows, &[1.0; 3], &mut rng)?;
        assert!(max_rel(&d, &torchjd_d) > 1e-2);
        let g = Gramian::of_rows(&rows);
        let ga = g.mul(&exact.state.alpha);
        assert!((0..3).all(|i| (exact.state.alpha[i] * ga[i] - 1.0).abs() < 1e-8));
        Ok(())
    }

    #[test]
    fn infeasible_subproblem_keeps_the_previous_weights() -> Result<()> {
        // g2 = −2 g1: no α ≥ 0 has (Gα)_1 > 0 and (Gα)_2 > 0. TorchJD (same command as above,
        // ROWS = [[1, 0], [-2, 0]]) keeps α = (1, 1): d = (−1, 0), ‖d‖ = 1, not clipped.
        let rows = [vec![1.0, 0.0], vec![-2.0, 0.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (a, d) = aggregate_rows(&mut NashMtl::default(), &rows, &[1.0; 2], &mut rng)?;
        assert_eq!(a.weights, vec![1.0, 1.0]);
        assert_eq!(d, vec![-1.0, 0.0]);
        let gh = DMatrix::from_row_slice(2, 2, &[1.0, -2.0, -2.0, 4.0]) / 5.0;
        assert_eq!(phase_one(&gh), None);
        Ok(())
    }

    #[test]
    fn subproblem_solution_is_feasible_and_optimal() {
        // KKT check on one round: at the solution, b̂ = Σ_t λ_t ∇h_t with λ ≥ 0, λ_t h_t = 0.
        let g = Gramian::of_rows(&[
            vec![1.0, 0.2, 0.0],
            vec![-0.3, 1.0, 0.5],
            vec![0.1, 0.4, 2.0],
        ]);
        let nf = frobenius(&g);
        let gh = DMatrix::from_fn(3, 3, |i, j| g.get(i, j) / nf);
        let alpha = DVector::from_element(3, 1.0);
        let next = subproblem(&gh, nf, &alpha).expect("solvable");
        let beta = &next * nf.sqrt();
        let q = &gh * &beta;
        let h: Vec<f64> = (0..3).map(|i| beta[i].ln() + q[i].ln()).collect();
        assert!(h.iter().all(|v| *v > -1e-9), "{h:?}");
        let ght = gh.transpose();
        let b = &ght * DVector::from_element(3, 1.0)
            + (alpha.map(|a| 1.0 / a) + &ght * (&gh * &alpha).map(|v| 1.0 / v)) / nf;
        // Active constraints' gradients, solved for λ by least squares.
        let active: Vec<usize> = (0..3).filter(|&i| h[i] < 1e-6).collect();
        assert!(!active.is_empty());
        let grads = DMatrix::from_fn(3, active.len(), |r, k| {
            let i = active[k];
            gh[(i, r)] / q[i] + if r == i { 1.0 / beta[i] } else { 0.0 }
        });
        let lambda = grads
            .clone()
            .svd(true, true)
            .solve(&b, 1e-14)
            .expect("least squares");
        assert!(lambda.iter().all(|l| *l > 0.0), "{lambda:?}");
        assert!((grads * lambda - &b).norm() < 1e-6 * b.norm());
    }

    #[test]
    fn state_round_trip_reuses_weights() -> Result<()> {
        for solver in [NashSolver::Ccp, NashSolver::Exact] {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let mut a = NashMtl::new(1.0, 2).with_solver(solver, 20);
            let r1 = [vec![2.0, 0.0], vec![0.0, 1.0]];
            let r2 = [vec![1.0, 1.0], vec![-1.0, 3.0]];
            aggregate_rows(&mut a, &r1, &[1.0; 2], &mut rng)?;
            let mut b = NashMtl::new(1.0, 2).with_solver(solver, 20);
            b.load_state(&a.state()?)?;
            // Step 2 reuses step 1's α (update_weights_every = 2), in both.
            let (wa, _) = aggregate_rows(&mut a, &r2, &[1.0; 2], &mut rng)?;
            let (wb, _) = aggregate_rows(&mut b, &r2, &[1.0; 2], &mut rng)?;
            assert_eq!(wa, wb);
            let (w3a, _) = aggregate_rows(&mut a, &r2, &[1.0; 2], &mut rng)?;
            let (w3b, _) = aggregate_rows(&mut b, &r2, &[1.0; 2], &mut rng)?;
            assert_eq!(w3a, w3b);
            assert_ne!(wa, w3a);
            assert_eq!(a.state()?, b.state()?);
        }
        Ok(())
    }

    #[test]
    fn config_solver_and_rounds() {
        let c: NashMtlConfig = serde_json::from_str("{}").expect("defaults");
        assert_eq!((c.solver, c.optim_niter), (NashSolver::Ccp, 20));
        let c: NashMtlConfig =
            serde_json::from_str(r#"{"solver": "exact", "optim_niter": 5}"#).expect("exact");
        assert_eq!((c.solver, c.optim_niter), (NashSolver::Exact, 5));
        assert!(c.validate().is_ok());
        let bad = NashMtlConfig {
            optim_niter: 0,
            ..NashMtlConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(serde_json::from_str::<NashMtlConfig>(r#"{"solver": "ecos"}"#).is_err());
    }
}
