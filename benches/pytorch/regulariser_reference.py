"""Expected values of PyTorch's regularisation layers for tandem-layers' reference test.

Writes crates/tandem-layers/tests/data/regulariser_reference.json. For fixed inputs (written
too), each case holds PyTorch's output and the gradients of `sum(y * r)` for a fixed `r`:

- batch norm (`BatchNorm2d`, `BatchNorm1d`): training output, running statistics after the
  step (momentum 0.1, unbiased variance), evaluation output with them;
- layer norm (`GroupNorm(1, C)` on maps, `LayerNorm(D)` on vectors), instance norm
  (`InstanceNorm2d(affine=True)`), group norm (`GroupNorm(G, C)` on maps and vectors);
- weight norm (`torch.nn.utils.weight_norm`, dim 0) of a conv and a linear layer;
- SELU; dropout and alpha dropout (the mask read back from PyTorch's output, so that the
  Rust test applies the same mask and compares the scaling);
- the initialisations' bounds and standard deviations from `torch.nn.init`'s fans and gains.

The Rust test `regulariser_reference` needs no Python.

    pip install torch
    python benches/pytorch/regulariser_reference.py
"""
import json
import math
import pathlib

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def wave(shape, phase):
    n = math.prod(shape)
    return (torch.arange(n, dtype=torch.float64) * 0.37 + phase).sin().mul(1.5).add(0.2).reshape(shape)


def flat(t):
    return t.detach().reshape(-1).tolist()


def with_grads(module, x, params):
    x = x.clone().requires_grad_(True)
    y = module(x)
    r = wave(tuple(y.shape), 0.9)
    (y * r).sum().backward()
    out = {"x": flat(x), "shape": list(x.shape), "r": flat(r), "y": flat(y), "dx": flat(x.grad)}
    for name, p in params.items():
        out["d" + name] = flat(p.grad)
    return out


def affine_init(module, c):
    with torch.no_grad():
        module.weight.copy_(wave((c,), 0.3).mul(0.5).add(1.0))
        module.bias.copy_(wave((c,), 1.7).mul(0.3))
    return {"gamma": flat(module.weight), "beta": flat(module.bias)}


def batch_norm(shape):
    c = shape[1]
    bn = nn.BatchNorm2d(c) if len(shape) == 4 else nn.BatchNorm1d(c)
    params = affine_init(bn, c)
    bn.train()
    case = with_grads(bn, wave(shape, 0.1), {"gamma": bn.weight, "beta": bn.bias})
    case.update(params)
    case["running_mean"] = flat(bn.running_mean)
    case["running_var"] = flat(bn.running_var)
    bn.eval()
    x2 = wave(shape, 2.3)
    case["x_eval"] = flat(x2)
    case["y_eval"] = flat(bn(x2))
    return case


def group_like(module, shape, c):
    params = affine_init(module, c)
    case = with_grads(module, wave(shape, 0.4), {"gamma": module.weight, "beta": module.bias})
    case.update(params)
    return case


def weight_norm(kind):
    torch.manual_seed(7)
    if kind == "conv":
        layer = nn.Conv2d(2, 3, 3)
        x = wave((2, 2, 5, 5), 0.5)
    else:
        layer = nn.Linear(6, 4)
        x = wave((3, 6), 0.5)
    with torch.no_grad():
        layer.weight.copy_(wave(tuple(layer.weight.shape), 1.1))
        layer.bias.copy_(wave(tuple(layer.bias.shape), 2.2).mul(0.1))
    layer = torch.nn.utils.weight_norm(layer, dim=0)
    with torch.no_grad():
        layer.weight_g.mul_(wave(tuple(layer.weight_g.shape), 0.0).mul(0.2).add(1.0))
    init = {"g": flat(layer.weight_g), "g_shape": list(layer.weight_g.shape), "v": flat(layer.weight_v),
            "v_shape": list(layer.weight_v.shape), "bias": flat(layer.bias)}
    case = with_grads(layer, x, {"g": layer.weight_g, "v": layer.weight_v})
    case.update(init)
    return case


def selu():
    return with_grads(nn.SELU(), wave((5, 7), 0.2).mul(2.0), {})


def dropout_cases():
    torch.manual_seed(11)
    x = wave((8, 50), 0.3)
    p = 0.3
    y = F.dropout(x, p, training=True)
    keep = (y != 0).double()
    a = F.alpha_dropout(x, 0.2, training=True)
    # a dropped unit of alpha dropout is the constant A·α' + B; the kept ones are A·x + B
    alpha_p = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    a_coef = ((1 - 0.2) * (1 + 0.2 * alpha_p ** 2)) ** -0.5
    b_coef = -a_coef * 0.2 * alpha_p
    dropped_value = a_coef * alpha_p + b_coef
    alpha_keep = ((a - dropped_value).abs() > 1e-9).double()
    return {
        "x": flat(x), "shape": [8, 50], "p": p, "keep": flat(keep), "y": flat(y),
        "alpha_p": 0.2, "alpha_keep": flat(alpha_keep), "alpha_y": flat(a),
    }


def inits():
    out = []
    for shape in ([16, 1, 5, 5], [48, 16, 3, 3], [100, 256], [2, 64]):
        w = torch.empty(shape)
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        relu = nn.init.calculate_gain("relu")
        out.append({
            "shape": shape,
            "fan_in": fan_in,
            "fan_out": fan_out,
            # torch.nn.init.xavier_uniform_ / kaiming_uniform_(nonlinearity="relu") bounds
            "glorot_uniform": math.sqrt(6.0 / (fan_in + fan_out)),
            "he_uniform": relu * math.sqrt(3.0 / fan_in),
            # xavier_normal_ / kaiming_normal_(relu) / kaiming_normal_(linear) std
            "glorot_normal": math.sqrt(2.0 / (fan_in + fan_out)),
            "he_normal": relu / math.sqrt(fan_in),
            "lecun_normal": nn.init.calculate_gain("linear") / math.sqrt(fan_in),
            # the layers' own default: U(±1/√fan_in)
            "default": 1.0 / math.sqrt(fan_in),
        })
        # the formulas above are torch's: check them against its samplers
        torch.manual_seed(0)
        top, sq, n = 0.0, 0.0, 0
        for _ in range(200):
            nn.init.xavier_uniform_(w)
            top = max(top, w.abs().max().item())
            nn.init.kaiming_normal_(w, nonlinearity="relu")
            sq, n = sq + w.pow(2).sum().item(), n + w.numel()
        assert abs(top / out[-1]["glorot_uniform"] - 1) < 1e-2, (top, out[-1])
        assert abs(math.sqrt(sq / n) / out[-1]["he_normal"] - 1) < 2e-2, (sq / n, out[-1])
    return out


def main():
    data = {
        "batch_norm_2d": batch_norm((4, 3, 5, 5)),
        "batch_norm_1d": batch_norm((6, 5)),
        "layer_norm_2d": group_like(nn.GroupNorm(1, 3), (4, 3, 5, 5), 3),
        "layer_norm_1d": group_like(nn.LayerNorm(5), (6, 5), 5),
        "instance_norm_2d": group_like(nn.InstanceNorm2d(3, affine=True), (4, 3, 5, 5), 3),
        "group_norm_2d": group_like(nn.GroupNorm(2, 4), (3, 4, 3, 3), 4),
        "group_norm_1d": group_like(nn.GroupNorm(2, 6), (5, 6), 6),
        "weight_norm_conv": weight_norm("conv"),
        "weight_norm_linear": weight_norm("linear"),
        "selu": selu(),
        "dropout": dropout_cases(),
        "inits": inits(),
        "torch": torch.__version__,
    }
    path = pathlib.Path(__file__).resolve().parents[2] / "crates/tandem-layers/tests/data/regulariser_reference.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
