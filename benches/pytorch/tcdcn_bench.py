"""PyTorch reference for `cargo xtask bench`: the TCDCN network and training step.

The same network, loss, optimizer and batch as tandem's bench (xtask/src/bench/net.rs):
trunk conv5x5->16, pool, conv3x3->48, pool, conv3x3->64, pool, conv2x2->64, FC->100 with
|tanh| activations; heads landmarks (10, mean squared error), gender, smile, glasses (2 each)
and pose (5), cross-entropy; AdamW (lr 1e-3). Input 1x40x40, one fixed random batch.

Prints one JSON object: samples/s for each measured configuration and the peak RSS (MB).

    python benches/pytorch/tcdcn_bench.py --threads 2 --seconds 3
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class AbsTanh(nn.Module):
    def forward(self, x):
        return torch.tanh(x).abs()


class Tcdcn(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, 5), AbsTanh(), nn.MaxPool2d(2),
            nn.Conv2d(16, 48, 3), AbsTanh(), nn.MaxPool2d(2),
            nn.Conv2d(48, 64, 3), AbsTanh(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 2), AbsTanh(), nn.Flatten(),
            nn.Linear(64 * 2 * 2, 100), AbsTanh(),
        )
        self.heads = nn.ModuleList(
            [nn.Linear(100, n) for n in (10, 2, 2, 2, 5)]
        )

    def forward(self, x):
        f = self.trunk(x)
        return [h(f) for h in self.heads]


def batch(b, gen):
    x = torch.rand(b, 1, 40, 40, generator=gen)
    lm = torch.rand(b, 10, generator=gen)
    cls = [torch.randint(0, n, (b,), generator=gen) for n in (2, 2, 2, 5)]
    return x, lm, cls


def loss_fn(outs, lm, cls):
    loss = F.mse_loss(outs[0], lm)
    for o, t in zip(outs[1:], cls):
        loss = loss + F.cross_entropy(o, t)
    return loss


def measure(step, samples, seconds, warmup=3):
    for _ in range(warmup):
        step()
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        el = time.perf_counter() - start
        if el >= seconds and n >= 3:
            return samples * n / el


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--configs", default="train_b64,train_b256,infer_b256")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    net = Tcdcn()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    out = {}
    for cfg in args.configs.split(","):
        mode, b = cfg.split("_b")
        b = int(b)
        x, lm, cls = batch(b, gen)
        if mode == "train":
            net.train()

            def step():
                opt.zero_grad(set_to_none=True)
                loss_fn(net(x), lm, cls).backward()
                opt.step()
        else:
            net.eval()

            def step():
                with torch.inference_mode():
                    net(x)
        out[cfg] = measure(step, b, args.seconds)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
