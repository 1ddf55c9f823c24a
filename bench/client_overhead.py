"""What ganwatch's run.log costs a training loop: µs per call, and a toy loop side by side with
TensorBoard's SummaryWriter.add_scalar. Figures are printed, not asserted.

    .venv/bin/python bench/client_overhead.py [--calls 200000] [--steps 20000] [--repeats 3]

(a) µs per run.log call with 4 Python floats, then with 4 0-d CPU tensors, timed with
time.perf_counter over --calls calls, a real `ganwatch serve` receiving (the sender thread
builds, spools and posts batches meanwhile, as in real use); also 4 x SummaryWriter.add_scalar
per call for comparison. (b) a --steps-step toy loop (a 16x16 matmul summed into a 0-d tensor:
a few µs of real torch work per step) without logging, with run.log(4 floats), with run.log(4 0-d
tensors made by the step) and with 4 x add_scalar, best of --repeats interleaved repeats;
run.finish() / writer.close() timed apart (they include sending what the loop left queued).
Targets: <= 10 µs per run.log call, >= 10x cheaper than SummaryWriter.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import torch  # noqa: E402
from _server import machine, running_server  # noqa: E402

import trainer_client  # noqa: E402

KEYS = ("d_loss", "g_loss", "d_real", "d_fake")
FLOATS = (0.5, 0.7, 0.9, 0.1)
TARGET_US = 10.0
TARGET_RATIO = 10.0


def tensorboard_writer(logdir: str):
    """A SummaryWriter, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(logdir)


def wait_created(url: str, run_id: str, timeout: float = 30.0) -> None:
    """Wait (bounded) until the sender's start-up work is done: the run exists on the server.
    The timed loops then measure steady state, not the first connection and the spool scan."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/runs/{run_id}", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    time.sleep(0.05)


def stored_points(url: str, run_id: str, key: str) -> int:
    """How many points of one series the server holds (a check that nothing was lost)."""
    r = httpx.get(f"{url}/api/v1/runs/{run_id}/series",
                  params={"key": key, "max_points": 3}, timeout=30)
    if r.status_code != 200:
        return -1
    return r.json()["series"][0]["count"]


# -- (a) µs per call --------------------------------------------------------------------------

def per_call_ganwatch(url: str, spool: str, calls: int, tensors: bool,
                      flush_interval: float) -> tuple[float, float, int]:
    """(µs per run.log call, run.finish() s, d_loss points the server stored: calls + 1)."""
    run = trainer_client.init(f"bench-per-call-{'tensors' if tensors else 'floats'}",
                              server=url, spool_dir=spool, flush_interval=flush_interval)
    if tensors:
        values = {k: torch.tensor(v) for k, v in zip(KEYS, FLOATS)}
    else:
        values = dict(zip(KEYS, FLOATS))
    log = run.log
    log(**values)  # the first call registers the tensor type; not timed
    wait_created(url, run.id)
    start = time.perf_counter()
    for _ in range(calls):
        log(**values)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    run.finish()
    finish = time.perf_counter() - start
    return elapsed / calls * 1e6, finish, stored_points(url, run.id, "d_loss")


def per_call_tensorboard(calls: int) -> float | None:
    """µs per 4 x add_scalar (Python floats), or None without tensorboard."""
    with tempfile.TemporaryDirectory(prefix="ganwatch-bench-tb-") as logdir:
        writer = tensorboard_writer(logdir)
        if writer is None:
            return None
        add = writer.add_scalar
        start = time.perf_counter()
        for step in range(calls):
            add("d_loss", 0.5, step)
            add("g_loss", 0.7, step)
            add("d_real", 0.9, step)
            add("d_fake", 0.1, step)
        elapsed = time.perf_counter() - start
        writer.close()
    return elapsed / calls * 1e6


# -- (b) the toy loop ------------------------------------------------------------------------

def toy_loop(steps: int, mode: str, url: str, spool: str, flush_interval: float) -> dict:
    """One timed loop; mode is 'none', 'floats', 'tensors' (ganwatch) or 'tensorboard'.

    Every mode does the same torch work: a 16x16 matmul, its sum (a fresh 0-d tensor, as a loss
    is) added into an accumulator. 'tensors' logs that fresh 0-d tensor under four keys, so the
    client keeps a tensor per step alive until its flush, as it does in a real loop.
    """
    torch.manual_seed(0)
    x = torch.randn(16, 16)
    w = torch.randn(16, 16) * 0.1
    acc = torch.zeros(())
    run = writer = logdir = None
    if mode in ("floats", "tensors"):
        run = trainer_client.init(f"bench-toy-loop-{mode}", server=url, spool_dir=spool,
                                  flush_interval=flush_interval)
        log = run.log
        log(0, d_loss=torch.zeros(()))  # registers the tensor type; not timed
        wait_created(url, run.id)
    elif mode == "tensorboard":
        logdir = tempfile.TemporaryDirectory(prefix="ganwatch-bench-tb-")
        writer = tensorboard_writer(logdir.name)
        add = writer.add_scalar
    a, b, c, d = FLOATS
    start = time.perf_counter()
    if mode == "none":
        for _ in range(steps):
            s = torch.mm(x, w).sum()
            acc += s
    elif mode == "floats":
        for step in range(steps):
            s = torch.mm(x, w).sum()
            acc += s
            log(step, d_loss=a, g_loss=b, d_real=c, d_fake=d)
    elif mode == "tensors":
        for step in range(steps):
            s = torch.mm(x, w).sum()
            acc += s
            log(step, d_loss=s, g_loss=s, d_real=s, d_fake=s)
    else:
        for step in range(steps):
            s = torch.mm(x, w).sum()
            acc += s
            add("d_loss", a, step)
            add("g_loss", b, step)
            add("d_real", c, step)
            add("d_fake", d, step)
    loop = time.perf_counter() - start
    start = time.perf_counter()
    if run is not None:
        run.finish()
    if writer is not None:
        writer.close()
    close = time.perf_counter() - start
    stored = stored_points(url, run.id, "d_loss") if run is not None else None
    if logdir is not None:
        logdir.cleanup()
    return {"loop": loop, "close": close, "stored": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000,
                        help="run.log calls timed in (a), for floats and for tensors")
    parser.add_argument("--tb-calls", type=int, default=20_000,
                        help="4 x add_scalar calls timed in (a)")
    parser.add_argument("--steps", type=int, default=20_000, help="toy-loop steps in (b)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved repeats of (b); the best of each is shown")
    parser.add_argument("--flush-interval", type=float, default=1.0,
                        help="the client's flush interval, s (its default is 1.0)")
    args = parser.parse_args()
    if min(args.calls, args.tb_calls, args.steps, args.repeats) < 1:
        parser.error("counts must be >= 1")

    print(f"machine: {machine()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="ganwatch-bench-spool-") as spool, \
            running_server() as url:
        print(f"server: {url} (SQLite, temporary data dir)\n")

        # (a)
        floats, finish_f, stored_f = per_call_ganwatch(url, spool, args.calls, False,
                                                       args.flush_interval)
        tensors, finish_t, stored_t = per_call_ganwatch(url, spool, args.calls, True,
                                                        args.flush_interval)
        tb = per_call_tensorboard(args.tb_calls)
        print(f"(a) µs per call ({args.calls:,} run.log calls each, perf_counter):")
        ok = "meets" if floats <= TARGET_US else "MISSES"
        print(f"    run.log, 4 Python floats     : {floats:8.2f} µs/call   "
              f"(target <= {TARGET_US:.0f} µs: {ok}); finish {finish_f:.2f} s, "
              f"{stored_f:,}/{args.calls + 1:,} steps stored")
        ok = "meets" if tensors <= TARGET_US else "MISSES"
        print(f"    run.log, 4 0-d CPU tensors   : {tensors:8.2f} µs/call   "
              f"(target <= {TARGET_US:.0f} µs: {ok}); finish {finish_t:.2f} s, "
              f"{stored_t:,}/{args.calls + 1:,} steps stored")
        if tb is None:
            print("    SummaryWriter: tensorboard is not installed, no comparison")
        else:
            print(f"    4 x SummaryWriter.add_scalar : {tb:8.2f} µs/call   "
                  f"({args.tb_calls:,} calls): {tb / floats:.1f}x run.log's floats, "
                  f"{tb / tensors:.1f}x its tensors (target >= {TARGET_RATIO:.0f}x)")

        # (b)
        modes = ["none", "floats", "tensors"]
        if _has_tensorboard():
            modes.append("tensorboard")
        results: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all
            for mode in modes:
                results[mode].append(toy_loop(args.steps, mode, url, spool,
                                              args.flush_interval))

    names = {"none": "no logging", "floats": "ganwatch run.log, 4 floats",
             "tensors": "ganwatch run.log, 4 0-d tensors",
             "tensorboard": "SummaryWriter.add_scalar x4"}
    best = {m: min(results[m], key=lambda r: r["loop"]) for m in modes}
    base = best["none"]["loop"]
    print(f"\n(b) {args.steps:,}-step toy loop (16x16 matmul + sum per step), "
          f"best of {args.repeats}:")
    print(f"    {'':32s} {'total s':>8s} {'µs/step':>8s} {'overhead µs/step':>17s} "
          f"{'x baseline':>10s} {'finish/close s':>15s}")
    for m in modes:
        loop = best[m]["loop"]
        closes = statistics.median(r["close"] for r in results[m])
        print(f"    {names[m]:32s} {loop:8.3f} {loop / args.steps * 1e6:8.2f} "
              f"{(loop - base) / args.steps * 1e6:17.2f} {loop / base:10.2f} "
              f"{closes:15.3f}")
    for m in ("floats", "tensors"):
        stored = [r["stored"] for r in results[m]]
        print(f"    {names[m]}: d_loss points stored per run {stored} "
              f"(expected {args.steps + 1:,} each, the untimed first call included)")
    for m in ("floats", "tensors"):
        ours = (best[m]["loop"] - base) / args.steps * 1e6
        ok = "meets" if ours <= TARGET_US else "MISSES"
        line = f"    {names[m]}: overhead {ours:.2f} µs/step (target <= {TARGET_US:.0f} µs: {ok})"
        if "tensorboard" in modes:
            theirs = (best["tensorboard"]["loop"] - base) / args.steps * 1e6
            ratio = theirs / max(ours, 0.01)
            ok = "meets" if ratio >= TARGET_RATIO else "MISSES"
            line += (f"; SummaryWriter's {theirs:.2f} µs/step is {ratio:.1f}x that "
                     f"(target >= {TARGET_RATIO:.0f}x: {ok})")
        print(line)
    if "tensorboard" not in modes:
        print("    (tensorboard is not installed: no SummaryWriter row)")


def _has_tensorboard() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
