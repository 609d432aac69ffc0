"""Expected values of TorchJD's aggregators for tandem-optim's reference test.

Writes crates/tandem-optim/tests/data/torchjd_reference.json: for a fixed set of matrices
(one row per task), the update each TorchJD 0.18 aggregator returns from a fresh state, with
TorchJD's defaults. The Rust test `torchjd_reference` runs the same methods through
`tandem_optim::weighting::aggregate_rows` and compares within 2e-3 relative; it needs no Python.

    pip install torch 'torchjd[full]'
    python benches/pytorch/torchjd_reference.py

`mgda` is the exact min-norm point of the rows' convex hull (tandem's default solver): TorchJD's
Frank-Wolfe does not reach it even with 100,000 iterations, so the script solves the QP
min w'Gw s.t. w >= 0, sum w = 1 with Clarabel (through qpsolvers, a TorchJD[full] dependency)
to 1e-10 and returns J'w. `mgda_frank_wolfe` is TorchJD's MGDA with its defaults (epsilon
1e-3, 100 iterations), tandem's `solver = "frank_wolfe"`.
"""
import json
import pathlib

import numpy as np
import torch
from qpsolvers import solve_qp
from torchjd import aggregation as A

torch.set_default_dtype(torch.float64)


def matrices():
    out = []
    g = torch.Generator().manual_seed(20261205)
    for t, n in [(2, 3), (2, 8), (3, 5), (3, 12), (4, 6), (5, 10), (5, 30), (6, 4)]:
        out.append((f"randn_{t}x{n}", torch.randn(t, n, generator=g)))
    # Conflicting pair and a dominated task.
    out.append(("conflict_2x2", torch.tensor([[1.0, 0.0], [-0.5, 1.0]])))
    out.append(("opposed_2x3", torch.tensor([[1.0, 2.0, 0.5], [-1.0, -1.5, 0.2]])))
    # Very different scales (landmarks' gradient 100x an attribute's).
    m = torch.randn(4, 9, generator=g)
    m[0] *= 100.0
    out.append(("scaled_4x9", m))
    # Aligned tasks (no conflict).
    base = torch.randn(1, 7, generator=g)
    out.append(("aligned_3x7", base.repeat(3, 1) * torch.tensor([[1.0], [2.0], [0.5]])
                + 0.1 * torch.randn(3, 7, generator=g)))
    return out


class MinNorm:
    """The exact min-norm point of the rows' convex hull (MGDA's QP solved to 1e-10)."""

    def __call__(self, m):
        g = (m @ m.T).numpy()
        t = g.shape[0]
        w = solve_qp(g, np.zeros(t), A=np.ones((1, t)), b=np.ones(1), lb=np.zeros(t),
                     solver="clarabel", tol_gap_abs=1e-12, tol_gap_rel=1e-12,
                     tol_feas=1e-12)
        return torch.from_numpy(w) @ m


def methods(t):
    return {
        "mean": A.Mean(),
        "sum": A.Sum(),
        "mgda": MinNorm(),
        "mgda_frank_wolfe": A.MGDA(),
        "upgrad": A.UPGrad(),
        "dualproj": A.DualProj(),
        "imtl_g": A.IMTLG(),
        "cagrad": A.CAGrad(c=0.5),
        "nash_mtl": A.NashMTL(n_tasks=t),
        "aligned_mtl": A.AlignedMTL(),
        "config": A.ConFIG(),
        "fairgrad": A.FairGrad(alpha=1.0),
        "fairgrad_alpha_2": A.FairGrad(alpha=2.0),
    }


def main():
    cases = []
    for name, m in matrices():
        t = m.shape[0]
        expected = {}
        for method, agg in methods(t).items():
            grad = agg(m.clone())
            entry = {"grad": grad.tolist(), "comparable": True}
            # FairGrad solves G w = w^(-1/alpha) iteratively (scipy's least_squares); where
            # TorchJD's solver stops short (iteration limit; no solution for a singular G) its
            # answer is not the method's and is kept out of the comparison, with the residual it
            # left. Nash-MTL is always compared: tandem's default solver runs TorchJD's own
            # sequence of convex programs (CCP), stopping where it stops; the residual of
            # G a = 1/a is recorded for information only.
            if method == "nash_mtl":
                a = torch.tensor(agg.weighting.prvs_alpha, dtype=torch.float64)
                res = (m @ m.T @ a - 1.0 / a).norm() / (1.0 / a).norm()
                entry["residual"] = res.item()
            if method.startswith("fairgrad"):
                p = 1.0 if method == "fairgrad" else 2.0
                w = agg.gramian_weighting(m @ m.T)
            else:
                w = None
            if w is not None:
                res = (m @ m.T @ w - w.pow(-1.0 / p)).norm() / w.pow(-1.0 / p).norm()
                entry["residual"] = res.item()
                entry["comparable"] = res.item() < 1e-6
            expected[method] = entry
        cases.append({"name": name, "grads": m.tolist(), "expected": expected})
    root = pathlib.Path(__file__).resolve().parents[2]
    path = root / "crates/tandem-optim/tests/data/torchjd_reference.json"
    path.write_text(json.dumps({"torchjd": "0.18", "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
