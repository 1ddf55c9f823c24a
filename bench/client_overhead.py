"""What run.log costs the training loop: µs per call, and a 20,000-step toy loop side by side
with TensorBoard's SummaryWriter.add_scalar. Figures are printed, not asserted.

    .venv/bin/python bench/client_overhead.py [--calls 200000] [--steps 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _server import machine, running_server  # noqa: E402

import trainer_client  # noqa: E402


def per_call(url: str, calls: int, tensors: bool) -> float:
    run = trainer_client.init("bench-per-call", server=url)
    if tensors:
        values = {k: torch.tensor(v) for k, v in
                  (("d_loss", 0.5), ("g_loss", 0.7), ("d_real", 0.9), ("d_fake", 0.1))}
    else:
        values = {"d_loss": 0.5, "g_loss": 0.7, "d_real": 0.9, "d_fake": 0.1}
    log = run.log
    start = time.perf_counter()
    for _ in range(calls):
        log(**values)
    elapsed = time.perf_counter() - start
    run.finish()
    return elapsed / calls * 1e6


def toy_loop(steps: int, logger) -> tuple[float, float]:
    """A tiny real training step (a 32x32 linear layer, SGD) per iteration; (loop s, finish s)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(32, 32)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(8, 32)
    start = time.perf_counter()
    for step in range(steps):
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if logger is not None:
            logger.log(step, 0.5, 0.7, 0.9, 0.1)
    loop = time.perf_counter() - start
    start = time.perf_counter()
    if logger is not None:
        logger.close()
    return loop, time.perf_counter() - start


class Ganwatch:
    def __init__(self, url: str) -> None:
        self.run = trainer_client.init("bench-toy-loop", server=url)

    def log(self, step, a, b, c, d) -> None:
        self.run.log(d_loss=a, g_loss=b, d_real=c, d_fake=d)

    def close(self) -> None:
        self.run.finish()


class TensorBoard:
    def __init__(self, logdir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(logdir)

    def log(self, step, a, b, c, d) -> None:
        for tag, value in (("d_loss", a), ("g_loss", b), ("d_real", c), ("d_fake", d)):
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    print(f"machine: {machine()}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as spool, running_server() as url:
        os.environ["GANWATCH_SPOOL_DIR"] = spool
        floats = per_call(url, args.calls, tensors=False)
        tensors = per_call(url, args.calls // 4, tensors=True)
        print(f"\nrun.log with 4 Python floats : {floats:6.2f} µs per call (target <= 10 µs)")
        print(f"run.log with 4 0-d CPU tensors: {tensors:6.2f} µs per call")

        rows = [("no logging", toy_loop(args.steps, None))]
        rows.append(("ganwatch run.log", toy_loop(args.steps, Ganwatch(url))))
        try:
            with tempfile.TemporaryDirectory() as logdir:
                tensorboard = TensorBoard(logdir)
                rows.append(("SummaryWriter.add_scalar x4", toy_loop(args.steps, tensorboard)))
        except ImportError:
            print("(tensorboard is not installed: no SummaryWriter column)")
    base = rows[0][1][0]
    print(f"\n{args.steps:,}-step toy loop, 4 scalars per step:")
    print(f"{'':30s} {'loop s':>8s} {'overhead µs/step':>17s} {'close/finish s':>15s}")
    for name, (loop, close) in rows:
        print(f"{name:30s} {loop:8.2f} {(loop - base) / args.steps * 1e6:17.2f} {close:15.2f}")
    if len(rows) == 3:
        ours = max(rows[1][1][0] - base, 1e-9)
        theirs = rows[2][1][0] - base
        print(f"\nSummaryWriter's overhead / ganwatch's: {theirs / ours:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
