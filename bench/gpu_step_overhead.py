"""On a CUDA machine: what ganwatch costs a reference-sized DCGAN step, and proof that run.log
makes no host sync between flushes. Printed, not asserted.

    .venv/bin/python bench/gpu_step_overhead.py [--steps 300] [--warmup 50]
    .venv/bin/python bench/gpu_step_overhead.py --device cpu --steps 3 --warmup 1 --batch 8  # smoke

Phase 1 times the pytorch/examples DCGAN (64x64x3, batch 128, nz 100, ngf = ndf = 64) with and
without the client (gradient norms of every layer at every step, a sample grid every 500 steps,
losses and D outputs as tensors, the fake and real batches for diversity). Phase 2 runs steps
under torch.cuda.set_sync_debug_mode("error") with the client logging tensors and a flush
interval longer than the phase, so any host sync that run.log caused would raise.
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
import torch.nn as nn  # noqa: E402
from _server import machine, running_server  # noqa: E402

import trainer_client  # noqa: E402

NZ, NGF, NDF, NC = 100, 64, 64, 3


def dcgan(device):
    netG = nn.Sequential(
        nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
        nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False), nn.Tanh(),
    ).to(device)
    netD = nn.Sequential(
        nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Flatten(0),
    ).to(device)
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return netG, netD, optG, optD


def make_step(netG, netD, optG, optD, real, device):
    bce = nn.BCEWithLogitsLoss()
    ones = torch.ones(real.shape[0], device=device)
    zeros = torch.zeros(real.shape[0], device=device)

    def step(run):
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        out_real = netD(real)
        err_real = bce(out_real, ones)
        err_real.backward()
        fake = netG(torch.randn(real.shape[0], NZ, 1, 1, device=device))
        out_fake = netD(fake.detach())
        err_fake = bce(out_fake, zeros)
        err_fake.backward()
        optD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        err_g = bce(netD(fake), ones)
        err_g.backward()
        optG.step()
        if run is not None:
            run.log(d_loss=err_real + err_fake, g_loss=err_g,
                    d_real=torch.sigmoid(out_real.detach()).mean(),
                    d_fake=torch.sigmoid(out_fake.detach()).mean(), fake=fake, real=real)

    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step, run, steps, warmup, device) -> float:
    for _ in range(warmup):
        step(run)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(run)
    sync(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine: nothing measured. Run this on a GPU "
              "machine, or `--device cpu --steps 3 --warmup 1 --batch 8` for a smoke check.")
        return
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "no GPU"
    print(f"machine: {machine()}, {gpu}, torch {torch.__version__}")
    torch.manual_seed(0)
    netG, netD, optG, optD = dcgan(device)
    real = torch.rand(args.batch, NC, 64, 64, device=device) * 2 - 1
    step = make_step(netG, netD, optG, optD, real, device)
    with tempfile.TemporaryDirectory() as spool, running_server() as url:
        os.environ["GANWATCH_SPOOL_DIR"] = spool
        run = trainer_client.init("bench-gpu-dcgan", models={"G": netG, "D": netD},
                                  optimizers={"G": optG, "D": optD}, server=url,
                                  sample_every=500, grad_norm_every=1)
        without, with_client = [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            without.append(timed(step, None, args.steps, args.warmup, device))
            with_client.append(timed(step, run, args.steps, args.warmup, device))
        run.finish()
        a, b = min(without), min(with_client)
        print(f"DCGAN 64x64, batch {args.batch}: {a * 1e3:.3f} ms/step without the client, "
              f"{b * 1e3:.3f} ms/step with it: overhead {(b - a) / a * 100:+.2f}% (target <= 1%)")

        if device.type != "cuda":
            print("sync check: skipped (it needs CUDA)")
            return
        run = trainer_client.init("bench-gpu-sync", models={"G": netG, "D": netD},
                                  optimizers={"G": optG, "D": optD}, server=url,
                                  sample_every=10_000, flush_interval=3600)
        for _ in range(3):
            step(run)  # warm up, so one-time allocations happen outside the checked window
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(50):
                step(run)
            verdict = "PASS: 50 logged steps, no host sync"
        except RuntimeError as exc:
            verdict = f"FAIL: {exc}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
        print(f"sync check under set_sync_debug_mode('error'): {verdict}")
        run.finish()


if __name__ == "__main__":
    main()
