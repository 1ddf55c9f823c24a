"""On a CUDA machine: what ganwatch costs a reference-sized DCGAN training step, and proof that
run.log makes no host sync between flushes. Printed, not asserted.

    .venv/bin/python bench/gpu_step_overhead.py [--steps 300] [--warmup 50] [--repeats 3]
    .venv/bin/python bench/gpu_step_overhead.py --device cpu --steps 3 --warmup 1 --batch 8 \
        --repeats 1 --sync-steps 3          # smoke check of the script on a machine without CUDA

Phase 1 times the pytorch/examples DCGAN (64x64x3 images, batch 128, nz 100, ngf = ndf = 64,
Adam 2e-4, beta1 0.5, cudnn.benchmark) for --warmup untimed + --steps timed steps, with
torch.cuda.synchronize() around the timed region only, without the client and with it:
per-layer gradient norms of G and D at every step (init(models=..., optimizers=...)), a sample
grid every 500 steps (sample_every=500), d_loss, g_loss, d_real and d_fake logged as 0-d tensors
and the fake and real batches logged for the diversity summary. Repeats are interleaved and the
best of each side is shown. Each client repeat is a fresh run (finished after the timed region,
so no gradient-norm hook is left on the optimizers while the baseline is timed); its steps
continue across repeats, so sample grids fall where they would in one long run.

Phase 2 runs --sync-steps steps under torch.cuda.set_sync_debug_mode("error"): first without the
client (a control: the step itself must not sync), then logging tensors with a flush interval of
an hour, so no flush (and no sender work) falls in the window. run.log never raises (it counts
what fails in run.errors and warns), so the check reads both exceptions and run.errors; no
.item() is called in the window. Without CUDA, --device cuda says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from _server import machine, running_server  # noqa: E402

import trainer_client  # noqa: E402

NZ, NGF, NDF, NC = 100, 64, 64, 3
TARGET_PCT = 1.0


def dcgan(device):
    """Generator and Discriminator of pytorch/examples dcgan/main.py, with its init and Adam."""
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
        nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten(0),
    ).to(device)

    def weights_init(m):
        name = m.__class__.__name__
        if "Conv" in name:
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif "BatchNorm" in name:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    netG.apply(weights_init)
    netD.apply(weights_init)
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return netG, netD, optG, optD


def make_step(netG, netD, optG, optD, real, device):
    """One training step as in pytorch/examples (BCELoss on D's sigmoid output)."""
    criterion = nn.BCELoss()
    ones = torch.ones(real.shape[0], device=device)
    zeros = torch.zeros(real.shape[0], device=device)

    def step(run, index=None):
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        out_real = netD(real)
        err_real = criterion(out_real, ones)
        err_real.backward()
        fake = netG(torch.randn(real.shape[0], NZ, 1, 1, device=device))
        out_fake = netD(fake.detach())
        err_fake = criterion(out_fake, zeros)
        err_fake.backward()
        optD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        err_g = criterion(netD(fake), ones)
        err_g.backward()
        optG.step()
        if run is not None:  # tensors only: no .item() here
            run.log(index, d_loss=err_real + err_fake, g_loss=err_g,
                    d_real=out_real.detach().mean(), d_fake=out_fake.detach().mean(),
                    fake=fake, real=real)

    return step


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step, run, steps: int, warmup: int, device, first_index: int | None = None) -> float:
    """Seconds per step over `steps` timed steps, after `warmup` untimed ones."""
    index = first_index
    for _ in range(warmup):
        step(run, index)
        index = None if index is None else index + 1
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(run, index)
        index = None if index is None else index + 1
    sync(device)
    return (time.perf_counter() - start) / steps


def series_count(url: str, run_id: str) -> int:
    r = httpx.get(f"{url}/api/v1/runs/{run_id}", timeout=30)
    return len(r.json().get("series_keys", [])) if r.status_code == 200 else -1


def sync_check(step, netG, netD, optG, optD, url: str, spool: str, steps: int,
               device) -> str:
    """Phase 2; returns the verdict line."""
    run = trainer_client.init("bench-gpu-sync", models={"G": netG, "D": netD},
                              optimizers={"G": optG, "D": optD}, server=url, spool_dir=spool,
                              sample_every=500, flush_interval=3600.0)
    try:
        for _ in range(3):  # one-time work (index tensors, a first grid clone) outside the window
            step(run)
        time.sleep(1.0)  # the sender's start-up build and send (the run's creation) are over
        sync(device)
        if device.type != "cuda":
            for _ in range(steps):
                step(run)
            return (f"SKIPPED: it needs CUDA; {steps} logged steps ran on {device.type} with "
                    f"{run.errors} client errors (a smoke check of the loop only)")
        errors_before = run.errors
        torch.cuda.set_sync_debug_mode("error")
        try:
            try:
                for _ in range(steps):
                    step(None)
            except RuntimeError as exc:
                return (f"INCONCLUSIVE: the DCGAN step syncs by itself, without the client: "
                        f"{str(exc).splitlines()[0]}")
            try:
                for _ in range(steps):
                    step(run)
            except RuntimeError as exc:
                return f"FAIL: a host sync in a logged step: {str(exc).splitlines()[0]}"
        finally:
            torch.cuda.set_sync_debug_mode("default")
        if run.errors != errors_before:
            return (f"FAIL: run.log counted {run.errors - errors_before} errors in the window "
                    "(a host sync raises inside run.log, which swallows it; see the warnings "
                    "above)")
        return (f"PASS: {steps} logged steps (4 tensor scalars, fake/real batches, gradient "
                "norms of G and D) under set_sync_debug_mode('error'), no host sync")
    finally:
        run.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=50, help="untimed steps per repeat")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved repeats of each side; the best is shown")
    parser.add_argument("--sync-steps", type=int, default=50,
                        help="steps checked under set_sync_debug_mode('error') in phase 2")
    args = parser.parse_args()
    if min(args.steps, args.batch, args.repeats, args.sync_steps) < 1 or args.warmup < 0:
        parser.error("counts must be >= 1 (--warmup >= 0)")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine (torch "
              f"{torch.__version__}): nothing measured. Run it on a GPU machine, or smoke-check "
              "the script on the CPU with: --device cpu --steps 3 --warmup 1 --batch 8 "
              "--repeats 1 --sync-steps 3")
        return
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as pytorch/examples dcgan does
        gpu = f"{torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
    else:
        gpu = "no GPU: CPU smoke check, the timings say nothing about GPU overhead"
    print(f"machine: {machine()}")
    print(f"device: {gpu}; torch {torch.__version__}")
    torch.manual_seed(0)
    netG, netD, optG, optD = dcgan(device)
    real = torch.rand(args.batch, NC, 64, 64, device=device) * 2 - 1
    step = make_step(netG, netD, optG, optD, real, device)
    models, optimizers = {"G": netG, "D": netD}, {"G": optG, "D": optD}

    with tempfile.TemporaryDirectory(prefix="ganwatch-bench-spool-") as spool, \
            running_server() as url:
        # Phase 1
        without, with_client, finishes, errors, keys = [], [], [], 0, set()
        index = 0
        for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
            without.append(timed(step, None, args.steps, args.warmup, device))
            run = trainer_client.init("bench-gpu-dcgan", models=models, optimizers=optimizers,
                                      server=url, spool_dir=spool, sample_every=500,
                                      grad_norm_every=1)
            with_client.append(timed(step, run, args.steps, args.warmup, device, index))
            index += args.warmup + args.steps
            t0 = time.perf_counter()
            run.finish()  # removes the gradient-norm hooks before the next baseline
            finishes.append(time.perf_counter() - t0)
            errors += run.errors
            keys.add(series_count(url, run.id))
        a, b = min(without), min(with_client)
        pct = (b - a) / a * 100
        ok = ("meets" if pct <= TARGET_PCT else "MISSES") if device.type == "cuda" \
            else "not judged on the CPU"
        print(f"\nphase 1: DCGAN 64x64x3, batch {args.batch}, {args.warmup} warm-up + "
              f"{args.steps} timed steps, best of {args.repeats}")
        print(f"  without the client: {a * 1e3:9.3f} ms/step  (all: "
              f"{', '.join(f'{t * 1e3:.3f}' for t in without)})")
        print(f"  with the client   : {b * 1e3:9.3f} ms/step  (all: "
              f"{', '.join(f'{t * 1e3:.3f}' for t in with_client)})")
        print(f"  overhead: {(b - a) * 1e3:+.3f} ms/step = {pct:+.2f}% (target <= "
              f"{TARGET_PCT:.0f}%: {ok}); run.finish() {max(finishes):.2f} s at most; "
              f"client errors {errors}; series per run {sorted(keys)}")

        # Phase 2
        verdict = sync_check(step, netG, netD, optG, optD, url, spool, args.sync_steps, device)
        print(f"\nphase 2: sync check under torch.cuda.set_sync_debug_mode('error'): {verdict}")


if __name__ == "__main__":
    main()
